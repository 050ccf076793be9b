//! Driving one run from its plan to its end, resumable at any point.
//!
//! 1. Subscribe to the run's channel (confirmed by Redis) — before anything is launched.
//! 2. Read the durable copies of results already published (a resumed run's recipes may have
//!    answered while no reconciler listened).
//! 3. Launch each `pending` recipe (claimed in the database first: at most once); re-attach
//!    to each `launched` one (a resumed run).
//! 4. Collect until every recipe has ended: a result message (first answer wins), an exit the
//!    executor saw (non-zero → failed at once; zero → its result gets a short grace period,
//!    then it is `unknown`), or the run's deadline (the rest are `timed_out` and killed).
//! 5. Complete the run (see [`super::finish`]) and clean up.
//!
//! Stopping (shutdown, lost leadership) just stops: everything is in the database, and the
//! next supervisor resumes from step 1. Cancelling (the incident resolved) kills the recipes.
//!
//! **Lost answers.** Recipes written for Euphrosyne answer with one Redis `PUBLISH`, which
//! reaches only whoever is subscribed at that instant. An answer sent while no reconciler
//! listened — the one that launched the recipe had stopped (a failover), or the pub/sub
//! connection was being re-established (a Redis restart) — is gone. A recipe that ends without
//! its answer reaching us, after either happened during its life, is therefore *lost*, not
//! silent: a debugging recipe (it only reads) is launched again, at most `lost_result_reruns`
//! times, each re-run recorded with its reason for the report; an action recipe is never run
//! again on its own — it ends `unknown`, and the report says its result was lost and why.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use futures_util::future::join_all;
use steadfast_telemetry::trace;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, Span};
use uuid::Uuid;

use super::finish;
use crate::context::Context;
use crate::executor::{
    Attached, ExecError, Exit, ExitEvent, ExitSender, Launch, RecipeClock, human,
};
use crate::recipes::RecipeKind;
use crate::results::{BusEvent, RecipeResult, ResultStatus, Subscription};
use crate::store::StoreError;
use crate::store::runs::{self, RecipeRunRow, RecipeState, RunRow};

/// Launches refused as "unavailable" (API server 5xx, ...) are retried this often.
const LAUNCH_ATTEMPTS: u32 = 3;

#[derive(Debug, thiserror::Error)]
pub enum DriveError {
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// How the drive ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    Completed,
    Stopped,
    Cancelled,
    /// Nothing to do: the run was not running.
    NotRunning,
}

struct Drive<'a> {
    ctx: &'a Context,
    run: RunRow,
    recipes: HashMap<String, RecipeRunRow>,
    /// Recipes that exited 0 and whose result is awaited until then.
    grace: HashMap<String, Instant>,
    /// Where executors report recipe exits to this drive.
    exits: ExitSender,
    /// Recipes whose current launch was made by a reconciler that stopped, and why their
    /// answer may have been lost with it.
    failed_over: HashMap<String, String>,
    /// The result bus's outage count when each recipe's current launch began.
    outages_at_launch: HashMap<String, u64>,
    /// The span of each recipe launched by this drive, from its launch to its end (dropping
    /// it ends it).
    recipe_spans: HashMap<String, Span>,
}

/// Drives run `id` until it ends, `stop` (leave it for the next supervisor) or `cancel` (kill
/// its recipes).
pub async fn drive(
    ctx: Arc<Context>,
    id: Uuid,
    stop: CancellationToken,
    cancel: CancellationToken,
) -> Result<Ended, DriveError> {
    let mut conn = ctx.pool.acquire().await.map_err(StoreError::from)?;
    let Some(run) = runs::get(&mut conn, id).await? else {
        return Ok(Ended::NotRunning);
    };
    if run.state != "running" {
        return Ok(Ended::NotRunning);
    }
    let rows = runs::recipes_of(&mut conn, id).await?;
    drop(conn);
    let span = run_span(&run);
    drive_loaded(&ctx, run, rows, stop, cancel)
        .instrument(span)
        .await
}

/// The span of driving a run (`debugging run` / `action run`), continuing the trace of the
/// span that planned it (the incident's or the approval's, recorded with the run) — the
/// supervisor drives it later, maybe on another replica.
fn run_span(run: &RunRow) -> Span {
    let span = tracing::info_span!(
        "reconciler.run",
        otel.name = %format_args!("{} run", run.kind),
        run_id = %run.id,
        incident_id = %run.incident_id,
        kind = %run.kind,
    );
    trace::continue_stored(&span, run.traceparent.as_deref());
    span
}

async fn drive_loaded(
    ctx: &Arc<Context>,
    run: RunRow,
    rows: Vec<RecipeRunRow>,
    stop: CancellationToken,
    cancel: CancellationToken,
) -> Result<Ended, DriveError> {
    let id = run.id;
    let (exits, mut exit_events) = mpsc::unbounded_channel();
    let mut drive = Drive {
        ctx,
        run,
        recipes: rows.into_iter().map(|r| (r.recipe.clone(), r)).collect(),
        grace: HashMap::new(),
        exits,
        failed_over: HashMap::new(),
        outages_at_launch: HashMap::new(),
        recipe_spans: HashMap::new(),
    };

    let Some(mut subscription) = drive.subscribe(&stop).await else {
        return Ok(Ended::Stopped);
    };
    drive.read_backlog().await?;
    let deadline = drive.start().await?;

    loop {
        if drive.all_final() {
            break;
        }
        let next_grace = drive.grace.values().min().copied();
        tokio::select! {
            biased;
            () = stop.cancelled() => return Ok(Ended::Stopped),
            () = cancel.cancelled() => {
                ctx.executor.cancel(id).await;
                ctx.executor.cleanup(id).await;
                let _ = ctx.bus.forget(&id.to_string()).await;
                tracing::info!(run_id = %id, "run cancelled; its recipes were stopped");
                return Ok(Ended::Cancelled);
            }
            event = subscription.recv() => match event {
                Some(BusEvent::Message(bytes)) => drive.on_message(&bytes).await?,
                Some(BusEvent::Resync) => drive.read_backlog().await?,
                None => return Ok(Ended::Stopped),
            },
            Some(exit) = exit_events.recv() => drive.on_exit(exit).await?,
            () = sleep_until(next_grace) => drive.grace_over().await?,
            () = tokio::time::sleep_until(deadline) => {
                drive.time_out().await?;
                break;
            }
        }
    }
    drop(subscription);
    let finished = finish::complete(ctx, &drive.run).await?;
    ctx.executor.cleanup(id).await;
    if let Err(error) = ctx.bus.forget(&id.to_string()).await {
        tracing::debug!(run_id = %id, %error, "could not drop the durable results");
    }
    Ok(if finished {
        Ended::Completed
    } else {
        Ended::NotRunning
    })
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

impl Drive<'_> {
    fn id(&self) -> Uuid {
        self.run.id
    }

    fn kind(&self) -> &'static str {
        self.run.kind().as_str()
    }

    fn all_final(&self) -> bool {
        self.recipes.values().all(|r| r.state().is_final())
    }

    /// Why `recipe`'s answer may have been lost during its current launch, if it may.
    fn loss(&self, recipe: &str) -> Option<String> {
        if let Some(why) = self.failed_over.get(recipe) {
            return Some(format!("its result was lost in a failover ({why})"));
        }
        let at_launch = self.outages_at_launch.get(recipe).copied()?;
        (self.ctx.bus.outages() != at_launch).then(|| {
            "its result was lost while the reconciler reconnected to Redis (nobody was subscribed when it may have answered)".to_owned()
        })
    }

    /// Whether `recipe` is a debugging recipe that may be launched once more.
    fn may_rerun(&self, recipe: &str) -> bool {
        self.run.kind() == RecipeKind::Debugging
            && self
                .recipes
                .get(recipe)
                .is_some_and(|row| row.attempt() <= self.ctx.settings.lost_result_reruns)
    }

    /// Launches `recipe` again because its answer was lost (`why`); false when it had ended
    /// meanwhile after all.
    async fn rerun(&mut self, recipe: &str, why: &str) -> Result<bool, StoreError> {
        {
            let mut conn = self.ctx.pool.acquire().await?;
            if !runs::rerun(&mut conn, self.id(), recipe, why).await? {
                return Ok(false);
            }
        }
        self.grace.remove(recipe);
        self.failed_over.remove(recipe);
        if let Some(span) = self.recipe_spans.remove(recipe) {
            span.record("outcome", "lost");
        }
        if let Some(row) = self.recipes.get_mut(recipe) {
            row.state = RecipeState::Pending.as_str().into();
            row.handle = None;
            row.attempt += 1;
            row.reruns.0.push(why.to_owned());
        }
        self.ctx
            .metrics
            .recipe_reruns
            .with_label_values(&[recipe])
            .inc();
        tracing::warn!(run_id = %self.id(), recipe, reason = why, "launching the recipe again: its answer was lost");
        self.launch_pending().await?;
        Ok(true)
    }

    /// A recipe ended without its answer reaching us, and `why` says how it was lost: re-run
    /// it if it is a debugging recipe with re-runs left, else record it as `unknown`, saying why.
    async fn lost(&mut self, recipe: &str, ended: &str, why: String) -> Result<(), StoreError> {
        if self.may_rerun(recipe) {
            self.rerun(recipe, &why).await?;
            return Ok(());
        }
        let consequence = if self.run.kind() == RecipeKind::Action {
            "an action recipe is never run again on its own: check what it did before approving it again".to_owned()
        } else if self.ctx.settings.lost_result_reruns == 0 {
            "re-runs of lost results are off (LOST_RESULT_RERUNS=0)".to_owned()
        } else {
            let reruns = self.recipes.get(recipe).map_or(0, |r| r.reruns.0.len());
            format!("not run again: it was re-run {reruns} times already")
        };
        self.finish(
            recipe,
            RecipeState::Unknown,
            Some(format!("{ended}, but {why}; {consequence}")),
            None,
        )
        .await?;
        Ok(())
    }

    /// Subscribes, retrying while Redis is unreachable; `None` if stopped meanwhile.
    async fn subscribe(&self, stop: &CancellationToken) -> Option<Subscription> {
        let channel = self.id().to_string();
        let mut wait = Duration::from_millis(200);
        loop {
            match self.ctx.bus.subscribe(&channel).await {
                Ok(subscription) => return Some(subscription),
                Err(error) => {
                    tracing::warn!(run_id = %self.id(), %error, "cannot subscribe to the run's result channel yet; nothing is launched until then");
                }
            }
            tokio::select! {
                () = stop.cancelled() => return None,
                () = tokio::time::sleep(wait) => {}
            }
            wait = (wait * 2).min(Duration::from_secs(5));
        }
    }

    async fn read_backlog(&mut self) -> Result<(), StoreError> {
        match self.ctx.bus.backlog(&self.id().to_string()).await {
            Ok(messages) => {
                for message in messages {
                    self.on_message(&message).await?;
                }
            }
            Err(error) => {
                tracing::warn!(run_id = %self.id(), %error, "cannot read the durable results; relying on live messages");
            }
        }
        Ok(())
    }

    /// Starts the clock, launches what is pending and re-attaches to what was launched
    /// before; returns the run's deadline.
    async fn start(&mut self) -> Result<Instant, StoreError> {
        let default = self.ctx.settings.recipe_timeout;
        let longest = self
            .recipes
            .values()
            .map(|r| r.spec.timeout_or(default))
            .max()
            .unwrap_or(default);
        let mut conn = self.ctx.pool.acquire().await?;
        let planned =
            Utc::now() + chrono::Duration::from_std(longest).unwrap_or(chrono::Duration::MAX);
        let deadline = runs::start_clock(&mut conn, self.id(), planned).await?;
        drop(conn);

        // Launched by a reconciler that stopped: whatever they answered meanwhile, if not kept
        // durably (read above), is lost.
        let adopted: Vec<RecipeRunRow> = self
            .recipes
            .values()
            .filter(|row| row.state() == RecipeState::Launched)
            .cloned()
            .collect();
        let mut unwatchable = Vec::new();
        for row in &adopted {
            let recipe = row.recipe.clone();
            self.outages_at_launch
                .insert(recipe.clone(), self.ctx.bus.outages());
            let clock = RecipeClock {
                timeout: row.spec.timeout_or(self.ctx.settings.recipe_timeout),
                elapsed: row
                    .launched_at
                    .and_then(|at| (Utc::now() - at).to_std().ok())
                    .unwrap_or_default(),
            };
            let attached = self
                .ctx
                .executor
                .attach(
                    self.id(),
                    &row.spec,
                    row.handle.as_deref(),
                    row.attempt(),
                    clock,
                    self.exits.clone(),
                )
                .await;
            match attached {
                Ok(Attached::Watching) => {
                    self.failed_over.insert(
                        recipe,
                        "the reconciler that launched it stopped before it answered".into(),
                    );
                }
                Ok(Attached::Unwatchable(why)) => {
                    self.failed_over.insert(recipe.clone(), why.clone());
                    unwatchable.push((recipe, why));
                }
                Err(error) => {
                    tracing::warn!(run_id = %self.id(), %recipe, %error, "cannot re-attach; waiting for its result");
                    self.failed_over
                        .insert(recipe, format!("it cannot be watched from here: {error}"));
                }
            }
        }
        self.launch_pending().await?;
        // A debugging recipe nobody can watch is run again at once rather than waited for
        // until the deadline (it only reads; the first answer of either launch wins).
        for (recipe, why) in unwatchable {
            if self.may_rerun(&recipe) {
                let why = format!("it may have answered while no reconciler listened ({why})");
                self.rerun(&recipe, &why).await?;
            }
        }
        let remaining = (deadline - Utc::now()).to_std().unwrap_or(Duration::ZERO);
        Ok(Instant::now() + remaining)
    }

    /// Claims every pending recipe (one statement: at most once, even across restarts) and
    /// launches them all at the same time.
    async fn launch_pending(&mut self) -> Result<(), StoreError> {
        let pending: Vec<String> = self
            .recipes
            .values()
            .filter(|r| r.state() == RecipeState::Pending)
            .map(|r| r.recipe.clone())
            .collect();
        if pending.is_empty() {
            return Ok(());
        }
        let claimed = {
            let mut conn = self.ctx.pool.acquire().await?;
            runs::claim_launches(&mut conn, self.id(), &pending).await?
        };
        let outages = self.ctx.bus.outages();
        for recipe in &claimed {
            self.set_state(recipe, RecipeState::Launched, None);
            self.outages_at_launch.insert(recipe.clone(), outages);
            let attempt = self.recipes.get(recipe).map_or(1, RecipeRunRow::attempt);
            let span = tracing::info_span!(
                "reconciler.recipe",
                otel.name = %format_args!("recipe {recipe}"),
                recipe = %recipe,
                attempt,
                outcome = tracing::field::Empty,
            );
            self.recipe_spans.insert(recipe.clone(), span);
        }
        let launches = claimed.iter().map(|recipe| {
            let row = &self.recipes[recipe];
            self.launch_one(row, self.exits.clone())
        });
        let outcomes: Vec<(String, Result<String, ExecError>)> = join_all(launches).await;
        let mut handles = Vec::new();
        for (recipe, outcome) in outcomes {
            match outcome {
                Ok(handle) => {
                    tracing::info!(run_id = %self.id(), %recipe, %handle, kind = self.kind(), "recipe launched");
                    handles.push((recipe, handle));
                }
                Err(error) => {
                    tracing::error!(run_id = %self.id(), %recipe, %error, "recipe could not be launched");
                    self.finish(
                        &recipe,
                        RecipeState::Failed,
                        Some(format!("could not be launched: {error}")),
                        None,
                    )
                    .await?;
                }
            }
        }
        let mut conn = self.ctx.pool.acquire().await?;
        runs::set_handles(&mut conn, self.id(), &handles).await
    }

    /// Launches one claimed recipe, retrying while its backend is unavailable.
    async fn launch_one(
        &self,
        row: &RecipeRunRow,
        exits: ExitSender,
    ) -> (String, Result<String, ExecError>) {
        let settings = &self.ctx.settings;
        let span = self
            .recipe_spans
            .get(&row.recipe)
            .cloned()
            .unwrap_or_else(Span::none);
        let launch = Launch {
            run_id: self.id(),
            incident_id: self.run.incident_id,
            recipe: &row.spec,
            data: &self.run.data,
            timeout: row.spec.timeout_or(settings.recipe_timeout),
            redis_address: &settings.redis_address,
            aggregator_address: &settings.aggregator_address,
            attempt: row.attempt(),
            traceparent: trace::traceparent(&span),
        };
        let mut attempt = 1;
        loop {
            let launched = self
                .ctx
                .executor
                .launch(&launch, exits.clone())
                .instrument(span.clone())
                .await;
            match launched {
                Err(error) if error.is_transient() && attempt < LAUNCH_ATTEMPTS => {
                    tracing::warn!(run_id = %self.id(), recipe = %row.recipe, %error, attempt, "launch failed; retrying");
                    tokio::time::sleep(Duration::from_millis(500 * u64::from(attempt))).await;
                    attempt += 1;
                }
                other => return (row.recipe.clone(), other),
            }
        }
    }

    fn set_state(&mut self, recipe: &str, state: RecipeState, detail: Option<String>) {
        if let Some(row) = self.recipes.get_mut(recipe) {
            row.state = state.as_str().into();
            if row.launched_at.is_none() && state == RecipeState::Launched {
                row.launched_at = Some(Utc::now());
            }
            if detail.is_some() {
                row.detail = detail;
            }
        }
    }

    /// Records a recipe's end (first answer wins) and counts it.
    async fn finish(
        &mut self,
        recipe: &str,
        state: RecipeState,
        detail: Option<String>,
        results: Option<serde_json::Value>,
    ) -> Result<bool, StoreError> {
        let mut conn = self.ctx.pool.acquire().await?;
        let recorded = runs::finish(
            &mut conn,
            self.id(),
            recipe,
            state,
            detail.as_deref(),
            results.as_ref(),
        )
        .await?;
        if !recorded {
            return Ok(false);
        }
        self.grace.remove(recipe);
        if let Some(span) = self.recipe_spans.remove(recipe) {
            span.record("outcome", state.as_str());
        }
        let launched_at = self.recipes.get(recipe).and_then(|r| r.launched_at);
        self.set_state(recipe, state, detail.clone());
        let metrics = &self.ctx.metrics;
        metrics
            .recipe_runs
            .with_label_values(&[self.kind(), recipe, state.as_str()])
            .inc();
        if let Some(launched) = launched_at {
            let seconds = (Utc::now() - launched).num_milliseconds().max(0) as f64 / 1000.0;
            metrics
                .recipe_duration
                .with_label_values(&[self.kind(), state.as_str()])
                .observe(seconds);
        }
        tracing::info!(run_id = %self.id(), recipe, outcome = state.as_str(), detail = detail.as_deref().unwrap_or(""), "recipe finished");
        Ok(true)
    }

    async fn on_message(&mut self, bytes: &[u8]) -> Result<(), StoreError> {
        let reject = |reason: &str| {
            self.ctx
                .metrics
                .results_rejected
                .with_label_values(&[reason])
                .inc();
        };
        let result = match RecipeResult::decode(bytes) {
            Ok(result) => result,
            Err(error) => {
                reject("malformed");
                tracing::warn!(run_id = %self.id(), %error, "ignoring a result message");
                return Ok(());
            }
        };
        if result.incident != self.id().to_string() {
            reject("wrong_run");
            tracing::warn!(run_id = %self.id(), incident = %result.incident, "ignoring a result for another run");
            return Ok(());
        }
        let Some(row) = self.recipes.get(&result.name) else {
            reject("unknown_recipe");
            tracing::warn!(run_id = %self.id(), recipe = %result.name, "ignoring a result from a recipe this run did not launch");
            return Ok(());
        };
        if row.state().is_final() {
            return Ok(());
        }
        let state = match result.status {
            ResultStatus::Successful => RecipeState::Successful,
            ResultStatus::Failed => RecipeState::Failed,
            ResultStatus::Unknown => RecipeState::Unknown,
        };
        let body = serde_json::to_value(&result.results).expect("results serialise");
        self.finish(&result.name, state, None, Some(body)).await?;
        Ok(())
    }

    async fn on_exit(&mut self, event: ExitEvent) -> Result<(), StoreError> {
        // An earlier launch of a re-run recipe ending is old news.
        if self
            .recipes
            .get(&event.recipe)
            .is_none_or(|r| r.state().is_final() || r.attempt() != event.attempt)
        {
            return Ok(());
        }
        // A recipe usually reports before it exits: take its durable copy first, so its own
        // words win over "exited with status 1".
        self.read_backlog().await?;
        if self.recipes[&event.recipe].state().is_final() {
            return Ok(());
        }
        match event.exit {
            Exit::Succeeded | Exit::Vanished(_) => {
                self.grace.insert(
                    event.recipe,
                    Instant::now() + self.ctx.settings.result_grace,
                );
            }
            // A debugging recipe that failed around a Redis outage most likely failed to
            // publish: worth another launch.
            Exit::Failed(detail)
                if !self.failed_over.contains_key(&event.recipe)
                    && (self.loss(&event.recipe).is_some() || !self.ctx.bus.is_connected())
                    && self.may_rerun(&event.recipe) =>
            {
                let why = format!("it failed while Redis was unreachable ({detail})");
                self.rerun(&event.recipe, &why).await?;
            }
            Exit::Failed(detail) => {
                self.finish(&event.recipe, RecipeState::Failed, Some(detail), None)
                    .await?;
            }
            Exit::TimedOut(detail) => {
                self.finish(&event.recipe, RecipeState::TimedOut, Some(detail), None)
                    .await?;
            }
        }
        Ok(())
    }

    /// Recipes that exited 0 but never reported, once their grace period is over.
    async fn grace_over(&mut self) -> Result<(), StoreError> {
        let now = Instant::now();
        let over: Vec<String> = self
            .grace
            .iter()
            .filter(|(_, until)| **until <= now)
            .map(|(name, _)| name.clone())
            .collect();
        for recipe in over {
            if !self.ctx.bus.is_connected() {
                // Deaf right now: its answer may come with the reconnection's re-read.
                self.grace
                    .insert(recipe, now + self.ctx.settings.result_grace);
                continue;
            }
            self.grace.remove(&recipe);
            match self.loss(&recipe) {
                Some(why) => {
                    self.lost(
                        &recipe,
                        "it ended without its result reaching the reconciler",
                        why,
                    )
                    .await?;
                }
                None => {
                    self.finish(
                        &recipe,
                        RecipeState::Unknown,
                        Some("exited successfully without reporting a result".into()),
                        None,
                    )
                    .await?;
                }
            }
        }
        Ok(())
    }

    async fn time_out(&mut self) -> Result<(), StoreError> {
        let default = self.ctx.settings.recipe_timeout;
        let open: Vec<(String, Duration)> = self
            .recipes
            .values()
            .filter(|r| !r.state().is_final())
            .map(|r| (r.recipe.clone(), r.spec.timeout_or(default)))
            .collect();
        for (recipe, timeout) in &open {
            let mut detail = format!("no result within its {} timeout", human(*timeout));
            if let Some(why) = self.loss(recipe) {
                detail.push_str(&format!(
                    "; {}",
                    why.replacen("was lost", "may have been lost", 1)
                ));
            }
            self.finish(recipe, RecipeState::TimedOut, Some(detail), None)
                .await?;
        }
        if !open.is_empty() {
            self.ctx.executor.cancel(self.id()).await;
        }
        Ok(())
    }
}

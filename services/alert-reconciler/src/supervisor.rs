//! The run supervisor: exactly one per namespace drives runs, sends the outbox and expires
//! approvals, whichever replica holds the lock.
//!
//! Leadership is a PostgreSQL session advisory lock held on a dedicated connection: if the
//! leader dies, its connection closes and the lock is free at once for a standby (which tries
//! every `leader_retry`). A new leader
//! 1. listens for `NOTIFY alert_reconciler` (new runs, cancellations, queued reports),
//! 2. removes leftovers of runs that are no longer running (Jobs, ConfigMaps, work dirs),
//! 3. resumes every run still `running` in the database,
//! 4. then follows notifications, and every `sweep_interval` re-scans for running runs it is
//!    not driving (a notification lost in a listener reconnect), expires approvals whose
//!    window is over, refreshes the incident gauges and checks it still holds the lock.
//!
//! Intake and the API work on every replica; they only write the database and notify.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use sqlx::postgres::PgListener;
use sqlx::{ConnectOptions, Connection, PgConnection};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::context::Context;
use crate::incident::IncidentState;
use crate::intake::enqueue;
use crate::report::{IncidentRef, Report};
use crate::run::{self, Ended};
use crate::store::{self, StoreError, WAKE_CHANNEL, Wake, audit, incidents};

/// Handled events older than this are forgotten.
const PROCESSED_EVENT_DAYS: i32 = 7;

/// Competes for leadership until `shutdown`, leading while it holds the lock; meanwhile
/// watches for approval windows nobody closes.
pub async fn run(ctx: Arc<Context>, shutdown: CancellationToken) {
    tokio::join!(
        compete(&ctx, &shutdown),
        watch_overdue_approvals(&ctx, &shutdown)
    );
}

async fn compete(ctx: &Arc<Context>, shutdown: &CancellationToken) {
    let mut announced_standby = false;
    while !shutdown.is_cancelled() {
        match acquire(ctx).await {
            Ok(Some(lock)) => {
                announced_standby = false;
                tracing::info!("leading: this replica drives runs and sends reports");
                ctx.metrics.leader.set(1);
                let led = lead(ctx, lock, shutdown).await;
                ctx.metrics.leader.set(0);
                if let Err(error) = led {
                    tracing::error!(%error, "supervisor stopped; competing for leadership again")
                }
            }
            Ok(None) => {
                if !announced_standby {
                    tracing::info!("standing by: another replica drives runs");
                    announced_standby = true;
                }
            }
            Err(error) => tracing::warn!(%error, "cannot compete for leadership; retrying"),
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(ctx.settings.leader_retry) => {}
        }
    }
}

/// Runs on every replica, leading or not, because what it measures is the leader's absence:
/// the leader's sweep expires a closed approval window within `sweep_interval`, so incidents
/// left awaiting approval past their window mean no replica leads or expiring fails.
async fn watch_overdue_approvals(ctx: &Context, shutdown: &CancellationToken) {
    loop {
        let counted = match ctx.pool.acquire().await {
            Ok(mut conn) => incidents::count_past_approval_window(&mut conn).await,
            Err(error) => Err(error.into()),
        };
        match counted {
            Ok(count) => ctx.metrics.incidents_past_approval_expiry.set(count),
            // The database watch already reports an unreachable database; the gauge keeps
            // its last value until the next count.
            Err(error) => {
                tracing::debug!(%error, "cannot count incidents past their approval window")
            }
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(ctx.settings.sweep_interval) => {}
        }
    }
}

/// A dedicated connection holding the lock, or `None` when another replica holds it.
async fn acquire(ctx: &Context) -> Result<Option<PgConnection>, StoreError> {
    let mut conn = ctx.database.connect().await?;
    let held: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock(hashtextextended($1, 0))")
        .bind(lock_name(&ctx.settings.namespace))
        .fetch_one(&mut conn)
        .await?;
    Ok(held.then_some(conn))
}

/// The name of the leadership lock of `namespace` (a test holds it to keep every replica
/// standing by).
pub fn lock_name(namespace: &str) -> String {
    format!("steadfast.alert-reconciler.supervisor.{namespace}")
}

/// A run being driven; cancelling stops its recipes (stopping is the shared `stop` token).
struct ActiveRun {
    cancel: CancellationToken,
}

async fn lead(
    ctx: &Arc<Context>,
    mut lock: PgConnection,
    shutdown: &CancellationToken,
) -> Result<(), StoreError> {
    let mut listener = PgListener::connect_with(&ctx.pool).await?;
    listener.listen(WAKE_CHANNEL).await?;
    let stop = shutdown.child_token();
    let mut tasks: JoinSet<(Uuid, Result<Ended, run::DriveError>)> = JoinSet::new();
    let mut active: HashMap<Uuid, ActiveRun> = HashMap::new();
    let mut background = JoinSet::new();
    background.spawn(crate::outbox::run(
        ctx.clone(),
        ctx.outbox.clone(),
        stop.clone(),
    ));

    let running = running_runs(ctx).await?;
    ctx.executor
        .collect_garbage(&running.iter().copied().collect::<HashSet<_>>())
        .await;
    if !running.is_empty() {
        tracing::info!(runs = running.len(), "resuming runs");
    }
    for id in running {
        spawn_run(ctx, &mut tasks, &mut active, &stop, id);
    }
    sweep(ctx).await;

    let mut ticker = tokio::time::interval(ctx.settings.sweep_interval);
    ticker.tick().await;
    let result = loop {
        tokio::select! {
            () = shutdown.cancelled() => break Ok(()),
            notification = listener.recv() => match notification {
                Ok(notification) => match Wake::decode(notification.payload()) {
                    Some(Wake::Run(id)) => spawn_run(ctx, &mut tasks, &mut active, &stop, id),
                    Some(Wake::Cancel(id)) => {
                        if let Some(run) = active.get(&id) {
                            run.cancel.cancel();
                        }
                    }
                    Some(Wake::Deliveries) => ctx.outbox.notify_one(),
                    None => tracing::warn!(payload = notification.payload(), "unknown wake-up"),
                },
                Err(error) => {
                    // PgListener reconnects on the next recv; what was notified meanwhile is
                    // found by a re-scan.
                    tracing::warn!(%error, "lost the notification connection; re-scanning");
                    rescan(ctx, &mut tasks, &mut active, &stop).await;
                }
            },
            Some(joined) = tasks.join_next() => match joined {
                Ok((id, result)) => {
                    active.remove(&id);
                    match result {
                        Ok(ended) => tracing::debug!(run_id = %id, ?ended, "run task ended"),
                        Err(error) => tracing::error!(run_id = %id, %error, "run interrupted; it resumes at the next sweep"),
                    }
                }
                Err(error) => tracing::error!(%error, "a run task panicked; it resumes at the next sweep"),
            },
            _ = ticker.tick() => {
                if let Err(error) = sqlx::query("SELECT 1").execute(&mut lock).await {
                    break Err(StoreError::from(error));
                }
                rescan(ctx, &mut tasks, &mut active, &stop).await;
                sweep(ctx).await;
                ctx.outbox.notify_one();
            }
        }
    };
    // Leave runs as they are: the next leader resumes them from the database.
    stop.cancel();
    let drained = tokio::time::timeout(Duration::from_secs(5), async {
        while tasks.join_next().await.is_some() {}
        while background.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tasks.abort_all();
        background.abort_all();
    }
    let _ = lock.close().await;
    result
}

async fn running_runs(ctx: &Context) -> Result<Vec<Uuid>, StoreError> {
    let mut conn = ctx.pool.acquire().await?;
    store::runs::running(&mut conn).await
}

fn spawn_run(
    ctx: &Arc<Context>,
    tasks: &mut JoinSet<(Uuid, Result<Ended, run::DriveError>)>,
    active: &mut HashMap<Uuid, ActiveRun>,
    stop: &CancellationToken,
    id: Uuid,
) {
    if active.contains_key(&id) {
        return;
    }
    let run_stop = stop.child_token();
    let run_cancel = CancellationToken::new();
    active.insert(
        id,
        ActiveRun {
            cancel: run_cancel.clone(),
        },
    );
    let ctx = ctx.clone();
    tasks.spawn(async move { (id, run::drive(ctx, id, run_stop, run_cancel).await) });
}

async fn rescan(
    ctx: &Arc<Context>,
    tasks: &mut JoinSet<(Uuid, Result<Ended, run::DriveError>)>,
    active: &mut HashMap<Uuid, ActiveRun>,
    stop: &CancellationToken,
) {
    match running_runs(ctx).await {
        Ok(running) => {
            for id in running {
                spawn_run(ctx, tasks, active, stop, id);
            }
        }
        Err(error) => tracing::warn!(%error, "cannot re-scan running runs"),
    }
    // Cancellations that were notified while no listener heard them.
    let ids: Vec<Uuid> = active.keys().copied().collect();
    if ids.is_empty() {
        return;
    }
    let cancelled = match ctx.pool.acquire().await {
        Ok(mut conn) => store::runs::cancelled_among(&mut conn, &ids)
            .await
            .unwrap_or_default(),
        Err(_) => Vec::new(),
    };
    for id in cancelled {
        if let Some(run) = active.get(&id) {
            run.cancel.cancel();
        }
    }
}

/// Expires approval windows, forgets old event ids, refreshes the incident gauges.
async fn sweep(ctx: &Context) {
    if let Err(error) = expire_approvals(ctx).await {
        tracing::warn!(%error, "cannot expire approvals");
    }
    let Ok(mut conn) = ctx.pool.acquire().await else {
        return;
    };
    if let Err(error) = incidents::prune_processed_events(&mut conn, PROCESSED_EVENT_DAYS).await {
        tracing::warn!(%error, "cannot prune handled event ids");
    }
    match incidents::count_by_state(&mut conn).await {
        Ok(counts) => {
            for state in IncidentState::ALL {
                let count = counts
                    .iter()
                    .find(|(s, _)| s == state.as_str())
                    .map_or(0, |(_, c)| *c);
                ctx.metrics
                    .incidents
                    .with_label_values(&[state.as_str()])
                    .set(count);
            }
        }
        Err(error) => tracing::warn!(%error, "cannot count incidents"),
    }
}

/// Closes incidents whose approval window is over.
pub async fn expire_approvals(ctx: &Context) -> Result<usize, StoreError> {
    let mut tx = ctx.pool.begin().await?;
    let ids = incidents::past_approval_window(&mut tx).await?;
    for id in &ids {
        let Some(incident) = incidents::get(&mut tx, *id).await? else {
            continue;
        };
        if !incidents::transition(&mut tx, *id, IncidentState::Expired).await? {
            continue;
        }
        let expired = store::approvals::close_pending(&mut tx, *id, "expired").await?;
        audit::record(
            &mut tx,
            *id,
            audit::SYSTEM,
            "approval window expired",
            json!({"from": "awaiting_approval", "to": "expired", "expired_approvals": expired}),
        )
        .await?;
        let ttl = crate::executor::human(ctx.settings.approval_ttl);
        let report = Report::Closed {
            incident: IncidentRef::of(&incident),
            state: "expired".into(),
            reason: format!("no action was approved within {ttl}"),
        };
        enqueue(ctx, &mut tx, *id, &report).await?;
    }
    tx.commit().await?;
    for _ in &ids {
        ctx.metrics
            .incident_transitions
            .with_label_values(&["expired"])
            .inc();
    }
    Ok(ids.len())
}

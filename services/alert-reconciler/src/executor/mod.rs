//! Where recipes run: a Kubernetes Job each, or a local process each.
//!
//! Both give a recipe Euphrosyne's command line — the entrypoint, the recipe's `args`, then
//! `--data-file-path <data.json> --aggregator-address <addr> --redis-address <addr>` — and the
//! same environment: the recipe's `env` plus
//!
//! | variable | value |
//! |---|---|
//! | `STEADFAST_RUN_ID` | the run id: `uuid` in data.json and the result channel |
//! | `STEADFAST_RESULT_CHANNEL` | the same, named for what it is |
//! | `STEADFAST_INCIDENT_ID` | the incident id |
//! | `STEADFAST_RECIPE` | the recipe name (the `name` of its result) |
//! | `STEADFAST_RECIPE_ATTEMPT` | 1, or 2, 3 … when a debugging recipe is re-run because its answer was lost |
//! | `STEADFAST_RECIPE_KIND` | `debugging` or `action` |
//! | `STEADFAST_DATA_FILE` | the data file path |
//! | `STEADFAST_REDIS_ADDRESS` | the Redis address recipes publish to |
//! | `TRACEPARENT` | when spans are exported: the recipe's span, for a recipe that traces too (the OpenTelemetry SDKs' environment carrier) |
//!
//! so `steadfast-recipe report` needs no arguments but the result itself. An executor tells the
//! run at once when a recipe ends without answering for itself (a non-zero exit, a failed pod,
//! a deadline): see [`Exit`].

pub mod kubernetes;
pub mod local;

use std::collections::HashSet;
use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;
use steadfast_events::TraceParent;
use tokio::sync::mpsc;
use uuid::Uuid;

use crate::recipes::Recipe;

/// Where recipes find their data file in a Job (Euphrosyne's mount).
pub const JOB_DATA_FILE: &str = "/app/data.json";

/// One recipe to start.
pub struct Launch<'a> {
    pub run_id: Uuid,
    pub incident_id: Uuid,
    pub recipe: &'a Recipe,
    pub data: &'a Value,
    pub timeout: Duration,
    pub redis_address: &'a str,
    pub aggregator_address: &'a str,
    /// 1 for the first launch, 2 for the first re-run (a debugging recipe whose answer was lost).
    pub attempt: u32,
    /// The trace context of the recipe's span, when spans are exported (`TRACEPARENT`).
    pub traceparent: Option<TraceParent>,
}

impl Launch<'_> {
    /// The recipe's arguments after its entrypoint: its own, then Euphrosyne's three flags.
    pub fn arguments(&self, data_file: &str) -> Vec<String> {
        let mut args = self.recipe.args.clone();
        args.extend([
            "--data-file-path".to_owned(),
            data_file.to_owned(),
            "--aggregator-address".to_owned(),
            self.aggregator_address.to_owned(),
            "--redis-address".to_owned(),
            self.redis_address.to_owned(),
        ]);
        args
    }

    /// The recipe's environment: its own `env`, then ours (which wins).
    pub fn environment(&self, data_file: &str) -> Vec<(String, String)> {
        let mut env: Vec<(String, String)> = self
            .recipe
            .env
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let run = self.run_id.to_string();
        env.extend([
            ("STEADFAST_RUN_ID".to_owned(), run.clone()),
            ("STEADFAST_RESULT_CHANNEL".to_owned(), run),
            (
                "STEADFAST_INCIDENT_ID".to_owned(),
                self.incident_id.to_string(),
            ),
            ("STEADFAST_RECIPE".to_owned(), self.recipe.name.clone()),
            (
                "STEADFAST_RECIPE_ATTEMPT".to_owned(),
                self.attempt.to_string(),
            ),
            (
                "STEADFAST_RECIPE_KIND".to_owned(),
                self.recipe.kind.as_str().to_owned(),
            ),
            ("STEADFAST_DATA_FILE".to_owned(), data_file.to_owned()),
            (
                "STEADFAST_REDIS_ADDRESS".to_owned(),
                self.redis_address.to_owned(),
            ),
        ]);
        if let Some(traceparent) = &self.traceparent {
            env.push(("TRACEPARENT".to_owned(), traceparent.to_string()));
        }
        env
    }
}

/// How a recipe ended, as its executor saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Exit {
    /// Exited 0 / the Job completed: its result should be on the way.
    Succeeded,
    /// Exited non-zero, crashed, or its pod failed: counts as failed at once.
    Failed(String),
    /// Killed at its timeout (or the Job's deadline passed).
    TimedOut(String),
    /// A recipe launched before a failover is gone, its exit status unknown: its result, if
    /// it sent one, should be on the way (treated like [`Exit::Succeeded`]).
    Vanished(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExitEvent {
    pub recipe: String,
    /// Which launch of the recipe ended: an exit of an earlier attempt than the current one
    /// is old news.
    pub attempt: u32,
    pub exit: Exit,
}

/// A recipe's own timeout, and how much of it had passed when it was re-attached to: an
/// adopted recipe is killed when its timeout passes, counted from its launch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecipeClock {
    pub timeout: Duration,
    pub elapsed: Duration,
}

impl RecipeClock {
    pub fn left(&self) -> Duration {
        self.timeout.saturating_sub(self.elapsed)
    }
}

/// What re-attaching to a recipe launched before a failover gives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attached {
    /// Its end will be reported as an [`ExitEvent`].
    Watching,
    /// It cannot be seen from here (a process on another host): only its result or the run's
    /// deadline will tell; the reason says why.
    Unwatchable(String),
}

pub type ExitSender = mpsc::UnboundedSender<ExitEvent>;

/// Why a recipe could not be started.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    /// The Kubernetes executor runs images; this recipe names none.
    #[error("recipe `{recipe}` has no image")]
    NoImage { recipe: String },
    /// The local executor has no program to start.
    #[error("empty entrypoint")]
    EmptyEntrypoint,
    /// A file of the run (its directory, data file or log) or the program itself failed.
    #[error("cannot {action} `{}`: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    /// The API server refused the request (a 4xx other than 429): final for this recipe.
    #[error("{request}: {message}")]
    Refused { request: String, message: String },
    /// The API server did not answer, or answered 429/5xx; worth trying again.
    #[error("{request}: {source}")]
    Unavailable {
        request: String,
        source: Box<kube::Error>,
    },
}

impl ExecError {
    /// Whether launching again may succeed (the backend was unavailable), rather than the
    /// recipe failing for good.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Unavailable { .. })
    }
}

/// The executor chosen by configuration.
#[derive(Clone)]
pub enum Executor {
    Local(local::LocalExecutor),
    Kubernetes(kubernetes::KubeExecutor),
}

impl Executor {
    pub fn name(&self) -> &'static str {
        match self {
            Self::Local(_) => "local",
            Self::Kubernetes(_) => "kubernetes",
        }
    }

    /// Starts a recipe and watches it; returns its handle (a process id or a Job name).
    pub async fn launch(
        &self,
        launch: &Launch<'_>,
        exits: ExitSender,
    ) -> Result<String, ExecError> {
        match self {
            Self::Local(local) => local.launch(launch, exits).await,
            Self::Kubernetes(kube) => kube.launch(launch, exits).await,
        }
    }

    /// Watches a recipe launched before a restart (by this process or another replica), when
    /// the backend allows it.
    pub async fn attach(
        &self,
        run_id: Uuid,
        recipe: &Recipe,
        handle: Option<&str>,
        attempt: u32,
        clock: RecipeClock,
        exits: ExitSender,
    ) -> Result<Attached, ExecError> {
        match self {
            Self::Local(local) => Ok(local.attach(run_id, recipe, handle, attempt, clock, exits)),
            Self::Kubernetes(kube) => {
                kube.attach(run_id, recipe, exits).await?;
                Ok(Attached::Watching)
            }
        }
    }

    /// Stops every recipe of the run still going (its incident was resolved, or it timed out).
    pub async fn cancel(&self, run_id: Uuid) {
        match self {
            Self::Local(local) => local.cancel(run_id),
            Self::Kubernetes(kube) => kube.cancel(run_id).await,
        }
    }

    /// Removes what the run left behind (data files, Jobs, ConfigMaps).
    pub async fn cleanup(&self, run_id: Uuid) {
        match self {
            Self::Local(local) => local.cleanup(run_id).await,
            Self::Kubernetes(kube) => kube.cleanup(run_id).await,
        }
    }

    /// Removes leftovers of runs that are no longer running (after a crash).
    pub async fn collect_garbage(&self, running: &HashSet<Uuid>) {
        match self {
            Self::Local(local) => local.collect_garbage(running).await,
            Self::Kubernetes(kube) => kube.collect_garbage(running).await,
        }
    }
}

/// `5m`, `90s`, `1h2m`: durations in messages people read.
pub fn human(duration: Duration) -> String {
    steadfast_messaging::topology::delay_label(duration)
}

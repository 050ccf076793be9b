//! What a run acts on and reads, whoever started it: the stack the suite started itself
//! ([`crate::local`]) or a deployment's ([`crate::deployment`]), and what must be undone at
//! the end.

use std::path::PathBuf;

use crate::infra::{Databases, Management};
use crate::load::Targets;
use crate::private::PrivateInfra;
use crate::proxy::BrokerProxies;
use crate::recipe::RecipeDef;
use crate::stack::Stack;

/// The system under test. Its fields drop in order: the stack's processes die first, then
/// the cleanup runs, then the run's own infrastructure stops.
pub struct System {
    pub stack: Stack,
    /// The services' `STEADFAST_NAMESPACE`.
    pub namespace: String,
    /// The broker's `amqp://` URLs (the probe consumes there).
    pub amqp_urls: Vec<String>,
    pub management: Management,
    /// How `management` logs in (what a deployment file written for the stack names).
    pub management_login: ManagementLogin,
    /// Where the load goes.
    pub targets: Targets,
    pub fakes: Fakes,
    pub fleet_api: String,
    /// The adapter's HyperFleet queue, `<topic>-<subscription_id>`.
    pub adapter_queue: String,
    pub evidence: Evidence,
    /// Bearer token of the reconcilers' API.
    pub reconciler_token: String,
    /// The recipes the reconcilers run, as the suite planned them (empty for a deployment: it
    /// runs its own, whose results the suite cannot predict).
    pub recipes: Vec<RecipeDef>,
    /// The reconciler replicas' names in the stack.
    pub reconcilers: Vec<String>,
    /// The services' broker proxies (empty unless `proxy` faults are selected).
    pub proxies: BrokerProxies,
    /// Dropped before `private` (fields drop in order): the cleanup needs the infrastructure.
    pub guard: CleanupGuard,
    /// The run's own Redis, PostgreSQL and RabbitMQ, if it has them.
    pub private: Option<PrivateInfra>,
    /// Whether this is a deployment's (no poison, no sabotage: the suite does not own it).
    pub deployed: bool,
    /// What `--keep` leaves behind, for the message that says so.
    pub kept: String,
}

/// The management API's address and credentials.
#[derive(Debug, Clone)]
pub struct ManagementLogin {
    pub url: String,
    pub user: String,
    pub password: String,
}

/// Base URLs of the stand-ins for outside systems (also the `fakes` of a deployment file).
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct Fakes {
    /// The fake GitLab the herder's GitLab instance points at (the load seeds its jobs).
    pub gitlab: String,
    /// The fake Kubernetes API, if the adapter uses one (`fake-5xx` then fails it too).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kube: Option<String>,
    /// The fake Webex the reconciler reports to.
    pub webex: String,
}

/// The databases the consumers record in: the evidence that events reached them.
#[derive(Debug, Clone)]
pub struct Evidence {
    pub receiver_db: String,
    pub herder_db: String,
    pub reconciler_db: String,
}

/// What must be undone at the end, whatever happens: the databases, every queue and exchange
/// of the run's prefix, and the alive file (which ends `hang` recipes).
#[derive(Clone)]
pub struct Cleanup {
    /// The run's own databases on their server, dropped (none against a deployment).
    pub databases: Option<(Databases, Vec<String>)>,
    pub management: Management,
    /// Queues and exchanges whose names start with it are deleted (a deployment's: the
    /// probe queue's own name).
    pub prefix: String,
    pub alive_file: PathBuf,
}

impl Cleanup {
    pub async fn run(&self) -> Vec<String> {
        let mut problems = Vec::new();
        let _ = std::fs::remove_file(&self.alive_file);
        if let Some((server, names)) = &self.databases {
            for name in names {
                if let Err(error) = server.drop_database(name).await {
                    problems.push(error.to_string());
                }
            }
        }
        if let Err(error) = self.management.delete_prefixed(&self.prefix).await {
            problems.push(error.to_string());
        }
        problems
    }
}

/// Runs [`Cleanup`] on drop unless disarmed: a panic or an early return still drops the
/// databases and queues. Drop cannot await, so it runs the cleanup on a thread of its own with
/// a runtime of its own (the stack's children die first: they are killed on drop).
pub struct CleanupGuard(pub Option<Cleanup>);

impl CleanupGuard {
    pub fn disarm(&mut self) -> Option<Cleanup> {
        self.0.take()
    }
}

impl Drop for CleanupGuard {
    fn drop(&mut self) {
        if let Some(cleanup) = self.0.take() {
            let _ = std::thread::spawn(move || {
                if let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    runtime.block_on(cleanup.run());
                }
            })
            .join();
        }
    }
}

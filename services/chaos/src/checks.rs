//! The fleet load, transient job chains, poison on purpose and sabotage of a run: started and
//! evaluated from here, so [`crate::run`] only calls in at a few points (start, the fault loop,
//! evaluation, the report).

use std::collections::{BTreeSet, HashSet};
use std::sync::{Arc, Mutex};

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::cli::RunArgs;
use crate::faults::PlannedFault;
use crate::fleet::{self, FleetLog};
use crate::infra::Management;
use crate::invariants::{self, Backlog, ConsumerSeen, Verdict};
use crate::load::{self, Clock, Recorder, Targets};
use crate::observe::{self, Observer};
use crate::poison::{self, Parked, Poison};
use crate::sabotage::{self, SabotageKind, SabotageLog, SabotageRecord};
use crate::stack::Stack;

/// The adapter's process name in the stack.
const ADAPTER: &str = "adapter";

/// Where the extra parts reach the stack.
pub struct Endpoints {
    pub namespace: String,
    /// The adapter's HyperFleet queue, `<topic>-<subscription_id>`.
    pub adapter_queue: String,
    pub fleet_api: String,
    pub herder_db: String,
    pub reconciler_db: String,
    /// The suite's own queue bound to every event (not work: left out of the backlog).
    pub probe_queue: String,
    /// The run's tag (its clusters' name prefix).
    pub run_tag: String,
}

/// The extra parts of one run.
pub struct Checks {
    endpoints: Endpoints,
    api: Management,
    fleet: FleetLog,
    poison: Arc<Mutex<Vec<Poison>>>,
    /// What the parking lots held when the run started (a deployment's; empty for a stack of
    /// the suite's own): not the run's doing.
    parked_before: Parked,
    sabotage: SabotageLog,
    stop_adapter_at: Option<f64>,
    adapter_stopped: bool,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

/// What the tasks need.
pub struct Start<'a> {
    pub args: &'a RunArgs,
    /// Whether the suite owns the stack: against a deployment no poison is injected (it would
    /// stay in the deployment's parking lots) and what is parked before the run is not judged.
    pub owned: bool,
    pub seed: u64,
    pub clock: Clock,
    pub targets: Targets,
    pub recorder: Recorder,
    pub observer: Observer,
    /// Cancelled at the load's end.
    pub stop_load: CancellationToken,
    /// Cancelled at the quiet period's end: no more attempts of retry chains are hooked.
    pub stop_chains: CancellationToken,
    /// Cancelled once the last events sent have reached the probe, after `stop_chains`.
    pub stop_observing: CancellationToken,
    /// The run's management API client (every node of a cluster).
    pub management: &'a Management,
}

impl Checks {
    /// Starts the fleet load and watcher, the chain follower and the sabotage, and injects
    /// the poison; problems are returned as warnings (the run goes on without that part).
    pub async fn start(endpoints: Endpoints, start: Start<'_>) -> (Self, Vec<String>) {
        let mut warnings = Vec::new();
        let api = start.management.clone();
        let fleet = FleetLog::default();
        let kinds = sabotage::expand(&start.args.sabotage);
        let sabotage_log = SabotageLog::default();
        let mut tasks = vec![
            tokio::spawn(fleet::load(
                endpoints.fleet_api.clone(),
                start.targets.run_tag.clone(),
                start.args.clusters,
                start.seed,
                start.clock,
                start.recorder.clone(),
                fleet.clone(),
                start.stop_load.clone(),
            )),
            tokio::spawn(fleet::watch(
                endpoints.fleet_api.clone(),
                start.clock,
                fleet.clone(),
                start.stop_observing.clone(),
            )),
            tokio::spawn(load::chains(
                start.targets.clone(),
                start.seed,
                start.clock,
                start.recorder.clone(),
                start.observer.clone(),
                start.stop_chains.clone(),
            )),
        ];
        if !kinds.is_empty() {
            let names: Vec<&str> = kinds.iter().map(|k| k.as_str()).collect();
            eprintln!(
                "[chaos] sabotage on purpose: {} (this run must FAIL)",
                names.join(", ")
            );
            tasks.push(tokio::spawn(sabotage::run(
                kinds.clone(),
                sabotage::Context {
                    api: api.clone(),
                    namespace: endpoints.namespace.clone(),
                    reconciler_db: endpoints.reconciler_db.clone(),
                    clock: start.clock,
                    duration: start.args.duration,
                    log: sabotage_log.clone(),
                },
                start.stop_load.clone(),
            )));
        }
        let (injected, parked_before) = if start.owned {
            let (injected, errors) = poison::inject(
                &api,
                &endpoints.namespace,
                &endpoints.adapter_queue,
                start.clock.now(),
            )
            .await;
            warnings.extend(errors.iter().map(|e| format!("poison: {e}")));
            (injected, Parked::default())
        } else {
            let before = api
                .parked(&endpoints.namespace)
                .await
                .unwrap_or_else(|error| {
                    warnings.push(format!("parked queues before the run: {error}"));
                    Parked::default()
                });
            (Vec::new(), before)
        };
        let checks = Self {
            stop_adapter_at: sabotage::stop_adapter_at(&kinds, start.args.duration),
            endpoints,
            api,
            fleet,
            poison: Arc::new(Mutex::new(injected)),
            parked_before,
            sabotage: sabotage_log,
            adapter_stopped: false,
            tasks: Mutex::new(tasks),
        };
        (checks, warnings)
    }

    /// Removes the faults scheduled after `stop-adapter`: a kill of the adapter would restart
    /// it, and any fault's recovery waits for the whole stack to be ready, which it never is
    /// again.
    pub fn filter_schedule(&self, schedule: &mut Vec<PlannedFault>) {
        if let Some(at) = self.stop_adapter_at {
            schedule.retain(|f| f.at < at);
        }
    }

    /// `stop-adapter`, once its time has come: the adapter is killed and not restarted.
    pub async fn maybe_stop_adapter(&mut self, stack: &mut Stack, now: f64) {
        let Some(at) = self.stop_adapter_at else {
            return;
        };
        if self.adapter_stopped || now < at {
            return;
        }
        self.adapter_stopped = true;
        let error = stack.kill(ADAPTER).await.err().map(|e| e.to_string());
        self.sabotage.push(SabotageRecord {
            kind: SabotageKind::StopAdapter,
            at: now,
            what: "adapter stopped for good (kill -9, no restart)".into(),
            error,
        });
    }

    /// Waits for the tasks (after the quiet period's end was signalled).
    pub async fn finish(&self) {
        let tasks: Vec<JoinHandle<()>> = self
            .tasks
            .lock()
            .map(|mut t| t.drain(..).collect())
            .unwrap_or_default();
        for task in tasks {
            let _ = task.await;
        }
    }

    /// What the consumers recorded themselves.
    pub async fn consumers(&self) -> ConsumerSeen {
        ConsumerSeen {
            herder_jobs: observe::herder_jobs(&self.endpoints.herder_db)
                .await
                .map_err(|e| e.to_string()),
            reconciler_events: observe::reconciler_events(&self.endpoints.reconciler_db)
                .await
                .map_err(|e| e.to_string()),
        }
    }

    /// Invariant (d), on a fresh listing of the clusters.
    pub async fn fleet_verdict(&self, backlog: &Backlog) -> Verdict {
        match fleet::list(&fleet::http(), &self.endpoints.fleet_api).await {
            Ok(listed) => {
                // A deployment's fleet-api also lists clusters that are not the run's.
                let ours: Vec<fleet::ClusterObs> = listed
                    .into_iter()
                    .filter(|c| fleet::is_of_run(c, &self.endpoints.run_tag))
                    .collect();
                invariants::fleet_reconciled(&self.fleet.plans(), &ours, backlog)
            }
            Err(error) => Verdict::unreadable(
                invariants::FLEET_RECONCILED,
                format!("cannot list the clusters: {error}"),
            ),
        }
    }

    /// What the run's work queues still hold (`None` if the management API cannot say).
    pub async fn backlog(&self) -> Option<Backlog> {
        let queues = self.api.queues(&self.endpoints.namespace).await.ok()?;
        Some(Backlog::of(
            queues
                .into_iter()
                .map(|q| (q.name, q.messages, q.consumers)),
            &self.endpoints.probe_queue,
        ))
    }

    /// The parked queues; on an error, an unreadable queue that fails invariant (e).
    pub async fn parked(&self, warnings: &mut Vec<String>) -> Parked {
        match self.api.parked(&self.endpoints.namespace).await {
            Ok(parked) => parked.without(&self.parked_before),
            Err(error) => {
                warnings.push(format!("parked queues: {error}"));
                Parked {
                    messages: Vec::new(),
                    depths: vec![(format!("{}.* (unreadable)", self.endpoints.namespace), 1)],
                }
            }
        }
    }

    pub fn poison(&self) -> Vec<Poison> {
        self.poison
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Seconds from each cluster change to `Reconciled=True`.
    pub fn fleet_latencies(&self) -> Vec<f64> {
        self.fleet.latencies()
    }

    /// The sabotage carried out, and the incidents whose analysis `drop-reports` deleted.
    pub async fn sabotage_report(&self) -> Vec<SabotageRecord> {
        let mut records = self.sabotage.records();
        if let Some(record) = records
            .iter_mut()
            .find(|r| r.kind == SabotageKind::DropReports && r.error.is_none())
        {
            match sabotage::dropped_reports(&self.endpoints.reconciler_db).await {
                Ok(incidents) => {
                    let unique: BTreeSet<String> = incidents.into_iter().collect();
                    let list: Vec<String> = unique.into_iter().collect();
                    record.what = format!(
                        "{}; analyses deleted for incident(s) [{}]",
                        record.what,
                        list.join(", ")
                    );
                }
                Err(error) => record.error = Some(error.to_string()),
            }
        }
        records
    }

    /// Observer problems of the fleet watcher, for the warnings.
    pub fn errors(&self) -> Vec<String> {
        let mut seen = HashSet::new();
        self.fleet
            .errors()
            .into_iter()
            .filter(|e| seen.insert(e.clone()))
            .take(5)
            .collect()
    }
}

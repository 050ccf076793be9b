//! One run: isolate, start, load, break, wait for quiet, check, report, clean up.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rand::Rng;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::checks::{Checks, Endpoints, Start};
use crate::cli::RunArgs;
use crate::faults::{self, FaultRecord};
use crate::infra::InfraError;
use crate::invariants::{self, Backlog, Verdict};
use crate::load::{self, Clock, Flow, JobKind, Recorder};
use crate::observe::{self, Observer, Sources};
use crate::recipe;
use crate::report::{Latency, Report};
use crate::stack::{Stack, StackError};
use crate::system::System;

/// How often the quiet period re-checks the invariants.
const QUIET_POLL: Duration = Duration::from_secs(2);
/// How long the last attempts hooked by the retry chains get after the quiet period.
const CHAIN_DRAIN: Duration = Duration::from_secs(30);
/// How long the stack may take to be ready again after a fault.
const RECOVERY_DEADLINE: Duration = Duration::from_secs(90);

/// Why a run could not be carried out (as opposed to a run whose invariants fail).
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("binary {} not found: build it first (scripts/chaos.sh builds every binary)", .0.display())]
    MissingBinary(PathBuf),
    #[error("cannot write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot find this program's path: {0}")]
    CurrentExe(#[source] std::io::Error),
    #[error(transparent)]
    Infra(#[from] InfraError),
    #[error(transparent)]
    Stack(#[from] StackError),
    #[error(transparent)]
    Private(#[from] crate::private::PrivateError),
    #[error(transparent)]
    Proxy(#[from] crate::proxy::ProxyError),
    #[error(transparent)]
    Deployment(#[from] crate::deployment::DeploymentError),
    #[error("{0}")]
    Refused(String),
    #[error("interrupted while starting the stack")]
    Interrupted,
}

/// Cancelled on SIGINT or SIGTERM.
pub(crate) fn interrupt_token() -> CancellationToken {
    let token = CancellationToken::new();
    let cancel = token.clone();
    tokio::spawn(async move {
        let Ok(mut terminate) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        else {
            return;
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = terminate.recv() => {}
        }
        eprintln!("[chaos] interrupted: stopping the load and tearing down");
        cancel.cancel();
    });
    token
}

pub(crate) fn write(path: &Path, text: &str) -> Result<(), RunError> {
    std::fs::write(path, text).map_err(|source| RunError::Write {
        path: path.to_owned(),
        source,
    })
}

pub(crate) fn say(message: &str) {
    eprintln!("[chaos] {message}");
}

/// Carries out a run and returns its report.
pub async fn run(args: RunArgs) -> Result<Report, RunError> {
    let interrupt = interrupt_token();
    let seed = args.seed.unwrap_or_else(|| rand::rng().random());
    let hex: String = format!("{:08x}", rand::rng().random::<u32>());
    // Unique per run: the local stack's namespace; against a deployment, what tells the run's
    // alerts, clusters and keys from everyone else's.
    let run_tag = format!("chaos-{hex}");
    let run_name = format!("{}-{hex}", chrono::Utc::now().format("%Y%m%d-%H%M%S"));
    say(&format!(
        "run {run_name}: seed {seed} (replay with --seed {seed}), tag {run_tag}"
    ));
    let dir = prepare_dir(&args.work_dir, &run_name)?;

    let mut system = match &args.target {
        None => crate::local::start(&args, &dir, &hex, &run_tag, &interrupt, None).await?,
        Some(path) => crate::deployment::attach(&args, path, &dir, &run_tag).await?,
    };
    let namespace = system.namespace.clone();
    say(&format!(
        "{} ready (namespace {namespace}); logs in {}",
        if system.deployed {
            "deployment"
        } else {
            "stack"
        },
        dir.display()
    ));

    // The probe: every event on `<ns>.webhooks`, bound before any load.
    let probe_queue = probe_queue(&namespace, &run_tag);
    system
        .management
        .declare_bound_queue(&probe_queue, &format!("{namespace}.webhooks"), "#")
        .await?;

    let clock = Clock(Instant::now());
    let recorder = Recorder::default();
    let observer = Observer::default();
    let stop_observing = CancellationToken::new();
    let stop_chains = CancellationToken::new();
    let probing = tokio::spawn(crate::probe::run(
        system.amqp_urls.clone(),
        probe_queue.clone(),
        observer.clone(),
        clock,
        stop_observing.clone(),
    ));
    let observing = tokio::spawn({
        let observer = observer.clone();
        let sources = Sources {
            fake_gitlab: system.fakes.gitlab.clone(),
            fake_webex: system.fakes.webex.clone(),
            first_job_id: system.targets.first_job_id,
        };
        let stop = stop_observing.clone();
        async move { observer.run(sources, clock, stop).await }
    });

    let targets = system.targets.clone();
    let stop_load = CancellationToken::new();
    let duration = args.duration.as_secs_f64();
    say(&format!(
        "load for {duration:.0}s: {}/s GitLab hooks, {}/s alerts over {} groups",
        args.gitlab_rate, args.alert_rate, args.alert_groups
    ));
    let load_tasks = [
        tokio::spawn(load::gitlab(
            targets.clone(),
            args.gitlab_rate,
            seed,
            clock,
            recorder.clone(),
            stop_load.clone(),
        )),
        tokio::spawn(load::alerts(
            targets.clone(),
            args.alert_rate,
            args.alert_groups,
            duration * 0.8,
            clock,
            recorder.clone(),
            stop_load.clone(),
        )),
    ];
    // The fleet load, job chains, poison on purpose and sabotage (crate::checks).
    let (mut checks, check_warnings) = Checks::start(
        Endpoints {
            namespace: namespace.clone(),
            adapter_queue: system.adapter_queue.clone(),
            fleet_api: system.fleet_api.clone(),
            herder_db: system.evidence.herder_db.clone(),
            reconciler_db: system.evidence.reconciler_db.clone(),
            probe_queue: probe_queue.clone(),
            run_tag: run_tag.clone(),
        },
        Start {
            args: &args,
            owned: !system.deployed,
            management: &system.management,
            seed,
            clock,
            targets: targets.clone(),
            recorder: recorder.clone(),
            observer: observer.clone(),
            stop_load: stop_load.clone(),
            stop_chains: stop_chains.clone(),
            stop_observing: stop_observing.clone(),
        },
    )
    .await;

    // Faults, in the schedule's order, until the load's end.
    let mut schedule = faults::schedule(seed, args.duration, args.fault_interval, &args.faults);
    checks.filter_schedule(&mut schedule);
    // A deployment may have fewer replicas than the rotation names.
    schedule.retain(|f| match &f.target {
        faults::Target::Process(name) => system.stack.spec(name).is_some(),
        _ => true,
    });
    say(&format!("{} fault(s) scheduled", schedule.len()));
    let reconcilers = system.reconcilers.clone();
    let mut records: Vec<FaultRecord> = Vec::new();
    let mut warnings: Vec<String> = check_warnings;
    let load_end = clock.0 + args.duration;
    let mut next = schedule.iter().peekable();
    let stack = &mut system.stack;
    let mut fault_env = faults::FaultEnv::new(
        seed,
        system.private.as_mut(),
        &system.proxies,
        system.fakes.clone(),
    );
    loop {
        let wake = match next.peek() {
            Some(f) => (clock.0 + Duration::from_secs_f64(f.at)).min(load_end),
            None => load_end,
        };
        tokio::select! {
            () = tokio::time::sleep_until(wake.min(Instant::now() + Duration::from_secs(1))) => {}
            () = interrupt.cancelled() => break,
        }
        for exit in stack.reap_unexpected().await {
            say(&format!("unexpected: {exit}"));
        }
        if Instant::now() >= load_end {
            break;
        }
        checks.maybe_stop_adapter(stack, clock.now()).await;
        if let Some(fault) = next.next_if(|f| clock.now() >= f.at) {
            let at = clock.now();
            let record = faults::inject(
                stack,
                fault,
                at,
                &reconcilers,
                RECOVERY_DEADLINE,
                &mut fault_env,
            )
            .await;
            say(&format!(
                "{:.1}s: {} {} → {}",
                at,
                record.kind.as_str(),
                record.target,
                match (&record.recovery, &record.error) {
                    (_, Some(e)) => format!("FAILED: {e}"),
                    (Some(r), None) => format!("ready again after {r:.1}s"),
                    (None, None) => "-".into(),
                }
            ));
            records.push(record);
        }
    }
    stop_load.cancel();
    for task in load_tasks {
        let _ = task.await;
    }
    let load_secs = clock.now();
    say(&format!(
        "load stopped after {load_secs:.0}s; quiet period (at most {:?})",
        args.quiet_timeout
    ));

    // The quiet period: re-check until everything holds. It ends after --quiet-timeout without
    // progress (the work queues' backlog not shrinking, no fewer problems), at most after
    // --quiet-max. Then the retry chains stop being followed and the last attempts hooked get
    // a short drain of their own, so a hook sent at the very end is not mistaken for a loss.
    drop(fault_env);
    let evaluation = Evaluation {
        recorder: &recorder,
        observer: &observer,
        receiver_db: &system.evidence.receiver_db,
        recipes: &system.recipes,
        reconcilers: &reconcilers,
        reconciler_token: &system.reconciler_token,
        run_tag: &run_tag,
        checks: &checks,
    };
    let patience = Patience {
        without_progress: args.quiet_timeout,
        at_most: args.quiet_max,
    };
    let (verdicts, _) = evaluation
        .quiet_period(stack, &mut warnings, &interrupt, patience)
        .await;
    if !verdicts.iter().all(|v| v.holds) && !interrupt.is_cancelled() {
        say("quiet period over: no more retry chains followed; draining the last hooks");
        stop_chains.cancel();
        let drain = Patience {
            without_progress: CHAIN_DRAIN,
            at_most: CHAIN_DRAIN,
        };
        evaluation
            .quiet_period(stack, &mut warnings, &interrupt, drain)
            .await;
    }
    stop_chains.cancel();
    stop_observing.cancel();
    let _ = observing.await;
    let _ = probing.await;
    checks.finish().await;
    // The observer's last look may have seen more: evaluate once more on it.
    let backlog = checks.backlog().await.unwrap_or_default();
    let verdicts = evaluation.verdicts(stack, &mut warnings, &backlog).await;
    let sabotage = checks.sabotage_report().await;
    warnings.extend(checks.errors());
    // Asked while the reconcilers still run.
    let ours = run_incidents(&system, &run_tag).await;

    // What the broker holds at the end (depth per queue of the run), for a failed invariant's
    // post-mortem: the run's own broker is deleted with it.
    if let Ok(queues) = system.management.queue_report(&namespace).await {
        let _ = std::fs::write(dir.join("queues.tsv"), queues);
    }
    if !system.deployed {
        say("stopping the stack");
    }
    system.stack.shutdown().await;
    match system.guard.disarm() {
        Some(cleanup) => warnings.extend(cleanup.run().await),
        None => say(&format!("--keep: {} kept", system.kept)),
    }
    if let Some(mut owned) = system.private.take() {
        say("stopping the run's own Redis, PostgreSQL and RabbitMQ");
        // Blocking (signals, the cluster script): off the async workers' backs.
        warnings.extend(tokio::task::block_in_place(|| owned.stop()));
    }

    let mut observed = observer.snapshot();
    // A deployment's chat holds other runs' analyses too: only this run's incidents count.
    if let Some(ours) = &ours {
        observed.analyses.retain(|id, _| ours.contains(id));
        observed.analysis_seen.retain(|id, _| ours.contains(id));
    }
    warnings.extend(observed.errors.iter().take(20).cloned());
    warnings.sort();
    warnings.dedup();
    let deliveries = recorder.deliveries();
    let jobs = recorder.jobs();
    // Lost: accepted and without its effect, while nothing is queued that could still bring
    // it; what the queues still hold work for is counted as still queued.
    let mut lost = verdicts
        .first()
        .map(|v| v.violations.len())
        .unwrap_or_default();
    if backlog.of_consumer(invariants::HERDER) == 0 {
        lost += jobs
            .iter()
            .filter(|j| j.kind == JobKind::Transient && j.answered)
            .filter(|j| observed.retries.get(&j.job_id).copied().unwrap_or(0) == 0)
            .count();
    }
    let still_queued = verdicts.iter().map(|v| v.pending.len()).sum();
    let duplicate_effects = observed
        .retries
        .values()
        .map(|n| n.saturating_sub(1) as usize)
        .sum::<usize>()
        + observed
            .analyses
            .values()
            .map(|a| a.len().saturating_sub(1))
            .sum::<usize>();

    let mut latency = std::collections::BTreeMap::new();
    if let Some(l) = Latency::of(
        jobs.iter()
            .filter(|j| j.kind == JobKind::Transient)
            .filter_map(|j| observed.retry_seen.get(&j.job_id).map(|t| t - j.sent_at))
            .collect(),
    ) {
        latency.insert(Flow::Gitlab, l);
    }
    let mut first_firing: HashMap<usize, f64> = HashMap::new();
    for alert in recorder.alerts().iter().filter(|a| a.firing && a.answered) {
        let t = first_firing.entry(alert.group).or_insert(alert.sent_at);
        *t = t.min(alert.sent_at);
    }
    if let Some(l) = Latency::of(
        observed
            .analysis_seen
            .iter()
            .filter_map(|(incident, seen)| {
                let group = observed.analysis_group.get(incident)?;
                Some(seen - first_firing.get(group)?)
            })
            .collect(),
    ) {
        latency.insert(Flow::Alert, l);
    }
    if let Some(l) = Latency::of(checks.fleet_latencies()) {
        latency.insert(Flow::Fleet, l);
    }

    let report = Report {
        run: run_name,
        seed,
        namespace,
        duration_secs: load_secs,
        interrupted: interrupt.is_cancelled(),
        load: Report::load_of(&deliveries),
        faults_by_kind: Report::faults_summary(&records),
        faults: records,
        lost,
        still_queued,
        backlog: backlog.queues.clone(),
        unconsumed: backlog.unconsumed.clone(),
        duplicate_effects,
        redelivered_events: redelivered(&deliveries, &observed.probe_count),
        latency,
        invariants: verdicts,
        sabotage,
        warnings,
        log_dir: dir.display().to_string(),
    };
    if let Err(error) = std::fs::write(
        dir.join("report.json"),
        serde_json::to_string_pretty(&report).unwrap_or_default(),
    ) {
        say(&format!("cannot write report.json: {error}"));
    }
    Ok(report)
}

/// `<work_dir>/<name>`, absolute and created, with the file whose removal ends `hang` recipes.
pub(crate) fn prepare_dir(work_dir: &Path, name: &str) -> Result<PathBuf, RunError> {
    let dir = std::path::absolute(work_dir.join(name)).map_err(|source| RunError::Write {
        path: work_dir.to_owned(),
        source,
    })?;
    std::fs::create_dir_all(&dir).map_err(|source| RunError::Write {
        path: dir.clone(),
        source,
    })?;
    write(
        &dir.join("alive"),
        "this run is alive; `hang` recipes return once it is gone\n",
    )?;
    Ok(dir)
}

/// The ids of the run's incidents (`None` if no reconciler answers: then every analysis seen
/// is counted).
async fn run_incidents(
    system: &System,
    run_tag: &str,
) -> Option<std::collections::HashSet<String>> {
    let bases: Vec<String> = system
        .reconcilers
        .iter()
        .filter_map(|n| system.stack.spec(n).map(|s| s.http.clone()))
        .collect();
    observe::incidents(&bases, &system.reconciler_token, run_tag)
        .await
        .ok()
        .map(|incidents| incidents.into_iter().map(|i| i.id).collect())
}

/// The suite's probe queue: bound to every event of the namespace, unique to the run (a
/// deployment may see several runs, one after the other).
fn probe_queue(namespace: &str, run_tag: &str) -> String {
    format!("{namespace}.{run_tag}.probe")
}

/// Events that reached the exchange more often than the receivers answered 2xx for them
/// (at-least-once delivery at work: e.g. a spooled event republished after its confirm was
/// lost). Repeated webhooks (GitLab's resend, Alertmanager's repeats) are not counted.
fn redelivered(deliveries: &[load::Delivery], seen: &HashMap<String, u64>) -> u64 {
    let mut answered: HashMap<&str, u64> = HashMap::new();
    for d in deliveries.iter().filter(|d| d.answered_2xx()) {
        for id in &d.event_ids {
            *answered.entry(id.as_str()).or_default() += 1;
        }
    }
    seen.iter()
        .map(|(id, n)| n.saturating_sub(answered.get(id.as_str()).copied().unwrap_or(0)))
        .sum()
}

/// How long the quiet period waits.
#[derive(Debug, Clone, Copy)]
struct Patience {
    /// Ends after this long without progress (backlog not shrinking, no fewer problems).
    without_progress: Duration,
    /// Ends after this long in any case.
    at_most: Duration,
}

/// What the invariants are evaluated on.
#[derive(Clone, Copy)]
struct Evaluation<'a> {
    recorder: &'a Recorder,
    observer: &'a Observer,
    /// The receivers' database (its spool must be empty).
    receiver_db: &'a str,
    recipes: &'a [recipe::RecipeDef],
    reconcilers: &'a [String],
    reconciler_token: &'a str,
    run_tag: &'a str,
    checks: &'a Checks,
}

impl Evaluation<'_> {
    /// Re-checks every [`QUIET_POLL`] until everything holds, the run is interrupted or
    /// `patience` runs out; returns the last verdicts and the backlog they were judged with.
    async fn quiet_period(
        &self,
        stack: &mut Stack,
        warnings: &mut Vec<String>,
        interrupt: &CancellationToken,
        patience: Patience,
    ) -> (Vec<Verdict>, Backlog) {
        let start = Instant::now();
        let mut last_progress = start;
        let mut best: Option<(u64, usize)> = None;
        loop {
            for exit in stack.reap_unexpected().await {
                say(&format!("unexpected: {exit}"));
            }
            let backlog = self.checks.backlog().await.unwrap_or_default();
            let verdicts = self.verdicts(stack, warnings, &backlog).await;
            if verdicts.iter().all(|v| v.holds) || interrupt.is_cancelled() {
                return (verdicts, backlog);
            }
            let problems: usize = verdicts
                .iter()
                .map(|v| v.violations.len() + v.pending.len())
                .sum();
            let now = Instant::now();
            let progressed = match best {
                None => true,
                Some((queued, open)) => backlog.total() < queued || problems < open,
            };
            if progressed {
                last_progress = now;
                let (queued, open) = best.unwrap_or((u64::MAX, usize::MAX));
                best = Some((queued.min(backlog.total()), open.min(problems)));
            }
            if now >= last_progress + patience.without_progress || now >= start + patience.at_most {
                if backlog.total() > 0 {
                    say(&format!(
                        "quiet period ends with {} message(s) still queued",
                        backlog.total()
                    ));
                }
                return (verdicts, backlog);
            }
            tokio::select! {
                () = tokio::time::sleep(QUIET_POLL) => {}
                () = interrupt.cancelled() => {}
            }
        }
    }

    /// Every invariant on what is recorded and observed right now.
    async fn verdicts(
        &self,
        stack: &Stack,
        warnings: &mut Vec<String>,
        backlog: &Backlog,
    ) -> Vec<Verdict> {
        let (recorder, observer, checks) = (self.recorder, self.observer, self.checks);
        let observed = observer.snapshot();
        let seen = observed.probe.keys().cloned().collect();
        let jobs = recorder.jobs();
        let mut verdicts = vec![
            invariants::webhooks_delivered(
                &recorder.deliveries(),
                &seen,
                &jobs,
                &checks.consumers().await,
                backlog,
            ),
            invariants::jobs_retried_once(&jobs, &observed.retries, backlog),
        ];
        let bases: Vec<String> = self
            .reconcilers
            .iter()
            .filter_map(|n| stack.spec(n).map(|s| s.http.clone()))
            .collect();
        match observe::incidents(&bases, self.reconciler_token, self.run_tag).await {
            Ok(incidents) => verdicts.push(invariants::alerts_one_incident(
                &recorder.alerts(),
                &incidents,
                &observed.analyses,
                self.recipes,
            )),
            Err(error) => verdicts.push(Verdict::unreadable(
                invariants::ALERTS_ONE_INCIDENT,
                format!("cannot list incidents: {error}"),
            )),
        }
        verdicts.push(checks.fleet_verdict(backlog).await);
        let parked = checks.parked(warnings).await;
        let spool = match crate::infra::count_rows(self.receiver_db, "webhook_spool").await {
            Ok(n) => n,
            Err(error) => {
                warnings.push(format!("spool: {error}"));
                -1
            }
        };
        verdicts.push(invariants::quiet_state(
            &parked,
            &checks.poison(),
            spool,
            &stack.not_ready().await,
            &stack.unexpected_exits,
        ));
        verdicts
    }
}

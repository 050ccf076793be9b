//! Faults on a schedule derived from the seed, so a run can be replayed. One at a time: a
//! fault is injected, held, undone, and the stack waited for before the next one starts.
//!
//! * `kill` — `kill -9` of one service process, restarted at once with the same ports and
//!   environment; the services are hit in turn (a receiver replica, the herder, the
//!   reconciler replica that leads, the sentinel, the adapter, ...).
//! * `broker` — single broker: `rabbitmqctl stop_app`, held down a few seconds, `start_app`;
//!   cluster: one node's Erlang VM killed with `kill -9`, held down, restarted and waited for
//!   until it rejoined (nodes in turn).
//! * `postgres` — PostgreSQL's immediate shutdown (no checkpoint: crash recovery at the next
//!   start), a few seconds down, started again on the same port.
//! * `redis` — `kill -9` of Redis, a few seconds down, started again on the same port (empty:
//!   it keeps nothing on disk).
//! * `proxy` — one service's broker connection stalled for a few seconds through its fault
//!   proxy ([`crate::proxy`]), then cut, then restored (services in turn).
//! * `fake-5xx` — the fake GitLab, Kubernetes API and Webex answer 5xx for a burst, then
//!   slowly for a few seconds.
//!
//! The broker, PostgreSQL and Redis kinds need the run's own instances ([`crate::private`]):
//! the machine's shared ones serve other users and are never stopped by the suite.
//!
//! Recovery is the time from the fault's start until every process of the stack answers its
//! readiness check again (after the fault was undone).

use std::time::Duration;

use clap::ValueEnum;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use serde_json::json;

use crate::private::PrivateInfra;
use crate::proxy::BrokerProxies;
use crate::stack::Stack;
use crate::system::Fakes;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, ValueEnum, Serialize, PartialOrd, Ord)]
#[serde(rename_all = "kebab-case")]
pub enum FaultKind {
    /// `kill -9` of a service process, then a restart.
    Kill,
    /// RabbitMQ `stop_app`/`start_app` (single broker) or a node killed and restarted
    /// (`--cluster`).
    Broker,
    /// PostgreSQL stopped at once (immediate shutdown), then started again.
    Postgres,
    /// Redis killed (`kill -9`), then started again.
    Redis,
    /// One service's broker connection stalled, then cut, through its fault proxy.
    Proxy,
    /// The fake GitLab, Kubernetes API and Webex answer 5xx for a burst, then slowly.
    #[value(name = "fake-5xx")]
    #[serde(rename = "fake-5xx")]
    Fake5xx,
    /// No faults (a baseline run).
    None,
}

impl FaultKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Kill => "kill",
            Self::Broker => "broker",
            Self::Postgres => "postgres",
            Self::Redis => "redis",
            Self::Proxy => "proxy",
            Self::Fake5xx => "fake-5xx",
            Self::None => "none",
        }
    }

    /// Whether it stops or kills infrastructure, which only the run's own may suffer.
    pub fn needs_private_infra(self) -> bool {
        matches!(self, Self::Broker | Self::Postgres | Self::Redis)
    }

    /// Every kind that injects something (what `--faults all` means).
    pub fn all() -> Vec<Self> {
        vec![
            Self::Kill,
            Self::Broker,
            Self::Postgres,
            Self::Redis,
            Self::Proxy,
            Self::Fake5xx,
        ]
    }
}

/// What a fault aims at: a process by name, whichever reconciler replica leads right now, or
/// a piece of infrastructure (chosen when injected: which broker node depends on the mode).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    Process(String),
    ReconcilerLeader,
    Infra,
}

/// One fault of the schedule.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlannedFault {
    /// Seconds after the load started.
    pub at: f64,
    pub kind: FaultKind,
    pub target: Target,
}

/// One fault as it happened.
#[derive(Debug, Clone, Serialize)]
pub struct FaultRecord {
    pub at: f64,
    pub kind: FaultKind,
    /// The process or the piece of infrastructure hit.
    pub target: String,
    /// Seconds until the whole stack was ready again; `None` if it never was.
    pub recovery: Option<f64>,
    pub error: Option<String>,
    /// Seconds the fault was held (down, stalled, failing) before it was undone.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub held: Option<f64>,
}

/// The services a `kill` rotates through, in order (the schedule starts at a seeded point).
pub fn kill_rotation() -> Vec<Target> {
    vec![
        Target::Process("webhook-receiver-1".into()),
        Target::Process("pipeline-herder".into()),
        Target::ReconcilerLeader,
        Target::Process("sentinel".into()),
        Target::Process("adapter".into()),
        Target::Process("webhook-receiver-2".into()),
        Target::Process("alert-reconciler-1".into()),
    ]
}

/// The services a `proxy` fault rotates through, in order.
pub fn proxy_rotation() -> Vec<String> {
    [
        "webhook-receiver-1",
        "pipeline-herder",
        "alert-reconciler-1",
        "sentinel",
        "adapter",
        "webhook-receiver-2",
        "alert-reconciler-2",
    ]
    .map(str::to_owned)
    .to_vec()
}

/// The faults of a run: one every `interval` (±25 % jitter) from one interval after the start
/// until one interval before `duration` ends (so the last one recovers under load), kinds
/// taken in turn from `kinds` (so each of k kinds occurs at least twice once the run holds 2k
/// faults), kill targets from [`kill_rotation`], proxy targets from [`proxy_rotation`].
pub fn schedule(
    seed: u64,
    duration: Duration,
    interval: Duration,
    kinds: &[FaultKind],
) -> Vec<PlannedFault> {
    let mut kinds: Vec<FaultKind> = kinds
        .iter()
        .copied()
        .filter(|k| *k != FaultKind::None)
        .collect();
    kinds.dedup();
    if kinds.is_empty() || interval.is_zero() {
        return Vec::new();
    }
    let mut rng = StdRng::seed_from_u64(seed);
    let rotation = kill_rotation();
    let mut next_kill = rng.random_range(0..rotation.len());
    let proxies = proxy_rotation();
    let mut next_proxy = rng.random_range(0..proxies.len());
    let step = interval.as_secs_f64();
    let end = duration.as_secs_f64() - step;
    let mut at = step;
    let mut out = Vec::new();
    while at <= end {
        let jitter = rng.random_range(-0.25..=0.25) * step;
        let kind = kinds[out.len() % kinds.len()];
        let target = match kind {
            FaultKind::Kill => {
                next_kill += 1;
                rotation[(next_kill - 1) % rotation.len()].clone()
            }
            FaultKind::Proxy => {
                next_proxy += 1;
                Target::Process(proxies[(next_proxy - 1) % proxies.len()].clone())
            }
            _ => Target::Infra,
        };
        out.push(PlannedFault {
            at: (at + jitter).max(1.0),
            kind,
            target,
        });
        at += step;
    }
    out
}

/// The reconciler replica that leads: the one whose current log says it took the lead last
/// (the supervisor logs "leading: ..." and "standing by: ..."). Falls back to replica 1.
pub fn reconciler_leader(stack: &Stack, replicas: &[String]) -> String {
    let mut best: Option<(usize, &String)> = None;
    for name in replicas {
        let log = stack.current_log(name);
        let leading = log.rfind("\"leading: ");
        let standby = log.rfind("\"standing by: ");
        if let Some(position) = leading
            && standby.is_none_or(|s| s < position)
        {
            // Both may claim it (an old claim before a failover is not in a new incarnation's
            // log, but a standby's restart resets it): prefer the most recent claim.
            if best.is_none_or(|(p, _)| position > p) {
                best = Some((position, name));
            }
        }
    }
    best.map(|(_, n)| n.clone())
        .or_else(|| replicas.first().cloned())
        .unwrap_or_default()
}

/// What faults other than `kill` act on.
pub struct FaultEnv<'a> {
    /// The run's own infrastructure (`None` with `--infra shared`: then the infrastructure
    /// kinds are refused before the run starts).
    pub infra: Option<&'a mut PrivateInfra>,
    /// The services' broker proxies (empty unless `proxy` faults are selected).
    pub proxies: &'a BrokerProxies,
    /// Base URLs of the fakes.
    pub fakes: Fakes,
    http: reqwest::Client,
    /// Hold durations and broker nodes, from the seed (a replayed run holds the same).
    rng: StdRng,
    next_node: usize,
}

/// Shortest and longest time a fault is held.
const HOLD: (f64, f64) = (2.0, 4.0);
/// How much later a slow fake answers (`fake-5xx`, after the burst).
const SLOW_DELAY_MS: u64 = 700;
/// 5xx answers per fake in a burst.
const BURST: usize = 6;

impl<'a> FaultEnv<'a> {
    pub fn new(
        seed: u64,
        infra: Option<&'a mut PrivateInfra>,
        proxies: &'a BrokerProxies,
        fakes: Fakes,
    ) -> Self {
        let mut rng = StdRng::seed_from_u64(seed ^ 0x6661_756c_7473);
        let next_node = rng.random_range(0..16);
        Self {
            infra,
            proxies,
            fakes,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap_or_default(),
            rng,
            next_node,
        }
    }

    fn hold(&mut self) -> Duration {
        Duration::from_secs_f64(self.rng.random_range(HOLD.0..=HOLD.1))
    }

    fn infra(&mut self, kind: FaultKind) -> Result<&mut PrivateInfra, String> {
        self.infra.as_deref_mut().ok_or_else(|| {
            format!(
                "{} faults need the run's own infrastructure (--infra private)",
                kind.as_str()
            )
        })
    }

    /// `broker`: stop_app/start_app of the single node, or kill -9 and restart of one node of
    /// a cluster. Returns the target and how long it was held.
    async fn broker(&mut self, target: &mut String) -> Result<Duration, String> {
        let hold = self.hold();
        let node = self.next_node;
        self.next_node += 1;
        let infra = self.infra(FaultKind::Broker)?;
        let rabbit = &infra.rabbit;
        if rabbit.nodes == 1 {
            *target = "rabbitmq (stop_app)".into();
            rabbit.stop_app(1).await.map_err(|e| e.to_string())?;
            tokio::time::sleep(hold).await;
            rabbit.start_app(1).await.map_err(|e| e.to_string())?;
        } else {
            let n = node % rabbit.nodes + 1;
            *target = format!("rabbitmq node {n} (kill -9)");
            rabbit.kill(n).await.map_err(|e| e.to_string())?;
            tokio::time::sleep(hold).await;
            rabbit.restart(n).await.map_err(|e| e.to_string())?;
        }
        Ok(hold)
    }

    async fn postgres(&mut self) -> Result<Duration, String> {
        let hold = self.hold();
        let postgres = &mut self.infra(FaultKind::Postgres)?.postgres;
        postgres.stop_immediate().await.map_err(|e| e.to_string())?;
        tokio::time::sleep(hold).await;
        postgres.start().await.map_err(|e| e.to_string())?;
        Ok(hold)
    }

    async fn redis(&mut self) -> Result<Duration, String> {
        let hold = self.hold();
        let redis = &mut self.infra(FaultKind::Redis)?.redis;
        redis.kill().await.map_err(|e| e.to_string())?;
        tokio::time::sleep(hold).await;
        redis.start().await.map_err(|e| e.to_string())?;
        Ok(hold)
    }

    /// `proxy`: stalled for the hold, cut for a moment (every open connection closes, new
    /// ones too), restored.
    async fn proxy(&mut self, service: &str) -> Result<Duration, String> {
        let hold = self.hold();
        self.proxies.stall(service).map_err(|e| e.to_string())?;
        tokio::time::sleep(hold).await;
        self.proxies.cut(service).map_err(|e| e.to_string())?;
        // Long enough for the service to see its connection refused once.
        tokio::time::sleep(Duration::from_millis(500)).await;
        self.proxies.restore(service).map_err(|e| e.to_string())?;
        Ok(hold + Duration::from_millis(500))
    }

    /// `fake-5xx`: each fake answers 5xx for a burst, then slowly for the hold.
    async fn fake_5xx(&mut self) -> Result<Duration, String> {
        let hold = self.hold();
        let mut problems = Vec::new();
        // fake-kube and fake-webex: a burst of the next requests, whatever they are, then
        // every request slow for the hold.
        let statuses: Vec<u16> = (0..BURST).map(|i| [503, 500, 502][i % 3]).collect();
        let script = json!({
            "statuses": statuses,
            "delay_ms": SLOW_DELAY_MS,
            "slow_for_ms": u64::try_from(hold.as_millis()).unwrap_or(u64::MAX),
        });
        for base in self.fakes.kube.iter().chain([&self.fakes.webex]) {
            if let Err(error) = post(&self.http, &format!("{base}/fake/fail"), &script).await {
                problems.push(error);
            }
        }
        // fake-gitlab scripts failures per request path (its /fake/fail): the retry calls of
        // the jobs it saw last (the herder calls them about a second after their trace) and
        // the job and trace reads of the jobs after the newest it saw (the load numbers them
        // one after the other). Then, like the others, every request slow for the hold.
        let slow = json!({
            "delay_ms": SLOW_DELAY_MS,
            "slow_for_ms": u64::try_from(hold.as_millis()).unwrap_or(u64::MAX),
        });
        match gitlab_targets(&self.http, &self.fakes.gitlab).await {
            Ok(paths) => {
                for (method, path, status) in paths {
                    let body = json!({"method": method, "path": path, "statuses": [status]});
                    if let Err(error) = post(
                        &self.http,
                        &format!("{}/fake/fail", self.fakes.gitlab),
                        &body,
                    )
                    .await
                    {
                        problems.push(error);
                        break;
                    }
                }
            }
            Err(error) => problems.push(error),
        }
        if let Err(error) = post(
            &self.http,
            &format!("{}/fake/fail", self.fakes.gitlab),
            &slow,
        )
        .await
        {
            problems.push(error);
        }
        tokio::time::sleep(hold).await;
        if problems.is_empty() {
            Ok(hold)
        } else {
            Err(problems.join("; "))
        }
    }
}

async fn post(http: &reqwest::Client, url: &str, body: &serde_json::Value) -> Result<(), String> {
    match http.post(url).json(body).send().await {
        Ok(r) if r.status().is_success() => Ok(()),
        Ok(r) => Err(format!("POST {url} answered {}", r.status())),
        Err(error) => Err(format!("POST {url}: {error}")),
    }
}

/// The fake GitLab's paths to fail: (method, path under /api/v4, status).
async fn gitlab_targets(
    http: &reqwest::Client,
    base: &str,
) -> Result<Vec<(&'static str, String, u16)>, String> {
    let url = format!("{base}/fake/requests");
    let requests: Vec<serde_json::Value> = http
        .get(&url)
        .send()
        .await
        .map_err(|e| format!("GET {url}: {e}"))?
        .json()
        .await
        .map_err(|e| format!("GET {url}: {e}"))?;
    let job = regex::Regex::new(r"^/api/v4/projects/(\d+)/jobs/(\d+)").expect("a valid pattern");
    let mut recent: Vec<(u64, u64)> = Vec::new();
    for request in requests.iter().rev().take(2_000) {
        let Some(caps) = request["path"].as_str().and_then(|p| job.captures(p)) else {
            continue;
        };
        let (Ok(project), Ok(id)) = (caps[1].parse(), caps[2].parse()) else {
            continue;
        };
        if !recent.contains(&(project, id)) {
            recent.push((project, id));
        }
        if recent.len() >= 10 {
            break;
        }
    }
    let mut out = Vec::new();
    for (project, id) in &recent {
        out.push(("POST", format!("/projects/{project}/jobs/{id}/retry"), 503));
    }
    // Retried jobs are numbered by the fake from 1 000 000: not the load's.
    if let Some((project, newest)) = recent
        .iter()
        .filter(|(_, id)| *id < 1_000_000)
        .max_by_key(|(_, id)| *id)
    {
        for id in newest + 1..=newest + 10 {
            out.push(("GET", format!("/projects/{project}/jobs/{id}"), 502));
            out.push(("GET", format!("/projects/{project}/jobs/{id}/trace"), 503));
        }
    }
    Ok(out)
}

/// Injects `fault`, holds it, undoes it, then waits until the whole stack is ready again (or
/// `recovery_deadline` passes).
pub async fn inject(
    stack: &mut Stack,
    fault: &PlannedFault,
    at: f64,
    reconcilers: &[String],
    recovery_deadline: Duration,
    env: &mut FaultEnv<'_>,
) -> FaultRecord {
    let mut target = match &fault.target {
        Target::Process(name) => name.clone(),
        Target::ReconcilerLeader => reconciler_leader(stack, reconcilers),
        Target::Infra => String::new(),
    };
    let started = tokio::time::Instant::now();
    let outcome: Result<Option<Duration>, String> = match fault.kind {
        FaultKind::None => Ok(None),
        FaultKind::Kill => match stack.kill(&target).await {
            Err(error) => Err(error.to_string()),
            Ok(()) => stack
                .restart(&target)
                .await
                .map(|_| None)
                .map_err(|e| e.to_string()),
        },
        FaultKind::Broker => env.broker(&mut target).await.map(Some),
        FaultKind::Postgres => {
            target = "postgresql (immediate stop)".into();
            env.postgres().await.map(Some)
        }
        FaultKind::Redis => {
            target = "redis (kill -9)".into();
            env.redis().await.map(Some)
        }
        FaultKind::Proxy => env.proxy(&target).await.map(Some),
        FaultKind::Fake5xx => {
            target = if env.fakes.kube.is_some() {
                "fake-gitlab, fake-kube, fake-webex"
            } else {
                "fake-gitlab, fake-webex"
            }
            .into();
            env.fake_5xx().await.map(Some)
        }
    };
    let mut record = FaultRecord {
        at,
        kind: fault.kind,
        target,
        recovery: None,
        error: None,
        held: None,
    };
    match outcome {
        Err(error) => {
            record.error = Some(error);
            return record;
        }
        Ok(held) => record.held = held.map(|d| d.as_secs_f64()),
    }
    if fault.kind == FaultKind::None {
        return record;
    }
    let deadline = started + recovery_deadline;
    loop {
        let not_ready = stack.not_ready().await;
        if not_ready.is_empty() {
            record.recovery = Some(started.elapsed().as_secs_f64());
            return record;
        }
        if tokio::time::Instant::now() >= deadline {
            record.error = Some(format!("not ready again: {}", not_ready.join("; ")));
            return record;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ten_minute_run_holds_every_kind_at_least_twice_one_at_a_time() {
        for seed in [1, 42, 4242] {
            let planned = schedule(
                seed,
                Duration::from_secs(600),
                Duration::from_secs(15),
                &FaultKind::all(),
            );
            for kind in FaultKind::all() {
                let n = planned.iter().filter(|f| f.kind == kind).count();
                assert!(n >= 2, "seed {seed}: {} only {n} time(s)", kind.as_str());
            }
            // In time order, at least half an interval apart (the jitter is ±25 %).
            for pair in planned.windows(2) {
                assert!(pair[1].at - pair[0].at >= 7.5, "{pair:?}");
            }
            assert_eq!(
                planned,
                schedule(
                    seed,
                    Duration::from_secs(600),
                    Duration::from_secs(15),
                    &FaultKind::all()
                ),
                "a seed replays its schedule"
            );
        }
    }

    #[test]
    fn targets_follow_the_kind() {
        let planned = schedule(
            7,
            Duration::from_secs(300),
            Duration::from_secs(10),
            &FaultKind::all(),
        );
        for fault in planned {
            match fault.kind {
                FaultKind::Kill => assert_ne!(fault.target, Target::Infra),
                FaultKind::Proxy => assert!(
                    matches!(&fault.target, Target::Process(p) if proxy_rotation().contains(p))
                ),
                _ => assert_eq!(fault.target, Target::Infra),
            }
        }
        assert!(FaultKind::Broker.needs_private_infra());
        assert!(!FaultKind::Proxy.needs_private_infra());
        assert!(!FaultKind::Fake5xx.needs_private_infra());
        assert_eq!(
            FaultKind::from_str("fake-5xx", false),
            Ok(FaultKind::Fake5xx)
        );
    }
}

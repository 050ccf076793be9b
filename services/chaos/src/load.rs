//! Sustained mixed load on both receiver replicas, recorded request by request.
//!
//! Each flow runs in its own task at its own rate until the load's deadline. Every request is
//! recorded ([`Delivery`]: flow, id, time sent, HTTP status, the event ids the receiver
//! answered with) so the invariants can be checked against what was actually accepted. A
//! request that finds its replica dead (connection refused mid-kill) is sent once more to the
//! other replica with the same idempotency key, as a load balancer in front of the receivers
//! would; both attempts count as offered.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use serde_json::{Value, json};
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Requests in flight per flow at most: a stalled stack must not make the generator pile up
/// thousands of sockets.
const MAX_IN_FLIGHT: usize = 256;
/// Share of GitLab hooks delivered twice with the same key (GitLab's "Resend").
const RESEND_SHARE: f64 = 0.05;
/// Share of transient jobs whose retry fails transiently again (and so on, up to the limit).
const FAILS_AGAIN_SHARE: f64 = 0.5;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Flow {
    Gitlab,
    Alert,
    Fleet,
}

impl Flow {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Gitlab => "gitlab",
            Self::Alert => "alert",
            Self::Fleet => "fleet",
        }
    }
}

/// One request the generator sent.
#[derive(Debug, Clone, Serialize)]
pub struct Delivery {
    pub flow: Flow,
    /// The idempotency key (GitLab), group and status (alerts), cluster operation (fleet).
    pub id: String,
    /// Seconds since the run's start.
    pub sent_at: f64,
    /// `None` when no HTTP answer came (connection refused or reset, timeout).
    pub status: Option<u16>,
    /// Which receiver replica (or 0 for fleet-api).
    pub target: usize,
    /// The event ids of the receiver's answer (`events[].id`).
    pub event_ids: Vec<String>,
    /// A deliberate second delivery of the same key.
    pub resend: bool,
}

impl Delivery {
    pub fn answered_2xx(&self) -> bool {
        self.status.is_some_and(|s| (200..300).contains(&s))
    }
}

/// Shared record of everything sent.
#[derive(Clone, Default)]
pub struct Recorder {
    deliveries: Arc<Mutex<Vec<Delivery>>>,
    jobs: Arc<Mutex<Vec<JobPlan>>>,
    alerts: Arc<Mutex<Vec<AlertSent>>>,
}

impl Recorder {
    pub(crate) fn push(&self, delivery: Delivery) {
        self.deliveries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(delivery);
    }

    pub fn deliveries(&self) -> Vec<Delivery> {
        self.deliveries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    pub fn jobs(&self) -> Vec<JobPlan> {
        self.jobs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    pub(crate) fn push_job(&self, job: JobPlan) {
        self.jobs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(job);
    }

    pub fn alerts(&self) -> Vec<AlertSent> {
        self.alerts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

/// What the load needs to know about the stack.
#[derive(Debug, Clone)]
pub struct Targets {
    /// Base URLs of the receiver replicas.
    pub receivers: Vec<String>,
    /// Base URL of the fake GitLab (seeding; also what the hooks name as the project URL).
    pub fake_gitlab: String,
    pub gitlab_secret: String,
    pub alertmanager_token: String,
    /// Unique per run (`chaos-<hex>`): the prefix of idempotency keys, a label of every alert
    /// (so a deployment's incidents of other runs are told apart).
    pub run_tag: String,
    /// The first job id the load seeds: ids are never reused against the same herder ledger
    /// (see [`first_job_id`]).
    pub first_job_id: u64,
}

/// Job ids of a run against a deployment: the herder's ledger and the fake GitLab outlive a
/// run, so ids come from the clock — a million per second since 2023-11-14, the load's from
/// `+10 000` and the fake's retries (told with `POST /fake/job-ids`) from `+500 000`. A run
/// uses far fewer than that and the next one starts more than a second later.
pub fn first_job_id(unix_secs: u64) -> u64 {
    unix_secs.saturating_sub(1_700_000_000) * 1_000_000 + 10_000
}

/// Where the fake numbers the jobs a retry creates, for a run whose load starts at `first`.
pub fn first_retry_job_id(first: u64) -> u64 {
    first - 10_000 + 500_000
}

/// Time since the run started, in seconds.
#[derive(Debug, Clone, Copy)]
pub struct Clock(pub Instant);

impl Clock {
    pub fn now(&self) -> f64 {
        self.0.elapsed().as_secs_f64()
    }

    /// A wall-clock time (milliseconds since the Unix epoch, as the fakes record it) in
    /// seconds since the run's start. The start's wall-clock time is derived anew each call
    /// (now minus the elapsed monotonic time), so a clock step during the run shifts it by the
    /// step, never by more.
    pub fn from_unix_millis(&self, millis: u64) -> f64 {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or_default();
        let start = now - self.now();
        millis as f64 / 1000.0 - start
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(15))
        .build()
        .unwrap_or_default()
}

/// Sends `body` to `path` on replica `first`, and once more to the other replica when the
/// first gave no HTTP answer or a 5xx. Returns the recorded attempts.
#[allow(clippy::too_many_arguments)]
async fn post_to_receivers(
    http: &reqwest::Client,
    targets: &Targets,
    clock: Clock,
    flow: Flow,
    id: &str,
    path: &str,
    headers: &[(&str, String)],
    body: &Value,
    first: usize,
    resend: bool,
) -> Vec<Delivery> {
    let mut out = Vec::new();
    for attempt in 0..2 {
        let target = (first + attempt) % targets.receivers.len();
        let sent_at = clock.now();
        let mut request = http
            .post(format!("{}{path}", targets.receivers[target]))
            .json(body);
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        let (status, event_ids) = match request.send().await {
            Ok(response) => {
                let status = response.status().as_u16();
                let answer: Value = response.json().await.unwrap_or(Value::Null);
                let ids = answer["events"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|e| e["id"].as_str().map(str::to_owned))
                    .collect();
                (Some(status), ids)
            }
            Err(_) => (None, Vec::new()),
        };
        let retry = status.is_none_or(|s| s >= 500);
        out.push(Delivery {
            flow,
            id: id.to_owned(),
            sent_at,
            status,
            target,
            event_ids,
            resend,
        });
        if !retry {
            break;
        }
    }
    out
}

// --- GitLab ----------------------------------------------------------------------------------

/// What a job is, and so what the herder must do about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum JobKind {
    /// Failed for a reason the default matchers retry: exactly one retry.
    Transient,
    /// A genuine test failure: never retried.
    Genuine,
    /// Succeeded: never retried.
    Success,
    /// Transient, but already retried up to the matcher's limit: never retried.
    AtLimit,
    /// Transient, but a newer pipeline of its ref exists: never retried.
    Superseded,
}

/// One job the load created and hooked.
#[derive(Debug, Clone, Serialize)]
pub struct JobPlan {
    pub job_id: u64,
    pub kind: JobKind,
    /// The idempotency key of its hook(s).
    pub key: String,
    /// Seconds since the start, when its first hook was sent.
    pub sent_at: f64,
    /// Whether some delivery of its hook was answered 2xx.
    pub answered: bool,
    /// The retries GitLab counted before this attempt (the hook's `retries_count`).
    pub retries: u32,
    /// The first job of its chain of attempts (itself for a first attempt).
    pub chain: u64,
    /// The attempt the herder's retry of which created this job.
    pub previous: Option<u64>,
    /// Whether its retry (the next attempt) fails transiently again, up to the limit.
    pub fails_again: bool,
}

/// The project every job belongs to in the fake GitLab.
pub const PROJECT_ID: u64 = 42;
pub const PROJECT_PATH: &str = "chaos/kernel";
/// Retries the herder's default matchers allow (their `retry_limit`, default 3).
pub const RETRY_LIMIT: u32 = 3;

const IMAGE_PULL_TRACE: &str = "\
Running with gitlab-runner 17.5.0 (7ad2a5a8)
Using Docker executor with image quay.io/cki/builder-rawhide:latest ...
Pulling docker image quay.io/cki/builder-rawhide:latest ...
ERROR: Job failed: failed to pull image \"quay.io/cki/builder-rawhide:latest\" with specified policies [always]: Error response from daemon: Get \"https://quay.io/v2/\": net/http: request canceled (manager.go:250:15s)
";

const NETWORK_TRACE: &str = "\
Running with gitlab-runner 17.5.0 (7ad2a5a8)
Fetching changes with git depth set to 20...
error: RPC failed; curl 56 GnuTLS recv error (-9): A TLS packet with unexpected length was received.
fatal: the remote end hung up unexpectedly
ERROR: Job failed: exit code 1
";

const TEST_FAILURE_TRACE: &str = "\
Running with gitlab-runner 17.5.0 (7ad2a5a8)
$ make -C tools/testing/selftests run_tests
not ok 12 selftests: net: fib_tests.sh # exit=1
# Totals: pass:41 fail:1 xfail:0 xpass:0 skip:3 error:0
make: *** [Makefile:151: run_tests] Error 1
ERROR: Job failed: exit code 2
";

const SUCCESS_TRACE: &str = "\
Running with gitlab-runner 17.5.0 (7ad2a5a8)
$ make -j8 bzImage
Kernel: arch/x86/boot/bzImage is ready  (#1)
Job succeeded
";

fn pick_kind(rng: &mut StdRng) -> JobKind {
    match rng.random_range(0..100) {
        0..40 => JobKind::Transient,
        40..60 => JobKind::Genuine,
        60..80 => JobKind::Success,
        80..90 => JobKind::AtLimit,
        _ => JobKind::Superseded,
    }
}

/// The fake job and its hook for job `id` of `kind`, and the hook's `retries_count`.
fn job_and_hook(id: u64, kind: JobKind, rng: &mut StdRng, gitlab: &str) -> (Value, Value, u32) {
    let pipeline = 100_000 + id;
    let git_ref = format!("chaos-{id}");
    let (trace, status, reason) = match kind {
        JobKind::Genuine => (TEST_FAILURE_TRACE, "failed", Some("script_failure")),
        JobKind::Success => (SUCCESS_TRACE, "success", None),
        _ => (transient_trace(rng), "failed", Some("script_failure")),
    };
    let retries = match kind {
        JobKind::AtLimit => RETRY_LIMIT,
        JobKind::Transient => rng.random_range(0..RETRY_LIMIT),
        _ => 0,
    };
    let (job, hook) = job_and_hook_of(
        id, pipeline, &git_ref, trace, status, reason, retries, gitlab,
    );
    (job, hook, retries)
}

fn transient_trace(rng: &mut StdRng) -> &'static str {
    if rng.random_bool(0.5) {
        IMAGE_PULL_TRACE
    } else {
        NETWORK_TRACE
    }
}

/// The fake job and its hook: attempt `retries + 1` of job `build x86_64 #<n>` of pipeline
/// `100 000 + n` (every attempt of a chain keeps the name, as GitLab's retries do).
#[allow(clippy::too_many_arguments)]
fn job_and_hook_of(
    id: u64,
    pipeline: u64,
    git_ref: &str,
    trace: &str,
    status: &str,
    reason: Option<&str>,
    retries: u32,
    gitlab: &str,
) -> (Value, Value) {
    let name = format!("build x86_64 #{}", pipeline - 100_000);
    let job = json!({
        "id": id, "project_id": PROJECT_ID, "project_path": PROJECT_PATH,
        "pipeline_id": pipeline, "name": name, "stage": "build", "status": status,
        "ref": git_ref, "failure_reason": reason, "trace": trace,
    });
    let web = format!("{gitlab}/{PROJECT_PATH}");
    let hook = json!({
        "object_kind": "build", "ref": git_ref, "tag": false,
        "build_id": id, "build_name": name, "build_stage": "build", "build_status": status,
        "build_allow_failure": false, "build_failure_reason": reason,
        "retries_count": retries, "pipeline_id": pipeline, "project_id": PROJECT_ID,
        "project_name": "Chaos / kernel",
        "repository": {"name": "kernel", "homepage": web},
        "project": {"id": PROJECT_ID, "name": "kernel", "web_url": web,
                    "path_with_namespace": PROJECT_PATH, "default_branch": "main"},
    });
    (job, hook)
}

/// Sends the Job Hook of job `id` with idempotency key `key` (to replica `first`, the other
/// one if that gives no answer), and once more to the other replica when `resend`.
async fn send_hook(
    http: &reqwest::Client,
    targets: &Targets,
    clock: Clock,
    key: &str,
    hook: &Value,
    first: usize,
    resend: bool,
) -> Vec<Delivery> {
    let headers = [
        ("X-Gitlab-Event", "Job Hook".to_owned()),
        ("X-Gitlab-Token", targets.gitlab_secret.clone()),
        ("Idempotency-Key", key.to_owned()),
    ];
    let mut sent = post_to_receivers(
        http,
        targets,
        clock,
        Flow::Gitlab,
        key,
        "/gitlab",
        &headers,
        hook,
        first,
        false,
    )
    .await;
    if resend {
        sent.extend(
            post_to_receivers(
                http,
                targets,
                clock,
                Flow::Gitlab,
                key,
                "/gitlab",
                &headers,
                hook,
                first + 1,
                true,
            )
            .await,
        );
    }
    sent
}

/// GitLab Job Hooks at `rate` per second until `stop`, each for a job seeded in the fake
/// GitLab first (a hook announces a job GitLab already has).
pub async fn gitlab(
    targets: Targets,
    rate: f64,
    seed: u64,
    clock: Clock,
    recorder: Recorder,
    stop: CancellationToken,
) {
    if rate <= 0.0 {
        return;
    }
    let http = client();
    let mut rng = StdRng::seed_from_u64(seed ^ 0x6769_746c_6162);
    let limit = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
    // Burst: a stall of the generator is caught up, so the offered rate is the one asked for.
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut tasks = tokio::task::JoinSet::new();
    // Local runs seed job ids from 10 000: below the fake's own demo jobs' range would collide,
    // and the fake numbers the jobs a retry creates from 1 000 000.
    let mut id = targets.first_job_id.saturating_sub(1);
    loop {
        tokio::select! {
            () = stop.cancelled() => break,
            _ = tick.tick() => {}
        }
        id += 1;
        let kind = pick_kind(&mut rng);
        let (job, hook, retries) = job_and_hook(id, kind, &mut rng, &targets.fake_gitlab);
        let resend = rng.random_bool(RESEND_SHARE);
        let fails_again = kind == JobKind::Transient && rng.random_bool(FAILS_AGAIN_SHARE);
        let first = usize::try_from(id).unwrap_or_default() % targets.receivers.len();
        let Ok(permit) = limit.clone().acquire_owned().await else {
            break;
        };
        let (http, targets, recorder) = (http.clone(), targets.clone(), recorder.clone());
        tasks.spawn(async move {
            let _permit = permit;
            let fake = &targets.fake_gitlab;
            if kind == JobKind::Superseded {
                let newer = json!({"id": 500_000 + id, "project_id": PROJECT_ID,
                    "ref": hook["ref"], "status": "running"});
                let _ = http
                    .post(format!("{fake}/fake/pipelines"))
                    .json(&newer)
                    .send()
                    .await;
            }
            let Announced {
                key,
                sent_at,
                answered,
            } = announce(
                &http, &targets, clock, &recorder, id, &job, &hook, first, resend,
            )
            .await;
            recorder.push_job(JobPlan {
                job_id: id,
                kind,
                key,
                sent_at,
                answered,
                retries,
                chain: id,
                previous: None,
                fails_again,
            });
        });
        while tasks.try_join_next().is_some() {}
    }
    while tasks.join_next().await.is_some() {}
}

// --- Transient job chains --------------------------------------------------------------------

/// How often the chain follower looks for retries to follow up.
const FOLLOW_EVERY: Duration = Duration::from_millis(500);

/// Follows the chains of transient jobs until `stop` (the end of the quiet period, not of the
/// load, so a chain started late still runs to its end): once the herder's retry of an
/// attempt whose chain [`JobPlan::fails_again`] shows in the fake GitLab's request log, the
/// attempt the retry created (the newest job of the same name in the pipeline — the fake
/// numbers them itself) is seeded as failed transiently again and its hook sent with
/// `retries_count` one higher. The attempt that reaches [`RETRY_LIMIT`] is hooked as
/// [`JobKind::AtLimit`], which must never be retried.
pub async fn chains(
    targets: Targets,
    seed: u64,
    clock: Clock,
    recorder: Recorder,
    observer: crate::observe::Observer,
    stop: CancellationToken,
) {
    let http = client();
    let mut rng = StdRng::seed_from_u64(seed ^ 0x6368_6169_6e73);
    let mut followed: HashSet<u64> = HashSet::new();
    loop {
        tokio::select! {
            () = stop.cancelled() => break,
            () = tokio::time::sleep(FOLLOW_EVERY) => {}
        }
        let retried = observer.snapshot().retries;
        let due: Vec<JobPlan> = recorder
            .jobs()
            .into_iter()
            .filter(|j| j.kind == JobKind::Transient && j.fails_again)
            .filter(|j| retried.get(&j.job_id).copied().unwrap_or(0) > 0)
            .filter(|j| !followed.contains(&j.job_id))
            .collect();
        for job in due {
            // Not listed yet (or the fake did not answer): looked for again next time.
            if let Ok(Some(new_id)) = next_attempt(&http, &targets.fake_gitlab, &job).await {
                followed.insert(job.job_id);
                let retries = job.retries + 1;
                let kind = if retries >= RETRY_LIMIT {
                    JobKind::AtLimit
                } else {
                    JobKind::Transient
                };
                let pipeline = 100_000 + job.chain;
                let (seeded, hook) = job_and_hook_of(
                    new_id,
                    pipeline,
                    &format!("chaos-{}", job.chain),
                    transient_trace(&mut rng),
                    "failed",
                    Some("script_failure"),
                    retries,
                    &targets.fake_gitlab,
                );
                let first = usize::try_from(new_id).unwrap_or_default() % targets.receivers.len();
                let Announced {
                    key,
                    sent_at,
                    answered,
                } = announce(
                    &http, &targets, clock, &recorder, new_id, &seeded, &hook, first, false,
                )
                .await;
                recorder.push_job(JobPlan {
                    job_id: new_id,
                    kind,
                    key,
                    sent_at,
                    answered,
                    retries,
                    chain: job.chain,
                    previous: Some(job.job_id),
                    fails_again: true,
                });
            }
        }
    }
}

/// What announcing a job gave, for its [`JobPlan`].
struct Announced {
    key: String,
    sent_at: f64,
    answered: bool,
}

/// Seeds `job` in the fake GitLab (a hook announces a job GitLab already has), sends its
/// `hook` to receiver `first` (and again to the other for a `resend`) and records the
/// deliveries.
#[allow(clippy::too_many_arguments)]
async fn announce(
    http: &reqwest::Client,
    targets: &Targets,
    clock: Clock,
    recorder: &Recorder,
    job_id: u64,
    job: &Value,
    hook: &Value,
    first: usize,
    resend: bool,
) -> Announced {
    let _ = http
        .post(format!("{}/fake/jobs", targets.fake_gitlab))
        .json(job)
        .send()
        .await;
    let key = format!("{}-job-{job_id}", targets.run_tag);
    let sent_at = clock.now();
    let sent = send_hook(http, targets, clock, &key, hook, first, resend).await;
    let answered = sent.iter().any(Delivery::answered_2xx);
    for delivery in sent {
        recorder.push(delivery);
    }
    Announced {
        key,
        sent_at,
        answered,
    }
}

/// The attempt the retry of `job` created: the newest job of its pipeline with a larger id.
async fn next_attempt(
    http: &reqwest::Client,
    gitlab: &str,
    job: &JobPlan,
) -> Result<Option<u64>, reqwest::Error> {
    let pipeline = 100_000 + job.chain;
    let jobs: Value = http
        .get(format!(
            "{gitlab}/api/v4/projects/{PROJECT_ID}/pipelines/{pipeline}/jobs?include_retried=true&per_page=100"
        ))
        .send()
        .await?
        .json()
        .await?;
    Ok(jobs
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|j| j["id"].as_u64())
        .filter(|id| *id > job.job_id)
        .max())
}

// --- Alertmanager ----------------------------------------------------------------------------

/// One alert notification the load sent.
#[derive(Debug, Clone, Serialize)]
pub struct AlertSent {
    pub group: usize,
    pub firing: bool,
    pub sent_at: f64,
    pub answered: bool,
}

/// The groups that resolve near the end of the load (and are not fired again).
pub fn resolves(group: usize) -> bool {
    group % 5 == 4
}

/// The group key of alert group `group` of run `run_tag` (what the reconciler files its
/// incident under).
pub fn group_key(group: usize, run_tag: &str) -> String {
    let name = crate::recipe::alert_name(group);
    format!("{{}}:{{alertname=\"{name}\",chaos_run=\"{run_tag}\"}}")
}

fn notification(
    group: usize,
    run_tag: &str,
    firing: bool,
    starts_at: &str,
    ends_at: &str,
) -> Value {
    let name = crate::recipe::alert_name(group);
    let status = if firing { "firing" } else { "resolved" };
    let labels = json!({"alertname": name, "chaos_run": run_tag, "severity": "warning",
        "instance": format!("node-{group:02}")});
    json!({
        "version": "4",
        "groupKey": group_key(group, run_tag),
        "truncatedAlerts": 0,
        "status": status,
        "receiver": "chaos",
        "groupLabels": {"alertname": name, "chaos_run": run_tag},
        "commonLabels": labels,
        "commonAnnotations": {"summary": format!("{name} is firing on node-{group:02}")},
        "externalURL": "http://alertmanager.chaos.invalid:9093",
        "alerts": [{
            "status": status,
            "labels": labels,
            "annotations": {"summary": format!("{name} is firing on node-{group:02}")},
            "startsAt": starts_at,
            "endsAt": ends_at,
            "generatorURL": "http://prometheus.chaos.invalid:9090/graph",
            "fingerprint": format!("c4a05{group:011x}"),
        }],
    })
}

/// Alertmanager notifications at `rate` per second across `groups` groups until `stop`:
/// each group fires first, then repeats; the groups of [`resolves`] are resolved once the load
/// is 80 % through (`resolve_after` seconds) and from then on only repeat the resolution.
#[allow(clippy::too_many_arguments)]
pub async fn alerts(
    targets: Targets,
    rate: f64,
    groups: usize,
    resolve_after: f64,
    clock: Clock,
    recorder: Recorder,
    stop: CancellationToken,
) {
    if rate <= 0.0 || groups == 0 {
        return;
    }
    let http = client();
    let starts_at = (chrono::Utc::now() - chrono::Duration::minutes(1))
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let limit = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut tasks = tokio::task::JoinSet::new();
    let mut resolved: HashSet<usize> = HashSet::new();
    let mut ends_at = String::new();
    let mut n = 0usize;
    loop {
        tokio::select! {
            () = stop.cancelled() => break,
            _ = tick.tick() => {}
        }
        let group = n % groups;
        n += 1;
        if resolves(group) && clock.now() >= resolve_after && resolved.insert(group) {
            ends_at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        }
        let firing = !resolved.contains(&group);
        let body = notification(
            group,
            &targets.run_tag,
            firing,
            &starts_at,
            if firing {
                "0001-01-01T00:00:00Z"
            } else {
                &ends_at
            },
        );
        let Ok(permit) = limit.clone().acquire_owned().await else {
            break;
        };
        let (http, targets, recorder) = (http.clone(), targets.clone(), recorder.clone());
        tasks.spawn(async move {
            let _permit = permit;
            let id = format!(
                "{}:{}",
                crate::recipe::alert_name(group),
                if firing { "firing" } else { "resolved" }
            );
            let headers = [(
                "Authorization",
                format!("Bearer {}", targets.alertmanager_token),
            )];
            let sent_at = clock.now();
            let sent = post_to_receivers(
                &http,
                &targets,
                clock,
                Flow::Alert,
                &id,
                "/alertmanager",
                &headers,
                &body,
                n,
                false,
            )
            .await;
            let answered = sent.iter().any(Delivery::answered_2xx);
            for delivery in sent {
                recorder.push(delivery);
            }
            recorder
                .alerts
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push(AlertSent {
                    group,
                    firing,
                    sent_at,
                    answered,
                });
        });
        while tasks.try_join_next().is_some() {}
    }
    while tasks.join_next().await.is_some() {}
}

//! One run: isolate, start, load, break, wait for quiet, check, report, clean up.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rand::Rng;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::checks::{Checks, Endpoints, Start};
use crate::cli::{InfraArgs, RunArgs};
use crate::faults::{self, FaultRecord};
use crate::infra::{Databases, InfraError, Management};
use crate::invariants::{self, Verdict};
use crate::load::{self, Clock, Flow, JobKind, Recorder, Targets};
use crate::observe::{self, Observer, Sources};
use crate::recipe;
use crate::report::{Latency, Report};
use crate::stack::{ProcSpec, Readiness, Role, Stack, StackError, free_port};

const GITLAB_SECRET: &str = "chaos-gitlab-secret";
const ALERTMANAGER_TOKEN: &str = "chaos-alertmanager-token";
const RECONCILER_TOKEN: &str = "chaos-reconciler-token";
const WEBEX_BOT_TOKEN: &str = "chaos-webex-bot-token";
const HERDER_ADMIN_TOKEN: &str = "chaos-herder-admin-token";
/// The services' own shutdown budget: short, a run stops them all at the end.
const SHUTDOWN_TIMEOUT: &str = "5s";
/// How often the quiet period re-checks the invariants.
const QUIET_POLL: Duration = Duration::from_secs(2);
/// How long the stack may take to be ready again after a fault.
const RECOVERY_DEADLINE: Duration = Duration::from_secs(90);
/// Every binary the run starts.
const BINARIES: [&str; 9] = [
    "webhook-receiver",
    "pipeline-herder",
    "sentinel",
    "adapter",
    "alert-reconciler",
    "fleet-api",
    "fake-gitlab",
    "fake-kube",
    "fake-webex",
];

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
    #[error("interrupted while starting the stack")]
    Interrupted,
}

/// What must be undone at the end, whatever happens: the databases, every queue and exchange
/// of the run's prefix, and the alive file (which ends `hang` recipes).
#[derive(Clone)]
struct Cleanup {
    databases: Databases,
    names: Vec<String>,
    management: Management,
    prefix: String,
    alive_file: PathBuf,
}

impl Cleanup {
    async fn run(&self) -> Vec<String> {
        let mut problems = Vec::new();
        let _ = std::fs::remove_file(&self.alive_file);
        for name in &self.names {
            if let Err(error) = self.databases.drop_database(name).await {
                problems.push(error.to_string());
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
struct CleanupGuard(Option<Cleanup>);

impl CleanupGuard {
    fn disarm(&mut self) -> Option<Cleanup> {
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

/// Cancelled on SIGINT or SIGTERM.
fn interrupt_token() -> CancellationToken {
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

fn write(path: &Path, text: &str) -> Result<(), RunError> {
    std::fs::write(path, text).map_err(|source| RunError::Write {
        path: path.to_owned(),
        source,
    })
}

fn say(message: &str) {
    eprintln!("[chaos] {message}");
}

/// `target/release` if it holds the binaries, else `target/debug`.
pub fn default_bin_dir() -> PathBuf {
    let release = PathBuf::from("target/release");
    if release.join("webhook-receiver").is_file() {
        release
    } else {
        PathBuf::from("target/debug")
    }
}

/// The ports and URLs of every process.
struct Ports {
    gitlab: u16,
    kube: u16,
    webex: u16,
    fleet: (u16, u16),
    receivers: Vec<(u16, u16)>,
    herder: (u16, u16),
    sentinel: (u16, u16),
    adapter: (u16, u16),
    reconcilers: Vec<(u16, u16)>,
}

impl Ports {
    fn allocate() -> Result<Self, StackError> {
        let pair = || -> Result<(u16, u16), StackError> { Ok((free_port()?, free_port()?)) };
        Ok(Self {
            gitlab: free_port()?,
            kube: free_port()?,
            webex: free_port()?,
            fleet: pair()?,
            receivers: vec![pair()?, pair()?],
            herder: pair()?,
            sentinel: pair()?,
            adapter: pair()?,
            reconcilers: vec![pair()?, pair()?],
        })
    }
}

fn url(port: u16) -> String {
    format!("http://127.0.0.1:{port}")
}

/// The generated files of a run.
struct Files {
    herder: PathBuf,
    sentinel: PathBuf,
    adapter: PathBuf,
    kubeconfig: PathBuf,
    recipes: PathBuf,
}

/// The herder's config: the fake GitLab, and the shipped default matchers with every
/// `retry_delays` cut to 1 s (they wait minutes; the compose test does the same for one
/// matcher), in a matchers file beside it. Message retries are short too, so a job whose
/// GitLab call failed during a fault is handled within the quiet period.
fn herder_files(dir: &Path, gitlab: u16) -> Result<PathBuf, RunError> {
    let defaults = Path::new("services/pipeline-herder/matchers/default.yaml");
    let text = std::fs::read_to_string(defaults).map_err(|source| RunError::Read {
        path: defaults.to_owned(),
        source,
    })?;
    let delays = regex::Regex::new(r"retry_delays: \[[^\]]*\]").expect("a valid pattern");
    let matchers = delays.replace_all(&text, "retry_delays: [1s]");
    write(
        &dir.join("matchers.yaml"),
        &format!(
            "# The herder's default matchers (services/pipeline-herder/matchers/default.yaml) with\n# 1 s retry delays, for a chaos run.\n{matchers}"
        ),
    )?;
    let path = dir.join("pipeline-herder.yaml");
    write(
        &path,
        &[
            "gitlab_instances:",
            &format!("  127.0.0.1:{gitlab}:"),
            &format!("    api_url: http://127.0.0.1:{gitlab}/api/v4"),
            "matchers_file: matchers.yaml",
            "gitlab_api:",
            "  timeout: 10s",
            "  retry: {base_delay: 200ms, max_delay: 2s, max_elapsed: 30s}",
            "message_retry: {delays: [1s, 2s, 5s], max_attempts: null}",
            "",
        ]
        .join("\n"),
    )?;
    Ok(path)
}

fn write_files(dir: &Path, ports: &Ports, topic: &str, recipes: &str) -> Result<Files, RunError> {
    let herder = herder_files(dir, ports.gitlab)?;
    let fleet = url(ports.fleet.0);
    let sentinel = dir.join("sentinel.yaml");
    write(
        &sentinel,
        &[
            "sentinel:",
            "  name: chaos-sentinel-clusters",
            "tracing_enabled: false",
            "resource_type: clusters",
            "poll_interval: 2s",
            "clients:",
            "  hyperfleet_api:",
            &format!("    base_url: {fleet}"),
            "    timeout: 10s",
            "    page_size: 100",
            "  broker:",
            &format!("    topic: {topic}"),
            "message_data:",
            "  id: \"resource.id\"",
            "  kind: \"resource.kind\"",
            "  href: \"resource.href\"",
            "  generation: \"resource.generation\"",
            "",
        ]
        .join("\n"),
    )?;
    let kubeconfig = dir.join("fake-kube.kubeconfig");
    let adapter = dir.join("adapter.yaml");
    write(
        &adapter,
        &[
            "adapter:",
            "  name: steadfast-adapter",
            "  version: \"0.2.0\"",
            "clients:",
            "  hyperfleet_api:",
            &format!("    base_url: {fleet}"),
            "    timeout: 5s",
            "    retry_attempts: 3",
            "    retry_backoff: exponential",
            "    base_delay: 500ms",
            "    max_delay: 5s",
            "  broker:",
            "    subscription_id: steadfast-adapter",
            &format!("    topic: {topic}"),
            "    prefetch_count: 16",
            "    parallelism: 8",
            "    retry_delays: [1s, 2s, 5s]",
            "    max_attempts: 10",
            "  kubernetes:",
            &format!("    kube_config_path: {}", kubeconfig.display()),
            "    qps: 50",
            "    burst: 100",
            "",
        ]
        .join("\n"),
    )?;
    let recipes_path = dir.join("recipes.yaml");
    write(&recipes_path, recipes)?;
    Ok(Files {
        herder,
        sentinel,
        adapter,
        kubeconfig,
        recipes: recipes_path,
    })
}

struct Plan<'a> {
    bin: &'a Path,
    dir: &'a Path,
    namespace: &'a str,
    infra: &'a InfraArgs,
    databases: &'a Databases,
    db: &'a HashMap<&'static str, String>,
}

impl Plan<'_> {
    #[allow(clippy::too_many_arguments)]
    fn spec(
        &self,
        name: &str,
        binary: &str,
        role: Role,
        args: Vec<String>,
        env: Vec<(&str, String)>,
        ready: Readiness,
        http: String,
    ) -> ProcSpec {
        let mut env: Vec<(String, String)> =
            env.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
        if role == Role::Service {
            env.extend(
                [
                    ("STEADFAST_NAMESPACE", self.namespace.to_owned()),
                    ("AMQP_URL", self.infra.amqp_url.clone()),
                    ("LOG_FORMAT", "json".to_owned()),
                    ("LOG_LEVEL", "info".to_owned()),
                    ("SHUTDOWN_TIMEOUT", SHUTDOWN_TIMEOUT.to_owned()),
                ]
                .map(|(k, v)| (k.to_owned(), v)),
            );
        }
        ProcSpec {
            name: name.to_owned(),
            role,
            program: self.bin.join(binary),
            args,
            env,
            ready,
            http,
            log: self.dir.join(format!("{name}.log")),
        }
    }

    fn service_env(&self, ports: (u16, u16)) -> Vec<(&'static str, String)> {
        vec![
            ("HTTP_LISTEN", format!("127.0.0.1:{}", ports.0)),
            ("METRICS_LISTEN", format!("127.0.0.1:{}", ports.1)),
        ]
    }

    fn database(&self, service: &str) -> String {
        self.databases.url(&self.db[service])
    }
}

/// The fakes and fleet-api (group 1), the receivers (group 2), everything else (group 3).
fn specs(plan: &Plan<'_>, ports: &Ports, files: &Files) -> Vec<Vec<ProcSpec>> {
    let readyz = |port: u16| Readiness::Ok200(format!("{}/readyz", url(port)));
    let mut fakes = vec![
        plan.spec(
            "fake-gitlab",
            "fake-gitlab",
            Role::Fake,
            vec![format!("127.0.0.1:{}", ports.gitlab)],
            vec![],
            Readiness::Answers(format!("{}/fake/requests", url(ports.gitlab))),
            url(ports.gitlab),
        ),
        plan.spec(
            "fake-kube",
            "fake-kube",
            Role::Fake,
            vec![],
            vec![
                ("FAKE_KUBE_LISTEN", format!("127.0.0.1:{}", ports.kube)),
                (
                    "FAKE_KUBE_KUBECONFIG",
                    files.kubeconfig.display().to_string(),
                ),
                ("FAKE_KUBE_COMPLETE_JOBS_AFTER", "2".into()),
            ],
            Readiness::Answers(format!("{}/api/v1/namespaces", url(ports.kube))),
            url(ports.kube),
        ),
        plan.spec(
            "fake-webex",
            "fake-webex",
            Role::Fake,
            vec![format!("127.0.0.1:{}", ports.webex)],
            vec![("WEBEX_BOT_TOKEN", WEBEX_BOT_TOKEN.into())],
            Readiness::Answers(format!("{}/fake/messages", url(ports.webex))),
            url(ports.webex),
        ),
    ];
    let mut fleet_env = plan.service_env(ports.fleet);
    fleet_env.extend([
        ("DATABASE_URL", plan.database("fleet")),
        ("HYPERFLEET_CLUSTER_ADAPTERS", "steadfast-adapter".into()),
        ("HYPERFLEET_NODEPOOL_ADAPTERS", "steadfast-adapter".into()),
    ]);
    // fleet-api stands in for HyperFleet's API: a fake as far as faults go.
    let mut fleet = plan.spec(
        "fleet-api",
        "fleet-api",
        Role::Fake,
        vec![],
        fleet_env,
        readyz(ports.fleet.0),
        url(ports.fleet.0),
    );
    fleet.env.extend(
        [
            ("LOG_FORMAT", "json".to_owned()),
            ("SHUTDOWN_TIMEOUT", SHUTDOWN_TIMEOUT.to_owned()),
        ]
        .map(|(k, v)| (k.to_owned(), v)),
    );
    fakes.push(fleet);

    let receivers = ports
        .receivers
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let mut env = plan.service_env(*p);
            env.extend([
                ("DATABASE_URL", plan.database("receiver")),
                ("GITLAB_WEBHOOK_SECRET", GITLAB_SECRET.into()),
                ("ALERTMANAGER_TOKEN", ALERTMANAGER_TOKEN.into()),
            ]);
            plan.spec(
                &format!("webhook-receiver-{}", i + 1),
                "webhook-receiver",
                Role::Service,
                vec![],
                env,
                readyz(p.0),
                url(p.0),
            )
        })
        .collect();

    let mut rest = Vec::new();
    let mut env = plan.service_env(ports.herder);
    env.extend([
        ("DATABASE_URL", plan.database("herder")),
        ("HERDER_ADMIN_TOKEN", HERDER_ADMIN_TOKEN.into()),
    ]);
    rest.push(plan.spec(
        "pipeline-herder",
        "pipeline-herder",
        Role::Service,
        vec![
            "serve".into(),
            "--config".into(),
            files.herder.display().to_string(),
        ],
        env,
        readyz(ports.herder.0),
        url(ports.herder.0),
    ));
    rest.push(plan.spec(
        "sentinel",
        "sentinel",
        Role::Service,
        vec![
            "serve".into(),
            "--config".into(),
            files.sentinel.display().to_string(),
        ],
        plan.service_env(ports.sentinel),
        readyz(ports.sentinel.0),
        url(ports.sentinel.0),
    ));
    rest.push(plan.spec(
        "adapter",
        "adapter",
        Role::Service,
        vec![
            "serve".into(),
            "--config".into(),
            files.adapter.display().to_string(),
            "--task-config".into(),
            "k8s/base/adapter/task-config.yaml".into(),
        ],
        plan.service_env(ports.adapter),
        readyz(ports.adapter.0),
        url(ports.adapter.0),
    ));
    for (i, p) in ports.reconcilers.iter().enumerate() {
        let mut env = plan.service_env(*p);
        env.extend([
            ("DATABASE_URL", plan.database("reconciler")),
            ("REDIS_URL", plan.infra.redis_url.clone()),
            ("EXECUTOR", "local".into()),
            ("RECIPES_FILE", files.recipes.display().to_string()),
            (
                "RECIPE_WORK_DIR",
                plan.dir
                    .join(format!("recipes-{}", i + 1))
                    .display()
                    .to_string(),
            ),
            ("RECONCILER_API_TOKEN", RECONCILER_TOKEN.into()),
            ("WEBEX_API_URL", format!("{}/v1", url(ports.webex))),
            ("WEBEX_BOT_TOKEN", WEBEX_BOT_TOKEN.into()),
            ("WEBEX_ROOM_ID", "chaos-room".into()),
            ("WEBEX_WEBHOOK_SECRET", "chaos-webex-webhook-secret".into()),
            ("WEBEX_APPROVERS", "chaos-approver".into()),
            (
                "WEBEX_WEBHOOK_URL",
                format!("{}/webex/attachment-actions", url(p.0)),
            ),
        ]);
        rest.push(plan.spec(
            &format!("alert-reconciler-{}", i + 1),
            "alert-reconciler",
            Role::Service,
            vec![],
            env,
            readyz(p.0),
            url(p.0),
        ));
    }
    vec![fakes, receivers, rest]
}

/// Carries out a run and returns its report.
pub async fn run(args: RunArgs) -> Result<Report, RunError> {
    let interrupt = interrupt_token();
    let seed = args.seed.unwrap_or_else(|| rand::rng().random());
    let hex: String = format!("{:08x}", rand::rng().random::<u32>());
    let namespace = format!("chaos-{hex}");
    let run_name = format!("{}-{hex}", chrono::Utc::now().format("%Y%m%d-%H%M%S"));
    say(&format!(
        "run {run_name}: seed {seed} (replay with --seed {seed}), namespace {namespace}"
    ));
    let bin = args.bin_dir.clone().unwrap_or_else(default_bin_dir);
    for binary in BINARIES {
        let path = bin.join(binary);
        if !path.is_file() {
            return Err(RunError::MissingBinary(path));
        }
    }
    let dir =
        std::path::absolute(args.work_dir.join(&run_name)).map_err(|source| RunError::Write {
            path: args.work_dir.clone(),
            source,
        })?;
    std::fs::create_dir_all(&dir).map_err(|source| RunError::Write {
        path: dir.clone(),
        source,
    })?;
    let chaos_bin = std::env::current_exe().map_err(RunError::CurrentExe)?;
    let alive_file = dir.join("alive");
    write(
        &alive_file,
        "this run is alive; `hang` recipes return once it is gone\n",
    )?;

    // The run's own Redis, PostgreSQL and RabbitMQ (stopped and deleted when `private` is
    // dropped, after the stack and the cleanup below), or the shared ones.
    let (mut private, infra) = tokio::select! {
        result = crate::private::provide(&args, &dir, &hex) => result?,
        () = interrupt.cancelled() => return Err(RunError::Interrupted),
    };
    let databases = Databases {
        base: infra.database_base.clone(),
    };
    let management = Management::new(
        &infra.management_url,
        &infra.management_user,
        &infra.management_password,
    )
    .with_fallbacks(&infra.management_fallbacks);
    // Before anything is created: a run whose cleanup cannot reach the management API would
    // leave its queues behind.
    management.queues(&namespace).await?;
    let db: HashMap<&'static str, String> = ["receiver", "herder", "reconciler", "fleet"]
        .into_iter()
        .map(|s| (s, format!("chaos_{hex}_{s}")))
        .collect();
    let mut guard = CleanupGuard((!args.keep).then(|| Cleanup {
        databases: databases.clone(),
        names: db.values().cloned().collect(),
        management: management.clone(),
        prefix: namespace.clone(),
        alive_file: alive_file.clone(),
    }));
    for name in db.values() {
        databases.create(name).await?;
    }

    let recipes = recipe::plan(args.alert_groups);
    let ports = Ports::allocate()?;
    let topic = format!("{namespace}-clusters");
    let files = write_files(
        &dir,
        &ports,
        &topic,
        &recipe::registry_yaml(&recipes, &chaos_bin, &alive_file),
    )?;
    let plan = Plan {
        bin: &bin,
        dir: &dir,
        namespace: &namespace,
        infra: &infra,
        databases: &databases,
        db: &db,
    };
    let mut stack = Stack::new(args.ready_timeout);
    let mut proxies = crate::proxy::BrokerProxies::default();
    let upstreams: Vec<String> = infra.amqp_url.split(',').map(str::to_owned).collect();
    for mut group in specs(&plan, &ports, &files) {
        if args.faults.contains(&faults::FaultKind::Proxy) {
            for spec in &mut group {
                proxies.route(spec, &upstreams).await?;
            }
        }
        let names: Vec<String> = group.iter().map(|s| s.name.clone()).collect();
        say(&format!("starting {}", names.join(", ")));
        tokio::select! {
            result = stack.start_group(group) => result?,
            () = interrupt.cancelled() => return Err(RunError::Interrupted),
        }
    }
    say(&format!("stack ready; logs in {}", dir.display()));

    // The probe: every event on `<ns>.webhooks`, bound before any load.
    let probe_queue = format!("{namespace}.chaos.probe");
    management
        .declare_bound_queue(&probe_queue, &format!("{namespace}.webhooks"), "#")
        .await?;

    let clock = Clock(Instant::now());
    let recorder = Recorder::default();
    let observer = Observer::default();
    let stop_observing = CancellationToken::new();
    let probing = tokio::spawn(crate::probe::run(
        infra.amqp_url.split(',').map(str::to_owned).collect(),
        probe_queue.clone(),
        observer.clone(),
        clock,
        stop_observing.clone(),
    ));
    let observing = tokio::spawn({
        let observer = observer.clone();
        let sources = Sources {
            fake_gitlab: url(ports.gitlab),
            fake_webex: url(ports.webex),
        };
        let stop = stop_observing.clone();
        async move { observer.run(sources, clock, stop).await }
    });

    let targets = Targets {
        receivers: ports.receivers.iter().map(|p| url(p.0)).collect(),
        fake_gitlab: url(ports.gitlab),
        gitlab_secret: GITLAB_SECRET.into(),
        alertmanager_token: ALERTMANAGER_TOKEN.into(),
        key_prefix: namespace.clone(),
    };
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
            adapter_queue: format!("{topic}-steadfast-adapter"),
            fleet_api: url(ports.fleet.0),
            herder_db: databases.url(&db["herder"]),
            reconciler_db: databases.url(&db["reconciler"]),
        },
        Start {
            args: &args,
            infra: &infra,
            management: &management,
            seed,
            clock,
            targets: targets.clone(),
            recorder: recorder.clone(),
            observer: observer.clone(),
            stop_load: stop_load.clone(),
            stop_observing: stop_observing.clone(),
        },
    )
    .await;

    // Faults, in the schedule's order, until the load's end.
    let mut schedule = faults::schedule(seed, args.duration, args.fault_interval, &args.faults);
    checks.filter_schedule(&mut schedule);
    say(&format!("{} fault(s) scheduled", schedule.len()));
    let reconcilers: Vec<String> = (1..=ports.reconcilers.len())
        .map(|i| format!("alert-reconciler-{i}"))
        .collect();
    let mut records: Vec<FaultRecord> = Vec::new();
    let mut warnings: Vec<String> = check_warnings;
    let load_end = clock.0 + args.duration;
    let mut next = schedule.iter().peekable();
    let mut fault_env = faults::FaultEnv::new(
        seed,
        private.as_mut(),
        &proxies,
        url(ports.gitlab),
        url(ports.kube),
        url(ports.webex),
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
        checks.maybe_stop_adapter(&mut stack, clock.now()).await;
        if let Some(fault) = next.next_if(|f| clock.now() >= f.at) {
            let at = clock.now();
            let record = faults::inject(
                &mut stack,
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

    // The quiet period: re-check until everything holds or the deadline passes.
    let quiet_deadline = Instant::now() + args.quiet_timeout;
    let mut verdicts;
    loop {
        for exit in stack.reap_unexpected().await {
            say(&format!("unexpected: {exit}"));
        }
        verdicts = evaluate(
            &recorder,
            &observer,
            &stack,
            &databases,
            &db,
            &recipes,
            &reconcilers,
            &mut warnings,
            &checks,
        )
        .await;
        let holds = verdicts.iter().all(|v| v.holds);
        if holds || Instant::now() >= quiet_deadline || interrupt.is_cancelled() {
            break;
        }
        tokio::select! {
            () = tokio::time::sleep(QUIET_POLL) => {}
            () = interrupt.cancelled() => {}
        }
    }
    stop_observing.cancel();
    let _ = observing.await;
    let _ = probing.await;
    checks.finish().await;
    // The observer's last look may have seen more: evaluate once more on it.
    verdicts = evaluate(
        &recorder,
        &observer,
        &stack,
        &databases,
        &db,
        &recipes,
        &reconcilers,
        &mut warnings,
        &checks,
    )
    .await;
    let sabotage = checks.sabotage_report().await;
    warnings.extend(checks.errors());

    // What the broker holds at the end (depth per queue of the run), for a failed invariant's
    // post-mortem: the run's own broker is deleted with it.
    if let Ok(queues) = management.queue_report(&namespace).await {
        let _ = std::fs::write(dir.join("queues.tsv"), queues);
    }
    say("stopping the stack");
    stack.shutdown().await;
    drop(stack);
    match guard.disarm() {
        Some(cleanup) => warnings.extend(cleanup.run().await),
        None => say(&format!(
            "--keep: databases chaos_{hex}_*, queues and exchanges {namespace}* kept"
        )),
    }
    if let Some(mut owned) = private.take() {
        say("stopping the run's own Redis, PostgreSQL and RabbitMQ");
        // Blocking (signals, the cluster script): off the async workers' backs.
        warnings.extend(tokio::task::block_in_place(|| owned.stop()));
    }

    let observed = observer.snapshot();
    warnings.extend(observed.errors.iter().take(20).cloned());
    warnings.sort();
    warnings.dedup();
    let deliveries = recorder.deliveries();
    let jobs = recorder.jobs();
    let mut lost = verdicts
        .first()
        .map(|v| v.violations.len())
        .unwrap_or_default();
    lost += jobs
        .iter()
        .filter(|j| j.kind == JobKind::Transient && j.answered)
        .filter(|j| observed.retries.get(&j.job_id).copied().unwrap_or(0) == 0)
        .count();
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

/// Every invariant on what is recorded and observed right now.
#[allow(clippy::too_many_arguments)]
async fn evaluate(
    recorder: &Recorder,
    observer: &Observer,
    stack: &Stack,
    databases: &Databases,
    db: &HashMap<&'static str, String>,
    recipes: &[recipe::RecipeDef],
    reconcilers: &[String],
    warnings: &mut Vec<String>,
    checks: &Checks,
) -> Vec<Verdict> {
    let observed = observer.snapshot();
    let seen = observed.probe.keys().cloned().collect();
    let jobs = recorder.jobs();
    let mut verdicts = vec![
        invariants::webhooks_delivered(
            &recorder.deliveries(),
            &seen,
            &jobs,
            &checks.consumers().await,
        ),
        invariants::jobs_retried_once(&jobs, &observed.retries),
    ];
    let bases: Vec<String> = reconcilers
        .iter()
        .filter_map(|n| stack.spec(n).map(|s| s.http.clone()))
        .collect();
    match observe::incidents(&bases, RECONCILER_TOKEN).await {
        Ok(incidents) => verdicts.push(invariants::alerts_one_incident(
            &recorder.alerts(),
            &incidents,
            &observed.analyses,
            recipes,
        )),
        Err(error) => verdicts.push(Verdict {
            name: invariants::ALERTS_ONE_INCIDENT,
            holds: false,
            checked: 0,
            violations: vec![format!("cannot list incidents: {error}")],
            notes: Vec::new(),
        }),
    }
    verdicts.push(checks.fleet_verdict().await);
    let parked = checks.parked(warnings).await;
    let spool = match databases.count(&db["receiver"], "webhook_spool").await {
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

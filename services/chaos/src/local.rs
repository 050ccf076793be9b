//! The stack the suite starts itself: the run's own infrastructure (or the shared one,
//! isolated by names), databases, generated configuration, and every binary as a process of
//! its own with its own loopback ports.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use tokio_util::sync::CancellationToken;

use rand::Rng;

use crate::cli::{InfraArgs, RunArgs, StackArgs};
use crate::deployment::{Deployment, ServiceTarget};
use crate::faults;
use crate::infra::{Databases, Management};
use crate::load::Targets;
use crate::recipe;
use crate::run::{RunError, say, write};
use crate::stack::{Launch, Local, ProcSpec, Readiness, Role, Stack, StackError, reserve_port};
use crate::system::{Cleanup, CleanupGuard, Evidence, Fakes, ManagementLogin, System};

const GITLAB_SECRET: &str = "chaos-gitlab-secret";
const ALERTMANAGER_TOKEN: &str = "chaos-alertmanager-token";
const RECONCILER_TOKEN: &str = "chaos-reconciler-token";
const WEBEX_BOT_TOKEN: &str = "chaos-webex-bot-token";
const HERDER_ADMIN_TOKEN: &str = "chaos-herder-admin-token";
/// The services' own shutdown budget: short, a run stops them all at the end.
const SHUTDOWN_TIMEOUT: &str = "5s";

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
    /// Free ports for every process, and the listeners that hold them until dropped: a run
    /// that released them at once saw a fault proxy, bound to port 0 before the services
    /// started, given a reconciler's port ("Address already in use").
    fn reserve() -> Result<(Self, Vec<std::net::TcpListener>), StackError> {
        let mut held = Vec::new();
        let mut port = || -> Result<u16, StackError> {
            let (port, listener) = reserve_port()?;
            held.push(listener);
            Ok(port)
        };
        let gitlab = port()?;
        let kube = port()?;
        let webex = port()?;
        let mut pair = || -> Result<(u16, u16), StackError> { Ok((port()?, port()?)) };
        let ports = Self {
            gitlab,
            kube,
            webex,
            fleet: pair()?,
            receivers: vec![pair()?, pair()?],
            herder: pair()?,
            sentinel: pair()?,
            adapter: pair()?,
            reconcilers: vec![pair()?, pair()?],
        };
        Ok((ports, held))
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
            launch: Launch::Local(Local {
                program: self.bin.join(binary),
                args,
                env,
                log: self.dir.join(format!("{name}.log")),
            }),
            ready,
            http,
        }
    }

    fn service_env(&self, ports: (u16, u16)) -> Vec<(&'static str, String)> {
        vec![
            ("HTTP_LISTEN", format!("127.0.0.1:{}", ports.0)),
            ("METRICS_LISTEN", format!("127.0.0.1:{}", ports.1)),
        ]
    }

    /// A Steadfast service listening on `ports` (HTTP, metrics), with the common
    /// environment plus `extra`, ready once its `/readyz` answers 200.
    fn service(
        &self,
        name: &str,
        binary: &str,
        args: Vec<String>,
        ports: (u16, u16),
        extra: Vec<(&str, String)>,
    ) -> ProcSpec {
        let mut env = self.service_env(ports);
        env.extend(extra);
        self.spec(
            name,
            binary,
            Role::Service,
            args,
            env,
            Readiness::Ok200(format!("{}/readyz", url(ports.0))),
            url(ports.0),
        )
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
    if let Launch::Local(local) = &mut fleet.launch {
        local.env.extend(
            [
                ("LOG_FORMAT", "json".to_owned()),
                ("SHUTDOWN_TIMEOUT", SHUTDOWN_TIMEOUT.to_owned()),
            ]
            .map(|(k, v)| (k.to_owned(), v)),
        );
    }
    fakes.push(fleet);

    let receivers = ports
        .receivers
        .iter()
        .enumerate()
        .map(|(i, p)| {
            plan.service(
                &format!("webhook-receiver-{}", i + 1),
                "webhook-receiver",
                vec![],
                *p,
                vec![
                    ("DATABASE_URL", plan.database("receiver")),
                    ("GITLAB_WEBHOOK_SECRET", GITLAB_SECRET.into()),
                    ("ALERTMANAGER_TOKEN", ALERTMANAGER_TOKEN.into()),
                ],
            )
        })
        .collect();

    // `<binary> serve --config FILE …`
    let serve = |config: &Path, more: &[&str]| {
        let mut args = vec![
            "serve".to_owned(),
            "--config".to_owned(),
            config.display().to_string(),
        ];
        args.extend(more.iter().map(|a| (*a).to_owned()));
        args
    };
    let mut rest = vec![
        plan.service(
            "pipeline-herder",
            "pipeline-herder",
            serve(&files.herder, &[]),
            ports.herder,
            vec![
                ("DATABASE_URL", plan.database("herder")),
                ("HERDER_ADMIN_TOKEN", HERDER_ADMIN_TOKEN.into()),
            ],
        ),
        plan.service(
            "sentinel",
            "sentinel",
            serve(&files.sentinel, &[]),
            ports.sentinel,
            vec![],
        ),
        plan.service(
            "adapter",
            "adapter",
            serve(
                &files.adapter,
                &["--task-config", "k8s/base/adapter/task-config.yaml"],
            ),
            ports.adapter,
            vec![],
        ),
    ];
    for (i, p) in ports.reconcilers.iter().enumerate() {
        let env = vec![
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
        ];
        rest.push(plan.service(
            &format!("alert-reconciler-{}", i + 1),
            "alert-reconciler",
            vec![],
            *p,
            env,
        ));
    }
    vec![fakes, receivers, rest]
}

/// Starts the run's infrastructure (its own, or the shared one with `--infra shared`), creates
/// its databases and starts every process; `run_tag` (`chaos-<hex>`) is the namespace.
pub async fn start(
    args: &RunArgs,
    dir: &Path,
    hex: &str,
    run_tag: &str,
    interrupt: &CancellationToken,
    pid_dir: Option<PathBuf>,
) -> Result<System, RunError> {
    let bin = args.bin_dir.clone().unwrap_or_else(default_bin_dir);
    for binary in BINARIES {
        let path = bin.join(binary);
        if !path.is_file() {
            return Err(RunError::MissingBinary(path));
        }
    }
    let namespace = run_tag.to_owned();
    let chaos_bin = std::env::current_exe().map_err(RunError::CurrentExe)?;
    let alive_file = dir.join("alive");

    // The run's own Redis, PostgreSQL and RabbitMQ (stopped and deleted when `private` is
    // dropped, after the stack and the cleanup below), or the shared ones.
    let (private, infra) = tokio::select! {
        result = crate::private::provide(args, dir, hex) => result?,
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
    let guard = CleanupGuard((!args.keep).then(|| Cleanup {
        databases: Some((databases.clone(), db.values().cloned().collect())),
        management: management.clone(),
        prefix: namespace.clone(),
        alive_file: alive_file.clone(),
    }));
    for name in db.values() {
        databases.create(name).await?;
    }

    let recipes = recipe::plan(args.alert_groups);
    let (ports, held_ports) = Ports::reserve()?;
    let topic = format!("{namespace}-clusters");
    let files = write_files(
        dir,
        &ports,
        &topic,
        &recipe::registry_yaml(&recipes, &chaos_bin, &alive_file),
    )?;
    let plan = Plan {
        bin: &bin,
        dir,
        namespace: &namespace,
        infra: &infra,
        databases: &databases,
        db: &db,
    };
    let mut stack = Stack::new(args.ready_timeout);
    if let Some(dir) = pid_dir {
        stack = stack.with_pid_files(dir);
    }
    let mut proxies = crate::proxy::BrokerProxies::default();
    let amqp_urls: Vec<String> = infra.amqp_url.split(',').map(str::to_owned).collect();
    let mut groups = specs(&plan, &ports, &files);
    // Every proxy is bound while the services' ports are still held.
    if args.faults.contains(&faults::FaultKind::Proxy) {
        for spec in groups.iter_mut().flatten() {
            proxies.route(spec, &amqp_urls).await?;
        }
    }
    drop(held_ports);
    for group in groups {
        let names: Vec<String> = group.iter().map(|s| s.name.clone()).collect();
        say(&format!("starting {}", names.join(", ")));
        tokio::select! {
            result = stack.start_group(group) => result?,
            () = interrupt.cancelled() => return Err(RunError::Interrupted),
        }
    }
    Ok(System {
        stack,
        targets: Targets {
            receivers: ports.receivers.iter().map(|p| url(p.0)).collect(),
            fake_gitlab: url(ports.gitlab),
            gitlab_secret: GITLAB_SECRET.into(),
            alertmanager_token: ALERTMANAGER_TOKEN.into(),
            run_tag: run_tag.to_owned(),
            first_job_id: 10_000,
        },
        fakes: Fakes {
            gitlab: url(ports.gitlab),
            kube: Some(url(ports.kube)),
            webex: url(ports.webex),
        },
        fleet_api: url(ports.fleet.0),
        adapter_queue: format!("{topic}-steadfast-adapter"),
        evidence: Evidence {
            receiver_db: databases.url(&db["receiver"]),
            herder_db: databases.url(&db["herder"]),
            reconciler_db: databases.url(&db["reconciler"]),
        },
        reconciler_token: RECONCILER_TOKEN.into(),
        recipes,
        reconcilers: (1..=ports.reconcilers.len())
            .map(|i| format!("alert-reconciler-{i}"))
            .collect(),
        proxies,
        guard,
        private,
        deployed: false,
        kept: format!("databases chaos_{hex}_*, queues and exchanges {namespace}*"),
        namespace,
        amqp_urls,
        management,
        management_login: ManagementLogin {
            url: infra.management_url.clone(),
            user: infra.management_user.clone(),
            password: infra.management_password.clone(),
        },
    })
}

/// `steadfast-chaos stack`: starts the stack a run would, writes a deployment file for
/// `run --target` (kill commands through pid files), and holds the stack until interrupted,
/// starting again whatever dies — the orchestrator a deployment has. Practice for a staging
/// run, and how the suite tests its own `--target` mode.
pub async fn hold(args: &StackArgs) -> Result<(), RunError> {
    let interrupt = crate::run::interrupt_token();
    let hex: String = format!("{:08x}", rand::rng().random::<u32>());
    let run_tag = format!("chaos-{hex}");
    let name = format!("{}-{hex}-stack", chrono::Utc::now().format("%Y%m%d-%H%M%S"));
    let dir = crate::run::prepare_dir(&args.run.work_dir, &name)?;
    let pids = dir.join("pids");
    std::fs::create_dir_all(&pids).map_err(|source| RunError::Write {
        path: pids.clone(),
        source,
    })?;
    let mut system = start(&args.run, &dir, &hex, &run_tag, &interrupt, Some(pids)).await?;
    write(&args.write_target, &deployment_file(&system))?;
    say(&format!(
        "stack up (namespace {}); deployment file {}; logs in {}; Ctrl-C stops it",
        system.namespace,
        args.write_target.display(),
        dir.display()
    ));
    loop {
        tokio::select! {
            () = interrupt.cancelled() => break,
            () = tokio::time::sleep(HOLD_POLL) => {}
        }
        for exit in system.stack.reap_unexpected().await {
            say(&format!("started again: {exit}"));
        }
    }
    say("stopping the stack");
    system.stack.shutdown().await;
    if let Some(cleanup) = system.guard.disarm() {
        for problem in cleanup.run().await {
            say(&format!("cleanup: {problem}"));
        }
    }
    if let Some(mut owned) = system.private.take() {
        for problem in tokio::task::block_in_place(|| owned.stop()) {
            say(&format!("cleanup: {problem}"));
        }
    }
    let _ = std::fs::remove_file(&args.write_target);
    Ok(())
}

/// How often a held stack looks for processes that died.
const HOLD_POLL: std::time::Duration = std::time::Duration::from_millis(300);

/// The deployment file (crate::deployment) of a held stack: killed through pid files, each
/// command returning once the process is gone (the holder reaps it and starts it again).
fn deployment_file(system: &System) -> String {
    let services = system
        .stack
        .names(Role::Service)
        .into_iter()
        .filter_map(|name| {
            let url = system.stack.spec(&name)?.http.clone();
            let kill = system.stack.pid_file(&name).map(|pid_file| {
                format!(
                    "pid=$(cat '{}') && kill -9 \"$pid\" && tail --pid=\"$pid\" -f /dev/null",
                    pid_file.display()
                )
            });
            Some((name, ServiceTarget { url, kill }))
        })
        .collect();
    let login = &system.management_login;
    let deployment = Deployment {
        namespace: system.namespace.clone(),
        services,
        fleet_api: system.fleet_api.clone(),
        adapter_queue: system.adapter_queue.clone(),
        fakes: system.fakes.clone(),
        amqp_url: system.amqp_urls.join(","),
        management_url: login.url.clone(),
        management_user: login.user.clone(),
        management_password: login.password.clone(),
        receiver_db: system.evidence.receiver_db.clone(),
        herder_db: system.evidence.herder_db.clone(),
        reconciler_db: system.evidence.reconciler_db.clone(),
        gitlab_webhook_secret: system.targets.gitlab_secret.clone(),
        alertmanager_token: system.targets.alertmanager_token.clone(),
        reconciler_api_token: system.reconciler_token.clone(),
    };
    format!(
        "# Written by `steadfast-chaos stack`: the stack it holds, as a deployment for\n\
# `steadfast-chaos run --target`.\n{}",
        deployment.to_yaml()
    )
}

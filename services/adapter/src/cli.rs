//! The command line, HyperFleet's: `adapter serve --config a.yaml --task-config t.yaml
//! [--dry-run-event e.json ...]`, plus the settings every Steadfast service takes.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, Parser, Subcommand};
use steadfast_service_kit::host::{Launch, LoadError};
use steadfast_service_kit::process::invalid_config;
use steadfast_service_kit::settings::CommonArgs;

use crate::config::{self, Config, ConfigError, Overrides, ServiceSettings, Sources};
use crate::dry_run::{self, DryRun, Output};

#[derive(Debug, Parser)]
#[command(
    name = "adapter",
    version,
    about = "HyperFleet adapter: applies HyperFleet task configs to Kubernetes and reports status, retrying transient failures instead of dropping them"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Consume events and apply the task config (or dry-run one event with --dry-run-event).
    Serve(Box<ServeArgs>),
    /// Print the version and the HyperFleet task-config formats this adapter runs.
    Version,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The adapter (deployment) config.
    #[arg(short = 'c', long = "config", env = "HYPERFLEET_ADAPTER_CONFIG")]
    pub adapter_config: Option<PathBuf>,

    /// The task config.
    #[arg(long = "task-config", env = "HYPERFLEET_TASK_CONFIG")]
    pub task_config: Option<PathBuf>,

    /// Overrides clients.hyperfleet_api.base_url.
    #[arg(long, env = "HYPERFLEET_API_BASE_URL")]
    pub hyperfleet_api_base_url: Option<String>,

    /// Overrides clients.broker.subscription_id (legacy env: BROKER_SUBSCRIPTION_ID).
    #[arg(long, env = "HYPERFLEET_BROKER_SUBSCRIPTION_ID")]
    pub broker_subscription_id: Option<String>,

    /// Overrides clients.broker.topic (legacy env: BROKER_TOPIC).
    #[arg(long, env = "HYPERFLEET_BROKER_TOPIC")]
    pub broker_topic: Option<String>,

    /// Overrides clients.kubernetes.kube_config_path.
    #[arg(long, env = "HYPERFLEET_KUBE_CONFIG_PATH")]
    pub kube_config_path: Option<PathBuf>,

    /// Read `ref` files and file sources under FROM from TO instead, e.g.
    /// `/etc/adapter/job.yaml=./job.yaml` (for configs written for the cluster's mounts).
    #[arg(long = "remap-path", value_name = "FROM=TO", env = "HYPERFLEET_REMAP_PATHS", value_delimiter = ',', value_parser = config::parse_remap)]
    pub remap_paths: Vec<(PathBuf, PathBuf)>,

    /// Refuse a task config our stricter checks only warn about (undefined variables, unknown
    /// functions, templates that do not parse, params that are never set). HyperFleet loads
    /// such configs; so do we without this flag. Also `validation.strict: true` in --config.
    #[arg(long, env = "ADAPTER_STRICT_VALIDATION")]
    pub strict: bool,

    /// Dry-run this CloudEvent (JSON) and exit; no broker, API or cluster is touched.
    #[arg(long)]
    pub dry_run_event: Option<PathBuf>,

    /// Recorded HyperFleet API responses for the dry run (HyperFleet's format).
    #[arg(long, requires = "dry_run_event")]
    pub dry_run_api_responses: Option<PathBuf>,

    /// What the cluster reports for applied objects, by name (HyperFleet's format).
    #[arg(long, requires = "dry_run_event")]
    pub dry_run_discovery: Option<PathBuf>,

    /// Also print API bodies and discovered objects.
    #[arg(long, requires = "dry_run_event")]
    pub dry_run_verbose: bool,

    /// Trace format.
    #[arg(long, value_enum, default_value = "text", requires = "dry_run_event")]
    pub dry_run_output: Output,

    #[command(flatten)]
    pub common: CommonArgs,
}

impl ServeArgs {
    /// Builds the config from flags, the environment and the two files.
    pub fn config(&self) -> Result<Config, ConfigError> {
        let legacy = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        let environment = Arc::new(std::env::vars().collect::<BTreeMap<_, _>>());
        let sources = Sources {
            adapter_config: self.adapter_config.clone(),
            task_config: self.task_config.clone(),
            overrides: Overrides {
                api_base_url: self.hyperfleet_api_base_url.clone(),
                subscription_id: self
                    .broker_subscription_id
                    .clone()
                    .or_else(|| legacy("BROKER_SUBSCRIPTION_ID")),
                topic: self.broker_topic.clone().or_else(|| legacy("BROKER_TOPIC")),
                kube_config_path: self.kube_config_path.clone(),
            },
            remaps: self.remap_paths.clone(),
            strict: self.strict,
            environment: Arc::clone(&environment),
        };
        let clock = steadfast_rules::system_clock();
        let loaded = config::load(&sources, clock.clone(), self.dry_run_event.is_some())?;
        if self.dry_run_event.is_none() {
            // The telemetry settings are checked by the service host (`launch`).
            steadfast_messaging::BrokerConfig::new(&self.common.amqp_url, "adapter")
                .map_err(ConfigError::BrokerUrl)?;
        }
        Ok(Config {
            loaded,
            service: ServiceSettings {
                http_listen: self.common.http_listen(),
                metrics_listen: self.common.metrics_listen,
                amqp_url: self.common.amqp_url.clone(),
                shutdown_timeout: self.common.shutdown_timeout,
            },
            environment,
            clock,
        })
    }
}

impl ServeArgs {
    /// Whether this is a dry run (`--dry-run-event`) rather than the service.
    pub fn is_dry_run(&self) -> bool {
        self.dry_run_event.is_some() && !self.common.check_config
    }

    /// The configuration for the service host.
    pub fn launch(&self) -> Result<Launch<Config>, LoadError<ConfigError>> {
        Launch::load(self.config(), &self.common)
    }

    /// `--dry-run-event`: one event through the task config with mocks, the trace on stdout;
    /// exits with the trace's code (0 success, 1 failed phase), 2 when the run itself fails.
    pub async fn dry_run(&self) -> ExitCode {
        let config = match self.config() {
            Ok(config) => config,
            Err(error) => return invalid_config(error),
        };
        let Some(event) = &self.dry_run_event else {
            return invalid_config("--dry-run-event is required for a dry run");
        };
        // The trace goes to stdout; logs to stderr, warnings only.
        let _ = tracing_subscriber::fmt()
            .with_writer(std::io::stderr)
            .with_env_filter(tracing_subscriber::EnvFilter::new("warn"))
            .try_init();
        for warning in &config.loaded.warnings {
            eprintln!("warning: {warning}");
        }
        let inputs = DryRun {
            event,
            api_responses: self.dry_run_api_responses.as_deref(),
            discovery: self.dry_run_discovery.as_deref(),
            verbose: self.dry_run_verbose,
        };
        match dry_run::run(Arc::new(config.loaded), &inputs, &config.environment).await {
            Ok(trace) => {
                print!("{}", trace.render(self.dry_run_output));
                ExitCode::from(trace.exit_code())
            }
            Err(error) => {
                eprintln!("dry run failed: {error}");
                ExitCode::from(2)
            }
        }
    }
}

/// `adapter version`: the version and the HyperFleet task-config formats it runs.
pub fn print_version() -> ExitCode {
    let formats: Vec<String> = config::COMPATIBLE_VERSIONS
        .iter()
        .map(|(a, b)| format!("{a}.{b}"))
        .collect();
    println!(
        "adapter {} (runs HyperFleet task-config formats {})",
        env!("CARGO_PKG_VERSION"),
        formats.join(", ")
    );
    ExitCode::SUCCESS
}

//! The command line, HyperFleet's: `adapter serve -c a.yaml -t t.yaml [--dry-run-event e.json
//! ...]` and `adapter config-dump` with HyperFleet's override flags and variables (see
//! [`overrides`]), plus the settings every Steadfast service takes.

pub mod overrides;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::parser::ValueSource;
use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};
use steadfast_service_kit::host::{Launch, LoadError};
use steadfast_service_kit::process::invalid_config;
use steadfast_service_kit::settings::CommonArgs;

use self::overrides::OverrideArgs;
use crate::config::{self, Config, ConfigError, Loaded, ServiceSettings, Sources};
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
    /// Load both configs and print the merged result (files, environment, flags) as YAML,
    /// secrets redacted; exits 0, or 78 when the configuration is refused.
    ConfigDump(Box<ConfigDumpArgs>),
    /// Print the version and the HyperFleet task-config formats this adapter runs.
    Version,
}

/// Where the two files are and what overrides them: `serve` and `config-dump` take the same.
#[derive(Debug, Args)]
pub struct ConfigArgs {
    /// The adapter (deployment) config.
    #[arg(short = 'c', long = "config", env = "HYPERFLEET_ADAPTER_CONFIG")]
    pub adapter_config: Option<PathBuf>,

    /// The task config.
    #[arg(short = 't', long = "task-config", env = "HYPERFLEET_TASK_CONFIG")]
    pub task_config: Option<PathBuf>,

    /// Read `ref` files and file sources under FROM from TO instead, e.g.
    /// `/etc/adapter/job.yaml=./job.yaml` (for configs written for the cluster's mounts).
    #[arg(long = "remap-path", value_name = "FROM=TO", env = "HYPERFLEET_REMAP_PATHS", value_delimiter = ',', value_parser = config::parse_remap)]
    pub remap_paths: Vec<(PathBuf, PathBuf)>,

    /// Refuse a task config our stricter checks only warn about (undefined variables, unknown
    /// functions, templates that do not parse, params that are never set). HyperFleet loads
    /// such configs; so do we without this flag. Also `validation.strict: true` in --config.
    #[arg(long, env = "ADAPTER_STRICT_VALIDATION")]
    pub strict: bool,

    #[command(flatten)]
    pub overrides: OverrideArgs,
}

impl ConfigArgs {
    /// The files and their overrides; `environment` is what `env.*` params read.
    pub fn sources(
        &self,
        environment: Arc<BTreeMap<String, String>>,
        log: &GivenLogSettings,
    ) -> Sources {
        Sources {
            adapter_config: self.adapter_config.clone(),
            task_config: self.task_config.clone(),
            overrides: self.overrides.overrides(&environment, log),
            remaps: self.remap_paths.clone(),
            strict: self.strict,
            environment,
        }
    }
}

/// The log level and format when given (flag or `LOG_LEVEL` / `LOG_FORMAT`) rather than
/// defaulted: only then do they override the file's `log` section, as in HyperFleet.
#[derive(Debug, Clone, Default)]
pub struct GivenLogSettings {
    pub level: Option<String>,
    pub format: Option<String>,
}

/// Parses the command line as `Cli::parse` does, and also notes which of `serve`'s log
/// settings were given: the common settings have defaults, so only clap knows.
pub fn parse() -> Cli {
    let matches = Cli::command().get_matches();
    let mut cli = Cli::from_arg_matches(&matches).unwrap_or_else(|error| error.exit());
    if let (Command::Serve(args), Some(("serve", serve))) = (&mut cli.command, matches.subcommand())
    {
        let given = |id: &str| {
            serve
                .value_source(id)
                .is_some_and(|source| source != ValueSource::DefaultValue)
        };
        args.given_log = GivenLogSettings {
            level: given("log_level").then(|| args.common.log_level.clone()),
            format: given("log_format").then(|| args.common.log_format.clone()),
        };
    }
    cli
}

/// The load's warnings on stderr, for the commands that print instead of logging.
fn print_warnings(loaded: &Loaded) {
    for warning in &loaded.warnings {
        eprintln!("warning: {warning}");
    }
}

/// The process environment, read once.
fn process_environment() -> Arc<BTreeMap<String, String>> {
    Arc::new(std::env::vars().collect())
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub config: ConfigArgs,

    /// Dry-run this CloudEvent (JSON) and exit; no broker, API or cluster is touched.
    #[arg(help_heading = "Dry run", long)]
    pub dry_run_event: Option<PathBuf>,

    /// Recorded HyperFleet API responses for the dry run (HyperFleet's format).
    #[arg(help_heading = "Dry run", long, requires = "dry_run_event")]
    pub dry_run_api_responses: Option<PathBuf>,

    /// What the cluster reports for applied objects, by name (HyperFleet's format).
    #[arg(help_heading = "Dry run", long, requires = "dry_run_event")]
    pub dry_run_discovery: Option<PathBuf>,

    /// Also print API bodies and discovered objects.
    #[arg(help_heading = "Dry run", long, requires = "dry_run_event")]
    pub dry_run_verbose: bool,

    /// Trace format.
    #[arg(
        help_heading = "Dry run",
        long,
        value_enum,
        default_value = "text",
        requires = "dry_run_event"
    )]
    pub dry_run_output: Output,

    #[command(flatten, next_help_heading = "Service (as every Steadfast service)")]
    pub common: CommonArgs,

    /// Set by [`parse`].
    #[arg(skip)]
    pub given_log: GivenLogSettings,
}

impl ServeArgs {
    /// Builds the config from flags, the environment and the two files.
    pub fn config(&self) -> Result<Config, ConfigError> {
        let environment = process_environment();
        let sources = self
            .config
            .sources(Arc::clone(&environment), &self.given_log);
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
        print_warnings(&config.loaded);
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

#[derive(Debug, Args)]
pub struct ConfigDumpArgs {
    #[command(flatten)]
    pub config: ConfigArgs,

    /// Overrides log.level (config-dump itself does not log).
    #[arg(
        long,
        env = "LOG_LEVEL",
        help_heading = overrides::HEADING
    )]
    pub log_level: Option<String>,

    /// Overrides log.format (config-dump itself does not log).
    #[arg(
        long,
        env = "LOG_FORMAT",
        help_heading = overrides::HEADING
    )]
    pub log_format: Option<String>,
}

impl ConfigDumpArgs {
    /// `adapter config-dump`: loads and checks both files as `serve` does and prints the merged
    /// configuration as YAML on stdout (warnings on stderr); exits 0, or 78 with the reason.
    pub fn run(&self) -> ExitCode {
        let log = GivenLogSettings {
            level: self.log_level.clone(),
            format: self.log_format.clone(),
        };
        let sources = self.config.sources(process_environment(), &log);
        // As HyperFleet's, the dump does not need what only a live adapter needs (the API base
        // URL, the broker subscription): the dry run's load skips exactly those.
        let loaded = match config::load(&sources, steadfast_rules::system_clock(), true) {
            Ok(loaded) => loaded,
            Err(error) => return invalid_config(error),
        };
        print_warnings(&loaded);
        match serde_norway::to_string(&dump_document(&loaded)) {
            Ok(yaml) => {
                print!("{yaml}");
                ExitCode::SUCCESS
            }
            Err(error) => {
                eprintln!("config-dump failed: {error}");
                ExitCode::FAILURE
            }
        }
    }
}

/// What `config-dump` prints: the adapter config as `config.*` sees it (overrides applied)
/// with the task config's sections beside it, as HyperFleet merges the two; secrets redacted
/// and `debug_config` shown only when on, as HyperFleet prints them.
pub fn dump_document(loaded: &Loaded) -> serde_json::Value {
    let mut document = loaded.config_json.clone();
    config::adapter::redact_secrets(&mut document);
    if let Some(merged) = document.as_object_mut() {
        merged.remove("debug_config");
        if loaded.adapter.debug_config {
            merged.insert("debug_config".into(), true.into());
        }
        if let Some(task) = loaded.task_json.as_object() {
            merged.extend(task.clone());
        }
    }
    document
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

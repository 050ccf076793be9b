//! Loading and validating the two config files, as HyperFleet does, plus the service settings
//! every Steadfast service has (listeners, broker URL, shutdown deadline).
//!
//! * [`adapter`] — the deployment config (`--config` / `HYPERFLEET_ADAPTER_CONFIG`);
//! * [`task`] — the task config (`--task-config` / `HYPERFLEET_TASK_CONFIG`);
//! * [`validate`] — load-time checks, which also compile the task ([`compiled`]);
//! * [`error`] — the messages an operator sees.

pub mod adapter;
pub mod compiled;
pub mod error;
pub mod task;
pub mod validate;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use steadfast_rules::{Clock, Environment};

pub use adapter::{AdapterConfig, Overrides};
pub use compiled::{Compiled, Manifest};
pub use error::{ConfigError, Issue};
pub use task::TaskConfig;
pub use validate::{Checked, PathResolver};

/// HyperFleet adapter releases whose task-config format this adapter runs (major, minor).
pub const COMPATIBLE_VERSIONS: [(u64, u64); 2] = [(0, 1), (0, 2)];

/// Where the two files are and what overrides them.
#[derive(Debug, Clone, Default)]
pub struct Sources {
    pub adapter_config: Option<PathBuf>,
    pub task_config: Option<PathBuf>,
    pub overrides: Overrides,
    /// `FROM=TO` path prefixes for `ref` files and file sources.
    pub remaps: Vec<(PathBuf, PathBuf)>,
    /// `--strict`: our warnings refuse the config (also `validation.strict` in the file).
    pub strict: bool,
    /// The process environment: what `env.*` params read, and what HyperFleet's load-time
    /// check of required `env.X` params looks at.
    pub environment: Arc<BTreeMap<String, String>>,
}

/// Why a `--remap-path` value is not `FROM=TO`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RemapError {
    #[error("`{text}` is not FROM=TO")]
    NoEquals { text: String },
    #[error("`{text}`: FROM and TO must both be set")]
    EmptySide { text: String },
}

/// Parses one `--remap-path FROM=TO` (a clap value parser).
pub fn parse_remap(text: &str) -> Result<(PathBuf, PathBuf), RemapError> {
    let (from, to) = text.split_once('=').ok_or_else(|| RemapError::NoEquals {
        text: text.to_owned(),
    })?;
    if from.is_empty() || to.is_empty() {
        return Err(RemapError::EmptySide {
            text: text.to_owned(),
        });
    }
    Ok((from.into(), to.into()))
}

/// What `--check-config` prints after `configuration OK`: the warnings, one per line.
pub fn warnings_summary(warnings: &[Issue]) -> String {
    if warnings.is_empty() {
        return String::new();
    }
    format!(
        "{} warning(s) (HyperFleet loads this too; --strict refuses it):\n  - {}",
        warnings.len(),
        warnings
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n  - ")
    )
}

/// The validated pair of configs, with the task compiled.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub adapter: AdapterConfig,
    pub task: TaskConfig,
    /// The adapter config as JSON (overrides applied): what `config.*` params read and what
    /// `/config` shows when `debug_config` is on.
    pub config_json: serde_json::Value,
    /// The task config as JSON, for `/config`.
    pub task_json: serde_json::Value,
    pub compiled: Arc<Compiled>,
    /// The task config's directory and the remaps, for file sources read per event.
    pub paths: PathResolver,
    /// What our stricter checks found and HyperFleet accepts: printed at load and by
    /// `--check-config` (refused instead under strict validation).
    pub warnings: Vec<Issue>,
}

/// How the service runs, besides the two HyperFleet files.
#[derive(Debug, Clone)]
pub struct ServiceSettings {
    pub http_listen: SocketAddr,
    pub metrics_listen: SocketAddr,
    pub amqp_url: String,
    pub shutdown_timeout: Duration,
}

impl Default for ServiceSettings {
    fn default() -> Self {
        Self {
            http_listen: "0.0.0.0:8080".parse().expect("valid"),
            metrics_listen: "0.0.0.0:9090".parse().expect("valid"),
            amqp_url: steadfast_messaging::DEFAULT_AMQP_URL.into(),
            shutdown_timeout: Duration::from_secs(20),
        }
    }
}

/// Everything `App::build` needs.
#[derive(Clone)]
pub struct Config {
    pub loaded: Loaded,
    pub service: ServiceSettings,
    /// The environment `env.*` params read: the process environment in production, a map of
    /// the test's choosing in tests (no test mutates the process environment).
    pub environment: Arc<BTreeMap<String, String>>,
    /// The time source of `now()` in CEL and `conditionAge`.
    pub clock: Clock,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("adapter", &self.loaded.adapter.adapter.name)
            .field("service", &self.service)
            .finish_non_exhaustive()
    }
}

/// The CEL environment task configs are compiled in: the standard library, `ext.Strings()`,
/// `ext.Lists()` and HyperFleet's helpers, as in HyperFleet's adapter.
pub fn cel_environment(clock: Clock) -> Environment {
    Environment::builder()
        .hyperfleet_adapter(clock)
        .build()
        .expect("the HyperFleet adapter environment declares no duplicate functions")
}

/// Reads, validates and compiles both files. `for_dry_run` skips what only a live adapter
/// needs (the API base URL, the broker settings).
pub fn load(sources: &Sources, clock: Clock, for_dry_run: bool) -> Result<Loaded, ConfigError> {
    let adapter_path = sources
        .adapter_config
        .as_ref()
        .filter(|p| !p.as_os_str().is_empty())
        .ok_or(ConfigError::AdapterConfigPathRequired)?;
    let task_path = sources
        .task_config
        .as_ref()
        .filter(|p| !p.as_os_str().is_empty())
        .ok_or(ConfigError::TaskConfigPathRequired)?;
    let (mut adapter, mut config_json) = load_adapter(adapter_path)?;
    adapter.apply_overrides(&sources.overrides);
    overrides_into_json(&mut config_json, &sources.overrides);
    validate_adapter(&adapter, for_dry_run)?;
    let (task, task_json) = load_task(task_path)?;
    let paths = PathResolver {
        base_dir: task_path
            .parent()
            .map(Path::to_owned)
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or_else(|| PathBuf::from(".")),
        remaps: sources.remaps.clone(),
    };
    let Checked {
        compiled,
        mut warnings,
    } = compile_task(&task, &paths, clock, &sources.environment)?;
    warnings.extend(adapter_warnings(&adapter));
    if (sources.strict || adapter.validation.strict) && !warnings.is_empty() {
        return Err(ConfigError::Strict(warnings));
    }
    Ok(Loaded {
        adapter,
        task,
        config_json,
        task_json,
        compiled: Arc::new(compiled),
        paths,
        warnings,
    })
}

/// Validates and compiles a task config (also used by tests that build one in memory):
/// refused as HyperFleet refuses it, or compiled with the warnings of our stricter checks.
pub fn compile_task(
    task: &TaskConfig,
    paths: &PathResolver,
    clock: Clock,
    process_env: &BTreeMap<String, String>,
) -> Result<Checked, ConfigError> {
    if let Some((i, _)) = task
        .resources
        .iter()
        .enumerate()
        .find(|(_, r)| r.transport_client() == "maestro")
    {
        return Err(ConfigError::MaestroResource { index: i });
    }
    let inputs = validate::Inputs {
        environment: &cel_environment(clock),
        paths,
        process_env,
    };
    validate::compile(task, &inputs).map_err(ConfigError::Task)
}

fn load_adapter(path: &Path) -> Result<(AdapterConfig, serde_json::Value), ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::ReadAdapterConfig {
        path: path.to_owned(),
        source,
    })?;
    let parse_error = |e: serde_norway::Error| ConfigError::ParseAdapterConfig {
        path: path.to_owned(),
        message: e.to_string(),
    };
    let config = serde_norway::from_str(&text).map_err(parse_error)?;
    let json = serde_norway::from_str(&text).map_err(parse_error)?;
    Ok((config, json))
}

fn load_task(path: &Path) -> Result<(TaskConfig, serde_json::Value), ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::ReadTaskConfig {
        path: path.to_owned(),
        source,
    })?;
    if text.trim().is_empty() {
        return Ok((TaskConfig::default(), serde_json::json!({})));
    }
    let parse_error = |e: serde_norway::Error| ConfigError::ParseTaskConfig {
        path: path.to_owned(),
        message: e.to_string(),
    };
    let task = serde_norway::from_str(&text).map_err(parse_error)?;
    let json = serde_norway::from_str(&text).map_err(parse_error)?;
    Ok((task, json))
}

/// Flags and environment win over the file in `config.*` too.
fn overrides_into_json(json: &mut serde_json::Value, overrides: &Overrides) {
    if !json.is_object() {
        *json = serde_json::json!({});
    }
    for (path, value) in overrides.settings() {
        adapter::set_setting(json, path, value);
    }
}

/// What HyperFleet accepts in the deployment config and we point out.
fn adapter_warnings(adapter: &AdapterConfig) -> Vec<Issue> {
    let mut warnings = Vec::new();
    let mut warn = |path: &str, message: String| {
        warnings.push(Issue {
            path: path.into(),
            message,
        })
    };
    let api = &adapter.clients.hyperfleet_api;
    if api.retry_attempts == 0 {
        warn(
            "clients.hyperfleet_api.retry_attempts",
            "0 counts as 1: retry_attempts counts every attempt, the first included".into(),
        );
    }
    if api.base_delay > api.max_delay {
        warn(
            "clients.hyperfleet_api.base_delay",
            format!(
                "{:?} is longer than max_delay ({:?}): every retry waits max_delay",
                api.base_delay, api.max_delay
            ),
        );
    }
    if adapter.clients.maestro.is_some() {
        // HyperFleet's own template has this section beside Kubernetes-only task configs; a
        // resource that would use it is refused (`compile_task`), the section alone is not.
        warn(
            "clients.maestro",
            "ignored: no resource uses the maestro transport (Steadfast does not support Maestro yet)".into(),
        );
    }
    warnings
}

/// The deployment config's own rules.
pub fn validate_adapter(adapter: &AdapterConfig, for_dry_run: bool) -> Result<(), ConfigError> {
    if adapter.adapter.name.trim().is_empty() {
        return Err(ConfigError::NameRequired);
    }
    check_version(adapter.adapter.version.as_deref())?;
    let api = &adapter.clients.hyperfleet_api;
    if let Some(auth) = &api.auth {
        if auth.token_path.as_os_str().is_empty() {
            return Err(ConfigError::TokenPathMissing);
        }
        if !auth.token_path.is_absolute() {
            return Err(ConfigError::TokenPathRelative {
                path: auth.token_path.clone(),
            });
        }
    }
    let broker = &adapter.clients.broker;
    if broker.retry_delays.is_empty() || broker.retry_delays.iter().any(Duration::is_zero) {
        return Err(ConfigError::RetryDelaysInvalid);
    }
    if broker.max_attempts == Some(0) {
        return Err(ConfigError::MaxAttemptsZero);
    }
    if broker.prefetch_count == 0 || broker.parallelism == 0 {
        return Err(ConfigError::ConsumerSizeZero);
    }
    if for_dry_run {
        return Ok(());
    }
    let base_url = api
        .base_url
        .as_deref()
        .filter(|u| !u.trim().is_empty())
        .ok_or(ConfigError::BaseUrlMissing)?;
    let parsed = url::Url::parse(base_url).map_err(|e| ConfigError::BaseUrlInvalid {
        url: base_url.into(),
        reason: e.to_string(),
    })?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(ConfigError::BaseUrlInvalid {
            url: base_url.into(),
            reason: "the scheme must be http or https".into(),
        });
    }
    for (setting, value) in [
        ("subscription_id", &broker.subscription_id),
        ("topic", &broker.topic),
    ] {
        if value.as_deref().is_none_or(|v| v.trim().is_empty()) {
            return Err(ConfigError::BrokerSetting(setting));
        }
    }
    Ok(())
}

/// `adapter.version` against [`COMPATIBLE_VERSIONS`]; versions that are not semver are not
/// checked (HyperFleet skips them too).
fn check_version(version: Option<&str>) -> Result<(), ConfigError> {
    let Some(version) = version.map(str::trim).filter(|v| !v.is_empty()) else {
        return Ok(());
    };
    let core = version.trim_start_matches('v');
    let core = core.split(['-', '+']).next().unwrap_or(core);
    let parts: Vec<Option<u64>> = core.split('.').map(|p| p.parse().ok()).collect();
    let (major, minor) = match parts.as_slice() {
        [Some(major), Some(minor), Some(_)] | [Some(major), Some(minor)] => (*major, *minor),
        _ => {
            tracing::warn!(
                version,
                "adapter.version is not semver; skipping the version check"
            );
            return Ok(());
        }
    };
    if COMPATIBLE_VERSIONS.contains(&(major, minor)) {
        return Ok(());
    }
    Err(ConfigError::VersionMismatch {
        config: version.into(),
        major,
        minor,
        supported: COMPATIBLE_VERSIONS
            .iter()
            .map(|(a, b)| format!("{a}.{b}"))
            .collect::<Vec<_>>()
            .join(", "),
    })
}

//! Why a configuration is refused. The messages are the ones HyperFleet's runbook tells the
//! on-call engineer to look for ("adapter config file path is required", "CEL parse error",
//! "undefined template variable", "mutually exclusive", "manifest is required ...",
//! "referenced file ... does not exist", "adapter version mismatch"), followed by what to fix.

use std::path::PathBuf;

/// One problem in the task config, at a path like `resources[1].manifest.ref`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issue {
    pub path: String,
    pub message: String,
}

impl std::fmt::Display for Issue {
    /// `path: message`, or HyperFleet's `path is required` for a missing field.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.message == "is required" {
            write!(f, "{} is required", self.path)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("adapter config file path is required: pass --config or set HYPERFLEET_ADAPTER_CONFIG")]
    AdapterConfigPathRequired,
    #[error("task config file path is required: pass --task-config or set HYPERFLEET_TASK_CONFIG")]
    TaskConfigPathRequired,
    #[error("failed to read adapter config file `{path}`: {source}")]
    ReadAdapterConfig {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to parse adapter config YAML `{path}`: {message}")]
    ParseAdapterConfig { path: PathBuf, message: String },
    #[error("failed to read task config file `{path}`: {source}")]
    ReadTaskConfig {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to parse task config YAML `{path}`: {message}")]
    ParseTaskConfig { path: PathBuf, message: String },
    #[error("adapter.name is required in the adapter config")]
    NameRequired,
    #[error(
        "adapter version mismatch: config adapter.version \"{config}\" (major.minor {major}.{minor}) is not a task-config format this adapter runs (it runs {supported}); update the config or deploy a matching adapter"
    )]
    VersionMismatch {
        config: String,
        major: u64,
        minor: u64,
        supported: String,
    },
    #[error(
        "HyperFleet API base URL not configured: set clients.hyperfleet_api.base_url or HYPERFLEET_API_BASE_URL"
    )]
    BaseUrlMissing,
    #[error("HyperFleet API base URL `{url}` is not usable: {reason}")]
    BaseUrlInvalid { url: String, reason: String },
    #[error(
        "Missing required broker configuration: {0} (set clients.broker.{0} or HYPERFLEET_BROKER_{upper})",
        upper = .0.to_ascii_uppercase()
    )]
    BrokerSetting(&'static str),
    #[error(
        "maestro transport is not supported yet (resources[{index}].transport.client is \"maestro\"); use the kubernetes transport"
    )]
    MaestroResource { index: usize },
    #[error("clients.hyperfleet_api.auth.token_path must be set when auth is configured")]
    TokenPathMissing,
    #[error(
        "clients.hyperfleet_api.auth.token_path must be an absolute path, got \"{}\"",
        .path.display()
    )]
    TokenPathRelative { path: PathBuf },
    #[error("clients.broker.retry_delays needs at least one delay, each longer than zero")]
    RetryDelaysInvalid,
    #[error("clients.broker.max_attempts must be at least 1 (null retries for ever)")]
    MaxAttemptsZero,
    #[error("clients.broker.prefetch_count and parallelism must be at least 1")]
    ConsumerSizeZero,
    /// `AMQP_URL` is refused.
    #[error("{0}")]
    BrokerUrl(#[source] steadfast_messaging::MessagingError),
    #[error(
        "task config validation failed with {} error(s):\n  - {}",
        .0.len(),
        .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n  - ")
    )]
    Task(Vec<Issue>),
    /// Warnings refused because strict validation is on (`--strict`, `validation.strict`).
    #[error(
        "task config refused by strict validation: {} warning(s) (HyperFleet would load it; without --strict they are warnings):\n  - {}",
        .0.len(),
        .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n  - ")
    )]
    Strict(Vec<Issue>),
}

//! HyperFleet Sentinel's configuration, unchanged: the same YAML keys, environment variables
//! and flags, so an operator swaps binaries and keeps the file.
//!
//! * File: `--config`/`-c`, else `HYPERFLEET_CONFIG`, else `/etc/hyperfleet/config.yaml`.
//!   Unknown keys are rejected with the key and line (HyperFleet uses `UnmarshalExact`).
//! * Precedence: flags > `HYPERFLEET_*` environment > file > defaults.
//! * Broker: `BROKER_RABBITMQ_URL`, else HyperFleet's `broker.yaml` (`BROKER_CONFIG_FILE` or
//!   `./broker.yaml`), else `AMQP_URL`.
//! * Our additions: `shard: {index, count}` splits the fleet between replicas by a stable
//!   hash of the resource id; `SENTINEL_API_TOKEN` (`--api-token`) enables the read API.
//!   Neither is in HyperFleet's file format.

mod build;
mod error;
mod file;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value as Json, json};
use steadfast_service_kit::config::{ConfigError, load_yaml_file};

use crate::decision::{DecisionEngine, MessageTemplate};
use crate::shard::Shard;

pub use self::error::SettingError;
use self::file::FileConfig;
pub use self::file::{LabelSelector, LogSection};
pub use crate::cli::{Cli, Command, RunArgs};

pub const DEFAULT_CONFIG_PATH: &str = "/etc/hyperfleet/config.yaml";
pub const DEFAULT_NAME: &str = "hyperfleet-sentinel";

/// Where "now" comes from; tests inject one to step over the 30-minute re-check.
pub type Clock = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

/// The HyperFleet API client settings.
#[derive(Debug, Clone)]
pub struct ApiSettings {
    pub base_url: url::Url,
    pub version: String,
    pub timeout: Duration,
    pub page_size: u32,
    pub token_path: Option<PathBuf>,
    pub token_cache_ttl: Duration,
}

/// Where and how events are published.
#[derive(Debug, Clone)]
pub struct BrokerSettings {
    /// Broker URL(s), as `AMQP_URL`.
    pub url: String,
    /// The exchange: `broker.rabbitmq.exchange` if set, else the topic.
    pub exchange: String,
    /// Declared with this type when missing (HyperFleet's configs use `topic`).
    pub exchange_type: String,
    pub routing_key: String,
}

/// Everything the sentinel needs, validated.
#[derive(Clone)]
pub struct Config {
    pub source: Option<PathBuf>,
    pub name: String,
    pub debug_config: bool,
    pub tracing_enabled: bool,
    pub log: LogSection,
    pub resource_type: String,
    pub poll_interval: Duration,
    pub resource_selector: Vec<LabelSelector>,
    pub api: ApiSettings,
    pub topic: String,
    pub broker: BrokerSettings,
    pub decision: DecisionEngine,
    pub decision_source: (Vec<(String, String)>, String),
    pub message_data: MessageTemplate,
    pub message_data_source: Map<String, Json>,
    pub shard: Option<Shard>,
    pub http_listen: SocketAddr,
    pub metrics_listen: SocketAddr,
    pub shutdown_timeout: Duration,
    pub clock: Clock,
    /// Where spans go, when tracing is on.
    pub otlp_endpoint: Option<String>,
    /// The bearer token of the read API; `None` disables it. Never in [`Config::dump`].
    pub api_token: Option<String>,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.dump())
    }
}

impl Config {
    /// Loads the file named by `args` (or the default path) and applies the overrides.
    pub fn from_args(args: &RunArgs) -> Result<Self, ConfigError> {
        let path = args
            .config
            .clone()
            .unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG_PATH));
        let file: FileConfig = load_yaml_file(&path)?;
        let mut config = Self::build(file, args)?;
        config.source = Some(path);
        Ok(config)
    }

    /// A config from YAML text with no overrides (tests, embedding).
    pub fn from_yaml(text: &str) -> Result<Self, ConfigError> {
        let file: FileConfig =
            steadfast_service_kit::config::parse_yaml(text).map_err(SettingError::from)?;
        let args = <RunArgs as clap::FromArgMatches>::from_arg_matches(
            &<RunArgs as clap::Args>::augment_args(clap::Command::new("sentinel"))
                .no_binary_name(true)
                .try_get_matches_from(Vec::<String>::new())
                .map_err(SettingError::from)?,
        )
        .map_err(SettingError::from)?;
        Self::build(file, &args)
    }

    /// What `serve` needs beyond a loadable file: somewhere to publish.
    pub fn validate_for_serve(&self) -> Result<(), ConfigError> {
        if self.broker.exchange.trim().is_empty() {
            return Err(SettingError::NoTopic.into());
        }
        steadfast_messaging::BrokerConfig::new(&self.broker.url, "sentinel")
            .map_err(SettingError::from)?;
        Ok(())
    }

    /// The TSL search for `resource_selector` (`labels.a='x' and labels.b='y'`, sorted, `'`
    /// doubled), as HyperFleet sends it; `None` for all resources.
    pub fn search(&self) -> Option<String> {
        if self.resource_selector.is_empty() {
            return None;
        }
        let mut terms: Vec<String> = self
            .resource_selector
            .iter()
            .map(|s| format!("labels.{}='{}'", s.label, s.value.replace('\'', "''")))
            .collect();
        terms.sort();
        Some(terms.join(" and "))
    }

    /// The metrics label for the selector: `all`, or `label:value,label2:value2`.
    pub fn selector_label(&self) -> String {
        if self.resource_selector.is_empty() {
            return "all".to_owned();
        }
        self.resource_selector
            .iter()
            .map(|s| format!("{}:{}", s.label, s.value))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The merged configuration, as YAML (`config-dump`, `debug_config`); no secrets.
    pub fn dump(&self) -> String {
        let (params, result) = &self.decision_source;
        let value = json!({
            "sentinel": {"name": self.name},
            "debug_config": self.debug_config,
            "tracing_enabled": self.tracing_enabled,
            "log": {"level": self.log.level, "format": self.log.format, "output": self.log.output},
            "resource_type": self.resource_type,
            "poll_interval": format!("{}s", self.poll_interval.as_secs_f64()),
            "resource_selector": self.resource_selector,
            "clients": {
                "hyperfleet_api": {
                    "base_url": self.api.base_url.as_str().trim_end_matches('/'),
                    "version": self.api.version,
                    "timeout": format!("{}s", self.api.timeout.as_secs_f64()),
                    "page_size": self.api.page_size,
                    "auth": self.api.token_path.as_ref().map(|p| json!({
                        "token_path": p, "token_cache_ttl": format!("{}s", self.api.token_cache_ttl.as_secs_f64())
                    })),
                },
                "broker": {"topic": self.topic},
            },
            "message_decision": {
                "params": params.iter().map(|(n, e)| json!({"name": n, "expr": e})).collect::<Vec<_>>(),
                "result": result,
            },
            "message_data": self.message_data_source,
            "shard": self.shard,
            "broker": {
                "url": steadfast_messaging::redact_url(&self.broker.url),
                "exchange": self.broker.exchange,
                "exchange_type": self.broker.exchange_type,
                "routing_key": self.broker.routing_key,
            },
        });
        serde_norway::to_string(&value).unwrap_or_default()
    }
}

/// The logging settings: `HYPERFLEET_LOG_*` and the file's `log` section apply unless the
/// common `LOG_LEVEL`/`LOG_FORMAT` (or `--log-level`/`--log-format`) are given explicitly.
pub fn telemetry(
    args: &RunArgs,
    config: &Config,
) -> Result<steadfast_telemetry::TelemetryConfig, steadfast_telemetry::TelemetryError> {
    let mut common = args.common.clone();
    let explicit = |name: &str| std::env::var_os(name).is_some();
    if !explicit("LOG_LEVEL")
        && let Some(level) = &config.log.level
    {
        common.log_level = level.clone();
    }
    if !explicit("LOG_FORMAT")
        && let Some(format) = &config.log.format
    {
        common.log_format = format.clone();
    }
    if !config.tracing_enabled {
        common.otlp_endpoint = None;
    }
    common.telemetry("sentinel")
}

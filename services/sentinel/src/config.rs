//! HyperFleet Sentinel's configuration, unchanged: the same YAML keys, environment variables
//! and flags, so an operator swaps binaries and keeps the file.
//!
//! * File: `--config`/`-c`, else `HYPERFLEET_CONFIG`, else `/etc/hyperfleet/config.yaml`.
//!   Unknown keys are rejected with the key and line (HyperFleet uses `UnmarshalExact`).
//! * Precedence: flags > `HYPERFLEET_*` environment > file > defaults.
//! * Broker: `BROKER_RABBITMQ_URL`, else HyperFleet's `broker.yaml` (`BROKER_CONFIG_FILE` or
//!   `./broker.yaml`), else `AMQP_URL`.
//! * Our one addition: `shard: {index, count}` splits the fleet between replicas by a stable
//!   hash of the resource id.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as Json, json};
use steadfast_service_kit::config::{ConfigError, deserialize_optional_duration, load_yaml_file};
use steadfast_service_kit::settings::CommonArgs;

use crate::decision::{self, DecisionEngine, MessageTemplate};
use crate::shard::Shard;

pub const DEFAULT_CONFIG_PATH: &str = "/etc/hyperfleet/config.yaml";
pub const DEFAULT_NAME: &str = "hyperfleet-sentinel";

/// Where "now" comes from; tests inject one to step over the 30-minute re-check.
pub type Clock = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

// --- The file, as HyperFleet writes it ---------------------------------------------------

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    sentinel: Option<SentinelSection>,
    debug_config: Option<bool>,
    tracing_enabled: Option<bool>,
    log: Option<LogSection>,
    resource_type: Option<String>,
    #[serde(default, deserialize_with = "deserialize_optional_duration")]
    poll_interval: Option<Duration>,
    resource_selector: Option<Vec<LabelSelector>>,
    clients: Option<ClientsSection>,
    message_decision: Option<DecisionSection>,
    message_data: Option<Map<String, Json>>,
    shard: Option<Shard>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct SentinelSection {
    name: Option<String>,
}

#[derive(Debug, Default, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LogSection {
    pub level: Option<String>,
    pub format: Option<String>,
    pub output: Option<String>,
}

/// `resource_selector[]`: the resource must carry label `label` with value `value`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LabelSelector {
    pub label: String,
    pub value: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ClientsSection {
    hyperfleet_api: Option<ApiSection>,
    broker: Option<BrokerSection>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ApiSection {
    base_url: Option<String>,
    version: Option<String>,
    #[serde(default, deserialize_with = "deserialize_optional_duration")]
    timeout: Option<Duration>,
    page_size: Option<i64>,
    auth: Option<AuthSection>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct AuthSection {
    token_path: Option<PathBuf>,
    #[serde(default, deserialize_with = "deserialize_optional_duration")]
    token_cache_ttl: Option<Duration>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct BrokerSection {
    topic: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DecisionSection {
    #[serde(default)]
    params: Vec<ParamSection>,
    result: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ParamSection {
    name: String,
    expr: String,
}

// --- The command line --------------------------------------------------------------------

#[derive(Debug, clap::Parser)]
#[command(
    name = "sentinel",
    version,
    about = "Polls the HyperFleet API and publishes reconcile events for the resources that need them (HyperFleet Sentinel compatible)."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Run the poll loop.
    Serve(Box<RunArgs>),
    /// Print the merged configuration (as YAML) and exit.
    ConfigDump(Box<RunArgs>),
    /// Print the version and exit.
    Version,
}

/// The flags and environment of `serve` and `config-dump`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub common: CommonArgs,

    /// Config file [default: /etc/hyperfleet/config.yaml].
    #[arg(short = 'c', long, env = "HYPERFLEET_CONFIG")]
    pub config: Option<PathBuf>,

    #[arg(long, env = "HYPERFLEET_SENTINEL_NAME")]
    pub sentinel_name: Option<String>,
    /// Log the merged configuration at start.
    #[arg(long, env = "HYPERFLEET_DEBUG_CONFIG")]
    pub debug_config: Option<bool>,
    /// Export traces (needs OTEL_EXPORTER_OTLP_ENDPOINT) and stamp `traceparent` on events.
    #[arg(long, env = "HYPERFLEET_TRACING_ENABLED")]
    pub tracing_enabled: Option<bool>,
    #[arg(long, env = "HYPERFLEET_RESOURCE_TYPE")]
    pub resource_type: Option<String>,
    #[arg(long, env = "HYPERFLEET_POLL_INTERVAL", value_parser = steadfast_service_kit::config::parse_duration_arg)]
    pub poll_interval: Option<Duration>,
    #[arg(long = "hyperfleet-api-base-url", env = "HYPERFLEET_API_BASE_URL")]
    pub api_base_url: Option<String>,
    #[arg(long = "hyperfleet-api-version", env = "HYPERFLEET_API_VERSION")]
    pub api_version: Option<String>,
    #[arg(long = "hyperfleet-api-timeout", env = "HYPERFLEET_API_TIMEOUT", value_parser = steadfast_service_kit::config::parse_duration_arg)]
    pub api_timeout: Option<Duration>,
    #[arg(long = "hyperfleet-api-page-size", env = "HYPERFLEET_API_PAGE_SIZE")]
    pub api_page_size: Option<i64>,
    #[arg(
        long = "hyperfleet-api-auth-token-path",
        env = "HYPERFLEET_API_AUTH_TOKEN_PATH"
    )]
    pub api_token_path: Option<PathBuf>,
    #[arg(long = "hyperfleet-api-auth-token-cache-ttl", env = "HYPERFLEET_API_AUTH_TOKEN_CACHE_TTL", value_parser = steadfast_service_kit::config::parse_duration_arg)]
    pub api_token_cache_ttl: Option<Duration>,
    /// The exchange events are published to.
    #[arg(long, env = "HYPERFLEET_BROKER_TOPIC")]
    pub broker_topic: Option<String>,
    #[arg(
        long = "hyperfleet-log-level",
        env = "HYPERFLEET_LOG_LEVEL",
        hide = true
    )]
    pub hyperfleet_log_level: Option<String>,
    #[arg(
        long = "hyperfleet-log-format",
        env = "HYPERFLEET_LOG_FORMAT",
        hide = true
    )]
    pub hyperfleet_log_format: Option<String>,
    #[arg(
        long = "hyperfleet-log-output",
        env = "HYPERFLEET_LOG_OUTPUT",
        hide = true
    )]
    pub hyperfleet_log_output: Option<String>,
    /// HyperFleet's name for HTTP_LISTEN (Go form `:8080` accepted).
    #[arg(long)]
    pub health_server_bindaddress: Option<String>,
    /// HyperFleet's name for METRICS_LISTEN.
    #[arg(long)]
    pub metrics_server_bindaddress: Option<String>,
    /// Shard of the fleet this replica handles: `INDEX/COUNT`, e.g. `0/3`.
    #[arg(long, env = "SENTINEL_SHARD")]
    pub shard: Option<String>,
    /// HyperFleet's broker.yaml [default: ./broker.yaml when present].
    #[arg(long, env = "BROKER_CONFIG_FILE")]
    pub broker_config_file: Option<PathBuf>,
    #[arg(long, env = "BROKER_RABBITMQ_URL", hide_env_values = true)]
    pub broker_rabbitmq_url: Option<String>,
}

// --- broker.yaml ---------------------------------------------------------------------------

#[derive(Debug, Default, Deserialize)]
struct BrokerFile {
    broker: Option<BrokerFileSection>,
}

#[derive(Debug, Default, Deserialize)]
struct BrokerFileSection {
    #[serde(rename = "type")]
    kind: Option<String>,
    rabbitmq: Option<RabbitSection>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RabbitSection {
    url: Option<String>,
    exchange: Option<String>,
    exchange_type: Option<String>,
    queue: Option<String>,
    routing_key: Option<String>,
    prefetch_count: Option<i64>,
    prefetch_size: Option<i64>,
    consumer_tag: Option<String>,
    publisher_confirm: Option<bool>,
}

// --- The result --------------------------------------------------------------------------

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
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.dump())
    }
}

fn invalid(message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid(message.into())
}

/// Go's `:8080` (all interfaces) or a full `host:port`.
fn bind_address(flag: &str, text: &str) -> Result<SocketAddr, ConfigError> {
    let full = if text.starts_with(':') {
        format!("0.0.0.0{text}")
    } else {
        text.to_owned()
    };
    full.parse().map_err(|_| {
        invalid(format!(
            "{flag} `{text}` is not an address like :8080 or 0.0.0.0:8080"
        ))
    })
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
        let file: FileConfig = steadfast_service_kit::config::parse_yaml(text).map_err(invalid)?;
        let args = <RunArgs as clap::FromArgMatches>::from_arg_matches(
            &<RunArgs as clap::Args>::augment_args(clap::Command::new("sentinel"))
                .no_binary_name(true)
                .try_get_matches_from(Vec::<String>::new())
                .map_err(|e| invalid(e.to_string()))?,
        )
        .map_err(|e| invalid(e.to_string()))?;
        Self::build(file, &args)
    }

    fn build(file: FileConfig, args: &RunArgs) -> Result<Self, ConfigError> {
        let name = args
            .sentinel_name
            .clone()
            .or(file.sentinel.and_then(|s| s.name))
            .unwrap_or_else(|| DEFAULT_NAME.to_owned());
        if name.trim().is_empty() {
            return Err(invalid("sentinel.name must not be empty"));
        }
        let resource_type = args
            .resource_type
            .clone()
            .or(file.resource_type)
            .ok_or_else(|| invalid("resource_type is required (e.g. clusters or nodepools)"))?;
        if resource_type.is_empty()
            || !resource_type
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(invalid(format!(
                "resource_type `{resource_type}` must be a plural path segment like clusters or nodepools"
            )));
        }
        let poll_interval = args
            .poll_interval
            .or(file.poll_interval)
            .unwrap_or(Duration::from_secs(5));
        if poll_interval.is_zero() {
            return Err(invalid("poll_interval must be greater than 0"));
        }
        let resource_selector = file.resource_selector.unwrap_or_default();
        for (i, selector) in resource_selector.iter().enumerate() {
            if selector.label.trim().is_empty() {
                return Err(invalid(format!(
                    "resource_selector[{i}].label must not be empty"
                )));
            }
        }

        let clients = file.clients.unwrap_or_default();
        let api_file = clients.hyperfleet_api.unwrap_or_default();
        let auth = api_file.auth.unwrap_or_default();
        let base_url_text = args
            .api_base_url
            .clone()
            .or(api_file.base_url)
            .ok_or_else(|| invalid("clients.hyperfleet_api.base_url is required"))?;
        let base_url = parse_base_url(&base_url_text)?;
        let timeout = args
            .api_timeout
            .or(api_file.timeout)
            .unwrap_or(Duration::from_secs(10));
        if timeout.is_zero() {
            return Err(invalid(
                "clients.hyperfleet_api.timeout must be greater than 0",
            ));
        }
        let page_size = args.api_page_size.or(api_file.page_size).unwrap_or(20);
        if !(1..=500).contains(&page_size) {
            return Err(invalid(format!(
                "clients.hyperfleet_api.page_size must be between 1 and 500, not {page_size}"
            )));
        }
        let token_path = args.api_token_path.clone().or(auth.token_path);
        if let Some(path) = &token_path
            && !path.is_absolute()
        {
            return Err(invalid(format!(
                "clients.hyperfleet_api.auth.token_path must be an absolute path, not `{}`",
                path.display()
            )));
        }
        let api = ApiSettings {
            base_url,
            version: args
                .api_version
                .clone()
                .or(api_file.version)
                .unwrap_or_else(|| "v1".to_owned()),
            timeout,
            page_size: page_size as u32,
            token_path,
            token_cache_ttl: args
                .api_token_cache_ttl
                .or(auth.token_cache_ttl)
                .unwrap_or(Duration::from_secs(30)),
        };
        let topic = args
            .broker_topic
            .clone()
            .or(clients.broker.and_then(|b| b.topic))
            .unwrap_or_default();

        let env = decision::environment();
        let (decision, decision_source) = match file.message_decision {
            Some(section) => {
                let params: Vec<(String, String)> = section
                    .params
                    .into_iter()
                    .map(|p| (p.name, p.expr))
                    .collect();
                let engine = DecisionEngine::compile(&env, &params, &section.result)
                    .map_err(|e| invalid(e.to_string()))?;
                (engine, (params, section.result))
            }
            None => (
                DecisionEngine::default_decision(),
                (
                    decision::DEFAULT_PARAMS
                        .iter()
                        .map(|(n, e)| ((*n).to_owned(), (*e).to_owned()))
                        .collect(),
                    decision::DEFAULT_RESULT.to_owned(),
                ),
            ),
        };
        let message_data_source = file.message_data.ok_or_else(|| {
            invalid("message_data is required (e.g. `message_data: {id: resource.id, kind: resource.kind, href: resource.href, generation: resource.generation}`)")
        })?;
        let message_data = MessageTemplate::compile(&env, &message_data_source)
            .map_err(|e| invalid(e.to_string()))?;

        let shard = match &args.shard {
            Some(text) => Some(Shard::parse(text).map_err(invalid)?),
            None => file.shard,
        };
        if let Some(shard) = &shard {
            shard.validate().map_err(invalid)?;
        }

        let log = LogSection {
            level: args
                .hyperfleet_log_level
                .clone()
                .or(file.log.as_ref().and_then(|l| l.level.clone())),
            format: args
                .hyperfleet_log_format
                .clone()
                .or(file.log.as_ref().and_then(|l| l.format.clone())),
            output: args
                .hyperfleet_log_output
                .clone()
                .or(file.log.as_ref().and_then(|l| l.output.clone())),
        };
        if let Some(output) = &log.output
            && output != "stdout"
            && output != "stderr"
        {
            return Err(invalid(format!(
                "log.output must be stdout or stderr, not `{output}`"
            )));
        }

        let http_listen = match &args.health_server_bindaddress {
            Some(text) => bind_address("--health-server-bindaddress", text)?,
            None => args.common.http_listen(),
        };
        let metrics_listen = match &args.metrics_server_bindaddress {
            Some(text) => bind_address("--metrics-server-bindaddress", text)?,
            None => args.common.metrics_listen,
        };
        let broker = broker_settings(args, &topic)?;

        Ok(Self {
            source: None,
            name,
            debug_config: args.debug_config.or(file.debug_config).unwrap_or(false),
            tracing_enabled: args
                .tracing_enabled
                .or(file.tracing_enabled)
                .unwrap_or(true),
            log,
            resource_type,
            poll_interval,
            resource_selector,
            api,
            topic,
            broker,
            decision,
            decision_source,
            message_data,
            message_data_source,
            shard,
            http_listen,
            metrics_listen,
            shutdown_timeout: args.common.shutdown_timeout,
            clock: Arc::new(Utc::now),
            otlp_endpoint: args.common.otlp_endpoint.clone().filter(|e| !e.is_empty()),
        })
    }

    /// What `serve` needs beyond a loadable file: somewhere to publish.
    pub fn validate_for_serve(&self) -> Result<(), ConfigError> {
        if self.broker.exchange.trim().is_empty() {
            return Err(invalid(
                "clients.broker.topic is empty: set it in the file or HYPERFLEET_BROKER_TOPIC (it names the exchange events go to, e.g. hyperfleet-clusters)",
            ));
        }
        steadfast_messaging::BrokerConfig::new(&self.broker.url, "sentinel")
            .map_err(|e| invalid(e.to_string()))?;
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

fn parse_base_url(text: &str) -> Result<url::Url, ConfigError> {
    let url = url::Url::parse(text).map_err(|e| {
        invalid(format!(
            "clients.hyperfleet_api.base_url `{text}` is not a URL: {e}"
        ))
    })?;
    if url.scheme() != "http" && url.scheme() != "https" {
        return Err(invalid(format!(
            "clients.hyperfleet_api.base_url `{text}` must be http or https"
        )));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(invalid(format!(
            "clients.hyperfleet_api.base_url `{text}` has no host"
        )));
    }
    if url.query().is_some() {
        return Err(invalid(format!(
            "clients.hyperfleet_api.base_url `{text}` must not have a query string"
        )));
    }
    Ok(url)
}

fn broker_settings(args: &RunArgs, topic: &str) -> Result<BrokerSettings, ConfigError> {
    let path = args.broker_config_file.clone().or_else(|| {
        Path::new("broker.yaml")
            .exists()
            .then(|| PathBuf::from("broker.yaml"))
    });
    let rabbit = match &path {
        Some(path) => {
            let file: BrokerFile = load_yaml_file(path)?;
            let section = file.broker.unwrap_or_default();
            if let Some(kind) = section.kind.as_deref()
                && kind != "rabbitmq"
            {
                return Err(invalid(format!(
                    "{}: broker.type `{kind}` is not supported; this sentinel publishes to RabbitMQ",
                    path.display()
                )));
            }
            section.rabbitmq.unwrap_or_default()
        }
        None => RabbitSection::default(),
    };
    // `queue`, `prefetch_*`, `consumer_tag` and `subscriber` concern consumers; confirms are
    // always on here.
    let _ = (
        &rabbit.queue,
        rabbit.prefetch_count,
        rabbit.prefetch_size,
        &rabbit.consumer_tag,
        rabbit.publisher_confirm,
    );
    let exchange_type = rabbit
        .exchange_type
        .clone()
        .unwrap_or_else(|| "topic".to_owned());
    if exchange_type != "topic" {
        return Err(invalid(format!(
            "broker.rabbitmq.exchange_type `{exchange_type}` is not supported: the sentinel declares a durable topic exchange, as HyperFleet's configs do"
        )));
    }
    Ok(BrokerSettings {
        url: args
            .broker_rabbitmq_url
            .clone()
            .or(rabbit.url)
            .unwrap_or_else(|| args.common.amqp_url.clone()),
        exchange: rabbit
            .exchange
            .filter(|e| !e.is_empty())
            .unwrap_or_else(|| topic.to_owned()),
        exchange_type,
        routing_key: rabbit.routing_key.unwrap_or_default(),
    })
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

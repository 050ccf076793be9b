//! What is wrong with a configuration, one variant per check. Each becomes the
//! `ConfigError::Invalid` text that `--check-config`, `config-dump` and start-up print.

use std::path::PathBuf;

use steadfast_messaging::MessagingError;
use steadfast_service_kit::config::{ConfigError, YamlError};

use crate::decision::DecisionConfigError;
use crate::shard::ShardError;

/// A setting that cannot be used; the text names the setting at fault.
#[derive(Debug, thiserror::Error)]
pub enum SettingError {
    #[error("sentinel.name must not be empty")]
    EmptyName,
    #[error("resource_type is required (e.g. clusters or nodepools)")]
    NoResourceType,
    #[error(
        "resource_type `{resource_type}` must be a plural path segment like clusters or nodepools"
    )]
    BadResourceType { resource_type: String },
    #[error("poll_interval must be greater than 0")]
    ZeroPollInterval,
    #[error("resource_selector[{index}].label must not be empty")]
    EmptySelectorLabel { index: usize },
    #[error("clients.hyperfleet_api.base_url is required")]
    NoBaseUrl,
    #[error("clients.hyperfleet_api.base_url `{text}` is not a URL: {source}")]
    BaseUrlNotAUrl {
        text: String,
        #[source]
        source: url::ParseError,
    },
    #[error("clients.hyperfleet_api.base_url `{text}` must be http or https")]
    BaseUrlScheme { text: String },
    #[error("clients.hyperfleet_api.base_url `{text}` has no host")]
    BaseUrlNoHost { text: String },
    #[error("clients.hyperfleet_api.base_url `{text}` must not have a query string")]
    BaseUrlQuery { text: String },
    #[error("clients.hyperfleet_api.timeout must be greater than 0")]
    ZeroApiTimeout,
    #[error("clients.hyperfleet_api.page_size must be between 1 and 500, not {page_size}")]
    PageSize { page_size: i64 },
    #[error("clients.hyperfleet_api.auth.token_path must be an absolute path, not `{path}`")]
    RelativeTokenPath { path: PathBuf },
    /// `message_decision` or `message_data` does not compile.
    #[error(transparent)]
    Decision(#[from] DecisionConfigError),
    #[error(
        "message_data is required (e.g. `message_data: {{id: resource.id, kind: resource.kind, href: resource.href, generation: resource.generation}}`)"
    )]
    NoMessageData,
    #[error(transparent)]
    Shard(#[from] ShardError),
    #[error("log.output must be stdout or stderr, not `{output}`")]
    LogOutput { output: String },
    #[error("{flag} `{text}` is not an address like :8080 or 0.0.0.0:8080")]
    BindAddress { flag: &'static str, text: String },
    #[error("{path}: broker.type `{kind}` is not supported; this sentinel publishes to RabbitMQ")]
    BrokerType { path: PathBuf, kind: String },
    #[error(
        "broker.rabbitmq.exchange_type `{exchange_type}` is not supported: the sentinel declares a durable topic exchange, as HyperFleet's configs do"
    )]
    ExchangeType { exchange_type: String },
    #[error(
        "clients.broker.topic is empty: set it in the file or HYPERFLEET_BROKER_TOPIC (it names the exchange events go to, e.g. hyperfleet-clusters)"
    )]
    NoTopic,
    /// The broker URL cannot be used.
    #[error(transparent)]
    Broker(#[from] MessagingError),
    /// YAML text given to [`Config::from_yaml`](super::Config::from_yaml) does not parse.
    #[error(transparent)]
    Yaml(#[from] YamlError),
    /// The defaults of the flags cannot be built (a bug, or an unusable environment).
    #[error(transparent)]
    Args(#[from] clap::Error),
}

/// The callers (the lead's `app`, tests) take service-kit's `ConfigError`; shown as it is.
impl From<SettingError> for ConfigError {
    fn from(error: SettingError) -> Self {
        ConfigError::invalid(error)
    }
}

//! Merging the file, `broker.yaml`, the environment and the flags into a validated
//! [`Config`]: flags > `HYPERFLEET_*` environment > file > defaults.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use steadfast_service_kit::config::{ConfigError, load_yaml_file};

use super::file::{BrokerFile, FileConfig, RabbitSection};
use super::{ApiSettings, BrokerSettings, Config, DEFAULT_NAME, LogSection, RunArgs, SettingError};
use crate::decision::{self, DecisionEngine, MessageTemplate};
use crate::shard::Shard;

impl Config {
    pub(super) fn build(file: FileConfig, args: &RunArgs) -> Result<Self, ConfigError> {
        let name = args
            .sentinel_name
            .clone()
            .or(file.sentinel.and_then(|s| s.name))
            .unwrap_or_else(|| DEFAULT_NAME.to_owned());
        if name.trim().is_empty() {
            return Err(SettingError::EmptyName.into());
        }
        let resource_type = args
            .resource_type
            .clone()
            .or(file.resource_type)
            .ok_or(SettingError::NoResourceType)?;
        if resource_type.is_empty()
            || !resource_type
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(SettingError::BadResourceType { resource_type }.into());
        }
        let poll_interval = args
            .poll_interval
            .or(file.poll_interval)
            .unwrap_or(Duration::from_secs(5));
        if poll_interval.is_zero() {
            return Err(SettingError::ZeroPollInterval.into());
        }
        let resource_selector = file.resource_selector.unwrap_or_default();
        for (index, selector) in resource_selector.iter().enumerate() {
            if selector.label.trim().is_empty() {
                return Err(SettingError::EmptySelectorLabel { index }.into());
            }
        }

        let clients = file.clients.unwrap_or_default();
        let api_file = clients.hyperfleet_api.unwrap_or_default();
        let auth = api_file.auth.unwrap_or_default();
        let base_url_text = args
            .api_base_url
            .clone()
            .or(api_file.base_url)
            .ok_or(SettingError::NoBaseUrl)?;
        let base_url = parse_base_url(&base_url_text)?;
        let timeout = args
            .api_timeout
            .or(api_file.timeout)
            .unwrap_or(Duration::from_secs(10));
        if timeout.is_zero() {
            return Err(SettingError::ZeroApiTimeout.into());
        }
        let page_size = args.api_page_size.or(api_file.page_size).unwrap_or(20);
        if !(1..=500).contains(&page_size) {
            return Err(SettingError::PageSize { page_size }.into());
        }
        let token_path = args.api_token_path.clone().or(auth.token_path);
        if let Some(path) = &token_path
            && !path.is_absolute()
        {
            return Err(SettingError::RelativeTokenPath { path: path.clone() }.into());
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
                    .map_err(SettingError::from)?;
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
        let message_data_source = file.message_data.ok_or(SettingError::NoMessageData)?;
        let message_data =
            MessageTemplate::compile(&env, &message_data_source).map_err(SettingError::from)?;

        let shard = match &args.shard {
            Some(text) => Some(Shard::parse(text).map_err(SettingError::from)?),
            None => file.shard,
        };
        if let Some(shard) = &shard {
            shard.validate().map_err(SettingError::from)?;
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
            return Err(SettingError::LogOutput {
                output: output.clone(),
            }
            .into());
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
            // Trimmed: a token from a mounted file often ends in a newline. Blank is unset.
            api_token: args
                .api_token
                .as_deref()
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .map(str::to_owned),
        })
    }
}

/// Go's `:8080` (all interfaces) or a full `host:port`.
fn bind_address(flag: &'static str, text: &str) -> Result<SocketAddr, SettingError> {
    let full = if text.starts_with(':') {
        format!("0.0.0.0{text}")
    } else {
        text.to_owned()
    };
    full.parse().map_err(|_| SettingError::BindAddress {
        flag,
        text: text.to_owned(),
    })
}

fn parse_base_url(text: &str) -> Result<url::Url, SettingError> {
    let text_of = || text.to_owned();
    let url = url::Url::parse(text).map_err(|source| SettingError::BaseUrlNotAUrl {
        text: text_of(),
        source,
    })?;
    if url.scheme() != "http" && url.scheme() != "https" {
        return Err(SettingError::BaseUrlScheme { text: text_of() });
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(SettingError::BaseUrlNoHost { text: text_of() });
    }
    if url.query().is_some() {
        return Err(SettingError::BaseUrlQuery { text: text_of() });
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
                return Err(SettingError::BrokerType {
                    path: path.clone(),
                    kind: kind.to_owned(),
                }
                .into());
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
        return Err(SettingError::ExchangeType { exchange_type }.into());
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

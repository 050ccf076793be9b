//! The YAML files as HyperFleet writes them: the sentinel's config file and `broker.yaml`.
//! Unknown keys are rejected (`deny_unknown_fields`), as HyperFleet's `UnmarshalExact` does.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as Json};
use steadfast_service_kit::config::deserialize_optional_duration;

use crate::shard::Shard;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileConfig {
    pub(super) sentinel: Option<SentinelSection>,
    pub(super) debug_config: Option<bool>,
    pub(super) tracing_enabled: Option<bool>,
    pub(super) log: Option<LogSection>,
    pub(super) resource_type: Option<String>,
    #[serde(default, deserialize_with = "deserialize_optional_duration")]
    pub(super) poll_interval: Option<Duration>,
    pub(super) resource_selector: Option<Vec<LabelSelector>>,
    pub(super) clients: Option<ClientsSection>,
    pub(super) message_decision: Option<DecisionSection>,
    pub(super) message_data: Option<Map<String, Json>>,
    pub(super) shard: Option<Shard>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SentinelSection {
    pub(super) name: Option<String>,
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
pub(super) struct ClientsSection {
    pub(super) hyperfleet_api: Option<ApiSection>,
    pub(super) broker: Option<BrokerSection>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ApiSection {
    pub(super) base_url: Option<String>,
    pub(super) version: Option<String>,
    #[serde(default, deserialize_with = "deserialize_optional_duration")]
    pub(super) timeout: Option<Duration>,
    pub(super) page_size: Option<i64>,
    pub(super) auth: Option<AuthSection>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct AuthSection {
    pub(super) token_path: Option<PathBuf>,
    #[serde(default, deserialize_with = "deserialize_optional_duration")]
    pub(super) token_cache_ttl: Option<Duration>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct BrokerSection {
    pub(super) topic: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct DecisionSection {
    #[serde(default)]
    pub(super) params: Vec<ParamSection>,
    pub(super) result: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ParamSection {
    pub(super) name: String,
    pub(super) expr: String,
}

/// HyperFleet's `broker.yaml`.
#[derive(Debug, Default, Deserialize)]
pub(super) struct BrokerFile {
    pub(super) broker: Option<BrokerFileSection>,
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct BrokerFileSection {
    #[serde(rename = "type")]
    pub(super) kind: Option<String>,
    pub(super) rabbitmq: Option<RabbitSection>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RabbitSection {
    pub(super) url: Option<String>,
    pub(super) exchange: Option<String>,
    pub(super) exchange_type: Option<String>,
    pub(super) queue: Option<String>,
    pub(super) routing_key: Option<String>,
    pub(super) prefetch_count: Option<i64>,
    pub(super) prefetch_size: Option<i64>,
    pub(super) consumer_tag: Option<String>,
    pub(super) publisher_confirm: Option<bool>,
}

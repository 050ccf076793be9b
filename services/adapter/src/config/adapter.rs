//! The deployment config (HyperFleet's `AdapterConfig`, flat snake_case): who the adapter is
//! and how it reaches the HyperFleet API, the broker and the cluster.
//!
//! Precedence, as in HyperFleet: flags > environment > YAML > defaults. The overrides HyperFleet
//! documents are applied in [`AdapterConfig::apply_overrides`]; `clients.broker` also takes our
//! own consumer settings (prefetch, parallelism, retry tiers), which HyperFleet does not have
//! because it acks every failure.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use steadfast_service_kit::config::{
    deserialize_duration, deserialize_durations, deserialize_optional_duration,
};
use steadfast_service_kit::http_client::BackoffKind;

fn default_timeout() -> Duration {
    Duration::from_secs(10)
}
fn default_attempts() -> u32 {
    3
}
fn default_backoff() -> BackoffKind {
    BackoffKind::Exponential
}
fn default_base_delay() -> Duration {
    Duration::from_secs(1)
}
fn default_max_delay() -> Duration {
    Duration::from_secs(30)
}
fn default_api_version() -> String {
    "v1".into()
}
fn default_token_ttl() -> Duration {
    Duration::from_secs(30)
}
fn default_prefetch() -> u16 {
    16
}
fn default_parallelism() -> usize {
    8
}
fn default_retry_delays() -> Vec<Duration> {
    [5, 30, 120, 600]
        .into_iter()
        .map(Duration::from_secs)
        .collect()
}
fn default_max_attempts() -> Option<u32> {
    Some(5)
}
fn default_handler_timeout() -> Duration {
    Duration::from_secs(120)
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AdapterConfig {
    pub adapter: AdapterInfo,
    #[serde(default)]
    pub debug_config: bool,
    #[serde(default)]
    pub log: LogSection,
    #[serde(default)]
    pub clients: Clients,
    /// Steadfast's own: how task configs are checked at load.
    #[serde(default)]
    pub validation: Validation,
}

/// `validation:` in the adapter config (not a HyperFleet key).
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Validation {
    /// Refuse a task config our stricter checks warn about (undefined variables, unknown
    /// functions, templates that do not parse, params never set), as `--strict` does.
    #[serde(default)]
    pub strict: bool,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AdapterInfo {
    #[serde(default)]
    pub name: String,
    /// Compared with the task-config format versions this binary implements (major.minor).
    #[serde(default, deserialize_with = "string_or_number")]
    pub version: Option<String>,
}

/// HyperFleet's `log` section, accepted so its configs load; logging is configured as in every
/// Steadfast service, by `LOG_LEVEL` / `LOG_FORMAT` (and the flags).
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LogSection {
    pub level: Option<String>,
    pub format: Option<String>,
    pub output: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Clients {
    #[serde(default)]
    pub hyperfleet_api: HyperfleetApi,
    #[serde(default)]
    pub broker: BrokerSection,
    #[serde(default)]
    pub kubernetes: KubernetesSection,
    /// Parsed only to say clearly that the Maestro transport is not supported yet.
    #[serde(default)]
    pub maestro: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct HyperfleetApi {
    pub base_url: Option<String>,
    #[serde(default = "default_api_version")]
    pub version: String,
    #[serde(default = "default_timeout", deserialize_with = "deserialize_duration")]
    pub timeout: Duration,
    /// Total attempts, the first included (HyperFleet's meaning; at least 1).
    #[serde(default = "default_attempts")]
    pub retry_attempts: u32,
    #[serde(default = "default_backoff")]
    pub retry_backoff: BackoffKind,
    #[serde(
        default = "default_base_delay",
        deserialize_with = "deserialize_duration"
    )]
    pub base_delay: Duration,
    #[serde(
        default = "default_max_delay",
        deserialize_with = "deserialize_duration"
    )]
    pub max_delay: Duration,
    #[serde(default)]
    pub default_headers: BTreeMap<String, String>,
    pub auth: Option<ApiAuth>,
}

impl Default for HyperfleetApi {
    fn default() -> Self {
        Self {
            base_url: None,
            version: default_api_version(),
            timeout: default_timeout(),
            retry_attempts: default_attempts(),
            retry_backoff: default_backoff(),
            base_delay: default_base_delay(),
            max_delay: default_max_delay(),
            default_headers: BTreeMap::new(),
            auth: None,
        }
    }
}

/// A bearer token read from a file (a projected service-account token), re-read after the TTL.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ApiAuth {
    #[serde(default)]
    pub token_path: PathBuf,
    #[serde(
        default = "default_token_ttl",
        deserialize_with = "deserialize_duration"
    )]
    pub token_cache_ttl: Duration,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct BrokerSection {
    pub subscription_id: Option<String>,
    pub topic: Option<String>,
    /// Unacked messages the broker may push ahead (HyperFleet's `prefetch_count`).
    #[serde(default = "default_prefetch")]
    pub prefetch_count: u16,
    /// Events handled at once (HyperFleet's `subscriber.parallelism`).
    #[serde(default = "default_parallelism")]
    pub parallelism: usize,
    /// Retry tiers for transient failures: the n-th retry waits the n-th delay.
    #[serde(
        default = "default_retry_delays",
        deserialize_with = "deserialize_durations"
    )]
    pub retry_delays: Vec<Duration>,
    /// Attempts before a transiently failing event is parked; `null` retries for ever.
    #[serde(default = "default_max_attempts")]
    pub max_attempts: Option<u32>,
    /// One event taking longer than this counts as a transient failure.
    #[serde(
        default = "default_handler_timeout",
        deserialize_with = "deserialize_duration"
    )]
    pub handler_timeout: Duration,
}

impl Default for BrokerSection {
    fn default() -> Self {
        Self {
            subscription_id: None,
            topic: None,
            prefetch_count: default_prefetch(),
            parallelism: default_parallelism(),
            retry_delays: default_retry_delays(),
            max_attempts: default_max_attempts(),
            handler_timeout: default_handler_timeout(),
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct KubernetesSection {
    pub api_version: Option<String>,
    /// Empty: in-cluster service account.
    pub kube_config_path: Option<PathBuf>,
    /// Client-side rate limit (requests per second); `None` or 0 for none.
    pub qps: Option<f64>,
    pub burst: Option<u32>,
    /// Bounds one Kubernetes request.
    #[serde(default, deserialize_with = "deserialize_optional_duration")]
    pub timeout: Option<Duration>,
}

/// Values from flags and the environment that win over the YAML.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub api_base_url: Option<String>,
    pub subscription_id: Option<String>,
    pub topic: Option<String>,
    pub kube_config_path: Option<PathBuf>,
}

impl AdapterConfig {
    pub fn apply_overrides(&mut self, overrides: &Overrides) {
        let set = |slot: &mut Option<String>, value: &Option<String>| {
            if let Some(v) = value.as_ref().filter(|v| !v.trim().is_empty()) {
                *slot = Some(v.trim().to_owned());
            }
        };
        set(
            &mut self.clients.hyperfleet_api.base_url,
            &overrides.api_base_url,
        );
        set(
            &mut self.clients.broker.subscription_id,
            &overrides.subscription_id,
        );
        set(&mut self.clients.broker.topic, &overrides.topic);
        if let Some(path) = overrides
            .kube_config_path
            .as_ref()
            .filter(|p| !p.as_os_str().is_empty())
        {
            self.clients.kubernetes.kube_config_path = Some(path.clone());
        }
    }

    /// `<topic>-<subscription_id>`, HyperFleet's queue name.
    pub fn queue_name(&self) -> Option<String> {
        Some(format!(
            "{}-{}",
            self.clients.broker.topic.as_deref()?,
            self.clients.broker.subscription_id.as_deref()?
        ))
    }
}

/// `version: 0.2` and `version: "0.2.0"` both read as text.
fn string_or_number<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Text(String),
        Number(serde_json::Number),
    }
    Ok(Option::<Raw>::deserialize(d)?.map(|raw| match raw {
        Raw::Text(t) => t,
        Raw::Number(n) => n.to_string(),
    }))
}

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
    deserialize_duration, deserialize_durations, deserialize_optional_duration, format_duration,
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
/// Steadfast service, by `LOG_LEVEL` / `LOG_FORMAT` (and the flags), which also override this
/// section as in HyperFleet; so does `--log-output` / `LOG_OUTPUT`, though Steadfast's logs go
/// to stdout whatever it says.
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

/// A setting's place in the adapter config, e.g. `["clients", "broker", "topic"]`.
pub type SettingPath = &'static [&'static str];

/// Values from flags and the environment that win over the YAML (HyperFleet's override flags
/// and `HYPERFLEET_*` variables). `None` keeps the file's value, and so does a blank text:
/// HyperFleet ignores empty variables, which charts render for unset values.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub debug_config: Option<bool>,
    pub log_level: Option<String>,
    pub log_format: Option<String>,
    pub log_output: Option<String>,
    pub api_base_url: Option<String>,
    pub api_version: Option<String>,
    pub api_timeout: Option<Duration>,
    pub api_retry_attempts: Option<u32>,
    pub api_retry_backoff: Option<BackoffKind>,
    pub api_base_delay: Option<Duration>,
    pub api_max_delay: Option<Duration>,
    /// Sets up `clients.hyperfleet_api.auth` when the file has none.
    pub api_token_path: Option<PathBuf>,
    pub api_token_cache_ttl: Option<Duration>,
    pub subscription_id: Option<String>,
    pub topic: Option<String>,
    pub kube_config_path: Option<PathBuf>,
    pub kube_api_version: Option<String>,
    pub kube_qps: Option<f64>,
    pub kube_burst: Option<u32>,
    /// `clients.maestro` settings, each with its full path (`["clients", "maestro", ...]`;
    /// others are ignored). Kept as given: Steadfast has no
    /// Maestro transport yet, so they only create or change that section, which load then
    /// treats exactly as it treats the section written in the file.
    pub maestro: Vec<(SettingPath, serde_json::Value)>,
}

impl Overrides {
    /// What the overrides set, each at its path and written as the file would write it
    /// (durations in Go's form, `33s`), so that `config.*` shows what the adapter runs with.
    pub fn settings(&self) -> Vec<(SettingPath, serde_json::Value)> {
        use serde_json::Value;
        let text = |value: &Option<String>| non_blank(value).map(Value::from);
        let path = |value: &Option<PathBuf>| {
            non_empty_path(value).map(|p| Value::from(p.display().to_string()))
        };
        let duration = |value: &Option<Duration>| value.map(|d| Value::from(format_duration(d)));
        let candidates: [(SettingPath, Option<Value>); _] = [
            (&["debug_config"], self.debug_config.map(Value::from)),
            (&["log", "level"], text(&self.log_level)),
            (&["log", "format"], text(&self.log_format)),
            (&["log", "output"], text(&self.log_output)),
            (
                &["clients", "hyperfleet_api", "base_url"],
                text(&self.api_base_url),
            ),
            (
                &["clients", "hyperfleet_api", "version"],
                text(&self.api_version),
            ),
            (
                &["clients", "hyperfleet_api", "timeout"],
                duration(&self.api_timeout),
            ),
            (
                &["clients", "hyperfleet_api", "retry_attempts"],
                self.api_retry_attempts.map(Value::from),
            ),
            (
                &["clients", "hyperfleet_api", "retry_backoff"],
                self.api_retry_backoff
                    .map(|kind| Value::from(kind.as_str())),
            ),
            (
                &["clients", "hyperfleet_api", "base_delay"],
                duration(&self.api_base_delay),
            ),
            (
                &["clients", "hyperfleet_api", "max_delay"],
                duration(&self.api_max_delay),
            ),
            (
                &["clients", "hyperfleet_api", "auth", "token_path"],
                path(&self.api_token_path),
            ),
            (
                &["clients", "hyperfleet_api", "auth", "token_cache_ttl"],
                duration(&self.api_token_cache_ttl),
            ),
            (
                &["clients", "broker", "subscription_id"],
                text(&self.subscription_id),
            ),
            (&["clients", "broker", "topic"], text(&self.topic)),
            (
                &["clients", "kubernetes", "kube_config_path"],
                path(&self.kube_config_path),
            ),
            (
                &["clients", "kubernetes", "api_version"],
                text(&self.kube_api_version),
            ),
            (
                &["clients", "kubernetes", "qps"],
                self.kube_qps.map(Value::from),
            ),
            (
                &["clients", "kubernetes", "burst"],
                self.kube_burst.map(Value::from),
            ),
        ];
        candidates
            .into_iter()
            .filter_map(|(path, value)| Some((path, value?)))
            .chain(self.maestro.iter().cloned())
            .collect()
    }
}

impl AdapterConfig {
    pub fn apply_overrides(&mut self, overrides: &Overrides) {
        if let Some(debug) = overrides.debug_config {
            self.debug_config = debug;
        }
        replace(&mut self.log.level, non_blank(&overrides.log_level));
        replace(&mut self.log.format, non_blank(&overrides.log_format));
        replace(&mut self.log.output, non_blank(&overrides.log_output));
        self.clients.hyperfleet_api.apply_overrides(overrides);
        let broker = &mut self.clients.broker;
        replace(
            &mut broker.subscription_id,
            non_blank(&overrides.subscription_id),
        );
        replace(&mut broker.topic, non_blank(&overrides.topic));
        let kubernetes = &mut self.clients.kubernetes;
        replace(
            &mut kubernetes.kube_config_path,
            non_empty_path(&overrides.kube_config_path),
        );
        replace(
            &mut kubernetes.api_version,
            non_blank(&overrides.kube_api_version),
        );
        replace(&mut kubernetes.qps, overrides.kube_qps);
        replace(&mut kubernetes.burst, overrides.kube_burst);
        for (path, value) in &overrides.maestro {
            // The paths are full ones, for `config.*`; the typed config holds only the section.
            let Some(below) = path.strip_prefix(&MAESTRO_SECTION[..]) else {
                continue;
            };
            let section = self
                .clients
                .maestro
                .get_or_insert_with(|| serde_json::json!({}));
            set_setting(section, below, value.clone());
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

const MAESTRO_SECTION: [&str; 2] = ["clients", "maestro"];

impl HyperfleetApi {
    fn apply_overrides(&mut self, overrides: &Overrides) {
        replace(&mut self.base_url, non_blank(&overrides.api_base_url));
        if let Some(version) = non_blank(&overrides.api_version) {
            self.version = version;
        }
        set_if_some(&mut self.timeout, overrides.api_timeout);
        set_if_some(&mut self.retry_attempts, overrides.api_retry_attempts);
        set_if_some(&mut self.retry_backoff, overrides.api_retry_backoff);
        set_if_some(&mut self.base_delay, overrides.api_base_delay);
        set_if_some(&mut self.max_delay, overrides.api_max_delay);
        let token_path = non_empty_path(&overrides.api_token_path);
        if token_path.is_none() && overrides.api_token_cache_ttl.is_none() {
            return;
        }
        // As in HyperFleet, either variable creates the section; a TTL without a path is then
        // refused by the usual check ("token_path must be set when auth is configured").
        let auth = self.auth.get_or_insert_with(|| ApiAuth {
            token_path: PathBuf::new(),
            token_cache_ttl: default_token_ttl(),
        });
        set_if_some(&mut auth.token_path, token_path);
        set_if_some(&mut auth.token_cache_ttl, overrides.api_token_cache_ttl);
    }
}

/// `clients.hyperfleet_api.default_headers` whose values are credentials.
const SECRET_HEADERS: [&str; 2] = ["authorization", "proxy-authorization"];

/// What stands in for a secret in `config-dump` (HyperFleet's marker).
pub const REDACTED: &str = "**REDACTED**";

/// Replaces the secrets in an adapter config (as JSON) by [`REDACTED`], as HyperFleet's
/// `config-dump` does: the Maestro TLS file paths, and credential headers sent to the API.
pub fn redact_secrets(config: &mut serde_json::Value) {
    let redact = |value: &mut serde_json::Value| {
        if value.as_str().is_none_or(|text| !text.is_empty()) {
            *value = REDACTED.into();
        }
    };
    let headers = config.pointer_mut("/clients/hyperfleet_api/default_headers");
    if let Some(headers) = headers.and_then(serde_json::Value::as_object_mut) {
        headers
            .iter_mut()
            .filter(|(name, _)| SECRET_HEADERS.contains(&name.to_ascii_lowercase().as_str()))
            .for_each(|(_, value)| redact(value));
    }
    let tls = config.pointer_mut("/clients/maestro/auth/tls_config");
    if let Some(tls) = tls.and_then(serde_json::Value::as_object_mut) {
        for file in ["ca_file", "cert_file", "key_file", "http_ca_file"] {
            tls.get_mut(file).into_iter().for_each(redact);
        }
    }
}

/// Sets `value` at `path` below `root`, making objects of whatever is in the way.
pub fn set_setting(root: &mut serde_json::Value, path: &[&str], value: serde_json::Value) {
    let Some((last, parents)) = path.split_last() else {
        *root = value;
        return;
    };
    let mut node = root;
    for key in parents {
        node = object(node)
            .entry(*key)
            .or_insert_with(|| serde_json::json!({}));
    }
    object(node).insert((*last).to_owned(), value);
}

/// `value` as an object, replacing anything else by an empty one.
fn object(value: &mut serde_json::Value) -> &mut serde_json::Map<String, serde_json::Value> {
    if !value.is_object() {
        *value = serde_json::json!({});
    }
    value.as_object_mut().expect("made an object above")
}

fn replace<T>(slot: &mut Option<T>, value: Option<T>) {
    if value.is_some() {
        *slot = value;
    }
}

fn set_if_some<T>(slot: &mut T, value: Option<T>) {
    if let Some(value) = value {
        *slot = value;
    }
}

/// The trimmed text, `None` when blank.
pub(crate) fn non_blank(value: &Option<String>) -> Option<String> {
    value
        .as_deref()
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
}

fn non_empty_path(value: &Option<PathBuf>) -> Option<PathBuf> {
    value.clone().filter(|p| !p.as_os_str().is_empty())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn setting_a_path_makes_the_objects_in_the_way() {
        let mut config = serde_json::json!({"clients": {"broker": "not an object"}});
        set_setting(&mut config, &["clients", "broker", "topic"], "t".into());
        set_setting(&mut config, &["debug_config"], true.into());
        assert_eq!(
            config,
            serde_json::json!({"clients": {"broker": {"topic": "t"}}, "debug_config": true})
        );
    }

    #[test]
    fn redaction_covers_credential_headers_and_maestro_files_only() {
        let mut config = serde_json::json!({"clients": {
            "hyperfleet_api": {"default_headers": {"Authorization": "Bearer x", "X-Team": "a"}},
            "maestro": {"auth": {"tls_config": {"ca_file": "/ca", "key_file": ""}}},
        }});
        redact_secrets(&mut config);
        let clients = &config["clients"];
        assert_eq!(
            clients["hyperfleet_api"]["default_headers"]["Authorization"],
            REDACTED
        );
        assert_eq!(clients["hyperfleet_api"]["default_headers"]["X-Team"], "a");
        assert_eq!(
            clients["maestro"]["auth"]["tls_config"]["ca_file"],
            REDACTED
        );
        assert_eq!(clients["maestro"]["auth"]["tls_config"]["key_file"], "");
    }
}

//! HyperFleet's override flags, each with its environment variable: flags > environment >
//! the `--config` file > defaults, as in HyperFleet's adapter (its `viper_loader`). A blank
//! value counts as not given, as there: charts render unset values as empty strings.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use clap::builder::{BoolishValueParser, EnumValueParser, PossibleValue, TypedValueParser};
use serde_json::Value;
use steadfast_service_kit::config::parse_duration_arg;
use steadfast_service_kit::http_client::BackoffKind;

use super::GivenLogSettings;
use crate::config::Overrides;
use crate::config::adapter::{SettingPath, non_blank};

/// Where --help lists the overrides.
pub const HEADING: &str = "Overrides of the --config file (flag > environment > file)";

#[derive(Debug, Args)]
#[command(next_help_heading = HEADING)]
pub struct OverrideArgs {
    /// Overrides debug_config: serve the merged configuration on /config. Takes an optional
    /// value, `--debug-config=false` turning it off.
    #[arg(
        long,
        env = "HYPERFLEET_DEBUG_CONFIG",
        value_name = "BOOL",
        num_args = 0..=1,
        default_missing_value = "true",
        value_parser = blank_is_unset(BoolishValueParser::new())
    )]
    pub debug_config: Option<Given<bool>>,

    /// Overrides log.output, where HyperFleet's adapter logs. Checked and shown in the config
    /// only: Steadfast's logs always go to stdout (a dry run's to stderr).
    #[arg(long, env = "LOG_OUTPUT", value_parser = blank_is_unset(EnumValueParser::<LogOutput>::new()))]
    pub log_output: Option<Given<LogOutput>>,

    /// Overrides clients.hyperfleet_api.base_url.
    #[arg(long, env = "HYPERFLEET_API_BASE_URL", value_name = "URL")]
    pub hyperfleet_api_base_url: Option<String>,

    /// Overrides clients.hyperfleet_api.version (e.g. v1).
    #[arg(long, env = "HYPERFLEET_API_VERSION", value_name = "VERSION")]
    pub hyperfleet_api_version: Option<String>,

    /// Overrides clients.hyperfleet_api.timeout (e.g. 10s).
    #[arg(long, env = "HYPERFLEET_API_TIMEOUT", value_name = "DURATION", value_parser = blank_is_unset(parse_duration_arg))]
    pub hyperfleet_api_timeout: Option<Given<Duration>>,

    /// Overrides clients.hyperfleet_api.retry_attempts (every attempt, the first included).
    #[arg(
        long = "hyperfleet-api-retry",
        env = "HYPERFLEET_API_RETRY_ATTEMPTS",
        value_name = "ATTEMPTS",
        value_parser = blank_is_unset(clap::value_parser!(u32))
    )]
    pub hyperfleet_api_retry_attempts: Option<Given<u32>>,

    /// Overrides clients.hyperfleet_api.retry_backoff: exponential, linear or constant.
    #[arg(long, env = "HYPERFLEET_API_RETRY_BACKOFF", value_name = "BACKOFF", value_parser = blank_is_unset(BackoffKind::parse))]
    pub hyperfleet_api_retry_backoff: Option<Given<BackoffKind>>,

    /// Overrides clients.hyperfleet_api.base_delay, the wait before the first retry (e.g. 1s).
    #[arg(long, env = "HYPERFLEET_API_BASE_DELAY", value_name = "DURATION", value_parser = blank_is_unset(parse_duration_arg))]
    pub hyperfleet_api_base_delay: Option<Given<Duration>>,

    /// Overrides clients.hyperfleet_api.max_delay, the longest wait between retries (e.g. 30s).
    #[arg(long, env = "HYPERFLEET_API_MAX_DELAY", value_name = "DURATION", value_parser = blank_is_unset(parse_duration_arg))]
    pub hyperfleet_api_max_delay: Option<Given<Duration>>,

    /// Overrides clients.hyperfleet_api.auth.token_path (HyperFleet's chart sets the variable
    /// when API authentication is on).
    #[arg(long, env = "HYPERFLEET_API_AUTH_TOKEN_PATH", value_name = "PATH")]
    pub hyperfleet_api_auth_token_path: Option<PathBuf>,

    /// Overrides clients.hyperfleet_api.auth.token_cache_ttl (e.g. 30s).
    #[arg(long, env = "HYPERFLEET_API_AUTH_TOKEN_CACHE_TTL", value_name = "DURATION", value_parser = blank_is_unset(parse_duration_arg))]
    pub hyperfleet_api_auth_token_cache_ttl: Option<Given<Duration>>,

    /// Overrides clients.broker.subscription_id (legacy env: BROKER_SUBSCRIPTION_ID).
    #[arg(long, env = "HYPERFLEET_BROKER_SUBSCRIPTION_ID", value_name = "ID")]
    pub broker_subscription_id: Option<String>,

    /// Overrides clients.broker.topic (legacy env: BROKER_TOPIC).
    #[arg(long, env = "HYPERFLEET_BROKER_TOPIC", value_name = "TOPIC")]
    pub broker_topic: Option<String>,

    /// Overrides clients.kubernetes.kube_config_path (unset: the in-cluster service account).
    /// Steadfast's earlier names still work: --kube-config-path, HYPERFLEET_KUBE_CONFIG_PATH.
    #[arg(
        long,
        visible_alias = "kube-config-path",
        env = "HYPERFLEET_KUBERNETES_KUBE_CONFIG_PATH",
        value_name = "PATH"
    )]
    pub kubernetes_kube_config_path: Option<PathBuf>,

    /// Overrides clients.kubernetes.api_version.
    #[arg(
        long,
        env = "HYPERFLEET_KUBERNETES_API_VERSION",
        value_name = "VERSION"
    )]
    pub kubernetes_api_version: Option<String>,

    /// Overrides clients.kubernetes.qps, the client-side rate limit (0: none).
    #[arg(long, env = "HYPERFLEET_KUBERNETES_QPS", value_name = "PER_SECOND", value_parser = blank_is_unset(parse_qps))]
    pub kubernetes_qps: Option<Given<f64>>,

    /// Overrides clients.kubernetes.burst, the requests allowed at once above the rate.
    #[arg(long, env = "HYPERFLEET_KUBERNETES_BURST", value_name = "REQUESTS", value_parser = blank_is_unset(clap::value_parser!(u32)))]
    pub kubernetes_burst: Option<Given<u32>>,

    #[command(flatten)]
    pub maestro: MaestroArgs,
}

/// Legacy variables, read when the current name is not set (blank counts as not set).
const LEGACY_SUBSCRIPTION_ID: &str = "BROKER_SUBSCRIPTION_ID";
const LEGACY_TOPIC: &str = "BROKER_TOPIC";
const LEGACY_KUBE_CONFIG_PATH: &str = "HYPERFLEET_KUBE_CONFIG_PATH";

impl OverrideArgs {
    /// The overrides, with the legacy variables read from `environment`.
    pub fn overrides(
        &self,
        environment: &BTreeMap<String, String>,
        log: &GivenLogSettings,
    ) -> Overrides {
        let legacy = |name: &str| {
            environment
                .get(name)
                .filter(|value| !value.trim().is_empty())
                .cloned()
        };
        Overrides {
            debug_config: given(self.debug_config),
            log_level: log.level.clone(),
            log_format: log.format.clone(),
            log_output: given(self.log_output).map(|output| output.as_str().to_owned()),
            api_base_url: self.hyperfleet_api_base_url.clone(),
            api_version: self.hyperfleet_api_version.clone(),
            api_timeout: given(self.hyperfleet_api_timeout),
            api_retry_attempts: given(self.hyperfleet_api_retry_attempts),
            api_retry_backoff: given(self.hyperfleet_api_retry_backoff),
            api_base_delay: given(self.hyperfleet_api_base_delay),
            api_max_delay: given(self.hyperfleet_api_max_delay),
            api_token_path: self.hyperfleet_api_auth_token_path.clone(),
            api_token_cache_ttl: given(self.hyperfleet_api_auth_token_cache_ttl),
            subscription_id: non_blank(&self.broker_subscription_id)
                .or_else(|| legacy(LEGACY_SUBSCRIPTION_ID)),
            topic: non_blank(&self.broker_topic).or_else(|| legacy(LEGACY_TOPIC)),
            kube_config_path: self
                .kubernetes_kube_config_path
                .clone()
                .filter(|path| !path.as_os_str().is_empty())
                .or_else(|| legacy(LEGACY_KUBE_CONFIG_PATH).map(PathBuf::from)),
            kube_api_version: self.kubernetes_api_version.clone(),
            kube_qps: given(self.kubernetes_qps),
            kube_burst: given(self.kubernetes_burst),
            maestro: self.maestro.settings(),
        }
    }
}

/// HyperFleet's Maestro client flags, accepted (and hidden from --help) so its deployments
/// start unchanged. As in HyperFleet they set `clients.maestro`; Steadfast has no Maestro
/// transport yet, and load treats the section as it treats one written in the file.
#[derive(Debug, Args)]
pub struct MaestroArgs {
    #[arg(long, env = "HYPERFLEET_MAESTRO_GRPC_SERVER_ADDRESS", hide = true)]
    pub maestro_grpc_server_address: Option<String>,
    #[arg(long, env = "HYPERFLEET_MAESTRO_HTTP_SERVER_ADDRESS", hide = true)]
    pub maestro_http_server_address: Option<String>,
    #[arg(long, env = "HYPERFLEET_MAESTRO_SOURCE_ID", hide = true)]
    pub maestro_source_id: Option<String>,
    #[arg(long, env = "HYPERFLEET_MAESTRO_CLIENT_ID", hide = true)]
    pub maestro_client_id: Option<String>,
    #[arg(long, env = "HYPERFLEET_MAESTRO_AUTH_TYPE", hide = true)]
    pub maestro_auth_type: Option<String>,
    #[arg(long, env = "HYPERFLEET_MAESTRO_CA_FILE", hide = true)]
    pub maestro_ca_file: Option<String>,
    #[arg(long, env = "HYPERFLEET_MAESTRO_CERT_FILE", hide = true)]
    pub maestro_cert_file: Option<String>,
    #[arg(long, env = "HYPERFLEET_MAESTRO_KEY_FILE", hide = true)]
    pub maestro_key_file: Option<String>,
    #[arg(long, env = "HYPERFLEET_MAESTRO_HTTP_CA_FILE", hide = true)]
    pub maestro_http_ca_file: Option<String>,
    /// Durations are kept as text, as HyperFleet's Maestro section keeps them.
    #[arg(long, env = "HYPERFLEET_MAESTRO_TIMEOUT", hide = true)]
    pub maestro_timeout: Option<String>,
    #[arg(
        long,
        env = "HYPERFLEET_MAESTRO_SERVER_HEALTHINESS_TIMEOUT",
        hide = true
    )]
    pub maestro_server_healthiness_timeout: Option<String>,
    #[arg(long, env = "HYPERFLEET_MAESTRO_RETRY_ATTEMPTS", hide = true, value_parser = blank_is_unset(clap::value_parser!(i64)))]
    pub maestro_retry_attempts: Option<Given<i64>>,
    #[arg(long, env = "HYPERFLEET_MAESTRO_KEEPALIVE_TIME", hide = true)]
    pub maestro_keepalive_time: Option<String>,
    #[arg(long, env = "HYPERFLEET_MAESTRO_KEEPALIVE_TIMEOUT", hide = true)]
    pub maestro_keepalive_timeout: Option<String>,
    #[arg(
        long,
        env = "HYPERFLEET_MAESTRO_INSECURE",
        hide = true,
        num_args = 0..=1,
        default_missing_value = "true",
        value_parser = blank_is_unset(BoolishValueParser::new())
    )]
    pub maestro_insecure: Option<Given<bool>>,
}

impl MaestroArgs {
    /// The settings given, each at its path in `clients.maestro`.
    pub fn settings(&self) -> Vec<(SettingPath, Value)> {
        let text = |value: &Option<String>| non_blank(value).map(Value::from);
        let candidates: [(SettingPath, Option<Value>); _] = [
            (
                &["clients", "maestro", "grpc_server_address"],
                text(&self.maestro_grpc_server_address),
            ),
            (
                &["clients", "maestro", "http_server_address"],
                text(&self.maestro_http_server_address),
            ),
            (
                &["clients", "maestro", "source_id"],
                text(&self.maestro_source_id),
            ),
            (
                &["clients", "maestro", "client_id"],
                text(&self.maestro_client_id),
            ),
            (
                &["clients", "maestro", "auth", "type"],
                text(&self.maestro_auth_type),
            ),
            (
                &["clients", "maestro", "auth", "tls_config", "ca_file"],
                text(&self.maestro_ca_file),
            ),
            (
                &["clients", "maestro", "auth", "tls_config", "cert_file"],
                text(&self.maestro_cert_file),
            ),
            (
                &["clients", "maestro", "auth", "tls_config", "key_file"],
                text(&self.maestro_key_file),
            ),
            (
                &["clients", "maestro", "auth", "tls_config", "http_ca_file"],
                text(&self.maestro_http_ca_file),
            ),
            (
                &["clients", "maestro", "timeout"],
                text(&self.maestro_timeout),
            ),
            (
                &["clients", "maestro", "server_healthiness_timeout"],
                text(&self.maestro_server_healthiness_timeout),
            ),
            (
                &["clients", "maestro", "retry_attempts"],
                given(self.maestro_retry_attempts).map(Value::from),
            ),
            (
                &["clients", "maestro", "keepalive", "time"],
                text(&self.maestro_keepalive_time),
            ),
            (
                &["clients", "maestro", "keepalive", "timeout"],
                text(&self.maestro_keepalive_timeout),
            ),
            (
                &["clients", "maestro", "insecure"],
                given(self.maestro_insecure).map(Value::from),
            ),
        ];
        candidates
            .into_iter()
            .filter_map(|(path, value)| Some((path, value?)))
            .collect()
    }
}

/// A typed flag's or variable's value, `None` when it was blank (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Given<T>(pub Option<T>);

fn given<T>(value: Option<Given<T>>) -> Option<T> {
    value.and_then(|Given(value)| value)
}

/// A value parser that reads a blank value as [`Given`]`(None)` and anything else with `P`.
#[derive(Debug, Clone)]
pub struct BlankIsUnset<P>(P);

pub fn blank_is_unset<P: TypedValueParser>(parser: P) -> BlankIsUnset<P> {
    BlankIsUnset(parser)
}

impl<P> TypedValueParser for BlankIsUnset<P>
where
    P: TypedValueParser,
    P::Value: Send + Sync + Clone,
{
    type Value = Given<P::Value>;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &OsStr,
    ) -> Result<Self::Value, clap::Error> {
        if value.to_str().is_some_and(|text| text.trim().is_empty()) {
            return Ok(Given(None));
        }
        self.0
            .parse_ref(cmd, arg, value)
            .map(|parsed| Given(Some(parsed)))
    }

    /// The inner parser's, so that --help and errors still list them.
    fn possible_values(&self) -> Option<Box<dyn Iterator<Item = PossibleValue> + '_>> {
        self.0.possible_values()
    }
}

/// HyperFleet's log destinations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogOutput {
    Stdout,
    Stderr,
}

impl LogOutput {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Stdout => "stdout",
            Self::Stderr => "stderr",
        }
    }
}

/// Why a `--kubernetes-qps` value is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{text}` is not a rate: give requests per second, 0 or more")]
pub struct QpsError {
    text: String,
}

/// Parses a client-side rate limit (a clap value parser).
pub fn parse_qps(text: &str) -> Result<f64, QpsError> {
    text.trim()
        .parse::<f64>()
        .ok()
        .filter(|qps| qps.is_finite() && *qps >= 0.0)
        .ok_or_else(|| QpsError { text: text.into() })
}

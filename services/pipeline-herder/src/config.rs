//! The herder's configuration: one YAML file (`--config`) plus the common environment.
//!
//! ```yaml
//! gitlab_instances:
//!   gitlab.com:
//!     api_url: https://gitlab.com/api/v4
//!     token_env: GITLAB_TOKEN          # the token is read from this environment variable
//! matchers_file: matchers.yaml         # relative to this file; or `matchers: [...]` inline;
//!                                      # neither: the shipped default matchers
//! chatbot_url: https://chatbot.example.com/message   # optional; CHATBOT_URL overrides
//! gitlab_api: {timeout: 30s, retry: {base_delay: 1s, max_delay: 30s, max_elapsed: 2m}}
//! consumer: {prefetch: 16, concurrency: 4, handler_timeout: 10m}
//! message_retry: {delays: [5s, 30s, 2m, 10m, 1h], max_attempts: 24}
//! ```
//!
//! Every error names the field it is about; `--check-config` prints it.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use steadfast_messaging::{BrokerConfig, ConsumerSettings, Namespace, RetryPolicy};
use steadfast_service_kit::config::{
    ConfigError, deserialize_duration, deserialize_durations, deserialize_optional_duration,
};
use steadfast_service_kit::http_client::{BackoffKind, RetryPolicy as HttpRetryPolicy};
use url::Url;

use crate::gitlab::{ApiSettings, Instance};
use crate::matchers::schema::{RawMatcher, parse_matchers_file};
use crate::matchers::{MatcherError, MatcherSet};

/// A setting that cannot be used; the text names the setting at fault. Callers get it as
/// service-kit's `ConfigError::Invalid` (see the `From` below), with this text.
#[derive(Debug, thiserror::Error)]
pub enum SettingError {
    #[error("set either `matchers` or `matchers_file`, not both")]
    BothMatcherSources,
    #[error(transparent)]
    Matchers(Box<MatcherError>),
    #[error("matchers file `{path}`: {source}")]
    MatchersFile {
        path: PathBuf,
        #[source]
        source: Box<MatcherError>,
    },
    #[error("gitlab_api.timeout must be greater than zero")]
    ZeroApiTimeout,
    #[error("gitlab_api.retry: base_delay must be greater than zero and at most max_delay")]
    ApiRetryDelays,
    #[error("gitlab_api.retry.max_attempts must be at least 1")]
    ApiRetryAttempts,
    #[error("consumer.prefetch and consumer.concurrency must be at least 1")]
    ConsumerLimits,
    #[error("consumer.handler_timeout must be greater than zero")]
    ZeroHandlerTimeout,
    #[error("message_retry.delays must list at least one delay, each greater than zero")]
    MessageRetryDelays,
    #[error("message_retry.max_attempts must be at least 1 (null: retry until handled)")]
    MessageRetryAttempts,
    #[error(
        "{field}: the key must be the instance's host as in its URLs (e.g. `gitlab.com` or `gitlab.example.com:8443`), without scheme or path"
    )]
    InstanceHost { field: String },
    #[error("{field}.token_env: environment variable `{variable}` is not set or empty")]
    TokenUnset { field: String, variable: String },
    #[error("{field}: `{text}` is not a URL: {source}")]
    NotAUrl {
        field: String,
        text: String,
        #[source]
        source: url::ParseError,
    },
    #[error("{field}: `{text}` must be an http:// or https:// URL")]
    NotHttp { field: String, text: String },
    #[error("STEADFAST_NAMESPACE: {0}")]
    Namespace(#[source] steadfast_messaging::MessagingError),
    #[error("AMQP_URL: {0}")]
    AmqpUrl(#[source] steadfast_messaging::MessagingError),
    #[error("DATABASE_URL is not set (the herder keeps its ledger in PostgreSQL)")]
    NoDatabaseUrl,
    #[error("DATABASE_URL: {0}")]
    DatabaseUrl(#[source] sqlx::Error),
    /// The logging settings (`LOG_LEVEL`, `LOG_FORMAT`, `OTEL_*`) cannot be used.
    #[error(transparent)]
    Telemetry(Box<dyn std::error::Error + Send + Sync>),
}

/// `HerderSettings` and `Config` return service-kit's `ConfigError`; shown as it is.
impl From<SettingError> for ConfigError {
    fn from(error: SettingError) -> Self {
        ConfigError::invalid(error)
    }
}

/// The YAML file as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    #[serde(default)]
    pub gitlab_instances: BTreeMap<String, InstanceEntry>,
    #[serde(default)]
    pub matchers: Option<Vec<RawMatcher>>,
    #[serde(default)]
    pub matchers_file: Option<PathBuf>,
    #[serde(default)]
    pub chatbot_url: Option<String>,
    #[serde(default)]
    pub gitlab_api: ApiEntry,
    #[serde(default)]
    pub consumer: ConsumerEntry,
    #[serde(default)]
    pub message_retry: MessageRetryEntry,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InstanceEntry {
    pub api_url: String,
    #[serde(default)]
    pub token_env: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiEntry {
    #[serde(deserialize_with = "deserialize_duration")]
    pub timeout: Duration,
    pub retry: ApiRetryEntry,
}

impl Default for ApiEntry {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(30),
            retry: ApiRetryEntry::default(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiRetryEntry {
    #[serde(deserialize_with = "deserialize_duration")]
    pub base_delay: Duration,
    #[serde(deserialize_with = "deserialize_duration")]
    pub max_delay: Duration,
    #[serde(deserialize_with = "deserialize_optional_duration")]
    pub max_elapsed: Option<Duration>,
    pub max_attempts: Option<u32>,
}

impl Default for ApiRetryEntry {
    fn default() -> Self {
        Self {
            base_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(30),
            max_elapsed: Some(Duration::from_secs(120)),
            max_attempts: None,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConsumerEntry {
    pub prefetch: u16,
    pub concurrency: usize,
    #[serde(deserialize_with = "deserialize_duration")]
    pub handler_timeout: Duration,
}

impl Default for ConsumerEntry {
    fn default() -> Self {
        Self {
            prefetch: 16,
            concurrency: 4,
            handler_timeout: Duration::from_secs(600),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MessageRetryEntry {
    #[serde(deserialize_with = "deserialize_durations")]
    pub delays: Vec<Duration>,
    /// `null` circulates until handled.
    pub max_attempts: Option<u32>,
}

impl Default for MessageRetryEntry {
    fn default() -> Self {
        Self {
            delays: [5, 30, 120, 600, 3600].map(Duration::from_secs).to_vec(),
            max_attempts: Some(24),
        }
    }
}

/// Everything the YAML file decides, validated.
#[derive(Debug, Clone)]
pub struct HerderSettings {
    /// Instance (`host` or `host:port`) → how to reach its API.
    pub instances: HashMap<String, Instance>,
    pub matchers: Arc<MatcherSet>,
    /// Where the matchers came from, for logs and `--check-config`.
    pub matchers_source: String,
    pub chatbot_url: Option<Url>,
    pub api: ApiSettings,
    pub consumer: ConsumerSettings,
    pub message_retry: RetryPolicy,
}

impl HerderSettings {
    /// Reads and validates the file at `path`; `env` looks up environment variables (the
    /// instances' tokens).
    pub fn load(path: &Path, env: &dyn Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        Self::from_yaml(&text, base, env).map_err(|e| match e {
            ConfigError::Parse { message, .. } => ConfigError::Parse {
                path: path.to_owned(),
                message,
            },
            other => other,
        })
    }

    /// Validates YAML text; a relative `matchers_file` is resolved against `base_dir`.
    pub fn from_yaml(
        text: &str,
        base_dir: &Path,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let file: ConfigFile = serde_norway::from_str(text).map_err(|e| ConfigError::Parse {
            path: PathBuf::from("<config>"),
            message: e.to_string(),
        })?;
        Self::from_file(file, base_dir, env)
    }

    pub fn from_file(
        file: ConfigFile,
        base_dir: &Path,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let instances = file
            .gitlab_instances
            .iter()
            .map(|(host, entry)| instance(host, entry, env).map(|i| (host.clone(), i)))
            .collect::<Result<HashMap<_, _>, _>>()?;

        let (matchers, matchers_source) = match (file.matchers, &file.matchers_file) {
            (Some(_), Some(_)) => {
                return Err(SettingError::BothMatcherSources.into());
            }
            (Some(entries), None) => (
                MatcherSet::from_entries(entries)
                    .map_err(|e| SettingError::Matchers(Box::new(e)))?,
                "inline `matchers`".to_owned(),
            ),
            (None, Some(relative)) => {
                let path = base_dir.join(relative);
                let text = std::fs::read_to_string(&path).map_err(|source| ConfigError::Read {
                    path: path.clone(),
                    source,
                })?;
                let entries = parse_matchers_file(&text).map_err(|e| ConfigError::Parse {
                    path: path.clone(),
                    message: e.to_string(),
                })?;
                let set = MatcherSet::from_entries(entries).map_err(|source| {
                    SettingError::MatchersFile {
                        path: path.clone(),
                        source: Box::new(source),
                    }
                })?;
                (set, format!("`{}`", path.display()))
            }
            (None, None) => (
                MatcherSet::default_set(),
                "the shipped default matchers".to_owned(),
            ),
        };

        let chatbot_url = file
            .chatbot_url
            .filter(|u| !u.trim().is_empty())
            .map(|u| http_url("chatbot_url", &u))
            .transpose()?;

        let retry = &file.gitlab_api.retry;
        if file.gitlab_api.timeout.is_zero() {
            return Err(SettingError::ZeroApiTimeout.into());
        }
        if retry.base_delay.is_zero() || retry.max_delay < retry.base_delay {
            return Err(SettingError::ApiRetryDelays.into());
        }
        if retry.max_attempts == Some(0) {
            return Err(SettingError::ApiRetryAttempts.into());
        }
        let api = ApiSettings {
            timeout: file.gitlab_api.timeout,
            retry: HttpRetryPolicy {
                kind: BackoffKind::Exponential,
                base_delay: retry.base_delay,
                max_delay: retry.max_delay,
                jitter: 0.1,
                max_attempts: retry.max_attempts,
                max_elapsed: retry.max_elapsed,
            },
        };

        let consumer_entry = &file.consumer;
        if consumer_entry.prefetch == 0 || consumer_entry.concurrency == 0 {
            return Err(SettingError::ConsumerLimits.into());
        }
        if consumer_entry.handler_timeout.is_zero() {
            return Err(SettingError::ZeroHandlerTimeout.into());
        }
        let consumer = ConsumerSettings {
            prefetch: consumer_entry.prefetch,
            concurrency: consumer_entry.concurrency,
            handler_timeout: consumer_entry.handler_timeout,
            ..ConsumerSettings::default()
        };
        let message_retry = RetryPolicy {
            delays: file.message_retry.delays,
            max_attempts: file.message_retry.max_attempts,
        };
        if message_retry.delays.is_empty() || message_retry.delays.iter().any(|d| d.is_zero()) {
            return Err(SettingError::MessageRetryDelays.into());
        }
        if message_retry.max_attempts == Some(0) {
            return Err(SettingError::MessageRetryAttempts.into());
        }

        Ok(Self {
            instances,
            matchers: Arc::new(matchers),
            matchers_source,
            chatbot_url,
            api,
            consumer,
            message_retry,
        })
    }
}

fn instance(
    host: &str,
    entry: &InstanceEntry,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Instance, ConfigError> {
    let field = format!("gitlab_instances.{host}");
    let valid_host = !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-.:[]".contains(c));
    if !valid_host {
        return Err(SettingError::InstanceHost { field }.into());
    }
    let api_url = http_url(&format!("{field}.api_url"), &entry.api_url)?;
    let token = match &entry.token_env {
        None => None,
        Some(variable) => match env(variable).filter(|t| !t.trim().is_empty()) {
            Some(token) => Some(token.trim().to_owned()),
            None => {
                return Err(SettingError::TokenUnset {
                    field,
                    variable: variable.clone(),
                }
                .into());
            }
        },
    };
    Ok(Instance { api_url, token })
}

fn http_url(field: &str, text: &str) -> Result<Url, SettingError> {
    let url = Url::parse(text.trim()).map_err(|source| SettingError::NotAUrl {
        field: field.to_owned(),
        text: text.to_owned(),
        source,
    })?;
    if !matches!(url.scheme(), "http" | "https") || url.cannot_be_a_base() {
        return Err(SettingError::NotHttp {
            field: field.to_owned(),
            text: text.to_owned(),
        });
    }
    Ok(url)
}

/// Everything `serve` needs: the file's settings and the common environment.
#[derive(Debug, Clone)]
pub struct Config {
    pub namespace: Namespace,
    pub broker: BrokerConfig,
    pub database_url: String,
    pub http_listen: SocketAddr,
    pub metrics_listen: SocketAddr,
    pub shutdown_timeout: Duration,
    /// Bearer token of the admin API (pause, resume, decisions); `None` disables it.
    pub admin_token: Option<String>,
    pub herder: HerderSettings,
}

impl Config {
    /// From the command line (flags and environment) and the YAML file it names.
    pub fn from_args(args: &crate::cli::ServeArgs) -> Result<Self, ConfigError> {
        let env = |name: &str| std::env::var(name).ok();
        let common = &args.common;
        let mut herder = HerderSettings::load(&args.config, &env)?;
        if let Some(url) = args.chatbot_url.as_deref().filter(|u| !u.trim().is_empty()) {
            herder.chatbot_url = Some(http_url("CHATBOT_URL", url)?);
        }
        let namespace =
            Namespace::new(common.namespace.clone()).map_err(SettingError::Namespace)?;
        let broker = BrokerConfig::new(&common.amqp_url, "pipeline-herder")
            .map_err(SettingError::AmqpUrl)?;
        let database_url = common
            .database_url
            .clone()
            .filter(|u| !u.trim().is_empty())
            .ok_or(SettingError::NoDatabaseUrl)?;
        database_url
            .parse::<sqlx::postgres::PgConnectOptions>()
            .map_err(SettingError::DatabaseUrl)?;
        common
            .telemetry("pipeline-herder")
            .map_err(|e| SettingError::Telemetry(Box::new(e)))?;
        Ok(Self {
            namespace,
            broker,
            database_url,
            http_listen: common.http_listen(),
            metrics_listen: common.metrics_listen,
            shutdown_timeout: common.shutdown_timeout,
            admin_token: args
                .admin_token
                .clone()
                .map(|t| t.trim().to_owned())
                .filter(|t| !t.is_empty()),
            herder,
        })
    }

    /// A one-paragraph summary for `--check-config` and the start-up log.
    pub fn summary(&self) -> String {
        let mut hosts: Vec<&str> = self.herder.instances.keys().map(String::as_str).collect();
        hosts.sort_unstable();
        format!(
            "{} matchers ({} log patterns) from {}; GitLab instances: {}; chat: {}; pause switch: {}",
            self.herder.matchers.matchers().len(),
            self.herder.matchers.pattern_count(),
            self.herder.matchers_source,
            if hosts.is_empty() {
                "none".to_owned()
            } else {
                hosts.join(", ")
            },
            self.herder.chatbot_url.as_ref().map_or("off", |_| "on"),
            if self.admin_token.is_some() {
                "enabled"
            } else {
                "disabled (HERDER_ADMIN_TOKEN unset)"
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        (name == "GITLAB_TOKEN").then(|| "glpat-secret".to_owned())
    }

    fn load(yaml: &str) -> Result<HerderSettings, String> {
        HerderSettings::from_yaml(yaml, Path::new("."), &env).map_err(|e| e.to_string())
    }

    #[test]
    fn a_minimal_file_gets_the_defaults() {
        let settings = load("gitlab_instances:\n  gitlab.com:\n    api_url: https://gitlab.com/api/v4\n    token_env: GITLAB_TOKEN\n").unwrap();
        let instance = &settings.instances["gitlab.com"];
        assert_eq!(instance.token.as_deref(), Some("glpat-secret"));
        assert_eq!(settings.matchers_source, "the shipped default matchers");
        assert!(settings.matchers.matchers().len() >= 8);
        assert_eq!(settings.api.timeout, Duration::from_secs(30));
        assert_eq!(settings.message_retry.max_attempts, Some(24));
        assert!(settings.chatbot_url.is_none());
    }

    #[test]
    fn inline_matchers_and_matcher_files_are_read() {
        let settings =
            load("matchers:\n  - name: disk\n    messages: ['No space left']\n").unwrap();
        assert_eq!(settings.matchers.matchers()[0].name, "disk");
        let dir = std::env::temp_dir().join(steadfast_test_support::unique_name("herder-config"));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("m.yaml"),
            "matchers:\n  - name: pull\n    action: retr\n    messages: [x]\n",
        )
        .unwrap();
        let err = HerderSettings::from_yaml("matchers_file: m.yaml\n", &dir, &env)
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            format!(
                "matchers file `{}`: matcher `pull`: unknown action `retr` (expected retry, report or alert)",
                dir.join("m.yaml").display()
            )
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn errors_name_the_field() {
        for (yaml, expected) in [
            (
                "gitlab_instances:\n  gitlab.com:\n    api_url: https://gitlab.com/api/v4\n    token_env: MISSING\n",
                "gitlab_instances.gitlab.com.token_env: environment variable `MISSING` is not set or empty",
            ),
            (
                "gitlab_instances:\n  https://gitlab.com:\n    api_url: https://gitlab.com/api/v4\n",
                "gitlab_instances.https://gitlab.com: the key must be the instance's host as in its URLs (e.g. `gitlab.com` or `gitlab.example.com:8443`), without scheme or path",
            ),
            (
                "gitlab_instances:\n  gitlab.com:\n    api_url: ftp://gitlab.com\n",
                "gitlab_instances.gitlab.com.api_url: `ftp://gitlab.com` must be an http:// or https:// URL",
            ),
            (
                "matchers: [{name: a, messages: [x]}]\nmatchers_file: m.yaml\n",
                "set either `matchers` or `matchers_file`, not both",
            ),
            (
                "chatbot_url: not a url\n",
                "chatbot_url: `not a url` is not a URL: relative URL without a base",
            ),
            (
                "consumer: {prefetch: 0}\n",
                "consumer.prefetch and consumer.concurrency must be at least 1",
            ),
            (
                "message_retry: {delays: []}\n",
                "message_retry.delays must list at least one delay, each greater than zero",
            ),
            (
                "matchers_file: does-not-exist.yaml\n",
                "cannot read config file `./does-not-exist.yaml`: No such file or directory (os error 2)",
            ),
        ] {
            assert_eq!(load(yaml).unwrap_err(), expected, "{yaml}");
        }
        let unknown = load("gitlab_instance: {}\n").unwrap_err();
        assert!(
            unknown.contains("unknown field `gitlab_instance`"),
            "{unknown}"
        );
    }
}

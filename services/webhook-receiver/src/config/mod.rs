//! The receiver's configuration: the command line and environment (scalars and secrets), plus
//! an optional YAML file (`RECEIVER_CONFIG`) for what is naturally a list — per-project GitLab
//! secrets and generic hook sources.
//!
//! ```yaml
//! gitlab:
//!   projects:                      # first match wins; else GITLAB_WEBHOOK_SECRET
//!     - match: "cki-project/**"
//!       secret: {env: CKI_GITLAB_WEBHOOK_SECRET}
//! hooks:
//!   - name: grafana
//!     secret: {file: /run/secrets/grafana-webhook}
//!     signature_header: X-Grafana-Alerting-Signature
//!     event_field: /status
//! ```
//!
//! A secret in the file is `{env: NAME}`, `{file: PATH}` or, for local experiments, a literal
//! string. Every error names the setting at fault; `--check-config` prints it.

mod error;
mod file;
mod size;
#[cfg(test)]
mod tests;

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use steadfast_messaging::{BrokerConfig, Namespace};
use steadfast_service_kit::config::load_yaml_file;

use crate::auth::{AlertmanagerAuth, GitlabSecrets, ProjectSecret, Secret};
use crate::hooks::HookSource;

pub use self::error::ConfigError;
use self::file::FileConfig;
pub use self::file::{HookFileError, SecretError};
pub use self::size::{SizeError, parse_size};
pub use crate::cli::Cli;

/// The service name: `app_id` of published messages, `service` of log lines.
pub const SERVICE: &str = "webhook-receiver";

/// How the spool behaves.
#[derive(Debug, Clone)]
pub struct SpoolSettings {
    pub timeout: Duration,
    pub poll_interval: Duration,
    pub batch: u32,
}

impl Default for SpoolSettings {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(3),
            poll_interval: Duration::from_secs(1),
            batch: 100,
        }
    }
}

/// Everything the receiver needs to run; tests build one directly.
#[derive(Clone)]
pub struct Config {
    pub namespace: Namespace,
    /// Broker URLs, app id and the publish deadline (`publish_timeout`).
    pub broker: BrokerConfig,
    /// Enables the spool.
    pub database_url: Option<String>,
    pub http_listen: SocketAddr,
    pub metrics_listen: SocketAddr,
    pub shutdown_timeout: Duration,
    pub max_body_bytes: usize,
    pub gitlab: GitlabSecrets,
    pub alertmanager: AlertmanagerAuth,
    pub hooks: Vec<HookSource>,
    pub spool: SpoolSettings,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The database URL may carry a password; secrets print as `***` through `Secret`.
        f.debug_struct("Config")
            .field("namespace", &self.namespace)
            .field("broker", &self.broker)
            .field(
                "database_url",
                &self
                    .database_url
                    .as_deref()
                    .map(steadfast_messaging::redact_url),
            )
            .field("http_listen", &self.http_listen)
            .field("metrics_listen", &self.metrics_listen)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("gitlab", &self.gitlab)
            .field("alertmanager", &self.alertmanager)
            .field("hooks", &self.hooks)
            .field("spool", &self.spool)
            .finish_non_exhaustive()
    }
}

impl Config {
    /// Defaults for everything but where the broker is; no source is configured yet.
    pub fn new(namespace: Namespace, broker: BrokerConfig) -> Self {
        Self {
            namespace,
            broker: broker.with_publish_timeout(Duration::from_secs(2)),
            database_url: None,
            http_listen: ([127, 0, 0, 1], 0).into(),
            metrics_listen: ([127, 0, 0, 1], 0).into(),
            shutdown_timeout: Duration::from_secs(20),
            max_body_bytes: 1024 * 1024,
            gitlab: GitlabSecrets::default(),
            alertmanager: AlertmanagerAuth::default(),
            hooks: Vec::new(),
            spool: SpoolSettings::default(),
        }
    }

    /// Builds and validates the configuration from the command line, the environment and the
    /// optional file.
    pub fn from_cli(cli: &Cli) -> Result<Self, ConfigError> {
        let namespace = Namespace::new(&cli.common.namespace).map_err(ConfigError::Namespace)?;
        let broker =
            BrokerConfig::new(&cli.common.amqp_url, SERVICE).map_err(ConfigError::Broker)?;
        let mut config = Self::new(namespace, broker);
        config.broker = config.broker.with_publish_timeout(cli.publish_timeout);
        config.database_url = cli
            .common
            .database_url
            .clone()
            .filter(|url| !url.trim().is_empty());
        config.http_listen = cli.common.http_listen();
        config.metrics_listen = cli.common.metrics_listen;
        config.shutdown_timeout = cli.common.shutdown_timeout;
        config.max_body_bytes = cli.max_body_size;
        config.spool = SpoolSettings {
            timeout: cli.spool_timeout,
            poll_interval: cli.spool_poll_interval,
            batch: cli.spool_batch,
        };
        config.gitlab.default =
            optional_secret("GITLAB_WEBHOOK_SECRET", &cli.gitlab_webhook_secret)?;
        config.alertmanager.bearer =
            optional_secret("ALERTMANAGER_TOKEN", &cli.alertmanager_token)?;
        if let Some(basic) = cli.alertmanager_basic_auth.as_deref() {
            config.alertmanager.basic = Some(AlertmanagerAuth::parse_basic(basic)?);
        }
        if let Some(path) = &cli.config {
            config.apply_file(path)?;
        }
        config.validate()?;
        Ok(config)
    }

    /// Adds the file's project secrets and hook sources.
    fn apply_file(&mut self, path: &Path) -> Result<(), ConfigError> {
        let file: FileConfig = load_yaml_file(path)?;
        for (index, project) in file.gitlab.projects.iter().enumerate() {
            let secret = project
                .secret
                .resolve()
                .map_err(|source| ConfigError::ProjectSecret {
                    path: path.to_owned(),
                    index,
                    source,
                })?;
            let entry = ProjectSecret::new(&project.pattern, secret).map_err(|source| {
                ConfigError::ProjectGlob {
                    path: path.to_owned(),
                    index,
                    pattern: project.pattern.clone(),
                    source,
                }
            })?;
            self.gitlab.projects.push(entry);
        }
        for (index, hook) in file.hooks.iter().enumerate() {
            let source = hook.to_source().map_err(|source| ConfigError::Hook {
                path: path.to_owned(),
                index,
                source,
            })?;
            self.hooks.push(source);
        }
        Ok(())
    }

    /// Checks what the types do not.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !self.gitlab.is_configured()
            && !self.alertmanager.is_configured()
            && self.hooks.is_empty()
        {
            return Err(ConfigError::NoSource);
        }
        if self.max_body_bytes == 0 {
            return Err(ConfigError::ZeroBodySize);
        }
        if self.broker.publish_timeout.is_zero() {
            return Err(ConfigError::ZeroPublishTimeout);
        }
        if self.spool.timeout.is_zero() || self.spool.poll_interval.is_zero() {
            return Err(ConfigError::ZeroSpoolTiming);
        }
        // GitLab gives a hook 10 s; both fallbacks must fit, with room for the request itself.
        let worst = self.broker.publish_timeout + self.spool.timeout;
        if worst > Duration::from_secs(9) {
            return Err(ConfigError::TooSlow { worst });
        }
        if let Some(url) = &self.database_url {
            let scheme_ok = url.starts_with("postgres://") || url.starts_with("postgresql://");
            if !scheme_ok {
                return Err(ConfigError::NotPostgres {
                    redacted: steadfast_messaging::redact_url(url),
                });
            }
            url.parse::<sqlx::postgres::PgConnectOptions>()
                .map_err(|e| ConfigError::BadDatabaseUrl {
                    reason: redact_error(&e.to_string(), url),
                })?;
        }
        let mut names = std::collections::BTreeSet::new();
        for hook in &self.hooks {
            hook.validate()?;
            if !names.insert(hook.name.as_str()) {
                return Err(ConfigError::DuplicateHook {
                    hook: hook.name.clone(),
                });
            }
        }
        Ok(())
    }

    /// A one-line description for `--check-config` and the start-up log, without secrets.
    pub fn summary(&self) -> String {
        let mut sources = Vec::new();
        if self.gitlab.is_configured() {
            sources.push(format!(
                "gitlab ({} project secrets{})",
                self.gitlab.projects.len(),
                if self.gitlab.default.is_some() {
                    " + default"
                } else {
                    ""
                }
            ));
        }
        if self.alertmanager.is_configured() {
            sources.push("alertmanager".to_owned());
        }
        for hook in &self.hooks {
            sources.push(format!("hooks/{}", hook.name));
        }
        format!(
            "exchange {}.webhooks; sources: {}; spool: {}; publish timeout {:?}; body limit {} bytes",
            self.namespace,
            sources.join(", "),
            if self.database_url.is_some() {
                "enabled"
            } else {
                "disabled (no DATABASE_URL)"
            },
            self.broker.publish_timeout,
            self.max_body_bytes
        )
    }
}

fn optional_secret(
    name: &'static str,
    value: &Option<String>,
) -> Result<Option<Secret>, ConfigError> {
    match value {
        None => Ok(None),
        Some(v) => Secret::new(v.clone())
            .map(Some)
            .ok_or(ConfigError::EmptySecret { name }),
    }
}

/// Keeps a password in a URL out of an error message.
fn redact_error(message: &str, url: &str) -> String {
    let redacted = steadfast_messaging::redact_url(url);
    message.replace(url, &redacted)
}

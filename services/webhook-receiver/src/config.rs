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

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Parser;
use http::HeaderName;
use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use steadfast_messaging::{BrokerConfig, Namespace};
use steadfast_service_kit::config::{load_yaml_file, parse_duration_arg};
use steadfast_service_kit::settings::CommonArgs;

use crate::auth::{AlertmanagerAuth, GitlabSecrets, ProjectSecret, Secret};
use crate::hooks::HookSource;

/// The service name: `app_id` of published messages, `service` of log lines.
pub const SERVICE: &str = "webhook-receiver";

/// `webhook-receiver`: GitLab, Alertmanager and signed webhooks become durable CloudEvents.
#[derive(Debug, Parser)]
#[command(
    name = "webhook-receiver",
    version,
    about = "Turns GitLab, Alertmanager and signed webhooks into durable CloudEvents on RabbitMQ.",
    long_about = "Turns GitLab, Alertmanager and signed webhooks into durable CloudEvents on \
RabbitMQ (exchange <namespace>.webhooks). Answers 200 once the broker confirmed every event; \
when it does not confirm within --publish-timeout the events go to a PostgreSQL spool \
(DATABASE_URL) and the answer is 202; a drainer republishes them in order when the broker is \
back. Routes: POST /gitlab (and POST /), POST /alertmanager, POST /hooks/{name}; probes \
/healthz and /readyz; metrics on METRICS_LISTEN. Prefer the environment variables for \
secrets: command-line flags are visible to other users of the host."
)]
pub struct Cli {
    #[command(flatten)]
    pub common: CommonArgs,

    /// YAML file with per-project GitLab secrets and generic hook sources.
    #[arg(long, env = "RECEIVER_CONFIG")]
    pub config: Option<PathBuf>,

    /// Default secret token of GitLab hooks (`X-Gitlab-Token`).
    #[arg(long, env = "GITLAB_WEBHOOK_SECRET", hide_env_values = true)]
    pub gitlab_webhook_secret: Option<String>,

    /// Bearer token Alertmanager sends (`http_config.authorization.credentials`).
    #[arg(long, env = "ALERTMANAGER_TOKEN", hide_env_values = true)]
    pub alertmanager_token: Option<String>,

    /// `user:password` Alertmanager sends with `http_config.basic_auth`.
    #[arg(long, env = "ALERTMANAGER_BASIC_AUTH", hide_env_values = true)]
    pub alertmanager_basic_auth: Option<String>,

    /// Largest accepted request body: bytes, or with a unit (`512KiB`, `1MiB`).
    #[arg(long, env = "MAX_BODY_SIZE", default_value = "1MiB", value_parser = parse_size)]
    pub max_body_size: usize,

    /// How long to wait for the broker's confirm before spooling the event instead.
    #[arg(long, env = "PUBLISH_TIMEOUT", default_value = "2s", value_parser = parse_duration_arg)]
    pub publish_timeout: Duration,

    /// Upper bound on one spool write (and on waiting for a database connection).
    #[arg(long, env = "SPOOL_TIMEOUT", default_value = "3s", value_parser = parse_duration_arg)]
    pub spool_timeout: Duration,

    /// How often the drainer looks at the spool (it also wakes at once when something is spooled).
    #[arg(long, env = "SPOOL_POLL_INTERVAL", default_value = "1s", value_parser = parse_duration_arg)]
    pub spool_poll_interval: Duration,

    /// Spooled events republished per transaction.
    #[arg(long, env = "SPOOL_BATCH", default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub spool_batch: u32,
}

/// Why the configuration cannot be used. The text is printed after `invalid configuration: `.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    File(#[from] steadfast_service_kit::config::ConfigError),
}

fn invalid(message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid(message.into())
}

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
        let namespace =
            Namespace::new(&cli.common.namespace).map_err(|e| invalid(e.to_string()))?;
        let broker =
            BrokerConfig::new(&cli.common.amqp_url, SERVICE).map_err(|e| invalid(e.to_string()))?;
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
            config.alertmanager.basic =
                Some(AlertmanagerAuth::parse_basic(basic).map_err(invalid)?);
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
        let at = |what: String| format!("config file `{}`: {what}", path.display());
        for (index, project) in file.gitlab.projects.iter().enumerate() {
            let field = format!("gitlab.projects[{index}]");
            let secret = project
                .secret
                .resolve()
                .map_err(|e| invalid(at(format!("{field}.secret: {e}"))))?;
            let entry = ProjectSecret::new(&project.pattern, secret).map_err(|e| {
                invalid(at(format!(
                    "{field}.match `{}` is not a valid glob: {e}",
                    project.pattern
                )))
            })?;
            self.gitlab.projects.push(entry);
        }
        for (index, hook) in file.hooks.iter().enumerate() {
            let field = format!("hooks[{index}]");
            let source = hook
                .to_source()
                .map_err(|e| invalid(at(format!("{field}: {e}"))))?;
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
            return Err(invalid(
                "no webhook source is configured: set GITLAB_WEBHOOK_SECRET, ALERTMANAGER_TOKEN or \
                 ALERTMANAGER_BASIC_AUTH, or list `hooks` in RECEIVER_CONFIG",
            ));
        }
        if self.max_body_bytes == 0 {
            return Err(invalid("MAX_BODY_SIZE must be greater than zero"));
        }
        if self.broker.publish_timeout.is_zero() {
            return Err(invalid("PUBLISH_TIMEOUT must be greater than zero"));
        }
        if self.spool.timeout.is_zero() || self.spool.poll_interval.is_zero() {
            return Err(invalid(
                "SPOOL_TIMEOUT and SPOOL_POLL_INTERVAL must be greater than zero",
            ));
        }
        // GitLab gives a hook 10 s; both fallbacks must fit, with room for the request itself.
        let worst = self.broker.publish_timeout + self.spool.timeout;
        if worst > Duration::from_secs(9) {
            return Err(invalid(format!(
                "PUBLISH_TIMEOUT + SPOOL_TIMEOUT is {worst:?}; keep it under 9s so a webhook is \
                 answered within GitLab's 10 s"
            )));
        }
        if let Some(url) = &self.database_url {
            let scheme_ok = url.starts_with("postgres://") || url.starts_with("postgresql://");
            if !scheme_ok {
                return Err(invalid(format!(
                    "DATABASE_URL `{}` is not a PostgreSQL URL (postgres://user@host:5432/database)",
                    steadfast_messaging::redact_url(url)
                )));
            }
            url.parse::<sqlx::postgres::PgConnectOptions>()
                .map_err(|e| {
                    invalid(format!(
                        "DATABASE_URL is not a PostgreSQL URL: {}",
                        redact_error(&e.to_string(), url)
                    ))
                })?;
        }
        let mut names = std::collections::BTreeSet::new();
        for hook in &self.hooks {
            hook.validate().map_err(invalid)?;
            if !names.insert(hook.name.as_str()) {
                return Err(invalid(format!("hook `{}` is listed twice", hook.name)));
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

fn optional_secret(name: &str, value: &Option<String>) -> Result<Option<Secret>, ConfigError> {
    match value {
        None => Ok(None),
        Some(v) => Secret::new(v.clone())
            .map(Some)
            .ok_or_else(|| invalid(format!("{name} is set but empty"))),
    }
}

/// Keeps a password in a URL out of an error message.
fn redact_error(message: &str, url: &str) -> String {
    let redacted = steadfast_messaging::redact_url(url);
    message.replace(url, &redacted)
}

/// `1048576`, `512KiB`, `1MiB`, `2MB`, `64k`.
pub fn parse_size(text: &str) -> Result<usize, String> {
    let s = text.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (number, unit) = s.split_at(split);
    let number: usize = number
        .parse()
        .map_err(|_| format!("`{text}` is not a size (e.g. 1048576, 512KiB, 1MiB)"))?;
    let factor = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" => 1024,
        "kb" => 1000,
        "m" | "mib" => 1024 * 1024,
        "mb" => 1_000_000,
        other => {
            return Err(format!(
                "`{text}`: unknown size unit `{other}` (use B, KiB or MiB)"
            ));
        }
    };
    number
        .checked_mul(factor)
        .ok_or_else(|| format!("`{text}` is too large"))
}

// --- the file -----------------------------------------------------------------------------

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    #[serde(default)]
    gitlab: GitlabFile,
    #[serde(default)]
    hooks: Vec<HookFile>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct GitlabFile {
    #[serde(default)]
    projects: Vec<ProjectFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProjectFile {
    #[serde(rename = "match")]
    pattern: String,
    secret: SecretRef,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct HookFile {
    name: String,
    secret: SecretRef,
    signature_header: Option<String>,
    event_header: Option<String>,
    event_field: Option<String>,
    default_event: Option<String>,
    id_header: Option<String>,
    message_type: Option<String>,
    type_prefix: Option<String>,
    source: Option<String>,
}

impl HookFile {
    fn to_source(&self) -> Result<HookSource, String> {
        let header = |field: &str, value: &str| {
            HeaderName::try_from(value)
                .map_err(|_| format!("{field} `{value}` is not a valid header name"))
        };
        let secret = self.secret.resolve().map_err(|e| format!("secret: {e}"))?;
        let mut source = HookSource::new(&self.name, secret);
        if let Some(h) = &self.signature_header {
            source.signature_header = header("signature_header", h)?;
        }
        if let Some(h) = &self.event_header {
            source.event_header = Some(header("event_header", h)?);
        }
        if let Some(h) = &self.id_header {
            source.id_header = Some(header("id_header", h)?);
        }
        source.event_field = self.event_field.clone();
        source.default_event = self.default_event.clone();
        if let Some(v) = &self.message_type {
            source.message_type = v.clone();
        }
        if let Some(v) = &self.type_prefix {
            source.type_prefix = v.clone();
        }
        if let Some(v) = &self.source {
            source.source_uri = v.clone();
        }
        Ok(source)
    }
}

/// Where a secret in the file comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
enum SecretRef {
    Literal(String),
    Env(String),
    File(PathBuf),
}

impl SecretRef {
    fn resolve(&self) -> Result<Secret, String> {
        let value = match self {
            Self::Literal(value) => value.clone(),
            Self::Env(name) => std::env::var(name)
                .map_err(|_| format!("environment variable {name} is not set"))?,
            Self::File(path) => std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read `{}`: {e}", path.display()))?
                .trim_end_matches(['\n', '\r'])
                .to_owned(),
        };
        Secret::new(value).ok_or_else(|| match self {
            Self::Literal(_) => "is empty".to_owned(),
            Self::Env(name) => format!("environment variable {name} is empty"),
            Self::File(path) => format!("`{}` is empty", path.display()),
        })
    }
}

impl<'de> Deserialize<'de> for SecretRef {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct SecretVisitor;

        impl<'de> Visitor<'de> for SecretVisitor {
            type Value = SecretRef;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a secret: `{env: NAME}`, `{file: PATH}` or a string")
            }

            fn visit_str<E: de::Error>(self, value: &str) -> Result<SecretRef, E> {
                Ok(SecretRef::Literal(value.to_owned()))
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<SecretRef, A::Error> {
                let Some(key) = map.next_key::<String>()? else {
                    return Err(de::Error::custom("a secret needs `env` or `file`"));
                };
                let value: String = map.next_value()?;
                let secret = match key.as_str() {
                    "env" => SecretRef::Env(value),
                    "file" => SecretRef::File(value.into()),
                    other => return Err(de::Error::unknown_field(other, &["env", "file"])),
                };
                if map.next_key::<String>()?.is_some() {
                    return Err(de::Error::custom(
                        "a secret has exactly one of `env` or `file`",
                    ));
                }
                Ok(secret)
            }
        }

        deserializer.deserialize_any(SecretVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cli(args: &[&str]) -> Cli {
        let mut all = vec!["webhook-receiver"];
        all.extend_from_slice(args);
        Cli::try_parse_from(all).unwrap()
    }

    fn error(args: &[&str]) -> String {
        Config::from_cli(&cli(args)).unwrap_err().to_string()
    }

    #[test]
    fn defaults_and_a_default_gitlab_secret() {
        let config = Config::from_cli(&cli(&["--gitlab-webhook-secret", "s"])).unwrap();
        assert_eq!(config.broker.publish_timeout, Duration::from_secs(2));
        assert_eq!(config.max_body_bytes, 1024 * 1024);
        assert_eq!(config.http_listen.to_string(), "0.0.0.0:8080");
        // clap reads DATABASE_URL from the environment; without it the spool is off.
        if std::env::var_os("DATABASE_URL").is_none() {
            assert!(config.database_url.is_none());
            assert!(
                config
                    .summary()
                    .contains("spool: disabled (no DATABASE_URL)")
            );
        }
        assert!(!format!("{config:?}").contains("\"s\""));
    }

    #[test]
    fn a_receiver_without_sources_is_refused() {
        assert!(error(&[]).starts_with("no webhook source is configured"));
    }

    #[test]
    fn bad_values_are_named() {
        assert_eq!(
            error(&["--alertmanager-token", ""]),
            "ALERTMANAGER_TOKEN is set but empty"
        );
        assert_eq!(
            error(&["--alertmanager-basic-auth", "nopassword"]),
            "ALERTMANAGER_BASIC_AUTH must be `user:password`"
        );
        assert!(
            error(&["--gitlab-webhook-secret", "s", "--publish-timeout", "8s"])
                .starts_with("PUBLISH_TIMEOUT + SPOOL_TIMEOUT is 11s")
        );
        assert_eq!(
            error(&[
                "--gitlab-webhook-secret",
                "s",
                "--database-url",
                "mysql://u:pw@h/db"
            ]),
            "DATABASE_URL `mysql://u:***@h/db` is not a PostgreSQL URL (postgres://user@host:5432/database)"
        );
        assert!(
            error(&["--gitlab-webhook-secret", "s", "--namespace", "Bad NS"])
                .contains("namespace `Bad NS`")
        );
    }

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_size("1MiB").unwrap(), 1024 * 1024);
        assert_eq!(parse_size("512KiB").unwrap(), 512 * 1024);
        assert_eq!(parse_size("2048").unwrap(), 2048);
        assert_eq!(parse_size("2MB").unwrap(), 2_000_000);
        assert_eq!(
            parse_size("1 parsec").unwrap_err(),
            "`1 parsec`: unknown size unit `parsec` (use B, KiB or MiB)"
        );
    }

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    fn temp_dir() -> PathBuf {
        let dir = std::env::temp_dir().join(format!("receiver-config-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn the_file_adds_project_secrets_and_hooks() {
        let dir = temp_dir();
        let secret_file = write(&dir, "grafana", "from-file\n");
        let path = write(
            &dir,
            "receiver.yaml",
            &format!(
                "gitlab:\n  projects:\n    - match: \"cki-project/**\"\n      secret: literal-secret\n\
                 hooks:\n  - name: grafana\n    secret: {{file: {}}}\n    event_field: /status\n",
                secret_file.display()
            ),
        );
        let config = Config::from_cli(&cli(&["--config", path.to_str().unwrap()])).unwrap();
        assert!(config.gitlab.authorizes("cki-project/x", "literal-secret"));
        assert_eq!(config.hooks[0].secret.expose(), "from-file");
        assert_eq!(config.hooks[0].routing_key("firing"), "grafana.firing");
    }

    #[test]
    fn file_errors_name_the_file_and_field() {
        let dir = temp_dir();
        let path = write(
            &dir,
            "bad-glob.yaml",
            "gitlab:\n  projects:\n    - match: \"a/[\"\n      secret: x\n",
        );
        let err = error(&["--config", path.to_str().unwrap()]);
        assert!(err.contains("bad-glob.yaml"), "{err}");
        assert!(
            err.contains("gitlab.projects[0].match `a/[` is not a valid glob"),
            "{err}"
        );

        let path = write(
            &dir,
            "env.yaml",
            "gitlab:\n  projects:\n    - match: \"a/*\"\n      secret: {env: STEADFAST_TEST_SURELY_UNSET_VARIABLE}\n",
        );
        let err = error(&["--config", path.to_str().unwrap()]);
        assert!(
            err.ends_with("gitlab.projects[0].secret: environment variable STEADFAST_TEST_SURELY_UNSET_VARIABLE is not set"),
            "{err}"
        );

        let path = write(&dir, "typo.yaml", "gitlab:\n  project: []\n");
        let err = error(&["--config", path.to_str().unwrap()]);
        assert!(err.contains("unknown field `project`"), "{err}");

        let path = write(
            &dir,
            "secret.yaml",
            "hooks:\n  - name: x\n    secret: {vault: y}\n    default_event: e\n",
        );
        let err = error(&["--config", path.to_str().unwrap()]);
        assert!(
            err.contains("unknown field `vault`, expected `env` or `file`"),
            "{err}"
        );

        let err = error(&["--config", dir.join("missing.yaml").to_str().unwrap()]);
        assert!(err.starts_with("cannot read config file"), "{err}");
    }
}

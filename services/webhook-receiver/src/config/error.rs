//! Why the configuration cannot be used; each variant names the setting at fault.

use std::path::PathBuf;
use std::time::Duration;

use steadfast_messaging::MessagingError;

use crate::auth::BasicAuthError;
use crate::hooks::HookSourceError;

use super::file::{HookFileError, SecretError};

/// Why the configuration cannot be used. The text is printed after `invalid configuration: `.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// `STEADFAST_NAMESPACE` is not a valid name prefix.
    #[error(transparent)]
    Namespace(MessagingError),
    /// `AMQP_URL` cannot be used.
    #[error(transparent)]
    Broker(MessagingError),
    #[error("{name} is set but empty")]
    EmptySecret { name: &'static str },
    #[error(transparent)]
    BasicAuth(#[from] BasicAuthError),
    #[error("config file `{path}`: gitlab.projects[{index}].secret: {source}")]
    ProjectSecret {
        path: PathBuf,
        index: usize,
        #[source]
        source: SecretError,
    },
    #[error(
        "config file `{path}`: gitlab.projects[{index}].match `{pattern}` is not a valid glob: {source}"
    )]
    ProjectGlob {
        path: PathBuf,
        index: usize,
        pattern: String,
        #[source]
        source: globset::Error,
    },
    #[error("config file `{path}`: hooks[{index}]: {source}")]
    Hook {
        path: PathBuf,
        index: usize,
        #[source]
        source: HookFileError,
    },
    #[error(
        "no webhook source is configured: set GITLAB_WEBHOOK_SECRET, ALERTMANAGER_TOKEN or \
         ALERTMANAGER_BASIC_AUTH, or list `hooks` in RECEIVER_CONFIG"
    )]
    NoSource,
    #[error("MAX_BODY_SIZE must be greater than zero")]
    ZeroBodySize,
    #[error("PUBLISH_TIMEOUT must be greater than zero")]
    ZeroPublishTimeout,
    #[error("SPOOL_TIMEOUT and SPOOL_POLL_INTERVAL must be greater than zero")]
    ZeroSpoolTiming,
    /// GitLab gives a hook 10 s; both fallbacks must fit, with room for the request itself.
    #[error(
        "PUBLISH_TIMEOUT + SPOOL_TIMEOUT is {worst:?}; keep it under 9s so a webhook is \
         answered within GitLab's 10 s"
    )]
    TooSlow { worst: Duration },
    #[error(
        "DATABASE_URL `{redacted}` is not a PostgreSQL URL (postgres://user@host:5432/database)"
    )]
    NotPostgres {
        /// The URL with its password replaced.
        redacted: String,
    },
    #[error("DATABASE_URL is not a PostgreSQL URL: {reason}")]
    BadDatabaseUrl {
        /// The parser's message, with the password replaced.
        reason: String,
    },
    #[error(transparent)]
    HookSource(#[from] HookSourceError),
    #[error("hook `{hook}` is listed twice")]
    DuplicateHook { hook: String },
    #[error(transparent)]
    File(#[from] steadfast_service_kit::config::ConfigError),
}

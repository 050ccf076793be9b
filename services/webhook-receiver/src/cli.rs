//! The command line: flags and their environment variables (secrets preferably from the
//! environment: flags are visible to other users of the host).

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use steadfast_service_kit::config::parse_duration_arg;
use steadfast_service_kit::settings::CommonArgs;

use crate::config::parse_size;

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

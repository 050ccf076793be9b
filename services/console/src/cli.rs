//! The command line: serve (the default), and `hash-password` for the users file.

use std::io::Read as _;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use steadfast_service_kit::config::parse_duration_arg;
use steadfast_service_kit::host::Launch;
use steadfast_service_kit::settings::CommonArgs;

use crate::config::Config;

#[derive(Debug, Parser)]
#[command(
    name = "console",
    version,
    about = "The operator console: one web page to see and steer every Steadfast service.",
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,

    #[command(flatten)]
    pub serve: Box<ServeArgs>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Read a password on standard input and print its argon2id hash, for the users file.
    HashPassword,
}

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub common: CommonArgs,

    /// Built-in users: a YAML file of `users: [{name, role, password_hash}]` (roles `viewer`
    /// and `operator`; hashes from `console hash-password`).
    // Text, not a PathBuf: an empty value (a ConfigMap key left blank) means none.
    #[arg(long, env = "CONSOLE_USERS_FILE")]
    pub users_file: Option<String>,

    /// Addresses (IPs or CIDR ranges, comma-separated) of an authenticating proxy such as
    /// oauth2-proxy, whose `X-Forwarded-User` / `X-Forwarded-Email` headers are trusted.
    #[arg(long, env = "CONSOLE_TRUSTED_PROXIES", value_delimiter = ',')]
    pub trusted_proxies: Vec<String>,

    /// Users (names or e-mail addresses, comma-separated) who get the `operator` role when they
    /// come through the proxy; everyone else the proxy lets in is a `viewer`.
    #[arg(long, env = "CONSOLE_OPERATORS", value_delimiter = ',')]
    pub operators: Vec<String>,

    /// The URL users open; an `https://` URL makes the session cookie `Secure`.
    #[arg(long, env = "CONSOLE_PUBLIC_URL")]
    pub public_url: Option<String>,

    /// How long a login lasts.
    #[arg(long, env = "CONSOLE_SESSION_TTL", default_value = "8h", value_parser = parse_duration_arg)]
    pub session_ttl: Duration,

    /// How often live pages refresh.
    #[arg(long, env = "CONSOLE_REFRESH", default_value = "5s", value_parser = parse_duration_arg)]
    pub refresh: Duration,

    /// The pipeline-herder's API (e.g. `http://pipeline-herder:8080`).
    #[arg(long, env = "HERDER_URL")]
    pub herder_url: Option<String>,

    /// The herder's `HERDER_ADMIN_TOKEN`.
    #[arg(long, env = "HERDER_ADMIN_TOKEN", hide_env_values = true)]
    pub herder_token: Option<String>,

    /// The alert-reconciler's API (e.g. `http://alert-reconciler:8080`).
    #[arg(long, env = "RECONCILER_URL")]
    pub reconciler_url: Option<String>,

    /// The reconciler's `RECONCILER_API_TOKEN`.
    #[arg(long, env = "RECONCILER_API_TOKEN", hide_env_values = true)]
    pub reconciler_token: Option<String>,

    /// The webhook-receiver (its `/readyz` is shown on the overview).
    #[arg(long, env = "RECEIVER_URL")]
    pub receiver_url: Option<String>,

    /// The webhook-receiver's metrics listener (e.g. `http://webhook-receiver:9090`): webhooks
    /// per minute and the spool on the overview.
    #[arg(long, env = "RECEIVER_METRICS_URL")]
    pub receiver_metrics_url: Option<String>,

    /// The sentinel's HTTP listener (its `/readyz` on the overview; with SENTINEL_API_TOKEN,
    /// when it last published for each cluster on the fleet page).
    #[arg(long, env = "SENTINEL_URL")]
    pub sentinel_url: Option<String>,

    /// The sentinel's `SENTINEL_API_TOKEN`, for its read API.
    #[arg(long, env = "SENTINEL_API_TOKEN", hide_env_values = true)]
    pub sentinel_token: Option<String>,

    /// The HyperFleet API (e.g. `http://hyperfleet-api:8000`), for the fleet page.
    #[arg(long, env = "FLEET_API_URL")]
    pub fleet_api_url: Option<String>,

    /// Bearer token for the HyperFleet API, when it asks for one.
    #[arg(long, env = "FLEET_API_TOKEN", hide_env_values = true)]
    pub fleet_api_token: Option<String>,

    /// The adapter's probe listener (its `/readyz` is shown on the overview).
    #[arg(long, env = "ADAPTER_URL")]
    pub adapter_url: Option<String>,

    /// RabbitMQ management API, for queue depths [default: http://<AMQP host>:15672 with the
    /// AMQP credentials].
    #[arg(long, env = "RABBITMQ_MANAGEMENT_URL", hide_env_values = true)]
    pub management_url: Option<String>,
}

impl ServeArgs {
    pub fn launch(&self) -> Result<Launch<Config>, impl std::fmt::Display + use<>> {
        Launch::load(Config::from_args(self), &self.common)
    }
}

/// `console hash-password`: the hash of the password on stdin (one line; the newline is not
/// part of it).
pub fn hash_password() -> ExitCode {
    let mut input = String::new();
    if let Err(error) = std::io::stdin().read_to_string(&mut input) {
        eprintln!("cannot read the password from standard input: {error}");
        return ExitCode::FAILURE;
    }
    let password = input.strip_suffix('\n').unwrap_or(&input);
    let password = password.strip_suffix('\r').unwrap_or(password);
    match crate::auth::users::hash_password(password) {
        Ok(hash) => {
            println!("{hash}");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("{error}");
            ExitCode::FAILURE
        }
    }
}

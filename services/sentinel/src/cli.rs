//! The command line: `serve`, `config-dump` and `version`, with HyperFleet's flags and
//! environment variables.

use std::path::PathBuf;
use std::time::Duration;

use steadfast_service_kit::settings::CommonArgs;

#[derive(Debug, clap::Parser)]
#[command(
    name = "sentinel",
    version,
    about = "Polls the HyperFleet API and publishes reconcile events for the resources that need them (HyperFleet Sentinel compatible)."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Run the poll loop.
    Serve(Box<RunArgs>),
    /// Print the merged configuration (as YAML) and exit.
    ConfigDump(Box<RunArgs>),
    /// Print the version and exit.
    Version,
}

/// The flags and environment of `serve` and `config-dump`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub common: CommonArgs,

    /// Config file [default: /etc/hyperfleet/config.yaml].
    #[arg(short = 'c', long, env = "HYPERFLEET_CONFIG")]
    pub config: Option<PathBuf>,

    #[arg(long, env = "HYPERFLEET_SENTINEL_NAME")]
    pub sentinel_name: Option<String>,
    /// Log the merged configuration at start.
    #[arg(long, env = "HYPERFLEET_DEBUG_CONFIG")]
    pub debug_config: Option<bool>,
    /// Export traces (needs OTEL_EXPORTER_OTLP_ENDPOINT) and stamp `traceparent` on events.
    #[arg(long, env = "HYPERFLEET_TRACING_ENABLED")]
    pub tracing_enabled: Option<bool>,
    #[arg(long, env = "HYPERFLEET_RESOURCE_TYPE")]
    pub resource_type: Option<String>,
    #[arg(long, env = "HYPERFLEET_POLL_INTERVAL", value_parser = steadfast_service_kit::config::parse_duration_arg)]
    pub poll_interval: Option<Duration>,
    #[arg(long = "hyperfleet-api-base-url", env = "HYPERFLEET_API_BASE_URL")]
    pub api_base_url: Option<String>,
    #[arg(long = "hyperfleet-api-version", env = "HYPERFLEET_API_VERSION")]
    pub api_version: Option<String>,
    #[arg(long = "hyperfleet-api-timeout", env = "HYPERFLEET_API_TIMEOUT", value_parser = steadfast_service_kit::config::parse_duration_arg)]
    pub api_timeout: Option<Duration>,
    #[arg(long = "hyperfleet-api-page-size", env = "HYPERFLEET_API_PAGE_SIZE")]
    pub api_page_size: Option<i64>,
    #[arg(
        long = "hyperfleet-api-auth-token-path",
        env = "HYPERFLEET_API_AUTH_TOKEN_PATH"
    )]
    pub api_token_path: Option<PathBuf>,
    #[arg(long = "hyperfleet-api-auth-token-cache-ttl", env = "HYPERFLEET_API_AUTH_TOKEN_CACHE_TTL", value_parser = steadfast_service_kit::config::parse_duration_arg)]
    pub api_token_cache_ttl: Option<Duration>,
    /// The exchange events are published to.
    #[arg(long, env = "HYPERFLEET_BROKER_TOPIC")]
    pub broker_topic: Option<String>,
    #[arg(
        long = "hyperfleet-log-level",
        env = "HYPERFLEET_LOG_LEVEL",
        hide = true
    )]
    pub hyperfleet_log_level: Option<String>,
    #[arg(
        long = "hyperfleet-log-format",
        env = "HYPERFLEET_LOG_FORMAT",
        hide = true
    )]
    pub hyperfleet_log_format: Option<String>,
    #[arg(
        long = "hyperfleet-log-output",
        env = "HYPERFLEET_LOG_OUTPUT",
        hide = true
    )]
    pub hyperfleet_log_output: Option<String>,
    /// HyperFleet's name for HTTP_LISTEN (Go form `:8080` accepted).
    #[arg(long)]
    pub health_server_bindaddress: Option<String>,
    /// HyperFleet's name for METRICS_LISTEN.
    #[arg(long)]
    pub metrics_server_bindaddress: Option<String>,
    /// Shard of the fleet this replica handles: `INDEX/COUNT`, e.g. `0/3`.
    #[arg(long, env = "SENTINEL_SHARD")]
    pub shard: Option<String>,
    /// HyperFleet's broker.yaml [default: ./broker.yaml when present].
    #[arg(long, env = "BROKER_CONFIG_FILE")]
    pub broker_config_file: Option<PathBuf>,
    #[arg(long, env = "BROKER_RABBITMQ_URL", hide_env_values = true)]
    pub broker_rabbitmq_url: Option<String>,
    /// Bearer token of the read API (`GET /api/resources`); unset, the API answers 403.
    #[arg(long, env = "SENTINEL_API_TOKEN", hide_env_values = true)]
    pub api_token: Option<String>,
}

//! The command line: `serve` (the default) and `seed`, with the common settings.

use std::path::PathBuf;
use std::time::Duration;

use steadfast_service_kit::settings::CommonArgs;

#[derive(Debug, clap::Parser)]
#[command(
    name = "fleet-api",
    version,
    about = "Stand-in for the HyperFleet API: clusters, nodepools and adapter statuses on PostgreSQL."
)]
pub struct Cli {
    #[command(flatten)]
    pub common: CommonArgs,

    /// YAML file with `entities: [{kind: Cluster, required_adapters: [...]}, ...]`.
    #[arg(long, env = "FLEET_API_CONFIG")]
    pub config: Option<PathBuf>,

    /// Adapters that must report before a cluster is Reconciled (comma-separated).
    #[arg(long, env = "HYPERFLEET_CLUSTER_ADAPTERS")]
    pub cluster_adapters: Option<String>,

    /// Adapters that must report before a nodepool is Reconciled (comma-separated).
    #[arg(long, env = "HYPERFLEET_NODEPOOL_ADAPTERS")]
    pub nodepool_adapters: Option<String>,

    /// Require `Authorization: Bearer <token>` on the API (not on the probes).
    #[arg(long, env = "FLEET_API_TOKEN", hide_env_values = true)]
    pub api_token: Option<String>,

    /// Largest request body accepted.
    #[arg(long, env = "FLEET_API_MAX_BODY_BYTES", default_value_t = 1024 * 1024)]
    pub max_body_bytes: usize,

    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Serve the API (the default).
    Serve,
    /// Insert many clusters at once (benchmarks, demos), then exit.
    Seed {
        /// How many clusters.
        #[arg(long)]
        clusters: u32,
        /// Label `shard=<n mod shards>` on each.
        #[arg(long, default_value_t = 1)]
        shards: u32,
        /// Names are `<prefix>-<n>`.
        #[arg(long, default_value = "cluster")]
        prefix: String,
        /// Make them reconciled this long ago by every required adapter (e.g. `5m`);
        /// without it they are new.
        #[arg(long, value_parser = steadfast_service_kit::config::parse_duration_arg)]
        reconciled_ago: Option<Duration>,
    },
}

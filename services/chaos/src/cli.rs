//! The command line: `run` (the suite) and `recipe` (what the alert-reconciler launches as a
//! recipe during a run).

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use steadfast_service_kit::config::parse_duration_arg;

use crate::faults::FaultKind;

#[derive(Debug, Parser)]
#[command(
    name = "steadfast-chaos",
    version,
    about = "Runs the whole Steadfast stack as real processes under mixed load while killing \
parts of it, then checks that nothing was lost (a dev/test tool, never in the product image)."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Start the stack, load it, inject faults, check the invariants, print the report.
    Run(Box<RunArgs>),
    /// Behave like a Euphrosyne SDK recipe (launched by the alert-reconciler during a run).
    Recipe(RecipeArgs),
    /// Start the stack a run would start (the same flags; load and fault flags unused), write a
    /// deployment file describing it for `run --target`, and keep it up until Ctrl-C, starting
    /// again any process that dies (as an orchestrator would).
    Stack(Box<StackArgs>),
}

#[derive(Debug, Clone, Args)]
pub struct StackArgs {
    /// Where to write the deployment file (its kill commands use pid files beside it).
    #[arg(long, value_name = "FILE")]
    pub write_target: PathBuf,

    #[command(flatten)]
    pub run: RunArgs,
}

#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// How long load and faults last (Go-style: `90s`, `10m`).
    #[arg(long, default_value = "10m", value_parser = parse_duration_arg)]
    pub duration: Duration,

    /// Seed of the fault schedule and of the load mix; random when absent (always printed).
    #[arg(long)]
    pub seed: Option<u64>,

    /// GitLab Job Hooks per second, spread over both receiver replicas.
    #[arg(long, default_value_t = 50.0)]
    pub gitlab_rate: f64,

    /// Alertmanager notifications per second, spread over both receiver replicas.
    #[arg(long, default_value_t = 5.0)]
    pub alert_rate: f64,

    /// Alert groups the notifications are spread across.
    #[arg(long, default_value_t = 20)]
    pub alert_groups: usize,

    /// Clusters created in fleet-api (0: no fleet load).
    #[arg(long, default_value_t = 200)]
    pub clusters: usize,

    /// Fault kinds to inject (comma list); `none` for a run without faults.
    #[arg(long, value_delimiter = ',', default_value = "kill")]
    pub faults: Vec<FaultKind>,

    /// Break invariants on purpose (comma list, or `all`), to prove each one can fail and
    /// names the ids: drop-events, drop-retries, drop-reports, stop-adapter, unplanned-poison.
    /// A run with sabotage must end in FAIL.
    #[arg(long, value_delimiter = ',')]
    pub sabotage: Vec<crate::sabotage::SabotageKind>,

    /// Time between two faults (the schedule adds up to ±25 % jitter from the seed).
    #[arg(long, default_value = "15s", value_parser = parse_duration_arg)]
    pub fault_interval: Duration,

    /// The quiet period after the load, while the invariants do not hold yet, ends after this
    /// long without progress (the queues' backlog not shrinking, no fewer problems).
    #[arg(long, default_value = "120s", value_parser = parse_duration_arg)]
    pub quiet_timeout: Duration,

    /// The quiet period ends after this long even while the backlog still shrinks.
    #[arg(long, default_value = "10m", value_parser = parse_duration_arg)]
    pub quiet_max: Duration,

    /// Longest wait for one process to answer `/readyz` 200 (start and restart).
    #[arg(long, default_value = "90s", value_parser = parse_duration_arg)]
    pub ready_timeout: Duration,

    /// Directory of the service binaries [default: target/release if it holds them, else
    /// target/debug].
    #[arg(long)]
    pub bin_dir: Option<PathBuf>,

    /// Where runs keep their logs and generated files (`<dir>/<run>/`).
    #[arg(long, default_value = ".dev/chaos")]
    pub work_dir: PathBuf,

    /// Machine-readable report on standard output instead of the table.
    #[arg(long)]
    pub json: bool,

    /// Keep the run's databases, queues and logs for inspection (processes are still stopped).
    #[arg(long)]
    pub keep: bool,

    /// Run against a deployment described by this file (docs/runbooks/chaos.md, "Against a
    /// staging deployment") instead of starting a stack: only `kill` (through the file's
    /// commands) and `fake-5xx` faults, no poison or sabotage.
    #[arg(long, value_name = "FILE")]
    pub target: Option<PathBuf>,

    #[command(flatten)]
    pub infra: InfraArgs,
}

/// Whose Redis, PostgreSQL and RabbitMQ a run uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum InfraMode {
    /// The run starts its own (under `<work dir>/<run>/`, free ports) and deletes them at the
    /// end: every fault kind is allowed.
    Private,
    /// The machine's shared instances at the URLs below (isolated by names; never stopped):
    /// the `broker`, `postgres` and `redis` fault kinds are refused.
    Shared,
}

/// The infrastructure: the run's own (default), or the shared one it isolates itself in.
#[derive(Debug, Clone, Args)]
pub struct InfraArgs {
    /// `private`: own Redis, PostgreSQL and RabbitMQ for the run; `shared`: the URLs below.
    #[arg(long = "infra", value_enum, default_value = "private")]
    pub mode: InfraMode,

    /// RabbitMQ as a cluster of three nodes (quorum queues replicate) instead of one broker
    /// (`--infra private` only; scripts/rabbitmq-cluster.sh).
    #[arg(long)]
    pub cluster: bool,

    /// RabbitMQ for the services (`--infra shared`; a host list is comma-separated).
    #[arg(
        long,
        env = "AMQP_URL",
        default_value = "amqp://guest:guest@127.0.0.1:5672/%2f",
        hide_env_values = true
    )]
    pub amqp_url: String,

    /// The other nodes' management APIs, tried when the first refuses connections (a
    /// `broker` fault killed its node); set by `--infra private --cluster`.
    #[arg(skip)]
    pub management_fallbacks: Vec<String>,

    /// RabbitMQ's management API (queues, bindings, cleanup).
    #[arg(
        long,
        env = "RABBITMQ_MANAGEMENT_URL",
        default_value = "http://127.0.0.1:15672"
    )]
    pub management_url: String,

    /// Management API user and password.
    #[arg(long, env = "RABBITMQ_MANAGEMENT_USER", default_value = "guest")]
    pub management_user: String,
    #[arg(
        long,
        env = "RABBITMQ_MANAGEMENT_PASSWORD",
        default_value = "guest",
        hide_env_values = true
    )]
    pub management_password: String,

    /// Redis for the reconciler's recipe results.
    #[arg(long, env = "REDIS_URL", default_value = "redis://127.0.0.1:6379/")]
    pub redis_url: String,

    /// PostgreSQL server (no database): each run creates and drops its own databases there.
    #[arg(
        long,
        env = "CHAOS_DATABASE_BASE",
        default_value = "postgres://postgres@127.0.0.1:5432"
    )]
    pub database_base: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RecipeBehaviour {
    /// Publish one result (analysis + a suggested action) with a single Redis PUBLISH.
    Answer,
    /// Exit 1 without answering.
    Fail,
    /// Never answer (until the run's alive file disappears or a ceiling passes).
    Hang,
}

#[derive(Debug, Clone, Args)]
pub struct RecipeArgs {
    pub behaviour: RecipeBehaviour,

    /// The data file (Euphrosyne's flag; the executor also sets STEADFAST_DATA_FILE).
    #[arg(long = "data-file-path", env = "STEADFAST_DATA_FILE")]
    pub data_file: Option<PathBuf>,

    /// Redis as host:port or a URL (Euphrosyne's flag; also STEADFAST_REDIS_ADDRESS).
    #[arg(long, env = "STEADFAST_REDIS_ADDRESS")]
    pub redis_address: Option<String>,

    /// Accepted for Euphrosyne compatibility; unused.
    #[arg(long)]
    pub aggregator_address: Option<String>,

    /// The run id, i.e. the result channel (else the data file's `uuid`).
    #[arg(long, env = "STEADFAST_RUN_ID")]
    pub run_id: Option<String>,

    /// The recipe's name as registered.
    #[arg(long, env = "STEADFAST_RECIPE")]
    pub recipe: Option<String>,

    /// `hang` returns once this file is gone (the run removes it at teardown), so a recipe
    /// orphaned by a killed reconciler never outlives the run.
    #[arg(long, env = "CHAOS_ALIVE_FILE")]
    pub alive_file: Option<PathBuf>,
}

//! The command line: flags and their environment variables.
//!
//! Flag and variable names follow Euphrosyne where it had them (`--recipe-timeout`,
//! `--recipe-namespace`, `--redis-address`, `--aggregator-address`, `--webex-bot-address`, each
//! with its upper-case variable), so an existing deployment's arguments keep working.

use std::path::PathBuf;
use std::time::Duration;

use steadfast_service_kit::config::parse_duration_arg;
use steadfast_service_kit::settings::CommonArgs;
use url::Url;

#[derive(Debug, clap::Parser)]
#[command(
    name = "alert-reconciler",
    version,
    about = "Alerts → parallel debugging recipes → chat with approval → action recipes.",
    long_about = "Consumes Alertmanager alert events from RabbitMQ (and Euphrosyne's POST /webhook), \
keeps incidents in PostgreSQL, runs debugging recipes as Kubernetes Jobs or local processes, \
collects their results over Redis, posts the analysis to Webex (with approval buttons), \
Euphrosyne's bot interface or a chat webhook, and runs approved action recipes."
)]
pub struct Cli {
    #[command(flatten)]
    pub common: CommonArgs,

    /// Recipe registry file: Euphrosyne's ConfigMap data (`debugging:` and `actions:`), or a
    /// whole ConfigMap manifest. Re-read when it changes.
    #[arg(long = "recipes", env = "RECIPES_FILE", value_name = "FILE")]
    pub recipes: Option<PathBuf>,

    /// Read the recipe registry from this ConfigMap in the reconciler's namespace instead of a
    /// file [default when running in a cluster: orpheus-operator-recipes].
    #[arg(long, env = "RECIPES_CONFIGMAP", value_name = "NAME")]
    pub recipes_configmap: Option<String>,

    /// How often the recipe registry is checked for changes.
    #[arg(long, env = "RECIPES_RELOAD_INTERVAL", default_value = "5s", value_parser = parse_duration_arg)]
    pub recipes_reload_interval: Duration,

    /// Where recipes run [default: kubernetes inside a cluster, local otherwise].
    #[arg(long, env = "EXECUTOR", value_enum)]
    pub executor: Option<ExecutorKind>,

    /// Seconds (or a duration such as 5m) a run waits for its recipes; a recipe may set its own
    /// `timeout`.
    #[arg(long, env = "RECIPE_TIMEOUT", default_value = "300", value_parser = parse_duration_arg)]
    pub recipe_timeout: Duration,

    /// How many times a debugging recipe whose answer was lost — sent while no reconciler
    /// listened, in a failover or a Redis reconnect — is launched again (0: never). Action
    /// recipes are never re-run on their own.
    #[arg(
        long,
        env = "LOST_RESULT_RERUNS",
        default_value_t = 2,
        value_name = "N"
    )]
    pub lost_result_reruns: u32,

    /// Namespace of the recipe Jobs and ConfigMaps [default: the reconciler's namespace].
    #[arg(long, env = "RECIPE_NAMESPACE", value_name = "NS")]
    pub recipe_namespace: Option<String>,

    /// The reconciler's own namespace (for the recipe ConfigMap) [default: the pod's namespace,
    /// else `default`].
    #[arg(long, env = "RECONCILER_NAMESPACE", value_name = "NS")]
    pub reconciler_namespace: Option<String>,

    /// Kubeconfig file for the Kubernetes API [default: in-cluster service account, else
    /// ~/.kube/config].
    #[arg(long, env = "KUBECONFIG", value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,

    /// Talk to this Kubernetes API server without credentials (a local proxy or the fake API)
    /// instead of the in-cluster or kubeconfig settings.
    #[arg(long, env = "KUBE_API_URL", value_name = "URL")]
    pub kube_api_url: Option<Url>,

    /// `ttlSecondsAfterFinished` of recipe Jobs: a backstop for the reconciler's own cleanup.
    #[arg(long, env = "RECIPE_JOB_TTL", default_value = "1h", value_parser = parse_duration_arg)]
    pub recipe_job_ttl: Duration,

    /// Working directory of the local executor (data files and recipe logs)
    /// [default: $TMPDIR/alert-reconciler].
    #[arg(long, env = "RECIPE_WORK_DIR", value_name = "DIR")]
    pub work_dir: Option<PathBuf>,

    /// Redis address given to recipes (`--redis-address`): host:port or a redis:// URL
    /// [default: the host and port of REDIS_URL].
    #[arg(long, env = "REDIS_ADDRESS", value_name = "ADDR")]
    pub redis_address: Option<String>,

    /// Data aggregator address given to recipes (`--aggregator-address`).
    #[arg(long, env = "AGGREGATOR_ADDRESS", default_value = "localhost:8080")]
    pub aggregator_address: String,

    /// Euphrosyne's Webex bot interface: analyses go to `{URL}/api/analysis`.
    #[arg(long, env = "WEBEX_BOT_ADDRESS", value_name = "URL")]
    pub webex_bot_address: Option<Url>,

    /// A generic chat webhook (Slack-compatible `{"text": ...}` plus structured fields).
    #[arg(
        long,
        env = "CHAT_WEBHOOK_URL",
        value_name = "URL",
        hide_env_values = true
    )]
    pub chat_webhook_url: Option<Url>,

    /// How long suggested actions stay approvable.
    #[arg(long, env = "APPROVAL_TTL", default_value = "1h", value_parser = parse_duration_arg)]
    pub approval_ttl: Duration,

    /// Bearer token of the /api endpoints.
    #[arg(long, env = "RECONCILER_API_TOKEN", hide_env_values = true)]
    pub api_token: Option<String>,

    /// Bearer token POST /webhook requires (open when unset, as Euphrosyne's internal interface).
    #[arg(long, env = "RECONCILER_WEBHOOK_TOKEN", hide_env_values = true)]
    pub webhook_token: Option<String>,

    /// Webex REST API base URL.
    #[arg(
        long,
        env = "WEBEX_API_URL",
        default_value = "https://webexapis.com/v1"
    )]
    pub webex_api_url: Url,

    /// Webex bot access token; with WEBEX_ROOM_ID it enables the Webex sink.
    #[arg(long, env = "WEBEX_BOT_TOKEN", hide_env_values = true)]
    pub webex_bot_token: Option<String>,

    /// The Webex room analyses and outcomes are posted to.
    #[arg(long, env = "WEBEX_ROOM_ID")]
    pub webex_room_id: Option<String>,

    /// Secret of the attachmentActions webhook (`X-Spark-Signature` is HMAC-SHA1 under it).
    #[arg(long, env = "WEBEX_WEBHOOK_SECRET", hide_env_values = true)]
    pub webex_webhook_secret: Option<String>,

    /// Webex personIds allowed to approve actions, comma-separated.
    #[arg(long, env = "WEBEX_APPROVERS", value_delimiter = ',')]
    pub webex_approvers: Vec<String>,

    /// Public URL of this service's /webex/attachment-actions; when set, the webhook is
    /// registered with Webex at start (if it is not already).
    #[arg(long, env = "WEBEX_WEBHOOK_URL", value_name = "URL")]
    pub webex_webhook_url: Option<Url>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ExecutorKind {
    Local,
    Kubernetes,
}

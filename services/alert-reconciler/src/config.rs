//! The command line, the environment, and the validated [`Config`] they produce.
//!
//! Flag and variable names follow Euphrosyne where it had them (`--recipe-timeout`,
//! `--recipe-namespace`, `--redis-address`, `--aggregator-address`, `--webex-bot-address`, each
//! with its upper-case variable), so an existing deployment's arguments keep working. Every
//! problem is reported as one precise sentence, because `--check-config` prints it to the
//! person editing the deployment.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use steadfast_messaging::{BrokerConfig, ConsumerSettings, Namespace};
use steadfast_service_kit::config::parse_duration_arg;
use steadfast_service_kit::settings::CommonArgs;
use url::Url;

/// Euphrosyne's fixed name for the recipe registry ConfigMap.
pub const DEFAULT_RECIPES_CONFIGMAP: &str = "orpheus-operator-recipes";
/// Where Kubernetes mounts the pod's namespace.
const SERVICE_ACCOUNT_NAMESPACE: &str = "/var/run/secrets/kubernetes.io/serviceaccount/namespace";

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

/// Where the recipe registry comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecipeSource {
    File(PathBuf),
    ConfigMap { namespace: String, name: String },
}

/// How the reconciler reaches the Kubernetes API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KubeTarget {
    /// In-cluster service account, else `~/.kube/config`.
    Infer,
    /// A kubeconfig file.
    Kubeconfig(PathBuf),
    /// A plain URL without credentials.
    Url(Url),
}

#[derive(Debug, Clone)]
pub enum ExecutorConfig {
    Local {
        work_dir: PathBuf,
    },
    Kubernetes {
        namespace: String,
        job_ttl: Duration,
    },
}

/// Not `Debug`: it holds the bot token and the webhook secret.
#[derive(Clone)]
pub struct WebexConfig {
    pub api_url: Url,
    pub bot_token: String,
    pub room_id: String,
    pub webhook_secret: String,
    pub approvers: Vec<String>,
    pub webhook_url: Option<Url>,
}

/// Where analyses and outcomes go (not `Debug`: chat webhook URLs carry tokens).
#[derive(Clone, Default)]
pub struct SinksConfig {
    pub webex: Option<WebexConfig>,
    pub bot_url: Option<Url>,
    pub chat_webhook_url: Option<Url>,
}

/// Everything the service needs, validated. Its `Debug` is [`Config::summary`], so no secret
/// (tokens, URL passwords) can reach a log through it.
#[derive(Clone)]
pub struct Config {
    pub namespace: Namespace,
    pub broker: BrokerConfig,
    pub database_url: String,
    pub redis_url: String,
    pub http_listen: SocketAddr,
    pub metrics_listen: SocketAddr,
    pub shutdown_timeout: Duration,
    pub recipes: RecipeSource,
    pub recipes_reload_interval: Duration,
    pub executor: ExecutorConfig,
    pub kube: KubeTarget,
    pub recipe_timeout: Duration,
    /// `--redis-address` as recipes receive it.
    pub recipe_redis_address: String,
    pub aggregator_address: String,
    pub sinks: SinksConfig,
    pub approval_ttl: Duration,
    pub api_token: String,
    pub webhook_token: Option<String>,
    pub consumer: ConsumerSettings,
    /// How often a standby replica tries to take over the run supervisor.
    pub leader_retry: Duration,
    /// How often the supervisor expires approvals and re-scans for work it was not told about.
    pub sweep_interval: Duration,
    /// How long a recipe that exited successfully may take to have its result arrive.
    pub result_grace: Duration,
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

fn invalid(message: impl Into<String>) -> ConfigError {
    ConfigError(message.into())
}

impl Config {
    /// A configuration with every default, for the given connections (what tests start from).
    pub fn new(
        database_url: &str,
        redis_url: &str,
        namespace: Namespace,
        broker: BrokerConfig,
        api_token: &str,
        recipes: RecipeSource,
    ) -> Self {
        Self {
            namespace,
            broker,
            database_url: database_url.to_owned(),
            redis_url: redis_url.to_owned(),
            http_listen: "127.0.0.1:0".parse().expect("address"),
            metrics_listen: "127.0.0.1:0".parse().expect("address"),
            shutdown_timeout: Duration::from_secs(20),
            recipes,
            recipes_reload_interval: Duration::from_secs(5),
            executor: ExecutorConfig::Local {
                work_dir: std::env::temp_dir().join("alert-reconciler"),
            },
            kube: KubeTarget::Infer,
            recipe_timeout: Duration::from_secs(300),
            recipe_redis_address: redis_address_of(redis_url).unwrap_or_default(),
            aggregator_address: "localhost:8080".into(),
            sinks: SinksConfig::default(),
            approval_ttl: Duration::from_secs(3600),
            api_token: api_token.to_owned(),
            webhook_token: None,
            consumer: ConsumerSettings::default(),
            leader_retry: Duration::from_secs(5),
            sweep_interval: Duration::from_secs(10),
            result_grace: Duration::from_secs(2),
        }
    }

    /// Builds and validates the configuration from the command line and environment.
    pub fn from_cli(cli: Cli) -> Result<Self, ConfigError> {
        let common = &cli.common;
        let namespace = Namespace::new(common.namespace.clone())
            .map_err(|e| invalid(format!("STEADFAST_NAMESPACE: {e}")))?;
        let broker = BrokerConfig::new(&common.amqp_url, "alert-reconciler")
            .map_err(|e| invalid(format!("AMQP_URL: {e}")))?;
        let database_url = non_empty(common.database_url.as_deref()).ok_or_else(|| {
            invalid("DATABASE_URL is required (incidents are kept in PostgreSQL)")
        })?;
        if !database_url.starts_with("postgres://") && !database_url.starts_with("postgresql://") {
            return Err(invalid(
                "DATABASE_URL must be a postgres:// or postgresql:// URL",
            ));
        }
        let redis_url = non_empty(common.redis_url.as_deref()).ok_or_else(|| {
            invalid("REDIS_URL is required (recipe results arrive over Redis pub/sub)")
        })?;
        redis::Client::open(redis_url.as_str())
            .map_err(|e| invalid(format!("REDIS_URL is not a Redis URL: {e}")))?;
        let api_token = non_empty(cli.api_token.as_deref())
            .ok_or_else(|| invalid("RECONCILER_API_TOKEN is required (it guards /api/actions)"))?;
        if api_token.len() < 16 {
            return Err(invalid(
                "RECONCILER_API_TOKEN must be at least 16 characters",
            ));
        }

        let in_cluster = std::path::Path::new(SERVICE_ACCOUNT_NAMESPACE).exists();
        let reconciler_namespace = cli
            .reconciler_namespace
            .clone()
            .or_else(|| {
                std::fs::read_to_string(SERVICE_ACCOUNT_NAMESPACE)
                    .ok()
                    .map(|s| s.trim().to_owned())
            })
            .unwrap_or_else(|| "default".into());
        let cluster_configured =
            in_cluster || cli.kube_api_url.is_some() || cli.kubeconfig.is_some();
        let kind = cli.executor.unwrap_or(if cluster_configured {
            ExecutorKind::Kubernetes
        } else {
            ExecutorKind::Local
        });

        let recipes = match (&cli.recipes, &cli.recipes_configmap) {
            (Some(_), Some(_)) => {
                return Err(invalid(
                    "give either --recipes FILE or --recipes-configmap NAME, not both",
                ));
            }
            (Some(path), None) => RecipeSource::File(path.clone()),
            (None, Some(name)) => RecipeSource::ConfigMap {
                namespace: reconciler_namespace.clone(),
                name: name.clone(),
            },
            (None, None) if cluster_configured => RecipeSource::ConfigMap {
                namespace: reconciler_namespace.clone(),
                name: DEFAULT_RECIPES_CONFIGMAP.into(),
            },
            (None, None) => {
                return Err(invalid(
                    "no recipe registry: give --recipes FILE (RECIPES_FILE) or --recipes-configmap NAME",
                ));
            }
        };
        if let RecipeSource::ConfigMap { name, .. } = &recipes {
            check_dns_name("--recipes-configmap", name)?;
        }

        let executor = match kind {
            ExecutorKind::Local => ExecutorConfig::Local {
                // Absolute: recipes run inside their run directory, so a relative data-file
                // path would not resolve from there.
                work_dir: cli
                    .work_dir
                    .clone()
                    .map(|dir| std::path::absolute(&dir).unwrap_or(dir))
                    .unwrap_or_else(|| std::env::temp_dir().join("alert-reconciler")),
            },
            ExecutorKind::Kubernetes => {
                let namespace = cli
                    .recipe_namespace
                    .clone()
                    .unwrap_or_else(|| reconciler_namespace.clone());
                check_dns_name("--recipe-namespace", &namespace)?;
                ExecutorConfig::Kubernetes {
                    namespace,
                    job_ttl: cli.recipe_job_ttl,
                }
            }
        };
        let kube = match (&cli.kube_api_url, &cli.kubeconfig) {
            (Some(_), Some(_)) => {
                return Err(invalid(
                    "give either --kube-api-url or --kubeconfig, not both",
                ));
            }
            (Some(url), None) => KubeTarget::Url(url.clone()),
            (None, Some(path)) => KubeTarget::Kubeconfig(path.clone()),
            (None, None) => KubeTarget::Infer,
        };

        if cli.recipe_timeout.is_zero() {
            return Err(invalid("--recipe-timeout must be greater than zero"));
        }
        if cli.approval_ttl.is_zero() {
            return Err(invalid("--approval-ttl must be greater than zero"));
        }
        if cli.recipes_reload_interval.is_zero() {
            return Err(invalid(
                "--recipes-reload-interval must be greater than zero",
            ));
        }
        let recipe_redis_address = match cli
            .redis_address
            .as_deref()
            .and_then(|a| non_empty(Some(a)))
        {
            Some(address) => address,
            None => redis_address_of(&redis_url).ok_or_else(|| {
                invalid("REDIS_URL has no host; set --redis-address for the recipes")
            })?,
        };

        let sinks = SinksConfig {
            webex: webex_config(&cli)?,
            bot_url: cli.webex_bot_address.clone(),
            chat_webhook_url: cli.chat_webhook_url.clone(),
        };
        for (name, url) in [
            ("--webex-bot-address", sinks.bot_url.as_ref()),
            ("--chat-webhook-url", sinks.chat_webhook_url.as_ref()),
        ] {
            if let Some(url) = url {
                check_http_url(name, url)?;
            }
        }

        Ok(Self {
            namespace,
            broker,
            database_url,
            redis_url,
            http_listen: common.http_listen(),
            metrics_listen: common.metrics_listen,
            shutdown_timeout: common.shutdown_timeout,
            recipes,
            recipes_reload_interval: cli.recipes_reload_interval,
            executor,
            kube,
            recipe_timeout: cli.recipe_timeout,
            recipe_redis_address,
            aggregator_address: cli.aggregator_address.clone(),
            sinks,
            approval_ttl: cli.approval_ttl,
            api_token,
            webhook_token: non_empty(cli.webhook_token.as_deref()),
            consumer: ConsumerSettings::default(),
            leader_retry: Duration::from_secs(5),
            sweep_interval: Duration::from_secs(10),
            result_grace: Duration::from_secs(2),
        })
    }

    /// One line per setting that matters, secrets left out (printed by `--check-config`).
    pub fn summary(&self) -> String {
        let executor = match &self.executor {
            ExecutorConfig::Local { work_dir } => {
                format!("local (work dir {})", work_dir.display())
            }
            ExecutorConfig::Kubernetes { namespace, .. } => {
                format!("kubernetes (namespace {namespace})")
            }
        };
        let recipes = match &self.recipes {
            RecipeSource::File(path) => format!("file {}", path.display()),
            RecipeSource::ConfigMap { namespace, name } => format!("ConfigMap {namespace}/{name}"),
        };
        let mut sinks = Vec::new();
        if let Some(webex) = &self.sinks.webex {
            sinks.push(format!(
                "webex (room {}, {} approvers)",
                webex.room_id,
                webex.approvers.len()
            ));
        }
        if let Some(url) = &self.sinks.bot_url {
            sinks.push(format!("euphrosyne-bot ({url})"));
        }
        if self.sinks.chat_webhook_url.is_some() {
            sinks.push("chat-webhook".into());
        }
        if sinks.is_empty() {
            sinks.push("none (analyses are kept in the database only)".into());
        }
        format!(
            "namespace: {}\nrecipes: {recipes}\nexecutor: {executor}\nrecipe timeout: {}s\nsinks: {}\napproval ttl: {}s",
            self.namespace,
            self.recipe_timeout.as_secs(),
            sinks.join(", "),
            self.approval_ttl.as_secs()
        )
    }
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.summary())
    }
}

fn webex_config(cli: &Cli) -> Result<Option<WebexConfig>, ConfigError> {
    let token = non_empty(cli.webex_bot_token.as_deref());
    let room = non_empty(cli.webex_room_id.as_deref());
    let (bot_token, room_id) = match (token, room) {
        (None, None) => return Ok(None),
        (Some(_), None) => {
            return Err(invalid(
                "WEBEX_BOT_TOKEN is set but WEBEX_ROOM_ID is not: the Webex sink needs both",
            ));
        }
        (None, Some(_)) => {
            return Err(invalid(
                "WEBEX_ROOM_ID is set but WEBEX_BOT_TOKEN is not: the Webex sink needs both",
            ));
        }
        (Some(token), Some(room)) => (token, room),
    };
    let webhook_secret = non_empty(cli.webex_webhook_secret.as_deref()).ok_or_else(|| {
        invalid("WEBEX_WEBHOOK_SECRET is required with the Webex sink: approval callbacks are verified with it")
    })?;
    check_http_url("WEBEX_API_URL", &cli.webex_api_url)?;
    if let Some(url) = &cli.webex_webhook_url {
        check_http_url("WEBEX_WEBHOOK_URL", url)?;
    }
    let approvers: Vec<String> = cli
        .webex_approvers
        .iter()
        .map(|a| a.trim().to_owned())
        .filter(|a| !a.is_empty())
        .collect();
    Ok(Some(WebexConfig {
        api_url: cli.webex_api_url.clone(),
        bot_token,
        room_id,
        webhook_secret,
        approvers,
        webhook_url: cli.webex_webhook_url.clone(),
    }))
}

fn non_empty(value: Option<&str>) -> Option<String> {
    value
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
}

fn check_http_url(name: &str, url: &Url) -> Result<(), ConfigError> {
    if url.scheme() != "http" && url.scheme() != "https" {
        return Err(invalid(format!(
            "{name} must be an http:// or https:// URL, not `{url}`"
        )));
    }
    Ok(())
}

fn check_dns_name(name: &str, value: &str) -> Result<(), ConfigError> {
    if crate::recipes::is_dns_label(value, 63) {
        Ok(())
    } else {
        Err(invalid(format!(
            "{name} `{value}` is not a valid Kubernetes name (lower-case letters, digits and '-', at most 63)"
        )))
    }
}

/// `host:port` of a Redis URL, the form Euphrosyne's recipes take.
pub fn redis_address_of(redis_url: &str) -> Option<String> {
    let url = Url::parse(redis_url).ok()?;
    let host = url.host_str()?;
    Some(format!("{host}:{}", url.port().unwrap_or(6379)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    const BASE: [&str; 7] = [
        "alert-reconciler",
        "--database-url",
        "postgres://localhost/reconciler",
        "--redis-url",
        "redis://cache:6380/",
        "--api-token",
        "0123456789abcdef",
    ];

    fn parse(extra: &[&str]) -> Result<Config, String> {
        let mut args: Vec<&str> = BASE.to_vec();
        args.extend_from_slice(extra);
        let cli = Cli::try_parse_from(args).map_err(|e| e.to_string())?;
        Config::from_cli(cli).map_err(|e| e.to_string())
    }

    #[test]
    fn a_relative_work_dir_becomes_absolute() {
        // Recipes run inside their run directory; a relative data-file path would not resolve.
        let config = parse(&[
            "--recipes",
            "r.yaml",
            "--executor",
            "local",
            "--work-dir",
            ".dev/recipes",
        ])
        .unwrap();
        let ExecutorConfig::Local { work_dir } = &config.executor else {
            panic!("local executor expected")
        };
        assert!(work_dir.is_absolute(), "{}", work_dir.display());
        assert!(work_dir.ends_with(".dev/recipes"));
    }

    #[test]
    fn defaults_follow_euphrosyne() {
        let config = parse(&["--recipes", "recipes.yaml", "--executor", "local"]).unwrap();
        assert_eq!(config.recipe_timeout, Duration::from_secs(300));
        assert_eq!(config.recipe_redis_address, "cache:6380");
        assert_eq!(config.aggregator_address, "localhost:8080");
        assert_eq!(config.recipes, RecipeSource::File("recipes.yaml".into()));
        assert!(matches!(config.executor, ExecutorConfig::Local { .. }));
        assert!(config.sinks.webex.is_none());
    }

    #[test]
    fn euphrosyne_flags_are_accepted() {
        let config = parse(&[
            "--recipes-configmap",
            "orpheus-operator-recipes",
            "--executor",
            "kubernetes",
            "--recipe-namespace",
            "recipes",
            "--recipe-timeout",
            "120",
            "--redis-address",
            "redis.default.svc:80",
            "--webex-bot-address",
            "https://bot.example.com",
        ])
        .unwrap();
        assert_eq!(config.recipe_timeout, Duration::from_secs(120));
        assert_eq!(config.recipe_redis_address, "redis.default.svc:80");
        assert!(matches!(
            &config.executor,
            ExecutorConfig::Kubernetes { namespace, .. } if namespace == "recipes"
        ));
        assert_eq!(
            config.sinks.bot_url.unwrap().as_str(),
            "https://bot.example.com/"
        );
    }

    #[test]
    fn problems_are_named_precisely() {
        let cases: &[(&[&str], &str)] = &[
            (
                &["--executor", "local"],
                "no recipe registry: give --recipes FILE (RECIPES_FILE) or --recipes-configmap NAME",
            ),
            (
                &["--recipes", "r.yaml", "--webex-bot-token", "t"],
                "WEBEX_BOT_TOKEN is set but WEBEX_ROOM_ID is not: the Webex sink needs both",
            ),
            (
                &[
                    "--recipes",
                    "r.yaml",
                    "--webex-bot-token",
                    "t",
                    "--webex-room-id",
                    "r",
                ],
                "WEBEX_WEBHOOK_SECRET is required with the Webex sink: approval callbacks are verified with it",
            ),
            (
                &["--recipes", "r.yaml", "--recipe-timeout", "0"],
                "--recipe-timeout must be greater than zero",
            ),
            (
                &["--recipes", "r.yaml", "--chat-webhook-url", "ftp://x"],
                "--chat-webhook-url must be an http:// or https:// URL, not `ftp://x/`",
            ),
            (
                &[
                    "--recipes",
                    "r.yaml",
                    "--executor",
                    "kubernetes",
                    "--recipe-namespace",
                    "Bad_NS",
                ],
                "--recipe-namespace `Bad_NS` is not a valid Kubernetes name (lower-case letters, digits and '-', at most 63)",
            ),
        ];
        for (args, expected) in cases {
            assert_eq!(parse(args).unwrap_err(), *expected, "{args:?}");
        }
        // clap reads DATABASE_URL from the environment; this case only exists without it.
        if std::env::var_os("DATABASE_URL").is_none() {
            let cli = Cli::try_parse_from(["alert-reconciler", "--recipes", "r.yaml"]).unwrap();
            assert_eq!(
                Config::from_cli(cli).unwrap_err().to_string(),
                "DATABASE_URL is required (incidents are kept in PostgreSQL)"
            );
        }
        let short = Cli::try_parse_from([
            "alert-reconciler",
            "--recipes",
            "r.yaml",
            "--database-url",
            "postgres://x/y",
            "--redis-url",
            "redis://x/",
            "--api-token",
            "short",
        ])
        .unwrap();
        assert_eq!(
            Config::from_cli(short).unwrap_err().to_string(),
            "RECONCILER_API_TOKEN must be at least 16 characters"
        );
    }

    #[test]
    fn webex_sink_with_approvers() {
        let config = parse(&[
            "--recipes",
            "r.yaml",
            "--webex-bot-token",
            "bot",
            "--webex-room-id",
            "room",
            "--webex-webhook-secret",
            "secret",
            "--webex-approvers",
            "alice, bob,",
        ])
        .unwrap();
        let webex = config.sinks.webex.unwrap();
        assert_eq!(webex.approvers, vec!["alice", "bob"]);
        assert_eq!(webex.api_url.as_str(), "https://webexapis.com/v1");
    }
}

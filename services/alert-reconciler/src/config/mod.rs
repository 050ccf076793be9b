//! The command line, the environment, and the validated [`Config`] they produce.
//!
//! * [`crate::cli`] — the flags ([`Cli`]), named after Euphrosyne's where it had them.
//! * [`executor`] — the recipe registry, the executor and the Kubernetes API.
//! * [`chat`] — the sinks: Webex, Euphrosyne's bot, a chat webhook.
//! * [`error`] — [`ConfigError`], one variant per check.
//!
//! Every problem is reported as one precise sentence, because `--check-config` prints it to the
//! person editing the deployment.

pub mod chat;
pub mod error;
pub mod executor;

use std::net::SocketAddr;
use std::time::Duration;

use steadfast_messaging::{BrokerConfig, ConsumerSettings, Namespace};
use url::Url;

pub use crate::cli::{Cli, ExecutorKind};
pub use chat::{SinksConfig, WebexConfig};
pub use error::ConfigError;
pub use executor::{DEFAULT_RECIPES_CONFIGMAP, ExecutorConfig, KubeTarget, RecipeSource};

/// Where Kubernetes mounts the pod's namespace.
const SERVICE_ACCOUNT_NAMESPACE: &str = "/var/run/secrets/kubernetes.io/serviceaccount/namespace";
/// The shortest `RECONCILER_API_TOKEN` accepted.
const MIN_API_TOKEN: usize = 16;

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
    /// How many times a debugging recipe whose answer was lost (failover, Redis reconnect) is
    /// launched again; 0 turns re-runs off.
    pub lost_result_reruns: u32,
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
            lost_result_reruns: 2,
        }
    }

    /// Builds and validates the configuration from the command line and environment.
    pub fn from_cli(cli: Cli) -> Result<Self, ConfigError> {
        let common = &cli.common;
        let namespace = Namespace::new(common.namespace.clone()).map_err(ConfigError::Namespace)?;
        let broker = BrokerConfig::new(&common.amqp_url, "alert-reconciler")
            .map_err(ConfigError::AmqpUrl)?;
        let database_url =
            non_empty(common.database_url.as_deref()).ok_or(ConfigError::MissingDatabaseUrl)?;
        if !database_url.starts_with("postgres://") && !database_url.starts_with("postgresql://") {
            return Err(ConfigError::DatabaseUrlNotPostgres);
        }
        let redis_url =
            non_empty(common.redis_url.as_deref()).ok_or(ConfigError::MissingRedisUrl)?;
        redis::Client::open(redis_url.as_str()).map_err(ConfigError::RedisUrl)?;
        let api_token = non_empty(cli.api_token.as_deref()).ok_or(ConfigError::MissingApiToken)?;
        if api_token.len() < MIN_API_TOKEN {
            return Err(ConfigError::ApiTokenTooShort { min: MIN_API_TOKEN });
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

        let recipes = executor::recipe_source(&cli, &reconciler_namespace, cluster_configured)?;
        let executor = executor::executor_config(&cli, kind, &reconciler_namespace)?;
        let kube = executor::kube_target(&cli)?;

        for (flag, duration) in [
            ("--recipe-timeout", cli.recipe_timeout),
            ("--approval-ttl", cli.approval_ttl),
            ("--recipes-reload-interval", cli.recipes_reload_interval),
        ] {
            if duration.is_zero() {
                return Err(ConfigError::ZeroDuration { flag });
            }
        }
        let recipe_redis_address = match cli
            .redis_address
            .as_deref()
            .and_then(|a| non_empty(Some(a)))
        {
            Some(address) => address,
            None => redis_address_of(&redis_url).ok_or(ConfigError::RedisUrlWithoutHost)?,
        };

        let sinks = chat::sinks_config(&cli)?;

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
            lost_result_reruns: cli.lost_result_reruns,
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
            "namespace: {}\nrecipes: {recipes}\nexecutor: {executor}\nrecipe timeout: {}s\nlost results: re-run debugging recipes up to {} times\nsinks: {}\napproval ttl: {}s",
            self.namespace,
            self.recipe_timeout.as_secs(),
            self.lost_result_reruns,
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

pub(super) fn non_empty(value: Option<&str>) -> Option<String> {
    value
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
}

pub(super) fn check_http_url(name: &'static str, url: &Url) -> Result<(), ConfigError> {
    if url.scheme() != "http" && url.scheme() != "https" {
        return Err(ConfigError::NotHttpUrl {
            setting: name,
            url: url.clone(),
        });
    }
    Ok(())
}

pub(super) fn check_dns_name(name: &'static str, value: &str) -> Result<(), ConfigError> {
    if crate::recipes::is_dns_label(value, 63) {
        Ok(())
    } else {
        Err(ConfigError::NotAKubernetesName {
            flag: name,
            value: value.to_owned(),
        })
    }
}

/// `host:port` of a Redis URL, the form Euphrosyne's recipes take.
pub fn redis_address_of(redis_url: &str) -> Option<String> {
    let url = Url::parse(redis_url).ok()?;
    let host = url.host_str()?;
    Some(format!("{host}:{}", url.port().unwrap_or(6379)))
}

#[cfg(test)]
mod tests;

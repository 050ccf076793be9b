//! What can be wrong with the configuration: one variant per check, each naming the setting.
//! The messages are what `--check-config` prints (and the runbook quotes), one sentence each.

use steadfast_messaging::MessagingError;
use url::Url;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("STEADFAST_NAMESPACE: {0}")]
    Namespace(#[source] MessagingError),
    #[error("AMQP_URL: {0}")]
    AmqpUrl(#[source] MessagingError),
    #[error("DATABASE_URL is required (incidents are kept in PostgreSQL)")]
    MissingDatabaseUrl,
    #[error("DATABASE_URL must be a postgres:// or postgresql:// URL")]
    DatabaseUrlNotPostgres,
    #[error("REDIS_URL is required (recipe results arrive over Redis pub/sub)")]
    MissingRedisUrl,
    #[error("REDIS_URL is not a Redis URL: {0}")]
    RedisUrl(#[source] redis::RedisError),
    #[error("REDIS_URL has no host; set --redis-address for the recipes")]
    RedisUrlWithoutHost,
    #[error("RECONCILER_API_TOKEN is required (it guards /api/actions)")]
    MissingApiToken,
    #[error("RECONCILER_API_TOKEN must be at least {min} characters")]
    ApiTokenTooShort { min: usize },
    #[error("give either --recipes FILE or --recipes-configmap NAME, not both")]
    BothRecipeSources,
    #[error("no recipe registry: give --recipes FILE (RECIPES_FILE) or --recipes-configmap NAME")]
    NoRecipeSource,
    #[error("give either --kube-api-url or --kubeconfig, not both")]
    BothKubeTargets,
    #[error(
        "{flag} `{value}` is not a valid Kubernetes name (lower-case letters, digits and '-', at most 63)"
    )]
    NotAKubernetesName { flag: &'static str, value: String },
    #[error("{flag} must be greater than zero")]
    ZeroDuration { flag: &'static str },
    #[error("{setting} must be an http:// or https:// URL, not `{url}`")]
    NotHttpUrl { setting: &'static str, url: Url },
    #[error("WEBEX_BOT_TOKEN is set but WEBEX_ROOM_ID is not: the Webex sink needs both")]
    WebexRoomMissing,
    #[error("WEBEX_ROOM_ID is set but WEBEX_BOT_TOKEN is not: the Webex sink needs both")]
    WebexTokenMissing,
    #[error(
        "WEBEX_WEBHOOK_SECRET is required with the Webex sink: approval callbacks are verified with it"
    )]
    WebexSecretMissing,
}

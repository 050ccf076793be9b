//! The handles every part of the running service shares.

use std::sync::Arc;
use std::time::Duration;

use sqlx::PgPool;
use sqlx::postgres::PgConnectOptions;
use tokio::sync::Notify;

use crate::chat::Sinks;
use crate::executor::Executor;
use crate::metrics::Metrics;
use crate::recipes::RecipeRegistry;
use crate::results::ResultBus;

/// Timings and addresses the domain logic needs from the configuration.
#[derive(Debug, Clone)]
pub struct Settings {
    pub recipe_timeout: Duration,
    pub approval_ttl: Duration,
    pub result_grace: Duration,
    /// How many times a debugging recipe whose answer was lost may be launched again.
    pub lost_result_reruns: u32,
    pub redis_address: String,
    pub aggregator_address: String,
    pub leader_retry: Duration,
    pub sweep_interval: Duration,
    /// Distinguishes the supervisor lock of one namespace from another's on a shared server.
    pub namespace: String,
}

pub struct Context {
    pub pool: PgPool,
    /// For the supervisor's dedicated lock connection (never a pooled one: the lock must die
    /// with its holder).
    pub database: PgConnectOptions,
    pub bus: ResultBus,
    pub executor: Executor,
    pub recipes: RecipeRegistry,
    pub sinks: Sinks,
    pub metrics: Metrics,
    pub settings: Settings,
    /// Wakes the outbox sender of this process (other replicas hear `NOTIFY`).
    pub outbox: Arc<Notify>,
}

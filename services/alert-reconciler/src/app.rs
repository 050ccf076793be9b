//! Wiring: [`App::build`] connects to PostgreSQL (and migrates), loads the recipe registry,
//! prepares the executor, Redis, the broker and the sinks, and binds both listeners;
//! [`App::run`] runs until shutdown.
//!
//! Shutdown: not ready → stop consuming alerts (in-flight handlers finish) → stop the
//! supervisor (runs are left as they are; the next leader resumes them) → stop HTTP → close the
//! broker. Everything `run` starts is owned by it, so dropping the future (a crash, in tests)
//! stops it all without any chance to tidy up — which is what restart safety is tested against.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Router;
use prometheus::Registry;
use steadfast_messaging::{
    Broker, Consumer, MessagingError, MessagingMetrics, Publisher, QueueSpec,
};
use steadfast_service_kit::host::Endpoints;
use steadfast_service_kit::probes::{Check, Probes};
use steadfast_service_kit::server::BindError;
use steadfast_service_kit::shutdown::drain;
use tokio::sync::Notify;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tower_http::catch_panic::CatchPanicLayer;

use crate::api::{self, ApiState, WebexCallbacks};
use crate::chat::Sinks;
use crate::config::{Config, ExecutorConfig, KubeTarget, RecipeSource};
use crate::context::{Context, Settings};
use crate::executor::{Executor, kubernetes::KubeExecutor, local::LocalExecutor};
use crate::intake::AlertHandler;
use crate::metrics::Metrics;
use crate::recipes::{RecipeError, RecipeRegistry};
use crate::results::ResultBus;
use crate::results::bus::BusError;
use crate::store::{self, StoreError};

/// The service's name: its app id on the broker and its queue's middle part.
pub const SERVICE: &str = "alert-reconciler";

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("recipe registry: {0}")]
    Recipes(#[from] RecipeError),
    #[error("Kubernetes client: {0}")]
    Kube(#[from] crate::executor::kubernetes::KubeClientError),
    #[error("REDIS_URL: {0}")]
    Redis(#[from] BusError),
    #[error(transparent)]
    Bind(#[from] BindError),
    #[error("broker: {0}")]
    Messaging(#[from] MessagingError),
    #[error("metrics: {0}")]
    Metrics(#[from] prometheus::Error),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

impl steadfast_service_kit::host::Service for Config {
    const NAME: &'static str = "alert-reconciler";
    type CheckError = crate::CheckError;
    type Error = AppError;

    fn check(&self) -> Result<String, Self::CheckError> {
        crate::check_config(self)
    }

    async fn serve(self, shutdown: CancellationToken) -> Result<(), AppError> {
        App::build(self).await?.run(shutdown).await
    }
}

pub struct App {
    config: Config,
    ctx: Arc<Context>,
    broker: Broker,
    queue: QueueSpec,
    probes: Probes,
    database_ok: Arc<AtomicBool>,
    router: Router,
    registry: Registry,
    endpoints: Endpoints,
}

/// The alert queue: `<ns>.alert-reconciler.alerts`, bound to `alertmanager.#`.
pub fn alert_queue(config: &Config) -> QueueSpec {
    QueueSpec::new(config.namespace.queue(SERVICE, "alerts"))
        .bind(config.namespace.exchange("webhooks"), "alertmanager.#")
}

/// A Kubernetes client for `target`.
pub async fn kube_client(target: &KubeTarget) -> Result<kube::Client, AppError> {
    Ok(crate::executor::kubernetes::client(target).await?)
}

impl App {
    pub async fn build(config: Config) -> Result<Self, AppError> {
        let registry = steadfast_telemetry::metrics::service_registry(
            "alert-reconciler",
            env!("CARGO_PKG_VERSION"),
        );
        let messaging_metrics = MessagingMetrics::register(&registry)?;
        let metrics = Metrics::register(&registry)?;

        let pool = store::connect(&config.database_url).await?;
        let database = config.database_url.parse().map_err(StoreError::from)?;

        let needs_kube = matches!(config.executor, ExecutorConfig::Kubernetes { .. })
            || matches!(config.recipes, RecipeSource::ConfigMap { .. });
        let kube = if needs_kube {
            Some(kube_client(&config.kube).await?)
        } else {
            None
        };
        let executor = match (&config.executor, &kube) {
            (ExecutorConfig::Kubernetes { namespace, job_ttl }, Some(client)) => {
                Executor::Kubernetes(KubeExecutor::new(
                    client.clone(),
                    namespace.clone(),
                    *job_ttl,
                ))
            }
            (ExecutorConfig::Local { work_dir }, _) => {
                tokio::fs::create_dir_all(work_dir).await?;
                Executor::Local(LocalExecutor::new(work_dir.clone()))
            }
            (ExecutorConfig::Kubernetes { .. }, None) => {
                unreachable!("a Kubernetes client was built above")
            }
        };
        let recipes = RecipeRegistry::load(
            config.recipes.clone(),
            kube.clone(),
            matches!(executor, Executor::Kubernetes(_)),
            metrics.clone(),
        )
        .await?;
        metrics.start_at_zero(recipes.current().debugging.keys().map(String::as_str));
        let (debugging, actions) = recipes.current().counts();
        tracing::info!(
            debugging,
            actions,
            executor = executor.name(),
            "recipe registry loaded"
        );

        let bus = ResultBus::new(&config.redis_url)?;
        let sinks = Sinks::from_config(&config.sinks);
        let broker = Broker::start(config.broker.clone(), messaging_metrics);
        let queue = alert_queue(&config);
        broker.declare_queue(queue.clone()).await?;

        let ctx = Arc::new(Context {
            pool,
            database,
            bus,
            executor,
            recipes,
            sinks,
            metrics,
            settings: Settings {
                recipe_timeout: config.recipe_timeout,
                approval_ttl: config.approval_ttl,
                result_grace: config.result_grace,
                lost_result_reruns: config.lost_result_reruns,
                redis_address: config.recipe_redis_address.clone(),
                aggregator_address: config.aggregator_address.clone(),
                leader_retry: config.leader_retry,
                sweep_interval: config.sweep_interval,
                namespace: config.namespace.to_string(),
            },
            outbox: Arc::new(Notify::new()),
        });

        let probes = Probes::new();
        let database_ok = Arc::new(AtomicBool::new(true));
        {
            let broker = broker.clone();
            probes.readiness("broker", move || broker.health().into());
            let bus = ctx.bus.clone();
            probes.readiness("redis", move || bus.health().into());
            let ok = database_ok.clone();
            probes.readiness("database", move || {
                if ok.load(Ordering::SeqCst) {
                    Check::ok("reachable")
                } else {
                    Check::failing("PostgreSQL does not answer")
                }
            });
            let recipes = ctx.recipes.clone();
            probes.readiness("recipes", move || {
                let status = recipes.status();
                Check::ok(match status.last_error {
                    None => format!("{} (version {})", status.source, status.version),
                    Some(refused) => format!(
                        "{} (version {}; version {} refused: {})",
                        status.source, status.version, refused.version, refused.error
                    ),
                })
            });
        }

        let webex = config.sinks.webex.as_ref().map(|w| WebexCallbacks {
            client: crate::chat::WebexClient::new(crate::chat::http_client(), w),
            secret: w.webhook_secret.clone(),
            approvers: w.approvers.iter().cloned().collect::<HashSet<_>>(),
            room_id: w.room_id.clone(),
        });
        if webex.as_ref().is_some_and(|w| w.approvers.is_empty()) {
            tracing::warn!("WEBEX_APPROVERS is empty: nobody can approve actions from Webex");
        }
        let state = ApiState {
            ctx: ctx.clone(),
            api_token: config.api_token.as_str().into(),
            webhook_token: config.webhook_token.as_deref().map(Into::into),
            webex,
            publisher: Publisher::new(broker.clone()),
            exchange: config.namespace.exchange("webhooks"),
        };
        let router = api::router(state).layer(CatchPanicLayer::new());
        let endpoints = Endpoints::bind(config.http_listen, config.metrics_listen).await?;
        Ok(Self {
            config,
            ctx,
            broker,
            queue,
            probes,
            database_ok,
            router,
            registry,
            endpoints,
        })
    }

    pub fn http_addr(&self) -> SocketAddr {
        self.endpoints.http_addr()
    }

    pub fn metrics_addr(&self) -> SocketAddr {
        self.endpoints.metrics_addr()
    }

    /// Runs until `shutdown` is cancelled, then shuts down in order.
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), AppError> {
        let Self {
            config,
            ctx,
            broker,
            queue,
            probes,
            database_ok,
            router,
            registry,
            endpoints,
        } = self;
        let background = CancellationToken::new();
        let mut tasks = JoinSet::new();
        tasks.spawn(ctx.bus.clone().run(background.clone()));
        tasks.spawn(
            ctx.recipes
                .clone()
                .watch(config.recipes_reload_interval, background.clone()),
        );
        tasks.spawn(watch_database(ctx.clone(), database_ok, background.clone()));
        tasks.spawn(crate::supervisor::run(ctx.clone(), background.clone()));
        if let (Some(webex), Some(sink)) = (&config.sinks.webex, ctx.sinks.webex.clone())
            && let Some(target) = webex.webhook_url.clone()
        {
            let secret = webex.webhook_secret.clone();
            let stop = background.clone();
            tasks.spawn(async move { register_webhook(sink, target, secret, stop).await });
        }

        let intake = CancellationToken::new();
        let mut consumer = JoinSet::new();
        let handler = AlertHandler { ctx: ctx.clone() };
        consumer.spawn(
            Consumer::new(broker.clone(), queue, config.consumer.clone(), handler)
                .run(intake.clone()),
        );

        let serving = endpoints.serve(router, &probes, registry);
        tracing::info!(namespace = %config.namespace, "alert-reconciler running");

        shutdown.cancelled().await;
        probes.begin_shutdown();
        tracing::info!("shutting down: no new alerts; in-flight ones finish");
        intake.cancel();
        let deadline = config.shutdown_timeout;
        drain("alert intake", deadline, async {
            while let Some(result) = consumer.join_next().await {
                if let Ok(Err(error)) = result {
                    tracing::warn!(%error, "alert consumer ended with an error");
                }
            }
        })
        .await;
        background.cancel();
        drain("supervisor", deadline, async {
            while tasks.join_next().await.is_some() {}
        })
        .await;
        drain("HTTP listeners", deadline, serving.stop()).await;
        broker.close().await;
        ctx.pool.close().await;
        tracing::info!("alert-reconciler stopped");
        Ok(())
    }
}

/// Registers the Webex approval webhook, retrying while Webex cannot be reached.
async fn register_webhook(
    sink: crate::chat::webex::WebexSink,
    target: url::Url,
    secret: String,
    stop: CancellationToken,
) {
    let mut wait = Duration::from_secs(1);
    loop {
        match sink.client().ensure_webhook(&target, &secret).await {
            Ok(true) => {
                return tracing::info!(url = %target, "registered the Webex approval webhook");
            }
            Ok(false) => {
                return tracing::info!(url = %target, "the Webex approval webhook is registered");
            }
            Err(error) if error.is_transient() => {
                tracing::warn!(%error, url = %target, retry_in_s = wait.as_secs(), "cannot register the Webex approval webhook yet");
            }
            Err(error) => {
                return tracing::error!(%error, url = %target, "cannot register the Webex approval webhook; approval buttons will not reach this service");
            }
        }
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(wait) => {}
        }
        wait = (wait * 2).min(Duration::from_secs(60));
    }
}

/// Keeps the `database` readiness check current.
async fn watch_database(ctx: Arc<Context>, ok: Arc<AtomicBool>, stop: CancellationToken) {
    loop {
        let reachable = tokio::time::timeout(
            Duration::from_secs(3),
            sqlx::query("SELECT 1").execute(&ctx.pool),
        )
        .await
        .is_ok_and(|r| r.is_ok());
        if ok.swap(reachable, Ordering::SeqCst) != reachable {
            if reachable {
                tracing::info!("PostgreSQL reachable again");
            } else {
                tracing::error!("PostgreSQL does not answer");
            }
        }
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(Duration::from_secs(5)) => {}
        }
    }
}

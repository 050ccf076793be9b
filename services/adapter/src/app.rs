//! The running service: HyperFleet's start-up order (configs → health and metrics servers →
//! API client → Kubernetes client → executor → subscription → ready), our consumer with retry
//! tiers, and graceful shutdown.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::routing::get;
use prometheus::Registry;
use steadfast_messaging::{
    Broker, BrokerConfig, Consumer, ConsumerSettings, MessagingMetrics, QueueSpec, RetryPolicy,
};
use steadfast_service_kit::host::Endpoints;
use steadfast_service_kit::probes::{Check, Probes};
use steadfast_service_kit::{server, shutdown};
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::handler::EventHandler;
use crate::hyperfleet_api::ApiClient;
use crate::metrics::Metrics;
use crate::pipeline::Executor;
use crate::transport::Transport;
use crate::transport::kube_cluster::{KubeCluster, KubeSettings};

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error(transparent)]
    Bind(#[from] server::BindError),
    #[error("metrics: {0}")]
    Metrics(#[from] prometheus::Error),
    #[error("broker: {0}")]
    Broker(#[from] steadfast_messaging::MessagingError),
    #[error(transparent)]
    Kubernetes(#[from] crate::transport::kube_cluster::ClientError),
    #[error("failed to create the HyperFleet API client: {0}")]
    Api(#[from] crate::hyperfleet_api::ApiError),
    #[error("Missing required broker configuration: subscription_id and topic")]
    MissingBrokerSubscription,
}

impl steadfast_service_kit::host::Service for Config {
    const NAME: &'static str = "adapter";
    type CheckError = std::convert::Infallible;
    type Error = AppError;

    /// Loading already refused what HyperFleet refuses (and, under strict validation, what
    /// we warn about); the warnings left are listed after `configuration OK`.
    fn check(&self) -> Result<String, Self::CheckError> {
        Ok(crate::config::warnings_summary(&self.loaded.warnings))
    }

    async fn serve(self, shutdown: CancellationToken) -> Result<(), AppError> {
        App::build(self).await?.run(shutdown).await
    }
}

/// A built adapter: connected, listening, not yet consuming.
pub struct App {
    config: Config,
    probes: Probes,
    metrics: Metrics,
    broker: Broker,
    executor: Arc<Executor>,
    endpoints: Endpoints,
    registry: Registry,
    queue: QueueSpec,
}

impl App {
    /// Connects and binds everything; the subscription starts in [`App::run`].
    pub async fn build(config: Config) -> Result<Self, AppError> {
        let loaded = &config.loaded;
        for warning in &loaded.warnings {
            tracing::warn!(path = %warning.path, "task config: {}", warning.message);
        }
        let adapter = &loaded.adapter;
        let broker_settings = &adapter.clients.broker;
        let (Some(queue), Some(topic)) = (adapter.queue_name(), broker_settings.topic.clone())
        else {
            return Err(AppError::MissingBrokerSubscription);
        };
        let registry =
            steadfast_telemetry::metrics::service_registry("adapter", env!("CARGO_PKG_VERSION"));
        let metrics = Metrics::register(&registry, &adapter.adapter.name, &topic)?;
        let messaging_metrics = MessagingMetrics::register(&registry)?;
        let probes = Probes::new();
        probes.readiness("config", || Check::ok("adapter and task configs loaded"));

        let endpoints =
            Endpoints::bind(config.service.http_listen, config.service.metrics_listen).await?;

        let api = Arc::new(ApiClient::http(&adapter.clients.hyperfleet_api)?);
        let kubernetes = &adapter.clients.kubernetes;
        let cluster = KubeCluster::connect(&KubeSettings {
            kubeconfig: kubernetes
                .kube_config_path
                .clone()
                .filter(|p| !p.as_os_str().is_empty()),
            qps: kubernetes.qps,
            burst: kubernetes.burst,
            timeout: kubernetes.timeout,
        })
        .await?;
        let executor = Arc::new(Executor::new(
            Arc::new(loaded.clone()),
            api,
            Arc::new(Transport::Kube(cluster)),
            &config.environment,
            Some(metrics.clone()),
        ));

        let broker_config = BrokerConfig::new(
            &config.service.amqp_url,
            format!("adapter-{}", adapter.adapter.name),
        )?;
        let broker = Broker::start(broker_config, messaging_metrics);
        let health = broker.clone();
        probes.readiness("broker", move || health.health().into());
        // HyperFleet's queue `<topic>-<subscription_id>`, bound with an empty key to the
        // topic exchange the sentinel publishes to.
        let queue = QueueSpec::new(queue)
            .bind(topic, "")
            .with_retry(RetryPolicy {
                delays: broker_settings.retry_delays.clone(),
                max_attempts: broker_settings.max_attempts,
            });
        metrics.up.set(1.0);
        Ok(Self {
            config,
            probes,
            metrics,
            broker,
            executor,
            endpoints,
            registry,
            queue,
        })
    }

    pub fn http_addr(&self) -> SocketAddr {
        self.endpoints.http_addr()
    }

    pub fn metrics_addr(&self) -> SocketAddr {
        self.endpoints.metrics_addr()
    }

    pub fn probes(&self) -> Probes {
        self.probes.clone()
    }

    /// Serves and consumes until `shutdown`; then not ready → stop intake → drain → close.
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), AppError> {
        let Self {
            config,
            probes,
            metrics,
            broker,
            executor,
            endpoints,
            registry,
            queue,
        } = self;
        let loaded = &config.loaded;
        let mut router = Router::new();
        if loaded.adapter.debug_config {
            let document = serde_json::json!({"adapter_config": loaded.config_json, "task_config": loaded.task_json});
            router = router.merge(
                Router::new().route("/config", get(move || async move { axum::Json(document) })),
            );
        }
        let serving = endpoints.serve(router, &probes, registry);

        let broker_settings = &loaded.adapter.clients.broker;
        let settings = ConsumerSettings {
            prefetch: broker_settings.prefetch_count,
            concurrency: broker_settings.parallelism,
            handler_timeout: broker_settings.handler_timeout,
            drain_timeout: config.service.shutdown_timeout,
            ..ConsumerSettings::default()
        };
        let handler = EventHandler {
            executor,
            metrics: metrics.clone(),
            max_attempts: broker_settings.max_attempts,
            recent: Default::default(),
        };
        tracing::info!(queue = %queue.name, exchange = %queue.bindings[0].0, adapter = %loaded.adapter.adapter.name, "subscribing");
        let consumer = Consumer::new(broker.clone(), queue, settings, handler);
        let mut consuming = tokio::spawn(consumer.run(shutdown.clone()));

        let finished = tokio::select! {
            () = shutdown.cancelled() => None,
            ended = &mut consuming => Some(ended),
        };
        tracing::info!("shutting down: not ready, stopping intake, draining in-flight events");
        probes.begin_shutdown();
        metrics.up.set(0.0);
        let ended = match finished {
            Some(ended) => ended,
            None => consuming.await,
        };
        match ended {
            Ok(Ok(())) => {}
            Ok(Err(error)) => tracing::error!(%error, "Fatal subscription error, shutting down"),
            Err(error) => tracing::error!(%error, "consumer task failed"),
        }
        broker.close().await;
        shutdown::drain(
            "listeners",
            std::time::Duration::from_secs(5),
            serving.stop(),
        )
        .await;
        tracing::info!("stopped");
        Ok(())
    }
}

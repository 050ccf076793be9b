//! Wiring: listeners, broker, spool, drainer, routes, probes; and the shutdown order.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use prometheus::Registry;
use steadfast_messaging::{Broker, MessagingMetrics};
use steadfast_service_kit::host::Endpoints;
use steadfast_service_kit::probes::{Check, Probes};
use steadfast_service_kit::server::BindError;
use steadfast_service_kit::shutdown::drain;
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::Config;
use crate::delivery::{Delivery, SpoolGate};
use crate::drainer::{Drainer, SpoolHealth};
use crate::forward::{Forwarder, Topology};
use crate::intake::{self, Intake};
use crate::metrics::ReceiverMetrics;
use crate::spool::{Spool, SpoolError};

/// How long start-up waits for the first broker connection before serving anyway (events
/// then go to the spool until it comes).
const BROKER_GRACE: Duration = Duration::from_secs(5);

/// Why the receiver could not start, or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error(transparent)]
    Bind(#[from] BindError),
    #[error("metrics registry: {0}")]
    Metrics(#[from] prometheus::Error),
    #[error("spool: {0}")]
    Spool(#[from] SpoolError),
    #[error("broker topology: {0}")]
    Topology(#[from] steadfast_messaging::MessagingError),
    #[error("HTTP server: {0}")]
    Http(#[source] std::io::Error),
}

impl steadfast_service_kit::host::Service for Config {
    const NAME: &'static str = crate::SERVICE;
    type CheckError = std::convert::Infallible;
    type Error = AppError;

    fn check(&self) -> Result<String, Self::CheckError> {
        Ok(self.summary())
    }

    async fn serve(self, shutdown: CancellationToken) -> Result<(), AppError> {
        App::build(self).await?.run(shutdown).await
    }
}

/// A running receiver's parts, built and bound but not yet serving.
pub struct App {
    config: Config,
    endpoints: Endpoints,
    router: Router,
    registry: Registry,
    probes: Probes,
    broker: Broker,
    spool: Option<Spool>,
    drainer: Option<Drainer>,
    tasks: TaskTracker,
}

impl App {
    /// Binds the listeners, starts the broker connection (waiting briefly for it), opens the
    /// spool and applies its migrations (retried by the drainer if PostgreSQL is down).
    pub async fn build(config: Config) -> Result<Self, AppError> {
        let registry = steadfast_telemetry::metrics::service_registry(
            crate::SERVICE,
            env!("CARGO_PKG_VERSION"),
        );
        let metrics = ReceiverMetrics::register(&registry)?;
        let messaging_metrics = MessagingMetrics::register(&registry)?;
        let endpoints = Endpoints::bind(config.http_listen, config.metrics_listen).await?;

        let broker = Broker::start(config.broker.clone(), messaging_metrics);
        if broker.wait_connected(BROKER_GRACE).await.is_err() {
            tracing::warn!("broker not reachable yet; serving through the spool until it is");
        }
        let topology = Topology::new(&config.namespace);
        // A broker that accepts connections but answers nothing must not hang start-up; the
        // exchanges are registered either way and declared again on every (re)connect.
        match tokio::time::timeout(BROKER_GRACE, topology.declare(&broker)).await {
            Ok(declared) => declared?,
            Err(_) => tracing::warn!("broker did not answer the topology declarations; continuing"),
        }

        let gate = Arc::new(SpoolGate::default());
        let wake = Arc::new(Notify::new());
        let (spool, health, drainer) = match &config.database_url {
            None => (None, Arc::new(SpoolHealth::disabled()), None),
            Some(url) => {
                let spool = Spool::connect_lazy(url, config.spool.timeout)?;
                let migrated = match spool.migrate().await {
                    Ok(()) => true,
                    Err(error) => {
                        tracing::error!(error = %error, "cannot prepare the spool; retrying in the background");
                        false
                    }
                };
                let health = Arc::new(SpoolHealth::unreachable("not checked yet"));
                let drainer = Drainer {
                    spool: spool.clone(),
                    forwarder: Forwarder::new(&broker, topology.clone()),
                    gate: gate.clone(),
                    wake: wake.clone(),
                    health: health.clone(),
                    metrics: metrics.clone(),
                    batch: config.spool.batch,
                    poll_interval: config.spool.poll_interval,
                    migrated,
                };
                // Rows left from before a restart must not be overtaken by the first requests.
                if migrated {
                    match spool.stats().await {
                        Ok(stats) => {
                            health.record(stats);
                            if stats.depth > 0 {
                                tracing::info!(
                                    events = stats.depth,
                                    "spool not empty at start; new events queue behind it"
                                );
                                gate.enter();
                            }
                        }
                        Err(error) => health.record_error(&error),
                    }
                }
                (Some(spool), health, Some(drainer))
            }
        };

        let delivery = Delivery::new(
            Forwarder::new(&broker, topology.clone()),
            spool.clone(),
            gate.clone(),
            wake,
            metrics.clone(),
        );
        let tasks = TaskTracker::new();
        let intake = Arc::new(Intake {
            gitlab: config.gitlab.clone(),
            alertmanager: config.alertmanager.clone(),
            hooks: config
                .hooks
                .iter()
                .map(|h| (h.name.clone(), h.clone()))
                .collect::<HashMap<_, _>>(),
            exchange: topology.exchange.clone(),
            app_id: config.broker.app_id.clone(),
            max_body_bytes: config.max_body_bytes,
            delivery,
            tasks: tasks.clone(),
            metrics,
        });

        let probes = Probes::new();
        register_readiness(&probes, &broker, &health, &gate);
        let router = intake::router(intake);
        tracing::info!(config = %config.summary(), "webhook-receiver configured");
        Ok(Self {
            registry,
            config,
            endpoints,
            router,
            probes,
            broker,
            spool,
            drainer,
            tasks,
        })
    }

    pub fn http_addr(&self) -> SocketAddr {
        self.endpoints.http_addr()
    }

    pub fn metrics_addr(&self) -> SocketAddr {
        self.endpoints.metrics_addr()
    }

    /// Serves until `shutdown`, then: not ready → stop accepting → finish open requests and
    /// their deliveries → stop the drainer after its batch → close the broker and the pool,
    /// all within `SHUTDOWN_TIMEOUT`.
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), AppError> {
        let Self {
            config,
            endpoints,
            router,
            registry,
            probes,
            broker,
            spool,
            drainer,
            tasks,
        } = self;
        tracing::info!(http = %endpoints.http_addr(), "webhook-receiver listening");
        let stop_drainer = CancellationToken::new();
        let mut serving = endpoints.serve(router, &probes, registry);
        let drainer_task = drainer.map(|d| tokio::spawn(d.run(stop_drainer.clone())));

        let early_exit = tokio::select! {
            () = shutdown.cancelled() => None,
            result = serving.api_stopped() => Some(result),
        };
        if let Some(result) = early_exit {
            // The listener failed on its own; shut the rest down and report it.
            stop_drainer.cancel();
            serving.stop().await;
            drain("broker connection", config.shutdown_timeout, broker.close()).await;
            return result.map_err(AppError::Http);
        }

        tracing::info!("shutting down: not ready, finishing open requests");
        let deadline = Instant::now() + config.shutdown_timeout;
        let remaining = || deadline.saturating_duration_since(Instant::now());
        serving.stop_api(remaining()).await;
        tasks.close();
        drain("event deliveries", remaining(), tasks.wait()).await;
        stop_drainer.cancel();
        if let Some(task) = drainer_task {
            drain("spool drainer", remaining(), async {
                let _ = task.await;
            })
            .await;
        }
        // Closing waits for the broker's close-ok, which a hung broker never sends.
        drain("broker connection", remaining(), broker.close()).await;
        if let Some(spool) = spool {
            drain("spool connections", remaining(), spool.close()).await;
        }
        serving.stop().await;
        tracing::info!("webhook-receiver stopped");
        Ok(())
    }
}

/// `broker`, `spool` and `path`: the receiver is ready while at least one path takes events.
fn register_readiness(
    probes: &Probes,
    broker: &Broker,
    health: &Arc<SpoolHealth>,
    gate: &Arc<SpoolGate>,
) {
    let (b, h) = (broker.clone(), health.clone());
    probes.readiness("broker", move || {
        let (up, detail) = b.health();
        match (up, h.is_usable()) {
            (true, _) => Check::ok(detail),
            (false, true) => Check::ok(format!("{detail}; events go to the spool")),
            (false, false) => Check::failing(detail),
        }
    });
    let h = health.clone();
    probes.readiness("spool", move || h.check());
    let (b, h, g) = (broker.clone(), health.clone(), gate.clone());
    probes.readiness("path", move || {
        let depth = h.depth().unwrap_or(0);
        match (b.is_connected(), h.is_usable(), g.is_spooling()) {
            (_, true, true) => Check::ok(format!("spool ({depth} events waiting)")),
            (true, _, _) => Check::ok("broker"),
            (false, true, false) => Check::ok(format!("spool ({depth} events waiting)")),
            (false, false, _) => {
                Check::failing("none: the broker is disconnected and the spool is unavailable")
            }
        }
    });
}

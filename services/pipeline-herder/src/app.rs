//! Wiring: connect, bind, consume; and shutting down in order.

use std::net::SocketAddr;
use std::time::Duration;

use prometheus::Registry;
use steadfast_messaging::{
    Broker, Consumer, ConsumerSettings, ExchangeSpec, MessagingMetrics, QueueSpec, RetryPolicy,
};
use steadfast_service_kit::host::Endpoints;
use steadfast_service_kit::probes::{Check, Probes};
use steadfast_service_kit::server;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::gitlab::GitLab;
use crate::herder::Herder;
use crate::jobs::JobEvents;
use crate::ledger::{Ledger, LedgerError};
use crate::metrics::HerderMetrics;
use crate::notify::{ChatSink, Notifier};
use crate::pause::PauseSwitch;
use crate::retries::RetriesDue;

/// The service name: broker app id, queue names.
pub const SERVICE: &str = "pipeline-herder";

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("PostgreSQL: {0}")]
    Ledger(#[from] LedgerError),
    #[error("metrics: {0}")]
    Metrics(#[from] prometheus::Error),
    #[error("HTTP client: {0}")]
    HttpClient(#[from] reqwest::Error),
    #[error(transparent)]
    Bind(#[from] server::BindError),
    #[error("broker topology: {0}")]
    Messaging(#[from] steadfast_messaging::MessagingError),
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

/// A built herder: connected, listening, not yet consuming.
pub struct App {
    config: Config,
    herder: Herder,
    broker: Broker,
    probes: Probes,
    endpoints: Endpoints,
    registry: Registry,
    jobs_queue: QueueSpec,
    retries_queue: QueueSpec,
    database_check: std::sync::Arc<std::sync::RwLock<Check>>,
}

impl App {
    pub async fn build(config: Config) -> Result<Self, AppError> {
        let registry =
            steadfast_telemetry::metrics::service_registry(SERVICE, env!("CARGO_PKG_VERSION"));
        let messaging_metrics = MessagingMetrics::register(&registry)?;
        let metrics = HerderMetrics::register(&registry)?;

        let ledger = Ledger::connect(&config.database_url, Duration::from_secs(30)).await?;
        let broker = Broker::start(config.broker.clone(), messaging_metrics);
        let ns = &config.namespace;
        let notifications = ns.exchange("notifications");
        broker
            .declare_exchange(ExchangeSpec::topic(notifications.clone()))
            .await?;
        let jobs_queue = QueueSpec::new(ns.queue(SERVICE, "jobs"))
            .bind(ns.exchange("webhooks"), "#.build")
            .with_retry(config.herder.message_retry.clone());
        let retries_queue = QueueSpec::new(ns.queue(SERVICE, "retries")).with_retry(RetryPolicy {
            max_attempts: None,
            ..config.herder.message_retry.clone()
        });
        broker.declare_queue(jobs_queue.clone()).await?;
        broker.declare_queue(retries_queue.clone()).await?;

        let gitlab = GitLab::new(
            config.herder.instances.clone(),
            &config.herder.api,
            Some(metrics.api_errors.clone()),
        )?;
        let publisher = steadfast_messaging::Publisher::new(broker.clone());
        let chat = config
            .herder
            .chatbot_url
            .clone()
            .map(ChatSink::new)
            .transpose()?;
        let notifier = Notifier::new(
            ledger.clone(),
            publisher.clone(),
            notifications,
            chat,
            metrics.clone(),
        );
        let pause = PauseSwitch::new(ledger.clone(), metrics.clone());
        if let Err(error) = pause.state().await {
            tracing::warn!(%error, "cannot read the pause switch yet");
        }
        let herder = Herder {
            gitlab,
            matchers: config.herder.matchers.clone(),
            ledger: ledger.clone(),
            publisher,
            notifier,
            pause: pause.clone(),
            metrics,
            retries_queue: retries_queue.name.clone(),
            // A worker holds a claimed retry at most for its handler timeout (claims of earlier
            // versions; ours are held by a session lock, see `ledger::ClaimLock`).
            retry_lease: config.herder.consumer.handler_timeout + Duration::from_secs(60),
        };

        let probes = Probes::new();
        let health = broker.clone();
        probes.readiness("broker", move || health.health().into());
        let database_check = std::sync::Arc::new(std::sync::RwLock::new(Check::ok("connected")));
        let database = database_check.clone();
        probes.readiness("database", move || read(&database));
        let switch = pause.clone();
        probes.readiness("pause", move || Check::ok(switch.detail()));

        let endpoints = Endpoints::bind(config.http_listen, config.metrics_listen).await?;
        for warning in config.herder.matchers.warnings() {
            tracing::warn!(%warning, "matchers");
        }
        tracing::info!(summary = %config.summary(), http = %endpoints.http_addr(), "pipeline-herder built");
        Ok(Self {
            config,
            herder,
            broker,
            probes,
            endpoints,
            registry,
            jobs_queue,
            retries_queue,
            database_check,
        })
    }

    /// The API and probe address (useful with port 0).
    pub fn http_addr(&self) -> SocketAddr {
        self.endpoints.http_addr()
    }

    pub fn metrics_addr(&self) -> SocketAddr {
        self.endpoints.metrics_addr()
    }

    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Serves and consumes until `shutdown`; then: not ready → stop consuming → drain in
    /// flight within the shutdown timeout → publish what is left in the outbox → close.
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), AppError> {
        let Self {
            config,
            herder,
            broker,
            probes,
            endpoints,
            registry,
            jobs_queue,
            retries_queue,
            database_check,
        } = self;
        let intake = CancellationToken::new();
        let background = CancellationToken::new();

        let api = crate::api::router(
            herder.pause.clone(),
            herder.ledger.clone(),
            config.admin_token.clone(),
        );
        let serving = endpoints.serve(api, &probes, registry);
        let tasks: Vec<JoinHandle<()>> = vec![
            tokio::spawn(herder.notifier.clone().run(background.clone())),
            tokio::spawn(herder.pause.clone().refresh_until(background.clone())),
            tokio::spawn(watch_database(
                herder.ledger.clone(),
                database_check,
                background.clone(),
            )),
        ];

        let settings = ConsumerSettings {
            drain_timeout: config.shutdown_timeout,
            ..config.herder.consumer.clone()
        };
        let consumers = vec![
            spawn_consumer(
                Consumer::new(
                    broker.clone(),
                    jobs_queue,
                    settings.clone(),
                    JobEvents {
                        herder: herder.clone(),
                    },
                ),
                intake.clone(),
            ),
            spawn_consumer(
                Consumer::new(
                    broker.clone(),
                    retries_queue,
                    settings,
                    RetriesDue {
                        herder: herder.clone(),
                    },
                ),
                intake.clone(),
            ),
        ];

        shutdown.cancelled().await;
        tracing::info!("shutting down: not ready, stopping intake, draining");
        probes.begin_shutdown();
        intake.cancel();
        for consumer in consumers {
            let _ = consumer.await;
        }
        background.cancel();
        let deadline = config.shutdown_timeout;
        steadfast_service_kit::shutdown::drain("background tasks and listeners", deadline, async {
            for task in tasks {
                let _ = task.await;
            }
            serving.stop().await;
        })
        .await;
        broker.close().await;
        tracing::info!("stopped");
        Ok(())
    }
}

fn spawn_consumer<H: steadfast_messaging::Handler>(
    consumer: Consumer<H>,
    stop: CancellationToken,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        if let Err(error) = consumer.run(stop).await {
            tracing::error!(%error, "consumer stopped with an error");
        }
    })
}

fn read(check: &std::sync::RwLock<Check>) -> Check {
    check
        .read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone()
}

/// Pings PostgreSQL every few seconds for `/readyz`.
async fn watch_database(
    ledger: Ledger,
    check: std::sync::Arc<std::sync::RwLock<Check>>,
    stop: CancellationToken,
) {
    loop {
        let result = match tokio::time::timeout(Duration::from_secs(5), ledger.ping()).await {
            Ok(Ok(())) => Check::ok("connected"),
            Ok(Err(error)) => Check::failing(format!("unreachable: {error}")),
            Err(_) => Check::failing("no answer within 5s"),
        };
        *check
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = result;
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(Duration::from_secs(5)) => {}
        }
    }
}

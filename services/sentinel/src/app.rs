//! The sentinel as a service: API client, broker, poll loop, probes, the read API and
//! listeners.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use steadfast_messaging::{Broker, BrokerConfig, ExchangeSpec, MessagingMetrics, Publisher};
use steadfast_service_kit::http_client::RetryPolicy;
use steadfast_service_kit::probes::{Check, Probes};
use steadfast_service_kit::server::BindError;
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;

use crate::client::{ApiClient, FetchError};
use crate::config::{Config, RunArgs};
use crate::metrics::SentinelMetrics;
use crate::poller::{PollState, Poller};
use steadfast_service_kit::host::{Endpoints, Launch, LoadError};
use steadfast_service_kit::process::invalid_config;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("invalid configuration: {0}")]
    Config(#[from] steadfast_service_kit::config::ConfigError),
    #[error("broker: {0}")]
    Broker(#[from] steadfast_messaging::MessagingError),
    #[error("cannot reach the HyperFleet API at start-up: {0}")]
    Api(#[from] FetchError),
    #[error("HTTP client: {0}")]
    Client(#[from] reqwest::Error),
    #[error(transparent)]
    Bind(#[from] BindError),
    #[error("metrics: {0}")]
    Metrics(#[from] prometheus::Error),
}

/// `sentinel serve`: the configuration and the logging settings (HyperFleet's `log` section
/// and `HYPERFLEET_LOG_*` apply unless `LOG_LEVEL`/`LOG_FORMAT` are given) for the host.
pub fn launch(
    args: &RunArgs,
) -> Result<Launch<Config>, LoadError<steadfast_service_kit::config::ConfigError>> {
    let config = Config::from_args(args).map_err(LoadError::Config)?;
    let telemetry = crate::config::telemetry(args, &config)?;
    Ok(Launch::with_telemetry(
        config,
        telemetry,
        args.common.check_config,
    ))
}

/// `sentinel config-dump`: the merged configuration, as HyperFleet's Sentinel prints it.
pub fn config_dump(args: &RunArgs) -> std::process::ExitCode {
    match Config::from_args(args) {
        Ok(config) => {
            print!("{}", config.dump());
            std::process::ExitCode::SUCCESS
        }
        Err(error) => invalid_config(error),
    }
}

impl steadfast_service_kit::host::Service for Config {
    const NAME: &'static str = "sentinel";
    type CheckError = steadfast_service_kit::config::ConfigError;
    type Error = AppError;

    fn check(&self) -> Result<String, Self::CheckError> {
        self.validate_for_serve()?;
        Ok(String::new())
    }

    async fn serve(self, shutdown: CancellationToken) -> Result<(), AppError> {
        if self.debug_config {
            tracing::info!(config = %self.dump(), "merged configuration");
        }
        App::build(self).await?.run(shutdown).await
    }
}

/// A built sentinel: API reachable, broker connecting, listeners bound.
pub struct App {
    config: Config,
    broker: Broker,
    poller: Poller,
    probes: Probes,
    registry: prometheus::Registry,
    endpoints: Endpoints,
}

impl App {
    /// Builds with HyperFleet's API retry schedule.
    pub async fn build(config: Config) -> Result<Self, AppError> {
        Self::build_with_retry(config, RetryPolicy::default()).await
    }

    /// Builds with another API retry policy (tests shorten HyperFleet's 30 s budget).
    pub async fn build_with_retry(config: Config, policy: RetryPolicy) -> Result<Self, AppError> {
        config.validate_for_serve()?;
        let registry = steadfast_telemetry::metrics::service_registry(
            <Config as steadfast_service_kit::host::Service>::NAME,
            env!("CARGO_PKG_VERSION"),
        );
        let metrics = SentinelMetrics::register(&registry)?;
        metrics.start_at_zero(
            &config.resource_type,
            &config.selector_label(),
            &config.broker.exchange,
        );
        let messaging = MessagingMetrics::register(&registry)?;

        let client = ApiClient::new(
            &config.api,
            &config.name,
            &config.resource_type,
            config.search(),
            policy,
        )?;
        client.verify_connectivity().await?;

        let mut broker_config = BrokerConfig::new(&config.broker.url, &config.name)?;
        broker_config.publish_timeout = Duration::from_secs(10);
        let broker = Broker::start(broker_config, messaging);
        broker
            .declare_exchange(ExchangeSpec::topic(config.broker.exchange.clone()))
            .await?;
        let publisher = Publisher::new(broker.clone());
        let poller = Poller::new(&config, client, publisher, metrics);

        let probes = Probes::new();
        let broker_health = broker.clone();
        probes.readiness("broker", move || broker_health.health().into());
        let state = Arc::clone(&poller.state);
        probes.readiness("sentinel_poll", move || match state.last_success_ms() {
            None => Check::failing("no successful poll completed yet"),
            Some(ms) => Check::ok(format!(
                "last successful poll {}s ago",
                (chrono::Utc::now().timestamp_millis() - ms) / 1000
            )),
        });
        probes.liveness(
            "sentinel_poll",
            dead_mans_switch(Arc::clone(&poller.state), config.poll_interval),
        );

        let endpoints = Endpoints::bind(config.http_listen, config.metrics_listen).await?;
        Ok(Self {
            config,
            broker,
            poller,
            probes,
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

    /// Polls at once, then every poll interval (a cycle longer than the interval is followed
    /// at once by the next), until `shutdown`; then not ready, the cycle in progress is
    /// abandoned, the listeners stop and the broker connection closes.
    pub async fn run(mut self, shutdown: CancellationToken) -> Result<(), AppError> {
        let api = crate::api::router(self.poller.activity.clone(), self.config.api_token.clone());
        let serving = self
            .endpoints
            .serve(api, &self.probes, self.registry.clone());
        tracing::info!(
            name = %self.config.name,
            resource_type = %self.config.resource_type,
            exchange = %self.config.broker.exchange,
            poll_interval_ms = self.config.poll_interval.as_millis() as u64,
            selector = %self.config.selector_label(),
            shard = ?self.config.shard,
            read_api = self.config.api_token.is_some(),
            "sentinel started"
        );
        let mut ticker = tokio::time::interval(self.config.poll_interval);
        ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = ticker.tick() => {}
            }
            tokio::select! {
                _ = self.poller.cycle() => {}
                // As HyperFleet's: the cycle in progress is abandoned. Nothing is lost: the
                // decisions it did not publish are made again by the next sentinel to poll.
                _ = shutdown.cancelled() => {
                    tracing::info!("shutdown during a poll cycle; abandoning the rest of it");
                    break;
                }
            }
        }
        serving.stop().await;
        self.broker.close().await;
        tracing::info!("sentinel stopped");
        Ok(())
    }
}

/// `/healthz`: healthy before the first poll (a grace period) and while the last successful
/// poll is at most 3 poll intervals old; past that, "poll stale" — the loop is stuck and a
/// restart is the cure.
fn dead_mans_switch(state: Arc<PollState>, interval: Duration) -> impl Fn() -> Check + Send + Sync {
    let limit = interval.saturating_mul(3).as_millis() as i64;
    move || match state.last_success_ms() {
        None => Check::ok("no poll completed yet (grace period)"),
        Some(ms) => {
            let age = chrono::Utc::now().timestamp_millis() - ms;
            if age <= limit {
                Check::ok(format!("last successful poll {}s ago", age / 1000))
            } else {
                Check::failing("poll stale")
            }
        }
    }
}

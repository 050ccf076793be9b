//! The stand-in as a service: database pool and migrations, listeners, probes, shutdown.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use sqlx::PgPool;
use steadfast_service_kit::host::Endpoints;
use steadfast_service_kit::probes::{Check, Probes};
use steadfast_service_kit::server::BindError;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::{api, metrics, store};

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("cannot connect to the database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("cannot migrate the database: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error(transparent)]
    Bind(#[from] BindError),
    #[error("metrics: {0}")]
    Metrics(#[from] prometheus::Error),
    #[error("server error: {0}")]
    Serve(#[from] std::io::Error),
}

impl steadfast_service_kit::host::Service for Config {
    const NAME: &'static str = "fleet-api";
    type CheckError = std::convert::Infallible;
    type Error = AppError;

    fn check(&self) -> Result<String, Self::CheckError> {
        Ok(String::new())
    }

    async fn serve(self, shutdown: CancellationToken) -> Result<(), AppError> {
        App::build(self).await?.run(shutdown).await
    }
}

/// `fleet-api seed`: loads a fleet of `clusters` clusters at once (benchmarks, demos).
pub async fn seed(
    config: &Config,
    clusters: u32,
    shards: u32,
    prefix: &str,
    reconciled_ago: Option<Duration>,
) -> std::process::ExitCode {
    let inserted = async {
        let pool = store::connect(&config.database_url, 2).await?;
        let reconciled_at = reconciled_ago.map(|ago| chrono::Utc::now() - ago);
        store::seed_clusters(
            &pool,
            prefix,
            clusters,
            shards,
            reconciled_at,
            &config.required.cluster,
        )
        .await
    };
    match inserted.await {
        Ok(inserted) => {
            println!("inserted {inserted} clusters");
            std::process::ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("error: {error}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// A built service: connected, migrated, listeners bound.
pub struct App {
    config: Config,
    pool: PgPool,
    probes: Probes,
    registry: prometheus::Registry,
    endpoints: Endpoints,
    database_up: Arc<AtomicBool>,
}

impl App {
    pub async fn build(config: Config) -> Result<Self, AppError> {
        let pool = store::connect(&config.database_url, config.max_connections).await?;
        let endpoints = Endpoints::bind(config.http_listen, config.metrics_listen).await?;
        let registry = steadfast_telemetry::metrics::registry();
        let probes = Probes::new();
        let database_up = Arc::new(AtomicBool::new(true));
        let up = Arc::clone(&database_up);
        probes.readiness("database", move || {
            if up.load(Ordering::SeqCst) {
                Check::ok("connected")
            } else {
                Check::failing("the database does not answer")
            }
        });
        Ok(Self {
            config,
            pool,
            probes,
            registry,
            endpoints,
            database_up,
        })
    }

    pub fn http_addr(&self) -> SocketAddr {
        self.endpoints.http_addr()
    }

    pub fn metrics_addr(&self) -> SocketAddr {
        self.endpoints.metrics_addr()
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Serves until `shutdown` is cancelled, then stops being ready and finishes open
    /// requests within the shutdown timeout.
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), AppError> {
        let state = Arc::new(api::ApiState {
            pool: self.pool.clone(),
            required: self.config.required.clone(),
            api_token: self.config.api_token.clone(),
            max_body_bytes: self.config.max_body_bytes,
        });
        let http_metrics = metrics::HttpMetrics::register(&self.registry)?;
        let router = api::router(state).layer(axum::middleware::from_fn_with_state(
            http_metrics,
            metrics::observe,
        ));
        tracing::info!(
            http = %self.http_addr(),
            metrics = %self.metrics_addr(),
            cluster_adapters = ?self.config.required.cluster,
            nodepool_adapters = ?self.config.required.nodepool,
            "fleet-api serving"
        );

        let stop_pinger = CancellationToken::new();
        let pinger = tokio::spawn(ping_database(
            self.pool.clone(),
            Arc::clone(&self.database_up),
            stop_pinger.clone(),
        ));
        let mut serving = self
            .endpoints
            .serve(router, &self.probes, self.registry.clone());

        shutdown.cancelled().await;
        let drained = serving.stop_api(self.config.shutdown_timeout).await;
        serving.stop().await;
        stop_pinger.cancel();
        pinger.abort();
        self.pool.close().await;
        tracing::info!(drained, "fleet-api stopped");
        Ok(())
    }

    /// Runs in the background (tests, embedding); dropping the handle stops it.
    pub fn spawn(self) -> Running {
        let base_url = format!("http://{}", self.http_addr());
        let metrics_url = format!("http://{}", self.metrics_addr());
        let pool = self.pool.clone();
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(self.run(shutdown.clone()));
        Running {
            base_url,
            metrics_url,
            pool,
            shutdown,
            task: Some(task),
        }
    }
}

async fn ping_database(pool: PgPool, up: Arc<AtomicBool>, stop: CancellationToken) {
    loop {
        let ok = tokio::time::timeout(
            Duration::from_secs(2),
            sqlx::query("SELECT 1").execute(&pool),
        )
        .await
        .is_ok_and(|r| r.is_ok());
        if up.swap(ok, Ordering::SeqCst) != ok {
            if ok {
                tracing::info!("database reachable again");
            } else {
                tracing::warn!("database does not answer; not ready");
            }
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_secs(2)) => {}
        }
    }
}

/// A fleet-api running in the background.
pub struct Running {
    base_url: String,
    metrics_url: String,
    pool: PgPool,
    shutdown: CancellationToken,
    task: Option<JoinHandle<Result<(), AppError>>>,
}

impl Running {
    /// `http://127.0.0.1:<port>`.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    pub fn metrics_url(&self) -> &str {
        &self.metrics_url
    }

    /// The service's database pool, to arrange or inspect rows directly.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Stops the service and waits for it.
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

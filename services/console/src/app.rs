//! Wiring: the state every page shares, the router and the order its guards run in.
//!
//! ```text
//! /login, /assets/*                    anyone
//! everything else        authenticate → verify_form (POST: CSRF) → [require_operator] → page
//! ```

use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{HeaderValue, header};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};
use prometheus::Registry;
use steadfast_messaging::admin::management::ManagementApi;
use steadfast_messaging::{Broker, MessagingMetrics};
use steadfast_service_kit::host::Endpoints;
use steadfast_service_kit::http_client::HttpClient;
use steadfast_service_kit::probes::{Check, Probes};
use steadfast_service_kit::server;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::auth::{self, Sessions};
use crate::config::Config;
use crate::metrics::ConsoleMetrics;
use crate::pages::{self, fleet, herder, incidents, login, overview, parked};
use crate::upstream::fleet::{FleetApi, SentinelApi};
use crate::upstream::herder::HerderApi;
use crate::upstream::receiver::ReceiverRate;
use crate::upstream::reconciler::ReconcilerApi;
use crate::upstream::{self, Api};
use crate::{SERVICE, assets};

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("metrics: {0}")]
    Metrics(#[from] prometheus::Error),
    #[error("HTTP client: {0}")]
    HttpClient(#[from] reqwest::Error),
    #[error("sessions: {0}")]
    Sessions(#[from] auth::SessionError),
    #[error("RabbitMQ management API: {0}")]
    Management(#[from] steadfast_messaging::admin::management::ManagementError),
    #[error(transparent)]
    Bind(#[from] server::BindError),
}

impl steadfast_service_kit::host::Service for Config {
    const NAME: &'static str = SERVICE;
    type CheckError = std::convert::Infallible;
    type Error = AppError;

    fn check(&self) -> Result<String, Self::CheckError> {
        Ok(self.summary())
    }

    async fn serve(self, shutdown: CancellationToken) -> Result<(), AppError> {
        App::build(self).await?.run(shutdown).await
    }
}

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub sessions: Sessions,
    pub broker: Broker,
    pub management: ManagementApi,
    pub http: HttpClient,
    pub herder: Option<HerderApi>,
    pub reconciler: Option<ReconcilerApi>,
    pub fleet: Option<FleetApi>,
    pub sentinel: Option<SentinelApi>,
    /// Webhooks per minute and the spool, from the receiver's metrics.
    pub receiver: Option<Arc<ReceiverRate>>,
    pub metrics: ConsoleMetrics,
    /// The overview's live fragment, rendered once per refresh for every viewer.
    pub live: Arc<watch::Sender<Arc<str>>>,
    /// Ends the live-refresh streams, which would otherwise hold graceful shutdown open.
    pub shutdown: CancellationToken,
}

pub struct App {
    state: AppState,
    probes: Probes,
    endpoints: Endpoints,
    registry: Registry,
    redis_check: Arc<RwLock<Check>>,
}

impl App {
    pub async fn build(config: Config) -> Result<Self, AppError> {
        let registry =
            steadfast_telemetry::metrics::service_registry(SERVICE, env!("CARGO_PKG_VERSION"));
        let messaging_metrics = MessagingMetrics::register(&registry)?;
        let metrics = ConsoleMetrics::register(&registry)?;
        let broker = Broker::start(config.broker.clone(), messaging_metrics);
        let sessions = Sessions::connect(
            &config.redis_url,
            config.namespace.as_str(),
            config.auth.session_ttl,
        )
        .await?;
        let management = match &config.management_url {
            Some(url) => ManagementApi::new(url)?,
            None => ManagementApi::from_amqp_url(&config.amqp_url)?,
        };
        let http = upstream::http_client()?;
        let herder = config
            .herder
            .clone()
            .map(|u| HerderApi(Api::new(http.clone(), u)));
        let reconciler = config
            .reconciler
            .clone()
            .map(|u| ReconcilerApi(Api::new(http.clone(), u)));
        let fleet = config
            .fleet
            .clone()
            .map(|u| FleetApi(Api::new(http.clone(), u)));
        let sentinel = config
            .sentinel
            .clone()
            .map(|u| SentinelApi(Api::new(http.clone(), u)));

        let receiver = config
            .receiver_metrics
            .clone()
            .map(|url| Arc::new(ReceiverRate::new(url, http.clone())));

        let probes = Probes::new();
        let health = broker.clone();
        probes.readiness("broker", move || health.health().into());
        let redis_check = Arc::new(RwLock::new(Check::ok("connected")));
        let redis = redis_check.clone();
        probes.readiness("redis", move || {
            redis
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .clone()
        });

        let endpoints = Endpoints::bind(config.http_listen, config.metrics_listen).await?;
        tracing::info!(summary = %config.summary(), http = %endpoints.http_addr(), "console built");
        Ok(Self {
            state: AppState {
                config: Arc::new(config),
                sessions,
                broker,
                management,
                http,
                herder,
                reconciler,
                fleet,
                sentinel,
                receiver,
                metrics,
                live: Arc::new(watch::Sender::new(Arc::from(""))),
                shutdown: CancellationToken::new(),
            },
            probes,
            endpoints,
            registry,
            redis_check,
        })
    }

    pub fn http_addr(&self) -> SocketAddr {
        self.endpoints.http_addr()
    }

    pub fn metrics_addr(&self) -> SocketAddr {
        self.endpoints.metrics_addr()
    }

    /// Serves until `shutdown`: then not ready, live streams ended, open requests answered.
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), AppError> {
        let Self {
            state,
            probes,
            endpoints,
            registry,
            redis_check,
        } = self;
        let watch = tokio::spawn(watch_redis(
            state.sessions.clone(),
            redis_check,
            state.shutdown.clone(),
        ));
        let refresher = tokio::spawn(refresh(state.clone()));
        let mut serving = endpoints.serve(router(state.clone()), &probes, registry);
        shutdown.cancelled().await;
        tracing::info!("console shutting down");
        state.shutdown.cancel();
        serving.stop_api(state.config.shutdown_timeout).await;
        let _ = watch.await;
        let _ = refresher.await;
        state.broker.close().await;
        serving.stop().await;
        Ok(())
    }
}

/// Once per `CONSOLE_REFRESH`: scrapes the receiver (its rate needs readings whether or not a
/// page is open), and, while anyone watches the overview live, reads the overview once and hands
/// the same fragment to every viewer — the upstream calls follow the clock, not the number of
/// open browsers.
async fn refresh(state: AppState) {
    loop {
        if let Some(receiver) = &state.receiver {
            receiver.sample().await;
        }
        if state.live.receiver_count() > 0 {
            let snapshot = overview::Snapshot::read(&state).await;
            state
                .live
                .send_replace(Arc::from(overview::fragment(&snapshot).into_string()));
        }
        tokio::select! {
            () = state.shutdown.cancelled() => return,
            () = tokio::time::sleep(state.config.refresh) => {}
        }
    }
}

/// Keeps the `redis` readiness check current (a probe must not wait on the network).
async fn watch_redis(sessions: Sessions, check: Arc<RwLock<Check>>, stop: CancellationToken) {
    loop {
        let result = match sessions.ping().await {
            Ok(()) => Check::ok("connected"),
            Err(error) => Check::failing(format!("sessions unavailable: {error}")),
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

/// Headers on every answer: no framing (clickjacking), no sniffing, no caching of pages that
/// show live data, and a CSP that allows only our own stylesheet and script.
async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    for (name, value) in [
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
        ),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "same-origin"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    headers
        .entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    response
}

/// `Server-Timing: app;dur=<ms>`: how long the console took to answer, upstream calls included
/// (browsers show it in their network panel; the benchmark reads it).
async fn server_timing(request: Request, next: Next) -> Response {
    let started = std::time::Instant::now();
    let mut response = next.run(request).await;
    let millis = started.elapsed().as_secs_f64() * 1e3;
    if let Ok(value) = HeaderValue::from_str(&format!("app;dur={millis:.3}")) {
        response.headers_mut().insert("server-timing", value);
    }
    response
}

pub fn router(state: AppState) -> Router {
    let public = Router::new()
        .route(
            "/login",
            get(login::page)
                .post(login::submit)
                .layer(DefaultBodyLimit::max(login::MAX_LOGIN_BYTES)),
        )
        .route("/assets/{file}", get(assets::serve))
        // Browsers ask for it on their own; without a route it would redirect to the login page.
        .route(
            "/favicon.ico",
            get(|| async { axum::http::StatusCode::NO_CONTENT }),
        );
    let operator = Router::new()
        .route("/parked/{queue}/replay", post(parked::replay))
        .route("/parked/{queue}/discard", post(parked::discard))
        .route("/herder/pause", post(herder::pause))
        .route("/herder/resume", post(herder::resume))
        .route("/incidents/{id}/approve", post(incidents::approve))
        .route("/incidents/{id}/reject", post(incidents::reject))
        .route("/incidents/{id}/force", post(incidents::force))
        .route_layer(middleware::from_fn(auth::require_operator));
    let signed_in = Router::new()
        .route("/", get(overview::show))
        .route("/live/overview", get(overview::live))
        .route("/incidents", get(incidents::list))
        .route("/incidents/{id}", get(incidents::show))
        .route("/fleet", get(fleet::list))
        .route("/fleet/clusters/{id}", get(fleet::cluster))
        .route("/parked", get(parked::index))
        .route("/parked/{queue}", get(parked::queue))
        .route("/parked/{queue}/message/{id}", get(parked::message))
        .route("/herder", get(herder::show))
        .route("/herder/decisions/{id}", get(herder::decision))
        .route("/logout", post(login::logout))
        .merge(operator)
        .fallback(|| async { pages::not_found("There is no such page in the console.") })
        .layer(middleware::from_fn(auth::verify_form))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            auth::authenticate,
        ));
    public
        .merge(signed_in)
        .layer(middleware::from_fn(security_headers))
        .layer(middleware::from_fn(server_timing))
        .with_state(state)
}

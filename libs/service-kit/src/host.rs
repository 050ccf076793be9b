//! The host every service runs in, so each `main.rs` is a few lines in one fixed order:
//!
//! ```text
//! parse the command line            (the service's `Cli`, in main.rs)
//! load the configuration            (the service's `launch`: files, environment, flags)
//!     → `invalid configuration: …`, exit 78
//! telemetry settings                (part of `Launch`)
//! the service's own checks         → refused: exit 78 (with --check-config or without)
//! --check-config                    → `configuration OK[: summary]`, exit 0
//! install telemetry, then build and run until SIGTERM/SIGINT
//!     → a fatal error is logged once, exit 1; telemetry is flushed either way
//! ```
//!
//! A service implements [`Service`] (usually on its `Config`): a name, what `--check-config`
//! checks beyond loading, and how it builds its `App` and runs it until the shutdown token
//! fires. Tests keep calling `App::build(config)` and `app.run(shutdown)` directly.
//!
//! Inside its `App`, a service binds its two listeners with [`Endpoints::bind`] at build time
//! and serves them with [`Endpoints::serve`]: its API plus `/healthz` and `/readyz` from its
//! [`Probes`], and `/metrics` from its registry. Its shutdown order stays its own, in two calls:
//! [`Serving::stop_api`] (not ready, stop accepting, answer the open requests) where it stops
//! taking work, [`Serving::stop`] last.

use std::fmt::Display;
use std::future::Future;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use axum::Router;
use prometheus::Registry;
use steadfast_telemetry::{TelemetryConfig, TelemetryError};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::probes::{self, Probes};
use crate::process::{config_ok, invalid_config, run_until_signalled};
use crate::server::{self, BindError};
use crate::settings::CommonArgs;
use crate::shutdown;

/// A service as the host sees it.
pub trait Service: Sized {
    /// The name in logs, telemetry and the fatal-error line.
    const NAME: &'static str;
    /// Why `--check-config` refuses the configuration (exit 78).
    type CheckError: Display;
    /// Why the service could not start or stopped with an error (exit 1).
    type Error: Display;

    /// What `--check-config` validates beyond loading (files it reads, cross-field rules), and
    /// the summary it prints after `configuration OK`; empty for none.
    fn check(&self) -> Result<String, Self::CheckError>;

    /// Builds the app (connects, binds its listeners) and runs it until `shutdown` fires.
    fn serve(self, shutdown: CancellationToken) -> impl Future<Output = Result<(), Self::Error>>;
}

/// A loaded service, ready for the host: its configuration, its telemetry settings and
/// whether only `--check-config` was asked for.
pub struct Launch<S> {
    pub service: S,
    pub telemetry: TelemetryConfig,
    pub check_only: bool,
}

impl<S: Service> Launch<S> {
    /// The usual launch, from what the service's configuration loader returned: telemetry and
    /// `--check-config` from the common settings.
    pub fn load<E>(service: Result<S, E>, common: &CommonArgs) -> Result<Self, LoadError<E>> {
        let service = service.map_err(LoadError::Config)?;
        let telemetry = common.telemetry(S::NAME)?;
        Ok(Self::with_telemetry(
            service,
            telemetry,
            common.check_config,
        ))
    }

    /// For a service whose telemetry settings also come from its own files (the sentinel).
    pub fn with_telemetry(service: S, telemetry: TelemetryConfig, check_only: bool) -> Self {
        Self {
            service,
            telemetry,
            check_only,
        }
    }
}

/// Why a service could not be loaded: its configuration (`E`, the service's own error), or
/// the common telemetry settings.
#[derive(Debug)]
pub enum LoadError<E> {
    Config(E),
    Telemetry(TelemetryError),
}

impl<E> From<TelemetryError> for LoadError<E> {
    fn from(error: TelemetryError) -> Self {
        Self::Telemetry(error)
    }
}

impl<E: Display> Display for LoadError<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Config(error) => error.fmt(f),
            Self::Telemetry(error) => error.fmt(f),
        }
    }
}

impl<E: std::error::Error + 'static> std::error::Error for LoadError<E> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Config(error) => error.source(),
            Self::Telemetry(error) => error.source(),
        }
    }
}

/// Runs a loaded service, or reports why it could not be loaded; returns the exit code.
pub async fn run<S, E>(launch: Result<Launch<S>, E>) -> ExitCode
where
    S: Service,
    E: Display,
{
    crate::install_crypto_provider();
    let launch = match launch {
        Ok(launch) => launch,
        Err(error) => return invalid_config(error),
    };
    // The same checks guard serving, so a configuration `--check-config` refuses never starts.
    let summary = match launch.service.check() {
        Ok(summary) => summary,
        Err(error) => return invalid_config(error),
    };
    if launch.check_only {
        return config_ok(summary);
    }
    let service = launch.service;
    run_until_signalled(S::NAME, &launch.telemetry, |shutdown| {
        service.serve(shutdown)
    })
    .await
}

/// The two listeners every service has, bound at build time (so a port conflict fails start-up
/// and tests can bind port 0 and read the real port back): the API with `/healthz` and
/// `/readyz` on `HTTP_LISTEN`, and `/metrics` on `METRICS_LISTEN`.
pub struct Endpoints {
    http: TcpListener,
    metrics: TcpListener,
}

impl Endpoints {
    pub async fn bind(http: SocketAddr, metrics: SocketAddr) -> Result<Self, BindError> {
        Ok(Self {
            http: server::bind(http).await?,
            metrics: server::bind(metrics).await?,
        })
    }

    pub fn http_addr(&self) -> SocketAddr {
        self.http.local_addr().expect("bound listener")
    }

    pub fn metrics_addr(&self) -> SocketAddr {
        self.metrics.local_addr().expect("bound listener")
    }

    /// For a service without an API of its own: only the probes, and `/metrics`.
    pub fn serve_probes(self, probes: &Probes, registry: Registry) -> Serving {
        self.serve(Router::new(), probes, registry)
    }

    /// Starts serving `api` merged with the probes, and the registry's `/metrics`.
    pub fn serve(self, api: Router, probes: &Probes, registry: Registry) -> Serving {
        let stop_api = CancellationToken::new();
        let stop_metrics = CancellationToken::new();
        let api = api.merge(probes::router(probes.clone()));
        Serving {
            probes: probes.clone(),
            api: Some(tokio::spawn(server::serve(
                self.http,
                api,
                stop_api.clone(),
            ))),
            metrics: tokio::spawn(server::serve(
                self.metrics,
                probes::metrics_router(registry),
                stop_metrics.clone(),
            )),
            stop_api,
            stop_metrics,
        }
    }
}

/// Both listeners, serving. The shutdown order stays the service's own: [`Serving::stop_api`]
/// where it stops taking work, [`Serving::stop`] last, so `/metrics` can be scraped until then.
pub struct Serving {
    probes: Probes,
    api: Option<JoinHandle<std::io::Result<()>>>,
    metrics: JoinHandle<std::io::Result<()>>,
    stop_api: CancellationToken,
    stop_metrics: CancellationToken,
}

impl Serving {
    /// Resolves when the API listener stops by itself (an accept error), with its result;
    /// pending forever once the API is stopped. For a `select!` beside the shutdown token.
    pub async fn api_stopped(&mut self) -> std::io::Result<()> {
        let Some(api) = self.api.as_mut() else {
            return std::future::pending().await;
        };
        let result = api.await.unwrap_or(Ok(()));
        self.api = None;
        result
    }

    /// `/readyz` answers 503 from now on; then stops accepting API requests and waits, up to
    /// `within`, for the open ones to be answered. Returns whether they all were.
    pub async fn stop_api(&mut self, within: Duration) -> bool {
        self.probes.begin_shutdown();
        self.stop_api.cancel();
        match self.api.take() {
            Some(api) => {
                shutdown::drain("open requests", within, async {
                    log_failure("API", api.await);
                })
                .await
            }
            None => true,
        }
    }

    /// Not ready, both listeners stopped (open API requests answered first, without a bound:
    /// call [`Serving::stop_api`] before for one).
    pub async fn stop(mut self) {
        self.probes.begin_shutdown();
        self.stop_api.cancel();
        self.stop_metrics.cancel();
        if let Some(api) = self.api.take() {
            log_failure("API", api.await);
        }
        log_failure("metrics", self.metrics.await);
    }
}

fn log_failure(listener: &str, result: Result<std::io::Result<()>, tokio::task::JoinError>) {
    if let Ok(Err(error)) = result {
        tracing::error!(%error, "{listener} listener failed");
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    use super::*;

    struct Probe {
        check: Result<String, String>,
        served: Arc<AtomicBool>,
        outcome: Result<(), String>,
    }

    impl Service for Probe {
        const NAME: &'static str = "probe";
        type CheckError = String;
        type Error = String;

        fn check(&self) -> Result<String, String> {
            self.check.clone()
        }

        async fn serve(self, _shutdown: CancellationToken) -> Result<(), String> {
            self.served.store(true, Ordering::SeqCst);
            self.outcome
        }
    }

    fn launch(probe: Probe, check_only: bool) -> Result<Launch<Probe>, String> {
        let common = <CommonArgs as clap::Args>::augment_args(clap::Command::new("probe"))
            .try_get_matches_from(["probe"])
            .map(|m| <CommonArgs as clap::FromArgMatches>::from_arg_matches(&m).unwrap())
            .unwrap();
        let mut launch =
            Launch::load(Ok::<_, String>(probe), &common).map_err(|e| e.to_string())?;
        launch.check_only = check_only;
        Ok(launch)
    }

    fn probe(check: Result<&str, &str>, outcome: Result<(), &str>) -> (Probe, Arc<AtomicBool>) {
        let served = Arc::new(AtomicBool::new(false));
        let probe = Probe {
            check: check.map(str::to_owned).map_err(str::to_owned),
            served: served.clone(),
            outcome: outcome.map_err(str::to_owned),
        };
        (probe, served)
    }

    #[tokio::test]
    async fn a_config_that_does_not_load_exits_78_without_serving() {
        let code = run::<Probe, _>(Err("no such file `x.yaml`")).await;
        assert_eq!(code, ExitCode::from(crate::EXIT_INVALID_CONFIG));
    }

    #[tokio::test]
    async fn a_config_its_checks_refuse_is_never_served() {
        let (refused, served) = probe(Err("recipes file: bad"), Ok(()));
        assert_eq!(
            run(launch(refused, false)).await,
            ExitCode::from(crate::EXIT_INVALID_CONFIG)
        );
        assert!(!served.load(Ordering::SeqCst));
    }

    #[tokio::test]
    async fn check_config_checks_and_never_serves() {
        let (ok, served) = probe(Ok("3 matchers"), Ok(()));
        assert_eq!(run(launch(ok, true)).await, ExitCode::SUCCESS);
        assert!(!served.load(Ordering::SeqCst));

        let (refused, served) = probe(Err("recipes file: bad"), Ok(()));
        assert_eq!(
            run(launch(refused, true)).await,
            ExitCode::from(crate::EXIT_INVALID_CONFIG)
        );
        assert!(!served.load(Ordering::SeqCst));
    }

    // One serving test only: it installs the process-wide telemetry, which can happen once per
    // process. The clean stop (exit 0) is covered by each service's SIGTERM test of its binary.
    #[tokio::test]
    async fn a_service_that_fails_is_served_once_and_exits_1() {
        let (failing, served) = probe(Ok(""), Err("broker: refused"));
        assert_eq!(run(launch(failing, false)).await, ExitCode::FAILURE);
        assert!(served.load(Ordering::SeqCst));
    }
}

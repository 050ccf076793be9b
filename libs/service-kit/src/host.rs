//! The host every service runs in, so each `main.rs` is a few lines in one fixed order:
//!
//! ```text
//! parse the command line            (the service's `Cli`, in main.rs)
//! load the configuration            (the service's `launch`: files, environment, flags)
//!     → `invalid configuration: …`, exit 78
//! telemetry settings                (part of `Launch`)
//! the service's own checks           → refused: exit 78 (with --check-config or without)
//! --check-config                    → `configuration OK[: summary]`, exit 0
//! install telemetry, then build and run until SIGTERM/SIGINT
//!     → a fatal error is logged once, exit 1; telemetry is flushed either way
//! ```
//!
//! A service implements [`Service`] (usually on its `Config`): a name, what `--check-config`
//! checks beyond loading, and how it builds its `App` and runs it until the shutdown token
//! fires. Tests keep calling `App::build(config)` and `app.run(shutdown)` directly.

use std::fmt::Display;
use std::future::Future;
use std::process::ExitCode;

use steadfast_telemetry::{TelemetryConfig, TelemetryError};
use tokio_util::sync::CancellationToken;

use crate::process::{config_ok, invalid_config, run_until_signalled};
use crate::settings::CommonArgs;

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
    /// The usual launch: telemetry and `--check-config` from the common settings.
    pub fn new(service: S, common: &CommonArgs) -> Result<Self, TelemetryError> {
        Ok(Self::with_telemetry(
            service,
            common.telemetry(S::NAME)?,
            common.check_config,
        ))
    }

    /// The usual launch from what the service's configuration loader returned.
    pub fn load<E>(service: Result<S, E>, common: &CommonArgs) -> Result<Self, LoadError<E>> {
        let service = service.map_err(LoadError::Config)?;
        Ok(Self::new(service, common)?)
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
        let mut launch = Launch::new(probe, &common).map_err(|e| e.to_string())?;
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

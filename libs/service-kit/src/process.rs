//! The tail of every service's `main`: exit codes, logging set-up, run until a signal.
//!
//! Every service answers a bad configuration the same way (`invalid configuration: <reason>` on
//! stderr, exit 78), and runs the same way: install the logger, run until SIGTERM/SIGINT, log a
//! fatal error once, flush telemetry, exit 0 or 1.

use std::fmt::Display;
use std::future::Future;
use std::process::ExitCode;

use steadfast_telemetry::TelemetryConfig;
use tokio_util::sync::CancellationToken;

use crate::{EXIT_INVALID_CONFIG, shutdown};

/// Prints `invalid configuration: <reason>` and returns exit code 78 (`EX_CONFIG`).
pub fn invalid_config(reason: impl Display) -> ExitCode {
    // One write for the whole line: stderr is unbuffered, and container log drivers (podman's)
    // record each write as its own line fragment.
    let line = format!("invalid configuration: {reason}\n");
    let _ = std::io::Write::write_all(&mut std::io::stderr().lock(), line.as_bytes());
    ExitCode::from(EXIT_INVALID_CONFIG)
}

/// For `--check-config`: prints `configuration OK` and the summary, if any (after a colon when
/// it is one line, on the following lines otherwise), and exits 0.
pub fn config_ok(summary: impl Display) -> ExitCode {
    let summary = summary.to_string();
    if summary.is_empty() {
        println!("configuration OK");
    } else if summary.contains('\n') {
        println!("configuration OK\n{summary}");
    } else {
        println!("configuration OK: {summary}");
    }
    ExitCode::SUCCESS
}

/// Installs telemetry, runs `service` with a token cancelled on SIGTERM/SIGINT, logs a fatal
/// error (with its cause chain), flushes telemetry, and returns the exit code.
pub async fn run_until_signalled<F, Fut, E>(
    name: &str,
    telemetry: &TelemetryConfig,
    service: F,
) -> ExitCode
where
    F: FnOnce(CancellationToken) -> Fut,
    Fut: Future<Output = Result<(), E>>,
    E: Display,
{
    let guard = match steadfast_telemetry::init(telemetry) {
        Ok(guard) => guard,
        Err(error) => return invalid_config(error),
    };
    let result = service(shutdown::on_signals()).await;
    let code = match &result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            let error = format!("{error:#}");
            tracing::error!(%error, "{name} stopped with an error");
            ExitCode::FAILURE
        }
    };
    guard.shutdown().await;
    code
}

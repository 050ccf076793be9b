//! Graceful shutdown: SIGTERM or SIGINT cancels a token that every part of a service watches.
//!
//! The order every service follows: not ready → stop intake → drain in-flight work within the
//! deadline → close. A second signal while draining exits at once (exit code 130), for the
//! operator who really means it.

use std::future::Future;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

/// Cancels the returned token on the first SIGTERM/SIGINT; exits the process on the second.
pub fn on_signals() -> CancellationToken {
    let token = CancellationToken::new();
    let trigger = token.clone();
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("shutdown signal received; draining (signal again to exit at once)");
        trigger.cancel();
        wait_for_signal().await;
        tracing::warn!("second shutdown signal; exiting now");
        std::process::exit(130);
    });
    token
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate()).expect("install SIGTERM handler");
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Awaits `work` for at most `deadline`; logs what was cut short. Returns whether it finished.
pub async fn drain(what: &str, deadline: Duration, work: impl Future<Output = ()>) -> bool {
    match tokio::time::timeout(deadline, work).await {
        Ok(()) => true,
        Err(_) => {
            tracing::warn!(
                what,
                deadline_secs = deadline.as_secs_f64(),
                "drain deadline passed; stopping anyway"
            );
            false
        }
    }
}

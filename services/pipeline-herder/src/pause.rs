//! The pause switch: while on, every retry becomes a report (e.g. during an infrastructure
//! outage, when retries would only fail again).
//!
//! The state lives in PostgreSQL, so every replica and every restart sees the same switch.
//! Decisions read it from the database; `/readyz` and the `pipeline_herder_paused` gauge show
//! a copy that is refreshed on every change and every few seconds.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::ledger::{Ledger, LedgerError, PauseState};
use crate::metrics::HerderMetrics;

#[derive(Clone)]
pub struct PauseSwitch {
    ledger: Ledger,
    cached: Arc<RwLock<Option<PauseState>>>,
    metrics: HerderMetrics,
}

const REFRESH: Duration = Duration::from_secs(5);

impl PauseSwitch {
    pub fn new(ledger: Ledger, metrics: HerderMetrics) -> Self {
        Self {
            ledger,
            cached: Arc::new(RwLock::new(None)),
            metrics,
        }
    }

    fn remember(&self, state: &PauseState) {
        self.metrics.paused.set(i64::from(state.paused));
        *self
            .cached
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(state.clone());
    }

    /// The current state, from the database.
    pub async fn state(&self) -> Result<PauseState, LedgerError> {
        let state = self.ledger.pause_state().await?;
        self.remember(&state);
        Ok(state)
    }

    pub async fn is_paused(&self) -> Result<bool, LedgerError> {
        Ok(self.state().await?.paused)
    }

    /// Flips the switch on behalf of `by` (a person's name, or `api`), who gave `reason`.
    pub async fn set(
        &self,
        paused: bool,
        reason: Option<&str>,
        by: &str,
    ) -> Result<PauseState, LedgerError> {
        let state = self.ledger.set_pause(paused, reason, by).await?;
        self.remember(&state);
        let reason = reason.unwrap_or("");
        if paused {
            tracing::info!(by, reason, "paused: retries become reports until resumed");
        } else {
            tracing::info!(by, reason, "resumed: retries are performed again");
        }
        Ok(state)
    }

    /// For `/readyz`: the switch never makes the herder unready, it only says where it is.
    pub fn detail(&self) -> String {
        let cached = self
            .cached
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        match cached {
            None => "unknown yet".into(),
            Some(state) if state.paused => format!(
                "paused since {}{}{}: retries become reports",
                state
                    .since
                    .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                state.by.map(|by| format!(" by {by}")).unwrap_or_default(),
                state.reason.map(|r| format!(" ({r})")).unwrap_or_default()
            ),
            Some(_) => "not paused".into(),
        }
    }

    /// Keeps the cached copy fresh (another replica may flip the switch).
    pub async fn refresh_until(self, shutdown: CancellationToken) {
        loop {
            if let Err(error) = self.state().await {
                tracing::debug!(%error, "cannot read the pause switch");
            }
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(REFRESH) => {}
            }
        }
    }
}

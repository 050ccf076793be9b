//! The drainer: republishes spooled events, oldest first, once the broker is back.
//!
//! Each cycle (every `SPOOL_POLL_INTERVAL`, and at once after something was spooled):
//! 1. apply the migrations if start-up could not (PostgreSQL was down);
//! 2. read depth and age, for `/readyz` and the metrics;
//! 3. if rows wait — ours, another replica's, or from before a restart — enter spool mode, so
//!    new events queue behind them, and, while the broker is connected, drain batches: take the
//!    drain lock, publish the batch pipelined in order, delete the longest confirmed prefix,
//!    record the error of the first unconfirmed row, commit;
//! 4. if the spool is empty, leave spool mode (atomically with respect to appends).
//!
//! Rows after a failed one in the same batch may have been confirmed too; they stay in the
//! spool and are published again with the rest, so a failure costs duplicates (consumers
//! dedupe by event id), never a gap or a skipped event.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use steadfast_service_kit::probes::Check;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::delivery::SpoolGate;
use crate::forward::{Forwarder, Routed};
use crate::metrics::ReceiverMetrics;
use crate::spool::{Spool, SpoolError, SpoolStats};

/// What the receiver last learned about the spool, for `/readyz`.
#[derive(Debug, Clone, PartialEq)]
enum SpoolState {
    Disabled,
    Reachable(SpoolStats),
    /// Not reachable when last tried; `reason` is the last error's text (or "not checked yet").
    Unreachable {
        reason: String,
    },
}

/// Shared between the drainer (which updates it) and the readiness checks (which read it).
#[derive(Debug)]
pub struct SpoolHealth {
    state: Mutex<SpoolState>,
}

impl SpoolHealth {
    pub fn disabled() -> Self {
        Self {
            state: Mutex::new(SpoolState::Disabled),
        }
    }

    pub fn unreachable(reason: impl Into<String>) -> Self {
        Self {
            state: Mutex::new(SpoolState::Unreachable {
                reason: reason.into(),
            }),
        }
    }

    fn set(&self, state: SpoolState) {
        *self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = state;
    }

    fn get(&self) -> SpoolState {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    pub fn record(&self, stats: SpoolStats) {
        self.set(SpoolState::Reachable(stats));
    }

    pub fn record_error(&self, error: &SpoolError) {
        self.set(SpoolState::Unreachable {
            reason: error.to_string(),
        });
    }

    /// Whether events could be spooled now.
    pub fn is_usable(&self) -> bool {
        matches!(self.get(), SpoolState::Reachable(_))
    }

    /// The `spool` readiness check: never the reason the receiver is unready by itself (the
    /// `path` check decides that); its detail is what an operator wants to see.
    pub fn check(&self) -> Check {
        match self.get() {
            SpoolState::Disabled => Check::ok("disabled: DATABASE_URL is not set"),
            SpoolState::Reachable(stats) if stats.depth == 0 => Check::ok("empty"),
            SpoolState::Reachable(stats) => Check::ok(format!(
                "{} events waiting, oldest {:.1}s",
                stats.depth,
                stats.oldest_age.unwrap_or_default().as_secs_f64()
            )),
            SpoolState::Unreachable { reason } => Check::ok(format!("unavailable: {reason}")),
        }
    }

    pub fn depth(&self) -> Option<i64> {
        match self.get() {
            SpoolState::Reachable(stats) => Some(stats.depth),
            _ => None,
        }
    }
}

/// What one drain batch achieved.
enum Batch {
    /// Published and deleted every row of the batch; there may be more.
    Drained,
    /// Another replica holds the drain lock.
    Busy,
    /// The broker did not confirm a row; try again next cycle.
    Stopped,
}

pub struct Drainer {
    pub spool: Spool,
    pub forwarder: Forwarder,
    pub gate: Arc<SpoolGate>,
    pub wake: Arc<Notify>,
    pub health: Arc<SpoolHealth>,
    pub metrics: ReceiverMetrics,
    pub batch: u32,
    pub poll_interval: Duration,
    /// Whether start-up applied the migrations.
    pub migrated: bool,
}

impl Drainer {
    /// Runs until `stop`; a batch in progress finishes first (it is bounded by the publish
    /// deadline), so shutdown never leaves a confirmed row undeleted for long.
    pub async fn run(mut self, stop: CancellationToken) {
        loop {
            self.cycle(&stop).await;
            tokio::select! {
                () = stop.cancelled() => return,
                () = self.wake.notified() => {}
                () = tokio::time::sleep(self.poll_interval) => {}
            }
        }
    }

    async fn cycle(&mut self, stop: &CancellationToken) {
        if !self.migrated {
            match self.spool.migrate().await {
                Ok(()) => {
                    tracing::info!("spool migrations applied");
                    self.migrated = true;
                }
                Err(error) => {
                    self.health.record_error(&error);
                    return;
                }
            }
        }
        loop {
            let stats = match self.spool.stats().await {
                Ok(stats) => stats,
                Err(error) => {
                    tracing::warn!(error = %error, "cannot read the spool");
                    self.health.record_error(&error);
                    return;
                }
            };
            self.health.record(stats);
            self.metrics.spool_depth.set(stats.depth);
            self.metrics
                .spool_oldest_age
                .set(stats.oldest_age.unwrap_or_default().as_secs_f64());
            if stats.depth == 0 {
                self.leave_spool_mode().await;
                return;
            }
            self.gate.enter();
            if stop.is_cancelled() || !self.forwarder.broker().is_connected() {
                return;
            }
            match self.drain_batch().await {
                Ok(Batch::Drained) => {}
                Ok(Batch::Busy | Batch::Stopped) => return,
                Err(error) => {
                    tracing::warn!(error = %error, "spool drain batch failed; nothing was deleted");
                    self.health.record_error(&error);
                    return;
                }
            }
        }
    }

    async fn leave_spool_mode(&self) {
        if !self.gate.is_spooling() {
            return;
        }
        let spool = &self.spool;
        let left = self
            .gate
            .leave_if(async { spool.is_empty().await.unwrap_or(false) })
            .await;
        if left {
            tracing::info!("spool drained; publishing directly again");
        }
    }

    async fn drain_batch(&self) -> Result<Batch, SpoolError> {
        let Some(batch) = self.spool.begin_drain(self.batch).await? else {
            return Ok(Batch::Busy);
        };
        let results = self
            .forwarder
            .publish_in_order(batch.events.iter().map(|spooled| &spooled.event))
            .await;

        let mut confirmed = Vec::with_capacity(batch.events.len());
        let mut failure: Option<(i64, String)> = None;
        let mut published_again = 0;
        for (spooled, result) in batch.events.iter().zip(results) {
            match (result, &failure) {
                (Ok(routed), None) => {
                    confirmed.push(spooled.id);
                    let source = spooled.event.source.as_str();
                    match routed {
                        Routed::Queued => self
                            .metrics
                            .published
                            .with_label_values(&[source, "spool"])
                            .inc(),
                        Routed::Unrouted => {
                            self.metrics.unrouted.with_label_values(&[source]).inc()
                        }
                    }
                }
                (Ok(_), Some(_)) => published_again += 1,
                (Err(error), None) => {
                    tracing::warn!(
                        event_id = spooled.event.id(),
                        routing_key = %spooled.event.routing_key,
                        attempts = spooled.attempts + 1,
                        error = %error,
                        "broker did not confirm a spooled event; draining stops here until the next cycle"
                    );
                    failure = Some((spooled.id, error.to_string()));
                }
                (Err(_), Some(_)) => {}
            }
        }
        let drained = confirmed.len();
        let stopped = failure.is_some();
        batch.finish(&confirmed, failure).await?;
        if drained > 0 {
            tracing::info!(events = drained, "republished spooled events");
        }
        if stopped {
            self.metrics.drain_failures.inc();
            if published_again > 0 {
                tracing::info!(
                    events = published_again,
                    "events after the unconfirmed one were confirmed and will be published again"
                );
            }
            return Ok(Batch::Stopped);
        }
        Ok(Batch::Drained)
    }
}

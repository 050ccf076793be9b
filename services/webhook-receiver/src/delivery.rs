//! Making a request's events durable: broker confirm, else spool, else 503.
//!
//! Paths, in order:
//! 1. **Behind the spool.** While spooled events wait, new events are appended to the spool
//!    too, so they cannot overtake older ones: the receiver keeps one arrival order for all
//!    events, which is stronger than per-project order and needs no per-project bookkeeping.
//!    The drainer leaves this mode only when it finds the spool empty while holding the
//!    [`SpoolGate`] exclusively, so no append can slip in between "empty" and "direct".
//! 2. **Broker down.** With no connection, events go to the spool at once instead of waiting
//!    out the publish deadline.
//! 3. **Direct.** Publish with confirms (pipelined, in order); events the broker does not
//!    confirm within the deadline go to the spool.
//!
//! If the spool is unavailable (no `DATABASE_URL`, PostgreSQL down) events are published
//! directly even in mode 1 — availability over order, logged — and only when neither path
//! takes an event is the answer 503.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use steadfast_messaging::PublishError;
use tokio::sync::{Notify, RwLock};
use tokio::time::Instant;

use crate::event::OutgoingEvent;
use crate::forward::{Forwarder, Routed};
use crate::metrics::ReceiverMetrics;
use crate::spool::{Spool, SpoolError, SpoolReason};

/// What happened to one event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Confirmed by the broker and routed to at least one queue.
    Published,
    /// Confirmed by the broker, on the unrouted queue (no queue bound for its key).
    Unrouted,
    /// Committed to the spool; the drainer publishes it later.
    Spooled,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Published => "published",
            Self::Unrouted => "unrouted",
            Self::Spooled => "spooled",
        }
    }
}

/// Neither the broker nor the spool took an event: the request is answered 503.
#[derive(Debug, thiserror::Error)]
#[error("the broker did not take the event ({broker}) and the spool could not either ({spool})")]
pub struct Undeliverable {
    /// Why the first unconfirmed event was not confirmed.
    pub broker: PublishError,
    pub spool: SpoolUnavailable,
}

/// Why the spool could not take events the broker did not confirm.
#[derive(Debug, thiserror::Error)]
pub enum SpoolUnavailable {
    #[error("disabled: DATABASE_URL is not set")]
    Disabled,
    #[error(transparent)]
    Failed(#[from] SpoolError),
}

/// Whether new events must queue up behind spooled ones, and the lock that makes leaving that
/// mode atomic with respect to appends.
#[derive(Default)]
pub struct SpoolGate {
    spooling: AtomicBool,
    lock: RwLock<()>,
}

impl SpoolGate {
    pub fn is_spooling(&self) -> bool {
        self.spooling.load(Ordering::SeqCst)
    }

    /// Events are (or may be) waiting in the spool: new events go behind them.
    pub fn enter(&self) {
        self.spooling.store(true, Ordering::SeqCst);
    }

    /// Leaves spool mode if `still_empty` confirms the spool is empty while no append can run.
    pub async fn leave_if<F: Future<Output = bool>>(&self, still_empty: F) -> bool {
        let _exclusive = self.lock.write().await;
        if still_empty.await {
            self.spooling.store(false, Ordering::SeqCst);
            true
        } else {
            false
        }
    }
}

/// The durable path of every intake.
#[derive(Clone)]
pub struct Delivery {
    forwarder: Forwarder,
    spool: Option<Spool>,
    gate: Arc<SpoolGate>,
    /// Wakes the drainer when something was spooled.
    drainer: Arc<Notify>,
    metrics: ReceiverMetrics,
}

impl Delivery {
    pub fn new(
        forwarder: Forwarder,
        spool: Option<Spool>,
        gate: Arc<SpoolGate>,
        drainer: Arc<Notify>,
        metrics: ReceiverMetrics,
    ) -> Self {
        Self {
            forwarder,
            spool,
            gate,
            drainer,
            metrics,
        }
    }

    /// Makes every event durable and says how; `Err` only when some event could be neither
    /// published nor spooled.
    pub async fn deliver(&self, events: &[OutgoingEvent]) -> Result<Vec<Outcome>, Undeliverable> {
        let started = Instant::now();
        if let Some(spool) = &self.spool {
            let reason = if self.gate.is_spooling() {
                Some(SpoolReason::BehindSpool)
            } else if !self.forwarder.broker().is_connected() {
                Some(SpoolReason::BrokerDown)
            } else {
                None
            };
            if let Some(reason) = reason {
                let all: Vec<&OutgoingEvent> = events.iter().collect();
                match self.spool_events(spool, &all, reason).await {
                    Ok(()) => {
                        self.observe("spool", started);
                        return Ok(vec![Outcome::Spooled; events.len()]);
                    }
                    Err(error) => tracing::warn!(
                        error = %error,
                        reason = reason.as_str(),
                        "cannot spool; publishing directly (these events may overtake spooled ones)"
                    ),
                }
            }
        }

        let results = self.forwarder.publish_in_order(events).await;
        let mut outcomes = Vec::with_capacity(events.len());
        let mut failed: Vec<(usize, PublishError)> = Vec::new();
        for (index, result) in results.into_iter().enumerate() {
            match result {
                Ok(Routed::Queued) => {
                    self.count_published(&events[index]);
                    outcomes.push(Outcome::Published);
                }
                Ok(Routed::Unrouted) => {
                    self.metrics
                        .unrouted
                        .with_label_values(&[&events[index].source])
                        .inc();
                    outcomes.push(Outcome::Unrouted);
                }
                Err(error) => {
                    outcomes.push(Outcome::Spooled);
                    failed.push((index, error));
                }
            }
        }
        if failed.is_empty() {
            self.observe("broker", started);
            return Ok(outcomes);
        }

        let unconfirmed: Vec<&OutgoingEvent> = failed.iter().map(|(i, _)| &events[*i]).collect();
        let broker_error = failed.swap_remove(0).1;
        let Some(spool) = &self.spool else {
            return Err(Undeliverable {
                broker: broker_error,
                spool: SpoolUnavailable::Disabled,
            });
        };
        match self
            .spool_events(spool, &unconfirmed, SpoolReason::BrokerError)
            .await
        {
            Ok(()) => {
                tracing::warn!(error = %broker_error, events = unconfirmed.len(), "broker did not confirm; events spooled");
                self.observe("spool", started);
                Ok(outcomes)
            }
            Err(error) => Err(Undeliverable {
                broker: broker_error,
                spool: error.into(),
            }),
        }
    }

    /// Appends under the shared side of the gate and enters spool mode before releasing it,
    /// so the drainer's "empty" check either sees these rows or happens before the append.
    async fn spool_events(
        &self,
        spool: &Spool,
        events: &[&OutgoingEvent],
        reason: SpoolReason,
    ) -> Result<(), SpoolError> {
        let _shared = self.gate.lock.read().await;
        // Boxed: sqlx's transaction future is tens of KiB, and inlined it would make every
        // delivery future that large, copied on each spawn even when nothing is spooled.
        Box::pin(spool.append(events, reason)).await?;
        self.gate.enter();
        drop(_shared);
        for event in events {
            self.metrics
                .spooled
                .with_label_values(&[&event.source, reason.as_str()])
                .inc();
        }
        self.drainer.notify_one();
        Ok(())
    }

    fn count_published(&self, event: &OutgoingEvent) {
        self.metrics
            .published
            .with_label_values(&[&event.source, "direct"])
            .inc();
    }

    fn observe(&self, path: &str, started: Instant) {
        self.metrics
            .delivery_histogram(path)
            .observe(started.elapsed().as_secs_f64());
    }
}

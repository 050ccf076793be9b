//! The receiver's Prometheus metrics (the messaging layer adds its own `steadfast_*` ones).
//!
//! * `webhook_receiver_requests_total{source,status}` — every answered request;
//! * `webhook_receiver_requests_in_flight` — requests being handled now;
//! * `webhook_receiver_events_published_total{source,path}` — confirmed by the broker, either
//!   at once (`path="direct"`) or by the drainer (`path="spool"`);
//! * `webhook_receiver_events_unrouted_total{source}` — confirmed, but no queue was bound for
//!   the routing key, so they went to the unrouted queue;
//! * `webhook_receiver_events_spooled_total{source,reason}` — written to the spool;
//! * `webhook_receiver_spool_depth`, `webhook_receiver_spool_oldest_age_seconds`;
//! * `webhook_receiver_spool_drain_failures_total` — drain batches that stopped at an error;
//! * `webhook_receiver_delivery_duration_seconds{path}` — from a request's last byte to its
//!   events being durable (broker confirm, or spool commit).

use prometheus::{
    Gauge, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts,
    Registry,
};

use crate::spool::SpoolReason;

/// The `source` label of the two built-in endpoints (generic hooks are named by their config).
const BUILT_IN_SOURCES: [&str; 2] = ["gitlab", "alertmanager"];

/// From sub-millisecond confirms to the publish deadline plus a spool write.
const DELIVERY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 8.0,
];

#[derive(Clone)]
pub struct ReceiverMetrics {
    pub requests: IntCounterVec,
    pub in_flight: IntGauge,
    pub published: IntCounterVec,
    pub unrouted: IntCounterVec,
    pub spooled: IntCounterVec,
    pub spool_depth: IntGauge,
    pub spool_oldest_age: Gauge,
    pub drain_failures: IntCounter,
    pub delivery_duration: HistogramVec,
}

impl ReceiverMetrics {
    pub fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let metrics = Self {
            requests: IntCounterVec::new(
                Opts::new(
                    "webhook_receiver_requests_total",
                    "Webhook requests answered, by source and HTTP status.",
                ),
                &["source", "status"],
            )?,
            in_flight: IntGauge::new(
                "webhook_receiver_requests_in_flight",
                "Webhook requests being handled now.",
            )?,
            published: IntCounterVec::new(
                Opts::new(
                    "webhook_receiver_events_published_total",
                    "Events confirmed by the broker, by source and path (direct or spool).",
                ),
                &["source", "path"],
            )?,
            unrouted: IntCounterVec::new(
                Opts::new(
                    "webhook_receiver_events_unrouted_total",
                    "Events no queue was bound for, kept on the unrouted queue, by source.",
                ),
                &["source"],
            )?,
            spooled: IntCounterVec::new(
                Opts::new(
                    "webhook_receiver_events_spooled_total",
                    "Events written to the PostgreSQL spool, by source and reason.",
                ),
                &["source", "reason"],
            )?,
            spool_depth: IntGauge::new(
                "webhook_receiver_spool_depth",
                "Events waiting in the spool at the last check.",
            )?,
            spool_oldest_age: Gauge::new(
                "webhook_receiver_spool_oldest_age_seconds",
                "Age of the oldest spooled event at the last check (0 when empty).",
            )?,
            drain_failures: IntCounter::new(
                "webhook_receiver_spool_drain_failures_total",
                "Drain batches that stopped because the broker did not confirm an event.",
            )?,
            delivery_duration: HistogramVec::new(
                HistogramOpts::new(
                    "webhook_receiver_delivery_duration_seconds",
                    "Time from a request's body to its events being durable, by path (broker or spool).",
                )
                .buckets(DELIVERY_BUCKETS.to_vec()),
                &["path"],
            )?,
        };
        registry.register(Box::new(metrics.requests.clone()))?;
        registry.register(Box::new(metrics.in_flight.clone()))?;
        registry.register(Box::new(metrics.published.clone()))?;
        registry.register(Box::new(metrics.unrouted.clone()))?;
        registry.register(Box::new(metrics.spooled.clone()))?;
        registry.register(Box::new(metrics.spool_depth.clone()))?;
        registry.register(Box::new(metrics.spool_oldest_age.clone()))?;
        registry.register(Box::new(metrics.drain_failures.clone()))?;
        registry.register(Box::new(metrics.delivery_duration.clone()))?;
        metrics.start_at_zero();
        Ok(metrics)
    }

    /// Creates the series of the built-in sources at zero. Why: a counter that first appears
    /// at 1 has no earlier sample, so `increase(...) > 0` misses the first spooled or unrouted
    /// event after a restart, and dashboards show "No data" where 0 is the answer.
    fn start_at_zero(&self) {
        for source in BUILT_IN_SOURCES {
            for path in ["direct", "spool"] {
                self.published.with_label_values(&[source, path]);
            }
            self.unrouted.with_label_values(&[source]);
            for reason in SpoolReason::ALL {
                self.spooled.with_label_values(&[source, reason.as_str()]);
            }
        }
        for path in ["broker", "spool"] {
            self.delivery_duration.with_label_values(&[path]);
        }
    }

    pub fn delivery_histogram(&self, path: &str) -> Histogram {
        self.delivery_duration.with_label_values(&[path])
    }

    /// Counts a request as in flight until the guard is dropped.
    pub fn track_request(&self) -> InFlight {
        self.in_flight.inc();
        InFlight(self.in_flight.clone())
    }
}

/// Decrements `webhook_receiver_requests_in_flight` when the request is answered (or dropped).
pub struct InFlight(IntGauge);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.dec();
    }
}

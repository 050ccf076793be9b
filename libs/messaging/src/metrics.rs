//! Prometheus metrics of the messaging layer, registered into the service's registry.

use prometheus::{
    Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts, Registry,
};

use crate::topology::{QueueSpec, delay_label};

/// Handler durations span milliseconds to the broker's consumer timeout; CKI extended its
/// buckets "logarithmically to 1 hour" for slow triage handlers.
const HANDLER_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0,
];
const CONFIRM_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The `outcome` label values of `steadfast_messages_consumed_total`.
pub const CONSUME_OUTCOMES: [&str; 4] = ["done", "retry", "park", "undecodable"];
/// The `reason` label values of `steadfast_messages_parked_total`.
pub const PARK_REASONS: [&str; 3] = ["undecodable", "exhausted", "permanent"];
/// The `reason` label values of `steadfast_publish_failures_total` (the publisher's
/// `failure_label`).
pub const PUBLISH_FAILURE_REASONS: [&str; 6] = [
    "unroutable",
    "nacked",
    "refused",
    "timeout",
    "invalid",
    "closed",
];

/// Every messaging metric; cheap to clone (the collectors are reference counted).
#[derive(Clone)]
pub struct MessagingMetrics {
    pub published: IntCounterVec,
    pub publish_failures: IntCounterVec,
    pub confirm_latency: Histogram,
    pub consumed: IntCounterVec,
    pub retried: IntCounterVec,
    pub parked: IntCounterVec,
    pub delayed: IntCounterVec,
    pub handler_duration: HistogramVec,
    pub reconnects: IntCounter,
    pub connected: IntGauge,
}

impl MessagingMetrics {
    /// Creates the metrics and registers them; registering twice into one registry fails.
    pub fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let metrics = Self::unregistered()?;
        registry.register(Box::new(metrics.published.clone()))?;
        registry.register(Box::new(metrics.publish_failures.clone()))?;
        registry.register(Box::new(metrics.confirm_latency.clone()))?;
        registry.register(Box::new(metrics.consumed.clone()))?;
        registry.register(Box::new(metrics.retried.clone()))?;
        registry.register(Box::new(metrics.parked.clone()))?;
        registry.register(Box::new(metrics.delayed.clone()))?;
        registry.register(Box::new(metrics.handler_duration.clone()))?;
        registry.register(Box::new(metrics.reconnects.clone()))?;
        registry.register(Box::new(metrics.connected.clone()))?;
        for reason in PUBLISH_FAILURE_REASONS {
            metrics.publish_failures.with_label_values(&[reason]);
        }
        Ok(metrics)
    }

    /// Creates the series of `queue` at zero, when its consumer starts. Why: a counter series
    /// that first appears at 1 has no earlier sample, so `increase(...) > 0` (the parked-message
    /// alert) misses the first message parked after a restart, and dashboards show "No data"
    /// instead of 0.
    pub fn prepare_queue(&self, spec: &QueueSpec) {
        let queue = spec.name.as_str();
        for delay in &spec.retry.delays {
            self.retried
                .with_label_values(&[queue, &delay_label(*delay)]);
        }
        for outcome in CONSUME_OUTCOMES {
            self.consumed.with_label_values(&[queue, outcome]);
        }
        for reason in PARK_REASONS {
            self.parked.with_label_values(&[queue, reason]);
        }
        self.handler_duration.with_label_values(&[queue]);
    }

    /// Metrics that are counted but exported nowhere, for tools such as `steadfastctl`.
    pub fn unregistered() -> Result<Self, prometheus::Error> {
        Ok(Self {
            published: IntCounterVec::new(
                Opts::new(
                    "steadfast_messages_published_total",
                    "Messages published and confirmed by the broker, by exchange.",
                ),
                &["exchange"],
            )?,
            publish_failures: IntCounterVec::new(
                Opts::new(
                    "steadfast_publish_failures_total",
                    "Publishes that ended without a broker confirm, by reason.",
                ),
                &["reason"],
            )?,
            confirm_latency: Histogram::with_opts(
                HistogramOpts::new(
                    "steadfast_publish_confirm_seconds",
                    "Time from publish to broker confirm.",
                )
                .buckets(CONFIRM_BUCKETS.to_vec()),
            )?,
            consumed: IntCounterVec::new(
                Opts::new(
                    "steadfast_messages_consumed_total",
                    "Messages consumed, by queue and outcome (done, retry, park, undecodable).",
                ),
                &["queue", "outcome"],
            )?,
            retried: IntCounterVec::new(
                Opts::new(
                    "steadfast_messages_retried_total",
                    "Messages sent to a retry tier, by queue and tier delay.",
                ),
                &["queue", "tier"],
            )?,
            parked: IntCounterVec::new(
                Opts::new(
                    "steadfast_messages_parked_total",
                    "Messages moved to the parking lot, by queue and reason.",
                ),
                &["queue", "reason"],
            )?,
            delayed: IntCounterVec::new(
                Opts::new(
                    "steadfast_messages_delayed_total",
                    "Messages scheduled with publish_delayed, by target queue.",
                ),
                &["queue"],
            )?,
            handler_duration: HistogramVec::new(
                HistogramOpts::new(
                    "steadfast_handler_duration_seconds",
                    "Time a handler took for one message, by queue.",
                )
                .buckets(HANDLER_BUCKETS.to_vec()),
                &["queue"],
            )?,
            reconnects: IntCounter::new(
                "steadfast_broker_reconnects_total",
                "Broker connections re-established after a loss.",
            )?,
            connected: IntGauge::new(
                "steadfast_broker_connected",
                "1 while connected to the broker, 0 otherwise.",
            )?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topology::RetryPolicy;

    fn render(registry: &Registry) -> String {
        use prometheus::Encoder as _;
        let mut out = Vec::new();
        prometheus::TextEncoder::new()
            .encode(&registry.gather(), &mut out)
            .unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn a_prepared_queue_and_every_publish_failure_reason_start_at_zero() {
        let registry = Registry::new();
        let metrics = MessagingMetrics::register(&registry).unwrap();
        let spec = QueueSpec::new("ns.herder.jobs").with_retry(RetryPolicy {
            delays: vec![std::time::Duration::from_secs(30)],
            max_attempts: Some(3),
        });
        metrics.prepare_queue(&spec);
        let text = render(&registry);
        for expected in [
            r#"steadfast_messages_consumed_total{outcome="undecodable",queue="ns.herder.jobs"} 0"#,
            r#"steadfast_messages_parked_total{queue="ns.herder.jobs",reason="exhausted"} 0"#,
            r#"steadfast_handler_duration_seconds_count{queue="ns.herder.jobs"} 0"#,
            r#"steadfast_messages_retried_total{queue="ns.herder.jobs",tier="30s"} 0"#,
            r#"steadfast_publish_failures_total{reason="unroutable"} 0"#,
        ] {
            assert!(text.contains(expected), "{expected} missing from:\n{text}");
        }
    }
}

//! HyperFleet Sentinel's metrics, with its names, labels and buckets, so its dashboards and
//! alerts work unchanged: `hyperfleet_sentinel_*` with constant labels `component="sentinel"`
//! and `version`, and the broker library's `hyperfleet_broker_*`.

use crate::decision::REASON_FAILED;
use prometheus::{Gauge, GaugeVec, HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry};

#[derive(Clone)]
pub struct SentinelMetrics {
    pub pending_resources: GaugeVec,
    pub events_published: IntCounterVec,
    pub resources_skipped: IntCounterVec,
    pub poll_duration: HistogramVec,
    pub api_errors: IntCounterVec,
    pub broker_errors: IntCounterVec,
    pub last_successful_poll: Gauge,
    pub broker_published: IntCounterVec,
    pub broker_failures: IntCounterVec,
}

fn opts(name: &str, help: &str) -> Opts {
    Opts::new(name, help)
        .const_label("component", "sentinel")
        .const_label("version", env!("CARGO_PKG_VERSION"))
}

impl SentinelMetrics {
    pub fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        const BASE: [&str; 2] = ["resource_type", "resource_selector"];
        let metrics = Self {
            pending_resources: GaugeVec::new(
                opts(
                    "hyperfleet_sentinel_pending_resources",
                    "Resources the last poll cycle decided to publish an event for.",
                ),
                &BASE,
            )?,
            events_published: IntCounterVec::new(
                opts(
                    "hyperfleet_sentinel_events_published_total",
                    "Reconcile events published.",
                ),
                &["resource_type", "resource_selector", "reason"],
            )?,
            resources_skipped: IntCounterVec::new(
                opts(
                    "hyperfleet_sentinel_resources_skipped_total",
                    "Resources evaluated without publishing, by reason.",
                ),
                &["resource_type", "resource_selector", "reason"],
            )?,
            poll_duration: HistogramVec::new(
                HistogramOpts::from(opts(
                    "hyperfleet_sentinel_poll_duration_seconds",
                    "Duration of a complete poll cycle.",
                ))
                .buckets(prometheus::DEFAULT_BUCKETS.to_vec()),
                &BASE,
            )?,
            api_errors: IntCounterVec::new(
                opts(
                    "hyperfleet_sentinel_api_errors_total",
                    "Poll cycles ended by an API error.",
                ),
                &["resource_type", "resource_selector", "error_type"],
            )?,
            broker_errors: IntCounterVec::new(
                opts(
                    "hyperfleet_sentinel_broker_errors_total",
                    "Events that could not be published.",
                ),
                &["resource_type", "resource_selector", "error_type"],
            )?,
            last_successful_poll: Gauge::with_opts(opts(
                "hyperfleet_sentinel_last_successful_poll_timestamp_seconds",
                "Unix time of the last poll cycle that completed.",
            ))?,
            broker_published: IntCounterVec::new(
                Opts::new(
                    "hyperfleet_broker_messages_published_total",
                    "Messages the broker confirmed.",
                )
                .const_label("component", "sentinel")
                .const_label("version", env!("CARGO_PKG_VERSION")),
                &["topic"],
            )?,
            broker_failures: IntCounterVec::new(
                Opts::new("hyperfleet_broker_errors_total", "Broker failures.")
                    .const_label("component", "sentinel")
                    .const_label("version", env!("CARGO_PKG_VERSION")),
                &["topic", "error_type"],
            )?,
        };
        registry.register(Box::new(metrics.pending_resources.clone()))?;
        registry.register(Box::new(metrics.events_published.clone()))?;
        registry.register(Box::new(metrics.resources_skipped.clone()))?;
        registry.register(Box::new(metrics.poll_duration.clone()))?;
        registry.register(Box::new(metrics.api_errors.clone()))?;
        registry.register(Box::new(metrics.broker_errors.clone()))?;
        registry.register(Box::new(metrics.last_successful_poll.clone()))?;
        registry.register(Box::new(metrics.broker_published.clone()))?;
        registry.register(Box::new(metrics.broker_failures.clone()))?;
        Ok(metrics)
    }

    /// Creates the error and skip series of this sentinel's resource type at zero. Why: a
    /// counter that first appears at 1 has no earlier sample, so a rate or increase over it
    /// stays empty until the second error, and dashboards show "No data" where 0 is the answer.
    pub fn start_at_zero(&self, resource_type: &str, selector: &str, topic: &str) {
        for error_type in ["publish_error", "unroutable"] {
            self.broker_errors
                .with_label_values(&[resource_type, selector, error_type]);
        }
        self.broker_failures.with_label_values(&[topic, "publish"]);
        for error_type in ["fetch_error", "auth_error"] {
            self.api_errors
                .with_label_values(&[resource_type, selector, error_type]);
        }
        self.resources_skipped
            .with_label_values(&[resource_type, selector, REASON_FAILED]);
        self.broker_published.with_label_values(&[topic]);
    }
}

//! HyperFleet's adapter metrics, same names and labels, so its dashboards and alerts work:
//! `hyperfleet_adapter_{up,build_info,events_processed_total,event_processing_duration_seconds,
//! errors_total,resources_deleted_total,resource_deletion_duration_seconds,
//! resource_deletions_in_progress}` and the broker's `hyperfleet_broker_*` consumer series.
//! Ours on top: `hyperfleet_adapter_event_outcomes_total{outcome=ack|retry|park|duplicate}`,
//! what HyperFleet's always-ack adapter has no need for (`duplicate`: acked without running,
//! crate::coalesce).

use std::time::Duration;

use prometheus::{
    Gauge, GaugeVec, Histogram, HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts,
    Registry,
};

const BUCKETS: [f64; 9] = [0.1, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0];

#[derive(Clone)]
pub struct Metrics {
    pub up: Gauge,
    events: IntCounterVec,
    duration: Histogram,
    errors: IntCounterVec,
    deleted: IntCounterVec,
    deletion_duration: HistogramVec,
    deletions_in_progress: IntGaugeVec,
    outcomes: IntCounterVec,
    broker_consumed: IntCounterVec,
    broker_errors: IntCounterVec,
    broker_duration: HistogramVec,
    topic: String,
}

fn labels(opts: Opts, version: &str, adapter: Option<&str>) -> Opts {
    let opts = opts
        .const_label("component", "adapter")
        .const_label("version", version);
    match adapter {
        Some(name) => opts.const_label("adapter_name", name),
        None => opts,
    }
}

impl Metrics {
    pub fn register(
        registry: &Registry,
        adapter_name: &str,
        topic: &str,
    ) -> Result<Self, prometheus::Error> {
        let version = env!("CARGO_PKG_VERSION");
        let name = Some(adapter_name);
        let build_info = GaugeVec::new(
            labels(
                Opts::new(
                    "hyperfleet_adapter_build_info",
                    "Build information; always 1.",
                ),
                version,
                None,
            ),
            &["commit"],
        )?;
        build_info
            .with_label_values(&[option_env!("STEADFAST_COMMIT").unwrap_or("unknown")])
            .set(1.0);
        let up = Gauge::with_opts(labels(
            Opts::new(
                "hyperfleet_adapter_up",
                "1 while the adapter runs, 0 once it shuts down.",
            ),
            version,
            None,
        ))?;
        let events = IntCounterVec::new(
            labels(
                Opts::new(
                    "hyperfleet_adapter_events_processed_total",
                    "Events processed, by status: success, failed, skipped.",
                ),
                version,
                name,
            ),
            &["status"],
        )?;
        let duration = Histogram::with_opts(
            HistogramOpts::from(labels(
                Opts::new(
                    "hyperfleet_adapter_event_processing_duration_seconds",
                    "Time to process one event.",
                ),
                version,
                name,
            ))
            .buckets(BUCKETS.to_vec()),
        )?;
        let errors = IntCounterVec::new(
            labels(
                Opts::new(
                    "hyperfleet_adapter_errors_total",
                    "Failed events by phase: param_extraction, preconditions, resources, post_actions.",
                ),
                version,
                name,
            ),
            &["error_type"],
        )?;
        let deleted = IntCounterVec::new(
            labels(
                Opts::new(
                    "hyperfleet_adapter_resources_deleted_total",
                    "Resource deletions by Kubernetes kind and status (success, error).",
                ),
                version,
                name,
            ),
            &["resource_type", "status"],
        )?;
        let deletion_duration = HistogramVec::new(
            HistogramOpts::from(labels(
                Opts::new(
                    "hyperfleet_adapter_resource_deletion_duration_seconds",
                    "Time to delete one resource.",
                ),
                version,
                name,
            ))
            .buckets(BUCKETS.to_vec()),
            &["resource_type"],
        )?;
        let deletions_in_progress = IntGaugeVec::new(
            labels(
                Opts::new(
                    "hyperfleet_adapter_resource_deletions_in_progress",
                    "Deletions under way.",
                ),
                version,
                name,
            ),
            &["resource_type"],
        )?;
        let outcomes = IntCounterVec::new(
            labels(
                Opts::new(
                    "hyperfleet_adapter_event_outcomes_total",
                    "What happened to each message: ack, retry (through a retry tier), park, or duplicate (acked without running: a reconcile that started after it was published covered it).",
                ),
                version,
                name,
            ),
            &["outcome"],
        )?;
        let broker = |n: &str, help: &str| {
            Opts::new(n, help)
                .const_label("component", adapter_name)
                .const_label("version", version)
        };
        let broker_consumed = IntCounterVec::new(
            broker(
                "hyperfleet_broker_messages_consumed_total",
                "Messages consumed.",
            ),
            &["topic"],
        )?;
        let broker_errors = IntCounterVec::new(
            broker(
                "hyperfleet_broker_errors_total",
                "Broker-side errors by type.",
            ),
            &["topic", "error_type"],
        )?;
        let broker_duration = HistogramVec::new(
            HistogramOpts::from(broker(
                "hyperfleet_broker_message_duration_seconds",
                "Time to handle one message.",
            ))
            .buckets(BUCKETS.to_vec()),
            &["topic"],
        )?;
        for collector in [
            Box::new(build_info) as Box<dyn prometheus::core::Collector>,
            Box::new(up.clone()),
            Box::new(events.clone()),
            Box::new(duration.clone()),
            Box::new(errors.clone()),
            Box::new(deleted.clone()),
            Box::new(deletion_duration.clone()),
            Box::new(deletions_in_progress.clone()),
            Box::new(outcomes.clone()),
            Box::new(broker_consumed.clone()),
            Box::new(broker_errors.clone()),
            Box::new(broker_duration.clone()),
        ] {
            registry.register(collector)?;
        }
        // Every series with a known label set starts at zero. Why: a counter that first
        // appears at 1 has no earlier sample, so a rate or increase over it stays empty until
        // the second failure, and dashboards show "No data" where 0 is the answer.
        for status in ["success", "failed", "skipped"] {
            events.with_label_values(&[status]);
        }
        for phase in crate::pipeline::result::Phase::ALL {
            errors.with_label_values(&[phase.as_str()]);
        }
        for outcome in ["ack", "retry", "park", "duplicate"] {
            outcomes.with_label_values(&[outcome]);
        }
        broker_consumed.with_label_values(&[topic]);
        broker_errors.with_label_values(&[topic, "handler"]);
        broker_duration.with_label_values(&[topic]);
        Ok(Self {
            up,
            events,
            duration,
            errors,
            deleted,
            deletion_duration,
            deletions_in_progress,
            outcomes,
            broker_consumed,
            broker_errors,
            broker_duration,
            topic: topic.to_owned(),
        })
    }

    /// Metrics registered nowhere (dry-run, benchmarks).
    pub fn unregistered() -> Self {
        Self::register(&Registry::new(), "unregistered", "none").expect("fresh registry")
    }

    /// Counts one processed event: `status` is `success`, `failed` or `skipped`;
    /// `failed_phase` the phase that failed (HyperFleet's `error_type`), if any. The
    /// handler maps an execution to these.
    pub fn event(&self, status: &str, failed_phase: Option<&str>, elapsed: Duration) {
        self.events.with_label_values(&[status]).inc();
        self.duration.observe(elapsed.as_secs_f64());
        if let Some(phase) = failed_phase {
            self.errors.with_label_values(&[phase]).inc();
        }
        self.broker_consumed.with_label_values(&[&self.topic]).inc();
        self.broker_duration
            .with_label_values(&[&self.topic])
            .observe(elapsed.as_secs_f64());
        if status == "failed" {
            self.broker_errors
                .with_label_values(&[&self.topic, "handler"])
                .inc();
        }
    }

    pub fn outcome(&self, outcome: &str) {
        self.outcomes.with_label_values(&[outcome]).inc();
    }

    /// A duplicate event acked without running: consumed, but not an execution (HyperFleet's
    /// `events_processed_total` and duration leave it out).
    pub fn duplicate(&self) {
        self.broker_consumed.with_label_values(&[&self.topic]).inc();
        self.outcomes.with_label_values(&["duplicate"]).inc();
    }

    /// A deletion started; the guard counts it as in progress until dropped.
    pub fn deletion_started(&self, kind: &str) -> InProgress {
        let gauge = self.deletions_in_progress.with_label_values(&[kind]);
        gauge.inc();
        InProgress(gauge)
    }

    pub fn deletion_finished(&self, kind: &str, status: &str, elapsed: Duration) {
        self.deleted.with_label_values(&[kind, status]).inc();
        self.deletion_duration
            .with_label_values(&[kind])
            .observe(elapsed.as_secs_f64());
    }
}

/// Decrements the in-progress gauge when dropped.
pub struct InProgress(prometheus::IntGauge);

impl Drop for InProgress {
    fn drop(&mut self) {
        self.0.dec();
    }
}

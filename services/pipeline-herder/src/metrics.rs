//! The herder's Prometheus metrics.
//!
//! The first three keep the names and labels of CKI's herder, so its dashboards and alerts
//! work unchanged (the Python client appends `_total` to counters, as here):
//! * `cki_herder_problem_detected_total{gitlab_stage, gitlab_job, matcher, action}`
//! * `cki_herder_problem_retries{gitlab_stage, gitlab_job, matcher}` — retries a job with a
//!   problem already had (histogram)
//! * `cki_herder_no_problem_detected_total{gitlab_stage, gitlab_job}`
//!
//! and Steadfast's own:
//! * `pipeline_herder_retries_total{matcher, outcome}` — scheduled retries by how they ended
//!   (`retried`, `already_retried`, `superseded`, `paused`, `failed`)
//! * `pipeline_herder_events_total{result}` — Job Hook events by what became of them
//!   (`decided`, `duplicate`, `ignored_status`, `ignored_allow_failure`, `not_a_job`)
//! * `pipeline_herder_gitlab_api_errors_total{instance, endpoint, status}` — failed API
//!   attempts (`status` is the HTTP status or `network`)
//! * `pipeline_herder_decision_seconds` — from receiving a failed job to its recorded decision
//! * `pipeline_herder_paused` — 1 while the pause switch is on
//! * `pipeline_herder_notifications_total{sink, result}` — decisions published to the broker
//!   (`published`, `unrouted`, `failed`) and posted to chat (`sent`, `failed`)
//! * `pipeline_herder_outbox_pending` — decisions whose notification is not yet published

use prometheus::{Histogram, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, Opts, Registry};

#[derive(Clone)]
pub struct HerderMetrics {
    pub problem_detected: IntCounterVec,
    pub problem_retries: HistogramVec,
    pub no_problem_detected: IntCounterVec,
    pub retries: IntCounterVec,
    pub events: IntCounterVec,
    pub api_errors: IntCounterVec,
    pub decision_seconds: Histogram,
    pub paused: IntGauge,
    pub notifications: IntCounterVec,
    pub outbox_pending: IntGauge,
}

impl HerderMetrics {
    pub fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let metrics = Self {
            problem_detected: IntCounterVec::new(
                Opts::new(
                    "cki_herder_problem_detected_total",
                    "Failed jobs a matcher recognised, by stage, job, matcher and action.",
                ),
                &["gitlab_stage", "gitlab_job", "matcher", "action"],
            )?,
            problem_retries: HistogramVec::new(
                HistogramOpts::new(
                    "cki_herder_problem_retries",
                    "How many retries a job with a recognised problem had already had.",
                )
                .buckets(vec![0.0, 1.0, 2.0, 3.0, 5.0, 10.0]),
                &["gitlab_stage", "gitlab_job", "matcher"],
            )?,
            no_problem_detected: IntCounterVec::new(
                Opts::new(
                    "cki_herder_no_problem_detected_total",
                    "Failed jobs no matcher recognised, by stage and job.",
                ),
                &["gitlab_stage", "gitlab_job"],
            )?,
            retries: IntCounterVec::new(
                Opts::new(
                    "pipeline_herder_retries_total",
                    "Scheduled job retries by matcher and outcome.",
                ),
                &["matcher", "outcome"],
            )?,
            events: IntCounterVec::new(
                Opts::new(
                    "pipeline_herder_events_total",
                    "Job Hook events by what became of them.",
                ),
                &["result"],
            )?,
            api_errors: IntCounterVec::new(
                Opts::new(
                    "pipeline_herder_gitlab_api_errors_total",
                    "Failed GitLab API attempts by instance, endpoint and status.",
                ),
                &["instance", "endpoint", "status"],
            )?,
            decision_seconds: Histogram::with_opts(
                HistogramOpts::new(
                    "pipeline_herder_decision_seconds",
                    "Time from receiving a failed job to its recorded decision (log fetch included).",
                )
                .buckets(vec![0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0]),
            )?,
            paused: IntGauge::new(
                "pipeline_herder_paused",
                "1 while the pause switch turns every retry into a report.",
            )?,
            notifications: IntCounterVec::new(
                Opts::new(
                    "pipeline_herder_notifications_total",
                    "Decision notifications by sink (broker, chat) and result.",
                ),
                &["sink", "result"],
            )?,
            outbox_pending: IntGauge::new(
                "pipeline_herder_outbox_pending",
                "Decisions whose notification is not yet confirmed by the broker.",
            )?,
        };
        registry.register(Box::new(metrics.problem_detected.clone()))?;
        registry.register(Box::new(metrics.problem_retries.clone()))?;
        registry.register(Box::new(metrics.no_problem_detected.clone()))?;
        registry.register(Box::new(metrics.retries.clone()))?;
        registry.register(Box::new(metrics.events.clone()))?;
        registry.register(Box::new(metrics.api_errors.clone()))?;
        registry.register(Box::new(metrics.decision_seconds.clone()))?;
        registry.register(Box::new(metrics.paused.clone()))?;
        registry.register(Box::new(metrics.notifications.clone()))?;
        registry.register(Box::new(metrics.outbox_pending.clone()))?;
        Ok(metrics)
    }
}

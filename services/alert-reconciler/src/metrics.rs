//! The reconciler's Prometheus metrics (`steadfast_reconciler_*`), registered into the App's
//! own registry beside the messaging metrics.

use prometheus::{
    HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
};

/// Recipes take seconds to minutes; the top buckets cover the 300 s default timeout.
const RECIPE_BUCKETS: &[f64] = &[
    0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0,
];
/// From an incident opening to its analysis in chat.
const REPORT_BUCKETS: &[f64] = &[
    0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0,
];

#[derive(Clone)]
pub struct Metrics {
    /// Alert events consumed, by `status` (firing, resolved).
    pub alerts_received: IntCounterVec,
    /// Alert events that started nothing new, by `reason` (duplicate_event,
    /// repeat_notification, resolved_without_incident).
    pub alerts_deduplicated: IntCounterVec,
    /// Incidents by state (refreshed by the supervisor).
    pub incidents: IntGaugeVec,
    /// 1 while this replica leads (drives runs, sends reports, expires approvals), else 0.
    pub leader: IntGauge,
    /// Incidents still `awaiting_approval` after their approval window closed. Every replica
    /// counts them, leading or not: the leader expires them within `sweep_interval`, so a
    /// count that stays above 0 means nobody leads or expiring fails — which the leader
    /// itself cannot report.
    pub incidents_past_approval_expiry: IntGauge,
    /// Transitions into each state.
    pub incident_transitions: IntCounterVec,
    /// Finished recipes by `kind`, `recipe` and `outcome`.
    pub recipe_runs: IntCounterVec,
    /// Debugging recipes launched again because their answer was lost, by `recipe`.
    pub recipe_reruns: IntCounterVec,
    /// Launch to answer, by `kind` and `outcome`.
    pub recipe_duration: HistogramVec,
    /// Result messages ignored, by `reason`.
    pub results_rejected: IntCounterVec,
    /// Approval attempts by `via` (webex, api) and `decision`.
    pub approvals: IntCounterVec,
    /// Finished action runs by `action` and `outcome`.
    pub actions: IntCounterVec,
    /// Chat delivery attempts by `sink` and `outcome` (sent, retried, failed).
    pub chat_deliveries: IntCounterVec,
    /// Registry reloads by `outcome` (loaded, rejected).
    pub recipe_reloads: IntCounterVec,
    /// Incident opened → analysis accepted by a chat sink, by `sink`.
    pub time_to_report: HistogramVec,
}

impl Metrics {
    pub fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let counter =
            |name: &str, help: &str, labels: &[&str]| -> Result<IntCounterVec, prometheus::Error> {
                let c = IntCounterVec::new(
                    Opts::new(format!("steadfast_reconciler_{name}"), help),
                    labels,
                )?;
                registry.register(Box::new(c.clone()))?;
                Ok(c)
            };
        let histogram = |name: &str,
                         help: &str,
                         labels: &[&str],
                         buckets: &[f64]|
         -> Result<HistogramVec, prometheus::Error> {
            let h = HistogramVec::new(
                HistogramOpts::new(format!("steadfast_reconciler_{name}"), help)
                    .buckets(buckets.to_vec()),
                labels,
            )?;
            registry.register(Box::new(h.clone()))?;
            Ok(h)
        };
        let incidents = IntGaugeVec::new(
            Opts::new("steadfast_reconciler_incidents", "Incidents by state."),
            &["state"],
        )?;
        registry.register(Box::new(incidents.clone()))?;
        let leader = IntGauge::new(
            "steadfast_reconciler_leader",
            "1 while this replica leads: drives runs, sends reports, expires approvals.",
        )?;
        registry.register(Box::new(leader.clone()))?;
        let incidents_past_approval_expiry = IntGauge::new(
            "steadfast_reconciler_incidents_past_approval_expiry",
            "Incidents still awaiting approval after their approval window closed (counted by every replica).",
        )?;
        registry.register(Box::new(incidents_past_approval_expiry.clone()))?;
        Ok(Self {
            alerts_received: counter(
                "alerts_received_total",
                "Alert events consumed, by status.",
                &["status"],
            )?,
            alerts_deduplicated: counter(
                "alerts_deduplicated_total",
                "Alert events that started nothing new, by reason.",
                &["reason"],
            )?,
            incidents,
            leader,
            incidents_past_approval_expiry,
            incident_transitions: counter(
                "incident_transitions_total",
                "Incident state transitions, by the state entered.",
                &["state"],
            )?,
            recipe_runs: counter(
                "recipe_runs_total",
                "Finished recipes, by kind, recipe and outcome.",
                &["kind", "recipe", "outcome"],
            )?,
            recipe_reruns: counter(
                "recipe_reruns_total",
                "Debugging recipes launched again because their answer was lost (failover, Redis reconnect), by recipe.",
                &["recipe"],
            )?,
            recipe_duration: histogram(
                "recipe_duration_seconds",
                "Recipe launch to answer, by kind and outcome.",
                &["kind", "outcome"],
                RECIPE_BUCKETS,
            )?,
            results_rejected: counter(
                "results_rejected_total",
                "Recipe result messages ignored, by reason.",
                &["reason"],
            )?,
            approvals: counter(
                "approvals_total",
                "Approval attempts, by channel and decision.",
                &["via", "decision"],
            )?,
            actions: counter(
                "actions_total",
                "Finished action runs, by action and outcome.",
                &["action", "outcome"],
            )?,
            chat_deliveries: counter(
                "chat_deliveries_total",
                "Chat delivery attempts, by sink and outcome.",
                &["sink", "outcome"],
            )?,
            recipe_reloads: counter(
                "recipe_reloads_total",
                "Recipe registry reloads, by outcome.",
                &["outcome"],
            )?,
            time_to_report: histogram(
                "time_to_report_seconds",
                "Incident opened to its analysis accepted by a chat sink.",
                &["sink"],
                REPORT_BUCKETS,
            )?,
        })
    }

    /// Creates the series whose labels are known at start at zero: the registry's outcomes,
    /// the result-rejection reasons (the run driver's) and a re-run count per debugging recipe.
    /// Why: a counter that first appears at 1 has no earlier sample, so `increase(...) > 0`
    /// misses the first rejected reload after a restart, and dashboards show "No data" where 0
    /// is the answer.
    pub fn start_at_zero<'a>(&self, debugging_recipes: impl IntoIterator<Item = &'a str>) {
        for outcome in ["loaded", "rejected"] {
            self.recipe_reloads.with_label_values(&[outcome]);
        }
        for reason in ["malformed", "wrong_run", "unknown_recipe"] {
            self.results_rejected.with_label_values(&[reason]);
        }
        for recipe in debugging_recipes {
            self.recipe_reruns.with_label_values(&[recipe]);
        }
    }

    /// Metrics registered nowhere (for the `steadfast-recipe` command and unit tests).
    pub fn unregistered() -> Self {
        Self::register(&Registry::new()).expect("fresh registry")
    }
}

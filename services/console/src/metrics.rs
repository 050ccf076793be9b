//! The console's own metrics, beside `steadfast_build_info` and `process_*`.

use prometheus::{IntCounterVec, Opts, Registry};

#[derive(Clone)]
pub struct ConsoleMetrics {
    logins: IntCounterVec,
    actions: IntCounterVec,
}

/// Every action the console can take, so each series exists from the start.
pub const ACTIONS: [&str; 7] = [
    "replay",
    "discard",
    "herder_pause",
    "herder_resume",
    "approve",
    "reject",
    "force",
];

impl ConsoleMetrics {
    pub fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let logins = IntCounterVec::new(
            Opts::new(
                "steadfast_console_logins_total",
                "Sign-ins with the login form, by outcome (ok, refused).",
            ),
            &["outcome"],
        )?;
        let actions = IntCounterVec::new(
            Opts::new(
                "steadfast_console_actions_total",
                "Changes made through the console, by action and outcome (ok, error).",
            ),
            &["action", "outcome"],
        )?;
        registry.register(Box::new(logins.clone()))?;
        registry.register(Box::new(actions.clone()))?;
        for outcome in ["ok", "refused"] {
            logins.with_label_values(&[outcome]);
        }
        for action in ACTIONS {
            for outcome in ["ok", "error"] {
                actions.with_label_values(&[action, outcome]);
            }
        }
        Ok(Self { logins, actions })
    }

    pub fn login(&self, outcome: &str) {
        self.logins.with_label_values(&[outcome]).inc();
    }

    pub fn action(&self, action: &str, outcome: &str) {
        self.actions.with_label_values(&[action, outcome]).inc();
    }
}

//! What both consumers share: the GitLab client, the matchers, the ledger, the publisher, the
//! notifier and the pause switch — and scheduling a retry, which both may do.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use steadfast_events::Envelope;
use steadfast_messaging::{PublishError, Publisher};

use crate::gitlab::GitLab;
use crate::ledger::{DecisionRow, Ledger, LedgerError};
use crate::matchers::MatcherSet;
use crate::metrics::HerderMetrics;
use crate::notify::{EVENT_SOURCE, Notifier};
use crate::pause::PauseSwitch;

/// Type of the herder's own "this retry is due" message (internal to the herder).
pub const RETRY_DUE: &str = "io.steadfast.pipeline-herder.retry-due";

/// The data of a retry-due message: enough to find the ledger row and to log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetryOrder {
    pub decision_id: i64,
    pub instance: String,
    pub job_id: u64,
    pub matcher: Option<String>,
    pub attempt: u32,
}

#[derive(Clone)]
pub struct Herder {
    pub gitlab: GitLab,
    pub matchers: Arc<MatcherSet>,
    pub ledger: Ledger,
    pub publisher: Publisher,
    pub notifier: Notifier,
    pub pause: PauseSwitch,
    pub metrics: HerderMetrics,
    /// `<ns>.pipeline-herder.retries`, where due retries arrive.
    pub retries_queue: String,
    /// How long a claim of an earlier version (without a session lock) belongs to its worker
    /// before another may take over.
    pub retry_lease: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum ScheduleError {
    #[error(transparent)]
    Publish(#[from] PublishError),
    #[error(transparent)]
    Ledger(#[from] LedgerError),
}

impl Herder {
    /// Queues the retry of a `new` retry decision for its delay, then marks it `scheduled`.
    /// Safe to repeat: the retry consumer claims the row once.
    ///
    /// A span of its own: the retry-due message is published inside it (the publisher stamps
    /// the span's trace on it), so the retry carried out later continues the decision's trace.
    #[tracing::instrument(
        name = "herder.schedule_retry",
        skip_all,
        fields(job_id = row.job_id, instance = %row.instance, decision_id = row.id)
    )]
    pub async fn schedule(&self, row: &DecisionRow) -> Result<(), ScheduleError> {
        let order = RetryOrder {
            decision_id: row.id,
            instance: row.instance.clone(),
            job_id: u64::try_from(row.job_id).unwrap_or_default(),
            matcher: row.matcher.clone(),
            attempt: u32::try_from(row.attempt).unwrap_or_default(),
        };
        let event = Envelope::new(EVENT_SOURCE, RETRY_DUE, order)
            .with_id(format!(
                "pipeline-herder/{}/{}/retry",
                row.instance, row.job_id
            ))
            .with_subject(row.job_url.clone());
        let delay = row.delay().unwrap_or_default();
        if delay.is_zero() {
            // Straight into the queue through the default exchange.
            self.publisher
                .publish("", &self.retries_queue, &event, None)
                .await?;
        } else {
            self.publisher
                .publish_delayed(&self.retries_queue, &event, delay, None)
                .await?;
        }
        self.ledger.mark_scheduled(row.id, delay).await?;
        tracing::info!(
            job_id = row.job_id,
            instance = %row.instance,
            matcher = row.matcher.as_deref().unwrap_or(""),
            delay_ms = delay.as_millis() as u64,
            "retry scheduled"
        );
        Ok(())
    }
}

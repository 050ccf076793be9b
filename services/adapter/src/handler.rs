//! From an execution to a message outcome — where we part ways with HyperFleet, whose adapter
//! acks every failure and waits for the sentinel's next event:
//!
//! | execution | outcome |
//! |---|---|
//! | success, preconditions not met, resource gone | ack |
//! | transient failure (API 408/429/5xx/network, Kubernetes retryable) | retry tier; status not reported yet |
//! | transient failure on the last allowed attempt | status reported (`Health=False`), then parked |
//! | permanent failure (invalid manifest, forbidden, bad CEL data) | status reported, then parked |
//!
//! Transient or permanent is [`Failure::class`] (the pipeline's typed error classifying
//! itself), and nothing else. An event a successful execution has already covered is acked
//! without running at all ([`crate::coalesce`]).

use std::sync::Arc;
use std::time::Instant;

use serde_json::Value;
use steadfast_messaging::{Handler, Incoming, Outcome};

use crate::coalesce::{EventFacts, Execution, RecentExecutions};
use crate::metrics::Metrics;
use crate::pipeline::{ExecutionResult, Executor, Failure, RunOptions, Verdict};
use crate::transport::ErrorClass;

pub struct EventHandler {
    pub executor: Arc<Executor>,
    pub metrics: Metrics,
    /// The retry policy's attempt budget: the last attempt reports instead of deferring.
    pub max_attempts: Option<u32>,
    /// This replica's last successful execution per resource (duplicates are skipped).
    pub recent: Arc<RecentExecutions>,
}

impl Handler for EventHandler {
    type Data = Value;

    async fn handle(&self, message: Incoming<Value>) -> Outcome {
        let event = &message.event;
        tracing::info!(
            event_type = %event.event_type,
            source = %event.source,
            time = ?event.time,
            attempt = message.attempt,
            "processing event"
        );
        let facts = EventFacts::of(&event.data, &event.id, event.time);
        if let Some(facts) = &facts
            && let Some(done) = self.recent.covering(facts)
        {
            tracing::info!(
                generation = facts.generation,
                reconciled_generation = done.generation,
                reconcile_started = %done.started,
                "event skipped: a duplicate, published before a reconcile of its generation started"
            );
            self.metrics.duplicate();
            return Outcome::Done;
        }
        let last_attempt = self.max_attempts.is_some_and(|max| message.attempt >= max);
        let started = Instant::now();
        let started_at = chrono::Utc::now();
        let result = self
            .executor
            .execute(
                &event.data,
                RunOptions {
                    report_transient: last_attempt,
                },
            )
            .await;
        count(&self.metrics, &result, started.elapsed());
        let outcome = match (result.verdict, &result.failure) {
            (Verdict::Success, _) => {
                tracing::info!(
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    "event processed"
                );
                if let Some(facts) = facts {
                    self.recent.record(
                        facts.resource,
                        Execution {
                            generation: facts.generation,
                            started: started_at,
                        },
                    );
                }
                Outcome::Done
            }
            (Verdict::Skipped, _) => {
                tracing::info!(
                    reason = result.skip_reason.as_deref().unwrap_or_default(),
                    "event processed: resources skipped"
                );
                Outcome::Done
            }
            (Verdict::Failed, Some(failure)) => match failure.class() {
                ErrorClass::Retryable => {
                    let reason = describe(failure);
                    tracing::warn!(deferred = result.deferred, error = %reason, "event failed transiently; retrying through a retry tier");
                    Outcome::Retry(reason)
                }
                ErrorClass::NotFound | ErrorClass::Fatal => {
                    let reason = describe(failure);
                    tracing::error!(error = %reason, "event failed permanently; parking it");
                    Outcome::Park(reason)
                }
            },
            (Verdict::Failed, None) => {
                tracing::error!(error = "failed", "event failed permanently; parking it");
                Outcome::Park("failed".to_owned())
            }
        };
        self.metrics.outcome(match &outcome {
            Outcome::Done => "ack",
            // The consumer parks a retry that has used up its attempts.
            Outcome::Retry(_) if last_attempt => "park",
            Outcome::Retry(_) => "retry",
            Outcome::Park(_) => "park",
        });
        outcome
    }
}

/// `<phase> [<step>]: <message>`, the reason a retried or parked message carries.
fn describe(failure: &Failure) -> String {
    format!(
        "{} [{}]: {}",
        failure.phase.as_str(),
        failure.step,
        failure.message()
    )
}

/// HyperFleet's per-event metrics for one execution.
fn count(metrics: &Metrics, result: &ExecutionResult, elapsed: std::time::Duration) {
    let status = match result.verdict {
        Verdict::Success => "success",
        Verdict::Skipped => "skipped",
        Verdict::Failed => "failed",
    };
    metrics.event(
        status,
        result.failed_phase().map(|phase| phase.as_str()),
        elapsed,
    );
}

//! Sending the chat outbox.
//!
//! Pending deliveries are sent oldest first; within one incident and sink strictly in order
//! (an outcome never overtakes its analysis, and replies in its Webex thread). A delivery is
//! marked sent right after the sink accepted it — in the same transaction that records the
//! Webex message id on the incident's approvals, which is what lets their buttons be pressed.
//! A transient failure is retried with backoff (5 s doubling to 10 min, for about a day); a
//! permanent one (4xx) is marked failed, logged and counted. The one window for a duplicate is
//! a crash between the sink's answer and that commit: a report may then be sent twice, never
//! lost.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use futures_util::future::join_all;
use steadfast_telemetry::trace;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, Span};
use uuid::Uuid;

use crate::chat::WEBEX;
use crate::context::Context;
use crate::report::Report;
use crate::store::deliveries::{self, DeliveryRow};
use crate::store::{StoreError, approvals};

/// Attempts before a delivery is given up.
const MAX_ATTEMPTS: i32 = 150;
/// When idle, look again this often anyway (retries that came due, missed wake-ups).
const IDLE_CHECK: Duration = Duration::from_secs(5);

/// Sends until `stop`; `wake` is notified when new reports are queued.
pub async fn run(ctx: Arc<Context>, wake: Arc<Notify>, stop: CancellationToken) {
    loop {
        let wait = match send_pending(&ctx).await {
            Ok(Some(next)) => next.min(IDLE_CHECK),
            Ok(None) => IDLE_CHECK,
            Err(error) => {
                tracing::warn!(%error, "cannot read the chat outbox; retrying");
                IDLE_CHECK
            }
        };
        tokio::select! {
            () = stop.cancelled() => return,
            () = wake.notified() => {}
            () = tokio::time::sleep(wait) => {}
        }
    }
}

/// Sends what is due; returns how long until the next retry is due, if any.
async fn send_pending(ctx: &Context) -> Result<Option<Duration>, StoreError> {
    let mut conn = ctx.pool.acquire().await?;
    let pending = deliveries::pending(&mut conn, 200).await?;
    drop(conn);
    let now = Utc::now();
    let mut next: Option<Duration> = None;
    // Per (incident, sink): the deliveries to send now, in order, up to the first not yet due.
    let mut queues: HashMap<(Uuid, String), Vec<DeliveryRow>> = HashMap::new();
    let mut blocked: HashSet<(Uuid, String)> = HashSet::new();
    for row in pending {
        let thread = (row.incident_id, row.sink.clone());
        if blocked.contains(&thread) {
            continue;
        }
        if row.next_attempt_at > now {
            let due = (row.next_attempt_at - now).to_std().unwrap_or_default();
            next = Some(next.map_or(due, |n| n.min(due)));
            blocked.insert(thread);
            continue;
        }
        queues.entry(thread).or_default().push(row);
    }
    let results = join_all(queues.into_values().map(|rows| send_thread(ctx, rows))).await;
    for result in results {
        result?;
    }
    Ok(next)
}

/// Sends one thread's deliveries in order, stopping at the first failure.
async fn send_thread(ctx: &Context, rows: Vec<DeliveryRow>) -> Result<(), StoreError> {
    for row in rows {
        if !send_one(ctx, &row).await? {
            break;
        }
    }
    Ok(())
}

/// Returns whether the delivery is done (sent or given up), so the next may follow.
async fn send_one(ctx: &Context, row: &DeliveryRow) -> Result<bool, StoreError> {
    send_one_traced(ctx, row).instrument(report_span(row)).await
}

/// The span of sending one report, continuing the trace of the span that queued it (the run's
/// or the incident's); the Webex card sent in it records it for its approval buttons.
fn report_span(row: &DeliveryRow) -> Span {
    let span = tracing::info_span!(
        "reconciler.chat_report",
        otel.name = %format_args!("report to {}", row.sink),
        sink = %row.sink,
        incident_id = %row.incident_id,
        report = tracing::field::Empty,
    );
    trace::continue_stored(&span, row.traceparent.as_deref());
    span
}

async fn send_one_traced(ctx: &Context, row: &DeliveryRow) -> Result<bool, StoreError> {
    let metrics = &ctx.metrics;
    let mut conn = ctx.pool.acquire().await?;
    let report: Report = match serde_json::from_value(row.report.clone()) {
        Ok(report) => report,
        Err(error) => {
            deliveries::mark_attempt_failed(
                &mut conn,
                row.id,
                &format!("unreadable report: {error}"),
                None,
            )
            .await?;
            return Ok(true);
        }
    };
    Span::current().record("report", report.key().as_str());
    let thread = match &report {
        Report::Analysis { .. } => None,
        _ => deliveries::thread_of(&mut conn, row.incident_id, &row.sink).await?,
    };
    drop(conn);
    match ctx
        .sinks
        .deliver(&row.sink, &report, thread.as_deref())
        .await
    {
        Ok(remote_id) => {
            let mut tx = ctx.pool.begin().await?;
            deliveries::mark_sent(&mut tx, row.id, remote_id.as_deref()).await?;
            if let (Report::Analysis { .. }, true, Some(message)) =
                (&report, row.sink == WEBEX, remote_id.as_deref())
            {
                approvals::set_message(&mut tx, row.incident_id, message).await?;
            }
            tx.commit().await?;
            metrics
                .chat_deliveries
                .with_label_values(&[&row.sink, "sent"])
                .inc();
            if let Report::Analysis { incident, .. } = &report {
                let seconds =
                    (Utc::now() - incident.opened_at).num_milliseconds().max(0) as f64 / 1000.0;
                metrics
                    .time_to_report
                    .with_label_values(&[&row.sink])
                    .observe(seconds);
            }
            tracing::info!(incident_id = %row.incident_id, sink = %row.sink, report = %report.key(), "report delivered");
            Ok(true)
        }
        Err(error) if error.is_transient() && row.attempts + 1 < MAX_ATTEMPTS => {
            let wait = backoff(row.attempts + 1);
            let next = Utc::now() + chrono::Duration::from_std(wait).unwrap_or_default();
            let mut conn = ctx.pool.acquire().await?;
            deliveries::mark_attempt_failed(&mut conn, row.id, &error.to_string(), Some(next))
                .await?;
            metrics
                .chat_deliveries
                .with_label_values(&[&row.sink, "retried"])
                .inc();
            tracing::warn!(incident_id = %row.incident_id, sink = %row.sink, %error, retry_in_s = wait.as_secs(), "report not delivered; will retry");
            Ok(false)
        }
        Err(error) => {
            let mut conn = ctx.pool.acquire().await?;
            deliveries::mark_attempt_failed(&mut conn, row.id, &error.to_string(), None).await?;
            metrics
                .chat_deliveries
                .with_label_values(&[&row.sink, "failed"])
                .inc();
            tracing::error!(incident_id = %row.incident_id, sink = %row.sink, %error, "report could not be delivered; giving up");
            Ok(true)
        }
    }
}

/// 5 s, doubling, at most 10 minutes.
fn backoff(attempts: i32) -> Duration {
    let exponent = u32::try_from(attempts.clamp(1, 16) - 1).unwrap_or(0);
    Duration::from_secs(5u64.saturating_mul(1 << exponent)).min(Duration::from_secs(600))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_ten_minutes() {
        assert_eq!(backoff(1), Duration::from_secs(5));
        assert_eq!(backoff(2), Duration::from_secs(10));
        assert_eq!(backoff(8), Duration::from_secs(600));
        assert_eq!(backoff(100), Duration::from_secs(600));
    }
}

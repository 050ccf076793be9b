//! Telling people: every decision becomes a `pipeline-herder.decision` event on
//! `<ns>.notifications`, and (when `CHATBOT_URL` is set) a short chat message.
//!
//! Notifications are written to the ledger's outbox in the decision's own transaction; the
//! [`Notifier`] publishes them with confirms and deletes them, right after each decision
//! (it is kicked) and every few seconds (for anything a broker outage left behind). Chat is
//! best effort after the broker confirmed: a chat outage is logged and counted, never blocks
//! the herder. A notification nobody subscribed to (the broker returns it unroutable) is
//! counted as `unrouted` and dropped: the durable record is the ledger.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use steadfast_events::Envelope;
use steadfast_events::catalogue::{HERDER_DECISION, MESSAGE_TYPE_STEADFAST};
use steadfast_messaging::{PublishError, Publisher};
use steadfast_service_kit::http_client::{HttpClient, RetryPolicy};
use steadfast_telemetry::trace;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, Span};
use url::Url;

use crate::decide::Decision;
use crate::hook::Job;
use crate::ledger::{DecisionRow, Finish, Ledger, Notification};
use crate::metrics::HerderMetrics;

/// Routing key of every decision on `<ns>.notifications`.
pub const DECISION_ROUTING_KEY: &str = "pipeline-herder.decision";
/// `source` of the herder's events.
pub const EVENT_SOURCE: &str = "/steadfast/pipeline-herder";

/// The data of a `pipeline-herder.decision` event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DecisionEvent {
    pub instance: String,
    pub project_id: u64,
    pub project: String,
    pub job_id: u64,
    pub job_name: String,
    pub job_stage: String,
    pub job_url: String,
    pub pipeline_id: u64,
    #[serde(rename = "ref")]
    pub git_ref: String,
    pub matcher: Option<String>,
    /// retry, report, alert or none.
    pub action: String,
    /// scheduled (a retry is queued), retried, already_retried, superseded, paused, failed,
    /// reported or no_problem.
    pub outcome: String,
    pub reason: String,
    pub attempt: u32,
    pub retry_limit: Option<u32>,
    pub delay_seconds: Option<f64>,
    pub new_job_id: Option<u64>,
    pub log_line: Option<String>,
}

impl DecisionEvent {
    /// The event for a new decision.
    pub fn decided(job: &Job, decision: &Decision) -> Self {
        Self {
            instance: job.instance.clone(),
            project_id: job.project_id,
            project: job.project_path.clone(),
            job_id: job.job_id,
            job_name: job.name.clone(),
            job_stage: job.stage.clone(),
            job_url: job.web_url.clone(),
            pipeline_id: job.pipeline_id,
            git_ref: job.git_ref.clone(),
            matcher: decision.matcher.clone(),
            action: decision.action.as_str().into(),
            outcome: decision.immediate_outcome().unwrap_or("scheduled").into(),
            reason: decision.reason.clone(),
            attempt: decision.attempt,
            retry_limit: decision.retry_limit,
            delay_seconds: decision.delay.map(|d| d.as_secs_f64()),
            new_job_id: None,
            log_line: decision.log_line.clone(),
        }
    }

    /// The event for how a scheduled retry ended.
    pub fn finished(row: &DecisionRow, finish: &Finish<'_>) -> Self {
        let unsigned = |v: i64| u64::try_from(v).unwrap_or_default();
        Self {
            instance: row.instance.clone(),
            project_id: unsigned(row.project_id),
            project: row.project_path.clone(),
            job_id: unsigned(row.job_id),
            job_name: row.job_name.clone(),
            job_stage: row.job_stage.clone(),
            job_url: row.job_url.clone(),
            pipeline_id: unsigned(row.pipeline_id),
            git_ref: row.git_ref.clone(),
            matcher: row.matcher.clone(),
            action: finish.action.into(),
            outcome: finish.outcome.into(),
            reason: finish.reason.into(),
            attempt: u32::try_from(row.attempt).unwrap_or_default(),
            retry_limit: row.retry_limit.and_then(|l| u32::try_from(l).ok()),
            delay_seconds: row.delay().map(|d| d.as_secs_f64()),
            new_job_id: finish.new_job_id,
            log_line: row.log_line.clone(),
        }
    }

    /// The notification: the CloudEvent (id stable per job and stage, so consumers dedupe)
    /// and the chat line.
    pub fn into_notification(self, stage: &str) -> Notification {
        let event_id = format!("pipeline-herder/{}/{}/{stage}", self.instance, self.job_id);
        let chat_text = chat_text(&self);
        let mut envelope = Envelope::new(EVENT_SOURCE, HERDER_DECISION, &self)
            .with_id(event_id.clone())
            .with_subject(self.job_url.clone());
        // Written now (inside the decision's handler), published later by the notifier: the
        // event keeps the decision's trace, so its consumers and the chat post join it.
        if let Some(traceparent) = trace::current_traceparent() {
            envelope = envelope.with_traceparent(&traceparent);
        }
        Notification {
            event_id,
            event: serde_json::to_value(&envelope).expect("a decision event serialises"),
            chat_text,
        }
    }
}

/// One line for people, or `None` for decisions nobody needs to hear about.
fn chat_text(event: &DecisionEvent) -> Option<String> {
    let job = format!(
        "job `{}` #{} ({}, pipeline {})",
        event.job_name, event.job_id, event.project, event.pipeline_id
    );
    let matcher = event
        .matcher
        .as_deref()
        .map(|m| format!("matcher `{m}`"))
        .unwrap_or_else(|| "no matcher".into());
    let text = match (event.action.as_str(), event.outcome.as_str()) {
        (_, "no_problem") => return None,
        ("retry", "scheduled") => format!(
            "pipeline-herder: will retry {job} in {} ({matcher}, retry {} of {}): {}",
            event
                .delay_seconds
                .map(|s| steadfast_messaging::topology::delay_label(Duration::from_secs_f64(s)))
                .unwrap_or_default(),
            event.attempt,
            event.retry_limit.unwrap_or_default(),
            event.job_url
        ),
        ("retry", "retried") => format!(
            "pipeline-herder: retried {job} as job #{} ({matcher}): {}",
            event.new_job_id.unwrap_or_default(),
            event.job_url
        ),
        ("retry", "already_retried") => format!(
            "pipeline-herder: {job} was already retried as job #{}; nothing to do: {}",
            event.new_job_id.unwrap_or_default(),
            event.job_url
        ),
        ("alert", _) => format!(
            "pipeline-herder ALERT: {job} — {}: {}",
            event.reason, event.job_url
        ),
        _ => format!(
            "pipeline-herder: {job} not retried — {}: {}",
            event.reason, event.job_url
        ),
    };
    Some(text)
}

/// Posts chat lines to `CHATBOT_URL` as `{"message": ..., "text": ...}` (CKI's chat bot
/// reads `message`; Slack-style webhooks read `text`).
#[derive(Clone)]
pub struct ChatSink {
    url: Url,
    http: HttpClient,
}

impl ChatSink {
    pub fn new(url: Url) -> Result<Self, reqwest::Error> {
        let policy = RetryPolicy {
            max_elapsed: Some(Duration::from_secs(10)),
            ..RetryPolicy::default()
        };
        Ok(Self {
            url,
            http: HttpClient::new(Duration::from_secs(5), policy)?,
        })
    }

    pub async fn post(
        &self,
        text: &str,
    ) -> Result<(), steadfast_service_kit::http_client::HttpError> {
        let body = serde_json::json!({ "message": text, "text": text });
        self.http
            .send(|client| client.post(self.url.clone()).json(&body))
            .await
            .map(|_| ())
    }
}

/// Publishes the outbox.
#[derive(Clone)]
pub struct Notifier {
    ledger: Ledger,
    publisher: Publisher,
    exchange: String,
    chat: Option<ChatSink>,
    metrics: HerderMetrics,
    kick: Arc<Notify>,
}

const BATCH: i64 = 50;
const SWEEP_INTERVAL: Duration = Duration::from_secs(5);

impl Notifier {
    pub fn new(
        ledger: Ledger,
        publisher: Publisher,
        exchange: String,
        chat: Option<ChatSink>,
        metrics: HerderMetrics,
    ) -> Self {
        Self {
            ledger,
            publisher,
            exchange,
            chat,
            metrics,
            kick: Arc::new(Notify::new()),
        }
    }

    /// Asks the running notifier to publish now.
    pub fn kick(&self) {
        self.kick.notify_one();
    }

    /// Publishes whenever kicked and every few seconds, until `shutdown`; then once more.
    pub async fn run(self, shutdown: CancellationToken) {
        loop {
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = self.kick.notified() => {}
                () = tokio::time::sleep(SWEEP_INTERVAL) => {}
            }
            self.drain().await;
        }
        self.drain().await;
    }

    /// Publishes everything in the outbox that can be published now.
    pub async fn drain(&self) {
        loop {
            match self.drain_batch().await {
                Ok(full) if full => continue,
                Ok(_) => break,
                Err(error) => {
                    tracing::warn!(%error, "cannot read the notification outbox; will try again");
                    break;
                }
            }
        }
        if let Ok(pending) = self.ledger.outbox_len().await {
            self.metrics.outbox_pending.set(pending);
        }
    }

    /// One batch; returns whether it was full and fully published (more may wait).
    async fn drain_batch(&self) -> Result<bool, crate::ledger::LedgerError> {
        let (mut tx, items) = self.ledger.outbox_batch(BATCH).await?;
        let full = items.len() as i64 == BATCH;
        let mut all_published = true;
        for item in &items {
            let bytes = serde_json::to_vec(&item.payload.0).unwrap_or_default();
            let event = match Envelope::<serde_json::Value>::from_json(&bytes, usize::MAX) {
                Ok(event) => event,
                Err(error) => {
                    tracing::error!(event_id = %item.event_id, %error, "undecodable notification in the outbox; dropping it");
                    Ledger::outbox_done(&mut tx, item.id).await?;
                    continue;
                }
            };
            match self
                .publisher
                .publish(
                    &self.exchange,
                    DECISION_ROUTING_KEY,
                    &event,
                    Some(MESSAGE_TYPE_STEADFAST),
                )
                .await
            {
                Ok(()) => self.count("broker", "published"),
                Err(PublishError::Unroutable { .. }) => {
                    tracing::debug!(event_id = %item.event_id, "no queue is bound for decisions; notification not delivered");
                    self.count("broker", "unrouted");
                }
                Err(error) => {
                    tracing::warn!(event_id = %item.event_id, %error, attempts = item.attempts + 1, "publishing a decision failed; it stays in the outbox");
                    self.count("broker", "failed");
                    Ledger::outbox_failed(&mut tx, item.id, &error.to_string()).await?;
                    all_published = false;
                    break;
                }
            }
            Ledger::outbox_done(&mut tx, item.id).await?;
            if let (Some(chat), Some(text)) = (&self.chat, &item.chat_text) {
                match chat.post(text).instrument(notify_span(&event)).await {
                    Ok(()) => self.count("chat", "sent"),
                    Err(error) => {
                        tracing::warn!(event_id = %item.event_id, %error, "posting the decision to chat failed");
                        self.count("chat", "failed");
                    }
                }
            }
        }
        tx.commit()
            .await
            .map_err(crate::ledger::LedgerError::from)?;
        Ok(full && all_published)
    }

    fn count(&self, sink: &str, result: &str) {
        self.metrics
            .notifications
            .with_label_values(&[sink, result])
            .inc();
    }
}

/// The span of telling chat about a decision, in the decision's trace (the notification
/// carries it); none when tracing is off.
fn notify_span(event: &Envelope<serde_json::Value>) -> Span {
    if !trace::enabled() {
        return Span::none();
    }
    let span = tracing::info_span!("herder.notify_chat", event_id = %event.id);
    if let Some(parent) = event.traceparent() {
        trace::continue_trace(&span, &parent);
    }
    span
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(action: &str, outcome: &str) -> DecisionEvent {
        DecisionEvent {
            instance: "gitlab.com".into(),
            project_id: 1,
            project: "cki-project/kernel-ark".into(),
            job_id: 42,
            job_name: "build x86_64".into(),
            job_stage: "build".into(),
            job_url: "https://gitlab.com/cki-project/kernel-ark/-/jobs/42".into(),
            pipeline_id: 7,
            git_ref: "main".into(),
            matcher: Some("image-pull".into()),
            action: action.into(),
            outcome: outcome.into(),
            reason: "matcher `image-pull`: message found".into(),
            attempt: 1,
            retry_limit: Some(3),
            delay_seconds: Some(300.0),
            new_job_id: Some(43),
            log_line: None,
        }
    }

    #[test]
    fn chat_lines_say_what_happens_with_a_link() {
        assert_eq!(
            chat_text(&event("retry", "scheduled")).unwrap(),
            "pipeline-herder: will retry job `build x86_64` #42 (cki-project/kernel-ark, pipeline 7) in 5m (matcher `image-pull`, retry 1 of 3): https://gitlab.com/cki-project/kernel-ark/-/jobs/42"
        );
        assert!(chat_text(&event("retry", "retried")).unwrap().contains(
            "retried job `build x86_64` #42 (cki-project/kernel-ark, pipeline 7) as job #43"
        ));
        assert!(
            chat_text(&event("alert", "reported"))
                .unwrap()
                .starts_with("pipeline-herder ALERT:")
        );
        assert!(
            chat_text(&event("report", "reported"))
                .unwrap()
                .contains("not retried — matcher `image-pull`")
        );
        assert_eq!(chat_text(&event("none", "no_problem")), None);
    }

    #[test]
    fn notifications_have_stable_ids_per_job_and_stage() {
        let n = event("retry", "scheduled").into_notification("decision");
        assert_eq!(n.event_id, "pipeline-herder/gitlab.com/42/decision");
        assert_eq!(n.event["type"], HERDER_DECISION);
        assert_eq!(n.event["id"], n.event_id);
        assert_eq!(n.event["data"]["outcome"], "scheduled");
        assert_eq!(
            n.event["subject"],
            "https://gitlab.com/cki-project/kernel-ark/-/jobs/42"
        );
    }
}

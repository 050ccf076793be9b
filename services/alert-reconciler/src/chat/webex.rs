//! Webex: messages with an adaptive card of approve buttons, and what approval callbacks need.
//!
//! A button carries only an opaque approval id (never a command): pressing it makes Webex call
//! our `attachmentActions` webhook with ids only; we then fetch the attachment action with the
//! bot token to learn who pressed what (`personId`, `messageId`, `roomId`, `inputs`).

use serde::Deserialize;
use serde_json::{Value, json};
use steadfast_service_kit::http_client::{HttpClient, HttpError};
use url::Url;

use super::{SinkError, markdown, truncate};
use crate::config::WebexConfig;
use crate::report::Report;

/// Webex refuses longer message text.
pub const MAX_MARKDOWN: usize = 7000;
const ADAPTIVE_CARD: &str = "application/vnd.microsoft.card.adaptive";

/// A Webex REST API client authenticated as the bot.
#[derive(Clone)]
pub struct WebexClient {
    http: HttpClient,
    api: Url,
    token: String,
}

/// `GET /attachment/actions/{id}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AttachmentAction {
    pub id: String,
    #[serde(rename = "type", default)]
    pub kind: String,
    pub message_id: String,
    pub person_id: String,
    pub room_id: String,
    #[serde(default)]
    pub inputs: Value,
}

#[derive(Deserialize)]
struct Created {
    id: String,
}

#[derive(Deserialize)]
struct Webhooks {
    items: Vec<ExistingWebhook>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ExistingWebhook {
    target_url: String,
    resource: String,
    event: String,
}

impl WebexClient {
    pub fn new(http: HttpClient, config: &WebexConfig) -> Self {
        Self {
            http,
            api: config.api_url.clone(),
            token: config.bot_token.clone(),
        }
    }

    /// `<api>/<segments...>`, each segment percent-encoded (Webex ids are base64).
    fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.api.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        url
    }

    /// Posts a message; returns its id.
    pub async fn post_message(
        &self,
        room_id: &str,
        text: &str,
        card: Option<Value>,
        parent_id: Option<&str>,
    ) -> Result<String, HttpError> {
        let mut body = json!({"roomId": room_id, "markdown": text});
        if let Some(card) = card {
            body["attachments"] = json!([{"contentType": ADAPTIVE_CARD, "content": card}]);
        }
        if let Some(parent) = parent_id {
            body["parentId"] = json!(parent);
        }
        let url = self.url(&["messages"]);
        let response = self
            .http
            .send(|client| {
                client
                    .post(url.clone())
                    .bearer_auth(&self.token)
                    .json(&body)
            })
            .await?;
        let created: Created = read_json(response, "POST", &url).await?;
        Ok(created.id)
    }

    /// Fetches what an `attachmentActions` notification refers to.
    pub async fn attachment_action(&self, id: &str) -> Result<AttachmentAction, HttpError> {
        let url = self.url(&["attachment", "actions", id]);
        let response = self
            .http
            .send(|client| client.get(url.clone()).bearer_auth(&self.token))
            .await?;
        read_json(response, "GET", &url).await
    }

    /// Registers the `attachmentActions`/`created` webhook for `target` unless it exists;
    /// returns whether it created one.
    pub async fn ensure_webhook(&self, target: &Url, secret: &str) -> Result<bool, HttpError> {
        let url = self.url(&["webhooks"]);
        let response = self
            .http
            .send(|client| client.get(url.clone()).bearer_auth(&self.token))
            .await?;
        let existing: Webhooks = read_json(response, "GET", &url).await?;
        if existing.items.iter().any(|w| {
            w.target_url == target.as_str()
                && w.resource == "attachmentActions"
                && w.event == "created"
        }) {
            return Ok(false);
        }
        let body = json!({
            "name": "steadfast alert-reconciler approvals",
            "targetUrl": target.as_str(),
            "resource": "attachmentActions",
            "event": "created",
            "secret": secret,
        });
        self.http
            .send(|client| {
                client
                    .post(url.clone())
                    .bearer_auth(&self.token)
                    .json(&body)
            })
            .await?;
        Ok(true)
    }
}

/// The Webex sink: one message per report in the configured room; outcomes and closings
/// reply in the thread of the incident's analysis.
#[derive(Clone)]
pub struct WebexSink {
    client: WebexClient,
    room_id: String,
}

impl WebexSink {
    pub fn new(client: WebexClient, room_id: String) -> Self {
        Self { client, room_id }
    }

    pub fn client(&self) -> &WebexClient {
        &self.client
    }

    pub async fn deliver(
        &self,
        report: &Report,
        thread: Option<&str>,
    ) -> Result<Option<String>, SinkError> {
        let text = markdown(report);
        let (card, parent) = match report {
            Report::Analysis { .. } => (card(report), None),
            _ => (None, thread),
        };
        let id = self
            .client
            .post_message(&self.room_id, &text, card, parent)
            .await?;
        Ok(Some(id))
    }
}

/// The adaptive card of an analysis: the findings and one approve button per approvable
/// action. `None` when there is nothing to press.
pub fn card(report: &Report) -> Option<Value> {
    let Report::Analysis {
        incident,
        findings,
        actions,
        ..
    } = report
    else {
        return None;
    };
    let buttons: Vec<Value> = actions
        .iter()
        .filter_map(|a| {
            a.approval_id.map(|id| {
                json!({
                    "type": "Action.Submit",
                    "title": format!("Approve {}", a.name),
                    "data": {"approval_id": id, "action": a.name, "incident": incident.id},
                })
            })
        })
        .collect();
    if buttons.is_empty() {
        return None;
    }
    let mut body = vec![json!({
        "type": "TextBlock", "text": truncate(&incident.title, 200),
        "weight": "Bolder", "size": "Medium", "wrap": true,
    })];
    for finding in findings {
        body.push(json!({
            "type": "TextBlock",
            "text": format!("{} — {}", finding.recipe, finding.status.replace('_', " ")),
            "weight": "Bolder", "wrap": true,
        }));
        if !finding.analysis.trim().is_empty() {
            body.push(json!({"type": "TextBlock", "text": truncate(finding.analysis.trim(), 1000), "wrap": true}));
        }
        // Without a result, the reason is the finding: never leave a recipe unexplained.
        let notes = finding.detail.iter().chain(finding.reruns.iter());
        for note in notes {
            body.push(json!({"type": "TextBlock", "text": truncate(note, 300), "wrap": true, "isSubtle": true}));
        }
    }
    let facts: Vec<Value> = actions
        .iter()
        .filter(|a| a.approval_id.is_some())
        .map(|a| {
            json!({
                "title": a.name,
                "value": if a.description.is_empty() { format!("suggested by {}", a.suggested_by.join(", ")) } else { a.description.clone() },
            })
        })
        .collect();
    body.push(json!({"type": "FactSet", "facts": facts}));
    Some(json!({
        "type": "AdaptiveCard",
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "version": "1.3",
        "body": body,
        "actions": buttons,
    }))
}

/// The JSON body of a successful answer; a body that does not decode is reported like a
/// transport failure of that request.
async fn read_json<T: serde::de::DeserializeOwned>(
    response: reqwest::Response,
    method: &str,
    url: &Url,
) -> Result<T, HttpError> {
    response
        .json()
        .await
        .map_err(|source| HttpError::Transport {
            method: method.into(),
            url: url.to_string(),
            source,
        })
}

#[cfg(test)]
mod tests {
    use axum::Router;
    use axum::http::HeaderMap;
    use axum::routing::post;
    use steadfast_telemetry::trace;
    use tracing::Instrument;

    use super::*;

    #[tokio::test]
    async fn a_message_to_webex_carries_the_reports_trace() {
        let seen = steadfast_test_support::HeaderLog::traceparent();
        let record = seen.clone();
        let api = steadfast_test_support::spawn_http(Router::new().route(
            "/v1/messages",
            post(move |headers: HeaderMap| {
                record.record(&headers);
                async { axum::Json(json!({"id": "message-1"})) }
            }),
        ))
        .await;
        let config = WebexConfig {
            api_url: format!("{api}/v1").parse().unwrap(),
            bot_token: "bot".into(),
            room_id: "room".into(),
            webhook_secret: "secret".into(),
            approvers: Vec::new(),
            webhook_url: None,
        };
        let client = WebexClient::new(crate::chat::http_client(), &config);

        let _tracer = trace::testing::local_tracer();
        let report = tracing::info_span!("reconciler.chat_report");
        let report_trace = trace::traceparent(&report).unwrap().trace_id();
        let id = client
            .post_message("room", "hello", None, None)
            .instrument(report)
            .await
            .unwrap();
        assert_eq!(id, "message-1");
        let header = seen.values()[0].clone().expect("a traceparent header");
        assert_eq!(header.split('-').nth(1), Some(report_trace.as_str()));
    }
}

//! `POST /webhook`: Euphrosyne's alert intake, made durable.
//!
//! The notification (Alertmanager v4 or Grafana) is split into one event per alert and each is
//! published — with confirms — to `<ns>.webhooks` as the webhook-receiver would publish it, so
//! it reaches the alert queue like any other. 200 means every alert is safely on the broker;
//! 503 (which Alertmanager retries) means try again.

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use steadfast_events::Envelope;
use steadfast_events::catalogue::{ALERTMANAGER_ALERT, MESSAGE_TYPE_ALERTMANAGER};
use steadfast_service_kit::problem::parse_json_body;

use super::{ApiState, MAX_WEBHOOK_BYTES, deny_unless_bearer, problem, read_body, unavailable};
use crate::alert::split_notification;

pub async fn receive(State(state): State<ApiState>, headers: HeaderMap, body: Body) -> Response {
    if let Some(denied) = state
        .webhook_token
        .as_deref()
        .and_then(|token| deny_unless_bearer(&headers, token))
    {
        return denied;
    }
    let body = match read_body(body, MAX_WEBHOOK_BYTES).await {
        Ok(body) => body,
        Err(response) => return response,
    };
    let notification: Value = match parse_json_body(&headers, &body) {
        Ok(value) => value,
        Err(problem) => return problem.into_response(),
    };
    // The receiver's source: externalURL, or a URN naming the receiver.
    let source = notification
        .get("externalURL")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty() && !s.chars().any(char::is_whitespace))
        .map(str::to_owned)
        .unwrap_or_else(|| {
            let receiver = notification
                .get("receiver")
                .and_then(Value::as_str)
                .unwrap_or("default");
            format!("urn:alertmanager:{}", receiver.replace(['.', ' '], "_"))
        });
    let alerts = match split_notification(notification) {
        Ok(alerts) => alerts,
        Err(error) => {
            return problem(
                StatusCode::BAD_REQUEST,
                format!("invalid notification: {error}"),
            );
        }
    };
    for alert in &alerts {
        let subject = alert.data["fingerprint"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let event = Envelope::new(source.clone(), ALERTMANAGER_ALERT, alert.data.clone())
            .with_id(alert.id.clone())
            .with_subject(subject);
        if let Err(error) = state
            .publisher
            .publish(
                &state.exchange,
                &alert.routing_key,
                &event,
                Some(MESSAGE_TYPE_ALERTMANAGER),
            )
            .await
        {
            tracing::warn!(%error, event_id = %alert.id, "cannot publish an alert from POST /webhook");
            return unavailable(format!("the alert could not be queued: {error}"));
        }
    }
    (
        StatusCode::OK,
        Json(json!({"message": "Alert received and processed", "alerts": alerts.len()})),
    )
        .into_response()
}

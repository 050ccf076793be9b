//! `POST /webex/attachment-actions`: someone pressed an approve button.
//!
//! In this order, each refusal before anything is looked up:
//! 1. `X-Spark-Signature` must be the HMAC-SHA1 of the raw body under the webhook secret
//!    (401 otherwise; nothing is parsed before);
//! 2. the notification must be `attachmentActions`/`created` (others are acknowledged, 202);
//! 3. the attachment action is fetched from Webex with the bot token — its `personId`,
//!    `roomId`, `messageId` and `inputs` come from Webex, never from the callback body;
//! 4. the room must be ours and the person an approver (403);
//! 5. the card's `approval_id` must name an approval on that very message (404 / 403);
//! 6. the approval must be pending (409 if already used, 410 if expired or cancelled).

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use steadfast_service_kit::auth;
use steadfast_service_kit::problem::parse_json;
use uuid::Uuid;

use super::{ApiState, MAX_API_BYTES, approval_error, problem, read_body, unavailable};
use crate::approvals::{Via, approve_by_id};

#[derive(Deserialize)]
struct Notification {
    resource: String,
    event: String,
    data: NotificationData,
}

#[derive(Deserialize)]
struct NotificationData {
    id: String,
}

pub async fn callback(State(state): State<ApiState>, headers: HeaderMap, body: Body) -> Response {
    let metrics = &state.ctx.metrics;
    let refuse = |decision: &str, status: StatusCode, detail: String| {
        metrics
            .approvals
            .with_label_values(&["webex", decision])
            .inc();
        tracing::warn!(decision, %detail, "Webex approval refused");
        problem(status, detail)
    };
    let Some(webex) = &state.webex else {
        return problem(StatusCode::NOT_FOUND, "Webex approvals are not configured");
    };
    let body = match read_body(body, MAX_API_BYTES).await {
        Ok(body) => body,
        Err(response) => return response,
    };
    let signature = headers
        .get("x-spark-signature")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if signature.is_empty() || !auth::verify_hmac_sha1(webex.secret.as_bytes(), &body, signature) {
        return refuse(
            "bad_signature",
            StatusCode::UNAUTHORIZED,
            "missing or invalid X-Spark-Signature".into(),
        );
    }
    let notification: Notification = match parse_json(&body) {
        Ok(notification) => notification,
        Err(problem) => return problem.into_response(),
    };
    if notification.resource != "attachmentActions" || notification.event != "created" {
        return (
            StatusCode::ACCEPTED,
            Json(json!({"ignored": format!("{}/{} is not an approval", notification.resource, notification.event)})),
        )
            .into_response();
    }
    let id = notification.data.id;
    if id.is_empty() || id.len() > 512 {
        return problem(
            StatusCode::BAD_REQUEST,
            "data.id is not an attachment action id",
        );
    }
    let action = match webex.client.attachment_action(&id).await {
        Ok(action) => action,
        Err(error) if error.status().is_some_and(|s| s.is_client_error()) => {
            return refuse(
                "not_found",
                StatusCode::BAD_REQUEST,
                format!("Webex does not know attachment action `{id}`"),
            );
        }
        Err(error) => {
            tracing::warn!(%error, "cannot fetch the attachment action");
            return unavailable("Webex could not be asked who pressed the button; try again");
        }
    };
    if action.room_id != webex.room_id {
        return refuse(
            "forbidden",
            StatusCode::FORBIDDEN,
            "the card is not in the room the reconciler reports to".into(),
        );
    }
    if !webex.approvers.contains(&action.person_id) {
        return refuse(
            "forbidden",
            StatusCode::FORBIDDEN,
            format!("person {} may not approve actions", action.person_id),
        );
    }
    let Some(approval) = action
        .inputs
        .get("approval_id")
        .and_then(|v| v.as_str())
        .and_then(|v| v.parse::<Uuid>().ok())
    else {
        return problem(
            StatusCode::BAD_REQUEST,
            "the card input carries no approval_id",
        );
    };
    let actor = format!("webex:{}", action.person_id);
    match approve_by_id(&state.ctx, approval, &action.message_id, &actor, Via::Webex).await {
        Ok(approved) => (
            StatusCode::OK,
            Json(json!({"approved": approved.action, "run": approved.run, "approval": approved.approval})),
        )
            .into_response(),
        Err(error) => {
            metrics
                .approvals
                .with_label_values(&["webex", error.decision()])
                .inc();
            tracing::warn!(%error, %actor, "Webex approval refused");
            approval_error(&error)
        }
    }
}

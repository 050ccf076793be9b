//! The HTTP interface (on `HTTP_LISTEN`, beside `/healthz` and `/readyz`).
//!
//! | route | auth | what |
//! |---|---|---|
//! | `POST /webhook` | `RECONCILER_WEBHOOK_TOKEN` if set | Euphrosyne's alert intake: split, published to the alert queue, then 200 |
//! | `POST /webex/attachment-actions` | `X-Spark-Signature` | Webex approval button callbacks |
//! | `POST /api/actions` | bearer | Euphrosyne's approval interface, `{uuid, actions: [{name, data}], force?, approver?}` |
//! | `POST /api/actions/reject` | bearer | rejects a suggested action, `{uuid, action, approver, reason?}` |
//! | `POST /api/status` | bearer | Euphrosyne's recipe status (also pushed to its bot) |
//! | `GET /api/incidents?state=&limit=&before=` | bearer | incidents newest first, a page at a time, with counts per state |
//! | `GET /api/incidents/{id}` | bearer | one incident with alerts, runs, results, approvals, audit, deliveries |
//! | `GET /api/recipes` | bearer | the registry in force and the last refused version |
//!
//! Errors are RFC 9457 problems naming the reason; nothing a sender can send yields a 500.

mod actions;
mod incidents;
mod webex;
mod webhook;

use std::collections::HashSet;
use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use steadfast_messaging::Publisher;
use steadfast_service_kit::auth;
use steadfast_service_kit::problem::Problem;
use steadfast_telemetry::trace;
use tracing::Instrument;

use crate::chat::WebexClient;
use crate::context::Context;

/// `POST /webhook` bodies: Alertmanager sends every firing alert of a group at once.
pub const MAX_WEBHOOK_BYTES: usize = 4 * 1024 * 1024;
/// Every other request body.
pub const MAX_API_BYTES: usize = 64 * 1024;

/// What the Webex callback needs.
#[derive(Clone)]
pub struct WebexCallbacks {
    pub client: WebexClient,
    pub secret: String,
    pub approvers: HashSet<String>,
    pub room_id: String,
}

#[derive(Clone)]
pub struct ApiState {
    pub ctx: Arc<Context>,
    pub api_token: Arc<str>,
    pub webhook_token: Option<Arc<str>>,
    pub webex: Option<WebexCallbacks>,
    pub publisher: Publisher,
    /// `<ns>.webhooks`, where `POST /webhook` publishes.
    pub exchange: String,
}

pub fn router(state: ApiState) -> Router {
    Router::new()
        .route("/webhook", post(webhook::receive))
        .route("/webex/attachment-actions", post(webex::callback))
        .route("/api/actions", post(actions::approve))
        .route("/api/actions/reject", post(actions::reject))
        .route("/api/status", post(incidents::status))
        .route("/api/incidents", get(incidents::list))
        .route("/api/incidents/{id}", get(incidents::show))
        .route("/api/recipes", get(incidents::recipes))
        .route_layer(axum::middleware::from_fn(traced))
        .with_state(state)
}

/// With spans exported, each request is a server span continuing the caller's `traceparent`
/// (Euphrosyne's, say); without, nothing is added.
async fn traced(request: Request, next: Next) -> Response {
    if !trace::enabled() {
        return next.run(request).await;
    }
    let route = request.extensions().get::<MatchedPath>().map_or_else(
        || request.uri().path().to_owned(),
        |p| p.as_str().to_owned(),
    );
    let span = trace::http_server_span(request.method().as_str(), &route, request.headers());
    let response = next.run(request).instrument(span.clone()).await;
    trace::record_status(&span, response.status().as_u16());
    response
}

/// Reads at most `limit` bytes of body, or a 413 that says so.
pub async fn read_body(body: Body, limit: usize) -> Result<Bytes, Response> {
    axum::body::to_bytes(body, limit).await.map_err(|_| {
        Problem::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the request body exceeds {limit} bytes"),
        )
        .into_response()
    })
}

/// `None` when the request carries `Bearer <token>`, else the 401 (with a `WWW-Authenticate`
/// challenge) to answer.
pub fn deny_unless_bearer(headers: &HeaderMap, token: &str) -> Option<Response> {
    if auth::bearer_matches(headers, token) {
        return None;
    }
    let mut response = Problem::unauthorized().into_response();
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"alert-reconciler\""),
    );
    Some(response)
}

/// A problem response with `status` and `detail`.
pub fn problem(status: StatusCode, detail: impl Into<String>) -> Response {
    Problem::new(status, detail).into_response()
}

/// 503 for a dependency that is down, with a hint when to retry.
pub fn unavailable(detail: impl Into<String>) -> Response {
    let mut response = problem(StatusCode::SERVICE_UNAVAILABLE, detail);
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
    response
}

/// The HTTP answer for a failed approval.
pub fn approval_error(error: &crate::approvals::ApprovalError) -> Response {
    use crate::approvals::ApprovalError as E;
    let status = match error {
        E::IncidentNotFound { .. } | E::ApprovalNotFound(_) => StatusCode::NOT_FOUND,
        E::IncidentClosed { .. } | E::Expired { .. } | E::Cancelled { .. } => StatusCode::GONE,
        E::StillInvestigating(_) | E::AlreadyApproved { .. } | E::Rejected { .. } => {
            StatusCode::CONFLICT
        }
        E::NotSuggested { .. } | E::UnknownAction { .. } | E::NothingToReject { .. } => {
            StatusCode::UNPROCESSABLE_ENTITY
        }
        E::WrongMessage => StatusCode::FORBIDDEN,
        E::Store(error) => {
            tracing::error!(%error, "approval failed on the database");
            return unavailable("the incident store is unavailable; try again");
        }
    };
    problem(status, error.to_string())
}

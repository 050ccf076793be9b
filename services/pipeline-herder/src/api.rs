//! The admin API on `HTTP_LISTEN`, next to `/healthz` and `/readyz`.
//!
//! * `GET  /api/pause` — the pause switch `{"paused", "reason", "by", "since"}` (no token: it
//!   is also in `/readyz`);
//! * `POST /api/pause` — turn every retry into a report; optional JSON body
//!   `{"reason": "...", "by": "..."}` (`by`: who, for an admin client acting for a person;
//!   `api` when absent);
//! * `POST /api/resume` — retry again; the same optional body;
//! * `GET  /api/decisions` — decisions from the ledger, newest first; query parameters
//!   `limit` (1 to 500, default 50), `before` (a decision id: older ones only, for paging) and
//!   the exact filters `instance`, `project` (the project path), `matcher`, `action`, `state`;
//! * `GET  /api/decisions/{id}` — `{"decision": {...}, "chain": [...]}`: one decision and
//!   every decision of its job's lineage (the job, its retries, their retries), oldest first.
//!
//! Changes and history need `Authorization: Bearer <HERDER_ADMIN_TOKEN>`; without a
//! configured token they answer 403. Errors are RFC 9457 problems.

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::{Deserialize, Serialize};
use steadfast_service_kit::problem::{Problem, bearer_refusal, parse_json_body};

use crate::ledger::{DecisionFilter, DecisionRow, Ledger};
use crate::pause::PauseSwitch;

/// Request bodies are a reason and a name at most.
pub const MAX_BODY_BYTES: usize = 4 * 1024;
const MAX_REASON_CHARS: usize = 500;
const MAX_BY_CHARS: usize = 200;
/// Who changed the switch when the caller does not say.
const DEFAULT_BY: &str = "api";

#[derive(Clone)]
struct ApiState {
    pause: PauseSwitch,
    ledger: Ledger,
    admin_token: Option<String>,
}

pub fn router(pause: PauseSwitch, ledger: Ledger, admin_token: Option<String>) -> Router {
    Router::new()
        .route("/api/pause", get(get_pause).post(pause_on))
        .route("/api/resume", axum::routing::post(resume))
        .route("/api/decisions", get(decisions))
        .route("/api/decisions/{id}", get(decision))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(ApiState {
            pause,
            ledger,
            admin_token,
        })
}

/// The refusal, unless the request carries the admin token.
fn refusal(state: &ApiState, headers: &HeaderMap) -> Option<Response> {
    bearer_refusal(
        headers,
        state.admin_token.as_deref(),
        "the admin API is disabled: set HERDER_ADMIN_TOKEN to enable it",
    )
}

fn unavailable(error: impl std::fmt::Display) -> Response {
    tracing::error!(%error, "admin API: database unavailable");
    Problem::new(
        StatusCode::SERVICE_UNAVAILABLE,
        format!("the ledger database is unavailable: {error}"),
    )
    .into_response()
}

fn body_problem(rejection: BytesRejection) -> Response {
    let status = rejection.status();
    let detail = if status == StatusCode::PAYLOAD_TOO_LARGE {
        format!("the request body is larger than {MAX_BODY_BYTES} bytes")
    } else {
        rejection.body_text()
    };
    Problem::new(status, detail).into_response()
}

async fn get_pause(State(state): State<ApiState>) -> Response {
    match state.pause.state().await {
        Ok(pause) => Json(pause).into_response(),
        Err(error) => unavailable(error),
    }
}

/// The body of `POST /api/pause` and `POST /api/resume`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct SwitchRequest {
    #[serde(default)]
    reason: Option<String>,
    #[serde(default)]
    by: Option<String>,
}

impl SwitchRequest {
    /// The reason (blank means none) and who asks (`api` unless named), or why they are
    /// refused.
    fn checked(&self) -> Result<(Option<&str>, &str), String> {
        let reason = self
            .reason
            .as_deref()
            .map(str::trim)
            .filter(|r| !r.is_empty());
        if reason.is_some_and(|r| r.chars().count() > MAX_REASON_CHARS) {
            return Err(format!(
                "`reason` is longer than {MAX_REASON_CHARS} characters"
            ));
        }
        let by = match self.by.as_deref().map(str::trim) {
            None => DEFAULT_BY,
            Some("") => {
                return Err("`by` is empty: name who changes the switch, or leave `by` out".into());
            }
            Some(by) if by.chars().count() > MAX_BY_CHARS => {
                return Err(format!("`by` is longer than {MAX_BY_CHARS} characters"));
            }
            Some(by) => by,
        };
        Ok((reason, by))
    }
}

fn bad_request(detail: impl Into<String>) -> Response {
    Problem::bad_request(detail).into_response()
}

async fn pause_on(
    State(state): State<ApiState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    switch(state, headers, body, true).await
}

async fn resume(
    State(state): State<ApiState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    switch(state, headers, body, false).await
}

async fn switch(
    state: ApiState,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
    paused: bool,
) -> Response {
    if let Some(response) = refusal(&state, &headers) {
        return response;
    }
    let body = match body {
        Ok(body) => body,
        Err(rejection) => return body_problem(rejection),
    };
    // No body at all is the common case (`curl -X POST`): nothing to say.
    let request = if body.iter().all(u8::is_ascii_whitespace) {
        SwitchRequest::default()
    } else {
        match parse_json_body::<SwitchRequest>(&headers, &body) {
            Ok(request) => request,
            Err(problem) => return problem.into_response(),
        }
    };
    let (reason, by) = match request.checked() {
        Ok(checked) => checked,
        Err(detail) => return bad_request(detail),
    };
    match state.pause.set(paused, reason, by).await {
        Ok(pause) => Json(pause).into_response(),
        Err(error) => unavailable(error),
    }
}

/// The query of `GET /api/decisions`; an unknown parameter is refused, not ignored, so a
/// misspelt filter never silently lists everything.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DecisionsQuery {
    limit: Option<i64>,
    before: Option<i64>,
    instance: Option<String>,
    project: Option<String>,
    matcher: Option<String>,
    action: Option<String>,
    state: Option<String>,
}

async fn decisions(
    State(state): State<ApiState>,
    headers: HeaderMap,
    query: Result<Query<DecisionsQuery>, QueryRejection>,
) -> Response {
    if let Some(response) = refusal(&state, &headers) {
        return response;
    }
    let query = match query {
        Ok(Query(query)) => query,
        Err(rejection) => return bad_request(rejection.body_text()),
    };
    let limit = query.limit.unwrap_or(50);
    if !(1..=500).contains(&limit) {
        return bad_request("`limit` must be between 1 and 500");
    }
    let filter = DecisionFilter {
        instance: query.instance,
        project_path: query.project,
        matcher: query.matcher,
        action: query.action,
        state: query.state,
        before: query.before,
    };
    match state.ledger.list(&filter, limit).await {
        Ok(rows) => Json(rows).into_response(),
        Err(error) => unavailable(error),
    }
}

#[derive(Serialize)]
struct DecisionDetail {
    decision: DecisionRow,
    chain: Vec<DecisionRow>,
}

async fn decision(
    State(state): State<ApiState>,
    headers: HeaderMap,
    id: Result<Path<String>, PathRejection>,
) -> Response {
    if let Some(response) = refusal(&state, &headers) {
        return response;
    }
    let id = match id {
        Ok(Path(id)) => id,
        Err(rejection) => return bad_request(rejection.body_text()),
    };
    let Some(id) = id.parse::<i64>().ok().filter(|id| *id > 0) else {
        return bad_request(format!(
            "the decision id must be a positive integer, not `{id}`"
        ));
    };
    let decision = match state.ledger.get(id).await {
        Ok(Some(decision)) => decision,
        Ok(None) => {
            return Problem::new(StatusCode::NOT_FOUND, format!("decision {id} not found"))
                .into_response();
        }
        Err(error) => return unavailable(error),
    };
    match state.ledger.lineage(&decision).await {
        Ok(chain) => Json(DecisionDetail { decision, chain }).into_response(),
        Err(error) => unavailable(error),
    }
}

//! The admin API on `HTTP_LISTEN`, next to `/healthz` and `/readyz`.
//!
//! * `GET  /api/pause` — the pause switch (no token: it is also in `/readyz`);
//! * `POST /api/pause` — turn every retry into a report; optional JSON body
//!   `{"reason": "..."}`;
//! * `POST /api/resume` — retry again;
//! * `GET  /api/decisions?limit=N` — the latest decisions from the ledger (default 50, at
//!   most 500).
//!
//! Changes and history need `Authorization: Bearer <HERDER_ADMIN_TOKEN>`; without a
//! configured token they answer 403. Errors are RFC 9457 problems.

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;
use steadfast_service_kit::auth::bearer_matches;
use steadfast_service_kit::problem::{Problem, parse_json_body};

use crate::ledger::Ledger;
use crate::pause::PauseSwitch;

/// Request bodies are a reason at most.
pub const MAX_BODY_BYTES: usize = 4 * 1024;
const MAX_REASON_CHARS: usize = 500;

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
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(ApiState {
            pause,
            ledger,
            admin_token,
        })
}

/// The refusal, unless the request carries the admin token.
fn refusal(state: &ApiState, headers: &HeaderMap) -> Option<Response> {
    match &state.admin_token {
        None => Some(
            Problem::new(
                StatusCode::FORBIDDEN,
                "the admin API is disabled: set HERDER_ADMIN_TOKEN to enable it",
            )
            .into_response(),
        ),
        Some(token) if bearer_matches(headers, token) => None,
        Some(_) => {
            let mut response = Problem::unauthorized().into_response();
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                "Bearer".parse().expect("static header"),
            );
            Some(response)
        }
    }
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

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct PauseRequest {
    #[serde(default)]
    reason: Option<String>,
}

async fn pause_on(
    State(state): State<ApiState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    if let Some(response) = refusal(&state, &headers) {
        return response;
    }
    let body = match body {
        Ok(body) => body,
        Err(rejection) => return body_problem(rejection),
    };
    let request = if body.iter().all(u8::is_ascii_whitespace) {
        PauseRequest::default()
    } else {
        match parse_json_body::<PauseRequest>(&headers, &body) {
            Ok(request) => request,
            Err(problem) => return problem.into_response(),
        }
    };
    let reason = request
        .reason
        .as_deref()
        .map(str::trim)
        .filter(|r| !r.is_empty());
    if reason.is_some_and(|r| r.chars().count() > MAX_REASON_CHARS) {
        return Problem::bad_request(format!(
            "`reason` is longer than {MAX_REASON_CHARS} characters"
        ))
        .into_response();
    }
    match state.pause.set(true, reason).await {
        Ok(pause) => Json(pause).into_response(),
        Err(error) => unavailable(error),
    }
}

async fn resume(
    State(state): State<ApiState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    if let Some(response) = refusal(&state, &headers) {
        return response;
    }
    if let Err(rejection) = body {
        return body_problem(rejection);
    }
    match state.pause.set(false, None).await {
        Ok(pause) => Json(pause).into_response(),
        Err(error) => unavailable(error),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DecisionsQuery {
    limit: Option<i64>,
}

async fn decisions(
    State(state): State<ApiState>,
    headers: HeaderMap,
    query: Result<Query<DecisionsQuery>, QueryRejection>,
) -> Response {
    if let Some(response) = refusal(&state, &headers) {
        return response;
    }
    let limit = match query {
        Ok(Query(q)) => q.limit.unwrap_or(50),
        Err(rejection) => return Problem::bad_request(rejection.body_text()).into_response(),
    };
    if !(1..=500).contains(&limit) {
        return Problem::bad_request("`limit` must be between 1 and 500").into_response();
    }
    match state.ledger.recent(limit).await {
        Ok(rows) => Json(rows).into_response(),
        Err(error) => unavailable(error),
    }
}

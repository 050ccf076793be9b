//! `POST /api/actions`: Euphrosyne's approval interface, authenticated.
//!
//! Body: `{"uuid": "<incident id or its debugging run id>", "actions": [{"name": "...",
//! "data": {...}}], "force": false, "approver": "who"}`. Every action is approved or none is;
//! `202` lists the runs started.

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use steadfast_service_kit::problem::parse_json_body;
use uuid::Uuid;

use super::{
    ApiState, MAX_API_BYTES, approval_error, deny_unless_bearer, problem, read_body, unavailable,
};
use crate::approvals::{ActionRequest, Via, approve as approve_actions};
use crate::store::incidents;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ActionsRequest {
    uuid: String,
    actions: Vec<ActionItem>,
    #[serde(default)]
    force: bool,
    /// Who approved, for the audit log (the bot knows; the token alone does not say).
    #[serde(default)]
    approver: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ActionItem {
    name: String,
    #[serde(default)]
    data: Option<Value>,
}

pub async fn approve(State(state): State<ApiState>, headers: HeaderMap, body: Body) -> Response {
    if let Some(response) = deny_unless_bearer(&headers, &state.api_token) {
        state
            .ctx
            .metrics
            .approvals
            .with_label_values(&["api", "unauthorized"])
            .inc();
        return response;
    }
    let body = match read_body(body, MAX_API_BYTES).await {
        Ok(body) => body,
        Err(response) => return response,
    };
    let request: ActionsRequest = match parse_json_body(&headers, &body) {
        Ok(request) => request,
        Err(problem) => return problem.into_response(),
    };
    if request.actions.is_empty() {
        return problem(
            StatusCode::BAD_REQUEST,
            "`actions` is empty: name at least one action",
        );
    }
    for item in &request.actions {
        if item.name.trim().is_empty() {
            return problem(StatusCode::BAD_REQUEST, "every action needs a `name`");
        }
        if item
            .data
            .as_ref()
            .is_some_and(|d| !d.is_object() && !d.is_null())
        {
            return problem(
                StatusCode::BAD_REQUEST,
                format!("the `data` of action `{}` must be an object", item.name),
            );
        }
    }
    let Ok(id) = request.uuid.parse::<Uuid>() else {
        return problem(
            StatusCode::BAD_REQUEST,
            format!("`uuid` `{}` is not a UUID", request.uuid),
        );
    };
    let incident = match resolve_incident(&state, id).await {
        Ok(Some(incident)) => incident,
        Ok(None) => return problem(StatusCode::NOT_FOUND, format!("no incident `{id}`")),
        Err(response) => return response,
    };
    let approver = request
        .approver
        .as_deref()
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .map(|a| crate::chat::truncate(a, 200));
    let actor = match approver {
        Some(name) => format!("api:{name}"),
        None => "api".to_owned(),
    };
    let actions: Vec<ActionRequest> = request
        .actions
        .into_iter()
        .map(|a| ActionRequest {
            name: a.name,
            data: a.data.filter(|d| !d.is_null()),
        })
        .collect();
    match approve_actions(
        &state.ctx,
        incident,
        &actions,
        &actor,
        request.force,
        Via::Api,
    )
    .await
    {
        Ok(approved) => (
            StatusCode::ACCEPTED,
            Json(json!({
                "message": "Response Request received and processed",
                "incident": incident,
                "runs": approved,
            })),
        )
            .into_response(),
        Err(error) => {
            state
                .ctx
                .metrics
                .approvals
                .with_label_values(&["api", error.decision()])
                .inc();
            tracing::warn!(%error, %actor, incident_id = %incident, "API approval refused");
            approval_error(&error)
        }
    }
}

/// The incident `id` names: an incident id, or the id of one of its runs (the `uuid` recipes
/// and Euphrosyne's bot saw).
pub async fn resolve_incident(state: &ApiState, id: Uuid) -> Result<Option<Uuid>, Response> {
    let mut conn = state
        .ctx
        .pool
        .acquire()
        .await
        .map_err(|_| unavailable("the incident store is unavailable; try again"))?;
    if incidents::get(&mut conn, id)
        .await
        .map_err(|_| unavailable("the incident store is unavailable; try again"))?
        .is_some()
    {
        return Ok(Some(id));
    }
    let run = crate::store::runs::get(&mut conn, id)
        .await
        .map_err(|_| unavailable("the incident store is unavailable; try again"))?;
    Ok(run.map(|r| r.incident_id))
}

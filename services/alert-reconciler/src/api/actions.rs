//! `POST /api/actions`: Euphrosyne's approval interface, authenticated.
//!
//! Body: `{"uuid": "<incident id or its debugging run id>", "actions": [{"name": "...",
//! "data": {...}}], "force": false, "approver": "who"}`. Every action is approved or none is;
//! `202` lists the runs started.
//!
//! `POST /api/actions/reject`: `{"uuid": "...", "action": "...", "approver": "who", "reason":
//! "why"}` closes that suggested action's approval as rejected; `200` returns the approval.
//!
//! Either way the audit's actor is `api:<approver>` (`api` alone when an approval names none):
//! the reconciler cannot check who stands behind the token, so the entry says by which door
//! the name came in.

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
use crate::approvals::{
    ActionRequest, ApprovalError, Via, approve as approve_actions, reject as reject_action,
};
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

/// Longest `approver` of a rejection, in characters.
pub const MAX_APPROVER_CHARS: usize = 200;
/// Longest `reason` of a rejection, in characters.
pub const MAX_REASON_CHARS: usize = 500;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RejectRequest {
    uuid: String,
    action: String,
    /// Who rejects: required, a rejection is a person's decision.
    approver: String,
    #[serde(default)]
    reason: Option<String>,
}

/// The token checked (a refusal counted as an unauthorized approval), the body read within
/// its limit and parsed: what approving and rejecting both start with.
async fn authorised_request<T: serde::de::DeserializeOwned>(
    state: &ApiState,
    headers: &HeaderMap,
    body: Body,
) -> Result<T, Box<Response>> {
    if let Some(response) = deny_unless_bearer(headers, &state.api_token) {
        state
            .ctx
            .metrics
            .approvals
            .with_label_values(&["api", "unauthorized"])
            .inc();
        return Err(Box::new(response));
    }
    let body = read_body(body, MAX_API_BYTES).await.map_err(Box::new)?;
    parse_json_body(headers, &body).map_err(|problem| Box::new(problem.into_response()))
}

pub async fn approve(State(state): State<ApiState>, headers: HeaderMap, body: Body) -> Response {
    let request: ActionsRequest = match authorised_request(&state, &headers, body).await {
        Ok(request) => request,
        Err(response) => return *response,
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
    let incident = match incident_named(&state, &request.uuid).await {
        Ok(incident) => incident,
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
        Err(error) => refused(&state, &error, &actor, incident, "API approval refused"),
    }
}

/// `POST /api/actions/reject`
pub async fn reject(State(state): State<ApiState>, headers: HeaderMap, body: Body) -> Response {
    let request: RejectRequest = match authorised_request(&state, &headers, body).await {
        Ok(request) => request,
        Err(response) => return *response,
    };
    let action = request.action.trim();
    if action.is_empty() {
        return problem(
            StatusCode::BAD_REQUEST,
            "`action` is empty: name the action to reject",
        );
    }
    let approver = request.approver.trim();
    if approver.is_empty() {
        return problem(
            StatusCode::BAD_REQUEST,
            "`approver` is empty: say who rejects the action",
        );
    }
    let approver_chars = approver.chars().count();
    if approver_chars > MAX_APPROVER_CHARS {
        return problem(
            StatusCode::BAD_REQUEST,
            format!("`approver` is {approver_chars} characters long; at most {MAX_APPROVER_CHARS}"),
        );
    }
    let reason = request
        .reason
        .as_deref()
        .map(str::trim)
        .filter(|r| !r.is_empty());
    if let Some(reason) = reason {
        let chars = reason.chars().count();
        if chars > MAX_REASON_CHARS {
            return problem(
                StatusCode::BAD_REQUEST,
                format!("`reason` is {chars} characters long; at most {MAX_REASON_CHARS}"),
            );
        }
    }
    let incident = match incident_named(&state, &request.uuid).await {
        Ok(incident) => incident,
        Err(response) => return response,
    };
    let actor = format!("api:{approver}");
    match reject_action(&state.ctx, incident, action, &actor, reason, Via::Api).await {
        Ok(approval) => Json(json!({
            "message": "Action rejected",
            "incident": incident,
            "approval": approval,
        }))
        .into_response(),
        Err(error) => refused(&state, &error, &actor, incident, "API rejection refused"),
    }
}

/// A refused approval or rejection: counted, logged with who asked, answered with its reason.
fn refused(
    state: &ApiState,
    error: &ApprovalError,
    actor: &str,
    incident: Uuid,
    what: &'static str,
) -> Response {
    state
        .ctx
        .metrics
        .approvals
        .with_label_values(&["api", error.decision()])
        .inc();
    tracing::warn!(%error, %actor, incident_id = %incident, "{what}");
    approval_error(error)
}

/// The incident `uuid` names (see [`resolve_incident`]), or the 400/404/503 to answer.
async fn incident_named(state: &ApiState, uuid: &str) -> Result<Uuid, Response> {
    let Ok(id) = uuid.parse::<Uuid>() else {
        return Err(problem(
            StatusCode::BAD_REQUEST,
            format!("`uuid` `{uuid}` is not a UUID"),
        ));
    };
    match resolve_incident(state, id).await? {
        Some(incident) => Ok(incident),
        None => Err(problem(
            StatusCode::NOT_FOUND,
            format!("no incident `{id}`"),
        )),
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

//! Reading incidents: the list, one incident with everything that happened to it, Euphrosyne's
//! recipe status, and the recipe registry in force.

use std::collections::HashMap;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use steadfast_service_kit::problem::parse_json;
use uuid::Uuid;

use super::actions::resolve_incident;
use super::{ApiState, MAX_API_BYTES, deny_unless_bearer, problem, read_body, unavailable};
use crate::incident::IncidentState;
use crate::store::runs::{RecipeRunRow, RecipeState};
use crate::store::{StoreError, approvals, audit, deliveries, incidents, runs};

const DEFAULT_LIMIT: i64 = 50;
const MAX_LIMIT: i64 = 500;

fn store_unavailable(error: StoreError) -> Response {
    tracing::error!(%error, "incident store query failed");
    unavailable("the incident store is unavailable; try again")
}

/// The query parameters `GET /api/incidents` knows.
const LIST_PARAMETERS: [&str; 3] = ["state", "limit", "before"];

/// `GET /api/incidents?state=&limit=&before=`: newest first, `limit` of them (of one `state`),
/// after incident `before`; with `counts` of every state and `next_before`, the `before` of
/// the next page (null on the last one).
pub async fn list(
    State(state): State<ApiState>,
    headers: HeaderMap,
    Query(query): Query<Vec<(String, String)>>,
) -> Response {
    if let Some(response) = deny_unless_bearer(&headers, &state.api_token) {
        return response;
    }
    let mut given: HashMap<&str, &str> = HashMap::new();
    for (name, value) in &query {
        if !LIST_PARAMETERS.contains(&name.as_str()) {
            return problem(
                StatusCode::BAD_REQUEST,
                format!("unknown query parameter `{name}`; expected state, limit or before"),
            );
        }
        if given.insert(name, value).is_some() {
            return problem(
                StatusCode::BAD_REQUEST,
                format!("query parameter `{name}` is given more than once"),
            );
        }
    }
    let filter = match given.get("state") {
        None => None,
        Some(text) => match IncidentState::parse(text) {
            Some(state) => Some(state),
            None => {
                let states: Vec<&str> = IncidentState::ALL.iter().map(|s| s.as_str()).collect();
                return problem(
                    StatusCode::BAD_REQUEST,
                    format!("`state` must be one of {}, not `{text}`", states.join(", ")),
                );
            }
        },
    };
    let limit = match given.get("limit").map(|l| l.parse::<i64>()) {
        None => DEFAULT_LIMIT,
        Some(Ok(limit)) if (1..=MAX_LIMIT).contains(&limit) => limit,
        Some(_) => {
            return problem(
                StatusCode::BAD_REQUEST,
                format!("`limit` must be a number from 1 to {MAX_LIMIT}"),
            );
        }
    };
    let before = match given.get("before") {
        None => None,
        Some(text) => match text.parse::<Uuid>() {
            Ok(id) => Some(id),
            Err(_) => {
                return problem(
                    StatusCode::BAD_REQUEST,
                    format!("`before` must be an incident id (a UUID), not `{text}`"),
                );
            }
        },
    };
    match page(&state, filter, before, limit).await {
        Ok(Some(body)) => Json(body).into_response(),
        Ok(None) => problem(
            StatusCode::BAD_REQUEST,
            format!(
                "`before` names no incident: `{}` does not exist",
                before.unwrap_or_default()
            ),
        ),
        Err(error) => store_unavailable(error),
    }
}

/// One page and the counts, from one snapshot (so they agree); `None` when `before` names no
/// incident.
async fn page(
    state: &ApiState,
    filter: Option<IncidentState>,
    before: Option<Uuid>,
    limit: i64,
) -> Result<Option<Value>, StoreError> {
    let mut tx = state.ctx.pool.begin().await?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .execute(&mut *tx)
        .await?;
    let cursor = match before {
        None => None,
        Some(id) => match incidents::cursor(&mut tx, id).await? {
            Some(cursor) => Some(cursor),
            None => return Ok(None),
        },
    };
    // One more than asked says whether another page follows.
    let mut rows = incidents::list(&mut tx, filter, cursor, limit + 1).await?;
    let more = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    let next_before = if more {
        rows.last().map(|r| r.id)
    } else {
        None
    };
    let mut counts: serde_json::Map<String, Value> = IncidentState::ALL
        .iter()
        .map(|s| (s.as_str().to_owned(), json!(0)))
        .collect();
    for (state, count) in incidents::count_by_state(&mut tx).await? {
        counts.insert(state, json!(count));
    }
    tx.commit().await?;
    Ok(Some(json!({
        "incidents": rows,
        "counts": counts,
        "next_before": next_before,
    })))
}

/// `GET /api/incidents/{id}`: the incident, its alerts, runs with recipe results, approvals,
/// audit log and chat deliveries.
pub async fn show(
    State(state): State<ApiState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if let Some(response) = deny_unless_bearer(&headers, &state.api_token) {
        return response;
    }
    let Ok(id) = id.parse::<Uuid>() else {
        return problem(
            StatusCode::BAD_REQUEST,
            format!("`{id}` is not an incident id (a UUID)"),
        );
    };
    match load(&state, id).await {
        Ok(Some(body)) => Json(body).into_response(),
        Ok(None) => problem(StatusCode::NOT_FOUND, format!("no incident `{id}`")),
        Err(error) => store_unavailable(error),
    }
}

async fn load(state: &ApiState, id: Uuid) -> Result<Option<Value>, StoreError> {
    let mut conn = state.ctx.pool.acquire().await?;
    let Some(incident) = incidents::get(&mut conn, id).await? else {
        return Ok(None);
    };
    let alerts = incidents::alerts_of(&mut conn, id).await?;
    let mut run_bodies = Vec::new();
    for run in runs::of_incident(&mut conn, id).await? {
        let recipes = runs::recipes_of(&mut conn, run.id).await?;
        let recipes: Vec<Value> = recipes.iter().map(recipe_json).collect();
        run_bodies.push(json!({
            "id": run.id,
            "kind": run.kind,
            "state": run.state,
            "created_at": run.created_at,
            "deadline": run.deadline,
            "completed_at": run.completed_at,
            "recipes": recipes,
        }));
    }
    let approvals = approvals::of_incident(&mut conn, id).await?;
    let audit = audit::of_incident(&mut conn, id).await?;
    let deliveries: Vec<Value> = deliveries::of_incident(&mut conn, id)
        .await?
        .into_iter()
        .map(|d| {
            json!({"sink": d.sink, "report": d.report["kind"], "state": d.state, "attempts": d.attempts,
                   "last_error": d.last_error, "remote_id": d.remote_id, "created_at": d.created_at,
                   "sent_at": d.sent_at})
        })
        .collect();
    Ok(Some(json!({
        "incident": incident,
        "alerts": alerts,
        "runs": run_bodies,
        "approvals": approvals,
        "audit": audit,
        "deliveries": deliveries,
    })))
}

fn recipe_json(row: &RecipeRunRow) -> Value {
    json!({
        "recipe": row.recipe,
        "state": row.state,
        "handle": row.handle,
        "launched_at": row.launched_at,
        "finished_at": row.finished_at,
        "detail": row.detail,
        "results": row.results,
        "attempt": row.attempt,
        "reruns": row.reruns.0,
    })
}

/// Euphrosyne's Job status words.
fn job_status(state: RecipeState) -> &'static str {
    match state {
        RecipeState::Pending => "",
        RecipeState::Launched => "Active",
        RecipeState::Successful => "Completed",
        RecipeState::Failed
        | RecipeState::Unknown
        | RecipeState::TimedOut
        | RecipeState::Cancelled => "Failed",
    }
}

/// `POST /api/status`: the recipes of the incident or run named by `uuid` (or of every running
/// run), in Euphrosyne's shape; also pushed to its bot when one is configured.
pub async fn status(State(state): State<ApiState>, headers: HeaderMap, body: Body) -> Response {
    if let Some(response) = deny_unless_bearer(&headers, &state.api_token) {
        return response;
    }
    let body = match read_body(body, MAX_API_BYTES).await {
        Ok(body) => body,
        Err(response) => return response,
    };
    let request: Value = if body.is_empty() {
        json!({})
    } else {
        match parse_json(&body) {
            Ok(value) => value,
            Err(problem) => return problem.into_response(),
        }
    };
    let Some(request) = request.as_object() else {
        return problem(StatusCode::BAD_REQUEST, "the body must be a JSON object");
    };
    let run_ids = match request.get("uuid") {
        None | Some(Value::Null) => None,
        Some(Value::String(text)) => {
            let Ok(id) = text.parse::<Uuid>() else {
                return problem(
                    StatusCode::BAD_REQUEST,
                    format!("`uuid` `{text}` is not a UUID"),
                );
            };
            match resolve_incident(&state, id).await {
                Ok(Some(incident)) => Some((incident, id)),
                Ok(None) => {
                    return problem(StatusCode::NOT_FOUND, format!("no incident or run `{id}`"));
                }
                Err(response) => return response,
            }
        }
        Some(_) => return problem(StatusCode::BAD_REQUEST, "`uuid` must be a string"),
    };
    let statuses = match collect_status(&state, run_ids).await {
        Ok(statuses) => statuses,
        Err(error) => return store_unavailable(error),
    };
    if let Some(bot) = state.ctx.sinks.bot.clone() {
        let pushed = statuses.clone();
        tokio::spawn(async move {
            if let Err(error) = bot.post_status(&pushed).await {
                tracing::warn!(%error, "cannot push the recipe status to the bot");
            }
        });
    }
    Json(json!({"message": "Status Request received and processed", "status": statuses}))
        .into_response()
}

async fn collect_status(
    state: &ApiState,
    target: Option<(Uuid, Uuid)>,
) -> Result<Value, StoreError> {
    let mut conn = state.ctx.pool.acquire().await?;
    let runs = match target {
        Some((incident, named)) => runs::of_incident(&mut conn, incident)
            .await?
            .into_iter()
            .filter(|r| named == incident || r.id == named)
            .collect::<Vec<_>>(),
        None => {
            let mut running = Vec::new();
            for id in runs::running(&mut conn).await? {
                if let Some(run) = runs::get(&mut conn, id).await? {
                    running.push(run);
                }
            }
            running
        }
    };
    let mut statuses = Vec::new();
    for run in runs {
        for row in runs::recipes_of(&mut conn, run.id).await? {
            statuses.push(json!({
                "name": row.handle.clone().unwrap_or_else(|| row.recipe.clone()),
                "startTime": row.launched_at,
                "status": job_status(row.state()),
                "labels": {"app": "euphrosyne", "recipe": row.recipe, "uuid": run.id},
                "description": row.spec.description,
            }));
        }
    }
    Ok(Value::Array(statuses))
}

/// `GET /api/recipes`: the registry in force, and the last version refused.
pub async fn recipes(State(state): State<ApiState>, headers: HeaderMap) -> Response {
    if let Some(response) = deny_unless_bearer(&headers, &state.api_token) {
        return response;
    }
    let set = state.ctx.recipes.current();
    let describe =
        |recipes: &std::collections::BTreeMap<String, crate::recipes::Recipe>| -> Vec<Value> {
            recipes
            .values()
            .map(|r| {
                json!({"name": r.name, "enabled": r.enabled, "image": r.image, "entrypoint": r.entrypoint,
                       "description": r.description, "match": r.matchers, "timeout_ms": r.timeout_ms,
                       "args": r.args, "env": r.env.keys().collect::<Vec<_>>(), "service_account": r.service_account})
            })
            .collect()
        };
    Json(json!({
        "registry": state.ctx.recipes.status(),
        "executor": state.ctx.executor.name(),
        "debugging": describe(&set.debugging),
        "actions": describe(&set.actions),
    }))
    .into_response()
}

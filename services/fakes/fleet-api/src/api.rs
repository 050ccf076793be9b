//! The HTTP API under `/api/hyperfleet/v1`: routing, query and body parsing, and handlers.
//!
//! Bodies and query strings are parsed here by hand rather than by extractors, so that every
//! mistake a client can make gets a HyperFleet problem naming the field, never a bare 4xx from
//! the framework or a 500.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, RawQuery, Request, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value as Json, json};
use sqlx::PgPool;
use uuid::Uuid;

use crate::config::RequiredAdapters;
use crate::model::{self, Kind};
use crate::problem::{ApiError, code, render_problems};
use crate::status;
use crate::store::{self, ListError, Order, Reported, Scope, StoreError};

const MAX_PAGE_SIZE: u32 = 100;
const DEFAULT_PAGE_SIZE: u32 = 20;
/// The identity recorded in `created_by` / `updated_by` (the stand-in has no user accounts).
const IDENTITY: &str = "fleet-api";

/// What the handlers share.
pub struct ApiState {
    pub pool: PgPool,
    pub required: RequiredAdapters,
    pub api_token: Option<String>,
    pub max_body_bytes: usize,
}

type Shared = State<Arc<ApiState>>;

impl ApiState {
    fn required(&self, kind: Kind) -> &[String] {
        match kind {
            Kind::Cluster => &self.required.cluster,
            Kind::NodePool => &self.required.nodepool,
        }
    }
}

/// The API router (without probes and metrics).
pub fn router(state: Arc<ApiState>) -> Router {
    let limit = state.max_body_bytes;
    let api = Router::new()
        .route("/clusters", get(list_clusters).post(create_cluster))
        .route(
            "/clusters/{cluster_id}",
            get(get_cluster).patch(patch_cluster).delete(delete_cluster),
        )
        .route(
            "/clusters/{cluster_id}/force-delete",
            post(force_delete_cluster),
        )
        .route(
            "/clusters/{cluster_id}/statuses",
            get(list_cluster_statuses).put(put_cluster_status),
        )
        .route(
            "/clusters/{cluster_id}/nodepools",
            get(list_cluster_nodepools).post(create_nodepool),
        )
        .route(
            "/clusters/{cluster_id}/nodepools/{nodepool_id}",
            get(get_nodepool)
                .patch(patch_nodepool)
                .delete(delete_nodepool),
        )
        .route(
            "/clusters/{cluster_id}/nodepools/{nodepool_id}/force-delete",
            post(force_delete_nodepool),
        )
        .route(
            "/clusters/{cluster_id}/nodepools/{nodepool_id}/statuses",
            get(list_nodepool_statuses).put(put_nodepool_status),
        )
        .route("/nodepools", get(list_all_nodepools))
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(state.clone(), authenticate))
        .layer(DefaultBodyLimit::max(limit))
        .with_state(state);
    Router::new()
        .nest(model::API_BASE, api)
        .fallback(endpoint_not_found)
        .layer(middleware::from_fn(render_problems))
}

async fn endpoint_not_found(request: Request) -> ApiError {
    ApiError::endpoint_not_found(request.uri().path())
}

async fn method_not_allowed(method: Method, request: Request) -> ApiError {
    ApiError::method_not_allowed(method.as_str(), request.uri().path())
}

async fn authenticate(State(state): Shared, request: Request, next: Next) -> Response {
    if let Some(expected) = &state.api_token {
        match steadfast_service_kit::auth::bearer_token(request.headers()) {
            None => {
                return ApiError::unauthenticated(
                    code::AUTH_NO_CREDENTIALS,
                    "Account authentication could not be verified: send Authorization: Bearer <token>",
                )
                .into_response();
            }
            Some(token)
                if !steadfast_service_kit::auth::constant_time_eq(
                    token.as_bytes(),
                    expected.as_bytes(),
                ) =>
            {
                return ApiError::unauthenticated(
                    code::AUTH_INVALID,
                    "The provided credentials are invalid",
                )
                .into_response();
            }
            Some(_) => {}
        }
    }
    next.run(request).await
}

// --- Parsing -----------------------------------------------------------------------------

struct ListQuery {
    page: u32,
    size: u32,
    order: Order,
    search: Option<String>,
}

fn positive(name: &str, text: &str, max: Option<u32>) -> Result<u32, ApiError> {
    let value: u32 = text.trim().parse().map_err(|_| {
        ApiError::invalid(
            name,
            "format",
            format!("must be a positive integer, not `{text}`"),
        )
    })?;
    if value == 0 {
        return Err(ApiError::invalid(name, "min", "must be at least 1"));
    }
    // The spec's `format: int32`.
    let max = max.or(Some(i32::MAX as u32));
    if let Some(max) = max.filter(|max| value > *max) {
        return Err(ApiError::invalid(
            name,
            "max",
            format!("must be at most {max}"),
        ));
    }
    Ok(value)
}

fn parse_list_query(raw: Option<String>) -> Result<ListQuery, ApiError> {
    let mut query = ListQuery {
        page: 1,
        size: DEFAULT_PAGE_SIZE,
        order: Order::default(),
        search: None,
    };
    let raw = raw.unwrap_or_default();
    for (key, value) in url::form_urlencoded::parse(raw.as_bytes()) {
        if value.contains('\0') {
            return Err(ApiError::invalid(
                &key,
                "format",
                "must not contain NUL characters",
            ));
        }
        match key.as_ref() {
            "page" => query.page = positive("page", &value, None)?,
            "size" => query.size = positive("size", &value, Some(MAX_PAGE_SIZE))?,
            "order" => {
                query.order =
                    Order::parse(&value).map_err(|m| ApiError::invalid("order", "enum", m))?;
            }
            "search" => query.search = Some(value.into_owned()),
            _ => {}
        }
    }
    if u64::from(query.page - 1) * u64::from(query.size) > i64::MAX as u64 {
        return Err(ApiError::invalid("page", "max", "is too large"));
    }
    Ok(query)
}

/// Checks the content type and parses the body as JSON.
fn json_body(
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
    limit: usize,
) -> Result<Json, ApiError> {
    let body = body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::too_large(limit)
        } else {
            ApiError::malformed(format!("cannot read the request body: {rejection}"))
        }
    })?;
    if !steadfast_service_kit::problem::is_json_content_type(headers) {
        let given = headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("none");
        return Err(ApiError::unsupported_media_type(format!(
            "expected Content-Type application/json, got {given}"
        )));
    }
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::malformed(
            "the request body is empty; send a JSON object",
        ));
    }
    let value: Json = serde_json::from_slice(&body)
        .map_err(|e| ApiError::malformed(format!("malformed JSON: {e}")))?;
    if let Some(path) = nul_in(&value, "") {
        return Err(ApiError::invalid(
            if path.is_empty() { "body" } else { &path },
            "format",
            "strings must not contain NUL (\\u0000) characters",
        ));
    }
    Ok(value)
}

/// The path of a string or key holding U+0000, which PostgreSQL cannot store in `jsonb`.
fn nul_in(value: &Json, path: &str) -> Option<String> {
    let join = |key: &str| {
        if path.is_empty() {
            key.to_owned()
        } else {
            format!("{path}.{key}")
        }
    };
    match value {
        Json::String(s) if s.contains('\0') => Some(path.to_owned()),
        Json::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, item)| nul_in(item, &format!("{path}[{i}]"))),
        Json::Object(map) => map.iter().find_map(|(key, item)| {
            if key.contains('\0') {
                Some(join(&key.replace('\0', "\\u0000")))
            } else {
                nul_in(item, &join(key))
            }
        }),
        _ => None,
    }
}

/// A path id; anything that is not a UUID names no resource.
fn parse_id(kind: Kind, text: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(text).map_err(|_| kind.not_found(text))
}

fn cluster_scope() -> Scope {
    Scope {
        kind: Kind::Cluster,
        owner: None,
    }
}

fn nodepool_scope(cluster: Uuid) -> Scope {
    Scope {
        kind: Kind::NodePool,
        owner: Some(cluster),
    }
}

/// The cluster of a nodepool route, which must exist.
async fn existing_cluster(state: &ApiState, id: &str) -> Result<Uuid, ApiError> {
    let cluster = parse_id(Kind::Cluster, id)?;
    match store::get(&state.pool, cluster_scope(), cluster).await? {
        Some(_) => Ok(cluster),
        None => Err(ApiError::cluster_not_found(id)),
    }
}

fn store_error(kind: Kind, id: &str, error: StoreError) -> ApiError {
    match error {
        StoreError::NotFound => kind.not_found(id),
        StoreError::Conflict(detail) => ApiError::conflict(detail),
        StoreError::Database(e) => ApiError::database(&e),
    }
}

fn list_response(kind: &str, query: &ListQuery, items: Vec<Json>, total: i64) -> Response {
    axum::Json(json!({
        "kind": kind,
        "page": query.page,
        "size": items.len(),
        "total": total,
        "items": items,
    }))
    .into_response()
}

type PathRejection = axum::extract::rejection::PathRejection;

fn path<T>(path: Result<Path<T>, PathRejection>) -> Result<T, ApiError> {
    path.map(|Path(p)| p)
        .map_err(|e| ApiError::bad_request(format!("invalid path: {e}")))
}

// --- Resources ---------------------------------------------------------------------------

async fn list(
    state: &ApiState,
    scope: Scope,
    list_kind: &str,
    raw: Option<String>,
) -> Result<Response, ApiError> {
    let query = parse_list_query(raw)?;
    let (rows, total) = store::list(
        &state.pool,
        scope,
        query.search.as_deref(),
        query.order,
        query.page,
        query.size,
    )
    .await
    .map_err(|e| match e {
        ListError::Search(message) => ApiError::search(message),
        ListError::Database(e) => ApiError::database(&e),
    })?;
    let items = rows.iter().map(model::ResourceRow::to_json).collect();
    Ok(list_response(list_kind, &query, items, total))
}

async fn list_clusters(
    State(state): Shared,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    list(&state, cluster_scope(), "ClusterList", raw).await
}

async fn list_all_nodepools(
    State(state): Shared,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let scope = Scope {
        kind: Kind::NodePool,
        owner: None,
    };
    // `owner: None` means every nodepool here, not "nodepools without an owner".
    list(&state, scope, "NodePoolList", raw).await
}

async fn list_cluster_nodepools(
    State(state): Shared,
    cluster_id: Result<Path<String>, PathRejection>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let cluster = existing_cluster(&state, &path(cluster_id)?).await?;
    list(&state, nodepool_scope(cluster), "NodePoolList", raw).await
}

async fn create(
    state: &ApiState,
    scope: Scope,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body = json_body(headers, body, state.max_body_bytes)?;
    let new = model::parse_create(scope.kind, &body)?;
    let row = store::create(
        &state.pool,
        scope,
        &new,
        IDENTITY,
        state.required(scope.kind),
    )
    .await
    .map_err(|e| {
        store_error(
            Kind::Cluster,
            &scope.owner.map(|o| o.to_string()).unwrap_or_default(),
            e,
        )
    })?;
    tracing::info!(kind = scope.kind.as_str(), id = %row.id, name = %row.name, "created");
    Ok((StatusCode::CREATED, axum::Json(row.to_json())).into_response())
}

async fn create_cluster(
    State(state): Shared,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    create(&state, cluster_scope(), &headers, body).await
}

async fn create_nodepool(
    State(state): Shared,
    cluster_id: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let cluster = existing_cluster(&state, &path(cluster_id)?).await?;
    create(&state, nodepool_scope(cluster), &headers, body).await
}

async fn get_cluster(
    State(state): Shared,
    cluster_id: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let id_text = path(cluster_id)?;
    let id = parse_id(Kind::Cluster, &id_text)?;
    match store::get(&state.pool, cluster_scope(), id).await? {
        Some(row) => Ok(axum::Json(row.to_json()).into_response()),
        None => Err(ApiError::cluster_not_found(&id_text)),
    }
}

async fn get_nodepool(
    State(state): Shared,
    ids: Result<Path<(String, String)>, PathRejection>,
) -> Result<Response, ApiError> {
    let (cluster_id, nodepool_text) = path(ids)?;
    let cluster = existing_cluster(&state, &cluster_id).await?;
    let id = parse_id(Kind::NodePool, &nodepool_text)?;
    match store::get(&state.pool, nodepool_scope(cluster), id).await? {
        Some(row) => Ok(axum::Json(row.to_json()).into_response()),
        None => Err(ApiError::nodepool_not_found(&nodepool_text)),
    }
}

async fn patch(
    state: &ApiState,
    scope: Scope,
    id_text: &str,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let id = parse_id(scope.kind, id_text)?;
    let body = json_body(headers, body, state.max_body_bytes)?;
    let patch = model::parse_patch(&body)?;
    let row = store::patch(
        &state.pool,
        scope,
        id,
        &patch,
        IDENTITY,
        state.required(scope.kind),
    )
    .await
    .map_err(|e| store_error(scope.kind, id_text, e))?;
    Ok(axum::Json(row.to_json()).into_response())
}

async fn patch_cluster(
    State(state): Shared,
    cluster_id: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    patch(&state, cluster_scope(), &path(cluster_id)?, &headers, body).await
}

async fn patch_nodepool(
    State(state): Shared,
    ids: Result<Path<(String, String)>, PathRejection>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let (cluster_id, nodepool_id) = path(ids)?;
    let cluster = existing_cluster(&state, &cluster_id).await?;
    patch(
        &state,
        nodepool_scope(cluster),
        &nodepool_id,
        &headers,
        body,
    )
    .await
}

async fn delete(state: &ApiState, scope: Scope, id_text: &str) -> Result<Response, ApiError> {
    let id = parse_id(scope.kind, id_text)?;
    let row = store::soft_delete(
        &state.pool,
        scope,
        id,
        IDENTITY,
        state.required(scope.kind),
        state.required(Kind::NodePool),
    )
    .await
    .map_err(|e| store_error(scope.kind, id_text, e))?;
    Ok((StatusCode::ACCEPTED, axum::Json(row.to_json())).into_response())
}

async fn delete_cluster(
    State(state): Shared,
    cluster_id: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    delete(&state, cluster_scope(), &path(cluster_id)?).await
}

async fn delete_nodepool(
    State(state): Shared,
    ids: Result<Path<(String, String)>, PathRejection>,
) -> Result<Response, ApiError> {
    let (cluster_id, nodepool_id) = path(ids)?;
    let cluster = existing_cluster(&state, &cluster_id).await?;
    delete(&state, nodepool_scope(cluster), &nodepool_id).await
}

async fn force_delete(
    state: &ApiState,
    scope: Scope,
    id_text: &str,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let id = parse_id(scope.kind, id_text)?;
    let body = json_body(headers, body, state.max_body_bytes)?;
    let reason = model::parse_force_delete(&body)?;
    store::force_delete(&state.pool, scope, id, &reason)
        .await
        .map_err(|e| store_error(scope.kind, id_text, e))?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn force_delete_cluster(
    State(state): Shared,
    cluster_id: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    force_delete(&state, cluster_scope(), &path(cluster_id)?, &headers, body).await
}

async fn force_delete_nodepool(
    State(state): Shared,
    ids: Result<Path<(String, String)>, PathRejection>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let (cluster_id, nodepool_id) = path(ids)?;
    let cluster = existing_cluster(&state, &cluster_id).await?;
    force_delete(
        &state,
        nodepool_scope(cluster),
        &nodepool_id,
        &headers,
        body,
    )
    .await
}

// --- Statuses ----------------------------------------------------------------------------

async fn list_statuses(
    state: &ApiState,
    scope: Scope,
    id_text: &str,
    raw: Option<String>,
) -> Result<Response, ApiError> {
    let id = parse_id(scope.kind, id_text)?;
    let query = parse_list_query(raw)?;
    let Some((items, total)) =
        store::list_statuses(&state.pool, scope, id, query.page, query.size).await?
    else {
        return Err(scope.kind.not_found(id_text));
    };
    let items = items.iter().map(status::StoredStatus::to_json).collect();
    Ok(list_response("AdapterStatusList", &query, items, total))
}

async fn list_cluster_statuses(
    State(state): Shared,
    cluster_id: Result<Path<String>, PathRejection>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    list_statuses(&state, cluster_scope(), &path(cluster_id)?, raw).await
}

async fn list_nodepool_statuses(
    State(state): Shared,
    ids: Result<Path<(String, String)>, PathRejection>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let (cluster_id, nodepool_id) = path(ids)?;
    let cluster = existing_cluster(&state, &cluster_id).await?;
    list_statuses(&state, nodepool_scope(cluster), &nodepool_id, raw).await
}

async fn put_status(
    state: &ApiState,
    scope: Scope,
    id_text: &str,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let id = parse_id(scope.kind, id_text)?;
    let body = json_body(headers, body, state.max_body_bytes)?;
    let report = status::parse_report(&body)?;
    match store::report_status(&state.pool, scope, id, &report, state.required(scope.kind))
        .await
        .map_err(|e| store_error(scope.kind, id_text, e))?
    {
        Reported::Stored(saved) => {
            Ok((StatusCode::CREATED, axum::Json(saved.to_json())).into_response())
        }
        Reported::Discarded(reason) => {
            tracing::info!(kind = scope.kind.as_str(), %id, adapter = %report.adapter, %reason, "status report discarded");
            Ok(StatusCode::NO_CONTENT.into_response())
        }
    }
}

async fn put_cluster_status(
    State(state): Shared,
    cluster_id: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    put_status(&state, cluster_scope(), &path(cluster_id)?, &headers, body).await
}

async fn put_nodepool_status(
    State(state): Shared,
    ids: Result<Path<(String, String)>, PathRejection>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let (cluster_id, nodepool_id) = path(ids)?;
    let cluster = existing_cluster(&state, &cluster_id).await?;
    put_status(
        &state,
        nodepool_scope(cluster),
        &nodepool_id,
        &headers,
        body,
    )
    .await
}

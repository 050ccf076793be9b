//! The HTTP API under `/api/hyperfleet/v1`: routing, query and body parsing, and handlers.
//!
//! Bodies and query strings are parsed here by hand rather than by extractors, so that every
//! mistake a client can make gets a HyperFleet problem naming the field, never a bare 4xx from
//! the framework or a 500.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, FromRequestParts, Path, RawQuery, Request, State};
use axum::http::request::Parts;
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
        .route("/clusters", get(list).post(create))
        .route(
            "/clusters/{cluster_id}",
            get(get_one).patch(patch).delete(delete),
        )
        .route("/clusters/{cluster_id}/force-delete", post(force_delete))
        .route(
            "/clusters/{cluster_id}/statuses",
            get(list_statuses).put(put_status),
        )
        .route("/clusters/{cluster_id}/nodepools", get(list).post(create))
        .route(
            "/clusters/{cluster_id}/nodepools/{nodepool_id}",
            get(get_one).patch(patch).delete(delete),
        )
        .route(
            "/clusters/{cluster_id}/nodepools/{nodepool_id}/force-delete",
            post(force_delete),
        )
        .route(
            "/clusters/{cluster_id}/nodepools/{nodepool_id}/statuses",
            get(list_statuses).put(put_status),
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
                query.order = Order::parse(&value)
                    .map_err(|e| ApiError::invalid("order", "enum", e.to_string()))?;
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
        StoreError::Conflict(conflict) => ApiError::conflict(conflict.to_string()),
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

fn path<T>(path: Result<Path<T>, PathRejection>) -> Result<T, ApiError> {
    path.map(|Path(p)| p)
        .map_err(|e| ApiError::bad_request(format!("invalid path: {e}")))
}

// --- What a path names -------------------------------------------------------------------

type PathRejection = axum::extract::rejection::PathRejection;

/// The ids in a path, as written.
#[derive(serde::Deserialize)]
struct PathIds {
    cluster_id: Option<String>,
    nodepool_id: Option<String>,
}

impl PathIds {
    async fn from_parts(parts: &mut Parts, state: &Arc<ApiState>) -> Result<Self, ApiError> {
        path(Path::<Self>::from_request_parts(parts, state).await)
    }
}

/// The collection a path names: `/clusters`, or the nodepools of an existing cluster
/// (`/clusters/{cluster_id}/nodepools`).
struct Collection(Scope);

impl FromRequestParts<Arc<ApiState>> for Collection {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<ApiState>,
    ) -> Result<Self, ApiError> {
        Ok(Self(
            match PathIds::from_parts(parts, state).await?.cluster_id {
                None => cluster_scope(),
                Some(cluster) => nodepool_scope(existing_cluster(state, &cluster).await?),
            },
        ))
    }
}

/// The resource a path names: a cluster (`/clusters/{cluster_id}…`), or a nodepool of an
/// existing cluster (`/clusters/{cluster_id}/nodepools/{nodepool_id}…`), with its id as
/// written (not-found problems quote it).
struct Resource {
    scope: Scope,
    id: String,
}

impl Resource {
    fn uuid(&self) -> Result<Uuid, ApiError> {
        parse_id(self.scope.kind, &self.id)
    }

    fn store_error(&self, error: StoreError) -> ApiError {
        store_error(self.scope.kind, &self.id, error)
    }
}

impl FromRequestParts<Arc<ApiState>> for Resource {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<ApiState>,
    ) -> Result<Self, ApiError> {
        match PathIds::from_parts(parts, state).await? {
            PathIds {
                cluster_id: Some(cluster),
                nodepool_id: None,
            } => Ok(Self {
                scope: cluster_scope(),
                id: cluster,
            }),
            PathIds {
                cluster_id: Some(cluster),
                nodepool_id: Some(nodepool),
            } => Ok(Self {
                scope: nodepool_scope(existing_cluster(state, &cluster).await?),
                id: nodepool,
            }),
            PathIds {
                cluster_id: None, ..
            } => Err(ApiError::internal("this route names no resource")),
        }
    }
}

fn list_kind(kind: Kind) -> &'static str {
    match kind {
        Kind::Cluster => "ClusterList",
        Kind::NodePool => "NodePoolList",
    }
}

// --- Resources ---------------------------------------------------------------------------

async fn list_in(
    state: &ApiState,
    scope: Scope,
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
        ListError::Search(error) => ApiError::search(error.to_string()),
        ListError::Database(e) => ApiError::database(&e),
    })?;
    let items = rows.iter().map(model::ResourceRow::to_json).collect();
    Ok(list_response(list_kind(scope.kind), &query, items, total))
}

async fn list(
    State(state): Shared,
    Collection(scope): Collection,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    list_in(&state, scope, raw).await
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
    list_in(&state, scope, raw).await
}

async fn create(
    State(state): Shared,
    Collection(scope): Collection,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body = json_body(&headers, body, state.max_body_bytes)?;
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

async fn get_one(State(state): Shared, resource: Resource) -> Result<Response, ApiError> {
    let id = resource.uuid()?;
    match store::get(&state.pool, resource.scope, id).await? {
        Some(row) => Ok(axum::Json(row.to_json()).into_response()),
        None => Err(resource.scope.kind.not_found(&resource.id)),
    }
}

async fn patch(
    State(state): Shared,
    resource: Resource,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let id = resource.uuid()?;
    let body = json_body(&headers, body, state.max_body_bytes)?;
    let patch = model::parse_patch(&body)?;
    let row = store::patch(
        &state.pool,
        resource.scope,
        id,
        &patch,
        IDENTITY,
        state.required(resource.scope.kind),
    )
    .await
    .map_err(|e| resource.store_error(e))?;
    Ok(axum::Json(row.to_json()).into_response())
}

async fn delete(State(state): Shared, resource: Resource) -> Result<Response, ApiError> {
    let id = resource.uuid()?;
    let row = store::soft_delete(
        &state.pool,
        resource.scope,
        id,
        IDENTITY,
        state.required(resource.scope.kind),
        state.required(Kind::NodePool),
    )
    .await
    .map_err(|e| resource.store_error(e))?;
    Ok((StatusCode::ACCEPTED, axum::Json(row.to_json())).into_response())
}

async fn force_delete(
    State(state): Shared,
    resource: Resource,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let id = resource.uuid()?;
    let body = json_body(&headers, body, state.max_body_bytes)?;
    let reason = model::parse_force_delete(&body)?;
    store::force_delete(&state.pool, resource.scope, id, &reason)
        .await
        .map_err(|e| resource.store_error(e))?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

// --- Statuses ----------------------------------------------------------------------------

async fn list_statuses(
    State(state): Shared,
    resource: Resource,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let id = resource.uuid()?;
    let query = parse_list_query(raw)?;
    let Some((items, total)) =
        store::list_statuses(&state.pool, resource.scope, id, query.page, query.size).await?
    else {
        return Err(resource.scope.kind.not_found(&resource.id));
    };
    let items = items.iter().map(status::StoredStatus::to_json).collect();
    Ok(list_response("AdapterStatusList", &query, items, total))
}

async fn put_status(
    State(state): Shared,
    resource: Resource,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let (scope, id) = (resource.scope, resource.uuid()?);
    let body = json_body(&headers, body, state.max_body_bytes)?;
    let report = status::parse_report(&body)?;
    match store::report_status(&state.pool, scope, id, &report, state.required(scope.kind))
        .await
        .map_err(|e| resource.store_error(e))?
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

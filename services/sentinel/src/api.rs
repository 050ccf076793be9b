//! The read API on `HTTP_LISTEN`, next to `/healthz` and `/readyz`: what the sentinel last did
//! per resource, from [`Activity`].
//!
//! `GET /api/resources[?kind=clusters|nodepools][&id=<exact id>]` →
//! `{"resources": [...], "poll": {"last_cycle_at", "cycles"}}`, resources by kind then id.
//! Needs `Authorization: Bearer <SENTINEL_API_TOKEN>`: without a configured token it answers
//! 403, without the right one 401. Errors are RFC 9457 problems.

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::{RawQuery, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use steadfast_service_kit::problem::{Problem, bearer_refusal};

use crate::activity::{Activity, Filter};

/// The kinds a sentinel polls (`resource_type`), as the `kind` parameter names them.
const KINDS: [&str; 2] = ["clusters", "nodepools"];

#[derive(Clone)]
struct ApiState {
    activity: Activity,
    token: Option<Arc<str>>,
}

/// The read API; `token` unset disables it (403).
pub fn router(activity: Activity, token: Option<String>) -> Router {
    Router::new()
        .route("/api/resources", get(resources))
        .with_state(ApiState {
            activity,
            token: token.map(Arc::from),
        })
}

/// The refusal, unless the request carries the token.
fn refusal(state: &ApiState, headers: &HeaderMap) -> Option<Response> {
    bearer_refusal(
        headers,
        state.token.as_deref(),
        "the read API is disabled: set SENTINEL_API_TOKEN",
    )
}

/// The filter of a query string. An unknown parameter is refused, not ignored, so a misspelt
/// filter never silently lists everything.
fn parse_filter(query: Option<&str>, own_kind: &str) -> Result<Filter, String> {
    let mut filter = Filter::default();
    for (name, value) in url::form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        let slot = match name.as_ref() {
            "kind" => &mut filter.kind,
            "id" => &mut filter.id,
            other => {
                return Err(format!(
                    "unknown query parameter `{other}`: the parameters are `kind` and `id`"
                ));
            }
        };
        if slot.is_some() {
            return Err(format!("query parameter `{name}` is given more than once"));
        }
        if value.is_empty() {
            return Err(format!("query parameter `{name}` is empty"));
        }
        *slot = Some(value.into_owned());
    }
    if let Some(kind) = &filter.kind
        && !KINDS.contains(&kind.as_str())
        && kind != own_kind
    {
        return Err(format!(
            "query parameter `kind` must be clusters or nodepools, not `{kind}`"
        ));
    }
    Ok(filter)
}

async fn resources(
    State(state): State<ApiState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    if let Some(response) = refusal(&state, &headers) {
        return response;
    }
    match parse_filter(query.as_deref(), state.activity.kind()) {
        Ok(filter) => Json(state.activity.snapshot(&filter)).into_response(),
        Err(detail) => Problem::bad_request(detail).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_strings_are_checked_precisely() {
        let parse = |q: &str| parse_filter(Some(q), "clusters");
        assert_eq!(parse("").unwrap(), Filter::default());
        assert_eq!(
            parse("kind=nodepools&id=a%20b").unwrap(),
            Filter {
                kind: Some("nodepools".into()),
                id: Some("a b".into())
            }
        );
        assert_eq!(
            parse("kind=clusters&limit=5").unwrap_err(),
            "unknown query parameter `limit`: the parameters are `kind` and `id`"
        );
        assert_eq!(
            parse("id=a&id=b").unwrap_err(),
            "query parameter `id` is given more than once"
        );
        assert_eq!(parse("id=").unwrap_err(), "query parameter `id` is empty");
        assert_eq!(
            parse("kind=Cluster").unwrap_err(),
            "query parameter `kind` must be clusters or nodepools, not `Cluster`"
        );
        // A sentinel of another resource type answers for its own kind.
        assert!(parse_filter(Some("kind=machines"), "machines").is_ok());
    }
}

//! The HTTP face of the fake: URL layout, verbs, content types, watch streams and faults.
//!
//! Paths follow the API server: `/api/v1/...` for the core group, `/apis/<group>/<version>/...`
//! otherwise; then `<plural>[/<name>[/<subresource>]]` for cluster-scoped kinds (and lists
//! across namespaces), `namespaces/<ns>/<plural>[/<name>[/<subresource>]]` for namespaced ones.

mod patch;
mod paths;
mod watch;

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::kinds;
use super::selector::{FieldSelector, LabelSelector};
use super::store::{ApiError, Deleted};
use super::{RecordedRequest, Shared};
use patch::patch_object;
use paths::{Target, resolve};
use watch::watch_stream;

fn json_response(status: StatusCode, body: &Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

fn error_response(error: &ApiError) -> Response {
    json_response(
        StatusCode::from_u16(error.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        &error.to_status(),
    )
}

fn query_pairs(uri: &Uri) -> Vec<(String, String)> {
    uri.query()
        .map(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .into_owned()
                .collect()
        })
        .unwrap_or_default()
}

fn verb_of(method: &Method, has_name: bool, watch: bool) -> &'static str {
    match (method.as_str(), has_name) {
        ("GET", true) => "get",
        ("GET", false) if watch => "watch",
        ("GET", false) => "list",
        ("POST", _) => "create",
        ("PUT", _) => "update",
        ("PATCH", _) => "patch",
        ("DELETE", true) => "delete",
        ("DELETE", false) => "deletecollection",
        _ => "unknown",
    }
}

/// The single entry point: every request goes through here.
/// `POST /fake/fail`: `{"statuses": [503, ...], "delay_ms": N, "slow_for_ms": M}` — the next
/// API requests fail with these statuses (one each, in order), and every API request is
/// answered N ms late for the next M ms. For a test driving the binary over HTTP.
pub async fn fake_fail(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let script: Value = match serde_json::from_slice(&body) {
        Ok(Value::Object(script)) => Value::Object(script),
        _ => {
            return json_response(
                StatusCode::BAD_REQUEST,
                &json!({"message": "expected a JSON object"}),
            );
        }
    };
    let mut statuses = Vec::new();
    for status in script["statuses"].as_array().into_iter().flatten() {
        match status.as_u64().and_then(|s| u16::try_from(s).ok()) {
            Some(code @ 400..=599) => statuses.push(code),
            _ => {
                return json_response(
                    StatusCode::BAD_REQUEST,
                    &json!({"message": format!("not an error status: {status}")}),
                );
            }
        }
    }
    {
        let mut faults = super::lock(&shared.faults);
        faults.extend(statuses.iter().map(|&code| super::Fault::status(code)));
    }
    let delay = script["delay_ms"].as_u64().unwrap_or(0);
    let period = script["slow_for_ms"].as_u64().unwrap_or(0);
    if delay > 0 && period > 0 {
        *super::lock(&shared.slow) = Some((
            tokio::time::Instant::now() + std::time::Duration::from_millis(period),
            std::time::Duration::from_millis(delay),
        ));
    }
    StatusCode::NO_CONTENT.into_response()
}

pub async fn handle(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    shared.slow_down().await;
    let path = uri.path().to_owned();
    let query = query_pairs(&uri);
    let param = |name: &str| {
        query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let watch = matches!(param("watch"), Some("true" | "1"));
    let target = match resolve(&shared, &path) {
        Ok(target) => target,
        Err(error) => {
            shared.record(RecordedRequest::new(
                &method, &uri, "unknown", None, None, None, &body,
            ));
            return error_response(&error);
        }
    };
    let Target::Object {
        spec,
        namespace,
        name,
        subresource,
    } = target
    else {
        shared.record(RecordedRequest::new(
            &method, &uri, "discover", None, None, None, &body,
        ));
        if method != Method::GET {
            return error_response(&ApiError::new(
                405,
                format!("{method} is not allowed on {path}"),
            ));
        }
        let server = shared.server_address();
        let store = shared.store();
        let document = match target {
            Target::Version => Some(kinds::version()),
            Target::CoreVersions => Some(kinds::core_versions(&server)),
            Target::Groups => Some(kinds::group_list(store.kinds())),
            Target::Group(group) => kinds::group(&group, store.kinds()),
            Target::Resources(group, version) => {
                kinds::resource_list(&group, &version, store.kinds())
            }
            Target::Object { .. } => unreachable!("handled above"),
        };
        return match document {
            Some(doc) => json_response(StatusCode::OK, &doc),
            None => error_response(&ApiError::new(
                404,
                format!("the server could not find the requested resource ({path})"),
            )),
        };
    };

    let verb = verb_of(&method, name.is_some(), watch);
    shared.record(RecordedRequest::new(
        &method,
        &uri,
        verb,
        Some(&spec.plural),
        namespace.as_deref(),
        name.as_deref(),
        &body,
    ));
    if let Some(fault) = shared.take_fault(verb, &spec, namespace.as_deref(), name.as_deref()) {
        return error_response(&fault);
    }
    let dry_run = param("dryRun") == Some("All");
    let status_only = subresource.as_deref() == Some("status");
    let ns = namespace.as_deref();
    let labels = match LabelSelector::parse(param("labelSelector").unwrap_or_default()) {
        Ok(s) => s,
        Err(e) => return error_response(&ApiError::new(400, e.to_string())),
    };
    let fields = match FieldSelector::parse(param("fieldSelector").unwrap_or_default()) {
        Ok(s) => s,
        Err(e) => return error_response(&ApiError::new(400, e.to_string())),
    };

    match (verb, name) {
        ("get", Some(name)) if subresource.as_deref() == Some("log") => {
            let store = shared.store();
            if let Err(e) = store.get(&spec, ns, &name) {
                return error_response(&e);
            }
            let text = store
                .pod_logs
                .get(&(ns.unwrap_or_default().to_owned(), name))
                .cloned()
                .unwrap_or_default();
            ([(header::CONTENT_TYPE, "text/plain")], text).into_response()
        }
        ("get", Some(name)) => match shared.store().get(&spec, ns, &name) {
            Ok(object) => json_response(StatusCode::OK, &object),
            Err(e) => error_response(&e),
        },
        ("list", None) => {
            let listing = shared.store().list(&spec, ns, &labels, &fields);
            let limit: usize = param("limit")
                .and_then(|l| l.parse().ok())
                .filter(|l| *l > 0)
                .unwrap_or(usize::MAX);
            let offset: usize = param("continue").and_then(|c| c.parse().ok()).unwrap_or(0);
            let total = listing.items.len();
            let page: Vec<Value> = listing.items.into_iter().skip(offset).take(limit).collect();
            let next = offset + page.len();
            let mut metadata = json!({"resourceVersion": listing.revision.to_string()});
            if next < total {
                metadata["continue"] = next.to_string().into();
                metadata["remainingItemCount"] = (total - next).into();
            }
            json_response(
                StatusCode::OK,
                &json!({
                    "apiVersion": spec.api_version(),
                    "kind": format!("{}List", spec.kind),
                    "metadata": metadata,
                    "items": page,
                }),
            )
        }
        ("watch", None) => watch_stream(
            &shared,
            &spec,
            namespace,
            labels,
            fields,
            param("resourceVersion"),
            param("timeoutSeconds"),
        ),
        ("create", None) => {
            let object = match parse_json(&headers, &body, &["application/json"]) {
                Ok(v) => v,
                Err(r) => return *r,
            };
            let created = shared.store().create(&spec, ns, object, dry_run);
            match created {
                Ok(object) => {
                    if !dry_run {
                        shared.after_create(&spec, &object);
                    }
                    json_response(StatusCode::CREATED, &object)
                }
                Err(e) => error_response(&e),
            }
        }
        ("update", Some(name)) => {
            let object = match parse_json(&headers, &body, &["application/json"]) {
                Ok(v) => v,
                Err(r) => return *r,
            };
            match shared
                .store()
                .replace(&spec, ns, &name, object, status_only, dry_run)
            {
                Ok(object) => json_response(StatusCode::OK, &object),
                Err(e) => error_response(&e),
            }
        }
        ("patch", Some(name)) => patch_object(
            &shared,
            &spec,
            ns,
            &name,
            &headers,
            &body,
            status_only,
            dry_run,
            param("fieldManager"),
        ),
        ("delete", Some(name)) => {
            let options: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            let propagation = options
                .get("propagationPolicy")
                .and_then(Value::as_str)
                .or(param("propagationPolicy"))
                .map(str::to_owned);
            match shared
                .store()
                .delete(&spec, ns, &name, propagation.as_deref(), dry_run)
            {
                Ok(Deleted::Pending(object)) => json_response(StatusCode::OK, &object),
                Ok(Deleted::Gone(object)) => json_response(
                    StatusCode::OK,
                    &json!({
                        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                        "details": {
                            "name": name, "group": spec.group, "kind": spec.plural,
                            "uid": object.pointer("/metadata/uid").cloned().unwrap_or(Value::Null),
                        },
                    }),
                ),
                Err(e) => error_response(&e),
            }
        }
        ("deletecollection", None) => {
            let mut store = shared.store();
            let listing = store.list(&spec, ns, &labels, &fields);
            let mut deleted = Vec::new();
            for item in listing.items {
                let name = item["metadata"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned();
                let item_ns = item
                    .pointer("/metadata/namespace")
                    .and_then(Value::as_str)
                    .map(str::to_owned);
                if let Ok(Deleted::Gone(o) | Deleted::Pending(o)) =
                    store.delete(&spec, item_ns.as_deref(), &name, None, dry_run)
                {
                    deleted.push(o);
                }
            }
            json_response(
                StatusCode::OK,
                &json!({
                    "apiVersion": spec.api_version(), "kind": format!("{}List", spec.kind),
                    "metadata": {"resourceVersion": store.revision().to_string()}, "items": deleted,
                }),
            )
        }
        _ => error_response(&ApiError::new(
            405,
            format!("{method} is not supported on {path}"),
        )),
    }
}

/// Reads a JSON body, answering 415 for another content type and 400 for bad JSON.
fn parse_json(
    headers: &HeaderMap,
    body: &Bytes,
    accepted: &[&str],
) -> Result<Value, Box<Response>> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json");
    let essence = content_type.split(';').next().unwrap_or_default().trim();
    if !accepted.contains(&essence) {
        return Err(Box::new(error_response(&ApiError::new(
            415,
            format!(
                "the body of the request was in an unknown format - accepted media types include: {}",
                accepted.join(", ")
            ),
        ))));
    }
    serde_json::from_slice(body).map_err(|e| {
        Box::new(error_response(&ApiError::new(
            400,
            format!("the request body is not valid JSON: {e}"),
        )))
    })
}

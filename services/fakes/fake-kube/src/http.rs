//! The HTTP face of the fake: URL layout, verbs, content types, watch streams and faults.
//!
//! Paths follow the API server: `/api/v1/...` for the core group, `/apis/<group>/<version>/...`
//! otherwise; then `<plural>[/<name>[/<subresource>]]` for cluster-scoped kinds (and lists
//! across namespaces), `namespaces/<ns>/<plural>[/<name>[/<subresource>]]` for namespaced ones.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tokio::sync::broadcast::error::RecvError;

use super::kinds::{self, KindSpec};
use super::patch;
use super::selector::{FieldSelector, LabelSelector};
use super::store::{ApiError, Deleted, EventType, watch_selected};
use super::{RecordedRequest, Shared};

/// What a path names.
enum Target {
    Version,
    CoreVersions,
    Groups,
    Group(String),
    Resources(String, String),
    Object {
        spec: KindSpec,
        namespace: Option<String>,
        name: Option<String>,
        subresource: Option<String>,
    },
}

fn resolve(shared: &Shared, path: &str) -> Result<Target, ApiError> {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let unknown = || {
        ApiError::new(
            404,
            format!("the server could not find the requested resource ({path})"),
        )
    };
    let (group, version, rest) = match segments.as_slice() {
        ["version"] => return Ok(Target::Version),
        ["api"] => return Ok(Target::CoreVersions),
        ["apis"] => return Ok(Target::Groups),
        ["apis", group] => return Ok(Target::Group((*group).to_owned())),
        ["api", version, rest @ ..] => ("", *version, rest),
        ["apis", group, version, rest @ ..] => (*group, *version, rest),
        _ => return Err(unknown()),
    };
    if rest.is_empty() {
        return Ok(Target::Resources(group.to_owned(), version.to_owned()));
    }
    let store = shared.store();
    let lookup = |plural: &str| store.kind(group, version, plural).cloned();
    let target = match rest {
        ["namespaces", namespace, plural, tail @ ..]
            if lookup(plural).is_some_and(|k| k.namespaced) =>
        {
            let spec = lookup(plural).expect("checked");
            match tail {
                [] => (spec, Some(*namespace), None, None),
                [name] => (spec, Some(*namespace), Some(*name), None),
                [name, sub] => (spec, Some(*namespace), Some(*name), Some(*sub)),
                _ => return Err(unknown()),
            }
        }
        [plural, tail @ ..] => {
            let spec = lookup(plural).ok_or_else(unknown)?;
            match tail {
                [] => (spec, None, None, None),
                [name] => (spec, None, Some(*name), None),
                [name, sub] => (spec, None, Some(*name), Some(*sub)),
                _ => return Err(unknown()),
            }
        }
        [] => return Err(unknown()),
    };
    let (spec, namespace, name, subresource) = target;
    if let Some(sub) = subresource {
        let allowed = (sub == "status" && spec.status_subresource)
            || (sub == "log" && spec.kind == "Pod" && spec.group.is_empty());
        if !allowed {
            return Err(unknown());
        }
    }
    if name.is_some() && spec.namespaced && namespace.is_none() {
        return Err(unknown());
    }
    Ok(Target::Object {
        spec,
        namespace: namespace.map(str::to_owned),
        name: name.map(str::to_owned),
        subresource: subresource.map(str::to_owned),
    })
}

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
pub async fn handle(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
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
        Err(e) => return error_response(&ApiError::new(400, e)),
    };
    let fields = match FieldSelector::parse(param("fieldSelector").unwrap_or_default()) {
        Ok(s) => s,
        Err(e) => return error_response(&ApiError::new(400, e)),
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

#[allow(clippy::too_many_arguments)]
fn patch_object(
    shared: &Arc<Shared>,
    spec: &KindSpec,
    namespace: Option<&str>,
    name: &str,
    headers: &HeaderMap,
    body: &Bytes,
    status_only: bool,
    dry_run: bool,
    field_manager: Option<&str>,
) -> Response {
    const TYPES: [&str; 4] = [
        "application/merge-patch+json",
        "application/strategic-merge-patch+json",
        "application/json-patch+json",
        "application/apply-patch+yaml",
    ];
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_owned();
    let patch_body = match parse_json(headers, body, &TYPES) {
        Ok(v) => v,
        Err(response) => return *response,
    };
    let mut store = shared.store();
    if content_type == "application/apply-patch+yaml" {
        if field_manager.is_none_or(str::is_empty) {
            return error_response(&ApiError::new(
                400,
                "PATCH, application/apply-patch+yaml: fieldManager is required for apply requests",
            ));
        }
        if store.get(spec, namespace, name).is_err() && !status_only {
            let mut object = patch_body;
            if object.pointer("/metadata/name").is_none() {
                object["metadata"]["name"] = name.into();
            }
            drop(store);
            let created = shared.store().create(spec, namespace, object, dry_run);
            return match created {
                Ok(object) => {
                    if !dry_run {
                        shared.after_create(spec, &object);
                    }
                    json_response(StatusCode::CREATED, &object)
                }
                Err(e) => error_response(&e),
            };
        }
    }
    let result = store.modify(spec, namespace, name, status_only, dry_run, |object| {
        match content_type.as_str() {
            "application/merge-patch+json" => patch::merge_patch(object, &patch_body),
            "application/json-patch+json" => {
                *object =
                    patch::json_patch(object, &patch_body).map_err(|e| ApiError::new(422, e))?;
            }
            _ => patch::strategic_merge(object, &patch_body),
        }
        Ok(())
    });
    match result {
        Ok(object) => json_response(StatusCode::OK, &object),
        Err(e) => error_response(&e),
    }
}

/// `?watch=true`: one JSON event per line, until `timeoutSeconds` or the fake stops.
fn watch_stream(
    shared: &Arc<Shared>,
    spec: &KindSpec,
    namespace: Option<String>,
    labels: LabelSelector,
    fields: FieldSelector,
    resource_version: Option<&str>,
    timeout_seconds: Option<&str>,
) -> Response {
    let since = resource_version
        .filter(|v| !v.is_empty() && *v != "0")
        .map(|v| v.parse::<u64>());
    let since = match since {
        Some(Ok(v)) => Some(v),
        Some(Err(_)) => {
            return error_response(&ApiError::new(400, "resourceVersion must be a number"));
        }
        None => None,
    };
    let (backlog, receiver) = match shared.store().subscribe(spec, since) {
        Ok(subscription) => subscription,
        Err(error) => {
            let line = json!({"type": "ERROR", "object": error.to_status()}).to_string() + "\n";
            return ([(header::CONTENT_TYPE, "application/json")], line).into_response();
        }
    };
    let timeout = timeout_seconds
        .and_then(|t| t.parse::<u64>().ok())
        .map_or(Duration::from_secs(1800), Duration::from_secs);
    let deadline = tokio::time::Instant::now() + timeout;
    let stop = shared.shutdown.clone();
    let spec = spec.clone();
    let render =
        move |kind: EventType, object: &Value, previous: Option<&Value>| -> Option<String> {
            let in_namespace = namespace.as_deref().is_none_or(|ns| {
                object
                    .pointer("/metadata/namespace")
                    .and_then(Value::as_str)
                    == Some(ns)
            });
            if !in_namespace {
                return None;
            }
            let now_selected = watch_selected(object, &labels, &fields);
            let was_selected = previous.is_some_and(|p| watch_selected(p, &labels, &fields));
            let kind = match (kind, now_selected, was_selected) {
                (EventType::Modified, false, true) => EventType::Deleted,
                (EventType::Modified, true, false) => EventType::Added,
                (_, false, _) => return None,
                (kind, true, _) => kind,
            };
            Some(json!({"type": kind.as_str(), "object": object}).to_string() + "\n")
        };
    let initial: Vec<String> = backlog
        .iter()
        .filter_map(|e| render(e.kind, &e.object, e.previous.as_ref()))
        .collect();
    let state = (initial.into_iter(), receiver, render, false);
    let stream =
        futures_util::stream::unfold(state, move |(mut initial, mut receiver, render, done)| {
            let stop = stop.clone();
            let spec = spec.clone();
            async move {
                if done {
                    return None;
                }
                if let Some(line) = initial.next() {
                    return Some((
                        Ok::<_, Infallible>(Bytes::from(line)),
                        (initial, receiver, render, false),
                    ));
                }
                loop {
                    let event = tokio::select! {
                        () = stop.cancelled() => return None,
                        () = tokio::time::sleep_until(deadline) => return None,
                        event = receiver.recv() => event,
                    };
                    match event {
                        Ok(e) if e.group == spec.group && e.plural == spec.plural => {
                            if let Some(line) = render(e.kind, &e.object, e.previous.as_ref()) {
                                return Some((
                                    Ok(Bytes::from(line)),
                                    (initial, receiver, render, false),
                                ));
                            }
                        }
                        Ok(_) => {}
                        Err(RecvError::Lagged(_)) => {
                            let gone = ApiError::new(410, "watch fell behind; list again");
                            let line = json!({"type": "ERROR", "object": gone.to_status()})
                                .to_string()
                                + "\n";
                            // The stream ends after the error: the client lists again.
                            return Some((
                                Ok(Bytes::from(line)),
                                (initial, receiver, render, true),
                            ));
                        }
                        Err(RecvError::Closed) => return None,
                    }
                }
            }
        });
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from_stream(stream))
        .expect("valid response")
}

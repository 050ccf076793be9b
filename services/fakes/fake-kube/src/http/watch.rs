//! `?watch=true`: the backlog since a resource version, then live events, one JSON object per
//! line.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tokio::sync::broadcast::error::RecvError;

use super::error_response;
use crate::Shared;
use crate::kinds::KindSpec;
use crate::selector::{FieldSelector, LabelSelector};
use crate::store::{ApiError, EventType, watch_selected};

/// `?watch=true`: one JSON event per line, until `timeoutSeconds` or the fake stops.
pub(super) fn watch_stream(
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

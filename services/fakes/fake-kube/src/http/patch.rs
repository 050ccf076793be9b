//! `PATCH`: merge, strategic merge, JSON patch, and server-side apply (which creates the
//! object when it does not exist yet).

use std::sync::Arc;

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;

use super::{error_response, json_response, parse_json};
use crate::Shared;
use crate::kinds::KindSpec;
use crate::patch;
use crate::store::ApiError;

#[allow(clippy::too_many_arguments)]
pub(super) fn patch_object(
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
                *object = patch::json_patch(object, &patch_body)
                    .map_err(|e| ApiError::new(422, e.to_string()))?;
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

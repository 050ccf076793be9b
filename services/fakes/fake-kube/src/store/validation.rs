//! What the API server does to an object before it is stored: type check, defaults, and the
//! validation of names, labels and annotations.

use serde_json::{Map, Value, json};

use super::ApiError;
use crate::kinds::KindSpec;

/// The object without metadata and status: what `metadata.generation` tracks.
pub(super) fn strip(object: &Value) -> Value {
    let mut copy = object.clone();
    if let Some(map) = copy.as_object_mut() {
        map.remove("metadata");
        map.remove("status");
    }
    copy
}

pub(super) fn metadata_mut(object: &mut Value) -> Result<&mut Map<String, Value>, ApiError> {
    let map = object
        .as_object_mut()
        .ok_or_else(|| ApiError::new(400, "the request body must be a JSON object"))?;
    let metadata = map.entry("metadata").or_insert_with(|| json!({}));
    metadata
        .as_object_mut()
        .ok_or_else(|| ApiError::new(400, "metadata must be an object"))
}

/// Fills in `apiVersion` and `kind`, or refuses a body of another type.
pub(super) fn check_type(spec: &KindSpec, object: &mut Value) -> Result<(), ApiError> {
    let map = object
        .as_object_mut()
        .ok_or_else(|| ApiError::new(400, "the request body must be a JSON object"))?;
    let expected = spec.api_version();
    match map.get("apiVersion").and_then(Value::as_str) {
        Some(v) if v != expected => {
            return Err(ApiError::new(
                400,
                format!(
                    "the API version in the data ({v}) does not match the expected API version ({expected})"
                ),
            ));
        }
        _ => {
            map.insert("apiVersion".into(), expected.into());
        }
    }
    match map.get("kind").and_then(Value::as_str) {
        Some(k) if k != spec.kind => {
            return Err(ApiError::new(
                400,
                format!(
                    "the kind in the data ({k}) does not match the expected kind ({})",
                    spec.kind
                ),
            ));
        }
        _ => {
            map.insert("kind".into(), spec.kind.clone().into());
        }
    }
    Ok(())
}

pub(super) fn apply_defaults(spec: &KindSpec, object: &mut Value) {
    match (spec.group.as_str(), spec.kind.as_str()) {
        ("", "Namespace") => {
            object["spec"] = json!({"finalizers": ["kubernetes"]});
            object["status"] = json!({"phase": "Active"});
            let name = object["metadata"]["name"].clone();
            let labels = object["metadata"]
                .as_object_mut()
                .expect("metadata")
                .entry("labels")
                .or_insert_with(|| json!({}));
            if let Some(labels) = labels.as_object_mut() {
                labels.insert("kubernetes.io/metadata.name".into(), name);
            }
        }
        ("", "Pod") => {
            object["status"] = json!({"phase": "Pending"});
        }
        ("", "Secret") => {
            use base64::Engine as _;
            if let Some(Value::Object(string_data)) =
                object.as_object_mut().and_then(|o| o.remove("stringData"))
            {
                let data = object
                    .as_object_mut()
                    .expect("object")
                    .entry("data")
                    .or_insert_with(|| json!({}));
                for (k, v) in string_data {
                    let text = v.as_str().unwrap_or_default();
                    data[k] = base64::engine::general_purpose::STANDARD
                        .encode(text)
                        .into();
                }
            }
        }
        _ => {}
    }
}

/// Checks the name, labels and annotations as the API server's validation does.
pub(super) fn validate_metadata(spec: &KindSpec, object: &Value) -> Result<(), ApiError> {
    let name = object
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let name_ok = if spec.kind == "Namespace" {
        is_dns_label(name)
    } else {
        name.len() <= 253 && name.split('.').all(is_dns_label)
    };
    if !name_ok {
        let what = if spec.kind == "Namespace" {
            "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character"
        } else {
            "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character"
        };
        return Err(ApiError::invalid(
            spec,
            name,
            format!("metadata.name: Invalid value: \"{name}\": {what}"),
        ));
    }
    for field in ["labels", "annotations"] {
        let Some(entries) = object
            .pointer(&format!("/metadata/{field}"))
            .filter(|v| !v.is_null())
        else {
            continue;
        };
        let Some(entries) = entries.as_object() else {
            return Err(ApiError::invalid(
                spec,
                name,
                format!("metadata.{field}: Invalid value: must be a map of strings"),
            ));
        };
        for (key, value) in entries {
            let Some(text) = value.as_str() else {
                return Err(ApiError::invalid(
                    spec,
                    name,
                    format!("metadata.{field}.{key}: Invalid value: {value}: must be a string"),
                ));
            };
            if !is_qualified_name(key) {
                return Err(ApiError::invalid(
                    spec,
                    name,
                    format!(
                        "metadata.{field}: Invalid value: \"{key}\": name part must consist of alphanumeric characters, '-', '_' or '.'"
                    ),
                ));
            }
            if field == "labels" && !is_label_value(text) {
                return Err(ApiError::invalid(
                    spec,
                    name,
                    format!(
                        "metadata.labels: Invalid value: \"{text}\": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character"
                    ),
                ));
            }
        }
    }
    Ok(())
}

fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

fn is_label_value(s: &str) -> bool {
    s.is_empty()
        || (s.len() <= 63
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
            && s.as_bytes()[0].is_ascii_alphanumeric()
            && s.as_bytes()[s.len() - 1].is_ascii_alphanumeric())
}

fn is_qualified_name(key: &str) -> bool {
    let (prefix, name) = match key.rsplit_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    prefix.is_none_or(|p| p.len() <= 253 && p.split('.').all(is_dns_label))
        && !name.is_empty()
        && is_label_value(name)
}

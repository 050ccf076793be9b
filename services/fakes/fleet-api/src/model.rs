//! Clusters and nodepools: request validation (every problem reported at once, per field) and
//! the JSON the API answers with.

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Map, Value as Json, json};
use uuid::Uuid;

use crate::problem::{ApiError, FieldError};

pub const API_BASE: &str = "/api/hyperfleet/v1";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Cluster,
    NodePool,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Cluster => "Cluster",
            Kind::NodePool => "NodePool",
        }
    }

    /// The spec's `maxLength` of `name`.
    fn max_name_len(self) -> usize {
        match self {
            Kind::Cluster => 53,
            Kind::NodePool => 15,
        }
    }

    pub fn not_found(self, id: &str) -> ApiError {
        match self {
            Kind::Cluster => ApiError::cluster_not_found(id),
            Kind::NodePool => ApiError::nodepool_not_found(id),
        }
    }
}

/// A row of `resources`.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ResourceRow {
    pub id: Uuid,
    pub kind: String,
    pub owner_id: Option<Uuid>,
    pub name: String,
    pub labels: Json,
    pub spec: Json,
    pub generation: i32,
    pub conditions: Json,
    pub created_time: DateTime<Utc>,
    pub updated_time: DateTime<Utc>,
    pub created_by: String,
    pub updated_by: String,
    pub deleted_time: Option<DateTime<Utc>>,
    pub deleted_by: Option<String>,
}

pub fn cluster_href(id: &Uuid) -> String {
    format!("{API_BASE}/clusters/{id}")
}

pub fn time(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

impl ResourceRow {
    pub fn href(&self) -> String {
        match self.owner_id {
            Some(owner) => format!("{API_BASE}/clusters/{owner}/nodepools/{}", self.id),
            None => cluster_href(&self.id),
        }
    }

    /// The resource as the API returns it.
    pub fn to_json(&self) -> Json {
        let mut out = Map::new();
        out.insert("kind".into(), json!(self.kind));
        out.insert("id".into(), json!(self.id.to_string()));
        out.insert("href".into(), json!(self.href()));
        out.insert("name".into(), json!(self.name));
        out.insert("labels".into(), self.labels.clone());
        out.insert("spec".into(), self.spec.clone());
        out.insert("generation".into(), json!(self.generation));
        if let Some(owner) = self.owner_id {
            out.insert(
                "owner_references".into(),
                json!({"id": owner.to_string(), "kind": "Cluster", "href": cluster_href(&owner)}),
            );
        }
        out.insert("status".into(), json!({"conditions": self.conditions}));
        out.insert("created_time".into(), json!(time(&self.created_time)));
        out.insert("updated_time".into(), json!(time(&self.updated_time)));
        out.insert("created_by".into(), json!(self.created_by));
        out.insert("updated_by".into(), json!(self.updated_by));
        if let Some(deleted) = &self.deleted_time {
            out.insert("deleted_time".into(), json!(time(deleted)));
        }
        if let Some(by) = &self.deleted_by {
            out.insert("deleted_by".into(), json!(by));
        }
        Json::Object(out)
    }
}

/// A validated create request.
#[derive(Debug, Clone, PartialEq)]
pub struct NewResource {
    pub name: String,
    pub labels: Json,
    pub spec: Json,
}

/// A validated patch: at least one of the two.
#[derive(Debug, Clone, PartialEq)]
pub struct Patch {
    pub labels: Option<Json>,
    pub spec: Option<Json>,
}

fn as_object(body: &Json) -> Result<&Map<String, Json>, ApiError> {
    body.as_object().ok_or_else(|| {
        ApiError::malformed(format!(
            "the request body must be a JSON object, not {}",
            json_type(body)
        ))
    })
}

pub fn json_type(value: &Json) -> &'static str {
    match value {
        Json::Null => "null",
        Json::Bool(_) => "a boolean",
        Json::Number(_) => "a number",
        Json::String(_) => "a string",
        Json::Array(_) => "an array",
        Json::Object(_) => "an object",
    }
}

fn check_labels(value: &Json, errors: &mut Vec<FieldError>) {
    match value.as_object() {
        None => errors.push(FieldError::new(
            "labels",
            "format",
            format!("must be an object of strings, not {}", json_type(value)),
        )),
        Some(map) => {
            for (key, v) in map {
                if !v.is_string() {
                    errors.push(FieldError::new(
                        format!("labels.{key}"),
                        "format",
                        format!("must be a string, not {}", json_type(v)),
                    ));
                }
            }
        }
    }
}

fn check_spec(value: &Json, errors: &mut Vec<FieldError>) {
    if !value.is_object() {
        errors.push(FieldError::new(
            "spec",
            "format",
            format!("must be an object, not {}", json_type(value)),
        ));
    }
}

fn check_name(kind: Kind, value: Option<&Json>, errors: &mut Vec<FieldError>) {
    let Some(value) = value else {
        errors.push(FieldError::new("name", "required", "is required"));
        return;
    };
    let Some(name) = value.as_str() else {
        errors.push(FieldError::new(
            "name",
            "format",
            format!("must be a string, not {}", json_type(value)),
        ));
        return;
    };
    let len = name.chars().count();
    let max = kind.max_name_len();
    if len < 3 {
        errors.push(FieldError::new(
            "name",
            "min_length",
            "must be at least 3 characters",
        ));
    } else if len > max {
        errors.push(FieldError::new(
            "name",
            "max_length",
            format!("must be at most {max} characters"),
        ));
    } else if !is_dns_label(name) {
        errors.push(FieldError::new(
            "name",
            "pattern",
            "must match ^[a-z0-9]([-a-z0-9]*[a-z0-9])?$ (lower-case letters, digits and inner dashes)",
        ));
    }
}

fn is_dns_label(name: &str) -> bool {
    let bytes = name.as_bytes();
    let edge = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    bytes.first().is_some_and(edge)
        && bytes.last().is_some_and(edge)
        && bytes.iter().all(|b| edge(b) || *b == b'-')
}

/// Validates a `ClusterCreateRequest` / `NodePoolCreateRequest`.
pub fn parse_create(kind: Kind, body: &Json) -> Result<NewResource, ApiError> {
    let object = as_object(body)?;
    let mut errors = Vec::new();
    match object.get("kind") {
        None => errors.push(FieldError::new("kind", "required", "is required")),
        Some(Json::String(k)) if k == kind.as_str() => {}
        Some(other) => errors.push(FieldError {
            value: Some(other.clone()),
            ..FieldError::new("kind", "enum", format!("must be \"{}\"", kind.as_str()))
        }),
    }
    check_name(kind, object.get("name"), &mut errors);
    match object.get("spec") {
        None => errors.push(FieldError::new("spec", "required", "is required")),
        Some(spec) => check_spec(spec, &mut errors),
    }
    if let Some(labels) = object.get("labels") {
        check_labels(labels, &mut errors);
    }
    for field in ["id", "href"] {
        if let Some(v) = object.get(field).filter(|v| !v.is_string()) {
            errors.push(FieldError::new(
                field,
                "format",
                format!("must be a string, not {}", json_type(v)),
            ));
        }
    }
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    Ok(NewResource {
        name: object["name"].as_str().unwrap_or_default().to_owned(),
        labels: object.get("labels").cloned().unwrap_or_else(|| json!({})),
        spec: object["spec"].clone(),
    })
}

/// Validates a `ClusterPatchRequest` / `NodePoolPatchRequest`: only `spec` and `labels`, at
/// least one of them.
pub fn parse_patch(body: &Json) -> Result<Patch, ApiError> {
    let object = as_object(body)?;
    let mut errors = Vec::new();
    for key in object.keys() {
        if key != "spec" && key != "labels" {
            errors.push(FieldError::new(
                key.clone(),
                "enum",
                "is not a patchable field (only `spec` and `labels` are)",
            ));
        }
    }
    if object.is_empty() {
        errors.push(FieldError::new(
            "body",
            "min",
            "must set at least one of `spec` and `labels`",
        ));
    }
    if let Some(spec) = object.get("spec") {
        check_spec(spec, &mut errors);
    }
    if let Some(labels) = object.get("labels") {
        check_labels(labels, &mut errors);
    }
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    Ok(Patch {
        labels: object.get("labels").cloned(),
        spec: object.get("spec").cloned(),
    })
}

/// Validates a `ForceDeleteRequest`.
pub fn parse_force_delete(body: &Json) -> Result<String, ApiError> {
    let object = as_object(body)?;
    match object.get("reason") {
        None => Err(ApiError::invalid("reason", "required", "is required")),
        Some(Json::String(reason)) if reason.is_empty() => Err(ApiError::invalid(
            "reason",
            "min_length",
            "must not be empty",
        )),
        Some(Json::String(reason)) if reason.chars().count() > 1024 => Err(ApiError::invalid(
            "reason",
            "max_length",
            "must be at most 1024 characters",
        )),
        Some(Json::String(reason)) => Ok(reason.clone()),
        Some(other) => Err(ApiError::invalid(
            "reason",
            "format",
            format!("must be a string, not {}", json_type(other)),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_collects_every_field_error() {
        let err = parse_create(
            Kind::Cluster,
            &json!({"kind": "NodePool", "name": "A_b", "spec": [], "labels": {"a": 1}}),
        )
        .unwrap_err();
        assert_eq!(err.code, "HYPERFLEET-VAL-000");
        let fields: Vec<&str> = err.errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["kind", "name", "spec", "labels.a"]);
        assert_eq!(err.status.as_u16(), 400);
    }

    #[test]
    fn one_missing_field_is_required_code() {
        let err = parse_create(Kind::Cluster, &json!({"kind": "Cluster", "spec": {}})).unwrap_err();
        assert_eq!(err.code, "HYPERFLEET-VAL-001");
        assert_eq!(err.detail, "name: is required");
    }

    #[test]
    fn names_follow_the_spec() {
        let ok = |kind, name: &str| {
            parse_create(
                kind,
                &json!({"kind": kind.as_str(), "name": name, "spec": {}}),
            )
            .is_ok()
        };
        assert!(ok(Kind::Cluster, "abc"));
        assert!(ok(Kind::Cluster, "a-1-b"));
        assert!(!ok(Kind::Cluster, "ab"));
        assert!(!ok(Kind::Cluster, "-ab"));
        assert!(!ok(Kind::Cluster, "abc-"));
        assert!(!ok(Kind::NodePool, "a-very-long-pool-name"));
        assert!(ok(Kind::Cluster, "a-very-long-pool-name"));
    }

    #[test]
    fn patch_rejects_unknown_and_empty() {
        assert!(parse_patch(&json!({"spec": {"x": 1}})).is_ok());
        let err = parse_patch(&json!({})).unwrap_err();
        assert_eq!(err.errors[0].field, "body");
        let err = parse_patch(&json!({"generation": 5})).unwrap_err();
        assert_eq!(err.errors[0].field, "generation");
        assert!(parse_patch(&json!([1])).is_err());
    }
}

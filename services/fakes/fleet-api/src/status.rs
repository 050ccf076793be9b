//! Adapter status reports: validation, HyperFleet's accept/discard rules, and the stored form.
//!
//! A report is **discarded** (204, nothing stored) when it is stale or says less than what is
//! already known: its `observed_generation` is ahead of the resource or behind the stored one,
//! it is for the same generation but observed earlier, or its `Available` is `Unknown` while
//! the adapter already reported True or False. A report without the mandatory `Available`,
//! `Applied` and `Health` conditions is **rejected** (400).

use chrono::{DateTime, Utc};
use serde_json::{Map, Value as Json, json};

use crate::aggregation::{AdapterCondition, AdapterReport};
use crate::model::{json_type, time};
use crate::problem::{ApiError, FieldError};

pub const MANDATORY_CONDITIONS: [&str; 3] = ["Available", "Applied", "Health"];
const CONDITION_STATUSES: [&str; 3] = ["True", "False", "Unknown"];

/// A condition as an adapter sends it.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportedCondition {
    pub kind: String,
    pub status: String,
    pub reason: Option<String>,
    pub message: Option<String>,
}

/// A validated `AdapterStatusCreateRequest`.
#[derive(Debug, Clone, PartialEq)]
pub struct StatusReport {
    pub adapter: String,
    pub observed_generation: i32,
    pub observed_time: DateTime<Utc>,
    pub conditions: Vec<ReportedCondition>,
    pub data: Option<Json>,
    pub metadata: Option<Json>,
}

/// A stored report (a row of `adapter_statuses`).
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct StoredStatus {
    pub adapter: String,
    pub observed_generation: i32,
    pub conditions: Json,
    pub data: Option<Json>,
    pub metadata: Option<Json>,
    pub created_time: DateTime<Utc>,
    pub last_report_time: DateTime<Utc>,
}

impl StoredStatus {
    pub fn parsed_conditions(&self) -> Vec<AdapterCondition> {
        serde_json::from_value(self.conditions.clone()).unwrap_or_default()
    }

    pub fn report(&self) -> AdapterReport {
        AdapterReport {
            adapter: self.adapter.clone(),
            observed_generation: self.observed_generation,
            last_report_time: self.last_report_time,
            conditions: self.parsed_conditions(),
        }
    }

    /// The `AdapterStatus` JSON.
    pub fn to_json(&self) -> Json {
        let mut out = Map::new();
        out.insert("adapter".into(), json!(self.adapter));
        out.insert(
            "observed_generation".into(),
            json!(self.observed_generation),
        );
        if let Some(metadata) = &self.metadata {
            out.insert("metadata".into(), metadata.clone());
        }
        if let Some(data) = &self.data {
            out.insert("data".into(), data.clone());
        }
        out.insert("conditions".into(), self.conditions.clone());
        out.insert("created_time".into(), json!(time(&self.created_time)));
        out.insert(
            "last_report_time".into(),
            json!(time(&self.last_report_time)),
        );
        Json::Object(out)
    }
}

/// What to do with a report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Store,
    Discard(DiscardReason),
}

/// Why a report was discarded (logged; the client gets 204 either way).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DiscardReason {
    #[error(
        "observed_generation {observed} is ahead of the resource's generation {resource_generation}"
    )]
    AheadOfResource {
        observed: i32,
        resource_generation: i32,
    },
    #[error("observed_generation {observed} is older than the stored report's {stored}")]
    OlderGeneration { observed: i32, stored: i32 },
    #[error(
        "observed_time {} is older than the stored report's {}",
        time(observed),
        time(stored)
    )]
    OlderObservation {
        observed: DateTime<Utc>,
        stored: DateTime<Utc>,
    },
    #[error("Available=Unknown does not replace a stored True/False report")]
    UnknownAvailability,
}

fn parse_time(field: &str, value: &Json, errors: &mut Vec<FieldError>) -> Option<DateTime<Utc>> {
    match value.as_str().map(DateTime::parse_from_rfc3339) {
        Some(Ok(t)) => Some(t.with_timezone(&Utc)),
        Some(Err(e)) => {
            errors.push(FieldError::new(
                field,
                "format",
                format!("must be an RFC 3339 date-time: {e}"),
            ));
            None
        }
        None => {
            errors.push(FieldError::new(
                field,
                "format",
                format!(
                    "must be an RFC 3339 date-time string, not {}",
                    json_type(value)
                ),
            ));
            None
        }
    }
}

fn optional_string(
    object: &Map<String, Json>,
    field: &str,
    prefix: &str,
    errors: &mut Vec<FieldError>,
) {
    if let Some(v) = object.get(field).filter(|v| !v.is_string()) {
        errors.push(FieldError::new(
            format!("{prefix}{field}"),
            "format",
            format!("must be a string, not {}", json_type(v)),
        ));
    }
}

fn int32(value: &Json) -> Option<i32> {
    value.as_i64().and_then(|n| i32::try_from(n).ok())
}

fn check_metadata(value: &Json, errors: &mut Vec<FieldError>) {
    let Some(object) = value.as_object() else {
        errors.push(FieldError::new(
            "metadata",
            "format",
            format!("must be an object, not {}", json_type(value)),
        ));
        return;
    };
    for field in ["job_name", "job_namespace", "duration"] {
        optional_string(object, field, "metadata.", errors);
    }
    if let Some(attempt) = object.get("attempt").filter(|v| int32(v).is_none()) {
        errors.push(FieldError::new(
            "metadata.attempt",
            "format",
            format!("must be a 32-bit integer, not {attempt}"),
        ));
    }
    for field in ["started_time", "completed_time"] {
        if let Some(v) = object.get(field) {
            parse_time(&format!("metadata.{field}"), v, errors);
        }
    }
}

/// Validates a report body.
pub fn parse_report(body: &Json) -> Result<StatusReport, ApiError> {
    let object = body.as_object().ok_or_else(|| {
        ApiError::malformed(format!(
            "the request body must be a JSON object, not {}",
            json_type(body)
        ))
    })?;
    let mut errors = Vec::new();
    let adapter = match object.get("adapter") {
        None => {
            errors.push(FieldError::new("adapter", "required", "is required"));
            None
        }
        Some(Json::String(a)) if a.trim().is_empty() => {
            errors.push(FieldError::new(
                "adapter",
                "min_length",
                "must not be empty",
            ));
            None
        }
        Some(Json::String(a)) => Some(a.clone()),
        Some(other) => {
            errors.push(FieldError::new(
                "adapter",
                "format",
                format!("must be a string, not {}", json_type(other)),
            ));
            None
        }
    };
    let observed_generation = match object.get("observed_generation") {
        None => {
            errors.push(FieldError::new(
                "observed_generation",
                "required",
                "is required",
            ));
            None
        }
        Some(v) => {
            let parsed = int32(v);
            if parsed.is_none() {
                errors.push(FieldError::new(
                    "observed_generation",
                    "format",
                    format!("must be a 32-bit integer, not {v}"),
                ));
            }
            parsed
        }
    };
    let observed_time = match object.get("observed_time") {
        None => {
            errors.push(FieldError::new("observed_time", "required", "is required"));
            None
        }
        Some(v) => parse_time("observed_time", v, &mut errors),
    };
    let conditions = parse_conditions(object.get("conditions"), &mut errors);
    if let Some(metadata) = object.get("metadata") {
        check_metadata(metadata, &mut errors);
    }
    if let Some(data) = object.get("data").filter(|d| !d.is_object()) {
        errors.push(FieldError::new(
            "data",
            "format",
            format!("must be an object, not {}", json_type(data)),
        ));
    }
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    let (Some(adapter), Some(observed_generation), Some(observed_time), Some(conditions)) =
        (adapter, observed_generation, observed_time, conditions)
    else {
        return Err(ApiError::internal("report validation lost a field"));
    };
    Ok(StatusReport {
        adapter,
        observed_generation,
        observed_time,
        conditions,
        data: object.get("data").cloned(),
        metadata: object.get("metadata").cloned(),
    })
}

fn parse_conditions(
    value: Option<&Json>,
    errors: &mut Vec<FieldError>,
) -> Option<Vec<ReportedCondition>> {
    let Some(value) = value else {
        errors.push(FieldError::new("conditions", "required", "is required"));
        return None;
    };
    let Some(items) = value.as_array() else {
        errors.push(FieldError::new(
            "conditions",
            "format",
            format!("must be an array, not {}", json_type(value)),
        ));
        return None;
    };
    let before = errors.len();
    let mut conditions: Vec<ReportedCondition> = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let at = |field: &str| format!("conditions[{i}].{field}");
        let Some(object) = item.as_object() else {
            errors.push(FieldError::new(
                format!("conditions[{i}]"),
                "format",
                format!("must be an object, not {}", json_type(item)),
            ));
            continue;
        };
        let kind = match object.get("type") {
            Some(Json::String(t)) if !t.is_empty() => Some(t.clone()),
            Some(Json::String(_)) => {
                errors.push(FieldError::new(
                    at("type"),
                    "min_length",
                    "must not be empty",
                ));
                None
            }
            None => {
                errors.push(FieldError::new(at("type"), "required", "is required"));
                None
            }
            Some(other) => {
                errors.push(FieldError::new(
                    at("type"),
                    "format",
                    format!("must be a string, not {}", json_type(other)),
                ));
                None
            }
        };
        let status = match object.get("status") {
            Some(Json::String(s)) if CONDITION_STATUSES.contains(&s.as_str()) => Some(s.clone()),
            None => {
                errors.push(FieldError::new(at("status"), "required", "is required"));
                None
            }
            Some(other) => {
                errors.push(FieldError {
                    value: Some(other.clone()),
                    ..FieldError::new(
                        at("status"),
                        "enum",
                        "must be \"True\", \"False\" or \"Unknown\"",
                    )
                });
                None
            }
        };
        optional_string(object, "reason", &format!("conditions[{i}]."), errors);
        optional_string(object, "message", &format!("conditions[{i}]."), errors);
        if let (Some(kind), Some(status)) = (kind, status) {
            if conditions.iter().any(|c| c.kind == kind) {
                errors.push(FieldError::new(
                    at("type"),
                    "unique",
                    format!("condition `{kind}` is given more than once"),
                ));
                continue;
            }
            conditions.push(ReportedCondition {
                kind,
                status,
                reason: object
                    .get("reason")
                    .and_then(Json::as_str)
                    .map(str::to_owned),
                message: object
                    .get("message")
                    .and_then(Json::as_str)
                    .map(str::to_owned),
            });
        }
    }
    if errors.len() > before {
        return None;
    }
    for mandatory in MANDATORY_CONDITIONS {
        if !conditions.iter().any(|c| c.kind == mandatory) {
            errors.push(FieldError::new(
                "conditions",
                "required",
                format!("mandatory condition `{mandatory}` is missing (Available, Applied and Health are required)"),
            ));
        }
    }
    (errors.len() == before).then_some(conditions)
}

/// HyperFleet's accept/discard rules.
pub fn decide(
    report: &StatusReport,
    resource_generation: i32,
    stored: Option<&StoredStatus>,
) -> Decision {
    if report.observed_generation > resource_generation {
        return Decision::Discard(DiscardReason::AheadOfResource {
            observed: report.observed_generation,
            resource_generation,
        });
    }
    let Some(stored) = stored else {
        return Decision::Store;
    };
    if report.observed_generation < stored.observed_generation {
        return Decision::Discard(DiscardReason::OlderGeneration {
            observed: report.observed_generation,
            stored: stored.observed_generation,
        });
    }
    if report.observed_generation == stored.observed_generation
        && report.observed_time < stored.last_report_time
    {
        return Decision::Discard(DiscardReason::OlderObservation {
            observed: report.observed_time,
            stored: stored.last_report_time,
        });
    }
    let available = |conditions: &[AdapterCondition]| {
        conditions
            .iter()
            .find(|c| c.kind == "Available")
            .map(|c| c.status.clone())
    };
    let reported = report
        .conditions
        .iter()
        .find(|c| c.kind == "Available")
        .map(|c| c.status.as_str());
    if reported == Some("Unknown")
        && matches!(
            available(&stored.parsed_conditions()).as_deref(),
            Some("True" | "False")
        )
    {
        return Decision::Discard(DiscardReason::UnknownAvailability);
    }
    Decision::Store
}

/// The conditions to store: each keeps its previous `last_transition_time` while its status
/// is unchanged, and takes the report's `observed_time` when it changes.
pub fn stored_conditions(
    report: &StatusReport,
    previous: Option<&StoredStatus>,
) -> Vec<AdapterCondition> {
    let previous = previous
        .map(StoredStatus::parsed_conditions)
        .unwrap_or_default();
    report
        .conditions
        .iter()
        .map(|c| {
            let prev = previous.iter().find(|p| p.kind == c.kind);
            AdapterCondition {
                kind: c.kind.clone(),
                status: c.status.clone(),
                reason: c.reason.clone(),
                message: c.message.clone(),
                last_transition_time: match prev {
                    Some(p) if p.status == c.status => p.last_transition_time,
                    _ => report.observed_time,
                },
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(generation: i32, at: &str, available: &str) -> Json {
        json!({"adapter": "validator", "observed_generation": generation, "observed_time": at,
               "conditions": [{"type": "Available", "status": available},
                              {"type": "Applied", "status": "True"},
                              {"type": "Health", "status": "True", "reason": "Healthy"}]})
    }

    fn stored(generation: i32, at: &str, available: &str) -> StoredStatus {
        let report = parse_report(&body(generation, at, available)).unwrap();
        StoredStatus {
            adapter: "validator".into(),
            observed_generation: generation,
            conditions: serde_json::to_value(stored_conditions(&report, None)).unwrap(),
            data: None,
            metadata: None,
            created_time: report.observed_time,
            last_report_time: report.observed_time,
        }
    }

    #[test]
    fn mandatory_conditions_are_required() {
        let err = parse_report(&json!({"adapter": "a", "observed_generation": 1,
            "observed_time": "2026-01-01T00:00:00Z",
            "conditions": [{"type": "Available", "status": "True"}]}))
        .unwrap_err();
        assert_eq!(err.status.as_u16(), 400);
        assert!(
            err.detail
                .contains("mandatory condition `Applied` is missing"),
            "{}",
            err.detail
        );
        assert!(err.detail.contains("`Health`"), "{}", err.detail);
    }

    #[test]
    fn malformed_reports_name_each_field() {
        let err = parse_report(&json!({"adapter": 3, "observed_generation": "x",
            "observed_time": "yesterday", "conditions": [{"type": "A", "status": "Maybe"}]}))
        .unwrap_err();
        let fields: Vec<&str> = err.errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "adapter",
                "observed_generation",
                "observed_time",
                "conditions[0].status"
            ]
        );
    }

    #[test]
    fn discard_rules() {
        let r = |g, at, a| parse_report(&body(g, at, a)).unwrap();
        let s = stored(2, "2026-01-01T00:00:10Z", "True");
        assert_eq!(
            decide(&r(1, "2026-01-01T00:00:00Z", "True"), 1, None),
            Decision::Store
        );
        assert!(
            matches!(decide(&r(3, "2026-01-01T00:00:20Z", "True"), 2, Some(&s)), Decision::Discard(m) if m.to_string().contains("ahead"))
        );
        assert!(
            matches!(decide(&r(1, "2026-01-01T00:00:20Z", "True"), 2, Some(&s)), Decision::Discard(m) if m.to_string().contains("older than the stored report's 2"))
        );
        assert!(
            matches!(decide(&r(2, "2026-01-01T00:00:05Z", "True"), 2, Some(&s)), Decision::Discard(m) if m.to_string().contains("observed_time"))
        );
        assert!(matches!(
            decide(&r(2, "2026-01-01T00:00:20Z", "Unknown"), 2, Some(&s)),
            Decision::Discard(DiscardReason::UnknownAvailability)
        ));
        assert_eq!(
            decide(&r(2, "2026-01-01T00:00:20Z", "False"), 2, Some(&s)),
            Decision::Store
        );
        // Unknown first is stored.
        assert_eq!(
            decide(&r(2, "2026-01-01T00:00:20Z", "Unknown"), 2, None),
            Decision::Store
        );
    }

    #[test]
    fn transition_times_move_only_on_status_change() {
        let s = stored(1, "2026-01-01T00:00:00Z", "True");
        let next = parse_report(&body(1, "2026-01-01T00:05:00Z", "False")).unwrap();
        let conditions = stored_conditions(&next, Some(&s));
        let t = |k: &str| {
            conditions
                .iter()
                .find(|c| c.kind == k)
                .unwrap()
                .last_transition_time
        };
        assert_eq!(time(&t("Available")), "2026-01-01T00:05:00Z");
        assert_eq!(time(&t("Applied")), "2026-01-01T00:00:00Z");
    }
}

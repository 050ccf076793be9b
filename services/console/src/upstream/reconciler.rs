//! The alert-reconciler's API: incidents (a page, the counts, one with its whole history) and
//! the approval of their suggested actions.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Api, UpstreamError};

#[derive(Debug, Clone, Deserialize)]
pub struct Incident {
    pub id: String,
    pub state: String,
    pub title: String,
    #[serde(default)]
    pub receiver: String,
    #[serde(default)]
    pub labels: Value,
    pub opened_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    #[serde(default)]
    pub closed_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub approval_expires_at: Option<DateTime<Utc>>,
}

impl Incident {
    pub fn label(&self, name: &str) -> Option<&str> {
        self.labels.get(name).and_then(Value::as_str)
    }
}

/// One page of incidents, and how many there are in each state.
#[derive(Debug, Clone, Deserialize)]
pub struct IncidentPage {
    pub incidents: Vec<Incident>,
    #[serde(default)]
    pub counts: BTreeMap<String, u64>,
    #[serde(default)]
    pub next_before: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct AlertSeen {
    pub fingerprint: String,
    pub status: String,
    #[serde(default)]
    pub alert: Value,
    pub first_seen_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct RecipeRun {
    pub recipe: String,
    pub state: String,
    #[serde(default)]
    pub launched_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub finished_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub detail: Option<String>,
    #[serde(default)]
    pub results: Option<Value>,
    #[serde(default)]
    pub attempt: i32,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Run {
    pub id: String,
    pub kind: String,
    pub state: String,
    pub created_at: DateTime<Utc>,
    #[serde(default)]
    pub completed_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub recipes: Vec<RecipeRun>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Approval {
    pub id: String,
    pub action: String,
    #[serde(default)]
    pub suggested_by: Vec<String>,
    pub state: String,
    #[serde(default)]
    pub forced: bool,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    #[serde(default)]
    pub decided_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub decided_by: Option<String>,
    #[serde(default)]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct AuditEntry {
    pub at: DateTime<Utc>,
    pub actor: String,
    pub action: String,
    #[serde(default)]
    pub detail: Value,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Delivery {
    pub sink: String,
    #[serde(default)]
    pub report: Value,
    pub state: String,
    #[serde(default)]
    pub attempts: i32,
    #[serde(default)]
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    #[serde(default)]
    pub sent_at: Option<DateTime<Utc>>,
}

/// One incident with everything that happened to it.
#[derive(Debug, Clone, Deserialize)]
pub struct IncidentDetail {
    pub incident: Incident,
    #[serde(default)]
    pub alerts: Vec<AlertSeen>,
    #[serde(default)]
    pub runs: Vec<Run>,
    #[serde(default)]
    pub approvals: Vec<Approval>,
    #[serde(default)]
    pub audit: Vec<AuditEntry>,
    #[serde(default)]
    pub deliveries: Vec<Delivery>,
}

#[derive(Serialize)]
struct ActionItem<'a> {
    name: &'a str,
}

#[derive(Serialize)]
struct ApproveRequest<'a> {
    uuid: &'a str,
    actions: [ActionItem<'a>; 1],
    force: bool,
    approver: &'a str,
}

#[derive(Serialize)]
struct RejectRequest<'a> {
    uuid: &'a str,
    action: &'a str,
    approver: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'a str>,
}

#[derive(Clone)]
pub struct ReconcilerApi(pub Api);

/// How many incidents a page shows.
pub const PAGE_SIZE: usize = 50;

impl ReconcilerApi {
    pub async fn incidents(
        &self,
        state: Option<&str>,
        before: Option<&str>,
        limit: usize,
    ) -> Result<IncidentPage, UpstreamError> {
        let mut query = vec![("limit", limit.to_string())];
        if let Some(state) = state {
            query.push(("state", state.to_owned()));
        }
        if let Some(before) = before {
            query.push(("before", before.to_owned()));
        }
        self.0.get("/api/incidents", &query).await
    }

    pub async fn incident(&self, id: &str) -> Result<IncidentDetail, UpstreamError> {
        let path = format!(
            "/api/incidents/{}",
            url::form_urlencoded::byte_serialize(id.as_bytes()).collect::<String>()
        );
        self.0.get(&path, &[]).await
    }

    /// Approves `action` (or, with `force`, runs it although it was not suggested).
    pub async fn approve(
        &self,
        incident: &str,
        action: &str,
        force: bool,
        approver: &str,
    ) -> Result<Value, UpstreamError> {
        let body = ApproveRequest {
            uuid: incident,
            actions: [ActionItem { name: action }],
            force,
            approver,
        };
        self.0.post("/api/actions", &body).await
    }

    pub async fn reject(
        &self,
        incident: &str,
        action: &str,
        approver: &str,
        reason: Option<&str>,
    ) -> Result<Value, UpstreamError> {
        let body = RejectRequest {
            uuid: incident,
            action,
            approver,
            reason,
        };
        self.0.post("/api/actions/reject", &body).await
    }
}

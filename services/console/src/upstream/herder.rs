//! The pipeline-herder's admin API: decisions, and the pause switch.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{Api, UpstreamError};

/// One decision of the herder's ledger.
#[derive(Debug, Clone, Deserialize)]
pub struct Decision {
    pub id: i64,
    pub instance: String,
    pub job_id: i64,
    pub project_path: String,
    pub pipeline_id: i64,
    pub git_ref: String,
    pub job_name: String,
    pub job_stage: String,
    pub job_url: String,
    #[serde(default)]
    pub failure_reason: Option<String>,
    pub event_id: String,
    #[serde(default)]
    pub matcher: Option<String>,
    pub action: String,
    pub reason: String,
    pub attempt: i32,
    #[serde(default)]
    pub retry_limit: Option<i32>,
    #[serde(default)]
    pub delay_ms: Option<i64>,
    pub state: String,
    #[serde(default)]
    pub outcome: Option<String>,
    #[serde(default)]
    pub new_job_id: Option<i64>,
    #[serde(default)]
    pub error: Option<String>,
    #[serde(default)]
    pub log_line: Option<String>,
    pub decided_at: DateTime<Utc>,
    #[serde(default)]
    pub retry_due_at: Option<DateTime<Utc>>,
}

/// A decision with the decisions about the same job before and after its retries.
#[derive(Debug, Clone, Deserialize)]
pub struct DecisionDetail {
    pub decision: Decision,
    /// Oldest first, including the decision itself.
    pub chain: Vec<Decision>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct PauseState {
    pub paused: bool,
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(default)]
    pub by: Option<String>,
    #[serde(default, alias = "changed_at")]
    pub since: Option<DateTime<Utc>>,
}

/// The filters of the decisions list; empty fields do not filter.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct DecisionFilter {
    #[serde(default)]
    pub instance: Option<String>,
    #[serde(default)]
    pub project: Option<String>,
    #[serde(default)]
    pub matcher: Option<String>,
    #[serde(default)]
    pub action: Option<String>,
    #[serde(default)]
    pub state: Option<String>,
    #[serde(default)]
    pub before: Option<i64>,
}

impl DecisionFilter {
    /// The query string of the herder's API (and of the console's own page).
    pub fn query(&self) -> Vec<(&'static str, String)> {
        let mut query = Vec::new();
        for (name, value) in [
            ("instance", &self.instance),
            ("project", &self.project),
            ("matcher", &self.matcher),
            ("action", &self.action),
            ("state", &self.state),
        ] {
            if let Some(value) = value.as_deref().map(str::trim).filter(|v| !v.is_empty()) {
                query.push((name, value.to_owned()));
            }
        }
        if let Some(before) = self.before {
            query.push(("before", before.to_string()));
        }
        query
    }
}

#[derive(Serialize)]
struct PauseRequest<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'a str>,
    by: &'a str,
}

#[derive(Clone)]
pub struct HerderApi(pub Api);

/// How many decisions a page shows.
pub const PAGE_SIZE: usize = 50;

impl HerderApi {
    pub async fn decisions(&self, filter: &DecisionFilter) -> Result<Vec<Decision>, UpstreamError> {
        let mut query = filter.query();
        query.push(("limit", PAGE_SIZE.to_string()));
        self.0.get("/api/decisions", &query).await
    }

    pub async fn decision(&self, id: i64) -> Result<DecisionDetail, UpstreamError> {
        self.0.get(&format!("/api/decisions/{id}"), &[]).await
    }

    pub async fn pause_state(&self) -> Result<PauseState, UpstreamError> {
        self.0.get("/api/pause", &[]).await
    }

    pub async fn pause(&self, reason: Option<&str>, by: &str) -> Result<PauseState, UpstreamError> {
        self.0
            .post("/api/pause", &PauseRequest { reason, by })
            .await
    }

    pub async fn resume(&self, by: &str) -> Result<PauseState, UpstreamError> {
        self.0
            .post("/api/resume", &PauseRequest { reason: None, by })
            .await
    }
}

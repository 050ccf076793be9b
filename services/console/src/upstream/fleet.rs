//! The HyperFleet API (clusters, nodepools, their adapters' reports) and the sentinel's read
//! API (when it last published for each of them).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::Value;

use super::{Api, UpstreamError};

/// HyperFleet's API prefix.
const API_BASE: &str = "/api/hyperfleet/v1";

/// A condition of a resource's `status.conditions`, or of an adapter's report.
#[derive(Debug, Clone, Deserialize)]
pub struct Condition {
    #[serde(rename = "type")]
    pub kind: String,
    pub status: String,
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub observed_generation: Option<i64>,
    #[serde(default)]
    pub last_transition_time: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Status {
    #[serde(default)]
    pub conditions: Vec<Condition>,
}

/// A cluster or a nodepool.
#[derive(Debug, Clone, Deserialize)]
pub struct Resource {
    pub id: String,
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub labels: BTreeMap<String, Value>,
    #[serde(default)]
    pub generation: i64,
    #[serde(default)]
    pub status: Status,
    #[serde(default)]
    pub updated_time: Option<DateTime<Utc>>,
    #[serde(default)]
    pub deleted_time: Option<DateTime<Utc>>,
}

/// HyperFleet's condition saying every required adapter applied the current generation.
pub const RECONCILED: &str = "Reconciled";

impl Resource {
    pub fn condition(&self, kind: &str) -> Option<&Condition> {
        self.status.conditions.iter().find(|c| c.kind == kind)
    }

    /// `None` when reconciled; otherwise since when it has not been (the `Reconciled`
    /// condition's last transition, or the last update when there is no condition yet).
    pub fn unreconciled_since(&self) -> Option<Option<DateTime<Utc>>> {
        match self.condition(RECONCILED) {
            Some(c) if c.status == "True" => None,
            Some(c) => Some(c.last_transition_time.or(self.updated_time)),
            None => Some(self.updated_time),
        }
    }

    /// The per-adapter conditions HyperFleet derives (`<Adapter>Successful`).
    pub fn adapter_conditions(&self) -> impl Iterator<Item = &Condition> {
        self.status
            .conditions
            .iter()
            .filter(|c| c.kind.ends_with("Successful"))
    }

    pub fn label(&self, key: &str) -> Option<String> {
        self.labels
            .get(key)
            .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct ResourceList {
    #[serde(default)]
    pub items: Vec<Resource>,
    #[serde(default)]
    pub total: i64,
    #[serde(default)]
    pub page: i64,
}

/// An adapter's latest report about a resource.
#[derive(Debug, Clone, Deserialize)]
pub struct AdapterStatus {
    pub adapter: String,
    #[serde(default)]
    pub observed_generation: i64,
    #[serde(default)]
    pub conditions: Vec<Condition>,
    #[serde(default)]
    pub last_report_time: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct StatusList {
    #[serde(default)]
    pub items: Vec<AdapterStatus>,
}

/// How many clusters a page shows.
pub const PAGE_SIZE: usize = 50;

#[derive(Clone)]
pub struct FleetApi(pub Api);

impl FleetApi {
    /// One page of clusters matching HyperFleet's search language (`None`: all).
    pub async fn clusters(
        &self,
        search: Option<&str>,
        page: u32,
    ) -> Result<ResourceList, UpstreamError> {
        let mut query = vec![("page", page.to_string()), ("size", PAGE_SIZE.to_string())];
        if let Some(search) = search {
            query.push(("search", search.to_owned()));
        }
        self.0.get(&format!("{API_BASE}/clusters"), &query).await
    }

    pub async fn cluster(&self, id: &str) -> Result<Resource, UpstreamError> {
        self.0
            .get(&format!("{API_BASE}/clusters/{}", segment(id)), &[])
            .await
    }

    pub async fn nodepools(&self, cluster: &str) -> Result<ResourceList, UpstreamError> {
        self.0
            .get(
                &format!("{API_BASE}/clusters/{}/nodepools", segment(cluster)),
                &[("size", "100".to_owned())],
            )
            .await
    }

    pub async fn statuses(&self, cluster: &str) -> Result<StatusList, UpstreamError> {
        self.0
            .get(
                &format!("{API_BASE}/clusters/{}/statuses", segment(cluster)),
                &[],
            )
            .await
    }
}

fn segment(id: &str) -> String {
    url::form_urlencoded::byte_serialize(id.as_bytes()).collect()
}

/// What the sentinel last did about one resource.
#[derive(Debug, Clone, Deserialize)]
pub struct SentinelResource {
    pub kind: String,
    pub id: String,
    #[serde(default)]
    pub generation: Option<i64>,
    #[serde(default)]
    pub decision: Value,
    #[serde(default)]
    pub publish_error: Option<String>,
    #[serde(default)]
    pub last_published_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub last_evaluated_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct SentinelSnapshot {
    #[serde(default)]
    pub resources: Vec<SentinelResource>,
}

#[derive(Clone)]
pub struct SentinelApi(pub Api);

impl SentinelApi {
    /// What the sentinel knows, by resource id.
    pub async fn resources(
        &self,
        kind: &str,
    ) -> Result<BTreeMap<String, SentinelResource>, UpstreamError> {
        let snapshot: SentinelSnapshot = self
            .0
            .get("/api/resources", &[("kind", kind.to_owned())])
            .await?;
        Ok(snapshot
            .resources
            .into_iter()
            .map(|r| (r.id.clone(), r))
            .collect())
    }
}

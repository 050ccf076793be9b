//! What the run observes while it goes: the event ids at the probe queue on `<ns>.webhooks`
//! (recorded by [`crate::probe`]), the retry calls the fake GitLab received, the messages the fake Webex got, and at the end the reconciler's
//! incidents. Observed once a second by a task of its own, so a fault being injected (which
//! takes seconds) does not blur the times. Retry calls carry the fake GitLab's own arrival
//! time (`received_at_ms`), so webhook → retry latency is exact; chat analyses are timed when
//! seen, accurate to about a second.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use regex::Regex;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::invariants::IncidentObs;
use crate::load::Clock;

/// How often the observer looks.
const OBSERVE_EVERY: Duration = Duration::from_secs(1);

/// Everything observed so far; times are seconds since the run's start.
#[derive(Debug, Clone, Default)]
pub struct Observed {
    /// Event id → first seen at the probe.
    pub probe: HashMap<String, f64>,
    /// Event id → how many times the probe saw it.
    pub probe_count: HashMap<String, u64>,
    /// Job id → successful retry calls at the fake GitLab.
    pub retries: HashMap<u64, u32>,
    /// Job id → when its first successful retry call arrived at the fake GitLab (its own
    /// timestamp; when first seen for a fake that records none).
    pub retry_seen: HashMap<u64, f64>,
    /// Incident id → Markdown of its analysis reports in chat, in order.
    pub analyses: HashMap<String, Vec<String>>,
    /// Incident id → when its first analysis was first seen.
    pub analysis_seen: HashMap<String, f64>,
    /// Incident id → alert group, from the analysis text.
    pub analysis_group: HashMap<String, usize>,
    /// Problems observing (the observer keeps going).
    pub errors: Vec<String>,
}

/// Where to look.
#[derive(Clone)]
pub struct Sources {
    pub fake_gitlab: String,
    pub fake_webex: String,
    /// Retries of jobs below this id are not the run's (a deployment's fake GitLab has seen
    /// earlier runs).
    pub first_job_id: u64,
}

/// The observer's shared state.
#[derive(Clone, Default)]
pub struct Observer {
    state: Arc<Mutex<Observed>>,
}

impl Observer {
    /// An event id seen at the probe (by [`crate::probe`]).
    pub fn record_probe(&self, id: String, at: f64) {
        let mut state = self.lock();
        *state.probe_count.entry(id.clone()).or_default() += 1;
        state.probe.entry(id).or_insert(at);
    }

    /// A problem observing that did not stop the observer.
    pub fn note_error(&self, error: String) {
        self.lock().errors.push(error);
    }

    pub fn snapshot(&self) -> Observed {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Observes until `stop`, once a second.
    pub async fn run(&self, sources: Sources, clock: Clock, stop: CancellationToken) {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap_or_default();
        let retry_path =
            Regex::new(r"^/api/v4/projects/[^/]+/jobs/(\d+)/retry$").expect("a valid pattern");
        let incident = Regex::new(r"incident `([0-9a-f-]{36})`").expect("a valid pattern");
        let group = Regex::new(r"ChaosAlert(\d\d)").expect("a valid pattern");
        loop {
            self.observe_once(&http, &sources, clock, &retry_path, &incident, &group)
                .await;
            tokio::select! {
                () = stop.cancelled() => break,
                () = tokio::time::sleep(OBSERVE_EVERY) => {}
            }
        }
        // One last look, so nothing that arrived before `stop` is missed.
        self.observe_once(&http, &sources, clock, &retry_path, &incident, &group)
            .await;
    }

    async fn observe_once(
        &self,
        http: &reqwest::Client,
        sources: &Sources,
        clock: Clock,
        retry_path: &Regex,
        incident: &Regex,
        group: &Regex,
    ) {
        // The fake GitLab's request log: successful retry calls per job, and when the first
        // arrived (the fake's own timestamp when it records one, else when this look saw it).
        match get_json(http, &format!("{}/fake/requests", sources.fake_gitlab)).await {
            Ok(Value::Array(requests)) => {
                let now = clock.now();
                let mut counts: HashMap<u64, u32> = HashMap::new();
                let mut first: HashMap<u64, f64> = HashMap::new();
                for request in &requests {
                    let status = request["status"].as_u64().unwrap_or(0);
                    if request["method"] != "POST" || !(200..300).contains(&status) {
                        continue;
                    }
                    if let Some(id) = request["path"]
                        .as_str()
                        .and_then(|p| retry_path.captures(p))
                        .and_then(|c| c[1].parse::<u64>().ok())
                        .filter(|id| *id >= sources.first_job_id)
                    {
                        *counts.entry(id).or_default() += 1;
                        let at = request["received_at_ms"]
                            .as_u64()
                            .map_or(now, |ms| clock.from_unix_millis(ms));
                        let t = first.entry(id).or_insert(at);
                        *t = t.min(at);
                    }
                }
                let mut state = self.lock();
                for (id, at) in first {
                    state.retry_seen.entry(id).or_insert(at);
                }
                state.retries = counts;
            }
            Ok(_) => {}
            Err(error) => self.lock().errors.push(format!("fake GitLab: {error}")),
        }
        // The fake Webex: analyses per incident.
        match get_json(http, &format!("{}/fake/messages", sources.fake_webex)).await {
            Ok(messages) => {
                let now = clock.now();
                let mut analyses: HashMap<String, Vec<String>> = HashMap::new();
                let mut groups: HashMap<String, usize> = HashMap::new();
                for message in messages["items"].as_array().into_iter().flatten() {
                    let text = message["markdown"]
                        .as_str()
                        .or_else(|| message["text"].as_str())
                        .unwrap_or_default();
                    // Analyses only: outcomes and closings have no "Group `...` · incident".
                    if !text.starts_with("**Incident: ") || !text.contains("· incident `") {
                        continue;
                    }
                    let Some(id) = incident.captures(text).map(|c| c[1].to_owned()) else {
                        continue;
                    };
                    if let Some(g) = group.captures(text).and_then(|c| c[1].parse().ok()) {
                        groups.insert(id.clone(), g);
                    }
                    analyses.entry(id).or_default().push(text.to_owned());
                }
                let mut state = self.lock();
                for id in analyses.keys() {
                    state.analysis_seen.entry(id.clone()).or_insert(now);
                }
                state.analyses = analyses;
                state.analysis_group = groups;
            }
            Err(error) => self.lock().errors.push(format!("fake Webex: {error}")),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Observed> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

async fn get_json(http: &reqwest::Client, url: &str) -> Result<Value, String> {
    let response = http.get(url).send().await.map_err(|e| e.to_string())?;
    response.json().await.map_err(|e| e.to_string())
}

/// The reconciler's incidents of this run (`GET /api/incidents`, those whose group key carries
/// `chaos_run="<run_tag>"`: a deployment holds other runs' and its own), from the first
/// replica that answers.
pub async fn incidents(
    reconcilers: &[String],
    token: &str,
    run_tag: &str,
) -> Result<Vec<IncidentObs>, String> {
    let ours = format!("chaos_run=\"{run_tag}\"");
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap_or_default();
    let group = Regex::new(r"ChaosAlert(\d\d)").expect("a valid pattern");
    let mut last_error = String::from("no reconciler");
    for base in reconcilers {
        let response = match http
            .get(format!("{base}/api/incidents?limit=500"))
            .bearer_auth(token)
            .send()
            .await
        {
            Ok(r) if r.status().is_success() => r,
            Ok(r) => {
                last_error = format!("{base} answered {}", r.status());
                continue;
            }
            Err(e) => {
                last_error = format!("{base}: {e}");
                continue;
            }
        };
        let body: Value = response.json().await.map_err(|e| e.to_string())?;
        let mut seen = HashSet::new();
        let mut incidents: Vec<IncidentObs> = body["incidents"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|i| i["group_key"].as_str().is_some_and(|k| k.contains(&ours)))
            .filter_map(|i| {
                let id = i["id"].as_str()?.to_owned();
                seen.insert(id.clone()).then(|| IncidentObs {
                    group: i["group_key"]
                        .as_str()
                        .and_then(|k| group.captures(k))
                        .and_then(|c| c[1].parse().ok()),
                    state: i["state"].as_str().unwrap_or_default().to_owned(),
                    resolved_before_analysis: false,
                    id,
                })
            })
            .collect();
        for incident in incidents.iter_mut().filter(|i| i.state == "resolved") {
            incident.resolved_before_analysis =
                resolved_before_analysis(&http, base, token, &incident.id).await?;
        }
        return Ok(incidents);
    }
    Err(last_error)
}

/// Whether the incident's audit shows it resolved while it was still being investigated.
async fn resolved_before_analysis(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    id: &str,
) -> Result<bool, String> {
    let url = format!("{base}/api/incidents/{id}");
    let response = http
        .get(&url)
        .bearer_auth(token)
        .send()
        .await
        .map_err(|e| format!("{url}: {e}"))?;
    if !response.status().is_success() {
        return Err(format!("{url} answered {}", response.status()));
    }
    let body: Value = response.json().await.map_err(|e| format!("{url}: {e}"))?;
    Ok(body["audit"].as_array().into_iter().flatten().any(|entry| {
        entry["action"] == "incident resolved"
            && matches!(
                entry["detail"]["from"].as_str(),
                Some("received" | "investigating")
            )
    }))
}

/// Why a consumer's own record could not be read.
#[derive(Debug, thiserror::Error)]
#[error("{what} at {url}: {source}")]
pub struct EvidenceError {
    what: &'static str,
    url: String,
    source: sqlx::Error,
}

async fn column<T>(
    url: &str,
    what: &'static str,
    query: &'static str,
) -> Result<Vec<T>, EvidenceError>
where
    T: Send + Unpin + for<'r> sqlx::Decode<'r, sqlx::Postgres> + sqlx::Type<sqlx::Postgres>,
{
    use sqlx::Connection;
    let error = |source| EvidenceError {
        what,
        url: crate::infra::redact(url),
        source,
    };
    let mut conn = sqlx::PgConnection::connect(url).await.map_err(error)?;
    let rows: Vec<(T,)> = sqlx::query_as(query)
        .fetch_all(&mut conn)
        .await
        .map_err(error)?;
    Ok(rows.into_iter().map(|(v,)| v).collect())
}

/// The job ids the pipeline-herder decided about (its ledger, `decisions`): evidence that a
/// failed job's hook reached the herder (it records every failed job, retried or not).
pub async fn herder_jobs(database_url: &str) -> Result<HashSet<u64>, EvidenceError> {
    let ids: Vec<i64> = column(
        database_url,
        "the herder's ledger",
        "SELECT job_id FROM decisions",
    )
    .await?;
    Ok(ids
        .into_iter()
        .filter_map(|i| u64::try_from(i).ok())
        .collect())
}

/// The event ids the alert-reconciler processed (`processed_events`): evidence that an alert
/// event reached it.
pub async fn reconciler_events(database_url: &str) -> Result<HashSet<String>, EvidenceError> {
    Ok(column(
        database_url,
        "the reconciler's processed events",
        "SELECT event_id FROM processed_events",
    )
    .await?
    .into_iter()
    .collect())
}

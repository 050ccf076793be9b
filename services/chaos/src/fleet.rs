//! The fleet flow's load and its observation: clusters created in fleet-api (the HyperFleet API
//! stand-in), spec updates on random clusters every [`CHANGE_EVERY`], some deletions; the
//! sentinel and the adapter reconcile them through fake-kube, and fleet-api aggregates the
//! adapter's reports into the `Reconciled` condition.
//!
//! Every request is recorded (a [`Change`] per cluster, with the generation fleet-api
//! answered), and a watcher lists the clusters once a second to time each change until its
//! generation (or a later one) shows `Reconciled=True` — HyperFleet's own condition, computed by
//! fleet-api from the adapter's `Available` report at the cluster's current generation.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use serde_json::{Value, json};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::load::{Clock, Delivery, Flow, Recorder};

/// One change (a spec update or a deletion) on a random cluster this often, once every cluster
/// has been created: "spec updates every few seconds" (issue 14).
pub const CHANGE_EVERY: Duration = Duration::from_secs(2);
/// Share of changes that delete the cluster rather than update its spec.
const DELETE_SHARE: f64 = 0.1;
/// Creations in flight at once: 200 clusters arrive in seconds, not in one burst.
const CREATE_CONCURRENCY: usize = 8;
/// How often the watcher lists the clusters.
const WATCH_EVERY: Duration = Duration::from_secs(1);
/// fleet-api's largest page.
const PAGE_SIZE: usize = 100;
/// HyperFleet's aggregated condition.
pub const RECONCILED: &str = "Reconciled";

const API: &str = "/api/hyperfleet/v1/clusters";

/// Why fleet-api could not be read.
#[derive(Debug, thiserror::Error)]
pub enum FleetError {
    #[error("fleet-api {url}: {source}")]
    Http { url: String, source: reqwest::Error },
    #[error("fleet-api {url} answered {status}")]
    Status { url: String, status: u16 },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ChangeKind {
    Create,
    Update,
    Delete,
}

/// One request about a cluster.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Change {
    pub kind: ChangeKind,
    /// Seconds since the run's start, when sent.
    pub at: f64,
    /// The HTTP status; `None` without an answer.
    pub status: Option<u16>,
    /// The generation fleet-api answered with (2xx only).
    pub generation: Option<i64>,
}

impl Change {
    pub fn answered_2xx(&self) -> bool {
        self.status.is_some_and(|s| (200..300).contains(&s))
    }
}

/// A cluster the run created, and everything it did to it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClusterPlan {
    pub name: String,
    /// From the creation's answer; `None` if it gave none.
    pub id: Option<String>,
    pub changes: Vec<Change>,
}

impl ClusterPlan {
    /// A deletion was accepted (2xx): the cluster must be gone in the end.
    pub fn deleted(&self) -> bool {
        self.changes
            .iter()
            .any(|c| c.kind == ChangeKind::Delete && c.answered_2xx())
    }

    /// A deletion was sent, whatever the answer.
    pub fn delete_sent(&self) -> bool {
        self.changes.iter().any(|c| c.kind == ChangeKind::Delete)
    }

    /// The highest generation fleet-api acknowledged.
    pub fn acknowledged_generation(&self) -> Option<i64> {
        self.changes.iter().filter_map(|c| c.generation).max()
    }
}

/// A cluster as fleet-api lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClusterObs {
    pub id: String,
    pub name: String,
    pub generation: i64,
    /// Soft-deleted, the deletion not reconciled yet.
    pub deleting: bool,
    /// The `Reconciled` condition: status and observed generation.
    pub reconciled: Option<(String, i64)>,
}

impl ClusterObs {
    /// `Reconciled=True` at the cluster's current generation.
    pub fn reconciled_now(&self) -> bool {
        matches!(&self.reconciled, Some((status, g)) if status == "True" && *g == self.generation)
    }

    fn of(item: &Value) -> Option<Self> {
        let reconciled = item["status"]["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|c| c["type"] == RECONCILED)
            .map(|c| {
                (
                    c["status"].as_str().unwrap_or_default().to_owned(),
                    c["observed_generation"].as_i64().unwrap_or(-1),
                )
            });
        Some(Self {
            id: item["id"].as_str()?.to_owned(),
            name: item["name"].as_str()?.to_owned(),
            generation: item["generation"].as_i64()?,
            deleting: item.get("deleted_time").is_some_and(|t| !t.is_null()),
            reconciled,
        })
    }
}

#[derive(Default)]
struct State {
    plans: BTreeMap<String, ClusterPlan>,
    /// (cluster id, generation) → when first seen `Reconciled=True` at that generation.
    reconciled_seen: HashMap<(String, i64), f64>,
    errors: Vec<String>,
}

/// What the fleet load did and the watcher saw; clones share it.
#[derive(Clone, Default)]
pub struct FleetLog {
    state: Arc<Mutex<State>>,
}

impl FleetLog {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn plans(&self) -> Vec<ClusterPlan> {
        self.lock().plans.values().cloned().collect()
    }

    pub fn errors(&self) -> Vec<String> {
        self.lock().errors.clone()
    }

    fn record(&self, name: &str, id: Option<String>, change: Change) {
        let mut state = self.lock();
        let plan = state
            .plans
            .entry(name.to_owned())
            .or_insert_with(|| ClusterPlan {
                name: name.to_owned(),
                id: None,
                changes: Vec::new(),
            });
        if plan.id.is_none() {
            plan.id = id;
        }
        plan.changes.push(change);
    }

    /// Seconds from each accepted creation or spec update until the watcher first saw its
    /// generation, or a later one, `Reconciled=True`; changes never seen reconciled are left
    /// out (invariant (d) names them).
    pub fn latencies(&self) -> Vec<f64> {
        let state = self.lock();
        let mut seen: HashMap<&str, Vec<(i64, f64)>> = HashMap::new();
        for ((id, generation), at) in &state.reconciled_seen {
            seen.entry(id.as_str())
                .or_default()
                .push((*generation, *at));
        }
        let mut out = Vec::new();
        for plan in state.plans.values() {
            let Some(id) = &plan.id else { continue };
            let Some(seen) = seen.get(id.as_str()) else {
                continue;
            };
            for change in plan.changes.iter().filter(|c| c.kind != ChangeKind::Delete) {
                let Some(generation) = change.generation else {
                    continue;
                };
                if let Some(at) = seen
                    .iter()
                    .filter(|(g, _)| *g >= generation)
                    .map(|(_, at)| *at)
                    .min_by(f64::total_cmp)
                {
                    out.push((at - change.at).max(0.0));
                }
            }
        }
        out
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(15))
        .build()
        .unwrap_or_default()
}

/// Sends one request; the status and the answer's `generation`.
async fn send(request: reqwest::RequestBuilder) -> (Option<u16>, Option<i64>, Option<String>) {
    match request.send().await {
        Ok(response) => {
            let status = response.status().as_u16();
            let body: Value = response.json().await.unwrap_or(Value::Null);
            let ok = (200..300).contains(&status);
            (
                Some(status),
                body["generation"].as_i64().filter(|_| ok),
                body["id"].as_str().filter(|_| ok).map(str::to_owned),
            )
        }
        Err(_) => (None, None, None),
    }
}

fn delivery(id: String, at: f64, status: Option<u16>) -> Delivery {
    Delivery {
        flow: Flow::Fleet,
        id,
        sent_at: at,
        status,
        target: 0,
        event_ids: Vec::new(),
        resend: false,
    }
}

/// The fleet load until `stop`: `clusters` clusters created (names `<run_tag>-c0000`, ...,
/// labelled `chaos_run: <run_tag>`, so a deployment's other clusters are told apart), then
/// every [`CHANGE_EVERY`] a spec update of a random live cluster or, one time in ten, its
/// deletion.
#[allow(clippy::too_many_arguments)]
pub async fn load(
    fleet_api: String,
    run_tag: String,
    clusters: usize,
    seed: u64,
    clock: Clock,
    recorder: Recorder,
    log: FleetLog,
    stop: CancellationToken,
) {
    if clusters == 0 {
        return;
    }
    let http = client();
    let url = format!("{}{API}", fleet_api.trim_end_matches('/'));
    let limit = Arc::new(Semaphore::new(CREATE_CONCURRENCY));
    let mut tasks = tokio::task::JoinSet::new();
    for n in 0..clusters {
        let permit = tokio::select! {
            () = stop.cancelled() => break,
            permit = limit.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
        };
        let (http, url, recorder, log) = (http.clone(), url.clone(), recorder.clone(), log.clone());
        let name = cluster_name(&run_tag, n);
        let run_tag = run_tag.clone();
        tasks.spawn(async move {
            let _permit = permit;
            let body = json!({
                "kind": "Cluster",
                "name": name,
                "labels": {"chaos_run": run_tag},
                "spec": {"revision": 0, "region": "chaos-1", "nodes": 3},
            });
            let at = clock.now();
            let (status, generation, id) = send(http.post(&url).json(&body)).await;
            recorder.push(delivery(format!("create {name}"), at, status));
            log.record(
                &name,
                id,
                Change {
                    kind: ChangeKind::Create,
                    at,
                    status,
                    generation,
                },
            );
        });
    }
    while tasks.join_next().await.is_some() {}

    let mut rng = StdRng::seed_from_u64(seed ^ 0x0066_6c65_6574);
    let mut tick = tokio::time::interval(CHANGE_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut revision = 0u64;
    loop {
        tokio::select! {
            () = stop.cancelled() => break,
            _ = tick.tick() => {}
        }
        let live: Vec<(String, String)> = log
            .plans()
            .into_iter()
            .filter(|p| !p.delete_sent())
            .filter_map(|p| Some((p.name, p.id?)))
            .collect();
        if live.is_empty() {
            continue;
        }
        let (name, id) = live[rng.random_range(0..live.len())].clone();
        let at = clock.now();
        let one = format!("{url}/{id}");
        let (kind, (status, generation, _)) = if rng.random_bool(DELETE_SHARE) {
            (ChangeKind::Delete, send(http.delete(&one)).await)
        } else {
            revision += 1;
            let spec = json!({"spec": {"revision": revision, "region": "chaos-1",
                "nodes": rng.random_range(1..10)}});
            (ChangeKind::Update, send(http.patch(&one).json(&spec)).await)
        };
        let what = match kind {
            ChangeKind::Delete => "delete",
            _ => "update",
        };
        recorder.push(delivery(format!("{what} {name} ({id})"), at, status));
        log.record(
            &name,
            None,
            Change {
                kind,
                at,
                status,
                generation,
            },
        );
    }
}

/// The name of the run's cluster `n`.
pub fn cluster_name(run_tag: &str, n: usize) -> String {
    format!("{run_tag}-c{n:04}")
}

/// Whether a listed cluster is one of the run's (by its name).
pub fn is_of_run(cluster: &ClusterObs, run_tag: &str) -> bool {
    cluster
        .name
        .strip_prefix(run_tag)
        .is_some_and(|rest| rest.starts_with("-c"))
}

/// Every cluster fleet-api lists, page by page.
pub async fn list(http: &reqwest::Client, fleet_api: &str) -> Result<Vec<ClusterObs>, FleetError> {
    let mut out = Vec::new();
    let mut page = 1;
    loop {
        let url = format!(
            "{}{API}?page={page}&size={PAGE_SIZE}",
            fleet_api.trim_end_matches('/')
        );
        let response = http
            .get(&url)
            .send()
            .await
            .map_err(|source| FleetError::Http {
                url: url.clone(),
                source,
            })?;
        let status = response.status().as_u16();
        if status != 200 {
            return Err(FleetError::Status { url, status });
        }
        let body: Value = response
            .json()
            .await
            .map_err(|source| FleetError::Http { url, source })?;
        let items = body["items"].as_array().cloned().unwrap_or_default();
        out.extend(items.iter().filter_map(ClusterObs::of));
        let total = body["total"].as_u64().unwrap_or(0) as usize;
        if items.len() < PAGE_SIZE || out.len() >= total {
            return Ok(out);
        }
        page += 1;
    }
}

/// Lists the clusters every [`WATCH_EVERY`] until `stop`, noting when each generation was
/// first seen reconciled.
pub async fn watch(fleet_api: String, clock: Clock, log: FleetLog, stop: CancellationToken) {
    let http = client();
    loop {
        match list(&http, &fleet_api).await {
            Ok(clusters) => {
                let now = clock.now();
                let mut state = log.lock();
                for c in clusters.into_iter().filter(ClusterObs::reconciled_now) {
                    state
                        .reconciled_seen
                        .entry((c.id, c.generation))
                        .or_insert(now);
                }
            }
            Err(error) => {
                let mut state = log.lock();
                if state.errors.len() < 100 {
                    state.errors.push(error.to_string());
                }
            }
        }
        tokio::select! {
            () = stop.cancelled() => break,
            () = tokio::time::sleep(WATCH_EVERY) => {}
        }
    }
}

/// A client for [`list`] at evaluation time.
pub fn http() -> reqwest::Client {
    client()
}

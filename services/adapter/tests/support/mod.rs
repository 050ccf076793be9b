//! Shared by the adapter's test suites: config files written for a test, the adapter started
//! in-process against the real broker and the fake Kubernetes API, a recording HyperFleet API.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use adapter::config::{self, Config, Overrides, ServiceSettings, Sources};
use axum::Json;
use axum::extract::{Path as UrlPath, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use fake_kube::FakeKube;
use serde_json::{Value, json};
use steadfast_events::Envelope;
use steadfast_messaging::Publisher;
use steadfast_test_support::{TestBroker, amqp_url, shared_dir, unique_name};
use tokio_util::sync::CancellationToken;

/// HyperFleet's Kubernetes example, as shipped.
pub fn example_dir() -> PathBuf {
    shared_dir().join("peer-cases/hyperfleet-adapter/examples/kubernetes")
}

pub fn dryrun_dir() -> PathBuf {
    shared_dir().join("peer-cases/hyperfleet-adapter/dryrun")
}

/// The example's Job manifest is referenced as `/etc/adapter/job.yaml` (the chart's mount).
pub fn example_remaps() -> Vec<(PathBuf, PathBuf)> {
    vec![(
        "/etc/adapter/job.yaml".into(),
        example_dir().join("adapter-task-resource-job.yaml"),
    )]
}

/// A directory removed when dropped.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new() -> Self {
        let path = std::env::temp_dir().join(unique_name("adapter-test"));
        std::fs::create_dir_all(&path).expect("temp dir");
        Self(path)
    }

    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, text).expect("write test file");
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A deployment config a live adapter loads (`serve --check-config`), pointing nowhere real.
pub const LIVE_ADAPTER: &str = r#"adapter:
  name: test-adapter
  version: "0.2.0"
clients:
  hyperfleet_api:
    base_url: http://127.0.0.1:1
  broker:
    subscription_id: sub
    topic: clusters
"#;

/// What one adapter under test talks to: its own broker namespace, a recording HyperFleet API,
/// the fake Kubernetes API, and a directory holding its adapter config.
pub struct World {
    pub broker: TestBroker,
    pub fleet: FakeFleet,
    pub kube: FakeKube,
    pub kubeconfig: fake_kube::KubeconfigFile,
    pub dir: TempDir,
    /// The topic (exchange) the adapter's queue is bound to.
    pub topic: String,
    /// `adapter.yaml` in `dir`: [`adapter_yaml`] for this world.
    pub adapter_config: PathBuf,
}

impl World {
    /// Starts the fakes and writes the adapter config (`name`, retry delay `retry`).
    pub async fn start(name: &str, retry: &str) -> Self {
        steadfast_test_support::init_test_logging();
        let broker = TestBroker::new().await;
        let (fleet, api) = FakeFleet::start().await;
        let (kube, kubeconfig) = fake_kube().await;
        let dir = TempDir::new();
        let topic = broker.name("clusters");
        let adapter_config = dir.write(
            "adapter.yaml",
            &adapter_yaml(name, &topic, &api, kubeconfig.path(), retry),
        );
        Self {
            broker,
            fleet,
            kube,
            kubeconfig,
            dir,
            topic,
            adapter_config,
        }
    }

    /// Publishes a sentinel-style event for cluster `id` to `adapter`'s queue.
    pub async fn send(&self, adapter: &Running, id: &str, generation: i64) {
        publish_event(&self.broker, &self.topic, &adapter.queue, id, generation).await;
    }
}

/// An adapter config in HyperFleet's form, plus our retry settings.
pub fn adapter_yaml(name: &str, topic: &str, api: &str, kubeconfig: &Path, retry: &str) -> String {
    format!(
        r#"adapter:
  name: {name}
  version: "0.2.0"
clients:
  hyperfleet_api:
    base_url: {api}
    timeout: 2s
    retry_attempts: 2
    retry_backoff: constant
    base_delay: 100ms
    max_delay: 200ms
  broker:
    subscription_id: {name}
    topic: {topic}
    prefetch_count: 8
    parallelism: 4
    retry_delays: [{retry}]
    max_attempts: 3
  kubernetes:
    api_version: v1
    kube_config_path: {kubeconfig}
"#,
        kubeconfig = kubeconfig.display()
    )
}

/// Loads the two files as the binary would.
pub fn load_config(adapter: &Path, task: &Path, remaps: Vec<(PathBuf, PathBuf)>) -> Config {
    let sources = Sources {
        adapter_config: Some(adapter.to_owned()),
        task_config: Some(task.to_owned()),
        overrides: Overrides::default(),
        remaps,
        ..Sources::default()
    };
    let clock = steadfast_rules::system_clock();
    let loaded =
        config::load(&sources, clock.clone(), false).unwrap_or_else(|e| panic!("config: {e}"));
    Config {
        loaded,
        service: ServiceSettings {
            http_listen: "127.0.0.1:0".parse().unwrap(),
            metrics_listen: "127.0.0.1:0".parse().unwrap(),
            amqp_url: amqp_url(),
            shutdown_timeout: Duration::from_secs(5),
        },
        environment: Arc::new(BTreeMap::new()),
        clock,
    }
}

/// A running adapter.
pub struct Running {
    pub http: String,
    pub metrics: String,
    pub queue: String,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl Running {
    pub async fn start(config: Config) -> Self {
        let queue = config.loaded.adapter.queue_name().unwrap();
        let app = adapter::App::build(config).await.expect("adapter starts");
        let http = format!("http://{}", app.http_addr());
        let metrics = format!("http://{}", app.metrics_addr());
        let stop = CancellationToken::new();
        let token = stop.clone();
        let task = tokio::spawn(async move {
            app.run(token).await.expect("adapter runs");
        });
        let running = Self {
            http,
            metrics,
            queue,
            stop,
            task,
        };
        running.wait_ready().await;
        running
    }

    pub async fn wait_ready(&self) {
        let url = format!("{}/readyz", self.http);
        steadfast_test_support::eventually_async(
            "the adapter to be ready",
            Duration::from_secs(20),
            || async {
                let response = reqwest::get(&url).await.ok()?;
                (response.status() == StatusCode::OK).then_some(())
            },
        )
        .await;
    }

    pub async fn metrics_text(&self) -> String {
        reqwest::get(format!("{}/metrics", self.metrics))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    pub async fn stop(self) {
        self.stop.cancel();
        let _ = tokio::time::timeout(Duration::from_secs(15), self.task).await;
    }
}

/// Publishes a sentinel-style event for a cluster, once the adapter's queue is bound.
pub async fn publish_event(
    broker: &TestBroker,
    topic: &str,
    queue: &str,
    id: &str,
    generation: i64,
) {
    publish_envelope(broker, topic, queue, &cluster_event(id, generation)).await;
}

/// A sentinel-style reconcile event for cluster `id` (a fresh UUIDv7 id, no `time`).
pub fn cluster_event(id: &str, generation: i64) -> Envelope<Value> {
    Envelope::new(
        "hyperfleet-sentinel",
        "com.redhat.hyperfleet.cluster.reconcile",
        json!({"id": id, "kind": "Cluster", "href": format!("/api/hyperfleet/v1/clusters/{id}"), "generation": generation}),
    )
}

/// Publishes `event` to `topic`, once the adapter's queue `queue` is bound.
pub async fn publish_envelope(
    broker: &TestBroker,
    topic: &str,
    queue: &str,
    event: &Envelope<Value>,
) {
    steadfast_test_support::eventually_async(
        "the adapter's queue to exist",
        Duration::from_secs(20),
        || async {
            steadfast_messaging::admin::queue_state(&broker.broker, queue)
                .await
                .ok()
                .flatten()
        },
    )
    .await;
    // The queue is declared before it is bound: until the binding exists the publish is
    // returned as unroutable.
    let publisher = Publisher::new(broker.broker.clone());
    steadfast_test_support::eventually_async(
        "the event to be routed to the adapter",
        Duration::from_secs(20),
        || async { publisher.publish(topic, "", event, None).await.ok() },
    )
    .await;
}

/// A HyperFleet API that serves clusters and records status reports.
#[derive(Clone, Default)]
pub struct FakeFleet {
    state: Arc<Mutex<FleetState>>,
}

#[derive(Default)]
struct FleetState {
    clusters: BTreeMap<String, Value>,
    reports: Vec<(String, Value)>,
    /// Status codes to answer the next status PUTs with.
    put_failures: Vec<u16>,
}

impl FakeFleet {
    pub async fn start() -> (Self, String) {
        let fleet = Self::default();
        let router = axum::Router::new()
            .route("/api/hyperfleet/v1/clusters/{id}", get(get_cluster))
            .route(
                "/api/hyperfleet/v1/clusters/{id}/statuses",
                axum::routing::put(put_status),
            )
            .with_state(fleet.clone());
        let url = steadfast_test_support::spawn_http(router).await;
        (fleet, url)
    }

    pub fn set_cluster(&self, id: &str, generation: i64, deleted: bool) {
        let mut cluster = json!({"kind": "Cluster", "id": id, "name": format!("name-{id}"), "generation": generation, "href": format!("/api/hyperfleet/v1/clusters/{id}"), "spec": {}, "status": {"conditions": []}});
        if deleted {
            cluster["deleted_time"] = "2026-01-01T00:00:00Z".into();
        }
        self.state
            .lock()
            .unwrap()
            .clusters
            .insert(id.to_owned(), cluster);
    }

    pub fn fail_puts(&self, codes: &[u16]) {
        self.state.lock().unwrap().put_failures = codes.to_vec();
    }

    /// Status reports received for a cluster, oldest first.
    pub fn reports(&self, id: &str) -> Vec<Value> {
        self.state
            .lock()
            .unwrap()
            .reports
            .iter()
            .filter(|(c, _)| c == id)
            .map(|(_, r)| r.clone())
            .collect()
    }
}

async fn get_cluster(State(fleet): State<FakeFleet>, UrlPath(id): UrlPath<String>) -> Response {
    match fleet.state.lock().unwrap().clusters.get(&id) {
        Some(cluster) => Json(cluster.clone()).into_response(),
        None => (
            StatusCode::NOT_FOUND,
            Json(json!({"code": "HYPERFLEET-NTF-001", "status": 404, "title": "Not Found"})),
        )
            .into_response(),
    }
}

async fn put_status(
    State(fleet): State<FakeFleet>,
    UrlPath(id): UrlPath<String>,
    Json(body): Json<Value>,
) -> Response {
    let mut state = fleet.state.lock().unwrap();
    if !state.put_failures.is_empty() {
        let code = state.put_failures.remove(0);
        return (
            StatusCode::from_u16(code).unwrap(),
            Json(json!({"status": code})),
        )
            .into_response();
    }
    state.reports.push((id, body.clone()));
    (StatusCode::CREATED, Json(body)).into_response()
}

/// The condition of `kind` in a status report.
pub fn condition<'a>(report: &'a Value, kind: &str) -> &'a Value {
    report["conditions"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["type"] == kind))
        .unwrap_or_else(|| panic!("no {kind} condition in {report}"))
}

/// A fake Kubernetes API with its kubeconfig.
pub async fn fake_kube() -> (FakeKube, fake_kube::KubeconfigFile) {
    let fake = FakeKube::start().await;
    let file = fake.kubeconfig_file();
    (fake, file)
}

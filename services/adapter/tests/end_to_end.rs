//! The whole fleet loop on the real broker and PostgreSQL: fleet-api (the HyperFleet API
//! stand-in) → sentinel polls and publishes → adapter runs HyperFleet's Kubernetes example
//! against the fake Kubernetes API and reports → fleet-api aggregates `Reconciled` → the
//! sentinel stops publishing. Then a spec change and a deletion.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use chrono::Utc;
use serde_json::{Value, json};
use steadfast_test_support::{TestBroker, TestDatabase, eventually_async, init_test_logging};
use support::*;
use tokio_util::sync::CancellationToken;

const WAIT: Duration = Duration::from_secs(40);

/// The sentinel's clock: real time plus an offset the test moves (its debounce is 10 s).
#[derive(Clone, Default)]
struct TestClock(Arc<AtomicI64>);

impl TestClock {
    fn advance(&self, seconds: i64) {
        self.0.fetch_add(seconds, Ordering::SeqCst);
    }

    fn clock(&self) -> steadfast_rules::Clock {
        let offset = Arc::clone(&self.0);
        Arc::new(move || Utc::now() + chrono::Duration::seconds(offset.load(Ordering::SeqCst)))
    }
}

struct Sentinel {
    metrics: String,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<Result<(), sentinel::AppError>>,
}

impl Sentinel {
    async fn start(api: &str, topic: &str, clock: &TestClock) -> Self {
        let yaml = format!(
            "sentinel:\n  name: e2e-sentinel\nresource_type: clusters\npoll_interval: 200ms\nclients:\n  hyperfleet_api:\n    base_url: {api}\n  broker:\n    topic: {topic}\nmessage_data:\n  id: resource.id\n  kind: resource.kind\n  href: resource.href\n  generation: resource.generation\n"
        );
        let mut config = sentinel::Config::from_yaml(&yaml).expect("sentinel config");
        config.http_listen = "127.0.0.1:0".parse().unwrap();
        config.metrics_listen = "127.0.0.1:0".parse().unwrap();
        config.broker.url = steadfast_test_support::amqp_url();
        config.clock = clock.clock();
        let app = sentinel::App::build(config).await.expect("sentinel builds");
        let metrics = format!("http://{}/metrics", app.metrics_addr());
        let stop = CancellationToken::new();
        let task = tokio::spawn(app.run(stop.clone()));
        Self {
            metrics,
            stop,
            task,
        }
    }

    async fn metric(&self, prefix: &str) -> f64 {
        let text = reqwest::get(&self.metrics)
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        text.lines()
            .filter(|l| l.starts_with(prefix))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }

    async fn published(&self) -> f64 {
        self.metric("hyperfleet_sentinel_events_published_total")
            .await
    }

    async fn wait_polls(&self, n: f64) {
        let name = "hyperfleet_sentinel_poll_duration_seconds_count";
        let start = self.metric(name).await;
        eventually_async("sentinel polls", WAIT, || async {
            (self.metric(name).await >= start + n).then_some(())
        })
        .await;
    }

    async fn stop(self) {
        self.stop.cancel();
        let _ = self.task.await;
    }
}

struct Fleet {
    base: String,
    client: reqwest::Client,
}

impl Fleet {
    fn url(&self, path: &str) -> String {
        format!("{}/api/hyperfleet/v1{path}", self.base)
    }

    async fn send(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut request = self.client.request(method, self.url(path));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    async fn cluster(&self, id: &str) -> (u16, Value) {
        self.send(reqwest::Method::GET, &format!("/clusters/{id}"), None)
            .await
    }

    /// Waits until the cluster's `Reconciled` condition has `status` at `generation`.
    async fn reconciled(&self, id: &str, status: &str, generation: i64) -> Value {
        eventually_async(
            &format!("Reconciled={status} at generation {generation}"),
            WAIT,
            || async {
                let (_, cluster) = self.cluster(id).await;
                let conditions = cluster.pointer("/status/conditions")?.as_array()?.clone();
                let reconciled = conditions.iter().find(|c| c["type"] == "Reconciled")?;
                (reconciled["status"] == status
                    && reconciled["observed_generation"] == generation
                    && cluster["generation"] == generation)
                    .then_some(cluster)
            },
        )
        .await
    }
}

#[tokio::test]
async fn sentinel_adapter_and_fleet_api_reconcile_update_and_delete_a_cluster() {
    steadfast_test_support::skip_without_peer_cases!();
    init_test_logging();
    let broker = TestBroker::new().await;
    let db = TestDatabase::new().await;
    let api = fleet_api::App::build(
        fleet_api::Config::local(&db.url).with_required_adapters(&["kubernetes-example"], &[]),
    )
    .await
    .expect("fleet-api builds")
    .spawn();
    let fleet = Fleet {
        base: api.base_url().to_owned(),
        client: reqwest::Client::new(),
    };
    let (kube, kubeconfig) = fake_kube().await;
    let dir = TempDir::new();
    let topic = broker.name("clusters");
    let adapter_config = dir.write(
        "adapter.yaml",
        &adapter_yaml(
            "kubernetes-example",
            &topic,
            api.base_url(),
            kubeconfig.path(),
            "1s",
        ),
    );
    let adapter = Running::start(load_config(
        &adapter_config,
        &example_dir().join("adapter-task-config.yaml"),
        example_remaps(),
    ))
    .await;
    let clock = TestClock::default();
    let sentinel = Sentinel::start(api.base_url(), &topic, &clock).await;

    // A new cluster: the sentinel publishes, the adapter creates the namespace and the Job
    // and reports Available=False while the Job runs.
    let (status, cluster) = fleet
        .send(
            reqwest::Method::POST,
            "/clusters",
            Some(json!({"kind": "Cluster", "name": "e2e-one", "spec": {"region": "eu"}})),
        )
        .await;
    assert_eq!(status, 201, "{cluster}");
    let id = cluster["id"].as_str().unwrap().to_owned();
    let namespace = format!("{id}-k8s");
    let job = || kube.get("batch/v1", "Job", Some(&namespace), "hello-world-job");
    eventually_async("the Job to be created", WAIT, || async { job() }).await;
    assert!(kube.get("v1", "Namespace", None, &namespace).is_some());
    fleet.reconciled(&id, "False", 1).await;

    // The Job completes; after the sentinel's debounce the adapter reports Available=True.
    kube.complete_job(&namespace, "hello-world-job");
    clock.advance(15);
    let reconciled = fleet.reconciled(&id, "True", 1).await;
    let per_adapter = reconciled["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "KubernetesExampleSuccessful")
        .cloned();
    assert_eq!(
        per_adapter.map(|c| c["status"].clone()),
        Some(json!("True")),
        "{reconciled}"
    );

    // Reconciled: the sentinel stops publishing for it.
    sentinel.wait_polls(2.0).await;
    let published = sentinel.published().await;
    sentinel.wait_polls(5.0).await;
    assert_eq!(
        sentinel.published().await,
        published,
        "the sentinel kept publishing a reconciled cluster"
    );

    // A spec change bumps the generation: the objects are updated.
    let (status, patched) = fleet
        .send(
            reqwest::Method::PATCH,
            &format!("/clusters/{id}"),
            Some(json!({"spec": {"region": "us"}})),
        )
        .await;
    assert_eq!(status, 200, "{patched}");
    assert_eq!(patched["generation"], 2);
    fleet.reconciled(&id, "True", 2).await;
    assert_eq!(
        job().unwrap()["metadata"]["annotations"]["hyperfleet.io/generation"],
        "2"
    );
    assert_eq!(
        kube.get("v1", "Namespace", None, &namespace).unwrap()["metadata"]["annotations"]["hyperfleet.io/generation"],
        "2"
    );

    // A deletion removes them and reports Finalized=True at the deletion's generation.
    let (status, _) = fleet
        .send(reqwest::Method::DELETE, &format!("/clusters/{id}"), None)
        .await;
    assert_eq!(status, 202);
    let report = eventually_async("a Finalized=True report for the deletion", WAIT, || async {
        let (code, statuses) = fleet
            .send(
                reqwest::Method::GET,
                &format!("/clusters/{id}/statuses"),
                None,
            )
            .await;
        if code == 404 {
            // fleet-api already hard-deleted the cluster: it only does so after Finalized=True.
            return Some(Value::Null);
        }
        let report = statuses["items"]
            .as_array()?
            .iter()
            .find(|r| r["adapter"] == "kubernetes-example")?
            .clone();
        let finalized = report["conditions"]
            .as_array()?
            .iter()
            .any(|c| c["type"] == "Finalized" && c["status"] == "True");
        (finalized && report["observed_generation"] == 3).then_some(report)
    })
    .await;
    if !report.is_null() {
        let finalized = report["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["type"] == "Finalized")
            .unwrap();
        assert_eq!(finalized["reason"], "CleanupConfirmed", "{report}");
    }
    assert!(kube.get("v1", "Namespace", None, &namespace).is_none());
    assert!(job().is_none());
    // Every required adapter finalized: fleet-api hard-deletes the cluster.
    eventually_async("the cluster hard-deleted by fleet-api", WAIT, || async {
        let (code, _) = fleet
            .send(reqwest::Method::GET, &format!("/clusters/{id}"), None)
            .await;
        (code == 404).then_some(())
    })
    .await;

    // Every metric an alert rule or dashboard in k8s/components/monitoring names is exported
    // by an adapter (and a sentinel) that went through a whole cluster life.
    for (metrics, owners) in [
        (
            format!("{}/metrics", adapter.metrics),
            &["adapter", "hyperfleet-broker", "every-service"][..],
        ),
        (sentinel.metrics.clone(), &["sentinel", "every-service"][..]),
    ] {
        let text = reqwest::get(&metrics).await.unwrap().text().await.unwrap();
        steadfast_test_support::monitoring::assert_exports(&text, owners);
    }

    sentinel.stop().await;
    adapter.stop().await;
    api.stop().await;
}

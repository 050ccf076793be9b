//! The fleet behind the console: the HyperFleet API stand-in (fleet-api, on its own database)
//! and the real sentinel polling it, with its read API on, publishing to a queue of the
//! console's broker namespace.

use std::time::Duration;

use chrono::Utc;
use serde_json::{Value, json};
use steadfast_test_support::{Probe, TestBroker, TestDatabase};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub const SENTINEL_TOKEN: &str = "sentinel-read-token";

pub struct FleetStack {
    pub api: fleet_api::Running,
    pub sentinel_url: String,
    client: reqwest::Client,
    _database: TestDatabase,
    _events: Probe,
    stop: CancellationToken,
    task: JoinHandle<()>,
}

impl FleetStack {
    pub async fn start(broker: &TestBroker) -> Self {
        let database = TestDatabase::new().await;
        let api = fleet_api::App::build(
            fleet_api::Config::local(&database.url)
                .with_required_adapters(&["validator"], &["validator"]),
        )
        .await
        .expect("fleet-api builds")
        .spawn();
        let exchange = broker.name("reconcile");
        let yaml = format!(
            r#"
sentinel:
  name: console-test-sentinel
resource_type: clusters
poll_interval: 100ms
clients:
  hyperfleet_api:
    base_url: {base}
  broker:
    topic: {exchange}
message_data:
  id: "resource.id"
  kind: "resource.kind"
  generation: "resource.generation"
"#,
            base = api.base_url()
        );
        let mut config = sentinel::Config::from_yaml(&yaml).expect("a sentinel config");
        config.http_listen = "127.0.0.1:0".parse().unwrap();
        config.metrics_listen = "127.0.0.1:0".parse().unwrap();
        config.broker.url = steadfast_test_support::amqp_url();
        config.shutdown_timeout = Duration::from_secs(5);
        config.api_token = Some(SENTINEL_TOKEN.into());
        // The adapters' queue, so the sentinel's events are routed (and confirmed).
        let events = broker.probe("adapter", &exchange, "#").await;
        let app = sentinel::App::build(config)
            .await
            .expect("the sentinel builds");
        let sentinel_url = format!("http://{}", app.http_addr());
        let stop = CancellationToken::new();
        let token = stop.clone();
        let task = tokio::spawn(async move {
            app.run(token).await.expect("the sentinel ran");
        });
        Self {
            api,
            sentinel_url,
            client: reqwest::Client::new(),
            _database: database,
            _events: events,
            stop,
            task,
        }
    }

    pub fn api_url(&self) -> String {
        self.api.base_url().to_owned()
    }

    fn url(&self, path: &str) -> String {
        format!("{}/api/hyperfleet/v1{path}", self.api.base_url())
    }

    /// Creates a cluster; returns its id.
    pub async fn cluster(&self, name: &str, labels: Value) -> String {
        let created: Value = self
            .client
            .post(self.url("/clusters"))
            .json(&json!({"kind": "Cluster", "name": name, "labels": labels, "spec": {"region": "eu"}}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        created["id"].as_str().expect("a cluster id").to_owned()
    }

    /// The `validator` adapter reports the cluster applied at `generation`, as an adapter does.
    pub async fn report_available(&self, cluster: &str, generation: i64) {
        let response = self
            .client
            .put(self.url(&format!("/clusters/{cluster}/statuses")))
            .json(&json!({
                "adapter": "validator", "observed_generation": generation,
                "observed_time": Utc::now().to_rfc3339(),
                "conditions": [{"type": "Available", "status": "True"},
                               {"type": "Applied", "status": "True"},
                               {"type": "Health", "status": "True"}]}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 201);
    }

    pub async fn stop(self) {
        self.stop.cancel();
        let _ = self.task.await;
        self.api.stop().await;
    }
}

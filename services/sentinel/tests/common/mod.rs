//! A sentinel against fleet-api on PostgreSQL and the real broker, with a clock the test moves.

#![allow(dead_code)]

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use chrono::Utc;
use reqwest::Client;
use sentinel::{App, Config};
use serde_json::{Value, json};
use steadfast_service_kit::http_client::RetryPolicy;
use steadfast_test_support::{Probe, TestBroker, TestDatabase};
use tokio_util::sync::CancellationToken;

/// A fleet-api with required adapter `validator` for clusters and nodepools.
pub struct Fleet {
    pub api: fleet_api::Running,
    pub client: Client,
    _db: TestDatabase,
}

impl Fleet {
    pub async fn start() -> Self {
        steadfast_test_support::init_test_logging();
        let db = TestDatabase::new().await;
        let api = fleet_api::App::build(
            fleet_api::Config::local(&db.url)
                .with_required_adapters(&["validator"], &["validator"]),
        )
        .await
        .expect("fleet-api builds")
        .spawn();
        Self {
            api,
            client: Client::new(),
            _db: db,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}/api/hyperfleet/v1{path}", self.api.base_url())
    }

    pub async fn post(&self, path: &str, body: Value) -> Value {
        self.send_json(reqwest::Method::POST, path, body).await
    }

    /// Sends `body` and returns the answer's JSON; any non-2xx answer fails the test.
    async fn send_json(&self, method: reqwest::Method, path: &str, body: Value) -> Value {
        let response = self
            .client
            .request(method.clone(), self.url(path))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert!(
            response.status().is_success(),
            "{method} {path}: {}",
            response.status()
        );
        response.json().await.unwrap()
    }

    pub async fn cluster(&self, name: &str, labels: Value) -> Value {
        self.post(
            "/clusters",
            json!({"kind": "Cluster", "name": name, "labels": labels, "spec": {"region": "eu"}}),
        )
        .await
    }

    pub async fn patch(&self, path: &str, body: Value) -> Value {
        self.send_json(reqwest::Method::PATCH, path, body).await
    }

    /// Deletes the resource at `path` for good: marked for deletion, then force-deleted (as if
    /// its adapters had finished), so it leaves the API's lists.
    pub async fn remove(&self, path: &str) {
        let marked = self.client.delete(self.url(path)).send().await.unwrap();
        assert_eq!(marked.status().as_u16(), 202, "DELETE {path}");
        let removed = self
            .client
            .post(self.url(&format!("{path}/force-delete")))
            .json(&json!({"reason": "test clean-up"}))
            .send()
            .await
            .unwrap();
        assert_eq!(removed.status().as_u16(), 204, "force-delete {path}");
    }

    /// The `validator` adapter reports `Available=True` at `generation`, observed now.
    pub async fn report_available(&self, path: &str, generation: i64) {
        let response = self
            .client
            .put(self.url(&format!("{path}/statuses")))
            .json(&json!({
                "adapter": "validator", "observed_generation": generation,
                "observed_time": Utc::now().to_rfc3339(),
                "conditions": [{"type": "Available", "status": "True"},
                               {"type": "Applied", "status": "True"},
                               {"type": "Health", "status": "True"}]}))
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status().as_u16(),
            201,
            "{}",
            response.text().await.unwrap()
        );
    }
}

/// A clock at real time plus an offset the test moves.
#[derive(Clone, Default)]
pub struct TestClock(Arc<AtomicI64>);

impl TestClock {
    pub fn advance(&self, by: chrono::Duration) {
        self.0.fetch_add(by.num_milliseconds(), Ordering::SeqCst);
    }

    pub fn clock(&self) -> sentinel::config::Clock {
        let offset = Arc::clone(&self.0);
        Arc::new(move || Utc::now() + chrono::Duration::milliseconds(offset.load(Ordering::SeqCst)))
    }
}

/// A sentinel config for `base_url`, publishing to `exchange`.
pub fn config(base_url: &str, exchange: &str, resource_type: &str, extra: &str) -> Config {
    let yaml = format!(
        r#"
sentinel:
  name: test-sentinel
resource_type: {resource_type}
poll_interval: 100ms
clients:
  hyperfleet_api:
    base_url: {base_url}
    page_size: 2
  broker:
    topic: {exchange}
message_data:
  id: "resource.id"
  kind: "resource.kind"
  href: "resource.href"
  generation: "resource.generation"
{extra}
"#
    );
    let mut config = Config::from_yaml(&yaml).unwrap_or_else(|e| panic!("{e}\n{yaml}"));
    config.http_listen = "127.0.0.1:0".parse().unwrap();
    config.metrics_listen = "127.0.0.1:0".parse().unwrap();
    config.broker.url = steadfast_test_support::amqp_url();
    config.shutdown_timeout = Duration::from_secs(5);
    config
}

/// HyperFleet's schedule, shortened: 10 ms doubling, at most 2 s.
pub fn fast_retry() -> RetryPolicy {
    RetryPolicy {
        base_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(100),
        max_elapsed: Some(Duration::from_secs(2)),
        ..RetryPolicy::default()
    }
}

/// A running sentinel.
pub struct Running {
    pub http: String,
    pub metrics: String,
    pub shutdown: CancellationToken,
    pub task: tokio::task::JoinHandle<Result<(), sentinel::AppError>>,
}

impl Running {
    pub async fn start(config: Config) -> Self {
        let app = App::build_with_retry(config, fast_retry())
            .await
            .expect("sentinel builds");
        let http = format!("http://{}", app.http_addr());
        let metrics = format!("http://{}", app.metrics_addr());
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(app.run(shutdown.clone()));
        Self {
            http,
            metrics,
            shutdown,
            task,
        }
    }

    pub async fn metrics_text(&self) -> String {
        reqwest::get(format!("{}/metrics", self.metrics))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// The value of the metric line starting with `prefix` (0 when absent).
    pub async fn metric(&self, prefix: &str) -> f64 {
        metric_value(&self.metrics_text().await, prefix)
    }

    /// Waits until `cycles` more poll cycles have completed.
    pub async fn wait_cycles(&self, cycles: u32) {
        let name = "hyperfleet_sentinel_poll_duration_seconds_count";
        let start = self.metric(name).await;
        steadfast_test_support::eventually_async(
            &format!("{cycles} more poll cycles"),
            Duration::from_secs(20),
            || async { (self.metric(name).await >= start + f64::from(cycles)).then_some(()) },
        )
        .await;
    }

    pub async fn stop(self) {
        self.shutdown.cancel();
        let _ = self.task.await;
    }
}

pub fn metric_value(text: &str, prefix: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(prefix))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// A probe queue on `exchange` with the empty routing key, as HyperFleet's adapters bind.
pub async fn adapter_queue(broker: &TestBroker, exchange: &str) -> Probe {
    broker.probe("adapter", exchange, "").await
}

/// Takes every message on `probe` now, as `(event JSON, raw)`.
pub async fn drain(probe: &Probe) -> Vec<(Value, steadfast_messaging::admin::RawMessage)> {
    let mut out = Vec::new();
    while let Some(raw) = probe.try_next().await {
        out.push((serde_json::from_slice(&raw.body).unwrap(), raw));
    }
    out
}

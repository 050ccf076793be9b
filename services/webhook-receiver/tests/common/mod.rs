//! What the receiver's test suites share: a receiver running on port 0 against the real broker
//! (directly or through a fault proxy) and, when asked, a database of its own; HTTP helpers.
#![allow(dead_code)] // Each suite uses a different subset.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;
use steadfast_messaging::BrokerConfig;
use steadfast_test_support::{TestBroker, eventually_async, init_test_logging};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use webhook_receiver::auth::Secret;
use webhook_receiver::{App, AppError, Config};

pub const GITLAB_SECRET: &str = "gitlab-test-secret";
pub const ALERTMANAGER_TOKEN: &str = "alertmanager-test-token";
pub const WAIT: Duration = Duration::from_secs(20);

pub const JOB_HOOK: &str = include_str!("../fixtures/gitlab-job-hook.json");
pub const PIPELINE_HOOK: &str = include_str!("../fixtures/gitlab-pipeline-hook.json");
pub const MERGE_REQUEST_HOOK: &str = include_str!("../fixtures/gitlab-merge-request-hook.json");
pub const ALERTMANAGER_NOTIFICATION: &str = include_str!("../fixtures/alertmanager-v4.json");

/// The job hook's routing key: `gitlab.com` + `cki-project/kernel-ark` + `build`.
pub const JOB_ROUTING_KEY: &str = "gitlab.com.cki-project.kernel-ark.build";

/// A configuration for `tb`'s namespace, reaching the broker at `amqp_url`, with a GitLab
/// default secret and an Alertmanager token, fast reconnects and no spool.
pub fn config_via(tb: &TestBroker, amqp_url: &str) -> Config {
    let mut broker = BrokerConfig::new(amqp_url, webhook_receiver::SERVICE).expect("AMQP URL");
    broker.reconnect_min = Duration::from_millis(50);
    broker.reconnect_max = Duration::from_millis(300);
    broker.connect_timeout = Duration::from_secs(2);
    let mut config = Config::new(tb.namespace.clone(), broker);
    config.gitlab.default = Secret::new(GITLAB_SECRET);
    config.alertmanager.bearer = Secret::new(ALERTMANAGER_TOKEN);
    config.spool.poll_interval = Duration::from_millis(100);
    config.shutdown_timeout = Duration::from_secs(5);
    config
}

/// [`config_via`] the broker itself.
pub fn config(tb: &TestBroker) -> Config {
    config_via(tb, &steadfast_test_support::amqp_url())
}

/// A receiver serving in the background.
pub struct Receiver {
    pub base: String,
    pub metrics: String,
    pub client: reqwest::Client,
    shutdown: CancellationToken,
    handle: JoinHandle<Result<(), AppError>>,
}

impl Receiver {
    pub async fn start(config: Config) -> Self {
        init_test_logging();
        let app = App::build(config).await.expect("build the receiver");
        let base = format!("http://{}", app.http_addr());
        let metrics = format!("http://{}/metrics", app.metrics_addr());
        let shutdown = CancellationToken::new();
        let handle = tokio::spawn(app.run(shutdown.clone()));
        Self {
            base,
            metrics,
            client: reqwest::Client::new(),
            shutdown,
            handle,
        }
    }

    /// Graceful shutdown; fails the test if `run` fails.
    pub async fn stop(self) {
        self.shutdown.cancel();
        self.handle
            .await
            .expect("receiver task")
            .expect("receiver ran without error");
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// POSTs `body` as JSON with the GitLab default secret and `headers`.
    pub async fn post_gitlab(&self, body: &str, headers: &[(&str, &str)]) -> (StatusCode, Value) {
        let mut all = vec![
            ("content-type", "application/json"),
            ("x-gitlab-token", GITLAB_SECRET),
        ];
        all.extend_from_slice(headers);
        self.post("/gitlab", body, &all).await
    }

    /// POSTs `body` to `path` with exactly `headers`; returns the status and the JSON body.
    pub async fn post(
        &self,
        path: &str,
        body: &str,
        headers: &[(&str, &str)],
    ) -> (StatusCode, Value) {
        let mut request = self.client.post(self.url(path)).body(body.to_owned());
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await.expect("POST");
        read(response).await
    }

    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        let response = self.client.get(self.url(path)).send().await.expect("GET");
        read(response).await
    }

    pub async fn metrics_text(&self) -> String {
        self.client
            .get(&self.metrics)
            .send()
            .await
            .expect("GET /metrics")
            .text()
            .await
            .expect("metrics body")
    }

    /// Waits until `/readyz` reports the `path` check with a detail starting with `prefix`.
    pub async fn wait_for_path(&self, prefix: &str) -> Value {
        eventually_async(&format!("readyz path `{prefix}…`"), WAIT, || async {
            let (_, body) = self.get("/readyz").await;
            body["checks"]["path"]["detail"]
                .as_str()
                .is_some_and(|d| d.starts_with(prefix))
                .then_some(body)
        })
        .await
    }
}

/// The status and JSON body of a response (`Value::Null` for an empty body).
pub async fn read(response: reqwest::Response) -> (StatusCode, Value) {
    let status = response.status();
    let bytes = response.bytes().await.expect("response body");
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap_or_else(|e| {
            panic!(
                "response is not JSON ({e}): {}",
                String::from_utf8_lossy(&bytes)
            )
        })
    };
    (status, body)
}

/// The value of `metric{labels}` in Prometheus text, 0 when absent.
pub fn metric(text: &str, name_and_labels: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(name_and_labels)?.trim().parse().ok())
        .unwrap_or(0.0)
}

/// The job hook with `build_id` replaced, so a burst of hooks can be told apart.
pub fn job_hook(build_id: u64) -> String {
    let mut hook: Value = serde_json::from_str(JOB_HOOK).expect("fixture");
    hook["build_id"] = build_id.into();
    hook.to_string()
}

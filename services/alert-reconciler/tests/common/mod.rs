//! A reconciler under test: its own broker namespace, database, recipe directory and fake
//! Webex; the App built from a `Config` on port 0, as `main` would build it.

#![allow(dead_code)]

use std::path::PathBuf;
use std::time::Duration;

use alert_reconciler::config::{ExecutorConfig, RecipeSource, SinksConfig, WebexConfig};
use alert_reconciler::{App, Config};
use fake_webex::{FakeWebex, Message};
use serde_json::{Value, json};
use steadfast_events::Envelope;
use steadfast_events::catalogue::{ALERTMANAGER_ALERT, MESSAGE_TYPE_ALERTMANAGER};
use steadfast_messaging::Publisher;
use steadfast_test_support::{
    TestBroker, TestDatabase, eventually, eventually_async, redis_url, unique_name,
};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub const API_TOKEN: &str = "test-api-token-0123456789";
pub const BOT_TOKEN: &str = "bot-token";
pub const ROOM: &str = "room-sre";
pub const SECRET: &str = "webhook-secret";
pub const ALICE: &str = "person-alice";
pub const MALLORY: &str = "person-mallory";
pub const WAIT: Duration = Duration::from_secs(30);

/// The `steadfast-recipe` binary built with this crate.
pub fn recipe_bin() -> &'static str {
    env!("CARGO_BIN_EXE_steadfast-recipe")
}

pub struct Harness {
    pub broker: TestBroker,
    pub db: TestDatabase,
    pub webex: FakeWebex,
    pub dir: PathBuf,
    pub config: Config,
}

impl Harness {
    /// A reconciler with the local executor, the recipes `yaml` (scripts in `dir`) and the
    /// fake Webex as its sink.
    pub async fn new(yaml: &str) -> Self {
        steadfast_test_support::init_test_logging();
        let broker = TestBroker::new().await;
        let db = TestDatabase::new().await;
        let webex = FakeWebex::start(BOT_TOKEN).await;
        let dir = std::env::temp_dir().join(unique_name("reconciler"));
        std::fs::create_dir_all(dir.join("work")).unwrap();
        let recipes = dir.join("recipes.yaml");
        std::fs::write(&recipes, yaml).unwrap();
        let mut config = Config::new(
            &db.url,
            &redis_url(),
            broker.namespace.clone(),
            TestBroker::config_for(&format!("alert-reconciler-{}", broker.namespace)),
            API_TOKEN,
            RecipeSource::File(recipes),
        );
        config.executor = ExecutorConfig::Local {
            work_dir: dir.join("work"),
        };
        config.recipe_timeout = Duration::from_secs(120);
        config.leader_retry = Duration::from_millis(100);
        config.sweep_interval = Duration::from_millis(500);
        config.recipes_reload_interval = Duration::from_millis(100);
        config.result_grace = Duration::from_millis(500);
        config.shutdown_timeout = Duration::from_secs(5);
        config.sinks = SinksConfig {
            webex: Some(WebexConfig {
                api_url: webex.api_url().parse().unwrap(),
                bot_token: BOT_TOKEN.into(),
                room_id: ROOM.into(),
                webhook_secret: SECRET.into(),
                approvers: vec![ALICE.into()],
                webhook_url: None,
            }),
            bot_url: None,
            chat_webhook_url: None,
        };
        Self {
            broker,
            db,
            webex,
            dir,
            config,
        }
    }

    /// A reconciler with [`standard_recipes`].
    pub async fn standard() -> Self {
        let h = Self::new("debugging: {}\n").await;
        std::fs::write(h.dir.join("recipes.yaml"), standard_recipes(&h)).unwrap();
        h
    }

    /// Publishes a `checkout` alert and waits for its analysis message; returns the incident
    /// id and the message.
    pub async fn analysed_incident(&self, app: &Running) -> (String, Message) {
        self.publish_alert(&alert("checkout", "web-1", "firing"))
            .await;
        let id = app.only_incident().await;
        let message = self.message(1).await;
        app.wait_state(&id, "awaiting_approval").await;
        (id, message)
    }

    /// How often the `restart-web` action ran.
    pub fn restarts(&self) -> usize {
        std::fs::read_to_string(self.dir.join("restarted.txt"))
            .map(|s| s.lines().count())
            .unwrap_or(0)
    }

    /// Writes an executable shell script into the recipe directory.
    pub fn script(&self, name: &str, body: &str) -> PathBuf {
        write_script(&self.dir, name, body)
    }

    /// Builds and runs the App; registers its approval callback with the fake Webex (in
    /// place of an earlier instance's).
    pub async fn start(&self) -> Running {
        let running = start(self.config.clone()).await;
        self.webex.clear_webhooks();
        self.webex.register_webhook(
            &format!("{}/webex/attachment-actions", running.base),
            Some(SECRET),
        );
        running
    }

    /// Publishes an alert event as the webhook-receiver does.
    pub async fn publish_alert(&self, alert: &Value) -> String {
        publish_alert(&self.broker, alert, None).await
    }

    /// The same, with a chosen event id.
    pub async fn publish_alert_with_id(&self, alert: &Value, id: &str) -> String {
        publish_alert(&self.broker, alert, Some(id)).await
    }

    /// Waits for the `n`-th Webex message (1-based) and returns it.
    pub async fn message(&self, n: usize) -> Message {
        eventually(&format!("Webex message #{n}"), WAIT, || {
            self.webex.messages().get(n - 1).cloned()
        })
        .await
    }

    pub async fn pool(&self) -> sqlx::PgPool {
        self.db.pool().await
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub use steadfast_test_support::write_script;

/// A running App.
pub struct Running {
    pub base: String,
    pub metrics: String,
    pub shutdown: CancellationToken,
    pub task: JoinHandle<Result<(), alert_reconciler::AppError>>,
    pub client: reqwest::Client,
}

pub async fn start(config: Config) -> Running {
    let app = App::build(config).await.expect("the App builds");
    let base = format!("http://{}", app.http_addr());
    let metrics = format!("http://{}", app.metrics_addr());
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(app.run(shutdown.clone()));
    let client = reqwest::Client::new();
    let ready = format!("{base}/readyz");
    eventually_async("the reconciler to be ready", WAIT, || async {
        let response = client.get(&ready).send().await.ok()?;
        response.status().is_success().then_some(())
    })
    .await;
    Running {
        base,
        metrics,
        shutdown,
        task,
        client,
    }
}

impl Running {
    /// Stops it the hard way: every task it owns is dropped mid-flight (a crash).
    pub async fn kill(self) {
        self.task.abort();
        let _ = self.task.await;
    }

    /// Graceful shutdown.
    pub async fn stop(self) {
        self.shutdown.cancel();
        self.task.await.unwrap().unwrap();
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        let response = self
            .client
            .get(format!("{}{path}", self.base))
            .bearer_auth(API_TOKEN)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: &Value) -> (u16, Value) {
        let mut request = self.client.post(format!("{}{path}", self.base)).json(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    pub async fn metrics_text(&self) -> String {
        self.client
            .get(format!("{}/metrics", self.metrics))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// `GET /api/incidents/{id}`.
    pub async fn incident(&self, id: &str) -> Value {
        let (status, body) = self.get(&format!("/api/incidents/{id}")).await;
        assert_eq!(status, 200, "{body}");
        body
    }

    /// Waits until the only incident exists and returns its id.
    pub async fn only_incident(&self) -> String {
        eventually_async("an incident", WAIT, || async {
            let (_, body) = self.get("/api/incidents").await;
            body["incidents"][0]["id"].as_str().map(str::to_owned)
        })
        .await
    }

    /// Waits until incident `id` is in `state`.
    pub async fn wait_state(&self, id: &str, state: &str) -> Value {
        eventually_async(&format!("incident {id} to be {state}"), WAIT, || async {
            let body = self.incident(id).await;
            (body["incident"]["state"] == state).then_some(body)
        })
        .await
    }
}

/// An Alertmanager alert plus its group fields, as one alert event carries them.
pub fn alert(group: &str, pod: &str, status: &str) -> Value {
    json!({
        "status": status,
        "labels": {"alertname": "HighErrorRate", "severity": "critical", "service": group, "pod": pod},
        "annotations": {"summary": "5xx above 5%"},
        "startsAt": "2025-06-01T10:00:00Z",
        "endsAt": if status == "resolved" { "2025-06-01T10:30:00Z" } else { "0001-01-01T00:00:00Z" },
        "generatorURL": "http://prometheus:9090/graph",
        "fingerprint": format!("fp-{group}-{pod}"),
        "groupKey": format!("{{}}/{{severity=\"critical\"}}:{{service=\"{group}\"}}"),
        "receiver": "reconciler",
        "externalURL": "http://alertmanager:9093",
        "groupLabels": {"service": group},
        "commonLabels": {"alertname": "HighErrorRate", "severity": "critical", "service": group},
        "commonAnnotations": {"summary": "5xx above 5%"},
    })
}

pub async fn publish_alert(broker: &TestBroker, alert: &Value, id: Option<&str>) -> String {
    let status = alert["status"].as_str().unwrap();
    let id = id.map(str::to_owned).unwrap_or_else(|| {
        alert_reconciler::alert::alert_event_id(
            alert["fingerprint"].as_str().unwrap(),
            if status == "firing" {
                alert_reconciler::alert::AlertStatus::Firing
            } else {
                alert_reconciler::alert::AlertStatus::Resolved
            },
            alert["startsAt"].as_str().unwrap(),
        )
    });
    let event = Envelope::new(
        "http://alertmanager:9093",
        ALERTMANAGER_ALERT,
        alert.clone(),
    )
    .with_id(id.clone());
    let publisher = Publisher::new(broker.broker.clone());
    let exchange = broker.name("webhooks");
    let key = format!("alertmanager.reconciler.{status}");
    eventually_async("the alert to be published", WAIT, || async {
        publisher
            .publish(&exchange, &key, &event, Some(MESSAGE_TYPE_ALERTMANAGER))
            .await
            .ok()
    })
    .await;
    id
}

/// `action` of the audit log entries, in order.
pub fn audit_actions(incident: &Value) -> Vec<String> {
    incident["audit"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap().to_owned())
        .collect()
}

/// Two debugging recipes for `HighErrorRate` — `check-errors` reports an analysis and
/// suggests `restart-web` with the pod as parameter, `broken` exits 3 — one that never matches,
/// and the action `restart-web`, which appends the pod to `restarted.txt`.
pub fn standard_recipes(h: &Harness) -> String {
    let marker = h.dir.join("restarted.txt");
    h.script(
        "check-errors.sh",
        r#"set -e
pod=$("$RECIPE_BIN" get alerts.0.labels.pod)
"$RECIPE_BIN" report --status successful \
  --analysis "pod $pod answers 5xx since the 10:00 deploy" \
  --action restart-web --action-data "restart-web={\"pod\":\"$pod\"}" \
  --link http://grafana/d/errors"#,
    );
    h.script("broken.sh", "echo 'cannot reach prometheus' >&2\nexit 3");
    h.script(
        "restart-web.sh",
        r#"set -e
pod=$("$RECIPE_BIN" get pod)
echo "$pod" >> "$MARKER"
"$RECIPE_BIN" report --status successful --analysis "restarted $pod""#,
    );
    format!(
        r#"
debugging:
  check-errors:
    entrypoint: ./check-errors.sh
    description: Looks for 5xx in the service's logs
    match: ['alertname="HighErrorRate"']
    env: {{RECIPE_BIN: "{bin}"}}
  broken:
    entrypoint: ./broken.sh
    description: Always fails
  disk:
    entrypoint: ./check-errors.sh
    match: ['alertname=~"Disk.*"']
actions:
  restart-web:
    entrypoint: ./restart-web.sh
    description: Restarts the web pod
    env: {{RECIPE_BIN: "{bin}", MARKER: "{marker}"}}
"#,
        bin = recipe_bin(),
        marker = marker.display()
    )
}

/// The bearer token the in-process webhook-receiver takes from Alertmanager.
pub const ALERTMANAGER_TOKEN: &str = "alertmanager-token";

/// The real webhook-receiver, in-process on the harness's broker namespace, accepting
/// Alertmanager notifications with [`ALERTMANAGER_TOKEN`].
pub struct Receiver {
    /// `http://…/alertmanager`
    pub alertmanager_url: String,
    stop: CancellationToken,
    task: JoinHandle<Result<(), webhook_receiver::AppError>>,
}

impl Receiver {
    pub async fn start(h: &Harness) -> Self {
        let mut config = webhook_receiver::Config::new(
            h.broker.namespace.clone(),
            TestBroker::config_for(webhook_receiver::SERVICE),
        );
        config.alertmanager.bearer = webhook_receiver::auth::Secret::new(ALERTMANAGER_TOKEN);
        config.shutdown_timeout = Duration::from_secs(5);
        let app = webhook_receiver::App::build(config)
            .await
            .expect("build the receiver");
        let alertmanager_url = format!("http://{}/alertmanager", app.http_addr());
        let stop = CancellationToken::new();
        let task = tokio::spawn(app.run(stop.clone()));
        Self {
            alertmanager_url,
            stop,
            task,
        }
    }

    pub async fn stop(self) {
        self.stop.cancel();
        self.task
            .await
            .expect("the receiver task")
            .expect("the receiver stops cleanly");
    }
}

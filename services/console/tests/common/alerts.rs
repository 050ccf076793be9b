//! The alert flow behind the console: the real webhook-receiver taking Alertmanager
//! notifications, the real alert-reconciler investigating them with shell recipes that report
//! through the real `steadfast-recipe`, on the console's broker namespace.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use alert_reconciler::config::{ExecutorConfig, RecipeSource};
use serde_json::{Value, json};
use steadfast_test_support::{
    TestBroker, TestDatabase, eventually_async, redis_url, unique_name, write_script,
};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::WAIT;

pub const RECONCILER_TOKEN: &str = "reconciler-api-token-0123";
pub const ALERTMANAGER_TOKEN: &str = "alertmanager-token";

/// `steadfast-recipe`, the alert-reconciler's binary for shell recipes. Cargo builds it for a
/// workspace test run; a run of this crate alone builds it here, once.
fn recipe_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let tmp = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
        let bin = tmp
            .parent()
            .expect("target/tmp has a parent")
            .join("debug")
            .join("steadfast-recipe");
        if !bin.exists() {
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
            let status = std::process::Command::new(cargo)
                .args([
                    "build",
                    "-q",
                    "-p",
                    "alert-reconciler",
                    "--bin",
                    "steadfast-recipe",
                ])
                .status()
                .expect("run cargo build");
            assert!(status.success(), "building steadfast-recipe failed");
        }
        bin
    })
    .clone()
}

/// One debugging recipe that finds the failing pod and suggests `restart-web`, and that action.
fn recipes(dir: &Path) -> String {
    write_script(
        dir,
        "check-errors.sh",
        r#"set -e
pod=$("$RECIPE_BIN" get alerts.0.labels.pod)
"$RECIPE_BIN" report --status successful \
  --analysis "pod $pod answers 5xx since the 10:00 deploy" \
  --action restart-web --action-data "restart-web={\"pod\":\"$pod\"}""#,
    );
    write_script(
        dir,
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
actions:
  restart-web:
    entrypoint: ./restart-web.sh
    description: Restarts the web pod
    env: {{RECIPE_BIN: "{bin}", MARKER: "{marker}"}}
"#,
        bin = recipe_bin().display(),
        marker = dir.join("restarted.txt").display()
    )
}

pub struct AlertStack {
    pub reconciler_url: String,
    pub receiver_url: String,
    /// The receiver's metrics listener.
    pub receiver_metrics_url: String,
    pub dir: PathBuf,
    /// The reconciler's database (the benchmark fills it).
    pub database: TestDatabase,
    stop: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
}

impl AlertStack {
    /// `approval_ttl`: how long a suggested action may wait for its approval.
    pub async fn start(broker: &TestBroker, approval_ttl: Duration) -> Self {
        let dir = std::env::temp_dir().join(unique_name("console-recipes"));
        std::fs::create_dir_all(dir.join("work")).unwrap();
        let recipes_file = dir.join("recipes.yaml");
        std::fs::write(&recipes_file, recipes(&dir)).unwrap();
        let database = TestDatabase::new().await;
        let mut config = alert_reconciler::Config::new(
            &database.url,
            &redis_url(),
            broker.namespace.clone(),
            TestBroker::config_for("alert-reconciler"),
            RECONCILER_TOKEN,
            RecipeSource::File(recipes_file),
        );
        config.executor = ExecutorConfig::Local {
            work_dir: dir.join("work"),
        };
        config.leader_retry = Duration::from_millis(100);
        config.sweep_interval = Duration::from_millis(500);
        config.result_grace = Duration::from_millis(500);
        config.shutdown_timeout = Duration::from_secs(5);
        config.approval_ttl = approval_ttl;
        let reconciler = alert_reconciler::App::build(config)
            .await
            .expect("build the reconciler");
        let reconciler_url = format!("http://{}", reconciler.http_addr());

        let mut receiver_config = webhook_receiver::Config::new(
            broker.namespace.clone(),
            TestBroker::config_for(webhook_receiver::SERVICE),
        );
        receiver_config.alertmanager.bearer =
            webhook_receiver::auth::Secret::new(ALERTMANAGER_TOKEN);
        receiver_config.shutdown_timeout = Duration::from_secs(5);
        let receiver = webhook_receiver::App::build(receiver_config)
            .await
            .expect("build the receiver");
        let receiver_url = format!("http://{}", receiver.http_addr());
        let receiver_metrics_url = format!("http://{}", receiver.metrics_addr());

        let stop = CancellationToken::new();
        let (a, b) = (stop.clone(), stop.clone());
        let tasks = vec![
            tokio::spawn(async move {
                reconciler.run(a).await.expect("the reconciler ran");
            }),
            tokio::spawn(async move {
                receiver.run(b).await.expect("the receiver ran");
            }),
        ];
        for url in [&reconciler_url, &receiver_url] {
            super::wait_ready(url).await;
        }
        Self {
            reconciler_url,
            receiver_url,
            receiver_metrics_url,
            dir,
            database,
            stop,
            tasks,
        }
    }

    /// Posts an Alertmanager notification for `pod` to the receiver, as Alertmanager would.
    pub async fn fire(&self, pod: &str) {
        let alert = json!({
            "status": "firing",
            "labels": {"alertname": "HighErrorRate", "severity": "critical", "service": "checkout", "pod": pod},
            "annotations": {"summary": "5xx above 5%"},
            "startsAt": "2026-12-01T10:00:00Z",
            "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "http://prometheus:9090/graph",
            "fingerprint": format!("fp-{pod}"),
        });
        let body = json!({
            "version": "4",
            "groupKey": format!("{{}}:{{pod=\"{pod}\"}}"),
            "truncatedAlerts": 0,
            "status": "firing",
            "receiver": "reconciler",
            "groupLabels": {"pod": pod},
            "commonLabels": alert["labels"],
            "commonAnnotations": alert["annotations"],
            "externalURL": "http://alertmanager:9093",
            "alerts": [alert],
        });
        let client = reqwest::Client::new();
        let url = format!("{}/alertmanager", self.receiver_url);
        eventually_async("the receiver to accept the notification", WAIT, || async {
            let response = client
                .post(&url)
                .bearer_auth(ALERTMANAGER_TOKEN)
                .json(&body)
                .send()
                .await
                .ok()?;
            (response.status() == 200).then_some(())
        })
        .await;
    }

    /// The reconciler's incidents (its API, as a test's own check).
    pub async fn incidents(&self) -> Vec<Value> {
        let page: Value = reqwest::Client::new()
            .get(format!("{}/api/incidents", self.reconciler_url))
            .bearer_auth(RECONCILER_TOKEN)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        page["incidents"].as_array().cloned().unwrap_or_default()
    }

    /// Waits for the one incident to reach `state`; returns its id.
    pub async fn incident_in(&self, state: &str) -> String {
        eventually_async(&format!("an incident {state}"), WAIT, || async {
            self.incidents()
                .await
                .into_iter()
                .find(|i| i["state"] == state)
                .and_then(|i| i["id"].as_str().map(str::to_owned))
        })
        .await
    }

    /// The pods the `restart-web` action restarted.
    pub fn restarted(&self) -> Vec<String> {
        std::fs::read_to_string(self.dir.join("restarted.txt"))
            .map(|s| s.lines().map(str::to_owned).collect())
            .unwrap_or_default()
    }

    pub async fn stop(self) {
        self.stop.cancel();
        for task in self.tasks {
            let _ = task.await;
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

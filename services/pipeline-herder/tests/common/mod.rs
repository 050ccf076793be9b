//! A herder under test: its own broker namespace and database, a fake GitLab at
//! `gitlab.test`, an optional chat recorder, and helpers that publish Job Hook events exactly
//! as the webhook-receiver does.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::routing::post;
use fake_gitlab::{FakeGitLab, FakeJob};
use pipeline_herder::ledger::DecisionRow;
use pipeline_herder::{App, Config, HerderSettings};
use serde_json::{Value, json};
use sqlx::PgPool;
use steadfast_events::Envelope;
use steadfast_events::catalogue::{MESSAGE_TYPE_GITLAB, gitlab_type};
use steadfast_messaging::Publisher;
use steadfast_test_support::{
    FaultProxy, Probe, TestBroker, TestDatabase, eventually_async, spawn_http,
};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// The instance every test job lives on.
pub const INSTANCE: &str = "gitlab.test";
pub const PROJECT_ID: u64 = 7;
pub const PROJECT: &str = "kernel/ark";
pub const WAIT: Duration = Duration::from_secs(20);

pub const IMAGE_PULL_LOG: &str = "Running with gitlab-runner 17.5.0 (7ad2a5a8)\n\
Pulling docker image quay.io/cki/builder-rawhide:latest ...\n\
\x1b[31;1mERROR: Job failed: failed to pull image \"quay.io/cki/builder-rawhide:latest\" with specified policies [always]: Error response from daemon: Get \"https://quay.io/v2/\": net/http: request canceled (manager.go:250:15s)\x1b[0;m\n";

pub const TEST_FAILURE_LOG: &str = "Running with gitlab-runner 17.5.0 (7ad2a5a8)\n\
$ make -C tools/testing/selftests TARGETS=net run_tests\n\
not ok 12 selftests: net: fib_tests.sh # exit=1\n\
\x1b[31;1mERROR: Job failed: exit code 2\x1b[0;m\n";

/// Matchers with short delays, so tests wait milliseconds.
pub const MATCHERS: &str = r#"
matchers:
  - name: image-pull
    retry_delays: [1s, 2s]
    retry_limit: 3
    messages:
      - 'ERROR: Job failed: failed to pull image'
  - name: disk-alert
    action: alert
    messages:
      - 'No space left on device'
"#;

pub struct Options {
    pub matchers: String,
    pub admin_token: Option<String>,
    pub chat: bool,
    /// Reach the broker through a [`FaultProxy`] the test can cut.
    pub via_proxy: bool,
    /// Reach PostgreSQL through a [`FaultProxy`] the test can cut (`Harness::database_proxy`).
    pub database_via_proxy: bool,
    /// The GitLab client's retry policy (default: 20 ms to 100 ms, 3 attempts).
    pub gitlab_retry: &'static str,
    /// Run the herder on a runtime of its own, so [`Harness::crash`] can end it mid-flight as
    /// `kill -9` would (every task and connection it has, at once).
    pub crashable: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            matchers: MATCHERS.into(),
            admin_token: Some("admin-secret".into()),
            chat: false,
            via_proxy: false,
            database_via_proxy: false,
            gitlab_retry: GITLAB_RETRY,
            crashable: false,
        }
    }
}

pub struct Harness {
    pub broker: TestBroker,
    pub database: TestDatabase,
    pub pool: PgPool,
    pub gitlab: FakeGitLab,
    pub http: String,
    pub metrics: String,
    pub chat: Option<Arc<Mutex<Vec<Value>>>>,
    pub decisions: Probe,
    pub config: Config,
    pub proxy: Option<FaultProxy>,
    pub database_proxy: Option<FaultProxy>,
    shutdown: CancellationToken,
    task: Option<JoinHandle<()>>,
    /// The herder's own runtime when started crashable.
    runtime: Option<tokio::runtime::Runtime>,
}

/// The GitLab client's retry policy in tests: fast.
const GITLAB_RETRY: &str = "{base_delay: 20ms, max_delay: 100ms, max_attempts: 3}";

/// The settings YAML for a fake GitLab.
pub fn settings_yaml(gitlab: &FakeGitLab, matchers: &str) -> String {
    settings_yaml_with(gitlab, matchers, GITLAB_RETRY)
}

fn settings_yaml_with(gitlab: &FakeGitLab, matchers: &str, gitlab_retry: &str) -> String {
    format!(
        "gitlab_instances:\n  {INSTANCE}:\n    api_url: {}\n    token_env: TEST_GITLAB_TOKEN\n\
gitlab_api: {{timeout: 5s, retry: {gitlab_retry}}}\n\
consumer: {{prefetch: 8, concurrency: 4, handler_timeout: 20s}}\n\
message_retry: {{delays: [300ms], max_attempts: 50}}\n{matchers}",
        gitlab.api_url()
    )
}

pub fn token_env(name: &str) -> Option<String> {
    (name == "TEST_GITLAB_TOKEN").then(|| "glpat-test".to_owned())
}

impl Harness {
    pub async fn start() -> Self {
        Self::start_with(Options::default()).await
    }

    pub async fn start_with(options: Options) -> Self {
        steadfast_test_support::init_test_logging();
        let broker = TestBroker::new().await;
        let database = TestDatabase::new().await;
        let gitlab = FakeGitLab::start_with(fake_gitlab::FakeGitLabOptions {
            token: Some("glpat-test".into()),
            web_base: Some(format!("https://{INSTANCE}")),
        })
        .await;
        let mut herder = HerderSettings::from_yaml(
            &settings_yaml_with(&gitlab, &options.matchers, options.gitlab_retry),
            Path::new("."),
            &token_env,
        )
        .expect("valid test settings");
        let chat = if options.chat {
            let seen = Arc::new(Mutex::new(Vec::new()));
            let record = seen.clone();
            let url = spawn_http(axum::Router::new().route(
                "/chat",
                post(move |Json(body): Json<Value>| {
                    let record = record.clone();
                    async move {
                        record.lock().unwrap().push(body);
                        "ok"
                    }
                }),
            ))
            .await;
            herder.chatbot_url = Some(format!("{url}/chat").parse().unwrap());
            Some(seen)
        } else {
            None
        };
        let proxy = if options.via_proxy {
            Some(FaultProxy::to_broker().await)
        } else {
            None
        };
        let mut broker_config = TestBroker::config_for("pipeline-herder");
        if let Some(proxy) = &proxy {
            broker_config.urls = vec![proxy.amqp_url()];
        }
        let database_proxy = if options.database_via_proxy {
            let url = url::Url::parse(&database.url).unwrap();
            let upstream = format!(
                "{}:{}",
                url.host_str().unwrap_or("127.0.0.1"),
                url.port().unwrap_or(5432)
            );
            Some(FaultProxy::start(&upstream).await)
        } else {
            None
        };
        let database_url = match &database_proxy {
            Some(proxy) => {
                let mut url = url::Url::parse(&database.url).unwrap();
                url.set_host(Some("127.0.0.1")).unwrap();
                url.set_port(Some(proxy.addr().port())).unwrap();
                url.to_string()
            }
            None => database.url.clone(),
        };
        let config = Config {
            namespace: broker.namespace.clone(),
            broker: broker_config,
            database_url,
            http_listen: "127.0.0.1:0".parse().unwrap(),
            metrics_listen: "127.0.0.1:0".parse().unwrap(),
            shutdown_timeout: Duration::from_secs(5),
            admin_token: options.admin_token,
            herder,
        };
        let runtime = options.crashable.then(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap()
        });
        let shutdown = CancellationToken::new();
        let (http, metrics, task) = run_app(&config, &shutdown, runtime.as_ref()).await;
        let decisions = broker
            .probe(
                "decisions",
                &broker.namespace.exchange("notifications"),
                "pipeline-herder.decision",
            )
            .await;
        let pool = database.pool().await;
        Self {
            broker,
            database,
            pool,
            gitlab,
            http,
            metrics,
            chat,
            decisions,
            config,
            proxy,
            database_proxy,
            shutdown,
            task: Some(task),
            runtime,
        }
    }

    /// Ends a crashable herder at once, mid-flight: its tasks and connections go, its ledger
    /// claims' session locks with them; with a broker proxy, the proxy is cut so the broker
    /// sees the connection die (and requeues what was unacknowledged).
    pub fn crash(&mut self) {
        let runtime = self.runtime.take().expect("started with `crashable: true`");
        runtime.shutdown_background();
        self.task = None;
        if let Some(proxy) = &self.proxy {
            proxy.cut();
        }
    }

    /// Starts a new herder with the same configuration (after [`Harness::crash`]).
    pub async fn restart(&mut self) {
        if let Some(proxy) = &self.proxy {
            proxy.restore();
        }
        self.shutdown = CancellationToken::new();
        let (http, metrics, task) = run_app(&self.config, &self.shutdown, None).await;
        self.http = http;
        self.metrics = metrics;
        self.task = Some(task);
    }

    /// Stops the herder and waits until it has shut down.
    pub async fn stop(&mut self) {
        self.shutdown.cancel();
        if let Some(task) = self.task.take() {
            tokio::time::timeout(Duration::from_secs(15), task)
                .await
                .expect("the herder stops within its shutdown timeout")
                .expect("the herder task did not panic");
        }
    }

    /// A failed job on the fake GitLab (pipeline 100 on `main` unless changed).
    pub fn add_failed_job(&self, id: u64, name: &str, log: &str) -> FakeJob {
        let job = FakeJob::failed(id, PROJECT_ID, PROJECT, 100, name, log);
        self.gitlab.add_job(job.clone());
        job
    }

    /// Publishes `hook` as the webhook-receiver does: exchange `<ns>.webhooks`, routing key
    /// `<host>.<project path, / → .>.build`, type `com.gitlab.build`, header `message-type:
    /// gitlab`, source `https://<host>/<project path>`.
    pub async fn publish_hook(&self, hook: &Value, event_id: &str) {
        let event = Envelope::new(
            format!("https://{INSTANCE}/{PROJECT}"),
            gitlab_type("build"),
            hook.clone(),
        )
        .with_id(event_id);
        let routing_key = format!("{INSTANCE}.{}.build", PROJECT.replace('/', "."));
        Publisher::new(self.broker.broker.clone())
            .publish(
                &self.broker.namespace.exchange("webhooks"),
                &routing_key,
                &event,
                Some(MESSAGE_TYPE_GITLAB),
            )
            .await
            .expect("publish the Job Hook");
    }

    /// The ledger row of a job once it satisfies `done`.
    pub async fn decision_where(
        &self,
        job_id: u64,
        what: &str,
        done: impl Fn(&DecisionRow) -> bool,
    ) -> DecisionRow {
        eventually_async(what, WAIT, || async {
            sqlx::query_as::<_, DecisionRow>("SELECT * FROM decisions WHERE job_id = $1")
                .bind(job_id as i64)
                .fetch_optional(&self.pool)
                .await
                .ok()
                .flatten()
                .filter(|row| done(row))
        })
        .await
    }

    /// The ledger row of a job once it is finished.
    pub async fn finished(&self, job_id: u64) -> DecisionRow {
        self.decision_where(
            job_id,
            &format!("a finished decision about job {job_id}"),
            |r| r.state == "done",
        )
        .await
    }

    pub async fn rows(&self) -> Vec<DecisionRow> {
        sqlx::query_as::<_, DecisionRow>("SELECT * FROM decisions ORDER BY id")
            .fetch_all(&self.pool)
            .await
            .unwrap()
    }

    /// The next decision event's data.
    pub async fn next_decision(&self) -> Value {
        let (event, raw) = self.decisions.next_event::<Value>(WAIT).await;
        assert_eq!(raw.header("message-type").as_deref(), Some("steadfast"));
        assert_eq!(event.event_type, "io.steadfast.pipeline-herder.decision");
        event.data
    }

    /// The value of one sample on `/metrics`, e.g. `pipeline_herder_paused` or
    /// `cki_herder_no_problem_detected_total{gitlab_stage="test",gitlab_job="test x86_64"}`.
    pub async fn metric(&self, sample: &str) -> Option<f64> {
        let text = reqwest::get(format!("{}/metrics", self.metrics))
            .await
            .ok()?
            .text()
            .await
            .ok()?;
        text.lines().find_map(|line| {
            let (name, value) = line.rsplit_once(' ')?;
            (name == sample).then(|| value.parse().ok()).flatten()
        })
    }

    /// Waits until `sample` reaches `value`.
    pub async fn metric_reaches(&self, sample: &str, value: f64) {
        eventually_async(&format!("{sample} = {value}"), WAIT, || async {
            (self.metric(sample).await == Some(value)).then_some(())
        })
        .await;
    }

    pub fn retry_calls(&self, job_id: u64) -> Vec<u16> {
        self.gitlab
            .requests_to(
                "POST",
                &format!("/projects/{PROJECT_ID}/jobs/{job_id}/retry"),
            )
            .iter()
            .map(|r| r.status)
            .collect()
    }

    pub fn chat_messages(&self) -> Vec<String> {
        self.chat
            .as_ref()
            .map(|c| {
                c.lock()
                    .unwrap()
                    .iter()
                    .filter_map(|m| m["message"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        self.shutdown.cancel();
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// Builds and runs the herder (on `runtime` when given); returns its URLs and task once ready.
async fn run_app(
    config: &Config,
    shutdown: &CancellationToken,
    runtime: Option<&tokio::runtime::Runtime>,
) -> (String, String, JoinHandle<()>) {
    let build = App::build(config.clone());
    let app = match runtime {
        Some(runtime) => runtime.spawn(build).await.unwrap(),
        None => build.await,
    }
    .expect("build the herder");
    let http = format!("http://{}", app.http_addr());
    let metrics = format!("http://{}", app.metrics_addr());
    let stop = shutdown.clone();
    let run = async move {
        app.run(stop).await.expect("herder ran");
    };
    let task = match runtime {
        Some(runtime) => runtime.spawn(run),
        None => tokio::spawn(run),
    };
    wait_ready(&http).await;
    (http, metrics, task)
}

/// Whether `/readyz` answers 200.
pub async fn is_ready(http: &str) -> bool {
    reqwest::get(format!("{http}/readyz"))
        .await
        .is_ok_and(|r| r.status().is_success())
}

async fn wait_ready(http: &str) {
    let client = reqwest::Client::new();
    eventually_async("the herder to be ready", WAIT, || async {
        let response = client.get(format!("{http}/readyz")).send().await.ok()?;
        response.status().is_success().then_some(())
    })
    .await;
}

/// A Job Hook for `job`, as GitLab sends it.
pub fn job_hook(job: &FakeJob, retries_count: u32) -> Value {
    json!({
        "object_kind": "build",
        "ref": job.git_ref,
        "tag": false,
        "before_sha": "0000000000000000000000000000000000000000",
        "sha": "95d49d1efbd941908580e79d65e4b5ecaf4a8305",
        "build_id": job.id,
        "build_name": job.name,
        "build_stage": job.stage,
        "build_status": job.status,
        "build_created_at": "2026-01-12 10:00:00 UTC",
        "build_started_at": "2026-01-12 10:00:05 UTC",
        "build_finished_at": "2026-01-12 10:03:05 UTC",
        "build_duration": 180.2,
        "build_queued_duration": 4.9,
        "build_allow_failure": job.allow_failure,
        "build_failure_reason": job.failure_reason.clone().unwrap_or_else(|| "script_failure".into()),
        "retries_count": retries_count,
        "pipeline_id": job.pipeline_id,
        "project_id": job.project_id,
        "project_name": "kernel / ark",
        "user": {"id": 3, "name": "CKI Bot", "username": "cki-bot", "email": "[REDACTED]"},
        "commit": {"id": job.pipeline_id, "name": null, "sha": "95d49d1efbd941908580e79d65e4b5ecaf4a8305", "message": "net: fix fib", "status": "failed"},
        "repository": {"name": "ark", "url": format!("git@{INSTANCE}:{PROJECT}.git"), "homepage": format!("https://{INSTANCE}/{PROJECT}")},
        "project": {"id": job.project_id, "name": "ark", "web_url": format!("https://{INSTANCE}/{PROJECT}"), "path_with_namespace": PROJECT},
        "runner": {"id": 380987, "description": "kernel-runner-03", "runner_type": "project_type", "active": true, "is_shared": false, "tags": ["docker"]},
        "environment": null
    })
}

pub fn addr(url: &str) -> SocketAddr {
    url.trim_start_matches("http://").parse().unwrap()
}

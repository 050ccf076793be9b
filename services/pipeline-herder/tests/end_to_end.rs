//! GitLab → webhook-receiver → RabbitMQ → pipeline-herder → GitLab, with the real receiver:
//! Job Hooks are POSTed as GitLab posts them, the herder reads the fake GitLab and retries.

mod common;

use std::time::Duration;

use common::{Harness, IMAGE_PULL_LOG, PROJECT_ID, job_hook};
use fake_gitlab::FakePipeline;
use serde_json::Value;
use steadfast_test_support::TestBroker;
use tokio_util::sync::CancellationToken;
use webhook_receiver::auth::Secret;

const HOOK_SECRET: &str = "hook-secret";

/// The real receiver on port 0, in the herder's broker namespace.
struct Receiver {
    url: String,
    stop: CancellationToken,
}

impl Receiver {
    async fn start(h: &Harness) -> Self {
        let mut config = webhook_receiver::Config::new(
            h.broker.namespace.clone(),
            TestBroker::config_for(webhook_receiver::SERVICE),
        );
        config.gitlab.default = Secret::new(HOOK_SECRET);
        config.shutdown_timeout = Duration::from_secs(5);
        let app = webhook_receiver::App::build(config)
            .await
            .expect("build the receiver");
        let url = format!("http://{}/gitlab", app.http_addr());
        let stop = CancellationToken::new();
        tokio::spawn(app.run(stop.clone()));
        Self { url, stop }
    }

    /// POSTs a Job Hook as GitLab does; returns the status.
    async fn post(&self, hook: &Value, idempotency_key: &str) -> u16 {
        reqwest::Client::new()
            .post(&self.url)
            .header("X-Gitlab-Event", "Job Hook")
            .header("X-Gitlab-Token", HOOK_SECRET)
            .header("Idempotency-Key", idempotency_key)
            .json(hook)
            .send()
            .await
            .expect("the receiver answers")
            .status()
            .as_u16()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

#[tokio::test]
async fn a_job_hook_posted_to_the_receiver_is_retried_once_after_the_delay() {
    let h = Harness::start().await;
    let receiver = Receiver::start(&h).await;
    let job = h.add_failed_job(801, "build x86_64", IMAGE_PULL_LOG);
    let hook = job_hook(&job, 0);
    assert_eq!(receiver.post(&hook, "delivery-801").await, 200);

    let row = h.finished(801).await;
    assert_eq!(
        (row.matcher.as_deref(), row.outcome.as_deref()),
        (Some("image-pull"), Some("retried"))
    );
    assert_eq!(
        row.event_id, "delivery-801",
        "the receiver's event id reached the ledger"
    );
    assert_eq!(h.retry_calls(801), vec![201]);
    let requests = h.gitlab.requests();
    let trace_read = requests
        .iter()
        .find(|r| r.path.ends_with("/jobs/801/trace"))
        .unwrap()
        .at;
    let retried = requests
        .iter()
        .find(|r| r.path.ends_with("/jobs/801/retry"))
        .unwrap()
        .at;
    assert!(
        retried.duration_since(trace_read) >= Duration::from_secs(1),
        "the configured delay passed"
    );

    // GitLab (or a person) resends the same delivery: still one retry.
    assert_eq!(receiver.post(&hook, "delivery-801").await, 200);
    h.metric_reaches(r#"pipeline_herder_events_total{result="duplicate"}"#, 1.0)
        .await;
    assert_eq!(h.retry_calls(801), vec![201]);
}

#[tokio::test]
async fn through_the_receiver_limits_supersession_allow_failure_and_5xx_behave() {
    let h = Harness::start().await;
    let receiver = Receiver::start(&h).await;

    // retries_count at the limit: reported, not retried.
    let limited = h.add_failed_job(802, "build x86_64", IMAGE_PULL_LOG);
    assert_eq!(
        receiver.post(&job_hook(&limited, 3), "delivery-802").await,
        200
    );
    let row = h.finished(802).await;
    assert_eq!(row.action, "report");

    // allow_failure: ignored.
    let mut optional = h.add_failed_job(803, "lint", IMAGE_PULL_LOG);
    optional.allow_failure = true;
    h.gitlab.add_job(optional.clone());
    assert_eq!(
        receiver.post(&job_hook(&optional, 0), "delivery-803").await,
        200
    );
    h.metric_reaches(
        r#"pipeline_herder_events_total{result="ignored_allow_failure"}"#,
        1.0,
    )
    .await;

    // GitLab answers 500 to the retry call once: retried with backoff, then it succeeds.
    let flaky = h.add_failed_job(804, "build aarch64", IMAGE_PULL_LOG);
    h.gitlab.fail_next(
        "POST",
        &format!("/projects/{PROJECT_ID}/jobs/804/retry"),
        &[500],
    );
    assert_eq!(
        receiver.post(&job_hook(&flaky, 0), "delivery-804").await,
        200
    );
    assert_eq!(h.finished(804).await.outcome.as_deref(), Some("retried"));
    assert_eq!(h.retry_calls(804), vec![500, 201]);

    // A newer pipeline on the ref: the old one is not retried.
    h.gitlab.add_pipeline(FakePipeline {
        id: 200,
        project_id: PROJECT_ID,
        git_ref: "main".into(),
        status: "running".into(),
    });
    let superseded = h.add_failed_job(805, "build s390x", IMAGE_PULL_LOG);
    assert_eq!(
        receiver
            .post(&job_hook(&superseded, 0), "delivery-805")
            .await,
        200
    );
    let row = h.finished(805).await;
    assert!(
        row.reason
            .ends_with("superseded by pipeline 200 on ref `main`"),
        "{}",
        row.reason
    );

    assert!(h.retry_calls(802).is_empty());
    assert!(h.retry_calls(803).is_empty());
    assert!(h.retry_calls(805).is_empty());
    assert!(
        h.gitlab
            .requests()
            .iter()
            .all(|r| !r.path.contains("/jobs/803/")),
        "allow_failure: GitLab not asked"
    );
}

//! One trace from a GitLab Job Hook to the retry it caused, across both queues: the real
//! webhook-receiver and herder (in-process, real RabbitMQ and PostgreSQL, fake GitLab) export
//! their spans to an in-process OTLP/HTTP collector, and the test checks every parent link:
//!
//! ```text
//! POST /gitlab (receiver, server)
//! └─ <ns>.pipeline-herder.jobs process (consumer)
//!    └─ herder.schedule_retry
//!       └─ <ns>.pipeline-herder.retries publish (producer, delayed)
//!          └─ <ns>.pipeline-herder.retries process (consumer)
//!             └─ herder.retry_due
//!                └─ gitlab.retry_job
//!                   └─ POST …/jobs/901/retry (client; the request carried its traceparent)
//! ```
//!
//! Its own test binary: the tracing subscriber is process-global.

mod common;

use std::time::Duration;

use common::{Harness, IMAGE_PULL_LOG, job_hook};
use steadfast_telemetry::{LogFormat, TelemetryConfig};
use steadfast_test_support::TestBroker;
use steadfast_test_support::otlp::{CollectedSpan, Collector};
use tokio_util::sync::CancellationToken;
use webhook_receiver::auth::Secret;

const HOOK_SECRET: &str = "hook-secret";
/// Spans are exported in batches (every 5 s by default).
const SPANS: Duration = Duration::from_secs(30);

/// The parent span of `span` among `spans`, if it was exported.
fn parent<'a>(spans: &'a [CollectedSpan], span: &CollectedSpan) -> Option<&'a CollectedSpan> {
    spans.iter().find(|p| span.is_child_of(p))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_hook_and_the_retry_it_causes_are_one_trace() {
    let collector = Collector::start().await;
    let telemetry = steadfast_telemetry::init(&TelemetryConfig {
        service: "herder-trace-test".into(),
        level: "warn,steadfast_telemetry=info,steadfast_messaging=info,pipeline_herder=info,webhook_receiver=info".into(),
        format: LogFormat::Json,
        loki_url: None,
        otlp_endpoint: Some(collector.endpoint()),
        otlp_protocol: None,
    })
    .expect("telemetry");

    let h = Harness::start().await;
    let mut config = webhook_receiver::Config::new(
        h.broker.namespace.clone(),
        TestBroker::config_for(webhook_receiver::SERVICE),
    );
    config.gitlab.default = Secret::new(HOOK_SECRET);
    config.shutdown_timeout = Duration::from_secs(5);
    let receiver = webhook_receiver::App::build(config)
        .await
        .expect("build the receiver");
    let url = format!("http://{}/gitlab", receiver.http_addr());
    let stop_receiver = CancellationToken::new();
    let receiver_task = tokio::spawn(receiver.run(stop_receiver.clone()));

    let job = h.add_failed_job(901, "build x86_64", IMAGE_PULL_LOG);
    let status = reqwest::Client::new()
        .post(&url)
        .header("X-Gitlab-Event", "Job Hook")
        .header("X-Gitlab-Token", HOOK_SECRET)
        .header("Idempotency-Key", "delivery-901")
        .json(&job_hook(&job, 0))
        .send()
        .await
        .expect("the receiver answers")
        .status();
    assert_eq!(status, 200);
    let row = h.finished(901).await;
    assert_eq!(row.outcome.as_deref(), Some("retried"));

    let ns = h.broker.namespace.as_str().to_owned();
    let jobs_process = format!("{ns}.pipeline-herder.jobs process");
    let retries_publish = format!("{ns}.pipeline-herder.retries publish");
    let retries_process = format!("{ns}.pipeline-herder.retries process");
    let is_retry_call = |s: &CollectedSpan| {
        s.kind == "client"
            && s.name == "POST"
            && s.attribute("url.full")
                .is_some_and(|u| u.ends_with("/jobs/901/retry"))
    };
    let spans = collector
        .wait_for(
            "the spans from the hook to the retry call",
            SPANS,
            |spans| {
                let complete = spans.iter().any(|s| s.name == "POST /gitlab")
                    && spans.iter().any(is_retry_call)
                    && spans.iter().any(|s| s.name == retries_process)
                    && spans.iter().any(|s| s.name == "gitlab.retry_job");
                complete.then(|| spans.to_vec())
            },
        )
        .await;

    // From the GitLab call back up to the request, link by link.
    let call = spans.iter().find(|s| is_retry_call(s)).unwrap();
    assert_eq!(call.attribute("http.response.status_code"), Some("201"));
    let retry_job = parent(&spans, call).expect("the retry call's parent was exported");
    assert_eq!(retry_job.name, "gitlab.retry_job");
    let retry_due = parent(&spans, retry_job).unwrap();
    assert_eq!(retry_due.name, "herder.retry_due");
    assert_eq!(retry_due.attribute("job_id"), Some("901"));
    let delayed = parent(&spans, retry_due).unwrap();
    assert_eq!(delayed.name, retries_process);
    assert_eq!(delayed.kind, "consumer");
    let publish = parent(&spans, delayed).unwrap();
    assert_eq!(publish.name, retries_publish);
    assert_eq!(publish.kind, "producer");
    assert_eq!(
        publish.attribute("messaging.rabbitmq.delay_ms"),
        Some("1000")
    );
    let schedule = parent(&spans, publish).unwrap();
    assert_eq!(schedule.name, "herder.schedule_retry");
    let decision = parent(&spans, schedule).unwrap();
    assert_eq!(decision.name, jobs_process);
    assert_eq!(decision.kind, "consumer");
    let request = parent(&spans, decision).unwrap();
    assert_eq!(request.name, "POST /gitlab");
    assert_eq!(request.kind, "server");
    assert_eq!(request.attribute("http.response.status_code"), Some("200"));
    assert_eq!(request.parent_span_id, None, "the hook starts the trace");

    // The decision's reads of GitLab are client spans of the same handler.
    let log_read = spans
        .iter()
        .find(|s| {
            s.kind == "client"
                && s.attribute("url.full")
                    .is_some_and(|u| u.ends_with("/jobs/901/trace"))
        })
        .expect("the log read");
    assert!(log_read.is_child_of(decision), "{log_read:?}");

    stop_receiver.cancel();
    receiver_task.await.unwrap().unwrap();
    drop(h);
    telemetry.shutdown().await;
}

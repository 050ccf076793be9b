//! Probes, metrics and shutdown of an `App` built in the test.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;
use steadfast_test_support::{FaultProxy, TestBroker, TestDatabase};

use crate::common::*;

#[tokio::test]
async fn probes_name_each_check_and_metrics_count_requests_and_events() {
    let tb = TestBroker::new().await;
    let db = TestDatabase::new().await;
    let mut config = config(&tb);
    config.database_url = Some(db.url.clone());
    let receiver = Receiver::start(config).await;
    let _probe = tb.probe("all", &tb.name("webhooks"), "#").await;

    let (status, body) = receiver.get("/healthz").await;
    assert_eq!(
        (status, body),
        (StatusCode::OK, json!({"status": "ok", "checks": {}}))
    );
    let (status, body) = receiver.get("/readyz").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "ready");
    assert!(
        body["checks"]["broker"]["detail"]
            .as_str()
            .unwrap()
            .starts_with("connected")
    );
    assert_eq!(
        body["checks"]["spool"],
        json!({"status": "ok", "detail": "empty"})
    );
    assert_eq!(
        body["checks"]["path"],
        json!({"status": "ok", "detail": "broker"})
    );

    assert_eq!(receiver.post_gitlab(JOB_HOOK, &[]).await.0, StatusCode::OK);
    let (status, _) = receiver
        .post(
            "/gitlab",
            JOB_HOOK,
            &[
                ("content-type", "application/json"),
                ("x-gitlab-token", "wrong"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    let text = receiver.metrics_text().await;
    // Every metric an alert rule or dashboard in k8s/components/monitoring names: a renamed
    // metric fails here, not on a dashboard.
    steadfast_test_support::monitoring::assert_exports(
        &text,
        &["webhook-receiver", "every-service"],
    );
    assert!(
        text.contains(r#"steadfast_build_info{service="webhook-receiver",version=""#),
        "{text}"
    );
    assert_eq!(
        metric(
            &text,
            r#"webhook_receiver_requests_total{source="gitlab",status="200"}"#
        ),
        1.0
    );
    assert_eq!(
        metric(
            &text,
            r#"webhook_receiver_requests_total{source="gitlab",status="401"}"#
        ),
        1.0
    );
    assert_eq!(
        metric(
            &text,
            r#"webhook_receiver_events_published_total{path="direct",source="gitlab"}"#
        ),
        1.0
    );
    assert_eq!(
        metric(
            &text,
            r#"webhook_receiver_delivery_duration_seconds_count{path="broker"}"#
        ),
        1.0
    );
    assert_eq!(metric(&text, "webhook_receiver_spool_depth"), 0.0);
    assert_eq!(
        metric(
            &text,
            &format!(
                r#"steadfast_messages_published_total{{exchange="{}"}}"#,
                tb.name("webhooks")
            )
        ),
        1.0,
        "{text}"
    );
    receiver.stop().await;
}

#[tokio::test]
async fn shutdown_answers_the_request_in_flight_then_stops_listening() {
    let tb = TestBroker::new().await;
    let proxy = FaultProxy::to_broker().await;
    let mut config = config_via(&tb, &proxy.amqp_url());
    config.broker = config.broker.with_publish_timeout(Duration::from_secs(1));
    // Closing a connection to a hung broker waits out what is left of this.
    config.shutdown_timeout = Duration::from_secs(2);
    let receiver = Receiver::start(config).await;
    let base = receiver.base.clone();

    // A request waiting for a confirm that will not come (no spool configured).
    proxy.stall();
    let client = receiver.client.clone();
    let in_flight = tokio::spawn({
        let url = receiver.url("/gitlab");
        async move {
            client
                .post(url)
                .header("content-type", "application/json")
                .header("x-gitlab-token", GITLAB_SECRET)
                .body(JOB_HOOK)
                .send()
                .await
        }
    });
    steadfast_test_support::eventually_async("the request in flight", WAIT, || async {
        let text = receiver.metrics_text().await;
        (metric(&text, "webhook_receiver_requests_in_flight") == 1.0).then_some(())
    })
    .await;
    receiver.stop().await;

    let response = in_flight
        .await
        .unwrap()
        .expect("the in-flight request got an answer");
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        reqwest::get(format!("{base}/healthz")).await.is_err(),
        "the listener is closed after shutdown"
    );
}

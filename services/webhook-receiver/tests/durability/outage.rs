//! The real thing: `rabbitmqctl stop_app` while webhooks keep coming.
//!
//! This test stops the shared broker, so its name contains `outage_`: scripts/test.sh runs it
//! after everything else, alone. The broker is started again by a guard even if the test
//! fails.

use std::process::Command;
use std::time::Duration;

use reqwest::StatusCode;
use steadfast_test_support::{TestBroker, TestDatabase};

use crate::common::*;
use crate::{ids, spool_rows, wait_for_empty_spool};

/// Runs `rabbitmqctl stop_app`; dropping it runs `start_app` and waits for the broker.
struct StoppedBroker;

impl StoppedBroker {
    fn stop() -> Self {
        rabbitmqctl(&["stop_app"]);
        Self
    }
}

impl Drop for StoppedBroker {
    fn drop(&mut self) {
        rabbitmqctl(&["start_app"]);
        rabbitmqctl(&["await_startup"]);
    }
}

fn rabbitmqctl(args: &[&str]) {
    let output = Command::new("rabbitmqctl")
        .args(args)
        .output()
        .expect("rabbitmqctl must be installed (scripts/ensure-services.sh installs RabbitMQ)");
    assert!(
        output.status.success(),
        "rabbitmqctl {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[tokio::test]
async fn outage_rabbitmq_stop_app_webhooks_spool_and_arrive_in_order_after_start_app() {
    let tb = TestBroker::new().await;
    let db = TestDatabase::new().await;
    let mut config = config(&tb);
    config.database_url = Some(db.url.clone());
    let receiver = Receiver::start(config).await;
    // Durable quorum queue: it and its messages survive the broker restart.
    let probe = tb.probe("all", &tb.name("webhooks"), "#").await;
    let pool = db.pool().await;
    let post = |n: u32| {
        let receiver = &receiver;
        async move {
            receiver
                .post_gitlab(
                    &job_hook(u64::from(n)),
                    &[("idempotency-key", &format!("ev-{n}"))],
                )
                .await
        }
    };
    assert_eq!(post(0).await.0, StatusCode::OK);

    {
        let _stopped = StoppedBroker::stop();
        receiver.wait_for_path("spool").await;
        let started = tokio::time::Instant::now();
        for n in 1..=25 {
            let (status, body) = post(n).await;
            assert_eq!(status, StatusCode::ACCEPTED, "ev-{n}: {body}");
        }
        let per_request = started.elapsed() / 25;
        assert!(
            per_request < Duration::from_secs(2),
            "answered well inside GitLab's 10 s ({per_request:?} per request)"
        );
        assert_eq!(spool_rows(&pool).await.len(), 25);
        let (status, _) = receiver.get("/readyz").await;
        assert_eq!(status, StatusCode::OK, "ready while the spool works");
    } // start_app

    let mut received = Vec::new();
    for _ in 0..26 {
        received.push(
            probe
                .next(Duration::from_secs(60))
                .await
                .message_id()
                .unwrap(),
        );
    }
    assert_eq!(received, ids(0..=25), "every webhook, in order, none lost");
    wait_for_empty_spool(&pool).await;
    assert!(probe.try_next().await.is_none(), "no duplicates");
    receiver.stop().await;
}

//! The spool, with this receiver's broker connection cut or stalled by a fault proxy.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;
use sqlx::Connection;
use steadfast_test_support::{FaultProxy, TestBroker, TestDatabase, eventually_async};
use webhook_receiver::spool::DRAIN_LOCK;

use crate::common::*;
use crate::{ids, spool_rows, wait_for_empty_spool};

/// A receiver with a spool, reaching the broker through `proxy`.
async fn spooling_receiver(tb: &TestBroker, db: &TestDatabase, proxy: &FaultProxy) -> Receiver {
    let mut config = config_via(tb, &proxy.amqp_url());
    config.database_url = Some(db.url.clone());
    Receiver::start(config).await
}

/// Posts the job hook with `Idempotency-Key: ev-<n>` and returns the status and body.
async fn post_event(receiver: &Receiver, n: u32) -> (StatusCode, serde_json::Value) {
    receiver
        .post_gitlab(
            &job_hook(u64::from(n)),
            &[("idempotency-key", &format!("ev-{n}"))],
        )
        .await
}

/// Reads `count` messages from `probe` and returns their ids in arrival order.
async fn received_ids(probe: &steadfast_test_support::Probe, count: usize) -> Vec<String> {
    let mut ids = Vec::with_capacity(count);
    for _ in 0..count {
        ids.push(probe.next(WAIT).await.message_id().expect("message id"));
    }
    ids
}

#[tokio::test]
async fn a_cut_broker_spools_a_burst_and_the_drainer_delivers_it_in_order() {
    let tb = TestBroker::new().await;
    let db = TestDatabase::new().await;
    let proxy = FaultProxy::to_broker().await;
    let receiver = spooling_receiver(&tb, &db, &proxy).await;
    let probe = tb.probe("all", &tb.name("webhooks"), "#").await;
    let pool = db.pool().await;

    let (status, body) = post_event(&receiver, 0).await;
    assert_eq!(
        (status, body["status"].as_str()),
        (StatusCode::OK, Some("published"))
    );

    proxy.cut();
    receiver.wait_for_path("spool").await;
    for n in 1..=20 {
        let (status, body) = post_event(&receiver, n).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
        assert_eq!(
            body,
            json!({"status": "spooled", "events": [{
                "id": format!("ev-{n}"), "routing_key": JOB_ROUTING_KEY, "outcome": "spooled"
            }]})
        );
    }
    let rows = spool_rows(&pool).await;
    assert_eq!(
        rows.iter().map(|r| r.0.clone()).collect::<Vec<_>>(),
        ids(1..=20)
    );
    assert_eq!(rows[0].1, "broker_down");
    assert!(rows[1..].iter().all(|r| r.1 == "behind_spool"), "{rows:?}");
    // Ready all along, and saying why and how much waits.
    let readyz = receiver.wait_for_path("spool (20 events waiting)").await;
    assert_eq!(readyz["status"], "ready");
    assert_eq!(readyz["checks"]["broker"]["status"], "ok");
    assert!(
        readyz["checks"]["broker"]["detail"]
            .as_str()
            .unwrap()
            .ends_with("events go to the spool"),
        "{readyz}"
    );
    let metrics = receiver.metrics_text().await;
    assert_eq!(
        metric(
            &metrics,
            r#"webhook_receiver_events_spooled_total{reason="behind_spool",source="gitlab"}"#
        ),
        19.0
    );

    proxy.restore();
    assert_eq!(
        received_ids(&probe, 21).await,
        ids(0..=20),
        "every event, in order"
    );
    wait_for_empty_spool(&pool).await;
    receiver.wait_for_path("broker").await;
    let (status, _) = post_event(&receiver, 21).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "direct publishing again once the spool is empty"
    );
    assert_eq!(
        probe.next(WAIT).await.message_id().as_deref(),
        Some("ev-21")
    );
    assert!(probe.try_next().await.is_none(), "no duplicates");
    let metrics = receiver.metrics_text().await;
    assert_eq!(
        metric(
            &metrics,
            r#"webhook_receiver_events_published_total{path="spool",source="gitlab"}"#
        ),
        20.0
    );
    receiver.stop().await;
}

#[tokio::test]
async fn a_stalled_broker_is_noticed_by_the_publish_deadline_and_the_event_is_spooled() {
    let tb = TestBroker::new().await;
    let db = TestDatabase::new().await;
    let proxy = FaultProxy::to_broker().await;
    let mut config = config_via(&tb, &proxy.amqp_url());
    config.database_url = Some(db.url.clone());
    config.broker = config
        .broker
        .with_publish_timeout(Duration::from_millis(500));
    let receiver = Receiver::start(config).await;
    let probe = tb.probe("all", &tb.name("webhooks"), "#").await;
    let pool = db.pool().await;

    // Connected but silent: no confirm ever comes back.
    proxy.stall();
    let (status, body) = post_event(&receiver, 1).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(
        spool_rows(&pool).await,
        vec![("ev-1".to_owned(), "broker_error".to_owned())]
    );
    // The drainer tries, and the row says why it is still there.
    let (attempts, error): (i32, Option<String>) =
        eventually_async("a failed drain attempt", WAIT, || async {
            let row: (i32, Option<String>) =
                sqlx::query_as("SELECT attempts, last_error FROM webhook_spool")
                    .fetch_one(&pool)
                    .await
                    .ok()?;
            (row.0 > 0).then_some(row)
        })
        .await;
    assert!(attempts >= 1);
    assert_eq!(error.as_deref(), Some("no broker confirm within 500ms"));

    proxy.restore();
    // The timed-out publishes may arrive too (at-least-once); the event arrives, nothing else.
    assert_eq!(probe.next(WAIT).await.message_id().as_deref(), Some("ev-1"));
    wait_for_empty_spool(&pool).await;
    while let Some(extra) = probe.try_next().await {
        assert_eq!(extra.message_id().as_deref(), Some("ev-1"));
    }
    receiver.stop().await;
}

#[tokio::test]
async fn new_events_queue_behind_spooled_ones_even_when_the_broker_is_back() {
    let tb = TestBroker::new().await;
    let db = TestDatabase::new().await;
    let proxy = FaultProxy::to_broker().await;
    let receiver = spooling_receiver(&tb, &db, &proxy).await;
    let probe = tb.probe("all", &tb.name("webhooks"), "#").await;
    let pool = db.pool().await;

    proxy.cut();
    receiver.wait_for_path("spool").await;
    for n in 1..=3 {
        assert_eq!(post_event(&receiver, n).await.0, StatusCode::ACCEPTED);
    }
    // Another replica is draining (it holds the drain lock), so ours cannot.
    let mut other_replica = sqlx::PgConnection::connect(&db.url).await.unwrap();
    let mut lock = other_replica.begin().await.unwrap();
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(DRAIN_LOCK)
        .execute(&mut *lock)
        .await
        .unwrap();
    proxy.restore();
    eventually_async("the broker connection back", WAIT, || async {
        let (_, body) = receiver.get("/readyz").await;
        body["checks"]["broker"]["detail"]
            .as_str()?
            .starts_with("connected")
            .then_some(())
    })
    .await;

    for n in 4..=5 {
        let (status, body) = post_event(&receiver, n).await;
        assert_eq!(
            status,
            StatusCode::ACCEPTED,
            "ev-{n} must not overtake the spool: {body}"
        );
    }
    let rows = spool_rows(&pool).await;
    assert_eq!(
        rows.iter().map(|r| r.0.clone()).collect::<Vec<_>>(),
        ids(1..=5)
    );
    assert_eq!(rows[4].1, "behind_spool");
    assert_eq!(
        probe.depth().await,
        0,
        "nothing published while the spool waits"
    );

    lock.commit().await.unwrap();
    assert_eq!(received_ids(&probe, 5).await, ids(1..=5));
    wait_for_empty_spool(&pool).await;
    receiver.stop().await;
}

#[tokio::test]
async fn a_restarted_receiver_drains_the_spool_it_left_before_anything_new() {
    let tb = TestBroker::new().await;
    let db = TestDatabase::new().await;
    let proxy = FaultProxy::to_broker().await;
    let first = spooling_receiver(&tb, &db, &proxy).await;
    let probe = tb.probe("all", &tb.name("webhooks"), "#").await;
    let pool = db.pool().await;
    proxy.cut();
    first.wait_for_path("spool").await;
    for n in 1..=5 {
        assert_eq!(post_event(&first, n).await.0, StatusCode::ACCEPTED);
    }
    first.stop().await;
    assert_eq!(
        spool_rows(&pool).await.len(),
        5,
        "the spool outlives the process"
    );

    // The replacement reaches the broker directly; the first request races with the drainer.
    let mut config = config(&tb);
    config.database_url = Some(db.url.clone());
    let second = Receiver::start(config).await;
    let (status, body) = post_event(&second, 6).await;
    assert!(
        status == StatusCode::OK || status == StatusCode::ACCEPTED,
        "{body}"
    );

    assert_eq!(received_ids(&probe, 6).await, ids(1..=6));
    wait_for_empty_spool(&pool).await;
    second.stop().await;
}

#[tokio::test]
async fn two_replicas_drain_one_spool_in_order_without_duplicates() {
    let tb = TestBroker::new().await;
    let db = TestDatabase::new().await;
    let (proxy_a, proxy_b) = (FaultProxy::to_broker().await, FaultProxy::to_broker().await);
    let a = spooling_receiver(&tb, &db, &proxy_a).await;
    let b = spooling_receiver(&tb, &db, &proxy_b).await;
    let probe = tb.probe("all", &tb.name("webhooks"), "#").await;
    let pool = db.pool().await;

    proxy_a.cut();
    proxy_b.cut();
    a.wait_for_path("spool").await;
    b.wait_for_path("spool").await;
    for n in 1..=30 {
        let replica = if n % 2 == 0 { &a } else { &b };
        assert_eq!(post_event(replica, n).await.0, StatusCode::ACCEPTED);
    }
    proxy_a.restore();
    proxy_b.restore();

    assert_eq!(received_ids(&probe, 30).await, ids(1..=30));
    wait_for_empty_spool(&pool).await;
    assert!(probe.try_next().await.is_none(), "each event once");
    a.stop().await;
    b.stop().await;
}

#[tokio::test]
async fn without_a_spool_a_dead_broker_is_a_503_and_not_ready() {
    let tb = TestBroker::new().await;
    let proxy = FaultProxy::to_broker().await;
    let mut config = config_via(&tb, &proxy.amqp_url());
    config.broker = config
        .broker
        .with_publish_timeout(Duration::from_millis(300));
    let receiver = Receiver::start(config).await;

    proxy.cut();
    let readyz = eventually_async("not ready", WAIT, || async {
        let (status, body) = receiver.get("/readyz").await;
        (status == StatusCode::SERVICE_UNAVAILABLE).then_some(body)
    })
    .await;
    assert_eq!(
        readyz["checks"]["path"],
        json!({"status": "error", "detail": "none: the broker is disconnected and the spool is unavailable"})
    );
    assert_eq!(
        readyz["checks"]["spool"]["detail"],
        "disabled: DATABASE_URL is not set"
    );

    let (status, body) = post_event(&receiver, 1).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        body["detail"],
        "the broker did not take the event (no broker confirm within 300ms) and the spool could \
         not either (disabled: DATABASE_URL is not set); retry later"
    );
    let metrics = receiver.metrics_text().await;
    assert_eq!(
        metric(
            &metrics,
            r#"webhook_receiver_requests_total{source="gitlab",status="503"}"#
        ),
        1.0
    );
    receiver.stop().await;
}

#[tokio::test]
async fn an_unreachable_spool_database_leaves_the_broker_path_working() {
    let tb = TestBroker::new().await;
    let proxy = FaultProxy::to_broker().await;
    let mut config = config_via(&tb, &proxy.amqp_url());
    // Nothing listens on port 1.
    config.database_url = Some("postgres://postgres@127.0.0.1:1/receiver".into());
    config.spool.timeout = Duration::from_millis(300);
    config.broker = config
        .broker
        .with_publish_timeout(Duration::from_millis(300));
    let receiver = Receiver::start(config).await;
    let probe = tb.probe("all", &tb.name("webhooks"), "#").await;

    let (status, readyz) = receiver.get("/readyz").await;
    assert_eq!(status, StatusCode::OK, "{readyz}");
    assert_eq!(readyz["checks"]["path"]["detail"], "broker");
    assert!(
        readyz["checks"]["spool"]["detail"]
            .as_str()
            .unwrap()
            .starts_with("unavailable: "),
        "{readyz}"
    );
    assert_eq!(post_event(&receiver, 1).await.0, StatusCode::OK);
    assert_eq!(probe.next(WAIT).await.message_id().as_deref(), Some("ev-1"));

    proxy.cut();
    receiver.wait_for_path("none").await;
    let (status, body) = post_event(&receiver, 2).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .starts_with("the broker did not take the event"),
        "{body}"
    );
    receiver.stop().await;
}

#[tokio::test]
async fn events_nobody_is_bound_for_are_kept_on_the_unrouted_queue_also_from_the_spool() {
    let tb = TestBroker::new().await;
    let db = TestDatabase::new().await;
    let proxy = FaultProxy::to_broker().await;
    let receiver = spooling_receiver(&tb, &db, &proxy).await;
    let unrouted = tb.queue(&tb.name("webhook-receiver.unrouted"));

    let (status, body) = post_event(&receiver, 1).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["events"][0]["outcome"], "unrouted");
    let message = unrouted.next(WAIT).await;
    assert_eq!(message.exchange, tb.name("webhooks.unrouted"));
    assert_eq!(
        message.routing_key, JOB_ROUTING_KEY,
        "the original key, for replay"
    );
    assert_eq!(message.message_id().as_deref(), Some("ev-1"));
    assert_eq!(
        message.header("steadfast-original-exchange"),
        Some(tb.name("webhooks"))
    );
    assert_eq!(message.header("message-type").as_deref(), Some("gitlab"));

    // An unroutable spooled event must not block the spool behind it either.
    proxy.cut();
    receiver.wait_for_path("spool").await;
    assert_eq!(post_event(&receiver, 2).await.0, StatusCode::ACCEPTED);
    proxy.restore();
    assert_eq!(
        unrouted.next(WAIT).await.message_id().as_deref(),
        Some("ev-2")
    );
    let pool = db.pool().await;
    wait_for_empty_spool(&pool).await;
    let metrics = receiver.metrics_text().await;
    assert_eq!(
        metric(
            &metrics,
            r#"webhook_receiver_events_unrouted_total{source="gitlab"}"#
        ),
        2.0
    );
    receiver.stop().await;
}

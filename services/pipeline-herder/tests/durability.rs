//! Nothing is lost and nothing happens twice when the broker goes away: scheduled retries
//! wait in the broker, notifications wait in the ledger's outbox.

mod common;

use common::{Harness, IMAGE_PULL_LOG, Options, WAIT, is_ready, job_hook};
use steadfast_messaging::ExchangeSpec;
use steadfast_test_support::eventually_async;

#[tokio::test]
async fn a_retry_that_falls_due_while_the_herder_is_cut_off_happens_once_afterwards() {
    let h = Harness::start_with(Options {
        via_proxy: true,
        ..Options::default()
    })
    .await;
    let proxy = h.proxy.as_ref().unwrap();
    let job = h.add_failed_job(901, "build x86_64", IMAGE_PULL_LOG);
    // retries_count 1: the second delay, 2 s.
    h.publish_hook(&job_hook(&job, 1), "hook-901").await;
    h.decision_where(901, "the retry to be scheduled", |r| r.state == "scheduled")
        .await;

    proxy.cut();
    eventually_async("the herder to notice the broker is gone", WAIT, || async {
        (!is_ready(&h.http).await).then_some(())
    })
    .await;
    // The delay passes inside the broker: the message moves into the retries queue, with
    // nobody there to consume it.
    let retries = h.broker.queue(&h.broker.name("pipeline-herder.retries"));
    eventually_async("the due retry to wait in its queue", WAIT, || async {
        (retries.depth().await == 1).then_some(())
    })
    .await;
    assert!(h.retry_calls(901).is_empty());

    proxy.restore();
    let row = h.finished(901).await;
    assert_eq!(row.outcome.as_deref(), Some("retried"));
    assert_eq!(h.retry_calls(901), vec![201]);
}

#[tokio::test]
async fn a_notification_the_broker_refuses_waits_in_the_outbox_until_it_can_be_published() {
    let h = Harness::start().await;
    // The notifications exchange disappears (deleted by hand, say).
    let exchange = h.broker.namespace.exchange("notifications");
    let client = reqwest::Client::new();
    client
        .delete(format!(
            "http://127.0.0.1:15672/api/exchanges/%2f/{exchange}"
        ))
        .basic_auth("guest", Some("guest"))
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap();

    let job = h.add_failed_job(902, "test x86_64", common::TEST_FAILURE_LOG);
    h.publish_hook(&job_hook(&job, 0), "hook-902").await;
    h.finished(902).await;
    h.metric_reaches("pipeline_herder_outbox_pending", 1.0)
        .await;
    assert!(
        h.metric(r#"pipeline_herder_notifications_total{result="failed",sink="broker"}"#)
            .await
            >= Some(1.0)
    );

    // The exchange is back (as after a broker restart): the next sweep publishes it.
    h.broker
        .broker
        .declare_exchange(ExchangeSpec::topic(exchange.clone()))
        .await
        .unwrap();
    let probe = h
        .broker
        .probe("late-decisions", &exchange, "pipeline-herder.decision")
        .await;
    let (event, _) = probe.next_event::<serde_json::Value>(WAIT).await;
    assert_eq!(event.data["job_id"], 902);
    assert_eq!(event.id, "pipeline-herder/gitlab.test/902/decision");
    h.metric_reaches("pipeline_herder_outbox_pending", 0.0)
        .await;
}

//! Nothing is lost and nothing happens twice when the broker or the database goes away:
//! scheduled retries wait in the broker, notifications wait in the ledger's outbox, a claim
//! is given back once the database answers again.

mod common;

use common::{Harness, IMAGE_PULL_LOG, Options, PROJECT_ID, WAIT, is_ready, job_hook};
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

#[tokio::test]
async fn a_retry_whose_claim_cannot_be_released_while_postgres_restarts_is_not_blocked_for_its_lease()
 {
    // GitLab's retry call fails three times, slowly enough (0.5 s, 1 s between attempts) for
    // the test to take PostgreSQL away before the herder gives its claim back.
    let h = Harness::start_with(Options {
        database_via_proxy: true,
        gitlab_retry: "{base_delay: 500ms, max_delay: 1s, max_attempts: 3}",
        ..Options::default()
    })
    .await;
    let database = h.database_proxy.as_ref().unwrap();
    let job = h.add_failed_job(902, "build x86_64", IMAGE_PULL_LOG);
    let retry_path = format!("/projects/{PROJECT_ID}/jobs/902/retry");
    h.gitlab.fail_next("POST", &retry_path, &[503, 503, 503]);
    h.publish_hook(&job_hook(&job, 0), "hook-902").await;

    // The first retry call is in: the claim is taken. PostgreSQL goes away until the three
    // calls have failed and the herder has tried twice to give the claim back.
    eventually_async("the first retry call", WAIT, || async {
        (!h.retry_calls(902).is_empty()).then_some(())
    })
    .await;
    database.cut();
    eventually_async("the three failed retry calls", WAIT, || async {
        (h.retry_calls(902).len() == 3).then_some(())
    })
    .await;
    let refused = database.refused();
    eventually_async("the herder to meet the outage twice more", WAIT, || async {
        (database.refused() >= refused + 2).then_some(())
    })
    .await;
    database.restore();

    // Well within the claim's lease (handler timeout 20 s + 60 s): the claim was given back
    // once PostgreSQL answered again, so the next delivery retries.
    let row = h.finished(902).await;
    assert_eq!(row.outcome.as_deref(), Some("retried"));
    assert_eq!(h.retry_calls(902), vec![503, 503, 503, 201]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_retry_claimed_by_a_herder_killed_mid_call_is_taken_over_at_once() {
    // The retry call fails slowly (0.5 s, then 1 s between attempts), so the herder can be
    // killed while it holds the claim.
    let mut h = Harness::start_with(Options {
        crashable: true,
        via_proxy: true,
        gitlab_retry: "{base_delay: 500ms, max_delay: 1s, max_attempts: 3}",
        ..Options::default()
    })
    .await;
    let job = h.add_failed_job(903, "build x86_64", IMAGE_PULL_LOG);
    h.gitlab.fail_next(
        "POST",
        &format!("/projects/{PROJECT_ID}/jobs/903/retry"),
        &[503],
    );
    h.publish_hook(&job_hook(&job, 0), "hook-903").await;
    eventually_async("the first retry call", WAIT, || async {
        (!h.retry_calls(903).is_empty()).then_some(())
    })
    .await;
    let claimed = h
        .decision_where(903, "the claim", |r| r.state == "retrying")
        .await;
    assert!(claimed.claimed_at.is_some());

    h.crash();
    h.restart().await;
    // Within WAIT (20 s), far less than the lease (handler timeout 20 s + 60 s): the dead
    // worker's claim went with its connection.
    let row = h.finished(903).await;
    assert_eq!(row.outcome.as_deref(), Some("retried"));
    assert_eq!(
        h.retry_calls(903),
        vec![503, 201],
        "retried once after the crash"
    );
}

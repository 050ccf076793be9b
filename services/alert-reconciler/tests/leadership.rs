//! What the leadership gauges show an on-call engineer: which replica leads, and incidents
//! left awaiting approval past their window while no replica leads (the alerts
//! AlertReconcilerNoLeader and AlertReconcilerIncidentsPastApprovalExpiry read them).

mod common;

use common::{Harness, Running, WAIT};
use sqlx::{Connection, PgConnection};
use steadfast_test_support::eventually_async;

/// Waits until the App's `/metrics` has every line of `lines`; returns the page.
async fn metrics_with(app: &Running, lines: &[&str]) -> String {
    eventually_async(&format!("metrics {lines:?}"), WAIT, || async {
        let text = app.metrics_text().await;
        lines
            .iter()
            .all(|line| text.lines().any(|l| l == *line))
            .then_some(text)
    })
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_standby_replica_shows_incidents_nobody_expires_until_a_leader_does() {
    let h = Harness::standard().await;
    let first = h.start().await;
    let (id, _) = h.analysed_incident(&first).await;
    metrics_with(
        &first,
        &[
            "steadfast_reconciler_leader 1",
            "steadfast_reconciler_incidents_past_approval_expiry 0",
        ],
    )
    .await;
    first.stop().await;

    // Nobody may lead: the test holds the leadership lock, as a stuck leader would.
    let mut holder = PgConnection::connect(&h.db.url).await.unwrap();
    let held: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock(hashtextextended($1, 0))")
        .bind(alert_reconciler::supervisor::lock_name(
            &h.config.namespace.to_string(),
        ))
        .fetch_one(&mut holder)
        .await
        .unwrap();
    assert!(held, "the stopped replica released the lock");
    // The approval window closes while no replica leads.
    sqlx::query(
        "UPDATE incidents SET approval_expires_at = now() - interval '1 minute' WHERE id = $1::uuid",
    )
    .bind(&id)
    .execute(&mut holder)
    .await
    .unwrap();

    let standby = h.start().await;
    metrics_with(
        &standby,
        &[
            "steadfast_reconciler_leader 0",
            "steadfast_reconciler_incidents_past_approval_expiry 1",
        ],
    )
    .await;
    let body = standby.incident(&id).await;
    assert_eq!(body["incident"]["state"], "awaiting_approval", "{body}");

    // The lock is free again: the replica leads and expires the incident at once.
    holder.close().await.unwrap();
    metrics_with(
        &standby,
        &[
            "steadfast_reconciler_leader 1",
            "steadfast_reconciler_incidents_past_approval_expiry 0",
        ],
    )
    .await;
    standby.wait_state(&id, "expired").await;
    standby.stop().await;
}

//! Durability: the spool takes over when the broker does not confirm, drains in order when it
//! is back, survives restarts and shares a database between replicas. Outages of this
//! receiver's own connection go through a fault proxy, so other tests are not disturbed; the
//! `outage_` test stops the real broker and runs last, alone (scripts/test.sh).

#[path = "../common/mod.rs"]
mod common;

mod outage;
mod spool;

use sqlx::PgPool;

/// The spool's rows in drain order: (event id, reason).
pub async fn spool_rows(pool: &PgPool) -> Vec<(String, String)> {
    sqlx::query_as("SELECT message_id, reason FROM webhook_spool ORDER BY id")
        .fetch_all(pool)
        .await
        .expect("read the spool")
}

/// Waits until the drainer has emptied the spool.
pub async fn wait_for_empty_spool(pool: &PgPool) {
    steadfast_test_support::eventually_async("an empty spool", common::WAIT, || async {
        spool_rows(pool).await.is_empty().then_some(())
    })
    .await;
}

/// `ev-<n>` for n in `range`, the ids a burst was posted with.
pub fn ids(range: std::ops::RangeInclusive<u32>) -> Vec<String> {
    range.map(|n| format!("ev-{n}")).collect()
}

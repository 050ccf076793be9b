//! The chat outbox. A report is enqueued in the transaction that decides it, with a dedupe
//! key per (report, sink), so replaying the decision cannot queue it twice; it is marked sent
//! right after the sink accepted it.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use sqlx::PgConnection;
use steadfast_telemetry::trace;
use uuid::Uuid;

use super::StoreError;

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct DeliveryRow {
    pub id: i64,
    pub incident_id: Uuid,
    pub sink: String,
    pub dedupe_key: String,
    pub report: Value,
    pub state: String,
    pub attempts: i32,
    pub next_attempt_at: DateTime<Utc>,
    pub last_error: Option<String>,
    pub remote_id: Option<String>,
    pub created_at: DateTime<Utc>,
    pub sent_at: Option<DateTime<Utc>>,
    /// The trace context of the span that queued the report (see [`enqueue`]).
    #[serde(skip_serializing)]
    pub traceparent: Option<String>,
}

const COLUMNS: &str = "id, incident_id, sink, dedupe_key, report, state, attempts, next_attempt_at, \
                       last_error, remote_id, created_at, sent_at, traceparent";

/// Queues `report` for `sink` unless a delivery with the same key exists. With spans
/// exported, the delivery records the current span's trace context (the run's, the
/// incident's), and sending it continues that trace.
pub async fn enqueue(
    conn: &mut PgConnection,
    incident: Uuid,
    sink: &str,
    dedupe_key: &str,
    report: &Value,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO deliveries (incident_id, sink, dedupe_key, report, state, traceparent) \
         VALUES ($1, $2, $3, $4, 'pending', $5) ON CONFLICT (dedupe_key) DO NOTHING",
    )
    .bind(incident)
    .bind(sink)
    .bind(dedupe_key)
    .bind(report)
    .bind(trace::current_traceparent().map(|t| t.to_string()))
    .execute(conn)
    .await?;
    Ok(())
}

/// Pending deliveries, oldest first (due or not: the sender keeps per-thread order).
pub async fn pending(conn: &mut PgConnection, limit: i64) -> Result<Vec<DeliveryRow>, StoreError> {
    Ok(
        sqlx::query_as::<_, DeliveryRow>(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM deliveries WHERE state = 'pending' ORDER BY id LIMIT $1"
        )))
        .bind(limit)
        .fetch_all(conn)
        .await?,
    )
}

pub async fn mark_sent(
    conn: &mut PgConnection,
    id: i64,
    remote_id: Option<&str>,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE deliveries SET state = 'sent', sent_at = now(), remote_id = $2, \
             attempts = attempts + 1, last_error = NULL WHERE id = $1",
    )
    .bind(id)
    .bind(remote_id)
    .execute(conn)
    .await?;
    Ok(())
}

/// A failed attempt: try again at `next`, or give up (`failed`) when `next` is `None`.
pub async fn mark_attempt_failed(
    conn: &mut PgConnection,
    id: i64,
    error: &str,
    next: Option<DateTime<Utc>>,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE deliveries SET attempts = attempts + 1, last_error = $2, \
             state = CASE WHEN $3::timestamptz IS NULL THEN 'failed' ELSE 'pending' END, \
             next_attempt_at = COALESCE($3, next_attempt_at) WHERE id = $1",
    )
    .bind(id)
    .bind(error)
    .bind(next)
    .execute(conn)
    .await?;
    Ok(())
}

/// The remote id of the incident's first sent delivery to `sink` (the thread to reply in).
pub async fn thread_of(
    conn: &mut PgConnection,
    incident: Uuid,
    sink: &str,
) -> Result<Option<String>, StoreError> {
    Ok(sqlx::query_scalar(
        "SELECT remote_id FROM deliveries WHERE incident_id = $1 AND sink = $2 AND state = 'sent' \
         AND remote_id IS NOT NULL ORDER BY id LIMIT 1",
    )
    .bind(incident)
    .bind(sink)
    .fetch_optional(conn)
    .await?)
}

pub async fn of_incident(
    conn: &mut PgConnection,
    incident: Uuid,
) -> Result<Vec<DeliveryRow>, StoreError> {
    Ok(
        sqlx::query_as::<_, DeliveryRow>(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM deliveries WHERE incident_id = $1 ORDER BY id"
        )))
        .bind(incident)
        .fetch_all(conn)
        .await?,
    )
}

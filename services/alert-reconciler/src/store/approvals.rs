//! Suggested actions and their approval. An approval is a row leaving `pending` exactly once —
//! `approved` or `rejected` by someone, or `expired`/`cancelled` with its incident — under a
//! row lock, so two clicks racing cannot both decide it.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use sqlx::PgConnection;
use steadfast_telemetry::trace;
use uuid::Uuid;

use super::StoreError;

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct ApprovalRow {
    pub id: Uuid,
    pub incident_id: Uuid,
    pub action: String,
    pub data: Value,
    pub suggested_by: Vec<String>,
    pub state: String,
    pub forced: bool,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub decided_at: Option<DateTime<Utc>>,
    pub decided_by: Option<String>,
    pub message_id: Option<String>,
    pub run_id: Option<Uuid>,
    /// Why it was rejected, when the rejecter said.
    pub reason: Option<String>,
    /// The trace context of the span that sent the card (see [`set_message`]).
    #[serde(skip_serializing)]
    pub traceparent: Option<String>,
}

const COLUMNS: &str = "id, incident_id, action, data, suggested_by, state, forced, created_at, \
                       expires_at, decided_at, decided_by, message_id, run_id, reason, traceparent";

/// A suggested action, pending approval until `expires_at`.
pub struct Suggestion<'a> {
    pub action: &'a str,
    pub data: &'a Value,
    pub suggested_by: &'a [String],
}

/// Records a suggestion (once per incident and action) and returns its approval id.
pub async fn suggest(
    conn: &mut PgConnection,
    incident: Uuid,
    suggestion: &Suggestion<'_>,
    expires_at: DateTime<Utc>,
) -> Result<Uuid, StoreError> {
    Ok(sqlx::query_scalar(
        "INSERT INTO approvals (id, incident_id, action, data, suggested_by, state, expires_at) \
         VALUES ($1, $2, $3, $4, $5, 'pending', $6) \
         ON CONFLICT (incident_id, action) DO UPDATE SET action = excluded.action RETURNING id",
    )
    .bind(Uuid::new_v4())
    .bind(incident)
    .bind(suggestion.action)
    .bind(suggestion.data)
    .bind(suggestion.suggested_by)
    .bind(expires_at)
    .fetch_one(conn)
    .await?)
}

/// Records an action run without a suggestion (`force`), already approved.
pub async fn insert_forced(
    conn: &mut PgConnection,
    incident: Uuid,
    action: &str,
    data: &Value,
    decided_by: &str,
) -> Result<ApprovalRow, StoreError> {
    Ok(sqlx::query_as::<_, ApprovalRow>(sqlx::AssertSqlSafe(format!(
        "INSERT INTO approvals (id, incident_id, action, data, state, forced, expires_at, decided_at, decided_by) \
         VALUES ($1, $2, $3, $4, 'approved', true, now(), now(), $5) RETURNING {COLUMNS}"
    )))
    .bind(Uuid::new_v4())
    .bind(incident)
    .bind(action)
    .bind(data)
    .bind(decided_by)
    .fetch_one(conn)
    .await?)
}

/// The approval, locked for the transaction.
pub async fn by_id_for_update(
    conn: &mut PgConnection,
    id: Uuid,
) -> Result<Option<ApprovalRow>, StoreError> {
    Ok(
        sqlx::query_as::<_, ApprovalRow>(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM approvals WHERE id = $1 FOR UPDATE"
        )))
        .bind(id)
        .fetch_optional(conn)
        .await?,
    )
}

/// The incident's approval of `action`, locked for the transaction.
pub async fn by_action_for_update(
    conn: &mut PgConnection,
    incident: Uuid,
    action: &str,
) -> Result<Option<ApprovalRow>, StoreError> {
    Ok(
        sqlx::query_as::<_, ApprovalRow>(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM approvals WHERE incident_id = $1 AND action = $2 FOR UPDATE"
        )))
        .bind(incident)
        .bind(action)
        .fetch_optional(conn)
        .await?,
    )
}

/// `pending → approved`, if still pending and not expired; false otherwise.
pub async fn approve(
    conn: &mut PgConnection,
    id: Uuid,
    decided_by: &str,
) -> Result<bool, StoreError> {
    Ok(sqlx::query(
        "UPDATE approvals SET state = 'approved', decided_at = now(), decided_by = $2 \
         WHERE id = $1 AND state = 'pending' AND expires_at > now()",
    )
    .bind(id)
    .bind(decided_by)
    .execute(conn)
    .await?
    .rows_affected()
        == 1)
}

/// `pending → rejected`, if still pending and not expired: the updated row, or `None`.
pub async fn reject(
    conn: &mut PgConnection,
    id: Uuid,
    decided_by: &str,
    reason: Option<&str>,
) -> Result<Option<ApprovalRow>, StoreError> {
    Ok(sqlx::query_as::<_, ApprovalRow>(sqlx::AssertSqlSafe(format!(
        "UPDATE approvals SET state = 'rejected', decided_at = now(), decided_by = $2, reason = $3 \
         WHERE id = $1 AND state = 'pending' AND expires_at > now() RETURNING {COLUMNS}"
    )))
    .bind(id)
    .bind(decided_by)
    .bind(reason)
    .fetch_optional(conn)
    .await?)
}

/// The approval that started action run `run`.
pub async fn by_run(conn: &mut PgConnection, run: Uuid) -> Result<Option<ApprovalRow>, StoreError> {
    Ok(
        sqlx::query_as::<_, ApprovalRow>(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM approvals WHERE run_id = $1"
        )))
        .bind(run)
        .fetch_optional(conn)
        .await?,
    )
}

pub async fn set_run(conn: &mut PgConnection, id: Uuid, run: Uuid) -> Result<(), StoreError> {
    sqlx::query("UPDATE approvals SET run_id = $2 WHERE id = $1")
        .bind(id)
        .bind(run)
        .execute(conn)
        .await?;
    Ok(())
}

/// Closes every pending approval of the incident with `state` (`expired` or `cancelled`).
pub async fn close_pending(
    conn: &mut PgConnection,
    incident: Uuid,
    state: &str,
) -> Result<Vec<String>, StoreError> {
    Ok(sqlx::query_scalar(
        "UPDATE approvals SET state = $2, decided_at = now() \
         WHERE incident_id = $1 AND state = 'pending' RETURNING action",
    )
    .bind(incident)
    .bind(state)
    .fetch_all(conn)
    .await?)
}

/// Remembers the chat message carrying the incident's approval buttons.
pub async fn set_message(
    conn: &mut PgConnection,
    incident: Uuid,
    message_id: &str,
) -> Result<(), StoreError> {
    // With spans exported, the current span is the report's: pressing a button of the card
    // continues its trace.
    sqlx::query(
        "UPDATE approvals SET message_id = $2, traceparent = $3 WHERE incident_id = $1 AND NOT forced",
    )
    .bind(incident)
    .bind(message_id)
    .bind(trace::current_traceparent().map(|t| t.to_string()))
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn of_incident(
    conn: &mut PgConnection,
    incident: Uuid,
) -> Result<Vec<ApprovalRow>, StoreError> {
    Ok(
        sqlx::query_as::<_, ApprovalRow>(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM approvals WHERE incident_id = $1 ORDER BY created_at, action"
        )))
        .bind(incident)
        .fetch_all(conn)
        .await?,
    )
}

//! Incidents, their alerts, and the ids of alert events already handled.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use sqlx::{PgConnection, Postgres, QueryBuilder};
use uuid::Uuid;

use super::StoreError;
use crate::alert::{AlertEvent, AlertStatus};
use crate::incident::IncidentState;

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct IncidentRow {
    pub id: Uuid,
    pub group_key: String,
    pub state: String,
    pub title: String,
    pub receiver: String,
    pub labels: Value,
    pub group_data: Value,
    pub opened_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub closed_at: Option<DateTime<Utc>>,
    pub approval_expires_at: Option<DateTime<Utc>>,
}

impl IncidentRow {
    pub fn state(&self) -> Result<IncidentState, StoreError> {
        IncidentState::parse(&self.state).ok_or_else(|| StoreError::Corrupt {
            what: "incident state",
            reason: self.state.clone(),
        })
    }
}

const COLUMNS: &str = "id, group_key, state, title, receiver, labels, group_data, opened_at, \
                       updated_at, closed_at, approval_expires_at";

/// Records that event `id` is being handled; false when it was handled before.
pub async fn claim_event(conn: &mut PgConnection, id: &str) -> Result<bool, StoreError> {
    let inserted =
        sqlx::query("INSERT INTO processed_events (event_id) VALUES ($1) ON CONFLICT DO NOTHING")
            .bind(id)
            .execute(conn)
            .await?
            .rows_affected();
    Ok(inserted == 1)
}

/// Forgets handled event ids older than `days` (Alertmanager does not repeat that late).
pub async fn prune_processed_events(conn: &mut PgConnection, days: i32) -> Result<u64, StoreError> {
    Ok(sqlx::query(
        "DELETE FROM processed_events WHERE processed_at < now() - make_interval(days => $1)",
    )
    .bind(days)
    .execute(conn)
    .await?
    .rows_affected())
}

/// The open incident of a group, locked for the transaction.
pub async fn open_for_group(
    conn: &mut PgConnection,
    group_key: &str,
) -> Result<Option<IncidentRow>, StoreError> {
    Ok(
        sqlx::query_as::<_, IncidentRow>(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM incidents WHERE group_key = $1 AND is_open FOR UPDATE"
        )))
        .bind(group_key)
        .fetch_optional(conn)
        .await?,
    )
}

/// Opens an incident in state `received`.
pub async fn insert(
    conn: &mut PgConnection,
    event: &AlertEvent,
) -> Result<IncidentRow, StoreError> {
    let title = match event.annotations.get("summary") {
        Some(summary) => format!("{}: {summary}", event.alertname()),
        None => event.alertname().to_owned(),
    };
    Ok(
        sqlx::query_as::<_, IncidentRow>(sqlx::AssertSqlSafe(format!(
            "INSERT INTO incidents (id, group_key, state, title, receiver, labels, group_data) \
         VALUES ($1, $2, 'received', $3, $4, $5, $6) RETURNING {COLUMNS}"
        )))
        .bind(Uuid::now_v7())
        .bind(&event.group_key)
        .bind(title)
        .bind(&event.receiver)
        .bind(serde_json::to_value(&event.labels).unwrap_or_default())
        .bind(event.group_data())
        .fetch_one(conn)
        .await?,
    )
}

pub async fn get(conn: &mut PgConnection, id: Uuid) -> Result<Option<IncidentRow>, StoreError> {
    Ok(
        sqlx::query_as::<_, IncidentRow>(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM incidents WHERE id = $1"
        )))
        .bind(id)
        .fetch_optional(conn)
        .await?,
    )
}

/// The incident, locked for the transaction.
pub async fn get_for_update(
    conn: &mut PgConnection,
    id: Uuid,
) -> Result<Option<IncidentRow>, StoreError> {
    Ok(
        sqlx::query_as::<_, IncidentRow>(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM incidents WHERE id = $1 FOR UPDATE"
        )))
        .bind(id)
        .fetch_optional(conn)
        .await?,
    )
}

/// Where a page of [`list`] starts: just after this incident in the list's order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::FromRow)]
pub struct Cursor {
    pub opened_at: DateTime<Utc>,
    pub id: Uuid,
}

/// The position of incident `id` in [`list`]'s order; `None` when there is no such incident.
pub async fn cursor(conn: &mut PgConnection, id: Uuid) -> Result<Option<Cursor>, StoreError> {
    Ok(
        sqlx::query_as::<_, Cursor>("SELECT opened_at, id FROM incidents WHERE id = $1")
            .bind(id)
            .fetch_optional(conn)
            .await?,
    )
}

/// Newest first (`opened_at`, then `id`, both descending: a total order, so pages neither
/// skip nor repeat incidents opened in the same instant), optionally of one state, after
/// `before`.
pub async fn list(
    conn: &mut PgConnection,
    state: Option<IncidentState>,
    before: Option<Cursor>,
    limit: i64,
) -> Result<Vec<IncidentRow>, StoreError> {
    let mut query =
        QueryBuilder::<Postgres>::new(format!("SELECT {COLUMNS} FROM incidents WHERE true"));
    // Only the conditions given are written, so each combination gets its own plan, served by
    // `incidents_newest` or `incidents_by_state_newest` (migration 0004).
    if let Some(state) = state {
        query.push(" AND state = ").push_bind(state.as_str());
    }
    if let Some(before) = before {
        query
            .push(" AND (opened_at, id) < (")
            .push_bind(before.opened_at)
            .push(", ")
            .push_bind(before.id)
            .push(")");
    }
    query
        .push(" ORDER BY opened_at DESC, id DESC LIMIT ")
        .push_bind(limit);
    Ok(query
        .build_query_as::<IncidentRow>()
        .fetch_all(conn)
        .await?)
}

/// Moves the incident to `to` if the state machine allows it from its current state; false
/// when it does not (someone else moved it first).
pub async fn transition(
    conn: &mut PgConnection,
    id: Uuid,
    to: IncidentState,
) -> Result<bool, StoreError> {
    let from = IncidentState::predecessors(to);
    let changed = sqlx::query(
        "UPDATE incidents SET state = $2, updated_at = now(), \
             closed_at = CASE WHEN $2 IN ('resolved', 'expired') THEN now() ELSE closed_at END \
         WHERE id = $1 AND state = ANY($3)",
    )
    .bind(id)
    .bind(to.as_str())
    .bind(&from)
    .execute(conn)
    .await?
    .rows_affected();
    Ok(changed == 1)
}

pub async fn set_approval_expiry(
    conn: &mut PgConnection,
    id: Uuid,
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    sqlx::query("UPDATE incidents SET approval_expires_at = $2 WHERE id = $1")
        .bind(id)
        .bind(at)
        .execute(conn)
        .await?;
    Ok(())
}

/// Incidents whose approval window is over while they wait for a decision, locked.
pub async fn past_approval_window(conn: &mut PgConnection) -> Result<Vec<Uuid>, StoreError> {
    Ok(sqlx::query_scalar::<_, Uuid>(
        "SELECT id FROM incidents WHERE state = 'awaiting_approval' AND approval_expires_at < now() \
         ORDER BY id LIMIT 100 FOR UPDATE SKIP LOCKED",
    )
    .fetch_all(conn)
    .await?)
}

/// How many incidents still await approval although their window closed (the leader's sweep
/// expires them; see [`crate::metrics::Metrics::incidents_past_approval_expiry`]).
pub async fn count_past_approval_window(conn: &mut PgConnection) -> Result<i64, StoreError> {
    Ok(sqlx::query_scalar::<_, i64>(
        "SELECT count(*) FROM incidents WHERE state = 'awaiting_approval' AND approval_expires_at < now()",
    )
    .fetch_one(conn)
    .await?)
}

/// `(state, count)` over every incident.
pub async fn count_by_state(conn: &mut PgConnection) -> Result<Vec<(String, i64)>, StoreError> {
    Ok(
        sqlx::query_as::<_, (String, i64)>("SELECT state, count(*) FROM incidents GROUP BY state")
            .fetch_all(conn)
            .await?,
    )
}

/// What an alert event changed on its incident.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlertChange {
    /// An alert the incident did not have.
    Added,
    /// The same alert in the same state again (a repeat notification).
    Repeated,
    /// A known alert changed status (firing ↔ resolved).
    StatusChanged,
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct AlertRow {
    pub fingerprint: String,
    pub status: String,
    pub starts_at: String,
    pub alert: Value,
    pub first_seen_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
    pub notifications: i32,
}

/// Records the alert on the incident (insert, or update status and content).
pub async fn upsert_alert(
    conn: &mut PgConnection,
    incident: Uuid,
    event: &AlertEvent,
) -> Result<AlertChange, StoreError> {
    let previous: Option<String> = sqlx::query_scalar(
        "SELECT status FROM incident_alerts WHERE incident_id = $1 AND fingerprint = $2 FOR UPDATE",
    )
    .bind(incident)
    .bind(&event.fingerprint)
    .fetch_optional(&mut *conn)
    .await?;
    sqlx::query(
        "INSERT INTO incident_alerts (incident_id, fingerprint, status, starts_at, alert) \
         VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (incident_id, fingerprint) DO UPDATE SET status = excluded.status, \
             starts_at = excluded.starts_at, alert = excluded.alert, last_seen_at = now(), \
             notifications = incident_alerts.notifications + 1",
    )
    .bind(incident)
    .bind(&event.fingerprint)
    .bind(event.status.as_str())
    .bind(&event.starts_at)
    .bind(Value::Object(event.alert.clone()))
    .execute(conn)
    .await?;
    Ok(match previous {
        None => AlertChange::Added,
        Some(status) if status == event.status.as_str() => AlertChange::Repeated,
        Some(_) => AlertChange::StatusChanged,
    })
}

/// How many of the incident's alerts still fire.
pub async fn firing_alerts(conn: &mut PgConnection, incident: Uuid) -> Result<i64, StoreError> {
    Ok(sqlx::query_scalar(
        "SELECT count(*) FROM incident_alerts WHERE incident_id = $1 AND status = $2",
    )
    .bind(incident)
    .bind(AlertStatus::Firing.as_str())
    .fetch_one(conn)
    .await?)
}

pub async fn alerts_of(
    conn: &mut PgConnection,
    incident: Uuid,
) -> Result<Vec<AlertRow>, StoreError> {
    Ok(sqlx::query_as::<_, AlertRow>(
        "SELECT fingerprint, status, starts_at, alert, first_seen_at, last_seen_at, notifications \
         FROM incident_alerts WHERE incident_id = $1 ORDER BY first_seen_at, fingerprint",
    )
    .bind(incident)
    .fetch_all(conn)
    .await?)
}

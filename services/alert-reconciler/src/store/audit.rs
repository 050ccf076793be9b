//! The audit log: append-only, one row per transition or decision, written in the same
//! transaction as the change it describes.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use sqlx::PgConnection;
use uuid::Uuid;

use super::StoreError;

/// The reconciler itself, as an actor.
pub const SYSTEM: &str = "alert-reconciler";
/// Alertmanager (through the alert queue), as an actor.
pub const ALERTMANAGER: &str = "alertmanager";

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct AuditEntry {
    pub at: DateTime<Utc>,
    pub actor: String,
    pub action: String,
    pub detail: Value,
}

/// Appends one entry.
pub async fn record(
    conn: &mut PgConnection,
    incident: Uuid,
    actor: &str,
    action: &str,
    detail: Value,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO audit_log (incident_id, actor, action, detail) VALUES ($1, $2, $3, $4)",
    )
    .bind(incident)
    .bind(actor)
    .bind(action)
    .bind(detail)
    .execute(conn)
    .await?;
    Ok(())
}

/// An incident's entries, oldest first.
pub async fn of_incident(
    conn: &mut PgConnection,
    incident: Uuid,
) -> Result<Vec<AuditEntry>, StoreError> {
    Ok(sqlx::query_as::<_, AuditEntry>(
        "SELECT at, actor, action, detail FROM audit_log WHERE incident_id = $1 ORDER BY id",
    )
    .bind(incident)
    .fetch_all(conn)
    .await?)
}

//! PostgreSQL: the reconciler's memory. Every state change is a transaction, so a reconciler
//! killed at any point restarts from a consistent picture.
//!
//! * [`incidents`] — incidents and their alerts, guarded state transitions, processed events.
//! * [`runs`] — runs and their recipes (planned, launched, answered).
//! * [`approvals`] — suggested actions and their single-use approval.
//! * [`audit`] — the append-only "who did what, when".
//! * [`deliveries`] — the chat outbox.
//!
//! Work for the run supervisor is announced with `NOTIFY alert_reconciler` inside the same
//! transaction ([`notify`]), so it is seen only once committed, by whichever replica leads.
//! Queries are runtime-checked (`sqlx::query`), so builds never need a database.

pub mod approvals;
pub mod audit;
pub mod deliveries;
pub mod incidents;
pub mod runs;

use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

/// The `LISTEN`/`NOTIFY` channel of the supervisor.
pub const WAKE_CHANNEL: &str = "alert_reconciler";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("database migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("stored {what} is unreadable: {reason}")]
    Corrupt { what: &'static str, reason: String },
}

/// Connects and runs the migrations.
pub async fn connect(url: &str) -> Result<PgPool, StoreError> {
    let options: PgConnectOptions = url.parse()?;
    let pool = PgPoolOptions::new()
        .max_connections(16)
        .acquire_timeout(Duration::from_secs(10))
        .connect_with(options)
        .await?;
    sqlx::migrate!().run(&pool).await?;
    Ok(pool)
}

/// What the supervisor is woken for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Wake {
    /// A run was planned (or an action approved): drive it.
    Run(Uuid),
    /// A run was cancelled (its incident resolved): stop its recipes.
    Cancel(Uuid),
    /// Reports were queued in the outbox.
    Deliveries,
}

impl Wake {
    pub fn encode(&self) -> String {
        match self {
            Self::Run(id) => format!("run:{id}"),
            Self::Cancel(id) => format!("cancel:{id}"),
            Self::Deliveries => "deliveries".into(),
        }
    }

    pub fn decode(payload: &str) -> Option<Self> {
        if payload == "deliveries" {
            return Some(Self::Deliveries);
        }
        let (kind, id) = payload.split_once(':')?;
        let id = id.parse().ok()?;
        match kind {
            "run" => Some(Self::Run(id)),
            "cancel" => Some(Self::Cancel(id)),
            _ => None,
        }
    }
}

/// Announces work; delivered to listeners when the surrounding transaction commits.
pub async fn notify(conn: &mut PgConnection, wake: &Wake) -> Result<(), StoreError> {
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(WAKE_CHANNEL)
        .bind(wake.encode())
        .execute(conn)
        .await?;
    Ok(())
}

/// Serialises writers of one alert group for the rest of the transaction.
pub async fn lock_group(conn: &mut PgConnection, group_key: &str) -> Result<(), StoreError> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
        .bind(group_key)
        .execute(conn)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wake_payloads_round_trip() {
        let id = Uuid::new_v4();
        for wake in [Wake::Run(id), Wake::Cancel(id), Wake::Deliveries] {
            assert_eq!(Wake::decode(&wake.encode()), Some(wake));
        }
        assert_eq!(Wake::decode("run:nope"), None);
        assert_eq!(Wake::decode("other"), None);
    }
}

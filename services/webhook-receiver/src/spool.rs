//! The spool: a PostgreSQL outbox for events the broker did not confirm in time.
//!
//! Rows are appended in arrival order (`id`) and drained oldest first. A drain batch runs in
//! one transaction that first takes a transaction-level advisory lock, so only one replica
//! drains at a time — `SKIP LOCKED` would let two replicas publish different batches
//! concurrently and lose the order. The lock goes away with the transaction, also when a
//! replica dies mid-batch. Rows are deleted only after the broker confirmed them.

use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::types::Json;
use sqlx::{FromRow, PgPool, Postgres, Transaction};
use steadfast_events::{AmqpMetadata, CONTENT_TYPE};

use crate::event::OutgoingEvent;

/// Key of the advisory lock that serialises draining ("spool" in ASCII). Public so an
/// operator (or a test) can see or take it: `SELECT pg_advisory_xact_lock(495807590252)`.
pub const DRAIN_LOCK: i64 = 0x0073_706f_6f6c;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!();

#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migrations: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("no answer from the database within {0:?}")]
    Timeout(Duration),
}

/// Why an event went to the spool; a label of `webhook_receiver_events_spooled_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpoolReason {
    /// The broker connection was down when the request arrived.
    BrokerDown,
    /// The broker did not confirm in time (or refused) the publish.
    BrokerError,
    /// Older events were still waiting in the spool; this one must not overtake them.
    BehindSpool,
}

impl SpoolReason {
    pub const ALL: [Self; 3] = [Self::BrokerDown, Self::BrokerError, Self::BehindSpool];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::BrokerDown => "broker_down",
            Self::BrokerError => "broker_error",
            Self::BehindSpool => "behind_spool",
        }
    }
}

/// Depth and age of the oldest row.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SpoolStats {
    pub depth: i64,
    pub oldest_age: Option<Duration>,
}

/// A spooled event read back for republishing.
#[derive(Debug, Clone)]
pub struct SpooledEvent {
    pub id: i64,
    pub attempts: i32,
    pub event: OutgoingEvent,
}

#[derive(FromRow)]
struct SpoolRow {
    id: i64,
    message_id: String,
    exchange: String,
    routing_key: String,
    event_type: String,
    app_id: String,
    event_time: Option<i64>,
    headers: Json<Vec<(String, String)>>,
    body: Vec<u8>,
    source: String,
    attempts: i32,
}

impl From<SpoolRow> for SpooledEvent {
    fn from(row: SpoolRow) -> Self {
        Self {
            id: row.id,
            attempts: row.attempts,
            event: OutgoingEvent {
                source: row.source,
                exchange: row.exchange,
                routing_key: row.routing_key,
                body: row.body,
                meta: AmqpMetadata {
                    message_id: row.message_id,
                    kind: row.event_type,
                    timestamp: row.event_time.and_then(|t| u64::try_from(t).ok()),
                    app_id: row.app_id,
                    content_type: CONTENT_TYPE,
                    persistent: true,
                    headers: row.headers.0,
                },
            },
        }
    }
}

/// The spool table behind a small connection pool.
#[derive(Clone)]
pub struct Spool {
    pool: PgPool,
    timeout: Duration,
}

impl Spool {
    /// A pool that connects on first use, so the receiver starts (and serves through the
    /// broker) while PostgreSQL is down. `timeout` bounds waiting for a connection.
    pub fn connect_lazy(url: &str, timeout: Duration) -> Result<Self, SpoolError> {
        let options: PgConnectOptions = url.parse()?;
        let pool = PgPoolOptions::new()
            .max_connections(8)
            .acquire_timeout(timeout)
            .connect_lazy_with(options);
        Ok(Self { pool, timeout })
    }

    /// Applies the migrations in `migrations/` (idempotent).
    pub async fn migrate(&self) -> Result<(), SpoolError> {
        self.bounded(async { MIGRATOR.run(&self.pool).await.map_err(SpoolError::from) })
            .await
    }

    /// Appends `events` in order, in one transaction: all or none are spooled.
    pub async fn append(
        &self,
        events: &[&OutgoingEvent],
        reason: SpoolReason,
    ) -> Result<(), SpoolError> {
        self.bounded(async {
            let mut tx = self.pool.begin().await?;
            for event in events {
                sqlx::query(
                    "INSERT INTO webhook_spool \
                     (message_id, exchange, routing_key, event_type, app_id, event_time, headers, body, source, reason) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                )
                .bind(&event.meta.message_id)
                .bind(&event.exchange)
                .bind(&event.routing_key)
                .bind(&event.meta.kind)
                .bind(&event.meta.app_id)
                .bind(event.meta.timestamp.and_then(|t| i64::try_from(t).ok()))
                .bind(Json(&event.meta.headers))
                .bind(&event.body)
                .bind(&event.source)
                .bind(reason.as_str())
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
            Ok(())
        })
        .await
    }

    pub async fn stats(&self) -> Result<SpoolStats, SpoolError> {
        self.bounded(async {
            let (depth, oldest_seconds): (i64, Option<f64>) = sqlx::query_as(
                "SELECT count(*), EXTRACT(EPOCH FROM now() - min(spooled_at))::float8 FROM webhook_spool",
            )
            .fetch_one(&self.pool)
            .await?;
            Ok(SpoolStats {
                depth,
                oldest_age: oldest_seconds.map(|s| Duration::from_secs_f64(s.max(0.0))),
            })
        })
        .await
    }

    pub async fn is_empty(&self) -> Result<bool, SpoolError> {
        self.bounded(async {
            let (exists,): (bool,) = sqlx::query_as("SELECT EXISTS (SELECT 1 FROM webhook_spool)")
                .fetch_one(&self.pool)
                .await?;
            Ok(!exists)
        })
        .await
    }

    /// Opens a drain batch of up to `limit` of the oldest events, or `None` when another
    /// replica is draining.
    pub async fn begin_drain(&self, limit: u32) -> Result<Option<DrainBatch>, SpoolError> {
        let mut tx = self.bounded(async { Ok(self.pool.begin().await?) }).await?;
        let (locked,): (bool,) = sqlx::query_as("SELECT pg_try_advisory_xact_lock($1)")
            .bind(DRAIN_LOCK)
            .fetch_one(&mut *tx)
            .await?;
        if !locked {
            tx.rollback().await?;
            return Ok(None);
        }
        let rows: Vec<SpoolRow> = sqlx::query_as(
            "SELECT id, message_id, exchange, routing_key, event_type, app_id, event_time, \
             headers, body, source, attempts FROM webhook_spool ORDER BY id LIMIT $1",
        )
        .bind(i64::from(limit))
        .fetch_all(&mut *tx)
        .await?;
        Ok(Some(DrainBatch {
            tx,
            events: rows.into_iter().map(SpooledEvent::from).collect(),
        }))
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }

    async fn bounded<T>(
        &self,
        work: impl Future<Output = Result<T, SpoolError>>,
    ) -> Result<T, SpoolError> {
        tokio::time::timeout(self.timeout, work)
            .await
            .unwrap_or(Err(SpoolError::Timeout(self.timeout)))
    }
}

/// The oldest spooled events, held under the drain lock until [`DrainBatch::finish`].
pub struct DrainBatch {
    tx: Transaction<'static, Postgres>,
    pub events: Vec<SpooledEvent>,
}

impl DrainBatch {
    /// Deletes the rows `confirmed` (the broker holds them now), records `failed` (the row the
    /// batch stopped at, and why) and releases the lock.
    pub async fn finish(
        mut self,
        confirmed: &[i64],
        failed: Option<(i64, String)>,
    ) -> Result<(), SpoolError> {
        if !confirmed.is_empty() {
            sqlx::query("DELETE FROM webhook_spool WHERE id = ANY($1)")
                .bind(confirmed)
                .execute(&mut *self.tx)
                .await?;
        }
        if let Some((id, error)) = failed {
            sqlx::query(
                "UPDATE webhook_spool SET attempts = attempts + 1, last_error = $2 WHERE id = $1",
            )
            .bind(id)
            .bind(error)
            .execute(&mut *self.tx)
            .await?;
        }
        self.tx.commit().await?;
        Ok(())
    }
}

//! The ledger in PostgreSQL: one row per decision (unique per instance + job id), the outbox
//! of notifications not yet published, and the pause switch (with who set it, and when).
//!
//! The row's `state` makes every step idempotent under at-least-once delivery:
//! * `new` — decided; for a retry, the delayed retry message may not be queued yet (a
//!   redelivered hook queues it again);
//! * `scheduled` — the delayed retry is queued;
//! * `retrying` — a worker claimed the retry and is calling GitLab. It holds a PostgreSQL
//!   session lock on the decision for as long as it works on it ([`ClaimLock`]): a copy of the
//!   retry message arriving meanwhile waits; once the worker is gone (finished, or died — the
//!   server drops the lock with its connection) the next delivery takes over at once. Claims
//!   of earlier versions, without the lock, are taken over after a lease (`claimed_at`);
//! * `done` — finished; `outcome` says how. Nothing touches a `done` row again.
//!
//! A decision and its notification are written in one transaction (transactional outbox), so
//! a notification is never lost between the database and the broker.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::postgres::{PgConnection, PgPool, PgPoolOptions};
use sqlx::types::Json;
use sqlx::{Connection, FromRow, Postgres, QueryBuilder, Transaction};

use crate::decide::Decision;
use crate::hook::Job;

#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("database migrations: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

/// One decision as stored.
#[derive(Debug, Clone, FromRow, Serialize, PartialEq)]
pub struct DecisionRow {
    pub id: i64,
    pub instance: String,
    pub job_id: i64,
    pub project_id: i64,
    pub project_path: String,
    pub pipeline_id: i64,
    pub git_ref: String,
    pub job_name: String,
    pub job_stage: String,
    pub job_url: String,
    pub failure_reason: Option<String>,
    pub event_id: String,
    pub matcher: Option<String>,
    pub action: String,
    pub reason: String,
    pub attempt: i32,
    pub retry_limit: Option<i32>,
    pub delay_ms: Option<i64>,
    pub state: String,
    pub outcome: Option<String>,
    pub new_job_id: Option<i64>,
    pub error: Option<String>,
    pub log_line: Option<String>,
    pub decided_at: DateTime<Utc>,
    pub retry_due_at: Option<DateTime<Utc>>,
    pub claimed_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
}

impl DecisionRow {
    pub fn delay(&self) -> Option<Duration> {
        self.delay_ms
            .and_then(|ms| u64::try_from(ms).ok())
            .map(Duration::from_millis)
    }
}

/// A notification to publish: the CloudEvent as JSON, and the chat text if any.
#[derive(Debug, Clone)]
pub struct Notification {
    pub event_id: String,
    pub event: serde_json::Value,
    pub chat_text: Option<String>,
}

/// A notification waiting in the outbox.
#[derive(Debug, Clone, FromRow)]
pub struct OutboxItem {
    pub id: i64,
    pub event_id: String,
    pub payload: Json<serde_json::Value>,
    pub chat_text: Option<String>,
    pub attempts: i32,
}

/// What happened when a worker tried to claim a scheduled retry.
#[derive(Debug)]
pub enum Claim {
    /// Ours to perform, for as long as the lock is held.
    Claimed(DecisionRow, ClaimLock),
    /// Another worker holds it (alive, or an earlier version's within its lease).
    Busy,
    /// Already finished.
    Done(DecisionRow),
    /// No such decision.
    Missing,
}

/// The session lock behind a claim: a connection of its own holding `pg_advisory_lock` on the
/// decision id. Dropping it closes the connection, which releases the lock too; [`release`]
/// does so politely.
///
/// [`release`]: ClaimLock::release
pub struct ClaimLock {
    connection: PgConnection,
}

impl ClaimLock {
    /// Ends the claim's lock (after the row was finished or given back).
    pub async fn release(self) {
        // Closing the session releases every lock it holds; no unlock round trip needed.
        let _ = self.connection.close().await;
    }
}

impl std::fmt::Debug for ClaimLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClaimLock")
    }
}

/// The pause switch.
#[derive(Debug, Clone, FromRow, Serialize, PartialEq)]
pub struct PauseState {
    pub paused: bool,
    pub reason: Option<String>,
    /// Who set this state (`api` when the caller named nobody); `None` for a state set before
    /// the herder recorded it.
    #[sqlx(rename = "changed_by")]
    pub by: Option<String>,
    /// When this state was set.
    #[sqlx(rename = "changed_at")]
    pub since: DateTime<Utc>,
}

/// Which decisions to list: each given field must match exactly; `before` is a decision id
/// (paging: only older decisions).
#[derive(Debug, Clone, Default)]
pub struct DecisionFilter {
    pub instance: Option<String>,
    pub project_path: Option<String>,
    pub matcher: Option<String>,
    pub action: Option<String>,
    pub state: Option<String>,
    pub before: Option<i64>,
}

/// How a claimed retry ended.
#[derive(Debug, Clone)]
pub struct Finish<'a> {
    pub action: &'a str,
    pub outcome: &'a str,
    pub reason: &'a str,
    pub new_job_id: Option<u64>,
    pub error: Option<&'a str>,
}

#[derive(Clone)]
pub struct Ledger {
    pool: PgPool,
}

fn id(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

impl Ledger {
    /// Connects (waiting up to `wait` for the server) and runs the migrations.
    pub async fn connect(url: &str, wait: Duration) -> Result<Self, LedgerError> {
        let options = PgPoolOptions::new()
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(5));
        let deadline = tokio::time::Instant::now() + wait;
        let pool = loop {
            match options.clone().connect(url).await {
                Ok(pool) => break pool,
                Err(error) if tokio::time::Instant::now() < deadline => {
                    tracing::warn!(%error, "PostgreSQL not reachable yet; retrying");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                Err(error) => return Err(error.into()),
            }
        };
        sqlx::migrate!().run(&pool).await?;
        Ok(Self { pool })
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    pub async fn ping(&self) -> Result<(), LedgerError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    pub async fn find(
        &self,
        instance: &str,
        job_id: u64,
    ) -> Result<Option<DecisionRow>, LedgerError> {
        Ok(sqlx::query_as::<_, DecisionRow>(
            "SELECT * FROM decisions WHERE instance = $1 AND job_id = $2",
        )
        .bind(instance)
        .bind(id(job_id))
        .fetch_optional(&self.pool)
        .await?)
    }

    pub async fn get(&self, decision_id: i64) -> Result<Option<DecisionRow>, LedgerError> {
        Ok(
            sqlx::query_as::<_, DecisionRow>("SELECT * FROM decisions WHERE id = $1")
                .bind(decision_id)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    /// Records a decision with its notification. `None` when the job already has a decision
    /// (a redelivered or concurrent duplicate): nothing is written.
    pub async fn record(
        &self,
        job: &Job,
        event_id: &str,
        decision: &Decision,
        notification: Option<&Notification>,
    ) -> Result<Option<DecisionRow>, LedgerError> {
        let mut tx = self.pool.begin().await?;
        let (state, outcome) = match decision.immediate_outcome() {
            Some(outcome) => ("done", Some(outcome)),
            None => ("new", None),
        };
        let row = sqlx::query_as::<_, DecisionRow>(
            "INSERT INTO decisions (instance, job_id, project_id, project_path, pipeline_id, git_ref, \
             job_name, job_stage, job_url, failure_reason, event_id, matcher, action, reason, attempt, \
             retry_limit, delay_ms, state, outcome, log_line, finished_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, \
             CASE WHEN $18 = 'done' THEN now() END) \
             ON CONFLICT (instance, job_id) DO NOTHING RETURNING *",
        )
        .bind(&job.instance)
        .bind(id(job.job_id))
        .bind(id(job.project_id))
        .bind(&job.project_path)
        .bind(id(job.pipeline_id))
        .bind(&job.git_ref)
        .bind(&job.name)
        .bind(&job.stage)
        .bind(&job.web_url)
        .bind(&job.failure_reason)
        .bind(event_id)
        .bind(&decision.matcher)
        .bind(decision.action.as_str())
        .bind(&decision.reason)
        .bind(i32::try_from(decision.attempt).unwrap_or(i32::MAX))
        .bind(decision.retry_limit.map(|l| i32::try_from(l).unwrap_or(i32::MAX)))
        .bind(decision.delay.map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX)))
        .bind(state)
        .bind(outcome)
        .bind(&decision.log_line)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            tx.rollback().await?;
            return Ok(None);
        };
        if let Some(notification) = notification {
            enqueue(&mut tx, notification).await?;
        }
        tx.commit().await?;
        Ok(Some(row))
    }

    /// The delayed retry message is queued.
    pub async fn mark_scheduled(
        &self,
        decision_id: i64,
        delay: Duration,
    ) -> Result<(), LedgerError> {
        sqlx::query(
            "UPDATE decisions SET state = 'scheduled', retry_due_at = now() + make_interval(secs => $2), \
             updated_at = now() WHERE id = $1 AND state = 'new'",
        )
        .bind(decision_id)
        .bind(delay.as_secs_f64())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Claims a due retry for this worker: first the decision's session lock (held by a live
    /// worker → busy), then the row. A `retrying` row whose lock nobody holds was claimed by a
    /// worker that died: taken over. An earlier version's claim (no lock) is taken over once
    /// older than `lease`.
    pub async fn claim(&self, decision_id: i64, lease: Duration) -> Result<Claim, LedgerError> {
        let mut connection = PgConnection::connect_with(&self.pool.connect_options()).await?;
        let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
            .bind(decision_id)
            .fetch_one(&mut connection)
            .await?;
        if !locked {
            let _ = connection.close().await;
            return Ok(Claim::Busy);
        }
        let claimed = sqlx::query_as::<_, DecisionRow>(
            "UPDATE decisions SET state = 'retrying', claimed_at = now(), claim_locked = true, \
                 updated_at = now() \
             WHERE id = $1 AND (state IN ('new', 'scheduled') \
               OR (state = 'retrying' AND (claim_locked \
                   OR claimed_at < now() - make_interval(secs => $2)))) \
             RETURNING *",
        )
        .bind(decision_id)
        .bind(lease.as_secs_f64())
        .fetch_optional(&self.pool)
        .await;
        let claimed = match claimed {
            Ok(claimed) => claimed,
            Err(error) => {
                let _ = connection.close().await;
                return Err(error.into());
            }
        };
        if let Some(row) = claimed {
            return Ok(Claim::Claimed(row, ClaimLock { connection }));
        }
        let _ = connection.close().await;
        Ok(match self.get(decision_id).await? {
            None => Claim::Missing,
            Some(row) if row.state == "done" => Claim::Done(row),
            Some(_) => Claim::Busy,
        })
    }

    /// Gives a claimed retry back (a transient failure): the next delivery claims it again.
    pub async fn release(&self, decision_id: i64, error: &str) -> Result<(), LedgerError> {
        sqlx::query(
            "UPDATE decisions SET state = 'scheduled', claimed_at = NULL, error = $2, updated_at = now() \
             WHERE id = $1 AND state = 'retrying'",
        )
        .bind(decision_id)
        .bind(error)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Finishes a claimed retry and enqueues its notification, in one transaction. Returns
    /// false if the claim was lost (another worker took over after the lease).
    pub async fn finish(
        &self,
        decision_id: i64,
        finish: &Finish<'_>,
        notification: Option<&Notification>,
    ) -> Result<bool, LedgerError> {
        let mut tx = self.pool.begin().await?;
        let updated = sqlx::query(
            "UPDATE decisions SET state = 'done', action = $2, outcome = $3, reason = $4, \
             new_job_id = $5, error = $6, finished_at = now(), updated_at = now() \
             WHERE id = $1 AND state = 'retrying'",
        )
        .bind(decision_id)
        .bind(finish.action)
        .bind(finish.outcome)
        .bind(finish.reason)
        .bind(finish.new_job_id.map(id))
        .bind(finish.error)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if updated == 0 {
            tx.rollback().await?;
            return Ok(false);
        }
        if let Some(notification) = notification {
            enqueue(&mut tx, notification).await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    /// Up to `limit` decisions matching `filter`, newest first. Ordered by id (not
    /// `decided_at`) so that paging with `before` neither skips nor repeats a decision.
    pub async fn list(
        &self,
        filter: &DecisionFilter,
        limit: i64,
    ) -> Result<Vec<DecisionRow>, LedgerError> {
        let mut query = QueryBuilder::<Postgres>::new("SELECT * FROM decisions WHERE true");
        let exact = [
            ("instance", &filter.instance),
            ("project_path", &filter.project_path),
            ("matcher", &filter.matcher),
            ("action", &filter.action),
            ("state", &filter.state),
        ];
        // Only the filters given become conditions, so PostgreSQL can plan each combination.
        for (column, value) in exact {
            if let Some(value) = value {
                query
                    .push(format_args!(" AND {column} = "))
                    .push_bind(value);
            }
        }
        if let Some(before) = filter.before {
            query.push(" AND id < ").push_bind(before);
        }
        query.push(" ORDER BY id DESC LIMIT ").push_bind(limit);
        Ok(query
            .build_query_as::<DecisionRow>()
            .fetch_all(&self.pool)
            .await?)
    }

    /// The decisions about one job's lineage, oldest first, `decision` included: a retried
    /// decision's `new_job_id` is the job of the next decision on the same instance.
    ///
    /// Id order is lineage order: a retry's decision is recorded before the retry happens, so
    /// before the new job can fail and be decided about. `UNION` (not `UNION ALL`) ends the
    /// walk should the links ever form a cycle.
    pub async fn lineage(&self, decision: &DecisionRow) -> Result<Vec<DecisionRow>, LedgerError> {
        Ok(sqlx::query_as::<_, DecisionRow>(
            "WITH RECURSIVE \
               earlier (id, instance, job_id) AS ( \
                 SELECT id, instance, job_id FROM decisions WHERE id = $1 \
                 UNION \
                 SELECT d.id, d.instance, d.job_id FROM decisions d \
                   JOIN earlier e ON d.instance = e.instance AND d.new_job_id = e.job_id), \
               later (id, instance, new_job_id) AS ( \
                 SELECT id, instance, new_job_id FROM decisions WHERE id = $1 \
                 UNION \
                 SELECT d.id, d.instance, d.new_job_id FROM decisions d \
                   JOIN later l ON d.instance = l.instance AND d.job_id = l.new_job_id) \
             SELECT * FROM decisions \
             WHERE id IN (SELECT id FROM earlier UNION SELECT id FROM later) ORDER BY id",
        )
        .bind(decision.id)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Locks up to `limit` outbox items (skipping those another replica holds) in a
    /// transaction; delete what was published with [`Ledger::outbox_done`], then commit.
    pub async fn outbox_batch(
        &self,
        limit: i64,
    ) -> Result<(Transaction<'static, Postgres>, Vec<OutboxItem>), LedgerError> {
        let mut tx = self.pool.begin().await?;
        let items = sqlx::query_as::<_, OutboxItem>(
            "SELECT id, event_id, payload, chat_text, attempts FROM outbox ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED",
        )
        .bind(limit)
        .fetch_all(&mut *tx)
        .await?;
        Ok((tx, items))
    }

    pub async fn outbox_done(
        tx: &mut Transaction<'static, Postgres>,
        item: i64,
    ) -> Result<(), LedgerError> {
        sqlx::query("DELETE FROM outbox WHERE id = $1")
            .bind(item)
            .execute(&mut **tx)
            .await?;
        Ok(())
    }

    pub async fn outbox_failed(
        tx: &mut Transaction<'static, Postgres>,
        item: i64,
        error: &str,
    ) -> Result<(), LedgerError> {
        sqlx::query("UPDATE outbox SET attempts = attempts + 1, last_error = $2 WHERE id = $1")
            .bind(item)
            .bind(error)
            .execute(&mut **tx)
            .await?;
        Ok(())
    }

    pub async fn outbox_len(&self) -> Result<i64, LedgerError> {
        Ok(sqlx::query_scalar::<_, i64>("SELECT count(*) FROM outbox")
            .fetch_one(&self.pool)
            .await?)
    }

    pub async fn pause_state(&self) -> Result<PauseState, LedgerError> {
        Ok(sqlx::query_as::<_, PauseState>(
            "SELECT paused, reason, changed_by, changed_at FROM pause",
        )
        .fetch_one(&self.pool)
        .await?)
    }

    /// Sets the switch; `by` names who did (see [`PauseState::by`]).
    pub async fn set_pause(
        &self,
        paused: bool,
        reason: Option<&str>,
        by: &str,
    ) -> Result<PauseState, LedgerError> {
        Ok(sqlx::query_as::<_, PauseState>(
            "UPDATE pause SET paused = $1, reason = $2, changed_by = $3, changed_at = now() \
             RETURNING paused, reason, changed_by, changed_at",
        )
        .bind(paused)
        .bind(reason)
        .bind(by)
        .fetch_one(&self.pool)
        .await?)
    }
}

async fn enqueue(
    tx: &mut Transaction<'_, Postgres>,
    notification: &Notification,
) -> Result<(), LedgerError> {
    sqlx::query(
        "INSERT INTO outbox (event_id, payload, chat_text) VALUES ($1, $2, $3) ON CONFLICT (event_id) DO NOTHING",
    )
    .bind(&notification.event_id)
    .bind(Json(&notification.event))
    .bind(&notification.chat_text)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

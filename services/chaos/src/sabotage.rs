//! Sabotage: breaking an invariant on purpose, from outside the services, so a run proves each
//! invariant can fail and names the ids it is about (issue 14: "each invariant is real").
//! `--sabotage <kind,...>` (or `all`); a run with sabotage must end in FAIL.
//!
//! | kind | what it does | the invariant that must fail |
//! |---|---|---|
//! | `drop-events` | unbinds the herder's jobs queue from `<ns>.webhooks` for a while: events the receivers accepted reach the probe but never the herder | (a), at the consumer: the herder's ledger lacks the jobs |
//! | `drop-retries` | purges the herder's delayed-retry queues repeatedly for a while: retries it scheduled never happen | (b): transient jobs never retried |
//! | `drop-reports` | a trigger in the reconciler's database deletes the first analyses written to its chat outbox (`deliveries`) in the transaction that writes them: the report never leaves | (c): incidents without an analysis in chat |
//! | `stop-adapter` | stops the adapter for good at 80 % of the load (and cancels every fault scheduled after it, whose recovery would wait for the adapter): clusters changed in the last ~20 s stay unreconciled | (d), and (e) for the adapter not ready |
//! | `unplanned-poison` | publishes a poison message not registered as intentional | (e): an unexpected parked id |
//!
//! The times are fractions of `--duration`, so a 45 s run fits all of them.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use clap::ValueEnum;
use serde::Serialize;
use serde_json::{Value, json};
use sqlx::Connection;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::infra::{InfraError, Management, QueueInfo, segment};
use crate::load::Clock;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, ValueEnum, Serialize, PartialOrd, Ord)]
#[serde(rename_all = "kebab-case")]
pub enum SabotageKind {
    /// Events the receivers accepted never reach the pipeline-herder (breaks a).
    DropEvents,
    /// Scheduled retries are purged before they are due (breaks b).
    DropRetries,
    /// Analyses are deleted from the reconciler's chat outbox before they are sent (breaks c).
    DropReports,
    /// The adapter is stopped for good mid-run (breaks d).
    StopAdapter,
    /// A poison message nobody registered (breaks e).
    UnplannedPoison,
    /// Every kind above.
    All,
}

impl SabotageKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::DropEvents => "drop-events",
            Self::DropRetries => "drop-retries",
            Self::DropReports => "drop-reports",
            Self::StopAdapter => "stop-adapter",
            Self::UnplannedPoison => "unplanned-poison",
            Self::All => "all",
        }
    }

    /// When it strikes, as a fraction of the load's duration.
    fn at(self) -> f64 {
        match self {
            Self::DropReports | Self::All => 0.0,
            Self::DropEvents => 0.25,
            Self::DropRetries => 0.4,
            Self::UnplannedPoison => 0.5,
            // Late: every fault after it is cancelled (a fault's recovery waits for the whole
            // stack to be ready, which the stopped adapter never is again).
            Self::StopAdapter => 0.8,
        }
    }
}

/// The kinds asked for, `all` expanded.
pub fn expand(kinds: &[SabotageKind]) -> BTreeSet<SabotageKind> {
    if kinds.contains(&SabotageKind::All) {
        [
            SabotageKind::DropEvents,
            SabotageKind::DropRetries,
            SabotageKind::DropReports,
            SabotageKind::StopAdapter,
            SabotageKind::UnplannedPoison,
        ]
        .into()
    } else {
        kinds.iter().copied().collect()
    }
}

/// When the adapter is stopped (seconds after the load's start), if `stop-adapter` is asked.
pub fn stop_adapter_at(kinds: &BTreeSet<SabotageKind>, duration: Duration) -> Option<f64> {
    kinds
        .contains(&SabotageKind::StopAdapter)
        .then(|| duration.as_secs_f64() * SabotageKind::StopAdapter.at())
}

/// One act of sabotage as it happened.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SabotageRecord {
    pub kind: SabotageKind,
    /// Seconds since the run's start.
    pub at: f64,
    pub what: String,
    pub error: Option<String>,
}

/// The acts so far; clones share them.
#[derive(Clone, Default)]
pub struct SabotageLog(Arc<Mutex<Vec<SabotageRecord>>>);

impl SabotageLog {
    pub fn push(&self, record: SabotageRecord) {
        eprintln!(
            "[chaos] {:.1}s: sabotage {}: {}{}",
            record.at,
            record.kind.as_str(),
            record.what,
            record
                .error
                .as_ref()
                .map(|e| format!(" — FAILED: {e}"))
                .unwrap_or_default()
        );
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(record);
    }

    pub fn records(&self) -> Vec<SabotageRecord> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

/// Why an act of sabotage could not be carried out.
#[derive(Debug, thiserror::Error)]
pub enum SabotageError {
    #[error(transparent)]
    Broker(#[from] InfraError),
    #[error(transparent)]
    Poison(#[from] crate::poison::PoisonError),
    #[error("PostgreSQL {url}: {source}")]
    Database { url: String, source: sqlx::Error },
}

/// What the sabotage needs to reach.
#[derive(Clone)]
pub struct Context {
    pub api: Management,
    pub namespace: String,
    /// The reconciler's database URL.
    pub reconciler_db: String,
    pub clock: Clock,
    pub duration: Duration,
    pub log: SabotageLog,
}

/// Analyses the `drop-reports` trigger deletes at most: enough to show, few enough that the
/// rest of the run still means something.
const DROPPED_REPORTS: i64 = 3;

/// Carries out every kind but `stop-adapter` (which needs the stack: [`stop_adapter_at`]) at
/// its time, until `stop`.
pub async fn run(kinds: BTreeSet<SabotageKind>, ctx: Context, stop: CancellationToken) {
    let mut plan: Vec<SabotageKind> = kinds
        .into_iter()
        .filter(|k| !matches!(k, SabotageKind::StopAdapter | SabotageKind::All))
        .collect();
    plan.sort_by(|a, b| a.at().total_cmp(&b.at()));
    // How long the windowed kinds last: a tenth of the run, at least 5 s.
    let window = (ctx.duration / 10).max(Duration::from_secs(5));
    for kind in plan {
        let due = ctx.clock.0 + ctx.duration.mul_f64(kind.at());
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep_until(due) => {}
        }
        let at = ctx.clock.now();
        let result = match kind {
            SabotageKind::DropReports => drop_reports(&ctx).await,
            SabotageKind::DropEvents => drop_events(&ctx, window, &stop).await,
            SabotageKind::DropRetries => drop_retries(&ctx, window, &stop).await,
            SabotageKind::UnplannedPoison => unplanned_poison(&ctx).await,
            SabotageKind::StopAdapter | SabotageKind::All => continue,
        };
        let (what, error) = match result {
            Ok(what) => (what, None),
            Err(error) => ("-".to_owned(), Some(error.to_string())),
        };
        ctx.log.push(SabotageRecord {
            kind,
            at,
            what,
            error,
        });
    }
}

/// A trigger that deletes the first [`DROPPED_REPORTS`] analyses in the transaction that
/// writes them to `deliveries` (noting them in `chaos_sabotaged_deliveries`): what a drainer
/// that skips rows would do. Deleting pending rows by polling would race the outbox, which
/// sends within milliseconds; the trigger does the same deterministically.
async fn drop_reports(ctx: &Context) -> Result<String, SabotageError> {
    let url = ctx.reconciler_db.clone();
    let error = |source| SabotageError::Database {
        url: url.clone(),
        source,
    };
    let mut conn = sqlx::PgConnection::connect(&url).await.map_err(error)?;
    sqlx::raw_sql(
        "CREATE TABLE IF NOT EXISTS chaos_sabotaged_deliveries (
             delivery_id bigint, incident_id uuid, sink text, dropped_at timestamptz DEFAULT now());
         CREATE OR REPLACE FUNCTION chaos_drop_delivery() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN
           IF NEW.report->>'kind' = 'analysis'
              AND (SELECT count(*) FROM chaos_sabotaged_deliveries) < 3 THEN
             INSERT INTO chaos_sabotaged_deliveries (delivery_id, incident_id, sink)
               VALUES (NEW.id, NEW.incident_id, NEW.sink);
             DELETE FROM deliveries WHERE id = NEW.id;
           END IF;
           RETURN NULL;
         END $$;
         DROP TRIGGER IF EXISTS chaos_drop_delivery ON deliveries;
         CREATE TRIGGER chaos_drop_delivery AFTER INSERT ON deliveries
           FOR EACH ROW EXECUTE FUNCTION chaos_drop_delivery();",
    )
    .execute(&mut conn)
    .await
    .map_err(error)?;
    Ok(format!(
        "trigger on the reconciler's deliveries deletes the first {DROPPED_REPORTS} analyses as they are written"
    ))
}

/// The incidents whose analysis the `drop-reports` trigger deleted so far.
pub async fn dropped_reports(reconciler_db: &str) -> Result<Vec<String>, SabotageError> {
    let error = |source| SabotageError::Database {
        url: reconciler_db.to_owned(),
        source,
    };
    let mut conn = sqlx::PgConnection::connect(reconciler_db)
        .await
        .map_err(error)?;
    let rows: Vec<(String,)> = sqlx::query_as(
        "SELECT incident_id::text FROM chaos_sabotaged_deliveries ORDER BY dropped_at",
    )
    .fetch_all(&mut conn)
    .await
    .map_err(error)?;
    Ok(rows.into_iter().map(|(id,)| id).collect())
}

/// Removes every binding of the herder's jobs queue to `<ns>.webhooks` for `window`, then
/// restores them as they were.
async fn drop_events(
    ctx: &Context,
    window: Duration,
    stop: &CancellationToken,
) -> Result<String, SabotageError> {
    let exchange = format!("{}.webhooks", ctx.namespace);
    let queue = format!("{}.pipeline-herder.jobs", ctx.namespace);
    let path = format!(
        "/bindings/%2F/e/{}/q/{}",
        segment(&exchange),
        segment(&queue)
    );
    let bindings = ctx.api.call("GET", path.clone(), None).await?;
    let bindings: Vec<Value> = bindings.as_array().cloned().unwrap_or_default();
    let from = ctx.clock.now();
    for binding in &bindings {
        let key = binding["properties_key"].as_str().unwrap_or_default();
        ctx.api
            .call("DELETE", format!("{path}/{}", segment(key)), None)
            .await?;
    }
    tokio::select! {
        () = stop.cancelled() => {}
        () = tokio::time::sleep(window) => {}
    }
    for binding in &bindings {
        ctx.api
            .call(
                "POST",
                path.clone(),
                Some(json!({"routing_key": binding["routing_key"],
                            "arguments": binding["arguments"]})),
            )
            .await?;
    }
    let keys: Vec<&str> = bindings
        .iter()
        .filter_map(|b| b["routing_key"].as_str())
        .collect();
    Ok(format!(
        "{queue} unbound from {exchange} ({}) from {from:.1}s to {:.1}s",
        keys.join(", "),
        ctx.clock.now()
    ))
}

/// Purges the herder's delayed-retry queues (`<ns>.pipeline-herder.retries.delayed.*`) and
/// its retries queue every 200 ms for `window`; their retries are never heard of again.
async fn drop_retries(
    ctx: &Context,
    window: Duration,
    stop: &CancellationToken,
) -> Result<String, SabotageError> {
    let retries = format!("{}.pipeline-herder.retries", ctx.namespace);
    let delayed = format!("{retries}.delayed.");
    let from = ctx.clock.now();
    let end = Instant::now() + window;
    let mut purged = 0u64;
    let mut rounds = 0u32;
    while Instant::now() < end && !stop.is_cancelled() {
        for QueueInfo {
            name: queue,
            messages: depth,
            ..
        } in ctx.api.queues(&retries).await?
        {
            if queue != retries && !queue.starts_with(&delayed) {
                continue;
            }
            ctx.api
                .call(
                    "DELETE",
                    format!("/queues/%2F/{}/contents", segment(&queue)),
                    None,
                )
                .await?;
            purged += depth;
        }
        rounds += 1;
        tokio::select! {
            () = stop.cancelled() => {}
            () = tokio::time::sleep(Duration::from_millis(200)) => {}
        }
    }
    Ok(format!(
        "{retries} and its delayed queues purged {rounds} times from {from:.1}s to {:.1}s (~{purged} message(s) by the listed depths)",
        ctx.clock.now()
    ))
}

/// One poison message into the herder's jobs queue, not registered as intentional.
async fn unplanned_poison(ctx: &Context) -> Result<String, SabotageError> {
    let queue = format!("{}.pipeline-herder.jobs", ctx.namespace);
    let id = format!("{}-unplanned-poison", ctx.namespace);
    ctx.api
        .publish_to_queue(
            &queue,
            &id,
            "text/plain",
            "unplanned poison: not a CloudEvent",
        )
        .await?;
    Ok(format!("{id} published to {queue}, not registered"))
}

//! Runs and their recipes.
//!
//! A recipe moves `pending → launched → successful | failed | unknown | timed_out`, or to
//! `cancelled`. The move to `launched` is claimed before the process or Job is started, so a
//! recipe is started at most once even across restarts (an action must never run twice
//! because the reconciler crashed); every later move happens only from a non-final state, so
//! the first answer wins and a late duplicate changes nothing. The one way back is [`rerun`]:
//! a debugging recipe whose answer was lost goes `launched → pending` and is claimed again
//! (its `attempt` counts up), because it only reads; an action recipe never does.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::PgConnection;
use sqlx::types::Json;
use steadfast_telemetry::trace;
use uuid::Uuid;

use super::StoreError;
use crate::recipes::{Recipe, RecipeKind};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecipeState {
    Pending,
    Launched,
    Successful,
    Failed,
    Unknown,
    TimedOut,
    Cancelled,
}

impl RecipeState {
    pub const ALL: [Self; 7] = [
        Self::Pending,
        Self::Launched,
        Self::Successful,
        Self::Failed,
        Self::Unknown,
        Self::TimedOut,
        Self::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Launched => "launched",
            Self::Successful => "successful",
            Self::Failed => "failed",
            Self::Unknown => "unknown",
            Self::TimedOut => "timed_out",
            Self::Cancelled => "cancelled",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == text)
    }

    pub fn is_final(self) -> bool {
        !matches!(self, Self::Pending | Self::Launched)
    }
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct RunRow {
    pub id: Uuid,
    pub incident_id: Uuid,
    pub kind: String,
    pub state: String,
    pub data: Value,
    pub created_at: DateTime<Utc>,
    pub deadline: Option<DateTime<Utc>>,
    pub completed_at: Option<DateTime<Utc>>,
    /// The trace context of the span that planned the run (see [`create`]).
    #[serde(skip_serializing)]
    pub traceparent: Option<String>,
}

impl RunRow {
    pub fn kind(&self) -> RecipeKind {
        if self.kind == "action" {
            RecipeKind::Action
        } else {
            RecipeKind::Debugging
        }
    }
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct RecipeRunRow {
    pub run_id: Uuid,
    pub recipe: String,
    pub spec: Json<Recipe>,
    pub state: String,
    pub handle: Option<String>,
    pub launched_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub detail: Option<String>,
    pub results: Option<Value>,
    /// Which launch this is: 1, then 2 after a re-run (see [`rerun`]).
    pub attempt: i32,
    /// Why each re-run happened, in order.
    pub reruns: Json<Vec<String>>,
}

impl RecipeRunRow {
    pub fn state(&self) -> RecipeState {
        RecipeState::parse(&self.state).unwrap_or(RecipeState::Unknown)
    }

    /// The launch number as executors and recipes see it (1-based).
    pub fn attempt(&self) -> u32 {
        u32::try_from(self.attempt).unwrap_or(1).max(1)
    }
}

const RUN_COLUMNS: &str =
    "id, incident_id, kind, state, data, created_at, deadline, completed_at, traceparent";
const RECIPE_COLUMNS: &str = "run_id, recipe, spec, state, handle, launched_at, finished_at, detail, results, \
     attempt, reruns";

/// Plans a run of `recipes` with `data` (its `uuid` must be `id`). With spans exported, the
/// run records the current span's trace context — the incident's or the approval's — and the
/// supervisor that drives it continues that trace.
pub async fn create(
    conn: &mut PgConnection,
    id: Uuid,
    incident: Uuid,
    kind: RecipeKind,
    data: &Value,
    recipes: &[Recipe],
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO runs (id, incident_id, kind, state, data, traceparent) \
         VALUES ($1, $2, $3, 'running', $4, $5)",
    )
    .bind(id)
    .bind(incident)
    .bind(kind.as_str())
    .bind(data)
    .bind(trace::current_traceparent().map(|t| t.to_string()))
    .execute(&mut *conn)
    .await?;
    for recipe in recipes {
        sqlx::query(
            "INSERT INTO recipe_runs (run_id, recipe, spec, state) VALUES ($1, $2, $3, 'pending')",
        )
        .bind(id)
        .bind(&recipe.name)
        .bind(Json(recipe))
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

pub async fn get(conn: &mut PgConnection, id: Uuid) -> Result<Option<RunRow>, StoreError> {
    Ok(sqlx::query_as::<_, RunRow>(sqlx::AssertSqlSafe(format!(
        "SELECT {RUN_COLUMNS} FROM runs WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(conn)
    .await?)
}

/// Ids of every run still running (what a new supervisor resumes).
pub async fn running(conn: &mut PgConnection) -> Result<Vec<Uuid>, StoreError> {
    Ok(
        sqlx::query_scalar("SELECT id FROM runs WHERE state = 'running' ORDER BY created_at")
            .fetch_all(conn)
            .await?,
    )
}

pub async fn of_incident(
    conn: &mut PgConnection,
    incident: Uuid,
) -> Result<Vec<RunRow>, StoreError> {
    Ok(sqlx::query_as::<_, RunRow>(sqlx::AssertSqlSafe(format!(
        "SELECT {RUN_COLUMNS} FROM runs WHERE incident_id = $1 ORDER BY created_at, id"
    )))
    .bind(incident)
    .fetch_all(conn)
    .await?)
}

pub async fn recipes_of(
    conn: &mut PgConnection,
    run: Uuid,
) -> Result<Vec<RecipeRunRow>, StoreError> {
    Ok(
        sqlx::query_as::<_, RecipeRunRow>(sqlx::AssertSqlSafe(format!(
            "SELECT {RECIPE_COLUMNS} FROM recipe_runs WHERE run_id = $1 ORDER BY recipe"
        )))
        .bind(run)
        .fetch_all(conn)
        .await?,
    )
}

/// Sets the run's deadline unless it has one (a resumed run keeps its first deadline).
pub async fn start_clock(
    conn: &mut PgConnection,
    run: Uuid,
    deadline: DateTime<Utc>,
) -> Result<DateTime<Utc>, StoreError> {
    Ok(sqlx::query_scalar(
        "UPDATE runs SET deadline = COALESCE(deadline, $2) WHERE id = $1 RETURNING deadline",
    )
    .bind(run)
    .bind(deadline)
    .fetch_one(conn)
    .await?)
}

/// Claims the launch of pending `recipes`; returns those claimed now (not claimed before).
pub async fn claim_launches(
    conn: &mut PgConnection,
    run: Uuid,
    recipes: &[String],
) -> Result<Vec<String>, StoreError> {
    Ok(sqlx::query_scalar(
        "UPDATE recipe_runs SET state = 'launched', launched_at = now() \
         WHERE run_id = $1 AND recipe = ANY($2) AND state = 'pending' RETURNING recipe",
    )
    .bind(run)
    .bind(recipes)
    .fetch_all(conn)
    .await?)
}

/// Records the handles (Job names, process ids) of launched recipes.
pub async fn set_handles(
    conn: &mut PgConnection,
    run: Uuid,
    handles: &[(String, String)],
) -> Result<(), StoreError> {
    if handles.is_empty() {
        return Ok(());
    }
    let (recipes, values): (Vec<&str>, Vec<&str>) = handles
        .iter()
        .map(|(r, h)| (r.as_str(), h.as_str()))
        .unzip();
    sqlx::query(
        "UPDATE recipe_runs SET handle = given.handle \
         FROM unnest($2::text[], $3::text[]) AS given(recipe, handle) \
         WHERE recipe_runs.run_id = $1 AND recipe_runs.recipe = given.recipe",
    )
    .bind(run)
    .bind(&recipes)
    .bind(&values)
    .execute(conn)
    .await?;
    Ok(())
}

/// Records how a recipe ended, if it had not ended yet; false when it had (first answer wins).
pub async fn finish(
    conn: &mut PgConnection,
    run: Uuid,
    recipe: &str,
    state: RecipeState,
    detail: Option<&str>,
    results: Option<&Value>,
) -> Result<bool, StoreError> {
    Ok(sqlx::query(
        "UPDATE recipe_runs SET state = $3, detail = $4, results = $5, finished_at = now() \
         WHERE run_id = $1 AND recipe = $2 AND state IN ('pending', 'launched')",
    )
    .bind(run)
    .bind(recipe)
    .bind(state.as_str())
    .bind(detail)
    .bind(results)
    .execute(conn)
    .await?
    .rows_affected()
        == 1)
}

/// Puts a launched recipe back to `pending` for another launch, recording `reason`; false when
/// it had ended meanwhile (its answer arrived after all: nothing to re-run).
pub async fn rerun(
    conn: &mut PgConnection,
    run: Uuid,
    recipe: &str,
    reason: &str,
) -> Result<bool, StoreError> {
    Ok(sqlx::query(
        "UPDATE recipe_runs SET state = 'pending', handle = NULL, attempt = attempt + 1, \
             reruns = reruns || jsonb_build_array($3::text) \
         WHERE run_id = $1 AND recipe = $2 AND state = 'launched'",
    )
    .bind(run)
    .bind(recipe)
    .bind(reason)
    .execute(conn)
    .await?
    .rows_affected()
        == 1)
}

/// Marks the run completed if it was running; false when it was not (cancelled meanwhile, or
/// completed by another supervisor).
pub async fn complete(conn: &mut PgConnection, run: Uuid) -> Result<bool, StoreError> {
    Ok(sqlx::query(
        "UPDATE runs SET state = 'completed', completed_at = now() WHERE id = $1 AND state = 'running'",
    )
    .bind(run)
    .execute(conn)
    .await?
    .rows_affected()
        == 1)
}

/// Cancels the incident's running runs of `kind` and their unfinished recipes; returns them.
pub async fn cancel_running(
    conn: &mut PgConnection,
    incident: Uuid,
    kind: RecipeKind,
) -> Result<Vec<Uuid>, StoreError> {
    let ids: Vec<Uuid> = sqlx::query_scalar(
        "UPDATE runs SET state = 'cancelled', completed_at = now() \
         WHERE incident_id = $1 AND kind = $2 AND state = 'running' RETURNING id",
    )
    .bind(incident)
    .bind(kind.as_str())
    .fetch_all(&mut *conn)
    .await?;
    if !ids.is_empty() {
        sqlx::query(
            "UPDATE recipe_runs SET state = 'cancelled', finished_at = now(), \
                 detail = 'the incident was resolved' \
             WHERE run_id = ANY($1) AND state IN ('pending', 'launched')",
        )
        .bind(&ids)
        .execute(conn)
        .await?;
    }
    Ok(ids)
}

/// Which of `ids` were cancelled.
pub async fn cancelled_among(
    conn: &mut PgConnection,
    ids: &[Uuid],
) -> Result<Vec<Uuid>, StoreError> {
    Ok(
        sqlx::query_scalar("SELECT id FROM runs WHERE id = ANY($1) AND state = 'cancelled'")
            .bind(ids)
            .fetch_all(conn)
            .await?,
    )
}

/// How many action runs of the incident are still running.
pub async fn running_actions(conn: &mut PgConnection, incident: Uuid) -> Result<i64, StoreError> {
    Ok(sqlx::query_scalar(
        "SELECT count(*) FROM runs WHERE incident_id = $1 AND kind = 'action' AND state = 'running'",
    )
    .bind(incident)
    .fetch_one(conn)
    .await?)
}

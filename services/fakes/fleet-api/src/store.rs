//! PostgreSQL: resources, adapter statuses, and keeping the aggregated conditions in step.
//!
//! Every write that can change a resource's conditions (create, patch, delete, a status
//! report) runs in one transaction that locks the resource row, so concurrent reports for the
//! same resource aggregate one after the other and never lose each other's effect.

use chrono::{DateTime, Utc};
use serde_json::Value as Json;
use sqlx::postgres::{PgArguments, PgPoolOptions};
use sqlx::query::QueryAs;
use sqlx::{AssertSqlSafe, PgPool, Postgres, Transaction};
use uuid::Uuid;

use crate::aggregation::{self, ResourceCondition};
use crate::model::{Kind, NewResource, Patch, ResourceRow};
use crate::search::{self, Bind, SearchError};
use crate::status::{self, Decision, DiscardReason, StatusReport, StoredStatus};

const COLUMNS: &str = "id, kind, owner_id, name, labels, spec, generation, conditions, created_time, updated_time, created_by, updated_by, deleted_time, deleted_by";

/// Why a write did not happen.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    #[error(transparent)]
    Conflict(#[from] Conflict),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// A write that the resource's state refuses (409); the text is the problem's `detail`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Conflict {
    #[error("cluster '{cluster}' is being deleted; no nodepools can be added to it")]
    ClusterBeingDeleted { cluster: Uuid },
    #[error(
        "a {} named '{name}' already exists{}",
        kind.as_str(),
        if *in_cluster { " in this cluster" } else { "" }
    )]
    NameTaken {
        kind: Kind,
        name: String,
        /// A nodepool's name is unique within its cluster.
        in_cluster: bool,
    },
    #[error("{} '{id}' is being deleted and cannot be changed", kind.as_str())]
    BeingDeleted { kind: Kind, id: Uuid },
    #[error("{} '{id}' is not marked for deletion; DELETE it first", kind.as_str())]
    NotMarkedForDeletion { kind: Kind, id: Uuid },
}

/// Why `order` was refused; the text is the field error's message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OrderError {
    #[error("`order` is empty")]
    Empty,
    #[error("cannot order by `{field}` (use created_time, updated_time, name, id or generation)")]
    UnknownField { field: String },
    #[error("order direction must be asc or desc, not `{direction}`")]
    UnknownDirection { direction: String },
    #[error("unexpected `{word}` in `order`")]
    UnexpectedWord { word: String },
}

/// Connects and brings the schema up to date.
pub async fn connect(url: &str, max_connections: u32) -> Result<PgPool, sqlx::Error> {
    let pool = PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(std::time::Duration::from_secs(5))
        .connect(url)
        .await?;
    sqlx::migrate!().run(&pool).await?;
    Ok(pool)
}

/// Which resources a list covers.
#[derive(Debug, Clone, Copy)]
pub struct Scope {
    pub kind: Kind,
    /// Only the nodepools of this cluster.
    pub owner: Option<Uuid>,
}

/// `order`: one of the sortable fields, optionally `asc`/`desc`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Order {
    column: &'static str,
    descending: bool,
}

impl Default for Order {
    /// `created_time` ascending, so resources created while a client pages land on the last
    /// page rather than shifting every page.
    fn default() -> Self {
        Self {
            column: "created_time",
            descending: false,
        }
    }
}

impl Order {
    pub fn parse(text: &str) -> Result<Self, OrderError> {
        let mut words = text.split_whitespace();
        let field = words.next().ok_or(OrderError::Empty)?;
        let column = match field {
            "created_time" => "created_time",
            "updated_time" => "updated_time",
            "name" => "name",
            "id" => "id",
            "generation" => "generation",
            other => {
                return Err(OrderError::UnknownField {
                    field: other.to_owned(),
                });
            }
        };
        let descending = match words.next().map(str::to_ascii_lowercase).as_deref() {
            None | Some("asc") => false,
            Some("desc") => true,
            Some(other) => {
                return Err(OrderError::UnknownDirection {
                    direction: other.to_owned(),
                });
            }
        };
        if let Some(extra) = words.next() {
            return Err(OrderError::UnexpectedWord {
                word: extra.to_owned(),
            });
        }
        Ok(Self { column, descending })
    }

    fn sql(&self, table: &str) -> String {
        let dir = if self.descending { "DESC" } else { "ASC" };
        format!("{table}{} {dir}, {table}id {dir}", self.column)
    }
}

fn bind_all<'q, O>(
    mut query: QueryAs<'q, Postgres, O, PgArguments>,
    binds: &'q [Bind],
) -> QueryAs<'q, Postgres, O, PgArguments> {
    for bind in binds {
        query = match bind {
            Bind::Text(s) => query.bind(s),
            Bind::Int(i) => query.bind(i),
            Bind::Time(t) => query.bind(t),
            Bind::TextArray(a) => query.bind(a),
        };
    }
    query
}

/// One page of resources and the total matching.
pub async fn list(
    pool: &PgPool,
    scope: Scope,
    search: Option<&str>,
    order: Order,
    page: u32,
    size: u32,
) -> Result<(Vec<ResourceRow>, i64), ListError> {
    let mut binds = vec![Bind::Text(scope.kind.as_str().to_owned())];
    let mut filter = String::from("kind = $1");
    if let Some(owner) = scope.owner {
        binds.push(Bind::Text(owner.to_string()));
        filter.push_str(" AND owner_id = $2::uuid");
    }
    if let Some(query) = search.filter(|q| !q.trim().is_empty()) {
        let condition = search::compile(query, binds.len())?;
        filter.push_str(" AND ");
        filter.push_str(&condition.sql);
        binds.extend(condition.binds);
    }
    let count_sql = format!("SELECT count(*) FROM resources WHERE {filter}");
    let (total,): (i64,) = bind_all(sqlx::query_as(AssertSqlSafe(count_sql)), &binds)
        .fetch_one(pool)
        .await?;
    let offset = i64::from(page - 1) * i64::from(size);
    let rows = if offset >= total {
        Vec::new()
    } else {
        // A deferred join: the page's ids come from the (index-only) ordering index, and only
        // those rows are read, so a deep OFFSET skips index entries rather than whole rows.
        let page_sql = format!(
            "SELECT r.{} FROM resources r
             JOIN (SELECT id FROM resources WHERE {filter} ORDER BY {} LIMIT {size} OFFSET {offset}) page
               ON page.id = r.id
             ORDER BY {}",
            COLUMNS.replace(", ", ", r."),
            order.sql(""),
            order.sql("r.")
        );
        bind_all(sqlx::query_as(AssertSqlSafe(page_sql)), &binds)
            .fetch_all(pool)
            .await?
    };
    Ok((rows, total))
}

#[derive(Debug, thiserror::Error)]
pub enum ListError {
    #[error(transparent)]
    Search(#[from] SearchError),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

pub async fn get(
    pool: &PgPool,
    scope: Scope,
    id: Uuid,
) -> Result<Option<ResourceRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, kind, owner_id, name, labels, spec, generation, conditions, created_time, updated_time, created_by, updated_by, deleted_time, deleted_by
         FROM resources WHERE id = $1 AND kind = $2 AND owner_id IS NOT DISTINCT FROM $3",
    )
    .bind(id)
    .bind(scope.kind.as_str())
    .bind(scope.owner)
    .fetch_optional(pool)
    .await
}

/// Locks a resource for the rest of the transaction. A nodepool's cluster is locked first:
/// deleting a cluster locks it and then its nodepools, so every writer takes the locks in the
/// same order and none can deadlock another.
async fn lock(
    tx: &mut Transaction<'_, Postgres>,
    scope: Scope,
    id: Uuid,
) -> Result<ResourceRow, StoreError> {
    if let Some(owner) = scope.owner {
        sqlx::query("SELECT id FROM resources WHERE id = $1 FOR UPDATE")
            .bind(owner)
            .fetch_optional(&mut **tx)
            .await?
            .ok_or(StoreError::NotFound)?;
    }
    sqlx::query_as(
        "SELECT id, kind, owner_id, name, labels, spec, generation, conditions, created_time, updated_time, created_by, updated_by, deleted_time, deleted_by
         FROM resources WHERE id = $1 AND kind = $2 AND owner_id IS NOT DISTINCT FROM $3 FOR UPDATE",
    )
    .bind(id)
    .bind(scope.kind.as_str())
    .bind(scope.owner)
    .fetch_optional(&mut **tx)
    .await?
    .ok_or(StoreError::NotFound)
}

async fn statuses_of(
    tx: &mut Transaction<'_, Postgres>,
    resource: Uuid,
) -> Result<Vec<StoredStatus>, sqlx::Error> {
    sqlx::query_as(
        "SELECT adapter, observed_generation, conditions, data, metadata, created_time, last_report_time
         FROM adapter_statuses WHERE resource_id = $1 ORDER BY adapter",
    )
    .bind(resource)
    .fetch_all(&mut **tx)
    .await
}

/// Recomputes and stores the conditions of `row` (already locked), and returns the new row.
async fn reaggregate(
    tx: &mut Transaction<'_, Postgres>,
    row: &ResourceRow,
    required: &[String],
) -> Result<ResourceRow, sqlx::Error> {
    let reports: Vec<_> = statuses_of(tx, row.id)
        .await?
        .iter()
        .map(StoredStatus::report)
        .collect();
    let previous: Vec<ResourceCondition> =
        serde_json::from_value(row.conditions.clone()).unwrap_or_default();
    let conditions = aggregation::aggregate(&aggregation::Input {
        generation: row.generation,
        reference_time: row.updated_time,
        deleting: row.deleted_time.is_some(),
        previous: &previous,
        required_adapters: required,
        reports: &reports,
    });
    let conditions = serde_json::to_value(conditions).unwrap_or(Json::Array(Vec::new()));
    sqlx::query_as(
        "UPDATE resources SET conditions = $2 WHERE id = $1
         RETURNING id, kind, owner_id, name, labels, spec, generation, conditions, created_time, updated_time, created_by, updated_by, deleted_time, deleted_by",
    )
    .bind(row.id)
    .bind(conditions)
    .fetch_one(&mut **tx)
    .await
}

fn is_unique_violation(error: &sqlx::Error) -> bool {
    error
        .as_database_error()
        .is_some_and(|e| e.is_unique_violation())
}

/// Creates a cluster, or a nodepool of `scope.owner`.
pub async fn create(
    pool: &PgPool,
    scope: Scope,
    new: &NewResource,
    identity: &str,
    required: &[String],
) -> Result<ResourceRow, StoreError> {
    let mut tx = pool.begin().await?;
    if let Some(owner) = scope.owner {
        let cluster = lock(
            &mut tx,
            Scope {
                kind: Kind::Cluster,
                owner: None,
            },
            owner,
        )
        .await?;
        if cluster.deleted_time.is_some() {
            return Err(Conflict::ClusterBeingDeleted { cluster: owner }.into());
        }
    }
    let now = Utc::now();
    let inserted: Result<ResourceRow, sqlx::Error> = sqlx::query_as(
        "INSERT INTO resources (id, kind, owner_id, name, labels, spec, generation, created_time, updated_time, created_by, updated_by)
         VALUES ($1, $2, $3, $4, $5, $6::text::json, 1, $7, $7, $8, $8)
         RETURNING id, kind, owner_id, name, labels, spec, generation, conditions, created_time, updated_time, created_by, updated_by, deleted_time, deleted_by",
    )
    .bind(Uuid::now_v7())
    .bind(scope.kind.as_str())
    .bind(scope.owner)
    .bind(&new.name)
    .bind(&new.labels)
    .bind(new.spec.to_string())
    .bind(now)
    .bind(identity)
    .fetch_one(&mut *tx)
    .await;
    let row = match inserted {
        Ok(row) => row,
        Err(e) if is_unique_violation(&e) => {
            return Err(Conflict::NameTaken {
                kind: scope.kind,
                name: new.name.clone(),
                in_cluster: scope.owner.is_some(),
            }
            .into());
        }
        Err(e) => return Err(e.into()),
    };
    let row = reaggregate(&mut tx, &row, required).await?;
    tx.commit().await?;
    Ok(row)
}

/// Applies a patch; the generation goes up when the spec or the labels change.
pub async fn patch(
    pool: &PgPool,
    scope: Scope,
    id: Uuid,
    patch: &Patch,
    identity: &str,
    required: &[String],
) -> Result<ResourceRow, StoreError> {
    let mut tx = pool.begin().await?;
    let row = lock(&mut tx, scope, id).await?;
    if row.deleted_time.is_some() {
        return Err(Conflict::BeingDeleted {
            kind: scope.kind,
            id,
        }
        .into());
    }
    let spec = patch.spec.clone().unwrap_or_else(|| row.spec.clone());
    let labels = patch.labels.clone().unwrap_or_else(|| row.labels.clone());
    if spec == row.spec && labels == row.labels {
        tx.commit().await?;
        return Ok(row);
    }
    let updated: ResourceRow = sqlx::query_as(
        "UPDATE resources SET spec = $2::text::json, labels = $3, generation = generation + 1, updated_time = $4, updated_by = $5
         WHERE id = $1
         RETURNING id, kind, owner_id, name, labels, spec, generation, conditions, created_time, updated_time, created_by, updated_by, deleted_time, deleted_by",
    )
    .bind(id)
    .bind(spec.to_string())
    .bind(&labels)
    .bind(Utc::now())
    .bind(identity)
    .fetch_one(&mut *tx)
    .await?;
    let updated = reaggregate(&mut tx, &updated, required).await?;
    tx.commit().await?;
    Ok(updated)
}

/// Marks a resource (and a cluster's nodepools) as being deleted, bumping the generation so
/// the sentinel and adapters reconcile the deletion. Repeating it changes nothing.
pub async fn soft_delete(
    pool: &PgPool,
    scope: Scope,
    id: Uuid,
    identity: &str,
    required: &[String],
    nodepool_required: &[String],
) -> Result<ResourceRow, StoreError> {
    let mut tx = pool.begin().await?;
    let row = lock(&mut tx, scope, id).await?;
    if row.deleted_time.is_some() {
        tx.commit().await?;
        return Ok(row);
    }
    let now = Utc::now();
    let mark = |id: Uuid| {
        sqlx::query_as::<_, ResourceRow>(
            "UPDATE resources SET deleted_time = $2, deleted_by = $3, generation = generation + 1, updated_time = $2, updated_by = $3
             WHERE id = $1 AND deleted_time IS NULL
             RETURNING id, kind, owner_id, name, labels, spec, generation, conditions, created_time, updated_time, created_by, updated_by, deleted_time, deleted_by",
        )
        .bind(id)
        .bind(now)
        .bind(identity)
    };
    let marked = mark(id).fetch_one(&mut *tx).await?;
    let marked = reaggregate(&mut tx, &marked, required).await?;
    if scope.kind == Kind::Cluster {
        let children: Vec<(Uuid,)> = sqlx::query_as(
            "SELECT id FROM resources WHERE owner_id = $1 AND deleted_time IS NULL ORDER BY id FOR UPDATE",
        )
        .bind(id)
        .fetch_all(&mut *tx)
        .await?;
        for (child,) in children {
            let child = mark(child).fetch_one(&mut *tx).await?;
            reaggregate(&mut tx, &child, nodepool_required).await?;
        }
    }
    tx.commit().await?;
    Ok(marked)
}

/// Removes a resource that is being deleted, whatever the adapters say. 409 unless it was
/// soft-deleted first.
pub async fn force_delete(
    pool: &PgPool,
    scope: Scope,
    id: Uuid,
    reason: &str,
) -> Result<(), StoreError> {
    let mut tx = pool.begin().await?;
    let row = lock(&mut tx, scope, id).await?;
    if row.deleted_time.is_none() {
        return Err(Conflict::NotMarkedForDeletion {
            kind: scope.kind,
            id,
        }
        .into());
    }
    sqlx::query("DELETE FROM resources WHERE id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    tracing::warn!(kind = scope.kind.as_str(), %id, reason, "resource force-deleted");
    Ok(())
}

/// The outcome of a status report.
pub enum Reported {
    Stored(StoredStatus),
    Discarded(DiscardReason),
}

/// Applies a status report with HyperFleet's rules, re-aggregates the resource, and removes
/// it once a deletion is reconciled (all required adapters `Finalized`, no nodepools left).
pub async fn report_status(
    pool: &PgPool,
    scope: Scope,
    id: Uuid,
    report: &StatusReport,
    required: &[String],
) -> Result<Reported, StoreError> {
    let mut tx = pool.begin().await?;
    let row = lock(&mut tx, scope, id).await?;
    let stored: Option<StoredStatus> = sqlx::query_as(
        "SELECT adapter, observed_generation, conditions, data, metadata, created_time, last_report_time
         FROM adapter_statuses WHERE resource_id = $1 AND adapter = $2",
    )
    .bind(id)
    .bind(&report.adapter)
    .fetch_optional(&mut *tx)
    .await?;
    if let Decision::Discard(reason) = status::decide(report, row.generation, stored.as_ref()) {
        tx.commit().await?;
        return Ok(Reported::Discarded(reason));
    }
    let conditions = serde_json::to_value(status::stored_conditions(report, stored.as_ref()))
        .unwrap_or(Json::Array(Vec::new()));
    let saved: StoredStatus = sqlx::query_as(
        "INSERT INTO adapter_statuses (resource_id, adapter, observed_generation, conditions, data, metadata, created_time, last_report_time)
         VALUES ($1, $2, $3, $4, $5::text::json, $6::text::json, $7, $8)
         ON CONFLICT (resource_id, adapter) DO UPDATE SET
           observed_generation = EXCLUDED.observed_generation, conditions = EXCLUDED.conditions,
           data = EXCLUDED.data, metadata = EXCLUDED.metadata, last_report_time = EXCLUDED.last_report_time
         RETURNING adapter, observed_generation, conditions, data, metadata, created_time, last_report_time",
    )
    .bind(id)
    .bind(&report.adapter)
    .bind(report.observed_generation)
    .bind(conditions)
    .bind(report.data.as_ref().map(Json::to_string))
    .bind(report.metadata.as_ref().map(Json::to_string))
    .bind(Utc::now())
    .bind(report.observed_time)
    .fetch_one(&mut *tx)
    .await?;
    let row = reaggregate(&mut tx, &row, required).await?;
    if row.deleted_time.is_some() && is_reconciled(&row) {
        let (children,): (i64,) =
            sqlx::query_as("SELECT count(*) FROM resources WHERE owner_id = $1")
                .bind(id)
                .fetch_one(&mut *tx)
                .await?;
        if children == 0 {
            sqlx::query("DELETE FROM resources WHERE id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?;
            tracing::info!(kind = %row.kind, %id, "deletion reconciled; resource removed");
        }
    }
    tx.commit().await?;
    Ok(Reported::Stored(saved))
}

fn is_reconciled(row: &ResourceRow) -> bool {
    row.conditions.as_array().is_some_and(|conditions| {
        conditions
            .iter()
            .any(|c| c["type"] == aggregation::RECONCILED && c["status"] == "True")
    })
}

/// One page of a resource's adapter statuses, and their total.
pub async fn list_statuses(
    pool: &PgPool,
    scope: Scope,
    id: Uuid,
    page: u32,
    size: u32,
) -> Result<Option<(Vec<StoredStatus>, i64)>, sqlx::Error> {
    if get(pool, scope, id).await?.is_none() {
        return Ok(None);
    }
    let (total,): (i64,) =
        sqlx::query_as("SELECT count(*) FROM adapter_statuses WHERE resource_id = $1")
            .bind(id)
            .fetch_one(pool)
            .await?;
    let items = sqlx::query_as(
        "SELECT adapter, observed_generation, conditions, data, metadata, created_time, last_report_time
         FROM adapter_statuses WHERE resource_id = $1 ORDER BY created_time, adapter LIMIT $2 OFFSET $3",
    )
    .bind(id)
    .bind(i64::from(size))
    .bind(i64::from(page - 1) * i64::from(size))
    .fetch_all(pool)
    .await?;
    Ok(Some((items, total)))
}

/// Inserts `count` clusters directly, for benchmarks and demos: names `<prefix>-<n>`, label
/// `shard=<n mod shards>`. With `reconciled_at`, every required adapter has reported
/// `Available=True` at that time (stored reports included), so the fleet is at rest; without,
/// the clusters are new. Far faster than `count` POSTs: batches of 5,000 rows.
pub async fn seed_clusters(
    pool: &PgPool,
    prefix: &str,
    count: u32,
    shards: u32,
    reconciled_at: Option<DateTime<Utc>>,
    required: &[String],
) -> Result<u64, sqlx::Error> {
    let created = reconciled_at.unwrap_or_else(Utc::now);
    let reports: Vec<aggregation::AdapterReport> = match reconciled_at {
        None => Vec::new(),
        Some(at) => required
            .iter()
            .map(|adapter| aggregation::AdapterReport {
                adapter: adapter.clone(),
                observed_generation: 1,
                last_report_time: at,
                conditions: status::MANDATORY_CONDITIONS
                    .iter()
                    .map(|kind| aggregation::AdapterCondition {
                        kind: (*kind).into(),
                        status: "True".into(),
                        reason: Some("Seeded".into()),
                        message: None,
                        last_transition_time: at,
                    })
                    .collect(),
            })
            .collect(),
    };
    let conditions = serde_json::to_value(aggregation::aggregate(&aggregation::Input {
        generation: 1,
        reference_time: created,
        deleting: false,
        previous: &[],
        required_adapters: required,
        reports: &reports,
    }))
    .unwrap_or(Json::Array(Vec::new()));
    let shards = shards.max(1);
    let mut inserted = 0;
    let mut next = 1u32;
    while next <= count {
        let end = count.min(next.saturating_add(4_999));
        let ids: Vec<Uuid> = (next..=end).map(|_| Uuid::now_v7()).collect();
        let names: Vec<String> = (next..=end).map(|n| format!("{prefix}-{n}")).collect();
        let shard_labels: Vec<String> = (next..=end).map(|n| (n % shards).to_string()).collect();
        let mut tx = pool.begin().await?;
        let result = sqlx::query(
            "INSERT INTO resources (id, kind, name, labels, spec, generation, conditions, created_time, updated_time, created_by, updated_by)
             SELECT id, 'Cluster', name, jsonb_build_object('shard', shard),
                    json_build_object('region', 'eu-west-1', 'version', '4.16'), 1, $4, $5, $5, 'seed', 'seed'
             FROM UNNEST($1::uuid[], $2::text[], $3::text[]) AS t(id, name, shard)
             ON CONFLICT DO NOTHING",
        )
        .bind(&ids)
        .bind(&names)
        .bind(&shard_labels)
        .bind(&conditions)
        .bind(created)
        .execute(&mut *tx)
        .await?;
        for report in &reports {
            sqlx::query(
                "INSERT INTO adapter_statuses (resource_id, adapter, observed_generation, conditions, created_time, last_report_time)
                 SELECT r.id, $2, 1, $3, $4, $4 FROM resources r WHERE r.id = ANY($1::uuid[])
                 ON CONFLICT DO NOTHING",
            )
            .bind(&ids)
            .bind(&report.adapter)
            .bind(serde_json::to_value(&report.conditions).unwrap_or(Json::Array(Vec::new())))
            .bind(report.last_report_time)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        inserted += result.rows_affected();
        next = end.saturating_add(1);
        if end == u32::MAX {
            break;
        }
    }
    // Fresh statistics and visibility map, so lists use index-only scans at once rather than
    // after autovacuum gets round to the table.
    sqlx::query("VACUUM ANALYZE resources")
        .execute(pool)
        .await?;
    sqlx::query("VACUUM ANALYZE adapter_statuses")
        .execute(pool)
        .await?;
    Ok(inserted)
}

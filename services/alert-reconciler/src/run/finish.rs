//! Completing a run: one transaction that closes the run, moves the incident on, records the
//! audit entries and queues the report. If the process dies before the commit, the run is
//! still `running` and the next supervisor completes it; after the commit, the report is in
//! the outbox and nothing can queue it again.

use chrono::Utc;
use serde_json::json;
use sqlx::PgConnection;

use crate::context::Context;
use crate::incident::IncidentState;
use crate::intake::enqueue;
use crate::recipes::RecipeKind;
use crate::report::{ActionOffer, IncidentRef, Report, aggregate, euphrosyne_analysis, finding_of};
use crate::store::approvals::{self, Suggestion};
use crate::store::incidents::{self, IncidentRow};
use crate::store::runs::{self, RunRow};
use crate::store::{StoreError, audit};

/// Completes `run`; false when it was no longer running (cancelled, or completed elsewhere).
pub async fn complete(ctx: &Context, run: &RunRow) -> Result<bool, StoreError> {
    let mut tx = ctx.pool.begin().await?;
    if !runs::complete(&mut tx, run.id).await? {
        return Ok(false);
    }
    let Some(incident) = incidents::get_for_update(&mut tx, run.incident_id).await? else {
        return Ok(false);
    };
    let entered = match run.kind() {
        RecipeKind::Debugging => complete_investigation(ctx, &mut tx, run, &incident).await?,
        RecipeKind::Action => complete_action(ctx, &mut tx, run, &incident).await?,
    };
    tx.commit().await?;
    if let Some(state) = entered {
        ctx.metrics
            .incident_transitions
            .with_label_values(&[state.as_str()])
            .inc();
    }
    Ok(true)
}

/// Reports the analysis and opens the suggested actions for approval.
async fn complete_investigation(
    ctx: &Context,
    conn: &mut PgConnection,
    run: &RunRow,
    incident: &IncidentRow,
) -> Result<Option<IncidentState>, StoreError> {
    let rows = runs::recipes_of(conn, run.id).await?;
    let (findings, suggested) = aggregate(&rows);
    let outcomes: serde_json::Map<String, serde_json::Value> = rows
        .iter()
        .map(|r| (r.recipe.clone(), json!(r.state)))
        .collect();
    let names: Vec<&str> = suggested.iter().map(|s| s.name.as_str()).collect();
    audit::record(
        conn,
        incident.id,
        audit::SYSTEM,
        "investigation completed",
        json!({"run": run.id, "recipes": outcomes, "suggested_actions": names}),
    )
    .await?;
    if incident.state()? != IncidentState::Investigating {
        // Resolved while the last answers came in: nobody needs the analysis any more.
        return Ok(None);
    }

    let registry = ctx.recipes.current();
    let expires_at = Utc::now()
        + chrono::Duration::from_std(ctx.settings.approval_ttl).unwrap_or(chrono::Duration::MAX);
    let mut actions = Vec::new();
    for suggestion in &suggested {
        let approval_id = match registry.action(&suggestion.name) {
            Some(_) => Some(
                approvals::suggest(
                    conn,
                    incident.id,
                    &Suggestion {
                        action: &suggestion.name,
                        data: &suggestion.data,
                        suggested_by: &suggestion.suggested_by,
                    },
                    expires_at,
                )
                .await?,
            ),
            None => None,
        };
        actions.push(ActionOffer {
            name: suggestion.name.clone(),
            description: registry
                .action(&suggestion.name)
                .map(|r| r.description.clone())
                .unwrap_or_default(),
            approval_id,
            suggested_by: suggestion.suggested_by.clone(),
        });
    }
    incidents::set_approval_expiry(conn, incident.id, expires_at).await?;
    incidents::transition(conn, incident.id, IncidentState::AwaitingApproval).await?;
    let approvable: Vec<&str> = actions
        .iter()
        .filter(|a| a.approval_id.is_some())
        .map(|a| a.name.as_str())
        .collect();
    audit::record(
        conn,
        incident.id,
        audit::SYSTEM,
        "analysis reported",
        json!({"from": "investigating", "to": "awaiting_approval", "approvable_actions": approvable,
               "approval_expires_at": expires_at}),
    )
    .await?;
    let report = Report::Analysis {
        incident: IncidentRef::of(incident),
        run_id: run.id,
        euphrosyne_analysis: euphrosyne_analysis(incident.id, &findings),
        findings,
        actions,
    };
    enqueue(ctx, conn, incident.id, &report).await?;
    Ok(Some(IncidentState::AwaitingApproval))
}

/// Reports an action's outcome; the incident awaits further decisions once no action runs.
async fn complete_action(
    ctx: &Context,
    conn: &mut PgConnection,
    run: &RunRow,
    incident: &IncidentRow,
) -> Result<Option<IncidentState>, StoreError> {
    let rows = runs::recipes_of(conn, run.id).await?;
    let Some(row) = rows.first() else {
        return Ok(None);
    };
    let finding = finding_of(row);
    let approval = approvals::by_run(conn, run.id).await?;
    let (approved_by, forced) = approval
        .as_ref()
        .map(|a| (a.decided_by.clone().unwrap_or_default(), a.forced))
        .unwrap_or_default();
    audit::record(
        conn,
        incident.id,
        audit::SYSTEM,
        "action completed",
        json!({"run": run.id, "action": row.recipe, "outcome": row.state, "detail": row.detail}),
    )
    .await?;
    ctx.metrics
        .actions
        .with_label_values(&[&row.recipe, &row.state])
        .inc();
    let mut entered = None;
    if incident.state()? == IncidentState::Executing
        && runs::running_actions(conn, incident.id).await? == 0
    {
        incidents::transition(conn, incident.id, IncidentState::AwaitingApproval).await?;
        audit::record(
            conn,
            incident.id,
            audit::SYSTEM,
            "awaiting further decisions",
            json!({"from": "executing", "to": "awaiting_approval"}),
        )
        .await?;
        entered = Some(IncidentState::AwaitingApproval);
    }
    let report = Report::Outcome {
        incident: IncidentRef::of(incident),
        run_id: run.id,
        action: row.recipe.clone(),
        approved_by,
        forced,
        finding,
    };
    enqueue(ctx, conn, incident.id, &report).await?;
    Ok(entered)
}

//! Approving actions: the decision that lets a recipe touch production.
//!
//! An approval names an action suggested for that incident (one with a pending approval
//! record); anything else needs `force` and is audited as forced. It is single-use — the
//! record moves `pending → approved` once, under a row lock, and a second approval of the same
//! action is refused with [`ApprovalError::AlreadyApproved`] — and it expires: after its
//! deadline, or once the incident closed, it is [`ApprovalError::Expired`]. Everything
//! happens in one transaction with the action run it starts, so an approval never exists
//! without its run, nor a run without its approval.
//!
//! A suggested action can instead be rejected ([`reject`]): `pending → rejected`, under the
//! same rules, and final — approving it afterwards, even forced, is
//! [`ApprovalError::Rejected`].

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};
use sqlx::PgConnection;
use steadfast_telemetry::trace;
use tracing::{Instrument, Span};
use uuid::Uuid;

use crate::context::Context;
use crate::incident::IncidentState;
use crate::recipes::RecipeKind;
use crate::store::approvals::{self, ApprovalRow};
use crate::store::incidents::{self, IncidentRow};
use crate::store::{self, StoreError, Wake, audit, runs};

/// Where an approval came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    Webex,
    Api,
}

impl Via {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Webex => "webex",
            Self::Api => "api",
        }
    }
}

/// One action to approve.
#[derive(Debug, Clone)]
pub struct ActionRequest {
    pub name: String,
    /// Parameters for the action recipe, laid over the ones the recipe suggested.
    pub data: Option<Value>,
}

/// An approved action and the run that carries it out.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Approved {
    pub action: String,
    pub approval: Uuid,
    pub run: Uuid,
    pub forced: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum ApprovalError {
    #[error("no incident `{incident}`")]
    IncidentNotFound { incident: String },
    #[error("no approval `{0}`")]
    ApprovalNotFound(Uuid),
    #[error("incident {id} is {state}: its actions can no longer be approved")]
    IncidentClosed { id: Uuid, state: IncidentState },
    #[error("incident {0} is still being investigated; approve once its analysis is reported")]
    StillInvestigating(Uuid),
    #[error(
        "action `{action}` was not suggested for this incident; send \"force\": true to run it anyway (audited as forced)"
    )]
    NotSuggested { action: String },
    #[error("no enabled action recipe is named `{action}`")]
    UnknownAction { action: String },
    #[error("action `{action}` was already approved by {by} at {at}; an approval is single-use")]
    AlreadyApproved {
        action: String,
        by: String,
        at: String,
    },
    #[error(
        "action `{action}` was rejected by {by} at {at}{}; the decision is final",
        reason_suffix(.reason.as_deref())
    )]
    Rejected {
        action: String,
        by: String,
        at: String,
        reason: Option<String>,
    },
    #[error(
        "action `{action}` was not suggested for this incident: there is no approval to reject"
    )]
    NothingToReject { action: String },
    #[error("the approval of `{action}` expired at {at}")]
    Expired { action: String, at: DateTime<Utc> },
    #[error("the approval of `{action}` was cancelled: its incident was resolved")]
    Cancelled { action: String },
    #[error("this approval is not on that message")]
    WrongMessage,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl ApprovalError {
    /// The decision label for metrics.
    pub fn decision(&self) -> &'static str {
        match self {
            Self::IncidentNotFound { .. } | Self::ApprovalNotFound(_) => "not_found",
            Self::IncidentClosed { .. } | Self::Expired { .. } | Self::Cancelled { .. } => {
                "expired"
            }
            Self::StillInvestigating(_) => "too_early",
            Self::NotSuggested { .. }
            | Self::UnknownAction { .. }
            | Self::NothingToReject { .. } => "not_suggested",
            Self::AlreadyApproved { .. } => "replayed",
            Self::Rejected { .. } => "already_rejected",
            Self::WrongMessage => "forbidden",
            Self::Store(_) => "error",
        }
    }
}

fn reason_suffix(reason: Option<&str>) -> String {
    reason
        .map(|r| format!(" (reason: {r})"))
        .unwrap_or_default()
}

/// Approves `actions` of `incident` for `actor` (all or none).
pub async fn approve(
    ctx: &Context,
    incident: Uuid,
    actions: &[ActionRequest],
    actor: &str,
    force: bool,
    via: Via,
) -> Result<Vec<Approved>, ApprovalError> {
    let names: Vec<&str> = actions.iter().map(|a| a.name.as_str()).collect();
    let span = approval_span(&names.join(","), actor, via, None);
    approve_actions(ctx, incident, actions, actor, force, via)
        .instrument(span)
        .await
}

/// The span of an approval, in which the action run is planned (the run records it). A card's
/// button continues the trace of the report that sent the card (`parent`); an approval through
/// the API is the child of the request's span.
fn approval_span(action: &str, actor: &str, via: Via, parent: Option<&str>) -> Span {
    let span = tracing::info_span!("reconciler.approval", action, actor, via = via.as_str(),);
    trace::continue_stored(&span, parent);
    span
}

async fn approve_actions(
    ctx: &Context,
    incident: Uuid,
    actions: &[ActionRequest],
    actor: &str,
    force: bool,
    via: Via,
) -> Result<Vec<Approved>, ApprovalError> {
    let mut tx = ctx.pool.begin().await.map_err(StoreError::from)?;
    let incident = incidents::get_for_update(&mut tx, incident)
        .await?
        .ok_or_else(|| ApprovalError::IncidentNotFound {
            incident: incident.to_string(),
        })?;
    check_open(&incident)?;
    let mut approved = Vec::new();
    for request in actions {
        let existing = approvals::by_action_for_update(&mut tx, incident.id, &request.name).await?;
        approved.push(
            approve_one(
                ctx, &mut tx, &incident, existing, request, actor, force, via,
            )
            .await?,
        );
    }
    tx.commit().await.map_err(StoreError::from)?;
    count_transition(ctx);
    Ok(approved)
}

/// Approves the approval `id` from a chat card on message `message_id`.
pub async fn approve_by_id(
    ctx: &Context,
    id: Uuid,
    message_id: &str,
    actor: &str,
    via: Via,
) -> Result<Approved, ApprovalError> {
    let mut tx = ctx.pool.begin().await.map_err(StoreError::from)?;
    let approval = approvals::by_id_for_update(&mut tx, id)
        .await?
        .ok_or(ApprovalError::ApprovalNotFound(id))?;
    if approval.message_id.as_deref() != Some(message_id) {
        return Err(ApprovalError::WrongMessage);
    }
    let span = approval_span(
        &approval.action,
        actor,
        via,
        approval.traceparent.as_deref(),
    );
    async move {
        let incident = incidents::get_for_update(&mut tx, approval.incident_id)
            .await?
            .ok_or_else(|| ApprovalError::IncidentNotFound {
                incident: approval.incident_id.to_string(),
            })?;
        let request = ActionRequest {
            name: approval.action.clone(),
            data: None,
        };
        // The approval's own state decides first: a replay is "already approved" even once
        // the incident moved on.
        check_approval(&approval)?;
        check_open(&incident)?;
        let approved = approve_one(
            ctx,
            &mut tx,
            &incident,
            Some(approval),
            &request,
            actor,
            false,
            via,
        )
        .await?;
        tx.commit().await.map_err(StoreError::from)?;
        count_transition(ctx);
        Ok(approved)
    }
    .instrument(span)
    .await
}

/// Rejects the suggested `action` of `incident` for `actor`: its pending approval is closed as
/// `rejected` with `reason`, audited, and returned. The incident itself does not move: other
/// actions may still be approved, and the approval window or the alert resolving closes it.
pub async fn reject(
    ctx: &Context,
    incident: Uuid,
    action: &str,
    actor: &str,
    reason: Option<&str>,
    via: Via,
) -> Result<ApprovalRow, ApprovalError> {
    let span = tracing::info_span!("reconciler.rejection", action, actor, via = via.as_str());
    async move {
        let mut tx = ctx.pool.begin().await.map_err(StoreError::from)?;
        // Incident, then approval: the lock order of `approve`.
        let incident = incidents::get_for_update(&mut tx, incident)
            .await?
            .ok_or_else(|| ApprovalError::IncidentNotFound {
                incident: incident.to_string(),
            })?;
        let approval = approvals::by_action_for_update(&mut tx, incident.id, action)
            .await?
            .ok_or_else(|| ApprovalError::NothingToReject {
                action: action.to_owned(),
            })?;
        // The approval's own state decides first, as for a card's button: rejecting twice is
        // "already rejected" even once the incident moved on.
        check_approval(&approval)?;
        check_open(&incident)?;
        let rejected = approvals::reject(&mut tx, approval.id, actor, reason)
            .await?
            // Expired between the check and the update.
            .ok_or_else(|| ApprovalError::Expired {
                action: approval.action.clone(),
                at: approval.expires_at,
            })?;
        audit::record(
            &mut tx,
            incident.id,
            actor,
            "action rejected",
            json!({"action": action, "approval": approval.id, "via": via.as_str(), "reason": reason}),
        )
        .await?;
        tx.commit().await.map_err(StoreError::from)?;
        ctx.metrics
            .approvals
            .with_label_values(&[via.as_str(), "rejected"])
            .inc();
        tracing::info!(incident_id = %incident.id, %action, %actor, reason = reason.unwrap_or(""), "action rejected");
        Ok(rejected)
    }
    .instrument(span)
    .await
}

fn count_transition(ctx: &Context) {
    ctx.metrics
        .incident_transitions
        .with_label_values(&[IncidentState::Executing.as_str()])
        .inc();
}

fn check_open(incident: &IncidentRow) -> Result<(), ApprovalError> {
    match incident.state()? {
        IncidentState::AwaitingApproval | IncidentState::Executing => Ok(()),
        IncidentState::Received | IncidentState::Investigating => {
            Err(ApprovalError::StillInvestigating(incident.id))
        }
        state @ (IncidentState::Resolved | IncidentState::Expired) => {
            Err(ApprovalError::IncidentClosed {
                id: incident.id,
                state,
            })
        }
    }
}

/// When the approval was decided, written as `GET /api/incidents/{id}` shows it.
fn decided_at(approval: &ApprovalRow) -> String {
    approval
        .decided_at
        .map(|t| t.to_rfc3339_opts(SecondsFormat::AutoSi, true))
        .unwrap_or_default()
}

fn check_approval(approval: &ApprovalRow) -> Result<(), ApprovalError> {
    match approval.state.as_str() {
        "approved" => Err(ApprovalError::AlreadyApproved {
            action: approval.action.clone(),
            by: approval.decided_by.clone().unwrap_or_default(),
            at: decided_at(approval),
        }),
        "rejected" => Err(ApprovalError::Rejected {
            action: approval.action.clone(),
            by: approval.decided_by.clone().unwrap_or_default(),
            at: decided_at(approval),
            reason: approval.reason.clone(),
        }),
        "cancelled" => Err(ApprovalError::Cancelled {
            action: approval.action.clone(),
        }),
        "expired" => Err(ApprovalError::Expired {
            action: approval.action.clone(),
            at: approval.expires_at,
        }),
        _ if approval.expires_at <= Utc::now() => Err(ApprovalError::Expired {
            action: approval.action.clone(),
            at: approval.expires_at,
        }),
        _ => Ok(()),
    }
}

#[allow(clippy::too_many_arguments)]
async fn approve_one(
    ctx: &Context,
    conn: &mut PgConnection,
    incident: &IncidentRow,
    existing: Option<ApprovalRow>,
    request: &ActionRequest,
    actor: &str,
    force: bool,
    via: Via,
) -> Result<Approved, ApprovalError> {
    let registry = ctx.recipes.current();
    let recipe = registry.action(&request.name).cloned();
    let unknown = || ApprovalError::UnknownAction {
        action: request.name.clone(),
    };
    let (approval, forced) = match existing {
        Some(approval) => {
            check_approval(&approval)?;
            if recipe.is_none() {
                return Err(unknown());
            }
            if !approvals::approve(conn, approval.id, actor).await? {
                // Expired between the check and the update.
                return Err(ApprovalError::Expired {
                    action: approval.action.clone(),
                    at: approval.expires_at,
                });
            }
            (approval, false)
        }
        None if !force => {
            return Err(ApprovalError::NotSuggested {
                action: request.name.clone(),
            });
        }
        None => {
            if recipe.is_none() {
                return Err(unknown());
            }
            let data = request.data.clone().unwrap_or_else(|| json!({}));
            (
                approvals::insert_forced(conn, incident.id, &request.name, &data, actor).await?,
                true,
            )
        }
    };
    let recipe = recipe.ok_or_else(unknown)?;
    let run = Uuid::new_v4();
    let parameters = merge_parameters(&approval.data, request.data.as_ref());
    let data = action_data(&parameters, run, incident, &request.name);
    runs::create(
        conn,
        run,
        incident.id,
        RecipeKind::Action,
        &data,
        std::slice::from_ref(&recipe),
    )
    .await?;
    approvals::set_run(conn, approval.id, run).await?;
    let from = incident.state()?;
    incidents::transition(conn, incident.id, IncidentState::Executing).await?;
    audit::record(
        conn,
        incident.id,
        actor,
        if forced {
            "action forced"
        } else {
            "action approved"
        },
        json!({"action": request.name, "approval": approval.id, "run": run, "via": via.as_str(),
               "forced": forced, "from": from, "to": "executing"}),
    )
    .await?;
    store::notify(conn, &Wake::Run(run)).await?;
    ctx.metrics
        .approvals
        .with_label_values(&[via.as_str(), if forced { "forced" } else { "approved" }])
        .inc();
    tracing::info!(incident_id = %incident.id, action = %request.name, %actor, forced, run_id = %run, "action approved");
    Ok(Approved {
        action: request.name.clone(),
        approval: approval.id,
        run,
        forced,
    })
}

/// The suggested parameters with the approver's on top (theirs win key by key).
fn merge_parameters(suggested: &Value, given: Option<&Value>) -> Value {
    let mut merged = match suggested {
        Value::Object(map) => map.clone(),
        _ => serde_json::Map::new(),
    };
    if let Some(Value::Object(given)) = given {
        merged.extend(given.clone());
    }
    Value::Object(merged)
}

/// data.json of an action run: Euphrosyne's `action.data + {"uuid": ...}`, plus the incident
/// under `steadfast` for recipes that need the alert.
pub fn action_data(parameters: &Value, run: Uuid, incident: &IncidentRow, action: &str) -> Value {
    let mut data = match parameters {
        Value::Object(map) => Value::Object(map.clone()),
        _ => json!({}),
    };
    data["uuid"] = json!(run.to_string());
    data["steadfast"] = json!({
        "action": action,
        "incident": incident.id,
        "groupKey": incident.group_key,
        "labels": incident.labels,
        "group": incident.group_data,
    });
    data
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_approvers_parameters_win_key_by_key() {
        let suggested = json!({"pod": "web-1", "namespace": "shop"});
        assert_eq!(
            merge_parameters(
                &suggested,
                Some(&json!({"namespace": "prod", "force": true}))
            ),
            json!({"pod": "web-1", "namespace": "prod", "force": true})
        );
        assert_eq!(merge_parameters(&suggested, Some(&json!({}))), suggested);
        assert_eq!(merge_parameters(&suggested, None), suggested);
        assert_eq!(
            merge_parameters(&json!({}), Some(&json!({"a": 1}))),
            json!({"a": 1})
        );
    }
}

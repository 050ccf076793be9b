//! Intake: one alert event at a time, from the queue, into the incident state machine.
//!
//! Everything an event changes happens in one transaction that starts by recording the event
//! id (a redelivered event changes nothing) and by locking the alert group (two alerts of one
//! group never race to open two incidents):
//! * the first firing alert of a group opens an incident, plans its debugging run (the enabled
//!   recipes whose `match` holds) and wakes the supervisor;
//! * another alert of an open incident is recorded on it; the same alert again is a repeat
//!   notification — neither starts anything;
//! * a resolved alert is recorded; when no alert of the incident fires any more the incident is
//!   resolved: pending approvals are cancelled, a running investigation is stopped, and chat is
//!   told if it had heard of the incident.

use std::sync::Arc;

use serde_json::{Value, json};
use sqlx::PgConnection;
use steadfast_messaging::{Handler, Incoming, Outcome};
use tracing::Instrument;
use uuid::Uuid;

use crate::alert::{AlertError, AlertEvent, AlertStatus};
use crate::context::Context;
use crate::incident::IncidentState;
use crate::recipes::{Recipe, RecipeKind};
use crate::report::{IncidentRef, Report};
use crate::store::incidents::{self, AlertChange, IncidentRow};
use crate::store::{self, StoreError, Wake, audit, deliveries, runs};

/// What an event did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Intake {
    /// The event id was handled before.
    Duplicate,
    /// A new incident, with its debugging run.
    Opened {
        incident: Uuid,
        run: Uuid,
        recipes: Vec<String>,
    },
    /// A new alert on an open incident.
    AlertAdded { incident: Uuid },
    /// The same alert again.
    Repeated { incident: Uuid },
    /// One alert resolved; others still fire.
    AlertResolved { incident: Uuid, still_firing: i64 },
    /// The incident's last alert resolved.
    Resolved { incident: Uuid },
    /// A resolved alert for which no incident is open.
    Ignored,
}

impl Intake {
    /// One word for what the event did (a span attribute).
    pub fn label(&self) -> &'static str {
        match self {
            Self::Duplicate => "duplicate",
            Self::Opened { .. } => "opened",
            Self::AlertAdded { .. } => "alert_added",
            Self::Repeated { .. } => "repeated",
            Self::AlertResolved { .. } => "alert_resolved",
            Self::Resolved { .. } => "resolved",
            Self::Ignored => "ignored",
        }
    }

    /// The incident the event concerned, if any.
    pub fn incident(&self) -> Option<Uuid> {
        match self {
            Self::Opened { incident, .. }
            | Self::AlertAdded { incident }
            | Self::Repeated { incident }
            | Self::AlertResolved { incident, .. }
            | Self::Resolved { incident } => Some(*incident),
            Self::Duplicate | Self::Ignored => None,
        }
    }
}

/// Why an alert event was not handled.
#[derive(Debug, thiserror::Error)]
pub enum IntakeError {
    /// The event's data is not an alert: it never will be.
    #[error("invalid alert event: {0}")]
    InvalidEvent(#[from] AlertError),
    /// PostgreSQL failed or could not be reached.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl IntakeError {
    /// Whether the event may succeed later (retry tier) rather than never (parking lot).
    pub fn is_transient(&self) -> bool {
        match self {
            Self::InvalidEvent(_) => false,
            Self::Store(_) => true,
        }
    }
}

/// The consumer of `<ns>.alert-reconciler.alerts`.
pub struct AlertHandler {
    pub ctx: Arc<Context>,
}

impl Handler for AlertHandler {
    type Data = Value;

    async fn handle(&self, message: Incoming<Value>) -> Outcome {
        match self.intake(message).await {
            Ok(()) => Outcome::Done,
            Err(error) if error.is_transient() => Outcome::retry(error),
            Err(error) => Outcome::park(error),
        }
    }
}

impl AlertHandler {
    async fn intake(&self, message: Incoming<Value>) -> Result<(), IntakeError> {
        let event = AlertEvent::from_data(message.event.data)?;
        let metrics = &self.ctx.metrics;
        metrics
            .alerts_received
            .with_label_values(&[event.status.as_str()])
            .inc();
        let id = if message.event.id.is_empty() {
            event.event_id()
        } else {
            message.event.id.clone()
        };
        // The incident's span: a run it plans records it, so the investigation continues the
        // alert's trace.
        let span = tracing::info_span!(
            "reconciler.incident",
            group_key = %event.group_key,
            alert_status = event.status.as_str(),
            outcome = tracing::field::Empty,
            incident_id = tracing::field::Empty,
        );
        let result = process(&self.ctx, &id, &event)
            .instrument(span.clone())
            .await?;
        span.record("outcome", result.label());
        if let Some(incident) = result.incident() {
            span.record("incident_id", incident.to_string().as_str());
        }
        let reason = match &result {
            Intake::Duplicate => Some("duplicate_event"),
            Intake::Repeated { .. } => Some("repeat_notification"),
            Intake::Ignored => Some("resolved_without_incident"),
            _ => None,
        };
        if let Some(reason) = reason {
            metrics
                .alerts_deduplicated
                .with_label_values(&[reason])
                .inc();
        }
        tracing::info!(event_id = %id, group_key = %event.group_key, outcome = ?result, "alert handled");
        Ok(())
    }
}

/// Applies one alert event.
pub async fn process(
    ctx: &Context,
    event_id: &str,
    event: &AlertEvent,
) -> Result<Intake, StoreError> {
    let mut tx = ctx.pool.begin().await?;
    if !incidents::claim_event(&mut tx, event_id).await? {
        return Ok(Intake::Duplicate);
    }
    store::lock_group(&mut tx, &event.group_key).await?;
    let open = incidents::open_for_group(&mut tx, &event.group_key).await?;
    let result = match (open, event.status) {
        (None, AlertStatus::Firing) => open_incident(ctx, &mut tx, event).await?,
        (None, AlertStatus::Resolved) => Intake::Ignored,
        (Some(incident), AlertStatus::Firing) => {
            match incidents::upsert_alert(&mut tx, incident.id, event).await? {
                AlertChange::Repeated => Intake::Repeated {
                    incident: incident.id,
                },
                change => {
                    let what = if change == AlertChange::Added {
                        "alert added"
                    } else {
                        "alert firing again"
                    };
                    audit::record(
                        &mut tx,
                        incident.id,
                        audit::ALERTMANAGER,
                        what,
                        alert_detail(event),
                    )
                    .await?;
                    Intake::AlertAdded {
                        incident: incident.id,
                    }
                }
            }
        }
        (Some(incident), AlertStatus::Resolved) => {
            incidents::upsert_alert(&mut tx, incident.id, event).await?;
            let still_firing = incidents::firing_alerts(&mut tx, incident.id).await?;
            if still_firing == 0 {
                resolve(ctx, &mut tx, &incident, "all of its alerts resolved").await?;
                Intake::Resolved {
                    incident: incident.id,
                }
            } else {
                let mut detail = alert_detail(event);
                detail["still_firing"] = json!(still_firing);
                audit::record(
                    &mut tx,
                    incident.id,
                    audit::ALERTMANAGER,
                    "alert resolved",
                    detail,
                )
                .await?;
                Intake::AlertResolved {
                    incident: incident.id,
                    still_firing,
                }
            }
        }
    };
    tx.commit().await?;
    if let Intake::Opened { .. } = &result {
        ctx.metrics
            .incident_transitions
            .with_label_values(&["received"])
            .inc();
        ctx.metrics
            .incident_transitions
            .with_label_values(&["investigating"])
            .inc();
    }
    if let Intake::Resolved { .. } = &result {
        ctx.metrics
            .incident_transitions
            .with_label_values(&["resolved"])
            .inc();
    }
    Ok(result)
}

fn alert_detail(event: &AlertEvent) -> Value {
    json!({
        "fingerprint": event.fingerprint,
        "alertname": event.alertname(),
        "status": event.status.as_str(),
        "startsAt": event.starts_at,
    })
}

async fn open_incident(
    ctx: &Context,
    conn: &mut PgConnection,
    event: &AlertEvent,
) -> Result<Intake, StoreError> {
    let incident = incidents::insert(conn, event).await?;
    incidents::upsert_alert(conn, incident.id, event).await?;
    let mut opened = alert_detail(event);
    opened["groupKey"] = json!(event.group_key);
    opened["receiver"] = json!(event.receiver);
    audit::record(
        conn,
        incident.id,
        audit::ALERTMANAGER,
        "incident opened",
        opened,
    )
    .await?;

    let registry = ctx.recipes.current();
    let recipes: Vec<Recipe> = registry
        .debugging_for(&event.labels)
        .into_iter()
        .cloned()
        .collect();
    let run = Uuid::new_v4();
    runs::create(
        conn,
        run,
        incident.id,
        RecipeKind::Debugging,
        &debugging_data(event, run),
        &recipes,
    )
    .await?;
    incidents::transition(conn, incident.id, IncidentState::Investigating).await?;
    let names: Vec<String> = recipes.iter().map(|r| r.name.clone()).collect();
    audit::record(
        conn,
        incident.id,
        audit::SYSTEM,
        "investigation started",
        json!({"from": "received", "to": "investigating", "run": run, "recipes": names}),
    )
    .await?;
    store::notify(conn, &Wake::Run(run)).await?;
    Ok(Intake::Opened {
        incident: incident.id,
        run,
        recipes: names,
    })
}

/// data.json of a debugging run: an Alertmanager v4 notification of the alert that opened the
/// incident, plus Euphrosyne's `uuid` (the run id, the result channel). One alert, because
/// Euphrosyne's SDK refuses notifications with several.
pub fn debugging_data(event: &AlertEvent, run: Uuid) -> Value {
    let mut data = event.group_data();
    data["status"] = json!(event.status.as_str());
    data["truncatedAlerts"] = json!(0);
    data["alerts"] = json!([Value::Object(event.alert.clone())]);
    data["uuid"] = json!(run.to_string());
    data
}

/// Closes an open incident as resolved (inside the caller's transaction).
async fn resolve(
    ctx: &Context,
    conn: &mut PgConnection,
    incident: &IncidentRow,
    reason: &str,
) -> Result<(), StoreError> {
    let previous = incident.state()?;
    if !incidents::transition(conn, incident.id, IncidentState::Resolved).await? {
        return Ok(());
    }
    let cancelled_approvals =
        store::approvals::close_pending(conn, incident.id, "cancelled").await?;
    let stopped_runs = runs::cancel_running(conn, incident.id, RecipeKind::Debugging).await?;
    audit::record(
        conn,
        incident.id,
        audit::ALERTMANAGER,
        "incident resolved",
        json!({"from": previous, "to": "resolved", "reason": reason,
               "cancelled_approvals": cancelled_approvals, "stopped_runs": stopped_runs}),
    )
    .await?;
    for run in &stopped_runs {
        store::notify(conn, &Wake::Cancel(*run)).await?;
    }
    // Chat heard of the incident only once its analysis was reported.
    if matches!(
        previous,
        IncidentState::AwaitingApproval | IncidentState::Executing
    ) {
        let mut row = incident.clone();
        row.state = IncidentState::Resolved.as_str().into();
        let report = Report::Closed {
            incident: IncidentRef::of(&row),
            state: "resolved".into(),
            reason: reason.into(),
        };
        enqueue(ctx, conn, incident.id, &report).await?;
    }
    Ok(())
}

/// Queues `report` for every configured sink and wakes the sender.
pub async fn enqueue(
    ctx: &Context,
    conn: &mut PgConnection,
    incident: Uuid,
    report: &Report,
) -> Result<(), StoreError> {
    let sinks = ctx.sinks.names();
    if sinks.is_empty() {
        return Ok(());
    }
    let body = serde_json::to_value(report).expect("reports serialise");
    for sink in sinks {
        let key = format!("{incident}:{}:{sink}", report.key());
        deliveries::enqueue(conn, incident, sink, &key, &body).await?;
    }
    store::notify(conn, &Wake::Deliveries).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_events_park_and_store_failures_retry() {
        let invalid = IntakeError::from(AlertEvent::from_data(json!([])).unwrap_err());
        assert!(!invalid.is_transient());
        assert_eq!(
            invalid.to_string(),
            "invalid alert event: alert event data must be a JSON object"
        );
        let store = IntakeError::from(StoreError::Database(sqlx::Error::PoolTimedOut));
        assert!(store.is_transient());
    }
}

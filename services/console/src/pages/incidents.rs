//! Incidents: the list by state, one incident's timeline (alerts, recipe runs with their
//! output, reports sent, approvals, actions, audit), and its suggested actions approved,
//! rejected or forced — under the reconciler's own rules (single use, expiry, suggested only
//! unless forced), audited there as `console:<user>`.

use axum::Extension;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use maud::html;
use serde::Deserialize;
use serde_json::Value;

use super::{
    Flash, PageError, Section, back, csrf_field, error_page, excerpt, not_found, page,
    upstream_failed, when,
};
use crate::app::AppState;
use crate::auth::Principal;
use crate::form::FormFields;
use crate::upstream::UpstreamError;
use crate::upstream::reconciler::{IncidentDetail, PAGE_SIZE, ReconcilerApi};

/// The incident states, in the order an incident moves through them.
pub const STATES: [&str; 6] = [
    "received",
    "investigating",
    "awaiting_approval",
    "executing",
    "resolved",
    "expired",
];
/// The states of an incident someone may still have to act on.
pub const OPEN_STATES: [&str; 4] = [
    "received",
    "investigating",
    "awaiting_approval",
    "executing",
];
/// The reconciler's limit on a rejection reason, as a hint to the browser (it enforces it).
const MAX_REASON_CHARS: usize = 500;

fn reconciler(state: &AppState) -> Result<&ReconcilerApi, PageError> {
    state.reconciler.as_ref().ok_or_else(|| PageError {
        status: StatusCode::NOT_FOUND,
        title: "Alert reconciler not configured",
        detail: "The console does not know the alert-reconciler: set RECONCILER_URL and RECONCILER_API_TOKEN.".into(),
    })
}

#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    state: Option<String>,
    before: Option<String>,
    notice: Option<String>,
    error: Option<String>,
}

/// `GET /incidents`.
pub async fn list(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Query(query): Query<ListQuery>,
) -> Response {
    let api = match reconciler(&state) {
        Ok(api) => api,
        Err(refusal) => return refusal.into_response(),
    };
    let filter = query.state.as_deref().filter(|s| !s.is_empty());
    let before = query.before.as_deref().filter(|s| !s.is_empty());
    let listed = match api.incidents(filter, before, PAGE_SIZE).await {
        Ok(listed) => listed,
        Err(UpstreamError::Refused { detail, .. }) => {
            return error_page(StatusCode::BAD_REQUEST, "Bad filter", &detail);
        }
        Err(error) => return upstream_failed("alert-reconciler", &error),
    };
    let now = Utc::now();
    let all: u64 = listed.counts.values().sum();
    let content = html! {
        nav.states aria-label="Incidents by state" {
            ul {
                li {
                    @if filter.is_none() { a href="/incidents" aria-current="page" { "all (" (all) ")" } }
                    @else { a href="/incidents" { "all (" (all) ")" } }
                }
                @for s in STATES {
                    @let count = listed.counts.get(s).copied().unwrap_or(0);
                    li {
                        @if filter == Some(s) {
                            a href=(format!("/incidents?state={s}")) aria-current="page" { (s.replace('_', " ")) " (" (count) ")" }
                        } @else {
                            a href=(format!("/incidents?state={s}")) { (s.replace('_', " ")) " (" (count) ")" }
                        }
                    }
                }
            }
        }
        @if listed.incidents.is_empty() {
            p { "No incidents" @if let Some(s) = filter { " " (s.replace('_', " ")) } "." }
        } @else {
            div.scroll { table {
                caption { "Newest first" }
                thead { tr {
                    th scope="col" { "Incident" } th scope="col" { "State" } th scope="col" { "Severity" }
                    th scope="col" { "Opened" } th scope="col" { "Updated" }
                } }
                tbody {
                    @for i in &listed.incidents {
                        tr {
                            td { a href=(format!("/incidents/{}", i.id)) { (excerpt(&i.title, 120)) } }
                            td.bad[i.state == "awaiting_approval"] { (i.state.replace('_', " ")) }
                            td { (i.label("severity").unwrap_or("—")) }
                            td { (when(i.opened_at, now)) }
                            td { (when(i.updated_at, now)) }
                        }
                    }
                }
            } }
            @if let Some(next) = &listed.next_before {
                p { a href=(older_link(filter, next)) { "Older incidents" } }
            }
        }
    };
    let flash = Flash {
        notice: query.notice,
        error: query.error,
    };
    page(&principal, Section::Incidents, "Incidents", &flash, content).into_response()
}

fn older_link(state: Option<&str>, before: &str) -> String {
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    if let Some(state) = state {
        query.append_pair("state", state);
    }
    query.append_pair("before", before);
    format!("/incidents?{}", query.finish())
}

/// One line of an incident's history.
struct Entry {
    at: DateTime<Utc>,
    what: String,
    /// Output worth reading in full (a recipe's results, an audit entry's detail).
    output: Option<String>,
    bad: bool,
}

fn pretty(value: &Value) -> Option<String> {
    match value {
        Value::Null => None,
        Value::Object(map) if map.is_empty() => None,
        Value::String(text) => Some(text.clone()),
        other => serde_json::to_string_pretty(other).ok(),
    }
}

/// Everything that happened to the incident, oldest first.
fn timeline(detail: &IncidentDetail) -> Vec<Entry> {
    let mut entries = Vec::new();
    for alert in &detail.alerts {
        let name = alert
            .alert
            .pointer("/labels/alertname")
            .and_then(Value::as_str)
            .unwrap_or(&alert.fingerprint);
        entries.push(Entry {
            at: alert.first_seen_at,
            what: format!("alert {name} {}", alert.status),
            output: None,
            bad: alert.status == "firing",
        });
    }
    for run in &detail.runs {
        entries.push(Entry {
            at: run.created_at,
            what: format!("{} run started", run.kind),
            output: None,
            bad: false,
        });
        for recipe in &run.recipes {
            let output = recipe
                .results
                .as_ref()
                .and_then(pretty)
                .or_else(|| recipe.detail.clone());
            entries.push(Entry {
                at: recipe
                    .finished_at
                    .or(recipe.launched_at)
                    .unwrap_or(run.created_at),
                what: format!(
                    "recipe {} {}{}",
                    recipe.recipe,
                    recipe.state,
                    if recipe.attempt > 1 {
                        format!(" (attempt {})", recipe.attempt)
                    } else {
                        String::new()
                    }
                ),
                output,
                bad: matches!(recipe.state.as_str(), "failed" | "timed_out" | "unknown"),
            });
        }
        if let Some(done) = run.completed_at {
            entries.push(Entry {
                at: done,
                what: format!("{} run {}", run.kind, run.state),
                output: None,
                bad: run.state == "failed",
            });
        }
    }
    for delivery in &detail.deliveries {
        let report = delivery.report.as_str().unwrap_or("report");
        entries.push(Entry {
            at: delivery.sent_at.unwrap_or(delivery.created_at),
            what: format!(
                "{report} report to {}: {}{}",
                delivery.sink,
                delivery.state,
                if delivery.attempts > 1 {
                    format!(" after {} attempts", delivery.attempts)
                } else {
                    String::new()
                }
            ),
            output: delivery.last_error.clone(),
            bad: delivery.last_error.is_some() && delivery.sent_at.is_none(),
        });
    }
    for approval in &detail.approvals {
        entries.push(Entry {
            at: approval.created_at,
            what: if approval.forced {
                format!("action {} forced", approval.action)
            } else {
                format!(
                    "action {} suggested by {}",
                    approval.action,
                    approval.suggested_by.join(", ")
                )
            },
            output: None,
            bad: false,
        });
        if let Some(decided) = approval.decided_at {
            entries.push(Entry {
                at: decided,
                what: format!(
                    "action {} {} by {}",
                    approval.action,
                    approval.state,
                    approval.decided_by.as_deref().unwrap_or("?")
                ),
                output: approval.reason.clone(),
                bad: approval.state == "rejected",
            });
        }
    }
    for audit in &detail.audit {
        entries.push(Entry {
            at: audit.at,
            what: format!("{}: {}", audit.actor, audit.action),
            output: pretty(&audit.detail),
            bad: false,
        });
    }
    entries.sort_by_key(|e| e.at);
    entries
}

/// `GET /incidents/{id}`.
pub async fn show(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
    Query(flash): Query<Flash>,
) -> Response {
    let api = match reconciler(&state) {
        Ok(api) => api,
        Err(refusal) => return refusal.into_response(),
    };
    let detail = match api.incident(&id).await {
        Ok(detail) => detail,
        Err(UpstreamError::NotFound | UpstreamError::Refused { .. }) => {
            return not_found(&format!("The alert-reconciler has no incident `{id}`."));
        }
        Err(error) => return upstream_failed("alert-reconciler", &error),
    };
    let now = Utc::now();
    let incident = &detail.incident;
    let open = OPEN_STATES.contains(&incident.state.as_str());
    let pending: Vec<_> = detail
        .approvals
        .iter()
        .filter(|a| a.state == "pending")
        .collect();
    let content = html! {
        dl.facts {
            dt { "State" } dd.bad[incident.state == "awaiting_approval"] { (incident.state.replace('_', " ")) }
            dt { "Opened" } dd { (when(incident.opened_at, now)) }
            @if let Some(closed) = incident.closed_at { dt { "Closed" } dd { (when(closed, now)) } }
            @if let Some(expires) = incident.approval_expires_at { dt { "Approval expires" } dd { (when(expires, now)) } }
            dt { "Receiver" } dd { (incident.receiver) }
            dt { "Labels" } dd {
                @if let Some(labels) = incident.labels.as_object() {
                    @for (name, value) in labels {
                        code { (name) "=" (value.as_str().map_or_else(|| value.to_string(), str::to_owned)) } " "
                    }
                }
            }
        }
        h2 { "Suggested actions" }
        @if pending.is_empty() {
            p { "No action waits for approval." }
        }
        @for approval in &pending {
            section.panel aria-label=(format!("Action {}", approval.action)) {
                p {
                    strong { (approval.action) }
                    " — suggested by " (approval.suggested_by.join(", "))
                    "; expires " (when(approval.expires_at, now))
                }
                @if principal.may_operate() {
                    div.actions {
                        form method="post" action=(format!("/incidents/{}/approve", incident.id)) {
                            (csrf_field(&principal))
                            input type="hidden" name="action" value=(approval.action);
                            button type="submit" { "Approve " (approval.action) }
                        }
                        form.inline method="post" action=(format!("/incidents/{}/reject", incident.id)) {
                            (csrf_field(&principal))
                            input type="hidden" name="action" value=(approval.action);
                            label for=(format!("reason-{}", approval.id)) { "Reason" }
                            input id=(format!("reason-{}", approval.id)) type="text" name="reason" maxlength=(MAX_REASON_CHARS);
                            button.danger type="submit" { "Reject" }
                        }
                    }
                }
            }
        }
        @if open && principal.may_operate() {
            details {
                summary { "Run an action that was not suggested (forced, audited)" }
                form.inline method="post" action=(format!("/incidents/{}/force", incident.id)) {
                    (csrf_field(&principal))
                    label for="force-action" { "Action recipe" }
                    input #force-action type="text" name="action" required;
                    button.danger type="submit" { "Run it anyway" }
                }
            }
        }
        h2 { "Timeline" }
        ol.timeline {
            @for entry in timeline(&detail) {
                li.bad[entry.bad] {
                    (when(entry.at, now)) " — " (entry.what)
                    @if let Some(output) = &entry.output {
                        pre.output { (output) }
                    }
                }
            }
        }
    };
    page(
        &principal,
        Section::Incidents,
        &excerpt(&incident.title, 120),
        &flash,
        content,
    )
    .into_response()
}

/// The incident's page, where a form goes back to.
fn incident_path(id: &str) -> String {
    format!(
        "/incidents/{}",
        url::form_urlencoded::byte_serialize(id.as_bytes()).collect::<String>()
    )
}

fn refused(error: &UpstreamError) -> String {
    match error {
        // The reconciler's own words: expired, already approved by whom, not suggested…
        UpstreamError::Refused { detail, .. } => format!("Refused: {detail}"),
        UpstreamError::NotFound => "Refused: the incident no longer exists.".to_owned(),
        other => format!("The alert-reconciler did not answer: {other}"),
    }
}

/// `POST /incidents/{id}/approve` and `/force` (operators).
async fn approve_or_force(
    state: &AppState,
    principal: &Principal,
    id: &str,
    form: &FormFields,
    force: bool,
) -> Response {
    let api = match reconciler(state) {
        Ok(api) => api,
        Err(refusal) => return refusal.into_response(),
    };
    let here = incident_path(id);
    let Some(action) = form.get("action") else {
        return back(&here, Err("Name the action.".to_owned()));
    };
    let name = if force { "force" } else { "approve" };
    let outcome = api
        .approve(id, action, force, &principal.audit_name())
        .await;
    state
        .metrics
        .action(name, if outcome.is_ok() { "ok" } else { "error" });
    tracing::info!(user = %principal.user, incident = %id, action, force, ok = outcome.is_ok(), "console: approve an action");
    back(
        &here,
        outcome
            .map(|_| {
                if force {
                    format!("Forced {action}: its run has started.")
                } else {
                    format!("Approved {action}: its run has started.")
                }
            })
            .map_err(|e| refused(&e)),
    )
}

pub async fn approve(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Extension(form): Extension<FormFields>,
    Path(id): Path<String>,
) -> Response {
    approve_or_force(&state, &principal, &id, &form, false).await
}

pub async fn force(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Extension(form): Extension<FormFields>,
    Path(id): Path<String>,
) -> Response {
    approve_or_force(&state, &principal, &id, &form, true).await
}

/// `POST /incidents/{id}/reject` (operators).
pub async fn reject(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Extension(form): Extension<FormFields>,
    Path(id): Path<String>,
) -> Response {
    let api = match reconciler(&state) {
        Ok(api) => api,
        Err(refusal) => return refusal.into_response(),
    };
    let here = incident_path(&id);
    let Some(action) = form.get("action") else {
        return back(&here, Err("Name the action.".to_owned()));
    };
    // Its length is the service's to judge: a refusal comes back in its own words.
    let reason = form.get("reason");
    let outcome = api
        .reject(&id, action, &principal.audit_name(), reason)
        .await;
    state
        .metrics
        .action("reject", if outcome.is_ok() { "ok" } else { "error" });
    tracing::info!(user = %principal.user, incident = %id, action, ok = outcome.is_ok(), "console: reject an action");
    back(
        &here,
        outcome
            .map(|_| format!("Rejected {action}."))
            .map_err(|e| refused(&e)),
    )
}

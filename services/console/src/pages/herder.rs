//! The pipeline herder: its decisions (filtered, one with its matched log line and its
//! retries) and its pause switch.

use axum::Extension;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use maud::{Markup, html};
use serde::Deserialize;

use super::{
    Flash, PageError, Section, back, csrf_field, error_page, not_found, page, upstream_failed, when,
};
use crate::app::AppState;
use crate::auth::Principal;
use crate::form::FormFields;
use crate::upstream::UpstreamError;
use crate::upstream::herder::{Decision, DecisionFilter, HerderApi, PAGE_SIZE, PauseState};

/// The herder's limit on a pause reason, as a hint to the browser (the herder enforces it).
const MAX_REASON_CHARS: usize = 500;

fn herder(state: &AppState) -> Result<&HerderApi, PageError> {
    state.herder.as_ref().ok_or_else(|| PageError {
        status: StatusCode::NOT_FOUND,
        title: "Pipeline herder not configured",
        detail:
            "The console does not know the pipeline-herder: set HERDER_URL and HERDER_ADMIN_TOKEN."
                .into(),
    })
}

/// The page's query: the filters and the flash. Flat, with text values: serde cannot
/// flatten numbers out of a query string.
#[derive(Debug, Default, Deserialize)]
pub struct HerderQuery {
    instance: Option<String>,
    project: Option<String>,
    matcher: Option<String>,
    action: Option<String>,
    state: Option<String>,
    before: Option<String>,
    notice: Option<String>,
    error: Option<String>,
}

impl HerderQuery {
    fn split(self) -> Result<(DecisionFilter, Flash), String> {
        let before = match self.before.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(text) => Some(text.parse::<i64>().map_err(|_| {
                format!("`before` must be a decision id (a number), not `{text}`.")
            })?),
        };
        Ok((
            DecisionFilter {
                instance: self.instance,
                project: self.project,
                matcher: self.matcher,
                action: self.action,
                state: self.state,
                before,
            },
            Flash {
                notice: self.notice,
                error: self.error,
            },
        ))
    }
}

/// `GET /herder`.
pub async fn show(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    query: Result<Query<HerderQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let parsed = query
        .map_err(|rejection| rejection.body_text())
        .and_then(|Query(query)| query.split());
    let (filter, flash) = match parsed {
        Ok(parsed) => parsed,
        Err(problem) => return error_page(StatusCode::BAD_REQUEST, "Bad filter", &problem),
    };
    let api = match herder(&state) {
        Ok(api) => api,
        Err(refusal) => return refusal.into_response(),
    };
    let (pause, decisions) = tokio::join!(api.pause_state(), api.decisions(&filter));
    let pause = match pause {
        Ok(pause) => pause,
        Err(error) => return upstream_failed("pipeline-herder", &error),
    };
    let decisions = match decisions {
        Ok(decisions) => decisions,
        Err(UpstreamError::Refused { detail, .. }) => {
            return error_page(StatusCode::BAD_REQUEST, "Bad filter", &detail);
        }
        Err(error) => return upstream_failed("pipeline-herder", &error),
    };
    let content = html! {
        (pause_panel(&principal, &pause))
        (filter_form(&filter))
        (decision_table(&decisions))
        @if decisions.len() == PAGE_SIZE
            && let Some(last) = decisions.last() {
            p {
                a href=(older_link(&filter, last.id)) { "Older decisions" }
            }
        }
    };
    page(
        &principal,
        Section::Herder,
        "Pipeline herder",
        &flash,
        content,
    )
    .into_response()
}

fn older_link(filter: &DecisionFilter, last_id: i64) -> String {
    let next = DecisionFilter {
        before: Some(last_id),
        ..filter.clone()
    };
    let query = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(next.query())
        .finish();
    format!("/herder?{query}")
}

fn pause_panel(principal: &Principal, pause: &PauseState) -> Markup {
    let now = Utc::now();
    html! {
        section.panel aria-labelledby="pause-title" {
            h2 #pause-title { "Retries" }
            @if pause.paused {
                p.state.bad {
                    strong { "Paused" }
                    @if let Some(by) = &pause.by { " by " (by) }
                    @if let Some(since) = pause.since { " since " (when(since, now)) }
                    @if let Some(reason) = &pause.reason { ": " (reason) }
                }
                p { "Every retry the herder would make is reported instead." }
            } @else {
                p.state.good {
                    strong { "Retrying" }
                    @if let Some(by) = &pause.by { " (resumed by " (by) }
                    @if let Some(since) = pause.since { " " (when(since, now)) }
                    @if pause.by.is_some() { ")" }
                }
            }
            @if principal.may_operate() {
                @if pause.paused {
                    form method="post" action="/herder/resume" {
                        (csrf_field(principal))
                        button type="submit" { "Resume retries" }
                    }
                } @else {
                    form.inline method="post" action="/herder/pause" {
                        (csrf_field(principal))
                        label for="reason" { "Reason" }
                        input #reason type="text" name="reason" maxlength=(MAX_REASON_CHARS) placeholder="e.g. GitLab maintenance";
                        button.danger type="submit" { "Pause retries" }
                    }
                }
            }
        }
    }
}

fn filter_form(filter: &DecisionFilter) -> Markup {
    let field = |name: &str, label: &str, value: &Option<String>| {
        html! {
            div.field {
                label for=(format!("f-{name}")) { (label) }
                input id=(format!("f-{name}")) type="text" name=(name) value=(value.clone().unwrap_or_default());
            }
        }
    };
    html! {
        form.filters method="get" action="/herder" aria-label="Filter decisions" {
            (field("instance", "Instance", &filter.instance))
            (field("project", "Project", &filter.project))
            (field("matcher", "Matcher", &filter.matcher))
            (field("action", "Action", &filter.action))
            (field("state", "State", &filter.state))
            button type="submit" { "Filter" }
            a href="/herder" { "Clear" }
        }
    }
}

fn decision_table(decisions: &[Decision]) -> Markup {
    let now = Utc::now();
    html! {
        @if decisions.is_empty() {
            p { "No decisions match." }
        } @else {
            div.scroll {
                table {
                    caption { "Decisions, newest first" }
                    thead { tr {
                        th scope="col" { "#" } th scope="col" { "When" } th scope="col" { "Project" }
                        th scope="col" { "Job" } th scope="col" { "Matcher" } th scope="col" { "Action" }
                        th scope="col" { "State" } th scope="col" { "Outcome" }
                    } }
                    tbody {
                        @for d in decisions {
                            tr {
                                td { a href=(format!("/herder/decisions/{}", d.id)) { (d.id) } }
                                td { (when(d.decided_at, now)) }
                                td { (d.project_path) }
                                td { (d.job_name) " #" (d.job_id) }
                                td { (d.matcher.as_deref().unwrap_or("—")) }
                                td { (d.action) }
                                td { (d.state) }
                                td { (d.outcome.as_deref().unwrap_or("—")) }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// `GET /herder/decisions/{id}`.
pub async fn decision(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
) -> Response {
    let Ok(id) = id.parse::<i64>() else {
        return not_found(&format!(
            "There is no decision `{id}`: decision ids are numbers."
        ));
    };
    let api = match herder(&state) {
        Ok(api) => api,
        Err(refusal) => return refusal.into_response(),
    };
    let detail = match api.decision(id).await {
        Ok(detail) => detail,
        Err(UpstreamError::NotFound) => {
            return not_found(&format!("The herder has no decision {id}."));
        }
        Err(error) => return upstream_failed("pipeline-herder", &error),
    };
    let d = &detail.decision;
    let now = Utc::now();
    let content = html! {
        dl.facts {
            dt { "Job" } dd { a href=(d.job_url) { (d.job_name) " #" (d.job_id) } " (stage " (d.job_stage) ")" }
            dt { "Project" } dd { (d.project_path) " on " (d.instance) }
            dt { "Pipeline" } dd { (d.pipeline_id) " on " (d.git_ref) }
            dt { "Decided" } dd { (when(d.decided_at, now)) }
            dt { "Failure reason" } dd { (d.failure_reason.as_deref().unwrap_or("—")) }
            dt { "Matcher" } dd { (d.matcher.as_deref().unwrap_or("none matched")) }
            dt { "Action" } dd { (d.action) ": " (d.reason) }
            dt { "Attempt" } dd { (d.attempt) @if let Some(limit) = d.retry_limit { " of " (limit) } }
            dt { "State" } dd { (d.state) @if let Some(outcome) = &d.outcome { " — " (outcome) } }
            @if let Some(due) = d.retry_due_at { dt { "Retry due" } dd { (when(due, now)) } }
            @if let Some(new_job) = d.new_job_id { dt { "Retried as" } dd { "job #" (new_job) } }
            @if let Some(error) = &d.error { dt { "Error" } dd.failure { (error) } }
            dt { "Event" } dd { code { (d.event_id) } }
        }
        h2 { "Matched log line" }
        @match &d.log_line {
            Some(line) => pre.log { (line) },
            None => p { "No line of the job's log matched." },
        }
        h2 { "This job and its retries" }
        (decision_table(&detail.chain))
    };
    page(
        &principal,
        Section::Herder,
        &format!("Decision {id}"),
        &Flash::default(),
        content,
    )
    .into_response()
}

/// `POST /herder/pause` (operators).
pub async fn pause(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Extension(form): Extension<FormFields>,
) -> Response {
    let api = match herder(&state) {
        Ok(api) => api,
        Err(refusal) => return refusal.into_response(),
    };
    // Its length is the service's to judge: a refusal comes back in its own words.
    let reason = form.get("reason");
    let outcome = api.pause(reason, &principal.audit_name()).await;
    state
        .metrics
        .action("herder_pause", if outcome.is_ok() { "ok" } else { "error" });
    tracing::info!(user = %principal.user, reason = reason.unwrap_or(""), ok = outcome.is_ok(), "console: pause the herder");
    back(
        "/herder",
        outcome
            .map(|_| "Retries are paused.".to_owned())
            .map_err(|e| format!("The herder did not pause: {e}")),
    )
}

/// `POST /herder/resume` (operators).
pub async fn resume(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
) -> Response {
    let api = match herder(&state) {
        Ok(api) => api,
        Err(refusal) => return refusal.into_response(),
    };
    let outcome = api.resume(&principal.audit_name()).await;
    state.metrics.action(
        "herder_resume",
        if outcome.is_ok() { "ok" } else { "error" },
    );
    tracing::info!(user = %principal.user, ok = outcome.is_ok(), "console: resume the herder");
    back(
        "/herder",
        outcome
            .map(|_| "Retries resumed.".to_owned())
            .map_err(|e| format!("The herder did not resume: {e}")),
    )
}

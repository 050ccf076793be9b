//! Parked messages: every `*.parked` queue, its messages, one message's headers and body;
//! replay or discard one, a selection, or all that match a filter. The broker work is
//! `steadfast_messaging::admin` — the same code as `steadfastctl parked|replay|discard`.

use std::collections::BTreeSet;

use axum::Extension;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use maud::html;
use serde::Deserialize;
use steadfast_messaging::MessagingError;
use steadfast_messaging::admin::{self, ParkedMessage, ReplayFilter};
use steadfast_messaging::topology::parked_queue_name;

use super::overview::{QueueKind, kind_of};
use super::{
    Flash, PageError, Section, back, csrf_field, error_page, excerpt, not_found, page, when,
};
use crate::app::AppState;
use crate::auth::Principal;
use crate::form::{FormFields, duration_field};

/// The most messages one page lists (and one message page searches).
pub const MAX_LISTED: usize = 500;

fn work_queue(state: &AppState, queue: &str) -> Result<String, PageError> {
    let work = admin::work_queue_of(queue);
    let prefix = format!("{}.", state.config.namespace.as_str());
    if !work.starts_with(&prefix) || kind_of(work) != QueueKind::Work {
        return Err(PageError::not_found(format!(
            "`{queue}` is not a work queue of namespace `{}`.",
            state.config.namespace.as_str()
        )));
    }
    Ok(work.to_owned())
}

fn broker_failed(queue: &str, error: &MessagingError) -> Response {
    match error {
        MessagingError::QueueNotFound(name) => {
            not_found(&format!("There is no queue `{name}` (for `{queue}`)."))
        }
        other => error_page(
            StatusCode::BAD_GATEWAY,
            "RabbitMQ did not answer",
            &format!("Reading `{queue}` failed: {other}"),
        ),
    }
}

/// `GET /parked`: every parking lot of the namespace with its depth.
pub async fn index(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Query(flash): Query<Flash>,
) -> Response {
    let queues = state
        .management
        .namespace_queues(&state.config.namespace)
        .await;
    let content = match queues {
        Err(error) => html! {
            p.failure role="alert" { "The list of queues is unavailable: " (error) }
        },
        Ok(queues) => {
            let parked: Vec<_> = queues
                .into_iter()
                .filter(|q| kind_of(&q.name) == QueueKind::Parked)
                .collect();
            html! {
                @if parked.is_empty() {
                    p { "No parking lots in this namespace yet." }
                } @else {
                    div.scroll { table {
                        caption { "Parking lots (depths up to 5 s behind)" }
                        thead { tr { th scope="col" { "Queue" } th.num scope="col" { "Messages" } } }
                        tbody {
                            @for q in &parked {
                                @let work = admin::work_queue_of(&q.name);
                                tr {
                                    td { a href=(format!("/parked/{work}")) { (q.name) } }
                                    td.num.bad[q.messages > 0] { (q.messages) }
                                }
                            }
                        }
                    } }
                }
            }
        }
    };
    page(
        &principal,
        Section::Parked,
        "Parked messages",
        &flash,
        content,
    )
    .into_response()
}

/// The list's filter, as typed into its form.
#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    #[serde(rename = "type")]
    event_type: Option<String>,
    older_than: Option<String>,
    notice: Option<String>,
    error: Option<String>,
}

/// The filter a form or a query describes (type, age), refused precisely when unreadable.
fn filter_from(event_type: Option<&str>, older_than: Option<&str>) -> Result<ReplayFilter, String> {
    Ok(ReplayFilter {
        event_type: event_type
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(str::to_owned),
        older_than: older_than
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(|t| duration_field("older than", t))
            .transpose()?,
        ..ReplayFilter::default()
    })
}

/// `GET /parked/{queue}`.
pub async fn queue(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(queue): Path<String>,
    Query(query): Query<ListQuery>,
) -> Response {
    let work = match work_queue(&state, &queue) {
        Ok(work) => work,
        Err(refusal) => return refusal.into_response(),
    };
    let filter = match filter_from(query.event_type.as_deref(), query.older_than.as_deref()) {
        Ok(filter) => filter,
        Err(problem) => return error_page(StatusCode::BAD_REQUEST, "Bad filter", &problem),
    };
    let messages = match admin::parked(&state.broker, &work, MAX_LISTED).await {
        Ok(messages) => messages,
        Err(error) => return broker_failed(&work, &error),
    };
    let total = messages.len();
    let shown: Vec<&ParkedMessage> = messages.iter().filter(|m| filter.matches(m)).collect();
    let flash = Flash {
        notice: query.notice.clone(),
        error: query.error.clone(),
    };
    let content = html! {
        p { (parked_queue_name(&work)) " → replays go back to " code { (work) } "." }
        form.filters method="get" action=(format!("/parked/{work}")) aria-label="Filter parked messages" {
            div.field {
                label for="f-type" { "Event type" }
                input #f-type type="text" name="type" value=(query.event_type.clone().unwrap_or_default());
            }
            div.field {
                label for="f-age" { "Parked at least" }
                input #f-age type="text" name="older_than" placeholder="e.g. 30m" value=(query.older_than.clone().unwrap_or_default());
            }
            button type="submit" { "Filter" }
            a href=(format!("/parked/{work}")) { "Clear" }
        }
        @if shown.is_empty() {
            p { "No parked messages" @if total > 0 { " match (" (total) " parked)" } "." }
        } @else {
            form method="post" {
                (csrf_field(&principal))
                div.scroll { table {
                    caption { (shown.len()) " of " (total) " parked messages" @if total == MAX_LISTED { " (the first " (MAX_LISTED) ")" } }
                    thead { tr {
                        @if principal.may_operate() {
                            th scope="col" {
                                input type="checkbox" data-select-all="id" aria-label="Select all" hidden;
                            }
                        }
                        th scope="col" { "Type" } th scope="col" { "Id" } th scope="col" { "Parked" }
                        th scope="col" { "Why" } th.num scope="col" { "Retries" } th scope="col" { "Error" }
                    } }
                    tbody {
                        @for m in &shown {
                            tr {
                                @if principal.may_operate() {
                                    td {
                                        @if let Some(id) = &m.id {
                                            input type="checkbox" name="id" value=(id) aria-label=(format!("Select {id}"));
                                        }
                                    }
                                }
                                td { (m.event_type.as_deref().unwrap_or("—")) }
                                td {
                                    @match &m.id {
                                        Some(id) => a href=(format!("/parked/{work}/message/{}", urlencode(id))) { code { (id) } },
                                        None => "(no id)",
                                    }
                                }
                                td { @match m.parked_at { Some(at) => (when(at, Utc::now())), None => "—" } }
                                td { (m.reason.as_deref().unwrap_or("—")) }
                                td.num { (m.retry_count) }
                                td { (excerpt(m.error.as_deref().unwrap_or(""), 160)) }
                            }
                        }
                    }
                } }
                @if principal.may_operate() {
                    div.actions {
                        button type="submit" formaction=(format!("/parked/{work}/replay")) { "Replay selected" }
                        button.danger type="submit" formaction=(format!("/parked/{work}/discard")) { "Discard selected…" }
                    }
                }
            }
            @if principal.may_operate() {
                form method="post" {
                    (csrf_field(&principal))
                    input type="hidden" name="scope" value="matching";
                    input type="hidden" name="type" value=(query.event_type.clone().unwrap_or_default());
                    input type="hidden" name="older_than" value=(query.older_than.clone().unwrap_or_default());
                    div.actions {
                        button.secondary type="submit" formaction=(format!("/parked/{work}/replay")) {
                            "Replay all " (shown.len()) " matching"
                        }
                        button.danger type="submit" formaction=(format!("/parked/{work}/discard")) {
                            "Discard all " (shown.len()) " matching…"
                        }
                    }
                }
            }
        }
    };
    page(
        &principal,
        Section::Parked,
        &format!("Parked: {work}"),
        &flash,
        content,
    )
    .into_response()
}

fn urlencode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

/// `GET /parked/{queue}/message/{id}`.
pub async fn message(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path((queue, id)): Path<(String, String)>,
) -> Response {
    let work = match work_queue(&state, &queue) {
        Ok(work) => work,
        Err(refusal) => return refusal.into_response(),
    };
    let messages = match admin::parked(&state.broker, &work, MAX_LISTED).await {
        Ok(messages) => messages,
        Err(error) => return broker_failed(&work, &error),
    };
    let Some(m) = messages
        .iter()
        .find(|m| m.id.as_deref() == Some(id.as_str()))
    else {
        return not_found(&format!(
            "No message `{id}` is parked in `{}` (it may have been replayed or discarded).",
            parked_queue_name(&work)
        ));
    };
    let body = serde_json::from_str::<serde_json::Value>(&m.body)
        .ok()
        .and_then(|v| serde_json::to_string_pretty(&v).ok())
        .unwrap_or_else(|| m.body.clone());
    let content = html! {
        dl.facts {
            dt { "Type" } dd { (m.event_type.as_deref().unwrap_or("—")) }
            dt { "Parked" } dd { @match m.parked_at { Some(at) => (when(at, Utc::now())), None => "—" } }
            dt { "Why" } dd { (m.reason.as_deref().unwrap_or("—")) }
            dt { "Retries" } dd { (m.retry_count) }
            dt { "Error" } dd { (m.error.as_deref().unwrap_or("—")) }
            dt { "First published to" } dd {
                (m.original_exchange.as_deref().unwrap_or("—")) " / " (m.original_routing_key.as_deref().unwrap_or("—"))
            }
            dt { "Published by" } dd { (m.app_id.as_deref().unwrap_or("—")) }
            dt { "Size" } dd { (m.bytes) " bytes" }
        }
        @if principal.may_operate() {
            form method="post" {
                (csrf_field(&principal))
                input type="hidden" name="id" value=(id);
                div.actions {
                    button type="submit" formaction=(format!("/parked/{work}/replay")) { "Replay this message" }
                    button.danger type="submit" formaction=(format!("/parked/{work}/discard")) { "Discard this message…" }
                }
            }
        }
        h2 { "Headers" }
        div.scroll { table {
            thead { tr { th scope="col" { "Header" } th scope="col" { "Value" } } }
            tbody {
                @for (name, value) in &m.headers {
                    tr { td { code { (name) } } td { (value) } }
                }
            }
        } }
        h2 { "Body" }
        pre.body { (body) }
    };
    page(
        &principal,
        Section::Parked,
        &format!("Parked message {id}"),
        &Flash::default(),
        content,
    )
    .into_response()
}

/// What a replay or discard form selected: ids ticked, or everything matching a filter.
fn selection(form: &FormFields) -> Result<(ReplayFilter, String), String> {
    if form.get("scope") == Some("matching") {
        let filter = filter_from(form.get("type"), form.get("older_than"))?;
        let described = match (&filter.event_type, filter.older_than) {
            (None, None) => "every parked message".to_owned(),
            _ => "every parked message matching the filter".to_owned(),
        };
        return Ok((filter, described));
    }
    let ids: BTreeSet<String> = form.all("id").into_iter().collect();
    if ids.is_empty() {
        return Err("Select at least one message.".to_owned());
    }
    let described = format!("{} selected message(s)", ids.len());
    Ok((
        ReplayFilter {
            ids: Some(ids),
            ..ReplayFilter::default()
        },
        described,
    ))
}

/// What a replay or discard form asks for, checked: the work queue, the page to go back to,
/// the filter and how to describe it in the log.
struct Selection {
    work: String,
    here: String,
    filter: ReplayFilter,
    described: String,
}

/// Why a replay or discard form was not acted on.
enum Refusal {
    /// Not a queue of ours: an error page.
    Page(PageError),
    /// Nothing or something unreadable selected: back to the list, saying so.
    Back { to: String, problem: String },
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        match self {
            Self::Page(error) => error.into_response(),
            Self::Back { to, problem } => back(&to, Err(problem)),
        }
    }
}

fn selected(state: &AppState, queue: &str, form: &FormFields) -> Result<Selection, Refusal> {
    let work = work_queue(state, queue).map_err(Refusal::Page)?;
    let here = format!("/parked/{work}");
    match selection(form) {
        Ok((filter, described)) => Ok(Selection {
            work,
            here,
            filter,
            described,
        }),
        Err(problem) => Err(Refusal::Back { to: here, problem }),
    }
}

/// `POST /parked/{queue}/replay` (operators).
pub async fn replay(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Extension(form): Extension<FormFields>,
    Path(queue): Path<String>,
) -> Response {
    let Selection {
        work,
        here,
        filter,
        described,
    } = match selected(&state, &queue, &form) {
        Ok(selection) => selection,
        Err(refusal) => return refusal.into_response(),
    };
    let outcome = admin::replay(&state.broker, &work, &filter).await;
    state
        .metrics
        .action("replay", if outcome.is_ok() { "ok" } else { "error" });
    match outcome {
        Ok(report) => {
            tracing::info!(user = %principal.user, queue = %work, selection = %described, moved = report.moved, "console: replayed parked messages");
            back(
                &here,
                Ok(format!(
                    "Replayed {} message(s) to {work}.{}",
                    report.moved,
                    if filter
                        .ids
                        .as_ref()
                        .is_some_and(|ids| ids.len() > report.moved)
                    {
                        " Some selected messages were no longer parked."
                    } else {
                        ""
                    }
                )),
            )
        }
        Err(error) => {
            tracing::error!(user = %principal.user, queue = %work, %error, "console: replay failed");
            back(&here, Err(format!("The replay failed: {error}")))
        }
    }
}

/// `POST /parked/{queue}/discard` (operators): first a confirmation page listing what would go,
/// then, with `confirm=yes`, the discard.
pub async fn discard(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Extension(form): Extension<FormFields>,
    Path(queue): Path<String>,
) -> Response {
    let Selection {
        work,
        here,
        filter,
        described,
    } = match selected(&state, &queue, &form) {
        Ok(selection) => selection,
        Err(refusal) => return refusal.into_response(),
    };
    if form.get("confirm") != Some("yes") {
        return confirm_discard(&state, &principal, &work, &form, &filter, &described).await;
    }
    let outcome = admin::discard(&state.broker, &work, &filter).await;
    state
        .metrics
        .action("discard", if outcome.is_ok() { "ok" } else { "error" });
    match outcome {
        Ok(report) => {
            tracing::warn!(user = %principal.user, queue = %work, selection = %described, removed = report.removed, "console: discarded parked messages");
            back(
                &here,
                Ok(format!(
                    "Discarded {} message(s) from {}.",
                    report.removed,
                    parked_queue_name(&work)
                )),
            )
        }
        Err(error) => {
            tracing::error!(user = %principal.user, queue = %work, %error, "console: discard failed");
            back(&here, Err(format!("The discard failed: {error}")))
        }
    }
}

async fn confirm_discard(
    state: &AppState,
    principal: &Principal,
    work: &str,
    form: &FormFields,
    filter: &ReplayFilter,
    described: &str,
) -> Response {
    let messages = match admin::parked(&state.broker, work, MAX_LISTED).await {
        Ok(messages) => messages,
        Err(error) => return broker_failed(work, &error),
    };
    let doomed: Vec<&ParkedMessage> = messages.iter().filter(|m| filter.matches(m)).collect();
    let content = html! {
        p.failure role="alert" {
            "Discarding removes " (described) " from " code { (parked_queue_name(work)) } " for good. "
            "These " (doomed.len()) " message(s) match now:"
        }
        ul {
            @for m in &doomed {
                li { code { (m.id.as_deref().unwrap_or("(no id)")) } " — " (m.event_type.as_deref().unwrap_or("?")) }
            }
        }
        form method="post" action=(format!("/parked/{work}/discard")) {
            (csrf_field(principal))
            @for id in form.all("id") { input type="hidden" name="id" value=(id); }
            @for field in ["scope", "type", "older_than"] {
                @if let Some(value) = form.get(field) { input type="hidden" name=(field) value=(value); }
            }
            input type="hidden" name="confirm" value="yes";
            div.actions {
                button.danger type="submit" { "Discard " (doomed.len()) " message(s)" }
                a href=(format!("/parked/{work}")) { "Cancel" }
            }
        }
    };
    page(
        principal,
        Section::Parked,
        "Discard parked messages?",
        &Flash::default(),
        content,
    )
    .into_response()
}

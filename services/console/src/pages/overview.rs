//! The overview: is every service ready, and where are messages piling up? Refreshed live
//! over server-sent events; without JavaScript, reloading the page does the same.

use std::collections::BTreeMap;
use std::convert::Infallible;

use axum::Extension;
use axum::extract::{Query, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::Stream;
use maud::{Markup, html};
use steadfast_messaging::admin::management::QueueInfo;
use steadfast_messaging::topology::{PARKED_SUFFIX, is_waiting_queue};

use super::incidents::OPEN_STATES;
use super::{Flash, Section, page};
use crate::app::AppState;
use crate::auth::Principal;
use crate::upstream::fleet::RECONCILED;
use crate::upstream::herder::PauseState;
use crate::upstream::probes::{Readiness, ServiceState, probe_all};
use crate::upstream::receiver::{LatestReading, ReceiverReading};

/// What a queue is for, as the overview groups them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueKind {
    Work,
    /// A retry tier or a delay queue: messages waiting to be tried again.
    Waiting,
    Parked,
}

pub fn kind_of(name: &str) -> QueueKind {
    if name.ends_with(PARKED_SUFFIX) {
        QueueKind::Parked
    } else if is_waiting_queue(name) {
        QueueKind::Waiting
    } else {
        QueueKind::Work
    }
}

/// Everything the overview shows, read at once.
pub struct Snapshot {
    pub services: Vec<ServiceState>,
    pub queues: Result<Vec<QueueInfo>, String>,
    pub pause: Option<Result<PauseState, String>>,
    /// Incidents per state, when the reconciler is configured.
    pub incidents: Option<Result<BTreeMap<String, u64>, String>>,
    /// How many clusters are not reconciled, when the HyperFleet API is configured.
    pub unreconciled: Option<Result<i64, String>>,
    /// When the receiver's metrics are configured: its last reading (`None` before the first
    /// scrape) — the spool, and webhooks per minute once two readings exist.
    pub receiver: Option<LatestReading>,
}

impl Snapshot {
    pub async fn read(state: &AppState) -> Self {
        let herder = async {
            match &state.herder {
                Some(api) => Some(api.pause_state().await.map_err(|e| e.to_string())),
                None => None,
            }
        };
        let incidents = async {
            match &state.reconciler {
                // One incident is enough: the counts come with every page.
                Some(api) => Some(
                    api.incidents(None, None, 1)
                        .await
                        .map(|page| page.counts)
                        .map_err(|e| e.to_string()),
                ),
                None => None,
            }
        };
        let unreconciled = async {
            match &state.fleet {
                Some(api) => Some(
                    api.clusters(Some(&format!("status.conditions.{RECONCILED}='False'")), 1)
                        .await
                        .map(|page| page.total)
                        .map_err(|e| e.to_string()),
                ),
                None => None,
            }
        };
        let (services, queues, pause, incidents, unreconciled) = tokio::join!(
            probe_all(&state.http, &state.config.probes),
            state.management.namespace_queues(&state.config.namespace),
            herder,
            incidents,
            unreconciled,
        );
        Self {
            services,
            queues: queues.map_err(|e| e.to_string()),
            pause,
            incidents,
            unreconciled,
            // The refresher's last scrape: a page never scrapes the receiver itself.
            receiver: state.receiver.as_ref().map(|rate| rate.latest()),
        }
    }

    fn total(&self, kind: QueueKind) -> Option<u64> {
        self.queues.as_ref().ok().map(|queues| {
            queues
                .iter()
                .filter(|q| kind_of(&q.name) == kind)
                .map(|q| q.messages)
                .sum()
        })
    }
}

/// The part of the page that live refresh replaces.
pub fn fragment(snapshot: &Snapshot) -> Markup {
    let ready = snapshot
        .services
        .iter()
        .filter(|s| matches!(s.readiness, Readiness::Ready(_)))
        .count();
    let number = |n: Option<u64>| n.map_or("?".to_owned(), |n| n.to_string());
    let parked = snapshot.total(QueueKind::Parked);
    html! {
        div.cards {
            div.card {
                span.number.good[ready == snapshot.services.len()].bad[ready < snapshot.services.len()] {
                    (ready) "/" (snapshot.services.len())
                }
                span.label { "services ready" }
            }
            @if let Some(receiver) = &snapshot.receiver {
                @match receiver {
                    None => {
                        div.card { span.number { "…" } span.label { "webhooks/min" } }
                    }
                    Some(Ok(ReceiverReading { stats, per_minute })) => {
                        div.card {
                            span.number { @match per_minute { Some(r) => (format!("{r:.0}")), None => "…" } }
                            span.label { "webhooks/min" }
                        }
                        @if let Some(depth) = stats.spool_depth {
                            div.card {
                                span.number.bad[depth > 0.0] { (depth) }
                                span.label { "in the receiver's spool" }
                            }
                        }
                    }
                    Some(Err(_)) => {
                        div.card { span.number.warn { "?" } span.label { "webhooks/min" } }
                    }
                }
            }
            div.card {
                span.number.bad[parked.unwrap_or(0) > 0] { (number(parked)) }
                span.label { a href="/parked" { "events parked" } }
            }
            div.card {
                span.number { (number(snapshot.total(QueueKind::Waiting))) }
                span.label { "waiting to be retried" }
            }
            div.card {
                span.number { (number(snapshot.total(QueueKind::Work))) }
                span.label { "in work queues" }
            }
            @if let Some(incidents) = &snapshot.incidents {
                @match incidents {
                    Ok(counts) => {
                        @let open: u64 = OPEN_STATES.iter().filter_map(|s| counts.get(*s)).sum();
                        @let waiting = counts.get("awaiting_approval").copied().unwrap_or(0);
                        div.card {
                            span.number { (open) }
                            span.label { a href="/incidents" { "incidents open" } }
                        }
                        div.card {
                            span.number.bad[waiting > 0] { (waiting) }
                            span.label { a href="/incidents?state=awaiting_approval" { "awaiting approval" } }
                        }
                    }
                    Err(_) => {
                        div.card { span.number.warn { "?" } span.label { a href="/incidents" { "incidents" } } }
                    }
                }
            }
            @if let Some(unreconciled) = &snapshot.unreconciled {
                div.card {
                    @match unreconciled {
                        Ok(n) => { span.number.bad[*n > 0] { (n) } }
                        Err(_) => { span.number.warn { "?" } }
                    }
                    span.label { a href="/fleet?unreconciled=1" { "clusters not reconciled" } }
                }
            }
            @if let Some(pause) = &snapshot.pause {
                div.card {
                    @match pause {
                        Ok(p) if p.paused => { span.number.bad { "paused" } }
                        Ok(_) => { span.number.good { "retrying" } }
                        Err(_) => { span.number.warn { "?" } }
                    }
                    span.label { a href="/herder" { "pipeline herder" } }
                }
            }
        }
        h2 { "Services" }
        @if snapshot.services.is_empty() {
            p { "No services configured: set RECEIVER_URL, HERDER_URL, RECONCILER_URL, SENTINEL_URL or ADAPTER_URL." }
        } @else {
            div.scroll { table {
                caption { "Readiness (each service's /readyz)" }
                thead { tr { th scope="col" { "Service" } th scope="col" { "State" } th scope="col" { "Checks" } } }
                tbody {
                    @for service in &snapshot.services {
                        tr {
                            td { (service.name) }
                            @match &service.readiness {
                                Readiness::Ready(checks) => { td.good { "ready" } td { (checks_list(checks)) } }
                                Readiness::NotReady(checks) => { td.bad { "not ready" } td { (checks_list(checks)) } }
                                Readiness::Unreachable(error) => { td.bad { "unreachable" } td { (error) } }
                            }
                        }
                    }
                }
            } }
        }
        h2 { "Queues" }
        @match &snapshot.queues {
            Err(error) => p.failure role="alert" { "Queue depths unavailable: " (error) },
            Ok(queues) if queues.is_empty() => p { "No queues in this namespace yet." },
            Ok(queues) => {
                div.scroll { table {
                    caption { "Depths from the RabbitMQ management API (up to 5 s behind)" }
                    thead { tr {
                        th scope="col" { "Queue" } th scope="col" { "Kind" }
                        th.num scope="col" { "Ready" } th.num scope="col" { "Unacked" } th.num scope="col" { "Consumers" }
                    } }
                    tbody {
                        @for q in queues {
                            @let kind = kind_of(&q.name);
                            tr {
                                td {
                                    @if kind == QueueKind::Parked {
                                        a href=(format!("/parked/{}", q.name)) { (q.name) }
                                    } @else { (q.name) }
                                }
                                td { @match kind { QueueKind::Work => "work", QueueKind::Waiting => "retry tier", QueueKind::Parked => "parked" } }
                                td.num.bad[kind == QueueKind::Parked && q.messages > 0] { (q.messages_ready) }
                                td.num { (q.messages_unacknowledged) }
                                td.num.bad[kind == QueueKind::Work && q.consumers == 0] { (q.consumers) }
                            }
                        }
                    }
                } }
            }
        }
    }
}

fn checks_list(checks: &[crate::upstream::probes::CheckLine]) -> Markup {
    html! {
        ul.checks {
            @for check in checks {
                li.good[check.ok].bad[!check.ok] { (check.name) ": " (check.detail) }
            }
        }
    }
}

/// `GET /`.
pub async fn show(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Query(flash): Query<Flash>,
) -> Response {
    let snapshot = Snapshot::read(&state).await;
    page(
        &principal,
        Section::Overview,
        "Overview",
        &flash,
        html! {
            div #live data-live="/live/overview" aria-live="polite" {
                (fragment(&snapshot))
            }
        },
    )
    .into_response()
}

/// `GET /live/overview`: the fragment the console's refresher renders every `CONSOLE_REFRESH`
/// (one reading for all viewers), until the browser goes away or the console shuts down.
pub async fn live(
    State(state): State<AppState>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let viewer = state.live.subscribe();
    let stop = state.shutdown.clone();
    let stream = futures_util::stream::unfold(viewer, move |mut viewer| {
        let stop = stop.clone();
        async move {
            tokio::select! {
                () = stop.cancelled() => None,
                changed = viewer.changed() => {
                    changed.ok()?;
                    let fragment = viewer.borrow_and_update().clone();
                    let event = Event::default().event("refresh").data(&*fragment);
                    Some((Ok(event), viewer))
                }
            }
        }
    });
    Sse::new(stream).keep_alive(KeepAlive::default())
}

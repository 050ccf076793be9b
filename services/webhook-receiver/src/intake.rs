//! The HTTP routes: authenticate, turn the request into events, make them durable, answer.
//!
//! | route | auth | events |
//! |---|---|---|
//! | `POST /gitlab`, `POST /` (CKI) | `X-Gitlab-Token` | one per request |
//! | `POST /alertmanager` | bearer or basic | one per alert |
//! | `POST /hooks/{name}` | HMAC-SHA256 of the body | one per request |
//!
//! Checks run cheapest and least revealing first: a header-only credential check (401)
//! before the body is read, then the content type (415), the size (413), the JSON (400) and
//! the fields (400). Answers: 200 when the broker confirmed every event, 202 when some were
//! spooled, 503 when neither took them — the sender's retry then has a chance; GitLab and
//! Alertmanager both retry (or count) 5xx, while a 4xx is final, so a 4xx is only ever given
//! for a request that can never succeed.
//!
//! Delivery runs in its own task: a sender that hangs up mid-request cannot cancel a
//! half-done publish or spool write.
//!
//! With spans exported, each request is a server span that continues the sender's
//! `traceparent`, and its events carry that span's context (see [`request::trace_context`]);
//! without, no span is created at all, so the request path costs what it did.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, post};
use serde_json::json;
use steadfast_events::TraceParent;
use steadfast_events::catalogue::{MESSAGE_TYPE_ALERTMANAGER, MESSAGE_TYPE_GITLAB};
use steadfast_service_kit::problem::Problem;
use steadfast_telemetry::trace;
use tokio::time::Instant;
use tokio_util::task::TaskTracker;
use tracing::{Instrument, Span};

use crate::alertmanager;
use crate::auth::{AlertmanagerAuth, GitlabSecrets};
use crate::delivery::{Delivery, Outcome};
use crate::event::OutgoingEvent;
use crate::gitlab::{self, GitlabHook};
use crate::hooks::HookSource;
use crate::metrics::ReceiverMetrics;
use crate::request::{self, event_id, read_body, require_json, trace_context};

/// Everything the routes share.
pub struct Intake {
    pub gitlab: GitlabSecrets,
    pub alertmanager: AlertmanagerAuth,
    pub hooks: HashMap<String, HookSource>,
    /// `<ns>.webhooks`.
    pub exchange: String,
    /// `app_id` of published messages.
    pub app_id: String,
    pub max_body_bytes: usize,
    pub delivery: Delivery,
    /// Deliveries in flight, awaited on shutdown.
    pub tasks: TaskTracker,
    pub metrics: ReceiverMetrics,
}

/// The webhook routes (probes are merged in by the app).
pub fn router(intake: Arc<Intake>) -> Router {
    Router::new()
        .route("/gitlab", post_only(gitlab_hook))
        .route("/", post_only(gitlab_hook))
        .route("/alertmanager", post_only(alertmanager_notification))
        .route("/hooks/{name}", post_only(generic_hook))
        .fallback(not_found)
        .with_state(intake)
}

fn post_only<H, T>(handler: H) -> MethodRouter<Arc<Intake>>
where
    H: axum::handler::Handler<T, Arc<Intake>>,
    T: 'static,
{
    post(handler).fallback(method_not_allowed)
}

async fn method_not_allowed(method: Method, uri: Uri) -> Response {
    let mut response = Problem::new(
        StatusCode::METHOD_NOT_ALLOWED,
        format!("{} accepts only POST, not {method}", uri.path()),
    )
    .into_response();
    response
        .headers_mut()
        .insert(header::ALLOW, header::HeaderValue::from_static("POST"));
    response
}

async fn not_found(method: Method, uri: Uri) -> Response {
    Problem::new(
        StatusCode::NOT_FOUND,
        format!(
            "no route for {method} {}; webhooks go to POST /gitlab, POST /alertmanager or POST /hooks/{{name}}",
            uri.path()
        ),
    )
    .into_response()
}

/// The events of one accepted request.
struct Accepted {
    events: Vec<OutgoingEvent>,
    outcomes: Vec<Outcome>,
}

impl Intake {
    /// Publishes or spools `events` in a task of their own and waits for the result.
    async fn deliver(
        self: &Arc<Self>,
        events: Vec<OutgoingEvent>,
        span: &Span,
    ) -> Result<Accepted, Problem> {
        let intake = self.clone();
        // In the request's span (when tracing), or the publish would start a trace of its own.
        let task = self.tasks.spawn(
            async move {
                let result = intake.delivery.deliver(&events).await;
                (events, result)
            }
            .instrument(span.clone()),
        );
        match task.await {
            Ok((events, Ok(outcomes))) => Ok(Accepted { events, outcomes }),
            Ok((events, Err(undeliverable))) => {
                for event in &events {
                    tracing::error!(
                        source = %event.source,
                        event_id = event.id(),
                        routing_key = %event.routing_key,
                        outcome = "rejected",
                        error = %undeliverable,
                        "webhook not accepted: neither the broker nor the spool took it"
                    );
                }
                Err(Problem::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!("{undeliverable}; retry later"),
                ))
            }
            Err(join_error) => {
                tracing::error!(error = %join_error, "delivery task failed");
                Err(Problem::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal error while delivering the event",
                ))
            }
        }
    }

    fn encode<T: serde::Serialize>(
        &self,
        source: &str,
        routing_key: String,
        envelope: &steadfast_events::Envelope<T>,
        message_type: &str,
    ) -> Result<OutgoingEvent, Problem> {
        OutgoingEvent::encode(
            source,
            &self.exchange,
            routing_key,
            envelope,
            &self.app_id,
            message_type,
        )
        .map_err(|e| Problem::bad_request(format!("cannot build a CloudEvent: {e}")))
    }

    /// The answer, the request metric and one log line per event (or one for a rejection).
    fn respond(
        &self,
        source: &str,
        result: Result<Accepted, Problem>,
        started: Instant,
    ) -> Response {
        let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
        let response = match result {
            Ok(accepted) => {
                let spooled = accepted.outcomes.contains(&Outcome::Spooled);
                let status = if spooled {
                    StatusCode::ACCEPTED
                } else {
                    StatusCode::OK
                };
                let mut listed = Vec::with_capacity(accepted.events.len());
                for (event, outcome) in accepted.events.iter().zip(&accepted.outcomes) {
                    tracing::info!(
                        source,
                        status = status.as_u16(),
                        event_id = event.id(),
                        trace_id = event.trace_id(),
                        routing_key = %event.routing_key,
                        outcome = outcome.as_str(),
                        elapsed_ms,
                        "webhook accepted"
                    );
                    listed.push(json!({
                        "id": event.id(),
                        "routing_key": event.routing_key,
                        "outcome": outcome.as_str(),
                    }));
                }
                let body = json!({
                    "status": if spooled { "spooled" } else { "published" },
                    "events": listed,
                });
                (status, axum::Json(body)).into_response()
            }
            Err(problem) => {
                let status = problem.status;
                if status >= 500 {
                    tracing::error!(
                        source,
                        status,
                        detail = problem.detail.as_deref().unwrap_or(""),
                        elapsed_ms,
                        "webhook not accepted"
                    );
                } else {
                    tracing::warn!(
                        source,
                        status,
                        detail = problem.detail.as_deref().unwrap_or(""),
                        elapsed_ms,
                        "webhook rejected"
                    );
                }
                problem.into_response()
            }
        };
        self.metrics
            .requests
            .with_label_values(&[source, response.status().as_str()])
            .inc();
        response
    }
}

// --- GitLab --------------------------------------------------------------------------------

async fn gitlab_hook(
    State(intake): State<Arc<Intake>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let span = trace::http_server_span("POST", "/gitlab", &headers);
    traced(&span, async {
        let _in_flight = intake.metrics.track_request();
        let started = Instant::now();
        let result = gitlab_events(&intake, &headers, body, &span).await;
        let result = match result {
            Ok(event) => intake.deliver(vec![event], &span).await,
            Err(problem) => Err(problem),
        };
        intake.respond("gitlab", result, started)
    })
    .await
}

/// Runs a request's handling in its span (a no-op span when tracing is off) and records the
/// answer's status on it.
async fn traced(span: &Span, handling: impl Future<Output = Response>) -> Response {
    let response = handling.instrument(span.clone()).await;
    trace::record_status(span, response.status().as_u16());
    response
}

async fn gitlab_events(
    intake: &Intake,
    headers: &HeaderMap,
    body: Body,
    span: &Span,
) -> Result<OutgoingEvent, Problem> {
    if !intake.gitlab.is_configured() {
        return Err(not_configured("GitLab", "GITLAB_WEBHOOK_SECRET"));
    }
    // The same 401 for a missing and a wrong token, and before the body is even read.
    let token = GitlabSecrets::token(headers)
        .filter(|token| intake.gitlab.is_known(token))
        .ok_or_else(Problem::unauthorized)?;
    require_json(headers)?;
    let body = read_body(body, headers, intake.max_body_bytes).await?;
    let payload = request::parse_raw_object(&body)?;
    let hook = GitlabHook::interpret(headers, payload).map_err(bad_request)?;
    if !intake.gitlab.authorizes(&hook.project_path, token) {
        return Err(Problem::unauthorized());
    }
    let id = event_id(headers, &gitlab::ID_HEADERS)?;
    let routing_key = hook.routing_key();
    let envelope = hook.into_envelope(id, &trace_context(headers, span));
    intake.encode("gitlab", routing_key, &envelope, MESSAGE_TYPE_GITLAB)
}

// --- Alertmanager --------------------------------------------------------------------------

async fn alertmanager_notification(
    State(intake): State<Arc<Intake>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let span = trace::http_server_span("POST", "/alertmanager", &headers);
    traced(&span, async {
        let _in_flight = intake.metrics.track_request();
        let started = Instant::now();
        let result = match alertmanager_events(&intake, &headers, body, &span).await {
            Ok(events) if events.is_empty() => Ok(Accepted {
                events,
                outcomes: Vec::new(),
            }),
            Ok(events) => intake.deliver(events, &span).await,
            Err(problem) => Err(problem),
        };
        intake.respond("alertmanager", result, started)
    })
    .await
}

async fn alertmanager_events(
    intake: &Intake,
    headers: &HeaderMap,
    body: Body,
    span: &Span,
) -> Result<Vec<OutgoingEvent>, Problem> {
    if !intake.alertmanager.is_configured() {
        return Err(not_configured(
            "Alertmanager",
            "ALERTMANAGER_TOKEN or ALERTMANAGER_BASIC_AUTH",
        ));
    }
    if !intake.alertmanager.authorizes(headers) {
        return Err(Problem::unauthorized());
    }
    require_json(headers)?;
    let body = read_body(body, headers, intake.max_body_bytes).await?;
    let notification = request::parse_object(&body)?;
    let trace: TraceParent = trace_context(headers, span);
    alertmanager::split(&notification, &trace)
        .map_err(bad_request)?
        .into_iter()
        .map(|alert| {
            intake.encode(
                "alertmanager",
                alert.routing_key,
                &alert.envelope,
                MESSAGE_TYPE_ALERTMANAGER,
            )
        })
        .collect()
}

// --- generic hooks -------------------------------------------------------------------------

async fn generic_hook(
    State(intake): State<Arc<Intake>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let span = trace::http_server_span("POST", "/hooks/{name}", &headers);
    traced(&span, async {
        let _in_flight = intake.metrics.track_request();
        let started = Instant::now();
        let Some(source) = intake.hooks.get(&name) else {
            let problem = Problem::new(
                StatusCode::NOT_FOUND,
                format!("no webhook source named `{name}` is configured"),
            );
            // One label for every unknown name, so a scanner cannot grow the metric without
            // bound.
            return intake.respond("unknown", Err(problem), started);
        };
        let result = match hook_event(&intake, source, &headers, body, &span).await {
            Ok(event) => intake.deliver(vec![event], &span).await,
            Err(problem) => Err(problem),
        };
        intake.respond(&source.name, result, started)
    })
    .await
}

async fn hook_event(
    intake: &Intake,
    source: &HookSource,
    headers: &HeaderMap,
    body: Body,
    span: &Span,
) -> Result<OutgoingEvent, Problem> {
    // The signature covers the body, so the body is read (bounded) before anything else.
    let body = read_body(body, headers, intake.max_body_bytes).await?;
    if !source.verify(headers, &body) {
        return Err(Problem::unauthorized());
    }
    require_json(headers)?;
    let payload = request::parse_object(&body)?;
    let event = source.event_name(headers, &payload).map_err(bad_request)?;
    let id = event_id(headers, &source.id_headers())?;
    let envelope = source
        .envelope(&event, id, payload, &trace_context(headers, span))
        .map_err(bad_request)?;
    intake.encode(
        &source.name,
        source.routing_key(&event),
        &envelope,
        &source.message_type,
    )
}

/// A 404 for a source this receiver has no credentials for: it cannot accept anything there.
/// A 400 whose detail is the error's text.
fn bad_request(error: impl std::error::Error) -> Problem {
    Problem::bad_request(error.to_string())
}

fn not_configured(what: &str, setting: &str) -> Problem {
    Problem::new(
        StatusCode::NOT_FOUND,
        format!("this receiver does not accept {what} webhooks ({setting} is not set)"),
    )
}

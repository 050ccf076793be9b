//! Traces that cross processes: continuing a W3C `traceparent` that arrived (a message, a
//! request), handing ours on (an event we publish, a request we send), and the spans of
//! outbound HTTP calls.
//!
//! Every function here is a no-op returning `None` / [`Span::none`] unless spans are exported
//! ([`enabled`]), so callers need no configuration of their own and pay, when tracing is off,
//! one check that does not allocate.
//!
//! # Implementation notes
//! * "Exported" is recognised by a marker layer installed next to the OpenTelemetry layer
//!   ([`layer`]): asking the subscriber whether it has the marker is a few type-id
//!   comparisons, whereas asking tracing-opentelemetry for a span's context takes locks and
//!   builds a `Context`.
//! * Values are the workspace's [`TraceParent`] (steadfast-events has no internal
//!   dependencies, so there is no cycle), because that is what envelopes carry; the
//!   conversion to OpenTelemetry's `SpanContext` goes through the hex text, which only
//!   happens while tracing is on.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};

use opentelemetry::trace::{
    SpanContext, SpanId, TraceContextExt as _, TraceFlags, TraceId, TraceState,
};
use steadfast_events::TraceParent;
use tracing::field::Empty;
use tracing::{Instrument as _, Span, Subscriber};
use tracing_opentelemetry::OpenTelemetrySpanExt as _;
use tracing_subscriber::Layer;
use tracing_subscriber::registry::LookupSpan;

/// The W3C header (and AMQP header) name.
pub const TRACEPARENT: &str = "traceparent";

/// Marks a subscriber whose spans are exported (see [`enabled`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct Exporting;

impl<S: Subscriber> Layer<S> for Exporting {}

/// The layer that records spans with `tracer` (and marks the subscriber as exporting).
/// [`crate::init`] installs it when `OTEL_EXPORTER_OTLP_ENDPOINT` is set; tests may install
/// it with a tracer of their own (see [`testing`]).
pub fn layer<S>(tracer: opentelemetry_sdk::trace::SdkTracer) -> impl Layer<S> + Send + Sync
where
    S: Subscriber + for<'a> LookupSpan<'a> + Send + Sync,
{
    tracing_opentelemetry::layer()
        .with_tracer(tracer)
        .and_then(Exporting)
}

/// Whether spans of this thread's subscriber are exported.
pub fn enabled() -> bool {
    tracing::dispatcher::get_default(|dispatch| dispatch.is::<Exporting>())
}

/// Whether `span` is recorded by an exporting subscriber.
fn exported(span: &Span) -> bool {
    span.with_subscriber(|(_, dispatch)| dispatch.is::<Exporting>())
        .unwrap_or(false)
}

/// Makes `span` the child of the remote span `parent` (a message's or a caller's). Call it
/// before the span is first entered: a started span keeps its parent.
pub fn continue_trace(span: &Span, parent: &TraceParent) {
    if !exported(span) {
        return;
    }
    if let Some(remote) = span_context(parent) {
        let parent = opentelemetry::Context::new().with_remote_span_context(remote);
        if let Err(error) = span.set_parent(parent) {
            tracing::debug!(%error, "cannot continue the remote trace");
        }
    }
}

/// The traceparent of `span` as exported (its trace id, its own span id and the sampling
/// flag), so that what it hands on becomes its child; `None` when tracing is off. Starts the
/// span if it has not started yet: record `otel.name` / `otel.kind` before calling this.
pub fn traceparent(span: &Span) -> Option<TraceParent> {
    if !exported(span) {
        return None;
    }
    let context = span.context();
    let otel_span = context.span();
    let span_context = otel_span.span_context();
    if !span_context.is_valid() {
        return None;
    }
    format!(
        "00-{}-{}-{:02x}",
        span_context.trace_id(),
        span_context.span_id(),
        span_context.trace_flags().to_u8()
    )
    .parse()
    .ok()
}

/// The traceparent of the current span (see [`traceparent`]).
pub fn current_traceparent() -> Option<TraceParent> {
    if !enabled() {
        return None;
    }
    traceparent(&Span::current())
}

/// Continues a trace context that was kept as text (a database column, so that work done
/// later, maybe on another replica, joins the trace of what caused it); a missing or
/// unreadable one leaves `span` where it is.
pub fn continue_stored(span: &Span, stored: Option<&str>) {
    if let Some(parent) = stored.and_then(|text| text.parse::<TraceParent>().ok()) {
        continue_trace(span, &parent);
    }
}

fn span_context(parent: &TraceParent) -> Option<SpanContext> {
    let trace_id = TraceId::from_hex(&parent.trace_id()).ok()?;
    let span_id = SpanId::from_hex(&parent.parent_id()).ok()?;
    let flags = if parent.sampled() {
        TraceFlags::SAMPLED
    } else {
        TraceFlags::default()
    };
    let context = SpanContext::new(trace_id, span_id, flags, true, TraceState::default());
    context.is_valid().then_some(context)
}

// --- HTTP -----------------------------------------------------------------------------------

/// The span of one outbound HTTP request (`otel.kind = client`, named by its method, as the
/// OpenTelemetry conventions name client spans), or [`Span::none`] when tracing is off. Its
/// traceparent is what the request carries: see [`with_traceparent`] / [`inject`].
pub fn http_client_span(method: &str, url: &str) -> Span {
    if !enabled() {
        return Span::none();
    }
    tracing::info_span!(
        "http.client",
        otel.name = method,
        otel.kind = "client",
        http.request.method = method,
        url.full = url,
        http.response.status_code = Empty,
        otel.status_code = Empty,
    )
}

/// The span of one inbound HTTP request (`otel.kind = server`, named `<METHOD> <route>`),
/// continuing the caller's `traceparent` header when it sent a valid one; [`Span::none`]
/// when tracing is off.
pub fn http_server_span(method: &str, route: &str, headers: &http::HeaderMap) -> Span {
    if !enabled() {
        return Span::none();
    }
    let span = tracing::info_span!(
        "http.server",
        otel.name = %format_args!("{method} {route}"),
        otel.kind = "server",
        http.request.method = method,
        http.route = route,
        http.response.status_code = Empty,
    );
    if let Some(parent) = traceparent_header(headers) {
        continue_trace(&span, &parent);
    }
    span
}

/// The caller's `traceparent` header, when it sent a valid one.
pub fn traceparent_header(headers: &http::HeaderMap) -> Option<TraceParent> {
    headers.get(TRACEPARENT)?.to_str().ok()?.parse().ok()
}

/// Records the answer's status on an HTTP span (a client span also fails on 4xx, a server
/// span only on 5xx, as the conventions say).
pub fn record_status(span: &Span, status: u16) {
    if span.is_none() {
        return;
    }
    span.record("http.response.status_code", status);
    let client = span
        .metadata()
        .is_some_and(|meta| meta.name() == "http.client");
    if status >= 500 || (client && status >= 400) {
        span.record("otel.status_code", "ERROR");
    }
}

/// Marks an HTTP client span failed without an answer (connection refused, timeout).
pub fn record_transport_error(span: &Span) {
    if !span.is_none() {
        span.record("otel.status_code", "ERROR");
    }
}

/// Adds the `traceparent` of `span` to `headers` (nothing when tracing is off).
pub fn inject(headers: &mut http::HeaderMap, span: &Span) {
    if let Some(value) = header_value(span) {
        headers.insert(TRACEPARENT, value);
    }
}

/// Adds the `traceparent` of `span` to a request being built (nothing when tracing is off).
pub fn with_traceparent(request: reqwest::RequestBuilder, span: &Span) -> reqwest::RequestBuilder {
    match header_value(span) {
        Some(value) => request.header(TRACEPARENT, value),
        None => request,
    }
}

fn header_value(span: &Span) -> Option<http::HeaderValue> {
    let traceparent = traceparent(span)?;
    http::HeaderValue::from_str(&traceparent.to_string()).ok()
}

/// A tower layer for HTTP clients built on tower (the Kubernetes client): every request gets
/// an [`http_client_span`] and carries its `traceparent`.
#[derive(Debug, Clone, Copy, Default)]
pub struct HttpClientLayer;

impl<S> tower::Layer<S> for HttpClientLayer {
    type Service = HttpClientService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        HttpClientService { inner }
    }
}

/// See [`HttpClientLayer`].
#[derive(Debug, Clone)]
pub struct HttpClientService<S> {
    inner: S,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S, B, RB> tower::Service<http::Request<B>> for HttpClientService<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<RB>>,
    S::Future: Send + 'static,
    S::Error: 'static,
    RB: 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<Result<S::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        let span = http_client_span(request.method().as_str(), &request.uri().to_string());
        inject(request.headers_mut(), &span);
        let response = span.in_scope(|| self.inner.call(request));
        let recorded = span.clone();
        Box::pin(
            async move {
                let result = response.await;
                match &result {
                    Ok(response) => record_status(&recorded, response.status().as_u16()),
                    Err(_) => record_transport_error(&recorded),
                }
                result
            }
            .instrument(span),
        )
    }
}

/// For tests of code that hands traces on: a tracer for the current thread only, whose spans
/// get real ids but are exported nowhere.
pub mod testing {
    use opentelemetry::trace::TracerProvider as _;
    use opentelemetry_sdk::trace::SdkTracerProvider;
    use tracing_subscriber::layer::SubscriberExt as _;

    /// Keeps the thread's tracer installed; dropping it restores the previous subscriber.
    pub struct LocalTracer {
        _default: tracing::subscriber::DefaultGuard,
        _provider: SdkTracerProvider,
    }

    /// Installs a recording tracer as this thread's subscriber (a `#[tokio::test]` runs its
    /// tasks on this thread unless it asks for a multi-threaded runtime).
    pub fn local_tracer() -> LocalTracer {
        let provider = SdkTracerProvider::builder().build();
        let subscriber = tracing_subscriber::registry().with(super::layer(provider.tracer("test")));
        LocalTracer {
            _default: tracing::subscriber::set_default(subscriber),
            _provider: provider,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_is_stamped_without_a_tracer() {
        let span = tracing::info_span!("work");
        assert!(!enabled());
        assert_eq!(traceparent(&span), None);
        assert_eq!(current_traceparent(), None);
        assert!(http_client_span("GET", "http://x/").is_none());
        let mut headers = http::HeaderMap::new();
        inject(&mut headers, &span);
        assert!(headers.is_empty());
    }

    #[test]
    fn a_continued_span_is_the_child_of_the_remote_parent() {
        let _tracer = testing::local_tracer();
        assert!(enabled());
        let remote: TraceParent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
            .parse()
            .unwrap();
        let span = tracing::info_span!("message", otel.kind = "consumer");
        continue_trace(&span, &remote);
        let own = traceparent(&span).expect("a recorded span has a traceparent");
        assert_eq!(own.trace_id(), remote.trace_id(), "same trace");
        assert_ne!(own.parent_id(), remote.parent_id(), "its own span id");
        assert!(own.sampled());

        // What it hands on is its own context: a child span, a request header.
        let child = span.in_scope(|| tracing::info_span!("child"));
        assert_eq!(traceparent(&child).unwrap().trace_id(), remote.trace_id());
        let current = span.in_scope(current_traceparent).unwrap();
        assert_eq!(current, own);
        let mut headers = http::HeaderMap::new();
        inject(&mut headers, &span);
        assert_eq!(headers[TRACEPARENT], own.to_string().as_str());
    }

    #[test]
    fn a_stored_context_is_continued_and_an_unreadable_one_ignored() {
        let _tracer = testing::local_tracer();
        let stored = TraceParent::new_random();
        let span = tracing::info_span!("later");
        continue_stored(&span, Some(&stored.to_string()));
        assert_eq!(traceparent(&span).unwrap().trace_id(), stored.trace_id());
        for unreadable in [None, Some("00-nonsense")] {
            let span = tracing::info_span!("later");
            continue_stored(&span, unreadable);
            assert_ne!(traceparent(&span).unwrap().trace_id(), stored.trace_id());
        }
    }

    #[test]
    fn a_server_span_continues_the_callers_header_and_ignores_garbage() {
        let _tracer = testing::local_tracer();
        let caller = TraceParent::new_random();
        let mut headers = http::HeaderMap::new();
        headers.insert(TRACEPARENT, caller.to_string().parse().unwrap());
        let span = http_server_span("POST", "/gitlab", &headers);
        assert_eq!(traceparent(&span).unwrap().trace_id(), caller.trace_id());

        headers.insert(TRACEPARENT, "00-nonsense".parse().unwrap());
        let span = http_server_span("POST", "/gitlab", &headers);
        assert_ne!(traceparent(&span).unwrap().trace_id(), caller.trace_id());
    }
}

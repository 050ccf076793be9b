//! An in-process OTLP collector (feature `otlp`): on one loopback port it receives OTLP over
//! HTTP (`POST /v1/traces`, protobuf, HTTP/1.1) and OTLP over gRPC (the `TraceService/Export`
//! call, HTTP/2 without TLS, as a collector's port 4317 speaks it) and keeps every span, so a
//! test can check the shape of a trace — which spans exist, and whose parent each is — not just
//! a trace id, and which protocol carried it.
//!
//! Point the services at it with `TelemetryConfig { otlp_endpoint: Some(collector.endpoint()),
//! .. }` (the global subscriber is per process: one such test per test binary). Spans are
//! exported in batches, so wait for them with [`Collector::wait_for`], never a sleep.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use http_body_util::{BodyExt as _, Full};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use prost::Message as _;

use crate::spawn_http;

/// One span as the collector received it. Ids are lower-case hex, as in a `traceparent`.
#[derive(Debug, Clone, PartialEq)]
pub struct CollectedSpan {
    pub trace_id: String,
    pub span_id: String,
    /// `None` for the root of a trace (or a span whose parent is in another process that
    /// exported nothing).
    pub parent_span_id: Option<String>,
    pub name: String,
    /// `internal`, `server`, `client`, `producer` or `consumer`.
    pub kind: &'static str,
    /// The `service.name` of the exporting resource.
    pub service: String,
    /// `http/protobuf` or `grpc`: how the span reached the collector.
    pub transport: &'static str,
    /// Every attribute, its value as text.
    pub attributes: BTreeMap<String, String>,
}

impl CollectedSpan {
    pub fn attribute(&self, key: &str) -> Option<&str> {
        self.attributes.get(key).map(String::as_str)
    }

    /// Whether `parent` is this span's parent (same trace, and its span id is our parent id).
    pub fn is_child_of(&self, parent: &CollectedSpan) -> bool {
        self.trace_id == parent.trace_id
            && self.parent_span_id.as_deref() == Some(parent.span_id.as_str())
    }
}

type Received = Arc<Mutex<Vec<CollectedSpan>>>;

/// A running collector.
pub struct Collector {
    endpoint: String,
    received: Received,
}

impl Collector {
    /// Listens on an ephemeral loopback port.
    pub async fn start() -> Self {
        let received: Received = Arc::default();
        let router = Router::new()
            .route("/v1/traces", post(export_http))
            .route(GRPC_EXPORT_PATH, post(export_grpc))
            .with_state(received.clone());
        Self {
            endpoint: spawn_http(router).await,
            received,
        }
    }

    /// The base URL for `OTEL_EXPORTER_OTLP_ENDPOINT`, with either protocol (the HTTP exporter
    /// appends `/v1/traces`; the gRPC one calls `TraceService/Export` over HTTP/2).
    pub fn endpoint(&self) -> String {
        self.endpoint.clone()
    }

    /// Every span received so far, in arrival order.
    pub fn spans(&self) -> Vec<CollectedSpan> {
        self.received
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Waits until `find` finds what it looks for among the spans received so far (batches
    /// arrive every few seconds), and returns it; panics after `timeout` with `what` and the
    /// names of the spans that did arrive.
    pub async fn wait_for<T>(
        &self,
        what: &str,
        timeout: Duration,
        mut find: impl FnMut(&[CollectedSpan]) -> Option<T>,
    ) -> T {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let found = {
                let spans = self
                    .received
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                find(&spans)
            };
            if let Some(found) = found {
                return found;
            }
            if tokio::time::Instant::now() >= deadline {
                let names: Vec<String> = self
                    .spans()
                    .iter()
                    .map(|s| format!("{} ({}, parent {:?})", s.name, s.kind, s.parent_span_id))
                    .collect();
                panic!(
                    "timed out after {timeout:?} waiting for {what}; spans received: {names:#?}"
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// The gRPC method an OTLP exporter calls (`opentelemetry.proto.collector.trace.v1`).
const GRPC_EXPORT_PATH: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";

async fn export_http(State(received): State<Received>, body: Bytes) -> Response {
    match ExportTraceServiceRequest::decode(body) {
        Ok(request) => {
            keep(&received, request, "http/protobuf");
            // An empty ExportTraceServiceResponse: full success.
            (
                StatusCode::OK,
                [(header::CONTENT_TYPE, "application/x-protobuf")],
                Vec::new(),
            )
                .into_response()
        }
        Err(error) => (StatusCode::BAD_REQUEST, error.to_string()).into_response(),
    }
}

/// A unary gRPC call: the request body is one length-prefixed message (a compressed flag byte,
/// a 4-byte big-endian length, the protobuf); the answer is one such message followed by the
/// `grpc-status` trailer, which is what tells the client whether the call succeeded.
async fn export_grpc(State(received): State<Received>, body: Bytes) -> Response {
    let outcome = match body.as_ref() {
        [0, a, b, c, d, message @ ..]
            if u32::from_be_bytes([*a, *b, *c, *d]) as usize == message.len() =>
        {
            ExportTraceServiceRequest::decode(message)
                .map_err(|error| format!("undecodable ExportTraceServiceRequest: {error}"))
        }
        [1, ..] => Err("compressed messages are not accepted".to_owned()),
        _ => Err("the body is not one length-prefixed gRPC message".to_owned()),
    };
    let mut trailers = HeaderMap::new();
    let reply = match outcome {
        Ok(request) => {
            keep(&received, request, "grpc");
            trailers.insert("grpc-status", HeaderValue::from_static("0"));
            // An empty ExportTraceServiceResponse, framed.
            Bytes::from_static(&[0, 0, 0, 0, 0])
        }
        Err(reason) => {
            // 3 = INVALID_ARGUMENT.
            trailers.insert("grpc-status", HeaderValue::from_static("3"));
            if let Ok(message) = HeaderValue::from_str(&reason) {
                trailers.insert("grpc-message", message);
            }
            Bytes::new()
        }
    };
    let body = Full::new(reply).with_trailers(async move { Some(Ok(trailers)) });
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/grpc")],
        Body::new(body),
    )
        .into_response()
}

fn keep(received: &Received, request: ExportTraceServiceRequest, transport: &'static str) {
    let mut spans = Vec::new();
    for resource_spans in request.resource_spans {
        let service = resource_spans
            .resource
            .as_ref()
            .and_then(|r| r.attributes.iter().find(|kv| kv.key == "service.name"))
            .and_then(|kv| kv.value.as_ref())
            .map(text)
            .unwrap_or_default();
        for scope_spans in resource_spans.scope_spans {
            for span in scope_spans.spans {
                spans.push(CollectedSpan {
                    trace_id: hex(&span.trace_id),
                    span_id: hex(&span.span_id),
                    parent_span_id: (!span.parent_span_id.is_empty())
                        .then(|| hex(&span.parent_span_id)),
                    name: span.name,
                    kind: kind(span.kind),
                    service: service.clone(),
                    transport,
                    attributes: attributes(&span.attributes),
                });
            }
        }
    }
    received
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .extend(spans);
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn kind(kind: i32) -> &'static str {
    // opentelemetry.proto.trace.v1.Span.SpanKind
    match kind {
        2 => "server",
        3 => "client",
        4 => "producer",
        5 => "consumer",
        _ => "internal",
    }
}

fn attributes(pairs: &[KeyValue]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|kv| {
            (
                kv.key.clone(),
                kv.value.as_ref().map(text).unwrap_or_default(),
            )
        })
        .collect()
}

fn text(value: &AnyValue) -> String {
    match &value.value {
        Some(any_value::Value::StringValue(s)) => s.clone(),
        Some(any_value::Value::BoolValue(b)) => b.to_string(),
        Some(any_value::Value::IntValue(i)) => i.to_string(),
        Some(any_value::Value::DoubleValue(d)) => d.to_string(),
        Some(other) => format!("{other:?}"),
        None => String::new(),
    }
}

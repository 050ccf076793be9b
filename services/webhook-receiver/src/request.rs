//! What every intake reads from a request the same way: the bounded body, the content type,
//! the event id headers and the trace context. Each failure is a [`Problem`] a sender can act
//! on (413, 415, 400), never a 500.

use axum::body::Body;
use bytes::Bytes;
use http::{HeaderMap, StatusCode, header};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use serde_json::Value;
use serde_json::value::RawValue;
use steadfast_events::TraceParent;
use steadfast_service_kit::problem::{self, Problem};

/// `Idempotency-Key`: GitLab's stable id of one event, reused by manual resends. Any sender
/// may set it.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";
/// Longest accepted id header value; AMQP's `message_id` is a short string.
const MAX_ID_LEN: usize = 200;

/// Reads the body, refusing more than `limit` bytes (413) without buffering them: a declared
/// `Content-Length` over the limit is refused before reading, a chunked body as soon as it
/// passes the limit.
pub async fn read_body(body: Body, headers: &HeaderMap, limit: usize) -> Result<Bytes, Problem> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit as u64) {
        return Err(too_large(limit));
    }
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(error) if error.downcast_ref::<LengthLimitError>().is_some() => Err(too_large(limit)),
        Err(error) => Err(Problem::bad_request(format!(
            "could not read the request body: {error}"
        ))),
    }
}

fn too_large(limit: usize) -> Problem {
    Problem::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!("the request body is larger than the limit of {limit} bytes"),
    )
}

/// 415 unless the request says its body is JSON.
pub fn require_json(headers: &HeaderMap) -> Result<(), Problem> {
    if problem::is_json_content_type(headers) {
        return Ok(());
    }
    let given = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("none");
    Err(Problem::new(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        format!("expected Content-Type application/json, got {given}"),
    ))
}

/// Parses a JSON object; anything else is a 400 naming what was wrong.
pub fn parse_object(body: &[u8]) -> Result<Value, Problem> {
    let value: Value = problem::parse_json(body)?;
    if !value.is_object() {
        return Err(Problem::bad_request(format!(
            "invalid request body: expected a JSON object, got {}",
            json_kind(&value)
        )));
    }
    Ok(value)
}

/// Checks that `body` is one JSON object and keeps it as text, for bodies passed on verbatim.
pub fn parse_raw_object(body: &[u8]) -> Result<Box<RawValue>, Problem> {
    let raw: Box<RawValue> = problem::parse_json(body)?;
    let kind = match raw.get().as_bytes().first() {
        Some(b'{') => return Ok(raw),
        Some(b'[') => "an array",
        Some(b'"') => "a string",
        Some(b't' | b'f') => "a boolean",
        Some(b'n') => "null",
        _ => "a number",
    };
    Err(Problem::bad_request(format!(
        "invalid request body: expected a JSON object, got {kind}"
    )))
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The event id: the first of `headers_in_order` that is present, else a new UUIDv7. A
/// present but unusable value is a 400 rather than silently replaced, because the sender
/// relies on it to deduplicate.
pub fn event_id(headers: &HeaderMap, headers_in_order: &[&str]) -> Result<String, Problem> {
    for name in headers_in_order {
        let Some(value) = headers.get(*name) else {
            continue;
        };
        let text = value.to_str().unwrap_or("").trim();
        let usable = !text.is_empty()
            && text.len() <= MAX_ID_LEN
            && text.bytes().all(|b| b.is_ascii_graphic());
        if !usable {
            return Err(Problem::bad_request(format!(
                "header {} must be 1 to {MAX_ID_LEN} printable ASCII characters",
                display_header(name)
            )));
        }
        return Ok(text.to_owned());
    }
    Ok(uuid::Uuid::now_v7().to_string())
}

/// `x-gitlab-event-uuid` → `X-Gitlab-Event-UUID`-ish capitalisation for messages.
fn display_header(name: &str) -> String {
    name.split('-')
        .map(|part| match part {
            "uuid" => "UUID".to_owned(),
            _ => {
                let mut chars = part.chars();
                chars.next().map_or_else(String::new, |first| {
                    first.to_ascii_uppercase().to_string() + chars.as_str()
                })
            }
        })
        .collect::<Vec<_>>()
        .join("-")
}

/// The trace context the request's events carry.
///
/// With spans exported, it is that of the request's own span (`span`, which continues the
/// caller's `traceparent`), so each consumer's span is the child of one the receiver exported.
/// Without, it is the caller's trace with a new parent id if it sent a valid one, else a new
/// trace, so every event can still be followed through the consumers' logs by its `trace_id`.
pub fn trace_context(headers: &HeaderMap, span: &tracing::Span) -> TraceParent {
    if let Some(exported) = steadfast_telemetry::trace::traceparent(span) {
        return exported;
    }
    steadfast_telemetry::trace::traceparent_header(headers)
        .map(|parent| parent.child())
        .unwrap_or_else(TraceParent::new_random)
}

/// A header as text, if present and readable.
pub fn header_text<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)?
        .to_str()
        .ok()
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (name, value) in pairs {
            h.insert(*name, HeaderValue::from_str(value).unwrap());
        }
        h
    }

    #[test]
    fn ids_come_from_the_first_present_header_in_order() {
        let order = [
            IDEMPOTENCY_KEY,
            "x-gitlab-webhook-uuid",
            "x-gitlab-event-uuid",
        ];
        let h = headers(&[
            ("x-gitlab-event-uuid", "event"),
            ("x-gitlab-webhook-uuid", "webhook"),
        ]);
        assert_eq!(event_id(&h, &order).unwrap(), "webhook");
        let h = headers(&[("idempotency-key", "key"), ("x-gitlab-event-uuid", "e")]);
        assert_eq!(event_id(&h, &order).unwrap(), "key");
        let generated = event_id(&HeaderMap::new(), &order).unwrap();
        assert_eq!(
            uuid::Uuid::parse_str(&generated).unwrap().get_version_num(),
            7
        );
    }

    #[test]
    fn unusable_ids_are_refused_with_the_header_name() {
        let h = headers(&[("x-gitlab-event-uuid", &"x".repeat(201))]);
        let err = event_id(&h, &["x-gitlab-event-uuid"]).unwrap_err();
        assert_eq!(
            err.detail.as_deref(),
            Some("header X-Gitlab-Event-UUID must be 1 to 200 printable ASCII characters")
        );
    }

    #[test]
    fn bodies_must_be_objects() {
        let err = parse_object(b"[1]").unwrap_err();
        assert_eq!(
            err.detail.as_deref(),
            Some("invalid request body: expected a JSON object, got an array")
        );
        for (body, kind) in [
            (&b" [1]"[..], "an array"),
            (b"12", "a number"),
            (b"null", "null"),
        ] {
            let err = parse_raw_object(body).unwrap_err();
            assert_eq!(
                err.detail.unwrap(),
                format!("invalid request body: expected a JSON object, got {kind}")
            );
        }
        let raw = parse_raw_object(b"  {\"a\": [1, 2]}\n").unwrap();
        assert_eq!(
            raw.get(),
            "{\"a\": [1, 2]}",
            "kept verbatim, without surrounding space"
        );
        assert!(parse_raw_object(b"{\"a\": ").is_err());
    }

    #[tokio::test]
    async fn bodies_over_the_limit_are_413() {
        let err = read_body(Body::from(vec![b'x'; 11]), &HeaderMap::new(), 10)
            .await
            .unwrap_err();
        assert_eq!(err.status, 413);
        assert_eq!(
            err.detail.as_deref(),
            Some("the request body is larger than the limit of 10 bytes")
        );
        let ok = read_body(Body::from(vec![b'x'; 10]), &HeaderMap::new(), 10)
            .await
            .unwrap();
        assert_eq!(ok.len(), 10);
    }

    #[test]
    fn trace_context_continues_the_callers_trace() {
        let parent = TraceParent::new_random();
        let h = headers(&[("traceparent", &parent.to_string())]);
        let untraced = tracing::Span::none();
        assert_eq!(trace_context(&h, &untraced).trace_id(), parent.trace_id());
        assert_ne!(
            trace_context(&HeaderMap::new(), &untraced).trace_id(),
            parent.trace_id()
        );
    }

    #[test]
    fn with_spans_exported_events_carry_the_request_spans_context() {
        use steadfast_telemetry::trace;
        let _tracer = trace::testing::local_tracer();
        let parent = TraceParent::new_random();
        let h = headers(&[("traceparent", &parent.to_string())]);
        let span = trace::http_server_span("POST", "/gitlab", &h);
        let stamped = trace_context(&h, &span);
        assert_eq!(
            stamped,
            trace::traceparent(&span).unwrap(),
            "the exported span"
        );
        assert_eq!(
            stamped.trace_id(),
            parent.trace_id(),
            "in the caller's trace"
        );
        assert_ne!(stamped.parent_id(), parent.parent_id());
    }
}

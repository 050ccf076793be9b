//! One JSON object per log line, with span fields flattened in.
//!
//! tracing-subscriber's JSON formatter nests span fields under `span`/`spans`, so `event_id`
//! would sit at a different path depending on nesting, and it has no way to add a constant
//! `service` field. Log pipelines (Loki, Elasticsearch) query flat fields, so this layer writes
//! flat objects: the event's own fields win over span fields, inner spans over outer ones.

use std::fmt::Write as _;
use std::io::Write;

use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Subscriber};
use tracing_subscriber::Layer;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;

/// The JSON log layer; `W` decides where lines go (stdout in services, a buffer in tests).
pub struct JsonLayer<W> {
    service: String,
    writer: W,
}

impl JsonLayer<fn() -> std::io::Stdout> {
    pub fn stdout(service: &str) -> Self {
        Self {
            service: service.to_owned(),
            writer: std::io::stdout,
        }
    }
}

impl<W> JsonLayer<W> {
    pub fn with_writer(service: &str, writer: W) -> Self {
        Self {
            service: service.to_owned(),
            writer,
        }
    }
}

/// Span fields, stored in the span's extensions.
struct SpanFields(Map<String, Value>);

struct Collect<'a>(&'a mut Map<String, Value>);

impl Collect<'_> {
    /// `otel.*` fields (`otel.name`, `otel.kind`, `otel.status_code`) only steer the span
    /// exporter; they would repeat the span's name on every log line inside it.
    fn insert(&mut self, field: &Field, value: Value) {
        if !field.name().starts_with("otel.") {
            self.0.insert(field.name().to_owned(), value);
        }
    }
}

impl Visit for Collect<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.insert(field, Value::String(value.to_owned()));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.insert(field, Value::Bool(value));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.insert(field, value.into());
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.insert(field, value.into());
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.insert(field, value.into());
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        // The whole cause chain: "cannot publish: no confirm within 2s" beats "cannot publish".
        let mut text = value.to_string();
        let mut source = value.source();
        while let Some(cause) = source {
            let _ = write!(text, ": {cause}");
            source = cause.source();
        }
        self.insert(field, Value::String(text));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.insert(field, Value::String(format!("{value:?}")));
    }
}

impl<S, W> Layer<S> for JsonLayer<W>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    W: for<'w> MakeWriter<'w> + 'static,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let mut fields = Map::new();
        attrs.record(&mut Collect(&mut fields));
        span.extensions_mut().insert(SpanFields(fields));
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let mut extensions = span.extensions_mut();
        if let Some(SpanFields(fields)) = extensions.get_mut::<SpanFields>() {
            values.record(&mut Collect(fields));
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let mut line = Map::new();
        line.insert(
            "timestamp".into(),
            Value::String(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)),
        );
        line.insert(
            "level".into(),
            Value::String(event.metadata().level().as_str().to_ascii_lowercase()),
        );
        line.insert("service".into(), Value::String(self.service.clone()));
        line.insert(
            "target".into(),
            Value::String(event.metadata().target().to_owned()),
        );
        let mut fields = Map::new();
        event.record(&mut Collect(&mut fields));
        for (name, value) in fields {
            line.insert(name, value);
        }
        if let Some(scope) = ctx.event_scope(event) {
            let mut first = true;
            for span in scope {
                if first {
                    line.entry("span")
                        .or_insert_with(|| Value::String(span.name().to_owned()));
                    first = false;
                }
                if let Some(SpanFields(fields)) = span.extensions().get::<SpanFields>() {
                    for (name, value) in fields {
                        line.entry(name.clone()).or_insert_with(|| value.clone());
                    }
                }
            }
        }
        let mut bytes = serde_json::to_vec(&Value::Object(line)).unwrap_or_default();
        bytes.push(b'\n');
        let _ = self.writer.make_writer().write_all(&bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};
    use tracing_subscriber::layer::SubscriberExt;

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl Write for Buffer {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Buffer {
        type Writer = Buffer;
        fn make_writer(&'a self) -> Self::Writer {
            self.clone()
        }
    }

    fn lines(buffer: &Buffer) -> Vec<Value> {
        String::from_utf8(buffer.0.lock().unwrap().clone())
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    #[test]
    fn writes_flat_json_with_service_and_span_fields() {
        let buffer = Buffer::default();
        let subscriber = tracing_subscriber::registry()
            .with(JsonLayer::with_writer("webhook-receiver", buffer.clone()));
        tracing::subscriber::with_default(subscriber, || {
            let outer = tracing::info_span!("request", trace_id = "abc", route = "/gitlab");
            let _o = outer.enter();
            let inner = tracing::info_span!(
                "message",
                event_id = "e-1",
                route = "inner",
                otel.name = "q process",
                otel.kind = "consumer"
            );
            let _i = inner.enter();
            tracing::warn!(status = 202, outcome = "spooled", "webhook accepted");
        });
        let lines = lines(&buffer);
        assert_eq!(lines.len(), 1);
        let line = &lines[0];
        assert_eq!(line["service"], "webhook-receiver");
        assert_eq!(line["level"], "warn");
        assert_eq!(line["message"], "webhook accepted");
        assert_eq!(line["status"], 202);
        assert_eq!(line["outcome"], "spooled");
        assert_eq!(line["event_id"], "e-1");
        assert_eq!(line["trace_id"], "abc");
        assert_eq!(line["route"], "inner", "the innermost span wins");
        assert_eq!(line["span"], "message");
        assert!(line.get("otel.name").is_none() && line.get("otel.kind").is_none());
        assert!(line["timestamp"].as_str().unwrap().ends_with('Z'));
    }

    #[test]
    fn errors_carry_their_cause_chain() {
        #[derive(Debug, thiserror::Error)]
        #[error("cannot publish")]
        struct Outer(#[source] std::io::Error);
        let buffer = Buffer::default();
        let subscriber =
            tracing_subscriber::registry().with(JsonLayer::with_writer("svc", buffer.clone()));
        tracing::subscriber::with_default(subscriber, || {
            let error = Outer(std::io::Error::other("connection reset"));
            tracing::error!(error = &error as &dyn std::error::Error, "failed");
        });
        assert_eq!(
            lines(&buffer)[0]["error"],
            "cannot publish: connection reset"
        );
    }
}

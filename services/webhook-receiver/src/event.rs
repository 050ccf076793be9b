//! An event ready for the broker: the encoded CloudEvent, where it goes, and its AMQP metadata.
//!
//! The same value is published directly, written to the spool, and read back from the spool,
//! so an event that waited in PostgreSQL reaches the broker byte-for-byte as it would have at
//! arrival (same id, type, timestamp, headers).

use serde::Serialize;
use steadfast_events::{AmqpMetadata, Envelope, EnvelopeError, HEADER_TRACEPARENT};

/// AMQP routing keys are short strings.
pub const MAX_ROUTING_KEY_BYTES: usize = 255;

/// One event on its way to the broker.
#[derive(Debug, Clone, PartialEq)]
pub struct OutgoingEvent {
    /// The intake it came from (`gitlab`, `alertmanager`, or a generic hook's name).
    pub source: String,
    pub exchange: String,
    pub routing_key: String,
    /// The structured-mode CloudEvent.
    pub body: Vec<u8>,
    pub meta: AmqpMetadata,
}

impl OutgoingEvent {
    /// Encodes `envelope` for `exchange`/`routing_key`, published by `app_id` with the
    /// `message-type` header `message_type`.
    pub fn encode<T: Serialize>(
        source: &str,
        exchange: &str,
        routing_key: String,
        envelope: &Envelope<T>,
        app_id: &str,
        message_type: &str,
    ) -> Result<Self, EnvelopeError> {
        envelope.validate()?;
        Ok(Self {
            source: source.to_owned(),
            exchange: exchange.to_owned(),
            routing_key,
            body: envelope.to_json()?,
            meta: envelope.amqp_metadata(app_id, Some(message_type)),
        })
    }

    /// The CloudEvent id (AMQP `message_id`).
    pub fn id(&self) -> &str {
        &self.meta.message_id
    }

    /// The W3C trace id the event carries, for log lines.
    pub fn trace_id(&self) -> &str {
        self.meta
            .headers
            .iter()
            .find(|(name, _)| name == HEADER_TRACEPARENT)
            .and_then(|(_, value)| value.split('-').nth(1))
            .unwrap_or("")
    }
}

/// Checks that a routing key we built fits AMQP, so a long project path is a 400 for the
/// sender instead of a publish error later.
pub fn check_routing_key(key: &str) -> Result<(), RoutingKeyTooLong> {
    if key.len() > MAX_ROUTING_KEY_BYTES {
        return Err(RoutingKeyTooLong {
            key: key.to_owned(),
        });
    }
    Ok(())
}

/// A routing key longer than AMQP's short string.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the routing key `{key}` is {length} bytes long; AMQP allows {MAX_ROUTING_KEY_BYTES}", length = key.len())]
pub struct RoutingKeyTooLong {
    pub key: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn encodes_body_and_metadata_from_the_envelope() {
        let envelope = Envelope::new(
            "https://gitlab.com/a/b",
            "com.gitlab.build",
            json!({"x": 1}),
        )
        .with_id("id-1");
        let event = OutgoingEvent::encode(
            "gitlab",
            "ns.webhooks",
            "gitlab.com.a.b.build".into(),
            &envelope,
            "webhook-receiver",
            "gitlab",
        )
        .unwrap();
        assert_eq!(event.id(), "id-1");
        assert_eq!(event.meta.kind, "com.gitlab.build");
        assert_eq!(
            event.meta.headers,
            vec![("message-type".to_owned(), "gitlab".to_owned())]
        );
        let decoded: Envelope<serde_json::Value> =
            Envelope::from_json(&event.body, usize::MAX).unwrap();
        assert_eq!(decoded.data, json!({"x": 1}));
    }

    #[test]
    fn routing_keys_must_fit_a_short_string() {
        assert!(check_routing_key(&"a".repeat(255)).is_ok());
        let err = check_routing_key(&"a".repeat(256)).unwrap_err().to_string();
        assert!(err.ends_with("is 256 bytes long; AMQP allows 255"), "{err}");
    }
}

//! How an envelope's attributes are mirrored onto AMQP 0-9-1 properties and headers.
//!
//! The body stays the full structured CloudEvent; the properties repeat what a broker-side
//! tool (the management UI, `steadfastctl parked`, a shovel) needs without parsing the body:
//! `message_id = id`, `type`, `timestamp`, `app_id = <service>`, persistent delivery, and the
//! headers `message-type` (CKI's consumer switch) and `traceparent`.
//!
//! This module describes the mapping without depending on an AMQP client, so it can be unit
//! tested here; `steadfast-messaging` turns [`AmqpMetadata`] into lapin properties.

use crate::envelope::{CONTENT_TYPE, Envelope};

/// Header carrying the producer family (`gitlab`, `alertmanager`, ...), as CKI consumers expect.
pub const HEADER_MESSAGE_TYPE: &str = "message-type";
/// Header carrying the W3C trace context.
pub const HEADER_TRACEPARENT: &str = "traceparent";

/// The AMQP properties and headers of one message, independent of the client library.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AmqpMetadata {
    /// `message_id` property: the CloudEvent id.
    pub message_id: String,
    /// `type` property: the CloudEvent type.
    pub kind: String,
    /// `timestamp` property, in seconds since the epoch (AMQP's resolution).
    pub timestamp: Option<u64>,
    /// `app_id` property: the publishing service.
    pub app_id: String,
    /// `content_type` property: always structured-mode CloudEvents JSON.
    pub content_type: &'static str,
    /// `delivery_mode = 2` when true.
    pub persistent: bool,
    /// String headers, in a stable order.
    pub headers: Vec<(String, String)>,
}

impl<T> Envelope<T> {
    /// The AMQP metadata for publishing this event from `app_id`, tagged with `message_type`.
    pub fn amqp_metadata(&self, app_id: &str, message_type: Option<&str>) -> AmqpMetadata {
        let mut headers = Vec::with_capacity(2);
        if let Some(message_type) = message_type {
            headers.push((HEADER_MESSAGE_TYPE.to_owned(), message_type.to_owned()));
        }
        if let Some(tp) = self.traceparent() {
            headers.push((HEADER_TRACEPARENT.to_owned(), tp.to_string()));
        }
        AmqpMetadata {
            message_id: self.id.clone(),
            kind: self.event_type.clone(),
            timestamp: self.time.and_then(|t| u64::try_from(t.timestamp()).ok()),
            app_id: app_id.to_owned(),
            content_type: CONTENT_TYPE,
            persistent: true,
            headers,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::TraceParent;
    use chrono::TimeZone;

    #[test]
    fn mirrors_attributes_onto_properties() {
        let tp = TraceParent::new_random();
        let event = Envelope::new("https://gitlab.com/a/b", "com.gitlab.build", ())
            .with_id("abc")
            .with_time(
                chrono::Utc
                    .with_ymd_and_hms(2026, 11, 25, 12, 0, 0)
                    .unwrap(),
            )
            .with_traceparent(&tp);
        let meta = event.amqp_metadata("webhook-receiver", Some("gitlab"));
        assert_eq!(meta.message_id, "abc");
        assert_eq!(meta.kind, "com.gitlab.build");
        assert_eq!(meta.timestamp, Some(1_795_608_000));
        assert_eq!(meta.app_id, "webhook-receiver");
        assert_eq!(meta.content_type, "application/cloudevents+json");
        assert!(meta.persistent);
        assert_eq!(
            meta.headers,
            vec![
                ("message-type".to_owned(), "gitlab".to_owned()),
                ("traceparent".to_owned(), tp.to_string()),
            ]
        );
    }

    #[test]
    fn omits_absent_headers() {
        let event = Envelope::new("s", "t", ());
        assert!(event.amqp_metadata("x", None).headers.is_empty());
    }
}

//! Generic webhook sources from the config file: `POST /hooks/{name}`, verified by an
//! HMAC-SHA256 signature of the raw body.
//!
//! The signature header carries the hex digest, with or without GitHub's `sha256=` prefix.
//! The event name comes from a header (`event_header`), else a JSON pointer into the body
//! (`event_field`), else `default_event`; the routing key is `<name>.<event>` and the
//! CloudEvent type `<type_prefix>.<event>`.

use http::{HeaderMap, HeaderName};
use serde_json::Value;
use steadfast_events::{Envelope, TraceParent};
use steadfast_service_kit::auth::verify_hmac_sha256;

use crate::auth::Secret;
use crate::event::{RoutingKeyTooLong, check_routing_key};
use crate::request::{IDEMPOTENCY_KEY, header_text};

/// The signature header when the config names none (GitHub's, widely copied).
pub const DEFAULT_SIGNATURE_HEADER: &str = "x-hub-signature-256";

/// One configured generic source.
#[derive(Debug, Clone)]
pub struct HookSource {
    /// The `{name}` of the route; also the first routing-key segment.
    pub name: String,
    pub secret: Secret,
    pub signature_header: HeaderName,
    pub event_header: Option<HeaderName>,
    /// A JSON pointer (`/action`) to the event name in the body.
    pub event_field: Option<String>,
    pub default_event: Option<String>,
    /// A header with the sender's delivery id (after `Idempotency-Key`), e.g. `X-GitHub-Delivery`.
    pub id_header: Option<HeaderName>,
    pub message_type: String,
    pub type_prefix: String,
    /// The CloudEvent `source`.
    pub source_uri: String,
}

impl HookSource {
    /// A source named `name` with the defaults for everything but the secret.
    pub fn new(name: &str, secret: Secret) -> Self {
        Self {
            name: name.to_owned(),
            secret,
            signature_header: HeaderName::from_static(DEFAULT_SIGNATURE_HEADER),
            event_header: None,
            event_field: None,
            default_event: None,
            id_header: None,
            message_type: name.to_owned(),
            type_prefix: format!("io.steadfast.hook.{name}"),
            source_uri: format!("urn:steadfast:hook:{name}"),
        }
    }

    /// Checks a source from the config file; the error names the problem.
    pub fn validate(&self) -> Result<(), HookSourceError> {
        let hook = || self.name.clone();
        if !is_name(&self.name) {
            return Err(HookSourceError::BadName { hook: hook() });
        }
        if self.event_header.is_none() && self.event_field.is_none() && self.default_event.is_none()
        {
            return Err(HookSourceError::NoEventName { hook: hook() });
        }
        if let Some(pointer) = &self.event_field
            && !pointer.starts_with('/')
        {
            return Err(HookSourceError::BadEventField {
                hook: hook(),
                pointer: pointer.clone(),
            });
        }
        if let Some(event) = &self.default_event {
            check_event_name(event).map_err(|source| HookSourceError::BadDefaultEvent {
                hook: hook(),
                source,
            })?;
        }
        Ok(())
    }

    /// Whether the signature header holds the HMAC-SHA256 of `body` under the secret.
    pub fn verify(&self, headers: &HeaderMap, body: &[u8]) -> bool {
        headers
            .get(&self.signature_header)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|signature| {
                verify_hmac_sha256(self.secret.expose().as_bytes(), body, signature)
            })
    }

    /// The headers the event id is taken from, first present wins.
    pub fn id_headers(&self) -> Vec<&str> {
        let mut names = vec![IDEMPOTENCY_KEY];
        if let Some(header) = &self.id_header {
            names.push(header.as_str());
        }
        names
    }

    /// The event name of a request; the error is the reason for a 400.
    pub fn event_name(
        &self,
        headers: &HeaderMap,
        payload: &Value,
    ) -> Result<String, HookEventError> {
        let from_header = self
            .event_header
            .as_ref()
            .and_then(|h| header_text(headers, h.as_str()));
        let from_body = || {
            self.event_field
                .as_ref()
                .and_then(|pointer| payload.pointer(pointer))
                .and_then(Value::as_str)
        };
        let event = from_header
            .or_else(from_body)
            .or(self.default_event.as_deref())
            .ok_or_else(|| HookEventError::NoEvent {
                header: self.event_header.as_ref().map(ToString::to_string),
                field: self.event_field.clone(),
            })?;
        check_event_name(event)?;
        Ok(event.to_owned())
    }

    pub fn routing_key(&self, event: &str) -> String {
        format!("{}.{event}", self.name)
    }

    pub fn envelope(
        &self,
        event: &str,
        id: String,
        payload: Value,
        trace: &TraceParent,
    ) -> Result<Envelope<Value>, HookEventError> {
        check_routing_key(&self.routing_key(event))?;
        Ok(Envelope::new(
            self.source_uri.clone(),
            format!("{}.{event}", self.type_prefix),
            payload,
        )
        .with_id(id)
        .with_traceparent(trace))
    }
}

fn is_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

/// A hook source in the config file that cannot work.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HookSourceError {
    #[error("hook name `{hook}` must be 1-64 characters of a-z, 0-9, '-' and '_'")]
    BadName { hook: String },
    #[error(
        "hook `{hook}` needs `event_header`, `event_field` or `default_event` to name its events"
    )]
    NoEventName { hook: String },
    #[error("hook `{hook}`: event_field `{pointer}` must be a JSON pointer such as `/action`")]
    BadEventField { hook: String, pointer: String },
    #[error("hook `{hook}`: default_event {source}")]
    BadDefaultEvent {
        hook: String,
        #[source]
        source: BadEventName,
    },
}

/// Why a request to a hook source cannot become an event: the reason for a 400.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HookEventError {
    /// Neither the header nor the body field names the event (and there is no default).
    #[error("cannot tell the event: {}", looked_for(header.as_deref(), field.as_deref()))]
    NoEvent {
        header: Option<String>,
        field: Option<String>,
    },
    #[error(transparent)]
    EventName(#[from] BadEventName),
    #[error(transparent)]
    RoutingKey(#[from] RoutingKeyTooLong),
}

fn looked_for(header: Option<&str>, field: Option<&str>) -> String {
    let mut looked = Vec::new();
    if let Some(h) = header {
        looked.push(format!("no {h} header"));
    }
    if let Some(p) = field {
        looked.push(format!("no string at `{p}` in the body"));
    }
    looked.join(" and ")
}

/// An event name that is not 1-100 characters of letters, digits, '_', '-', '.' and ':'.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("event name `{event}` must be 1-100 characters of letters, digits, '_', '-', '.' and ':'")]
pub struct BadEventName {
    pub event: String,
}

fn check_event_name(event: &str) -> Result<(), BadEventName> {
    let valid = !event.is_empty()
        && event.len() <= 100
        && event
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-.:".contains(&b));
    if valid {
        Ok(())
    } else {
        Err(BadEventName {
            event: event.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;
    use serde_json::json;
    use steadfast_service_kit::auth::hmac_sha256_hex;

    fn source() -> HookSource {
        let mut s = HookSource::new("grafana", Secret::new("s3cret").unwrap());
        s.event_header = Some(HeaderName::from_static("x-event"));
        s.event_field = Some("/state".into());
        s
    }

    #[test]
    fn signatures_are_checked_over_the_raw_body() {
        let s = source();
        let body = br#"{"state":"alerting"}"#;
        let mut h = HeaderMap::new();
        let sig = hmac_sha256_hex(b"s3cret", body);
        h.insert(
            "x-hub-signature-256",
            HeaderValue::from_str(&format!("sha256={sig}")).unwrap(),
        );
        assert!(s.verify(&h, body));
        assert!(!s.verify(&h, br#"{"state":"ok"}"#));
        assert!(!s.verify(&HeaderMap::new(), body));
    }

    #[test]
    fn event_names_come_from_header_then_body_then_default() {
        let mut s = source();
        let mut h = HeaderMap::new();
        assert_eq!(
            s.event_name(&h, &json!({"state": "alerting"})).unwrap(),
            "alerting"
        );
        h.insert("x-event", HeaderValue::from_static("push"));
        assert_eq!(s.event_name(&h, &json!({"state": "x"})).unwrap(), "push");
        assert_eq!(
            s.event_name(&HeaderMap::new(), &json!({}))
                .unwrap_err()
                .to_string(),
            "cannot tell the event: no x-event header and no string at `/state` in the body"
        );
        s.default_event = Some("notification".into());
        assert_eq!(
            s.event_name(&HeaderMap::new(), &json!({})).unwrap(),
            "notification"
        );
        assert!(
            s.event_name(&HeaderMap::new(), &json!({"state": "a b"}))
                .unwrap_err()
                .to_string()
                .starts_with("event name `a b` must be")
        );
    }

    #[test]
    fn config_mistakes_are_named() {
        let s = HookSource::new("Bad Name", Secret::new("x").unwrap());
        assert!(
            s.validate()
                .unwrap_err()
                .to_string()
                .starts_with("hook name `Bad Name`")
        );
        let s = HookSource::new("ok", Secret::new("x").unwrap());
        assert_eq!(
            s.validate().unwrap_err().to_string(),
            "hook `ok` needs `event_header`, `event_field` or `default_event` to name its events"
        );
    }
}

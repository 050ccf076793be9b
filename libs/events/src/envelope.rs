//! The CloudEvents 1.0 envelope in structured JSON mode.
//!
//! # Implementation notes
//! Decoding uses a hand-written map visitor instead of `#[serde(flatten)]`: flatten buffers the
//! whole document (including `data`) into an intermediate tree before deserialising `T`, which
//! doubles the work on the consumer hot path and turns a missing attribute into an opaque serde
//! message. The visitor reads each member once, hands `data` straight to `T`, keeps unknown
//! members as extension attributes, and leaves the "is it a valid CloudEvent" question to
//! [`Envelope::validate`], whose errors name the attribute at fault.

use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::de::{self, DeserializeOwned, IgnoredAny, MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use crate::traceparent::TraceParent;

/// The only CloudEvents version we read and write.
pub const SPEC_VERSION: &str = "1.0";
/// The content type of a structured-mode CloudEvent in JSON.
pub const CONTENT_TYPE: &str = "application/cloudevents+json";
/// The content type of `data` when it is JSON.
pub const DATA_CONTENT_TYPE_JSON: &str = "application/json";
/// Default upper bound on an encoded event. Bigger bodies are refused before parsing, so a
/// hostile or broken producer cannot make a consumer allocate without limit.
pub const DEFAULT_MAX_EVENT_BYTES: usize = 4 * 1024 * 1024;

/// The context attributes defined by the spec; every other member is an extension.
const RESERVED: [&str; 10] = [
    "specversion",
    "id",
    "source",
    "type",
    "subject",
    "time",
    "datacontenttype",
    "dataschema",
    "data",
    "data_base64",
];

/// Why bytes are not a usable CloudEvent. The message names the attribute at fault, because it
/// ends up in the `steadfast-error` header of a parked message and in operators' logs.
#[derive(Debug, thiserror::Error)]
pub enum EnvelopeError {
    #[error("event is {size} bytes, over the {limit}-byte limit")]
    TooLarge { size: usize, limit: usize },
    #[error("malformed CloudEvent JSON: {0}")]
    Malformed(#[from] serde_json::Error),
    #[error("missing required CloudEvents attribute `{0}`")]
    MissingAttribute(&'static str),
    #[error("CloudEvents attribute `{0}` must not be empty")]
    EmptyAttribute(&'static str),
    #[error("unsupported CloudEvents specversion `{0}` (expected `1.0`)")]
    UnsupportedSpecVersion(String),
    #[error("invalid CloudEvents attribute `{name}`: {reason}")]
    InvalidAttribute { name: String, reason: String },
}

/// A CloudEvents 1.0 event whose `data` is a `T`.
///
/// `id` is stable for the same real-world event (a webhook's delivery UUID, an alert's
/// fingerprint and start time), so consumers can deduplicate on it.
#[derive(Debug, Clone, PartialEq)]
pub struct Envelope<T> {
    pub id: String,
    /// URI-reference of the producer context, e.g. `https://gitlab.com/cki-project/kernel-ark`.
    pub source: String,
    /// The `type` attribute, e.g. `com.gitlab.build`.
    pub event_type: String,
    pub subject: Option<String>,
    pub time: Option<DateTime<Utc>>,
    pub datacontenttype: Option<String>,
    pub dataschema: Option<String>,
    /// Extension attributes (`traceparent`, ...). Values are JSON strings, numbers or booleans.
    pub extensions: BTreeMap<String, Value>,
    pub data: T,
}

impl<T> Envelope<T> {
    /// A new event with a fresh UUIDv7 id, the current time and JSON data.
    pub fn new(source: impl Into<String>, event_type: impl Into<String>, data: T) -> Self {
        Self {
            id: uuid::Uuid::now_v7().to_string(),
            source: source.into(),
            event_type: event_type.into(),
            subject: None,
            time: Some(Utc::now()),
            datacontenttype: Some(DATA_CONTENT_TYPE_JSON.to_owned()),
            dataschema: None,
            extensions: BTreeMap::new(),
            data,
        }
    }

    /// Replaces the generated id, e.g. with a webhook delivery id so redeliveries dedupe.
    #[must_use]
    pub fn with_id(mut self, id: impl Into<String>) -> Self {
        self.id = id.into();
        self
    }

    #[must_use]
    pub fn with_subject(mut self, subject: impl Into<String>) -> Self {
        self.subject = Some(subject.into());
        self
    }

    #[must_use]
    pub fn with_time(mut self, time: DateTime<Utc>) -> Self {
        self.time = Some(time);
        self
    }

    #[must_use]
    pub fn with_traceparent(mut self, traceparent: &TraceParent) -> Self {
        self.extensions
            .insert("traceparent".into(), Value::String(traceparent.to_string()));
        self
    }

    /// Adds an extension attribute. The name must be lower-case ASCII letters and digits;
    /// [`Envelope::validate`] rejects anything else.
    #[must_use]
    pub fn with_extension(mut self, name: impl Into<String>, value: impl Into<Value>) -> Self {
        self.extensions.insert(name.into(), value.into());
        self
    }

    /// The W3C trace context carried in the `traceparent` extension, when present and valid.
    pub fn traceparent(&self) -> Option<TraceParent> {
        self.extensions
            .get("traceparent")
            .and_then(Value::as_str)
            .and_then(|s| s.parse().ok())
    }

    /// Checks the rules of CloudEvents 1.0 that the type system does not enforce.
    pub fn validate(&self) -> Result<(), EnvelopeError> {
        non_empty("id", &self.id)?;
        non_empty("source", &self.source)?;
        non_empty("type", &self.event_type)?;
        if self.source.chars().any(char::is_whitespace) {
            return Err(invalid(
                "source",
                "a URI-reference must not contain whitespace",
            ));
        }
        for (name, value) in &self.extensions {
            if name.is_empty()
                || !name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
            {
                return Err(invalid(
                    name,
                    "extension names must be lower-case ASCII letters and digits",
                ));
            }
            if !(value.is_string() || value.is_number() || value.is_boolean()) {
                return Err(invalid(
                    name,
                    "extension values must be a string, number or boolean",
                ));
            }
        }
        Ok(())
    }

    /// The same event with its data borrowed: attributes can be added (a `traceparent`) and
    /// the event encoded without cloning the data.
    pub fn by_ref(&self) -> Envelope<&T> {
        Envelope {
            id: self.id.clone(),
            source: self.source.clone(),
            event_type: self.event_type.clone(),
            subject: self.subject.clone(),
            time: self.time,
            datacontenttype: self.datacontenttype.clone(),
            dataschema: self.dataschema.clone(),
            extensions: self.extensions.clone(),
            data: &self.data,
        }
    }

    /// Maps the data, keeping every attribute.
    pub fn map_data<U>(self, f: impl FnOnce(T) -> U) -> Envelope<U> {
        Envelope {
            id: self.id,
            source: self.source,
            event_type: self.event_type,
            subject: self.subject,
            time: self.time,
            datacontenttype: self.datacontenttype,
            dataschema: self.dataschema,
            extensions: self.extensions,
            data: f(self.data),
        }
    }
}

impl<T: Serialize> Envelope<T> {
    /// Encodes the event in structured JSON mode.
    pub fn to_json(&self) -> Result<Vec<u8>, EnvelopeError> {
        Ok(serde_json::to_vec(self)?)
    }
}

impl<T: DeserializeOwned> Envelope<T> {
    /// Decodes and validates an event, refusing bodies over `limit` bytes before parsing them.
    pub fn from_json(bytes: &[u8], limit: usize) -> Result<Self, EnvelopeError> {
        if bytes.len() > limit {
            return Err(EnvelopeError::TooLarge {
                size: bytes.len(),
                limit,
            });
        }
        let partial: Partial<T> = serde_json::from_slice(bytes)?;
        partial.finish()
    }
}

fn non_empty(name: &'static str, value: &str) -> Result<(), EnvelopeError> {
    if value.is_empty() {
        Err(EnvelopeError::EmptyAttribute(name))
    } else {
        Ok(())
    }
}

fn invalid(name: &str, reason: &str) -> EnvelopeError {
    EnvelopeError::InvalidAttribute {
        name: name.to_owned(),
        reason: reason.to_owned(),
    }
}

fn format_time(time: &DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

impl<T: Serialize> Serialize for Envelope<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("specversion", SPEC_VERSION)?;
        map.serialize_entry("id", &self.id)?;
        map.serialize_entry("source", &self.source)?;
        map.serialize_entry("type", &self.event_type)?;
        if let Some(subject) = &self.subject {
            map.serialize_entry("subject", subject)?;
        }
        if let Some(time) = &self.time {
            map.serialize_entry("time", &format_time(time))?;
        }
        if let Some(ct) = &self.datacontenttype {
            map.serialize_entry("datacontenttype", ct)?;
        }
        if let Some(schema) = &self.dataschema {
            map.serialize_entry("dataschema", schema)?;
        }
        for (name, value) in &self.extensions {
            if !RESERVED.contains(&name.as_str()) {
                map.serialize_entry(name, value)?;
            }
        }
        map.serialize_entry("data", &self.data)?;
        map.end()
    }
}

/// What the visitor collected; [`Partial::finish`] turns it into a validated envelope.
struct Partial<T> {
    specversion: Option<String>,
    id: Option<String>,
    source: Option<String>,
    event_type: Option<String>,
    subject: Option<String>,
    time: Option<String>,
    datacontenttype: Option<String>,
    dataschema: Option<String>,
    has_data_base64: bool,
    extensions: BTreeMap<String, Value>,
    data: Option<T>,
}

impl<T: DeserializeOwned> Partial<T> {
    fn finish(self) -> Result<Envelope<T>, EnvelopeError> {
        let specversion = self
            .specversion
            .ok_or(EnvelopeError::MissingAttribute("specversion"))?;
        if specversion != SPEC_VERSION {
            return Err(EnvelopeError::UnsupportedSpecVersion(specversion));
        }
        if self.has_data_base64 {
            return Err(invalid(
                "data_base64",
                "binary data is not supported; send JSON `data`",
            ));
        }
        let time = self
            .time
            .map(|t| {
                DateTime::parse_from_rfc3339(&t)
                    .map(|t| t.with_timezone(&Utc))
                    .map_err(|e| {
                        invalid("time", &format!("`{t}` is not an RFC 3339 timestamp: {e}"))
                    })
            })
            .transpose()?;
        let data = match self.data {
            Some(data) => data,
            // An event may carry no data; that is only acceptable if `T` can be null.
            None => {
                T::deserialize(Value::Null).map_err(|_| EnvelopeError::MissingAttribute("data"))?
            }
        };
        let envelope = Envelope {
            id: self.id.ok_or(EnvelopeError::MissingAttribute("id"))?,
            source: self
                .source
                .ok_or(EnvelopeError::MissingAttribute("source"))?,
            event_type: self
                .event_type
                .ok_or(EnvelopeError::MissingAttribute("type"))?,
            subject: self.subject,
            time,
            datacontenttype: self.datacontenttype,
            dataschema: self.dataschema,
            extensions: self.extensions,
            data,
        };
        envelope.validate()?;
        Ok(envelope)
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Partial<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(PartialVisitor(PhantomData))
    }
}

struct PartialVisitor<T>(PhantomData<T>);

impl<'de, T: Deserialize<'de>> Visitor<'de> for PartialVisitor<T> {
    type Value = Partial<T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a CloudEvent as a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut partial = Partial {
            specversion: None,
            id: None,
            source: None,
            event_type: None,
            subject: None,
            time: None,
            datacontenttype: None,
            dataschema: None,
            has_data_base64: false,
            extensions: BTreeMap::new(),
            data: None,
        };
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            let slot = match key.as_ref() {
                "specversion" => &mut partial.specversion,
                "id" => &mut partial.id,
                "source" => &mut partial.source,
                "type" => &mut partial.event_type,
                "subject" => &mut partial.subject,
                "time" => &mut partial.time,
                "datacontenttype" => &mut partial.datacontenttype,
                "dataschema" => &mut partial.dataschema,
                "data" => {
                    if partial.data.is_some() {
                        return Err(de::Error::duplicate_field("data"));
                    }
                    partial.data = Some(map.next_value()?);
                    continue;
                }
                "data_base64" => {
                    map.next_value::<IgnoredAny>()?;
                    partial.has_data_base64 = true;
                    continue;
                }
                _ => {
                    let value: Value = map.next_value()?;
                    // JSON null means "absent" for an optional attribute.
                    if !value.is_null() {
                        partial.extensions.insert(key.into_owned(), value);
                    }
                    continue;
                }
            };
            let value: Option<StringAttr> = map.next_value()?;
            *slot = value.map(|v| v.0);
        }
        Ok(partial)
    }
}

/// A string-valued context attribute; the error names the expected type precisely.
struct StringAttr(String);

impl<'de> Deserialize<'de> for StringAttr {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = StringAttr;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string attribute")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<StringAttr, E> {
                Ok(StringAttr(v.to_owned()))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<StringAttr, E> {
                Ok(StringAttr(v))
            }
        }
        deserializer.deserialize_string(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sample() -> Envelope<Value> {
        Envelope::new(
            "https://gitlab.com/cki-project/kernel-ark",
            "com.gitlab.build",
            json!({"build_id": 42, "build_status": "failed"}),
        )
        .with_id("5f1c6c51-8c5a-4d3c-9f05-1d2f1b5f6e11")
        .with_subject("jobs/42")
        .with_traceparent(&TraceParent::new_random())
    }

    #[test]
    fn round_trips_every_attribute() {
        let event = sample().with_extension("partitionkey", "p1");
        let bytes = event.to_json().unwrap();
        let back: Envelope<Value> = Envelope::from_json(&bytes, DEFAULT_MAX_EVENT_BYTES).unwrap();
        // Time survives at the precision we emit.
        assert_eq!(
            format_time(back.time.as_ref().unwrap()),
            format_time(event.time.as_ref().unwrap())
        );
        assert_eq!(back.id, event.id);
        assert_eq!(back.source, event.source);
        assert_eq!(back.event_type, event.event_type);
        assert_eq!(back.subject, event.subject);
        assert_eq!(back.datacontenttype.as_deref(), Some("application/json"));
        assert_eq!(back.extensions, event.extensions);
        assert_eq!(back.data, event.data);
        assert_eq!(back.traceparent(), event.traceparent());
    }

    #[test]
    fn a_borrowed_event_encodes_to_the_same_bytes() {
        let event = sample().with_extension("partitionkey", "p1");
        assert_eq!(event.by_ref().to_json().unwrap(), event.to_json().unwrap());
    }

    #[test]
    fn encodes_structured_mode_members() {
        let bytes = sample().to_json().unwrap();
        let v: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(v["specversion"], "1.0");
        assert_eq!(v["type"], "com.gitlab.build");
        assert_eq!(v["data"]["build_id"], 42);
        assert!(v["traceparent"].as_str().unwrap().starts_with("00-"));
        assert!(
            v.get("extensions").is_none(),
            "extensions are top-level members"
        );
    }

    #[test]
    fn typed_data_decodes() {
        #[derive(Deserialize, Serialize, Debug, PartialEq)]
        struct Job {
            build_id: u64,
        }
        let event = Envelope::new("s", "t", Job { build_id: 7 });
        let back: Envelope<Job> =
            Envelope::from_json(&event.to_json().unwrap(), DEFAULT_MAX_EVENT_BYTES).unwrap();
        assert_eq!(back.data, Job { build_id: 7 });
    }

    fn decode(v: Value) -> Result<Envelope<Value>, EnvelopeError> {
        Envelope::from_json(&serde_json::to_vec(&v).unwrap(), DEFAULT_MAX_EVENT_BYTES)
    }

    #[test]
    fn missing_attributes_are_named() {
        let full = json!({"specversion": "1.0", "id": "1", "source": "s", "type": "t", "data": {}});
        for attr in ["specversion", "id", "source", "type"] {
            let mut v = full.clone();
            v.as_object_mut().unwrap().remove(attr);
            let err = decode(v).unwrap_err().to_string();
            assert_eq!(
                err,
                format!("missing required CloudEvents attribute `{attr}`")
            );
        }
    }

    #[test]
    fn empty_and_invalid_attributes_are_rejected_precisely() {
        let err = decode(json!({"specversion": "1.0", "id": "", "source": "s", "type": "t"}));
        assert_eq!(
            err.unwrap_err().to_string(),
            "CloudEvents attribute `id` must not be empty"
        );
        let err = decode(json!({"specversion": "0.3", "id": "1", "source": "s", "type": "t"}));
        assert_eq!(
            err.unwrap_err().to_string(),
            "unsupported CloudEvents specversion `0.3` (expected `1.0`)"
        );
        let err = decode(
            json!({"specversion": "1.0", "id": "1", "source": "s", "type": "t", "time": "yesterday"}),
        );
        assert!(
            err.unwrap_err().to_string().starts_with(
                "invalid CloudEvents attribute `time`: `yesterday` is not an RFC 3339"
            )
        );
        let err = decode(
            json!({"specversion": "1.0", "id": "1", "source": "s", "type": "t", "Bad-Name": "x"}),
        );
        assert!(
            err.unwrap_err()
                .to_string()
                .contains("`Bad-Name`: extension names must be lower-case")
        );
        let err = decode(
            json!({"specversion": "1.0", "id": "1", "source": "s", "type": "t", "ext": {"a": 1}}),
        );
        assert!(
            err.unwrap_err()
                .to_string()
                .contains("`ext`: extension values must be")
        );
        let err = decode(json!({"specversion": "1.0", "id": 5, "source": "s", "type": "t"}));
        assert!(
            err.unwrap_err()
                .to_string()
                .contains("invalid type: integer `5`, expected a string attribute")
        );
    }

    #[test]
    fn malformed_and_oversized_input_is_refused() {
        let err = Envelope::<Value>::from_json(b"{\"specversion\": ", 100).unwrap_err();
        assert!(matches!(err, EnvelopeError::Malformed(_)), "{err}");
        assert!(
            err.to_string()
                .starts_with("malformed CloudEvent JSON: EOF")
        );

        let err = Envelope::<Value>::from_json(b"[1, 2]", 100).unwrap_err();
        assert!(
            err.to_string()
                .contains("expected a CloudEvent as a JSON object")
        );

        let big = vec![b' '; 101];
        let err = Envelope::<Value>::from_json(&big, 100).unwrap_err();
        assert_eq!(
            err.to_string(),
            "event is 101 bytes, over the 100-byte limit"
        );
    }

    #[test]
    fn data_is_required_unless_the_type_allows_null() {
        let v = json!({"specversion": "1.0", "id": "1", "source": "s", "type": "t"});
        assert_eq!(decode(v.clone()).unwrap().data, Value::Null);
        let err = Envelope::<u32>::from_json(v.to_string().as_bytes(), 1000).unwrap_err();
        assert_eq!(
            err.to_string(),
            "missing required CloudEvents attribute `data`"
        );
        let with_b64 = json!({"specversion": "1.0", "id": "1", "source": "s", "type": "t", "data_base64": "AA=="});
        assert!(
            decode(with_b64)
                .unwrap_err()
                .to_string()
                .contains("data_base64")
        );
    }

    #[test]
    fn duplicate_data_is_malformed() {
        let raw = br#"{"specversion":"1.0","id":"1","source":"s","type":"t","data":1,"data":2}"#;
        let err = Envelope::<Value>::from_json(raw, 1000).unwrap_err();
        assert!(err.to_string().contains("duplicate field `data`"));
    }

    #[test]
    fn wrongly_typed_data_is_malformed_with_position() {
        let raw = br#"{"specversion":"1.0","id":"1","source":"s","type":"t","data":"text"}"#;
        let err = Envelope::<u32>::from_json(raw, 1000).unwrap_err();
        assert!(err.to_string().contains("invalid type: string"), "{err}");
        assert!(err.to_string().contains("column"), "{err}");
    }
}

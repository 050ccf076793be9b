//! The YAML form of matchers, as CKI's pipeline-herder writes it.
//!
//! ```yaml
//! matchers:
//!   - name: image-pull
//!     description: Failure during image pull
//!     messages:
//!       - 'ERROR: Job failed: image pull failed'
//!       - regex: 'failed to pull image .* (timeout|connection reset)'
//!   - action: report            # a group: its fields are the defaults of its matchers
//!     matchers:
//!       - name: no-trace
//!         builtin: no_trace
//! ```
//!
//! Fields are deserialised loosely here (strings, lists) and checked in
//! [`super::MatcherSet::from_entries`], so an error can name the matcher it is about.
//! Unknown fields are refused: a misspelt `retry_limt` silently ignored would retry forever.

use std::fmt;

use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};

/// The top level of a matchers file: `{matchers: [...]}` (CKI's form).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct WrappedMatchers {
    matchers: Vec<RawMatcher>,
}

/// Parses a matchers file: `{matchers: [...]}` (CKI's form) or a bare list. Errors carry the
/// line and column, and name an unknown field.
pub fn parse_matchers_file(text: &str) -> Result<Vec<RawMatcher>, SchemaError> {
    // Look at the shape first, then parse the text as that shape, so a typo deep inside is
    // reported as itself rather than as "matches neither form".
    let shape: serde_norway::Value = serde_norway::from_str(text)?;
    if shape.is_sequence() {
        Ok(serde_norway::from_str::<Vec<RawMatcher>>(text)?)
    } else if shape.is_mapping() {
        Ok(serde_norway::from_str::<WrappedMatchers>(text).map(|w| w.matchers)?)
    } else {
        Err(SchemaError::Shape)
    }
}

/// Why a matchers file cannot be read as matchers.
#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    /// Not YAML, or not the schema; the text carries line, column and the offending field.
    #[error(transparent)]
    Yaml(#[from] serde_norway::Error),
    #[error("expected `matchers:` with a list of matchers, or a list of matchers")]
    Shape,
}

/// One entry of a `matchers:` list: a matcher, or (with `matchers:`) a group whose other
/// fields are defaults for the matchers inside it.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMatcher {
    pub name: Option<String>,
    pub description: Option<String>,
    pub action: Option<String>,
    pub retry_limit: Option<u32>,
    pub retry_delays: Option<Vec<RawDuration>>,
    pub job_status: Option<OneOrMany>,
    pub job_name: Option<OneOrMany>,
    pub web_url: Option<OneOrMany>,
    pub failure_reason: Option<OneOrMany>,
    pub messages: Option<Vec<RawMessage>>,
    pub maximum_artifact_size: Option<u64>,
    pub builtin: Option<String>,
    pub matchers: Option<Vec<RawMatcher>>,
}

impl RawMatcher {
    /// `self` with every unset field taken from `group` (names and descriptions are not
    /// inherited: they belong to one matcher).
    pub fn inherit(mut self, group: &RawMatcher) -> Self {
        macro_rules! inherit {
            ($($field:ident),*) => {$(
                if self.$field.is_none() {
                    self.$field = group.$field.clone();
                }
            )*};
        }
        inherit!(
            action,
            retry_limit,
            retry_delays,
            job_status,
            job_name,
            web_url,
            failure_reason,
            messages,
            maximum_artifact_size,
            builtin
        );
        self
    }
}

/// A string or a list of strings.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    pub fn into_vec(self) -> Vec<String> {
        match self {
            Self::One(one) => vec![one],
            Self::Many(many) => many,
        }
    }
}

/// A delay: Go-style text (`5m`, `1h30m`) or a number of seconds.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum RawDuration {
    Text(String),
    Seconds(f64),
}

impl fmt::Display for RawDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Text(text) => f.write_str(text),
            Self::Seconds(seconds) => write!(f, "{seconds}"),
        }
    }
}

/// A `messages` entry: plain text (a substring) or `{regex: ...}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RawMessage {
    Text(String),
    Regex(String),
}

impl<'de> Deserialize<'de> for RawMessage {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct MessageVisitor;

        impl<'de> Visitor<'de> for MessageVisitor {
            type Value = RawMessage;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a text to find in the log, or `{regex: <pattern>}`")
            }

            fn visit_str<E: de::Error>(self, text: &str) -> Result<RawMessage, E> {
                Ok(RawMessage::Text(text.to_owned()))
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawMessage, A::Error> {
                let mut regex = None;
                while let Some(key) = map.next_key::<String>()? {
                    if key != "regex" {
                        return Err(de::Error::custom(format!(
                            "unknown key `{key}` in a message (expected `regex`)"
                        )));
                    }
                    if regex.is_some() {
                        return Err(de::Error::duplicate_field("regex"));
                    }
                    regex = Some(map.next_value::<String>()?);
                }
                regex
                    .map(RawMessage::Regex)
                    .ok_or_else(|| de::Error::missing_field("regex"))
            }
        }

        deserializer.deserialize_any(MessageVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: &str) -> Result<Vec<RawMatcher>, String> {
        parse_matchers_file(yaml).map_err(|e| e.to_string())
    }

    #[test]
    fn reads_ckis_example_with_groups_and_both_message_forms() {
        let entries = parse(
            r#"
matchers:
  - name: image-pull
    description: Failure during image pull
    messages:
      - 'ERROR: Job failed: image pull failed'
      - regex: 'failed to pull image'
  - name: integrity
    failure_reason: data_integrity_failure
  - action: report
    matchers:
      - name: no-trace
        builtin: no_trace
"#,
        )
        .unwrap();
        assert_eq!(entries.len(), 3);
        assert_eq!(
            entries[0].messages.as_ref().unwrap()[1],
            RawMessage::Regex("failed to pull image".into())
        );
        let group = &entries[2];
        let child = group.matchers.as_ref().unwrap()[0].clone().inherit(group);
        assert_eq!(child.action.as_deref(), Some("report"));
        assert_eq!(child.name.as_deref(), Some("no-trace"));
    }

    #[test]
    fn a_bare_list_is_accepted_too_but_not_a_scalar() {
        assert_eq!(parse("- name: a\n  messages: [x]\n").unwrap().len(), 1);
        assert_eq!(
            parse("just text").unwrap_err(),
            "expected `matchers:` with a list of matchers, or a list of matchers"
        );
    }

    #[test]
    fn typos_are_refused_with_a_position() {
        let err = parse("matchers:\n  - name: a\n    retry_limt: 3\n").unwrap_err();
        assert!(err.contains("retry_limt"), "{err}");
        let err = parse("matchers:\n  - name: a\n    messages:\n      - regexp: x\n").unwrap_err();
        assert!(err.contains("unknown key `regexp` in a message"), "{err}");
    }
}

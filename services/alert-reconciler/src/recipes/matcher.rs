//! Alert label matchers, written the way Alertmanager routes write them.
//!
//! A recipe's `match` is either a list of matcher strings — `alertname="HighErrorRate"`,
//! `severity=~"critical|warning"`, `namespace!="kube-system"`, `team!~"db.*"` — or a map of
//! label to exact value. All matchers must hold; a missing label counts as the empty string and
//! regular expressions are anchored at both ends, both as in Alertmanager.

use std::collections::BTreeMap;
use std::fmt;

use regex::Regex;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchOp {
    Equal,
    NotEqual,
    Regex,
    NotRegex,
}

impl MatchOp {
    fn as_str(self) -> &'static str {
        match self {
            Self::Equal => "=",
            Self::NotEqual => "!=",
            Self::Regex => "=~",
            Self::NotRegex => "!~",
        }
    }
}

/// One `label op value` condition.
#[derive(Debug, Clone)]
pub struct Matcher {
    pub label: String,
    pub op: MatchOp,
    pub value: String,
    regex: Option<Regex>,
}

impl PartialEq for Matcher {
    fn eq(&self, other: &Self) -> bool {
        self.label == other.label && self.op == other.op && self.value == other.value
    }
}

/// Why a matcher cannot be used; the message quotes it.
#[derive(Debug, thiserror::Error)]
pub enum MatcherError {
    #[error("`{label}` is not a valid label name")]
    InvalidLabel { label: String },
    #[error("`{value}` is not a valid regular expression: {source}")]
    InvalidRegex { value: String, source: regex::Error },
    #[error("matcher `{text}` has no operator (=, !=, =~ or !~)")]
    NoOperator { text: String },
    #[error("unterminated quoted value")]
    UnterminatedQuote,
    #[error("quoted value ends with a lone backslash")]
    LoneBackslash,
    /// A problem with the value or label of the matcher `text`.
    #[error("matcher `{text}`: {error}")]
    InMatcher {
        text: String,
        #[source]
        error: Box<MatcherError>,
    },
}

impl Matcher {
    pub fn new(label: &str, op: MatchOp, value: &str) -> Result<Self, MatcherError> {
        if !is_label_name(label) {
            return Err(MatcherError::InvalidLabel {
                label: label.to_owned(),
            });
        }
        let regex = match op {
            MatchOp::Regex | MatchOp::NotRegex => {
                Some(Regex::new(&format!("^(?:{value})$")).map_err(|source| {
                    MatcherError::InvalidRegex {
                        value: value.to_owned(),
                        source,
                    }
                })?)
            }
            MatchOp::Equal | MatchOp::NotEqual => None,
        };
        Ok(Self {
            label: label.to_owned(),
            op,
            value: value.to_owned(),
            regex,
        })
    }

    /// Parses `label="value"`, `label=~"re"`, `label!=value` and so on.
    pub fn parse(text: &str) -> Result<Self, MatcherError> {
        let text = text.trim();
        let no_operator = || MatcherError::NoOperator {
            text: text.to_owned(),
        };
        let split = text.find(['=', '!']).ok_or_else(no_operator)?;
        let label = text[..split].trim();
        let rest = &text[split..];
        let (op, value) = if let Some(v) = rest.strip_prefix("=~") {
            (MatchOp::Regex, v)
        } else if let Some(v) = rest.strip_prefix("!~") {
            (MatchOp::NotRegex, v)
        } else if let Some(v) = rest.strip_prefix("!=") {
            (MatchOp::NotEqual, v)
        } else if let Some(v) = rest.strip_prefix('=') {
            (MatchOp::Equal, v)
        } else {
            return Err(no_operator());
        };
        let in_matcher = |error| MatcherError::InMatcher {
            text: text.to_owned(),
            error: Box::new(error),
        };
        let value = unquote(value.trim()).map_err(in_matcher)?;
        Self::new(label, op, &value).map_err(in_matcher)
    }

    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        let actual = labels.get(&self.label).map_or("", String::as_str);
        match (self.op, &self.regex) {
            (MatchOp::Equal, _) => actual == self.value,
            (MatchOp::NotEqual, _) => actual != self.value,
            (MatchOp::Regex, Some(re)) => re.is_match(actual),
            (MatchOp::NotRegex, Some(re)) => !re.is_match(actual),
            (MatchOp::Regex | MatchOp::NotRegex, None) => false,
        }
    }
}

impl fmt::Display for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let escaped = self.value.replace('\\', "\\\\").replace('"', "\\\"");
        write!(f, "{}{}\"{escaped}\"", self.label, self.op.as_str())
    }
}

impl Serialize for Matcher {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Matcher {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// The `match` of a recipe in its file: a list of matcher strings or a map of exact values.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum MatchSpec {
    List(Vec<String>),
    Map(BTreeMap<String, String>),
}

impl MatchSpec {
    pub fn compile(&self) -> Result<Vec<Matcher>, MatcherError> {
        match self {
            Self::List(items) => items.iter().map(|m| Matcher::parse(m)).collect(),
            Self::Map(map) => map
                .iter()
                .map(|(label, value)| Matcher::new(label, MatchOp::Equal, value))
                .collect(),
        }
    }
}

/// Whether every matcher holds for `labels` (an empty list matches everything).
pub fn all_match(matchers: &[Matcher], labels: &BTreeMap<String, String>) -> bool {
    matchers.iter().all(|m| m.matches(labels))
}

fn is_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn unquote(value: &str) -> Result<String, MatcherError> {
    let Some(inner) = value.strip_prefix('"') else {
        return Ok(value.to_owned());
    };
    let inner = inner
        .strip_suffix('"')
        .ok_or(MatcherError::UnterminatedQuote)?;
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some(escaped) => out.push(escaped),
                None => return Err(MatcherError::LoneBackslash),
            }
        } else {
            out.push(c);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn alertmanager_matchers() {
        let alert = labels(&[("alertname", "HighErrorRate"), ("severity", "critical")]);
        for (text, expected) in [
            (r#"alertname="HighErrorRate""#, true),
            ("alertname=HighErrorRate", true),
            (r#"severity=~"critical|warning""#, true),
            (r#"severity=~"crit""#, false), // anchored
            (r#"severity!~"info""#, true),
            (r#"namespace!="kube-system""#, true), // missing label is ""
            (r#"namespace="""#, true),
            (r#"team=~".+""#, false),
        ] {
            assert_eq!(
                Matcher::parse(text).unwrap().matches(&alert),
                expected,
                "{text}"
            );
        }
    }

    #[test]
    fn round_trips_and_errors() {
        let m = Matcher::parse(r#" summary = "say \"hi\"" "#).unwrap();
        assert_eq!(m.value, r#"say "hi""#);
        assert_eq!(Matcher::parse(&m.to_string()).unwrap(), m);
        assert_eq!(
            Matcher::parse("severity").unwrap_err().to_string(),
            "matcher `severity` has no operator (=, !=, =~ or !~)"
        );
        assert_eq!(
            Matcher::parse("1abc=x").unwrap_err().to_string(),
            "matcher `1abc=x`: `1abc` is not a valid label name"
        );
        assert!(
            Matcher::parse(r#"a=~"(""#)
                .unwrap_err()
                .to_string()
                .starts_with(r#"matcher `a=~"("`: `(` is not a valid regular expression"#)
        );
        assert_eq!(
            Matcher::parse(r#"a="open"#).unwrap_err().to_string(),
            r#"matcher `a="open`: unterminated quoted value"#
        );
    }
}

//! Euphrosyne's recipe result message, and where its durable copy lives.
//!
//! A recipe publishes `{incident, name, status, results: {actions, analysis, json, links}}` on
//! the Redis channel named by the `uuid` of its data file (the run id). Euphrosyne's SDK only
//! publishes; `steadfast-recipe report` also appends the message to a list
//! ([`durable_key`]) before publishing, so a result sent while no reconciler listens (a
//! restart) is still found when the run resumes.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Result messages above this are refused unread.
pub const MAX_RESULT_BYTES: usize = 256 * 1024;
/// How long the durable copy of a result is kept.
pub const DURABLE_TTL_SECS: u64 = 24 * 3600;

/// The list holding durable copies of the results of run `channel`.
pub fn durable_key(channel: &str) -> String {
    format!("steadfast:recipe-results:{channel}")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ResultStatus {
    Successful,
    Failed,
    Unknown,
}

impl ResultStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Successful => "successful",
            Self::Failed => "failed",
            Self::Unknown => "unknown",
        }
    }
}

/// One recipe's answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecipeResult {
    /// The run id (Euphrosyne calls it the incident uuid).
    pub incident: String,
    /// The recipe name.
    pub name: String,
    pub status: ResultStatus,
    #[serde(default)]
    pub results: ResultBody,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ResultBody {
    /// Suggested actions: names (Euphrosyne) or `{name, data}` with parameters.
    #[serde(default, deserialize_with = "null_as_default")]
    pub actions: Vec<SuggestedAction>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub analysis: String,
    /// Free-form structured output (Euphrosyne sends `""` when there is none).
    #[serde(default)]
    pub json: Value,
    #[serde(default, deserialize_with = "null_as_default")]
    pub links: Vec<Link>,
}

/// An action a recipe suggests, with the parameters the action recipe should get.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SuggestedAction {
    pub name: String,
    pub data: Value,
}

impl<'de> Deserialize<'de> for SuggestedAction {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Repr {
            Name(String),
            Full {
                name: String,
                #[serde(default)]
                data: Value,
            },
        }
        match Repr::deserialize(deserializer).map_err(|_| {
            serde::de::Error::custom("an action must be a name or {\"name\": ..., \"data\": {...}}")
        })? {
            Repr::Name(name) => Ok(Self {
                name,
                data: Value::Object(Default::default()),
            }),
            Repr::Full { name, data } => Ok(Self {
                name,
                data: if data.is_null() {
                    Value::Object(Default::default())
                } else {
                    data
                },
            }),
        }
    }
}

/// A link a recipe found useful: a URL, or `{url, title}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Link {
    pub url: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
}

impl<'de> Deserialize<'de> for Link {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Repr {
            Url(String),
            Full { url: String, title: Option<String> },
        }
        match Repr::deserialize(deserializer).map_err(|_| {
            serde::de::Error::custom("a link must be a URL or {\"url\": ..., \"title\": ...}")
        })? {
            Repr::Url(url) => Ok(Self { url, title: None }),
            Repr::Full { url, title } => Ok(Self { url, title }),
        }
    }
}

fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

/// Why a result message was refused.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("result is {size} bytes, over the {MAX_RESULT_BYTES}-byte limit")]
    TooLarge { size: usize },
    #[error("malformed result: {0}")]
    Malformed(#[source] serde_json::Error),
}

impl RecipeResult {
    /// Decodes a message, refusing oversized or malformed ones with the reason.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        if bytes.len() > MAX_RESULT_BYTES {
            return Err(DecodeError::TooLarge { size: bytes.len() });
        }
        serde_json::from_slice(bytes).map_err(DecodeError::Malformed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_euphrosynes_sdk_message() {
        let message = json!({"incident": "u-1", "name": "http-errors", "status": "successful",
            "results": {"actions": ["jira"], "analysis": "5xx from checkout", "json": "", "links": []}});
        let result = RecipeResult::decode(message.to_string().as_bytes()).unwrap();
        assert_eq!(result.status, ResultStatus::Successful);
        assert_eq!(result.results.actions[0].name, "jira");
        assert_eq!(result.results.actions[0].data, json!({}));
        assert_eq!(result.results.analysis, "5xx from checkout");
    }

    #[test]
    fn accepts_parameters_links_and_nulls() {
        let message = json!({"incident": "u", "name": "pods", "status": "failed",
            "results": {"actions": [{"name": "restart-pod", "data": {"pod": "web-1"}}],
                        "analysis": null, "links": ["http://a", {"url": "http://b", "title": "B"}]}});
        let result = RecipeResult::decode(message.to_string().as_bytes()).unwrap();
        assert_eq!(result.results.actions[0].data, json!({"pod": "web-1"}));
        assert_eq!(result.results.analysis, "");
        assert_eq!(result.results.links[1].title.as_deref(), Some("B"));
        // Results are optional: a bare failure report is fine.
        let bare =
            RecipeResult::decode(br#"{"incident":"u","name":"x","status":"unknown"}"#).unwrap();
        assert_eq!(bare.results, ResultBody::default());
    }

    #[test]
    fn refuses_bad_messages_with_the_reason() {
        assert!(
            RecipeResult::decode(b"{")
                .unwrap_err()
                .to_string()
                .starts_with("malformed result")
        );
        let err = RecipeResult::decode(br#"{"incident":"u","name":"x","status":"done"}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown variant `done`"), "{err}");
        let big = vec![b' '; MAX_RESULT_BYTES + 1];
        assert!(
            RecipeResult::decode(&big)
                .unwrap_err()
                .to_string()
                .contains("over the")
        );
    }
}

//! The task config (HyperFleet's `AdapterTaskConfig`, flat snake_case): params,
//! preconditions, resources and post-processing. Field names and shapes are HyperFleet's, so
//! its task configs load unchanged; unknown keys are refused with their name and line.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;
use steadfast_service_kit::config::deserialize_optional_duration;
use steadfast_service_kit::http_client::BackoffKind;

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TaskConfig {
    #[serde(default)]
    pub params: Vec<Param>,
    #[serde(default)]
    pub preconditions: Vec<Precondition>,
    #[serde(default)]
    pub resources: Vec<Resource>,
    #[serde(default)]
    pub post: Option<Post>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Param {
    pub name: String,
    #[serde(default)]
    pub source: Option<ParamSource>,
    #[serde(rename = "type", default)]
    pub kind: Option<ParamType>,
    #[serde(default)]
    pub required: bool,
    #[serde(default)]
    pub default: Option<Value>,
    #[serde(default)]
    pub description: Option<String>,
}

/// `event.id`, `env.X`, `config.a.b`, `<earlier param>.a.b`, or one structured source.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(try_from = "Value")]
pub enum ParamSource {
    Path(String),
    Structured(StructuredSource),
}

/// Why a param's `source` is not one (serde shows it with the field's position).
#[derive(Debug, thiserror::Error)]
pub enum ParamSourceError {
    #[error("source: {0}")]
    Structured(#[source] serde_json::Error),
    #[error(
        "source must be a path like `event.id` or one of api_call, expression, file; got {got}"
    )]
    Shape { got: Value },
}

impl TryFrom<Value> for ParamSource {
    type Error = ParamSourceError;

    /// By hand rather than `untagged`, so a typo in a structured source is named instead of
    /// "did not match any variant".
    fn try_from(value: Value) -> Result<Self, Self::Error> {
        match value {
            Value::String(path) => Ok(Self::Path(path)),
            Value::Object(_) => serde_json::from_value(value)
                .map(Self::Structured)
                .map_err(ParamSourceError::Structured),
            got => Err(ParamSourceError::Shape { got }),
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct StructuredSource {
    pub api_call: Option<ApiCall>,
    pub expression: Option<String>,
    pub file: Option<FileSource>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FileSource {
    #[serde(default)]
    pub path: PathBuf,
    /// Strip surrounding whitespace (default true).
    pub trim: Option<bool>,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ParamType {
    String,
    Int,
    Int64,
    Float,
    Float64,
    Bool,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "UPPERCASE")]
pub enum HttpMethod {
    Get,
    Post,
    Put,
    Patch,
    Delete,
}

impl HttpMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Get => "GET",
            Self::Post => "POST",
            Self::Put => "PUT",
            Self::Patch => "PATCH",
            Self::Delete => "DELETE",
        }
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ApiCall {
    pub method: HttpMethod,
    pub url: String,
    #[serde(default, deserialize_with = "deserialize_optional_duration")]
    pub timeout: Option<Duration>,
    pub retry_attempts: Option<u32>,
    pub retry_backoff: Option<BackoffKind>,
    #[serde(default)]
    pub headers: Vec<Header>,
    pub body: Option<String>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Header {
    pub name: String,
    #[serde(default)]
    pub value: String,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LogAction {
    pub message: String,
    #[serde(default)]
    pub level: Option<String>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Precondition {
    pub name: String,
    /// Old style (still accepted by HyperFleet): the call whose response `capture` reads.
    pub api_call: Option<ApiCall>,
    #[serde(default)]
    pub capture: Vec<Capture>,
    #[serde(default)]
    pub conditions: Vec<Condition>,
    pub expression: Option<String>,
    pub log: Option<LogAction>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Capture {
    pub name: String,
    pub field: Option<String>,
    pub expression: Option<String>,
    /// Used when a `field` capture finds nothing (HyperFleet: field captures only).
    pub default: Option<Value>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Condition {
    pub field: String,
    pub operator: Operator,
    pub value: Option<Value>,
    /// Alias of `value` (HyperFleet accepts either, not both).
    pub values: Option<Value>,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub enum Operator {
    Equals,
    NotEquals,
    In,
    NotIn,
    Contains,
    GreaterThan,
    GreaterThanOrEqual,
    LessThan,
    LessThanOrEqual,
    Exists,
    NotExists,
}

impl Operator {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Equals => "equals",
            Self::NotEquals => "notEquals",
            Self::In => "in",
            Self::NotIn => "notIn",
            Self::Contains => "contains",
            Self::GreaterThan => "greaterThan",
            Self::GreaterThanOrEqual => "greaterThanOrEqual",
            Self::LessThan => "lessThan",
            Self::LessThanOrEqual => "lessThanOrEqual",
            Self::Exists => "exists",
            Self::NotExists => "notExists",
        }
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Resource {
    pub name: String,
    pub transport: Option<Transport>,
    /// An object (templated leaf by leaf), a template string, or `{ref: path}`.
    pub manifest: Option<Value>,
    pub discovery: Option<Discovery>,
    #[serde(default)]
    pub nested_discoveries: Vec<NestedDiscovery>,
    #[serde(default)]
    pub recreate_on_change: bool,
    pub lifecycle: Option<Lifecycle>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Transport {
    pub client: String,
    pub maestro: Option<Value>,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Discovery {
    pub namespace: Option<String>,
    pub by_name: Option<String>,
    pub by_selectors: Option<Selectors>,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Selectors {
    #[serde(default)]
    pub label_selector: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct NestedDiscovery {
    pub name: String,
    pub discovery: Discovery,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Lifecycle {
    pub create: Option<CreateLifecycle>,
    pub delete: Option<DeleteLifecycle>,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CreateLifecycle {
    pub when: Option<When>,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DeleteLifecycle {
    /// HyperFleet writes it camelCase inside an otherwise snake_case file.
    #[serde(rename = "propagationPolicy")]
    pub propagation_policy: Option<String>,
    pub when: Option<When>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct When {
    #[serde(default)]
    pub expression: String,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Post {
    #[serde(default)]
    pub payloads: Vec<Payload>,
    #[serde(default)]
    pub post_actions: Vec<PostAction>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Payload {
    pub name: String,
    pub when: Option<When>,
    pub build: Option<Value>,
    pub build_ref: Option<String>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PostAction {
    pub name: String,
    pub when: Option<When>,
    pub api_call: Option<ApiCall>,
    pub log: Option<LogAction>,
}

impl Resource {
    /// `manifest: {ref: path}`.
    pub fn manifest_ref(&self) -> Option<&str> {
        match &self.manifest {
            Some(Value::Object(map)) if map.len() == 1 => map.get("ref").and_then(Value::as_str),
            _ => None,
        }
    }

    pub fn transport_client(&self) -> &str {
        self.transport
            .as_ref()
            .map_or("kubernetes", |t| t.client.as_str())
    }
}

/// HyperFleet's `ParseValueDef`: a map with a non-empty `field` or `expression` string is a
/// value to compute; any other map is a nested object.
pub struct ValueDefinition<'a> {
    pub field: Option<&'a str>,
    pub expression: Option<&'a str>,
    pub default: Option<&'a Value>,
}

impl<'a> ValueDefinition<'a> {
    pub fn of(map: &'a serde_json::Map<String, Value>) -> Option<Self> {
        let text = |key: &str| {
            map.get(key)
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
        };
        let definition = Self {
            field: text("field"),
            expression: text("expression"),
            default: map.get("default"),
        };
        (definition.field.is_some() || definition.expression.is_some()).then_some(definition)
    }
}

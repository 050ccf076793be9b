//! What one execution did, phase by phase: the dry-run trace prints it, the message handler
//! turns it into an ack, a retry or a park, the metrics count it.

use serde::Serialize;
use serde_json::{Map, Value};

use super::error::StepError;
use crate::transport::ErrorClass;

/// HyperFleet's phase names (they appear in `adapter.executionError.phase` and in the
/// `Health` reason `ExecutionFailed:<phase>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    ParamExtraction,
    Preconditions,
    Resources,
    PostActions,
}

impl Phase {
    pub const ALL: [Self; 4] = [
        Self::ParamExtraction,
        Self::Preconditions,
        Self::Resources,
        Self::PostActions,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::ParamExtraction => "param_extraction",
            Self::Preconditions => "preconditions",
            Self::Resources => "resources",
            Self::PostActions => "post_actions",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StepStatus {
    Success,
    Failed,
    Skipped,
}

/// The first failure of the execution: where it happened and why ([`StepError`], which also
/// says whether trying again later can help: [`Failure::class`]).
#[derive(Debug, Clone)]
pub struct Failure {
    pub phase: Phase,
    pub step: String,
    pub error: StepError,
}

impl Failure {
    /// What the status report and the logs say.
    pub fn message(&self) -> String {
        self.error.to_string()
    }

    /// Retry tier or parking lot: see [`StepError::class`].
    pub fn class(&self) -> ErrorClass {
        self.error.class()
    }

    /// Worth a retry tier ([`ErrorClass::Retryable`]).
    pub fn is_transient(&self) -> bool {
        self.class() == ErrorClass::Retryable
    }
}

/// Compared (and serialized) as what an operator sees: phase, step, message, transient.
impl PartialEq for Failure {
    fn eq(&self, other: &Self) -> bool {
        self.phase == other.phase
            && self.step == other.step
            && self.class() == other.class()
            && self.message() == other.message()
    }
}

impl Serialize for Failure {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct as _;
        let mut s = serializer.serialize_struct("Failure", 4)?;
        s.serialize_field("phase", &self.phase)?;
        s.serialize_field("step", &self.step)?;
        s.serialize_field("message", &self.message())?;
        s.serialize_field("transient", &self.is_transient())?;
        s.end()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ApiCallRecord {
    pub method: String,
    pub url: String,
    #[serde(rename = "statusCode")]
    pub status: u16,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PreconditionResult {
    pub name: String,
    pub status: StepStatus,
    pub matched: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip_serializing_if = "Map::is_empty")]
    pub captured: Map<String, Value>,
    #[serde(skip)]
    pub api_call: Option<ApiCallRecord>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ResourceResult {
    pub name: String,
    pub kind: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub namespace: String,
    #[serde(rename = "resourceName", skip_serializing_if = "String::is_empty")]
    pub resource_name: String,
    pub status: StepStatus,
    pub operation: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub reason: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The rendered manifest that was applied.
    #[serde(skip)]
    pub manifest: Option<Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PostActionResult {
    pub name: String,
    pub status: StepStatus,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub skipped: bool,
    #[serde(rename = "skipReason", skip_serializing_if = "Option::is_none")]
    pub skip_reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip)]
    pub api_call: Option<ApiCallRecord>,
    /// The body sent, for the trace.
    #[serde(skip)]
    pub body: Option<String>,
}

/// How the execution ended, for acking and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Resources applied and status reported.
    Success,
    /// Preconditions not met (status reported), or the resource no longer exists.
    Skipped,
    /// Something failed; see [`ExecutionResult::failure`].
    Failed,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExecutionResult {
    pub verdict: Verdict,
    /// The params after extraction (builtins `adapter`, `config`, `env`, `event` left out).
    pub params: Map<String, Value>,
    pub preconditions: Vec<PreconditionResult>,
    #[serde(rename = "resourcesSkipped")]
    pub resources_skipped: bool,
    #[serde(rename = "skipReason", skip_serializing_if = "Option::is_none")]
    pub skip_reason: Option<String>,
    pub resources: Vec<ResourceResult>,
    /// `resources.<name>` as later CEL saw it.
    #[serde(rename = "discoveredResources")]
    pub discovered: Map<String, Value>,
    /// Built payloads by name (not built when their `when` was false).
    pub payloads: Map<String, Value>,
    #[serde(rename = "postActions")]
    pub post_actions: Vec<PostActionResult>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure: Option<Failure>,
    /// The execution stopped at a transient failure without reporting status: the message
    /// goes back through a retry tier and the retry reports.
    #[serde(rename = "deferredForRetry")]
    pub deferred: bool,
}

impl ExecutionResult {
    pub fn new() -> Self {
        Self {
            verdict: Verdict::Success,
            params: Map::new(),
            preconditions: Vec::new(),
            resources_skipped: false,
            skip_reason: None,
            resources: Vec::new(),
            discovered: Map::new(),
            payloads: Map::new(),
            post_actions: Vec::new(),
            failure: None,
            deferred: false,
        }
    }

    /// The phase that failed, if any.
    pub fn failed_phase(&self) -> Option<Phase> {
        self.failure.as_ref().map(|f| f.phase)
    }
}

impl Default for ExecutionResult {
    fn default() -> Self {
        Self::new()
    }
}

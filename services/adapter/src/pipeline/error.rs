//! Why a step of the pipeline failed. [`StepError`] is what reaches the message handler
//! (inside [`super::Failure`]); [`StepError::class`] is the one place that says whether trying
//! again later can help. The texts are HyperFleet's (the runbook quotes them), so each
//! variant's message is fixed; the data is in its fields.

use std::fmt;
use std::sync::Arc;

use serde_json::Value;

use super::values::{ConditionError, ConvertError};
use crate::config::task::ParamType;
use crate::hyperfleet_api::ApiError;
use crate::transport::{ErrorClass, KubeError};

/// A CEL expression or a template that could not be evaluated on this execution's data.
#[derive(Debug, Clone, thiserror::Error)]
pub enum EvalError {
    /// The expression was not compiled at load and does not compile now.
    #[error("CEL parse error: {}", .0.message)]
    Compile(steadfast_rules::CompileError),
    #[error(transparent)]
    Cel(#[from] steadfast_rules::EvalError),
    /// Parsing or rendering a Go template.
    #[error(transparent)]
    Template(#[from] steadfast_gotemplate::TemplateError),
    /// A payload value definition with both keys (HyperFleet's run-time error).
    #[error("field and expression are mutually exclusive; only one should be specified")]
    FieldAndExpression,
}

impl EvalError {
    /// HyperFleet's split (its `EvaluateSafe`): an expression that fails on this event's data
    /// (a missing key, an undeclared variable, a type mismatch) is captured and each site
    /// decides — not matched, the default, null; one that does not even compile is a fault of
    /// the config and fails the step.
    pub fn is_about_the_data(&self) -> bool {
        !matches!(self, Self::Compile(_))
    }
}

/// Why a param has no value (a default or `required` decides what happens next).
#[derive(Debug, Clone, thiserror::Error)]
pub enum ParamError {
    #[error("no source")]
    NoSource,
    #[error("environment variable {var} not set")]
    EnvNotSet { var: String },
    #[error("field '{path}' in the event data not found")]
    EventField { path: String },
    #[error("config field '{path}' not found")]
    ConfigField { path: String },
    #[error("param '{param}' is not a map, cannot read '{field}' from it")]
    NotAMap { param: String, field: String },
    #[error("field '{field}' of param '{param}' not found")]
    ParamField { param: String, field: String },
    /// HyperFleet's fallback: an unqualified name is a path in the event data.
    #[error("'{path}' (not a param, and not in the event data) not found")]
    Unqualified { path: String },
    #[error("failed to parse API response as JSON: {0}")]
    ResponseJson(Arc<serde_json::Error>),
    #[error("failed to render api_call: {0}")]
    RenderCall(EvalError),
    /// An optional param's API call failed permanently.
    #[error(transparent)]
    Api(ApiError),
    #[error("CEL evaluation failed: {0}")]
    Expression(EvalError),
    #[error("reading {}: {source}", .path.display())]
    ReadFile {
        path: std::path::PathBuf,
        #[source]
        source: Arc<std::io::Error>,
    },
    #[error("file {} exceeds {limit} bytes", .path.display())]
    FileTooLarge {
        path: std::path::PathBuf,
        limit: u64,
    },
    #[error("file {} is empty", .path.display())]
    FileEmpty { path: std::path::PathBuf },
}

/// Why a precondition could not be evaluated.
#[derive(Debug, Clone, thiserror::Error)]
pub enum PreconditionError {
    #[error("failed to parse API response as JSON: {0}")]
    ResponseJson(Arc<serde_json::Error>),
    #[error("failed to render api_call: {0}")]
    RenderCall(EvalError),
    /// The HyperFleet resource is gone (recorded as a skip, not a failure).
    #[error("resource not found")]
    ResourceNotFound,
    #[error(transparent)]
    Api(ApiError),
    #[error("capture '{capture}': {error}")]
    Capture { capture: String, error: EvalError },
    #[error("condition on '{field}': {error}")]
    Condition {
        field: String,
        error: ConditionError,
    },
    #[error(transparent)]
    Expression(EvalError),
}

/// Why a resource's manifest could not be rendered.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ManifestError {
    #[error("no manifest specified")]
    Missing,
    #[error(transparent)]
    Render(#[from] EvalError),
    #[error("the rendered manifest is not valid YAML: {0}")]
    NotYaml(Arc<serde_norway::Error>),
    #[error("the rendered manifest is not an object: {value}")]
    NotObject { value: Value },
}

/// Which Kubernetes step failed (the context in front of the [`KubeError`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KubeStep {
    PreDiscovery,
    Apply,
    DiscoverAfterApply,
    DiscoverForDeletion,
    Delete,
}

impl fmt::Display for KubeStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::PreDiscovery => "pre-discovery failed",
            Self::Apply => "failed to apply resource",
            Self::DiscoverAfterApply => "failed to discover resource after apply",
            Self::DiscoverForDeletion => "failed to discover resource for deletion",
            Self::Delete => "failed to delete resource",
        })
    }
}

/// The first failure of an execution: what the status report says and what decides between
/// a retry tier and the parking lot ([`StepError::class`]).
#[derive(Debug, Clone, thiserror::Error)]
pub enum StepError {
    #[error("Failed to parse event data: expected a JSON object, got {data}")]
    EventNotObject { data: Value },
    #[error("failed to extract required parameter '{param}' from source '{from}': {reason}")]
    RequiredParam {
        param: String,
        /// The source as HyperFleet describes it (`event.id`, `api_call(GET /x)`,
        /// `expression("a.b")`, `file(/etc/x)`).
        from: String,
        reason: ParamError,
    },
    #[error("failed to convert parameter '{param}' to type {kind:?}: {reason}")]
    ConvertParam {
        param: String,
        kind: ParamType,
        reason: ConvertError,
    },
    #[error("failed to extract parameter '{param}': {error}{}", no_route_hint(.error))]
    ParamApi { param: String, error: ApiError },
    #[error("precondition api_call failed: {error}{}", no_route_hint(.error))]
    PreconditionApi { error: ApiError },
    #[error(transparent)]
    Precondition(PreconditionError),
    #[error("failed to evaluate lifecycle.create.when: {0}")]
    CreateWhen(EvalError),
    #[error("failed to evaluate lifecycle.delete.when: {0}")]
    DeleteWhen(EvalError),
    #[error("failed to render manifest: {0}")]
    Manifest(ManifestError),
    #[error("{step}: {error}")]
    Kube { step: KubeStep, error: KubeError },
    #[error("failed to evaluate when condition for payload '{payload}': {error}")]
    PayloadWhen { payload: String, error: EvalError },
    #[error("failed to build payload '{payload}': {error}")]
    PayloadBuild { payload: String, error: EvalError },
    #[error("failed to evaluate when condition: {0}")]
    PostActionWhen(EvalError),
    #[error("failed to render api_call: {0}")]
    PostActionRender(EvalError),
    #[error("status report failed: {error}{}", no_route_hint(.error))]
    StatusReport { error: ApiError },
}

impl StepError {
    /// Whether trying again later can help: the HyperFleet API's and Kubernetes' own
    /// classification for their errors; everything else (the data, the config) is
    /// [`ErrorClass::Fatal`] — the same event would fail the same way.
    pub fn class(&self) -> ErrorClass {
        match self {
            Self::ParamApi { error, .. }
            | Self::PreconditionApi { error }
            | Self::StatusReport { error } => error.class(),
            Self::Kube { error, .. } => error.class,
            _ => ErrorClass::Fatal,
        }
    }
}

/// After a 404 no API route matched: what to check.
fn no_route_hint(error: &ApiError) -> &'static str {
    if error.is_no_route() {
        " (HYPERFLEET-NTF-000: no API route matches this URL; check the api_call url and clients.hyperfleet_api.base_url)"
    } else {
        ""
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::ObjectRef;

    fn api(status: u16, body: &str) -> ApiError {
        ApiError::Status {
            method: "PUT".into(),
            url: "http://api/x".into(),
            status,
            body: body.into(),
            attempts: 1,
        }
    }

    #[test]
    fn api_and_kube_errors_keep_their_class_everything_else_is_fatal() {
        let report = StepError::StatusReport {
            error: api(503, ""),
        };
        assert_eq!(report.class(), ErrorClass::Retryable);
        let bad_request = StepError::StatusReport {
            error: api(400, ""),
        };
        assert_eq!(bad_request.class(), ErrorClass::Fatal);
        let kube = |class| StepError::Kube {
            step: KubeStep::Apply,
            error: ObjectRef::of(&serde_json::json!({"kind": "Job", "metadata": {"name": "j"}}))
                .error("create", class, None, "Conflict", "modified".into()),
        };
        assert_eq!(kube(ErrorClass::Retryable).class(), ErrorClass::Retryable);
        assert_eq!(kube(ErrorClass::Fatal).class(), ErrorClass::Fatal);
        let param = StepError::RequiredParam {
            param: "clusterId".into(),
            from: "event.id".into(),
            reason: ParamError::EventField { path: "id".into() },
        };
        assert_eq!(param.class(), ErrorClass::Fatal);
    }

    #[test]
    fn messages_are_hyperfleets() {
        let param = StepError::RequiredParam {
            param: "clusterId".into(),
            from: "event.id".into(),
            reason: ParamError::EventField { path: "id".into() },
        };
        assert_eq!(
            param.to_string(),
            "failed to extract required parameter 'clusterId' from source 'event.id': field 'id' in the event data not found"
        );
        let no_route = StepError::ParamApi {
            param: "cluster".into(),
            error: api(404, r#"{"code":"HYPERFLEET-NTF-000"}"#),
        };
        assert_eq!(no_route.class(), ErrorClass::Fatal);
        assert!(
            no_route
                .to_string()
                .starts_with("failed to extract parameter 'cluster': API request failed: PUT http://api/x answered 404")
        );
        assert!(no_route.to_string().ends_with(
            " (HYPERFLEET-NTF-000: no API route matches this URL; check the api_call url and clients.hyperfleet_api.base_url)"
        ));
        let step = StepError::Kube {
            step: KubeStep::Apply,
            error: ObjectRef::of(&serde_json::json!({"kind": "Job", "metadata": {"name": "j"}}))
                .error(
                    "create",
                    ErrorClass::Fatal,
                    Some(403),
                    "Forbidden",
                    "jobs is forbidden".into(),
                ),
        };
        assert_eq!(
            step.to_string(),
            "failed to apply resource: K8sOperationError{Operation:\"create\",Kind:\"Job\",Namespace:\"\",Name:\"j\"}: jobs is forbidden"
        );
    }
}

//! Errors as the API server reports them: `Status` objects with Kubernetes' codes, reasons and
//! message texts.

use serde_json::{Value, json};

use crate::kinds::KindSpec;

/// An error as the API server reports it: a `Status` object with an HTTP code and a reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub code: u16,
    pub reason: String,
    pub message: String,
}

impl ApiError {
    pub fn new(code: u16, message: impl Into<String>) -> Self {
        Self {
            code,
            reason: reason_for(code).into(),
            message: message.into(),
        }
    }

    pub(super) fn not_found(spec: &KindSpec, name: &str) -> Self {
        Self::new(404, format!("{} \"{name}\" not found", resource_name(spec)))
    }

    pub(super) fn invalid(spec: &KindSpec, name: &str, detail: String) -> Self {
        Self::new(
            422,
            format!("{} \"{name}\" is invalid: {detail}", spec.kind),
        )
    }

    /// The `Status` body.
    pub fn to_status(&self) -> Value {
        json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        })
    }

    pub(super) fn with_reason(mut self, reason: &str) -> Self {
        self.reason = reason.into();
        self
    }
}

/// The `reason` Kubernetes gives each status code.
pub fn reason_for(code: u16) -> &'static str {
    match code {
        400 => "BadRequest",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "NotFound",
        405 => "MethodNotAllowed",
        406 => "NotAcceptable",
        409 => "Conflict",
        410 => "Expired",
        415 => "UnsupportedMediaType",
        422 => "Invalid",
        429 => "TooManyRequests",
        500 => "InternalError",
        503 => "ServiceUnavailable",
        504 => "Timeout",
        _ => "Unknown",
    }
}

/// `configmaps` or `jobs.batch`, as the API server names a resource in messages.
pub fn resource_name(spec: &KindSpec) -> String {
    if spec.group.is_empty() {
        spec.plural.clone()
    } else {
        format!("{}.{}", spec.plural, spec.group)
    }
}

/// 409 for a write based on an outdated `resourceVersion`.
pub(super) fn conflict(spec: &KindSpec, name: &str) -> ApiError {
    ApiError::new(
        409,
        format!(
            "Operation cannot be fulfilled on {} \"{name}\": the object has been modified; please apply your changes to the latest version and try again",
            resource_name(spec)
        ),
    )
}

//! Errors as HyperFleet's RFC 9457 problems: `type`, `title`, `status`, `detail`, `instance`,
//! `code` (`HYPERFLEET-CAT-NUM`), `timestamp`, and field-level `errors` for validation.
//!
//! Handlers return [`ApiError`]; [`render_problems`] (a middleware) turns it into the body,
//! adding `instance` (the request path), which the handler does not need to know.

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::Value as Json;

const TYPE_BASE: &str = "https://api.hyperfleet.io/errors/";

/// HyperFleet's error codes (`pkg/errors/errors.go`).
pub mod code {
    pub const VALIDATION_MULTIPLE: &str = "HYPERFLEET-VAL-000";
    pub const VALIDATION_REQUIRED: &str = "HYPERFLEET-VAL-001";
    pub const VALIDATION_INVALID: &str = "HYPERFLEET-VAL-002";
    pub const VALIDATION_FORMAT: &str = "HYPERFLEET-VAL-003";
    pub const VALIDATION_RANGE: &str = "HYPERFLEET-VAL-004";
    pub const BAD_REQUEST: &str = "HYPERFLEET-VAL-005";
    pub const MALFORMED_BODY: &str = "HYPERFLEET-VAL-006";
    pub const SEARCH_PARSE: &str = "HYPERFLEET-VAL-007";
    pub const AUTH_NO_CREDENTIALS: &str = "HYPERFLEET-AUT-001";
    pub const AUTH_INVALID: &str = "HYPERFLEET-AUT-002";
    pub const ENDPOINT_NOT_FOUND: &str = "HYPERFLEET-NTF-000";
    pub const NOT_FOUND: &str = "HYPERFLEET-NTF-001";
    pub const CLUSTER_NOT_FOUND: &str = "HYPERFLEET-NTF-002";
    pub const NODEPOOL_NOT_FOUND: &str = "HYPERFLEET-NTF-003";
    pub const CONFLICT: &str = "HYPERFLEET-CNF-001";
    pub const INTERNAL: &str = "HYPERFLEET-INT-001";
    pub const DATABASE: &str = "HYPERFLEET-INT-002";
    pub const NOT_IMPLEMENTED: &str = "HYPERFLEET-INT-003";
    pub const SERVICE_UNAVAILABLE: &str = "HYPERFLEET-SVC-001";
}

/// One invalid field of a request.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FieldError {
    pub field: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<Json>,
    /// `required`, `min`, `max`, `min_length`, `max_length`, `pattern`, `enum`, `format`,
    /// `unique` (the spec's enum).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub constraint: Option<&'static str>,
    pub message: String,
}

impl FieldError {
    pub fn new(
        field: impl Into<String>,
        constraint: &'static str,
        message: impl Into<String>,
    ) -> Self {
        Self {
            field: field.into(),
            value: None,
            constraint: Some(constraint),
            message: message.into(),
        }
    }
}

/// An error answer of the API.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    type_name: &'static str,
    pub title: &'static str,
    pub detail: String,
    pub errors: Vec<FieldError>,
}

impl ApiError {
    fn new(
        status: StatusCode,
        code: &'static str,
        type_name: &'static str,
        title: &'static str,
        detail: impl Into<String>,
    ) -> Self {
        Self {
            status,
            code,
            type_name,
            title,
            detail: detail.into(),
            errors: Vec::new(),
        }
    }

    /// 400 with field errors; the detail summarises them.
    pub fn validation(errors: Vec<FieldError>) -> Self {
        let detail = errors
            .iter()
            .map(|e| format!("{}: {}", e.field, e.message))
            .collect::<Vec<_>>()
            .join("; ");
        let (code, title) = match errors.as_slice() {
            [one] if one.constraint == Some("required") => {
                (code::VALIDATION_REQUIRED, "Required Field Missing")
            }
            [one] if one.constraint == Some("format") => {
                (code::VALIDATION_FORMAT, "Invalid Format")
            }
            [one] if matches!(one.constraint, Some("min" | "max")) => {
                (code::VALIDATION_RANGE, "Value Out of Range")
            }
            [_] => (code::VALIDATION_INVALID, "Invalid Value"),
            _ => (code::VALIDATION_MULTIPLE, "Validation Failed"),
        };
        let mut error = Self::new(
            StatusCode::BAD_REQUEST,
            code,
            "validation-error",
            title,
            detail,
        );
        error.errors = errors;
        error
    }

    pub fn invalid(field: &str, constraint: &'static str, message: impl Into<String>) -> Self {
        Self::validation(vec![FieldError::new(field, constraint, message)])
    }

    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            code::BAD_REQUEST,
            "bad-request",
            "Bad Request",
            detail,
        )
    }

    pub fn malformed(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            code::MALFORMED_BODY,
            "malformed-request",
            "Malformed Request",
            detail,
        )
    }

    pub fn search(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            code::SEARCH_PARSE,
            "validation-error",
            "Invalid Search Query",
            format!("Failed to parse search query: {}", detail.into()),
        )
    }

    pub fn unsupported_media_type(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            code::BAD_REQUEST,
            "bad-request",
            "Unsupported Media Type",
            detail,
        )
    }

    pub fn too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            code::BAD_REQUEST,
            "bad-request",
            "Payload Too Large",
            format!("the request body is over the {limit}-byte limit"),
        )
    }

    pub fn unauthenticated(code: &'static str, detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            code,
            "authentication-error",
            "Authentication Required",
            detail,
        )
    }

    pub fn cluster_not_found(id: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            code::CLUSTER_NOT_FOUND,
            "not-found",
            "Cluster Not Found",
            format!("Cluster with id='{id}' not found"),
        )
    }

    pub fn nodepool_not_found(id: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            code::NODEPOOL_NOT_FOUND,
            "not-found",
            "NodePool Not Found",
            format!("NodePool with id='{id}' not found"),
        )
    }

    pub fn endpoint_not_found(path: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            code::ENDPOINT_NOT_FOUND,
            "endpoint-not-found",
            "Endpoint Not Found",
            format!("The requested endpoint '{path}' does not exist"),
        )
    }

    pub fn method_not_allowed(method: &str, path: &str) -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            code::NOT_IMPLEMENTED,
            "not-implemented",
            "Method Not Allowed",
            format!("{method} is not supported on '{path}'"),
        )
    }

    pub fn conflict(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::CONFLICT,
            code::CONFLICT,
            "conflict",
            "Resource Conflict",
            detail,
        )
    }

    pub fn internal(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            code::INTERNAL,
            "internal-error",
            "Internal Server Error",
            detail,
        )
    }

    /// A database failure: logged in full, answered without internals (503, so clients retry).
    pub fn database(error: &sqlx::Error) -> Self {
        tracing::error!(%error, "database error");
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            code::SERVICE_UNAVAILABLE,
            "service-unavailable",
            "Service Unavailable",
            "the database is unavailable; retry later",
        )
    }

    /// The problem body for a request to `instance`.
    pub fn body(&self, instance: &str) -> Json {
        let mut body = serde_json::json!({
            "type": format!("{TYPE_BASE}{}", self.type_name),
            "title": self.title,
            "status": self.status.as_u16(),
            "detail": self.detail,
            "instance": instance,
            "code": self.code,
            "timestamp": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        });
        if !self.errors.is_empty() {
            body["errors"] = serde_json::to_value(&self.errors).unwrap_or_default();
        }
        body
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(error: sqlx::Error) -> Self {
        Self::database(&error)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        // The body is written by `render_problems`, which knows the request path.
        let mut response = Response::new(Body::empty());
        *response.status_mut() = self.status;
        response.extensions_mut().insert(self);
        response
    }
}

/// Middleware: renders an [`ApiError`] left by a handler as `application/problem+json`.
pub async fn render_problems(request: Request, next: Next) -> Response {
    let instance = request.uri().path().to_owned();
    let mut response = next.run(request).await;
    if let Some(error) = response.extensions_mut().remove::<ApiError>() {
        let body = serde_json::to_vec(&error.body(&instance)).unwrap_or_default();
        let (mut parts, _) = response.into_parts();
        parts.headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        parts.headers.remove(header::CONTENT_LENGTH);
        return Response::from_parts(parts, Body::from(body));
    }
    response
}

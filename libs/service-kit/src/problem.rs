//! RFC 9457 problem responses, and JSON request bodies parsed with precise errors.
//!
//! Anything a sender can send gets a 4xx with a reason it can act on, never a 500: wrong
//! content type → 415, malformed JSON → 400 with line and column, a missing or mistyped field
//! → 400 naming the field.

use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

/// An `application/problem+json` body.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Problem {
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// Extension members (e.g. HyperFleet's `code`).
    #[serde(flatten)]
    pub extensions: Map<String, Value>,
}

impl Problem {
    pub fn new(status: StatusCode, detail: impl Into<String>) -> Self {
        Self {
            kind: "about:blank".into(),
            title: status.canonical_reason().unwrap_or("Error").to_owned(),
            status: status.as_u16(),
            detail: Some(detail.into()),
            extensions: Map::new(),
        }
    }

    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, detail)
    }

    pub fn unauthorized() -> Self {
        // Deliberately the same text whether the token was missing or wrong.
        Self::new(StatusCode::UNAUTHORIZED, "missing or invalid credentials")
    }

    #[must_use]
    pub fn with_extension(mut self, name: &str, value: impl Into<Value>) -> Self {
        self.extensions.insert(name.to_owned(), value.into());
        self
    }

    pub fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }
}

/// The refusal of a route guarded by an optional bearer token, or `None` to let the request
/// through: 403 with `disabled` (which says how to turn the route on) when no token is
/// configured, 401 with `WWW-Authenticate: Bearer` when the request's token is missing or wrong.
pub fn bearer_refusal(
    headers: &HeaderMap,
    token: Option<&str>,
    disabled: &str,
) -> Option<Response> {
    match token {
        None => Some(Problem::new(StatusCode::FORBIDDEN, disabled).into_response()),
        Some(token) if crate::auth::bearer_matches(headers, token) => None,
        Some(_) => {
            let mut response = Problem::unauthorized().into_response();
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer"),
            );
            Some(response)
        }
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = self.status_code();
        let body = serde_json::to_vec(&self).unwrap_or_default();
        (
            status,
            [(header::CONTENT_TYPE, "application/problem+json")],
            body,
        )
            .into_response()
    }
}

/// Whether the request says its body is JSON (`application/json` or any `+json` type).
pub fn is_json_content_type(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase())
        .is_some_and(|v| v == "application/json" || v.ends_with("+json"))
}

/// Checks the content type and parses `body` as `T`, with a 415 or a precise 400.
pub fn parse_json_body<T: DeserializeOwned>(
    headers: &HeaderMap,
    body: &[u8],
) -> Result<T, Problem> {
    if !is_json_content_type(headers) {
        let given = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("none");
        return Err(Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("expected Content-Type application/json, got {given}"),
        ));
    }
    parse_json(body)
}

/// Parses `body` as `T`; a syntax error reports line and column, a data error the field.
pub fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, Problem> {
    serde_json::from_slice(body).map_err(|e| {
        let kind = match e.classify() {
            serde_json::error::Category::Syntax | serde_json::error::Category::Eof => {
                "malformed JSON"
            }
            _ => "invalid request body",
        };
        Problem::bad_request(format!("{kind}: {e}"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Hook {
        object_kind: String,
    }

    fn json_headers() -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json; charset=utf-8"),
        );
        h
    }

    #[test]
    fn content_type_is_checked() {
        let err = parse_json_body::<Hook>(&HeaderMap::new(), b"{}").unwrap_err();
        assert_eq!(err.status, 415);
        assert_eq!(
            err.detail.as_deref(),
            Some("expected Content-Type application/json, got none")
        );
        let mut h = HeaderMap::new();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/cloudevents+json"),
        );
        assert!(parse_json_body::<Hook>(&h, br#"{"object_kind":"build"}"#).is_ok());
    }

    #[test]
    fn malformed_and_missing_fields_are_400_with_the_reason() {
        let err = parse_json_body::<Hook>(&json_headers(), b"{\"object_kind\": ").unwrap_err();
        assert_eq!(err.status, 400);
        assert!(
            err.detail
                .as_deref()
                .unwrap()
                .starts_with("malformed JSON: EOF while parsing"),
            "{err:?}"
        );
        let err = parse_json_body::<Hook>(&json_headers(), b"{}").unwrap_err();
        assert_eq!(
            err.detail.as_deref(),
            Some("invalid request body: missing field `object_kind` at line 1 column 2")
        );
    }

    #[test]
    fn problems_serialise_per_rfc_9457() {
        let p = Problem::bad_request("bad").with_extension("code", "HYPERFLEET-VAL-000");
        let v = serde_json::to_value(&p).unwrap();
        assert_eq!(v["type"], "about:blank");
        assert_eq!(v["title"], "Bad Request");
        assert_eq!(v["status"], 400);
        assert_eq!(v["detail"], "bad");
        assert_eq!(v["code"], "HYPERFLEET-VAL-000");
    }
}

//! The other services, as the console reads and steers them: their HTTP APIs (with their
//! tokens) and their `/readyz`.

pub mod fleet;
pub mod herder;
pub mod probes;
pub mod receiver;
pub mod reconciler;

use std::time::Duration;

use reqwest::StatusCode;
use serde::Serialize;
use serde::de::DeserializeOwned;
use steadfast_service_kit::http_client::{HttpClient, HttpError, RetryPolicy};

use crate::config::Upstream;

/// How long the console waits for another service: a page should fail fast and say so.
pub const TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    /// The service answered 404 for what was asked.
    #[error("not found")]
    NotFound,
    /// The service refused the request and said why (an RFC 9457 `detail` when it gave one).
    #[error("{status}: {detail}")]
    Refused { status: StatusCode, detail: String },
    #[error("{0}")]
    Unreachable(HttpError),
    #[error("unexpected answer: {0}")]
    Decode(String),
}

impl From<HttpError> for UpstreamError {
    fn from(error: HttpError) -> Self {
        match error {
            HttpError::Status { status, .. } if status == StatusCode::NOT_FOUND => Self::NotFound,
            HttpError::Status { status, body, .. } if status.is_client_error() => Self::Refused {
                status,
                detail: serde_json::from_str::<serde_json::Value>(&body)
                    .ok()
                    .and_then(|v| v.get("detail").and_then(|d| d.as_str()).map(str::to_owned))
                    .unwrap_or(body),
            },
            other => Self::Unreachable(other),
        }
    }
}

/// The shared HTTP client: no retries (a person is waiting), a short timeout, traceparent.
pub fn http_client() -> Result<HttpClient, reqwest::Error> {
    HttpClient::new(TIMEOUT, RetryPolicy::none())
}

/// One service's API, called with its bearer token.
#[derive(Clone)]
pub struct Api {
    http: HttpClient,
    upstream: Upstream,
}

impl Api {
    pub fn new(http: HttpClient, upstream: Upstream) -> Self {
        Self { http, upstream }
    }

    fn url(&self, path: &str) -> url::Url {
        self.upstream
            .url
            .join(path)
            .expect("paths are static and relative")
    }

    /// With the bearer token, when this API has one (the HyperFleet API may not).
    fn authorised(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        if self.upstream.token.is_empty() {
            request
        } else {
            request.bearer_auth(&self.upstream.token)
        }
    }

    pub async fn get<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<T, UpstreamError> {
        let url = self.url(path);
        let response = self
            .http
            .send(|c| self.authorised(c.get(url.clone()).query(query)))
            .await?;
        response
            .json()
            .await
            .map_err(|e| UpstreamError::Decode(e.to_string()))
    }

    pub async fn post<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, UpstreamError> {
        let url = self.url(path);
        let response = self
            .http
            .send(|c| self.authorised(c.post(url.clone()).json(body)))
            .await?;
        response
            .json()
            .await
            .map_err(|e| UpstreamError::Decode(e.to_string()))
    }
}

//! The HyperFleet API client, with HyperFleet's retry rules.
//!
//! * Retried: 408, 429, 5xx and transport errors, up to `retry_attempts` attempts in all,
//!   waiting `base × 2^(n−1)` (exponential), `base × n` (linear) or `base` (constant), then
//!   ±10% jitter, then capped at `max_delay` — HyperFleet's formula, in that order. Per-call
//!   `timeout` / `retry_attempts` / `retry_backoff` override the client's.
//! * URLs: a relative path gets `/api/hyperfleet/<version>` in front unless it already starts
//!   with `api/`, then the base URL; an absolute URL is used as is.
//! * A 404 whose problem `code` is `HYPERFLEET-NTF-000` means "no route matched": a broken URL
//!   in the config, not a deleted resource ([`ApiError::is_resource_not_found`] tells them apart).
//! * The backend is HTTP in production and a recorded set of responses in dry-run
//!   ([`mock::MockApi`]); retries behave the same on both.
//! * Errors are classified ([`ApiError::class`]) with the crate's one [`ErrorClass`].

pub mod mock;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::Rng;
use steadfast_service_kit::http_client::{BackoffKind, is_retryable_status};
use steadfast_telemetry::trace;
use tracing::Instrument;

use crate::config::adapter::HyperfleetApi;
use crate::transport::ErrorClass;

pub use mock::{MockApi, MockFileError, RecordedCall};

/// Response bodies above this are refused rather than buffered.
pub const MAX_RESPONSE_BYTES: usize = 8 * 1024 * 1024;

/// The problem code the HyperFleet API uses for "no route matched".
pub const NO_ROUTE_CODE: &str = "HYPERFLEET-NTF-000";

/// One call, after its templates were rendered.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiRequest {
    pub method: String,
    /// As written in the config (relative path or absolute URL).
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Option<String>,
    pub timeout: Option<Duration>,
    pub retry_attempts: Option<u32>,
    pub retry_backoff: Option<BackoffKind>,
}

/// A successful (2xx) response.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiResponse {
    pub status: u16,
    pub body: String,
    pub url: String,
    pub attempts: u32,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum ApiError {
    #[error("API request failed: {method} {url} answered {status} after {attempts} attempt(s){}", body_suffix(.body))]
    Status {
        method: String,
        url: String,
        status: u16,
        body: String,
        attempts: u32,
    },
    #[error("API request failed: {method} {url}: {cause} after {attempts} attempt(s)")]
    Transport {
        method: String,
        url: String,
        cause: SendError,
        attempts: u32,
    },
    /// The HTTP client could not be built (a start-up failure).
    #[error("API request not sent: cannot build the HTTP client: {0}")]
    BuildClient(Arc<reqwest::Error>),
    #[error("cannot read the HyperFleet API token: {}: {source}", .path.display())]
    TokenUnreadable {
        path: PathBuf,
        #[source]
        source: Arc<std::io::Error>,
    },
    #[error("cannot read the HyperFleet API token: {} is empty", .path.display())]
    TokenEmpty { path: PathBuf },
}

/// Why one attempt got no HTTP answer.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SendError {
    /// The method is not an HTTP token (the `http` crate's own text).
    #[error("invalid HTTP method")]
    InvalidMethod { method: String },
    /// Connecting, sending or reading failed: the error with its causes.
    #[error("{}", describe(.0))]
    Http(Arc<reqwest::Error>),
    #[error("response body over {limit} bytes")]
    BodyTooLarge { limit: usize },
}

fn body_suffix(body: &str) -> String {
    if body.is_empty() {
        String::new()
    } else {
        let mut text: String = body.chars().take(400).collect();
        if text.len() < body.len() {
            text.push('…');
        }
        format!(": {text}")
    }
}

impl ApiError {
    /// Whether trying again later can help: network, 408, 429 and 5xx are
    /// [`ErrorClass::Retryable`]; a 404 for a resource that does not exist is
    /// [`ErrorClass::NotFound`]; anything else (4xx, a 404 no route matched) is
    /// [`ErrorClass::Fatal`].
    pub fn class(&self) -> ErrorClass {
        match self {
            Self::Status { status, .. } if is_retryable(*status) => ErrorClass::Retryable,
            Self::Status { .. } if self.is_resource_not_found() => ErrorClass::NotFound,
            Self::Status { .. } => ErrorClass::Fatal,
            Self::Transport { .. } => ErrorClass::Retryable,
            // A token file that cannot be read is usually a volume not mounted yet.
            Self::TokenUnreadable { .. } | Self::TokenEmpty { .. } => ErrorClass::Retryable,
            Self::BuildClient(_) => ErrorClass::Fatal,
        }
    }

    /// Worth retrying later (network, 408, 429, 5xx): [`ApiError::class`] is retryable.
    pub fn is_transient(&self) -> bool {
        self.class() == ErrorClass::Retryable
    }

    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// A 404 for a resource that does not exist (deleted), as opposed to a 404 for a URL no
    /// route matches (`HYPERFLEET-NTF-000`, a configuration error).
    pub fn is_resource_not_found(&self) -> bool {
        match self {
            Self::Status {
                status: 404, body, ..
            } => problem_code(body).as_deref() != Some(NO_ROUTE_CODE),
            _ => false,
        }
    }

    /// A 404 that no route matched.
    pub fn is_no_route(&self) -> bool {
        matches!(self, Self::Status { status: 404, body, .. } if problem_code(body).as_deref() == Some(NO_ROUTE_CODE))
    }
}

fn problem_code(body: &str) -> Option<String> {
    serde_json::from_str::<serde_json::Value>(body)
        .ok()?
        .get("code")?
        .as_str()
        .map(str::to_owned)
}

pub fn is_retryable(status: u16) -> bool {
    reqwest::StatusCode::from_u16(status).is_ok_and(is_retryable_status)
}

/// Retry settings of one call.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    pub kind: BackoffKind,
    pub base: Duration,
    pub max: Duration,
}

impl Backoff {
    /// The wait after failed attempt `attempt` (1-based): formula, ±10% jitter, then the cap
    /// (HyperFleet's order; service-kit's client caps before jitter).
    pub fn delay(&self, attempt: u32) -> Duration {
        let raw = self.kind.delay(self.base, attempt);
        let jittered = raw.mul_f64(rand::rng().random_range(0.9..=1.1));
        jittered.min(self.max)
    }
}

enum Backend {
    Http(reqwest::Client),
    Mock(Arc<MockApi>),
}

struct CachedToken {
    value: String,
    read_at: Instant,
}

struct TokenSource {
    path: PathBuf,
    ttl: Duration,
    cached: Mutex<Option<CachedToken>>,
}

impl TokenSource {
    fn get(&self) -> Result<String, ApiError> {
        let mut cached = self
            .cached
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(token) = cached.as_ref()
            && token.read_at.elapsed() < self.ttl
        {
            return Ok(token.value.clone());
        }
        let value = std::fs::read_to_string(&self.path)
            .map_err(|source| ApiError::TokenUnreadable {
                path: self.path.clone(),
                source: Arc::new(source),
            })?
            .trim()
            .to_owned();
        if value.is_empty() {
            return Err(ApiError::TokenEmpty {
                path: self.path.clone(),
            });
        }
        *cached = Some(CachedToken {
            value: value.clone(),
            read_at: Instant::now(),
        });
        Ok(value)
    }
}

/// The client. Cheap to share behind an `Arc`.
pub struct ApiClient {
    backend: Backend,
    base_url: Option<String>,
    version: String,
    timeout: Duration,
    attempts: u32,
    backoff: Backoff,
    default_headers: Vec<(String, String)>,
    token: Option<TokenSource>,
}

impl ApiClient {
    /// An HTTP client for the configured API.
    pub fn http(config: &HyperfleetApi) -> Result<Self, ApiError> {
        let client = reqwest::Client::builder()
            .user_agent(concat!("steadfast-adapter/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(config.timeout.min(Duration::from_secs(10)))
            .build()
            .map_err(|e| ApiError::BuildClient(Arc::new(e)))?;
        Ok(Self::with_backend(Backend::Http(client), config))
    }

    /// A client answering from recorded responses (dry-run).
    pub fn mock(config: &HyperfleetApi, mock: Arc<MockApi>) -> Self {
        Self::with_backend(Backend::Mock(mock), config)
    }

    fn with_backend(backend: Backend, config: &HyperfleetApi) -> Self {
        Self {
            backend,
            base_url: config
                .base_url
                .as_deref()
                .map(|u| u.trim().trim_end_matches('/').to_owned())
                .filter(|u| !u.is_empty()),
            version: config.version.clone(),
            timeout: config.timeout,
            attempts: config.retry_attempts.max(1),
            backoff: Backoff {
                kind: config.retry_backoff,
                base: config.base_delay,
                max: config.max_delay,
            },
            default_headers: config
                .default_headers
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            token: config.auth.as_ref().map(|auth| TokenSource {
                path: auth.token_path.clone(),
                ttl: auth.token_cache_ttl,
                cached: Mutex::new(None),
            }),
        }
    }

    /// The URL a configured `url` resolves to (HyperFleet's rules, see the module docs).
    pub fn resolve_url(&self, url: &str) -> String {
        let url = url.trim();
        if url.starts_with("http://") || url.starts_with("https://") {
            return url.to_owned();
        }
        let Some(base) = &self.base_url else {
            return url.to_owned();
        };
        let clean = url.trim_start_matches('/');
        let path = if clean.starts_with("api/") {
            format!("/{clean}")
        } else {
            format!("/api/hyperfleet/{}/{clean}", self.version.trim_matches('/'))
        };
        format!("{base}{path}")
    }

    /// Sends `request`, retrying per the rules above. Non-2xx answers are errors.
    pub async fn send(&self, request: &ApiRequest) -> Result<ApiResponse, ApiError> {
        let url = self.resolve_url(&request.url);
        let method = request.method.to_ascii_uppercase();
        let attempts = request.retry_attempts.unwrap_or(self.attempts).max(1);
        let backoff = Backoff {
            kind: request.retry_backoff.unwrap_or(self.backoff.kind),
            ..self.backoff
        };
        let timeout = request.timeout.unwrap_or(self.timeout);
        let mut headers = self.default_headers.clone();
        if let Some(token) = &self.token
            && !request
                .headers
                .iter()
                .any(|(k, _)| k.eq_ignore_ascii_case("authorization"))
        {
            headers.push(("Authorization".into(), format!("Bearer {}", token.get()?)));
        }
        headers.extend(request.headers.iter().cloned());
        let mut attempt = 1;
        loop {
            let outcome = self
                .attempt(&method, &url, &headers, request.body.as_deref(), timeout)
                .await;
            let error = match outcome {
                Ok((status, body)) if (200..300).contains(&status) => {
                    return Ok(ApiResponse {
                        status,
                        body,
                        url,
                        attempts: attempt,
                    });
                }
                Ok((status, body)) => ApiError::Status {
                    method: method.clone(),
                    url: url.clone(),
                    status,
                    body,
                    attempts: attempt,
                },
                Err(cause) => ApiError::Transport {
                    method: method.clone(),
                    url: url.clone(),
                    cause,
                    attempts: attempt,
                },
            };
            if !error.is_transient() || attempt >= attempts {
                return Err(error);
            }
            let wait = backoff.delay(attempt);
            tracing::warn!(%method, %url, attempt, wait_ms = wait.as_millis() as u64, error = %error, "HyperFleet API request returned retryable status; retrying");
            tokio::time::sleep(wait).await;
            attempt += 1;
        }
    }

    async fn attempt(
        &self,
        method: &str,
        url: &str,
        headers: &[(String, String)],
        body: Option<&str>,
        timeout: Duration,
    ) -> Result<(u16, String), SendError> {
        match &self.backend {
            Backend::Mock(mock) => Ok(mock.answer(method, url, body)),
            Backend::Http(client) => {
                let method = reqwest::Method::from_bytes(method.as_bytes()).map_err(|_| {
                    SendError::InvalidMethod {
                        method: method.to_owned(),
                    }
                })?;
                // A client span per attempt, whose traceparent the request carries, so the
                // API's spans join the event's trace.
                let span = trace::http_client_span(method.as_str(), url);
                let mut builder = client.request(method, url).timeout(timeout);
                let mut has_content_type = false;
                for (name, value) in headers {
                    has_content_type |= name.eq_ignore_ascii_case("content-type");
                    builder = builder.header(name, value);
                }
                if let Some(body) = body {
                    if !has_content_type {
                        builder = builder.header("content-type", "application/json");
                    }
                    builder = builder.body(body.to_owned());
                }
                let builder = trace::with_traceparent(builder, &span);
                let http = |e: reqwest::Error| SendError::Http(Arc::new(e));
                let sent = builder.send().instrument(span.clone()).await;
                match &sent {
                    Ok(response) => trace::record_status(&span, response.status().as_u16()),
                    Err(_) => trace::record_transport_error(&span),
                }
                let mut response = sent.map_err(http)?;
                let status = response.status().as_u16();
                let mut bytes = Vec::new();
                while let Some(chunk) = response.chunk().await.map_err(http)? {
                    if bytes.len() + chunk.len() > MAX_RESPONSE_BYTES {
                        return Err(SendError::BodyTooLarge {
                            limit: MAX_RESPONSE_BYTES,
                        });
                    }
                    bytes.extend_from_slice(&chunk);
                }
                Ok((status, String::from_utf8_lossy(&bytes).into_owned()))
            }
        }
    }
}

/// reqwest's error with its causes ("error sending request: connection refused").
fn describe(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    if error.is_timeout() {
        text.push_str(" (timed out)");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(base: Option<&str>) -> ApiClient {
        let config = HyperfleetApi {
            base_url: base.map(str::to_owned),
            ..HyperfleetApi::default()
        };
        ApiClient::mock(&config, Arc::new(MockApi::default()))
    }

    #[tokio::test]
    async fn every_api_request_carries_the_callers_trace() {
        use axum::http::{HeaderMap, StatusCode};
        use tracing::Instrument;

        let seen = steadfast_test_support::HeaderLog::traceparent();
        let record = seen.clone();
        let base = steadfast_test_support::spawn_http(axum::Router::new().route(
            "/api/hyperfleet/v1/clusters/a",
            axum::routing::get(move |headers: HeaderMap| {
                // A 503 first: the retried attempt is traced too.
                let status = if record.record(&headers) == 1 {
                    StatusCode::SERVICE_UNAVAILABLE
                } else {
                    StatusCode::OK
                };
                async move { (status, "{}") }
            }),
        ))
        .await;
        let config = HyperfleetApi {
            base_url: Some(base),
            base_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(5),
            retry_attempts: 2,
            ..HyperfleetApi::default()
        };
        let client = ApiClient::http(&config).unwrap();
        let request = ApiRequest {
            method: "GET".into(),
            url: "/clusters/a".into(),
            headers: Vec::new(),
            body: None,
            timeout: None,
            retry_attempts: None,
            retry_backoff: None,
        };

        let _tracer = steadfast_telemetry::trace::testing::local_tracer();
        let handler = tracing::info_span!("message");
        let handler_trace = steadfast_telemetry::trace::traceparent(&handler)
            .unwrap()
            .trace_id();
        let response = client.send(&request).instrument(handler).await.unwrap();
        assert_eq!(response.attempts, 2);
        let seen = seen.values();
        assert_eq!(seen.len(), 2);
        for header in seen.iter() {
            let header = header.as_deref().expect("a traceparent header");
            assert_eq!(header.split('-').nth(1), Some(handler_trace.as_str()));
        }
        assert_ne!(seen[0], seen[1], "one client span per attempt");
    }

    #[test]
    fn urls_follow_hyperfleet_rules() {
        let c = client(Some("http://api:8000/"));
        assert_eq!(
            c.resolve_url("/clusters/a"),
            "http://api:8000/api/hyperfleet/v1/clusters/a"
        );
        assert_eq!(
            c.resolve_url("clusters/a/statuses"),
            "http://api:8000/api/hyperfleet/v1/clusters/a/statuses"
        );
        assert_eq!(
            c.resolve_url("/api/hyperfleet/v1/clusters/a"),
            "http://api:8000/api/hyperfleet/v1/clusters/a"
        );
        assert_eq!(c.resolve_url("https://other/x"), "https://other/x");
        assert_eq!(client(None).resolve_url("/clusters/a"), "/clusters/a");
    }

    #[test]
    fn backoff_formula_jitter_then_cap() {
        let b = Backoff {
            kind: BackoffKind::Exponential,
            base: Duration::from_secs(1),
            max: Duration::from_secs(5),
        };
        for _ in 0..100 {
            let d = b.delay(2);
            assert!(
                d >= Duration::from_millis(1800) && d <= Duration::from_millis(2200),
                "{d:?}"
            );
            assert!(b.delay(4) <= Duration::from_secs(5));
        }
        let linear = Backoff {
            kind: BackoffKind::Linear,
            ..b
        };
        let d = linear.delay(3);
        assert!(
            d >= Duration::from_millis(2700) && d <= Duration::from_millis(3300),
            "{d:?}"
        );
        let constant = Backoff {
            kind: BackoffKind::Constant,
            ..b
        };
        assert!(constant.delay(9) <= Duration::from_millis(1100));
    }

    #[test]
    fn not_found_is_told_apart_from_no_route() {
        let error = |body: &str| ApiError::Status {
            method: "GET".into(),
            url: "u".into(),
            status: 404,
            body: body.into(),
            attempts: 1,
        };
        assert!(error(r#"{"code":"HYPERFLEET-NTF-001"}"#).is_resource_not_found());
        assert!(error("").is_resource_not_found());
        let no_route = error(r#"{"code":"HYPERFLEET-NTF-000","detail":"no route"}"#);
        assert!(!no_route.is_resource_not_found() && no_route.is_no_route());
        assert!(!no_route.is_transient());
    }
}

//! Outbound HTTP with retries, for the APIs outside the project (GitLab, HyperFleet, Webex).
//!
//! Retried: network errors, timeouts, 408, 429 and 5xx — with backoff (exponential, linear or
//! constant), ±jitter, a cap per wait, and a budget of attempts and/or total time. A
//! `Retry-After` in seconds is honoured up to the cap. Anything else (4xx) is final at once:
//! repeating a request the server called wrong only delays the error.
//!
//! In-process retry is only for idempotent calls and short outages; longer outages are the
//! message retry tiers' job.
//!
//! With spans exported, every attempt is an HTTP client span and carries its `traceparent`,
//! so the API's own traces (and ours) join the caller's.

use std::time::Duration;

use rand::Rng;
use reqwest::{Client, RequestBuilder, Response, StatusCode};
use steadfast_telemetry::trace;
use tokio::time::Instant;
use tracing::Instrument;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackoffKind {
    Exponential,
    Linear,
    Constant,
}

/// Why a retry backoff name is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{text}` is not a retry backoff: use exponential, linear or constant")]
pub struct UnknownBackoff {
    text: String,
}

impl BackoffKind {
    /// The name configs use (the serde form).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Exponential => "exponential",
            Self::Linear => "linear",
            Self::Constant => "constant",
        }
    }

    /// The kind named `text` (a clap value parser for flags that override a config).
    pub fn parse(text: &str) -> Result<Self, UnknownBackoff> {
        [Self::Exponential, Self::Linear, Self::Constant]
            .into_iter()
            .find(|kind| kind.as_str() == text)
            .ok_or_else(|| UnknownBackoff { text: text.into() })
    }

    /// The uncapped wait before retry `n` (1-based): `base × 2^(n−1)`, `base × n` or `base`.
    pub fn delay(self, base: Duration, n: u32) -> Duration {
        let n = n.max(1);
        match self {
            Self::Constant => base,
            Self::Linear => base.saturating_mul(n),
            Self::Exponential => base.saturating_mul(2u32.saturating_pow((n - 1).min(30))),
        }
    }
}

/// When and how often to retry.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    pub kind: BackoffKind,
    /// Wait before the first retry.
    pub base_delay: Duration,
    /// No single wait is longer than this.
    pub max_delay: Duration,
    /// Relative jitter: 0.1 spreads each wait over ±10%.
    pub jitter: f64,
    /// Total attempts, the first included; `None` for no limit (then `max_elapsed` bounds).
    pub max_attempts: Option<u32>,
    /// Give up once this much time has passed since the first attempt.
    pub max_elapsed: Option<Duration>,
}

impl Default for RetryPolicy {
    /// 500 ms, doubling to at most 8 s, ±10%, for at most 30 s (HyperFleet's API schedule).
    fn default() -> Self {
        Self {
            kind: BackoffKind::Exponential,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(8),
            jitter: 0.1,
            max_attempts: None,
            max_elapsed: Some(Duration::from_secs(30)),
        }
    }
}

impl RetryPolicy {
    /// One attempt, no retries.
    pub fn none() -> Self {
        Self {
            max_attempts: Some(1),
            ..Self::default()
        }
    }

    /// The wait before retry `n` (1-based), before jitter.
    pub fn delay(&self, n: u32) -> Duration {
        self.kind.delay(self.base_delay, n).min(self.max_delay)
    }

    fn jittered(&self, n: u32) -> Duration {
        let base = self.delay(n);
        if self.jitter <= 0.0 {
            return base;
        }
        let factor = rand::rng().random_range((1.0 - self.jitter)..(1.0 + self.jitter));
        base.mul_f64(factor)
    }
}

/// Why a request did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// The server answered with a non-success status (final, or still failing when the retry
    /// budget ran out).
    #[error("{method} {url} answered {status}{}", if body.is_empty() { String::new() } else { format!(": {body}") })]
    Status {
        method: String,
        url: String,
        status: StatusCode,
        /// The start of the response body, for the log.
        body: String,
    },
    /// No answer: connection refused, reset, timeout, TLS failure.
    #[error("{method} {url} failed: {source}")]
    Transport {
        method: String,
        url: String,
        #[source]
        source: reqwest::Error,
    },
}

impl HttpError {
    /// Whether a later attempt may succeed (network trouble, 408, 429, 5xx).
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Status { status, .. } => is_retryable_status(*status),
            Self::Transport { .. } => true,
        }
    }

    pub fn status(&self) -> Option<StatusCode> {
        match self {
            Self::Status { status, .. } => Some(*status),
            Self::Transport { .. } => None,
        }
    }
}

/// 408, 429 and every 5xx.
pub fn is_retryable_status(status: StatusCode) -> bool {
    status == StatusCode::REQUEST_TIMEOUT
        || status == StatusCode::TOO_MANY_REQUESTS
        || status.is_server_error()
}

/// A reqwest client with a retry policy.
#[derive(Debug, Clone)]
pub struct HttpClient {
    client: Client,
    policy: RetryPolicy,
}

impl HttpClient {
    /// A client whose every attempt times out after `timeout`.
    pub fn new(timeout: Duration, policy: RetryPolicy) -> Result<Self, reqwest::Error> {
        let client = Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .user_agent(concat!("steadfast/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self { client, policy })
    }

    pub fn from_client(client: Client, policy: RetryPolicy) -> Self {
        Self { client, policy }
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn policy(&self) -> &RetryPolicy {
        &self.policy
    }

    /// Sends the request built by `build` (called again for every attempt), retrying per the
    /// policy. A 2xx/3xx response is returned; anything else is an [`HttpError`].
    pub async fn send(
        &self,
        build: impl Fn(&Client) -> RequestBuilder,
    ) -> Result<Response, HttpError> {
        self.send_observed(build, |_| {}).await
    }

    /// Like [`HttpClient::send`], calling `on_failure` for every failed attempt (for metrics
    /// and logs), retried or not.
    pub async fn send_observed(
        &self,
        build: impl Fn(&Client) -> RequestBuilder,
        mut on_failure: impl FnMut(&HttpError),
    ) -> Result<Response, HttpError> {
        let started = Instant::now();
        let mut attempt = 1u32;
        loop {
            let request = build(&self.client);
            let (method, url) = match request.try_clone().and_then(|r| r.build().ok()) {
                Some(r) => (r.method().to_string(), r.url().to_string()),
                None => (String::from("?"), String::from("?")),
            };
            // Each attempt is a client span, and the request carries its traceparent.
            let span = trace::http_client_span(&method, &url);
            let request = trace::with_traceparent(request, &span);
            let sent = request.send().instrument(span.clone()).await;
            match &sent {
                Ok(response) => trace::record_status(&span, response.status().as_u16()),
                Err(_) => trace::record_transport_error(&span),
            }
            let (error, retry_after) = match sent {
                Ok(response)
                    if response.status().is_success() || response.status().is_redirection() =>
                {
                    return Ok(response);
                }
                Ok(response) => {
                    let status = response.status();
                    let retry_after = response
                        .headers()
                        .get(reqwest::header::RETRY_AFTER)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.trim().parse::<u64>().ok())
                        .map(Duration::from_secs);
                    let mut body = response.text().await.unwrap_or_default();
                    if body.len() > 512 {
                        let mut end = 512;
                        while !body.is_char_boundary(end) {
                            end -= 1;
                        }
                        body.truncate(end);
                        body.push('…');
                    }
                    (
                        HttpError::Status {
                            method,
                            url,
                            status,
                            body,
                        },
                        retry_after,
                    )
                }
                Err(source) => (
                    HttpError::Transport {
                        method,
                        url,
                        source,
                    },
                    None,
                ),
            };
            on_failure(&error);
            if !error.is_transient() || self.policy.max_attempts.is_some_and(|max| attempt >= max) {
                return Err(error);
            }
            let wait = retry_after
                .map(|d| d.min(self.policy.max_delay))
                .unwrap_or_else(|| self.policy.jittered(attempt));
            if self
                .policy
                .max_elapsed
                .is_some_and(|budget| started.elapsed() + wait > budget)
            {
                return Err(error);
            }
            tracing::debug!(error = %error, attempt, wait_ms = wait.as_millis() as u64, "retrying HTTP request");
            tokio::time::sleep(wait).await;
            attempt += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One set of names: what configs deserialize, what flags parse, what dumps print.
    #[test]
    fn backoff_names_read_back() {
        for kind in [
            BackoffKind::Exponential,
            BackoffKind::Linear,
            BackoffKind::Constant,
        ] {
            assert_eq!(BackoffKind::parse(kind.as_str()), Ok(kind));
            let from_config: BackoffKind =
                serde_json::from_value(kind.as_str().into()).expect("serde name");
            assert_eq!(from_config, kind);
        }
        assert_eq!(
            BackoffKind::parse("fibonacci").unwrap_err().to_string(),
            "`fibonacci` is not a retry backoff: use exponential, linear or constant"
        );
    }

    #[test]
    fn backoff_shapes() {
        let mut p = RetryPolicy {
            jitter: 0.0,
            ..RetryPolicy::default()
        };
        let waits: Vec<u64> = (1..=6).map(|n| p.delay(n).as_millis() as u64).collect();
        assert_eq!(waits, vec![500, 1000, 2000, 4000, 8000, 8000]);
        p.kind = BackoffKind::Linear;
        assert_eq!(p.delay(3), Duration::from_millis(1500));
        p.kind = BackoffKind::Constant;
        assert_eq!(p.delay(9), Duration::from_millis(500));
    }

    #[test]
    fn jitter_stays_within_bounds() {
        let p = RetryPolicy::default();
        for _ in 0..200 {
            let d = p.jittered(2);
            assert!(
                d >= Duration::from_millis(900) && d <= Duration::from_millis(1100),
                "{d:?}"
            );
        }
    }

    #[test]
    fn classifies_statuses() {
        for code in [408, 429, 500, 502, 503, 504] {
            assert!(
                is_retryable_status(StatusCode::from_u16(code).unwrap()),
                "{code}"
            );
        }
        for code in [400, 401, 403, 404, 409, 422] {
            assert!(
                !is_retryable_status(StatusCode::from_u16(code).unwrap()),
                "{code}"
            );
        }
    }
}

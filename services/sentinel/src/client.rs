//! The HyperFleet API, as the sentinel reads it: one page of resources at a time.
//!
//! `GET {base}/api/hyperfleet/v1/{resource_type}?page=N&size=S[&search=TSL]`, with HyperFleet's
//! `User-Agent` and an optional bearer token read from a file. Each page is retried on its own
//! with HyperFleet's schedule (500 ms doubling to 8 s, ±10%, at most 30 s; 5xx, 408, 429 and
//! network errors retried, other 4xx not), so a blip costs one page, not the whole cycle.

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use reqwest::Client;
use serde::Deserialize;
use serde_json::Value as Json;
use steadfast_service_kit::http_client::{HttpClient, HttpError, RetryPolicy};
use tokio::time::Instant;

use crate::config::ApiSettings;

/// Why a page could not be read; `error_type` is the metric label HyperFleet uses.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("cannot read the API token from `{path}`: {reason}")]
    Token { path: PathBuf, reason: String },
    #[error("{0}")]
    Http(#[from] HttpError),
    #[error("GET {url}: the response is not a resource list: {reason}")]
    Decode { url: String, reason: String },
}

impl FetchError {
    pub fn error_type(&self) -> &'static str {
        match self {
            FetchError::Token { .. } => "auth_error",
            FetchError::Http(_) | FetchError::Decode { .. } => "fetch_error",
        }
    }
}

/// One page of a list.
#[derive(Debug, Deserialize)]
pub struct Page {
    #[serde(default)]
    pub total: u64,
    #[serde(default)]
    pub items: Vec<Json>,
}

struct CachedToken {
    value: String,
    read_at: Instant,
}

/// A client for one resource type.
pub struct ApiClient {
    http: HttpClient,
    list_url: String,
    page_size: u32,
    search: Option<String>,
    token_path: Option<PathBuf>,
    token_ttl: Duration,
    token: Mutex<Option<CachedToken>>,
}

impl ApiClient {
    pub fn new(
        settings: &ApiSettings,
        sentinel_name: &str,
        resource_type: &str,
        search: Option<String>,
        policy: RetryPolicy,
    ) -> Result<Self, reqwest::Error> {
        let client = Client::builder()
            .timeout(settings.timeout)
            .connect_timeout(settings.timeout.min(Duration::from_secs(10)))
            .user_agent(format!(
                "hyperfleet-sentinel/{} ({sentinel_name})",
                env!("CARGO_PKG_VERSION")
            ))
            .build()?;
        Ok(Self {
            http: HttpClient::from_client(client, policy),
            list_url: format!(
                "{}/api/hyperfleet/v1/{resource_type}",
                settings.base_url.as_str().trim_end_matches('/')
            ),
            page_size: settings.page_size,
            search,
            token_path: settings.token_path.clone(),
            token_ttl: settings.token_cache_ttl,
            token: Mutex::new(None),
        })
    }

    pub fn list_url(&self) -> &str {
        &self.list_url
    }

    /// The bearer token, re-read from its file once the cache TTL has passed (0: every time).
    fn token(&self) -> Result<Option<String>, FetchError> {
        let Some(path) = &self.token_path else {
            return Ok(None);
        };
        let mut cached = self
            .token
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(token) = cached.as_ref()
            && !self.token_ttl.is_zero()
            && token.read_at.elapsed() < self.token_ttl
        {
            return Ok(Some(token.value.clone()));
        }
        let value = std::fs::read_to_string(path)
            .map_err(|e| FetchError::Token {
                path: path.clone(),
                reason: e.to_string(),
            })?
            .trim()
            .to_owned();
        if value.is_empty() {
            return Err(FetchError::Token {
                path: path.clone(),
                reason: "the file is empty".into(),
            });
        }
        *cached = Some(CachedToken {
            value: value.clone(),
            read_at: Instant::now(),
        });
        Ok(Some(value))
    }

    async fn get(&self, query: &[(&str, String)]) -> Result<Page, FetchError> {
        let token = self.token()?;
        let response = self
            .http
            .send_observed(
                |client| {
                    let mut request = client.get(&self.list_url).query(query);
                    if let Some(token) = &token {
                        request = request.bearer_auth(token);
                    }
                    request
                },
                |error| {
                    if error.is_transient() {
                        tracing::warn!(%error, "HyperFleet API request failed; retrying");
                    }
                },
            )
            .await?;
        let bytes = response.bytes().await.map_err(|e| FetchError::Decode {
            url: self.list_url.clone(),
            reason: e.to_string(),
        })?;
        serde_json::from_slice(&bytes).map_err(|e| FetchError::Decode {
            url: self.list_url.clone(),
            reason: e.to_string(),
        })
    }

    /// HyperFleet's start-up probe: a one-item search that matches nothing.
    pub async fn verify_connectivity(&self) -> Result<(), FetchError> {
        self.get(&[
            ("search", "labels.non_existing_label='value'".to_owned()),
            ("size", "1".to_owned()),
        ])
        .await
        .map(|_| ())
    }

    /// Page `page` (from 1) of the resources the selector matches.
    pub async fn page(&self, page: u32) -> Result<Page, FetchError> {
        let mut query = vec![
            ("page", page.to_string()),
            ("size", self.page_size.to_string()),
        ];
        if let Some(search) = &self.search {
            query.push(("search", search.clone()));
        }
        self.get(&query).await
    }
}

#[cfg(test)]
mod tests {
    use axum::Router;
    use axum::http::HeaderMap;
    use axum::routing::get;
    use steadfast_telemetry::trace;
    use tracing::Instrument;

    use super::*;

    #[tokio::test]
    async fn a_page_request_carries_the_polls_trace() {
        let seen = steadfast_test_support::HeaderLog::traceparent();
        let record = seen.clone();
        let base = steadfast_test_support::spawn_http(Router::new().route(
            "/api/hyperfleet/v1/clusters",
            get(move |headers: HeaderMap| {
                record.record(&headers);
                async { axum::Json(serde_json::json!({"total": 0, "items": []})) }
            }),
        ))
        .await;
        let settings = ApiSettings {
            base_url: base.parse().unwrap(),
            version: "v1".into(),
            timeout: Duration::from_secs(5),
            page_size: 10,
            token_path: None,
            token_cache_ttl: Duration::ZERO,
        };
        let client = ApiClient::new(&settings, "test", "clusters", None, RetryPolicy::none())
            .expect("client");

        let _tracer = trace::testing::local_tracer();
        let poll = tracing::info_span!("sentinel.poll");
        let poll_trace = trace::traceparent(&poll).unwrap();
        client.page(1).instrument(poll).await.unwrap();
        let header = seen.values()[0].clone().expect("a traceparent header");
        assert_eq!(
            header.split('-').nth(1),
            Some(poll_trace.trace_id().as_str()),
            "the HyperFleet API sees the poll's trace: {header}"
        );
    }
}

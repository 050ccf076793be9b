//! Each service's `/readyz`, as the overview shows it.

use futures_util::future::join_all;
use serde::Deserialize;
use steadfast_service_kit::http_client::HttpClient;

use crate::config::ProbeTarget;

/// One check of a service's readiness report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckLine {
    pub name: String,
    pub ok: bool,
    pub detail: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Readiness {
    Ready(Vec<CheckLine>),
    NotReady(Vec<CheckLine>),
    /// No answer, or not a readiness report.
    Unreachable(String),
}

#[derive(Debug, Clone)]
pub struct ServiceState {
    pub name: &'static str,
    pub url: String,
    pub readiness: Readiness,
}

#[derive(Deserialize)]
struct Report {
    #[serde(default)]
    checks: serde_json::Map<String, serde_json::Value>,
}

/// Asks every service at once; one slow service costs the overview at most the timeout.
pub async fn probe_all(http: &HttpClient, targets: &[ProbeTarget]) -> Vec<ServiceState> {
    join_all(targets.iter().map(|target| async move {
        ServiceState {
            name: target.name,
            url: target.url.to_string(),
            readiness: probe(http, target).await,
        }
    }))
    .await
}

async fn probe(http: &HttpClient, target: &ProbeTarget) -> Readiness {
    let url = target.url.join("/readyz").expect("a static path");
    // `/readyz` answers 503 with the same report when not ready: read the body either way.
    let response = match http.client().get(url).send().await {
        Ok(response) => response,
        Err(error) => return Readiness::Unreachable(error.without_url().to_string()),
    };
    let ready = response.status().is_success();
    let status = response.status();
    let report: Report = match response.json().await {
        Ok(report) => report,
        Err(_) => {
            return Readiness::Unreachable(format!("answered {status} without a readiness report"));
        }
    };
    let checks = report
        .checks
        .into_iter()
        .map(|(name, value)| CheckLine {
            ok: value.get("status").and_then(|s| s.as_str()) == Some("ok"),
            detail: value
                .get("detail")
                .and_then(|d| d.as_str())
                .unwrap_or_default()
                .to_owned(),
            name,
        })
        .collect();
    if ready {
        Readiness::Ready(checks)
    } else {
        Readiness::NotReady(checks)
    }
}

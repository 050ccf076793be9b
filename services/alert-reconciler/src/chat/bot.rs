//! Euphrosyne's bot interface (the "Eurydice" Webex bot): `POST {bot}/api/analysis` with
//! `{uuid, actions, analysis}` for analyses and action outcomes alike, and `POST
//! {bot}/api/status` with the recipe Jobs' status. The `uuid` we send is the incident id; the
//! bot returns it in `POST /api/actions`.

use serde_json::{Value, json};
use steadfast_service_kit::http_client::HttpClient;
use url::Url;

use super::SinkError;
use crate::report::Report;

#[derive(Clone)]
pub struct BotSink {
    http: HttpClient,
    base: Url,
}

impl BotSink {
    pub fn new(http: HttpClient, base: Url) -> Self {
        Self { http, base }
    }

    fn url(&self, path: &[&str]) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut segments) = url.path_segments_mut() {
            segments.pop_if_empty().extend(path);
        }
        url
    }

    /// The bot has no message for a closed incident: those are skipped (`Ok(None)`).
    pub async fn deliver(&self, report: &Report) -> Result<Option<String>, SinkError> {
        let body = match report {
            Report::Analysis {
                incident,
                actions,
                euphrosyne_analysis,
                ..
            } => json!({
                "uuid": incident.id,
                "actions": actions.iter().filter(|a| a.approval_id.is_some()).map(|a| a.name.clone()).collect::<Vec<_>>(),
                "analysis": euphrosyne_analysis,
            }),
            Report::Outcome {
                incident,
                action,
                finding,
                ..
            } => json!({
                "uuid": incident.id,
                "actions": [],
                "analysis": format!(
                    "Recipe '{action}' {} in response to incident '{}': {} ",
                    if finding.status == "successful" { "completed successfully".to_owned() } else { format!("ended {}", finding.status) },
                    incident.id,
                    // Without an analysis, the reason it has none.
                    if finding.analysis.is_empty() { finding.detail.as_deref().unwrap_or_default() } else { &finding.analysis }
                ),
            }),
            Report::Closed { .. } => return Ok(None),
        };
        let url = self.url(&["api", "analysis"]);
        self.http
            .send(|client| client.post(url.clone()).json(&body))
            .await?;
        Ok(None)
    }

    /// Pushes the recipe status list, as Euphrosyne did after `POST /api/status`.
    pub async fn post_status(&self, status: &Value) -> Result<(), SinkError> {
        let url = self.url(&["api", "status"]);
        self.http
            .send(|client| client.post(url.clone()).json(status))
            .await?;
        Ok(())
    }
}

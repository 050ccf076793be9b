//! A generic chat webhook: `{"text": <markdown>, "report": <the structured report>}`. The
//! `text` field alone is what Slack-style incoming webhooks (Slack, Mattermost, Rocket.Chat,
//! Google Chat) display; anything else can read `report`.

use serde_json::json;
use steadfast_service_kit::http_client::HttpClient;
use url::Url;

use super::{SinkError, markdown};
use crate::report::Report;

#[derive(Clone)]
pub struct WebhookSink {
    http: HttpClient,
    url: Url,
}

impl WebhookSink {
    pub fn new(http: HttpClient, url: Url) -> Self {
        Self { http, url }
    }

    pub async fn deliver(&self, report: &Report) -> Result<Option<String>, SinkError> {
        let body = json!({"text": markdown(report), "report": report});
        self.http
            .send(|client| client.post(self.url.clone()).json(&body))
            .await?;
        Ok(None)
    }
}

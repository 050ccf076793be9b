//! Where reports go: Webex (with approval buttons), Euphrosyne's bot interface, and a generic
//! chat webhook. Each sink renders a [`Report`] its own way; [`markdown`] is the shared text.
//!
//! Sinks are called by the outbox sender only, never inline with a state change, so a chat
//! outage delays reports but never loses them or blocks an investigation.

pub mod bot;
pub mod webex;
pub mod webhook;

use std::time::Duration;

use steadfast_service_kit::http_client::{BackoffKind, HttpClient, HttpError, RetryPolicy};

use crate::config::SinksConfig;
use crate::report::{Finding, Report};

pub use webex::WebexClient;

pub const WEBEX: &str = "webex";
pub const BOT: &str = "euphrosyne-bot";
pub const WEBHOOK: &str = "chat-webhook";

/// Why a delivery failed.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// The sink's HTTP API failed or refused the report.
    #[error(transparent)]
    Http(#[from] HttpError),
    /// The report is queued for a sink the configuration no longer has.
    #[error("{sink} is no longer configured")]
    NotConfigured { sink: &'static str },
    /// The report is queued for a sink this version does not know.
    #[error("unknown sink `{sink}`")]
    UnknownSink { sink: String },
}

impl SinkError {
    /// Whether a later attempt may succeed (network, 408, 429, 5xx); otherwise (4xx, a sink
    /// that is gone) the report is marked failed.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Http(error) => error.is_transient(),
            Self::NotConfigured { .. } | Self::UnknownSink { .. } => false,
        }
    }
}

/// The configured sinks.
#[derive(Clone, Default)]
pub struct Sinks {
    pub webex: Option<webex::WebexSink>,
    pub bot: Option<bot::BotSink>,
    pub webhook: Option<webhook::WebhookSink>,
}

/// The HTTP client every sink uses: short in-process retries for blips; longer outages are
/// the outbox's job.
pub fn http_client() -> HttpClient {
    HttpClient::new(
        Duration::from_secs(10),
        RetryPolicy {
            kind: BackoffKind::Exponential,
            base_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(2),
            jitter: 0.1,
            max_attempts: Some(3),
            max_elapsed: Some(Duration::from_secs(5)),
        },
    )
    .expect("an HTTP client with rustls builds")
}

impl Sinks {
    pub fn from_config(config: &SinksConfig) -> Self {
        let http = http_client();
        Self {
            webex: config.webex.as_ref().map(|w| {
                webex::WebexSink::new(WebexClient::new(http.clone(), w), w.room_id.clone())
            }),
            bot: config
                .bot_url
                .clone()
                .map(|url| bot::BotSink::new(http.clone(), url)),
            webhook: config
                .chat_webhook_url
                .clone()
                .map(|url| webhook::WebhookSink::new(http.clone(), url)),
        }
    }

    /// The names of the configured sinks (one outbox row each per report).
    pub fn names(&self) -> Vec<&'static str> {
        let mut names = Vec::new();
        if self.webex.is_some() {
            names.push(WEBEX);
        }
        if self.bot.is_some() {
            names.push(BOT);
        }
        if self.webhook.is_some() {
            names.push(WEBHOOK);
        }
        names
    }

    /// Sends `report` to `sink`; returns the remote id (the Webex message id) when there is one.
    /// `thread` is the remote id of the incident's first message in that sink.
    pub async fn deliver(
        &self,
        sink: &str,
        report: &Report,
        thread: Option<&str>,
    ) -> Result<Option<String>, SinkError> {
        match sink {
            WEBEX => match &self.webex {
                Some(webex) => webex.deliver(report, thread).await,
                None => Err(SinkError::NotConfigured {
                    sink: "the Webex sink",
                }),
            },
            BOT => match &self.bot {
                Some(bot) => bot.deliver(report).await,
                None => Err(SinkError::NotConfigured {
                    sink: "the bot sink",
                }),
            },
            WEBHOOK => match &self.webhook {
                Some(webhook) => webhook.deliver(report).await,
                None => Err(SinkError::NotConfigured {
                    sink: "the chat webhook",
                }),
            },
            other => Err(SinkError::UnknownSink {
                sink: other.to_owned(),
            }),
        }
    }
}

/// Cuts `text` to at most `max` bytes at a character boundary, marking the cut.
pub fn truncate(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max.saturating_sub('…'.len_utf8());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

/// Longest analysis shown per recipe.
const MAX_ANALYSIS: usize = 1500;

fn finding_markdown(out: &mut String, finding: &Finding) {
    out.push_str(&format!(
        "**{}** — {}\n",
        finding.recipe,
        finding.status.replace('_', " ")
    ));
    if !finding.analysis.trim().is_empty() {
        out.push_str(&truncate(finding.analysis.trim(), MAX_ANALYSIS));
        out.push('\n');
    }
    if let Some(detail) = &finding.detail {
        out.push_str(&format!("_{}_\n", truncate(detail, 300)));
    }
    for why in &finding.reruns {
        out.push_str(&format!("_Re-run: {}_\n", truncate(why, 300)));
    }
    for link in &finding.links {
        match &link.title {
            Some(title) => out.push_str(&format!("- [{title}]({})\n", link.url)),
            None => out.push_str(&format!("- {}\n", link.url)),
        }
    }
}

/// The report as Markdown (Webex's and Slack's common subset).
pub fn markdown(report: &Report) -> String {
    let incident = report.incident();
    let mut out = String::new();
    match report {
        Report::Analysis {
            findings, actions, ..
        } => {
            out.push_str(&format!("**Incident: {}**", incident.title));
            if let Some(severity) = incident.severity() {
                out.push_str(&format!(" ({severity})"));
            }
            if let Some(url) = &incident.external_url {
                out.push_str(&format!(" — [Alertmanager]({url})"));
            }
            out.push_str(&format!(
                "\nGroup `{}` · incident `{}`\n\n",
                incident.group_key, incident.id
            ));
            if findings.is_empty() {
                out.push_str("No debugging recipe matches this alert.\n\n");
            }
            for finding in findings {
                finding_markdown(&mut out, finding);
                out.push('\n');
            }
            if actions.is_empty() {
                out.push_str("No action suggested.");
            } else {
                let list: Vec<String> = actions
                    .iter()
                    .map(|a| match a.approval_id {
                        Some(_) => format!("`{}`", a.name),
                        None => format!("`{}` (no action recipe of that name)", a.name),
                    })
                    .collect();
                out.push_str(&format!("**Suggested actions:** {}", list.join(", ")));
            }
        }
        Report::Outcome {
            action,
            approved_by,
            forced,
            finding,
            ..
        } => {
            out.push_str(&format!(
                "**Action `{action}`** for {} — approved by {approved_by}{}\n",
                incident.title,
                if *forced {
                    " (forced: not suggested)"
                } else {
                    ""
                }
            ));
            finding_markdown(&mut out, finding);
        }
        Report::Closed { state, reason, .. } => {
            out.push_str(&format!(
                "**Incident: {}** is {state}: {reason}\nincident `{}`",
                incident.title, incident.id
            ));
        }
    }
    truncate(out.trim_end(), webex::MAX_MARKDOWN)
}

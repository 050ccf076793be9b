//! Broker connection settings.

use std::time::Duration;

use lapin::uri::AMQPUri;

use crate::error::MessagingError;

/// The default `AMQP_URL`: the local broker's guest account.
pub const DEFAULT_AMQP_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

/// How to reach the broker and how patiently.
#[derive(Clone)]
pub struct BrokerConfig {
    /// Every node of the cluster; each (re)connect tries them in a random order, as CKI does,
    /// so clients spread over the nodes and survive the loss of any one.
    pub urls: Vec<String>,
    /// Shown in the broker's connection list; also the `app_id` of published messages.
    pub app_id: String,
    /// Bounds one TCP+AMQP handshake, so a black-holed node does not stall the rotation.
    pub connect_timeout: Duration,
    /// Reconnect backoff: starts here, doubles, with ±25% jitter ...
    pub reconnect_min: Duration,
    /// ... and never waits longer than this.
    pub reconnect_max: Duration,
    /// How long `publish` keeps trying (across reconnects) before it gives up with a timeout.
    pub publish_timeout: Duration,
    /// Heartbeat interval asked of the broker when the URL does not set one; it is how a dead
    /// peer that never closed its socket is noticed.
    pub heartbeat: Duration,
}

impl std::fmt::Debug for BrokerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // URLs carry passwords: never print them.
        f.debug_struct("BrokerConfig")
            .field(
                "urls",
                &self.urls.iter().map(|u| redact_url(u)).collect::<Vec<_>>(),
            )
            .field("app_id", &self.app_id)
            .field("publish_timeout", &self.publish_timeout)
            .finish_non_exhaustive()
    }
}

impl BrokerConfig {
    /// Settings for `app_id` with the given URL list: one URL, or several separated by spaces
    /// or commas (every node of a cluster).
    pub fn new(url_list: &str, app_id: impl Into<String>) -> Result<Self, MessagingError> {
        let urls: Vec<String> = url_list
            .split([' ', ','])
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect();
        if urls.is_empty() {
            return Err(MessagingError::InvalidConfig("AMQP_URL is empty".into()));
        }
        for url in &urls {
            url.parse::<AMQPUri>().map_err(|e| {
                MessagingError::InvalidConfig(format!(
                    "AMQP_URL `{}` is not valid: {e}",
                    redact_url(url)
                ))
            })?;
        }
        Ok(Self {
            urls,
            app_id: app_id.into(),
            connect_timeout: Duration::from_secs(5),
            reconnect_min: Duration::from_millis(100),
            reconnect_max: Duration::from_secs(10),
            publish_timeout: Duration::from_secs(10),
            heartbeat: Duration::from_secs(10),
        })
    }

    #[must_use]
    pub fn with_publish_timeout(mut self, timeout: Duration) -> Self {
        self.publish_timeout = timeout;
        self
    }

    /// The parsed URIs, with our heartbeat where the URL sets none.
    pub(crate) fn uris(&self) -> Vec<AMQPUri> {
        self.urls
            .iter()
            .filter_map(|u| u.parse::<AMQPUri>().ok())
            .map(|mut uri| {
                if uri.query.heartbeat.is_none() {
                    uri.query.heartbeat = u16::try_from(self.heartbeat.as_secs()).ok();
                }
                uri
            })
            .collect()
    }
}

/// `amqp://user:secret@host/vh` → `amqp://user:***@host/vh`, for logs and errors.
pub fn redact_url(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_owned();
    };
    let rest = &url[scheme_end + 3..];
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    match authority.rfind('@') {
        Some(at) => {
            let userinfo = &authority[..at];
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{}{user}:***@{}", &url[..scheme_end + 3], &rest[at + 1..])
        }
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_host_lists() {
        let c =
            BrokerConfig::new("amqp://a:5672/%2f, amqp://b:5672/%2f amqp://c/%2f", "svc").unwrap();
        assert_eq!(c.urls.len(), 3);
        assert_eq!(c.uris()[0].query.heartbeat, Some(10));
    }

    #[test]
    fn rejects_empty_and_invalid_urls_without_leaking_secrets() {
        assert!(BrokerConfig::new("  ", "svc").is_err());
        let err = BrokerConfig::new("http://user:hunter2@host/", "svc")
            .unwrap_err()
            .to_string();
        assert!(!err.contains("hunter2"), "{err}");
        assert!(err.contains("user:***@host"), "{err}");
    }

    #[test]
    fn redacts_passwords() {
        assert_eq!(
            redact_url("amqp://guest:guest@127.0.0.1:5672/%2f"),
            "amqp://guest:***@127.0.0.1:5672/%2f"
        );
        assert_eq!(redact_url("amqp://host/%2f"), "amqp://host/%2f");
    }
}

//! The slice of the RabbitMQ management HTTP API that `queues` needs.

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};

/// One queue as the management API reports it (statistics lag by up to 5 s).
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct QueueInfo {
    pub name: String,
    #[serde(default)]
    pub messages: u64,
    #[serde(default)]
    pub messages_ready: u64,
    #[serde(default)]
    pub messages_unacknowledged: u64,
    #[serde(default)]
    pub consumers: u64,
    #[serde(default, rename = "type")]
    pub queue_type: Option<String>,
}

pub struct ManagementApi {
    base: url::Url,
    user: String,
    password: String,
    vhost: String,
    client: reqwest::Client,
}

impl ManagementApi {
    /// From an explicit URL such as `http://user:pass@rabbit:15672` (vhost `/`).
    pub fn new(url: &str) -> anyhow::Result<Self> {
        let base = url::Url::parse(url)
            .with_context(|| format!("RABBITMQ_MANAGEMENT_URL `{url}` is not a URL"))?;
        let user = if base.username().is_empty() {
            "guest".to_owned()
        } else {
            decode(base.username())
        };
        let password = base
            .password()
            .map(decode)
            .unwrap_or_else(|| "guest".to_owned());
        Self::with(base, user, password, "/".to_owned())
    }

    /// Derived from the AMQP URL: same host and credentials, port 15672, same vhost.
    pub fn from_amqp_url(amqp_url: &str) -> anyhow::Result<Self> {
        let first = amqp_url
            .split([' ', ','])
            .find(|s| !s.is_empty())
            .unwrap_or(amqp_url);
        let amqp = url::Url::parse(first).context("AMQP_URL is not a URL")?;
        let host = amqp.host_str().context("AMQP_URL has no host")?;
        let scheme = if amqp.scheme() == "amqps" {
            "https"
        } else {
            "http"
        };
        let base = url::Url::parse(&format!("{scheme}://{host}:15672/"))?;
        let user = if amqp.username().is_empty() {
            "guest".to_owned()
        } else {
            decode(amqp.username())
        };
        let password = amqp
            .password()
            .map(decode)
            .unwrap_or_else(|| "guest".to_owned());
        let vhost = match amqp.path().trim_start_matches('/') {
            "" => "/".to_owned(),
            path => decode(path),
        };
        Self::with(base, user, password, vhost)
    }

    fn with(
        mut base: url::Url,
        user: String,
        password: String,
        vhost: String,
    ) -> anyhow::Result<Self> {
        let _ = base.set_username("");
        let _ = base.set_password(None);
        Ok(Self {
            base,
            user,
            password,
            vhost,
            client: reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(10))
                .build()?,
        })
    }

    pub async fn queues(&self) -> anyhow::Result<Vec<QueueInfo>> {
        let mut url = self.base.clone();
        url.path_segments_mut()
            .map_err(|()| anyhow::anyhow!("bad management URL"))?
            .pop_if_empty()
            .extend(["api", "queues", &self.vhost]);
        url.set_query(Some(
            "columns=name,messages,messages_ready,messages_unacknowledged,consumers,type",
        ));
        let response = self
            .client
            .get(url.clone())
            .basic_auth(&self.user, Some(&self.password))
            .send()
            .await
            .with_context(|| {
                format!(
                    "cannot reach the RabbitMQ management API at {} (enable the rabbitmq_management plugin or set RABBITMQ_MANAGEMENT_URL)",
                    self.base
                )
            })?;
        if !response.status().is_success() {
            bail!(
                "management API answered {} for {}",
                response.status(),
                url.path()
            );
        }
        response
            .json()
            .await
            .context("unexpected management API answer")
    }
}

fn decode(s: &str) -> String {
    url::form_urlencoded::parse(format!("x={s}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| s.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derives_the_management_url_from_amqp() {
        let api =
            ManagementApi::from_amqp_url("amqp://ops:s%40cret@rabbit.internal:5672/%2f").unwrap();
        assert_eq!(api.base.as_str(), "http://rabbit.internal:15672/");
        assert_eq!(api.user, "ops");
        assert_eq!(api.password, "s@cret");
        assert_eq!(api.vhost, "/");
        let api = ManagementApi::from_amqp_url("amqps://rabbit/prod amqps://rabbit2/prod").unwrap();
        assert_eq!(api.base.as_str(), "https://rabbit:15672/");
        assert_eq!(api.vhost, "prod");
        assert_eq!(api.user, "guest");
    }
}

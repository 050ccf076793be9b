//! The slice of the RabbitMQ management HTTP API that operators need and AMQP cannot give:
//! listing queues (AMQP can only ask about a queue it already knows the name of).

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::topology::Namespace;

pub use crate::error::ManagementError;

/// Longest excerpt of an unexpected answer's body kept in an error.
const BODY_EXCERPT: usize = 300;
/// A management API that does not answer within this is treated as unreachable.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// The management plugin's default port, assumed when deriving the URL from the AMQP URL.
const MANAGEMENT_PORT: u16 = 15672;

/// One queue as the management API reports it. Its statistics lag by up to 5 s (the broker's
/// `collect_statistics_interval`), and a queue is listed with zero counts until its first tick.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct QueueInfo {
    pub name: String,
    /// Ready plus unacknowledged.
    #[serde(default)]
    pub messages: u64,
    #[serde(default)]
    pub messages_ready: u64,
    #[serde(default)]
    pub messages_unacknowledged: u64,
    #[serde(default)]
    pub consumers: u64,
    /// `quorum`, `classic` or `stream`.
    #[serde(default, rename = "type")]
    pub queue_type: Option<String>,
}

/// A client of one virtual host's management API. Cheap to clone (the HTTP client is shared).
#[derive(Clone)]
pub struct ManagementApi {
    /// Without credentials, so it can be shown in errors.
    base: url::Url,
    user: String,
    password: String,
    vhost: String,
    client: reqwest::Client,
}

impl std::fmt::Debug for ManagementApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ManagementApi")
            .field("base", &self.base.as_str())
            .field("user", &self.user)
            .field("vhost", &self.vhost)
            .finish_non_exhaustive()
    }
}

impl ManagementApi {
    /// From an explicit URL such as `http://user:pass@rabbit:15672` (vhost `/`; user and
    /// password default to `guest`). A path is kept, for an API behind a reverse proxy.
    pub fn new(url: &str) -> Result<Self, ManagementError> {
        let bad = |reason: &str| ManagementError::BadUrl {
            url: crate::redact_url(url),
            reason: reason.to_owned(),
        };
        let base = url::Url::parse(url).map_err(|e| bad(&e.to_string()))?;
        if !matches!(base.scheme(), "http" | "https") {
            return Err(bad(&format!(
                "the scheme is `{}`, not http or https",
                base.scheme()
            )));
        }
        if base.host_str().is_none_or(str::is_empty) {
            return Err(bad("it has no host"));
        }
        let (user, password) = credentials(&base);
        Self::with(base, user, password, "/".to_owned())
    }

    /// Derived from an AMQP URL (the services' `AMQP_URL`, possibly a list of nodes: the first
    /// is used): the same host and credentials, port 15672, http for amqp and https for amqps,
    /// and the same virtual host.
    pub fn from_amqp_url(amqp_url: &str) -> Result<Self, ManagementError> {
        let first = amqp_url
            .split([' ', ','])
            .find(|s| !s.is_empty())
            .unwrap_or(amqp_url);
        let bad = |reason: &str| ManagementError::BadUrl {
            url: crate::redact_url(first),
            reason: reason.to_owned(),
        };
        let amqp = url::Url::parse(first).map_err(|e| bad(&e.to_string()))?;
        let scheme = match amqp.scheme() {
            "amqp" => "http",
            "amqps" => "https",
            other => return Err(bad(&format!("the scheme is `{other}`, not amqp or amqps"))),
        };
        let host = amqp
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| bad("it has no host"))?;
        // Built anew: a `Url` cannot switch from amqp to http (special and non-special schemes).
        let mut base =
            url::Url::parse(&format!("{scheme}://{host}/")).map_err(|e| bad(&e.to_string()))?;
        let _ = base.set_port(Some(MANAGEMENT_PORT));
        let (user, password) = credentials(&amqp);
        let vhost = match amqp.path().trim_start_matches('/') {
            "" => "/".to_owned(),
            path => percent_decode(path),
        };
        Self::with(base, user, password, vhost)
    }

    fn with(
        mut base: url::Url,
        user: String,
        password: String,
        vhost: String,
    ) -> Result<Self, ManagementError> {
        let _ = base.set_username("");
        let _ = base.set_password(None);
        let client = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .build()
            .map_err(|e| ManagementError::Unreachable {
                url: base.to_string(),
                reason: format!("cannot set up an HTTP client: {}", error_chain(e)),
            })?;
        Ok(Self {
            base,
            user,
            password,
            vhost,
            client,
        })
    }

    /// The API's address, without credentials.
    pub fn url(&self) -> &str {
        self.base.as_str()
    }

    /// The virtual host whose queues are listed.
    pub fn vhost(&self) -> &str {
        &self.vhost
    }

    /// Every queue of the virtual host, sorted by name.
    pub async fn queues(&self) -> Result<Vec<QueueInfo>, ManagementError> {
        let mut url = self.base.clone();
        url.path_segments_mut()
            .map_err(|()| ManagementError::BadUrl {
                url: self.base.to_string(),
                reason: "it cannot have a path".into(),
            })?
            .pop_if_empty()
            .extend(["api", "queues", &self.vhost]);
        url.set_query(Some(
            "columns=name,messages,messages_ready,messages_unacknowledged,consumers,type",
        ));
        let path = url.path().to_owned();
        let response = self
            .client
            .get(url)
            .basic_auth(&self.user, Some(&self.password))
            .send()
            .await
            .map_err(|e| self.unreachable(e))?;
        let status = response.status();
        let body = response.text().await.map_err(|e| self.unreachable(e))?;
        if !status.is_success() {
            return Err(self.refusal(status, path, &body));
        }
        let mut queues: Vec<QueueInfo> =
            serde_json::from_str(&body).map_err(|e| ManagementError::InvalidAnswer {
                path,
                reason: format!("{e}; the answer starts with: {}", excerpt(&body)),
            })?;
        queues.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(queues)
    }

    /// The queues of `namespace` (names starting with `<namespace>.`: work queues, their
    /// retry tiers, delay queues and parking lots), sorted by name.
    pub async fn namespace_queues(
        &self,
        namespace: &Namespace,
    ) -> Result<Vec<QueueInfo>, ManagementError> {
        let prefix = format!("{namespace}.");
        let mut queues = self.queues().await?;
        queues.retain(|q| q.name.starts_with(&prefix));
        Ok(queues)
    }

    fn unreachable(&self, error: reqwest::Error) -> ManagementError {
        let reason = if error.is_timeout() {
            format!("no answer within {REQUEST_TIMEOUT:?}")
        } else {
            error_chain(error)
        };
        ManagementError::Unreachable {
            url: self.base.to_string(),
            reason,
        }
    }

    fn refusal(&self, status: reqwest::StatusCode, path: String, body: &str) -> ManagementError {
        // The API explains itself as {"error": ..., "reason": ...}.
        let explained: Option<(String, String)> = serde_json::from_str::<serde_json::Value>(body)
            .ok()
            .map(|v| {
                let field = |name: &str| v[name].as_str().unwrap_or_default().to_owned();
                (field("error"), field("reason"))
            });
        let (error, reason) = explained.unwrap_or_default();
        match status.as_u16() {
            401 => ManagementError::Unauthorized {
                url: self.base.to_string(),
                user: self.user.clone(),
                // "Login failed"; anything else (e.g. a user without the `management` tag)
                // is passed on as the broker said it.
                reason: if reason.is_empty() || reason == "Login failed" {
                    "wrong user name or password".into()
                } else {
                    reason
                },
            },
            404 if error == "Object Not Found" => ManagementError::VhostNotFound {
                url: self.base.to_string(),
                vhost: self.vhost.clone(),
            },
            _ => ManagementError::UnexpectedStatus {
                status: status.as_u16(),
                path,
                body: excerpt(body),
            },
        }
    }
}

/// User and password of a URL, percent-decoded; `guest` for what is missing, like RabbitMQ's
/// own clients.
fn credentials(url: &url::Url) -> (String, String) {
    let user = match url.username() {
        "" => "guest".to_owned(),
        user => percent_decode(user),
    };
    let password = url
        .password()
        .map(percent_decode)
        .unwrap_or_else(|| "guest".to_owned());
    (user, password)
}

/// `%XX` escapes decoded (a `+` stays a `+`: these are URL parts, not form fields).
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .filter(|_| bytes[i] == b'%')
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match hex {
            Some(byte) => {
                out.push(byte);
                i += 3;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// reqwest's error and its causes on one line: "error sending request" alone does not say
/// whether the connection was refused or the name did not resolve.
fn error_chain(error: reqwest::Error) -> String {
    let error = error.without_url();
    let mut text = error.to_string();
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// The body on one line, cut at a character boundary.
fn excerpt(body: &str) -> String {
    let one_line = body.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.is_empty() {
        return "(empty body)".into();
    }
    match one_line.char_indices().nth(BODY_EXCERPT) {
        Some((cut, _)) => format!("{}…", &one_line[..cut]),
        None => one_line,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derives_the_management_url_from_amqp() {
        let api =
            ManagementApi::from_amqp_url("amqp://ops:s%40cret+1@rabbit.internal:5672/%2f").unwrap();
        assert_eq!(api.url(), "http://rabbit.internal:15672/");
        assert_eq!(api.user, "ops");
        assert_eq!(api.password, "s@cret+1");
        assert_eq!(api.vhost(), "/");
        let api = ManagementApi::from_amqp_url("amqps://rabbit/prod amqps://rabbit2/prod").unwrap();
        assert_eq!(api.url(), "https://rabbit:15672/");
        assert_eq!(api.vhost(), "prod");
        assert_eq!(api.user, "guest");
        assert_eq!(api.password, "guest");
    }

    #[test]
    fn takes_an_explicit_url_with_credentials_and_path() {
        let api = ManagementApi::new("https://ops:pw@proxy.internal/rabbitmq/").unwrap();
        assert_eq!(api.url(), "https://proxy.internal/rabbitmq/");
        assert_eq!((api.user.as_str(), api.password.as_str()), ("ops", "pw"));
        assert_eq!(api.vhost(), "/");
        assert!(
            !format!("{api:?}").contains("pw"),
            "Debug must not show the password"
        );
    }

    #[test]
    fn bad_urls_are_named_with_the_reason() {
        let error = ManagementApi::new("rabbit:15672").unwrap_err();
        assert_eq!(
            error.to_string(),
            "management API URL `rabbit:15672` is not valid: the scheme is `rabbit`, not http or https"
        );
        let error = ManagementApi::new("not a url").unwrap_err();
        assert_eq!(
            error.to_string(),
            "management API URL `not a url` is not valid: relative URL without a base"
        );
        let error = ManagementApi::from_amqp_url("http://ops:secret@rabbit/").unwrap_err();
        assert_eq!(
            error.to_string(),
            "management API URL `http://ops:***@rabbit/` is not valid: the scheme is `http`, not amqp or amqps"
        );
    }

    #[test]
    fn excerpts_are_one_bounded_line() {
        assert_eq!(excerpt("a\n  b"), "a b");
        assert_eq!(excerpt(" \n"), "(empty body)");
        let long = "é".repeat(BODY_EXCERPT + 10);
        assert_eq!(excerpt(&long).chars().count(), BODY_EXCERPT + 1);
    }
}

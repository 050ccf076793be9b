//! Errors of the messaging library, split by what the caller can do about them.

use std::time::Duration;

/// Errors from connecting, declaring and administrative operations.
#[derive(Debug, thiserror::Error)]
pub enum MessagingError {
    #[error("invalid broker configuration: {0}")]
    InvalidConfig(String),
    #[error("invalid name: {0}")]
    InvalidName(String),
    #[error("could not declare `{name}`: {source}")]
    Declare {
        name: String,
        #[source]
        source: lapin::Error,
    },
    #[error("not connected to the broker within {0:?}")]
    NotConnected(Duration),
    #[error("broker operation failed: {0}")]
    Amqp(#[from] lapin::Error),
    #[error("queue `{0}` does not exist")]
    QueueNotFound(String),
    #[error(transparent)]
    Publish(#[from] PublishError),
}

impl MessagingError {
    pub(crate) fn declare(name: &str, source: lapin::Error) -> Self {
        Self::Declare {
            name: name.to_owned(),
            source,
        }
    }
}

/// Why a publish did not end in a broker confirm.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// No queue is bound for this routing key; with `mandatory` the broker returned it.
    #[error(
        "unroutable: exchange `{exchange}` has no queue bound for routing key `{routing_key}` ({reply})"
    )]
    Unroutable {
        exchange: String,
        routing_key: String,
        reply: String,
    },
    /// The broker refused the message (nack), e.g. a full queue with `reject-publish`.
    #[error("broker rejected the message (nack) on exchange `{exchange}`")]
    Nacked { exchange: String },
    /// A channel-level refusal that retrying cannot fix, e.g. the exchange does not exist.
    #[error("broker refused the publish to exchange `{exchange}`: {reason}")]
    Refused { exchange: String, reason: String },
    /// Neither a confirm nor a reconnect arrived within the deadline.
    #[error("no broker confirm within {0:?}")]
    Timeout(Duration),
    #[error("could not encode the event: {0}")]
    Encode(#[from] steadfast_events::EnvelopeError),
    #[error("invalid name: {0}")]
    InvalidName(String),
    #[error("the broker connection was shut down")]
    Closed,
}

impl PublishError {
    /// Whether the same publish may succeed later (the broker is down or slow), as opposed to a
    /// message or topology that will never be accepted.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Timeout(_) | Self::Nacked { .. } | Self::Closed)
    }
}

/// Why a call to the RabbitMQ management HTTP API failed ([`crate::admin::management`]).
#[derive(Debug, thiserror::Error)]
pub enum ManagementError {
    #[error("management API URL `{url}` is not valid: {reason}")]
    BadUrl { url: String, reason: String },
    #[error(
        "cannot reach the RabbitMQ management API at {url}: {reason} (is the rabbitmq_management plugin enabled and the URL right?)"
    )]
    Unreachable { url: String, reason: String },
    #[error(
        "the RabbitMQ management API at {url} refused user `{user}` (401 Unauthorized): {reason}"
    )]
    Unauthorized {
        url: String,
        user: String,
        reason: String,
    },
    #[error("virtual host `{vhost}` does not exist on the RabbitMQ management API at {url}")]
    VhostNotFound { url: String, vhost: String },
    #[error("the RabbitMQ management API answered HTTP {status} for {path}: {body}")]
    UnexpectedStatus {
        status: u16,
        path: String,
        body: String,
    },
    #[error(
        "the RabbitMQ management API sent an answer for {path} that is not a queue list: {reason}"
    )]
    InvalidAnswer { path: String, reason: String },
}

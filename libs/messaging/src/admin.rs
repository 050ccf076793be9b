//! Operator operations over AMQP: queue depth, reading the parking lot, replaying it.
//!
//! Reading the parking lot uses `basic.get` without acknowledging: every message read is held
//! by our channel until it closes, which returns it to the queue. So `parked` changes nothing,
//! and `replay` acknowledges a parked message only after its copy back on the work queue was
//! confirmed — a crash halfway leaves a duplicate, never a loss.

use std::time::Duration;

use chrono::{DateTime, Utc};
use lapin::options::{BasicAckOptions, BasicGetOptions, QueueDeclareOptions, QueueDeleteOptions};
use lapin::protocol::{AMQPErrorKind, AMQPSoftError};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, ErrorKind};
use serde::Serialize;
use tokio::time::Instant;

use crate::broker::Broker;
use crate::error::MessagingError;
use crate::headers;
use crate::publisher::Publisher;
use crate::topology::{PARKED_SUFFIX, parked_queue_name, short};

/// Depth and consumers of one queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct QueueState {
    pub messages: u32,
    pub consumers: u32,
}

/// A parked message as an operator sees it.
#[derive(Debug, Clone, Serialize)]
pub struct ParkedMessage {
    pub id: Option<String>,
    #[serde(rename = "type")]
    pub event_type: Option<String>,
    pub error: Option<String>,
    pub reason: Option<String>,
    pub failed_at: Option<String>,
    pub retry_count: u32,
    pub original_exchange: Option<String>,
    pub original_routing_key: Option<String>,
    pub bytes: usize,
    /// The body, as text (CloudEvents JSON, or whatever undecodable bytes were parked).
    pub body: String,
}

/// Which parked messages to replay.
#[derive(Debug, Clone, Default)]
pub struct ReplayFilter {
    /// Only messages whose CloudEvent type (AMQP `type` property) equals this.
    pub event_type: Option<String>,
    /// Only messages parked at least this long ago.
    pub older_than: Option<Duration>,
    /// At most this many.
    pub limit: Option<usize>,
}

/// What `replay` did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ReplayReport {
    pub moved: usize,
    pub skipped: usize,
}

/// The work queue a parking lot belongs to: accepts `Q` or `Q.parked`.
pub fn work_queue_of(name: &str) -> &str {
    name.strip_suffix(PARKED_SUFFIX).unwrap_or(name)
}

async fn channel(broker: &Broker) -> Result<Channel, MessagingError> {
    let timeout = broker.config().connect_timeout;
    let (_, conn) = broker
        .connection_after(0, Instant::now() + timeout)
        .await
        .ok_or(MessagingError::NotConnected(timeout))?;
    Ok(conn.create_channel().await?)
}

/// Depth and consumer count of `queue`, or `None` if it does not exist (passive declare).
pub async fn queue_state(
    broker: &Broker,
    queue: &str,
) -> Result<Option<QueueState>, MessagingError> {
    let channel = channel(broker).await?;
    let result = channel
        .queue_declare(
            short(queue)?,
            QueueDeclareOptions {
                passive: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await;
    match result {
        Ok(q) => {
            let _ = channel.close(200, "done".into()).await;
            Ok(Some(QueueState {
                messages: q.message_count(),
                consumers: q.consumer_count(),
            }))
        }
        Err(error) if is_not_found(&error) => Ok(None),
        Err(error) => Err(error.into()),
    }
}

/// Reads up to `limit` parked messages of work queue `queue` without removing them.
pub async fn parked(
    broker: &Broker,
    queue: &str,
    limit: usize,
) -> Result<Vec<ParkedMessage>, MessagingError> {
    let parked = parked_queue_name(work_queue_of(queue));
    let depth = queue_state(broker, &parked)
        .await?
        .ok_or_else(|| MessagingError::QueueNotFound(parked.clone()))?
        .messages as usize;
    let channel = channel(broker).await?;
    let mut out = Vec::new();
    for _ in 0..depth.min(limit) {
        let Some(message) = channel
            .basic_get(short(&parked)?, BasicGetOptions { no_ack: false })
            .await?
        else {
            break;
        };
        out.push(describe(
            &message.delivery.properties,
            &message.delivery.data,
        ));
    }
    // Closing the channel returns every message we read to the parking lot.
    let _ = channel.close(200, "read only".into()).await;
    Ok(out)
}

/// Moves parked messages of work queue `queue` that match `filter` back to it, with the retry
/// counter and error headers reset. Each copy is confirmed before its original is removed.
pub async fn replay(
    broker: &Broker,
    queue: &str,
    filter: &ReplayFilter,
) -> Result<ReplayReport, MessagingError> {
    let work = work_queue_of(queue).to_owned();
    let parked = parked_queue_name(&work);
    let depth = queue_state(broker, &parked)
        .await?
        .ok_or_else(|| MessagingError::QueueNotFound(parked.clone()))?
        .messages as usize;
    if queue_state(broker, &work).await?.is_none() {
        return Err(MessagingError::QueueNotFound(work));
    }
    let channel = channel(broker).await?;
    let publisher = Publisher::new(broker.clone());
    let mut report = ReplayReport::default();
    for _ in 0..depth {
        if filter.limit.is_some_and(|limit| report.moved >= limit) {
            break;
        }
        let Some(message) = channel
            .basic_get(short(&parked)?, BasicGetOptions { no_ack: false })
            .await?
        else {
            break;
        };
        let delivery = &message.delivery;
        if !matches(filter, &delivery.properties) {
            // Held unacked until the channel closes, so the loop does not see it again.
            report.skipped += 1;
            continue;
        }
        let props = headers::with_headers(&delivery.properties, headers::reset_for_replay);
        publisher
            .publish_raw("", &work, &delivery.data, props)
            .await?;
        delivery.ack(BasicAckOptions::default()).await?;
        report.moved += 1;
    }
    let _ = channel.close(200, "replay done".into()).await;
    Ok(report)
}

/// A message taken off a queue with `basic.get`, with its AMQP metadata readable without lapin.
#[derive(Debug, Clone)]
pub struct RawMessage {
    pub exchange: String,
    pub routing_key: String,
    pub redelivered: bool,
    pub body: Vec<u8>,
    properties: BasicProperties,
}

impl RawMessage {
    pub fn header(&self, name: &str) -> Option<String> {
        headers::header_str(&self.properties, name)
    }
    pub fn message_id(&self) -> Option<String> {
        self.properties.message_id().as_ref().map(|v| v.to_string())
    }
    /// The AMQP `type` property.
    pub fn kind(&self) -> Option<String> {
        self.properties.kind().as_ref().map(|v| v.to_string())
    }
    pub fn app_id(&self) -> Option<String> {
        self.properties.app_id().as_ref().map(|v| v.to_string())
    }
    pub fn content_type(&self) -> Option<String> {
        self.properties
            .content_type()
            .as_ref()
            .map(|v| v.to_string())
    }
    pub fn timestamp(&self) -> Option<u64> {
        *self.properties.timestamp()
    }
    pub fn delivery_mode(&self) -> Option<u8> {
        *self.properties.delivery_mode()
    }
    pub fn retry_count(&self) -> u32 {
        headers::retry_count(&self.properties)
    }
}

/// Takes (and acknowledges) the next message of `queue`, if there is one.
pub async fn take(broker: &Broker, queue: &str) -> Result<Option<RawMessage>, MessagingError> {
    let channel = channel(broker).await?;
    let got = channel
        .basic_get(short(queue)?, BasicGetOptions { no_ack: true })
        .await;
    let _ = channel.close(200, "done".into()).await;
    let got = match got {
        Ok(got) => got,
        Err(error) if is_not_found(&error) => {
            return Err(MessagingError::QueueNotFound(queue.into()));
        }
        Err(error) => return Err(error.into()),
    };
    Ok(got.map(|m| RawMessage {
        exchange: m.delivery.exchange.to_string(),
        routing_key: m.delivery.routing_key.to_string(),
        redelivered: m.delivery.redelivered,
        body: m.delivery.data.clone(),
        properties: m.delivery.properties.clone(),
    }))
}

/// Declares a plain durable quorum queue bound to `bindings` (e.g. an operator's tap on an
/// exchange, or a test's probe).
pub async fn declare_bound_queue(
    broker: &Broker,
    queue: &str,
    bindings: &[(String, String)],
) -> Result<(), MessagingError> {
    let channel = channel(broker).await?;
    for (exchange, _) in bindings {
        crate::topology::ExchangeSpec::topic(exchange.as_str())
            .declare(&channel)
            .await?;
    }
    channel
        .queue_declare(
            short(queue)?,
            QueueDeclareOptions::durable(),
            crate::topology::main_queue_arguments(),
        )
        .await
        .map_err(|e| MessagingError::declare(queue, e))?;
    for (exchange, key) in bindings {
        channel
            .queue_bind(
                short(queue)?,
                short(exchange)?,
                short(key)?,
                Default::default(),
                FieldTable::default(),
            )
            .await?;
    }
    let _ = channel.close(200, "declared".into()).await;
    Ok(())
}

/// Deletes queues (missing ones are fine). For tests and decommissioning.
pub async fn delete_queues(broker: &Broker, names: &[String]) -> Result<(), MessagingError> {
    let mut channel = channel(broker).await?;
    for name in names {
        if let Err(error) = channel
            .queue_delete(short(name)?, QueueDeleteOptions::default())
            .await
        {
            if !is_not_found(&error) {
                return Err(error.into());
            }
            channel = self::channel(broker).await?;
        }
    }
    let _ = channel.close(200, "deleted".into()).await;
    Ok(())
}

/// Deletes exchanges (missing ones are fine).
pub async fn delete_exchanges(broker: &Broker, names: &[String]) -> Result<(), MessagingError> {
    let channel = channel(broker).await?;
    for name in names {
        channel
            .exchange_delete(short(name)?, Default::default())
            .await?;
    }
    let _ = channel.close(200, "deleted".into()).await;
    Ok(())
}

fn matches(filter: &ReplayFilter, props: &BasicProperties) -> bool {
    if let Some(wanted) = &filter.event_type
        && props.kind().as_ref().map(|k| k.as_str()) != Some(wanted.as_str())
    {
        return false;
    }
    if let Some(age) = filter.older_than {
        let failed_at = headers::header_str(props, headers::FAILED_AT)
            .and_then(|t| DateTime::parse_from_rfc3339(&t).ok())
            .map(|t| t.with_timezone(&Utc));
        let old_enough = failed_at.is_some_and(|t| {
            Utc::now()
                .signed_duration_since(t)
                .to_std()
                .unwrap_or_default()
                >= age
        });
        if !old_enough {
            return false;
        }
    }
    true
}

fn describe(props: &BasicProperties, body: &[u8]) -> ParkedMessage {
    ParkedMessage {
        id: props.message_id().as_ref().map(|m| m.to_string()),
        event_type: props.kind().as_ref().map(|k| k.to_string()),
        error: headers::header_str(props, headers::ERROR),
        reason: headers::header_str(props, headers::PARKED_REASON),
        failed_at: headers::header_str(props, headers::FAILED_AT),
        retry_count: headers::retry_count(props),
        original_exchange: headers::header_str(props, headers::ORIGINAL_EXCHANGE),
        original_routing_key: headers::header_str(props, headers::ORIGINAL_ROUTING_KEY),
        bytes: body.len(),
        body: String::from_utf8_lossy(body).into_owned(),
    }
}

fn is_not_found(error: &lapin::Error) -> bool {
    matches!(error.kind(), ErrorKind::ProtocolError(e) if matches!(e.kind(), AMQPErrorKind::Soft(AMQPSoftError::NOTFOUND)))
}

//! Operator operations over AMQP: queue depth, reading the parking lot, replaying it,
//! discarding from it; and, in [`management`], listing queues through the management API.
//!
//! Reading the parking lot uses `basic.get` without acknowledging: every message read is held
//! by our channel until it closes, which returns it to the queue. So `parked` changes nothing,
//! and `replay` acknowledges a parked message only after its copy back on the work queue was
//! confirmed — a crash halfway leaves a duplicate, never a loss. `replay` and `discard` leave
//! the messages they skip in the parking lot, in their order.
//!
//! While one caller reads the parking lot, the messages it holds are invisible to another: a
//! `replay` that runs during someone else's `parked` does not see them (its report says how many
//! it moved; run it again).

pub mod management;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use chrono::{DateTime, Utc};
use lapin::message::Delivery;
use lapin::options::{BasicAckOptions, BasicGetOptions, QueueDeclareOptions, QueueDeleteOptions};
use lapin::protocol::{AMQPErrorKind, AMQPSoftError};
use lapin::types::{AMQPValue, FieldTable};
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
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ParkedMessage {
    /// The AMQP `message_id` property: the CloudEvent id, what [`ReplayFilter::ids`] selects.
    pub id: Option<String>,
    /// The AMQP `type` property: the CloudEvent type.
    #[serde(rename = "type")]
    pub event_type: Option<String>,
    pub error: Option<String>,
    /// `permanent`, `exhausted` (retries used up) or `undecodable`.
    pub reason: Option<String>,
    /// The `steadfast-failed-at` header as written (RFC 3339, UTC, milliseconds).
    pub failed_at: Option<String>,
    /// `failed_at` parsed: when the message was parked. What [`ReplayFilter::older_than`]
    /// compares with; `None` if the header is missing or unreadable.
    pub parked_at: Option<DateTime<Utc>>,
    pub retry_count: u32,
    pub original_exchange: Option<String>,
    pub original_routing_key: Option<String>,
    /// The routing key of the delivery from the parking lot: the `.parked` queue's name, as
    /// messages are parked through the default exchange. The key the event was first
    /// published with is `original_routing_key`.
    pub routing_key: String,
    /// The AMQP `timestamp` property (whole seconds): the CloudEvent `time` of an event
    /// Steadfast published.
    pub timestamp: Option<DateTime<Utc>>,
    /// The AMQP `app_id` property: the service that first published the event.
    pub app_id: Option<String>,
    pub content_type: Option<String>,
    /// Every AMQP header as text: strings as they are, numbers and booleans printed,
    /// timestamps in RFC 3339, arrays and tables as JSON. Includes the broker's own, e.g.
    /// `x-death` (a message that went through a retry tier) and `x-delivery-count`.
    pub headers: BTreeMap<String, String>,
    pub bytes: usize,
    /// The body, as text (CloudEvents JSON, or whatever undecodable bytes were parked).
    pub body: String,
}

/// Which parked messages to replay or discard. Every condition set must hold; the default
/// selects every message.
#[derive(Debug, Clone, Default)]
pub struct ReplayFilter {
    /// Only messages whose CloudEvent type (AMQP `type` property) equals this.
    pub event_type: Option<String>,
    /// Only messages parked at least this long ago.
    pub older_than: Option<Duration>,
    /// Only messages whose id (AMQP `message_id` property, the CloudEvent id) is one of these;
    /// messages without an id never match. An empty set selects nothing.
    pub ids: Option<BTreeSet<String>>,
    /// At most this many.
    pub limit: Option<usize>,
}

impl ReplayFilter {
    /// Whether `message` passes the conditions other than `limit`: what a preview shows
    /// before calling [`replay`] or [`discard`].
    pub fn matches(&self, message: &ParkedMessage) -> bool {
        if let Some(wanted) = &self.event_type
            && message.event_type.as_ref() != Some(wanted)
        {
            return false;
        }
        if let Some(ids) = &self.ids
            && !message.id.as_ref().is_some_and(|id| ids.contains(id))
        {
            return false;
        }
        if let Some(age) = self.older_than {
            let old_enough = message.parked_at.is_some_and(|t| {
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
}

/// What `replay` did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ReplayReport {
    pub moved: usize,
    /// Messages that did not match, or matched beyond the limit: still parked.
    pub skipped: usize,
}

/// What `discard` did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct DiscardReport {
    pub removed: usize,
    /// Messages that did not match, or matched beyond the limit: still parked.
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

/// Reads up to `limit` parked messages of work queue `queue` (or `queue` = its `.parked`),
/// in queue order, without removing them.
///
/// It reads the whole parking lot even for a small `limit`: the broker queues the messages a
/// channel returns behind the others it had returned before, so reading only the first few
/// would move them behind the rest.
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
    for _ in 0..depth {
        let Some(message) = channel
            .basic_get(short(&parked)?, BasicGetOptions { no_ack: false })
            .await?
        else {
            break;
        };
        if out.len() < limit {
            out.push(describe(&message.delivery));
        }
    }
    // Closing the channel returns every message we read to the parking lot.
    let _ = channel.close(200, "read only".into()).await;
    await_returned(broker, &parked, depth).await;
    Ok(out)
}

/// How long `parked`, `replay` and `discard` wait for the messages they held to be back.
const RETURN_WAIT: Duration = Duration::from_secs(2);

/// Waits (briefly) until `queue` has `ready` messages ready again: what it had before we read
/// it, less what we removed. The broker returns the messages a closed channel held
/// asynchronously, after `close-ok`: without this, the next call (a listing after a replay, a
/// replay right after a listing) would miss them. Gives up quietly after [`RETURN_WAIT`], e.g.
/// when another reader holds some of them meanwhile.
async fn await_returned(broker: &Broker, queue: &str, ready: usize) {
    let deadline = Instant::now() + RETURN_WAIT;
    while ready > 0 && Instant::now() < deadline {
        match queue_state(broker, queue).await {
            Ok(Some(state)) if state.messages as usize >= ready => return,
            Ok(Some(_)) => tokio::time::sleep(Duration::from_millis(10)).await,
            _ => return,
        }
    }
}

/// Moves parked messages of work queue `queue` (or `queue` = its `.parked`) that match
/// `filter` back to it, with the retry counter and error headers reset. Each copy is
/// confirmed before its original is removed.
pub async fn replay(
    broker: &Broker,
    queue: &str,
    filter: &ReplayFilter,
) -> Result<ReplayReport, MessagingError> {
    let work = work_queue_of(queue);
    if queue_state(broker, work).await?.is_none() {
        return Err(MessagingError::QueueNotFound(work.to_owned()));
    }
    let (moved, skipped) = sweep(broker, work, filter, Some(work)).await?;
    Ok(ReplayReport { moved, skipped })
}

/// Removes the parked messages of work queue `queue` (or `queue` = its `.parked`) that match
/// `filter`, for good. Each removal is logged at WARN with the message's id and type.
pub async fn discard(
    broker: &Broker,
    queue: &str,
    filter: &ReplayFilter,
) -> Result<DiscardReport, MessagingError> {
    let (removed, skipped) = sweep(broker, work_queue_of(queue), filter, None).await?;
    Ok(DiscardReport { removed, skipped })
}

/// Takes every message of `work`'s parking lot once; those matching `filter` (up to its
/// limit) are republished to `replay_to` and acknowledged, or with `None` just acknowledged.
/// The others are returned, in their order, when the channel closes. Returns (taken, skipped).
async fn sweep(
    broker: &Broker,
    work: &str,
    filter: &ReplayFilter,
    replay_to: Option<&str>,
) -> Result<(usize, usize), MessagingError> {
    let parked = parked_queue_name(work);
    let depth = queue_state(broker, &parked)
        .await?
        .ok_or_else(|| MessagingError::QueueNotFound(parked.clone()))?
        .messages as usize;
    let channel = channel(broker).await?;
    let replay_to = replay_to.map(|work| (work, Publisher::new(broker.clone())));
    let (mut taken, mut skipped) = (0, 0);
    for _ in 0..depth {
        let Some(message) = channel
            .basic_get(short(&parked)?, BasicGetOptions { no_ack: false })
            .await?
        else {
            break;
        };
        let delivery = &message.delivery;
        let described = describe(delivery);
        // Past the limit the loop goes on reading, so that every message kept is returned by
        // the same close, in order (see `parked`).
        if filter.limit.is_some_and(|limit| taken >= limit) || !filter.matches(&described) {
            // Held unacked until the channel closes, so the loop does not see it again.
            skipped += 1;
            continue;
        }
        match &replay_to {
            Some((work, publisher)) => {
                let props = headers::with_headers(&delivery.properties, headers::reset_for_replay);
                publisher
                    .publish_raw("", work, &delivery.data, props)
                    .await?;
            }
            None => tracing::warn!(
                queue = %parked,
                id = %described.id.as_deref().unwrap_or("-"),
                event_type = %described.event_type.as_deref().unwrap_or("-"),
                reason = %described.reason.as_deref().unwrap_or("-"),
                "discarded a parked message"
            ),
        }
        delivery.ack(BasicAckOptions::default()).await?;
        taken += 1;
    }
    let _ = channel.close(200, "done".into()).await;
    await_returned(broker, &parked, depth - taken).await;
    Ok((taken, skipped))
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

fn describe(delivery: &Delivery) -> ParkedMessage {
    let props = &delivery.properties;
    let text = |v: &Option<lapin::types::ShortString>| v.as_ref().map(|v| v.to_string());
    let failed_at = headers::header_str(props, headers::FAILED_AT);
    ParkedMessage {
        id: text(props.message_id()),
        event_type: text(props.kind()),
        error: headers::header_str(props, headers::ERROR),
        reason: headers::header_str(props, headers::PARKED_REASON),
        parked_at: failed_at
            .as_deref()
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.with_timezone(&Utc)),
        failed_at,
        retry_count: headers::retry_count(props),
        original_exchange: headers::header_str(props, headers::ORIGINAL_EXCHANGE),
        original_routing_key: headers::header_str(props, headers::ORIGINAL_ROUTING_KEY),
        routing_key: delivery.routing_key.to_string(),
        timestamp: props.timestamp().and_then(from_epoch_seconds),
        app_id: text(props.app_id()),
        content_type: text(props.content_type()),
        headers: props
            .headers()
            .as_ref()
            .map(|h| {
                h.inner()
                    .iter()
                    .map(|(name, value)| (name.to_string(), header_text(value)))
                    .collect()
            })
            .unwrap_or_default(),
        bytes: delivery.data.len(),
        body: String::from_utf8_lossy(&delivery.data).into_owned(),
    }
}

fn from_epoch_seconds(seconds: u64) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(i64::try_from(seconds).ok()?, 0)
}

/// A header value as an operator reads it: strings bare, everything else as JSON.
fn header_text(value: &AMQPValue) -> String {
    match header_json(value) {
        serde_json::Value::String(s) => s,
        other => other.to_string(),
    }
}

fn header_json(value: &AMQPValue) -> serde_json::Value {
    use serde_json::Value;
    match value {
        AMQPValue::Boolean(b) => Value::from(*b),
        AMQPValue::ShortShortInt(n) => Value::from(*n),
        AMQPValue::ShortShortUInt(n) => Value::from(*n),
        AMQPValue::ShortInt(n) => Value::from(*n),
        AMQPValue::ShortUInt(n) => Value::from(*n),
        AMQPValue::LongInt(n) => Value::from(*n),
        AMQPValue::LongUInt(n) => Value::from(*n),
        AMQPValue::LongLongInt(n) => Value::from(*n),
        AMQPValue::Float(n) => Value::from(*n),
        AMQPValue::Double(n) => Value::from(*n),
        AMQPValue::DecimalValue(d) => {
            Value::from(f64::from(d.value) / 10f64.powi(i32::from(d.scale)))
        }
        AMQPValue::ShortString(s) => Value::from(s.as_str()),
        AMQPValue::LongString(s) => Value::from(String::from_utf8_lossy(s.as_bytes())),
        AMQPValue::ByteArray(b) => Value::from(String::from_utf8_lossy(b.as_slice())),
        AMQPValue::Timestamp(t) => match from_epoch_seconds(*t) {
            Some(t) => Value::from(t.to_rfc3339()),
            None => Value::from(*t),
        },
        AMQPValue::FieldArray(items) => items.as_slice().iter().map(header_json).collect(),
        AMQPValue::FieldTable(table) => Value::Object(
            table
                .inner()
                .iter()
                .map(|(k, v)| (k.to_string(), header_json(v)))
                .collect(),
        ),
        AMQPValue::Void => Value::Null,
    }
}

fn is_not_found(error: &lapin::Error) -> bool {
    matches!(error.kind(), ErrorKind::ProtocolError(e) if matches!(e.kind(), AMQPErrorKind::Soft(AMQPSoftError::NOTFOUND)))
}

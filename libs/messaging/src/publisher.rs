//! Confirmed publishing that survives reconnects.
//!
//! Every publish is `mandatory` and waits for the broker's confirm, so `Ok` means the broker
//! has taken responsibility for the message (for a quorum queue: a majority wrote it). A
//! message the broker returns as unroutable is an error, not a silent drop. If the connection
//! dies before the confirm, the publish is repeated on the next connection, until the
//! publish deadline; a repeat can duplicate the message, which consumers tolerate because
//! delivery is at-least-once everywhere.

use std::sync::Arc;
use std::time::Duration;

use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::protocol::{AMQPErrorKind, AMQPSoftError};
use lapin::{BasicProperties, Channel, Confirmation, ErrorKind};
use serde::Serialize;
use steadfast_events::{AmqpMetadata, Envelope};
use steadfast_telemetry::trace;
use tokio::sync::Mutex;
use tokio::time::Instant;
use tracing::{Instrument, Span};

use crate::broker::{Broker, lock};
use crate::error::PublishError;
use crate::headers;
use crate::topology::{self, short};

/// A confirmed publisher on its own channel; clones share the channel.
#[derive(Clone)]
pub struct Publisher {
    broker: Broker,
    channel: Arc<std::sync::Mutex<Option<(u64, Channel)>>>,
    opening: Arc<Mutex<()>>,
}

impl Publisher {
    pub fn new(broker: Broker) -> Self {
        Self {
            broker,
            channel: Arc::new(std::sync::Mutex::new(None)),
            opening: Arc::new(Mutex::new(())),
        }
    }

    pub fn broker(&self) -> &Broker {
        &self.broker
    }

    /// Publishes `event` to `exchange` with `routing_key` and waits for the confirm.
    /// `message_type` becomes the `message-type` header.
    pub async fn publish<T: Serialize>(
        &self,
        exchange: &str,
        routing_key: &str,
        event: &Envelope<T>,
        message_type: Option<&str>,
    ) -> Result<(), PublishError> {
        let destination = if exchange.is_empty() {
            routing_key
        } else {
            exchange
        };
        let span = producer_span(event, destination, exchange, routing_key);
        let (body, meta) = self.encode(event, message_type, &span)?;
        self.publish_raw(
            exchange,
            routing_key,
            &body,
            headers::properties_from(&meta),
        )
        .instrument(span)
        .await
    }

    /// The body and AMQP metadata of `event`; when `span` is recorded (see [`producer_span`])
    /// and the event has no `traceparent` yet, the encoded event carries the span's, so its
    /// consumer continues the trace. An event that has one is encoded as it is.
    fn encode<T: Serialize>(
        &self,
        event: &Envelope<T>,
        message_type: Option<&str>,
        span: &Span,
    ) -> Result<(Vec<u8>, AmqpMetadata), PublishError> {
        let app_id = &self.broker.config().app_id;
        if let Some(traceparent) = trace::traceparent(span) {
            let stamped = event.by_ref().with_traceparent(&traceparent);
            return Ok((
                stamped.to_json()?,
                stamped.amqp_metadata(app_id, message_type),
            ));
        }
        Ok((event.to_json()?, event.amqp_metadata(app_id, message_type)))
    }

    /// Publishes `event` so that it reaches queue `target` no earlier than `delay` from now.
    ///
    /// The message waits in `target.delayed.<delay>`, a TTL queue that dead-letters into
    /// `target` (declared on every call, so a deleted one comes back; it never expires, see
    /// [`topology`]).
    pub async fn publish_delayed<T: Serialize>(
        &self,
        target: &str,
        event: &Envelope<T>,
        delay: Duration,
        message_type: Option<&str>,
    ) -> Result<(), PublishError> {
        if delay.is_zero() {
            return Err(PublishError::InvalidName(
                "a delay must be greater than zero".into(),
            ));
        }
        let queue = topology::delay_queue_name(target, delay);
        let span = producer_span(event, target, "", &queue);
        if !span.is_none() {
            span.record("messaging.rabbitmq.delay_ms", delay.as_millis() as u64);
        }
        let (body, meta) = self.encode(event, message_type, &span)?;
        self.publish_delayed_encoded(target, &queue, delay, &body, &meta)
            .instrument(span)
            .await
    }

    async fn publish_delayed_encoded(
        &self,
        target: &str,
        queue: &str,
        delay: Duration,
        body: &[u8],
        meta: &AmqpMetadata,
    ) -> Result<(), PublishError> {
        let deadline = Instant::now() + self.broker.config().publish_timeout;
        // Declare on the publishing channel so a missing connection is handled by one loop.
        loop {
            let (_, channel) = self.channel(deadline).await?;
            let declared = tokio::time::timeout_at(
                deadline,
                topology::declare_delay_queue(&channel, target, delay),
            )
            .await
            .map_err(|_| PublishError::Timeout(self.broker.config().publish_timeout))?;
            match declared {
                Ok(_) => break,
                Err(crate::error::MessagingError::Declare { source, .. }) => {
                    self.forget(&channel);
                    if let Some(refusal) = refusal(&source) {
                        return Err(PublishError::Refused {
                            exchange: String::new(),
                            reason: format!("declaring `{queue}`: {refusal}"),
                        });
                    }
                }
                Err(other) => return Err(PublishError::InvalidName(other.to_string())),
            }
        }
        let props = headers::properties_from(meta);
        self.publish_until("", queue, body, props, deadline).await?;
        self.broker
            .metrics()
            .delayed
            .with_label_values(&[target])
            .inc();
        Ok(())
    }

    /// Publishes pre-encoded bytes with explicit properties (used for retries, parking and
    /// replay, which must keep the original properties).
    pub async fn publish_raw(
        &self,
        exchange: &str,
        routing_key: &str,
        body: &[u8],
        properties: BasicProperties,
    ) -> Result<(), PublishError> {
        let deadline = Instant::now() + self.broker.config().publish_timeout;
        self.publish_until(exchange, routing_key, body, properties, deadline)
            .await
    }

    async fn publish_until(
        &self,
        exchange: &str,
        routing_key: &str,
        body: &[u8],
        properties: BasicProperties,
        deadline: Instant,
    ) -> Result<(), PublishError> {
        let metrics = self.broker.metrics();
        let result = self
            .try_publish_until(exchange, routing_key, body, properties, deadline)
            .await;
        match &result {
            Ok(()) => metrics.published.with_label_values(&[exchange]).inc(),
            Err(error) => metrics
                .publish_failures
                .with_label_values(&[failure_label(error)])
                .inc(),
        }
        result
    }

    async fn try_publish_until(
        &self,
        exchange: &str,
        routing_key: &str,
        body: &[u8],
        properties: BasicProperties,
        deadline: Instant,
    ) -> Result<(), PublishError> {
        let exchange_name =
            short(exchange).map_err(|e| PublishError::InvalidName(e.to_string()))?;
        let key = short(routing_key).map_err(|e| PublishError::InvalidName(e.to_string()))?;
        let timeout = self.broker.config().publish_timeout;
        loop {
            let (_, channel) = self.channel(deadline).await?;
            let started = Instant::now();
            // Both waits count against the deadline: lapin's `basic_publish` returns only once
            // its IO thread has written the frames, which never happens while a broker that
            // stopped reading leaves the socket buffers full; then the confirm.
            let attempt = async {
                channel
                    .basic_publish(
                        exchange_name.clone(),
                        key.clone(),
                        BasicPublishOptions {
                            mandatory: true,
                            immediate: false,
                        },
                        body,
                        properties.clone(),
                    )
                    .await?
                    .await
            };
            let confirmed = match tokio::time::timeout_at(deadline, attempt).await {
                Ok(result) => result,
                Err(_) => return Err(PublishError::Timeout(timeout)),
            };
            match confirmed {
                Ok(Confirmation::Ack(None)) | Ok(Confirmation::NotRequested) => {
                    self.broker
                        .metrics()
                        .confirm_latency
                        .observe(started.elapsed().as_secs_f64());
                    return Ok(());
                }
                Ok(Confirmation::Ack(Some(returned))) => {
                    return Err(PublishError::Unroutable {
                        exchange: exchange.to_owned(),
                        routing_key: routing_key.to_owned(),
                        reply: format!("{} {}", returned.reply_code, returned.reply_text),
                    });
                }
                Ok(Confirmation::Nack(_)) => {
                    return Err(PublishError::Nacked {
                        exchange: exchange.to_owned(),
                    });
                }
                Err(error) => {
                    self.forget(&channel);
                    if let Some(reason) = refusal(&error) {
                        return Err(PublishError::Refused {
                            exchange: exchange.to_owned(),
                            reason,
                        });
                    }
                    tracing::debug!(%error, "publish interrupted; repeating on the next channel");
                    if Instant::now() >= deadline {
                        return Err(PublishError::Timeout(timeout));
                    }
                }
            }
        }
    }

    /// The publishing channel for the live connection, opened (in confirm mode) on first use
    /// and after every reconnect.
    ///
    /// The fast path is a short synchronous lock on the cached channel; only opening a channel
    /// goes through the async `opening` lock, so concurrent publishers do not queue behind one
    /// another on every message.
    async fn channel(&self, deadline: Instant) -> Result<(u64, Channel), PublishError> {
        let timeout = self.broker.config().publish_timeout;
        let mut seen = 0;
        loop {
            if let Some(cached) = self.cached() {
                return Ok(cached);
            }
            {
                let _opening = self.opening.lock().await;
                // Another task may have opened it while we waited.
                if let Some(cached) = self.cached() {
                    return Ok(cached);
                }
                if let Some((generation, conn)) = self.broker.current() {
                    // A hung broker never answers channel.open; the deadline still holds.
                    match tokio::time::timeout_at(deadline, open_confirm_channel(&conn)).await {
                        Ok(Ok(channel)) => {
                            *lock(&self.channel) = Some((generation, channel.clone()));
                            return Ok((generation, channel));
                        }
                        Ok(Err(error)) => {
                            tracing::debug!(%error, "cannot open a publishing channel yet");
                            seen = generation;
                        }
                        Err(_) => return Err(PublishError::Timeout(timeout)),
                    }
                }
            }
            if self.broker.shutdown_token().is_cancelled() {
                return Err(PublishError::Closed);
            }
            if self.broker.connection_after(seen, deadline).await.is_none() {
                return Err(if self.broker.shutdown_token().is_cancelled() {
                    PublishError::Closed
                } else {
                    PublishError::Timeout(timeout)
                });
            }
        }
    }

    /// The cached channel if it is still usable on the current connection.
    fn cached(&self) -> Option<(u64, Channel)> {
        let mut slot = lock(&self.channel);
        let usable = slot.as_ref().is_some_and(|(generation, channel)| {
            channel.status().connected()
                && self.broker.generation() == *generation
                && self.broker.is_connected()
        });
        if usable {
            slot.clone()
        } else {
            *slot = None;
            None
        }
    }

    /// Drops the cached channel if it is `channel`, so the next publish opens a new one.
    fn forget(&self, channel: &Channel) {
        let mut slot = lock(&self.channel);
        if slot.as_ref().is_some_and(|(_, c)| c.id() == channel.id()) {
            *slot = None;
        }
    }
}

/// The span of publishing `event` to `destination` (`<destination> publish`, a producer span
/// with the messaging attributes), when spans are exported and the event does not carry a
/// `traceparent` yet: the publisher then starts the hop, and the event gets the span's. An
/// event that has one already continues its own trace (a re-publish, the receiver's encoded
/// events), and tracing off costs nothing beyond the check.
fn producer_span<T>(
    event: &Envelope<T>,
    destination: &str,
    exchange: &str,
    routing_key: &str,
) -> Span {
    if !trace::enabled() || event.extensions.contains_key(trace::TRACEPARENT) {
        return Span::none();
    }
    tracing::info_span!(
        "publish",
        otel.name = %format_args!("{destination} publish"),
        otel.kind = "producer",
        messaging.system = "rabbitmq",
        messaging.operation.type = "send",
        messaging.destination.name = destination,
        messaging.rabbitmq.destination.routing_key = routing_key,
        messaging.rabbitmq.exchange = exchange,
        messaging.message.id = %event.id,
        messaging.rabbitmq.delay_ms = tracing::field::Empty,
    )
}

async fn open_confirm_channel(conn: &lapin::Connection) -> Result<Channel, lapin::Error> {
    let channel = conn.create_channel().await?;
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await?;
    Ok(channel)
}

/// The broker's reason when it refused the operation for good (a channel-level soft error such
/// as a missing exchange or access refused); `None` for connection trouble worth retrying.
fn refusal(error: &lapin::Error) -> Option<String> {
    match error.kind() {
        ErrorKind::ProtocolError(amqp) => match amqp.kind() {
            AMQPErrorKind::Soft(
                AMQPSoftError::NOTFOUND
                | AMQPSoftError::ACCESSREFUSED
                | AMQPSoftError::PRECONDITIONFAILED
                | AMQPSoftError::RESOURCELOCKED,
            ) => Some(amqp.to_string()),
            _ => None,
        },
        _ => None,
    }
}

fn failure_label(error: &PublishError) -> &'static str {
    match error {
        PublishError::Unroutable { .. } => "unroutable",
        PublishError::Nacked { .. } => "nacked",
        PublishError::Refused { .. } => "refused",
        PublishError::Timeout(_) => "timeout",
        PublishError::Encode(_) | PublishError::InvalidName(_) => "invalid",
        PublishError::Closed => "closed",
    }
}

//! The consumer runner: manual acks, bounded concurrency, retry tiers, parking, draining.
//!
//! A [`Handler`] sees a decoded [`Incoming`] event and answers with an [`Outcome`]:
//! * [`Outcome::Done`] — ack;
//! * [`Outcome::Retry`] — transient failure: republish to the next retry tier with the counter
//!   +1, wait for the confirm, then ack the original (so a crash in between duplicates, never
//!   loses);
//! * [`Outcome::Park`] — permanent failure: republish to `Q.parked` with the error headers,
//!   confirm, ack.
//!
//! A body that does not decode is parked at once with the decode error; the queue keeps
//! flowing behind it. A panic or a handler timeout counts as a transient failure. Once the
//! policy's `max_attempts` is reached a transient failure parks instead.

use std::any::Any;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{FutureExt, StreamExt};
use lapin::message::Delivery;
use lapin::options::{
    BasicAckOptions, BasicCancelOptions, BasicConsumeOptions, BasicNackOptions, BasicQosOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{Channel, Connection};
use serde::de::DeserializeOwned;
use steadfast_events::{DEFAULT_MAX_EVENT_BYTES, Envelope, HEADER_MESSAGE_TYPE, TraceParent};
use steadfast_telemetry::trace;
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

use crate::broker::Broker;
use crate::error::MessagingError;
use crate::headers::{self, string_value};
use crate::publisher::Publisher;
use crate::topology::{QueueSpec, delay_label, short};

/// What a handler decided about one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Handled (or deliberately ignored): acknowledge.
    Done,
    /// Failed for a reason that may go away (network, 5xx, timeout): try again later.
    Retry(String),
    /// Failed for a reason that will not go away (invalid content, 4xx): park it.
    Park(String),
}

impl Outcome {
    pub fn retry(reason: impl std::fmt::Display) -> Self {
        Self::Retry(reason.to_string())
    }

    pub fn park(reason: impl std::fmt::Display) -> Self {
        Self::Park(reason.to_string())
    }
}

/// One decoded message as a handler sees it.
#[derive(Debug, Clone)]
pub struct Incoming<T> {
    pub event: Envelope<T>,
    /// The exchange the event was first published to (not the retry tier it came back from).
    pub exchange: String,
    /// The routing key the event was first published with.
    pub routing_key: String,
    /// 1 for the first delivery, 2 after the first retry, ...
    pub attempt: u32,
    /// The broker redelivered it (a consumer died holding it): the work may be half done.
    pub redelivered: bool,
    /// The `message-type` header (`gitlab`, `alertmanager`, ...).
    pub message_type: Option<String>,
}

/// Handles the messages of one queue. Implementations must be idempotent: delivery is
/// at-least-once.
pub trait Handler: Send + Sync + 'static {
    /// The type of the CloudEvent `data`.
    type Data: DeserializeOwned + Send + 'static;

    fn handle(&self, message: Incoming<Self::Data>) -> impl Future<Output = Outcome> + Send;
}

/// Per-consumer knobs, from the service's config.
#[derive(Debug, Clone)]
pub struct ConsumerSettings {
    /// Unacked messages the broker may push ahead (`basic.qos`).
    pub prefetch: u16,
    /// Handlers running at once.
    pub concurrency: usize,
    /// A handler still running after this is treated as a transient failure.
    pub handler_timeout: Duration,
    /// On shutdown, how long in-flight handlers may take to finish.
    pub drain_timeout: Duration,
    /// Bodies above this are parked unread.
    pub max_message_bytes: usize,
}

impl Default for ConsumerSettings {
    fn default() -> Self {
        Self {
            prefetch: 32,
            concurrency: 8,
            handler_timeout: Duration::from_secs(300),
            drain_timeout: Duration::from_secs(20),
            max_message_bytes: DEFAULT_MAX_EVENT_BYTES,
        }
    }
}

/// Runs a [`Handler`] over a queue until shutdown, across reconnects.
pub struct Consumer<H: Handler> {
    broker: Broker,
    spec: QueueSpec,
    settings: ConsumerSettings,
    handler: Arc<H>,
}

struct Shared<H> {
    spec: QueueSpec,
    settings: ConsumerSettings,
    handler: Arc<H>,
    publisher: Publisher,
    broker: Broker,
}

impl<H: Handler> Consumer<H> {
    pub fn new(broker: Broker, spec: QueueSpec, settings: ConsumerSettings, handler: H) -> Self {
        Self {
            broker,
            spec,
            settings,
            handler: Arc::new(handler),
        }
    }

    /// Consumes until `shutdown` is cancelled, then cancels the subscription, lets in-flight
    /// handlers finish (up to the drain timeout) and closes the channel, which returns every
    /// message not yet acknowledged to the queue.
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), MessagingError> {
        self.spec.retry.validate()?;
        let queue = self.spec.name.clone();
        self.broker.metrics().prepare_queue(&self.spec);
        let shared = Arc::new(Shared {
            publisher: Publisher::new(self.broker.clone()),
            spec: self.spec,
            settings: self.settings,
            handler: self.handler,
            broker: self.broker.clone(),
        });
        let permits = Arc::new(Semaphore::new(shared.settings.concurrency.max(1)));
        let tracker = TaskTracker::new();
        let mut seen = 0;
        let mut channels: Vec<Channel> = Vec::new();

        'connections: while !shutdown.is_cancelled() {
            let far = Instant::now() + Duration::from_secs(3600);
            let connection = tokio::select! {
                () = shutdown.cancelled() => break,
                c = self.broker.connection_after(seen, far) => c,
            };
            let Some((generation, conn)) = connection else {
                continue;
            };
            seen = generation;
            let subscribed = tokio::select! {
                () = shutdown.cancelled() => break,
                // A hung broker never answers; give up on this connection and wait for the next.
                s = tokio::time::timeout(SUBSCRIBE_TIMEOUT, subscribe(&conn, &shared)) => s
                    .unwrap_or(Err(MessagingError::NotConnected(SUBSCRIBE_TIMEOUT))),
            };
            let (channel, mut deliveries) = match subscribed {
                Ok(subscribed) => subscribed,
                Err(error) => {
                    tracing::error!(%queue, %error, "cannot subscribe; waiting for the next connection");
                    // A topology error will not fix itself on this connection; try again on
                    // the next one, or after a pause if the connection stays up.
                    tokio::select! {
                        () = shutdown.cancelled() => break,
                        () = tokio::time::sleep(Duration::from_secs(5)) => { seen = 0; continue }
                    }
                }
            };
            let tag = deliveries.tag();
            channels.push(channel.clone());
            tracing::info!(%queue, prefetch = shared.settings.prefetch, "consuming");
            loop {
                tokio::select! {
                    biased;
                    () = shutdown.cancelled() => {
                        cancel(&channel, &tag).await;
                        break 'connections;
                    }
                    next = deliveries.next() => match next {
                        Some(Ok(delivery)) => {
                            let permit = tokio::select! {
                                biased;
                                // Not started: it stays unacked and returns to the queue.
                                () = shutdown.cancelled() => {
                                    cancel(&channel, &tag).await;
                                    break 'connections;
                                }
                                p = permits.clone().acquire_owned() => p.expect("semaphore never closed"),
                            };
                            let shared = shared.clone();
                            tracker.spawn(async move {
                                process(&shared, delivery).await;
                                drop(permit);
                            });
                        }
                        Some(Err(error)) => {
                            tracing::warn!(%queue, %error, "subscription interrupted; re-subscribing after reconnect");
                            continue 'connections;
                        }
                        None => {
                            tracing::warn!(%queue, "subscription ended; re-subscribing");
                            continue 'connections;
                        }
                    }
                }
            }
        }

        tracker.close();
        let drain = shared.settings.drain_timeout;
        if tokio::time::timeout(drain, tracker.wait()).await.is_err() {
            tracing::warn!(
                %queue,
                still_running = tracker.len(),
                "drain deadline passed; unfinished messages stay unacked and will be redelivered"
            );
        }
        for channel in channels {
            if channel.status().connected() {
                let closed = channel.close(200, "consumer stopped".into());
                let _ = tokio::time::timeout(CLOSE_TIMEOUT, closed).await;
            }
        }
        tracing::info!(%queue, "consumer stopped");
        Ok(())
    }
}

/// How long declaring and subscribing may take before the connection is considered hung.
const SUBSCRIBE_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a cancel or close may take; a hung broker must not hang shutdown.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

/// Stops new deliveries; what was already delivered stays ours until acked or the channel closes.
async fn cancel(channel: &Channel, tag: &lapin::types::ShortString) {
    tracing::debug!(%tag, "cancelling subscription");
    let cancelled = channel.basic_cancel(tag.clone(), BasicCancelOptions::default());
    match tokio::time::timeout(CLOSE_TIMEOUT, cancelled).await {
        Ok(Ok(())) => tracing::debug!(%tag, "subscription cancelled"),
        Ok(Err(error)) => tracing::warn!(%error, "cancelling the subscription failed"),
        Err(_) => tracing::warn!("the broker did not confirm the cancel in time"),
    }
}

async fn subscribe<H: Handler>(
    conn: &Connection,
    shared: &Shared<H>,
) -> Result<(Channel, lapin::Consumer), MessagingError> {
    let channel = conn.create_channel().await?;
    shared.spec.declare(&channel).await?;
    channel
        .basic_qos(shared.settings.prefetch, BasicQosOptions::default())
        .await?;
    let tag = format!(
        "{}-{}",
        shared.broker.config().app_id,
        uuid::Uuid::new_v4().simple()
    );
    let deliveries = channel
        .basic_consume(
            short(&shared.spec.name)?,
            short(&tag)?,
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;
    Ok((channel, deliveries))
}

async fn process<H: Handler>(shared: &Shared<H>, delivery: Delivery) {
    let queue = shared.spec.name.as_str();
    let metrics = shared.broker.metrics();
    let retries = headers::retry_count(&delivery.properties);
    let exchange = headers::header_str(&delivery.properties, headers::ORIGINAL_EXCHANGE)
        .unwrap_or_else(|| delivery.exchange.to_string());
    let routing_key = headers::header_str(&delivery.properties, headers::ORIGINAL_ROUTING_KEY)
        .unwrap_or_else(|| delivery.routing_key.to_string());

    let event =
        match Envelope::<H::Data>::from_json(&delivery.data, shared.settings.max_message_bytes) {
            Ok(event) => event,
            Err(error) => {
                let message_id = delivery
                    .properties
                    .message_id()
                    .as_ref()
                    .map(|m| m.to_string());
                tracing::error!(queue, ?message_id, %error, "undecodable message; parking it");
                metrics
                    .consumed
                    .with_label_values(&[queue, "undecodable"])
                    .inc();
                park(
                    shared,
                    &delivery,
                    &exchange,
                    &routing_key,
                    "undecodable",
                    &error.to_string(),
                )
                .await;
                return;
            }
        };

    let traceparent = event.traceparent();
    let trace_id = traceparent
        .as_ref()
        .map(|tp| tp.trace_id())
        .unwrap_or_default();
    let span = tracing::info_span!(
        "message",
        queue,
        event_id = %event.id,
        event_type = %event.event_type,
        trace_id = %trace_id,
        attempt = retries + 1,
        otel.name = tracing::field::Empty,
        otel.kind = tracing::field::Empty,
    );
    continue_message_trace(&span, queue, traceparent.as_ref());
    let incoming = Incoming {
        event,
        exchange: exchange.clone(),
        routing_key: routing_key.clone(),
        attempt: retries + 1,
        redelivered: delivery.redelivered,
        message_type: headers::header_str(&delivery.properties, HEADER_MESSAGE_TYPE),
    };

    async {
        let started = Instant::now();
        let handled = tokio::time::timeout(
            shared.settings.handler_timeout,
            AssertUnwindSafe(shared.handler.handle(incoming)).catch_unwind(),
        )
        .await;
        metrics
            .handler_duration
            .with_label_values(&[queue])
            .observe(started.elapsed().as_secs_f64());
        let outcome = match handled {
            Ok(Ok(outcome)) => outcome,
            Ok(Err(panic)) => {
                Outcome::Retry(format!("handler panicked: {}", panic_message(&*panic)))
            }
            Err(_) => Outcome::Retry(format!(
                "handler timed out after {:?}",
                shared.settings.handler_timeout
            )),
        };
        match outcome {
            Outcome::Done => {
                metrics.consumed.with_label_values(&[queue, "done"]).inc();
                ack(&delivery).await;
            }
            Outcome::Retry(reason) if shared.spec.retry.exhausted(retries) => {
                metrics.consumed.with_label_values(&[queue, "park"]).inc();
                let error = format!("gave up after {} attempts: {reason}", retries + 1);
                tracing::error!(error = %error, "retries exhausted; parking the message");
                park(
                    shared,
                    &delivery,
                    &exchange,
                    &routing_key,
                    "exhausted",
                    &error,
                )
                .await;
            }
            Outcome::Retry(reason) => {
                metrics.consumed.with_label_values(&[queue, "retry"]).inc();
                retry(
                    shared,
                    &delivery,
                    &exchange,
                    &routing_key,
                    retries + 1,
                    &reason,
                )
                .await;
            }
            Outcome::Park(reason) => {
                metrics.consumed.with_label_values(&[queue, "park"]).inc();
                tracing::error!(error = %reason, "permanent failure; parking the message");
                park(
                    shared,
                    &delivery,
                    &exchange,
                    &routing_key,
                    "permanent",
                    &reason,
                )
                .await;
            }
        }
    }
    .instrument(span)
    .await;
}

/// With spans exported, the handler's span is the child of the publisher's (the message's
/// `traceparent`), named `<queue> process` as a consumer span; a message without one starts a
/// trace, whose id then goes in the `trace_id` log field. Without a tracer nothing changes:
/// `trace_id` is the message's own, so logs still join by it.
fn continue_message_trace(span: &tracing::Span, queue: &str, parent: Option<&TraceParent>) {
    if !trace::enabled() {
        return;
    }
    span.record("otel.name", format!("{queue} process").as_str());
    span.record("otel.kind", "consumer");
    match parent {
        Some(parent) => trace::continue_trace(span, parent),
        None => {
            if let Some(own) = trace::traceparent(span) {
                span.record("trace_id", own.trace_id().as_str());
            }
        }
    }
}

async fn retry<H: Handler>(
    shared: &Shared<H>,
    delivery: &Delivery,
    exchange: &str,
    routing_key: &str,
    retry_number: u32,
    reason: &str,
) {
    let delay = shared.spec.retry.delay_for(retry_number);
    let tier = shared.spec.retry_queue(delay);
    let props = headers::with_headers(&delivery.properties, |h| {
        h.insert(
            headers::RETRY_COUNT.into(),
            AMQPValue::LongLongInt(i64::from(retry_number)),
        );
        h.insert(
            headers::LAST_ERROR.into(),
            string_value(&headers::bounded_error(reason)),
        );
        headers::keep_original_route(h, exchange, routing_key);
    });
    tracing::warn!(error = %reason, retry = retry_number, tier = %tier, "transient failure; retrying later");
    if republish(shared, &tier, &delivery.data, props).await {
        shared
            .broker
            .metrics()
            .retried
            .with_label_values(&[shared.spec.name.as_str(), &delay_label(delay)])
            .inc();
        ack(delivery).await;
    } else {
        nack_requeue(delivery).await;
    }
}

async fn park<H: Handler>(
    shared: &Shared<H>,
    delivery: &Delivery,
    exchange: &str,
    routing_key: &str,
    reason_label: &str,
    error: &str,
) {
    let parked = shared.spec.parked_queue();
    let props = headers::with_headers(&delivery.properties, |h| {
        h.insert(
            headers::ERROR.into(),
            string_value(&headers::bounded_error(error)),
        );
        h.insert(
            headers::FAILED_AT.into(),
            string_value(&headers::now_rfc3339()),
        );
        h.insert(headers::PARKED_REASON.into(), string_value(reason_label));
        headers::keep_original_route(h, exchange, routing_key);
    });
    if republish(shared, &parked, &delivery.data, props).await {
        shared
            .broker
            .metrics()
            .parked
            .with_label_values(&[shared.spec.name.as_str(), reason_label])
            .inc();
        ack(delivery).await;
    } else {
        nack_requeue(delivery).await;
    }
}

/// Publishes to one of our own queues through the default exchange. If the queue has vanished
/// (someone deleted it), the family is declared again and the publish repeated once.
async fn republish<H: Handler>(
    shared: &Shared<H>,
    queue: &str,
    body: &[u8],
    props: lapin::BasicProperties,
) -> bool {
    match shared
        .publisher
        .publish_raw("", queue, body, props.clone())
        .await
    {
        Ok(()) => return true,
        Err(crate::PublishError::Unroutable { .. }) => {
            tracing::warn!(
                queue,
                "retry/parking queue missing; declaring the queue family again"
            );
            if let Err(error) = shared.broker.declare_queue(shared.spec.clone()).await {
                tracing::error!(%error, "cannot re-declare the queue family");
                return false;
            }
        }
        Err(error) => {
            tracing::error!(queue, %error, "cannot move the message; it returns to the queue");
            return false;
        }
    }
    match shared.publisher.publish_raw("", queue, body, props).await {
        Ok(()) => true,
        Err(error) => {
            tracing::error!(queue, %error, "cannot move the message; it returns to the queue");
            false
        }
    }
}

async fn ack(delivery: &Delivery) {
    if let Err(error) = delivery.ack(BasicAckOptions::default()).await {
        // The channel died: the broker will redeliver, and handlers are idempotent.
        tracing::warn!(%error, "ack failed; the message will be redelivered");
    }
}

async fn nack_requeue(delivery: &Delivery) {
    // Brief pause so a broker that refuses every republish does not become a hot loop.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let _ = delivery
        .nack(BasicNackOptions {
            requeue: true,
            multiple: false,
        })
        .await;
}

fn panic_message(panic: &(dyn Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "non-string panic payload".to_owned())
}

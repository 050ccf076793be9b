//! Publishing events with a confirm, and keeping the ones no queue is bound for.
//!
//! Every publish is `mandatory`, so the broker tells us when no queue is bound for a routing
//! key (a project nobody consumes yet, a push event no service wants). Such an event is not an
//! error of the sender and must not block the spool behind it, so it is republished to the
//! receiver's own topic exchange `<ns>.webhooks.unrouted` with the same routing key, whose
//! queue `<ns>.webhook-receiver.unrouted` (bound with `#`) keeps it for the operator: a new
//! consumer's missed events can be shovelled back to `<ns>.webhooks` with their original keys.
//! Retention of that queue is an operator policy (see the runbook).

use futures_util::StreamExt;
use futures_util::stream::FuturesOrdered;
use steadfast_messaging::headers::{self, ORIGINAL_EXCHANGE};
use steadfast_messaging::{
    Broker, ExchangeSpec, MessagingError, Namespace, PublishError, Publisher, admin,
};

use crate::event::OutgoingEvent;

/// Where a confirmed event ended up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Routed {
    /// At least one queue bound to the exchange took it.
    Queued,
    /// No queue was bound for its routing key; it is on the unrouted queue.
    Unrouted,
}

/// The exchanges and the unrouted queue of one namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topology {
    /// `<ns>.webhooks`: where every event goes.
    pub exchange: String,
    /// `<ns>.webhooks.unrouted`: where events nobody is bound for go instead.
    pub unrouted_exchange: String,
    /// `<ns>.webhook-receiver.unrouted`, bound to the unrouted exchange with `#`.
    pub unrouted_queue: String,
}

impl Topology {
    pub fn new(namespace: &Namespace) -> Self {
        Self {
            exchange: namespace.exchange("webhooks"),
            unrouted_exchange: namespace.exchange("webhooks.unrouted"),
            unrouted_queue: namespace.queue("webhook-receiver", "unrouted"),
        }
    }

    /// Registers both exchanges with the broker (declared now if connected, and after every
    /// reconnect) and declares the unrouted queue if the broker is up; if it is not, the
    /// queue is declared the first time an event needs it.
    pub async fn declare(&self, broker: &Broker) -> Result<(), MessagingError> {
        broker
            .declare_exchange(ExchangeSpec::topic(&self.exchange))
            .await?;
        broker
            .declare_exchange(ExchangeSpec::topic(&self.unrouted_exchange))
            .await?;
        if broker.is_connected() {
            self.declare_unrouted_queue(broker).await?;
        }
        Ok(())
    }

    async fn declare_unrouted_queue(&self, broker: &Broker) -> Result<(), MessagingError> {
        admin::declare_bound_queue(
            broker,
            &self.unrouted_queue,
            &[(self.unrouted_exchange.clone(), "#".to_owned())],
        )
        .await
    }
}

/// Publishes events to the topology with confirms.
#[derive(Clone)]
pub struct Forwarder {
    publisher: Publisher,
    topology: Topology,
}

impl Forwarder {
    /// A forwarder with its own publishing channel on `broker`.
    pub fn new(broker: &Broker, topology: Topology) -> Self {
        Self {
            publisher: Publisher::new(broker.clone()),
            topology,
        }
    }

    pub fn broker(&self) -> &Broker {
        self.publisher.broker()
    }

    pub fn topology(&self) -> &Topology {
        &self.topology
    }

    /// Publishes one event and waits for the confirm (within the broker's publish deadline).
    pub async fn publish(&self, event: &OutgoingEvent) -> Result<Routed, PublishError> {
        let mut redeclared = false;
        loop {
            let properties = headers::properties_from(&event.meta);
            // The publisher holds the whole publish (channel, write, confirm) to the deadline.
            match self
                .publisher
                .publish_raw(&event.exchange, &event.routing_key, &event.body, properties)
                .await
            {
                Ok(()) => return Ok(Routed::Queued),
                Err(PublishError::Unroutable { .. }) => {
                    // Boxed like the re-declare below: rare paths, kept out of the size of
                    // every publish future.
                    return Box::pin(self.divert(event))
                        .await
                        .map(|()| Routed::Unrouted);
                }
                // Most likely someone deleted the exchange: declare it again and retry once. A
                // refusal that declaring cannot fix (permissions) is returned as it was.
                Err(refused @ PublishError::Refused { .. }) if !redeclared => {
                    redeclared = true;
                    let declared = Box::pin(self.bounded(async {
                        self.broker()
                            .declare_exchange(ExchangeSpec::topic(&event.exchange))
                            .await
                            .map_err(|e| PublishError::InvalidName(e.to_string()))
                    }))
                    .await;
                    if declared.is_err() {
                        return Err(refused);
                    }
                }
                Err(error) => return Err(error),
            }
        }
    }

    /// Publishes `events` pipelined on one channel and returns each result, in order.
    ///
    /// The publishes are started in order (a `FuturesOrdered` polls new futures first-in,
    /// first-out, and each reaches `basic.publish` on its first poll, through the publisher's
    /// FIFO channel lock), so on a healthy connection the broker receives them in order while
    /// the confirms are awaited together.
    pub async fn publish_in_order<'a>(
        &self,
        events: impl IntoIterator<Item = &'a OutgoingEvent>,
    ) -> Vec<Result<Routed, PublishError>> {
        let events: Vec<&OutgoingEvent> = events.into_iter().collect();
        if let [only] = events[..] {
            // One event per request is the common case (GitLab): no ordering machinery.
            return vec![self.publish(only).await];
        }
        events
            .into_iter()
            .map(|event| self.publish(event))
            .collect::<FuturesOrdered<_>>()
            .collect()
            .await
    }

    /// Sends an event nobody is bound for to the unrouted exchange, declaring the unrouted
    /// queue if it is missing (first use, or deleted by an operator).
    async fn divert(&self, event: &OutgoingEvent) -> Result<(), PublishError> {
        let mut meta = event.meta.clone();
        meta.headers
            .push((ORIGINAL_EXCHANGE.to_owned(), event.exchange.clone()));
        let publish = || {
            self.publisher.publish_raw(
                &self.topology.unrouted_exchange,
                &event.routing_key,
                &event.body,
                headers::properties_from(&meta),
            )
        };
        match publish().await {
            Err(PublishError::Unroutable { .. } | PublishError::Refused { .. }) => {
                self.bounded(async {
                    self.topology
                        .declare_unrouted_queue(self.broker())
                        .await
                        .map_err(|e| PublishError::Refused {
                            exchange: self.topology.unrouted_exchange.clone(),
                            reason: format!("declaring the unrouted queue: {e}"),
                        })
                })
                .await?;
                publish().await
            }
            other => other,
        }
    }

    /// Holds a declaration to the publish deadline. Publishes are bounded by the publisher, but
    /// a declaration on a connection whose peer went silent (a hung broker, a partition
    /// without RST) waits until the heartbeat gives up, ~20 s later: past GitLab's 10 s.
    async fn bounded<T>(
        &self,
        operation: impl Future<Output = Result<T, PublishError>>,
    ) -> Result<T, PublishError> {
        let deadline = self.broker().config().publish_timeout;
        tokio::time::timeout(deadline, operation)
            .await
            .unwrap_or(Err(PublishError::Timeout(deadline)))
    }
}

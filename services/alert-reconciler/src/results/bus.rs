//! One Redis pub/sub connection shared by every run, and the durable result lists.
//!
//! A run [`ResultBus::subscribe`]s to its channel before it launches anything; `subscribe`
//! returns only once Redis confirmed the subscription, so no early answer is missed. Messages
//! are routed to the run by channel. If the connection drops, the bus reconnects, subscribes
//! every live channel again and sends each run a [`BusEvent::Resync`], upon which the run
//! re-reads its durable list for whatever was published during the gap.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use redis::AsyncCommands;
use redis::aio::{ConnectionManager, PubSubSink};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::message::durable_key;

#[derive(Debug, thiserror::Error)]
pub enum BusError {
    #[error("Redis is not connected (reconnecting)")]
    Disconnected,
    #[error("Redis: {0}")]
    Redis(#[from] redis::RedisError),
}

/// What a run's subscription delivers.
#[derive(Debug, Clone, PartialEq)]
pub enum BusEvent {
    /// A message published on the channel.
    Message(Vec<u8>),
    /// The connection was re-established: messages may have been missed; read the backlog.
    Resync,
}

/// The shared bus; clones share the connection.
#[derive(Clone)]
pub struct ResultBus {
    inner: Arc<Inner>,
}

struct Inner {
    client: redis::Client,
    routes: Mutex<HashMap<String, mpsc::UnboundedSender<BusEvent>>>,
    sink: tokio::sync::Mutex<Option<PubSubSink>>,
    commands: tokio::sync::Mutex<Option<ConnectionManager>>,
    connected: AtomicBool,
    /// How many times the pub/sub connection was lost: a result published around such a loss
    /// may never have reached us (PUBLISH keeps nothing for absent subscribers).
    outages: AtomicU64,
}

/// A live subscription to one channel; dropping it unsubscribes.
pub struct Subscription {
    channel: String,
    events: mpsc::UnboundedReceiver<BusEvent>,
    bus: ResultBus,
}

impl Subscription {
    /// The next event; `None` only if the bus is gone.
    pub async fn recv(&mut self) -> Option<BusEvent> {
        self.events.recv().await
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        let bus = self.bus.clone();
        let channel = std::mem::take(&mut self.channel);
        bus.inner
            .routes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(&channel);
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                let sink = bus.inner.sink.lock().await.clone();
                if let Some(mut sink) = sink {
                    let _ = sink.unsubscribe(&channel).await;
                }
            });
        }
    }
}

impl ResultBus {
    /// A bus for `url`; nothing connects until [`ResultBus::run`].
    pub fn new(url: &str) -> Result<Self, BusError> {
        Ok(Self {
            inner: Arc::new(Inner {
                client: redis::Client::open(url)?,
                routes: Mutex::new(HashMap::new()),
                sink: tokio::sync::Mutex::new(None),
                commands: tokio::sync::Mutex::new(None),
                connected: AtomicBool::new(false),
                outages: AtomicU64::new(0),
            }),
        })
    }

    /// For readiness: whether the pub/sub connection is up.
    pub fn health(&self) -> (bool, String) {
        if self.inner.connected.load(Ordering::SeqCst) {
            (true, "subscribed".into())
        } else {
            (false, "not connected to Redis; reconnecting".into())
        }
    }

    /// Whether the pub/sub connection is up right now.
    pub fn is_connected(&self) -> bool {
        self.inner.connected.load(Ordering::SeqCst)
    }

    /// How many times the pub/sub connection has been lost so far. A run compares it with the
    /// count when a recipe was launched: if it moved, the recipe's live answer may be lost.
    pub fn outages(&self) -> u64 {
        self.inner.outages.load(Ordering::SeqCst)
    }

    /// Waits until the pub/sub connection is up, or `timeout`.
    pub async fn wait_connected(&self, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        while !self.inner.connected.load(Ordering::SeqCst) {
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        true
    }

    /// Keeps the pub/sub connection up until `shutdown`.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut backoff = Duration::from_millis(100);
        let mut first = true;
        while !shutdown.is_cancelled() {
            match self.connect_and_route(&shutdown, first).await {
                Ok(()) => {
                    backoff = Duration::from_millis(100);
                    first = false;
                }
                Err(error) => {
                    tracing::warn!(%error, retry_in_ms = backoff.as_millis() as u64, "Redis pub/sub unavailable");
                }
            }
            if self.inner.connected.swap(false, Ordering::SeqCst) {
                self.inner.outages.fetch_add(1, Ordering::SeqCst);
            }
            *self.inner.sink.lock().await = None;
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(Duration::from_secs(5));
        }
    }

    async fn connect_and_route(
        &self,
        shutdown: &CancellationToken,
        first: bool,
    ) -> Result<(), BusError> {
        let (mut sink, mut stream) = self.inner.client.get_async_pubsub().await?.split();
        let channels: Vec<String> = self.routes().keys().cloned().collect();
        if !channels.is_empty() {
            sink.subscribe(&channels).await?;
        }
        *self.inner.sink.lock().await = Some(sink);
        self.inner.connected.store(true, Ordering::SeqCst);
        if !first {
            tracing::info!(
                channels = channels.len(),
                "Redis pub/sub reconnected; runs re-read their results"
            );
            for route in self.routes().values() {
                let _ = route.send(BusEvent::Resync);
            }
        }
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return Ok(()),
                message = stream.next() => match message {
                    Some(message) => {
                        let channel = message.get_channel_name().to_owned();
                        if let Some(route) = self.routes().get(&channel) {
                            let _ = route.send(BusEvent::Message(message.get_payload_bytes().to_vec()));
                        }
                    }
                    None => {
                        tracing::warn!("Redis pub/sub connection lost");
                        return Ok(());
                    }
                }
            }
        }
    }

    fn routes(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<String, mpsc::UnboundedSender<BusEvent>>> {
        self.inner
            .routes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Subscribes to `channel`; returns once Redis confirmed the subscription.
    pub async fn subscribe(&self, channel: &str) -> Result<Subscription, BusError> {
        let (sender, events) = mpsc::unbounded_channel();
        self.routes().insert(channel.to_owned(), sender);
        let subscription = Subscription {
            channel: channel.to_owned(),
            events,
            bus: self.clone(),
        };
        let sink = self.inner.sink.lock().await.clone();
        let mut sink = sink.ok_or(BusError::Disconnected)?;
        sink.subscribe(channel).await?;
        Ok(subscription)
    }

    async fn commands(&self) -> Result<ConnectionManager, BusError> {
        let mut guard = self.inner.commands.lock().await;
        if let Some(connection) = guard.as_ref() {
            return Ok(connection.clone());
        }
        let connection = ConnectionManager::new(self.inner.client.clone()).await?;
        *guard = Some(connection.clone());
        Ok(connection)
    }

    /// The durable copies of results published on `channel` so far.
    pub async fn backlog(&self, channel: &str) -> Result<Vec<Vec<u8>>, BusError> {
        let mut connection = self.commands().await?;
        Ok(connection.lrange(durable_key(channel), 0, -1).await?)
    }

    /// Drops the durable copies once the run is over.
    pub async fn forget(&self, channel: &str) -> Result<(), BusError> {
        let mut connection = self.commands().await?;
        let _: () = connection.del(durable_key(channel)).await?;
        Ok(())
    }
}

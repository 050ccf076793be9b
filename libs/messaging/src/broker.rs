//! The connection supervisor.
//!
//! lapin's own recovery is opt-in and young (see docs/messaging.md), and it recovers channels
//! only as part of a connection. We keep the loop ourselves because it is short and it is the
//! part that must not fail: connect to a random node of the cluster, declare every registered
//! exchange and queue, announce the connection (with a new generation number) to publishers
//! and consumers, wait until the connection dies, and start again with jittered exponential
//! backoff. Publishers and consumers never hold a connection across generations: they notice
//! the generation change, open fresh channels, and re-subscribe.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use lapin::{Connection, ConnectionProperties, Event};
use rand::Rng;
use rand::seq::SliceRandom;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::config::{BrokerConfig, redact_url};
use crate::error::MessagingError;
use crate::metrics::MessagingMetrics;
use crate::topology::{ExchangeSpec, QueueSpec};

/// The current connection, if any, and how many connections came before it.
#[derive(Clone, Default)]
pub(crate) struct Link {
    pub(crate) generation: u64,
    pub(crate) connection: Option<Arc<Connection>>,
}

#[derive(Clone)]
enum Declaration {
    Exchange(ExchangeSpec),
    Queue(QueueSpec),
}

struct Inner {
    config: BrokerConfig,
    metrics: MessagingMetrics,
    link: watch::Sender<Link>,
    /// Re-declared on every connect, before the connection is announced.
    declarations: Mutex<Vec<Declaration>>,
    shutdown: CancellationToken,
    supervisor: Mutex<Option<JoinHandle<()>>>,
}

/// A supervised connection to the broker, shared by every publisher and consumer of a service.
#[derive(Clone)]
pub struct Broker {
    inner: Arc<Inner>,
}

impl Broker {
    /// Starts the supervisor and returns at once; the first connection is made in the
    /// background, so a service can start (and, say, spool webhooks) while the broker is down.
    pub fn start(config: BrokerConfig, metrics: MessagingMetrics) -> Self {
        let (link, _) = watch::channel(Link::default());
        let inner = Arc::new(Inner {
            config,
            metrics,
            link,
            declarations: Mutex::new(Vec::new()),
            shutdown: CancellationToken::new(),
            supervisor: Mutex::new(None),
        });
        let handle = tokio::spawn(supervise(inner.clone()));
        *lock(&inner.supervisor) = Some(handle);
        Self { inner }
    }

    /// Starts the supervisor and waits up to `timeout` for the first connection.
    pub async fn connect(
        config: BrokerConfig,
        metrics: MessagingMetrics,
        timeout: Duration,
    ) -> Result<Self, MessagingError> {
        let broker = Self::start(config, metrics);
        broker.wait_connected(timeout).await?;
        Ok(broker)
    }

    pub fn config(&self) -> &BrokerConfig {
        &self.inner.config
    }

    pub fn metrics(&self) -> &MessagingMetrics {
        &self.inner.metrics
    }

    /// Readiness: true while a connection is up.
    pub fn is_connected(&self) -> bool {
        self.inner
            .link
            .borrow()
            .connection
            .as_ref()
            .is_some_and(|c| c.status().connected())
    }

    /// For a readiness check: whether connected, and a detail for `/readyz`.
    pub fn health(&self) -> (bool, String) {
        if self.is_connected() {
            (
                true,
                format!("connected (connection #{})", self.generation()),
            )
        } else if self.inner.shutdown.is_cancelled() {
            (false, "closed".into())
        } else {
            (false, "disconnected; reconnecting".into())
        }
    }

    /// How many connections have been established so far (1 after the first connect).
    pub fn generation(&self) -> u64 {
        self.inner.link.borrow().generation
    }

    pub async fn wait_connected(&self, timeout: Duration) -> Result<(), MessagingError> {
        self.connection_after(0, Instant::now() + timeout)
            .await
            .map(|_| ())
            .ok_or(MessagingError::NotConnected(timeout))
    }

    /// Registers an exchange to be declared on every connect, and declares it now if connected.
    pub async fn declare_exchange(&self, spec: ExchangeSpec) -> Result<(), MessagingError> {
        self.register(Declaration::Exchange(spec.clone()));
        match self.current() {
            Some((_, conn)) => {
                let channel = conn.create_channel().await?;
                let result = spec.declare(&channel).await;
                let _ = channel.close(200, "declared".into()).await;
                result
            }
            None => Ok(()),
        }
    }

    /// Registers a queue family to be declared on every connect, and declares it now if connected.
    pub async fn declare_queue(&self, spec: QueueSpec) -> Result<(), MessagingError> {
        spec.retry.validate()?;
        self.register(Declaration::Queue(spec.clone()));
        match self.current() {
            Some((_, conn)) => {
                let channel = conn.create_channel().await?;
                let result = spec.declare(&channel).await;
                let _ = channel.close(200, "declared".into()).await;
                result
            }
            None => Ok(()),
        }
    }

    /// Closes the connection and stops reconnecting (within about five seconds even if the
    /// broker does not answer).
    pub async fn close(&self) {
        self.inner.shutdown.cancel();
        let handle = lock(&self.inner.supervisor).take();
        if let Some(handle) = handle {
            let _ = handle.await;
        }
    }

    fn register(&self, declaration: Declaration) {
        let mut declarations = lock(&self.inner.declarations);
        let name = |d: &Declaration| match d {
            Declaration::Exchange(e) => format!("exchange:{}", e.name),
            Declaration::Queue(q) => format!("queue:{}", q.name),
        };
        let key = name(&declaration);
        declarations.retain(|d| name(d) != key);
        declarations.push(declaration);
    }

    /// The live connection and its generation, if any.
    pub(crate) fn current(&self) -> Option<(u64, Arc<Connection>)> {
        let link = self.inner.link.borrow();
        link.connection
            .as_ref()
            .filter(|c| c.status().connected())
            .map(|c| (link.generation, c.clone()))
    }

    /// Waits for a live connection of a generation newer than `seen`, until `deadline`.
    pub(crate) async fn connection_after(
        &self,
        seen: u64,
        deadline: Instant,
    ) -> Option<(u64, Arc<Connection>)> {
        let mut rx = self.inner.link.subscribe();
        loop {
            {
                let link = rx.borrow_and_update();
                if link.generation > seen
                    && let Some(conn) = link.connection.as_ref().filter(|c| c.status().connected())
                {
                    return Some((link.generation, conn.clone()));
                }
            }
            if self.inner.shutdown.is_cancelled() {
                return None;
            }
            tokio::select! {
                changed = rx.changed() => if changed.is_err() { return None },
                () = tokio::time::sleep_until(deadline) => return None,
                () = self.inner.shutdown.cancelled() => return None,
            }
        }
    }

    pub(crate) fn shutdown_token(&self) -> &CancellationToken {
        &self.inner.shutdown
    }
}

pub(crate) fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding these short critical sections cannot leave the data inconsistent.
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

async fn supervise(inner: Arc<Inner>) {
    let config = &inner.config;
    let mut backoff = config.reconnect_min;
    let mut generation = 0u64;
    loop {
        let connected = tokio::select! {
            () = inner.shutdown.cancelled() => return,
            result = connect_any(config) => result,
        };
        let conn = match connected {
            Ok(conn) => conn,
            Err(error) => {
                tracing::warn!(error = %error, retry_in_ms = backoff.as_millis() as u64, "cannot connect to the broker");
                tokio::select! {
                    () = inner.shutdown.cancelled() => return,
                    () = tokio::time::sleep(jitter(backoff)) => {}
                }
                backoff = (backoff * 2).min(config.reconnect_max);
                continue;
            }
        };
        let mut events = conn.events_listener();
        redeclare(&inner, &conn).await;
        generation += 1;
        let conn = Arc::new(conn);
        inner.link.send_replace(Link {
            generation,
            connection: Some(conn.clone()),
        });
        inner.metrics.connected.set(1);
        if generation > 1 {
            inner.metrics.reconnects.inc();
            tracing::info!(generation, "reconnected to the broker");
        } else {
            tracing::info!("connected to the broker");
        }
        backoff = config.reconnect_min;

        // Wait for the connection to die. The events stream reports errors; the periodic
        // status check catches a death that happened before the listener existed.
        let mut check = tokio::time::interval(Duration::from_millis(500));
        let reason = loop {
            tokio::select! {
                () = inner.shutdown.cancelled() => {
                    // A hung broker may never answer connection.close; do not hang shutdown.
                    let _ = tokio::time::timeout(
                        Duration::from_secs(5),
                        conn.close(200, "service shutting down".into()),
                    )
                    .await;
                    inner.link.send_replace(Link { generation, connection: None });
                    inner.metrics.connected.set(0);
                    return;
                }
                event = events.next() => match event {
                    // lapin reports channel-level errors (a 404 on a passive declare, a
                    // refused publish) here too; only a dead connection ends this loop.
                    Some(Event::Error(error)) => {
                        if !conn.status().connected() {
                            break error.to_string();
                        }
                        tracing::debug!(%error, "channel-level broker error; connection still up");
                    }
                    Some(Event::ConnectionBlocked(reason)) => {
                        tracing::warn!(%reason, "broker blocked publishing on this connection");
                    }
                    Some(Event::ConnectionUnblocked) => tracing::info!("broker unblocked publishing"),
                    Some(_) => {}
                    None => break "connection dropped".to_owned(),
                },
                _ = check.tick() => {
                    let status = conn.status();
                    if status.errored() || status.closed() {
                        break "connection closed".to_owned();
                    }
                }
            }
        };
        inner.link.send_replace(Link {
            generation,
            connection: None,
        });
        inner.metrics.connected.set(0);
        tracing::warn!(error = %reason, "lost the broker connection; reconnecting");
    }
}

/// Why no node of the cluster gave us a connection; the last node tried is the one named.
#[derive(Debug, thiserror::Error)]
enum ConnectError {
    #[error("no broker URL configured")]
    NoUrl,
    #[error("{url}: {source}")]
    Failed {
        /// Redacted: no credentials.
        url: String,
        #[source]
        source: lapin::Error,
    },
    #[error("{url}: no answer within {timeout:?}")]
    Timeout {
        /// Redacted: no credentials.
        url: String,
        timeout: Duration,
    },
}

async fn connect_any(config: &BrokerConfig) -> Result<Connection, ConnectError> {
    let mut uris = config.uris();
    uris.shuffle(&mut rand::rng());
    let mut last_error = ConnectError::NoUrl;
    for (uri, url) in uris.into_iter().zip(config.urls.iter()) {
        let props =
            ConnectionProperties::default().with_connection_name(config.app_id.clone().into());
        match tokio::time::timeout(config.connect_timeout, Connection::connect_uri(uri, props))
            .await
        {
            Ok(Ok(conn)) => return Ok(conn),
            Ok(Err(source)) => {
                last_error = ConnectError::Failed {
                    url: redact_url(url),
                    source,
                };
            }
            Err(_) => {
                last_error = ConnectError::Timeout {
                    url: redact_url(url),
                    timeout: config.connect_timeout,
                };
            }
        }
    }
    Err(last_error)
}

async fn redeclare(inner: &Inner, conn: &Connection) {
    let declarations = lock(&inner.declarations).clone();
    let mut channel = None;
    for declaration in declarations {
        if channel.is_none() {
            channel = conn.create_channel().await.ok();
        }
        let Some(ch) = channel.as_ref() else { return };
        let result = match &declaration {
            Declaration::Exchange(spec) => spec.declare(ch).await,
            Declaration::Queue(spec) => spec.declare(ch).await,
        };
        if let Err(error) = result {
            // A refused declaration (e.g. arguments that clash with an existing queue) closes
            // the channel; keep declaring the rest on a new one so one bad name cannot take
            // down the whole topology.
            tracing::error!(error = %error, "topology declaration failed");
            channel = None;
        }
    }
    if let Some(ch) = channel {
        let _ = ch.close(200, "topology declared".into()).await;
    }
}

/// ±25% jitter so a fleet of clients does not reconnect in lockstep after a broker restart.
fn jitter(base: Duration) -> Duration {
    let factor = rand::rng().random_range(0.75..1.25);
    base.mul_f64(factor)
}

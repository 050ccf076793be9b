//! RabbitMQ done durably, so no service talks to lapin directly.
//!
//! * [`Broker`] — the connection supervisor: a random node of the host list, jittered
//!   reconnects, topology re-declared and consumers re-subscribed after every reconnect, and a
//!   readiness signal that is false while disconnected.
//! * [`Publisher`] — confirms always, `mandatory` with returned messages surfaced as errors, a
//!   publish deadline, transparent re-publish after a reconnect, and `publish_delayed`.
//! * [`Consumer`] — manual acks, prefetch and concurrency, [`Outcome`]s done / retry / park,
//!   retry tiers with our own `steadfast-retry-count` header, a parking lot, panics and
//!   timeouts as transient failures, cancel-then-drain on shutdown.
//! * [`topology`] — every name and argument, derived from a [`Namespace`].
//! * [`admin`] — queue depth, reading, replaying and discarding the parking lot, and listing
//!   queues through the management API (used by `steadfastctl` and the console).
//! * [`MessagingMetrics`] — published, confirm latency, consumed by outcome, retried by tier,
//!   parked, handler duration, reconnects.
//!
//! The contract these implement is in `docs/messaging.md`.

pub mod admin;
mod broker;
mod config;
mod consumer;
mod error;
pub mod headers;
mod metrics;
mod publisher;
pub mod topology;

pub use broker::Broker;
pub use config::{BrokerConfig, DEFAULT_AMQP_URL, redact_url};
pub use consumer::{Consumer, ConsumerSettings, Handler, Incoming, Outcome};
pub use error::{ManagementError, MessagingError, PublishError};
pub use metrics::MessagingMetrics;
pub use publisher::Publisher;
pub use topology::{ExchangeSpec, Namespace, QueueSpec, RetryPolicy};

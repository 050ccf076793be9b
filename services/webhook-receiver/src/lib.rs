//! `webhook-receiver`: GitLab, Alertmanager and signed generic webhooks become durable
//! CloudEvents on the `<ns>.webhooks` topic exchange — also while RabbitMQ is down.
//!
//! A request is answered 200 only after the broker confirmed every event it carried. When the
//! broker does not confirm within `PUBLISH_TIMEOUT` (2 s), the events are committed to a spool
//! in PostgreSQL and the answer is 202; a drainer republishes them in arrival order once the
//! broker is back (confirm first, delete after). 503 only when neither takes an event.
//!
//! Modules, in the order a request meets them:
//! * [`intake`] — routes, checks, answers; [`request`] — bounded bodies, ids, trace context;
//! * [`auth`] — GitLab tokens per project glob, Alertmanager bearer/basic credentials;
//! * [`gitlab`], [`alertmanager`], [`hooks`] — payloads → CloudEvents and routing keys;
//! * [`event`] — an encoded event and its AMQP metadata;
//! * [`delivery`] — broker, spool or 503, and the order guarantee; [`forward`] — confirmed
//!   publishing and the unrouted queue; [`spool`] — the outbox table; [`drainer`] — its
//!   republisher and the spool's health;
//! * [`config`] — flags, environment and the YAML file; [`metrics`]; [`app`] — wiring and
//!   shutdown.

pub mod alertmanager;
pub mod app;
pub mod auth;
pub mod cli;
pub mod config;
pub mod delivery;
pub mod drainer;
pub mod event;
pub mod forward;
pub mod gitlab;
pub mod hooks;
pub mod intake;
pub mod metrics;
pub mod request;
pub mod spool;

pub use app::{App, AppError};
pub use config::{Cli, Config, ConfigError, SERVICE, SpoolSettings};

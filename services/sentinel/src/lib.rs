//! sentinel: HyperFleet's Sentinel, compatible and scaling past one instance.
//!
//! Every poll interval it pages through the HyperFleet API, decides with HyperFleet's CEL
//! `message_decision` which resources need reconciling, and publishes HyperFleet's reconcile
//! CloudEvent for each to the topic exchange — the same config file, metrics, probes and event
//! format, so HyperFleet's adapters, dashboards and alerts keep working. Beyond it: publisher
//! confirms, pages streamed (memory flat as the fleet grows), and `shard: {index, count}`.
//!
//! * [`config`] — HyperFleet's config file, env and flags.
//! * [`decision`] — the CEL decision engine and `message_data`.
//! * [`client`] — the API, page by page, with HyperFleet's retry schedule.
//! * [`poller`] — one poll cycle; [`events`] — the CloudEvent and publishing it.
//! * [`shard`] — splitting a fleet between replicas; [`metrics`] — HyperFleet's metrics.
//! * [`activity`] — what the last cycles did per resource; [`api`] — serving it at
//!   `GET /api/resources`.
//! * [`app`] — the service: listeners, broker, the poll loop, and its shutdown order.

pub mod activity;
pub mod api;
pub mod app;
pub mod cli;
pub mod client;
pub mod config;
pub mod decision;
pub mod events;
pub mod metrics;
pub mod poller;
pub mod shard;

pub use app::{App, AppError};
pub use config::{Cli, Command, Config};

//! fleet-api: a stand-in for the HyperFleet API, for the dev stack, tests and benchmarks.
//!
//! The subset the sentinel and adapters use, conforming to HyperFleet's OpenAPI spec for every
//! path it serves: clusters and nodepools (create, get, patch with a generation bump, soft
//! delete, force delete), lists with `page`/`size`/`order`/`search`, adapter status reports
//! with HyperFleet's accept/discard rules, and the `Reconciled` / `LastKnownReconciled` /
//! `<Adapter>Successful` aggregation over the required adapters. Errors are RFC 9457 problems
//! with HyperFleet's codes. State lives in PostgreSQL.
//!
//! * [`config`] — settings and required adapters.
//! * [`api`] — routes and handlers; [`problem`] — the error bodies.
//! * [`model`] — request validation and resource JSON; [`status`] — status reports.
//! * [`aggregation`] — the condition rules (pure); [`search`] — TSL to SQL.
//! * [`store`] — PostgreSQL.
//!
//! Other crates' tests start one in-process:
//!
//! ```no_run
//! # async fn demo(database_url: &str) -> Result<(), fleet_api::AppError> {
//! let config = fleet_api::Config::local(database_url).with_required_adapters(&["validator"], &[]);
//! let api = fleet_api::App::build(config).await?.spawn();
//! let clusters = format!("{}/api/hyperfleet/v1/clusters", api.base_url());
//! # let _ = clusters; Ok(()) }
//! ```

pub mod aggregation;
pub mod api;
pub mod app;
pub mod cli;
pub mod config;
mod metrics;
pub mod model;
pub mod problem;
pub mod search;
pub mod status;
pub mod store;

pub use app::{App, AppError, Running};
pub use config::{Cli, Command, Config, RequiredAdapters};

//! The HyperFleet adapter: consumes the sentinel's CloudEvents, runs a HyperFleet task config
//! (params → preconditions → Kubernetes resources → status report) and, unlike HyperFleet's
//! adapter, which acks every failure, retries transient failures through the messaging retry
//! tiers and parks permanent ones after reporting them.
//!
//! * [`config`] — the adapter and task configs, HyperFleet's flat snake_case form, validated
//!   and compiled at load;
//! * templates — HyperFleet's Go-template syntax, from `steadfast_gotemplate` (libs/gotemplate);
//! * [`hyperfleet_api`] — the API client with HyperFleet's retry rules;
//! * [`transport`] — applying manifests (kube, or the dry-run's in-memory cluster);
//! * [`pipeline`] — the four phases;
//! * [`handler`] — execution result → ack / retry / park; [`coalesce`] — duplicate events
//!   acked without running;
//! * [`dry_run`] — one event, with mocks, printed;
//! * [`metrics`] — HyperFleet's metric names;
//! * [`app`] / [`cli`] — the service and its command line.

pub mod app;
pub mod cli;
pub mod coalesce;
pub mod config;
pub mod dry_run;
pub mod handler;
pub mod hyperfleet_api;
pub mod metrics;
pub mod pipeline;
pub mod transport;

pub use app::App;
pub use config::Config;

//! `steadfast-chaos`: the whole Steadfast stack as real processes, under sustained mixed load,
//! while parts of it are killed; afterwards, invariants that say whether anything was lost.
//! A dev/test tool (issue 14), never in the product image.
//!
//! * [`stack`] starts the binaries (two receivers, two reconcilers, one of each other service,
//!   fleet-api and the fakes), each with its own ports, namespace and databases;
//! * [`load`] sends GitLab Job Hooks and Alertmanager notifications to both receivers and
//!   records every request; [`recipe`] is what the reconciler runs as recipes;
//! * [`faults`] injects faults on a seeded schedule; [`observe`] watches the effects, and
//!   [`probe`] consumes the suite's own queue on `<ns>.webhooks`;
//! * [`invariants`] are pure functions over what was recorded; [`report`] prints the result;
//! * [`fleet`] creates, updates and deletes clusters in fleet-api and watches them reconcile;
//!   [`poison`] injects invalid messages on purpose and reads the parked queues; [`sabotage`]
//!   breaks each invariant on purpose (`--sabotage`), to prove it can fail;
//! * [`run`] ties it together, on a [`system`]: the stack [`local`] starts, or a
//!   [`deployment`]'s (`--target`); [`infra`] is PostgreSQL and RabbitMQ's management API;
//!   [`private`] starts the run's own Redis, PostgreSQL and RabbitMQ (the infrastructure
//!   faults need them); [`proxy`] puts each service's broker connection behind a fault proxy.

pub mod checks;
pub mod cli;
pub mod deployment;
pub mod faults;
pub mod fleet;
pub mod infra;
pub mod invariants;
pub mod load;
pub mod local;
pub mod observe;
pub mod poison;
pub mod private;
pub mod probe;
pub mod proxy;
pub mod recipe;
pub mod report;
pub mod run;
pub mod sabotage;
pub mod stack;
pub mod system;

//! What an operator sees: probes, metrics, JSON logs, `--help`, `--check-config`, and a
//! graceful shutdown that finishes the requests in flight.

#[path = "../common/mod.rs"]
mod common;

mod binary;
mod probes;

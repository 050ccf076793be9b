//! `steadfastctl`: look at and repair Steadfast's queues.
//!
//!   steadfastctl queues                      every queue of the namespace, depth and consumers
//!   steadfastctl parked QUEUE [--json]       what failed for good, and why
//!   steadfastctl replay QUEUE [--type T] [--id ID]... [--limit N] [--older-than 1h]
//!   steadfastctl discard QUEUE [--type T] [--id ID]... [--limit N] [--older-than 1h] --yes
//!   steadfastctl probe URL                   a 2xx answer or exit 1: the containers' healthcheck
//!
//! Reads `AMQP_URL` and `STEADFAST_NAMESPACE` like the services. Warnings (e.g. each message
//! `discard` removed) go to stderr; `RUST_LOG` changes the level.

use std::io::IsTerminal as _;
use std::process::ExitCode;

use clap::Parser;
use steadfastctl::{Cli, run};
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> ExitCode {
    steadfast_service_kit::install_crypto_provider();
    // The library logs what an operator did to the data (discarded messages) at WARN: on a
    // terminal that trace belongs on stderr, apart from the output.
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()))
        .with_target(false)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let cli = Cli::parse();
    match run(cli).await {
        Ok(output) => {
            print!("{output}");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

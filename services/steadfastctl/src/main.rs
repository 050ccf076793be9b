//! `steadfastctl`: look at and repair Steadfast's queues.
//!
//!   steadfastctl queues                      every queue of the namespace, depth and consumers
//!   steadfastctl parked QUEUE [--json]       what failed for good, and why
//!   steadfastctl replay QUEUE [--type T] [--limit N] [--older-than 1h]
//!   steadfastctl probe URL                   a 2xx answer or exit 1: the containers' healthcheck
//!
//! Reads `AMQP_URL` and `STEADFAST_NAMESPACE` like the services.

use std::process::ExitCode;

use clap::Parser;
use steadfastctl::{Cli, run};

#[tokio::main]
async fn main() -> ExitCode {
    steadfast_service_kit::install_crypto_provider();
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

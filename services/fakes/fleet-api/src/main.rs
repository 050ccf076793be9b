//! `fleet-api`: the HyperFleet API stand-in; see `fleet-api --help`.

use std::process::ExitCode;

use clap::Parser;
use fleet_api::{Cli, Command, Config};
use steadfast_service_kit::host::{self, Launch};
use steadfast_service_kit::process::invalid_config;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = Config::from_cli(&cli);
    match (&cli.command, config) {
        (
            Some(Command::Seed {
                clusters,
                shards,
                prefix,
                reconciled_ago,
            }),
            Ok(config),
        ) => fleet_api::app::seed(&config, *clusters, *shards, prefix, *reconciled_ago).await,
        (Some(Command::Seed { .. }), Err(error)) => invalid_config(error),
        (Some(Command::Serve) | None, config) => host::run(Launch::load(config, &cli.common)).await,
    }
}

//! `webhook-receiver`: see the crate documentation and `webhook-receiver --help`.

use std::process::ExitCode;

use clap::Parser;
use steadfast_service_kit::host::{self, Launch};
use webhook_receiver::{Cli, Config};

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    host::run(Launch::load(Config::from_cli(&cli), &cli.common)).await
}

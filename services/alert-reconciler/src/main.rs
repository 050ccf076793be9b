//! `alert-reconciler`: see `--help`, and docs/runbooks/alert-reconciler.md.

use std::process::ExitCode;

use alert_reconciler::{Cli, Config};
use clap::Parser;
use steadfast_service_kit::host::{self, Launch};

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let common = cli.common.clone();
    host::run(Launch::load(Config::from_cli(cli), &common)).await
}

//! `sentinel`: HyperFleet-compatible poller; see `sentinel --help`.

use std::process::ExitCode;

use clap::Parser;
use sentinel::{Cli, Command, app};
use steadfast_service_kit::host;

#[tokio::main]
async fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Version => {
            println!("sentinel {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        Command::ConfigDump(args) => app::config_dump(&args),
        Command::Serve(args) => host::run(app::launch(&args)).await,
    }
}

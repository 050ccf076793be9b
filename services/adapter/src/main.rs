//! `adapter`: see the crate docs and `docs/runbooks/adapter.md`.

use std::process::ExitCode;

use adapter::cli::{self, Cli, Command};
use clap::Parser;
use steadfast_service_kit::host;

#[tokio::main]
async fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Version => cli::print_version(),
        Command::Serve(args) if args.is_dry_run() => args.dry_run().await,
        Command::Serve(args) => host::run(args.launch()).await,
    }
}

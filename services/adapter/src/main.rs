//! `adapter`: see the crate docs and `docs/runbooks/adapter.md`.

use std::process::ExitCode;

use adapter::cli::{self, Command};
use steadfast_service_kit::host;

#[tokio::main]
async fn main() -> ExitCode {
    match cli::parse().command {
        Command::Version => cli::print_version(),
        Command::ConfigDump(args) => args.run(),
        Command::Serve(args) if args.is_dry_run() => args.dry_run().await,
        Command::Serve(args) => host::run(args.launch()).await,
    }
}

//! `pipeline-herder serve --config FILE` runs the service; `pipeline-herder check --config
//! FILE --job-url URL [--json]` dry-runs the matchers against one job. See `--help`.

use std::process::ExitCode;

use clap::Parser;
use pipeline_herder::cli::{Cli, Command};
use steadfast_service_kit::host;

#[tokio::main]
async fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Serve(args) => host::run(args.launch()).await,
        Command::Check(args) => args.run().await,
    }
}

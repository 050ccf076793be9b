//! `adapter`: see the crate docs and `docs/runbooks/adapter.md`.

use std::process::ExitCode;

use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = adapter::cli::Cli::parse();
    steadfast_service_kit::install_crypto_provider();
    adapter::cli::run(cli).await
}

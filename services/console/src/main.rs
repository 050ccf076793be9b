//! `console` serves the operator console; `console hash-password` makes a users-file hash.
//! See `--help`.

use std::process::ExitCode;

use clap::Parser;
use console::cli::{Cli, Command};
use steadfast_service_kit::host;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::HashPassword) => console::cli::hash_password(),
        None => host::run(cli.serve.launch()).await,
    }
}

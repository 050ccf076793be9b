//! `steadfast-chaos run [--duration 10m] [--seed N] [--target FILE] ...`, `steadfast-chaos
//! stack --write-target FILE` and `steadfast-chaos recipe <answer|fail|hang>`; the front door
//! is scripts/chaos.sh.

use std::process::ExitCode;

use clap::Parser;
use steadfast_chaos::cli::{Cli, Command};

#[tokio::main]
async fn main() -> ExitCode {
    steadfast_service_kit::install_crypto_provider();
    let cli = Cli::parse();
    match cli.command {
        Command::Recipe(args) => match steadfast_chaos::recipe::run(&args).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                eprintln!("steadfast-chaos recipe: {error}");
                ExitCode::FAILURE
            }
        },
        Command::Stack(args) => match steadfast_chaos::local::hold(&args).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                eprintln!("steadfast-chaos stack: {error:#}");
                ExitCode::from(2)
            }
        },
        Command::Run(args) => {
            let json = args.json;
            match run(*args).await {
                Ok(report) => {
                    if json {
                        println!(
                            "{}",
                            serde_json::to_string_pretty(&report).unwrap_or_default()
                        );
                    } else {
                        print!("{}", report.render());
                    }
                    if report.holds() {
                        ExitCode::SUCCESS
                    } else {
                        ExitCode::FAILURE
                    }
                }
                Err(error) => {
                    eprintln!("steadfast-chaos: {error:#}");
                    ExitCode::from(2)
                }
            }
        }
    }
}

async fn run(
    args: steadfast_chaos::cli::RunArgs,
) -> anyhow::Result<steadfast_chaos::report::Report> {
    Ok(steadfast_chaos::run::run(args).await?)
}

use std::process::ExitCode;

use clap::Parser;
use sentinel::{App, Cli, Command, Config};
use steadfast_service_kit::{EXIT_INVALID_CONFIG, install_crypto_provider, shutdown};

fn invalid(error: impl std::fmt::Display) -> anyhow::Result<ExitCode> {
    eprintln!("invalid configuration: {error}");
    Ok(ExitCode::from(EXIT_INVALID_CONFIG))
}

#[tokio::main]
async fn main() -> anyhow::Result<ExitCode> {
    let (args, serve) = match Cli::parse().command {
        Command::Version => {
            println!("sentinel {}", env!("CARGO_PKG_VERSION"));
            return Ok(ExitCode::SUCCESS);
        }
        Command::ConfigDump(args) => (args, false),
        Command::Serve(args) => (args, true),
    };
    install_crypto_provider();
    let config = match Config::from_args(&args) {
        Ok(config) => config,
        Err(error) => return invalid(error),
    };
    if !serve {
        print!("{}", config.dump());
        return Ok(ExitCode::SUCCESS);
    }
    let telemetry = match sentinel::config::telemetry(&args, &config) {
        Ok(telemetry) => telemetry,
        Err(error) => return invalid(error),
    };
    if let Err(error) = config.validate_for_serve() {
        return invalid(error);
    }
    if args.common.check_config {
        println!("configuration OK");
        return Ok(ExitCode::SUCCESS);
    }
    let guard = steadfast_telemetry::init(&telemetry)?;
    if config.debug_config {
        tracing::info!(config = %config.dump(), "merged configuration");
    }
    App::build(config)
        .await?
        .run(shutdown::on_signals())
        .await?;
    guard.shutdown().await;
    Ok(ExitCode::SUCCESS)
}

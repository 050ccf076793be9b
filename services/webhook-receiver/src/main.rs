//! `webhook-receiver`: see the crate documentation and `webhook-receiver --help`.

use std::process::ExitCode;

use clap::Parser;
use steadfast_service_kit::{EXIT_INVALID_CONFIG, install_crypto_provider, shutdown};
use webhook_receiver::{App, Cli, Config, SERVICE};

#[tokio::main]
async fn main() -> anyhow::Result<ExitCode> {
    let cli = Cli::parse();
    install_crypto_provider();
    let config = match Config::from_cli(&cli) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("invalid configuration: {error}");
            return Ok(ExitCode::from(EXIT_INVALID_CONFIG));
        }
    };
    let telemetry = match cli.common.telemetry(SERVICE) {
        Ok(telemetry) => telemetry,
        Err(error) => {
            eprintln!("invalid configuration: {error}");
            return Ok(ExitCode::from(EXIT_INVALID_CONFIG));
        }
    };
    if cli.common.check_config {
        println!("configuration OK: {}", config.summary());
        return Ok(ExitCode::SUCCESS);
    }
    let guard = steadfast_telemetry::init(&telemetry)?;
    let app = App::build(config).await?;
    let result = app.run(shutdown::on_signals()).await;
    guard.shutdown().await;
    result?;
    Ok(ExitCode::SUCCESS)
}

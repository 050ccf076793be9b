//! `webhook-receiver`: see the crate documentation and `webhook-receiver --help`.

use std::process::ExitCode;

use clap::Parser;
use steadfast_service_kit::install_crypto_provider;
use steadfast_service_kit::process::{config_ok, invalid_config, run_until_signalled};
use webhook_receiver::{App, Cli, Config, SERVICE};

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    install_crypto_provider();
    let config = match Config::from_cli(&cli) {
        Ok(config) => config,
        Err(error) => return invalid_config(error),
    };
    let telemetry = match cli.common.telemetry(SERVICE) {
        Ok(telemetry) => telemetry,
        Err(error) => return invalid_config(error),
    };
    if cli.common.check_config {
        return config_ok(config.summary());
    }
    run_until_signalled(SERVICE, &telemetry, |shutdown| async move {
        App::build(config).await?.run(shutdown).await?;
        Ok::<(), anyhow::Error>(())
    })
    .await
}

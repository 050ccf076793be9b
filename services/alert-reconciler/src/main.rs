//! `alert-reconciler`: see `--help`, and docs/runbooks/alert-reconciler.md.

use std::process::ExitCode;

use alert_reconciler::{App, Cli, Config, check_config};
use clap::Parser;
use steadfast_service_kit::install_crypto_provider;
use steadfast_service_kit::process::{config_ok, invalid_config, run_until_signalled};

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    install_crypto_provider();
    let checking = cli.common.check_config;
    let telemetry = match cli.common.telemetry("alert-reconciler") {
        Ok(telemetry) => telemetry,
        Err(error) => return invalid_config(error),
    };
    let config = match Config::from_cli(cli) {
        Ok(config) => config,
        Err(error) => return invalid_config(error),
    };
    if checking {
        return match check_config(&config) {
            Ok(summary) => config_ok(summary),
            Err(error) => invalid_config(error),
        };
    }
    run_until_signalled("alert-reconciler", &telemetry, |shutdown| async move {
        App::build(config).await?.run(shutdown).await
    })
    .await
}

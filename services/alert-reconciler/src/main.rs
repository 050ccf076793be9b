//! `alert-reconciler`: see `--help`, and docs/runbooks/alert-reconciler.md.

use std::process::ExitCode;

use alert_reconciler::{App, Cli, Config, check_config};
use clap::Parser;
use steadfast_service_kit::{EXIT_INVALID_CONFIG, install_crypto_provider, shutdown};

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    install_crypto_provider();
    let checking = cli.common.check_config;
    let telemetry = cli.common.telemetry("alert-reconciler");
    let config = Config::from_cli(cli);
    let (config, telemetry) = match (config, telemetry) {
        (Ok(config), Ok(telemetry)) => (config, telemetry),
        (Err(error), _) => return invalid(&error.to_string()),
        (_, Err(error)) => return invalid(&error.to_string()),
    };
    if checking {
        return match check_config(&config) {
            Ok(summary) => {
                println!("configuration OK\n{summary}");
                ExitCode::SUCCESS
            }
            Err(error) => invalid(&error),
        };
    }
    let guard = match steadfast_telemetry::init(&telemetry) {
        Ok(guard) => guard,
        Err(error) => return invalid(&error.to_string()),
    };
    let result = match App::build(config).await {
        Ok(app) => app.run(shutdown::on_signals()).await,
        Err(error) => Err(error),
    };
    if let Err(error) = &result {
        tracing::error!(%error, "alert-reconciler failed");
    }
    guard.shutdown().await;
    if result.is_ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn invalid(reason: &str) -> ExitCode {
    eprintln!("invalid configuration: {reason}");
    ExitCode::from(EXIT_INVALID_CONFIG)
}

use std::process::ExitCode;

use clap::Parser;
use fleet_api::{App, Cli, Command, Config};
use steadfast_service_kit::{EXIT_INVALID_CONFIG, install_crypto_provider, shutdown};

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
    let telemetry = match cli.common.telemetry("fleet-api") {
        Ok(telemetry) => telemetry,
        Err(error) => {
            eprintln!("invalid configuration: {error}");
            return Ok(ExitCode::from(EXIT_INVALID_CONFIG));
        }
    };
    if cli.common.check_config {
        println!("configuration OK");
        return Ok(ExitCode::SUCCESS);
    }
    let guard = steadfast_telemetry::init(&telemetry)?;
    match cli.command {
        Some(Command::Seed {
            clusters,
            shards,
            prefix,
            reconciled_ago,
        }) => {
            let pool = fleet_api::store::connect(&config.database_url, 2).await?;
            let reconciled_at = reconciled_ago.map(|ago| chrono::Utc::now() - ago);
            let inserted = fleet_api::store::seed_clusters(
                &pool,
                &prefix,
                clusters,
                shards,
                reconciled_at,
                &config.required.cluster,
            )
            .await?;
            println!("inserted {inserted} clusters");
        }
        Some(Command::Serve) | None => {
            App::build(config)
                .await?
                .run(shutdown::on_signals())
                .await?;
        }
    }
    guard.shutdown().await;
    Ok(ExitCode::SUCCESS)
}

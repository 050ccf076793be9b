//! `fleet-api`: the HyperFleet API stand-in; see `fleet-api --help`.

use std::process::ExitCode;

use clap::Parser;
use fleet_api::{App, Cli, Command, Config};
use steadfast_service_kit::install_crypto_provider;
use steadfast_service_kit::process::{config_ok, invalid_config, run_until_signalled};

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    install_crypto_provider();
    let config = match Config::from_cli(&cli) {
        Ok(config) => config,
        Err(error) => return invalid_config(error),
    };
    let telemetry = match cli.common.telemetry("fleet-api") {
        Ok(telemetry) => telemetry,
        Err(error) => return invalid_config(error),
    };
    if cli.common.check_config {
        return config_ok("");
    }
    match cli.command {
        Some(Command::Seed {
            clusters,
            shards,
            prefix,
            reconciled_ago,
        }) => match seed(&config, clusters, shards, &prefix, reconciled_ago).await {
            Ok(inserted) => {
                println!("inserted {inserted} clusters");
                ExitCode::SUCCESS
            }
            Err(error) => {
                eprintln!("error: {error:#}");
                ExitCode::FAILURE
            }
        },
        Some(Command::Serve) | None => {
            run_until_signalled("fleet-api", &telemetry, |shutdown| async move {
                App::build(config).await?.run(shutdown).await
            })
            .await
        }
    }
}

async fn seed(
    config: &Config,
    clusters: u32,
    shards: u32,
    prefix: &str,
    reconciled_ago: Option<std::time::Duration>,
) -> anyhow::Result<u64> {
    let pool = fleet_api::store::connect(&config.database_url, 2).await?;
    let reconciled_at = reconciled_ago.map(|ago| chrono::Utc::now() - ago);
    let inserted = fleet_api::store::seed_clusters(
        &pool,
        prefix,
        clusters,
        shards,
        reconciled_at,
        &config.required.cluster,
    )
    .await?;
    Ok(inserted)
}

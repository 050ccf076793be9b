//! `pipeline-herder serve --config FILE` runs the service; `pipeline-herder check --config
//! FILE --job-url URL [--json]` dry-runs the matchers against one job. See `--help`.

use std::process::ExitCode;

use clap::Parser;
use pipeline_herder::cli::{CheckArgs, Cli, Command, ServeArgs};
use pipeline_herder::{App, Config, HerderSettings, check};
use steadfast_service_kit::install_crypto_provider;
use steadfast_service_kit::process::{config_ok, invalid_config, run_until_signalled};

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    install_crypto_provider();
    match cli.command {
        Command::Serve(args) => serve(args).await,
        Command::Check(args) => dry_run(args).await,
    }
}

async fn serve(args: Box<ServeArgs>) -> ExitCode {
    let config = match Config::from_args(&args) {
        Ok(config) => config,
        Err(error) => return invalid_config(error),
    };
    for warning in config.herder.matchers.warnings() {
        eprintln!("warning: {warning}");
    }
    let telemetry = match args.common.telemetry(pipeline_herder::SERVICE) {
        Ok(telemetry) => telemetry,
        Err(error) => return invalid_config(error),
    };
    if args.common.check_config {
        return config_ok(config.summary());
    }
    run_until_signalled(
        pipeline_herder::SERVICE,
        &telemetry,
        |shutdown| async move { App::build(config).await?.run(shutdown).await },
    )
    .await
}

async fn dry_run(args: CheckArgs) -> ExitCode {
    let settings = match HerderSettings::load(&args.config, &|name| std::env::var(name).ok()) {
        Ok(settings) => settings,
        Err(error) => return invalid_config(error),
    };
    match check::check(&settings, &args.job_url).await {
        Ok(report) if args.json => {
            println!(
                "{}",
                serde_json::to_string_pretty(&report).expect("report serialises")
            );
            ExitCode::SUCCESS
        }
        Ok(report) => {
            print!("{}", check::render_text(&report));
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("check failed: {error}");
            ExitCode::FAILURE
        }
    }
}

//! `pipeline-herder serve --config FILE` runs the service; `pipeline-herder check --config
//! FILE --job-url URL [--json]` dry-runs the matchers against one job. See `--help`.

use std::process::ExitCode;

use clap::Parser;
use pipeline_herder::cli::{CheckArgs, Cli, Command, ServeArgs};
use pipeline_herder::{App, Config, HerderSettings, check};
use steadfast_service_kit::{EXIT_INVALID_CONFIG, install_crypto_provider, shutdown};

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
        Err(error) => return invalid(error),
    };
    for warning in config.herder.matchers.warnings() {
        eprintln!("warning: {warning}");
    }
    if args.common.check_config {
        println!("configuration OK: {}", config.summary());
        return ExitCode::SUCCESS;
    }
    let telemetry = args
        .common
        .telemetry(pipeline_herder::SERVICE)
        .expect("validated above");
    let guard = match steadfast_telemetry::init(&telemetry) {
        Ok(guard) => guard,
        Err(error) => return invalid(error),
    };
    let result = match App::build(config).await {
        Ok(app) => app.run(shutdown::on_signals()).await,
        Err(error) => Err(error),
    };
    if let Err(error) = &result {
        tracing::error!(%error, "pipeline-herder failed");
    }
    guard.shutdown().await;
    if result.is_ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

async fn dry_run(args: CheckArgs) -> ExitCode {
    let settings = match HerderSettings::load(&args.config, &|name| std::env::var(name).ok()) {
        Ok(settings) => settings,
        Err(error) => return invalid(error),
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

fn invalid(error: impl std::fmt::Display) -> ExitCode {
    eprintln!("invalid configuration: {error}");
    ExitCode::from(EXIT_INVALID_CONFIG)
}

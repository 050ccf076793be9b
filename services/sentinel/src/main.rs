//! `sentinel`: HyperFleet-compatible poller; see `sentinel --help`.

use std::process::ExitCode;

use clap::Parser;
use sentinel::{App, Cli, Command, Config};
use steadfast_service_kit::install_crypto_provider;
use steadfast_service_kit::process::{config_ok, invalid_config, run_until_signalled};

#[tokio::main]
async fn main() -> ExitCode {
    let (args, serve) = match Cli::parse().command {
        Command::Version => {
            println!("sentinel {}", env!("CARGO_PKG_VERSION"));
            return ExitCode::SUCCESS;
        }
        Command::ConfigDump(args) => (args, false),
        Command::Serve(args) => (args, true),
    };
    install_crypto_provider();
    let config = match Config::from_args(&args) {
        Ok(config) => config,
        Err(error) => return invalid_config(error),
    };
    if !serve {
        print!("{}", config.dump());
        return ExitCode::SUCCESS;
    }
    let telemetry = match sentinel::config::telemetry(&args, &config) {
        Ok(telemetry) => telemetry,
        Err(error) => return invalid_config(error),
    };
    if let Err(error) = config.validate_for_serve() {
        return invalid_config(error);
    }
    if args.common.check_config {
        return config_ok("");
    }
    run_until_signalled("sentinel", &telemetry, |shutdown| async move {
        if config.debug_config {
            tracing::info!(config = %config.dump(), "merged configuration");
        }
        App::build(config).await?.run(shutdown).await
    })
    .await
}

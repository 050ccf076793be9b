//! The command line: `serve` and `check`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use steadfast_service_kit::host::Launch;
use steadfast_service_kit::process::invalid_config;
use steadfast_service_kit::settings::CommonArgs;

use crate::config::{Config, HerderSettings};

#[derive(Debug, Parser)]
#[command(
    name = "pipeline-herder",
    version,
    about = "Retries GitLab CI jobs that failed for known transient reasons, after increasing delays."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Consume GitLab Job Hook events and act on the failed jobs the matchers recognise.
    Serve(Box<ServeArgs>),
    /// Evaluate every matcher against one job through the GitLab API and print what the
    /// herder would do. Changes nothing.
    Check(CheckArgs),
}

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub common: CommonArgs,

    /// The herder's YAML config: gitlab_instances and matchers (or matchers_file).
    #[arg(long, env = "HERDER_CONFIG")]
    pub config: PathBuf,

    /// Also post every decision to this chat bot endpoint (JSON `{"message": ...}`).
    #[arg(long, env = "CHATBOT_URL")]
    pub chatbot_url: Option<String>,

    /// Bearer token for POST /api/pause, /api/resume and GET /api/decisions; unset disables them.
    #[arg(long, env = "HERDER_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,
}

#[derive(Debug, Clone, Args)]
pub struct CheckArgs {
    /// The herder's YAML config (for the GitLab instances and the matchers).
    #[arg(long, env = "HERDER_CONFIG")]
    pub config: PathBuf,

    /// The job's page, e.g. https://gitlab.com/group/project/-/jobs/123.
    #[arg(long)]
    pub job_url: String,

    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

impl ServeArgs {
    /// The configuration for the service host; matcher warnings go to stderr first, so
    /// `--check-config` shows them too.
    pub fn launch(&self) -> Result<Launch<Config>, impl std::fmt::Display + use<>> {
        let config = Config::from_args(self);
        if let Ok(config) = &config {
            for warning in config.herder.matchers.warnings() {
                eprintln!("warning: {warning}");
            }
        }
        Launch::load(config, &self.common)
    }
}

impl CheckArgs {
    /// `pipeline-herder check`: what the herder would do with one job, as text or JSON.
    pub async fn run(&self) -> ExitCode {
        let env = |name: &str| std::env::var(name).ok();
        let settings = match HerderSettings::load(&self.config, &env) {
            Ok(settings) => settings,
            Err(error) => return invalid_config(error),
        };
        match crate::check::check(&settings, &self.job_url).await {
            Ok(report) if self.json => {
                let json = serde_json::to_string_pretty(&report).expect("report serialises");
                println!("{json}");
                ExitCode::SUCCESS
            }
            Ok(report) => {
                print!("{}", crate::check::render_text(&report));
                ExitCode::SUCCESS
            }
            Err(error) => {
                eprintln!("check failed: {error}");
                ExitCode::FAILURE
            }
        }
    }
}

//! `steadfast-recipe`: what a shell recipe needs, so it never writes Redis code.
//!
//! ```sh
//! pod=$(steadfast-recipe get alerts.0.labels.pod)
//! steadfast-recipe report --status successful \
//!     --analysis "pod $pod restarted 7 times in 10 minutes (OOMKilled)" \
//!     --action restart-pod --action-data "restart-pod={\"pod\":\"$pod\"}" \
//!     --link "https://grafana.example.com/d/pods?var-pod=$pod"
//! ```
//!
//! Everything about the run comes from the environment the executor sets (`STEADFAST_RECIPE`,
//! `STEADFAST_DATA_FILE`, `STEADFAST_REDIS_ADDRESS`) or from Euphrosyne's flags, which a recipe
//! can pass through (`--data-file-path`, `--redis-address`, `--aggregator-address`). The result
//! goes to the channel named by the data file's `uuid`, as Euphrosyne's SDK sends it, with a
//! durable copy so a reconciler restarting meanwhile still sees it.

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use serde_json::Value;

use crate::results::message::{Link, ResultBody, ResultStatus, SuggestedAction};
use crate::results::{self, RecipeResult};

#[derive(Debug, Parser)]
#[command(
    name = "steadfast-recipe",
    version,
    about = "Report a recipe's result to the alert-reconciler, or read its alert data."
)]
pub struct RecipeCli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Publish this recipe's result (Euphrosyne's message) on the run's channel.
    Report(Box<ReportArgs>),
    /// Print a value of the data file: a dotted path such as `alerts.0.labels.pod`
    /// (strings raw, anything else as JSON; empty path for the whole file).
    Get(GetArgs),
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The data file (the executor sets STEADFAST_DATA_FILE).
    #[arg(
        long = "data-file-path",
        env = "STEADFAST_DATA_FILE",
        value_name = "FILE"
    )]
    pub data_file: PathBuf,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    #[command(flatten)]
    pub run: RunArgs,

    /// successful, failed or unknown.
    #[arg(long, value_parser = ["successful", "failed", "unknown"])]
    pub status: String,

    /// The analysis text.
    #[arg(long, conflicts_with = "analysis_file")]
    pub analysis: Option<String>,

    /// Read the analysis from a file (`-` for standard input).
    #[arg(long, value_name = "FILE")]
    pub analysis_file: Option<PathBuf>,

    /// A suggested action (an action recipe's name); repeat for several.
    #[arg(long = "action", value_name = "NAME")]
    pub actions: Vec<String>,

    /// Parameters of a suggested action: NAME=JSON-object.
    #[arg(long = "action-data", value_name = "NAME=JSON")]
    pub action_data: Vec<String>,

    /// A useful link; repeat for several.
    #[arg(long = "link", value_name = "URL")]
    pub links: Vec<String>,

    /// Structured output (any JSON).
    #[arg(long, value_name = "JSON")]
    pub json: Option<String>,

    /// The recipe's name (the executor sets STEADFAST_RECIPE).
    #[arg(long, env = "STEADFAST_RECIPE")]
    pub name: String,

    /// Redis: host:port or a redis:// URL (the executor sets STEADFAST_REDIS_ADDRESS).
    #[arg(long, env = "STEADFAST_REDIS_ADDRESS", value_name = "ADDR")]
    pub redis_address: String,

    /// Accepted for Euphrosyne compatibility; unused.
    #[arg(long, hide = true)]
    pub aggregator_address: Option<String>,
}

#[derive(Debug, Args)]
pub struct GetArgs {
    #[command(flatten)]
    pub run: RunArgs,

    /// Dotted path; array elements by index.
    #[arg(default_value = "")]
    pub path: String,
}

/// The whole command, for the thin binary.
pub fn main() -> ExitCode {
    let cli = RecipeCli::parse();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a Tokio runtime");
    match runtime.block_on(execute(cli.command)) {
        Ok(output) => {
            if !output.is_empty() {
                println!("{output}");
            }
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("steadfast-recipe: {error}");
            ExitCode::FAILURE
        }
    }
}

/// Runs a command; returns what to print.
/// Why a `steadfast-recipe` command failed; printed after `steadfast-recipe: `.
#[derive(Debug, thiserror::Error)]
pub enum RecipeCliError {
    #[error("cannot read the data file {}: {source}", path.display())]
    ReadData {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the data file {} is not JSON: {source}", path.display())]
    DataNotJson {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("{} has no `uuid`: is it a recipe data file?", path.display())]
    NoRunId { path: PathBuf },
    #[error("no `{key}` in {}", path.display())]
    NoSuchKey { key: String, path: PathBuf },
    #[error("cannot read the analysis from standard input: {0}")]
    ReadAnalysisStdin(#[source] std::io::Error),
    #[error("cannot read the analysis from {}: {source}", path.display())]
    ReadAnalysis {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("--action-data `{item}` is not NAME=JSON")]
    ActionDataNotPair { item: String },
    #[error("--action-data for `{action}` is not JSON: {source}")]
    ActionDataNotJson {
        action: String,
        source: serde_json::Error,
    },
    #[error("--action-data for `{action}` must be a JSON object")]
    ActionDataNotObject { action: String },
    #[error("--json is not JSON: {0}")]
    JsonNotJson(#[source] serde_json::Error),
    #[error("cannot publish to Redis at {address}: {source}")]
    Publish {
        address: String,
        source: redis::RedisError,
    },
}

pub async fn execute(command: Command) -> Result<String, RecipeCliError> {
    match command {
        Command::Get(args) => {
            let data = read_data(&args.run)?;
            let value = lookup(&data, &args.path).ok_or_else(|| RecipeCliError::NoSuchKey {
                key: args.path.clone(),
                path: args.run.data_file.clone(),
            })?;
            Ok(match value {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
        }
        Command::Report(args) => {
            let result = build_result(&args)?;
            let url = redis_url(&args.redis_address);
            let listeners = results::publish(&url, &result).await.map_err(|source| {
                RecipeCliError::Publish {
                    address: args.redis_address.clone(),
                    source,
                }
            })?;
            eprintln!(
                "steadfast-recipe: reported {} for `{}` on run {} ({listeners} listening)",
                args.status, result.name, result.incident
            );
            Ok(String::new())
        }
    }
}

/// The result message `args` describe.
pub fn build_result(args: &ReportArgs) -> Result<RecipeResult, RecipeCliError> {
    let data = read_data(&args.run)?;
    let channel = data
        .get("uuid")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| RecipeCliError::NoRunId {
            path: args.run.data_file.clone(),
        })?;
    let status = match args.status.as_str() {
        "successful" => ResultStatus::Successful,
        "failed" => ResultStatus::Failed,
        _ => ResultStatus::Unknown,
    };
    let analysis = match (&args.analysis, &args.analysis_file) {
        (Some(text), _) => text.clone(),
        (None, Some(path)) if path.as_os_str() == "-" => {
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .map_err(RecipeCliError::ReadAnalysisStdin)?;
            text
        }
        (None, Some(path)) => {
            std::fs::read_to_string(path).map_err(|source| RecipeCliError::ReadAnalysis {
                path: path.clone(),
                source,
            })?
        }
        (None, None) => String::new(),
    };
    let mut actions: Vec<SuggestedAction> = args
        .actions
        .iter()
        .map(|name| SuggestedAction {
            name: name.clone(),
            data: Value::Object(Default::default()),
        })
        .collect();
    for item in &args.action_data {
        let (name, json) = item
            .split_once('=')
            .ok_or_else(|| RecipeCliError::ActionDataNotPair { item: item.clone() })?;
        let data: Value =
            serde_json::from_str(json).map_err(|source| RecipeCliError::ActionDataNotJson {
                action: name.to_owned(),
                source,
            })?;
        if !data.is_object() {
            return Err(RecipeCliError::ActionDataNotObject {
                action: name.to_owned(),
            });
        }
        match actions.iter_mut().find(|a| a.name == name) {
            Some(action) => action.data = data,
            None => actions.push(SuggestedAction {
                name: name.to_owned(),
                data,
            }),
        }
    }
    let json = match &args.json {
        Some(text) => serde_json::from_str(text).map_err(RecipeCliError::JsonNotJson)?,
        None => Value::String(String::new()),
    };
    Ok(RecipeResult {
        incident: channel,
        name: args.name.clone(),
        status,
        results: ResultBody {
            actions,
            analysis,
            json,
            links: args
                .links
                .iter()
                .map(|url| Link {
                    url: url.clone(),
                    title: None,
                })
                .collect(),
        },
    })
}

fn read_data(run: &RunArgs) -> Result<Value, RecipeCliError> {
    let text =
        std::fs::read_to_string(&run.data_file).map_err(|source| RecipeCliError::ReadData {
            path: run.data_file.clone(),
            source,
        })?;
    serde_json::from_str(&text).map_err(|source| RecipeCliError::DataNotJson {
        path: run.data_file.clone(),
        source,
    })
}

/// `host:port` (Euphrosyne's form) or a full URL.
pub fn redis_url(address: &str) -> String {
    if address.contains("://") {
        address.to_owned()
    } else {
        format!("redis://{address}/")
    }
}

/// Follows a dotted path through objects and arrays.
pub fn lookup<'a>(data: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.')
        .filter(|segment| !segment.is_empty())
        .try_fold(data, |value, segment| match value {
            Value::Object(map) => map.get(segment),
            Value::Array(items) => segment.parse::<usize>().ok().and_then(|i| items.get(i)),
            _ => None,
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn dotted_paths() {
        let data = json!({"alerts": [{"labels": {"pod": "web-1"}}], "uuid": "u"});
        assert_eq!(lookup(&data, "alerts.0.labels.pod"), Some(&json!("web-1")));
        assert_eq!(lookup(&data, ""), Some(&data));
        assert_eq!(lookup(&data, "alerts.1"), None);
        assert_eq!(lookup(&data, "uuid.x"), None);
    }

    #[test]
    fn builds_euphrosynes_message() {
        let dir = std::env::temp_dir().join(format!("recipe-cli-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("data.json");
        std::fs::write(&file, r#"{"uuid": "run-1", "alerts": []}"#).unwrap();
        let cli = RecipeCli::try_parse_from([
            "steadfast-recipe",
            "report",
            "--data-file-path",
            file.to_str().unwrap(),
            "--status",
            "successful",
            "--analysis",
            "disk full",
            "--action",
            "jira",
            "--action-data",
            r#"restart-pod={"pod":"p"}"#,
            "--link",
            "http://x",
            "--name",
            "disk",
            "--redis-address",
            "localhost:6379",
        ])
        .unwrap();
        let Command::Report(args) = cli.command else {
            panic!("report")
        };
        let result = build_result(&args).unwrap();
        assert_eq!(
            serde_json::to_value(&result).unwrap(),
            json!({"incident": "run-1", "name": "disk", "status": "successful",
                   "results": {"actions": [{"name": "jira", "data": {}}, {"name": "restart-pod", "data": {"pod": "p"}}],
                               "analysis": "disk full", "json": "", "links": [{"url": "http://x"}]}})
        );
        // Bad input is named.
        let cli = RecipeCli::try_parse_from([
            "steadfast-recipe",
            "report",
            "--data-file-path",
            file.to_str().unwrap(),
            "--status",
            "failed",
            "--action-data",
            "x=[1]",
            "--name",
            "d",
            "--redis-address",
            "r:1",
        ])
        .unwrap();
        let Command::Report(args) = cli.command else {
            panic!("report")
        };
        assert_eq!(
            build_result(&args).unwrap_err().to_string(),
            "--action-data for `x` must be a JSON object"
        );
        assert!(
            RecipeCli::try_parse_from(["steadfast-recipe", "report", "--status", "done"]).is_err()
        );
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn redis_addresses() {
        assert_eq!(
            redis_url("redis.default.svc:80"),
            "redis://redis.default.svc:80/"
        );
        assert_eq!(redis_url("redis://:pw@r:6379/0"), "redis://:pw@r:6379/0");
    }
}

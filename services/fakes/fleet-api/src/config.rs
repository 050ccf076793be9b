//! Settings: from the command line and environment ([`crate::cli`]), and the optional YAML
//! file naming the required adapters per kind.
//!
//! Required adapters come from `HYPERFLEET_CLUSTER_ADAPTERS` / `HYPERFLEET_NODEPOOL_ADAPTERS`
//! (comma-separated, HyperFleet's older form) or from the YAML file's
//! `entities[].required_adapters` (the current form); the environment wins.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;
use steadfast_service_kit::config::load_yaml_file;

pub use crate::cli::{Cli, Command};

pub const DEFAULT_HTTP_LISTEN: &str = "0.0.0.0:8000";

/// Settings that cannot be used. `setting` names where the value came from: an environment
/// variable, or the file and the entity kind.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(transparent)]
    File(#[from] steadfast_service_kit::config::ConfigError),
    #[error("DATABASE_URL is required")]
    DatabaseUrlMissing,
    #[error("FLEET_API_MAX_BODY_BYTES must be at least 1024")]
    BodyLimitTooSmall,
    #[error("{setting}: adapter `{name}` is listed twice")]
    AdapterListedTwice { setting: String, name: String },
    #[error("{setting}: adapter name `{name}` may only contain letters, digits, `-` and `_`")]
    BadAdapterName { setting: String, name: String },
    #[error("{file}: unknown entity kind `{kind}` (this stand-in serves Cluster and NodePool)")]
    UnknownEntityKind { file: String, kind: String },
}

/// The required adapters of each kind.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequiredAdapters {
    pub cluster: Vec<String>,
    pub nodepool: Vec<String>,
}

/// Everything the service needs.
#[derive(Debug, Clone)]
pub struct Config {
    pub http_listen: SocketAddr,
    pub metrics_listen: SocketAddr,
    pub database_url: String,
    pub required: RequiredAdapters,
    pub api_token: Option<String>,
    pub max_body_bytes: usize,
    pub shutdown_timeout: Duration,
    pub max_connections: u32,
}

impl Config {
    /// For tests and embedding: loopback on ephemeral ports, no required adapters, no token.
    pub fn local(database_url: &str) -> Self {
        Self {
            http_listen: "127.0.0.1:0".parse().expect("valid address"),
            metrics_listen: "127.0.0.1:0".parse().expect("valid address"),
            database_url: database_url.to_owned(),
            required: RequiredAdapters::default(),
            api_token: None,
            max_body_bytes: 1024 * 1024,
            shutdown_timeout: Duration::from_secs(5),
            max_connections: 8,
        }
    }

    /// The same, with these required adapters.
    #[must_use]
    pub fn with_required_adapters(mut self, cluster: &[&str], nodepool: &[&str]) -> Self {
        self.required = RequiredAdapters {
            cluster: cluster.iter().map(|s| (*s).to_owned()).collect(),
            nodepool: nodepool.iter().map(|s| (*s).to_owned()).collect(),
        };
        self
    }

    /// From the command line and environment (and the YAML file they name).
    pub fn from_cli(cli: &Cli) -> Result<Self, ConfigError> {
        let database_url = cli
            .common
            .database_url
            .clone()
            .filter(|u| !u.trim().is_empty())
            .ok_or(ConfigError::DatabaseUrlMissing)?;
        let mut required = match &cli.config {
            Some(path) => load_entities(path)?,
            None => RequiredAdapters::default(),
        };
        if let Some(list) = &cli.cluster_adapters {
            required.cluster = parse_adapter_list("HYPERFLEET_CLUSTER_ADAPTERS", list)?;
        }
        if let Some(list) = &cli.nodepool_adapters {
            required.nodepool = parse_adapter_list("HYPERFLEET_NODEPOOL_ADAPTERS", list)?;
        }
        if cli.max_body_bytes < 1024 {
            return Err(ConfigError::BodyLimitTooSmall);
        }
        Ok(Self {
            http_listen: cli.common.http_listen_or(DEFAULT_HTTP_LISTEN),
            metrics_listen: cli.common.metrics_listen,
            database_url,
            required,
            api_token: cli.api_token.clone().filter(|t| !t.is_empty()),
            max_body_bytes: cli.max_body_bytes,
            shutdown_timeout: cli.common.shutdown_timeout,
            max_connections: 16,
        })
    }
}

/// `a, b,c` → `["a", "b", "c"]`; names are letters, digits, `-` and `_`, each once.
pub fn parse_adapter_list(source: &str, list: &str) -> Result<Vec<String>, ConfigError> {
    let mut names: Vec<String> = Vec::new();
    for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        check_adapter_name(source, name)?;
        if names.iter().any(|n| n == name) {
            return Err(ConfigError::AdapterListedTwice {
                setting: source.to_owned(),
                name: name.to_owned(),
            });
        }
        names.push(name.to_owned());
    }
    Ok(names)
}

fn check_adapter_name(source: &str, name: &str) -> Result<(), ConfigError> {
    if name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        Ok(())
    } else {
        Err(ConfigError::BadAdapterName {
            setting: source.to_owned(),
            name: name.to_owned(),
        })
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EntitiesFile {
    entities: Vec<Entity>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Entity {
    kind: String,
    #[serde(default)]
    required_adapters: Vec<String>,
}

fn load_entities(path: &Path) -> Result<RequiredAdapters, ConfigError> {
    let file: EntitiesFile = load_yaml_file(path)?;
    let mut required = RequiredAdapters::default();
    let source = path.display().to_string();
    for entity in file.entities {
        let joined = entity.required_adapters.join(",");
        let names = parse_adapter_list(&format!("{source}: {}", entity.kind), &joined)?;
        match entity.kind.as_str() {
            "Cluster" => required.cluster = names,
            "NodePool" => required.nodepool = names,
            other => {
                return Err(ConfigError::UnknownEntityKind {
                    file: source,
                    kind: other.to_owned(),
                });
            }
        }
    }
    Ok(required)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[test]
    fn adapter_lists_parse_and_bad_names_are_named() {
        assert_eq!(
            parse_adapter_list("X", " validator, dns-check ,").unwrap(),
            ["validator", "dns-check"]
        );
        assert_eq!(
            parse_adapter_list("HYPERFLEET_CLUSTER_ADAPTERS", "a b")
                .unwrap_err()
                .to_string(),
            "HYPERFLEET_CLUSTER_ADAPTERS: adapter name `a b` may only contain letters, digits, `-` and `_`"
        );
        assert!(
            parse_adapter_list("X", "a,a")
                .unwrap_err()
                .to_string()
                .contains("twice")
        );
    }

    #[test]
    fn environment_list_overrides_the_file_and_defaults_hold() {
        let dir = std::env::temp_dir().join(format!("fleet-api-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("entities.yaml");
        std::fs::write(
            &path,
            "entities:\n  - kind: Cluster\n    required_adapters: [a1, a2]\n  - kind: NodePool\n    required_adapters: [n1]\n",
        )
        .unwrap();
        let cli = Cli::try_parse_from([
            "fleet-api",
            "--database-url",
            "postgres://x/y",
            "--config",
            path.to_str().unwrap(),
            "--cluster-adapters",
            "only",
        ])
        .unwrap();
        let config = Config::from_cli(&cli).unwrap();
        assert_eq!(config.required.cluster, ["only"]);
        assert_eq!(config.required.nodepool, ["n1"]);
        assert_eq!(config.http_listen.to_string(), DEFAULT_HTTP_LISTEN);
        std::fs::write(&path, "entities:\n  - kind: Widget\n").unwrap();
        let err = Config::from_cli(&cli).unwrap_err().to_string();
        assert!(err.contains("unknown entity kind `Widget`"), "{err}");
        std::fs::write(&path, "entitys: []\n").unwrap();
        let err = Config::from_cli(&cli).unwrap_err().to_string();
        assert!(err.contains("unknown field `entitys`"), "{err}");
        std::fs::remove_dir_all(dir).unwrap();
    }
}

//! Where recipes come from and where they run: the recipe registry, the executor, and the
//! Kubernetes API the reconciler talks to.

use std::path::PathBuf;
use std::time::Duration;

use url::Url;

use super::{ConfigError, check_dns_name};
use crate::cli::{Cli, ExecutorKind};

/// Euphrosyne's fixed name for the recipe registry ConfigMap.
pub const DEFAULT_RECIPES_CONFIGMAP: &str = "orpheus-operator-recipes";

/// Where the recipe registry comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecipeSource {
    File(PathBuf),
    ConfigMap { namespace: String, name: String },
}

/// How the reconciler reaches the Kubernetes API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KubeTarget {
    /// In-cluster service account, else `~/.kube/config`.
    Infer,
    /// A kubeconfig file.
    Kubeconfig(PathBuf),
    /// A plain URL without credentials.
    Url(Url),
}

#[derive(Debug, Clone)]
pub enum ExecutorConfig {
    Local {
        work_dir: PathBuf,
    },
    Kubernetes {
        namespace: String,
        job_ttl: Duration,
    },
}

/// The recipe registry the flags name; in a cluster, Euphrosyne's ConfigMap by default.
pub(super) fn recipe_source(
    cli: &Cli,
    reconciler_namespace: &str,
    cluster_configured: bool,
) -> Result<RecipeSource, ConfigError> {
    let recipes = match (&cli.recipes, &cli.recipes_configmap) {
        (Some(_), Some(_)) => return Err(ConfigError::BothRecipeSources),
        (Some(path), None) => RecipeSource::File(path.clone()),
        (None, Some(name)) => RecipeSource::ConfigMap {
            namespace: reconciler_namespace.to_owned(),
            name: name.clone(),
        },
        (None, None) if cluster_configured => RecipeSource::ConfigMap {
            namespace: reconciler_namespace.to_owned(),
            name: DEFAULT_RECIPES_CONFIGMAP.into(),
        },
        (None, None) => return Err(ConfigError::NoRecipeSource),
    };
    if let RecipeSource::ConfigMap { name, .. } = &recipes {
        check_dns_name("--recipes-configmap", name)?;
    }
    Ok(recipes)
}

/// The executor of `kind`, with its working directory or namespace.
pub(super) fn executor_config(
    cli: &Cli,
    kind: ExecutorKind,
    reconciler_namespace: &str,
) -> Result<ExecutorConfig, ConfigError> {
    Ok(match kind {
        ExecutorKind::Local => ExecutorConfig::Local {
            // Absolute: recipes run inside their run directory, so a relative data-file
            // path would not resolve from there.
            work_dir: cli
                .work_dir
                .clone()
                .map(|dir| std::path::absolute(&dir).unwrap_or(dir))
                .unwrap_or_else(|| std::env::temp_dir().join("alert-reconciler")),
        },
        ExecutorKind::Kubernetes => {
            let namespace = cli
                .recipe_namespace
                .clone()
                .unwrap_or_else(|| reconciler_namespace.to_owned());
            check_dns_name("--recipe-namespace", &namespace)?;
            ExecutorConfig::Kubernetes {
                namespace,
                job_ttl: cli.recipe_job_ttl,
            }
        }
    })
}

/// The Kubernetes API: a plain URL, a kubeconfig file, or inferred.
pub(super) fn kube_target(cli: &Cli) -> Result<KubeTarget, ConfigError> {
    Ok(match (&cli.kube_api_url, &cli.kubeconfig) {
        (Some(_), Some(_)) => return Err(ConfigError::BothKubeTargets),
        (Some(url), None) => KubeTarget::Url(url.clone()),
        (None, Some(path)) => KubeTarget::Kubeconfig(path.clone()),
        (None, None) => KubeTarget::Infer,
    })
}

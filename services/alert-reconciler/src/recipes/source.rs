//! Where the registry is read from, and keeping the last good set in force.
//!
//! The registry is checked every `--recipes-reload-interval`: a file when its bytes change, a
//! ConfigMap when its `resourceVersion` does. A valid new version replaces the set at once; an
//! invalid one is logged with its precise error, counted, shown on `GET /api/recipes`, and
//! ignored — the previous set stays in force, so a typo in a hot edit never stops remediation.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use chrono::{DateTime, Utc};
use k8s_openapi::api::core::v1::ConfigMap;
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use super::spec::{RecipeError, RecipeSet};
use crate::config::RecipeSource;
use crate::metrics::Metrics;

/// What `GET /api/recipes` shows about the registry.
#[derive(Debug, Clone, Serialize)]
pub struct RegistryStatus {
    pub source: String,
    pub loaded_at: DateTime<Utc>,
    /// The version in force: a content hash for files, the resourceVersion for ConfigMaps.
    pub version: String,
    /// The newest version that was refused, and why.
    pub last_error: Option<RejectedVersion>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RejectedVersion {
    pub version: String,
    pub error: String,
    pub at: DateTime<Utc>,
}

/// The registry in force; clones share it.
#[derive(Clone)]
pub struct RecipeRegistry {
    inner: Arc<Inner>,
}

struct Inner {
    source: RecipeSource,
    kube: Option<kube::Client>,
    require_images: bool,
    current: RwLock<Arc<RecipeSet>>,
    status: RwLock<RegistryStatus>,
    metrics: Metrics,
}

impl RecipeRegistry {
    /// Loads the registry once; an invalid or unreadable registry fails start-up.
    /// `require_images` holds the registry to the Kubernetes executor's needs.
    pub async fn load(
        source: RecipeSource,
        kube: Option<kube::Client>,
        require_images: bool,
        metrics: Metrics,
    ) -> Result<Self, RecipeError> {
        let (text, version) = fetch(&source, kube.as_ref()).await?;
        let set = parse(&source, &text, require_images)?;
        let status = RegistryStatus {
            source: describe(&source),
            loaded_at: Utc::now(),
            version,
            last_error: None,
        };
        Ok(Self {
            inner: Arc::new(Inner {
                source,
                kube,
                require_images,
                current: RwLock::new(Arc::new(set)),
                status: RwLock::new(status),
                metrics,
            }),
        })
    }

    /// The set in force now.
    pub fn current(&self) -> Arc<RecipeSet> {
        self.inner
            .current
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    pub fn status(&self) -> RegistryStatus {
        self.inner
            .status
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Checks the source once; returns whether a new set was installed.
    pub async fn reload(&self) -> bool {
        let inner = &self.inner;
        let (text, version) = match fetch(&inner.source, inner.kube.as_ref()).await {
            Ok(fetched) => fetched,
            Err(error) => {
                self.reject("unreadable".into(), error.to_string());
                return false;
            }
        };
        {
            let mut status = inner
                .status
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if status.version == version {
                // Back to the version in force (e.g. a refused edit was reverted).
                status.last_error = None;
                return false;
            }
            if status
                .last_error
                .as_ref()
                .is_some_and(|r| r.version == version)
            {
                return false;
            }
        }
        match parse(&inner.source, &text, inner.require_images) {
            Ok(set) => {
                let (debugging, actions) = set.counts();
                *inner
                    .current
                    .write()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(set);
                let mut status = inner
                    .status
                    .write()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                status.version = version;
                status.loaded_at = Utc::now();
                status.last_error = None;
                inner
                    .metrics
                    .recipe_reloads
                    .with_label_values(&["loaded"])
                    .inc();
                tracing::info!(
                    source = %status.source,
                    debugging,
                    actions,
                    "recipe registry reloaded"
                );
                true
            }
            Err(error) => {
                self.reject(version, error.to_string());
                false
            }
        }
    }

    fn reject(&self, version: String, error: String) {
        let mut status = self
            .inner
            .status
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let repeated = status
            .last_error
            .as_ref()
            .is_some_and(|r| r.version == version && r.error == error);
        if !repeated {
            self.inner
                .metrics
                .recipe_reloads
                .with_label_values(&["rejected"])
                .inc();
            tracing::error!(
                source = %status.source,
                %error,
                "recipe registry refused; the last good set stays in force"
            );
        }
        status.last_error = Some(RejectedVersion {
            version,
            error,
            at: Utc::now(),
        });
    }

    /// Re-checks the source every `interval` until `shutdown`.
    pub async fn watch(self, interval: Duration, shutdown: CancellationToken) {
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticker.tick().await;
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                _ = ticker.tick() => { self.reload().await; }
            }
        }
    }
}

fn describe(source: &RecipeSource) -> String {
    match source {
        RecipeSource::File(path) => format!("file {}", path.display()),
        RecipeSource::ConfigMap { namespace, name } => format!("configmap {namespace}/{name}"),
    }
}

fn parse(
    source: &RecipeSource,
    text: &str,
    require_images: bool,
) -> Result<RecipeSet, RecipeError> {
    let base_dir = match source {
        RecipeSource::File(path) => path
            .parent()
            .map(|p| {
                if p.as_os_str().is_empty() {
                    ".".into()
                } else {
                    p.to_owned()
                }
            })
            .and_then(|p| std::fs::canonicalize(&p).ok().or(Some(p))),
        RecipeSource::ConfigMap { .. } => None,
    };
    let set = RecipeSet::parse(text, base_dir)
        .map_err(|e| RecipeError(format!("{}: {e}", describe(source))))?;
    if require_images {
        set.check_for_kubernetes()
            .map_err(|e| RecipeError(format!("{}: {e}", describe(source))))?;
    }
    Ok(set)
}

/// The registry text and a version string that changes when the text does.
async fn fetch(
    source: &RecipeSource,
    kube: Option<&kube::Client>,
) -> Result<(String, String), RecipeError> {
    match source {
        RecipeSource::File(path) => {
            let text = tokio::fs::read_to_string(path).await.map_err(|e| {
                RecipeError(format!(
                    "cannot read recipes file `{}`: {e}",
                    path.display()
                ))
            })?;
            let version =
                hex::encode(&<sha2::Sha256 as sha2::Digest>::digest(text.as_bytes())[..8]);
            Ok((text, version))
        }
        RecipeSource::ConfigMap { namespace, name } => {
            let client = kube.ok_or_else(|| {
                RecipeError("a ConfigMap registry needs a Kubernetes client".into())
            })?;
            let api: kube::Api<ConfigMap> = kube::Api::namespaced(client.clone(), namespace);
            let map = api.get(name).await.map_err(|e| {
                RecipeError(format!("cannot read ConfigMap {namespace}/{name}: {e}"))
            })?;
            let version = map.metadata.resource_version.clone().unwrap_or_default();
            // Re-assembled as a manifest so the parser sees exactly the ConfigMap's data.
            let manifest = serde_json::json!({
                "kind": "ConfigMap",
                "data": map.data.unwrap_or_default(),
            });
            let text = serde_json::to_string(&manifest)
                .map_err(|e| RecipeError(format!("ConfigMap {namespace}/{name}: {e}")))?;
            Ok((text, version))
        }
    }
}

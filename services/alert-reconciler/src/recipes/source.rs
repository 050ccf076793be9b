//! Where the registry is read from, and keeping the last good set in force.
//!
//! The registry is checked every `--recipes-reload-interval`: a file when its bytes change, a
//! ConfigMap when its `resourceVersion` does. A valid new version replaces the set at once; an
//! invalid one is logged with its precise error, counted, shown on `GET /api/recipes`, and
//! ignored — the previous set stays in force, so a typo in a hot edit never stops remediation.
//!
//! A file is acted on only once two checks in a row read the same new bytes: an editor or
//! `cp` writes in place (truncate, then write), and a check between the two would otherwise
//! refuse an empty registry, or install a half-written one. ConfigMaps change atomically.

use std::sync::{Arc, Mutex, RwLock};
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
    /// A new file version seen by the last check and not acted on yet.
    unsettled: Mutex<Option<String>>,
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
                unsettled: Mutex::new(None),
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
        if matches!(inner.source, RecipeSource::File(_)) && !self.settled(&version) {
            return false;
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

    /// Whether `version` was also what the previous check read; remembers it otherwise.
    fn settled(&self, version: &str) -> bool {
        let mut unsettled = self
            .inner
            .unsettled
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if unsettled.as_deref() == Some(version) {
            *unsettled = None;
            true
        } else {
            *unsettled = Some(version.to_owned());
            false
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
    let in_registry = |error| RecipeError::InRegistry {
        registry: describe(source),
        error: Box::new(error),
    };
    let set = RecipeSet::parse(text, base_dir).map_err(in_registry)?;
    if require_images {
        set.check_for_kubernetes().map_err(in_registry)?;
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
            let text =
                tokio::fs::read_to_string(path)
                    .await
                    .map_err(|source| RecipeError::ReadFile {
                        path: path.clone(),
                        source,
                    })?;
            let version =
                hex::encode(&<sha2::Sha256 as sha2::Digest>::digest(text.as_bytes())[..8]);
            Ok((text, version))
        }
        RecipeSource::ConfigMap { namespace, name } => {
            let client = kube.ok_or(RecipeError::NoKubeClient)?;
            let api: kube::Api<ConfigMap> = kube::Api::namespaced(client.clone(), namespace);
            let map = api
                .get(name)
                .await
                .map_err(|source| RecipeError::ReadConfigMap {
                    namespace: namespace.clone(),
                    name: name.clone(),
                    source: Box::new(source),
                })?;
            let version = map.metadata.resource_version.clone().unwrap_or_default();
            // Re-assembled as a manifest so the parser sees exactly the ConfigMap's data.
            let manifest = serde_json::json!({
                "kind": "ConfigMap",
                "data": map.data.unwrap_or_default(),
            });
            let text = serde_json::to_string(&manifest).map_err(|source| {
                RecipeError::EncodeConfigMap {
                    namespace: namespace.clone(),
                    name: name.clone(),
                    source,
                }
            })?;
            Ok((text, version))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recipes(name: &str) -> String {
        format!("debugging:\n  {name}:\n    entrypoint: ./{name}.sh\n")
    }

    async fn registry(dir: &std::path::Path) -> (RecipeRegistry, std::path::PathBuf) {
        let file = dir.join("recipes.yaml");
        std::fs::write(&file, recipes("first")).unwrap();
        let registry = RecipeRegistry::load(
            RecipeSource::File(file.clone()),
            None,
            false,
            Metrics::unregistered(),
        )
        .await
        .unwrap();
        (registry, file)
    }

    fn scratch_dir(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("recipes-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[tokio::test]
    async fn a_file_caught_mid_write_is_neither_refused_nor_installed() {
        let dir = scratch_dir("mid-write");
        let (registry, file) = registry(&dir).await;

        // Truncated, then written: one check lands in between.
        std::fs::write(&file, "").unwrap();
        assert!(!registry.reload().await);
        std::fs::write(&file, recipes("second")).unwrap();
        assert!(!registry.reload().await, "acted on after one sighting");
        assert!(
            registry.status().last_error.is_none(),
            "the empty file was reported"
        );
        assert!(registry.reload().await, "the settled version is installed");
        assert_eq!(registry.current().counts(), (1, 0));
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[tokio::test]
    async fn a_bad_version_that_stays_is_refused_on_the_second_check() {
        let dir = scratch_dir("bad-stays");
        let (registry, file) = registry(&dir).await;

        std::fs::write(
            &file,
            "debugging:\n  x:\n    entrypoint: ./x.sh\n    timeot: 5s\n",
        )
        .unwrap();
        assert!(!registry.reload().await);
        assert!(registry.status().last_error.is_none());
        assert!(!registry.reload().await);
        let refused = registry
            .status()
            .last_error
            .expect("refused on the second check");
        assert!(
            refused.error.contains("unknown field `timeot`"),
            "{}",
            refused.error
        );
        std::fs::remove_dir_all(dir).unwrap();
    }
}

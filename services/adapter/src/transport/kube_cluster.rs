//! A real API server through kube: dynamic objects, kinds resolved through discovery (cached),
//! a client-side rate limit (`qps`/`burst`, as client-go has).

use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use kube::api::{Api, DeleteParams, DynamicObject, ListParams, PostParams, PropagationPolicy};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::core::{ApiResource, GroupVersionKind};
use kube::discovery::Scope;
use serde_json::Value;
use steadfast_telemetry::trace;
use tokio::time::Instant;

use super::{ErrorClass, KubeError, ObjectRef, classify};

/// How to build the client.
#[derive(Debug, Clone, Default)]
pub struct KubeSettings {
    /// `None`: the in-cluster service account.
    pub kubeconfig: Option<std::path::PathBuf>,
    pub qps: Option<f64>,
    pub burst: Option<u32>,
    pub timeout: Option<Duration>,
}

/// Token bucket: `burst` requests at once, refilled at `qps` per second.
struct RateLimiter {
    qps: f64,
    burst: f64,
    state: tokio::sync::Mutex<(f64, Instant)>,
}

impl RateLimiter {
    async fn acquire(&self) {
        let mut state = self.state.lock().await;
        let (tokens, last) = *state;
        let now = Instant::now();
        let mut tokens =
            (tokens + now.duration_since(last).as_secs_f64() * self.qps).min(self.burst);
        if tokens < 1.0 {
            let wait = Duration::from_secs_f64((1.0 - tokens) / self.qps);
            tokio::time::sleep(wait).await;
            tokens = 1.0;
        }
        *state = (tokens - 1.0, Instant::now());
    }
}

pub struct KubeCluster {
    client: kube::Client,
    kinds: Mutex<HashMap<(String, String), (ApiResource, bool)>>,
    limiter: Option<RateLimiter>,
}

/// Why the client could not be built (a start-up failure).
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error(
        "failed to create kubernetes client: in-cluster configuration: {0} (set clients.kubernetes.kube_config_path outside a cluster)"
    )]
    InCluster(#[source] kube::config::InClusterError),
    #[error("failed to create kubernetes client: kubeconfig {}: {source}", .path.display())]
    Kubeconfig {
        path: std::path::PathBuf,
        #[source]
        source: kube::config::KubeconfigError,
    },
    #[error("failed to create kubernetes client: {0}")]
    Client(#[source] kube::Error),
}

impl KubeCluster {
    pub async fn connect(settings: &KubeSettings) -> Result<Self, ClientError> {
        let mut config = match &settings.kubeconfig {
            Some(path) => kubeconfig(path).await?,
            None => kube::Config::incluster().map_err(ClientError::InCluster)?,
        };
        // kube retries 429/503/504 itself, up to 15 times with waits growing to minutes. Off:
        // a retryable error goes to a retry tier at once, so a struggling API server never
        // holds a handler (and its prefetched messages) for minutes.
        config.default_retry = false;
        if let Some(timeout) = settings.timeout {
            config.read_timeout = Some(timeout);
            config.write_timeout = Some(timeout);
            config.connect_timeout = Some(timeout.min(Duration::from_secs(10)));
        }
        // Every API request is a client span and carries its traceparent.
        let client = kube::client::ClientBuilder::try_from(config)
            .map_err(ClientError::Client)?
            .with_layer(&trace::HttpClientLayer)
            .build();
        let limiter = settings.qps.filter(|q| *q > 0.0).map(|qps| {
            let burst = f64::from(settings.burst.unwrap_or(qps.ceil() as u32).max(1));
            RateLimiter {
                qps,
                burst,
                state: tokio::sync::Mutex::new((burst, Instant::now())),
            }
        });
        Ok(Self {
            client,
            kinds: Mutex::new(HashMap::new()),
            limiter,
        })
    }

    async fn throttle(&self) {
        if let Some(limiter) = &self.limiter {
            limiter.acquire().await;
        }
    }

    /// The API resource of a kind, and whether it is namespaced; discovered once.
    async fn resource(
        &self,
        target: &ObjectRef,
        operation: &'static str,
    ) -> Result<(ApiResource, bool), KubeError> {
        let key = (target.api_version.clone(), target.kind.clone());
        if let Some(found) = self
            .kinds
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&key)
        {
            return Ok(found.clone());
        }
        let (group, version) = match target.api_version.split_once('/') {
            Some((g, v)) => (g, v),
            None => ("", target.api_version.as_str()),
        };
        if target.kind.is_empty() || version.is_empty() {
            return Err(target.error(
                operation,
                ErrorClass::Fatal,
                None,
                "Invalid",
                "the manifest needs apiVersion and kind".into(),
            ));
        }
        self.throttle().await;
        let gvk = GroupVersionKind::gvk(group, version, &target.kind);
        let (resource, capabilities) = kube::discovery::pinned_kind(&self.client, &gvk)
            .await
            .map_err(|e| match from_kube(target, operation, e) {
                // A kind the cluster does not serve will not appear by retrying.
                not_found if not_found.is_not_found() => target.error(
                    operation,
                    ErrorClass::Fatal,
                    Some(404),
                    "NotFound",
                    format!(
                        "the cluster does not serve {} {}",
                        target.api_version, target.kind
                    ),
                ),
                other => other,
            })?;
        let found = (resource, capabilities.scope == Scope::Namespaced);
        self.kinds
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(key, found.clone());
        Ok(found)
    }

    async fn api(
        &self,
        target: &ObjectRef,
        operation: &'static str,
    ) -> Result<Api<DynamicObject>, KubeError> {
        let (resource, namespaced) = self.resource(target, operation).await?;
        Ok(if !namespaced {
            Api::all_with(self.client.clone(), &resource)
        } else if target.namespace.is_empty() {
            Api::default_namespaced_with(self.client.clone(), &resource)
        } else {
            Api::namespaced_with(self.client.clone(), &target.namespace, &resource)
        })
    }

    pub async fn get(&self, target: &ObjectRef) -> Result<Option<Value>, KubeError> {
        let api = self.api(target, "get").await?;
        self.throttle().await;
        match api.get_opt(&target.name).await {
            Ok(Some(object)) => Ok(Some(to_json(target, "get", &object)?)),
            Ok(None) => Ok(None),
            Err(e) => Err(from_kube(target, "get", e)),
        }
    }

    pub async fn list(
        &self,
        api_version: &str,
        kind: &str,
        namespace: &str,
        selector: &str,
    ) -> Result<Vec<Value>, KubeError> {
        let target = ObjectRef {
            api_version: api_version.into(),
            kind: kind.into(),
            namespace: if namespace == "*" {
                String::new()
            } else {
                namespace.into()
            },
            name: String::new(),
        };
        let (resource, namespaced) = self.resource(&target, "list").await?;
        let api: Api<DynamicObject> = if namespaced && !target.namespace.is_empty() {
            Api::namespaced_with(self.client.clone(), &target.namespace, &resource)
        } else {
            Api::all_with(self.client.clone(), &resource)
        };
        self.throttle().await;
        let list = api
            .list(&ListParams::default().labels(selector))
            .await
            .map_err(|e| from_kube(&target, "list", e))?;
        list.items
            .iter()
            .map(|item| {
                let mut value = to_json(&target, "list", item)?;
                // List items come without their type; put it back for CEL and logs.
                value["apiVersion"] = api_version.into();
                value["kind"] = kind.into();
                Ok(value)
            })
            .collect()
    }

    pub async fn create(&self, manifest: &Value) -> Result<(), KubeError> {
        let target = ObjectRef::of(manifest);
        let api = self.api(&target, "create").await?;
        let object = to_dynamic(&target, "create", manifest)?;
        self.throttle().await;
        api.create(&PostParams::default(), &object)
            .await
            .map(drop)
            .map_err(|e| from_kube(&target, "create", e))
    }

    pub async fn replace(&self, manifest: &Value) -> Result<(), KubeError> {
        let target = ObjectRef::of(manifest);
        let api = self.api(&target, "update").await?;
        let object = to_dynamic(&target, "update", manifest)?;
        self.throttle().await;
        api.replace(&target.name, &PostParams::default(), &object)
            .await
            .map(drop)
            .map_err(|e| from_kube(&target, "update", e))
    }

    pub async fn delete(&self, target: &ObjectRef, propagation: &str) -> Result<(), KubeError> {
        let api = self.api(target, "delete").await?;
        let policy = match propagation {
            "Orphan" => PropagationPolicy::Orphan,
            "Foreground" => PropagationPolicy::Foreground,
            _ => PropagationPolicy::Background,
        };
        let params = DeleteParams {
            propagation_policy: Some(policy),
            ..DeleteParams::default()
        };
        self.throttle().await;
        match api.delete(&target.name, &params).await {
            Ok(_) => Ok(()),
            Err(e) => {
                let error = from_kube(target, "delete", e);
                if error.is_not_found() {
                    Ok(())
                } else {
                    Err(error)
                }
            }
        }
    }
}

async fn kubeconfig(path: &Path) -> Result<kube::Config, ClientError> {
    let invalid = |source| ClientError::Kubeconfig {
        path: path.to_owned(),
        source,
    };
    let file = Kubeconfig::read_from(path).map_err(invalid)?;
    kube::Config::from_custom_kubeconfig(file, &KubeConfigOptions::default())
        .await
        .map_err(invalid)
}

fn to_json(
    target: &ObjectRef,
    operation: &'static str,
    object: &DynamicObject,
) -> Result<Value, KubeError> {
    serde_json::to_value(object).map_err(|e| {
        target.error(
            operation,
            ErrorClass::Fatal,
            None,
            "Invalid",
            format!("cannot read the object: {e}"),
        )
    })
}

fn to_dynamic(
    target: &ObjectRef,
    operation: &'static str,
    manifest: &Value,
) -> Result<DynamicObject, KubeError> {
    serde_json::from_value(manifest.clone()).map_err(|e| {
        target.error(
            operation,
            ErrorClass::Fatal,
            Some(400),
            "BadRequest",
            format!("the manifest is not a valid Kubernetes object: {e}"),
        )
    })
}

/// kube's error, classified.
fn from_kube(target: &ObjectRef, operation: &'static str, error: kube::Error) -> KubeError {
    match error {
        kube::Error::Api(status) => target.error(
            operation,
            classify(status.code, &status.reason),
            Some(status.code),
            &status.reason,
            if status.message.is_empty() {
                format!("{} {}", status.code, status.reason)
            } else {
                status.message.clone()
            },
        ),
        // Connection refused or reset, TLS and timeouts on the way: the network.
        kube::Error::HyperError(_) | kube::Error::Service(_) | kube::Error::ReadEvents(_) => target
            .error(
                operation,
                ErrorClass::Retryable,
                None,
                "NetworkError",
                chain(&error),
            ),
        other => target.error(operation, ErrorClass::Fatal, None, "Unknown", chain(&other)),
    }
}

fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use axum::Router;
    use axum::http::{HeaderMap, StatusCode, Uri};
    use serde_json::json;
    use tracing::Instrument;

    use super::*;

    /// Each request's path and `traceparent` header.
    type Seen = Arc<Mutex<Vec<(String, Option<String>)>>>;

    /// An API server that serves core/v1 discovery, answers 404 to everything else and
    /// records each request.
    async fn recording_api_server() -> (String, Seen) {
        let seen: Seen = Arc::default();
        let record = seen.clone();
        let router = Router::new().fallback(move |uri: Uri, headers: HeaderMap| {
            record.lock().unwrap().push((
                uri.path().to_owned(),
                headers
                    .get("traceparent")
                    .map(|v| v.to_str().unwrap().to_owned()),
            ));
            let answer = if uri.path() == "/api/v1" {
                (
                    StatusCode::OK,
                    axum::Json(json!({
                        "kind": "APIResourceList", "apiVersion": "v1", "groupVersion": "v1",
                        "resources": [{"name": "configmaps", "singularName": "configmap",
                            "namespaced": true, "kind": "ConfigMap",
                            "verbs": ["get", "list", "create", "update", "delete"]}]
                    })),
                )
            } else {
                (
                    StatusCode::NOT_FOUND,
                    axum::Json(
                        json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                        "reason": "NotFound", "code": 404, "message": "not found"}),
                    ),
                )
            };
            async move { answer }
        });
        (steadfast_test_support::spawn_http(router).await, seen)
    }

    #[tokio::test]
    async fn every_kubernetes_request_carries_the_callers_trace() {
        let (server, seen) = recording_api_server().await;
        let path =
            std::env::temp_dir().join(format!("adapter-trace-{}.kubeconfig", std::process::id()));
        std::fs::write(
            &path,
            format!(
                "apiVersion: v1\nkind: Config\nclusters:\n- name: t\n  cluster:\n    server: {server}\n\
users:\n- name: t\n  user:\n    token: t\ncontexts:\n- name: t\n  context:\n    cluster: t\n    user: t\n    namespace: default\ncurrent-context: t\n"
            ),
        )
        .unwrap();
        let cluster = KubeCluster::connect(&KubeSettings {
            kubeconfig: Some(path.clone()),
            ..KubeSettings::default()
        })
        .await;
        std::fs::remove_file(&path).unwrap();
        let cluster = cluster.expect("a client");

        let _tracer = trace::testing::local_tracer();
        let handler = tracing::info_span!("message");
        let handler_trace = trace::traceparent(&handler).unwrap().trace_id();
        let target = ObjectRef::of(&json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "x", "namespace": "default"}}));
        let found = cluster.get(&target).instrument(handler).await.unwrap();
        assert_eq!(found, None);

        let seen = seen.lock().unwrap();
        let paths: Vec<&str> = seen.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(
            paths,
            ["/api/v1", "/api/v1/namespaces/default/configmaps/x"],
            "discovery, then the object"
        );
        for (path, header) in seen.iter() {
            let header = header
                .as_deref()
                .unwrap_or_else(|| panic!("{path}: no traceparent"));
            assert_eq!(
                header.split('-').nth(1),
                Some(handler_trace.as_str()),
                "{path}"
            );
        }
    }
}

//! Applying manifests to a cluster: HyperFleet's apply semantics over two backends.
//!
//! * [`kube_cluster`] — a real API server through kube (kubeconfig or in-cluster);
//! * [`memory`] — the dry-run's in-memory cluster, with HyperFleet's discovery overrides.
//!
//! Apply ([`Transport::apply`]), as HyperFleet does it: read the object by name; absent →
//! create (AlreadyExists, a race, counts as skip); the `hyperfleet.io/generation` annotation
//! equal → skip; different → update with the stored `resourceVersion` and `uid` (a full PUT),
//! or with `recreate_on_change` delete, wait until it is gone, create.
//!
//! Errors are classified with HyperFleet's list ([`ErrorClass`]): timeouts, 5xx, 429 and
//! network errors are retryable; Forbidden, Unauthorized, BadRequest, Invalid, Gone,
//! MethodNotSupported, NotAcceptable and anything unknown are not. Additionally an update
//! `Conflict` (someone else wrote the object between our read and write) is retryable.

pub mod kube_cluster;
pub mod memory;

use std::time::Duration;

use serde_json::Value;

pub use kube_cluster::KubeCluster;
pub use memory::MemoryCluster;

/// The annotation whose value decides create / skip / update.
pub const GENERATION_ANNOTATION: &str = "hyperfleet.io/generation";

/// Whether retrying can help — the crate's one classification, for Kubernetes errors
/// ([`KubeError::class`]), HyperFleet API errors
/// ([`crate::hyperfleet_api::ApiError::class`]) and a failed execution
/// ([`crate::pipeline::StepError::class`], which the message handler decides by).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// The object or resource does not exist: not worth a retry.
    NotFound,
    /// Transient (network, timeouts, 408/429/5xx, conflicts): a retry tier.
    Retryable,
    /// Permanent: the same input fails the same way; report, then park.
    Fatal,
}

/// A failed Kubernetes operation, shown as HyperFleet shows it in logs:
/// `K8sOperationError{Operation:"create",Kind:"Job",Name:"x"}: <message>`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("K8sOperationError{{Operation:\"{operation}\",Kind:\"{}\",Namespace:\"{}\",Name:\"{}\"}}: {}", .detail.kind, .detail.namespace, .detail.name, .detail.message)]
pub struct KubeError {
    pub operation: &'static str,
    pub class: ErrorClass,
    /// HTTP code when the API server answered.
    pub code: Option<u16>,
    /// Boxed: errors travel through `Result`s on every call, the happy path stays small.
    pub detail: Box<ErrorDetail>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorDetail {
    pub kind: String,
    pub namespace: String,
    pub name: String,
    /// Kubernetes' `reason` (`NotFound`, `Forbidden`, ...), or ours for client-side errors.
    pub reason: String,
    pub message: String,
}

impl KubeError {
    pub fn is_not_found(&self) -> bool {
        self.class == ErrorClass::NotFound
    }

    pub fn is_retryable(&self) -> bool {
        self.class == ErrorClass::Retryable
    }

    pub fn reason(&self) -> &str {
        &self.detail.reason
    }
}

/// HyperFleet's classification of an API server answer.
pub fn classify(code: u16, reason: &str) -> ErrorClass {
    match (code, reason) {
        (404, _) | (_, "NotFound") => ErrorClass::NotFound,
        (
            _,
            "Timeout" | "ServerTimeout" | "ServiceUnavailable" | "InternalError"
            | "TooManyRequests",
        ) => ErrorClass::Retryable,
        (409, "Conflict") => ErrorClass::Retryable,
        (429 | 500 | 502 | 503 | 504, _) => ErrorClass::Retryable,
        _ => ErrorClass::Fatal,
    }
}

/// Which object an operation is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectRef {
    pub api_version: String,
    pub kind: String,
    /// Empty for cluster-scoped kinds (and for "the default namespace" of namespaced ones).
    pub namespace: String,
    pub name: String,
}

impl ObjectRef {
    pub fn of(object: &Value) -> Self {
        let text = |pointer: &str| {
            object
                .pointer(pointer)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        Self {
            api_version: text("/apiVersion"),
            kind: text("/kind"),
            namespace: text("/metadata/namespace"),
            name: text("/metadata/name"),
        }
    }

    pub fn error(
        &self,
        operation: &'static str,
        class: ErrorClass,
        code: Option<u16>,
        reason: &str,
        message: String,
    ) -> KubeError {
        KubeError {
            operation,
            class,
            code,
            detail: Box::new(ErrorDetail {
                kind: self.kind.clone(),
                namespace: self.namespace.clone(),
                name: self.name.clone(),
                reason: reason.into(),
                message,
            }),
        }
    }
}

/// What apply did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    Create,
    Update,
    Recreate,
    Skip,
    Delete,
}

impl Operation {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Create => "create",
            Self::Update => "update",
            Self::Recreate => "recreate",
            Self::Skip => "skip",
            Self::Delete => "delete",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    pub operation: Operation,
    pub reason: String,
}

/// The cluster behind the adapter.
pub enum Transport {
    Kube(KubeCluster),
    Memory(MemoryCluster),
}

impl Transport {
    pub async fn get(&self, target: &ObjectRef) -> Result<Option<Value>, KubeError> {
        match self {
            Self::Kube(k) => k.get(target).await,
            Self::Memory(m) => Ok(m.get(target)),
        }
    }

    /// Objects of a kind matching `selector` (`a=b,c=d`), in `namespace` or all namespaces
    /// when it is empty or `*`.
    pub async fn list(
        &self,
        api_version: &str,
        kind: &str,
        namespace: &str,
        selector: &str,
    ) -> Result<Vec<Value>, KubeError> {
        match self {
            Self::Kube(k) => k.list(api_version, kind, namespace, selector).await,
            Self::Memory(m) => Ok(m.list(api_version, kind, namespace, selector)),
        }
    }

    async fn create(&self, manifest: &Value) -> Result<(), KubeError> {
        match self {
            Self::Kube(k) => k.create(manifest).await,
            Self::Memory(m) => {
                m.create(manifest);
                Ok(())
            }
        }
    }

    async fn replace(&self, manifest: &Value) -> Result<(), KubeError> {
        match self {
            Self::Kube(k) => k.replace(manifest).await,
            Self::Memory(m) => {
                m.replace(manifest);
                Ok(())
            }
        }
    }

    pub async fn delete(&self, target: &ObjectRef, propagation: &str) -> Result<(), KubeError> {
        match self {
            Self::Kube(k) => k.delete(target, propagation).await,
            Self::Memory(m) => {
                m.delete(target);
                Ok(())
            }
        }
    }

    /// Creates, skips, updates or recreates `manifest` (see the module docs).
    pub async fn apply(
        &self,
        manifest: &Value,
        recreate_on_change: bool,
        deletion_wait: Duration,
    ) -> Result<Applied, KubeError> {
        let target = ObjectRef::of(manifest);
        let existing = self.get(&target).await?;
        let wanted = generation_of(manifest);
        let Some(existing) = existing else {
            return match self.create(manifest).await {
                Ok(()) => Ok(Applied {
                    operation: Operation::Create,
                    reason: "resource not found".into(),
                }),
                Err(e) if e.reason() == "AlreadyExists" => Ok(Applied {
                    operation: Operation::Skip,
                    reason: "created concurrently by another writer".into(),
                }),
                Err(e) => Err(e),
            };
        };
        let current = generation_of(&existing);
        if current == wanted {
            return Ok(Applied {
                operation: Operation::Skip,
                reason: format!("generation {wanted} unchanged"),
            });
        }
        let reason = format!("generation changed {current} -> {wanted}");
        if recreate_on_change {
            self.delete(&target, "Background").await?;
            self.wait_until_gone(&target, deletion_wait).await?;
            self.create(manifest).await?;
            return Ok(Applied {
                operation: Operation::Recreate,
                reason: format!("{reason}, recreate_on_change=true"),
            });
        }
        let mut update = manifest.clone();
        for field in ["resourceVersion", "uid"] {
            if let Some(value) = existing.pointer(&format!("/metadata/{field}")) {
                update["metadata"][field] = value.clone();
            }
        }
        self.replace(&update).await?;
        Ok(Applied {
            operation: Operation::Update,
            reason,
        })
    }

    /// Polls until the object is gone, or fails (retryably) after `timeout`.
    pub async fn wait_until_gone(
        &self,
        target: &ObjectRef,
        timeout: Duration,
    ) -> Result<(), KubeError> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if self.get(target).await?.is_none() {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(target.error(
                    "delete",
                    ErrorClass::Retryable,
                    None,
                    "Timeout",
                    format!("context canceled while waiting for resource deletion (still present after {timeout:?}; finalizers may be holding it)"),
                ));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// The `hyperfleet.io/generation` annotation as a number (0 when absent or not a number).
pub fn generation_of(object: &Value) -> i64 {
    object
        .pointer("/metadata/annotations")
        .and_then(|a| a.get(GENERATION_ANNOTATION))
        .and_then(|v| match v {
            Value::String(s) => s.trim().parse().ok(),
            Value::Number(n) => n.as_i64(),
            _ => None,
        })
        .unwrap_or(0)
}

/// Of several objects matching a selector, the one with the highest generation annotation
/// (HyperFleet's `GetLatestGenerationFromList`); ties go to the newest.
pub fn latest_generation(items: Vec<Value>) -> Option<Value> {
    items.into_iter().max_by(|a, b| {
        generation_of(a).cmp(&generation_of(b)).then_with(|| {
            let created = |o: &Value| {
                o.pointer("/metadata/creationTimestamp")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned()
            };
            created(a).cmp(&created(b))
        })
    })
}

/// `{a: b, c: d}` as `a=b,c=d`, keys sorted.
pub fn selector_string(labels: &std::collections::BTreeMap<String, String>) -> String {
    labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn classification_follows_hyperfleet() {
        for (code, reason, class) in [
            (404, "NotFound", ErrorClass::NotFound),
            (503, "ServiceUnavailable", ErrorClass::Retryable),
            (500, "InternalError", ErrorClass::Retryable),
            (429, "TooManyRequests", ErrorClass::Retryable),
            (504, "Timeout", ErrorClass::Retryable),
            (409, "Conflict", ErrorClass::Retryable),
            (409, "AlreadyExists", ErrorClass::Fatal),
            (403, "Forbidden", ErrorClass::Fatal),
            (401, "Unauthorized", ErrorClass::Fatal),
            (400, "BadRequest", ErrorClass::Fatal),
            (422, "Invalid", ErrorClass::Fatal),
            (410, "Gone", ErrorClass::Fatal),
            (405, "MethodNotAllowed", ErrorClass::Fatal),
            (406, "NotAcceptable", ErrorClass::Fatal),
            (418, "Teapot", ErrorClass::Fatal),
        ] {
            assert_eq!(classify(code, reason), class, "{code} {reason}");
        }
    }

    #[test]
    fn generation_annotation_and_latest() {
        let a =
            json!({"metadata": {"name": "a", "annotations": {"hyperfleet.io/generation": "3"}}});
        let b =
            json!({"metadata": {"name": "b", "annotations": {"hyperfleet.io/generation": "7"}}});
        assert_eq!(generation_of(&a), 3);
        assert_eq!(generation_of(&json!({})), 0);
        assert_eq!(latest_generation(vec![a, b.clone()]), Some(b));
    }
}

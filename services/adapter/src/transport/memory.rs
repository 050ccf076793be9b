//! The dry-run cluster: objects in memory, every operation recorded for the trace.
//!
//! As in HyperFleet's dry-run, an applied object whose `metadata.name` has a discovery
//! override (`--dry-run-discovery`) is stored as the override instead (with its status, uid,
//! ...), so CEL over `resources.<name>` sees what a real cluster would report.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use serde_json::Value;

use super::ObjectRef;

/// One recorded operation.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Recorded {
    pub operation: &'static str,
    pub kind: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub namespace: String,
    pub name: String,
    /// The manifest sent, for creates and updates.
    #[serde(skip)]
    pub manifest: Option<Value>,
}

#[derive(Default)]
pub struct MemoryCluster {
    objects: Mutex<BTreeMap<(String, String, String, String), Value>>,
    overrides: HashMap<String, Value>,
    records: Mutex<Vec<Recorded>>,
}

impl MemoryCluster {
    pub fn new(overrides: HashMap<String, Value>) -> Self {
        Self {
            overrides,
            ..Self::default()
        }
    }

    fn key(target: &ObjectRef) -> (String, String, String, String) {
        (
            target.api_version.clone(),
            target.kind.clone(),
            target.namespace.clone(),
            target.name.clone(),
        )
    }

    fn record(&self, operation: &'static str, target: &ObjectRef, manifest: Option<&Value>) {
        self.records
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(Recorded {
                operation,
                kind: target.kind.clone(),
                namespace: target.namespace.clone(),
                name: target.name.clone(),
                manifest: manifest.cloned(),
            });
    }

    fn objects(
        &self,
    ) -> std::sync::MutexGuard<'_, BTreeMap<(String, String, String, String), Value>> {
        self.objects
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn records(&self) -> Vec<Recorded> {
        self.records
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    pub fn get(&self, target: &ObjectRef) -> Option<Value> {
        self.record("get", target, None);
        self.objects().get(&Self::key(target)).cloned()
    }

    pub fn list(
        &self,
        api_version: &str,
        kind: &str,
        namespace: &str,
        selector: &str,
    ) -> Vec<Value> {
        let target = ObjectRef {
            api_version: api_version.into(),
            kind: kind.into(),
            namespace: namespace.into(),
            name: String::new(),
        };
        self.record("discover", &target, None);
        let wanted: Vec<(&str, &str)> = selector
            .split(',')
            .filter_map(|pair| pair.split_once('='))
            .collect();
        self.objects()
            .iter()
            .filter(|((v, k, ns, _), _)| {
                v == api_version
                    && k == kind
                    && (namespace.is_empty() || namespace == "*" || ns == namespace)
            })
            .filter(|(_, object)| {
                wanted.iter().all(|(key, value)| {
                    object
                        .pointer("/metadata/labels")
                        .and_then(|l| l.get(*key))
                        .and_then(Value::as_str)
                        == Some(*value)
                })
            })
            .map(|(_, object)| object.clone())
            .collect()
    }

    fn store(&self, manifest: &Value) {
        let target = ObjectRef::of(manifest);
        let stored = self
            .overrides
            .get(&target.name)
            .cloned()
            .unwrap_or_else(|| manifest.clone());
        self.objects().insert(Self::key(&target), stored);
    }

    pub fn create(&self, manifest: &Value) {
        self.record("create", &ObjectRef::of(manifest), Some(manifest));
        self.store(manifest);
    }

    pub fn replace(&self, manifest: &Value) {
        self.record("update", &ObjectRef::of(manifest), Some(manifest));
        self.store(manifest);
    }

    pub fn delete(&self, target: &ObjectRef) {
        self.record("delete", target, None);
        self.objects().remove(&Self::key(target));
    }
}

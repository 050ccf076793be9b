//! The in-memory object store: what an API server and etcd do for the fake.
//!
//! Every write bumps one global `resourceVersion` and appends a watch event; objects get a
//! `uid`, `creationTimestamp` and a `metadata.generation` that grows when anything but metadata
//! and status changes. Deletion honours `metadata.finalizers` (the object stays, with a
//! `deletionTimestamp`, until they are removed), cascades to owned objects unless the
//! propagation policy is `Orphan`, and deleting a Namespace deletes everything in it at once (the
//! namespace controller, made instantaneous).

mod error;
#[cfg(test)]
mod tests;
mod validation;
mod watch;

use std::collections::{BTreeMap, HashMap, VecDeque};

use chrono::{SecondsFormat, Utc};
use serde_json::{Map, Value, json};
use tokio::sync::broadcast;

use super::kinds::KindSpec;
use super::selector::{FieldSelector, LabelSelector};

pub use error::{ApiError, reason_for, resource_name};
pub use watch::{Event, EventType};

use error::conflict;
use validation::{apply_defaults, check_type, metadata_mut, strip, validate_metadata};

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
struct ObjectKey {
    group: String,
    plural: String,
    namespace: String,
    name: String,
}

impl ObjectKey {
    fn new(spec: &KindSpec, namespace: Option<&str>, name: &str) -> Self {
        Self {
            group: spec.group.clone(),
            plural: spec.plural.clone(),
            namespace: if spec.namespaced {
                namespace.unwrap_or_default().to_owned()
            } else {
                String::new()
            },
            name: name.to_owned(),
        }
    }
}

/// What a delete did.
pub enum Deleted {
    /// Removed; carries the last state.
    Gone(Value),
    /// Finalizers hold it: `deletionTimestamp` is set and it stays until they are removed.
    Pending(Value),
}

/// The result of a list: items plus the collection's resource version.
pub struct Listing {
    pub items: Vec<Value>,
    pub revision: u64,
}

pub struct Store {
    kinds: Vec<KindSpec>,
    objects: BTreeMap<ObjectKey, Value>,
    revision: u64,
    history: VecDeque<Event>,
    events: broadcast::Sender<Event>,
    pub pod_logs: HashMap<(String, String), String>,
}

impl Store {
    pub fn new(kinds: Vec<KindSpec>) -> Self {
        let (events, _) = broadcast::channel(4096);
        let mut store = Self {
            kinds,
            objects: BTreeMap::new(),
            revision: 1,
            history: VecDeque::new(),
            events,
            pod_logs: HashMap::new(),
        };
        for namespace in ["default", "kube-system"] {
            let spec = store.kind("", "v1", "namespaces").expect("builtin").clone();
            store
                .create(&spec, None, json!({"metadata": {"name": namespace}}), false)
                .expect("seed namespace");
        }
        store
    }

    pub fn kinds(&self) -> &[KindSpec] {
        &self.kinds
    }

    pub fn register(&mut self, spec: KindSpec) {
        self.kinds.retain(|k| {
            !(k.group == spec.group && k.version == spec.version && k.plural == spec.plural)
        });
        self.kinds.push(spec);
    }

    /// The kind served at `<group>/<version>/<plural>`.
    pub fn kind(&self, group: &str, version: &str, plural: &str) -> Option<&KindSpec> {
        self.kinds
            .iter()
            .find(|k| k.group == group && k.version == version && k.plural == plural)
    }

    /// The kind of an object by its `apiVersion` and `kind`.
    pub fn kind_of(&self, api_version: &str, kind: &str) -> Option<&KindSpec> {
        self.kinds
            .iter()
            .find(|k| k.api_version() == api_version && k.kind == kind)
    }

    pub fn revision(&self) -> u64 {
        self.revision
    }

    pub fn get(
        &self,
        spec: &KindSpec,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<Value, ApiError> {
        self.objects
            .get(&ObjectKey::new(spec, namespace, name))
            .cloned()
            .ok_or_else(|| ApiError::not_found(spec, name))
    }

    /// Objects of a kind, in one namespace or all, filtered by selectors.
    pub fn list(
        &self,
        spec: &KindSpec,
        namespace: Option<&str>,
        labels: &LabelSelector,
        fields: &FieldSelector,
    ) -> Listing {
        let items = self
            .objects
            .iter()
            .filter(|(key, _)| key.group == spec.group && key.plural == spec.plural)
            .filter(|(key, _)| namespace.is_none_or(|ns| !spec.namespaced || key.namespace == ns))
            .map(|(_, object)| object)
            .filter(|object| selected(object, labels, fields))
            .cloned()
            .collect();
        Listing {
            items,
            revision: self.revision,
        }
    }

    pub fn create(
        &mut self,
        spec: &KindSpec,
        namespace: Option<&str>,
        mut object: Value,
        dry_run: bool,
    ) -> Result<Value, ApiError> {
        check_type(spec, &mut object)?;
        let metadata = metadata_mut(&mut object)?;
        if metadata
            .get("name")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
        {
            match metadata.get("generateName").and_then(Value::as_str) {
                Some(prefix) if !prefix.is_empty() => {
                    let suffix = &uuid::Uuid::new_v4().simple().to_string()[..5];
                    metadata.insert("name".into(), format!("{prefix}{suffix}").into());
                }
                _ => {
                    return Err(ApiError::new(
                        422,
                        format!(
                            "{} \"\" is invalid: metadata.name: Required value: name or generateName is required",
                            spec.kind
                        ),
                    ));
                }
            }
        }
        let name = metadata["name"].as_str().unwrap_or_default().to_owned();
        let namespace = self.check_namespace(spec, namespace, metadata, &name)?;
        validate_metadata(spec, &object)?;
        let key = ObjectKey::new(spec, namespace.as_deref(), &name);
        if self.objects.contains_key(&key) {
            return Err(ApiError::new(
                409,
                format!("{} \"{name}\" already exists", resource_name(spec)),
            )
            .with_reason("AlreadyExists"));
        }
        if spec.status_subresource {
            object.as_object_mut().expect("object").remove("status");
        }
        apply_defaults(spec, &mut object);
        let revision = self.revision + 1;
        let metadata = metadata_mut(&mut object)?;
        metadata.insert("uid".into(), uuid::Uuid::new_v4().to_string().into());
        metadata.insert("creationTimestamp".into(), now().into());
        metadata.insert("generation".into(), 1.into());
        metadata.insert("resourceVersion".into(), revision.to_string().into());
        metadata.remove("deletionTimestamp");
        if let Some(ns) = &namespace {
            metadata.insert("namespace".into(), ns.clone().into());
        }
        if dry_run {
            return Ok(object);
        }
        self.revision = revision;
        self.objects.insert(key, object.clone());
        self.emit(spec, EventType::Added, object.clone(), None);
        Ok(object)
    }

    /// `PUT`: replaces the object (or only its status, for the `status` subresource).
    pub fn replace(
        &mut self,
        spec: &KindSpec,
        namespace: Option<&str>,
        name: &str,
        mut object: Value,
        status_only: bool,
        dry_run: bool,
    ) -> Result<Value, ApiError> {
        check_type(spec, &mut object)?;
        let existing = self.get(spec, namespace, name)?;
        let body_name = object
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or(name);
        if body_name != name {
            return Err(ApiError::new(
                400,
                format!(
                    "the name of the object ({body_name}) does not match the name on the URL ({name})"
                ),
            ));
        }
        if let Some(version) = object
            .pointer("/metadata/resourceVersion")
            .and_then(Value::as_str)
            && !version.is_empty()
            && Some(version)
                != existing
                    .pointer("/metadata/resourceVersion")
                    .and_then(Value::as_str)
        {
            return Err(conflict(spec, name));
        }
        self.write_update(
            spec,
            namespace,
            name,
            existing,
            object,
            status_only,
            dry_run,
        )
    }

    /// Applies `change` to a copy of the stored object and writes the result as an update.
    pub fn modify(
        &mut self,
        spec: &KindSpec,
        namespace: Option<&str>,
        name: &str,
        status_only: bool,
        dry_run: bool,
        change: impl FnOnce(&mut Value) -> Result<(), ApiError>,
    ) -> Result<Value, ApiError> {
        let existing = self.get(spec, namespace, name)?;
        let mut candidate = existing.clone();
        change(&mut candidate)?;
        check_type(spec, &mut candidate)?;
        let candidate_version = candidate
            .pointer("/metadata/resourceVersion")
            .and_then(Value::as_str);
        if candidate_version.is_some()
            && candidate_version
                != existing
                    .pointer("/metadata/resourceVersion")
                    .and_then(Value::as_str)
        {
            return Err(conflict(spec, name));
        }
        self.write_update(
            spec,
            namespace,
            name,
            existing,
            candidate,
            status_only,
            dry_run,
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn write_update(
        &mut self,
        spec: &KindSpec,
        namespace: Option<&str>,
        name: &str,
        existing: Value,
        mut object: Value,
        status_only: bool,
        dry_run: bool,
    ) -> Result<Value, ApiError> {
        if status_only {
            let status = object.get("status").cloned();
            object = existing.clone();
            match status {
                Some(status) => object["status"] = status,
                None => {
                    object.as_object_mut().expect("object").remove("status");
                }
            }
        } else if spec.status_subresource {
            match existing.get("status") {
                Some(status) => object["status"] = status.clone(),
                None => {
                    object.as_object_mut().expect("object").remove("status");
                }
            }
        }
        validate_metadata(spec, &object)?;
        let revision = self.revision + 1;
        let generation = existing
            .pointer("/metadata/generation")
            .and_then(Value::as_i64)
            .unwrap_or(1);
        let changed = strip(&existing) != strip(&object);
        let metadata = metadata_mut(&mut object)?;
        for immutable in ["uid", "creationTimestamp", "namespace", "deletionTimestamp"] {
            match existing.pointer(&format!("/metadata/{immutable}")) {
                Some(value) => metadata.insert(immutable.into(), value.clone()),
                None => metadata.remove(immutable),
            };
        }
        metadata.insert("name".into(), name.into());
        metadata.insert(
            "generation".into(),
            (if changed { generation + 1 } else { generation }).into(),
        );
        metadata.insert("resourceVersion".into(), revision.to_string().into());
        if dry_run {
            return Ok(object);
        }
        self.revision = revision;
        let key = ObjectKey::new(spec, namespace, name);
        let terminating = metadata.contains_key("deletionTimestamp");
        let finalizers_left = metadata
            .get("finalizers")
            .and_then(Value::as_array)
            .is_some_and(|f| !f.is_empty());
        if terminating && !finalizers_left {
            self.objects.remove(&key);
            self.emit(spec, EventType::Deleted, object.clone(), Some(existing));
            self.collect_garbage(&object, None);
            return Ok(object);
        }
        self.objects.insert(key, object.clone());
        self.emit(spec, EventType::Modified, object.clone(), Some(existing));
        Ok(object)
    }

    pub fn delete(
        &mut self,
        spec: &KindSpec,
        namespace: Option<&str>,
        name: &str,
        propagation: Option<&str>,
        dry_run: bool,
    ) -> Result<Deleted, ApiError> {
        let key = ObjectKey::new(spec, namespace, name);
        let existing = self.get(spec, namespace, name)?;
        if dry_run {
            return Ok(Deleted::Gone(existing));
        }
        let has_finalizers = existing
            .pointer("/metadata/finalizers")
            .and_then(Value::as_array)
            .is_some_and(|f| !f.is_empty());
        if has_finalizers {
            if existing.pointer("/metadata/deletionTimestamp").is_some() {
                return Ok(Deleted::Pending(existing));
            }
            let mut object = existing.clone();
            self.revision += 1;
            object["metadata"]["deletionTimestamp"] = now().into();
            object["metadata"]["resourceVersion"] = self.revision.to_string().into();
            self.objects.insert(key, object.clone());
            self.emit(spec, EventType::Modified, object.clone(), Some(existing));
            return Ok(Deleted::Pending(object));
        }
        self.revision += 1;
        let mut object = self.objects.remove(&key).expect("checked above");
        object["metadata"]["resourceVersion"] = self.revision.to_string().into();
        self.emit(spec, EventType::Deleted, object.clone(), None);
        self.collect_garbage(&object, propagation);
        if spec.kind == "Namespace" && spec.group.is_empty() {
            let doomed: Vec<ObjectKey> = self
                .objects
                .keys()
                .filter(|k| k.namespace == name)
                .cloned()
                .collect();
            for key in doomed {
                self.remove_key(key);
            }
        }
        Ok(Deleted::Gone(object))
    }

    /// Removes the objects owned by `owner` (and theirs), as the garbage collector would.
    fn collect_garbage(&mut self, owner: &Value, propagation: Option<&str>) {
        if propagation == Some("Orphan") {
            return;
        }
        let Some(uid) = owner.pointer("/metadata/uid").and_then(Value::as_str) else {
            return;
        };
        let owned: Vec<ObjectKey> = self
            .objects
            .iter()
            .filter(|(_, o)| {
                o.pointer("/metadata/ownerReferences")
                    .and_then(Value::as_array)
                    .is_some_and(|refs| refs.iter().any(|r| r["uid"] == uid))
            })
            .map(|(k, _)| k.clone())
            .collect();
        for key in owned {
            self.remove_key(key);
        }
    }

    fn remove_key(&mut self, key: ObjectKey) {
        let Some(mut object) = self.objects.remove(&key) else {
            return;
        };
        self.revision += 1;
        object["metadata"]["resourceVersion"] = self.revision.to_string().into();
        let spec = self
            .kinds
            .iter()
            .find(|k| k.group == key.group && k.plural == key.plural)
            .cloned();
        if let Some(spec) = spec {
            self.emit(&spec, EventType::Deleted, object.clone(), None);
        }
        self.collect_garbage(&object, None);
    }

    /// Which namespace a new object lands in; it must exist and not be terminating.
    fn check_namespace(
        &self,
        spec: &KindSpec,
        url_namespace: Option<&str>,
        metadata: &mut Map<String, Value>,
        name: &str,
    ) -> Result<Option<String>, ApiError> {
        if !spec.namespaced {
            metadata.remove("namespace");
            return Ok(None);
        }
        let body_namespace = metadata.get("namespace").and_then(Value::as_str);
        let namespace = match (url_namespace, body_namespace) {
            (Some(url), Some(body)) if url != body && !body.is_empty() => {
                return Err(ApiError::new(
                    400,
                    format!(
                        "the namespace of the provided object ({body}) does not match the namespace sent on the request ({url})"
                    ),
                ));
            }
            (Some(url), _) => url.to_owned(),
            (None, Some(body)) if !body.is_empty() => body.to_owned(),
            _ => "default".to_owned(),
        };
        let ns_key = ObjectKey {
            group: String::new(),
            plural: "namespaces".into(),
            namespace: String::new(),
            name: namespace.clone(),
        };
        match self.objects.get(&ns_key) {
            None => Err(ApiError::new(
                404,
                format!("namespaces \"{namespace}\" not found"),
            )),
            Some(ns) if ns.pointer("/metadata/deletionTimestamp").is_some() => Err(ApiError::new(
                403,
                format!(
                    "{} \"{name}\" is forbidden: unable to create new content in namespace {namespace} because it is being terminated",
                    resource_name(spec)
                ),
            )),
            Some(_) => Ok(Some(namespace)),
        }
    }
}

fn selected(object: &Value, labels: &LabelSelector, fields: &FieldSelector) -> bool {
    labels.matches(
        object
            .pointer("/metadata/labels")
            .and_then(Value::as_object),
    ) && fields.matches(object)
}

/// Whether a watch with these selectors shows this object.
pub fn watch_selected(object: &Value, labels: &LabelSelector, fields: &FieldSelector) -> bool {
    selected(object, labels, fields)
}

pub fn now() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true)
}

//! The in-memory object store: what an API server and etcd do for the fake.
//!
//! Every write bumps one global `resourceVersion` and appends a watch event; objects get a
//! `uid`, `creationTimestamp` and a `metadata.generation` that grows when anything but metadata
//! and status changes. Deletion honours `metadata.finalizers` (the object stays, with a
//! `deletionTimestamp`, until they are removed), cascades to owned objects unless the
//! propagation policy is `Orphan`, and deleting a Namespace deletes everything in it at once (the
//! namespace controller, made instantaneous).

use std::collections::{BTreeMap, HashMap, VecDeque};

use chrono::{SecondsFormat, Utc};
use serde_json::{Map, Value, json};
use tokio::sync::broadcast;

use super::kinds::KindSpec;
use super::selector::{FieldSelector, LabelSelector};

/// How many past events a watch can resume from; older resource versions get `410 Gone`.
const HISTORY: usize = 10_000;

/// An error as the API server reports it: a `Status` object with an HTTP code and a reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub code: u16,
    pub reason: String,
    pub message: String,
}

impl ApiError {
    pub fn new(code: u16, message: impl Into<String>) -> Self {
        Self {
            code,
            reason: reason_for(code).into(),
            message: message.into(),
        }
    }

    fn not_found(spec: &KindSpec, name: &str) -> Self {
        Self::new(404, format!("{} \"{name}\" not found", resource_name(spec)))
    }

    fn invalid(spec: &KindSpec, name: &str, detail: String) -> Self {
        Self::new(
            422,
            format!("{} \"{name}\" is invalid: {detail}", spec.kind),
        )
    }

    /// The `Status` body.
    pub fn to_status(&self) -> Value {
        json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        })
    }
}

/// The `reason` Kubernetes gives each status code.
pub fn reason_for(code: u16) -> &'static str {
    match code {
        400 => "BadRequest",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "NotFound",
        405 => "MethodNotAllowed",
        406 => "NotAcceptable",
        409 => "Conflict",
        410 => "Expired",
        415 => "UnsupportedMediaType",
        422 => "Invalid",
        429 => "TooManyRequests",
        500 => "InternalError",
        503 => "ServiceUnavailable",
        504 => "Timeout",
        _ => "Unknown",
    }
}

/// `configmaps` or `jobs.batch`, as the API server names a resource in messages.
pub fn resource_name(spec: &KindSpec) -> String {
    if spec.group.is_empty() {
        spec.plural.clone()
    } else {
        format!("{}.{}", spec.plural, spec.group)
    }
}

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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    Added,
    Modified,
    Deleted,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Added => "ADDED",
            Self::Modified => "MODIFIED",
            Self::Deleted => "DELETED",
        }
    }
}

/// One change, as a watch reports it.
#[derive(Debug, Clone)]
pub struct Event {
    pub revision: u64,
    pub group: String,
    pub plural: String,
    pub kind: EventType,
    pub object: Value,
    /// The object before a modification, so a watch with a selector can tell an object
    /// leaving the selection (reported as DELETED).
    pub previous: Option<Value>,
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

    /// Events after `since` (all current objects as ADDED when `since` is `None`) and a
    /// receiver for what follows, taken under one lock so nothing falls in between.
    /// `Err` when `since` is older than the kept history.
    #[allow(clippy::type_complexity)]
    pub fn subscribe(
        &self,
        spec: &KindSpec,
        since: Option<u64>,
    ) -> Result<(Vec<Event>, broadcast::Receiver<Event>), ApiError> {
        let receiver = self.events.subscribe();
        let backlog = match since {
            None => self
                .objects
                .iter()
                .filter(|(k, _)| k.group == spec.group && k.plural == spec.plural)
                .map(|(_, o)| Event {
                    revision: self.revision,
                    group: spec.group.clone(),
                    plural: spec.plural.clone(),
                    kind: EventType::Added,
                    object: o.clone(),
                    previous: None,
                })
                .collect(),
            Some(since) => {
                let oldest = self.history.front().map_or(self.revision, |e| e.revision);
                if since + 1 < oldest && since < self.revision {
                    return Err(ApiError::new(
                        410,
                        format!("too old resource version: {since} ({oldest})"),
                    ));
                }
                self.history
                    .iter()
                    .filter(|e| {
                        e.revision > since && e.group == spec.group && e.plural == spec.plural
                    })
                    .cloned()
                    .collect()
            }
        };
        Ok((backlog, receiver))
    }

    fn emit(&mut self, spec: &KindSpec, kind: EventType, object: Value, previous: Option<Value>) {
        let event = Event {
            revision: self.revision,
            group: spec.group.clone(),
            plural: spec.plural.clone(),
            kind,
            object,
            previous,
        };
        if self.history.len() >= HISTORY {
            self.history.pop_front();
        }
        self.history.push_back(event.clone());
        let _ = self.events.send(event);
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

impl ApiError {
    fn with_reason(mut self, reason: &str) -> Self {
        self.reason = reason.into();
        self
    }
}

fn conflict(spec: &KindSpec, name: &str) -> ApiError {
    ApiError::new(
        409,
        format!(
            "Operation cannot be fulfilled on {} \"{name}\": the object has been modified; please apply your changes to the latest version and try again",
            resource_name(spec)
        ),
    )
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

/// The object without metadata and status: what `metadata.generation` tracks.
fn strip(object: &Value) -> Value {
    let mut copy = object.clone();
    if let Some(map) = copy.as_object_mut() {
        map.remove("metadata");
        map.remove("status");
    }
    copy
}

fn metadata_mut(object: &mut Value) -> Result<&mut Map<String, Value>, ApiError> {
    let map = object
        .as_object_mut()
        .ok_or_else(|| ApiError::new(400, "the request body must be a JSON object"))?;
    let metadata = map.entry("metadata").or_insert_with(|| json!({}));
    metadata
        .as_object_mut()
        .ok_or_else(|| ApiError::new(400, "metadata must be an object"))
}

/// Fills in `apiVersion` and `kind`, or refuses a body of another type.
fn check_type(spec: &KindSpec, object: &mut Value) -> Result<(), ApiError> {
    let map = object
        .as_object_mut()
        .ok_or_else(|| ApiError::new(400, "the request body must be a JSON object"))?;
    let expected = spec.api_version();
    match map.get("apiVersion").and_then(Value::as_str) {
        Some(v) if v != expected => {
            return Err(ApiError::new(
                400,
                format!(
                    "the API version in the data ({v}) does not match the expected API version ({expected})"
                ),
            ));
        }
        _ => {
            map.insert("apiVersion".into(), expected.into());
        }
    }
    match map.get("kind").and_then(Value::as_str) {
        Some(k) if k != spec.kind => {
            return Err(ApiError::new(
                400,
                format!(
                    "the kind in the data ({k}) does not match the expected kind ({})",
                    spec.kind
                ),
            ));
        }
        _ => {
            map.insert("kind".into(), spec.kind.clone().into());
        }
    }
    Ok(())
}

fn apply_defaults(spec: &KindSpec, object: &mut Value) {
    match (spec.group.as_str(), spec.kind.as_str()) {
        ("", "Namespace") => {
            object["spec"] = json!({"finalizers": ["kubernetes"]});
            object["status"] = json!({"phase": "Active"});
            let name = object["metadata"]["name"].clone();
            let labels = object["metadata"]
                .as_object_mut()
                .expect("metadata")
                .entry("labels")
                .or_insert_with(|| json!({}));
            if let Some(labels) = labels.as_object_mut() {
                labels.insert("kubernetes.io/metadata.name".into(), name);
            }
        }
        ("", "Pod") => {
            object["status"] = json!({"phase": "Pending"});
        }
        ("", "Secret") => {
            use base64::Engine as _;
            if let Some(Value::Object(string_data)) =
                object.as_object_mut().and_then(|o| o.remove("stringData"))
            {
                let data = object
                    .as_object_mut()
                    .expect("object")
                    .entry("data")
                    .or_insert_with(|| json!({}));
                for (k, v) in string_data {
                    let text = v.as_str().unwrap_or_default();
                    data[k] = base64::engine::general_purpose::STANDARD
                        .encode(text)
                        .into();
                }
            }
        }
        _ => {}
    }
}

/// Checks the name, labels and annotations as the API server's validation does.
fn validate_metadata(spec: &KindSpec, object: &Value) -> Result<(), ApiError> {
    let name = object
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let name_ok = if spec.kind == "Namespace" {
        is_dns_label(name)
    } else {
        name.len() <= 253 && name.split('.').all(is_dns_label)
    };
    if !name_ok {
        let what = if spec.kind == "Namespace" {
            "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character"
        } else {
            "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character"
        };
        return Err(ApiError::invalid(
            spec,
            name,
            format!("metadata.name: Invalid value: \"{name}\": {what}"),
        ));
    }
    for field in ["labels", "annotations"] {
        let Some(entries) = object
            .pointer(&format!("/metadata/{field}"))
            .filter(|v| !v.is_null())
        else {
            continue;
        };
        let Some(entries) = entries.as_object() else {
            return Err(ApiError::invalid(
                spec,
                name,
                format!("metadata.{field}: Invalid value: must be a map of strings"),
            ));
        };
        for (key, value) in entries {
            let Some(text) = value.as_str() else {
                return Err(ApiError::invalid(
                    spec,
                    name,
                    format!("metadata.{field}.{key}: Invalid value: {value}: must be a string"),
                ));
            };
            if !is_qualified_name(key) {
                return Err(ApiError::invalid(
                    spec,
                    name,
                    format!(
                        "metadata.{field}: Invalid value: \"{key}\": name part must consist of alphanumeric characters, '-', '_' or '.'"
                    ),
                ));
            }
            if field == "labels" && !is_label_value(text) {
                return Err(ApiError::invalid(
                    spec,
                    name,
                    format!(
                        "metadata.labels: Invalid value: \"{text}\": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character"
                    ),
                ));
            }
        }
    }
    Ok(())
}

fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

fn is_label_value(s: &str) -> bool {
    s.is_empty()
        || (s.len() <= 63
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
            && s.as_bytes()[0].is_ascii_alphanumeric()
            && s.as_bytes()[s.len() - 1].is_ascii_alphanumeric())
}

fn is_qualified_name(key: &str) -> bool {
    let (prefix, name) = match key.rsplit_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    prefix.is_none_or(|p| p.len() <= 253 && p.split('.').all(is_dns_label))
        && !name.is_empty()
        && is_label_value(name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kinds::builtin;

    fn store() -> (Store, KindSpec, KindSpec) {
        let store = Store::new(builtin());
        let cm = store.kind("", "v1", "configmaps").unwrap().clone();
        let ns = store.kind("", "v1", "namespaces").unwrap().clone();
        (store, cm, ns)
    }

    #[test]
    fn create_stamps_metadata_and_refuses_duplicates() {
        let (mut s, cm, _) = store();
        let created = s
            .create(
                &cm,
                Some("default"),
                json!({"metadata": {"name": "a"}, "data": {"k": "v"}}),
                false,
            )
            .unwrap();
        assert_eq!(created["kind"], "ConfigMap");
        assert_eq!(created["metadata"]["namespace"], "default");
        assert_eq!(created["metadata"]["generation"], 1);
        assert!(created["metadata"]["uid"].is_string());
        let err = s
            .create(
                &cm,
                Some("default"),
                json!({"metadata": {"name": "a"}}),
                false,
            )
            .unwrap_err();
        assert_eq!((err.code, err.reason.as_str()), (409, "AlreadyExists"));
        let err = s
            .create(
                &cm,
                Some("nowhere"),
                json!({"metadata": {"name": "b"}}),
                false,
            )
            .unwrap_err();
        assert_eq!(err.message, "namespaces \"nowhere\" not found");
    }

    #[test]
    fn invalid_names_and_labels_are_422() {
        let (mut s, cm, ns) = store();
        let err = s
            .create(&ns, None, json!({"metadata": {"name": "Not_Valid"}}), false)
            .unwrap_err();
        assert_eq!(err.code, 422);
        assert!(
            err.message
                .starts_with("Namespace \"Not_Valid\" is invalid"),
            "{}",
            err.message
        );
        let err = s
            .create(
                &cm,
                Some("default"),
                json!({"metadata": {"name": "x", "labels": {"a": "has space"}}}),
                false,
            )
            .unwrap_err();
        assert_eq!(err.code, 422);
    }

    #[test]
    fn stale_resource_version_conflicts_and_generation_tracks_spec() {
        let (mut s, cm, _) = store();
        let created = s
            .create(
                &cm,
                Some("default"),
                json!({"metadata": {"name": "a"}, "data": {"k": "1"}}),
                false,
            )
            .unwrap();
        let mut update = created.clone();
        update["data"]["k"] = "2".into();
        let updated = s
            .replace(&cm, Some("default"), "a", update.clone(), false, false)
            .unwrap();
        assert_eq!(updated["metadata"]["generation"], 2);
        let err = s
            .replace(&cm, Some("default"), "a", update, false, false)
            .unwrap_err();
        assert_eq!(err.code, 409);
    }

    #[test]
    fn namespace_deletion_cascades_and_finalizers_hold() {
        let (mut s, cm, ns) = store();
        s.create(&ns, None, json!({"metadata": {"name": "team"}}), false)
            .unwrap();
        s.create(&cm, Some("team"), json!({"metadata": {"name": "a"}}), false)
            .unwrap();
        s.create(
            &cm,
            Some("default"),
            json!({"metadata": {"name": "held", "finalizers": ["x/y"]}}),
            false,
        )
        .unwrap();
        assert!(matches!(
            s.delete(&ns, None, "team", None, false).unwrap(),
            Deleted::Gone(_)
        ));
        assert_eq!(s.get(&cm, Some("team"), "a").unwrap_err().code, 404);
        assert!(matches!(
            s.delete(&cm, Some("default"), "held", None, false).unwrap(),
            Deleted::Pending(_)
        ));
        s.modify(&cm, Some("default"), "held", false, false, |o| {
            o["metadata"]["finalizers"] = json!([]);
            Ok(())
        })
        .unwrap();
        assert_eq!(s.get(&cm, Some("default"), "held").unwrap_err().code, 404);
    }
}

//! The kinds the fake serves, and the discovery documents that describe them.
//!
//! Clients (kube's `discovery::pinned_kind`, `kubectl`) find a kind's plural and scope through
//! `/api/v1` and `/apis/<group>/<version>`; those documents are generated from this registry, so
//! a kind registered at run time is discoverable at once.

use serde_json::{Value, json};

/// One resource type: where it lives in the API and how it behaves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KindSpec {
    /// API group; empty for the core group (`v1`).
    pub group: String,
    pub version: String,
    pub kind: String,
    /// The URL segment, e.g. `configmaps`.
    pub plural: String,
    pub namespaced: bool,
    /// Writes to the main resource keep the stored `status`; only `/status` changes it (as for
    /// Jobs, Deployments, Pods and Namespaces in a real cluster).
    pub status_subresource: bool,
}

impl KindSpec {
    /// A namespaced kind without a status subresource; adjust the fields for anything else.
    pub fn new(group: &str, version: &str, kind: &str, plural: &str) -> Self {
        Self {
            group: group.into(),
            version: version.into(),
            kind: kind.into(),
            plural: plural.into(),
            namespaced: true,
            status_subresource: false,
        }
    }

    #[must_use]
    pub fn cluster_scoped(mut self) -> Self {
        self.namespaced = false;
        self
    }

    #[must_use]
    pub fn with_status(mut self) -> Self {
        self.status_subresource = true;
        self
    }

    /// `v1` or `<group>/<version>`, as in an object's `apiVersion`.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    fn singular(&self) -> String {
        self.kind.to_ascii_lowercase()
    }
}

/// The kinds every fake starts with.
pub fn builtin() -> Vec<KindSpec> {
    vec![
        KindSpec::new("", "v1", "Namespace", "namespaces")
            .cluster_scoped()
            .with_status(),
        KindSpec::new("", "v1", "ConfigMap", "configmaps"),
        KindSpec::new("", "v1", "Secret", "secrets"),
        KindSpec::new("", "v1", "Pod", "pods").with_status(),
        KindSpec::new("", "v1", "Service", "services").with_status(),
        KindSpec::new("", "v1", "ServiceAccount", "serviceaccounts"),
        KindSpec::new("batch", "v1", "Job", "jobs").with_status(),
        KindSpec::new("apps", "v1", "Deployment", "deployments").with_status(),
    ]
}

const VERBS: [&str; 8] = [
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

/// kubectl's short names (`kubectl get ns`).
fn short_name(plural: &str) -> Option<&'static str> {
    Some(match plural {
        "namespaces" => "ns",
        "configmaps" => "cm",
        "pods" => "po",
        "services" => "svc",
        "serviceaccounts" => "sa",
        "deployments" => "deploy",
        _ => return None,
    })
}

/// `GET /api`.
pub fn core_versions(server: &str) -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server}],
    })
}

fn group_entry(group: &str, kinds: &[KindSpec]) -> Value {
    let mut versions: Vec<String> = kinds
        .iter()
        .filter(|k| k.group == group)
        .map(|k| k.version.clone())
        .collect();
    versions.dedup();
    let entries: Vec<Value> = versions
        .iter()
        .map(|v| json!({"groupVersion": format!("{group}/{v}"), "version": v}))
        .collect();
    json!({
        "name": group,
        "versions": entries,
        "preferredVersion": entries.first().cloned().unwrap_or(Value::Null),
    })
}

/// `GET /apis`: every non-core group.
pub fn group_list(kinds: &[KindSpec]) -> Value {
    let mut groups: Vec<&str> = kinds
        .iter()
        .map(|k| k.group.as_str())
        .filter(|g| !g.is_empty())
        .collect();
    groups.sort_unstable();
    groups.dedup();
    json!({
        "kind": "APIGroupList",
        "apiVersion": "v1",
        "groups": groups.iter().map(|g| group_entry(g, kinds)).collect::<Vec<_>>(),
    })
}

/// `GET /apis/<group>`, or `None` when no kind is in that group.
pub fn group(group: &str, kinds: &[KindSpec]) -> Option<Value> {
    kinds.iter().any(|k| k.group == group).then(|| {
        let mut entry = group_entry(group, kinds);
        entry["kind"] = "APIGroup".into();
        entry["apiVersion"] = "v1".into();
        entry
    })
}

/// `GET /api/v1` or `GET /apis/<group>/<version>`, or `None` for an unknown group version.
pub fn resource_list(group: &str, version: &str, kinds: &[KindSpec]) -> Option<Value> {
    let mut resources = Vec::new();
    for k in kinds
        .iter()
        .filter(|k| k.group == group && k.version == version)
    {
        let mut resource = json!({
            "name": k.plural,
            "singularName": k.singular(),
            "namespaced": k.namespaced,
            "kind": k.kind,
            "verbs": VERBS,
        });
        if let Some(short) = short_name(&k.plural) {
            resource["shortNames"] = json!([short]);
        }
        resources.push(resource);
        if k.status_subresource {
            resources.push(json!({
                "name": format!("{}/status", k.plural),
                "singularName": "",
                "namespaced": k.namespaced,
                "kind": k.kind,
                "verbs": ["get", "patch", "update"],
            }));
        }
        if k.kind == "Pod" && k.group.is_empty() {
            resources.push(json!({
                "name": "pods/log", "singularName": "", "namespaced": true, "kind": "Pod", "verbs": ["get"],
            }));
        }
    }
    if resources.is_empty() {
        return None;
    }
    let group_version = if group.is_empty() {
        version.to_owned()
    } else {
        format!("{group}/{version}")
    };
    Some(json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": group_version,
        "resources": resources,
    }))
}

/// `GET /version`.
pub fn version() -> Value {
    json!({
        "major": "1",
        "minor": "33",
        "gitVersion": "v1.33.0-steadfast-fake",
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2026-01-01T00:00:00Z",
        "goVersion": "go1.24",
        "compiler": "gc",
        "platform": "linux/amd64",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_list_builtin_kinds_with_scope_and_status() {
        let kinds = builtin();
        let core = resource_list("", "v1", &kinds).unwrap();
        let names: Vec<&str> = core["resources"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["name"].as_str().unwrap())
            .collect();
        assert!(names.contains(&"namespaces") && names.contains(&"namespaces/status"));
        assert!(names.contains(&"configmaps") && !names.contains(&"configmaps/status"));
        let batch = resource_list("batch", "v1", &kinds).unwrap();
        assert_eq!(batch["groupVersion"], "batch/v1");
        assert_eq!(batch["resources"][0]["namespaced"], true);
        let groups = group_list(&kinds);
        assert_eq!(groups["groups"][0]["name"], "apps");
        assert!(resource_list("batch", "v2", &kinds).is_none());
    }
}

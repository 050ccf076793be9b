//! HyperFleet's own load-time rules, reproduced where they differ from ours, so that what its
//! loader refuses we refuse (with its message), and what it accepts we accept
//! (`internal/configloader/validator.go` and `struct_validator.go` in hyperfleet-adapter).
//!
//! Its template check is a regular expression, not a parser: it looks only at the simple forms
//! `{{ .name }}` and `{{ .a.b | f }}`, and only in the places [`super::TemplateCheck`] marks.
//! Anything subtler (`{{ if .x }}`, `{{- .x }}`, a template that does not parse, a function
//! that does not exist) loads there and fails when rendered; we report those as warnings.

use std::collections::BTreeSet;
use std::sync::LazyLock;

use regex::Regex;

/// The names HyperFleet treats as always defined in templates and CEL (`builtinVariables`).
/// Not `resources`: a template may name `resources.<resource>` only.
pub const BUILTINS: [&str; 6] = ["adapter", "config", "env", "event", "now", "date"];

/// HyperFleet's `templateVarRegex`. Go's `\s` is ASCII whitespace, hence `(?-u:\s)`.
static SIMPLE_REFERENCE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\{\{(?-u:\s)*\.([a-zA-Z_][a-zA-Z0-9_\.]*)(?-u:\s)*(?:\|[^}]*)?\}\}")
        .expect("a valid pattern")
});

/// The variables HyperFleet's check sees in `text`: `a.b` for `{{ .a.b }}`.
pub fn simple_references(text: &str) -> impl Iterator<Item = &str> {
    SIMPLE_REFERENCE
        .captures_iter(text)
        .filter_map(|c| c.get(1).map(|m| m.as_str()))
}

/// What HyperFleet counts as defined (`GetDefinedVariables`): the builtins, params, captures,
/// payloads, and `resources.<name>` for each resource.
#[derive(Debug, Default)]
pub struct Defined {
    names: BTreeSet<String>,
}

impl Defined {
    pub fn new(names: impl IntoIterator<Item = String>) -> Self {
        let mut defined = Self::default();
        defined
            .names
            .extend(BUILTINS.iter().map(|b| (*b).to_owned()));
        defined
            .names
            .extend(names.into_iter().filter(|n| !n.is_empty()));
        defined
    }

    /// HyperFleet's `isVariableDefined`: the whole dotted name, its root, or
    /// `resources.<name>` are enough.
    pub fn contains(&self, variable: &str) -> bool {
        if self.names.contains(variable) {
            return true;
        }
        let mut parts = variable.split('.');
        let root = parts.next().unwrap_or_default();
        if self.names.contains(root) {
            return true;
        }
        match parts.next() {
            Some(second) if root == "resources" => {
                self.names.contains(&format!("resources.{second}"))
            }
            _ => false,
        }
    }
}

/// HyperFleet's `resourcename` rule for resource, precondition, post-action and nested
/// discovery names: they are CEL identifiers, and a hyphen would read as minus.
pub fn is_resource_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// HyperFleet's message for a name that breaks [`is_resource_name`].
pub fn resource_name_message(name: &str) -> String {
    format!(
        "{name:?}: must start with lowercase letter and contain only letters, numbers, underscores (no hyphens)"
    )
}

/// The condition operators HyperFleet's criteria package knows (`validoperator`).
pub const OPERATORS: [&str; 8] = [
    "equals",
    "notEquals",
    "in",
    "notIn",
    "contains",
    "greaterThan",
    "lessThan",
    "exists",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_simple_forms_are_seen() {
        let seen: Vec<&str> = simple_references(
            "{{ .a }} {{.b.c}} {{ .d | quote }} {{- .e }} {{ if .f }}{{ end }} {{ printf \"%s\" .g }} {{{ .h }}",
        )
        .collect();
        assert_eq!(seen, ["a", "b.c", "d", "h"]);
    }

    #[test]
    fn resources_are_defined_by_alias_only() {
        let defined = Defined::new(["clusterId".to_owned(), "resources.ns".to_owned()]);
        assert!(defined.contains("clusterId.spec.name"));
        assert!(defined.contains("event.id"));
        assert!(defined.contains("now"));
        assert!(defined.contains("resources.ns.metadata.name"));
        assert!(!defined.contains("resources.other"));
        assert!(!defined.contains("resources"));
        assert!(!defined.contains("clusterID"));
    }

    #[test]
    fn resource_names_follow_hyperfleet() {
        for good in ["ns", "namespace0", "clusterJob", "a_b"] {
            assert!(is_resource_name(good), "{good}");
        }
        for bad in ["", "Ns", "_x", "my-ns", "0ns", "né"] {
            assert!(!is_resource_name(bad), "{bad}");
        }
    }
}

//! Load-time checks of a task config, which also compile it: every template is parsed, every
//! CEL expression compiled and checked for unknown variables, every `ref` file read. All
//! problems are collected, so one `--check-config` run lists them all.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use serde_json::Value;
use steadfast_rules::Environment;

use super::compiled::{Compiled, Manifest};
use super::error::Issue;
use super::task::{ApiCall, Discovery, ParamSource, TaskConfig};
use steadfast_gotemplate::Template;

/// Names every expression and template may use besides params, captures and payloads.
pub const BUILTIN_VARIABLES: [&str; 5] = ["adapter", "config", "env", "event", "resources"];

/// Where `ref` files and file sources are found: relative paths against the task config's
/// directory; absolute paths as written, unless a `--remap-path FROM=TO` prefix matches (for
/// running a config written for the cluster's mount layout on a laptop).
#[derive(Debug, Clone, Default)]
pub struct PathResolver {
    pub base_dir: PathBuf,
    pub remaps: Vec<(PathBuf, PathBuf)>,
}

impl PathResolver {
    pub fn resolve(&self, reference: &str) -> PathBuf {
        let path = Path::new(reference);
        for (from, to) in &self.remaps {
            if let Ok(rest) = path.strip_prefix(from) {
                return if rest.as_os_str().is_empty() {
                    to.clone()
                } else {
                    to.join(rest)
                };
            }
        }
        if path.is_absolute() {
            path.to_owned()
        } else {
            self.base_dir.join(path)
        }
    }
}

struct Validator<'a> {
    issues: Vec<Issue>,
    compiled: Compiled,
    defined: BTreeSet<String>,
    environment: &'a Environment,
    paths: &'a PathResolver,
}

/// Validates and compiles `task`.
pub fn compile(
    task: &TaskConfig,
    environment: &Environment,
    paths: &PathResolver,
) -> Result<Compiled, Vec<Issue>> {
    let mut defined: BTreeSet<String> = BUILTIN_VARIABLES.iter().map(|s| (*s).to_owned()).collect();
    defined.extend(task.params.iter().map(|p| p.name.clone()));
    for precondition in &task.preconditions {
        defined.extend(precondition.capture.iter().map(|c| c.name.clone()));
    }
    if let Some(post) = &task.post {
        defined.extend(post.payloads.iter().map(|p| p.name.clone()));
    }
    let mut v = Validator {
        issues: Vec::new(),
        compiled: Compiled {
            environment: Some(environment.clone()),
            ..Compiled::default()
        },
        defined,
        environment,
        paths,
    };
    v.params(task);
    v.preconditions(task);
    v.resources(task);
    v.post(task);
    if v.issues.is_empty() {
        Ok(v.compiled)
    } else {
        Err(v.issues)
    }
}

impl Validator<'_> {
    fn issue(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.issues.push(Issue {
            path: path.into(),
            message: message.into(),
        });
    }

    fn unique_names<'n>(&mut self, section: &str, names: impl Iterator<Item = &'n str>) {
        let mut seen = HashMap::new();
        for (i, name) in names.enumerate() {
            let path = format!("{section}[{i}].name");
            if name.trim().is_empty() {
                self.issue(path, "name is required");
            } else if let Some(first) = seen.insert(name.to_owned(), i) {
                self.issue(
                    path,
                    format!("duplicate name \"{name}\" (also {section}[{first}])"),
                );
            }
        }
    }

    fn template(&mut self, source: &str, path: &str) {
        if source.is_empty() || self.compiled.templates.contains_key(source) {
            return;
        }
        match Template::parse(source) {
            Ok(template) => {
                for root in template.root_variables() {
                    if !self.defined.contains(&root) {
                        self.issue(path, format!("undefined template variable \"{root}\" (not a param, capture, payload or one of adapter, config, env, event, resources)"));
                    }
                }
                self.compiled.templates.insert(source.to_owned(), template);
            }
            Err(e) => self.issue(path, e.to_string()),
        }
    }

    fn expression(&mut self, source: &str, path: &str) {
        if self.compiled.expressions.contains_key(source) {
            return;
        }
        if source.trim().is_empty() {
            self.issue(path, "CEL parse error: the expression is empty");
            return;
        }
        match self.environment.compile(source) {
            Ok(expression) => {
                let variables = expression.free_variables();
                for variable in &variables {
                    if !self.defined.contains(variable) {
                        self.issue(
                            path,
                            format!(
                                "CEL expression `{}` uses undefined variable `{variable}`",
                                source.trim()
                            ),
                        );
                    }
                }
                self.compiled
                    .variables
                    .insert(source.to_owned(), variables.into_iter().collect());
                self.compiled
                    .expressions
                    .insert(source.to_owned(), expression);
            }
            Err(e) => self.issue(
                path,
                format!("CEL parse error in `{}`: {}", source.trim(), e.message),
            ),
        }
    }

    fn api_call(&mut self, call: &ApiCall, path: &str) {
        if call.url.trim().is_empty() {
            self.issue(format!("{path}.url"), "url is required");
        }
        self.template(&call.url, &format!("{path}.url"));
        if let Some(body) = &call.body {
            self.template(body, &format!("{path}.body"));
        }
        for (i, header) in call.headers.iter().enumerate() {
            if header.name.trim().is_empty() {
                self.issue(
                    format!("{path}.headers[{i}].name"),
                    "header name is required",
                );
            }
            self.template(&header.value, &format!("{path}.headers[{i}].value"));
        }
        if call.retry_attempts == Some(0) {
            self.issue(
                format!("{path}.retry_attempts"),
                "retry_attempts counts every attempt and must be at least 1",
            );
        }
    }

    fn params(&mut self, task: &TaskConfig) {
        self.unique_names("params", task.params.iter().map(|p| p.name.as_str()));
        for (i, param) in task.params.iter().enumerate() {
            let path = format!("params[{i}].source");
            match &param.source {
                None => self.issue(&path, "source is required"),
                Some(ParamSource::Path(p)) if p.trim().is_empty() => {
                    self.issue(&path, "source is required")
                }
                Some(ParamSource::Path(_)) => {}
                Some(ParamSource::Structured(s)) => {
                    let set = [
                        s.api_call.is_some(),
                        s.expression.is_some(),
                        s.file.is_some(),
                    ]
                    .iter()
                    .filter(|b| **b)
                    .count();
                    if set == 0 {
                        self.issue(&path, "source needs one of api_call, expression or file");
                    } else if set > 1 {
                        self.issue(&path, "api_call, expression and file are mutually exclusive: use one source per param");
                    }
                    if let Some(call) = &s.api_call {
                        self.api_call(call, &format!("{path}.api_call"));
                    }
                    if let Some(expression) = &s.expression {
                        self.expression(expression, &format!("{path}.expression"));
                    }
                    if let Some(file) = &s.file
                        && file.path.as_os_str().is_empty()
                    {
                        self.issue(
                            format!("{path}.file.path"),
                            "path is required for file source",
                        );
                    }
                }
            }
        }
    }

    fn preconditions(&mut self, task: &TaskConfig) {
        self.unique_names(
            "preconditions",
            task.preconditions.iter().map(|p| p.name.as_str()),
        );
        for (i, pre) in task.preconditions.iter().enumerate() {
            let path = format!("preconditions[{i}]");
            if pre.api_call.is_none() && pre.expression.is_none() && pre.conditions.is_empty() {
                self.issue(
                    &path,
                    "a precondition needs conditions, an expression or an api_call",
                );
            }
            if let Some(call) = &pre.api_call {
                self.api_call(call, &format!("{path}.api_call"));
            }
            if let Some(expression) = &pre.expression {
                self.expression(expression, &format!("{path}.expression"));
            }
            if let Some(log) = &pre.log {
                self.template(&log.message, &format!("{path}.log.message"));
            }
            for (j, capture) in pre.capture.iter().enumerate() {
                let cpath = format!("{path}.capture[{j}]");
                match (&capture.field, &capture.expression) {
                    (Some(_), Some(_)) => {
                        self.issue(cpath, "field and expression are mutually exclusive")
                    }
                    (None, None) => self.issue(cpath, "a capture needs a field or an expression"),
                    (None, Some(e)) => self.expression_with(
                        e,
                        &format!("{cpath}.expression"),
                        pre.api_call.is_some(),
                    ),
                    (Some(_), None) => {}
                }
            }
            for (j, condition) in pre.conditions.iter().enumerate() {
                let cpath = format!("{path}.conditions[{j}]");
                use super::task::Operator::{Exists, In, NotExists, NotIn};
                if condition.value.is_some() && condition.values.is_some() {
                    self.issue(&cpath, "value and values are mutually exclusive");
                }
                let value = condition.value.as_ref().or(condition.values.as_ref());
                match (condition.operator, value) {
                    (Exists | NotExists, Some(_)) => self.issue(
                        &cpath,
                        format!(
                            "value/values should not be set for operator \"{}\"",
                            condition.operator.as_str()
                        ),
                    ),
                    (Exists | NotExists, None) => {}
                    (op, None) => self.issue(
                        &cpath,
                        format!("value is required for operator \"{}\"", op.as_str()),
                    ),
                    (In | NotIn, Some(v)) if !v.is_array() => self.issue(
                        &cpath,
                        format!(
                            "value must be a list for operator \"{}\"",
                            condition.operator.as_str()
                        ),
                    ),
                    _ => {}
                }
                if condition.field.trim().is_empty() {
                    self.issue(format!("{cpath}.field"), "field is required");
                }
            }
        }
    }

    /// Capture expressions of an old-style precondition read the API response's fields as
    /// top-level variables, which cannot be known at load; only syntax is checked for them.
    fn expression_with(&mut self, source: &str, path: &str, reads_response: bool) {
        if !reads_response {
            return self.expression(source, path);
        }
        match self.environment.compile(source) {
            Ok(expression) => {
                self.compiled
                    .expressions
                    .insert(source.to_owned(), expression);
            }
            Err(e) => self.issue(
                path,
                format!("CEL parse error in `{}`: {}", source.trim(), e.message),
            ),
        }
    }

    fn resources(&mut self, task: &TaskConfig) {
        self.unique_names("resources", task.resources.iter().map(|r| r.name.as_str()));
        for (i, resource) in task.resources.iter().enumerate() {
            let path = format!("resources[{i}]");
            if !resource.name.is_empty() && !is_identifier(&resource.name) {
                self.issue(format!("{path}.name"), format!("\"{}\" must be an identifier (letters, digits, _), as it is read as resources.{} in CEL", resource.name, resource.name));
            }
            match resource.transport_client() {
                "kubernetes" => {}
                "maestro" => {} // refused before validation, with its own message
                other => self.issue(format!("{path}.transport.client"), format!("unsupported transport client \"{other}\" (supported: kubernetes; maestro is not supported yet)")),
            }
            let manifest = match (&resource.manifest, resource.manifest_ref()) {
                (None, _) => {
                    self.issue(
                        format!("{path}.manifest"),
                        format!(
                            "manifest is required for {} transport",
                            resource.transport_client()
                        ),
                    );
                    None
                }
                (Some(_), Some(reference)) => {
                    self.manifest_ref(reference, &format!("{path}.manifest.ref"))
                }
                (Some(Value::String(text)), None) => {
                    self.template(text, &format!("{path}.manifest"));
                    self.compiled
                        .templates
                        .get(text.as_str())
                        .cloned()
                        .map(Manifest::Text)
                }
                (Some(object @ Value::Object(_)), None) => {
                    self.object_templates(object, &format!("{path}.manifest"));
                    Some(Manifest::Object(object.clone()))
                }
                (Some(other), None) => {
                    self.issue(format!("{path}.manifest"), format!("manifest must be an object, a template string or {{ref: file}}, not {other}"));
                    None
                }
            };
            if let Some(Manifest::Object(object)) = &manifest {
                for field in ["apiVersion", "kind"] {
                    if object
                        .get(field)
                        .and_then(Value::as_str)
                        .is_none_or(str::is_empty)
                    {
                        self.issue(
                            format!("{path}.manifest.{field}"),
                            format!("the manifest needs {field}"),
                        );
                    }
                }
            }
            self.compiled.manifests.push(manifest);
            match &resource.discovery {
                None => self.issue(
                    format!("{path}.discovery"),
                    "discovery is required: by_name or by_selectors",
                ),
                Some(d) => self.discovery(d, &format!("{path}.discovery")),
            }
            for (j, nested) in resource.nested_discoveries.iter().enumerate() {
                self.discovery(
                    &nested.discovery,
                    &format!("{path}.nested_discoveries[{j}].discovery"),
                );
            }
            if let Some(lifecycle) = &resource.lifecycle {
                if let Some(create) = &lifecycle.create {
                    match &create.when {
                        Some(when) if !when.expression.trim().is_empty() => self.expression(&when.expression, &format!("{path}.lifecycle.create.when.expression")),
                        _ => self.issue(format!("{path}.lifecycle.create.when.expression"), "lifecycle.create.when.expression is required when lifecycle.create is configured"),
                    }
                }
                if let Some(delete) = &lifecycle.delete {
                    if let Some(policy) = &delete.propagation_policy
                        && !["Background", "Foreground", "Orphan"].contains(&policy.as_str())
                    {
                        self.issue(format!("{path}.lifecycle.delete.propagationPolicy"), format!("invalid propagationPolicy \"{policy}\": must be one of Background, Foreground, Orphan"));
                    }
                    match &delete.when {
                        Some(when) if !when.expression.trim().is_empty() => self.expression(&when.expression, &format!("{path}.lifecycle.delete.when.expression")),
                        _ => self.issue(format!("{path}.lifecycle.delete.when.expression"), "lifecycle.delete.when.expression is required: without it the resource would never be deleted"),
                    }
                }
            }
        }
    }

    fn manifest_ref(&mut self, reference: &str, path: &str) -> Option<Manifest> {
        let text = self.read_ref(reference, path)?;
        // Plain YAML (templates only inside values) is rendered leaf by leaf like an inline
        // manifest; a file using template control structure is rendered as text.
        match serde_norway::from_str::<Value>(&text) {
            Ok(object @ Value::Object(_)) => {
                self.object_templates(&object, path);
                Some(Manifest::Object(object))
            }
            _ => {
                self.template(&text, path);
                self.compiled
                    .templates
                    .get(&text)
                    .cloned()
                    .map(Manifest::Text)
            }
        }
    }

    fn read_ref(&mut self, reference: &str, path: &str) -> Option<String> {
        if reference.trim().is_empty() {
            self.issue(path, "manifest ref cannot be empty");
            return None;
        }
        let resolved = self.paths.resolve(reference);
        match std::fs::read_to_string(&resolved) {
            Ok(text) => Some(text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                self.issue(path, format!("referenced file \"{reference}\" does not exist (resolved to \"{}\"; mount it, or map it with --remap-path FROM=TO)", resolved.display()));
                None
            }
            Err(e) => {
                self.issue(
                    path,
                    format!(
                        "cannot read referenced file \"{}\": {e}",
                        resolved.display()
                    ),
                );
                None
            }
        }
    }

    fn object_templates(&mut self, value: &Value, path: &str) {
        match value {
            Value::String(s) => self.template(s, path),
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    self.object_templates(item, &format!("{path}[{i}]"));
                }
            }
            Value::Object(map) => {
                for (key, item) in map {
                    self.template(key, &format!("{path}.{key}"));
                    self.object_templates(item, &format!("{path}.{key}"));
                }
            }
            _ => {}
        }
    }

    fn discovery(&mut self, discovery: &Discovery, path: &str) {
        if let Some(ns) = &discovery.namespace {
            self.template(ns, &format!("{path}.namespace"));
        }
        match (&discovery.by_name, &discovery.by_selectors) {
            (Some(_), Some(_)) => {
                self.issue(path, "by_name and by_selectors are mutually exclusive")
            }
            (None, None) => self.issue(path, "discovery needs by_name or by_selectors"),
            (Some(name), None) => self.template(name, &format!("{path}.by_name")),
            (None, Some(selectors)) => {
                if selectors.label_selector.is_empty() {
                    self.issue(
                        format!("{path}.by_selectors.label_selector"),
                        "label_selector needs at least one label",
                    );
                }
                for (key, value) in &selectors.label_selector {
                    self.template(key, &format!("{path}.by_selectors.label_selector"));
                    self.template(value, &format!("{path}.by_selectors.label_selector[{key}]"));
                }
            }
        }
    }

    fn post(&mut self, task: &TaskConfig) {
        let Some(post) = &task.post else {
            return;
        };
        self.unique_names(
            "post.payloads",
            post.payloads.iter().map(|p| p.name.as_str()),
        );
        for (i, payload) in post.payloads.iter().enumerate() {
            let path = format!("post.payloads[{i}]");
            if let Some(when) = &payload.when {
                self.expression(&when.expression, &format!("{path}.when.expression"));
            }
            let build = match (&payload.build, &payload.build_ref) {
                (Some(_), Some(_)) => {
                    self.issue(&path, "'build' and 'build_ref' are mutually exclusive");
                    None
                }
                (None, None) => {
                    self.issue(&path, "either 'build' or 'build_ref' must be set");
                    None
                }
                (Some(build), None) => Some(build.clone()),
                (None, Some(reference)) => self
                    .read_ref(reference, &format!("{path}.build_ref"))
                    .and_then(|text| match serde_norway::from_str::<Value>(&text) {
                        Ok(v) => Some(v),
                        Err(e) => {
                            self.issue(
                                format!("{path}.build_ref"),
                                format!("failed to parse YAML file \"{reference}\": {e}"),
                            );
                            None
                        }
                    }),
            };
            if let Some(build) = &build {
                self.build(build, &format!("{path}.build"));
            }
            self.compiled.builds.push(build);
        }
        self.unique_names(
            "post.post_actions",
            post.post_actions.iter().map(|p| p.name.as_str()),
        );
        for (i, action) in post.post_actions.iter().enumerate() {
            let path = format!("post.post_actions[{i}]");
            if let Some(when) = &action.when {
                self.expression(&when.expression, &format!("{path}.when.expression"));
            }
            if let Some(call) = &action.api_call {
                self.api_call(call, &format!("{path}.api_call"));
            }
            if let Some(log) = &action.log {
                self.template(&log.message, &format!("{path}.log.message"));
            }
        }
    }

    /// A payload build: `{expression: ...}` and `{field: ...}` are values to compute (with an
    /// optional `default`), strings are templates, anything else is literal.
    fn build(&mut self, value: &Value, path: &str) {
        match value {
            Value::String(s) => self.template(s, path),
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    self.build(item, &format!("{path}[{i}]"));
                }
            }
            Value::Object(map) => {
                let expression = map.get("expression");
                let field = map.get("field");
                if expression.is_some() || field.is_some() {
                    if expression.is_some() && field.is_some() {
                        self.issue(path, "field and expression are mutually exclusive");
                    }
                    if let Some(extra) = map
                        .keys()
                        .find(|k| !["expression", "field", "default"].contains(&k.as_str()))
                    {
                        self.issue(
                            path,
                            format!(
                                "unexpected key \"{extra}\" next to {}",
                                if expression.is_some() {
                                    "expression"
                                } else {
                                    "field"
                                }
                            ),
                        );
                    }
                    match expression {
                        Some(Value::String(e)) => self.expression(e, &format!("{path}.expression")),
                        Some(other) => self.issue(
                            format!("{path}.expression"),
                            format!("expression must be a string, not {other}"),
                        ),
                        None => {}
                    }
                    if let Some(f) = field
                        && !f.is_string()
                    {
                        self.issue(
                            format!("{path}.field"),
                            "field must be a dotted path string",
                        );
                    }
                    return;
                }
                for (key, item) in map {
                    self.template(key, &format!("{path}.{key}"));
                    self.build(item, &format!("{path}.{key}"));
                }
            }
            _ => {}
        }
    }
}

fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

//! The four sections of a task config, walked in order: params, preconditions, resources,
//! post. Each rule is a refusal where HyperFleet refuses and a warning where only we look.

use std::collections::{BTreeSet, HashMap};

use serde_json::Value;

use super::hyperfleet;
use super::{Reads, TemplateCheck, Unparsable, Validator};
use crate::config::compiled::Manifest;
use crate::config::task::{Discovery, Operator, ParamSource, TaskConfig, ValueDefinition};

/// How a repeated name is treated: HyperFleet refuses duplicate resources, and lets every
/// other section repeat a name (the later one wins at run time).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Duplicates {
    Refuse,
    Warn,
}

impl Validator<'_> {
    /// Names: required everywhere (HyperFleet); `resourcename` where HyperFleet asks it.
    fn names<'n>(
        &mut self,
        section: &str,
        names: impl Iterator<Item = &'n str>,
        resource_names: bool,
        duplicates: Duplicates,
    ) {
        let mut seen = HashMap::new();
        let mut duplicate_refused = false;
        for (i, name) in names.enumerate() {
            let path = format!("{section}[{i}].name");
            if name.is_empty() {
                self.refuse(path, "is required");
                continue;
            }
            if resource_names && !hyperfleet::is_resource_name(name) {
                self.refuse(&path, hyperfleet::resource_name_message(name));
            }
            if let Some(first) = seen.insert(name.to_owned(), i) {
                match duplicates {
                    Duplicates::Refuse if !duplicate_refused => {
                        duplicate_refused = true;
                        self.refuse(section, "contains duplicate name values");
                    }
                    Duplicates::Refuse => {}
                    Duplicates::Warn => self.warn(
                        path,
                        format!("duplicate name \"{name}\" (also {section}[{first}]); the later one wins"),
                    ),
                }
            }
        }
    }

    pub(super) fn params(&mut self, task: &TaskConfig) {
        self.names(
            "params",
            task.params.iter().map(|p| p.name.as_str()),
            false,
            Duplicates::Warn,
        );
        // A param's api_call may use the builtins and the params before it (HyperFleet).
        let mut earlier = BTreeSet::new();
        for (i, param) in task.params.iter().enumerate() {
            let path = format!("params[{i}].source");
            match &param.source {
                None => self.refuse(&path, "is required"),
                Some(ParamSource::Path(p)) if p.trim().is_empty() => {
                    self.refuse(&path, "is required")
                }
                Some(ParamSource::Path(source)) => {
                    if let Some(var) = source.strip_prefix("env.")
                        && param.required
                        && param.default.is_none()
                        && self
                            .inputs
                            .process_env
                            .get(var)
                            .is_none_or(String::is_empty)
                    {
                        self.refuse(
                            format!("params[{i}]"),
                            format!("required environment variable {var} is not set"),
                        );
                    }
                    let head = source.split('.').next().unwrap_or_default();
                    if let Some(why) = self.never_set.get(head).cloned()
                        && !param.required
                        && param.default.is_none()
                    {
                        self.never_set.insert(
                            param.name.clone(),
                            format!("params[{i}] reads `{head}`, which is never set ({why})"),
                        );
                    }
                }
                Some(ParamSource::Structured(s)) => {
                    let set = [
                        s.api_call.is_some(),
                        s.expression.is_some(),
                        s.file.is_some(),
                    ]
                    .into_iter()
                    .filter(|b| *b)
                    .count();
                    if set == 0 {
                        self.refuse(
                            &path,
                            "mapping must contain one of 'api_call', 'expression', or 'file'",
                        );
                    } else if set > 1 {
                        self.refuse(
                            &path,
                            "only one of 'api_call', 'expression', or 'file' may be set",
                        );
                    }
                    if let Some(call) = &s.api_call {
                        self.api_call(
                            call,
                            &format!("{path}.api_call"),
                            TemplateCheck::EarlierParams(&earlier),
                        );
                    }
                    if let Some(expression) = &s.expression {
                        if expression.trim().is_empty() {
                            self.refuse(&path, "expression must not be empty");
                        } else {
                            self.expression(expression, &format!("{path}.expression"));
                            self.never_set_param(i, param, expression, &path);
                        }
                    }
                    if let Some(file) = &s.file {
                        let file_path = format!("{path}.file.path");
                        if file.path.as_os_str().is_empty() {
                            self.refuse(file_path, "path is required for file source");
                        } else if !file.path.is_absolute() {
                            self.warn(file_path, format!("file source path {:?} is not absolute; in container deployments, use absolute paths for mounted volumes", file.path.display().to_string()));
                        }
                    }
                }
            }
            if !param.name.is_empty() {
                earlier.insert(param.name.clone());
            }
        }
    }

    /// An expression param that reads an undefined or never-set variable fails on every
    /// event: a required one fails the params phase (a warning here); an optional one without
    /// a default is never set, and what reads it warns in turn.
    fn never_set_param(
        &mut self,
        index: usize,
        param: &crate::config::task::Param,
        expression: &str,
        path: &str,
    ) {
        let (undefined, never_set) = self.unresolvable(expression);
        if (undefined.is_empty() && never_set.is_empty()) || param.default.is_some() {
            return;
        }
        let quoted = |names: &[String]| {
            names
                .iter()
                .map(|v| format!("`{v}`"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let mut reasons = Vec::new();
        if !undefined.is_empty() {
            reasons.push(format!("{} undefined", quoted(&undefined)));
        }
        if !never_set.is_empty() {
            reasons.push(format!("{} never set", quoted(&never_set)));
        }
        let why = format!(
            "params[{index}] ({}) reads {}",
            param.name,
            reasons.join(" and ")
        );
        if param.required {
            self.warn(
                format!("{path}.expression"),
                format!("{why}: every event fails the params phase"),
            );
        } else {
            self.never_set
                .insert(param.name.clone(), format!("{why}, and has no default"));
        }
    }

    pub(super) fn preconditions(&mut self, task: &TaskConfig) {
        self.names(
            "preconditions",
            task.preconditions.iter().map(|p| p.name.as_str()),
            true,
            Duplicates::Warn,
        );
        for (i, pre) in task.preconditions.iter().enumerate() {
            let path = format!("preconditions[{i}]");
            let expression = pre.expression.as_deref().filter(|e| !e.is_empty());
            if pre.api_call.is_none() && expression.is_none() && pre.conditions.is_empty() {
                self.refuse(&path, "must specify api_call, expression or conditions");
            }
            if let Some(call) = &pre.api_call {
                self.warn(format!("{path}.api_call"), format!("DEPRECATED: precondition {:?} uses api_call directly. Move the api_call block to a params entry with source.api_call instead (HyperFleet will remove this form)", pre.name));
                self.api_call(call, &format!("{path}.api_call"), TemplateCheck::Defined);
            }
            if let Some(expression) = expression {
                self.expression(expression, &format!("{path}.expression"));
            }
            if let Some(log) = &pre.log {
                self.template(
                    &log.message,
                    &format!("{path}.log.message"),
                    TemplateCheck::Unchecked,
                );
            }
            for (j, capture) in pre.capture.iter().enumerate() {
                let cpath = format!("{path}.capture[{j}]");
                if capture.name.is_empty() {
                    self.refuse(format!("{cpath}.name"), "is required");
                }
                let field = capture.field.as_deref().filter(|f| !f.is_empty());
                let expression = capture.expression.as_deref().filter(|e| !e.is_empty());
                match (field, expression) {
                    (Some(_), Some(_)) => {
                        self.refuse(cpath, "'field' and 'expression' are mutually exclusive")
                    }
                    (None, None) => {
                        self.refuse(cpath, "must have either 'field' or 'expression' set")
                    }
                    (None, Some(e)) => {
                        let reads = if pre.api_call.is_some() {
                            Reads::ApiResponse
                        } else {
                            Reads::Known
                        };
                        self.expression_checked(
                            e,
                            &format!("{cpath}.expression"),
                            reads,
                            Unparsable::Refuse,
                        )
                    }
                    (Some(_), None) => {}
                }
            }
            for (j, condition) in pre.conditions.iter().enumerate() {
                self.condition(condition, &format!("{path}.conditions[{j}]"));
            }
        }
    }

    fn condition(&mut self, condition: &crate::config::task::Condition, path: &str) {
        use Operator::{Exists, In, NotExists, NotIn};
        let op = condition.operator.as_str();
        if condition.value.is_some() && condition.values.is_some() {
            self.refuse(
                path,
                "condition has both 'value' and 'values' keys; use only one",
            );
        }
        if !hyperfleet::OPERATORS.contains(&op) {
            self.warn(path, format!("operator {op:?} is a Steadfast extension: HyperFleet refuses it (its operators: {})", hyperfleet::OPERATORS.join(", ")));
        }
        let value = condition.value.as_ref().or(condition.values.as_ref());
        match (condition.operator, value) {
            (Exists, Some(_)) => self.refuse(
                path,
                format!("value/values should not be set for operator \"{op}\""),
            ),
            (NotExists, Some(_)) => self.warn(
                path,
                format!("value/values are ignored for operator \"{op}\""),
            ),
            (Exists | NotExists, None) => {}
            (_, None) => self.refuse(path, format!("value is required for operator {op:?}")),
            (In | NotIn, Some(v)) if !v.is_array() => {
                self.refuse(path, format!("value must be a list for operator {op:?}"))
            }
            _ => {}
        }
        if condition.field.trim().is_empty() {
            self.warn(
                format!("{path}.field"),
                "field is empty: the condition can never read a value",
            );
        }
    }

    pub(super) fn resources(&mut self, task: &TaskConfig) {
        self.names(
            "resources",
            task.resources.iter().map(|r| r.name.as_str()),
            true,
            Duplicates::Refuse,
        );
        for (i, resource) in task.resources.iter().enumerate() {
            let path = format!("resources[{i}]");
            match resource.transport_client() {
                "kubernetes" => {}
                "maestro" => {} // refused before validation, with its own message
                other => self.refuse(
                    format!("{path}.transport.client"),
                    format!("unsupported transport client {other:?} (supported: kubernetes, maestro; maestro is not supported by Steadfast yet)"),
                ),
            }
            let manifest = self.manifest(resource, &path);
            self.compiled.manifests.push(manifest);
            match &resource.discovery {
                None => self.refuse(format!("{path}.discovery"), "is required"),
                Some(d) => self.discovery(d, &format!("{path}.discovery")),
            }
            let nested_path = format!("{path}.nested_discoveries");
            self.names(
                &nested_path,
                resource.nested_discoveries.iter().map(|n| n.name.as_str()),
                true,
                Duplicates::Warn,
            );
            for (j, nested) in resource.nested_discoveries.iter().enumerate() {
                self.discovery(&nested.discovery, &format!("{nested_path}[{j}].discovery"));
            }
            self.lifecycle(resource, &path);
        }
    }

    fn manifest(
        &mut self,
        resource: &crate::config::task::Resource,
        path: &str,
    ) -> Option<Manifest> {
        let manifest = match (&resource.manifest, resource.manifest_ref()) {
            (None, _) => {
                self.refuse(
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
                self.template(text, &format!("{path}.manifest"), TemplateCheck::Defined);
                self.compiled
                    .templates
                    .get(text.as_str())
                    .cloned()
                    .map(Manifest::Text)
            }
            (Some(object @ Value::Object(_)), None) => {
                self.object_templates(object, &format!("{path}.manifest"), TemplateCheck::Defined);
                Some(Manifest::Object(object.clone()))
            }
            (Some(other), None) => {
                self.refuse(format!("{path}.manifest"), format!("manifest must be an object, a template string or {{ref: file}}, not {other}"));
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
                    self.warn(
                        format!("{path}.manifest.{field}"),
                        format!("the manifest has no {field}: applying it fails at run time"),
                    );
                }
            }
        }
        manifest
    }

    fn lifecycle(&mut self, resource: &crate::config::task::Resource, path: &str) {
        let Some(lifecycle) = &resource.lifecycle else {
            return;
        };
        if let Some(create) = &lifecycle.create {
            match &create.when {
                Some(when) if !when.expression.is_empty() => self.expression(
                    &when.expression,
                    &format!("{path}.lifecycle.create.when.expression"),
                ),
                _ => self.refuse(
                    format!("{path}.lifecycle.create.when.expression"),
                    "lifecycle.create.when.expression is required when lifecycle.create is configured",
                ),
            }
        }
        if let Some(delete) = &lifecycle.delete {
            if let Some(policy) = &delete.propagation_policy
                && !policy.is_empty()
                && !["Background", "Foreground", "Orphan"].contains(&policy.as_str())
            {
                self.refuse(
                    format!("{path}.lifecycle.delete.propagationPolicy"),
                    format!("invalid propagationPolicy {policy:?}: must be one of Background, Foreground, Orphan"),
                );
            }
            match &delete.when {
                Some(when) if !when.expression.is_empty() => self.expression(
                    &when.expression,
                    &format!("{path}.lifecycle.delete.when.expression"),
                ),
                _ => self.refuse(
                    format!("{path}.lifecycle.delete.when.expression"),
                    "lifecycle.delete.when.expression is required: without it the resource will never be deleted",
                ),
            }
        }
    }

    fn manifest_ref(&mut self, reference: &str, path: &str) -> Option<Manifest> {
        let text = self.read_ref(reference, path)?;
        // Plain YAML (templates only inside values) is rendered leaf by leaf like an inline
        // manifest; a file using template control structure is rendered as text.
        // HyperFleet checks a ref file's text as a template too.
        match serde_norway::from_str::<Value>(&text) {
            Ok(object @ Value::Object(_)) => {
                self.object_templates(&object, path, TemplateCheck::Defined);
                Some(Manifest::Object(object))
            }
            _ => {
                self.template(&text, path, TemplateCheck::Defined);
                self.compiled
                    .templates
                    .get(&text)
                    .cloned()
                    .map(Manifest::Text)
            }
        }
    }

    fn object_templates(&mut self, value: &Value, path: &str, check: TemplateCheck<'_>) {
        match value {
            Value::String(s) => self.template(s, path, check),
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    self.object_templates(item, &format!("{path}[{i}]"), check);
                }
            }
            Value::Object(map) => {
                for (key, item) in map {
                    self.template(key, &format!("{path}.{key}"), check);
                    self.object_templates(item, &format!("{path}.{key}"), check);
                }
            }
            _ => {}
        }
    }

    fn discovery(&mut self, discovery: &Discovery, path: &str) {
        if let Some(ns) = &discovery.namespace {
            self.template(ns, &format!("{path}.namespace"), TemplateCheck::Defined);
        }
        let by_name = discovery.by_name.as_deref().filter(|n| !n.is_empty());
        match (by_name, &discovery.by_selectors) {
            (Some(_), Some(_)) => {
                self.refuse(path, "'by_selectors' and 'by_name' are mutually exclusive")
            }
            (None, None) => self.refuse(path, "must have either 'by_selectors' or 'by_name' set"),
            (Some(name), None) => {
                self.template(name, &format!("{path}.by_name"), TemplateCheck::Defined)
            }
            (None, Some(selectors)) => {
                if selectors.label_selector.is_empty() {
                    self.refuse(format!("{path}.by_selectors.label_selector"), "is required");
                }
                for (key, value) in &selectors.label_selector {
                    self.template(
                        key,
                        &format!("{path}.by_selectors.label_selector"),
                        TemplateCheck::Unchecked,
                    );
                    self.template(
                        value,
                        &format!("{path}.by_selectors.label_selector[{key}]"),
                        TemplateCheck::Defined,
                    );
                }
            }
        }
    }

    pub(super) fn post(&mut self, task: &TaskConfig) {
        let Some(post) = &task.post else {
            return;
        };
        self.names(
            "post.payloads",
            post.payloads.iter().map(|p| p.name.as_str()),
            false,
            Duplicates::Warn,
        );
        for (i, payload) in post.payloads.iter().enumerate() {
            let path = format!("post.payloads[{i}]");
            if let Some(when) = &payload.when {
                self.expression(&when.expression, &format!("{path}.when.expression"));
            }
            let build_ref = payload.build_ref.as_deref().filter(|r| !r.is_empty());
            let build = match (&payload.build, build_ref) {
                (Some(_), Some(_)) => {
                    self.refuse(&path, "'build' and 'build_ref' are mutually exclusive");
                    None
                }
                (None, None) => {
                    self.refuse(&path, "either 'build' or 'build_ref' must be set");
                    None
                }
                (Some(build), None) => {
                    // HyperFleet checks the templates of an inline map build only.
                    let check = if build.is_object() {
                        TemplateCheck::Defined
                    } else {
                        TemplateCheck::Unchecked
                    };
                    self.build(build, &format!("{path}.build"), check, Unparsable::Refuse);
                    Some(build.clone())
                }
                (None, Some(reference)) => {
                    let content = self
                        .read_ref(reference, &format!("{path}.build_ref"))
                        .and_then(|text| match serde_norway::from_str::<Value>(&text) {
                            Ok(v) => Some(v),
                            Err(e) => {
                                self.refuse(
                                    format!("{path}.build_ref"),
                                    format!("failed to parse YAML file {reference:?}: {e}"),
                                );
                                None
                            }
                        });
                    if let Some(content) = &content {
                        self.build(
                            content,
                            &format!("{path}.build_ref"),
                            TemplateCheck::Unchecked,
                            Unparsable::Warn,
                        );
                    }
                    content
                }
            };
            self.compiled.builds.push(build);
        }
        self.names(
            "post.post_actions",
            post.post_actions.iter().map(|p| p.name.as_str()),
            true,
            Duplicates::Warn,
        );
        for (i, action) in post.post_actions.iter().enumerate() {
            let path = format!("post.post_actions[{i}]");
            if let Some(when) = &action.when {
                self.expression(&when.expression, &format!("{path}.when.expression"));
            }
            if let Some(call) = &action.api_call {
                self.api_call(call, &format!("{path}.api_call"), TemplateCheck::Defined);
            }
            if let Some(log) = &action.log {
                self.template(
                    &log.message,
                    &format!("{path}.log.message"),
                    TemplateCheck::Unchecked,
                );
            }
        }
    }

    /// A payload build: a value definition (`{expression}` or `{field}`, with an optional
    /// `default`) is computed; strings are templates; anything else is literal.
    fn build(
        &mut self,
        value: &Value,
        path: &str,
        check: TemplateCheck<'_>,
        unparsable: Unparsable,
    ) {
        match value {
            Value::String(s) => self.template(s, path, check),
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    self.build(item, &format!("{path}[{i}]"), check, unparsable);
                }
            }
            Value::Object(map) => {
                if let Some(definition) = ValueDefinition::of(map) {
                    self.value_definition(map, &definition, path, unparsable);
                    return;
                }
                for (key, item) in map {
                    self.template(key, &format!("{path}.{key}"), TemplateCheck::Unchecked);
                    self.build(item, &format!("{path}.{key}"), check, unparsable);
                }
            }
            _ => {}
        }
    }

    fn value_definition(
        &mut self,
        map: &serde_json::Map<String, Value>,
        definition: &ValueDefinition<'_>,
        path: &str,
        unparsable: Unparsable,
    ) {
        if definition.expression.is_some() && definition.field.is_some() {
            self.warn(path, "field and expression are mutually exclusive: building this payload fails at run time (HyperFleet loads it)");
        }
        if let Some(extra) = map
            .keys()
            .find(|k| !["expression", "field", "default"].contains(&k.as_str()))
        {
            self.warn(
                path,
                format!("unexpected key \"{extra}\" next to field/expression: it is ignored"),
            );
        }
        if let Some(expression) = definition.expression {
            self.expression_checked(
                expression,
                &format!("{path}.expression"),
                Reads::Known,
                unparsable,
            );
        }
    }
}

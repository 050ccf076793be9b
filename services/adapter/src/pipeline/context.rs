//! The state of one execution: params, the adapter's own status (`adapter.*` in CEL) and the
//! discovered resources (`resources.*`), and evaluating CEL and templates over them.

use serde_json::{Map, Value, json};
use steadfast_rules::Evaluator;

use super::error::EvalError;
use super::result::Phase;
use crate::config::Compiled;

/// `adapter.*` in CEL: HyperFleet's execution metadata.
#[derive(Debug, Clone, Default)]
pub struct AdapterStatus {
    pub failed: bool,
    pub resources_skipped: bool,
    pub skip_reason: String,
    pub error_reason: String,
    pub error_message: String,
    pub execution_error: Option<(Phase, String, String)>,
    pub resource_errors: Map<String, Value>,
}

pub struct Context {
    /// Params, captures and payloads, plus the builtins `adapter` (name, version), `config`,
    /// `env`, `event`, and `resources`: the data templates render against.
    data: Value,
    pub adapter: AdapterStatus,
    adapter_name: String,
    adapter_version: String,
}

/// The names that are not params.
pub const BUILTINS: [&str; 5] = ["adapter", "config", "env", "event", "resources"];

impl Context {
    pub fn new(event: Value, config: Value, env: Value, name: &str, version: &str) -> Self {
        let mut data = Map::new();
        data.insert("adapter".into(), json!({"name": name, "version": version}));
        data.insert("config".into(), config);
        data.insert("env".into(), env);
        data.insert("event".into(), event);
        data.insert("resources".into(), Value::Object(Map::new()));
        Self {
            data: Value::Object(data),
            adapter: AdapterStatus::default(),
            adapter_name: name.to_owned(),
            adapter_version: version.to_owned(),
        }
    }

    fn map(&self) -> &Map<String, Value> {
        self.data.as_object().expect("always an object")
    }

    fn map_mut(&mut self) -> &mut Map<String, Value> {
        self.data.as_object_mut().expect("always an object")
    }

    pub fn get(&self, name: &str) -> Option<&Value> {
        self.map().get(name)
    }

    pub fn set(&mut self, name: &str, value: Value) {
        self.map_mut().insert(name.to_owned(), value);
    }

    pub fn event(&self) -> &Value {
        &self.map()["event"]
    }

    /// What templates render against.
    pub fn template_data(&self) -> &Value {
        &self.data
    }

    /// The params without the builtins (for traces).
    pub fn params(&self) -> Map<String, Value> {
        self.map()
            .iter()
            .filter(|(k, _)| !BUILTINS.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    pub fn resources(&self) -> &Map<String, Value> {
        self.map()["resources"].as_object().expect("object")
    }

    pub fn set_resource(&mut self, name: &str, object: Option<Value>) {
        let resources = self.map_mut()["resources"].as_object_mut().expect("object");
        match object {
            Some(object) => {
                resources.insert(name.to_owned(), object);
            }
            // Absent from CEL: `resources.?x.hasValue()` is false once it is deleted.
            None => {
                resources.remove(name);
            }
        }
    }

    /// Records the first failure (later ones do not overwrite it), as HyperFleet does.
    pub fn fail(&mut self, phase: Phase, step: &str, message: &str) {
        self.adapter.failed = true;
        if self.adapter.execution_error.is_none() {
            self.adapter.execution_error = Some((phase, step.to_owned(), message.to_owned()));
            self.adapter.error_reason = phase.as_str().to_owned();
            self.adapter.error_message = message.to_owned();
        }
    }

    pub fn skip(&mut self, reason: &str) {
        self.adapter.resources_skipped = true;
        if self.adapter.skip_reason.is_empty() {
            self.adapter.skip_reason = reason.to_owned();
        }
    }

    /// `adapter` as CEL sees it: name and version, and the execution metadata.
    fn adapter_json(&self) -> Value {
        let error = self.adapter.execution_error.as_ref().map_or(Value::Null, |(phase, step, message)| {
            json!({"phase": phase.as_str(), "step": step, "message": message})
        });
        json!({
            "name": self.adapter_name,
            "version": self.adapter_version,
            "executionStatus": if self.adapter.failed { "failed" } else { "success" },
            "resourcesSkipped": self.adapter.resources_skipped,
            "skipReason": self.adapter.skip_reason,
            "errorReason": self.adapter.error_reason,
            "errorMessage": self.adapter.error_message,
            "executionError": error,
            "resourceErrors": self.adapter.resource_errors,
        })
    }

    /// Evaluates an expression over every variable, with `extra` bound last (capture
    /// expressions see an API response's fields at the top level).
    pub fn evaluate(
        &self,
        evaluator: &Evaluator,
        compiled: &Compiled,
        source: &str,
        extra: Option<&Map<String, Value>>,
    ) -> Result<Value, EvalError> {
        let expression = compiled.expression(source).map_err(EvalError::Compile)?;
        // Bind only what the expression reads (everything when that is unknown): binding
        // converts JSON to CEL values, and most expressions read one or two variables.
        let wanted = compiled.variables(source);
        let reads = |name: &str| wanted.is_none_or(|w| w.iter().any(|v| v == name));
        let adapter = if reads("adapter") {
            self.adapter_json()
        } else {
            Value::Null
        };
        let mut scope = evaluator.scope();
        for (name, value) in self.map() {
            if name != "adapter" && reads(name) {
                scope.bind_json(name, value);
            }
        }
        scope.bind_json("adapter", &adapter);
        if let Some(extra) = extra {
            for (name, value) in extra {
                scope.bind_json(name, value);
            }
        }
        Ok(scope.evaluate_json(&expression)?)
    }

    /// Whether `source` matches, as HyperFleet's `CELResult.Matched` says: a bool is itself,
    /// any other value matches unless it is empty (null, "", [], {}). Evaluation errors are
    /// returned; each caller decides, as HyperFleet's executor does, whether one fails the
    /// step or counts as "not matched".
    pub fn evaluate_matched(
        &self,
        evaluator: &Evaluator,
        compiled: &Compiled,
        source: &str,
    ) -> Result<bool, EvalError> {
        Ok(matched(&self.evaluate(evaluator, compiled, source, None)?))
    }

    pub fn render(&self, compiled: &Compiled, source: &str) -> Result<String, EvalError> {
        Ok(compiled.template(source)?.render(&self.data)?)
    }
}

/// HyperFleet's `Matched` of a CEL result (`isEmptyValue`): see [`Context::evaluate_matched`].
pub fn matched(value: &Value) -> bool {
    match value {
        Value::Bool(b) => *b,
        Value::Null => false,
        Value::String(s) => !s.is_empty(),
        Value::Array(items) => !items.is_empty(),
        Value::Object(map) => !map.is_empty(),
        Value::Number(_) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::matched;
    use serde_json::json;

    /// HyperFleet's `isEmptyValue`: only false, null and empty values do not match.
    #[test]
    fn matched_is_hyperfleets() {
        for (value, expected) in [
            (json!(true), true),
            (json!(false), false),
            (json!(null), false),
            (json!(""), false),
            (json!("no"), true),
            (json!([]), false),
            (json!([0]), true),
            (json!({}), false),
            (json!({"a": 1}), true),
            (json!(0), true),
        ] {
            assert_eq!(matched(&value), expected, "{value}");
        }
    }
}

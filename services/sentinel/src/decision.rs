//! The decision engine: HyperFleet's `message_decision` (ordered CEL params and a boolean
//! result) and `message_data` (the CloudEvent's `data`, a tree of CEL expressions).
//!
//! Compiled once at load; evaluated per resource. Variables: `resource` (the API's JSON,
//! borrowed, not copied), `now` (a timestamp), every earlier param, and `condition(name)`.
//! A param may only use params written before it, as in HyperFleet (no reordering); a name
//! that is neither is a load-time error naming the param.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use serde_json::{Map, Value as Json};
use steadfast_rules::{Environment, Evaluator, Expression, FieldUse};

/// The decision reasons HyperFleet reports (`events_published_total{reason}` and
/// `resources_skipped_total{reason}`).
pub const REASON_MATCHED: &str = "message decision matched";
pub const REASON_FALSE: &str = "message decision result is false";
pub const REASON_FAILED: &str = "message decision evaluation failed";

/// HyperFleet's default `message_decision.params`, exactly as it ships.
pub const DEFAULT_PARAMS: [(&str, &str); 7] = [
    ("ref_time", r#"condition("Reconciled").last_updated_time"#),
    (
        "is_reconciled",
        r#"condition("Reconciled").status == "True""#,
    ),
    ("has_ref_time", r#"ref_time != """#),
    (
        "is_new_resource",
        "resource.generation == 1 && !has_ref_time",
    ),
    (
        "generation_mismatch",
        r#"resource.generation > condition("Reconciled").observed_generation"#,
    ),
    (
        "reconciled_and_stale",
        r#"is_reconciled && has_ref_time && now - timestamp(ref_time) > duration("30m")"#,
    ),
    (
        "not_reconciled_and_debounced",
        r#"!is_reconciled && has_ref_time && now - timestamp(ref_time) > duration("10s")"#,
    ),
];

/// HyperFleet's default `message_decision.result`.
pub const DEFAULT_RESULT: &str = "is_new_resource || generation_mismatch || reconciled_and_stale || not_reconciled_and_debounced";

/// A config problem in `message_decision` or `message_data`, naming where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{location}: {message}")]
pub struct DecisionConfigError {
    pub location: String,
    pub message: String,
}

/// The CEL environment of the sentinel: `ext.Strings()` and `condition(name)`.
pub fn environment() -> Environment {
    Environment::builder()
        .strings()
        .hyperfleet_sentinel()
        .build()
        .expect("the sentinel's functions do not clash with the CEL standard library")
}

fn compile(
    env: &Environment,
    location: &str,
    source: &str,
    known: &[&str],
) -> Result<Expression, DecisionConfigError> {
    let expression = env.compile(source).map_err(|e| DecisionConfigError {
        location: location.to_owned(),
        message: e.to_string(),
    })?;
    if let Some(unknown) = expression
        .free_variables()
        .into_iter()
        .find(|v| !known.contains(&v.as_str()))
    {
        return Err(DecisionConfigError {
            location: location.to_owned(),
            message: format!(
                "`{source}` uses `{unknown}`, which is not defined here (known: {})",
                known.join(", ")
            ),
        });
    }
    Ok(expression)
}

/// What was decided for one resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Publish,
    Skip,
}

impl Decision {
    pub fn reason(&self) -> &'static str {
        match self {
            Decision::Publish => REASON_MATCHED,
            Decision::Skip => REASON_FALSE,
        }
    }
}

/// What of a resource a set of expressions reads, so only that is converted for CEL: the
/// top-level fields they select, and the `condition(...)` names, looked up in the JSON once
/// per resource instead of on every call.
#[derive(Debug, Clone)]
struct ResourceUse {
    fields: FieldUse,
    conditions: BTreeSet<String>,
}

impl ResourceUse {
    fn of<'a>(expressions: impl IntoIterator<Item = &'a Expression>) -> Self {
        let mut fields = FieldUse::Fields(BTreeSet::new());
        let mut conditions = Some(BTreeSet::new());
        for expression in expressions {
            fields.merge(&expression.field_use("resource"));
            match (expression.literal_arguments("condition"), &mut conditions) {
                (Some(names), Some(all)) => all.extend(names),
                _ => conditions = None,
            }
        }
        // A computed `condition(x)` name can only be looked up in `status` at evaluation.
        let conditions = conditions.unwrap_or_else(|| {
            fields.insert("status");
            BTreeSet::new()
        });
        Self { fields, conditions }
    }

    fn bind<'v>(&self, scope: &mut steadfast_rules::Scope<'_, 'v>, resource: &'v Json) {
        scope.bind_json_fields("resource", resource, &self.fields);
        if !self.conditions.is_empty() {
            steadfast_rules::hyperfleet::bind_conditions(scope, resource, &self.conditions);
        }
    }
}

/// `message_decision`, compiled.
#[derive(Debug, Clone)]
pub struct DecisionEngine {
    params: Vec<(String, Expression)>,
    result: Expression,
    uses: ResourceUse,
}

impl DecisionEngine {
    /// HyperFleet's default decision.
    pub fn default_decision() -> Self {
        let params: Vec<(String, String)> = DEFAULT_PARAMS
            .iter()
            .map(|(n, e)| ((*n).to_owned(), (*e).to_owned()))
            .collect();
        Self::compile(&environment(), &params, DEFAULT_RESULT)
            .expect("HyperFleet's default decision compiles")
    }

    /// Compiles `params` (in order) and `result`.
    pub fn compile(
        env: &Environment,
        params: &[(String, String)],
        result: &str,
    ) -> Result<Self, DecisionConfigError> {
        let mut known: Vec<&str> = vec!["resource", "now"];
        let mut compiled = Vec::with_capacity(params.len());
        for (i, (name, source)) in params.iter().enumerate() {
            let location = format!("message_decision.params[{i}] ({name})");
            if name.is_empty() || !is_identifier(name) {
                return Err(DecisionConfigError {
                    location,
                    message: "a param name must be a CEL identifier (letters, digits, `_`)".into(),
                });
            }
            if known.contains(&name.as_str()) {
                return Err(DecisionConfigError {
                    location,
                    message: format!("`{name}` is already defined"),
                });
            }
            compiled.push((name.clone(), compile(env, &location, source, &known)?));
            known.push(name);
        }
        let result = compile(env, "message_decision.result", result, &known)?;
        let uses = ResourceUse::of(compiled.iter().map(|(_, e)| e).chain([&result]));
        Ok(Self {
            params: compiled,
            result,
            uses,
        })
    }

    /// Decides for `resource` at `now`. An error names the failing expression.
    pub fn decide(
        &self,
        evaluator: &Evaluator,
        resource: &Json,
        now: DateTime<Utc>,
    ) -> Result<Decision, steadfast_rules::EvalError> {
        let mut scope = evaluator.scope();
        self.uses.bind(&mut scope, resource);
        scope.bind_timestamp("now", now);
        for (name, expression) in &self.params {
            scope.evaluate_and_bind(name, expression)?;
        }
        Ok(if scope.evaluate_bool(&self.result)? {
            Decision::Publish
        } else {
            Decision::Skip
        })
    }
}

fn is_identifier(name: &str) -> bool {
    name.chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// One node of `message_data`.
#[derive(Debug, Clone)]
enum DataNode {
    Expression(Expression),
    Literal(Json),
    Object(BTreeMap<String, DataNode>),
}

/// `message_data`, compiled: every string leaf is a CEL expression over `resource` and
/// `reason`; numbers and booleans pass through; maps nest.
#[derive(Debug, Clone)]
pub struct MessageTemplate {
    root: BTreeMap<String, DataNode>,
    uses: ResourceUse,
}

impl MessageTemplate {
    pub fn compile(
        env: &Environment,
        data: &Map<String, Json>,
    ) -> Result<Self, DecisionConfigError> {
        fn node(
            env: &Environment,
            path: &str,
            value: &Json,
        ) -> Result<DataNode, DecisionConfigError> {
            Ok(match value {
                Json::String(source) => {
                    DataNode::Expression(compile(env, path, source, &["resource", "reason"])?)
                }
                Json::Number(_) | Json::Bool(_) => DataNode::Literal(value.clone()),
                Json::Object(map) => DataNode::Object(
                    map.iter()
                        .map(|(k, v)| Ok((k.clone(), node(env, &format!("{path}.{k}"), v)?)))
                        .collect::<Result<_, DecisionConfigError>>()?,
                ),
                Json::Null | Json::Array(_) => {
                    return Err(DecisionConfigError {
                        location: path.to_owned(),
                        message: "must be a CEL expression string, a number, a boolean or a map"
                            .into(),
                    });
                }
            })
        }
        if data.is_empty() {
            return Err(DecisionConfigError {
                location: "message_data".into(),
                message: "must define at least one field (e.g. `id: resource.id`)".into(),
            });
        }
        let root: BTreeMap<String, DataNode> = data
            .iter()
            .map(|(k, v)| Ok((k.clone(), node(env, &format!("message_data.{k}"), v)?)))
            .collect::<Result<_, DecisionConfigError>>()?;
        fn expressions<'a>(map: &'a BTreeMap<String, DataNode>, out: &mut Vec<&'a Expression>) {
            for node in map.values() {
                match node {
                    DataNode::Expression(e) => out.push(e),
                    DataNode::Object(inner) => expressions(inner, out),
                    DataNode::Literal(_) => {}
                }
            }
        }
        let mut all = Vec::new();
        expressions(&root, &mut all);
        let uses = ResourceUse::of(all);
        Ok(Self { root, uses })
    }

    /// The event `data` for `resource`. A leaf that fails or is `null` is left out, and so is
    /// a map left empty, as HyperFleet does. Keys come out sorted, as Go's `json.Marshal`
    /// writes a map.
    pub fn render(&self, evaluator: &Evaluator, resource: &Json, reason: &str) -> Json {
        let mut scope = evaluator.scope();
        self.uses.bind(&mut scope, resource);
        scope.bind("reason", reason);
        fn render_map(
            scope: &steadfast_rules::Scope<'_, '_>,
            map: &BTreeMap<String, DataNode>,
        ) -> Map<String, Json> {
            let mut out = Map::new();
            for (key, node) in map {
                let value = match node {
                    DataNode::Literal(v) => Some(v.clone()),
                    DataNode::Expression(e) => match scope.evaluate_json(e) {
                        Ok(Json::Null) => None,
                        Ok(v) => Some(v),
                        Err(error) => {
                            tracing::debug!(%error, field = %key, "message_data field left out");
                            None
                        }
                    },
                    DataNode::Object(inner) => {
                        let rendered = render_map(scope, inner);
                        (!rendered.is_empty()).then_some(Json::Object(rendered))
                    }
                };
                if let Some(value) = value {
                    out.insert(key.clone(), value);
                }
            }
            out
        }
        Json::Object(render_map(&scope, &self.root))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn params_may_only_use_earlier_params() {
        let env = environment();
        let params = vec![
            ("a".to_owned(), "b == 1".to_owned()),
            ("b".to_owned(), "1".to_owned()),
        ];
        let err = DecisionEngine::compile(&env, &params, "a").unwrap_err();
        assert_eq!(err.location, "message_decision.params[0] (a)");
        assert!(
            err.message
                .contains("uses `b`, which is not defined here (known: resource, now)"),
            "{err}"
        );
        let err = DecisionEngine::compile(&env, &[], "resource.generation >").unwrap_err();
        assert_eq!(err.location, "message_decision.result");
        assert!(
            err.message
                .starts_with("invalid CEL expression `resource.generation >`"),
            "{err}"
        );
    }

    #[test]
    fn evaluation_errors_name_the_expression() {
        let engine = DecisionEngine::default_decision();
        let evaluator = environment().evaluator();
        let resource = json!({"id": "x", "status": {"conditions": []}});
        let err = engine
            .decide(&evaluator, &resource, t("2026-01-01T00:00:00Z"))
            .unwrap_err();
        assert_eq!(err.expression, "resource.generation == 1 && !has_ref_time");
        assert_eq!(err.message, "No such key: generation");
    }

    #[test]
    fn message_data_leaves_out_failures_nulls_and_empty_maps() {
        let env = environment();
        let data = json!({"id": "resource.id", "generation": "resource.generation", "kind": "resource.kind",
                          "owner_references": {"id": "resource.owner_references.id"},
                          "constant": 7, "flag": true, "why": "reason", "nothing": "null"});
        let template = MessageTemplate::compile(&env, data.as_object().unwrap()).unwrap();
        let evaluator = env.evaluator();
        let resource = json!({"id": "c1", "kind": "Cluster", "generation": 3});
        assert_eq!(
            template.render(&evaluator, &resource, REASON_MATCHED),
            json!({"constant": 7, "flag": true, "generation": 3, "id": "c1", "kind": "Cluster",
                   "why": "message decision matched"})
        );
        let bad = json!({"id": "resource.id", "x": ["list"]});
        let err = MessageTemplate::compile(&env, bad.as_object().unwrap()).unwrap_err();
        assert_eq!(err.location, "message_data.x");
        let bad = json!({"when": "now"});
        assert!(MessageTemplate::compile(&env, bad.as_object().unwrap()).is_err());
    }
}

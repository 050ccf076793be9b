//! Evaluating a parsed template against JSON data, with Go's printing and truth rules and
//! `missingkey=error` (a missing map key is an error, as HyperFleet configures its templates).

use std::borrow::Cow;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use super::TemplateError;
use super::funcs;
use super::parse::{Command, Node, Operand, Pipeline};

/// A value inside a template: JSON (borrowed from the data where possible, so a field
/// lookup never copies the document), or a time (what `now` returns).
#[derive(Debug, Clone, PartialEq)]
pub enum TValue<'a> {
    Json(Cow<'a, Value>),
    Time(DateTime<Utc>),
}

impl TValue<'_> {
    pub fn null() -> Self {
        Self::Json(Cow::Owned(Value::Null))
    }

    pub fn owned(value: Value) -> TValue<'static> {
        TValue::Json(Cow::Owned(value))
    }

    /// The same value, no longer borrowing.
    pub fn into_owned(self) -> TValue<'static> {
        match self {
            Self::Json(v) => TValue::Json(Cow::Owned(v.into_owned())),
            Self::Time(t) => TValue::Time(t),
        }
    }

    /// The JSON value, if it is one.
    pub fn json(&self) -> Option<&Value> {
        match self {
            Self::Json(v) => Some(v),
            Self::Time(_) => None,
        }
    }

    pub fn as_json(&self) -> Value {
        match self {
            Self::Json(v) => v.as_ref().clone(),
            Self::Time(t) => Value::String(t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
        }
    }

    /// Go's notion of truth: false, 0, nil and empty strings, lists and maps are false.
    pub fn truthy(&self) -> bool {
        match self {
            Self::Time(_) => true,
            Self::Json(v) => match v.as_ref() {
                Value::Null => false,
                Value::Bool(b) => *b,
                Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
                Value::String(s) => !s.is_empty(),
                Value::Array(a) => !a.is_empty(),
                Value::Object(o) => !o.is_empty(),
            },
        }
    }

    /// How Go's `fmt.Print` shows the value (what `{{ .x }}` writes).
    pub fn print(&self) -> String {
        match self {
            Self::Time(t) => t.format("%Y-%m-%d %H:%M:%S%.f +0000 UTC").to_string(),
            Self::Json(v) => print_json(v),
        }
    }

    pub fn type_name(&self) -> &'static str {
        match self {
            Self::Time(_) => "time.Time",
            Self::Json(v) => match v.as_ref() {
                Value::Null => "nil",
                Value::Bool(_) => "bool",
                Value::Number(n) if n.is_f64() => "float64",
                Value::Number(_) => "int",
                Value::String(_) => "string",
                Value::Array(_) => "[]interface {}",
                Value::Object(_) => "map[string]interface {}",
            },
        }
    }
}

fn print_json(v: &Value) -> String {
    match v {
        Value::Null => "<nil>".into(),
        Value::Bool(b) => b.to_string(),
        Value::String(s) => s.clone(),
        Value::Number(n) => print_number(n),
        Value::Array(items) => format!(
            "[{}]",
            items.iter().map(print_json).collect::<Vec<_>>().join(" ")
        ),
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            format!(
                "map[{}]",
                keys.iter()
                    .map(|k| format!("{k}:{}", print_json(&map[*k])))
                    .collect::<Vec<_>>()
                    .join(" ")
            )
        }
    }
}

/// Integers as digits; other floats as Go's `%v` (shortest form, exponent when large).
pub fn print_number(n: &serde_json::Number) -> String {
    if let Some(i) = n.as_i64() {
        return i.to_string();
    }
    if let Some(u) = n.as_u64() {
        return u.to_string();
    }
    let f = n.as_f64().unwrap_or(f64::NAN);
    if f.fract() == 0.0 && f.abs() < 1e21 {
        return format!("{f:.0}");
    }
    let exponent = if f == 0.0 {
        0
    } else {
        f.abs().log10().floor() as i32
    };
    if !(-4..21).contains(&exponent) {
        let text = format!("{f:e}");
        // Rust writes `1e21`, Go `1e+21`.
        return match text.split_once('e') {
            Some((mantissa, exp)) if !exp.starts_with('-') => format!("{mantissa}e+{exp:0>2}"),
            Some((mantissa, exp)) => format!("{mantissa}e-{:0>2}", &exp[1..]),
            None => text,
        };
    }
    f.to_string()
}

struct Scope<'a> {
    dot: TValue<'a>,
    variables: Vec<(String, TValue<'a>)>,
    root: &'a Value,
}

impl<'a> Scope<'a> {
    fn variable(&self, name: &str) -> Result<TValue<'a>, TemplateError> {
        if name.is_empty() {
            return Ok(TValue::Json(Cow::Borrowed(self.root)));
        }
        self.variables
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .ok_or_else(|| TemplateError::Exec(format!("undefined variable \"${name}\"")))
    }
}

pub fn execute(nodes: &[Node], data: &Value, out: &mut String) -> Result<(), TemplateError> {
    let mut scope = Scope {
        dot: TValue::Json(Cow::Borrowed(data)),
        variables: Vec::new(),
        root: data,
    };
    walk(nodes, &mut scope, out)
}

fn walk<'a>(nodes: &[Node], scope: &mut Scope<'a>, out: &mut String) -> Result<(), TemplateError> {
    for node in nodes {
        match node {
            Node::Text(text) => out.push_str(text),
            Node::Action(pipeline) => {
                let value = pipe(pipeline, scope)?;
                if pipeline.declare.is_empty() {
                    out.push_str(&value.print());
                }
            }
            Node::If {
                branches,
                otherwise,
            } => {
                let depth = scope.variables.len();
                let mut taken = false;
                for (condition, body) in branches {
                    if pipe(condition, scope)?.truthy() {
                        walk(body, scope, out)?;
                        taken = true;
                        break;
                    }
                }
                if !taken {
                    walk(otherwise, scope, out)?;
                }
                scope.variables.truncate(depth);
            }
            Node::With {
                pipeline,
                body,
                otherwise,
            } => {
                let depth = scope.variables.len();
                let value = pipe(pipeline, scope)?;
                if value.truthy() {
                    let saved = std::mem::replace(&mut scope.dot, value);
                    walk(body, scope, out)?;
                    scope.dot = saved;
                } else {
                    walk(otherwise, scope, out)?;
                }
                scope.variables.truncate(depth);
            }
            Node::Range {
                pipeline,
                body,
                otherwise,
            } => {
                let depth = scope.variables.len();
                let mut bare = pipeline.clone();
                bare.declare.clear();
                let collection = pipe(&bare, scope)?;
                let items: Vec<(TValue<'a>, TValue<'a>)> = match collection.json() {
                    Some(Value::Array(items)) => items
                        .iter()
                        .enumerate()
                        .map(|(i, v)| (TValue::owned(i.into()), TValue::owned(v.clone())))
                        .collect(),
                    Some(Value::Object(map)) => {
                        let mut keys: Vec<&String> = map.keys().collect();
                        keys.sort();
                        keys.into_iter()
                            .map(|k| {
                                (
                                    TValue::owned(k.clone().into()),
                                    TValue::owned(map[k].clone()),
                                )
                            })
                            .collect()
                    }
                    Some(Value::Number(n)) if n.as_i64().is_some() => (0..n.as_i64().unwrap_or(0))
                        .map(|i| (TValue::owned(i.into()), TValue::owned(i.into())))
                        .collect(),
                    Some(Value::Null) => Vec::new(),
                    _ => {
                        return Err(TemplateError::Exec(format!(
                            "range can't iterate over {}",
                            collection.print()
                        )));
                    }
                };
                if items.is_empty() {
                    walk(otherwise, scope, out)?;
                }
                for (key, value) in items {
                    let inner = scope.variables.len();
                    match pipeline.declare.as_slice() {
                        [] => {}
                        [v] => scope.variables.push((v.clone(), value.clone())),
                        [k, v] => {
                            scope.variables.push((k.clone(), key));
                            scope.variables.push((v.clone(), value.clone()));
                        }
                        _ => return Err(TemplateError::Exec("too many range variables".into())),
                    }
                    let saved = std::mem::replace(&mut scope.dot, value);
                    walk(body, scope, out)?;
                    scope.dot = saved;
                    scope.variables.truncate(inner);
                }
                scope.variables.truncate(depth);
            }
        }
    }
    Ok(())
}

fn pipe<'a>(pipeline: &Pipeline, scope: &mut Scope<'a>) -> Result<TValue<'a>, TemplateError> {
    let mut value: Option<TValue<'a>> = None;
    for command in &pipeline.commands {
        value = Some(run(command, value, scope)?);
    }
    let value = value.unwrap_or_else(TValue::null);
    if let Some(name) = pipeline.declare.first() {
        if pipeline.assign {
            let slot = scope
                .variables
                .iter_mut()
                .rev()
                .find(|(n, _)| n == name)
                .ok_or_else(|| TemplateError::Exec(format!("undefined variable \"${name}\"")))?;
            slot.1 = value.clone();
        } else {
            scope.variables.push((name.clone(), value.clone()));
        }
    }
    Ok(value)
}

fn run<'a>(
    command: &Command,
    piped: Option<TValue<'a>>,
    scope: &mut Scope<'a>,
) -> Result<TValue<'a>, TemplateError> {
    let (first, rest) = command
        .operands
        .split_first()
        .ok_or_else(|| TemplateError::Exec("empty command".into()))?;
    if let Operand::Function(name) = first {
        let mut args = Vec::with_capacity(rest.len() + 1);
        for operand in rest {
            args.push(operand_value(operand, scope)?);
        }
        if let Some(piped) = piped {
            args.push(piped);
        }
        return funcs::call(name, args)
            .map_err(|e| TemplateError::Exec(format!("error calling {name}: {e}")));
    }
    if !rest.is_empty() || piped.is_some() {
        return Err(TemplateError::Exec(format!(
            "can't give argument to non-function {}",
            describe(first)
        )));
    }
    operand_value(first, scope)
}

fn describe(operand: &Operand) -> String {
    match operand {
        Operand::Dot => ".".into(),
        Operand::Field(path) => format!(".{}", path.join(".")),
        Operand::Variable(name, path) if path.is_empty() => format!("${name}"),
        Operand::Variable(name, path) => format!("${name}.{}", path.join(".")),
        Operand::Function(name) => name.clone(),
        Operand::Literal(v) => v.to_string(),
        Operand::Nil => "nil".into(),
        Operand::Nested(_) => "(...)".into(),
    }
}

fn operand_value<'a>(
    operand: &Operand,
    scope: &mut Scope<'a>,
) -> Result<TValue<'a>, TemplateError> {
    match operand {
        Operand::Dot => Ok(scope.dot.clone()),
        Operand::Field(path) => follow(scope.dot.clone(), path),
        Operand::Variable(name, path) => follow(scope.variable(name)?, path),
        Operand::Function(name) => funcs::call(name, Vec::new())
            .map_err(|e| TemplateError::Exec(format!("error calling {name}: {e}"))),
        Operand::Literal(v) => Ok(TValue::owned(v.clone())),
        Operand::Nil => Ok(TValue::null()),
        Operand::Nested(pipeline) => pipe(pipeline, scope),
    }
}

fn follow<'a>(start: TValue<'a>, path: &[String]) -> Result<TValue<'a>, TemplateError> {
    let mut current = start;
    for (i, key) in path.iter().enumerate() {
        let here = if i == 0 {
            String::new()
        } else {
            format!(" at .{}", path[..i].join("."))
        };
        let missing = |map: &Map<String, Value>| TemplateError::MissingKey {
            key: key.clone(),
            path: path[..=i].join("."),
            available: available_keys(map),
        };
        current = match current {
            TValue::Json(Cow::Borrowed(Value::Object(map))) => match map.get(key) {
                Some(v) => TValue::Json(Cow::Borrowed(v)),
                None => return Err(missing(map)),
            },
            TValue::Json(Cow::Owned(Value::Object(mut map))) => match map.remove(key) {
                Some(v) => TValue::owned(v),
                None => return Err(missing(&map)),
            },
            TValue::Json(v) if v.is_null() => {
                return Err(TemplateError::Exec(format!(
                    "nil pointer evaluating interface {{}}.{key}{here}"
                )));
            }
            other => {
                return Err(TemplateError::Exec(format!(
                    "can't evaluate field {key} in type {}{here}",
                    other.type_name()
                )));
            }
        };
    }
    Ok(current)
}

fn available_keys(map: &Map<String, Value>) -> String {
    let mut keys: Vec<&str> = map.keys().map(String::as_str).collect();
    keys.sort_unstable();
    if keys.len() > 12 {
        keys.truncate(12);
        keys.push("...");
    }
    keys.join(", ")
}

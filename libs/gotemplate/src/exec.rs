//! Evaluating a parsed template against JSON data, with Go's printing and truth rules and
//! `missingkey=error` (a missing map key is an error, as HyperFleet configures its templates).

use std::borrow::Cow;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use crate::TemplateError;
use crate::funcs;
use crate::gofmt;
use crate::parse::{Command, Node, Operand, Pipeline};

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
            Self::Time(t) => Value::String(crate::golayout::rfc3339_nano(t)),
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

    /// How Go's `fmt.Print` shows the value (`%v`; nil is `<nil>`).
    pub fn print(&self) -> String {
        gofmt::print_one(self)
    }

    /// What an action such as `{{ .x }}` writes: the `%v` form, but `<no value>` for nil,
    /// as Go's template printer writes a nil interface.
    pub(crate) fn print_action(&self) -> String {
        match self.json() {
            Some(Value::Null) => "<no value>".into(),
            _ => self.print(),
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
                    out.push_str(&value.print_action());
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
                    let result = walk(body, scope, out);
                    scope.dot = saved;
                    result?;
                } else {
                    walk(otherwise, scope, out)?;
                }
                scope.variables.truncate(depth);
            }
            Node::Range {
                pipeline,
                body,
                otherwise,
            } => range(pipeline, body, otherwise, scope, out)?,
        }
    }
    Ok(())
}

/// `{{ range }}` over a list, a map (in key order) or an int (`range 3` is 0, 1, 2).
fn range<'a>(
    pipeline: &Pipeline,
    body: &[Node],
    otherwise: &[Node],
    scope: &mut Scope<'a>,
    out: &mut String,
) -> Result<(), TemplateError> {
    let depth = scope.variables.len();
    let collection = commands(pipeline, scope)?;
    let entries = match &collection {
        TValue::Json(Cow::Borrowed(value)) => entries(value, |v| TValue::Json(Cow::Borrowed(v))),
        TValue::Json(Cow::Owned(value)) => entries(value, |v| TValue::owned(v.clone())),
        TValue::Time(_) => None,
    };
    let items = match (entries, collection.json()) {
        (Some(items), _) => items,
        (None, Some(Value::Null)) => Vec::new(),
        (None, Some(Value::Number(n))) if n.as_i64().is_some() => {
            if pipeline.declare.len() > 1 {
                return Err(TemplateError::Exec(format!(
                    "can't use {} to iterate over more than one variable",
                    collection.print()
                )));
            }
            (0..n.as_i64().unwrap_or(0))
                .map(|i| (TValue::owned(i.into()), TValue::owned(i.into())))
                .collect()
        }
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
    // Declared variables live for the whole range; each iteration sets them.
    if !pipeline.assign {
        for name in &pipeline.declare {
            scope.variables.push((name.clone(), TValue::null()));
        }
    }
    for (key, value) in items {
        match pipeline.declare.as_slice() {
            [] => {}
            [v] => scope.set(v, value.clone(), pipeline.assign, depth)?,
            [k, v] => {
                scope.set(k, key, pipeline.assign, depth)?;
                scope.set(v, value.clone(), pipeline.assign, depth)?;
            }
            _ => return Err(TemplateError::Exec("too many range variables".into())),
        }
        let inner = scope.variables.len();
        let saved = std::mem::replace(&mut scope.dot, value);
        let result = walk(body, scope, out);
        scope.dot = saved;
        result?;
        scope.variables.truncate(inner);
    }
    scope.variables.truncate(depth);
    Ok(())
}

/// A list's (index, element) or a map's (key, value) pairs in key order; `None` for other
/// values.
fn entries<'v, 'a>(
    value: &'v Value,
    wrap: impl Fn(&'v Value) -> TValue<'a>,
) -> Option<Vec<(TValue<'a>, TValue<'a>)>> {
    match value {
        Value::Array(items) => Some(
            items
                .iter()
                .enumerate()
                .map(|(i, v)| (TValue::owned(i.into()), wrap(v)))
                .collect(),
        ),
        Value::Object(map) => {
            let mut pairs: Vec<(&String, &'v Value)> = map.iter().collect();
            pairs.sort_by(|a, b| a.0.cmp(b.0));
            Some(
                pairs
                    .into_iter()
                    .map(|(k, v)| (TValue::owned(k.clone().into()), wrap(v)))
                    .collect(),
            )
        }
        _ => None,
    }
}

impl<'a> Scope<'a> {
    /// Sets a range variable: the one this range declared (at or above `depth`), or for
    /// `range $x = ...` an existing one.
    fn set(
        &mut self,
        name: &str,
        value: TValue<'a>,
        assign: bool,
        depth: usize,
    ) -> Result<(), TemplateError> {
        let slot = self
            .variables
            .iter_mut()
            .enumerate()
            .rev()
            .find(|(i, (n, _))| n == name && (assign || *i >= depth))
            .map(|(_, slot)| slot)
            .ok_or_else(|| TemplateError::Exec(format!("undefined variable \"${name}\"")))?;
        slot.1 = value;
        Ok(())
    }
}

/// The value of a pipeline's commands, without its declarations.
fn commands<'a>(pipeline: &Pipeline, scope: &mut Scope<'a>) -> Result<TValue<'a>, TemplateError> {
    let mut value: Option<TValue<'a>> = None;
    for command in &pipeline.commands {
        value = Some(run(command, value, scope)?);
    }
    Ok(value.unwrap_or_else(TValue::null))
}

fn pipe<'a>(pipeline: &Pipeline, scope: &mut Scope<'a>) -> Result<TValue<'a>, TemplateError> {
    let value = commands(pipeline, scope)?;
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

fn call_error(name: &str, source: funcs::FuncError) -> TemplateError {
    TemplateError::Call {
        name: name.to_owned(),
        source,
    }
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
        let func = funcs::lookup(name)
            .ok_or_else(|| call_error(name, funcs::FuncError::Undefined(name.clone())))?;
        let count = rest.len() + usize::from(piped.is_some());
        if matches!(name.as_str(), "and" | "or") && count > 0 {
            return and_or(name == "or", rest, piped, scope);
        }
        let mut args = Vec::with_capacity(count);
        for operand in rest {
            args.push(operand_value(operand, scope)?);
        }
        if let Some(piped) = piped {
            args.push(piped);
        }
        return func.call(args).map_err(|e| call_error(name, e));
    }
    if !rest.is_empty() || piped.is_some() {
        return Err(TemplateError::Exec(format!(
            "can't give argument to non-function {}",
            describe(first)
        )));
    }
    if let Operand::Nil = first {
        return Err(TemplateError::Exec("nil is not a command".into()));
    }
    operand_value(first, scope)
}

/// `and` / `or` evaluate their arguments only until the result is known.
fn and_or<'a>(
    is_or: bool,
    operands: &[Operand],
    piped: Option<TValue<'a>>,
    scope: &mut Scope<'a>,
) -> Result<TValue<'a>, TemplateError> {
    let mut last = None;
    for operand in operands {
        let value = operand_value(operand, scope)?;
        if value.truthy() == is_or {
            return Ok(value);
        }
        last = Some(value);
    }
    Ok(piped.or(last).unwrap_or_else(TValue::null))
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
        Operand::Chain(inner, path) => format!("{}.{}", describe(inner), path.join(".")),
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
        Operand::Function(name) => funcs::call(name, Vec::new()).map_err(|e| call_error(name, e)),
        Operand::Literal(v) => Ok(TValue::owned(v.clone())),
        Operand::Nil => Ok(TValue::null()),
        Operand::Nested(pipeline) => pipe(pipeline, scope),
        Operand::Chain(inner, path) => {
            let value = operand_value(inner, scope)?;
            follow(value, path)
        }
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
            TValue::Time(_) => {
                return Err(TemplateError::Exec(format!(
                    "can't evaluate field {key} in type time.Time{here} (time methods are not supported: use date)"
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

//! Evaluating: an [`Evaluator`] holds the functions, a [`Scope`] one evaluation's variables.
//!
//! The split keeps the per-evaluation cost to binding variables: functions are registered once
//! per evaluator, and a scope only borrows it.

use cel::Context;
use std::collections::HashMap;

use cel::common::types::{CelBool, CelMap, CelMapKey, CelString, CelTimestamp};
use cel::common::value::Val;
use chrono::{DateTime, Utc};
use serde_json::Value as Json;

use crate::error::EvalError;
use crate::expression::{Expression, FieldUse};
use crate::json::json_to_val;
use crate::value::Value;

/// The functions of an [`Environment`](crate::Environment), ready to evaluate with. `Send`;
/// make one per thread or task and reuse it for every evaluation.
pub struct Evaluator {
    root: Context<'static, 'static>,
}

impl Evaluator {
    pub(crate) fn new(root: Context<'static, 'static>) -> Self {
        Self { root }
    }

    /// An empty scope for one evaluation. Values bound into it may borrow data for `'v`.
    pub fn scope<'v>(&self) -> Scope<'_, 'v> {
        let root: &Context<'_, 'v> = &self.root;
        Scope {
            ctx: root.new_inner_scope(),
        }
    }
}

/// The variables of one evaluation (one resource, one event).
pub struct Scope<'a, 'v> {
    ctx: Context<'a, 'v>,
}

impl<'a, 'v> Scope<'a, 'v> {
    /// Binds `name` to a JSON document, borrowed rather than copied.
    pub fn bind_json(&mut self, name: &str, json: &'v Json) {
        self.ctx.add_variable_as_val(name, json_to_val(json));
    }

    /// Binds `name` to the fields `fields` of a JSON object (all of it for
    /// [`FieldUse::Whole`]): for expressions that read a few fields of a large document,
    /// the rest is never converted. Use [`Expression::field_use`] to know which.
    pub fn bind_json_fields(&mut self, name: &str, json: &'v Json, fields: &FieldUse) {
        match (fields, json) {
            (FieldUse::Fields(wanted), Json::Object(map)) => {
                let mut entries = HashMap::with_capacity(wanted.len());
                for field in wanted {
                    if let Some((key, value)) = map.get_key_value(field.as_str()) {
                        entries.insert(
                            CelMapKey::String(CelString::from(key.as_str())),
                            json_to_val(value),
                        );
                    }
                }
                self.ctx
                    .add_variable_as_val(name, Box::new(CelMap::from(entries)));
            }
            _ => self.bind_json(name, json),
        }
    }

    /// Binds a value already in CEL form (the HyperFleet helpers' precomputed values).
    pub(crate) fn bind_val(&mut self, name: &str, val: Box<dyn Val + 'v>) {
        self.ctx.add_variable_as_val(name, val);
    }

    /// Binds `name` to a value.
    pub fn bind(&mut self, name: &str, value: impl Into<Value>) {
        let value: Value = value.into();
        match Box::<dyn Val>::try_from(value.0) {
            Ok(val) => self.ctx.add_variable_as_val(name, val),
            // Only function values fail to convert, and `Value` never holds one we built.
            Err(_) => self
                .ctx
                .add_variable_as_val(name, Box::new(cel::common::types::CelNull)),
        }
    }

    /// Binds `name` to a timestamp (e.g. HyperFleet's `now`).
    pub fn bind_timestamp(&mut self, name: &str, time: DateTime<Utc>) {
        self.ctx
            .add_variable_as_val(name, Box::new(CelTimestamp::from(time.fixed_offset())));
    }

    /// Evaluates `expression`.
    pub fn evaluate(&self, expression: &Expression) -> Result<Value, EvalError> {
        let result = cel::Value::resolve_val(expression.ast(), &self.ctx)
            .map_err(|e| eval_error(expression, e.to_string()))?;
        cel::Value::try_from(result.as_ref())
            .map(Value)
            .map_err(|e| eval_error(expression, e.to_string()))
    }

    /// Evaluates `expression`, which must return a bool.
    pub fn evaluate_bool(&self, expression: &Expression) -> Result<bool, EvalError> {
        let result = cel::Value::resolve_val(expression.ast(), &self.ctx)
            .map_err(|e| eval_error(expression, e.to_string()))?;
        match result.downcast_ref::<CelBool>() {
            Some(b) => Ok(*b.inner()),
            None => Err(eval_error(
                expression,
                format!("returned {}, not bool", result.get_type().name()),
            )),
        }
    }

    /// Evaluates `expression` and returns the result as JSON.
    pub fn evaluate_json(&self, expression: &Expression) -> Result<Json, EvalError> {
        self.evaluate(expression)?
            .to_json()
            .map_err(|e| eval_error(expression, e.to_string()))
    }

    /// Evaluates `expression` and binds the result to `name`, for later expressions of the
    /// same scope (HyperFleet's ordered `params`). The result stays in CEL form: no round trip
    /// through [`Value`].
    pub fn evaluate_and_bind(
        &mut self,
        name: &str,
        expression: &Expression,
    ) -> Result<(), EvalError> {
        let result = cel::Value::resolve_val(expression.ast(), &self.ctx)
            .map_err(|e| eval_error(expression, e.to_string()))?
            .into_owned();
        self.ctx.add_variable_as_val(name, result);
        Ok(())
    }

    /// The value bound to `name`, if any.
    pub fn get(&self, name: &str) -> Option<Value> {
        let val = self.ctx.get_variable(name)?;
        cel::Value::try_from(val.as_ref()).ok().map(Value)
    }
}

fn eval_error(expression: &Expression, message: String) -> EvalError {
    EvalError {
        expression: expression.source().to_owned(),
        message,
    }
}

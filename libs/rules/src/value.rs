//! [`Value`]: what an expression returns, and what custom functions take and give.

use std::fmt;
use std::sync::Arc;

use chrono::{DateTime, FixedOffset, Utc};
use serde_json::Value as Json;

use crate::error::ValueError;
use crate::json::{json_to_value, value_to_json};

/// A CEL value, owned. Convert with [`Value::to_json`], [`Value::as_bool`],
/// [`Value::as_str`], [`Value::as_i64`]; build from JSON, bools, strings, numbers,
/// timestamps and durations.
#[derive(Clone, PartialEq)]
pub struct Value(pub(crate) cel::Value);

impl Value {
    pub const NULL: Value = Value(cel::Value::Null);

    pub fn from_json(json: &Json) -> Self {
        Self(json_to_value(json))
    }

    pub fn timestamp(time: DateTime<Utc>) -> Self {
        Self(cel::Value::Timestamp(time.fixed_offset()))
    }

    pub fn duration(duration: chrono::Duration) -> Self {
        Self(cel::Value::Duration(duration))
    }

    pub fn list(items: Vec<Value>) -> Self {
        Self(cel::Value::List(Arc::new(
            items.into_iter().map(|v| v.0).collect(),
        )))
    }

    /// The value as JSON (see the crate docs for timestamps, durations and bytes).
    pub fn to_json(&self) -> Result<Json, ValueError> {
        value_to_json(&self.0)
    }

    pub fn as_bool(&self) -> Option<bool> {
        match self.0 {
            cel::Value::Bool(b) => Some(b),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match &self.0 {
            cel::Value::String(s) => Some(s.as_str()),
            _ => None,
        }
    }

    /// An `int`, or a `uint` that fits.
    pub fn as_i64(&self) -> Option<i64> {
        match self.0 {
            cel::Value::Int(i) => Some(i),
            cel::Value::UInt(u) => i64::try_from(u).ok(),
            _ => None,
        }
    }

    /// A `double`, or an integer converted.
    pub fn as_f64(&self) -> Option<f64> {
        match self.0 {
            cel::Value::Float(f) => Some(f),
            cel::Value::Int(i) => Some(i as f64),
            cel::Value::UInt(u) => Some(u as f64),
            _ => None,
        }
    }

    pub fn as_timestamp(&self) -> Option<DateTime<FixedOffset>> {
        match self.0 {
            cel::Value::Timestamp(t) => Some(t),
            _ => None,
        }
    }

    pub fn as_duration(&self) -> Option<chrono::Duration> {
        match self.0 {
            cel::Value::Duration(d) => Some(d),
            _ => None,
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(self.0, cel::Value::Null)
    }

    /// The elements of a list.
    pub fn as_list(&self) -> Option<Vec<Value>> {
        match &self.0 {
            cel::Value::List(items) => Some(items.iter().cloned().map(Value).collect()),
            _ => None,
        }
    }

    /// The value at string key `key` of a map.
    pub fn get(&self, key: &str) -> Option<Value> {
        match &self.0 {
            cel::Value::Map(map) => map
                .map
                .get(&cel::objects::Key::from(key))
                .cloned()
                .map(Value),
            _ => None,
        }
    }

    /// CEL's name for the value's type: `bool`, `int`, `string`, `map`, ...
    pub fn type_name(&self) -> &'static str {
        match &self.0 {
            cel::Value::List(_) => "list",
            cel::Value::Map(_) => "map",
            cel::Value::Function(..) => "function",
            cel::Value::Int(_) => "int",
            cel::Value::UInt(_) => "uint",
            cel::Value::Float(_) => "double",
            cel::Value::String(_) => "string",
            cel::Value::Bytes(_) => "bytes",
            cel::Value::Bool(_) => "bool",
            cel::Value::Duration(_) => "google.protobuf.Duration",
            cel::Value::Timestamp(_) => "google.protobuf.Timestamp",
            cel::Value::Opaque(_) => "opaque",
            cel::Value::Struct(_) => "struct",
            cel::Value::Null => "null_type",
        }
    }

    /// The underlying `cel` value, for what this wrapper does not cover.
    pub fn as_cel(&self) -> &cel::Value {
        &self.0
    }

    pub fn into_cel(self) -> cel::Value {
        self.0
    }
}

impl fmt::Debug for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.to_json() {
            Ok(json) => write!(f, "{}({json})", self.type_name()),
            Err(_) => write!(f, "{:?}", self.0),
        }
    }
}

impl From<cel::Value> for Value {
    fn from(value: cel::Value) -> Self {
        Self(value)
    }
}

impl From<&Json> for Value {
    fn from(json: &Json) -> Self {
        Self::from_json(json)
    }
}

impl From<Json> for Value {
    fn from(json: Json) -> Self {
        Self::from_json(&json)
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Self {
        Self(cel::Value::Bool(b))
    }
}

impl From<i64> for Value {
    fn from(i: i64) -> Self {
        Self(cel::Value::Int(i))
    }
}

impl From<f64> for Value {
    fn from(f: f64) -> Self {
        Self(cel::Value::Float(f))
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Self(cel::Value::String(Arc::new(s.to_owned())))
    }
}

impl From<String> for Value {
    fn from(s: String) -> Self {
        Self(cel::Value::String(Arc::new(s)))
    }
}

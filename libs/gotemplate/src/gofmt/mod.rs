//! Go's `fmt` and `strconv` output for template values: what `{{ .x }}`, `print`, `println`,
//! `printf` and `quote` write, and `encoding/json`'s `Marshal` for `toJson`.
//!
//! Values are JSON (plus the time `now` returns). A JSON integer is a Go `int`, any other
//! number a `float64`, a list `[]interface {}` and an object `map[string]interface {}`, which
//! is what the values of HyperFleet's params are in Go.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use crate::exec::TValue;
use crate::golayout;

mod json;
mod number;
mod printf;
mod quote;
#[cfg(test)]
mod tests;

pub(crate) use self::json::to_json;
pub(crate) use self::printf::sprintf;
use self::printf::{Spec, print_arg};
pub(crate) use self::quote::{is_print, quote};

/// One value as `fmt` sees it.
#[derive(Clone, Copy)]
pub(crate) enum Arg<'v> {
    Nil,
    Bool(bool),
    Int(i64),
    Uint(u64),
    Float(f64),
    Str(&'v str),
    List(&'v [Value]),
    Map(&'v Map<String, Value>),
    Time(&'v DateTime<Utc>),
}

impl<'v> Arg<'v> {
    pub(crate) fn of(value: &'v TValue<'_>) -> Self {
        match value {
            TValue::Time(t) => Arg::Time(t),
            TValue::Json(v) => Arg::json(v),
        }
    }

    pub(crate) fn json(value: &'v Value) -> Self {
        match value {
            Value::Null => Arg::Nil,
            Value::Bool(b) => Arg::Bool(*b),
            Value::Number(n) => {
                if let Some(i) = n.as_i64() {
                    Arg::Int(i)
                } else if let Some(u) = n.as_u64() {
                    Arg::Uint(u)
                } else {
                    Arg::Float(n.as_f64().unwrap_or(f64::NAN))
                }
            }
            Value::String(s) => Arg::Str(s),
            Value::Array(items) => Arg::List(items),
            Value::Object(map) => Arg::Map(map),
        }
    }

    /// Go's `reflect.Type.String()` of the value.
    pub(crate) fn type_name(&self) -> &'static str {
        match self {
            Arg::Nil => "<nil>",
            Arg::Bool(_) => "bool",
            Arg::Int(_) => "int",
            Arg::Uint(_) => "uint64",
            Arg::Float(_) => "float64",
            Arg::Str(_) => "string",
            Arg::List(_) => "[]interface {}",
            Arg::Map(_) => "map[string]interface {}",
            Arg::Time(_) => "time.Time",
        }
    }

    fn is_string(&self) -> bool {
        matches!(self, Arg::Str(_))
    }
}

/// `fmt.Sprint(value)`: the `%v` form.
pub(crate) fn print_one(value: &TValue<'_>) -> String {
    let mut out = String::new();
    print_value(&mut out, Arg::of(value));
    out
}

/// `%v` with no flags, which never fails.
pub(super) fn print_value(out: &mut String, arg: Arg<'_>) {
    // `%v` is defined for every value `Arg` can hold.
    let _ = print_arg(out, arg, 'v', &Spec::default(), 0);
}

/// `fmt.Sprint(args...)`: spaces between operands when neither side is a string.
pub(crate) fn sprint(args: &[TValue<'_>]) -> String {
    let mut out = String::new();
    let mut previous_string = false;
    for (i, value) in args.iter().enumerate() {
        let arg = Arg::of(value);
        let is_string = arg.is_string();
        if i > 0 && !is_string && !previous_string {
            out.push(' ');
        }
        print_value(&mut out, arg);
        previous_string = is_string;
    }
    out
}

/// `fmt.Sprintln(args...)`: always spaces, and a newline.
pub(crate) fn sprintln(args: &[TValue<'_>]) -> String {
    let mut out = String::new();
    for (i, value) in args.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        print_value(&mut out, Arg::of(value));
    }
    out.push('\n');
    out
}

/// `time.Time.String()` (without the monotonic clock reading Go appends to `time.Now()`).
pub(crate) fn time_string(t: &DateTime<Utc>) -> String {
    golayout::format(t, "2006-01-02 15:04:05.999999999 -0700 MST")
}

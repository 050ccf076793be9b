//! The functions templates can call: HyperFleet's set (`now`, `date`, `dateFormat`, `lower`,
//! `upper`, `title`, `trim`, `replace`, `contains`, `hasPrefix`, `hasSuffix`, `default`,
//! `quote`, `int`, `int64`, `float64`, `string`) with HyperFleet's argument order, Go's
//! built-ins (`and`, `or`, `not`, `eq`, `ne`, `lt`, `le`, `gt`, `ge`, `len`, `index`, `print`,
//! `printf`, `println`, `urlquery`), and a few sprig helpers for manifests (`toJson`, `b64enc`,
//! `b64dec`).

use std::borrow::Cow;
use std::cmp::Ordering;

use base64::Engine as _;
use chrono::{DateTime, Utc};
use serde_json::Value;

use super::exec::{TValue, print_number};
use super::golayout;

/// Every function name, for load-time checks of templates.
pub const NAMES: [&str; 35] = [
    "now",
    "date",
    "dateFormat",
    "lower",
    "upper",
    "title",
    "trim",
    "replace",
    "contains",
    "hasPrefix",
    "hasSuffix",
    "default",
    "quote",
    "int",
    "int64",
    "float64",
    "string",
    "and",
    "or",
    "not",
    "eq",
    "ne",
    "lt",
    "le",
    "gt",
    "ge",
    "len",
    "index",
    "print",
    "printf",
    "println",
    "urlquery",
    "toJson",
    "b64enc",
    "b64dec",
];

pub fn exists(name: &str) -> bool {
    NAMES.contains(&name)
}

fn arity(name: &str, args: &[TValue<'_>], want: usize) -> Result<(), String> {
    if args.len() == want {
        Ok(())
    } else {
        Err(format!(
            "wrong number of args for {name}: want {want} got {}",
            args.len()
        ))
    }
}

fn string_arg(value: &TValue<'_>, name: &str) -> Result<String, String> {
    match value.json() {
        Some(Value::String(s)) => Ok(s.clone()),
        _ => Err(format!(
            "{name} expects a string, got {} ({})",
            value.type_name(),
            value.print()
        )),
    }
}

fn text(s: impl Into<String>) -> TValue<'static> {
    TValue::owned(Value::String(s.into()))
}

fn time_arg(value: &TValue<'_>) -> Result<DateTime<Utc>, String> {
    if let TValue::Time(t) = value {
        return Ok(*t);
    }
    match value.json() {
        Some(Value::String(s)) => DateTime::parse_from_rfc3339(s)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|e| format!("`{s}` is not an RFC 3339 time: {e}")),
        Some(Value::Number(n)) => n
            .as_i64()
            .and_then(|secs| DateTime::from_timestamp(secs, 0))
            .ok_or_else(|| format!("{n} is not a Unix time")),
        _ => Err(format!("expected a time, got {}", value.type_name())),
    }
}

/// Calls `name`. A function that returns one of its arguments (`default`, `and`, `or`) hands
/// it back as is, still borrowing the data.
pub fn call<'a>(name: &str, args: Vec<TValue<'a>>) -> Result<TValue<'a>, String> {
    match name {
        "now" => {
            arity(name, &args, 0)?;
            Ok(TValue::Time(Utc::now()))
        }
        "date" | "dateFormat" => {
            arity(name, &args, 2)?;
            let layout = string_arg(&args[0], name)?;
            Ok(text(golayout::format(&time_arg(&args[1])?, &layout)))
        }
        "lower" | "upper" | "title" | "trim" => {
            arity(name, &args, 1)?;
            let s = string_arg(&args[0], name)?;
            Ok(text(match name {
                "lower" => s.to_lowercase(),
                "upper" => s.to_uppercase(),
                "trim" => s.trim().to_owned(),
                _ => title(&s),
            }))
        }
        // Go's strings.ReplaceAll(s, old, new): HyperFleet binds it as is.
        "replace" => {
            arity(name, &args, 3)?;
            let s = string_arg(&args[0], name)?;
            Ok(text(s.replace(
                &string_arg(&args[1], name)?,
                &string_arg(&args[2], name)?,
            )))
        }
        "contains" | "hasPrefix" | "hasSuffix" => {
            arity(name, &args, 2)?;
            let s = string_arg(&args[0], name)?;
            let part = string_arg(&args[1], name)?;
            Ok(TValue::owned(Value::Bool(match name {
                "contains" => s.contains(&part),
                "hasPrefix" => s.starts_with(&part),
                _ => s.ends_with(&part),
            })))
        }
        "default" => {
            arity(name, &args, 2)?;
            let empty = args[1].json().is_some_and(Value::is_null)
                || args[1].json().and_then(Value::as_str) == Some("");
            Ok(if empty {
                args[0].clone()
            } else {
                args[1].clone()
            })
        }
        "quote" => {
            arity(name, &args, 1)?;
            Ok(text(go_quote(&string_arg(&args[0], name)?)))
        }
        "int" | "int64" => {
            arity(name, &args, 1)?;
            let n: i64 = match args[0].json() {
                Some(Value::Number(n)) => n
                    .as_i64()
                    .unwrap_or_else(|| n.as_f64().unwrap_or(0.0) as i64),
                Some(Value::String(s)) => s.trim().parse().unwrap_or(0),
                Some(Value::Bool(b)) => i64::from(*b),
                _ => 0,
            };
            Ok(TValue::owned(n.into()))
        }
        "float64" => {
            arity(name, &args, 1)?;
            let f: f64 = match args[0].json() {
                Some(Value::Number(n)) => n.as_f64().unwrap_or(0.0),
                Some(Value::String(s)) => s.trim().parse().unwrap_or(0.0),
                _ => 0.0,
            };
            Ok(TValue::owned(
                serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number),
            ))
        }
        "string" | "print" => Ok(text(
            args.iter().map(TValue::print).collect::<Vec<_>>().join(
                if name == "print" && args.iter().all(|a| !a.json().is_some_and(Value::is_string)) {
                    " "
                } else {
                    ""
                },
            ),
        )),
        "println" => Ok(text(format!(
            "{}\n",
            args.iter().map(TValue::print).collect::<Vec<_>>().join(" ")
        ))),
        "printf" => {
            let (format, rest) = args.split_first().ok_or_else(|| {
                "wrong number of args for printf: want at least 1 got 0".to_owned()
            })?;
            Ok(text(printf(&string_arg(format, name)?, rest)))
        }
        "and" | "or" => {
            if args.is_empty() {
                return Err(format!(
                    "wrong number of args for {name}: want at least 1 got 0"
                ));
            }
            let stop_on = name == "or";
            let last = args.len() - 1;
            for (i, arg) in args.iter().enumerate() {
                if arg.truthy() == stop_on || i == last {
                    return Ok(arg.clone());
                }
            }
            unreachable!("returns at the last argument")
        }
        "not" => {
            arity(name, &args, 1)?;
            Ok(TValue::owned(Value::Bool(!args[0].truthy())))
        }
        "eq" => {
            let (first, rest) = args
                .split_first()
                .ok_or_else(|| "missing argument for comparison".to_owned())?;
            if rest.is_empty() {
                return Err("missing argument for comparison".into());
            }
            Ok(TValue::owned(Value::Bool(
                rest.iter().any(|o| equal(first, o)),
            )))
        }
        "ne" | "lt" | "le" | "gt" | "ge" => {
            arity(name, &args, 2)?;
            let result = if name == "ne" {
                !equal(&args[0], &args[1])
            } else {
                let ordering = compare(&args[0], &args[1])?;
                match name {
                    "lt" => ordering == Ordering::Less,
                    "le" => ordering != Ordering::Greater,
                    "gt" => ordering == Ordering::Greater,
                    _ => ordering != Ordering::Less,
                }
            };
            Ok(TValue::owned(Value::Bool(result)))
        }
        "len" => {
            arity(name, &args, 1)?;
            let n = match args[0].json() {
                Some(Value::String(s)) => s.len(),
                Some(Value::Array(a)) => a.len(),
                Some(Value::Object(o)) => o.len(),
                _ => return Err(format!("len of type {}", args[0].type_name())),
            };
            Ok(TValue::owned(n.into()))
        }
        "index" => {
            let (first, keys) = args.split_first().ok_or_else(|| {
                "wrong number of args for index: want at least 1 got 0".to_owned()
            })?;
            let mut current = first.as_json();
            for key in keys {
                current = match (&current, key.json()) {
                    (Value::Array(items), Some(Value::Number(n))) => {
                        let i = n
                            .as_u64()
                            .ok_or_else(|| format!("cannot index slice with {n}"))?
                            as usize;
                        items
                            .get(i)
                            .cloned()
                            .ok_or_else(|| format!("index out of range: {i}"))?
                    }
                    (Value::Object(map), Some(Value::String(k))) => {
                        map.get(k).cloned().unwrap_or(Value::Null)
                    }
                    (Value::Null, _) => return Err("index of untyped nil".into()),
                    (other, _) => {
                        return Err(format!(
                            "can't index item of type {} with {}",
                            type_of(other),
                            key.print()
                        ));
                    }
                };
            }
            Ok(TValue::owned(current))
        }
        "urlquery" => Ok(text(
            url::form_urlencoded::byte_serialize(
                args.iter()
                    .map(TValue::print)
                    .collect::<String>()
                    .as_bytes(),
            )
            .collect::<String>(),
        )),
        "toJson" => {
            arity(name, &args, 1)?;
            Ok(text(args[0].as_json().to_string()))
        }
        "b64enc" => {
            arity(name, &args, 1)?;
            Ok(text(
                base64::engine::general_purpose::STANDARD.encode(args[0].print()),
            ))
        }
        "b64dec" => {
            arity(name, &args, 1)?;
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(string_arg(&args[0], name)?)
                .map_err(|e| format!("not base64: {e}"))?;
            Ok(text(String::from_utf8_lossy(&bytes).into_owned()))
        }
        other => Err(format!("function \"{other}\" not defined")),
    }
}

fn type_of(value: &Value) -> &'static str {
    TValue::Json(Cow::Borrowed(value)).type_name()
}

fn title(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut start = true;
    for c in s.chars() {
        if c.is_alphanumeric() || c == '\'' {
            if start {
                out.extend(c.to_uppercase());
            } else {
                out.extend(c.to_lowercase());
            }
            start = false;
        } else {
            out.push(c);
            start = true;
        }
    }
    out
}

/// Go's `%q`.
fn go_quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn number(value: &TValue<'_>) -> Option<f64> {
    value.json().and_then(Value::as_f64)
}

fn equal(a: &TValue<'_>, b: &TValue<'_>) -> bool {
    match (number(a), number(b)) {
        (Some(x), Some(y)) => x == y,
        _ => a.as_json() == b.as_json(),
    }
}

fn compare(a: &TValue<'_>, b: &TValue<'_>) -> Result<Ordering, String> {
    if let (Some(x), Some(y)) = (number(a), number(b)) {
        return x
            .partial_cmp(&y)
            .ok_or_else(|| "cannot compare NaN".to_owned());
    }
    if let (Some(Value::String(x)), Some(Value::String(y))) = (a.json(), b.json()) {
        return Ok(x.cmp(y));
    }
    match (a, b) {
        (TValue::Time(x), TValue::Time(y)) => Ok(x.cmp(y)),
        _ => Err(format!(
            "incompatible types for comparison: {} and {}",
            a.type_name(),
            b.type_name()
        )),
    }
}

/// A small `fmt.Sprintf`: `%s %d %v %q %t %f %x %%`.
fn printf(format: &str, args: &[TValue<'_>]) -> String {
    let mut out = String::new();
    let mut args = args.iter();
    let mut chars = format.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let Some(verb) = chars.next() else {
            out.push_str("%!(NOVERB)");
            break;
        };
        if verb == '%' {
            out.push('%');
            continue;
        }
        let Some(arg) = args.next() else {
            out.push_str(&format!("%!{verb}(MISSING)"));
            continue;
        };
        out.push_str(&match verb {
            'q' => go_quote(&arg.print()),
            'd' => match arg.json() {
                Some(Value::Number(n)) => n
                    .as_i64()
                    .map_or_else(|| format!("%!d({})", print_number(n)), |i| i.to_string()),
                _ => format!("%!d({})", arg.print()),
            },
            'f' => {
                number(arg).map_or_else(|| format!("%!f({})", arg.print()), |f| format!("{f:.6}"))
            }
            'x' => match arg.json() {
                Some(Value::Number(n)) if n.as_i64().is_some() => {
                    format!("{:x}", n.as_i64().unwrap_or(0))
                }
                _ => arg.print().bytes().map(|b| format!("{b:02x}")).collect(),
            },
            _ => arg.print(),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn j(v: Value) -> TValue<'static> {
        TValue::owned(v)
    }

    #[test]
    fn every_listed_function_is_callable() {
        for name in NAMES {
            let result = call(name, vec![]);
            if let Err(e) = result {
                assert!(!e.contains("not defined"), "{name}: {e}");
            }
        }
        assert!(call("nope", vec![]).unwrap_err().contains("not defined"));
    }

    #[test]
    fn hyperfleet_argument_order() {
        // strings.ReplaceAll(s, old, new)
        assert_eq!(
            call(
                "replace",
                vec![j(json!("a-b")), j(json!("-")), j(json!("."))]
            )
            .unwrap(),
            j(json!("a.b"))
        );
        // default(defaultVal, val)
        assert_eq!(
            call("default", vec![j(json!("x")), j(json!(""))]).unwrap(),
            j(json!("x"))
        );
        assert_eq!(
            call("default", vec![j(json!("x")), j(json!("y"))]).unwrap(),
            j(json!("y"))
        );
        assert_eq!(
            call("hasPrefix", vec![j(json!("abc")), j(json!("ab"))]).unwrap(),
            j(json!(true))
        );
        assert_eq!(call("int", vec![j(json!("42"))]).unwrap(), j(json!(42)));
        assert_eq!(call("int", vec![j(json!(7.9))]).unwrap(), j(json!(7)));
        assert_eq!(
            call("title", vec![j(json!("hELLO wORLD"))]).unwrap(),
            j(json!("Hello World"))
        );
        assert_eq!(
            call("quote", vec![j(json!("a\"b"))]).unwrap(),
            j(json!("\"a\\\"b\""))
        );
    }

    #[test]
    fn go_builtins() {
        assert_eq!(
            call("eq", vec![j(json!(1)), j(json!(2)), j(json!(1.0))]).unwrap(),
            j(json!(true))
        );
        assert_eq!(
            call("lt", vec![j(json!("a")), j(json!("b"))]).unwrap(),
            j(json!(true))
        );
        assert_eq!(
            call("and", vec![j(json!(1)), j(json!("")), j(json!(3))]).unwrap(),
            j(json!(""))
        );
        assert_eq!(
            call("or", vec![j(json!(0)), j(json!("x"))]).unwrap(),
            j(json!("x"))
        );
        assert_eq!(
            call(
                "index",
                vec![j(json!({"a": [1, 2]})), j(json!("a")), j(json!(1))]
            )
            .unwrap(),
            j(json!(2))
        );
        assert_eq!(
            call(
                "printf",
                vec![
                    j(json!("%s-%d %q")),
                    j(json!("a")),
                    j(json!(3)),
                    j(json!("b"))
                ]
            )
            .unwrap(),
            j(json!("a-3 \"b\""))
        );
        assert_eq!(call("len", vec![j(json!([1, 2, 3]))]).unwrap(), j(json!(3)));
    }
}

//! `encoding/json.Marshal` for `toJson`.

use serde_json::Value;

use super::number::{decimal_digits, exponent_form};
use crate::exec::TValue;
use crate::golayout;

/// `encoding/json.Marshal`, as sprig's `toJson` calls it: object keys sorted, `<`, `>` and
/// `&` escaped, floats in Go's form (`5` for 5.0, `1e+21`).
pub(crate) fn to_json(value: &TValue<'_>) -> String {
    let mut out = String::new();
    match value {
        TValue::Time(t) => json_string(&mut out, &golayout::rfc3339_nano(t)),
        TValue::Json(v) => json_value(&mut out, v),
    }
    out
}

fn json_value(out: &mut String, value: &Value) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                out.push_str(&i.to_string());
            } else if let Some(u) = n.as_u64() {
                out.push_str(&u.to_string());
            } else {
                out.push_str(&json_float(n.as_f64().unwrap_or(0.0)));
            }
        }
        Value::String(s) => json_string(out, s),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                json_value(out, item);
            }
            out.push(']');
        }
        Value::Object(map) => {
            out.push('{');
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                json_string(out, key);
                out.push(':');
                json_value(out, &map[key]);
            }
            out.push('}');
        }
    }
}

fn json_float(f: f64) -> String {
    let abs = f.abs();
    let sign = if f < 0.0 { "-" } else { "" };
    if abs != 0.0 && !(1e-6..1e21).contains(&abs) {
        let (digits, point) = decimal_digits(abs, None);
        let text = exponent_form(&digits, point, digits.len() - 1, false);
        // Go writes `1e-7`, not `1e-07`.
        let text = match text.split_once("e-0") {
            Some((mantissa, exp)) if exp.len() == 1 => format!("{mantissa}e-{exp}"),
            _ => text,
        };
        return format!("{sign}{text}");
    }
    format!("{sign}{abs}")
}

fn json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                out.push_str(&format!("\\u{:04x}", c as u32));
            }
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

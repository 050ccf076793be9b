//! JSON in and out of CEL.
//!
//! In: [`json_to_val`] builds the CEL value tree over *borrowed* JSON — strings are not
//! copied — because the sentinel binds every resource of every page, and copying each one
//! would dominate the cost of deciding. Out: [`value_to_json`], with the conventions cel-go
//! uses when it renders values as strings (timestamps RFC 3339 in UTC, durations `"1.5s"`).

use std::collections::HashMap;
use std::sync::Arc;

use cel::common::types::{
    CelBool, CelDouble, CelInt, CelList, CelMap, CelMapKey, CelNull, CelString, CelUInt,
};
use cel::common::value::Val;
use cel::objects::{Key, OptionalValue};
use chrono::{DateTime, FixedOffset, Utc};
use serde_json::Value as Json;

use crate::error::ValueError;

/// The CEL value of `json`, borrowing its strings.
pub(crate) fn json_to_val<'v>(json: &'v Json) -> Box<dyn Val + 'v> {
    match json {
        Json::Null => Box::new(CelNull),
        Json::Bool(b) => Box::new(CelBool::from(*b)),
        Json::Number(n) => number_to_val(n),
        Json::String(s) => Box::new(CelString::from(s.as_str())),
        Json::Array(items) => {
            let items: Vec<Box<dyn Val + 'v>> = items.iter().map(json_to_val).collect();
            Box::new(CelList::from(items))
        }
        Json::Object(map) => {
            let mut entries = HashMap::with_capacity(map.len());
            for (key, value) in map {
                entries.insert(
                    CelMapKey::String(CelString::from(key.as_str())),
                    json_to_val(value),
                );
            }
            Box::new(CelMap::from(entries))
        }
    }
}

fn number_to_val<'v>(n: &serde_json::Number) -> Box<dyn Val + 'v> {
    if let Some(i) = n.as_i64() {
        Box::new(CelInt::from(i))
    } else if let Some(u) = n.as_u64() {
        Box::new(CelUInt::from(u))
    } else {
        Box::new(CelDouble::from(n.as_f64().unwrap_or(f64::NAN)))
    }
}

/// The owned CEL value of `json`.
pub(crate) fn json_to_value(json: &Json) -> cel::Value {
    match json {
        Json::Null => cel::Value::Null,
        Json::Bool(b) => cel::Value::Bool(*b),
        Json::Number(n) => {
            if let Some(i) = n.as_i64() {
                cel::Value::Int(i)
            } else if let Some(u) = n.as_u64() {
                cel::Value::UInt(u)
            } else {
                cel::Value::Float(n.as_f64().unwrap_or(f64::NAN))
            }
        }
        Json::String(s) => cel::Value::String(Arc::new(s.clone())),
        Json::Array(items) => cel::Value::List(Arc::new(items.iter().map(json_to_value).collect())),
        Json::Object(map) => {
            let entries: HashMap<Key, cel::Value> = map
                .iter()
                .map(|(k, v)| (Key::from(k.as_str()), json_to_value(v)))
                .collect();
            cel::Value::Map(cel::objects::Map {
                map: Arc::new(entries),
            })
        }
    }
}

/// `value` as JSON. Map keys become strings; timestamps, durations and bytes become strings
/// as described in the crate docs.
pub(crate) fn value_to_json(value: &cel::Value) -> Result<Json, ValueError> {
    Ok(match value {
        cel::Value::Null => Json::Null,
        cel::Value::Bool(b) => Json::Bool(*b),
        cel::Value::Int(i) => Json::from(*i),
        cel::Value::UInt(u) => Json::from(*u),
        cel::Value::Float(f) => serde_json::Number::from_f64(*f)
            .map(Json::Number)
            .ok_or(ValueError::NotFinite { value: *f })?,
        cel::Value::String(s) => Json::String(s.as_ref().clone()),
        cel::Value::Bytes(b) => {
            use base64::Engine as _;
            Json::String(base64::engine::general_purpose::STANDARD.encode(b.as_slice()))
        }
        cel::Value::Timestamp(t) => Json::String(format_timestamp(t)),
        cel::Value::Duration(d) => Json::String(format_duration(d)),
        cel::Value::List(items) => Json::Array(
            items
                .iter()
                .map(value_to_json)
                .collect::<Result<Vec<_>, _>>()?,
        ),
        cel::Value::Map(map) => {
            let mut object = serde_json::Map::new();
            for (key, value) in map.map.iter() {
                object.insert(key_to_string(key), value_to_json(value)?);
            }
            Json::Object(object)
        }
        cel::Value::Opaque(opaque) => match opaque.downcast_ref::<OptionalValue>() {
            Some(optional) => match optional.value() {
                Some(inner) => value_to_json(inner)?,
                None => Json::Null,
            },
            None => {
                return Err(ValueError::Opaque {
                    type_name: opaque.runtime_type_name().to_owned(),
                });
            }
        },
        cel::Value::Function(name, _) => {
            return Err(ValueError::Function {
                name: name.to_string(),
            });
        }
        cel::Value::Struct(s) => {
            return Err(ValueError::Struct {
                name: s.name().to_owned(),
            });
        }
    })
}

fn key_to_string(key: &Key) -> String {
    match key {
        Key::String(s) => s.as_ref().clone(),
        Key::Int(i) => i.to_string(),
        Key::Uint(u) => u.to_string(),
        Key::Bool(b) => b.to_string(),
    }
}

/// A timestamp as cel-go renders one with `string(t)`: UTC, `Z`, fractional seconds with
/// trailing zeros trimmed.
pub(crate) fn format_timestamp(t: &DateTime<FixedOffset>) -> String {
    format_rfc3339_nano(&t.with_timezone(&Utc).fixed_offset())
}

/// Go's `time.RFC3339Nano` of `t` in its own offset: trailing zeros of the fraction trimmed,
/// `Z` for a zero offset. How HyperFleet's Sentinel hands condition times to CEL.
pub(crate) fn format_rfc3339_nano(t: &DateTime<FixedOffset>) -> String {
    let mut out = t.format("%Y-%m-%dT%H:%M:%S").to_string();
    let nanos = t.timestamp_subsec_nanos();
    if nanos != 0 {
        let fraction = format!("{nanos:09}");
        out.push('.');
        out.push_str(fraction.trim_end_matches('0'));
    }
    let offset = t.offset().local_minus_utc();
    if offset == 0 {
        out.push('Z');
    } else {
        let sign = if offset < 0 { '-' } else { '+' };
        let offset = offset.unsigned_abs();
        out.push_str(&format!(
            "{sign}{:02}:{:02}",
            offset / 3600,
            offset % 3600 / 60
        ));
    }
    out
}

/// A duration in protobuf JSON form: seconds with up to nine fractional digits, then `s`.
pub(crate) fn format_duration(d: &chrono::Duration) -> String {
    let nanos = d
        .num_nanoseconds()
        .map(i128::from)
        .unwrap_or_else(|| i128::from(d.num_seconds()) * 1_000_000_000);
    let sign = if nanos < 0 { "-" } else { "" };
    let nanos = nanos.unsigned_abs();
    let (seconds, fraction) = (nanos / 1_000_000_000, nanos % 1_000_000_000);
    if fraction == 0 {
        format!("{sign}{seconds}s")
    } else {
        let fraction = format!("{fraction:09}");
        format!("{sign}{seconds}.{}s", fraction.trim_end_matches('0'))
    }
}

/// JSON text as Go's `json.Marshal` writes it: compact, object keys sorted, and `<`, `>`, `&`,
/// U+2028 and U+2029 escaped. Those characters can only occur inside strings, so escaping them
/// in the finished text is exact.
pub(crate) fn to_go_json(json: &Json) -> String {
    let text = sorted(json).to_string();
    if !text.contains(['<', '>', '&', '\u{2028}', '\u{2029}']) {
        return text;
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out
}

/// `json` with every object's keys in sorted order, whatever map type serde_json was built
/// with (its `preserve_order` feature keeps insertion order).
fn sorted(json: &Json) -> Json {
    match json {
        Json::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            let mut out = serde_json::Map::new();
            for key in keys {
                out.insert(key.clone(), sorted(&map[key]));
            }
            Json::Object(out)
        }
        Json::Array(items) => Json::Array(items.iter().map(sorted).collect()),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use serde_json::json;

    #[test]
    fn json_round_trips_through_cel_values() {
        let doc = json!({"a": [1, -2, 1.5, "x", null, true], "b": {"c": 18446744073709551615u64}});
        assert_eq!(value_to_json(&json_to_value(&doc)).unwrap(), doc);
        let val = json_to_val(&doc);
        let back = cel::Value::try_from(val.as_ref()).unwrap();
        assert_eq!(value_to_json(&back).unwrap(), doc);
    }

    #[test]
    fn times_render_like_go() {
        let t = FixedOffset::east_opt(7200)
            .unwrap()
            .with_ymd_and_hms(2026, 3, 1, 12, 0, 5)
            .unwrap()
            + chrono::Duration::milliseconds(120);
        assert_eq!(format_rfc3339_nano(&t), "2026-03-01T12:00:05.12+02:00");
        assert_eq!(format_timestamp(&t), "2026-03-01T10:00:05.12Z");
        let whole = Utc
            .with_ymd_and_hms(2026, 3, 1, 0, 0, 0)
            .unwrap()
            .fixed_offset();
        assert_eq!(format_rfc3339_nano(&whole), "2026-03-01T00:00:00Z");
        assert_eq!(format_timestamp(&whole), "2026-03-01T00:00:00Z");
    }

    #[test]
    fn durations_render_as_protobuf_json() {
        assert_eq!(format_duration(&chrono::Duration::minutes(30)), "1800s");
        assert_eq!(
            format_duration(&chrono::Duration::milliseconds(1500)),
            "1.5s"
        );
        assert_eq!(
            format_duration(&chrono::Duration::milliseconds(-250)),
            "-0.25s"
        );
    }

    #[test]
    fn go_json_sorts_keys_and_escapes_html() {
        assert_eq!(
            to_go_json(&json!({"b": 1, "a": {"z": "<&>", "y": [1, 2]}})),
            r#"{"a":{"y":[1,2],"z":"\u003c\u0026\u003e"},"b":1}"#
        );
    }
}

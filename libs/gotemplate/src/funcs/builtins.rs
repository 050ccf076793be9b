//! Time (`now`, `date`), Go's other built-ins (`len`, `index`, `slice`, printing,
//! escaping, `call`) and the sprig helpers (`toJson`, `b64enc`, `b64dec`).

use std::borrow::Cow;

use base64::Engine as _;
use chrono::Utc;
use serde_json::Value;

use super::{FuncError, str_arg, text, time_arg, type_of};
use crate::exec::TValue;
use crate::gofmt::{self, Arg};
use crate::golayout;

pub(super) fn now(_: Vec<TValue<'_>>) -> Result<TValue<'_>, FuncError> {
    Ok(TValue::Time(Utc::now()))
}

pub(super) fn date(args: Vec<TValue<'_>>) -> Result<TValue<'_>, FuncError> {
    let layout = str_arg(&args, 0)?;
    Ok(text(golayout::format(&time_arg(&args, 1)?, layout)))
}

pub(super) fn length(args: Vec<TValue<'_>>) -> Result<TValue<'_>, FuncError> {
    let n = match Arg::of(&args[0]) {
        Arg::Str(s) => s.len(),
        Arg::List(items) => items.len(),
        Arg::Map(map) => map.len(),
        Arg::Nil => return Err(FuncError::LenOfNil),
        other => {
            return Err(FuncError::NoLength {
                type_name: other.type_name(),
            });
        }
    };
    Ok(TValue::owned(n.into()))
}

/// A list or string position: an int in `0..=max`.
fn position(key: &TValue<'_>, max: usize) -> Result<usize, FuncError> {
    let i = match Arg::of(key) {
        Arg::Int(i) => i128::from(i),
        Arg::Uint(u) => i128::from(u),
        Arg::Nil => return Err(FuncError::NilIndex),
        other => {
            return Err(FuncError::BadIndex {
                type_name: other.type_name(),
            });
        }
    };
    usize::try_from(i)
        .ok()
        .filter(|&i| i <= max)
        .ok_or(FuncError::IndexOutOfRange { index: i })
}

/// One `index` step, keeping a borrow of the data where there is one.
fn index_step<'a>(item: TValue<'a>, key: &TValue<'_>) -> Result<TValue<'a>, FuncError> {
    let out_of_range = |len: usize, i: usize| {
        if i >= len {
            Err(FuncError::IndexOutOfRange { index: i as i128 })
        } else {
            Ok(i)
        }
    };
    match item {
        TValue::Time(_) => Err(FuncError::NotIndexable {
            type_name: "time.Time",
        }),
        TValue::Json(Cow::Borrowed(value)) => match value {
            Value::Array(items) => {
                let i = out_of_range(items.len(), position(key, items.len())?)?;
                Ok(TValue::Json(Cow::Borrowed(&items[i])))
            }
            Value::Object(map) => Ok(match map.get(map_key(key)?) {
                Some(v) => TValue::Json(Cow::Borrowed(v)),
                None => TValue::null(),
            }),
            other => index_scalar(other, key),
        },
        TValue::Json(Cow::Owned(value)) => match value {
            Value::Array(mut items) => {
                let i = out_of_range(items.len(), position(key, items.len())?)?;
                Ok(TValue::owned(items.swap_remove(i)))
            }
            Value::Object(mut map) => {
                let key = map_key(key)?.to_owned();
                Ok(map.remove(&key).map_or_else(TValue::null, TValue::owned))
            }
            other => index_scalar(&other, key),
        },
    }
}

fn index_scalar<'a>(value: &Value, key: &TValue<'_>) -> Result<TValue<'a>, FuncError> {
    match value {
        // A string's bytes are uint8 values.
        Value::String(s) => {
            let i = position(key, s.len())?;
            s.as_bytes()
                .get(i)
                .map(|&b| TValue::owned(b.into()))
                .ok_or(FuncError::IndexOutOfRange { index: i as i128 })
        }
        Value::Null => Err(FuncError::IndexThroughNil),
        other => Err(FuncError::NotIndexable {
            type_name: Arg::json(other).type_name(),
        }),
    }
}

/// A map key: a string.
fn map_key<'k>(key: &'k TValue<'_>) -> Result<&'k str, FuncError> {
    match Arg::of(key) {
        Arg::Str(s) => Ok(s),
        Arg::Nil => Err(FuncError::NilMapKey),
        other => Err(FuncError::BadMapKey {
            got: other.type_name(),
        }),
    }
}

pub(super) fn index(args: Vec<TValue<'_>>) -> Result<TValue<'_>, FuncError> {
    let mut args = args.into_iter();
    let mut item = args.next().expect("arity checked");
    if matches!(item.json(), Some(Value::Null)) {
        return Err(FuncError::IndexOfNil);
    }
    for key in args {
        item = index_step(item, &key)?;
    }
    Ok(item)
}

pub(super) fn slice(args: Vec<TValue<'_>>) -> Result<TValue<'_>, FuncError> {
    let (item, indexes) = args.split_first().expect("arity checked");
    if indexes.len() > 3 {
        return Err(FuncError::TooManySliceIndexes {
            count: indexes.len(),
        });
    }
    let len = match Arg::of(item) {
        Arg::Nil => return Err(FuncError::SliceOfNil),
        Arg::Str(_) if indexes.len() == 3 => return Err(FuncError::ThreeIndexString),
        Arg::Str(s) => s.len(),
        Arg::List(items) => items.len(),
        other => {
            return Err(FuncError::NotSliceable {
                type_name: other.type_name(),
            });
        }
    };
    let mut bounds = [0, len, len];
    for (i, key) in indexes.iter().enumerate() {
        bounds[i] = position(key, len)?;
    }
    if bounds[0] > bounds[1] {
        return Err(FuncError::SliceIndexOrder {
            low: bounds[0],
            high: bounds[1],
        });
    }
    if indexes.len() == 3 && bounds[1] > bounds[2] {
        return Err(FuncError::SliceIndexOrder {
            low: bounds[1],
            high: bounds[2],
        });
    }
    let (low, high) = (bounds[0], bounds[1]);
    Ok(match Arg::of(item) {
        Arg::Str(s) => text(String::from_utf8_lossy(&s.as_bytes()[low..high]).into_owned()),
        Arg::List(items) => TValue::owned(Value::Array(items[low..high].to_vec())),
        _ => unreachable!("checked above"),
    })
}

pub(super) fn print(args: Vec<TValue<'_>>) -> Result<TValue<'_>, FuncError> {
    Ok(text(gofmt::sprint(&args)))
}

pub(super) fn println(args: Vec<TValue<'_>>) -> Result<TValue<'_>, FuncError> {
    Ok(text(gofmt::sprintln(&args)))
}

pub(super) fn printf(args: Vec<TValue<'_>>) -> Result<TValue<'_>, FuncError> {
    let format = str_arg(&args, 0)?;
    Ok(text(gofmt::sprintf(format, &args[1..])?))
}

/// The text of `html`, `js` and `urlquery`'s arguments: `fmt.Sprint`, with nil as
/// `<no value>` (Go's `evalArgs`).
fn eval_args(args: &[TValue<'_>]) -> String {
    if let [TValue::Json(v)] = args
        && let Value::String(s) = v.as_ref()
    {
        return s.clone();
    }
    let args: Vec<TValue<'_>> = args
        .iter()
        .map(|a| match a.json() {
            Some(Value::Null) => text("<no value>"),
            _ => a.clone(),
        })
        .collect();
    gofmt::sprint(&args)
}

pub(super) fn html(args: Vec<TValue<'_>>) -> Result<TValue<'_>, FuncError> {
    let mut out = String::new();
    for c in eval_args(&args).chars() {
        match c {
            '\0' => out.push('\u{fffd}'),
            '"' => out.push_str("&#34;"),
            '\'' => out.push_str("&#39;"),
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    Ok(text(out))
}

pub(super) fn js(args: Vec<TValue<'_>>) -> Result<TValue<'_>, FuncError> {
    let mut out = String::new();
    for c in eval_args(&args).chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '"' => out.push_str("\\\""),
            '<' => out.push_str("\\u003C"),
            '>' => out.push_str("\\u003E"),
            '&' => out.push_str("\\u0026"),
            '=' => out.push_str("\\u003D"),
            c if c < ' ' => out.push_str(&format!("\\u{:04X}", c as u32)),
            c if c.is_ascii() || gofmt::is_print(c) => out.push(c),
            c => out.push_str(&format!("\\u{:04X}", c as u32)),
        }
    }
    Ok(text(out))
}

pub(super) fn urlquery(args: Vec<TValue<'_>>) -> Result<TValue<'_>, FuncError> {
    // Form encoding, adjusted to url.QueryEscape: `*` escaped, `~` kept.
    let encoded: String = url::form_urlencoded::byte_serialize(eval_args(&args).as_bytes())
        .collect::<String>()
        .replace('*', "%2A")
        .replace("%7E", "~");
    Ok(text(encoded))
}

pub(super) fn call_value(args: Vec<TValue<'_>>) -> Result<TValue<'_>, FuncError> {
    Err(FuncError::NotAFunction {
        type_name: type_of(&args[0]),
    })
}

pub(super) fn to_json(args: Vec<TValue<'_>>) -> Result<TValue<'_>, FuncError> {
    Ok(text(gofmt::to_json(&args[0])))
}

pub(super) fn b64enc(args: Vec<TValue<'_>>) -> Result<TValue<'_>, FuncError> {
    Ok(text(
        base64::engine::general_purpose::STANDARD.encode(args[0].print()),
    ))
}

pub(super) fn b64dec(args: Vec<TValue<'_>>) -> Result<TValue<'_>, FuncError> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(str_arg(&args, 0)?)
        .map_err(|e| FuncError::Base64(e.to_string()))?;
    Ok(text(String::from_utf8_lossy(&bytes).into_owned()))
}

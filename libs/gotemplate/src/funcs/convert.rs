//! Conversions: HyperFleet's `int`, `float` and `string`, with Go's `strconv` parsing.

use serde_json::{Number, Value};

use super::{FuncError, text};
use crate::exec::TValue;
use crate::gofmt::{self, Arg};

/// `strconv.Atoi` with its error ignored, as HyperFleet calls it: 0 for anything but an
/// optionally signed run of decimal digits; the nearest int when out of range.
fn atoi(s: &str) -> i64 {
    let (negative, digits) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return 0;
    }
    let mut value: i128 = 0;
    for b in digits.bytes() {
        value = value * 10 + i128::from(b - b'0');
        if value > i128::from(i64::MAX) + 1 {
            break;
        }
    }
    let value = if negative { -value } else { value };
    value.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
}

pub(super) fn to_int(args: Vec<TValue<'_>>) -> Result<TValue<'_>, FuncError> {
    let n: i64 = match Arg::of(&args[0]) {
        Arg::Int(i) => i,
        Arg::Uint(u) => i64::try_from(u).unwrap_or(i64::MAX),
        // Go's int(float64) truncates toward zero.
        Arg::Float(f) => f.trunc() as i64,
        Arg::Str(s) => atoi(s),
        _ => 0,
    };
    Ok(TValue::owned(n.into()))
}

/// Go's `underscoreOK`: underscores only between digits (or after a base prefix).
fn underscores_ok(s: &str) -> bool {
    let s = s.strip_prefix(['+', '-']).unwrap_or(s);
    let b = s.as_bytes();
    let mut saw = b'^';
    let mut i = 0;
    let mut hex = false;
    if b.len() >= 2 && b[0] == b'0' && matches!(b[1].to_ascii_lowercase(), b'b' | b'o' | b'x') {
        i = 2;
        saw = b'0';
        hex = b[1].eq_ignore_ascii_case(&b'x');
    }
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_digit() || (hex && c.is_ascii_hexdigit()) {
            saw = b'0';
        } else if c == b'_' {
            if saw != b'0' {
                return false;
            }
            saw = b'_';
        } else {
            if saw == b'_' {
                return false;
            }
            saw = b'!';
        }
        i += 1;
    }
    saw != b'_'
}

/// `strconv.ParseFloat(s, 64)` with its error ignored, as HyperFleet calls it: 0 when the
/// syntax is wrong, ±Inf when out of range.
fn parse_float(s: &str) -> f64 {
    let (sign, body) = match s.as_bytes().first() {
        Some(b'-') => (-1.0, &s[1..]),
        Some(b'+') => (1.0, &s[1..]),
        _ => (1.0, s),
    };
    let lower = body.to_ascii_lowercase();
    if lower == "inf" || lower == "infinity" {
        return sign * f64::INFINITY;
    }
    if lower == "nan" {
        // Go accepts no sign before NaN.
        return if body.len() == s.len() { f64::NAN } else { 0.0 };
    }
    if s.contains('_') && !underscores_ok(s) {
        return 0.0;
    }
    let body = body.replace('_', "");
    if let Some(hex) = body.strip_prefix("0x").or_else(|| body.strip_prefix("0X")) {
        return hex_float(hex).map_or(0.0, |f| sign * f);
    }
    if !body
        .bytes()
        .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-'))
    {
        return 0.0;
    }
    body.parse::<f64>().map_or(0.0, |f| sign * f)
}

/// A hexadecimal float body (`1.8p3`): Go requires the `p` exponent.
fn hex_float(s: &str) -> Option<f64> {
    let (mantissa, exponent) = s.split_once(['p', 'P'])?;
    let exponent: i32 = exponent.parse().ok()?;
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if whole.is_empty() && fraction.is_empty() {
        return None;
    }
    let mut value = 0f64;
    for c in whole.chars().chain(fraction.chars()) {
        value = value * 16.0 + f64::from(c.to_digit(16)?);
    }
    let shift = exponent - 4 * i32::try_from(fraction.len()).ok()?;
    Some(value * 2f64.powi(shift))
}

pub(super) fn to_float(args: Vec<TValue<'_>>) -> Result<TValue<'_>, FuncError> {
    let f: f64 = match Arg::of(&args[0]) {
        Arg::Int(i) => i as f64,
        Arg::Uint(u) => u as f64,
        Arg::Float(f) => f,
        Arg::Str(s) => parse_float(s),
        _ => 0.0,
    };
    let number = Number::from_f64(f).ok_or_else(|| FuncError::NotFinite {
        input: args[0].print(),
        value: if f.is_nan() {
            "NaN".into()
        } else if f > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        },
    })?;
    Ok(TValue::owned(Value::Number(number)))
}

pub(super) fn to_string(args: Vec<TValue<'_>>) -> Result<TValue<'_>, FuncError> {
    Ok(text(gofmt::print_one(&args[0])))
}

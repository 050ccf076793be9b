//! Integers and floats as `fmt` and `strconv.FormatFloat` write them.

use super::Arg;
use super::printf::{Spec, bad_verb, pad, pad_spaces, write_padding};
use super::quote::{is_print, quote_rune};
use crate::funcs::FuncError;

pub(super) fn integer(
    out: &mut String,
    negative: bool,
    magnitude: u64,
    verb: char,
    spec: &Spec,
    arg: Arg<'_>,
) -> Result<(), FuncError> {
    let (base, upper) = match verb {
        'd' | 'v' => (10, false),
        'b' => (2, false),
        'o' | 'O' => (8, false),
        'x' => (16, false),
        'X' => (16, true),
        'c' => {
            let c = if negative {
                char::REPLACEMENT_CHARACTER
            } else {
                u32::try_from(magnitude)
                    .ok()
                    .and_then(char::from_u32)
                    .unwrap_or(char::REPLACEMENT_CHARACTER)
            };
            pad(out, c.encode_utf8(&mut [0; 4]), spec);
            return Ok(());
        }
        'q' => {
            let c = if negative {
                char::REPLACEMENT_CHARACTER
            } else {
                u32::try_from(magnitude)
                    .ok()
                    .and_then(char::from_u32)
                    .unwrap_or(char::REPLACEMENT_CHARACTER)
            };
            pad(out, &quote_rune(c, spec.plus), spec);
            return Ok(());
        }
        'U' => {
            unicode_point(out, negative, magnitude, spec);
            return Ok(());
        }
        // A JSON number has no Go type of its own: HyperFleet's params hold float64 where
        // this port sees an integer, so float verbs accept integers (see the crate docs).
        'e' | 'E' | 'f' | 'F' | 'g' | 'G' => {
            let f = if negative {
                -(magnitude as f64)
            } else {
                magnitude as f64
            };
            return float(out, f, verb, spec, arg);
        }
        _ => {
            bad_verb(out, verb, arg, spec);
            return Ok(());
        }
    };
    let mut precision = 0usize;
    if let Some(p) = spec.precision {
        precision = p;
        if p == 0 && magnitude == 0 {
            write_padding(
                out,
                spec.width.unwrap_or(0),
                &Spec {
                    zero: false,
                    ..*spec
                },
            );
            return Ok(());
        }
    } else if spec.zero
        && !spec.minus
        && let Some(width) = spec.width
    {
        precision = width;
        if negative || spec.plus || spec.space {
            precision = precision.saturating_sub(1);
        }
    }
    let mut digits = match (base, upper) {
        (2, _) => format!("{magnitude:b}"),
        (8, _) => format!("{magnitude:o}"),
        (16, false) => format!("{magnitude:x}"),
        (16, true) => format!("{magnitude:X}"),
        _ => magnitude.to_string(),
    };
    if digits.len() < precision {
        digits = format!("{}{digits}", "0".repeat(precision - digits.len()));
    }
    let mut prefix = String::new();
    if spec.sharp {
        match base {
            2 => prefix.push_str("0b"),
            8 if !digits.starts_with('0') => prefix.push('0'),
            16 => prefix.push_str(if upper { "0X" } else { "0x" }),
            _ => {}
        }
    }
    if verb == 'O' {
        prefix.insert_str(0, "0o");
    }
    let sign = if negative {
        "-"
    } else if spec.plus {
        "+"
    } else if spec.space {
        " "
    } else {
        ""
    };
    pad_spaces(out, &format!("{sign}{prefix}{digits}"), spec);
    Ok(())
}

/// `%U`: `U+0041`, and with `#` the character too.
fn unicode_point(out: &mut String, negative: bool, magnitude: u64, spec: &Spec) {
    let value = if negative {
        magnitude.wrapping_neg()
    } else {
        magnitude
    };
    let width = spec.precision.filter(|&p| p > 4).unwrap_or(4);
    let mut text = format!("U+{value:0width$X}");
    if spec.sharp
        && let Some(c) = u32::try_from(value).ok().and_then(char::from_u32)
        && is_print(c)
    {
        text.push_str(&format!(" '{c}'"));
    }
    pad_spaces(out, &text, spec);
}

pub(super) fn float(
    out: &mut String,
    f: f64,
    verb: char,
    spec: &Spec,
    arg: Arg<'_>,
) -> Result<(), FuncError> {
    let (verb, default_precision) = match verb {
        'v' => ('g', None),
        'b' | 'g' | 'G' | 'x' | 'X' => (verb, None),
        'e' | 'E' | 'f' => (verb, Some(6)),
        'F' => ('f', Some(6)),
        _ => {
            bad_verb(out, verb, arg, spec);
            return Ok(());
        }
    };
    let precision = spec.precision.or(default_precision);
    let mut body = format_float(f.abs(), verb, precision)?;
    if spec.sharp && verb != 'b' {
        body = sharp_float(&body, verb, precision);
    }
    let sign = if f.is_sign_negative() {
        Some('-')
    } else if spec.plus {
        Some('+')
    } else if spec.space {
        Some(' ')
    } else {
        None
    };
    match sign {
        Some(sign) if spec.zero && spec.width.is_some_and(|w| w > body.len() + 1) => {
            out.push(sign);
            write_padding(out, spec.width.unwrap_or(0) - body.len() - 1, spec);
            out.push_str(&body);
        }
        Some(sign) => pad(out, &format!("{sign}{body}"), spec),
        None => pad(out, &body, spec),
    }
    Ok(())
}

/// The `#` flag on a float: always a decimal point, and `%g` keeps its trailing zeros.
fn sharp_float(body: &str, verb: char, precision: Option<usize>) -> String {
    let mut digits: i64 = match verb {
        'g' | 'G' | 'x' => precision.map_or(6, |p| p as i64),
        _ => 0,
    };
    let (mut num, tail) = match body.find(|c: char| {
        matches!(c, 'p' | 'P') || (matches!(c, 'e' | 'E') && !matches!(verb, 'x' | 'X'))
    }) {
        Some(i) => (body[..i].to_owned(), body[i..].to_owned()),
        None => (body.to_owned(), String::new()),
    };
    let mut has_point = false;
    let mut seen_nonzero = false;
    for c in num.chars() {
        if c == '.' {
            has_point = true;
            continue;
        }
        if c != '0' {
            seen_nonzero = true;
        }
        if seen_nonzero {
            digits -= 1;
        }
    }
    if !has_point {
        if num == "0" {
            digits -= 1;
        }
        num.push('.');
    }
    while digits > 0 {
        num.push('0');
        digits -= 1;
    }
    num + &tail
}

/// `strconv.FormatFloat` of a non-negative finite value, without the sign.
pub(crate) fn format_float(
    f: f64,
    verb: char,
    precision: Option<usize>,
) -> Result<String, FuncError> {
    Ok(match verb {
        'f' | 'F' => match precision {
            Some(p) => format!("{f:.p$}"),
            None => format!("{f}"),
        },
        'e' | 'E' => {
            let (digits, point) = decimal_digits(f, precision.map(|p| p + 1));
            let p = precision.unwrap_or(digits.len().saturating_sub(1));
            exponent_form(&digits, point, p, verb == 'E')
        }
        'g' | 'G' => {
            let shortest = precision.is_none();
            let mut p = precision.map_or(0, |p| p.max(1));
            let (digits, point) = decimal_digits(f, (!shortest).then_some(p));
            let count = digits.len() as i64;
            if shortest {
                p = digits.len();
            }
            let mut eprec = p as i64;
            if eprec > count && count >= point {
                eprec = count;
            }
            if shortest {
                eprec = 6;
            }
            let exp = point - 1;
            if exp < -4 || exp >= eprec {
                let p = p.min(digits.len());
                exponent_form(&digits, point, p.saturating_sub(1), verb == 'G')
            } else {
                let p = if p as i64 > point { digits.len() } else { p };
                fixed_form(&digits, point, (p as i64 - point).max(0) as usize)
            }
        }
        'x' | 'X' => hex_float(f, precision, verb == 'X'),
        'b' => {
            let (mantissa, exp) = float_parts(f);
            let exp = exp - 52;
            format!("{mantissa}p{}{exp}", if exp >= 0 { "+" } else { "" })
        }
        other => return Err(FuncError::Unsupported(format!("verb %{other} for float64"))),
    })
}

/// Significant decimal digits of `f` (shortest round trip, or rounded to `significant`) and
/// where the decimal point goes (`digits × 10^(point - len)`). Trailing zeros are dropped.
pub(super) fn decimal_digits(f: f64, significant: Option<usize>) -> (Vec<u8>, i64) {
    let text = match significant {
        Some(n) => format!("{:.*e}", n.saturating_sub(1), f),
        None => format!("{f:e}"),
    };
    let (mantissa, exponent) = text.split_once('e').unwrap_or((&text, "0"));
    let exponent: i64 = exponent.parse().unwrap_or(0);
    let mut digits: Vec<u8> = mantissa.bytes().filter(u8::is_ascii_digit).collect();
    while digits.len() > 1 && digits.last() == Some(&b'0') {
        digits.pop();
    }
    if digits == [b'0'] {
        return (digits, 1);
    }
    (digits, exponent + 1)
}

/// `d.ddde±dd` with `precision` digits after the point.
pub(super) fn exponent_form(digits: &[u8], point: i64, precision: usize, upper: bool) -> String {
    let mut out = String::new();
    out.push(digits.first().copied().unwrap_or(b'0') as char);
    if precision > 0 {
        out.push('.');
        for i in 1..=precision {
            out.push(digits.get(i).copied().unwrap_or(b'0') as char);
        }
    }
    let exp = if digits.iter().all(|&d| d == b'0') {
        0
    } else {
        point - 1
    };
    out.push(if upper { 'E' } else { 'e' });
    out.push(if exp < 0 { '-' } else { '+' });
    out.push_str(&format!("{:02}", exp.unsigned_abs()));
    out
}

/// `ddd.ddd` with `precision` digits after the point.
fn fixed_form(digits: &[u8], point: i64, precision: usize) -> String {
    let digit = |i: i64| {
        if i >= 0 {
            digits.get(i as usize).copied().unwrap_or(b'0') as char
        } else {
            '0'
        }
    };
    let mut out = String::new();
    if point > 0 {
        for i in 0..point {
            out.push(digit(i));
        }
    } else {
        out.push('0');
    }
    if precision > 0 {
        out.push('.');
        for i in 0..precision as i64 {
            out.push(digit(point + i));
        }
    }
    out
}

/// The mantissa and unbiased exponent of a float: `f = mantissa × 2^(exp - 52)`.
fn float_parts(f: f64) -> (u64, i64) {
    let bits = f.to_bits();
    let mut exp = ((bits >> 52) & 0x7ff) as i64;
    let mut mantissa = bits & ((1 << 52) - 1);
    if exp == 0 {
        exp += 1;
    } else {
        mantissa |= 1 << 52;
    }
    (mantissa, exp - 1023)
}

/// `%x` of a float: `0x1.8p+01`, rounded to `precision` hex digits when given.
fn hex_float(f: f64, precision: Option<usize>, upper: bool) -> String {
    let (mut mantissa, mut exp) = float_parts(f);
    if mantissa == 0 {
        exp = 0;
    }
    mantissa <<= 8;
    while mantissa != 0 && mantissa & (1 << 60) == 0 {
        mantissa <<= 1;
        exp -= 1;
    }
    if let Some(p) = precision.filter(|&p| p < 15) {
        let shift = (p * 4) as u32;
        let extra = (mantissa << shift) & ((1 << 60) - 1);
        mantissa >>= 60 - shift;
        if extra | (mantissa & 1) > 1 << 59 {
            mantissa += 1;
        }
        mantissa <<= 60 - shift;
        if mantissa & (1 << 61) != 0 {
            mantissa >>= 1;
            exp += 1;
        }
    }
    let digit = |d: u64| {
        let c = char::from_digit(d as u32, 16).unwrap_or('0');
        if upper { c.to_ascii_uppercase() } else { c }
    };
    let mut out = String::from(if upper { "0X" } else { "0x" });
    out.push(if (mantissa >> 60) & 1 == 1 { '1' } else { '0' });
    mantissa <<= 4;
    match precision {
        None if mantissa != 0 => {
            out.push('.');
            while mantissa != 0 {
                out.push(digit((mantissa >> 60) & 15));
                mantissa <<= 4;
            }
        }
        Some(p) if p > 0 => {
            out.push('.');
            for _ in 0..p {
                out.push(digit((mantissa >> 60) & 15));
                mantissa <<= 4;
            }
        }
        _ => {}
    }
    out.push(if upper { 'P' } else { 'p' });
    out.push(if exp < 0 { '-' } else { '+' });
    out.push_str(&format!("{:02}", exp.unsigned_abs()));
    out
}

//! Go's `fmt` and `strconv` output for template values: what `{{ .x }}`, `print`, `println`,
//! `printf` and `quote` write, and `encoding/json`'s `Marshal` for `toJson`.
//!
//! Values are JSON (plus the time `now` returns). A JSON integer is a Go `int`, any other
//! number a `float64`, a list `[]interface {}` and an object `map[string]interface {}`, which
//! is what the values of HyperFleet's params are in Go.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use crate::exec::TValue;
use crate::funcs::FuncError;
use crate::golayout;

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
fn print_value(out: &mut String, arg: Arg<'_>) {
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

/// Flags, width and precision of one verb.
#[derive(Default, Clone, Copy)]
struct Spec {
    plus: bool,
    minus: bool,
    sharp: bool,
    space: bool,
    zero: bool,
    plus_v: bool,
    sharp_v: bool,
    width: Option<usize>,
    precision: Option<usize>,
}

/// Go refuses widths and precisions above this (`%!(BADWIDTH)`).
const TOO_LARGE: usize = 1_000_000;

/// `fmt.Sprintf(format, args...)`, including Go's in-band errors (`%!d(string=x)`,
/// `%!s(MISSING)`, `%!(EXTRA int=1)`). Fails only for what this port does not implement
/// (`%p`, and verbs other than `%v %s %q %x %X` on a time), rather than print something Go
/// would not.
pub(crate) fn sprintf(format: &str, args: &[TValue<'_>]) -> Result<String, FuncError> {
    let args: Vec<Arg<'_>> = args.iter().map(Arg::of).collect();
    let mut out = String::new();
    let chars: Vec<char> = format.chars().collect();
    let end = chars.len();
    let mut arg_num = 0usize;
    let mut reordered = false;
    let mut i = 0usize;
    while i < end {
        if chars[i] != '%' {
            out.push(chars[i]);
            i += 1;
            continue;
        }
        i += 1;
        let mut spec = Spec::default();
        let mut good_arg_num = true;
        while i < end {
            match chars[i] {
                '#' => spec.sharp = true,
                '0' => spec.zero = !spec.minus,
                '+' => spec.plus = true,
                '-' => {
                    spec.minus = true;
                    spec.zero = false;
                }
                ' ' => spec.space = true,
                _ => break,
            }
            i += 1;
        }
        let mut after_index;
        (arg_num, i, after_index) = arg_number(
            arg_num,
            &chars,
            i,
            args.len(),
            &mut reordered,
            &mut good_arg_num,
        );
        if i < end && chars[i] == '*' {
            i += 1;
            let (width, ok, next) = int_from_arg(&args, arg_num);
            arg_num = next;
            if !ok {
                out.push_str("%!(BADWIDTH)");
            } else if width < 0 {
                spec.width = Some(width.unsigned_abs() as usize);
                spec.minus = true;
                spec.zero = false;
            } else {
                spec.width = Some(width as usize);
            }
            after_index = false;
        } else {
            let (width, next) = parse_number(&chars, i);
            spec.width = width;
            i = next;
            if after_index && spec.width.is_some() {
                good_arg_num = false;
            }
        }
        if i + 1 < end && chars[i] == '.' {
            i += 1;
            if after_index {
                good_arg_num = false;
            }
            (arg_num, i, after_index) = arg_number(
                arg_num,
                &chars,
                i,
                args.len(),
                &mut reordered,
                &mut good_arg_num,
            );
            if i < end && chars[i] == '*' {
                i += 1;
                let (precision, ok, next) = int_from_arg(&args, arg_num);
                arg_num = next;
                // A negative precision is as bad as a missing one.
                if ok && precision >= 0 {
                    spec.precision = Some(precision as usize);
                } else {
                    out.push_str("%!(BADPREC)");
                }
                after_index = false;
            } else {
                let (precision, next) = parse_number(&chars, i);
                spec.precision = Some(precision.unwrap_or(0));
                i = next;
            }
        }
        if !after_index {
            (arg_num, i, _) = arg_number(
                arg_num,
                &chars,
                i,
                args.len(),
                &mut reordered,
                &mut good_arg_num,
            );
        }
        if i >= end {
            out.push_str("%!(NOVERB)");
            break;
        }
        let verb = chars[i];
        i += 1;
        if verb == '%' {
            out.push('%');
        } else if !good_arg_num {
            out.push_str(&format!("%!{verb}(BADINDEX)"));
        } else if arg_num >= args.len() {
            out.push_str(&format!("%!{verb}(MISSING)"));
        } else {
            if verb == 'v' {
                spec.sharp_v = spec.sharp;
                spec.sharp = false;
                spec.plus_v = spec.plus;
                spec.plus = false;
            }
            print_arg(&mut out, args[arg_num], verb, &spec, 0)?;
            arg_num += 1;
        }
    }
    if !reordered && arg_num < args.len() {
        out.push_str("%!(EXTRA ");
        for (n, arg) in args[arg_num..].iter().enumerate() {
            if n > 0 {
                out.push_str(", ");
            }
            if let Arg::Nil = arg {
                out.push_str("<nil>");
            } else {
                out.push_str(arg.type_name());
                out.push('=');
                print_value(&mut out, *arg);
            }
        }
        out.push(')');
    }
    Ok(out)
}

/// Digits at `i`, as Go's `parsenum` (absent, or too large, is `None`).
fn parse_number(chars: &[char], mut i: usize) -> (Option<usize>, usize) {
    let start = i;
    let mut n = 0usize;
    while i < chars.len() && chars[i].is_ascii_digit() {
        if n >= TOO_LARGE {
            return (None, chars.len());
        }
        n = n * 10 + (chars[i] as usize - '0' as usize);
        i += 1;
    }
    ((i > start).then_some(n), i)
}

/// An explicit `[n]` argument index at `i`.
fn arg_number(
    arg_num: usize,
    chars: &[char],
    i: usize,
    count: usize,
    reordered: &mut bool,
    good: &mut bool,
) -> (usize, usize, bool) {
    if chars.get(i) != Some(&'[') {
        return (arg_num, i, false);
    }
    *reordered = true;
    let close = chars[i + 1..].iter().position(|&c| c == ']');
    let Some(close) = close else {
        *good = false;
        return (arg_num, i + 1, false);
    };
    let close = i + 1 + close;
    let (n, next) = parse_number(chars, i + 1);
    match n {
        Some(n) if next == close && n >= 1 && n - 1 < count => (n - 1, close + 1, true),
        Some(_) if next == close => {
            *good = false;
            (arg_num, close + 1, true)
        }
        _ => {
            *good = false;
            (arg_num, close + 1, false)
        }
    }
}

/// A `*` width or precision: the next argument, which must be an int.
fn int_from_arg(args: &[Arg<'_>], arg_num: usize) -> (i64, bool, usize) {
    match args.get(arg_num) {
        Some(Arg::Int(n)) if n.unsigned_abs() <= TOO_LARGE as u64 => (*n, true, arg_num + 1),
        Some(_) => (0, false, arg_num + 1),
        None => (0, false, arg_num),
    }
}

fn print_arg(
    out: &mut String,
    arg: Arg<'_>,
    verb: char,
    spec: &Spec,
    depth: usize,
) -> Result<(), FuncError> {
    if depth == 0 {
        if verb == 'T' {
            match arg {
                Arg::Nil => pad(out, "<nil>", spec),
                _ => pad(out, truncate(arg.type_name(), spec), spec),
            }
            return Ok(());
        }
        if verb == 'p' {
            return Err(unsupported(verb, arg));
        }
    }
    match arg {
        Arg::Nil if depth == 0 => {
            if verb == 'v' {
                pad(out, "<nil>", spec);
            } else {
                bad_verb(out, verb, arg, spec);
            }
        }
        // A nil element of a list or map prints the same under every verb, unpadded.
        Arg::Nil if spec.sharp_v => out.push_str("interface {}(nil)"),
        Arg::Nil => out.push_str("<nil>"),
        Arg::Bool(b) => match verb {
            't' | 'v' => pad(out, if b { "true" } else { "false" }, spec),
            _ => bad_verb(out, verb, arg, spec),
        },
        Arg::Int(i) => integer(out, i < 0, i.unsigned_abs(), verb, spec, arg)?,
        Arg::Uint(u) => integer(out, false, u, verb, spec, arg)?,
        Arg::Float(f) => float(out, f, verb, spec, arg)?,
        Arg::Str(s) => match verb {
            'v' if spec.sharp_v => quoted(
                out,
                s,
                &Spec {
                    sharp: false,
                    ..*spec
                },
            ),
            'v' | 's' => pad(out, truncate(s, spec), spec),
            'x' => hex_string(out, s, false, spec),
            'X' => hex_string(out, s, true, spec),
            'q' => quoted(out, s, spec),
            _ => bad_verb(out, verb, arg, spec),
        },
        Arg::List(items) => {
            if spec.sharp_v {
                out.push_str("[]interface {}{");
            } else {
                out.push('[');
            }
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(if spec.sharp_v { ", " } else { " " });
                }
                print_arg(out, Arg::json(item), verb, spec, depth + 1)?;
            }
            out.push(if spec.sharp_v { '}' } else { ']' });
        }
        Arg::Map(map) => {
            out.push_str(if spec.sharp_v {
                "map[string]interface {}{"
            } else {
                "map["
            });
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push_str(if spec.sharp_v { ", " } else { " " });
                }
                print_arg(out, Arg::Str(key), verb, spec, depth + 1)?;
                out.push(':');
                print_arg(out, Arg::json(&map[key]), verb, spec, depth + 1)?;
            }
            out.push(if spec.sharp_v { '}' } else { ']' });
        }
        Arg::Time(t) => {
            let text = time_string(t);
            match verb {
                'v' if !spec.sharp_v => pad(out, truncate(&text, spec), spec),
                's' => pad(out, truncate(&text, spec), spec),
                'q' => quoted(out, &text, spec),
                'x' => hex_string(out, &text, false, spec),
                'X' => hex_string(out, &text, true, spec),
                _ => return Err(unsupported(verb, arg)),
            }
        }
    }
    Ok(())
}

fn unsupported(verb: char, arg: Arg<'_>) -> FuncError {
    FuncError::Unsupported(format!("verb %{verb} for {}", arg.type_name()))
}

/// `%!d(string=abc)`: the verb does not apply to the value.
fn bad_verb(out: &mut String, verb: char, arg: Arg<'_>, spec: &Spec) {
    out.push_str("%!");
    out.push(verb);
    out.push('(');
    if let Arg::Nil = arg {
        out.push_str("<nil>");
    } else {
        out.push_str(arg.type_name());
        out.push('=');
        let _ = print_arg(out, arg, 'v', spec, 0);
    }
    out.push(')');
}

/// `time.Time.String()` (without the monotonic clock reading Go appends to `time.Now()`).
pub(crate) fn time_string(t: &DateTime<Utc>) -> String {
    golayout::format(t, "2006-01-02 15:04:05.999999999 -0700 MST")
}

fn truncate<'s>(s: &'s str, spec: &Spec) -> &'s str {
    match spec.precision {
        Some(n) => s.char_indices().nth(n).map_or(s, |(i, _)| &s[..i]),
        None => s,
    }
}

fn write_padding(out: &mut String, n: usize, spec: &Spec) {
    let c = if spec.zero { '0' } else { ' ' };
    out.extend(std::iter::repeat_n(c, n));
}

/// Pads to the width (counted in characters), left or right.
fn pad(out: &mut String, s: &str, spec: &Spec) {
    let Some(width) = spec.width else {
        out.push_str(s);
        return;
    };
    let fill = width.saturating_sub(s.chars().count());
    if spec.minus {
        out.push_str(s);
        write_padding(out, fill, spec);
    } else {
        write_padding(out, fill, spec);
        out.push_str(s);
    }
}

fn pad_spaces(out: &mut String, s: &str, spec: &Spec) {
    pad(
        out,
        s,
        &Spec {
            zero: false,
            ..*spec
        },
    );
}

fn integer(
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

fn float(out: &mut String, f: f64, verb: char, spec: &Spec, arg: Arg<'_>) -> Result<(), FuncError> {
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
fn decimal_digits(f: f64, significant: Option<usize>) -> (Vec<u8>, i64) {
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
fn exponent_form(digits: &[u8], point: i64, precision: usize, upper: bool) -> String {
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

/// `%x` of a string: the bytes in hex, `% x` spaced, `%#x` prefixed.
fn hex_string(out: &mut String, s: &str, upper: bool, spec: &Spec) {
    let bytes = s.as_bytes();
    let length = spec.precision.map_or(bytes.len(), |p| p.min(bytes.len()));
    if length == 0 {
        write_padding(out, spec.width.unwrap_or(0), spec);
        return;
    }
    let mut width = 2 * length;
    if spec.space {
        if spec.sharp {
            width *= 2;
        }
        width += length - 1;
    } else if spec.sharp {
        width += 2;
    }
    let fill = spec.width.map_or(0, |w| w.saturating_sub(width));
    if !spec.minus {
        write_padding(out, fill, spec);
    }
    let prefix = if upper { "0X" } else { "0x" };
    if spec.sharp {
        out.push_str(prefix);
    }
    for (i, b) in bytes[..length].iter().enumerate() {
        if spec.space && i > 0 {
            out.push(' ');
            if spec.sharp {
                out.push_str(prefix);
            }
        }
        if upper {
            out.push_str(&format!("{b:02X}"));
        } else {
            out.push_str(&format!("{b:02x}"));
        }
    }
    if spec.minus {
        write_padding(out, fill, spec);
    }
}

/// `%q` of a string.
fn quoted(out: &mut String, s: &str, spec: &Spec) {
    let s = truncate(s, spec);
    if spec.sharp && can_backquote(s) {
        pad(out, &format!("`{s}`"), spec);
    } else {
        pad(out, &quote_with(s, '"', spec.plus), spec);
    }
}

/// `strconv.Quote`: what Go's `%q` and HyperFleet's `quote` write.
pub(crate) fn quote(s: &str) -> String {
    quote_with(s, '"', false)
}

fn quote_rune(c: char, ascii_only: bool) -> String {
    quote_with(c.encode_utf8(&mut [0; 4]), '\'', ascii_only)
}

fn quote_with(s: &str, quote: char, ascii_only: bool) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for c in s.chars() {
        if c == quote || c == '\\' {
            out.push('\\');
            out.push(c);
            continue;
        }
        if if ascii_only {
            c.is_ascii() && is_print(c)
        } else {
            is_print(c)
        } {
            out.push(c);
            continue;
        }
        match c {
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c if (c as u32) < 0x10000 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push_str(&format!("\\U{:08x}", c as u32)),
        }
    }
    out.push(quote);
    out
}

fn can_backquote(s: &str) -> bool {
    s.chars()
        .all(|c| !((c < ' ' && c != '\t') || c == '`' || c == '\u{7f}' || c == '\u{feff}'))
}

/// Go's `strconv.IsPrint`: letters, marks, numbers, punctuation, symbols and the ASCII space.
/// Without Unicode category tables this treats every assigned-looking character as
/// printable except controls, separators other than the space, format characters and the
/// private-use areas.
pub(crate) fn is_print(c: char) -> bool {
    let u = c as u32;
    if c.is_ascii() {
        return (0x20..0x7f).contains(&u);
    }
    if c.is_control() {
        return false;
    }
    !matches!(u,
        0xa0 | 0xad | 0x1680 | 0x2000..=0x200f | 0x2028..=0x202f | 0x205f..=0x2064
        | 0x2066..=0x206f | 0x3000 | 0xfeff | 0xfff9..=0xfffb | 0x600..=0x605 | 0x61c
        | 0x6dd | 0x70f | 0x180e | 0xe000..=0xf8ff | 0xe0001 | 0xe0020..=0xe007f
        | 0xf0000..=0x10ffff | 0xfffe | 0xffff)
}

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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn f(format: &str, args: Vec<Value>) -> String {
        let args: Vec<TValue<'static>> = args.into_iter().map(TValue::owned).collect();
        sprintf(format, &args).unwrap()
    }

    #[test]
    fn floats_print_like_go() {
        for (value, expected) in [
            (json!(0.5), "0.5"),
            (json!(1e6), "1e+06"),
            (json!(123456.5), "123456.5"),
            (json!(1e-5), "1e-05"),
            (json!(0.0001), "0.0001"),
            (json!(1e21), "1e+21"),
            (json!(5.0), "5"),
            (json!(-2.5), "-2.5"),
        ] {
            assert_eq!(
                print_one(&TValue::owned(value.clone())),
                expected,
                "{value}"
            );
        }
    }

    #[test]
    fn printf_verbs() {
        assert_eq!(
            f(
                "%5.2f|%-5d|%05d",
                vec![json!(1.23456), json!(42), json!(-42)]
            ),
            " 1.23|42   |-0042"
        );
        assert_eq!(
            f(
                "%.3g %g %e",
                vec![json!(1234.5678), json!(100000.0), json!(1.5)]
            ),
            "1.23e+03 100000 1.500000e+00"
        );
        assert_eq!(
            f(
                "%x %X %#x %o %b",
                vec![json!(255), json!(255), json!(255), json!(8), json!(5)]
            ),
            "ff FF 0xff 10 101"
        );
        assert_eq!(
            f("%d %s", vec![json!("a"), json!(1)]),
            "%!d(string=a) %!s(int=1)"
        );
        assert_eq!(f("%d", vec![]), "%!d(MISSING)");
        assert_eq!(f("%d", vec![json!(1), json!("x")]), "1%!(EXTRA string=x)");
        assert_eq!(f("%[2]d %[1]d", vec![json!(1), json!(2)]), "2 1");
        assert_eq!(f("%x", vec![json!(1.5)]), "0x1.8p+00");
    }

    #[test]
    fn json_like_go() {
        assert_eq!(
            to_json(&TValue::owned(
                json!({"b": [1, 2.5, 5.0, 1e21], "a": "<&>"})
            )),
            r#"{"a":"\u003c\u0026\u003e","b":[1,2.5,5,1e+21]}"#
        );
        assert_eq!(to_json(&TValue::owned(json!(1e-7))), "1e-7");
    }
}

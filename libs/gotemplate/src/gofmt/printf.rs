//! `fmt.Sprintf`: parsing the format, and the verbs on strings, bools, lists and maps.

use super::number::{float, integer};
use super::quote::quoted;
use super::{Arg, print_value, time_string};
use crate::exec::TValue;
use crate::funcs::FuncError;

/// Flags, width and precision of one verb.
#[derive(Default, Clone, Copy)]
pub(super) struct Spec {
    pub(super) plus: bool,
    pub(super) minus: bool,
    pub(super) sharp: bool,
    pub(super) space: bool,
    pub(super) zero: bool,
    pub(super) plus_v: bool,
    pub(super) sharp_v: bool,
    pub(super) width: Option<usize>,
    pub(super) precision: Option<usize>,
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

pub(super) fn print_arg(
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
pub(super) fn bad_verb(out: &mut String, verb: char, arg: Arg<'_>, spec: &Spec) {
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

pub(super) fn truncate<'s>(s: &'s str, spec: &Spec) -> &'s str {
    match spec.precision {
        Some(n) => s.char_indices().nth(n).map_or(s, |(i, _)| &s[..i]),
        None => s,
    }
}

pub(super) fn write_padding(out: &mut String, n: usize, spec: &Spec) {
    let c = if spec.zero { '0' } else { ' ' };
    out.extend(std::iter::repeat_n(c, n));
}

/// Pads to the width (counted in characters), left or right.
pub(super) fn pad(out: &mut String, s: &str, spec: &Spec) {
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

pub(super) fn pad_spaces(out: &mut String, s: &str, spec: &Spec) {
    pad(
        out,
        s,
        &Spec {
            zero: false,
            ..*spec
        },
    );
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

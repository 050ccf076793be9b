//! String functions: HyperFleet's `strings` bindings, `title`, `quote` and `default`.

use serde_json::Value;

use super::{FuncError, boolean, str_arg, text};
use crate::exec::TValue;
use crate::gofmt;

/// Go's `unicode.ToLower`/`ToUpper` map one character to one; where Rust's full mapping gives
/// several, Go's simple mapping keeps the character (or, for `İ`, gives `i`).
fn map_chars(s: &str, upper: bool) -> String {
    s.chars()
        .map(|c| {
            let mut mapped: Vec<char> = if upper {
                c.to_uppercase().collect()
            } else {
                c.to_lowercase().collect()
            };
            match mapped.len() {
                1 => mapped.remove(0),
                _ if !upper && c == '\u{130}' => 'i',
                _ => c,
            }
        })
        .collect()
}

pub(super) fn lower(args: Vec<TValue<'_>>) -> Result<TValue<'_>, FuncError> {
    Ok(text(map_chars(str_arg(&args, 0)?, false)))
}

pub(super) fn upper(args: Vec<TValue<'_>>) -> Result<TValue<'_>, FuncError> {
    Ok(text(map_chars(str_arg(&args, 0)?, true)))
}

pub(super) fn title(args: Vec<TValue<'_>>) -> Result<TValue<'_>, FuncError> {
    Ok(text(title_case(str_arg(&args, 0)?)))
}

/// Joins two word characters across it (`o'neil`, `x.y`, `a:b`) as Unicode word breaking
/// does between letters.
fn joins_letters(c: char) -> bool {
    matches!(
        c,
        '\'' | '.'
            | ':'
            | '\u{b7}'
            | '\u{2019}'
            | '\u{2018}'
            | '\u{2024}'
            | '\u{fe52}'
            | '\u{ff07}'
            | '\u{ff0e}'
    )
}

/// Joins two digits across it (`1,000`, `1.5`).
fn joins_digits(c: char) -> bool {
    matches!(
        c,
        '\'' | '.'
            | ','
            | ';'
            | '\u{2019}'
            | '\u{2024}'
            | '\u{fe50}'
            | '\u{fe52}'
            | '\u{ff07}'
            | '\u{ff0c}'
            | '\u{ff0e}'
    )
}

fn word_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// The title-case form of a word's first letter (Unicode's full titlecase mapping): the
/// upper case, except for digraphs (`ǆ` → `ǅ`), `ß` → `Ss`, ligatures (`ﬁ` → `Fi`) and Greek
/// letters with iota subscript.
fn title_char(c: char, out: &mut String) {
    let u = c as u32;
    let mapped: Option<&str> = match u {
        0x1c4..=0x1c6 => Some("\u{1c5}"),
        0x1c7..=0x1c9 => Some("\u{1c8}"),
        0x1ca..=0x1cc => Some("\u{1cb}"),
        0x1f1..=0x1f3 => Some("\u{1f2}"),
        0xdf => Some("Ss"),
        0xfb00 => Some("Ff"),
        0xfb01 => Some("Fi"),
        0xfb02 => Some("Fl"),
        0xfb03 => Some("Ffi"),
        0xfb04 => Some("Ffl"),
        0xfb05 | 0xfb06 => Some("St"),
        0x587 => Some("\u{535}\u{582}"),
        0xfb13 => Some("\u{544}\u{576}"),
        0xfb14 => Some("\u{544}\u{565}"),
        0xfb15 => Some("\u{544}\u{56b}"),
        0xfb16 => Some("\u{54e}\u{576}"),
        0xfb17 => Some("\u{544}\u{56d}"),
        0x1fb2 => Some("\u{1fba}\u{345}"),
        0x1fb4 => Some("\u{386}\u{345}"),
        0x1fc2 => Some("\u{1fca}\u{345}"),
        0x1fc4 => Some("\u{389}\u{345}"),
        0x1ff2 => Some("\u{1ffa}\u{345}"),
        0x1ff4 => Some("\u{38f}\u{345}"),
        0x1fb7 => Some("\u{391}\u{342}\u{345}"),
        0x1fc7 => Some("\u{397}\u{342}\u{345}"),
        0x1ff7 => Some("\u{3a9}\u{342}\u{345}"),
        _ => None,
    };
    if let Some(text) = mapped {
        out.push_str(text);
        return;
    }
    let single = match u {
        0x1f80..=0x1f87 | 0x1f90..=0x1f97 | 0x1fa0..=0x1fa7 => char::from_u32(u + 8),
        0x1f88..=0x1f8f | 0x1f98..=0x1f9f | 0x1fa8..=0x1faf => Some(c),
        0x1fb3 | 0x1fbc => Some('\u{1fbc}'),
        0x1fc3 | 0x1fcc => Some('\u{1fcc}'),
        0x1ff3 | 0x1ffc => Some('\u{1ffc}'),
        _ => None,
    };
    match single {
        Some(t) => out.push(t),
        None => out.extend(c.to_uppercase()),
    }
}

/// x/text's English title casing: each word's first letter in title case, its other letters
/// in lower case (full mappings, with the Greek final sigma). Words are split as Unicode
/// word breaking does for common text.
pub(super) fn title_case(s: &str) -> String {
    let chars: Vec<char> = s.chars().collect();
    let mut out = String::with_capacity(s.len());
    let mut in_word = false;
    let mut seen_letter = false;
    for (i, &c) in chars.iter().enumerate() {
        let joined = !word_char(c) && i > 0 && in_word && {
            let (before, after) = (chars[i - 1], chars.get(i + 1).copied());
            after.is_some_and(|a| {
                (before.is_alphabetic() && a.is_alphabetic() && joins_letters(c))
                    || (before.is_numeric() && a.is_numeric() && joins_digits(c))
            })
        };
        if word_char(c) || joined {
            if !in_word {
                in_word = true;
                seen_letter = false;
            }
        } else {
            in_word = false;
        }
        if in_word && c.is_alphabetic() {
            if !seen_letter {
                title_char(c, &mut out);
                seen_letter = true;
            } else if c == '\u{3a3}' && !chars.get(i + 1).is_some_and(|n| n.is_alphabetic()) {
                out.push('\u{3c2}');
            } else {
                out.extend(c.to_lowercase());
            }
        } else {
            out.push(c);
        }
    }
    out
}

pub(super) fn trim(args: Vec<TValue<'_>>) -> Result<TValue<'_>, FuncError> {
    Ok(text(str_arg(&args, 0)?.trim()))
}

pub(super) fn trim_prefix(args: Vec<TValue<'_>>) -> Result<TValue<'_>, FuncError> {
    let s = str_arg(&args, 0)?;
    let prefix = str_arg(&args, 1)?;
    Ok(text(s.strip_prefix(prefix).unwrap_or(s)))
}

pub(super) fn trim_suffix(args: Vec<TValue<'_>>) -> Result<TValue<'_>, FuncError> {
    let s = str_arg(&args, 0)?;
    let suffix = str_arg(&args, 1)?;
    Ok(text(s.strip_suffix(suffix).unwrap_or(s)))
}

pub(super) fn replace(args: Vec<TValue<'_>>) -> Result<TValue<'_>, FuncError> {
    let s = str_arg(&args, 0)?;
    Ok(text(s.replace(str_arg(&args, 1)?, str_arg(&args, 2)?)))
}

pub(super) fn contains(args: Vec<TValue<'_>>) -> Result<TValue<'_>, FuncError> {
    Ok(boolean(str_arg(&args, 0)?.contains(str_arg(&args, 1)?)))
}

pub(super) fn has_prefix(args: Vec<TValue<'_>>) -> Result<TValue<'_>, FuncError> {
    Ok(boolean(str_arg(&args, 0)?.starts_with(str_arg(&args, 1)?)))
}

pub(super) fn has_suffix(args: Vec<TValue<'_>>) -> Result<TValue<'_>, FuncError> {
    Ok(boolean(str_arg(&args, 0)?.ends_with(str_arg(&args, 1)?)))
}

pub(super) fn quote(args: Vec<TValue<'_>>) -> Result<TValue<'_>, FuncError> {
    Ok(text(gofmt::quote(str_arg(&args, 0)?)))
}

pub(super) fn default(mut args: Vec<TValue<'_>>) -> Result<TValue<'_>, FuncError> {
    let value = args.pop().expect("arity checked");
    let fallback = args.pop().expect("arity checked");
    let empty = matches!(value.json(), Some(Value::Null))
        || value.json().and_then(Value::as_str) == Some("");
    Ok(if empty { fallback } else { value })
}

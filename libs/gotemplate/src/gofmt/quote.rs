//! `strconv.Quote` and `strconv.IsPrint`.

use super::printf::{Spec, pad, truncate};

/// `%q` of a string.
pub(super) fn quoted(out: &mut String, s: &str, spec: &Spec) {
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

pub(super) fn quote_rune(c: char, ascii_only: bool) -> String {
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

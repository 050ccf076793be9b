//! Splits a Go template into text and `{{ action }}` tokens, as Go's `text/template/parse`
//! lexer does: `{{-` / `-}}` trim ASCII spaces, tabs and newlines; `{{/* comments */}}` must
//! open and close at the delimiters; literals are Go's (`0x1F`, `1_000`, `1e3`, `'a'`,
//! `"\u00e9"`, raw strings).

use crate::TemplateError;

#[derive(Debug, Clone, PartialEq)]
pub enum Token {
    Text(String),
    Dot,
    /// `.a.b`.
    Field(Vec<String>),
    /// `$x` or `$` (empty name), optionally followed by `.a.b`.
    Variable(String, Vec<String>),
    Ident(String),
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    Nil,
    Pipe,
    LeftParen,
    RightParen,
    /// `.a.b` right after `)` or a function name: fields of that result.
    Chain(Vec<String>),
    Declare,
    Assign,
    Comma,
    /// End of one `{{ ... }}` action.
    ActionEnd,
    /// Start of one action.
    ActionStart,
}

/// Go's template whitespace: only these four trim and separate.
fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

fn is_ident_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

fn parse_error(message: impl Into<String>) -> TemplateError {
    TemplateError::Parse(message.into())
}

/// What is wrong inside one action (reported with the action's text).
#[derive(Debug, thiserror::Error)]
enum LexError {
    #[error("unclosed left paren")]
    UnclosedParen,
    #[error("unexpected right paren")]
    UnexpectedRightParen,
    #[error("expected :=")]
    ExpectedDeclare,
    #[error("unterminated quoted string")]
    UnterminatedString,
    #[error("unterminated raw quoted string")]
    UnterminatedRawString,
    #[error("malformed character constant")]
    MalformedChar,
    #[error("unknown escape sequence \\{0}")]
    UnknownEscape(char),
    #[error("bad digit {0:?} in escape")]
    BadEscapeDigit(char),
    #[error("octal escape above \\377")]
    OctalEscapeRange,
    #[error("invalid Unicode escape {0:#x}")]
    InvalidUnicode(u32),
    #[error("bad number syntax: {0:?}")]
    BadNumber(String),
    #[error("{0} overflows int")]
    Overflow(String),
    #[error("complex number {0} is not supported")]
    Complex(String),
    #[error("bad character {0:?}")]
    BadCharacter(char),
    #[error("unexpected .{0} after a literal")]
    FieldAfterLiteral(String),
    #[error("unexpected character {0:?}")]
    UnexpectedCharacter(char),
}

/// `- ` right after `{{`.
fn has_left_trim(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next() == Some('-') && chars.next().is_some_and(is_space)
}

/// ` -}}`: a space, the marker and the delimiter.
fn right_trim_delim(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(is_space) && s[1..].starts_with("-}}")
}

/// Tokens of the whole template.
pub fn lex(source: &str) -> Result<Vec<Token>, TemplateError> {
    let mut tokens = Vec::new();
    let mut rest = source;
    let mut trim_next_text = false;
    loop {
        let Some(open) = rest.find("{{") else {
            push_text(&mut tokens, rest, trim_next_text, false);
            break;
        };
        let after_open = &rest[open + 2..];
        let trim_left = has_left_trim(after_open);
        push_text(&mut tokens, &rest[..open], trim_next_text, trim_left);
        let body = if trim_left {
            &after_open[2..]
        } else {
            after_open
        };
        if let Some(comment) = body.strip_prefix("/*") {
            let end = comment
                .find("*/")
                .ok_or_else(|| parse_error("unclosed comment"))?;
            let after = &comment[end + 2..];
            if let Some(next) = after.strip_prefix("}}") {
                rest = next;
                trim_next_text = false;
            } else if right_trim_delim(after) {
                rest = &after[4..];
                trim_next_text = true;
            } else {
                return Err(parse_error("comment ends before closing delimiter"));
            }
            continue;
        }
        tokens.push(Token::ActionStart);
        let (consumed, trim_right) = lex_action(body, &mut tokens)?;
        tokens.push(Token::ActionEnd);
        rest = &body[consumed..];
        trim_next_text = trim_right;
    }
    Ok(tokens)
}

fn push_text(tokens: &mut Vec<Token>, text: &str, trim_start: bool, trim_end: bool) {
    let mut text = text;
    if trim_start {
        text = text.trim_start_matches(is_space);
    }
    if trim_end {
        text = text.trim_end_matches(is_space);
    }
    if !text.is_empty() {
        tokens.push(Token::Text(text.to_owned()));
    }
}

fn preview(text: &str) -> String {
    text.chars().take(30).collect()
}

/// Lexes one action body up to its closing delimiter. Returns the bytes consumed (the
/// delimiter included) and whether it was `-}}`.
fn lex_action(body: &str, tokens: &mut Vec<Token>) -> Result<(usize, bool), TemplateError> {
    let shown = body.find("}}").map_or(body, |end| &body[..end]).trim();
    let err = |e: LexError| parse_error(format!("in `{{{{ {} }}}}`: {e}", preview(shown)));
    let mut i = 0;
    let mut depth = 0usize;
    loop {
        let rest = &body[i..];
        if rest.starts_with("}}") || right_trim_delim(rest) {
            if depth > 0 {
                return Err(err(LexError::UnclosedParen));
            }
            return Ok(if rest.starts_with("}}") {
                (i + 2, false)
            } else {
                (i + 4, true)
            });
        }
        let Some(c) = rest.chars().next() else {
            return Err(parse_error(format!(
                "unclosed action starting at `{{{{{}`",
                preview(body)
            )));
        };
        match c {
            c if is_space(c) => i += 1,
            '|' => {
                tokens.push(Token::Pipe);
                i += 1;
            }
            '(' => {
                tokens.push(Token::LeftParen);
                depth += 1;
                i += 1;
            }
            ')' => {
                if depth == 0 {
                    return Err(err(LexError::UnexpectedRightParen));
                }
                depth -= 1;
                tokens.push(Token::RightParen);
                i += 1;
                i = chain(body, i, tokens);
            }
            ',' => {
                tokens.push(Token::Comma);
                i += 1;
            }
            ':' => {
                if !rest.starts_with(":=") {
                    return Err(err(LexError::ExpectedDeclare));
                }
                tokens.push(Token::Declare);
                i += 2;
            }
            '=' => {
                tokens.push(Token::Assign);
                i += 1;
            }
            '"' => {
                let (text, len) = quoted(rest).map_err(err)?;
                tokens.push(Token::Str(text));
                i += len;
                i = no_field_after_literal(body, i).map_err(err)?;
            }
            '`' => {
                let end = rest[1..]
                    .find('`')
                    .ok_or_else(|| err(LexError::UnterminatedRawString))?;
                // Go drops carriage returns from raw strings.
                tokens.push(Token::Str(rest[1..1 + end].replace('\r', "")));
                i += end + 2;
                i = no_field_after_literal(body, i).map_err(err)?;
            }
            '\'' => {
                let (value, len) = char_constant(rest).map_err(err)?;
                tokens.push(Token::Int(i64::from(u32::from(value))));
                i += len;
                i = no_field_after_literal(body, i).map_err(err)?;
            }
            '$' => {
                let name_len = rest[1..]
                    .find(|c: char| !is_ident_char(c))
                    .unwrap_or(rest.len() - 1);
                let name = rest[1..1 + name_len].to_owned();
                let (path, next) = field_path(body, i + 1 + name_len);
                tokens.push(Token::Variable(name, path));
                i = terminated(body, next).map_err(err)?;
            }
            '.' if !rest[1..].starts_with(|c: char| c.is_ascii_digit()) => {
                let (path, next) = field_path(body, i);
                if path.is_empty() {
                    tokens.push(Token::Dot);
                    i += 1;
                } else {
                    tokens.push(Token::Field(path));
                    i = next;
                }
                i = terminated(body, i).map_err(err)?;
            }
            c if c == '+' || c == '-' || c == '.' || c.is_ascii_digit() => {
                let len =
                    scan_number(rest).ok_or_else(|| err(LexError::BadNumber(preview(rest))))?;
                tokens.push(number(&rest[..len]).map_err(err)?);
                i += len;
                i = no_field_after_literal(body, i).map_err(err)?;
            }
            c if is_ident_char(c) => {
                let len = rest.find(|c: char| !is_ident_char(c)).unwrap_or(rest.len());
                let word = &rest[..len];
                i += len;
                i = terminated(body, i).map_err(err)?;
                tokens.push(match word {
                    "true" => Token::Bool(true),
                    "false" => Token::Bool(false),
                    "nil" => Token::Nil,
                    _ => Token::Ident(word.to_owned()),
                });
                if !matches!(word, "true" | "false" | "nil") {
                    i = chain(body, i, tokens);
                } else {
                    i = no_field_after_literal(body, i).map_err(err)?;
                }
            }
            other => return Err(err(LexError::UnexpectedCharacter(other))),
        }
    }
}

/// Go requires a word to end at a space, `.`, `,`, `|`, `:`, a parenthesis or the delimiter.
fn terminated(body: &str, i: usize) -> Result<usize, LexError> {
    let rest = &body[i..];
    match rest.chars().next() {
        None => Ok(i),
        Some(c) if is_space(c) || ".,|:()".contains(c) || rest.starts_with("}}") => Ok(i),
        Some(c) => Err(LexError::BadCharacter(c)),
    }
}

/// A field path right after `)` or a function name.
fn chain(body: &str, i: usize, tokens: &mut Vec<Token>) -> usize {
    let (path, next) = field_path(body, i);
    if path.is_empty() {
        i
    } else {
        tokens.push(Token::Chain(path));
        next
    }
}

fn no_field_after_literal(body: &str, i: usize) -> Result<usize, LexError> {
    let (path, _) = field_path(body, i);
    if path.is_empty() {
        Ok(i)
    } else {
        Err(LexError::FieldAfterLiteral(path.join(".")))
    }
}

/// `.a.b.c` starting at `start` (a `.`): the segments and the index after them.
fn field_path(body: &str, start: usize) -> (Vec<String>, usize) {
    let mut path = Vec::new();
    let mut i = start;
    while body[i..].starts_with('.') && body[i + 1..].starts_with(is_ident_char) {
        let segment_start = i + 1;
        let len = body[segment_start..]
            .find(|c: char| !is_ident_char(c))
            .unwrap_or(body.len() - segment_start);
        path.push(body[segment_start..segment_start + len].to_owned());
        i = segment_start + len;
    }
    (path, i)
}

/// Go's `scanNumber`: the length of the number literal at the start of `s`.
fn scan_number(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    let mut i = 0;
    if matches!(b.first(), Some(b'+' | b'-')) {
        i += 1;
    }
    let mut digits: &[u8] = b"0123456789_";
    let mut decimal = true;
    let mut hex = false;
    if b.get(i) == Some(&b'0') {
        i += 1;
        match b.get(i) {
            Some(b'x' | b'X') => {
                digits = b"0123456789abcdefABCDEF_";
                decimal = false;
                hex = true;
                i += 1;
            }
            Some(b'o' | b'O') => {
                digits = b"01234567_";
                decimal = false;
                i += 1;
            }
            Some(b'b' | b'B') => {
                digits = b"01_";
                decimal = false;
                i += 1;
            }
            _ => {}
        }
    }
    let run = |i: &mut usize, set: &[u8]| {
        while b.get(*i).is_some_and(|c| set.contains(c)) {
            *i += 1;
        }
    };
    run(&mut i, digits);
    if b.get(i) == Some(&b'.') {
        i += 1;
        run(&mut i, digits);
    }
    if decimal && matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        run(&mut i, b"0123456789_");
    }
    if hex && matches!(b.get(i), Some(b'p' | b'P')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        run(&mut i, b"0123456789_");
    }
    // Imaginary numbers end in `i`; the next character must not be alphanumeric.
    if b.get(i) == Some(&b'i') {
        i += 1;
    }
    match s[i..].chars().next() {
        Some(c) if is_ident_char(c) => None,
        _ => Some(i),
    }
}

/// A number literal's value, as Go's `NumberNode` and `idealConstant` type it: an integer
/// literal is an `int`, one with `.`, `e` or `p` a `float64`.
fn number(text: &str) -> Result<Token, LexError> {
    if text.ends_with('i') {
        return Err(LexError::Complex(text.to_owned()));
    }
    if let Some(i) = parse_int(text) {
        return Ok(Token::Int(i));
    }
    let is_hex = text.trim_start_matches(['+', '-']).starts_with("0x")
        || text.trim_start_matches(['+', '-']).starts_with("0X");
    if !text.contains(['.', 'e', 'E', 'p', 'P']) || (is_hex && !text.contains(['p', 'P'])) {
        return Err(if text.trim_start_matches(['+', '-']).is_empty() {
            LexError::BadNumber(text.to_owned())
        } else {
            LexError::Overflow(text.to_owned())
        });
    }
    let f = parse_float_literal(text).ok_or_else(|| LexError::BadNumber(text.to_owned()))?;
    Ok(Token::Float(f))
}

/// `strconv.ParseInt(text, 0, 64)`: base prefixes, a leading `0` for octal, underscores
/// between digits.
fn parse_int(text: &str) -> Option<i64> {
    let (negative, body) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    let lower = body.to_ascii_lowercase();
    let (radix, digits, prefixed) = if let Some(d) = lower.strip_prefix("0x") {
        (16, d, true)
    } else if let Some(d) = lower.strip_prefix("0o") {
        (8, d, true)
    } else if let Some(d) = lower.strip_prefix("0b") {
        (2, d, true)
    } else if lower.len() > 1 && lower.starts_with('0') {
        (8, &lower[1..], true)
    } else {
        (10, lower.as_str(), false)
    };
    if !underscores_ok(digits, prefixed) {
        return None;
    }
    let digits = digits.replace('_', "");
    if digits.is_empty() {
        return None;
    }
    let magnitude = u64::from_str_radix(&digits, radix).ok()?;
    if negative {
        0i64.checked_sub_unsigned(magnitude)
    } else {
        i64::try_from(magnitude).ok()
    }
}

/// Underscores only between digits, or right after a base prefix.
fn underscores_ok(digits: &str, prefixed: bool) -> bool {
    let mut previous_digit = prefixed;
    let mut previous_underscore = false;
    for c in digits.chars() {
        if c == '_' {
            if !previous_digit {
                return false;
            }
            previous_digit = false;
            previous_underscore = true;
        } else {
            previous_digit = true;
            previous_underscore = false;
        }
    }
    !previous_underscore
}

fn parse_float_literal(text: &str) -> Option<f64> {
    let (sign, body) = match text.as_bytes().first() {
        Some(b'-') => (-1.0, &text[1..]),
        Some(b'+') => (1.0, &text[1..]),
        _ => (1.0, text),
    };
    let body = body.replace('_', "");
    if let Some(hex) = body.strip_prefix("0x").or_else(|| body.strip_prefix("0X")) {
        let (mantissa, exponent) = hex.split_once(['p', 'P'])?;
        let exponent: i32 = exponent.parse().ok()?;
        let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
        let mut value = 0f64;
        for c in whole.chars().chain(fraction.chars()) {
            value = value * 16.0 + f64::from(c.to_digit(16)?);
        }
        let shift = exponent - 4 * i32::try_from(fraction.len()).ok()?;
        return Some(sign * value * 2f64.powi(shift));
    }
    body.parse::<f64>()
        .ok()
        .filter(|f| f.is_finite())
        .map(|f| sign * f)
}

/// A double-quoted string with Go's escapes; returns the text and the bytes consumed.
fn quoted(s: &str) -> Result<(String, usize), LexError> {
    let mut bytes = Vec::new();
    let mut chars = s.char_indices().skip(1);
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Ok((String::from_utf8_lossy(&bytes).into_owned(), i + 1)),
            '\n' => return Err(LexError::UnterminatedString),
            '\\' => {
                let (_, e) = chars.next().ok_or(LexError::UnterminatedString)?;
                escape(e, '"', &mut chars, &mut bytes)?;
            }
            c => bytes.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes()),
        }
    }
    Err(LexError::UnterminatedString)
}

/// A character constant (`'a'`, `'\n'`); returns the character and the bytes consumed.
fn char_constant(s: &str) -> Result<(char, usize), LexError> {
    let mut chars = s.char_indices().skip(1);
    let mut bytes = Vec::new();
    match chars.next() {
        Some((_, '\\')) => {
            let (_, e) = chars.next().ok_or(LexError::MalformedChar)?;
            escape(e, '\'', &mut chars, &mut bytes)?;
        }
        Some((_, '\'' | '\n')) | None => return Err(LexError::MalformedChar),
        Some((_, c)) => bytes.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes()),
    }
    match chars.next() {
        Some((i, '\'')) => {
            let text = String::from_utf8(bytes).map_err(|_| LexError::MalformedChar)?;
            let mut it = text.chars();
            match (it.next(), it.next()) {
                (Some(c), None) => Ok((c, i + 1)),
                _ => Err(LexError::MalformedChar),
            }
        }
        _ => Err(LexError::MalformedChar),
    }
}

/// One escape after a backslash, as `strconv.UnquoteChar` reads it.
fn escape(
    e: char,
    quote: char,
    chars: &mut impl Iterator<Item = (usize, char)>,
    bytes: &mut Vec<u8>,
) -> Result<(), LexError> {
    let mut take = |n: usize, radix: u32| -> Result<u32, LexError> {
        let mut value = 0u32;
        for _ in 0..n {
            let (_, c) = chars.next().ok_or(LexError::UnterminatedString)?;
            value = value * radix + c.to_digit(radix).ok_or(LexError::BadEscapeDigit(c))?;
        }
        Ok(value)
    };
    let simple = match e {
        'a' => Some('\u{7}'),
        'b' => Some('\u{8}'),
        'f' => Some('\u{c}'),
        'n' => Some('\n'),
        'r' => Some('\r'),
        't' => Some('\t'),
        'v' => Some('\u{b}'),
        '\\' => Some('\\'),
        c if c == quote => Some(c),
        _ => None,
    };
    if let Some(c) = simple {
        bytes.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes());
        return Ok(());
    }
    match e {
        'x' => bytes.push(take(2, 16)? as u8),
        '0'..='7' => {
            let rest = take(2, 8)?;
            let value = e.to_digit(8).unwrap_or(0) * 64 + rest;
            bytes.push(u8::try_from(value).map_err(|_| LexError::OctalEscapeRange)?);
        }
        'u' | 'U' => {
            let value = take(if e == 'u' { 4 } else { 8 }, 16)?;
            let c = char::from_u32(value).ok_or(LexError::InvalidUnicode(value))?;
            bytes.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes());
        }
        other => return Err(LexError::UnknownEscape(other)),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lexes_actions_trims_and_comments() {
        let tokens = lex("a  {{- .x.y | lower -}}  b{{/* hi */}}{{ \"q}}\" }}").unwrap();
        assert_eq!(
            tokens,
            vec![
                Token::Text("a".into()),
                Token::ActionStart,
                Token::Field(vec!["x".into(), "y".into()]),
                Token::Pipe,
                Token::Ident("lower".into()),
                Token::ActionEnd,
                Token::Text("b".into()),
                Token::ActionStart,
                Token::Str("q}}".into()),
                Token::ActionEnd,
            ]
        );
    }

    #[test]
    fn go_literals() {
        for (text, token) in [
            ("0x1F", Token::Int(31)),
            ("017", Token::Int(15)),
            ("0b101", Token::Int(5)),
            ("1_000", Token::Int(1000)),
            ("-5", Token::Int(-5)),
            ("1e3", Token::Float(1000.0)),
            (".5", Token::Float(0.5)),
            ("0x1p-2", Token::Float(0.25)),
            ("'a'", Token::Int(97)),
            ("'\\n'", Token::Int(10)),
            ("\"\\u00e9\\x41\\101\"", Token::Str("éAA".into())),
        ] {
            let tokens = lex(&format!("{{{{ {text} }}}}")).unwrap();
            assert_eq!(tokens[1], token, "{text}");
        }
    }

    #[test]
    fn unclosed_actions_are_errors() {
        assert!(
            lex("{{ .x")
                .unwrap_err()
                .to_string()
                .contains("unclosed action")
        );
        assert!(lex("{{ /* not a comment */ }}").is_err());
        assert!(lex("{{/* c */ x}}").is_err());
    }
}

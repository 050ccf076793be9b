//! Splits a Go template into text and `{{ action }}` tokens, honouring the `{{-` / `-}}`
//! whitespace-trimming markers and `{{/* comments */}}`.

use super::TemplateError;

#[derive(Debug, Clone, PartialEq)]
pub enum Token {
    Text(String),
    Dot,
    /// `.a.b` (the leading dot included in the first segment's absence).
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
    Declare,
    Assign,
    Comma,
    /// End of one `{{ ... }}` action.
    ActionEnd,
    /// Start of one action.
    ActionStart,
}

/// Tokens of the whole template.
pub fn lex(source: &str) -> Result<Vec<Token>, TemplateError> {
    let mut tokens = Vec::new();
    let mut rest = source;
    let mut trim_next_text = false;
    while !rest.is_empty() {
        let Some(open) = rest.find("{{") else {
            push_text(&mut tokens, rest, trim_next_text, false);
            break;
        };
        let after_open = &rest[open + 2..];
        let trim_left = after_open.starts_with('-')
            && after_open[1..].starts_with(|c: char| c.is_ascii_whitespace());
        push_text(&mut tokens, &rest[..open], trim_next_text, trim_left);
        let body_start = if trim_left { 1 } else { 0 };
        let body_and_rest = &after_open[body_start..];
        let close = find_close(body_and_rest).ok_or_else(|| {
            TemplateError::Parse(format!(
                "unclosed action starting at `{{{{{}`",
                preview(body_and_rest)
            ))
        })?;
        let mut body = &body_and_rest[..close];
        trim_next_text = false;
        if body.ends_with('-')
            && body[..body.len() - 1].ends_with(|c: char| c.is_ascii_whitespace())
        {
            body = &body[..body.len() - 1];
            trim_next_text = true;
        }
        rest = &body_and_rest[close + 2..];
        let trimmed = body.trim();
        if trimmed.starts_with("/*") {
            if !trimmed.ends_with("*/") {
                return Err(TemplateError::Parse("unclosed comment".into()));
            }
            continue;
        }
        tokens.push(Token::ActionStart);
        lex_action(body, &mut tokens)?;
        tokens.push(Token::ActionEnd);
    }
    Ok(tokens)
}

fn preview(text: &str) -> String {
    text.chars().take(30).collect()
}

fn push_text(tokens: &mut Vec<Token>, text: &str, trim_start: bool, trim_end: bool) {
    let mut text = text;
    if trim_start {
        text = text.trim_start();
    }
    if trim_end {
        text = text.trim_end();
    }
    if !text.is_empty() {
        tokens.push(Token::Text(text.to_owned()));
    }
}

/// The `}}` that closes an action, skipping those inside quoted strings.
fn find_close(body: &str) -> Option<usize> {
    let bytes = body.as_bytes();
    let mut i = 0;
    let mut quote: Option<u8> = None;
    while i < bytes.len() {
        let b = bytes[i];
        match quote {
            Some(q) => {
                if b == b'\\' && q == b'"' {
                    i += 1;
                } else if b == q {
                    quote = None;
                }
            }
            None => {
                if b == b'"' || b == b'`' || b == b'\'' {
                    quote = Some(b);
                } else if b == b'}' && bytes.get(i + 1) == Some(&b'}') {
                    return Some(i);
                }
            }
        }
        i += 1;
    }
    None
}

fn lex_action(body: &str, tokens: &mut Vec<Token>) -> Result<(), TemplateError> {
    let chars: Vec<char> = body.chars().collect();
    let mut i = 0;
    let err = |msg: String| TemplateError::Parse(format!("in `{{{{{}}}}}`: {msg}", body.trim()));
    while i < chars.len() {
        let c = chars[i];
        match c {
            c if c.is_whitespace() => i += 1,
            '|' => {
                tokens.push(Token::Pipe);
                i += 1;
            }
            '(' => {
                tokens.push(Token::LeftParen);
                i += 1;
            }
            ')' => {
                tokens.push(Token::RightParen);
                i += 1;
            }
            ',' => {
                tokens.push(Token::Comma);
                i += 1;
            }
            ':' if chars.get(i + 1) == Some(&'=') => {
                tokens.push(Token::Declare);
                i += 2;
            }
            '=' => {
                tokens.push(Token::Assign);
                i += 1;
            }
            '"' => {
                let mut text = String::new();
                i += 1;
                loop {
                    let Some(&c) = chars.get(i) else {
                        return Err(err("unterminated string".into()));
                    };
                    i += 1;
                    match c {
                        '"' => break,
                        '\\' => {
                            let Some(&e) = chars.get(i) else {
                                return Err(err("unterminated escape".into()));
                            };
                            i += 1;
                            text.push(match e {
                                'n' => '\n',
                                't' => '\t',
                                'r' => '\r',
                                '\\' => '\\',
                                '"' => '"',
                                '\'' => '\'',
                                other => return Err(err(format!("unknown escape `\\{other}`"))),
                            });
                        }
                        other => text.push(other),
                    }
                }
                tokens.push(Token::Str(text));
            }
            '`' => {
                let start = i + 1;
                let end = chars[start..]
                    .iter()
                    .position(|&c| c == '`')
                    .ok_or_else(|| err("unterminated raw string".into()))?;
                tokens.push(Token::Str(chars[start..start + end].iter().collect()));
                i = start + end + 1;
            }
            '.' if chars.get(i + 1).is_none_or(|c| !is_ident_char(*c)) => {
                tokens.push(Token::Dot);
                i += 1;
            }
            '.' => {
                let (path, next) = field_path(&chars, i);
                tokens.push(Token::Field(path));
                i = next;
            }
            '$' => {
                let start = i + 1;
                let mut end = start;
                while end < chars.len() && is_ident_char(chars[end]) {
                    end += 1;
                }
                let name: String = chars[start..end].iter().collect();
                let (path, next) = if chars.get(end) == Some(&'.') {
                    field_path(&chars, end)
                } else {
                    (Vec::new(), end)
                };
                tokens.push(Token::Variable(name, path));
                i = next;
            }
            c if c.is_ascii_digit()
                || (c == '-' && chars.get(i + 1).is_some_and(char::is_ascii_digit)) =>
            {
                let start = i;
                i += 1;
                while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '.') {
                    i += 1;
                }
                let text: String = chars[start..i].iter().collect();
                if let Ok(n) = text.parse::<i64>() {
                    tokens.push(Token::Int(n));
                } else if let Ok(f) = text.parse::<f64>() {
                    tokens.push(Token::Float(f));
                } else {
                    return Err(err(format!("bad number `{text}`")));
                }
            }
            c if is_ident_char(c) => {
                let start = i;
                while i < chars.len() && is_ident_char(chars[i]) {
                    i += 1;
                }
                let word: String = chars[start..i].iter().collect();
                tokens.push(match word.as_str() {
                    "true" => Token::Bool(true),
                    "false" => Token::Bool(false),
                    "nil" => Token::Nil,
                    _ => Token::Ident(word),
                });
                // A method-style chain after an identifier (`(f).x`) is not Go syntax; a
                // field chain right after a parenthesis is handled by the parser.
            }
            other => return Err(err(format!("unexpected character `{other}`"))),
        }
    }
    Ok(())
}

fn is_ident_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// `.a.b.c` starting at `start` (a `.`): the segments and the index after them.
fn field_path(chars: &[char], start: usize) -> (Vec<String>, usize) {
    let mut path = Vec::new();
    let mut i = start;
    while chars.get(i) == Some(&'.') && chars.get(i + 1).is_some_and(|c| is_ident_char(*c)) {
        let seg_start = i + 1;
        let mut end = seg_start;
        while end < chars.len() && is_ident_char(chars[end]) {
            end += 1;
        }
        path.push(chars[seg_start..end].iter().collect());
        i = end;
    }
    (path, i)
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
    fn unclosed_actions_are_errors() {
        assert!(
            lex("{{ .x")
                .unwrap_err()
                .to_string()
                .contains("unclosed action")
        );
    }
}

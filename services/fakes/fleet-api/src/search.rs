//! The `search` parameter: a subset of HyperFleet's TSL (Tree Search Language), compiled to a
//! parameterised SQL condition.
//!
//! ```text
//! labels.env='prod' and labels.shard='1'
//! status.conditions.Reconciled='True'
//! name in ('c1', 'c2') or (generation > 3 and not labels.tier='gold')
//! ```
//!
//! Fields: `id`, `name`, `kind`, `generation`, `created_by`, `updated_by`, `created_time`,
//! `updated_time`, `owner_id` (nodepools), `labels.<key>`, `spec.<path>`,
//! `status.conditions.<Type>` (its status) and `status.conditions.<Type>.<field>`. Operators
//! `=`, `!=`, `<`, `<=`, `>`, `>=`, `in (...)`, `not in (...)`, combined with `and`, `or`,
//! `not` and parentheses. Strings are single-quoted, `''` for a quote. Field names and keys
//! never reach the SQL text: they become bind parameters.

use chrono::{DateTime, Utc};

/// Why a `search` query was refused; the text is the problem's `detail`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SearchError {
    #[error("the query is empty")]
    Empty,
    #[error("unterminated string (missing closing ')")]
    UnterminatedString,
    #[error("number `{text}` is out of range")]
    NumberOutOfRange { text: String },
    #[error("unexpected character `{character}`")]
    UnexpectedCharacter { character: char },
    #[error("missing closing parenthesis")]
    MissingClosingParenthesis,
    /// `found` describes the token as written (`` `x` ``, `'x'`, `3`).
    #[error("expected a field name, found {found}")]
    ExpectedField { found: String },
    #[error("unexpected end of query")]
    UnexpectedEnd,
    #[error("expected `in` after `{field} not`")]
    ExpectedInAfterNot { field: String },
    #[error("expected `(` after `{field} in`")]
    ExpectedListAfterIn { field: String },
    #[error("expected `,` or `)` in the `in` list")]
    UnclosedList,
    #[error("expected an operator after `{field}`, found {found}")]
    ExpectedOperator { field: String, found: String },
    #[error("expected an operator after `{field}`")]
    MissingOperator { field: String },
    #[error("expected a quoted string or a number, found {found}")]
    ExpectedValue { found: String },
    #[error("expected a value, found the end of the query")]
    MissingValue,
    #[error("unexpected {found} after a complete condition (join conditions with `and` or `or`)")]
    TrailingInput { found: String },
    #[error("`{field}` is not a condition field")]
    NotAConditionField { field: String },
    #[error(
        "unknown field `{field}` (use id, name, kind, generation, created_by, updated_by, created_time, updated_time, owner_id, labels.<key>, spec.<path> or status.conditions.<Type>)"
    )]
    UnknownField { field: String },
    #[error("`{field}` is a number; '{value}' is not")]
    NotANumber { field: String, value: String },
    #[error("`{field}` needs an RFC 3339 time; '{value}': {error}")]
    NotATime {
        field: String,
        value: String,
        error: chrono::ParseError,
    },
    #[error("`{field}` needs a quoted RFC 3339 time, not {value}")]
    UnquotedTime { field: String, value: i64 },
}

/// A bind parameter of the compiled condition.
#[derive(Debug, Clone, PartialEq)]
pub enum Bind {
    Text(String),
    Int(i64),
    Time(DateTime<Utc>),
    TextArray(Vec<String>),
}

/// A compiled condition: SQL with `$n` placeholders, and their values.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    pub sql: String,
    pub binds: Vec<Bind>,
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Word(String),
    Str(String),
    Num(i64),
    Op(&'static str),
    Open,
    Close,
    Comma,
}

fn tokenize(input: &str) -> Result<Vec<Token>, SearchError> {
    let chars: Vec<char> = input.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            c if c.is_whitespace() => i += 1,
            '(' | '[' => {
                tokens.push(Token::Open);
                i += 1;
            }
            ')' | ']' => {
                tokens.push(Token::Close);
                i += 1;
            }
            ',' => {
                tokens.push(Token::Comma);
                i += 1;
            }
            '\'' => {
                let mut text = String::new();
                i += 1;
                loop {
                    match chars.get(i) {
                        None => return Err(SearchError::UnterminatedString),
                        Some('\'') if chars.get(i + 1) == Some(&'\'') => {
                            text.push('\'');
                            i += 2;
                        }
                        Some('\'') => {
                            i += 1;
                            break;
                        }
                        Some(ch) => {
                            text.push(*ch);
                            i += 1;
                        }
                    }
                }
                tokens.push(Token::Str(text));
            }
            '=' => {
                tokens.push(Token::Op("="));
                i += 1;
            }
            '!' if chars.get(i + 1) == Some(&'=') => {
                tokens.push(Token::Op("!="));
                i += 2;
            }
            '<' | '>' => {
                let eq = chars.get(i + 1) == Some(&'=');
                let op = match (c, eq) {
                    ('<', true) => "<=",
                    ('<', false) => "<",
                    ('>', true) => ">=",
                    _ => ">",
                };
                tokens.push(Token::Op(op));
                i += if eq { 2 } else { 1 };
            }
            c if c.is_ascii_digit()
                || (c == '-' && chars.get(i + 1).is_some_and(char::is_ascii_digit)) =>
            {
                let start = i;
                i += 1;
                while chars.get(i).is_some_and(char::is_ascii_digit) {
                    i += 1;
                }
                let text: String = chars[start..i].iter().collect();
                let n = match text.parse() {
                    Ok(n) => n,
                    Err(_) => return Err(SearchError::NumberOutOfRange { text }),
                };
                tokens.push(Token::Num(n));
            }
            c if is_word_char(c) => {
                let start = i;
                while chars.get(i).is_some_and(|c| is_word_char(*c)) {
                    i += 1;
                }
                tokens.push(Token::Word(chars[start..i].iter().collect()));
            }
            other => return Err(SearchError::UnexpectedCharacter { character: other }),
        }
    }
    Ok(tokens)
}

fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '_' | '.' | '-' | '/')
}

#[derive(Debug, Clone, PartialEq)]
enum Value {
    Str(String),
    Num(i64),
}

#[derive(Debug, Clone, PartialEq)]
enum Expr {
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Not(Box<Expr>),
    Compare(String, &'static str, Value),
    In(String, Vec<Value>, bool),
}

struct Parser {
    tokens: Vec<Token>,
    pos: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos)
    }

    fn next(&mut self) -> Option<Token> {
        let token = self.tokens.get(self.pos).cloned();
        self.pos += 1;
        token
    }

    fn keyword(&self, word: &str) -> bool {
        matches!(self.peek(), Some(Token::Word(w)) if w.eq_ignore_ascii_case(word))
    }

    fn or(&mut self) -> Result<Expr, SearchError> {
        let mut left = self.and()?;
        while self.keyword("or") {
            self.pos += 1;
            left = Expr::Or(Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Expr, SearchError> {
        let mut left = self.not()?;
        while self.keyword("and") {
            self.pos += 1;
            left = Expr::And(Box::new(left), Box::new(self.not()?));
        }
        Ok(left)
    }

    fn not(&mut self) -> Result<Expr, SearchError> {
        if self.keyword("not") {
            self.pos += 1;
            return Ok(Expr::Not(Box::new(self.not()?)));
        }
        self.primary()
    }

    fn primary(&mut self) -> Result<Expr, SearchError> {
        match self.next() {
            Some(Token::Open) => {
                let inner = self.or()?;
                match self.next() {
                    Some(Token::Close) => Ok(inner),
                    _ => Err(SearchError::MissingClosingParenthesis),
                }
            }
            Some(Token::Word(field)) => self.comparison(field),
            Some(other) => Err(SearchError::ExpectedField {
                found: describe(&other),
            }),
            None => Err(SearchError::UnexpectedEnd),
        }
    }

    fn comparison(&mut self, field: String) -> Result<Expr, SearchError> {
        let negated = if self.keyword("not") {
            self.pos += 1;
            if !self.keyword("in") {
                return Err(SearchError::ExpectedInAfterNot { field });
            }
            true
        } else {
            false
        };
        if self.keyword("in") {
            self.pos += 1;
            if self.next() != Some(Token::Open) {
                return Err(SearchError::ExpectedListAfterIn { field });
            }
            let mut values = vec![self.value()?];
            loop {
                match self.next() {
                    Some(Token::Comma) => values.push(self.value()?),
                    Some(Token::Close) => break,
                    _ => return Err(SearchError::UnclosedList),
                }
            }
            return Ok(Expr::In(field, values, negated));
        }
        match self.next() {
            Some(Token::Op(op)) => Ok(Expr::Compare(field, op, self.value()?)),
            Some(other) => Err(SearchError::ExpectedOperator {
                field,
                found: describe(&other),
            }),
            None => Err(SearchError::MissingOperator { field }),
        }
    }

    fn value(&mut self) -> Result<Value, SearchError> {
        match self.next() {
            Some(Token::Str(s)) => Ok(Value::Str(s)),
            Some(Token::Num(n)) => Ok(Value::Num(n)),
            Some(other) => Err(SearchError::ExpectedValue {
                found: describe(&other),
            }),
            None => Err(SearchError::MissingValue),
        }
    }
}

fn describe(token: &Token) -> String {
    match token {
        Token::Word(w) => format!("`{w}`"),
        Token::Str(s) => format!("'{s}'"),
        Token::Num(n) => n.to_string(),
        Token::Op(op) => format!("`{op}`"),
        Token::Open => "`(`".into(),
        Token::Close => "`)`".into(),
        Token::Comma => "`,`".into(),
    }
}

/// What a field compiles to.
enum Target {
    /// Text; `$k` placeholders in the SQL refer to `keys`.
    Text {
        sql: String,
    },
    Int {
        sql: &'static str,
    },
    Time {
        sql: &'static str,
    },
}

struct Compiler {
    binds: Vec<Bind>,
    offset: usize,
}

impl Compiler {
    fn bind(&mut self, bind: Bind) -> String {
        self.binds.push(bind);
        format!("${}", self.offset + self.binds.len())
    }

    fn target(&mut self, field: &str) -> Result<Target, SearchError> {
        Ok(match field {
            "id" => Target::Text {
                sql: "id::text".into(),
            },
            "name" => Target::Text { sql: "name".into() },
            "kind" => Target::Text { sql: "kind".into() },
            "created_by" => Target::Text {
                sql: "created_by".into(),
            },
            "updated_by" => Target::Text {
                sql: "updated_by".into(),
            },
            "owner_id" => Target::Text {
                sql: "owner_id::text".into(),
            },
            "generation" => Target::Int { sql: "generation" },
            "created_time" => Target::Time {
                sql: "created_time",
            },
            "updated_time" => Target::Time {
                sql: "updated_time",
            },
            _ => {
                if let Some(key) = field.strip_prefix("labels.").filter(|k| !k.is_empty()) {
                    let p = self.bind(Bind::Text(key.to_owned()));
                    Target::Text {
                        sql: format!("(labels->>{p})"),
                    }
                } else if let Some(path) = field.strip_prefix("spec.").filter(|k| !k.is_empty()) {
                    let parts = path.split('.').map(str::to_owned).collect();
                    let p = self.bind(Bind::TextArray(parts));
                    Target::Text {
                        sql: format!("(spec #>> {p})"),
                    }
                } else if let Some(rest) = field.strip_prefix("status.conditions.") {
                    let (kind, sub) = match rest.split_once('.') {
                        Some((kind, sub)) => (kind, sub),
                        None => (rest, "status"),
                    };
                    if kind.is_empty() || sub.is_empty() || sub.contains('.') {
                        return Err(SearchError::NotAConditionField {
                            field: field.to_owned(),
                        });
                    }
                    let k = self.bind(Bind::Text(kind.to_owned()));
                    let s = self.bind(Bind::Text(sub.to_owned()));
                    Target::Text {
                        sql: format!(
                            "(SELECT c->>{s} FROM jsonb_array_elements(conditions) c WHERE c->>'type' = {k} LIMIT 1)"
                        ),
                    }
                } else {
                    return Err(SearchError::UnknownField {
                        field: field.to_owned(),
                    });
                }
            }
        })
    }

    fn operand(
        &mut self,
        field: &str,
        target: &Target,
        value: &Value,
    ) -> Result<String, SearchError> {
        Ok(match (target, value) {
            (Target::Text { .. }, Value::Str(s)) => self.bind(Bind::Text(s.clone())),
            (Target::Text { .. }, Value::Num(n)) => self.bind(Bind::Text(n.to_string())),
            (Target::Int { .. }, Value::Num(n)) => self.bind(Bind::Int(*n)),
            (Target::Int { .. }, Value::Str(s)) => {
                let n = s.parse::<i64>().map_err(|_| SearchError::NotANumber {
                    field: field.to_owned(),
                    value: s.clone(),
                })?;
                self.bind(Bind::Int(n))
            }
            (Target::Time { .. }, Value::Str(s)) => {
                let t = DateTime::parse_from_rfc3339(s).map_err(|error| SearchError::NotATime {
                    field: field.to_owned(),
                    value: s.clone(),
                    error,
                })?;
                self.bind(Bind::Time(t.with_timezone(&Utc)))
            }
            (Target::Time { .. }, Value::Num(n)) => {
                return Err(SearchError::UnquotedTime {
                    field: field.to_owned(),
                    value: *n,
                });
            }
        })
    }

    fn compile(&mut self, expr: &Expr) -> Result<String, SearchError> {
        Ok(match expr {
            Expr::And(a, b) => format!("({} AND {})", self.compile(a)?, self.compile(b)?),
            Expr::Or(a, b) => format!("({} OR {})", self.compile(a)?, self.compile(b)?),
            Expr::Not(a) => format!("(NOT COALESCE({}, false))", self.compile(a)?),
            Expr::Compare(field, op, value) => {
                // `labels.k='v'` uses the GIN index on labels.
                if let (Some(key), "=", Value::Str(v)) = (field.strip_prefix("labels."), *op, value)
                    && !key.is_empty()
                {
                    let k = self.bind(Bind::Text(key.to_owned()));
                    let v = self.bind(Bind::Text(v.clone()));
                    return Ok(format!(
                        "(labels @> jsonb_build_object({k}::text, {v}::text))"
                    ));
                }
                let target = self.target(field)?;
                let operand = self.operand(field, &target, value)?;
                let sql_op = if *op == "!=" { "<>" } else { op };
                format!("({} {sql_op} {operand})", target_sql(&target))
            }
            Expr::In(field, values, negated) => {
                let target = self.target(field)?;
                let operands = values
                    .iter()
                    .map(|v| self.operand(field, &target, v))
                    .collect::<Result<Vec<_>, _>>()?;
                format!(
                    "({} {}IN ({}))",
                    target_sql(&target),
                    if *negated { "NOT " } else { "" },
                    operands.join(", ")
                )
            }
        })
    }
}

fn target_sql(target: &Target) -> &str {
    match target {
        Target::Text { sql } => sql,
        Target::Int { sql } | Target::Time { sql } => sql,
    }
}

/// Compiles `query`; placeholders start after `offset` (the caller's own binds).
pub fn compile(query: &str, offset: usize) -> Result<Condition, SearchError> {
    let tokens = tokenize(query)?;
    if tokens.is_empty() {
        return Err(SearchError::Empty);
    }
    let mut parser = Parser { tokens, pos: 0 };
    let expr = parser.or()?;
    if let Some(extra) = parser.peek() {
        return Err(SearchError::TrailingInput {
            found: describe(extra),
        });
    }
    let mut compiler = Compiler {
        binds: Vec::new(),
        offset,
    };
    let sql = compiler.compile(&expr)?;
    Ok(Condition {
        sql,
        binds: compiler.binds,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sentinel_selectors_compile_to_indexed_label_matches() {
        let c = compile("labels.shard='1' and labels.region='eu''west'", 2).unwrap();
        assert_eq!(
            c.sql,
            "((labels @> jsonb_build_object($3::text, $4::text)) AND (labels @> jsonb_build_object($5::text, $6::text)))"
        );
        assert_eq!(
            c.binds,
            vec![
                Bind::Text("shard".into()),
                Bind::Text("1".into()),
                Bind::Text("region".into()),
                Bind::Text("eu'west".into())
            ]
        );
    }

    #[test]
    fn conditions_in_lists_and_precedence() {
        let c = compile("status.conditions.Reconciled='True'", 0).unwrap();
        assert!(
            c.sql.contains("jsonb_array_elements(conditions)"),
            "{}",
            c.sql
        );
        assert_eq!(c.binds[0], Bind::Text("Reconciled".into()));
        assert_eq!(c.binds[1], Bind::Text("status".into()));
        let c = compile(
            "name in ('a','b') or generation >= 2 and not kind='Cluster'",
            0,
        )
        .unwrap();
        assert_eq!(
            c.sql,
            "((name IN ($1, $2)) OR ((generation >= $3) AND (NOT COALESCE((kind = $4), false))))"
        );
        let c = compile("name not in ['x']", 0).unwrap();
        assert_eq!(c.sql, "(name NOT IN ($1))");
    }

    #[test]
    fn errors_say_what_is_wrong() {
        for (query, message) in [
            ("", "the query is empty"),
            ("labels.a='x", "unterminated string"),
            ("foo='x'", "unknown field `foo`"),
            ("name='a' name='b'", "unexpected `name`"),
            ("generation > 'abc'", "`generation` is a number"),
            ("name = ", "expected a value"),
            ("(name='a'", "missing closing parenthesis"),
            ("name ~ 'a'", "unexpected character `~`"),
            ("created_time > 'soon'", "RFC 3339"),
            ("generation > 99999999999999999999", "out of range"),
            ("name not 'a'", "expected `in` after `name not`"),
        ] {
            let err = compile(query, 0).unwrap_err().to_string();
            assert!(err.contains(message), "{query}: {err}");
        }
    }
}

//! Tokens to a tree: text, actions with pipelines, `if` / `else if` / `else`, `range`,
//! `with` / `else with`. Checks what Go's parser checks: variables are declared before use
//! (and scoped to their control structure), only `range` declares two, and only a pipeline's
//! first command may be a plain value.

use serde_json::Value;

use crate::TemplateError;
use crate::lexer::Token;

#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    Text(String),
    Action(Pipeline),
    If {
        branches: Vec<(Pipeline, Vec<Node>)>,
        otherwise: Vec<Node>,
    },
    Range {
        pipeline: Pipeline,
        body: Vec<Node>,
        otherwise: Vec<Node>,
    },
    With {
        pipeline: Pipeline,
        body: Vec<Node>,
        otherwise: Vec<Node>,
    },
}

/// `$a, $b := cmd | cmd arg`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Pipeline {
    pub declare: Vec<String>,
    /// `=` (assign to existing variables) rather than `:=`.
    pub assign: bool,
    pub commands: Vec<Command>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Command {
    pub operands: Vec<Operand>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Operand {
    Dot,
    Field(Vec<String>),
    Variable(String, Vec<String>),
    Function(String),
    Literal(Value),
    Nil,
    Nested(Box<Pipeline>),
    /// `(pipeline).a.b` or `func.a.b`: fields of a result.
    Chain(Box<Operand>, Vec<String>),
}

struct Parser {
    tokens: Vec<Token>,
    position: usize,
    /// Variables in scope (`""` is `$`), as Go's parser tracks them.
    vars: Vec<String>,
}

/// What ended a list of nodes.
enum Terminator {
    Eof,
    End,
    /// `{{else}}`, or `{{else if ...}}` / `{{else with ...}}` (Go 1.23) with its pipeline.
    Else(Option<(Chained, Pipeline)>),
}

#[derive(Clone, Copy, PartialEq)]
enum Chained {
    If,
    With,
}

impl Chained {
    fn context(self) -> &'static str {
        match self {
            Chained::If => "if",
            Chained::With => "with",
        }
    }
}

pub fn parse(tokens: Vec<Token>) -> Result<Vec<Node>, TemplateError> {
    let mut parser = Parser {
        tokens,
        position: 0,
        vars: vec![String::new()],
    };
    let (nodes, terminator) = parser.nodes()?;
    match terminator {
        Terminator::Eof => Ok(nodes),
        Terminator::End => Err(TemplateError::Parse("unexpected {{end}}".into())),
        Terminator::Else(_) => Err(TemplateError::Parse("unexpected {{else}}".into())),
    }
}

impl Parser {
    fn next(&mut self) -> Option<Token> {
        let token = self.tokens.get(self.position).cloned();
        self.position += 1;
        token
    }

    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.position)
    }

    fn nodes(&mut self) -> Result<(Vec<Node>, Terminator), TemplateError> {
        let mut nodes = Vec::new();
        while let Some(token) = self.next() {
            match token {
                Token::Text(text) => nodes.push(Node::Text(text)),
                Token::ActionStart => {
                    let keyword = match self.peek() {
                        Some(Token::Ident(word)) => Some(word.clone()),
                        _ => None,
                    };
                    match keyword.as_deref() {
                        Some("end") => {
                            self.next();
                            self.expect_end()?;
                            return Ok((nodes, Terminator::End));
                        }
                        Some("else") => {
                            self.next();
                            if let Some(Token::Ident(w)) = self.peek()
                                && (w == "if" || w == "with")
                            {
                                let chained = if w == "if" {
                                    Chained::If
                                } else {
                                    Chained::With
                                };
                                self.next();
                                let pipeline = self.pipeline(chained.context())?;
                                return Ok((nodes, Terminator::Else(Some((chained, pipeline)))));
                            }
                            self.expect_end()?;
                            return Ok((nodes, Terminator::Else(None)));
                        }
                        Some("if") => {
                            self.next();
                            let mark = self.vars.len();
                            let node = self.if_node()?;
                            self.vars.truncate(mark);
                            nodes.push(node);
                        }
                        Some(word @ ("range" | "with")) => {
                            let is_range = word == "range";
                            self.next();
                            let mark = self.vars.len();
                            let node = if is_range {
                                self.range_node()?
                            } else {
                                self.with_node()?
                            };
                            self.vars.truncate(mark);
                            nodes.push(node);
                        }
                        Some(word @ ("define" | "template" | "block")) => {
                            return Err(TemplateError::Parse(format!(
                                "{{{{{word}}}}} is not supported: there are no named templates, each template stands alone"
                            )));
                        }
                        Some(word @ ("break" | "continue")) => {
                            return Err(TemplateError::Parse(format!(
                                "{{{{{word}}}}} is not supported: no loop control in {{{{range}}}} (use {{{{if}}}} in the body)"
                            )));
                        }
                        _ => nodes.push(Node::Action(self.pipeline("command")?)),
                    }
                }
                other => {
                    return Err(TemplateError::Parse(format!("unexpected token {other:?}")));
                }
            }
        }
        Ok((nodes, Terminator::Eof))
    }

    fn if_node(&mut self) -> Result<Node, TemplateError> {
        let mut branches = Vec::new();
        let mut condition = self.pipeline("if")?;
        loop {
            let (body, terminator) = self.nodes()?;
            branches.push((condition, body));
            match terminator {
                Terminator::End => {
                    return Ok(Node::If {
                        branches,
                        otherwise: Vec::new(),
                    });
                }
                Terminator::Else(Some((Chained::If, next))) => condition = next,
                Terminator::Else(Some((Chained::With, _))) => {
                    return Err(TemplateError::Parse(
                        "{{else with}} is only allowed after {{with}}".into(),
                    ));
                }
                Terminator::Else(None) => {
                    let otherwise = self.until_end()?;
                    return Ok(Node::If {
                        branches,
                        otherwise,
                    });
                }
                Terminator::Eof => {
                    return Err(TemplateError::Parse(
                        "unclosed {{if}}: missing {{end}}".into(),
                    ));
                }
            }
        }
    }

    /// `{{with}}`, whose `{{else with}}` chain nests as Go's parser nests it.
    fn with_node(&mut self) -> Result<Node, TemplateError> {
        self.with_node_from(None)
    }

    fn with_node_from(&mut self, pipeline: Option<Pipeline>) -> Result<Node, TemplateError> {
        let pipeline = match pipeline {
            Some(p) => p,
            None => self.pipeline("with")?,
        };
        let (body, terminator) = self.nodes()?;
        let otherwise = match terminator {
            Terminator::End => Vec::new(),
            Terminator::Else(None) => self.until_end()?,
            Terminator::Else(Some((Chained::With, next))) => vec![self.with_node_from(Some(next))?],
            Terminator::Else(Some((Chained::If, _))) => {
                return Err(TemplateError::Parse(
                    "{{else if}} is only allowed after {{if}}".into(),
                ));
            }
            Terminator::Eof => {
                return Err(TemplateError::Parse(
                    "unclosed {{with}}: missing {{end}}".into(),
                ));
            }
        };
        Ok(Node::With {
            pipeline,
            body,
            otherwise,
        })
    }

    fn range_node(&mut self) -> Result<Node, TemplateError> {
        let pipeline = self.pipeline("range")?;
        let (body, terminator) = self.nodes()?;
        let otherwise = match terminator {
            Terminator::End => Vec::new(),
            Terminator::Else(None) => self.until_end()?,
            Terminator::Else(Some((chained, _))) => {
                return Err(TemplateError::Parse(format!(
                    "{{{{else {}}}}} is not allowed after {{{{range}}}}",
                    chained.context()
                )));
            }
            Terminator::Eof => {
                return Err(TemplateError::Parse(
                    "unclosed {{range}}: missing {{end}}".into(),
                ));
            }
        };
        Ok(Node::Range {
            pipeline,
            body,
            otherwise,
        })
    }

    fn until_end(&mut self) -> Result<Vec<Node>, TemplateError> {
        match self.nodes()? {
            (nodes, Terminator::End) => Ok(nodes),
            (_, Terminator::Eof) => Err(TemplateError::Parse("missing {{end}}".into())),
            (_, Terminator::Else(_)) => Err(TemplateError::Parse("more than one {{else}}".into())),
        }
    }

    fn expect_end(&mut self) -> Result<(), TemplateError> {
        match self.next() {
            Some(Token::ActionEnd) => Ok(()),
            other => Err(TemplateError::Parse(format!(
                "unexpected {other:?} at the end of an action"
            ))),
        }
    }

    /// A pipeline up to the end of the action (consumed).
    fn pipeline(&mut self, context: &str) -> Result<Pipeline, TemplateError> {
        let pipeline = self.pipeline_until(context, |t| matches!(t, Token::ActionEnd))?;
        self.expect_end()?;
        Ok(pipeline)
    }

    fn pipeline_until(
        &mut self,
        context: &str,
        stop: fn(&Token) -> bool,
    ) -> Result<Pipeline, TemplateError> {
        let mut pipeline = Pipeline::default();
        // Declarations: `$x :=`, `$i, $v :=` (range only), `$x =`.
        let start = self.position;
        let mut names = Vec::new();
        loop {
            match self.peek() {
                Some(Token::Variable(name, path)) if path.is_empty() => {
                    names.push(name.clone());
                    self.next();
                }
                _ => break,
            }
            match self.peek() {
                Some(Token::Comma) => {
                    self.next();
                    if context != "range" || names.len() > 1 {
                        return Err(TemplateError::Parse(format!(
                            "too many declarations in {context}"
                        )));
                    }
                }
                Some(Token::Declare) => {
                    self.next();
                    pipeline.declare = names;
                    break;
                }
                Some(Token::Assign) => {
                    self.next();
                    pipeline.declare = names;
                    pipeline.assign = true;
                    break;
                }
                _ => break,
            }
        }
        if pipeline.declare.is_empty() {
            self.position = start;
        } else {
            self.vars.extend(pipeline.declare.iter().cloned());
        }
        let mut command = Command {
            operands: Vec::new(),
        };
        loop {
            let Some(token) = self.peek().cloned() else {
                return Err(TemplateError::Parse("unexpected end of template".into()));
            };
            if stop(&token) {
                break;
            }
            self.next();
            match token {
                Token::Pipe => {
                    if command.operands.is_empty() {
                        return Err(TemplateError::Parse("missing command before `|`".into()));
                    }
                    pipeline.commands.push(std::mem::replace(
                        &mut command,
                        Command {
                            operands: Vec::new(),
                        },
                    ));
                }
                Token::Dot => command.operands.push(Operand::Dot),
                Token::Field(path) => command.operands.push(Operand::Field(path)),
                Token::Variable(name, path) => {
                    if !self.vars.contains(&name) {
                        return Err(TemplateError::Parse(format!(
                            "undefined variable \"${name}\""
                        )));
                    }
                    command.operands.push(Operand::Variable(name, path));
                }
                Token::Ident(name) => {
                    if matches!(
                        name.as_str(),
                        "if" | "else"
                            | "end"
                            | "range"
                            | "with"
                            | "define"
                            | "template"
                            | "block"
                            | "break"
                            | "continue"
                    ) {
                        return Err(TemplateError::Parse(format!(
                            "unexpected keyword {name} in {context}"
                        )));
                    }
                    command.operands.push(Operand::Function(name));
                }
                Token::Chain(path) => {
                    let Some(last) = command.operands.pop() else {
                        return Err(TemplateError::Parse("unexpected field chain".into()));
                    };
                    command.operands.push(Operand::Chain(Box::new(last), path));
                }
                Token::Str(s) => command.operands.push(Operand::Literal(Value::String(s))),
                Token::Int(n) => command.operands.push(Operand::Literal(n.into())),
                Token::Float(f) => command.operands.push(Operand::Literal(f.into())),
                Token::Bool(b) => command.operands.push(Operand::Literal(b.into())),
                Token::Nil => command.operands.push(Operand::Nil),
                Token::LeftParen => {
                    let nested = self.pipeline_until("parenthesized pipeline", |t| {
                        matches!(t, Token::RightParen)
                    })?;
                    self.next();
                    command.operands.push(Operand::Nested(Box::new(nested)));
                }
                other => {
                    return Err(TemplateError::Parse(format!(
                        "unexpected {other:?} in {context}"
                    )));
                }
            }
        }
        if command.operands.is_empty() {
            return Err(TemplateError::Parse(if pipeline.commands.is_empty() {
                format!("missing value for {context}")
            } else {
                "missing command after `|`".into()
            }));
        }
        pipeline.commands.push(command);
        // Only the first command may start with a value rather than something executable.
        for (i, command) in pipeline.commands.iter().enumerate().skip(1) {
            if matches!(
                command.operands.first(),
                Some(Operand::Literal(_) | Operand::Dot | Operand::Nil)
            ) {
                return Err(TemplateError::Parse(format!(
                    "non executable command in pipeline stage {}",
                    i + 1
                )));
            }
        }
        Ok(pipeline)
    }
}

//! Tokens to a tree: text, actions with pipelines, `if` / `else if` / `else`, `range`, `with`.

use serde_json::Value;

use super::TemplateError;
use super::lexer::Token;

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
}

struct Parser {
    tokens: Vec<Token>,
    position: usize,
}

/// What ended a list of nodes.
enum Terminator {
    Eof,
    End,
    Else(Option<Pipeline>),
}

pub fn parse(tokens: Vec<Token>) -> Result<Vec<Node>, TemplateError> {
    let mut parser = Parser {
        tokens,
        position: 0,
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
                            if matches!(self.peek(), Some(Token::Ident(w)) if w == "if") {
                                self.next();
                                let pipeline = self.pipeline()?;
                                return Ok((nodes, Terminator::Else(Some(pipeline))));
                            }
                            self.expect_end()?;
                            return Ok((nodes, Terminator::Else(None)));
                        }
                        Some("if") => {
                            self.next();
                            nodes.push(self.if_node()?);
                        }
                        Some(word @ ("range" | "with")) => {
                            let is_range = word == "range";
                            self.next();
                            let pipeline = self.pipeline()?;
                            let (body, terminator) = self.nodes()?;
                            let otherwise = match terminator {
                                Terminator::End => Vec::new(),
                                Terminator::Else(None) => self.until_end()?,
                                Terminator::Else(Some(_)) => {
                                    return Err(TemplateError::Parse(
                                        "{{else if}} is only allowed after {{if}}".into(),
                                    ));
                                }
                                Terminator::Eof => {
                                    return Err(TemplateError::Parse(format!(
                                        "unclosed {{{{{word}}}}}: missing {{{{end}}}}"
                                    )));
                                }
                            };
                            nodes.push(if is_range {
                                Node::Range {
                                    pipeline,
                                    body,
                                    otherwise,
                                }
                            } else {
                                Node::With {
                                    pipeline,
                                    body,
                                    otherwise,
                                }
                            });
                        }
                        Some(word @ ("define" | "template" | "block" | "break" | "continue")) => {
                            return Err(TemplateError::Parse(format!(
                                "{{{{{word}}}}} is not supported in adapter templates"
                            )));
                        }
                        _ => nodes.push(Node::Action(self.pipeline()?)),
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
        let mut condition = self.pipeline()?;
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
                Terminator::Else(Some(next)) => condition = next,
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
    fn pipeline(&mut self) -> Result<Pipeline, TemplateError> {
        let pipeline = self.pipeline_until(|t| matches!(t, Token::ActionEnd))?;
        self.expect_end()?;
        Ok(pipeline)
    }

    fn pipeline_until(&mut self, stop: fn(&Token) -> bool) -> Result<Pipeline, TemplateError> {
        let mut pipeline = Pipeline::default();
        // Declarations: `$x :=`, `$i, $v :=`, `$x =`.
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
                _ => {
                    self.position = start;
                    break;
                }
            }
            if names.len() > 2 {
                self.position = start;
                break;
            }
        }
        if pipeline.declare.is_empty() {
            self.position = start;
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
                Token::Variable(name, path) => command.operands.push(Operand::Variable(name, path)),
                Token::Ident(name) => command.operands.push(Operand::Function(name)),
                Token::Str(s) => command.operands.push(Operand::Literal(Value::String(s))),
                Token::Int(n) => command.operands.push(Operand::Literal(n.into())),
                Token::Float(f) => command.operands.push(Operand::Literal(f.into())),
                Token::Bool(b) => command.operands.push(Operand::Literal(b.into())),
                Token::Nil => command.operands.push(Operand::Nil),
                Token::LeftParen => {
                    let nested = self.pipeline_until(|t| matches!(t, Token::RightParen))?;
                    self.next();
                    command.operands.push(Operand::Nested(Box::new(nested)));
                }
                other => {
                    return Err(TemplateError::Parse(format!(
                        "unexpected {other:?} in pipeline"
                    )));
                }
            }
        }
        if command.operands.is_empty() {
            return Err(TemplateError::Parse(if pipeline.commands.is_empty() {
                "empty action".into()
            } else {
                "missing command after `|`".into()
            }));
        }
        pipeline.commands.push(command);
        Ok(pipeline)
    }
}

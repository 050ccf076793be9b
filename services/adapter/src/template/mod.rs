//! HyperFleet's Go-template syntax (`{{ .clusterId }}`, `{{ now | date "2006-01-02" }}`), so
//! task configs written for HyperFleet render unchanged.
//!
//! Supported: text and actions with `{{-`/`-}}` trimming and comments; fields (`.a.b`),
//! variables (`$x := ...`, `$.a`), literals, pipelines, parenthesised pipelines, `if` /
//! `else if` / `else`, `range` (lists, maps, with `$i, $v :=`), `with`; the functions listed in
//! [`funcs`]. Missing map keys are errors (Go's `missingkey=error`, which HyperFleet sets), with
//! the keys that do exist in the message. Not supported (rejected at load): `define`,
//! `template`, `block`, `break`, `continue`.
//!
//! A template is parsed once, at config load; [`Template::render`] only evaluates.

mod exec;
pub mod funcs;
mod golayout;
mod lexer;
mod parse;

use std::collections::BTreeSet;

use serde_json::Value;

pub use exec::TValue;
use parse::{Node, Operand, Pipeline};

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TemplateError {
    #[error("template parse error: {0}")]
    Parse(String),
    #[error("template: {0}")]
    Exec(String),
    #[error(
        "template: map has no entry for key \"{key}\" (evaluating .{path}; available: {available})"
    )]
    MissingKey {
        key: String,
        path: String,
        available: String,
    },
}

/// A parsed template.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    source: String,
    nodes: Vec<Node>,
    /// No action at all: rendering returns the source.
    plain: bool,
}

impl Template {
    pub fn parse(source: &str) -> Result<Self, TemplateError> {
        if !source.contains("{{") {
            return Ok(Self {
                source: source.to_owned(),
                nodes: vec![Node::Text(source.to_owned())],
                plain: true,
            });
        }
        let nodes = parse::parse(lexer::lex(source)?)?;
        let template = Self {
            source: source.to_owned(),
            nodes,
            plain: false,
        };
        if let Some(unknown) = template.functions().into_iter().find(|f| !funcs::exists(f)) {
            return Err(TemplateError::Parse(format!(
                "function \"{unknown}\" not defined"
            )));
        }
        Ok(template)
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    pub fn is_plain(&self) -> bool {
        self.plain
    }

    /// Renders against `data` (the params map).
    pub fn render(&self, data: &Value) -> Result<String, TemplateError> {
        if self.plain {
            return Ok(self.source.clone());
        }
        let mut out = String::with_capacity(self.source.len());
        exec::execute(&self.nodes, data, &mut out)?;
        Ok(out)
    }

    /// The top-level names the template reads (`.clusterId` → `clusterId`, `$.a.b` → `a`),
    /// for the load-time "undefined template variable" check. Fields read inside `range` and
    /// `with` are relative to another value and not included.
    pub fn root_variables(&self) -> BTreeSet<String> {
        let mut names = BTreeSet::new();
        collect_roots(&self.nodes, true, &mut names);
        names
    }

    fn functions(&self) -> BTreeSet<String> {
        let mut names = BTreeSet::new();
        collect_functions(&self.nodes, &mut names);
        names
    }
}

fn pipelines(nodes: &[Node], f: &mut impl FnMut(&Pipeline, bool), top: bool) {
    for node in nodes {
        match node {
            Node::Text(_) => {}
            Node::Action(p) => f(p, top),
            Node::If {
                branches,
                otherwise,
            } => {
                for (p, body) in branches {
                    f(p, top);
                    pipelines(body, f, top);
                }
                pipelines(otherwise, f, top);
            }
            Node::Range {
                pipeline,
                body,
                otherwise,
            }
            | Node::With {
                pipeline,
                body,
                otherwise,
            } => {
                f(pipeline, top);
                pipelines(body, f, false);
                pipelines(otherwise, f, top);
            }
        }
    }
}

fn operands(pipeline: &Pipeline, f: &mut impl FnMut(&Operand)) {
    for command in &pipeline.commands {
        for operand in &command.operands {
            f(operand);
            if let Operand::Nested(inner) = operand {
                operands(inner, f);
            }
        }
    }
}

fn collect_roots(nodes: &[Node], top: bool, names: &mut BTreeSet<String>) {
    pipelines(
        nodes,
        &mut |p, at_top| {
            operands(p, &mut |o| match o {
                Operand::Field(path) if at_top => {
                    names.insert(path[0].clone());
                }
                Operand::Variable(name, path) if name.is_empty() && !path.is_empty() => {
                    names.insert(path[0].clone());
                }
                _ => {}
            });
        },
        top,
    );
}

fn collect_functions(nodes: &[Node], names: &mut BTreeSet<String>) {
    pipelines(
        nodes,
        &mut |p, _| {
            operands(p, &mut |o| {
                if let Operand::Function(name) = o {
                    names.insert(name.clone());
                }
            });
        },
        true,
    );
}

/// Renders a one-off template (tests and dry-run helpers).
pub fn render(source: &str, data: &Value) -> Result<String, TemplateError> {
    Template::parse(source)?.render(data)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn data() -> Value {
        json!({
            "clusterId": "ABC123",
            "generation": 5,
            "ratio": 0.5,
            "adapter": {"name": "kube-example"},
            "tags": ["a", "b"],
            "labels": {"z": "1", "a": "2"},
            "empty": "",
            "nothing": null,
        })
    }

    #[test]
    fn renders_hyperfleet_examples() {
        for (source, expected) in [
            ("{{ .clusterId }}-k8s", "ABC123-k8s"),
            ("{{ .clusterId | lower }}", "abc123"),
            ("{{ .generation }}", "5"),
            ("{{ .ratio }}", "0.5"),
            ("{{ .adapter.name }}", "kube-example"),
            (
                "https://{{ .clusterId }}.{{ .adapter.name }}.io",
                "https://ABC123.kube-example.io",
            ),
            ("{{ .tags }} {{ .labels }}", "[a b] map[a:2 z:1]"),
            ("{{ .nothing }}", "<nil>"),
            (
                "{{ if .empty }}x{{ else if .generation }}g{{ else }}y{{ end }}",
                "g",
            ),
            (
                "{{ range $i, $t := .tags }}{{ $i }}={{ $t }};{{ end }}",
                "0=a;1=b;",
            ),
            (
                "{{ range .tags }}[{{ . }}]{{ else }}none{{ end }}",
                "[a][b]",
            ),
            ("{{ with .adapter }}{{ .name }}{{ end }}", "kube-example"),
            (
                "{{ $n := .clusterId | lower }}{{ $n }}/{{ $.generation }}",
                "abc123/5",
            ),
            ("  {{- .clusterId -}}  \n", "ABC123"),
            ("{{ printf \"%s-%d\" .clusterId .generation }}", "ABC123-5"),
            ("{{ default \"none\" .empty }}", "none"),
            ("{{ (index .tags 1) | upper }}", "B"),
            (
                "{{ if and (eq .generation 5) (ne .clusterId \"x\") }}ok{{ end }}",
                "ok",
            ),
            ("{{/* comment */}}plain", "plain"),
        ] {
            assert_eq!(render(source, &data()).unwrap(), expected, "{source}");
        }
    }

    #[test]
    fn now_formats_with_go_layouts() {
        let out = render("{{ now | date \"2006-01-02T15:04:05Z07:00\" }}", &data()).unwrap();
        assert!(chrono::DateTime::parse_from_rfc3339(&out).is_ok(), "{out}");
        assert!(out.ends_with('Z'), "{out}");
    }

    #[test]
    fn missing_keys_are_errors_that_list_what_exists() {
        let err = render("{{ .clusterID }}", &data()).unwrap_err().to_string();
        assert!(
            err.contains("map has no entry for key \"clusterID\""),
            "{err}"
        );
        assert!(err.contains("clusterId"), "{err}");
        let err = render("{{ .clusterId.x }}", &data())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("can't evaluate field x in type string"),
            "{err}"
        );
    }

    #[test]
    fn parse_errors_are_precise() {
        for (source, fragment) in [
            ("{{ .x ", "unclosed action"),
            ("{{ if .x }}a", "missing {{end}}"),
            ("{{ end }}", "unexpected {{end}}"),
            ("{{ nosuch .x }}", "function \"nosuch\" not defined"),
            ("{{ template \"x\" }}", "not supported"),
            ("{{ }}", "empty action"),
        ] {
            let err = Template::parse(source).unwrap_err().to_string();
            assert!(err.contains(fragment), "{source}: {err}");
        }
    }

    #[test]
    fn root_variables_skip_relative_fields() {
        let t = Template::parse(
            "{{ .a.b }}{{ range .items }}{{ .inner }}{{ end }}{{ with .w }}{{ .x }}{{ end }}{{ $.c }}{{ lower .d }}",
        )
        .unwrap();
        let roots: Vec<String> = t.root_variables().into_iter().collect();
        assert_eq!(roots, vec!["a", "c", "d", "items", "w"]);
    }
}

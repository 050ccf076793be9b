//! Go's `text/template` language over JSON data, with HyperFleet's function map, so task
//! configs written for HyperFleet's adapter render here unchanged
//! (`{{ .clusterId | lower }}`, `{{ now | date "2006-01-02T15:04:05Z07:00" }}`).
//!
//! ```
//! use serde_json::json;
//! use steadfast_gotemplate::Template;
//!
//! let t = Template::parse(r#"{{ .name | upper }}-{{ printf "%03d" .n }}"#).unwrap();
//! assert_eq!(t.render(&json!({"name": "web", "n": 7})).unwrap(), "WEB-007");
//! ```
//!
//! A template is parsed once (at config load, where syntax errors, unknown functions and
//! undefined variables are reported); [`Template::render`] only evaluates.
//!
//! # The language
//!
//! As Go's `text/template` (<https://pkg.go.dev/text/template>):
//!
//! - text and `{{ actions }}`; `{{-` and `-}}` trim the spaces, tabs and newlines beside them;
//!   `{{/* comments */}}` (opening and closing at the delimiters);
//! - `.`, fields `.a.b`, `$` (the data), variables `$x := pipeline`, `$x = pipeline`, `$x.a`;
//!   fields of a result, `(index .items 0).name`;
//! - Go literals: strings (`"..."` with Go escapes, `` `raw` ``), characters (`'a'` is 97),
//!   ints (`42`, `0x1F`, `0o17`, `017`, `0b101`, `1_000`), floats (`1.5`, `1e3`, `0x1p-2`),
//!   `true`, `false`, `nil`;
//! - pipelines `a | f x` (the piped value is the last argument) and `(parenthesised)` ones;
//! - `if` / `else if` / `else`, `with` / `else with` / `else`, `range` over lists, maps (in
//!   key order) and ints, with `$v :=` or `$i, $v :=` and `else` for an empty range;
//! - Go's truth: `false`, `0`, `0.0`, `""`, `nil`, and empty lists and maps are false;
//! - printing as Go's `fmt` does (`[a b]`, `map[k:v]`, `1e+06`, `<no value>` for nil).
//!
//! A missing map key is an error (Go's `missingkey=error`, which HyperFleet sets); the message
//! lists the keys that do exist. `index` of a missing key gives nil instead, as in Go.
//!
//! # Functions
//!
//! One table, [`funcs::FUNCTIONS`], defines every function: its name, usage, a one-line doc
//! and its implementation. It holds HyperFleet's function map (`now`, `date`, `dateFormat`,
//! `lower`, `upper`, `title`, `trim`, `trimPrefix`, `trimSuffix`, `replace`, `contains`,
//! `hasPrefix`, `hasSuffix`, `quote`, `default`, `int`, `int64`, `float`, `float64`, `string`)
//! with HyperFleet's argument order, Go's built-ins (`and`, `or`, `not`, `eq`, `ne`, `lt`, `le`,
//! `gt`, `ge`, `len`, `index`, `slice`, `print`, `printf`, `println`, `html`, `js`,
//! `urlquery`, `call`), and three sprig helpers HyperFleet lacks (`toJson`, `b64enc`, `b64dec`).
//!
//! HyperFleet binds Go's `strings` functions as they are, so the string comes first:
//! `{{ trimPrefix .tag "v" }}` strips a `v`, while the pipeline `{{ .tag | trimPrefix "v" }}`
//! is `strings.TrimPrefix("v", .tag)`.
//!
//! # Not supported
//!
//! Refused when a template loads: `define`, `template`, `block` (no named templates),
//! `break`, `continue`, and complex numbers. Methods (such as `now.Year`) are not supported;
//! format times with `date`.
//!
//! # Where this port differs from Go
//!
//! JSON numbers have no Go type of their own: this port sees an integer where HyperFleet
//! (decoding API responses) has a `float64`. So an integer and a float compare by value
//! (`eq 1 1.0` is true; Go reports incompatible types), and float verbs accept integers
//! (`printf "%.1f" 5` is `5.0`; Go prints `%!f(int=5)`). `date` also takes RFC 3339 strings and
//! Unix seconds besides times. `float` of a string that parses to ±Inf or NaN is an error (a
//! JSON value cannot hold it; Go returns the value). `title` and `quote` use approximations of
//! Unicode tables (word breaks, printable characters) that agree with Go's for common text.

mod exec;
pub mod funcs;
mod gofmt;
mod golayout;
mod lexer;
mod parse;

use std::collections::BTreeSet;

use serde_json::Value;

pub use exec::TValue;
pub use funcs::FuncError;
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
    /// A function failed (wrong arguments, a bad time, an incomparable value, ...).
    #[error("template: error calling {name}: {source}")]
    Call {
        name: String,
        #[source]
        source: FuncError,
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
            visit(operand, f);
        }
    }
}

fn visit(operand: &Operand, f: &mut impl FnMut(&Operand)) {
    f(operand);
    match operand {
        Operand::Nested(inner) => operands(inner, f),
        Operand::Chain(inner, _) => visit(inner, f),
        _ => {}
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
            ("{{ .nothing }}", "<no value>"),
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
            ("{{ }}", "missing value for command"),
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

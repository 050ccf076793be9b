//! Load-time checks of a task config, which also compile it: every template parsed, every CEL
//! expression parsed, every `ref` file read. What is found is one of two kinds:
//!
//! * a **refusal** — what HyperFleet's loader refuses too, with its wording: the config does
//!   not load;
//! * a **warning** — one of our stricter checks (undefined variables, unknown functions,
//!   templates that do not parse, params that are never set, manifests without a kind): the
//!   config loads, as it does in HyperFleet, and the warning is printed at load and by
//!   `--check-config`. `--strict` (or `validation.strict` in the adapter config) turns the
//!   warnings into refusals.
//!
//! All findings are collected, so one `--check-config` run lists them all. What each rule
//! follows in HyperFleet is in `docs/hyperfleet-compatibility.md`.

mod hyperfleet;
mod sections;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Component, Path, PathBuf};

use steadfast_rules::Environment;

use super::compiled::Compiled;
use super::error::Issue;
use super::task::{ApiCall, TaskConfig};
use steadfast_gotemplate::Template;

/// Names every expression and template may use besides params, captures and payloads.
pub const BUILTIN_VARIABLES: [&str; 5] = ["adapter", "config", "env", "event", "resources"];

/// Where `ref` files and file sources are found: relative paths against the task config's
/// directory; absolute paths as written, unless a `--remap-path FROM=TO` prefix matches (for
/// running a config written for the cluster's mount layout on a laptop).
#[derive(Debug, Clone, Default)]
pub struct PathResolver {
    pub base_dir: PathBuf,
    pub remaps: Vec<(PathBuf, PathBuf)>,
}

impl PathResolver {
    pub fn resolve(&self, reference: &str) -> PathBuf {
        self.remapped(reference).unwrap_or_else(|| {
            let path = Path::new(reference);
            if path.is_absolute() {
                path.to_owned()
            } else {
                self.base_dir.join(path)
            }
        })
    }

    fn remapped(&self, reference: &str) -> Option<PathBuf> {
        let path = Path::new(reference);
        self.remaps.iter().find_map(|(from, to)| {
            path.strip_prefix(from).ok().map(|rest| {
                if rest.as_os_str().is_empty() {
                    to.clone()
                } else {
                    to.join(rest)
                }
            })
        })
    }

    /// HyperFleet's `ResolveSecurePath`: a `ref` must stay inside the task config's directory
    /// (compared lexically, as Go's `filepath.Rel` does). A remapped reference is the
    /// operator's explicit choice and is not checked.
    fn escapes_base_dir(&self, reference: &str) -> bool {
        if self.remapped(reference).is_some() {
            return false;
        }
        let base = lexical_clean(&absolute(&self.base_dir));
        let target = lexical_clean(&absolute(&base.join(reference)));
        !target.starts_with(&base)
    }
}

fn absolute(path: &Path) -> PathBuf {
    if path.is_absolute() {
        path.to_owned()
    } else {
        std::env::current_dir()
            .map(|d| d.join(path))
            .unwrap_or_else(|_| path.to_owned())
    }
}

/// `..` and `.` resolved without touching the file system (Go's `filepath.Clean`).
fn lexical_clean(path: &Path) -> PathBuf {
    let mut clean = PathBuf::new();
    for component in path.components() {
        match component {
            Component::ParentDir => {
                clean.pop();
            }
            Component::CurDir => {}
            other => clean.push(other.as_os_str()),
        }
    }
    clean
}

/// A task config that loads: compiled, with the warnings our stricter checks found.
#[derive(Debug)]
pub struct Checked {
    pub compiled: Compiled,
    pub warnings: Vec<Issue>,
}

/// What the checks of one task config need besides the file.
pub struct Inputs<'a> {
    pub environment: &'a Environment,
    pub paths: &'a PathResolver,
    /// The process environment: HyperFleet refuses a required `env.X` param whose variable is
    /// unset (and that has no default) at load.
    pub process_env: &'a BTreeMap<String, String>,
}

/// Validates and compiles `task`: the refusals, or the compiled config and its warnings.
pub fn compile(task: &TaskConfig, inputs: &Inputs<'_>) -> Result<Checked, Vec<Issue>> {
    let mut defined: BTreeSet<String> = BUILTIN_VARIABLES.iter().map(|s| (*s).to_owned()).collect();
    defined.extend(task.params.iter().map(|p| p.name.clone()));
    let captures = task
        .preconditions
        .iter()
        .flat_map(|p| p.capture.iter().map(|c| c.name.clone()));
    defined.extend(captures.clone());
    let payloads = task
        .post
        .iter()
        .flat_map(|post| post.payloads.iter().map(|p| p.name.clone()));
    defined.extend(payloads.clone());
    let hyperfleet = hyperfleet::Defined::new(
        task.params
            .iter()
            .map(|p| p.name.clone())
            .chain(captures)
            .chain(payloads)
            .chain(
                task.resources
                    .iter()
                    .map(|r| format!("resources.{}", r.name)),
            ),
    );
    let mut v = Validator {
        refusals: Vec::new(),
        warnings: Vec::new(),
        compiled: Compiled {
            environment: Some(inputs.environment.clone()),
            ..Compiled::default()
        },
        defined,
        hyperfleet,
        never_set: BTreeMap::new(),
        inputs,
    };
    v.params(task);
    v.preconditions(task);
    v.resources(task);
    v.post(task);
    if v.refusals.is_empty() {
        Ok(Checked {
            compiled: v.compiled,
            warnings: v.warnings,
        })
    } else {
        Err(v.refusals)
    }
}

/// Whether the variables an expression reads can be known at load.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Reads {
    Known,
    /// Capture expressions of an old-style precondition read the API response's fields.
    ApiResponse,
}

/// What a CEL parse error is where the expression is found.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Unparsable {
    /// HyperFleet parses it at load and refuses.
    Refuse,
    /// HyperFleet does not look at it at load (a `build_ref` file); it fails when used.
    Warn,
}

/// Which of HyperFleet's template checks applies where a template is found.
#[derive(Clone, Copy)]
enum TemplateCheck<'a> {
    /// HyperFleet does not look at templates here (log messages, label keys, `build_ref`).
    Unchecked,
    /// Every variable HyperFleet defines.
    Defined,
    /// A param's `api_call`: only the builtins and the params before it.
    EarlierParams(&'a BTreeSet<String>),
}

struct Validator<'a> {
    refusals: Vec<Issue>,
    warnings: Vec<Issue>,
    compiled: Compiled,
    /// Our check: every name an expression or template may read.
    defined: BTreeSet<String>,
    /// HyperFleet's check.
    hyperfleet: hyperfleet::Defined,
    /// Optional params without a default whose source can never produce a value, and why:
    /// what reads them warns (the HyperFleet Quick Start's `clusterStatus2`).
    never_set: BTreeMap<String, String>,
    inputs: &'a Inputs<'a>,
}

impl Validator<'_> {
    fn refuse(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.refusals.push(Issue {
            path: path.into(),
            message: message.into(),
        });
    }

    fn warn(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.warnings.push(Issue {
            path: path.into(),
            message: message.into(),
        });
    }

    /// A template: HyperFleet's check where it makes one (a refusal), then ours (warnings):
    /// it must parse, and every variable it reads must be defined and ever set.
    fn template(&mut self, source: &str, path: &str, check: TemplateCheck<'_>) {
        if source.is_empty() {
            return;
        }
        let mut refused = BTreeSet::new();
        let undefined_for_hyperfleet: Vec<String> = match check {
            TemplateCheck::Unchecked => Vec::new(),
            TemplateCheck::Defined => hyperfleet::simple_references(source)
                .filter(|v| !self.hyperfleet.contains(v))
                .map(str::to_owned)
                .collect(),
            TemplateCheck::EarlierParams(earlier) => hyperfleet::simple_references(source)
                .filter(|v| {
                    let root = v.split('.').next().unwrap_or_default();
                    !hyperfleet::BUILTINS.contains(&root)
                        && !earlier.contains(*v)
                        && !earlier.contains(root)
                })
                .map(str::to_owned)
                .collect(),
        };
        for variable in undefined_for_hyperfleet {
            refused.insert(variable.split('.').next().unwrap_or_default().to_owned());
            self.refuse(path, format!("undefined template variable {variable:?}"));
        }
        let roots = match self.parsed_template(source) {
            Ok(roots) => roots,
            Err(e) => {
                self.warn(
                    path,
                    format!("{e} (HyperFleet loads this and fails when it renders it)"),
                );
                return;
            }
        };
        let undefined: Vec<&String> = roots
            .iter()
            .filter(|root| !self.defined.contains(*root) && !refused.contains(*root))
            .collect();
        for root in undefined {
            self.warn(path, format!("undefined template variable \"{root}\" (not a param, capture, payload or one of adapter, config, env, event, resources)"));
        }
        self.reads_never_set(roots.iter().map(String::as_str), path);
    }

    /// The names `source` reads at the top level; the template is parsed once and kept for
    /// the run time in `compiled`.
    fn parsed_template(
        &mut self,
        source: &str,
    ) -> Result<BTreeSet<String>, steadfast_gotemplate::TemplateError> {
        if let Some(template) = self.compiled.templates.get(source) {
            return Ok(template.root_variables());
        }
        let template = Template::parse(source)?;
        let roots = template.root_variables();
        self.compiled.templates.insert(source.to_owned(), template);
        Ok(roots)
    }

    /// A CEL expression: a parse error is refused, as in HyperFleet (which only parses);
    /// unknown functions, undefined variables and params that are never set are warnings.
    fn expression(&mut self, source: &str, path: &str) {
        self.expression_checked(source, path, Reads::Known, Unparsable::Refuse);
    }

    fn expression_checked(
        &mut self,
        source: &str,
        path: &str,
        reads: Reads,
        unparsable: Unparsable,
    ) {
        if source.trim().is_empty() {
            self.refuse(path, "expression is required");
            return;
        }
        let environment = self.inputs.environment;
        // Parsed once and kept for the run time; checked at every place it stands.
        let expression = match self.compiled.expressions.get(source) {
            Some(expression) => expression.clone(),
            None => match environment.parse(source) {
                Ok(expression) => expression,
                Err(e) => {
                    let message = format!("CEL parse error in `{}`: {}", source.trim(), e.message);
                    match unparsable {
                        Unparsable::Refuse => self.refuse(path, message),
                        Unparsable::Warn => self.warn(path, format!("{message} (HyperFleet loads build_ref files unchecked; building this payload fails)")),
                    }
                    return;
                }
            },
        };
        if let Some(function) = environment.unknown_function(&expression) {
            self.warn(path, format!("CEL expression `{}` calls unknown function `{function}` (HyperFleet loads it; every evaluation fails)", source.trim()));
        }
        let variables = expression.free_variables();
        if reads == Reads::Known {
            let undefined: Vec<&String> = variables
                .iter()
                .filter(|v| !self.defined.contains(*v))
                .collect();
            for variable in undefined {
                self.warn(
                    path,
                    format!(
                        "CEL expression `{}` uses undefined variable `{variable}`",
                        source.trim()
                    ),
                );
            }
            self.reads_never_set(variables.iter().map(String::as_str), path);
        }
        self.compiled
            .variables
            .insert(source.to_owned(), variables.into_iter().collect());
        self.compiled
            .expressions
            .insert(source.to_owned(), expression);
    }

    fn reads_never_set<'v>(&mut self, variables: impl Iterator<Item = &'v str>, path: &str) {
        let found: Vec<(String, String)> = variables
            .filter_map(|v| self.never_set.get(v).map(|why| (v.to_owned(), why.clone())))
            .collect();
        for (variable, why) in found {
            self.warn(
                path,
                format!("reads `{variable}`, which is never set: {why}"),
            );
        }
    }

    /// The variables an already parsed expression reads that are undefined, and those that
    /// are params never set (for the never-set analysis of params).
    fn unresolvable(&self, source: &str) -> (Vec<String>, Vec<String>) {
        let variables = self.compiled.variables.get(source);
        let pick = |keep: &dyn Fn(&String) -> bool| {
            variables
                .map(|vars| vars.iter().filter(|v| keep(v)).cloned().collect())
                .unwrap_or_default()
        };
        (
            pick(&|v| !self.defined.contains(v)),
            pick(&|v| self.never_set.contains_key(v)),
        )
    }

    fn api_call(&mut self, call: &ApiCall, path: &str, check: TemplateCheck<'_>) {
        if call.url.trim().is_empty() {
            self.refuse(format!("{path}.url"), "is required");
        }
        self.template(&call.url, &format!("{path}.url"), check);
        if let Some(body) = &call.body {
            self.template(body, &format!("{path}.body"), check);
        }
        for (i, header) in call.headers.iter().enumerate() {
            if header.name.trim().is_empty() {
                self.warn(
                    format!("{path}.headers[{i}].name"),
                    "header name is empty: the request would carry a header without a name",
                );
            }
            self.template(&header.value, &format!("{path}.headers[{i}].value"), check);
        }
    }

    /// Reads a `ref` file, refusing what HyperFleet refuses: an empty reference, a path
    /// outside the task config's directory, a file that does not exist, a directory.
    fn read_ref(&mut self, reference: &str, path: &str) -> Option<String> {
        if reference.trim().is_empty() {
            self.refuse(path, "manifest ref cannot be empty");
            return None;
        }
        if self.inputs.paths.escapes_base_dir(reference) {
            self.refuse(path, format!("path {reference:?} escapes base directory (\"{}\"; map it with --remap-path FROM=TO)", self.inputs.paths.base_dir.display()));
            return None;
        }
        let resolved = self.inputs.paths.resolve(reference);
        match std::fs::read_to_string(&resolved) {
            Ok(text) => Some(text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                self.refuse(path, format!("referenced file \"{reference}\" does not exist (resolved to \"{}\"; mount it, or map it with --remap-path FROM=TO)", resolved.display()));
                None
            }
            Err(_) if resolved.is_dir() => {
                self.refuse(
                    path,
                    format!("referenced path {reference:?} is a directory, not a file"),
                );
                None
            }
            Err(e) => {
                self.refuse(
                    path,
                    format!(
                        "cannot read referenced file \"{}\": {e}",
                        resolved.display()
                    ),
                );
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ref_may_not_leave_the_task_config_directory_unless_remapped() {
        let paths = PathResolver {
            base_dir: "/etc/adapter".into(),
            remaps: vec![("/mnt/job.yaml".into(), "/tmp/job.yaml".into())],
        };
        assert!(!paths.escapes_base_dir("job.yaml"));
        assert!(!paths.escapes_base_dir("/etc/adapter/templates/job.yaml"));
        assert!(!paths.escapes_base_dir("templates/../job.yaml"));
        assert!(paths.escapes_base_dir("../secrets/token"));
        assert!(paths.escapes_base_dir("/etc/passwd"));
        assert!(paths.escapes_base_dir("/etc/adapter-other/job.yaml"));
        assert!(!paths.escapes_base_dir("/mnt/job.yaml"));
    }
}

//! The task config after load: every template parsed and every CEL expression compiled once,
//! manifests and payload builds read from their `ref` files. The pipeline looks them up by
//! their source text, so it never parses or compiles per event.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

use serde_json::Value;
use steadfast_rules::{Environment, Expression};

use steadfast_gotemplate::Template;

/// A resource's manifest, ready to render.
#[derive(Debug, Clone, PartialEq)]
pub enum Manifest {
    /// An object whose string keys and values are templates, rendered leaf by leaf (so a
    /// rendered value can never break the YAML structure).
    Object(Value),
    /// A whole template (`manifest: |` or a `ref` file that is not plain YAML): rendered, then
    /// parsed as YAML.
    Text(Template),
}

/// Parsed templates, compiled expressions, loaded manifests and builds.
#[derive(Clone, Default)]
pub struct Compiled {
    pub(crate) templates: HashMap<String, Template>,
    pub(crate) expressions: HashMap<String, Expression>,
    /// The variables each expression reads: only those are bound when it is evaluated
    /// (binding converts JSON to CEL values, so binding everything would dominate the cost).
    pub(crate) variables: HashMap<String, Arc<[String]>>,
    /// By resource index.
    pub manifests: Vec<Option<Manifest>>,
    /// By payload index: `build`, or the content of `build_ref`.
    pub builds: Vec<Option<Value>>,
    pub(crate) environment: Option<Environment>,
}

impl std::fmt::Debug for Compiled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Compiled")
            .field("templates", &self.templates.len())
            .field("expressions", &self.expressions.len())
            .finish_non_exhaustive()
    }
}

impl Compiled {
    /// The parsed template for `source` (parsed now if load did not see it, which only
    /// happens for text built at run time).
    pub fn template<'a>(
        &'a self,
        source: &str,
    ) -> Result<Cow<'a, Template>, steadfast_gotemplate::TemplateError> {
        match self.templates.get(source) {
            Some(t) => Ok(Cow::Borrowed(t)),
            None => Template::parse(source).map(Cow::Owned),
        }
    }

    /// The compiled expression for `source`.
    pub fn expression(
        &self,
        source: &str,
    ) -> Result<Cow<'_, Expression>, steadfast_rules::CompileError> {
        match self.expressions.get(source) {
            Some(e) => Ok(Cow::Borrowed(e)),
            None => self
                .environment
                .as_ref()
                .expect("an environment is set at load")
                .compile(source)
                .map(Cow::Owned),
        }
    }

    /// The variables `source` reads (every one, when it was not compiled at load).
    pub fn variables(&self, source: &str) -> Option<&[String]> {
        self.variables.get(source).map(|v| &v[..])
    }

    pub fn environment(&self) -> &Environment {
        self.environment
            .as_ref()
            .expect("an environment is set at load")
    }
}

/// Shared, immutable after load.
pub type SharedCompiled = Arc<Compiled>;

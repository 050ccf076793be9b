//! [`Environment`]: what expressions may use, and compiling them.

use std::sync::Arc;

use cel::common::value::CowVal;
use cel::{Context, ExecutionError, FunctionContext};

use crate::error::{CompileError, EnvironmentError, FunctionError};
use crate::evaluation::Evaluator;
use crate::expression::Expression;
use crate::value::Value;

/// A function as `cel` calls it: with the call's context (its arguments, the variables in
/// scope) and returning a value that may borrow from them.
pub(crate) type RawFunction = dyn for<'c, 'call> Fn(&mut FunctionContext<'c, 'call>) -> Result<CowVal<'c, 'call>, ExecutionError>
    + Send
    + Sync;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Extension {
    Strings,
    Lists,
    Math,
    Encoders,
}

/// Builds an [`Environment`]; see [`Environment::builder`].
#[must_use]
pub struct EnvironmentBuilder {
    extensions: Vec<Extension>,
    functions: Vec<(String, Arc<RawFunction>)>,
}

impl EnvironmentBuilder {
    /// cel-go's `ext.Strings()`: `lowerAscii`, `upperAscii`, `trim`, `replace`, `split`,
    /// `substring`, `indexOf`, `join`, `format`, `strings.quote`, ...
    pub fn strings(mut self) -> Self {
        self.extensions.push(Extension::Strings);
        self
    }

    /// cel-go's `ext.Lists()`: `distinct`, `flatten`, `reverse`, `slice`, `sort`, `sortBy`,
    /// `lists.range`.
    pub fn lists(mut self) -> Self {
        self.extensions.push(Extension::Lists);
        self
    }

    /// cel-go's `ext.Math()`: `math.greatest`, `math.least`, `math.ceil`, ...
    pub fn math(mut self) -> Self {
        self.extensions.push(Extension::Math);
        self
    }

    /// cel-go's `ext.Encoders()`: `base64.encode`, `base64.decode`.
    pub fn encoders(mut self) -> Self {
        self.extensions.push(Extension::Encoders);
        self
    }

    /// Adds a function of your own, callable as `name(a, b)` and as `a.name(b)` (then the
    /// receiver is the first argument). It gets its arguments as [`Value`]s and returns a
    /// value, or a [`FunctionError`] whose text becomes the evaluation error.
    ///
    /// ```
    /// use steadfast_rules::{Environment, FunctionError, Value};
    /// let env = Environment::builder()
    ///     .function("twice", |args: &[Value]| match args {
    ///         [v] => v
    ///             .as_i64()
    ///             .map(|i| Value::from(i * 2))
    ///             .ok_or_else(|| FunctionError::bad_argument("twice", "takes an int")),
    ///         _ => Err(FunctionError::argument_count("twice", 1, args.len())),
    ///     })
    ///     .build()
    ///     .unwrap();
    /// let expr = env.compile("twice(21) == 42 && 21.twice() == 42").unwrap();
    /// assert!(env.evaluator().scope().evaluate_bool(&expr).unwrap());
    /// ```
    pub fn function<F>(self, name: &str, function: F) -> Self
    where
        F: Fn(&[Value]) -> Result<Value, FunctionError> + Send + Sync + 'static,
    {
        let raw: Arc<RawFunction> = Arc::new(move |ftx: &mut FunctionContext<'_, '_>| {
            let mut args = Vec::with_capacity(ftx.args.len() + 1);
            if let Some(this) = &ftx.this {
                args.push(Value(cel::Value::try_from(this.as_ref())?));
            }
            for arg in &ftx.args {
                args.push(Value(cel::Value::try_from(arg.as_ref())?));
            }
            let result = function(&args).map_err(|error| ftx.error(error.to_string()))?;
            Ok(CowVal::Owned(result.0.try_into()?))
        });
        self.raw_function(name, raw)
    }

    pub(crate) fn raw_function(mut self, name: &str, function: Arc<RawFunction>) -> Self {
        self.functions.push((name.to_owned(), function));
        self
    }

    /// The environment; fails if a function's name is already taken.
    pub fn build(self) -> Result<Environment, EnvironmentError> {
        let mut env = cel::Env::stdlib();
        let mut seen = Vec::new();
        for extension in &self.extensions {
            if seen.contains(extension) {
                continue;
            }
            seen.push(*extension);
            let added = match extension {
                Extension::Strings => env.add_extension(cel::extensions::strings),
                Extension::Lists => env.add_extension(cel::extensions::lists),
                Extension::Math => env.add_extension(cel::extensions::math),
                Extension::Encoders => env.add_extension(cel::extensions::encoders),
            };
            added.map_err(|e| EnvironmentError {
                function: format!("{extension:?}"),
                reason: e.to_string(),
            })?;
        }
        let env = Arc::new(env);
        // Check every name once here, so that making an evaluator cannot fail.
        let mut probe = Context::with_env(Arc::clone(&env));
        for (i, (name, _)) in self.functions.iter().enumerate() {
            if self.functions[..i].iter().any(|(other, _)| other == name) {
                return Err(EnvironmentError {
                    function: name.clone(),
                    reason: "declared twice".into(),
                });
            }
            probe
                .add_function(name, || true)
                .map_err(|_| EnvironmentError {
                    function: name.clone(),
                    reason: "the CEL standard library or an enabled extension already declares it"
                        .into(),
                })?;
        }
        Ok(Environment {
            inner: Arc::new(Inner {
                env,
                functions: self.functions,
            }),
        })
    }
}

struct Inner {
    env: Arc<cel::Env>,
    functions: Vec<(String, Arc<RawFunction>)>,
}

/// What expressions may use. Cheap to clone, `Send + Sync`.
#[derive(Clone)]
pub struct Environment {
    inner: Arc<Inner>,
}

impl Environment {
    /// Starts from the CEL standard library (macros, `timestamp`, `duration`, optionals).
    pub fn builder() -> EnvironmentBuilder {
        EnvironmentBuilder {
            extensions: Vec::new(),
            functions: Vec::new(),
        }
    }

    /// The standard library alone.
    pub fn standard() -> Self {
        Self::builder()
            .build()
            .expect("the standard environment declares no functions of its own")
    }

    /// Compiles `source`. Syntax errors, and calls of functions this environment does not
    /// have, are reported with the expression and the position.
    pub fn compile(&self, source: &str) -> Result<Expression, CompileError> {
        let expression = self.parse(source)?;
        if let Some(unknown) = self.unknown_function(&expression) {
            return Err(CompileError {
                expression: source.to_owned(),
                message: format!("unknown function `{unknown}`"),
            });
        }
        Ok(expression)
    }

    /// Parses `source` without checking which functions it calls: what cel-go's `Env.Parse`
    /// accepts. A call of a function the environment lacks then fails when it is evaluated
    /// (as in cel-go, which plans such a call and fails with "no such overload"). For loaders
    /// that must accept what a Go peer accepts and report the rest as warnings.
    pub fn parse(&self, source: &str) -> Result<Expression, CompileError> {
        let error = |message: String| CompileError {
            expression: source.to_owned(),
            message,
        };
        if source.trim().is_empty() {
            return Err(error("the expression is empty".into()));
        }
        let program = self.inner.env.compile(source).map_err(|errors| {
            error(
                errors
                    .errors
                    .iter()
                    .map(|e| format!("{}:{}: {}", e.pos.0, e.pos.1, e.msg))
                    .collect::<Vec<_>>()
                    .join("; "),
            )
        })?;
        Ok(Expression::new(source, program))
    }

    /// The first function `expression` calls that this environment does not have.
    pub fn unknown_function(&self, expression: &Expression) -> Option<String> {
        expression
            .functions()
            .into_iter()
            .find(|f| !self.has_function(f))
    }

    /// Whether expressions can call `name`: the standard library, an enabled extension, or a
    /// function added to the builder.
    pub fn has_function(&self, name: &str) -> bool {
        if self.inner.functions.iter().any(|(n, _)| n == name) {
            return true;
        }
        // `add_function` refuses exactly the names the `Env` already declares.
        let mut probe = Context::with_env(Arc::clone(&self.inner.env));
        probe.add_function(name, || true).is_err()
    }

    /// A new evaluator: the functions, ready for many evaluations. Make one per thread or
    /// task and reuse it.
    pub fn evaluator(&self) -> Evaluator {
        let mut ctx = Context::with_env(Arc::clone(&self.inner.env));
        for (name, function) in &self.inner.functions {
            let function = Arc::clone(function);
            let boxed: Box<RawFunction> =
                Box::new(move |ftx: &mut FunctionContext<'_, '_>| function(ftx));
            ctx.add_function(name, boxed)
                .expect("names were checked when the environment was built");
        }
        Evaluator::new(ctx)
    }
}

impl std::fmt::Debug for Environment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Environment")
            .field(
                "functions",
                &self
                    .inner
                    .functions
                    .iter()
                    .map(|(n, _)| n.as_str())
                    .collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

//! What can go wrong, each error naming the expression at fault: these messages end up in
//! `--check-config` output and in logs read by someone who has to find the line to fix.

/// An expression that does not compile, or uses a variable or function that does not exist.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid CEL expression `{expression}`: {message}")]
pub struct CompileError {
    pub expression: String,
    pub message: String,
}

/// An expression that compiled but failed on this input (a missing key, a type mismatch, a
/// result of the wrong type). Permanent for this input: retrying cannot help.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("evaluating `{expression}`: {message}")]
pub struct EvalError {
    pub expression: String,
    pub message: String,
}

/// An environment that cannot be built: a custom function whose name the CEL standard library
/// or an extension already declares, or a name given twice.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot declare CEL function `{function}`: {reason}")]
pub struct EnvironmentError {
    pub function: String,
    pub reason: String,
}

/// A value that cannot be converted to JSON.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ValueError {
    /// A double that is NaN or infinite.
    #[error("{value} cannot be represented in JSON")]
    NotFinite { value: f64 },
    /// An opaque value other than an optional (e.g. a CEL type value).
    #[error("a value of type `{type_name}` cannot be represented in JSON")]
    Opaque { type_name: String },
    #[error("function `{name}` cannot be represented in JSON")]
    Function { name: String },
    #[error("a `{name}` struct cannot be represented in JSON")]
    Struct { name: String },
}

/// Why a function added with [`EnvironmentBuilder::function`](crate::EnvironmentBuilder::function)
/// refused its call; the text becomes the evaluation error, after the function's name.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FunctionError {
    /// Called with the wrong number of arguments (the receiver of a method call counts).
    #[error(
        "{function}() takes {expected} argument{plural}, got {got}",
        plural = if *expected == 1 { "" } else { "s" }
    )]
    ArgumentCount {
        function: String,
        expected: usize,
        got: usize,
    },
    /// An argument of the wrong type or form; `problem` says which and what was expected,
    /// e.g. `path must be a string`.
    #[error("{function}() {problem}")]
    BadArgument { function: String, problem: String },
    /// The result (or an argument) cannot be converted, e.g. to JSON.
    #[error(transparent)]
    Value(#[from] ValueError),
}

impl FunctionError {
    pub fn argument_count(function: &str, expected: usize, got: usize) -> Self {
        Self::ArgumentCount {
            function: function.to_owned(),
            expected,
            got,
        }
    }

    pub fn bad_argument(function: &str, problem: impl Into<String>) -> Self {
        Self::BadArgument {
            function: function.to_owned(),
            problem: problem.into(),
        }
    }
}

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

/// A value that cannot be converted as asked (e.g. a CEL type value to JSON).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ValueError(pub String);

//! CEL rules for Steadfast: compiled once at load, evaluated many times over JSON.
//!
//! The only crate that uses `cel` (pinned `=0.15.0`): that crate is pre-1.0 and changes its API
//! in every minor release, so everything else goes through this small surface, and the golden
//! tests in `tests/golden.rs` show what changes when it is upgraded.
//!
//! ```
//! use steadfast_rules::{Environment, Value};
//! use serde_json::json;
//!
//! // Once, at config load: an unknown function or a syntax error is reported here, naming
//! // the expression.
//! let env = Environment::builder().strings().hyperfleet_sentinel().build().unwrap();
//! let is_new = env.compile(r#"resource.generation == 1 && condition("Reconciled").status == """#).unwrap();
//!
//! // Per resource: bind the variables (JSON is borrowed, not copied), evaluate.
//! let evaluator = env.evaluator();
//! let resource = json!({"id": "c1", "generation": 1, "status": {"conditions": []}});
//! let mut scope = evaluator.scope();
//! scope.bind_json("resource", &resource);
//! assert!(scope.evaluate_bool(&is_new).unwrap());
//! # let _ = Value::from(true);
//! ```
//!
//! # Pieces
//! * [`Environment`] — what expressions may use: the CEL standard library, the `strings`,
//!   `lists`, `math` and `base64` extensions, HyperFleet's helper functions ([`hyperfleet`]),
//!   and functions of your own ([`EnvironmentBuilder::function`]). Cheap to clone; `Send + Sync`.
//! * [`Expression`] — a compiled expression that remembers its source, for error messages;
//!   `Send + Sync`, compile once and share.
//! * [`Evaluator`] and [`Scope`] — an evaluator holds the functions (build one per thread or
//!   task, reuse it for many evaluations); a scope holds one evaluation's variables, and
//!   results of earlier expressions can be bound into it ([`Scope::evaluate_and_bind`]) so
//!   later ones use them, which is how HyperFleet's ordered `params` work.
//! * [`Value`] — a result, convertible to JSON, bool, string, int.
//!
//! # Semantics worth knowing (pinned by the golden tests)
//! * JSON integers are CEL `int`, other numbers `double`; `null` is `null`.
//! * Selecting a missing map key is an evaluation error (`No such key: x`), as in cel-go; use
//!   `has(a.b)`, `a.?b.orValue(d)` or `dig(a, "b.c")` where a field may be absent.
//! * Results convert to JSON with timestamps as RFC 3339 strings (cel-go's string form),
//!   durations as protobuf JSON strings (`"1800s"`), bytes as base64, and an optional as its
//!   value or `null`.

mod environment;
mod error;
mod evaluation;
mod expression;
pub mod hyperfleet;
mod json;
mod value;

pub use environment::{Environment, EnvironmentBuilder};
pub use error::{CompileError, EnvironmentError, EvalError, FunctionError, ValueError};
pub use evaluation::{Evaluator, Scope};
pub use expression::{Expression, FieldUse};
pub use hyperfleet::{Clock, system_clock};
pub use value::Value;

/// JSON, as callers hold it.
pub use serde_json::Value as Json;

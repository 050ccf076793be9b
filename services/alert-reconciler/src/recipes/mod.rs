//! The recipe registry: what can run, for which alerts, and how it is kept current.
//!
//! * [`spec`] — Euphrosyne's ConfigMap format plus `match`, `timeout`, `env`, `args`,
//!   `service_account`; parsing with precise errors.
//! * [`matcher`] — Alertmanager-style label matchers for `match`.
//! * [`source`] — reading from a file or a ConfigMap, re-reading on change, last good set.

pub mod matcher;
pub mod source;
pub mod spec;

pub use matcher::MatcherError;
pub use source::{RecipeRegistry, RegistryStatus};
pub use spec::{InvalidRecipe, Recipe, RecipeError, RecipeKind, RecipeSet, is_dns_label};

//! alert-reconciler: alerts → parallel debugging recipes → chat with approval → action
//! recipes, with nothing lost on restart.
//!
//! The flow, and the module that owns each step:
//! 1. [`intake`] consumes alert events (`alertmanager.#` on `<ns>.webhooks`; Euphrosyne's
//!    `POST /webhook` publishes there too, see [`api`]) and moves incidents through the state
//!    machine of [`incident`], keyed by `groupKey`, in PostgreSQL ([`store`]).
//! 2. The [`supervisor`] (one per namespace, by advisory lock) drives each [`run`]: recipes
//!    from the [`recipes`] registry are launched by an [`executor`] (Kubernetes Jobs or local
//!    processes) and answer over Redis ([`results`]).
//! 3. A completed run becomes a [`report`] in the chat outbox, sent by [`outbox`] to the
//!    sinks of [`chat`] (Webex with approve buttons, Euphrosyne's bot, a chat webhook).
//! 4. Approvals ([`approvals`]) — Webex callbacks or `POST /api/actions` — start action runs,
//!    whose outcome is reported the same way.
//!
//! [`app`] wires it together; [`config`] reads flags and environment; [`recipe_cli`] is the
//! `steadfast-recipe` command shell recipes use to report.

pub mod alert;
pub mod api;
pub mod app;
pub mod approvals;
pub mod chat;
pub mod cli;
pub mod config;
pub mod context;
pub mod executor;
pub mod incident;
pub mod intake;
pub mod metrics;
pub mod outbox;
pub mod recipe_cli;
pub mod recipes;
pub mod report;
pub mod results;
pub mod run;
pub mod store;
pub mod supervisor;

pub use app::{App, AppError};
pub use config::{Cli, Config};

/// Why `--check-config` refuses a recipes file it can read offline.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error("cannot read recipes file `{}`: {source}", path.display())]
    ReadRecipes {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("recipes file `{}`: {source}", path.display())]
    Recipes {
        path: std::path::PathBuf,
        source: recipes::RecipeError,
    },
}

/// Validates what `--check-config` can check offline: the configuration (already parsed)
/// and a recipe file. Returns the summary to print.
pub fn check_config(config: &Config) -> Result<String, CheckError> {
    if let config::RecipeSource::File(path) = &config.recipes {
        let text = std::fs::read_to_string(path).map_err(|source| CheckError::ReadRecipes {
            path: path.clone(),
            source,
        })?;
        let invalid = |source| CheckError::Recipes {
            path: path.clone(),
            source,
        };
        let set =
            recipes::RecipeSet::parse(&text, path.parent().map(Into::into)).map_err(invalid)?;
        if matches!(config.executor, config::ExecutorConfig::Kubernetes { .. }) {
            set.check_for_kubernetes().map_err(invalid)?;
        }
    }
    Ok(config.summary())
}

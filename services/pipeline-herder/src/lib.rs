//! pipeline-herder: retries GitLab CI jobs that failed for known transient reasons (a full
//! disk, a failed image pull, a network blip), after a delay that gives the infrastructure
//! time to recover — and never retries the same failure twice.
//!
//! Flow: a GitLab Job Hook arrives as a CloudEvent (`#.build` on `<ns>.webhooks`, published
//! by the webhook-receiver) → [`jobs`] decides with [`decide`] (the job's log tail through
//! [`gitlab`], the first matching [`matchers`] entry, retry limit, newest pipeline, pause
//! switch) → the decision and its notification go into the [`ledger`] in one transaction →
//! a retry is queued with a delay (`publish_delayed` into `<ns>.pipeline-herder.retries`) →
//! [`retries`] claims it when due and calls GitLab's retry API once → [`notify`] publishes
//! every decision to `<ns>.notifications` and, optionally, to chat.
//!
//! * [`config`] — the YAML file and the environment; [`cli`] — `serve` and `check`;
//! * [`hook`] — the Job Hook payload and the job it describes;
//! * [`matchers`] — CKI-compatible matchers, compiled into one multi-pattern scanner;
//! * [`gitlab`] — the REST API client (retries 5xx/429/timeouts, never a double retry);
//! * [`decide`] — the policy, shared with `check --job-url`; [`check`] — that command;
//! * [`ledger`] — PostgreSQL: decisions, outbox, pause switch; [`pause`] — the switch;
//! * [`herder`] — what both consumers share; [`jobs`], [`retries`] — the consumers;
//! * [`notify`] — notifications and chat; [`api`] — pause/resume/decisions over HTTP;
//! * [`metrics`] — CKI's metric names plus ours; [`app`] — wiring and shutdown.

pub mod api;
pub mod app;
pub mod check;
pub mod cli;
pub mod config;
pub mod decide;
pub mod gitlab;
pub mod herder;
pub mod hook;
pub mod jobs;
pub mod ledger;
pub mod matchers;
pub mod metrics;
pub mod notify;
pub mod pause;
pub mod retries;

pub use app::{App, AppError, SERVICE};
pub use config::{Config, HerderSettings};

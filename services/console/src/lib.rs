//! console: one web page to see and steer every Steadfast service.
//!
//! It keeps no state of its own beyond sessions (in Redis): it reads the other services
//! through their HTTP APIs ([`upstream`]) and RabbitMQ through `steadfast_messaging::admin`,
//! the same code `steadfastctl` runs.
//!
//! * [`config`], [`cli`] — settings and the command line;
//! * [`auth`] — the proxy or the users file, sessions, CSRF, roles;
//! * [`pages`] — the HTML, rendered on the server; [`assets`] — CSS and a little script;
//! * [`app`] — the router, the middleware order and start-up.

pub mod app;
pub mod assets;
pub mod auth;
pub mod cli;
pub mod config;
pub mod form;
pub mod metrics;
pub mod pages;
pub mod upstream;

pub use app::{App, AppError};
pub use config::Config;

pub const SERVICE: &str = "console";

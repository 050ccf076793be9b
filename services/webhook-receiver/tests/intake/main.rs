//! The intakes against the real broker: what GitLab, Alertmanager and signed generic senders
//! send, what lands on the queue, and what every bad request gets back.

#[path = "../common/mod.rs"]
mod common;

mod alertmanager;
mod bad_input;
mod gitlab;
mod hooks;

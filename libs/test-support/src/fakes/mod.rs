//! HTTP fakes of the systems outside the project. Each is a real HTTP server (axum on an
//! ephemeral loopback port) with in-memory state and a record of what it was asked, so tests
//! exercise our real clients, and the local dev stack can run against them.

pub mod gitlab;
pub mod kube;
pub mod webex;

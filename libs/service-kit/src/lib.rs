//! What every Steadfast service shares, so each `main.rs` stays a page long.
//!
//! * [`settings`] — the common environment (`STEADFAST_NAMESPACE`, `AMQP_URL`, `REDIS_URL`,
//!   `DATABASE_URL`, `HTTP_LISTEN`, `METRICS_LISTEN`, `LOG_LEVEL`, `LOG_FORMAT`, `LOKI_URL`)
//!   as clap arguments, so flags override environment variables which override defaults.
//! * [`config`] — YAML files with errors that name the file, line and field; Go-style
//!   durations (`500ms`, `1h30m`).
//! * [`probes`] — `/healthz` and `/readyz` (JSON body naming each check, 503 when one fails)
//!   and `/metrics`.
//! * [`server`] — binding listeners and serving them until shutdown.
//! * [`shutdown`] — SIGTERM/SIGINT → cancellation; a second signal exits at once.
//! * [`http_client`] — outbound HTTP with retries on 408/429/5xx and network errors.
//! * [`auth`] — constant-time token comparison, basic auth, HMAC signatures.
//! * [`problem`] — RFC 9457 problem responses, and JSON body parsing with precise errors.
//! * [`host`] — the one start-up order every service runs in (load → telemetry →
//!   `--check-config` → build → run until a signal), behind the [`host::Service`] trait.
//! * [`process`] — the exit codes and the run-until-signalled tail the host is built on.

pub mod auth;
pub mod config;
pub mod host;
pub mod http_client;
pub mod probes;
pub mod problem;
pub mod process;
pub mod server;
pub mod settings;
pub mod shutdown;

/// Makes rustls use the ring provider process-wide. Every TLS client in the workspace is built
/// on ring; installing it explicitly avoids rustls' "cannot determine the process-level
/// CryptoProvider" panic if another provider ever appears in the dependency tree.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Exit code for an invalid configuration (`EX_CONFIG` from sysexits.h).
pub const EXIT_INVALID_CONFIG: u8 = 78;

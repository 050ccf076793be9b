//! Test-only helpers (a dev-dependency of every crate, never a normal one).
//!
//! Tests talk to the real RabbitMQ, Redis and PostgreSQL on loopback. Each test isolates
//! itself: its own broker namespace ([`TestBroker`]), its own database ([`TestDatabase`]), its
//! own Redis key and channel prefix ([`unique_name`]). Nothing waits with a bare sleep:
//! [`eventually`] polls a condition until a deadline and fails with a message that says what
//! was awaited.
//!
//! [`FaultProxy`] sits between one component and the broker to cut or stall its connection, so
//! outage behaviour is tested without stopping the shared broker.
//!
//! [`monitoring`] checks that every metric the alert rules and dashboards name is exported.
//!
//! `otlp` (feature `otlp`) is an in-process OTLP/HTTP collector, for tests of traces.
//!
//! The stand-ins for systems outside the project (GitLab, the Kubernetes API, Webex, the
//! HyperFleet API) are crates of their own under `services/fakes/`.

mod broker;
mod database;
mod headers;
pub mod monitoring;
#[cfg(feature = "otlp")]
pub mod otlp;
mod proxy;
mod wait;
#[cfg(feature = "browser")]
pub mod webdriver;

pub use broker::{Probe, TestBroker, amqp_url};
pub use database::{TestDatabase, database_url};
pub use headers::HeaderLog;
pub use proxy::FaultProxy;
pub use wait::{eventually, eventually_async};

/// A name no other test uses: `<prefix>-<12 hex digits>`. For Redis keys and channels, too.
pub fn unique_name(prefix: &str) -> String {
    let id = uuid::Uuid::new_v4().simple().to_string();
    format!("{prefix}-{}", &id[..12])
}

/// Redis URL of the local test server (`REDIS_URL`, default `redis://127.0.0.1:6379/`).
pub fn redis_url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/".into())
}

/// Writes an executable `/bin/sh` script `name` with `body` into `dir` (a recipe, a hook) and
/// returns its path.
pub fn write_script(dir: &std::path::Path, name: &str, body: &str) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).expect("write the script");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
        .expect("make the script executable");
    path
}

/// Spawns an axum router on an ephemeral loopback port and returns its base URL.
pub async fn spawn_http(router: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind an ephemeral port");
    let addr = listener.local_addr().expect("local addr");
    tokio::spawn(async move {
        axum::serve(listener, router).await.expect("fake server");
    });
    format!("http://{addr}")
}

/// A message handler made from a closure, for tests of consumers.
pub struct FnHandler<F>(pub F);

impl<F, Fut> steadfast_messaging::Handler for FnHandler<F>
where
    F: Fn(steadfast_messaging::Incoming<serde_json::Value>) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = steadfast_messaging::Outcome> + Send,
{
    type Data = serde_json::Value;

    fn handle(
        &self,
        message: steadfast_messaging::Incoming<serde_json::Value>,
    ) -> impl std::future::Future<Output = steadfast_messaging::Outcome> + Send {
        (self.0)(message)
    }
}

/// Closes the broker connections whose name contains `needle` (through the management API),
/// as `rabbitmqctl close_all_connections` would, but only for the test's own components so
/// parallel tests are unaffected. The management API lists a new connection only after its
/// next statistics tick, so this first waits until `expected` matching connections are listed.
/// Returns how many were closed.
pub async fn close_broker_connections(needle: &str, expected: usize) -> usize {
    let base = std::env::var("RABBITMQ_MANAGEMENT_URL")
        .unwrap_or_else(|_| "http://127.0.0.1:15672".into());
    let client = reqwest::Client::new();
    let listed = eventually_async(
        &format!("{expected} broker connections named like `{needle}`"),
        std::time::Duration::from_secs(20),
        || async {
            let connections: Vec<serde_json::Value> = client
                .get(format!(
                    "{base}/api/connections?columns=name,client_properties"
                ))
                .basic_auth("guest", Some("guest"))
                .send()
                .await
                .ok()?
                .json()
                .await
                .ok()?;
            let names: Vec<String> = connections
                .iter()
                .filter(|c| {
                    c["client_properties"]["connection_name"]
                        .as_str()
                        .is_some_and(|n| n.contains(needle))
                })
                .filter_map(|c| c["name"].as_str().map(str::to_owned))
                .collect();
            (names.len() >= expected).then_some(names)
        },
    )
    .await;
    let mut closed = 0;
    for name in listed {
        let response = client
            .delete(management_path(&base, &["api", "connections", &name]))
            .basic_auth("guest", Some("guest"))
            .header("X-Reason", "test: simulated broker connection loss")
            .send()
            .await
            .expect("close connection");
        if response.status().is_success() {
            closed += 1;
        }
    }
    closed
}

/// Logs of the code under test, on stderr, when `TEST_LOG` is set (e.g. `TEST_LOG=debug`).
pub fn init_test_logging() {
    static INIT: std::sync::Once = std::sync::Once::new();
    INIT.call_once(|| {
        if let Ok(level) = std::env::var("TEST_LOG") {
            let _ = tracing_subscriber::fmt()
                .with_env_filter(tracing_subscriber::EnvFilter::new(level))
                .with_test_writer()
                .try_init();
        }
    });
}

/// `base` + path segments, each percent-encoded (connection names contain spaces and `>`).
pub(crate) fn management_path(base: &str, segments: &[&str]) -> url::Url {
    let mut url = url::Url::parse(base).expect("valid management URL");
    url.path_segments_mut()
        .expect("base URL")
        .pop_if_empty()
        .extend(segments);
    url
}

/// The variable that makes missing peer cases a failure instead of a skip (`.ci/run` sets it,
/// so CI can never pass by skipping them).
pub const REQUIRE_SHARED_VAR: &str = "STEADFAST_REQUIRE_SHARED";

/// The `shared/` directory beside the repository (HyperFleet's OpenAPI spec, Sentinel configs,
/// Adapter cases), or `STEADFAST_SHARED_DIR`; `None` when neither holds `peer-cases/`. Those files are read in
/// place, never copied into the project, so a user's clone has none of them.
pub fn find_shared_dir() -> Option<std::path::PathBuf> {
    let has_peer_cases = |dir: &std::path::Path| dir.join("peer-cases").is_dir();
    if let Some(dir) = std::env::var_os("STEADFAST_SHARED_DIR") {
        let dir = std::path::PathBuf::from(dir);
        return has_peer_cases(&dir).then_some(dir);
    }
    let manifest = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest
        .ancestors()
        .map(|ancestor| ancestor.join("shared"))
        .find(|candidate| has_peer_cases(candidate))
}

/// Whether the calling test can run: true when the peer cases are there. When they are not,
/// says on stderr that the test skipped and why, and returns false, unless
/// [`REQUIRE_SHARED_VAR`] is set, where it panics. Use it through [`skip_without_peer_cases!`].
pub fn peer_cases_present() -> bool {
    if find_shared_dir().is_some() {
        return true;
    }
    let test = std::thread::current()
        .name()
        .unwrap_or("this test")
        .to_owned();
    if std::env::var_os(REQUIRE_SHARED_VAR).is_some_and(|v| !v.is_empty() && v != "0") {
        panic!(
            "{test}: ../shared/peer-cases not found and {REQUIRE_SHARED_VAR} is set; put the \
             shared/ directory beside the repository or point STEADFAST_SHARED_DIR at it"
        );
    }
    eprintln!(
        "SKIPPED {test}: needs HyperFleet's peer cases (../shared/peer-cases, or \
         STEADFAST_SHARED_DIR), which are not in a plain clone"
    );
    false
}

/// Returns from the calling test when HyperFleet's peer cases are absent (saying so on
/// stderr); fails it instead when `STEADFAST_REQUIRE_SHARED` is set. The first line of every
/// test that reads `../shared`.
#[macro_export]
macro_rules! skip_without_peer_cases {
    () => {
        if !$crate::peer_cases_present() {
            return;
        }
    };
}

/// The `shared/` directory beside the repository, for a test that already passed
/// [`skip_without_peer_cases!`] (or a benchmark). Panics with a clear message when it is absent.
pub fn shared_dir() -> std::path::PathBuf {
    find_shared_dir().unwrap_or_else(|| {
        panic!(
            "../shared (with peer-cases/) not found beside the repository; set \
             STEADFAST_SHARED_DIR to the directory holding HyperFleet's peer cases"
        )
    })
}

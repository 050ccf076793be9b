//! `/healthz`, `/readyz` and `/metrics`.
//!
//! Liveness answers "should Kubernetes restart me?" — 200 unless a registered liveness check
//! (e.g. the sentinel's dead man's switch) fails. Readiness answers "should I get traffic?" —
//! every named check must pass; the JSON body names each one with a detail, so an operator
//! reading `curl /readyz` sees *which* dependency is down. Readiness turns false as soon as
//! shutdown begins, so the load balancer stops sending requests before the listener closes.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use prometheus::Registry;
use serde_json::{Map, Value, json};

/// The result of one check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    pub ok: bool,
    pub detail: String,
}

impl Check {
    pub fn ok(detail: impl Into<String>) -> Self {
        Self {
            ok: true,
            detail: detail.into(),
        }
    }

    pub fn failing(detail: impl Into<String>) -> Self {
        Self {
            ok: false,
            detail: detail.into(),
        }
    }
}

impl From<(bool, String)> for Check {
    fn from((ok, detail): (bool, String)) -> Self {
        Self { ok, detail }
    }
}

type CheckFn = Arc<dyn Fn() -> Check + Send + Sync>;

#[derive(Default)]
struct Inner {
    readiness: RwLock<Vec<(String, CheckFn)>>,
    liveness: RwLock<Vec<(String, CheckFn)>>,
    shutting_down: AtomicBool,
}

/// The probe registry of one service instance; clones share it.
#[derive(Clone, Default)]
pub struct Probes {
    inner: Arc<Inner>,
}

impl Probes {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a readiness check named `name` (e.g. `broker`, `database`, `spool`).
    pub fn readiness(&self, name: &str, check: impl Fn() -> Check + Send + Sync + 'static) {
        write(&self.inner.readiness).push((name.to_owned(), Arc::new(check)));
    }

    /// Adds a liveness check; a failing one makes `/healthz` answer 503.
    pub fn liveness(&self, name: &str, check: impl Fn() -> Check + Send + Sync + 'static) {
        write(&self.inner.liveness).push((name.to_owned(), Arc::new(check)));
    }

    /// From now on `/readyz` answers 503 with check `shutdown`.
    pub fn begin_shutdown(&self) {
        self.inner.shutting_down.store(true, Ordering::SeqCst);
    }

    pub fn is_shutting_down(&self) -> bool {
        self.inner.shutting_down.load(Ordering::SeqCst)
    }

    /// Runs every readiness check.
    pub fn ready(&self) -> (bool, Vec<(String, Check)>) {
        let mut results: Vec<(String, Check)> = read(&self.inner.readiness)
            .iter()
            .map(|(name, check)| (name.clone(), check()))
            .collect();
        if self.is_shutting_down() {
            results.push(("shutdown".into(), Check::failing("shutting down")));
        }
        (results.iter().all(|(_, c)| c.ok), results)
    }

    /// Runs every liveness check.
    pub fn alive(&self) -> (bool, Vec<(String, Check)>) {
        let results: Vec<(String, Check)> = read(&self.inner.liveness)
            .iter()
            .map(|(name, check)| (name.clone(), check()))
            .collect();
        (results.iter().all(|(_, c)| c.ok), results)
    }
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn report(ok: bool, good: &str, bad: &str, checks: Vec<(String, Check)>) -> Response {
    let mut body = Map::new();
    for (name, check) in checks {
        body.insert(
            name,
            json!({"status": if check.ok { "ok" } else { "error" }, "detail": check.detail}),
        );
    }
    let status = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        axum::Json(json!({"status": if ok { good } else { bad }, "checks": Value::Object(body)})),
    )
        .into_response()
}

async fn healthz(State(probes): State<Probes>) -> Response {
    let (ok, checks) = probes.alive();
    report(ok, "ok", "error", checks)
}

async fn readyz(State(probes): State<Probes>) -> Response {
    let (ok, checks) = probes.ready();
    report(ok, "ready", "not ready", checks)
}

/// `/healthz` and `/readyz`.
pub fn router(probes: Probes) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(probes)
}

/// `/metrics` in the Prometheus text format.
pub fn metrics_router(registry: Registry) -> Router {
    Router::new().route(
        "/metrics",
        get(move || {
            let registry = registry.clone();
            async move {
                (
                    [(
                        header::CONTENT_TYPE,
                        steadfast_telemetry::metrics::CONTENT_TYPE,
                    )],
                    steadfast_telemetry::metrics::render(&registry),
                )
            }
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::Request;
    use http_body_util::BodyExt;
    use std::sync::atomic::AtomicBool;
    use tower::ServiceExt;

    async fn get_json(router: Router, path: &str) -> (StatusCode, Value) {
        let response = router
            .oneshot(Request::get(path).body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        (status, serde_json::from_slice(&bytes).unwrap())
    }

    #[tokio::test]
    async fn readiness_names_each_check_and_fails_when_one_fails() {
        let probes = Probes::new();
        let broker_up = Arc::new(AtomicBool::new(true));
        let flag = broker_up.clone();
        probes.readiness("broker", move || {
            if flag.load(Ordering::SeqCst) {
                Check::ok("connected")
            } else {
                Check::failing("disconnected; reconnecting")
            }
        });
        probes.readiness("spool", || Check::ok("empty"));

        let (status, body) = get_json(router(probes.clone()), "/readyz").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["status"], "ready");
        assert_eq!(body["checks"]["broker"]["detail"], "connected");

        broker_up.store(false, Ordering::SeqCst);
        let (status, body) = get_json(router(probes.clone()), "/readyz").await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(body["status"], "not ready");
        assert_eq!(body["checks"]["broker"]["status"], "error");
        assert_eq!(body["checks"]["spool"]["status"], "ok");
    }

    #[tokio::test]
    async fn shutdown_makes_readiness_fail_but_not_liveness() {
        let probes = Probes::new();
        probes.begin_shutdown();
        let (status, body) = get_json(router(probes.clone()), "/readyz").await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(body["checks"]["shutdown"]["detail"], "shutting down");
        let (status, body) = get_json(router(probes), "/healthz").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["status"], "ok");
    }

    #[tokio::test]
    async fn failing_liveness_answers_503() {
        let probes = Probes::new();
        probes.liveness("poll", || Check::failing("poll stale"));
        let (status, body) = get_json(router(probes), "/healthz").await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(body["checks"]["poll"]["detail"], "poll stale");
    }

    #[tokio::test]
    async fn metrics_are_rendered() {
        let registry = Registry::new();
        let c = prometheus::IntCounter::new("probe_demo_total", "demo").unwrap();
        registry.register(Box::new(c.clone())).unwrap();
        c.inc();
        let response = metrics_router(registry)
            .oneshot(Request::get("/metrics").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let text = String::from_utf8(
            response
                .into_body()
                .collect()
                .await
                .unwrap()
                .to_bytes()
                .to_vec(),
        )
        .unwrap();
        assert!(text.contains("probe_demo_total 1"));
    }
}

//! Loki push and OTLP export reach their endpoints (fakes that record what they receive).
//! One test per binary: the logger is process-global.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::post;
use steadfast_telemetry::{LogFormat, TelemetryConfig};
use steadfast_test_support::{eventually, spawn_http};

type Seen = Arc<Mutex<Vec<(String, String, usize)>>>;

async fn record(
    State(seen): State<Seen>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Bytes,
) -> &'static str {
    let content_type = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    seen.lock()
        .unwrap()
        .push((uri.path().to_owned(), content_type, body.len()));
    "ok"
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_reach_loki_and_spans_reach_the_otlp_collector() {
    let seen: Seen = Arc::default();
    let fake = Router::new()
        .route("/loki/api/v1/push", post(record))
        .route("/v1/traces", post(record))
        .with_state(seen.clone());
    let base = spawn_http(fake).await;

    let guard = steadfast_telemetry::init(&TelemetryConfig {
        service: "telemetry-test".into(),
        level: "info".into(),
        format: LogFormat::Json,
        loki_url: Some(format!("{base}/")),
        otlp_endpoint: Some(base.clone()),
        otlp_protocol: None,
    })
    .expect("telemetry init");

    {
        let span = tracing::info_span!("sentinel.poll", cycle = 1);
        let _entered = span.enter();
        tracing::info!(event_id = "e-1", "published a reconcile event");
    }
    guard.shutdown().await;

    let paths = eventually(
        "a Loki push and an OTLP export",
        Duration::from_secs(10),
        || {
            let seen = seen.lock().unwrap();
            let loki = seen
                .iter()
                .find(|(p, _, _)| p == "/loki/api/v1/push")
                .cloned();
            let otlp = seen.iter().find(|(p, _, _)| p == "/v1/traces").cloned();
            loki.zip(otlp)
        },
    )
    .await;
    assert_eq!(paths.0.1, "application/x-protobuf", "Loki push API format");
    assert!(paths.0.2 > 0);
    assert_eq!(paths.1.1, "application/x-protobuf", "OTLP/HTTP protobuf");
    assert!(paths.1.2 > 0);
}

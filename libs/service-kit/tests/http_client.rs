//! The retrying HTTP client against a real HTTP server that fails on cue.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use axum::routing::get;
use steadfast_service_kit::http_client::{BackoffKind, HttpClient, HttpError, RetryPolicy};
use steadfast_test_support::{HeaderLog, spawn_http};

fn fast_policy() -> RetryPolicy {
    RetryPolicy {
        kind: BackoffKind::Exponential,
        base_delay: Duration::from_millis(20),
        max_delay: Duration::from_millis(100),
        jitter: 0.1,
        max_attempts: Some(5),
        max_elapsed: Some(Duration::from_secs(5)),
    }
}

/// A server answering `script[n]` to the n-th request, then the last entry forever.
async fn scripted(script: Vec<u16>) -> (String, Arc<AtomicUsize>) {
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    let router = Router::new().route(
        "/thing",
        get(move || {
            let n = counter.fetch_add(1, Ordering::SeqCst);
            let code = script[n.min(script.len() - 1)];
            async move {
                (
                    StatusCode::from_u16(code).unwrap(),
                    format!("answer {code}"),
                )
            }
        }),
    );
    (spawn_http(router).await, calls)
}

#[tokio::test]
async fn retries_503_twice_then_succeeds() {
    let (base, calls) = scripted(vec![503, 503, 200]).await;
    let client = HttpClient::new(Duration::from_secs(2), fast_policy()).unwrap();
    let mut failures = Vec::new();
    let response = client
        .send_observed(
            |c| c.get(format!("{base}/thing")),
            |e| failures.push(e.status()),
        )
        .await
        .unwrap();
    assert_eq!(response.text().await.unwrap(), "answer 200");
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    assert_eq!(failures, vec![Some(StatusCode::SERVICE_UNAVAILABLE); 2]);
}

#[tokio::test]
async fn a_4xx_is_final_at_once() {
    let (base, calls) = scripted(vec![400, 200]).await;
    let client = HttpClient::new(Duration::from_secs(2), fast_policy()).unwrap();
    let err = client
        .send(|c| c.get(format!("{base}/thing")))
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(StatusCode::BAD_REQUEST));
    assert!(!err.is_transient());
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert!(
        err.to_string()
            .ends_with("answered 400 Bad Request: answer 400"),
        "{err}"
    );
}

#[tokio::test]
async fn gives_up_after_max_attempts() {
    let (base, calls) = scripted(vec![502]).await;
    let client = HttpClient::new(Duration::from_secs(2), fast_policy()).unwrap();
    let err = client
        .send(|c| c.get(format!("{base}/thing")))
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(StatusCode::BAD_GATEWAY));
    assert!(err.is_transient());
    assert_eq!(calls.load(Ordering::SeqCst), 5);
}

#[tokio::test]
async fn network_errors_are_transient() {
    // A port nothing listens on.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let policy = RetryPolicy {
        max_attempts: Some(2),
        ..fast_policy()
    };
    let client = HttpClient::new(Duration::from_secs(1), policy).unwrap();
    let err = client
        .send(|c| c.get(format!("http://{addr}/thing")))
        .await
        .unwrap_err();
    assert!(matches!(err, HttpError::Transport { .. }), "{err}");
    assert!(err.is_transient());
}

/// A server recording the `traceparent` header of each request, answering `script` in turn.
async fn recording(script: Vec<u16>) -> (String, HeaderLog) {
    let seen = HeaderLog::traceparent();
    let record = seen.clone();
    let router = Router::new().route(
        "/thing",
        get(move |headers: axum::http::HeaderMap| {
            let count = record.record(&headers);
            let code = script[(count - 1).min(script.len() - 1)];
            async move { StatusCode::from_u16(code).unwrap() }
        }),
    );
    (spawn_http(router).await, seen)
}

#[tokio::test]
async fn with_spans_exported_every_attempt_carries_the_callers_trace() {
    use steadfast_telemetry::trace;
    use tracing::Instrument;

    let (base, seen) = recording(vec![503, 200]).await;
    let client = HttpClient::new(Duration::from_secs(2), fast_policy()).unwrap();
    client
        .send(|c| c.get(format!("{base}/thing")))
        .await
        .unwrap();
    assert_eq!(seen.take(), vec![None, None], "no tracer, no header");

    let _tracer = trace::testing::local_tracer();
    let caller = tracing::info_span!("handler");
    let caller_tp = trace::traceparent(&caller).unwrap();
    client
        .send(|c| c.get(format!("{base}/thing")))
        .instrument(caller)
        .await
        .unwrap();
    // `00-<trace id>-<span id>-01`
    let headers: Vec<Vec<String>> = seen
        .values()
        .iter()
        .map(|h| {
            let h = h.as_deref().expect("a traceparent header");
            h.split('-').map(str::to_owned).collect()
        })
        .collect();
    assert_eq!(headers.len(), 2, "the 503 and the retry");
    for header in &headers {
        assert_eq!(header[1], caller_tp.trace_id(), "the caller's trace");
        assert_ne!(header[2], caller_tp.parent_id(), "a client span's id");
    }
    assert_ne!(headers[0][2], headers[1][2], "one client span per attempt");
}

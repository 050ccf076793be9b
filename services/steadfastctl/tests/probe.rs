//! `steadfastctl probe`, the containers' healthcheck, as `docker inspect` would show it: the
//! real binary against a small HTTP server.

use std::process::Output;

use axum::Router;
use axum::http::StatusCode;
use axum::routing::get;

async fn probe(args: &[&str]) -> Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_steadfastctl"))
        .arg("probe")
        .args(args)
        // The probe needs no broker: an unusable one must not matter.
        .env("AMQP_URL", "amqp://nowhere.invalid:1/%2f")
        .env("STEADFAST_NAMESPACE", "not a namespace!")
        .output()
        .await
        .expect("run steadfastctl probe")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[tokio::test]
async fn a_ready_service_passes_and_its_answer_is_printed() {
    let base = steadfast_test_support::spawn_http(
        Router::new().route("/readyz", get(|| async { "ready: broker ok, spool ok" })),
    )
    .await;
    let out = probe(&[&format!("{base}/readyz")]).await;
    assert!(out.status.success(), "stderr: {}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "200 OK ready: broker ok, spool ok\n");
}

#[tokio::test]
async fn a_service_that_is_not_ready_fails_with_its_status_and_report() {
    let base = steadfast_test_support::spawn_http(Router::new().route(
        "/readyz",
        get(|| async {
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "{\"broker\": \"connecting:\n connection refused\"}",
            )
        }),
    ))
    .await;
    let out = probe(&[&format!("{base}/readyz")]).await;
    assert!(!out.status.success());
    assert_eq!(
        text(&out.stderr),
        format!(
            "error: GET {base}/readyz answered 503 Service Unavailable: {{\"broker\": \"connecting: connection refused\"}}\n"
        )
    );
}

#[tokio::test]
async fn a_long_report_is_cut() {
    let base = steadfast_test_support::spawn_http(Router::new().route(
        "/readyz",
        get(|| async { (StatusCode::SERVICE_UNAVAILABLE, "é".repeat(2000)) }),
    ))
    .await;
    let out = probe(&[&format!("{base}/readyz")]).await;
    let stderr = text(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.ends_with(&format!("{}…\n", "é".repeat(512))),
        "{stderr}"
    );
}

#[tokio::test]
async fn nothing_listening_fails_naming_the_url_once() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/readyz", listener.local_addr().unwrap());
    drop(listener);
    let out = probe(&[&url]).await;
    let stderr = text(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.starts_with(&format!("error: GET {url}: error sending request")),
        "{stderr}"
    );
    assert_eq!(stderr.matches(&url).count(), 1, "{stderr}");
}

#[tokio::test]
async fn a_service_that_hangs_fails_after_the_timeout() {
    let base = steadfast_test_support::spawn_http(Router::new().route(
        "/readyz",
        get(|| async { std::future::pending::<&str>().await }),
    ))
    .await;
    let out = probe(&["--timeout", "200ms", &format!("{base}/readyz")]).await;
    let stderr = text(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("timed out"), "{stderr}");
}

#[tokio::test]
async fn a_url_that_is_not_http_is_refused_before_any_request() {
    let out = probe(&["file:///etc/passwd"]).await;
    assert!(!out.status.success());
    assert_eq!(
        text(&out.stderr),
        "error: file:///etc/passwd is not a valid http(s) URL: scheme file is not http or https\n"
    );
    let out = probe(&["not a url"]).await;
    assert_eq!(
        text(&out.stderr),
        "error: not a url is not a valid http(s) URL: relative URL without a base\n"
    );
}

//! Every request a sender can get wrong: the exact status and RFC 9457 problem body, and
//! nothing published for any of them.

use reqwest::StatusCode;
use serde_json::{Value, json};
use steadfast_service_kit::auth::hmac_sha256_hex;
use steadfast_test_support::TestBroker;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::common::*;

const LIMIT: usize = 4096;

fn problem(status: StatusCode, detail: &str) -> Value {
    json!({
        "type": "about:blank",
        "title": status.canonical_reason().unwrap(),
        "status": status.as_u16(),
        "detail": detail,
    })
}

async fn receiver(tb: &TestBroker) -> Receiver {
    let mut config = config(tb);
    config.max_body_bytes = LIMIT;
    config.hooks = vec![crate::hooks::grafana()];
    Receiver::start(config).await
}

/// What is wrong, the body, the headers, and the status and problem body expected back.
type Case<'a> = (&'a str, String, Vec<(&'a str, &'a str)>, StatusCode, Value);

const JSON: (&str, &str) = ("content-type", "application/json");
const TOKEN: (&str, &str) = ("x-gitlab-token", GITLAB_SECRET);

#[tokio::test]
async fn gitlab_bad_requests_get_precise_problems_and_publish_nothing() {
    let tb = TestBroker::new().await;
    let receiver = receiver(&tb).await;
    let probe = tb.probe("all", &tb.name("webhooks"), "#").await;
    let unauthorized = problem(StatusCode::UNAUTHORIZED, "missing or invalid credentials");
    let big = format!(
        "{{\"object_kind\":\"build\",\"pad\":\"{}\"}}",
        "x".repeat(LIMIT)
    );

    let cases: Vec<Case<'_>> = vec![
        (
            "missing token",
            JOB_HOOK.into(),
            vec![JSON],
            StatusCode::UNAUTHORIZED,
            unauthorized.clone(),
        ),
        (
            "wrong token (same answer)",
            JOB_HOOK.into(),
            vec![JSON, ("x-gitlab-token", "guess")],
            StatusCode::UNAUTHORIZED,
            unauthorized.clone(),
        ),
        (
            "no content type",
            JOB_HOOK.into(),
            vec![TOKEN],
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            problem(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "expected Content-Type application/json, got none",
            ),
        ),
        (
            "form content type",
            JOB_HOOK.into(),
            vec![TOKEN, ("content-type", "application/x-www-form-urlencoded")],
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            problem(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "expected Content-Type application/json, got application/x-www-form-urlencoded",
            ),
        ),
        (
            "over the body limit",
            big,
            vec![JSON, TOKEN],
            StatusCode::PAYLOAD_TOO_LARGE,
            problem(
                StatusCode::PAYLOAD_TOO_LARGE,
                "the request body is larger than the limit of 4096 bytes",
            ),
        ),
        (
            "malformed JSON",
            "{\"object_kind\": \"build\",".into(),
            vec![JSON, TOKEN],
            StatusCode::BAD_REQUEST,
            problem(
                StatusCode::BAD_REQUEST,
                "malformed JSON: EOF while parsing an object at line 1 column 24",
            ),
        ),
        (
            "not an object",
            "[1, 2]".into(),
            vec![JSON, TOKEN],
            StatusCode::BAD_REQUEST,
            problem(
                StatusCode::BAD_REQUEST,
                "invalid request body: expected a JSON object, got an array",
            ),
        ),
        (
            "no event kind",
            r#"{"project": {"path_with_namespace": "a/b", "web_url": "https://gitlab.com/a/b"}}"#
                .into(),
            vec![JSON, TOKEN],
            StatusCode::BAD_REQUEST,
            problem(
                StatusCode::BAD_REQUEST,
                "cannot tell the event kind: the body has no `object_kind` and there is no X-Gitlab-Event header",
            ),
        ),
        (
            "no project",
            r#"{"object_kind": "build"}"#.into(),
            vec![JSON, TOKEN],
            StatusCode::BAD_REQUEST,
            problem(
                StatusCode::BAD_REQUEST,
                "cannot tell the project: the body has no `project.path_with_namespace` or `repository.homepage`",
            ),
        ),
        (
            "mistyped field",
            r#"{"object_kind": 5}"#.into(),
            vec![JSON, TOKEN],
            StatusCode::BAD_REQUEST,
            problem(
                StatusCode::BAD_REQUEST,
                "invalid GitLab webhook body: invalid type: integer `5`, expected a string at line 1 column 17",
            ),
        ),
        (
            "unusable idempotency key",
            JOB_HOOK.into(),
            vec![JSON, TOKEN, ("idempotency-key", "has space")],
            StatusCode::BAD_REQUEST,
            problem(
                StatusCode::BAD_REQUEST,
                "header Idempotency-Key must be 1 to 200 printable ASCII characters",
            ),
        ),
    ];

    for (what, body, headers, status, expected) in cases {
        let (got_status, got_body) = receiver.post("/gitlab", &body, &headers).await;
        assert_eq!(got_status, status, "{what}: {got_body}");
        assert_eq!(got_body, expected, "{what}");
    }
    assert_eq!(
        probe.depth().await,
        0,
        "no rejected request published anything"
    );

    // A body of exactly the limit is accepted.
    let mut exact = serde_json::from_str::<Value>(JOB_HOOK).unwrap().to_string();
    exact.push_str(&" ".repeat(LIMIT - exact.len()));
    let (status, _) = receiver.post("/gitlab", &exact, &[JSON, TOKEN]).await;
    assert_eq!(status, StatusCode::OK);
    receiver.stop().await;
}

#[tokio::test]
async fn a_chunked_body_over_the_limit_is_cut_off_with_413() {
    let tb = TestBroker::new().await;
    let receiver = receiver(&tb).await;
    let addr = receiver.base.trim_start_matches("http://").to_owned();
    let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
    // No Content-Length: the limit must be enforced while reading.
    let chunk = "x".repeat(1000);
    let mut request = format!(
        "POST /gitlab HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         X-Gitlab-Token: {GITLAB_SECRET}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    );
    for _ in 0..5 {
        request.push_str(&format!("{:x}\r\n{chunk}\r\n", chunk.len()));
    }
    request.push_str("0\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    assert!(response.starts_with("HTTP/1.1 413"), "{response}");
    assert!(
        response.contains(r#""detail":"the request body is larger than the limit of 4096 bytes""#),
        "{response}"
    );
    receiver.stop().await;
}

#[tokio::test]
async fn alertmanager_bad_requests_get_precise_problems() {
    let tb = TestBroker::new().await;
    let receiver = receiver(&tb).await;
    let probe = tb.probe("all", &tb.name("webhooks"), "#").await;
    let bearer = format!("Bearer {ALERTMANAGER_TOKEN}");
    let auth = ("authorization", bearer.as_str());
    let mut v3: Value = serde_json::from_str(ALERTMANAGER_NOTIFICATION).unwrap();
    v3["version"] = json!("3");
    let mut no_fingerprint: Value = serde_json::from_str(ALERTMANAGER_NOTIFICATION).unwrap();
    no_fingerprint["alerts"][1]
        .as_object_mut()
        .unwrap()
        .remove("fingerprint");

    let cases: Vec<Case<'_>> = vec![
        (
            "no credentials",
            ALERTMANAGER_NOTIFICATION.into(),
            vec![JSON],
            StatusCode::UNAUTHORIZED,
            problem(StatusCode::UNAUTHORIZED, "missing or invalid credentials"),
        ),
        (
            "wrong bearer",
            ALERTMANAGER_NOTIFICATION.into(),
            vec![JSON, ("authorization", "Bearer nope")],
            StatusCode::UNAUTHORIZED,
            problem(StatusCode::UNAUTHORIZED, "missing or invalid credentials"),
        ),
        (
            "text body",
            ALERTMANAGER_NOTIFICATION.into(),
            vec![auth, ("content-type", "text/plain")],
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            problem(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "expected Content-Type application/json, got text/plain",
            ),
        ),
        (
            "version 3",
            v3.to_string(),
            vec![JSON, auth],
            StatusCode::BAD_REQUEST,
            problem(
                StatusCode::BAD_REQUEST,
                "unsupported Alertmanager notification version \"3\"; expected \"4\"",
            ),
        ),
        (
            "alert without fingerprint",
            no_fingerprint.to_string(),
            vec![JSON, auth],
            StatusCode::BAD_REQUEST,
            problem(
                StatusCode::BAD_REQUEST,
                "invalid Alertmanager notification: alerts[1] has no `fingerprint` string",
            ),
        ),
        (
            "missing alerts",
            r#"{"version": "4", "groupKey": "{}", "receiver": "r"}"#.into(),
            vec![JSON, auth],
            StatusCode::BAD_REQUEST,
            problem(
                StatusCode::BAD_REQUEST,
                "invalid Alertmanager notification: missing field `alerts`",
            ),
        ),
    ];
    for (what, body, headers, status, expected) in cases {
        let (got_status, got_body) = receiver.post("/alertmanager", &body, &headers).await;
        assert_eq!(got_status, status, "{what}: {got_body}");
        assert_eq!(got_body, expected, "{what}");
    }
    assert_eq!(
        probe.depth().await,
        0,
        "a bad alert in a notification publishes none of it"
    );
    receiver.stop().await;
}

#[tokio::test]
async fn generic_hook_bad_requests_get_precise_problems() {
    let tb = TestBroker::new().await;
    let receiver = receiver(&tb).await;
    let body = r#"{"title":"no status"}"#;
    let signed = format!(
        "sha256={}",
        hmac_sha256_hex(b"grafana-secret", body.as_bytes())
    );

    let (status, answer) = receiver.post("/hooks/nope", body, &[JSON]).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        answer,
        problem(
            StatusCode::NOT_FOUND,
            "no webhook source named `nope` is configured"
        )
    );

    let (status, answer) = receiver
        .post(
            "/hooks/grafana",
            body,
            &[JSON, ("x-hub-signature-256", "sha256=00ff")],
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        answer,
        problem(StatusCode::UNAUTHORIZED, "missing or invalid credentials")
    );

    let (status, answer) = receiver
        .post(
            "/hooks/grafana",
            body,
            &[JSON, ("x-hub-signature-256", &signed)],
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        answer,
        problem(
            StatusCode::BAD_REQUEST,
            "cannot tell the event: no x-grafana-event header and no string at `/status` in the body"
        )
    );
    receiver.stop().await;
}

#[tokio::test]
async fn wrong_methods_unknown_routes_and_unconfigured_sources() {
    let tb = TestBroker::new().await;
    let mut config = config(&tb);
    config.alertmanager = Default::default();
    let receiver = Receiver::start(config).await;

    let response = receiver
        .client
        .get(receiver.url("/gitlab"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(response.headers()["allow"], "POST");
    let (_, body) = read(response).await;
    assert_eq!(
        body,
        problem(
            StatusCode::METHOD_NOT_ALLOWED,
            "/gitlab accepts only POST, not GET"
        )
    );

    let (status, body) = receiver.post("/gitlab/extra", "{}", &[JSON]).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        body,
        problem(
            StatusCode::NOT_FOUND,
            "no route for POST /gitlab/extra; webhooks go to POST /gitlab, POST /alertmanager or POST /hooks/{name}"
        )
    );

    let (status, body) = receiver
        .post("/alertmanager", ALERTMANAGER_NOTIFICATION, &[JSON])
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        body,
        problem(
            StatusCode::NOT_FOUND,
            "this receiver does not accept Alertmanager webhooks (ALERTMANAGER_TOKEN or ALERTMANAGER_BASIC_AUTH is not set)"
        )
    );
    receiver.stop().await;
}

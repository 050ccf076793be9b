//! The admin API (pause switch, decisions) and the probes, over HTTP.

mod common;

use common::{Harness, IMAGE_PULL_LOG, Options, job_hook};
use serde_json::{Value, json};

fn client() -> reqwest::Client {
    reqwest::Client::new()
}

async fn problem(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json",
        "errors are RFC 9457 problems"
    );
    (status, response.json().await.unwrap())
}

#[tokio::test]
async fn pausing_turns_retries_into_reports_until_resumed() {
    let h = Harness::start().await;
    let paused: Value = client()
        .post(format!("{}/api/pause", h.http))
        .bearer_auth("admin-secret")
        .json(&json!({"reason": "quay.io outage"}))
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(paused["paused"], true);
    assert_eq!(paused["reason"], "quay.io outage");

    let ready: Value = client()
        .get(format!("{}/readyz", h.http))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ready["status"], "ready", "a paused herder is still ready");
    let detail = ready["checks"]["pause"]["detail"].as_str().unwrap();
    assert!(
        detail.starts_with("paused since ")
            && detail.ends_with(" (quay.io outage): retries become reports"),
        "{detail}"
    );
    h.metric_reaches("pipeline_herder_paused", 1.0).await;

    let job = h.add_failed_job(601, "build x86_64", IMAGE_PULL_LOG);
    h.publish_hook(&job_hook(&job, 0), "hook-601").await;
    let row = h.finished(601).await;
    assert_eq!(row.action, "report");
    assert!(
        row.reason.ends_with("not retried: the herder is paused"),
        "{}",
        row.reason
    );
    assert!(h.retry_calls(601).is_empty());

    let resumed: Value = client()
        .post(format!("{}/api/resume", h.http))
        .bearer_auth("admin-secret")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(resumed["paused"], false);
    h.metric_reaches("pipeline_herder_paused", 0.0).await;
    let state: Value = client()
        .get(format!("{}/api/pause", h.http))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(state["paused"], false);

    let job = h.add_failed_job(602, "build x86_64", IMAGE_PULL_LOG);
    h.publish_hook(&job_hook(&job, 0), "hook-602").await;
    assert_eq!(h.finished(602).await.outcome.as_deref(), Some("retried"));
}

#[tokio::test]
async fn a_retry_that_falls_due_while_paused_is_reported() {
    let h = Harness::start().await;
    let job = h.add_failed_job(603, "build x86_64", IMAGE_PULL_LOG);
    h.publish_hook(&job_hook(&job, 0), "hook-603").await;
    h.decision_where(603, "the retry to be scheduled", |r| r.state == "scheduled")
        .await;
    client()
        .post(format!("{}/api/pause", h.http))
        .bearer_auth("admin-secret")
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap();
    let row = h.finished(603).await;
    assert_eq!(
        (row.action.as_str(), row.outcome.as_deref()),
        ("report", Some("paused"))
    );
    assert!(h.retry_calls(603).is_empty());
}

#[tokio::test]
async fn the_admin_api_refuses_what_it_should_with_a_reason() {
    let h = Harness::start().await;
    let url = format!("{}/api/pause", h.http);

    let (status, body) = problem(client().post(&url).send().await.unwrap()).await;
    assert_eq!(
        (status, body["detail"].as_str()),
        (401, Some("missing or invalid credentials"))
    );
    let response = client()
        .post(&url)
        .bearer_auth("wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["www-authenticate"], "Bearer");
    assert_eq!(problem(response).await.0, 401);

    let response = client()
        .post(&url)
        .bearer_auth("admin-secret")
        .header("content-type", "text/plain")
        .body("pause please")
        .send()
        .await
        .unwrap();
    let (status, body) = problem(response).await;
    assert_eq!(
        (status, body["detail"].as_str()),
        (
            415,
            Some("expected Content-Type application/json, got text/plain")
        )
    );

    let response = client()
        .post(&url)
        .bearer_auth("admin-secret")
        .header("content-type", "application/json")
        .body("{\"reason\": ")
        .send()
        .await
        .unwrap();
    let (status, body) = problem(response).await;
    assert_eq!(status, 400);
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .starts_with("malformed JSON: "),
        "{body}"
    );

    let response = client()
        .post(&url)
        .bearer_auth("admin-secret")
        .json(&json!({"reasn": "typo"}))
        .send()
        .await
        .unwrap();
    let (status, body) = problem(response).await;
    assert_eq!(status, 400);
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("unknown field `reasn`"),
        "{body}"
    );

    let response = client()
        .post(&url)
        .bearer_auth("admin-secret")
        .json(&json!({"reason": "x".repeat(501)}))
        .send()
        .await
        .unwrap();
    let (status, body) = problem(response).await;
    assert_eq!(
        (status, body["detail"].as_str()),
        (400, Some("`reason` is longer than 500 characters"))
    );

    let response = client()
        .post(&url)
        .bearer_auth("admin-secret")
        .json(&json!({"reason": "y".repeat(5000)}))
        .send()
        .await
        .unwrap();
    let (status, body) = problem(response).await;
    assert_eq!(
        (status, body["detail"].as_str()),
        (413, Some("the request body is larger than 4096 bytes"))
    );

    let response = client()
        .get(format!("{}/api/decisions?limit=0", h.http))
        .bearer_auth("admin-secret")
        .send()
        .await
        .unwrap();
    let (status, body) = problem(response).await;
    assert_eq!(
        (status, body["detail"].as_str()),
        (400, Some("`limit` must be between 1 and 500"))
    );
    let response = client()
        .get(format!("{}/api/decisions?limit=many", h.http))
        .bearer_auth("admin-secret")
        .send()
        .await
        .unwrap();
    assert_eq!(problem(response).await.0, 400);

    // Nothing was changed by any of that.
    let state: Value = client()
        .get(&url)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(state["paused"], false);
}

#[tokio::test]
async fn without_an_admin_token_the_switch_is_disabled() {
    let h = Harness::start_with(Options {
        admin_token: None,
        ..Options::default()
    })
    .await;
    let response = client()
        .post(format!("{}/api/pause", h.http))
        .bearer_auth("anything")
        .send()
        .await
        .unwrap();
    let (status, body) = problem(response).await;
    assert_eq!(
        (status, body["detail"].as_str()),
        (
            403,
            Some("the admin API is disabled: set HERDER_ADMIN_TOKEN to enable it")
        )
    );
}

#[tokio::test]
async fn decisions_are_listed_newest_first() {
    let h = Harness::start().await;
    for id in [604, 605] {
        let job = h.add_failed_job(id, "test x86_64", common::TEST_FAILURE_LOG);
        h.publish_hook(&job_hook(&job, 0), &format!("hook-{id}"))
            .await;
        h.finished(id).await;
    }
    let rows: Vec<Value> = client()
        .get(format!("{}/api/decisions?limit=1", h.http))
        .bearer_auth("admin-secret")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["job_id"], 605);
    assert_eq!(rows[0]["outcome"], "no_problem");
    assert_eq!(
        rows[0]["job_url"],
        "https://gitlab.test/kernel/ark/-/jobs/605"
    );
}

#[tokio::test]
async fn probes_and_metrics_answer() {
    let h = Harness::start().await;
    let ready: Value = client()
        .get(format!("{}/readyz", h.http))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for check in ["broker", "database", "pause"] {
        assert_eq!(ready["checks"][check]["status"], "ok", "{check}: {ready}");
    }
    assert_eq!(ready["checks"]["pause"]["detail"], "not paused");
    let health = client()
        .get(format!("{}/healthz", h.http))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    assert_eq!(h.metric("pipeline_herder_paused").await, Some(0.0));
}

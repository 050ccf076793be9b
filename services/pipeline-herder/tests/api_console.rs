//! What the admin console reads and writes: filtered and paged decisions, one decision with its
//! job's retry chain, and a pause switch that says who set it and since when.

mod common;

use std::time::Duration;

use chrono::{DateTime, Utc};
use common::{Harness, IMAGE_PULL_LOG, INSTANCE, PROJECT, TEST_FAILURE_LOG, job_hook};
use pipeline_herder::decide::{DecidedAction, Decision};
use pipeline_herder::hook::Job;
use pipeline_herder::ledger::{DecisionRow, Ledger};
use serde_json::{Value, json};

const TOKEN: &str = "admin-secret";

fn client() -> reqwest::Client {
    reqwest::Client::new()
}

/// GETs `path` with the admin token and `query`; the status and the JSON body.
async fn get(h: &Harness, path: &str, query: &[(&str, &str)]) -> (u16, Value) {
    let response = client()
        .get(format!("{}{path}", h.http))
        .query(query)
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    if status >= 400 {
        assert_eq!(
            response.headers()["content-type"],
            "application/problem+json",
            "errors are RFC 9457 problems"
        );
    }
    (status, response.json().await.unwrap())
}

/// The job ids of a list of decisions, in order.
fn job_ids(rows: &Value) -> Vec<i64> {
    rows.as_array()
        .unwrap_or_else(|| panic!("a list of decisions: {rows}"))
        .iter()
        .map(|row| row["job_id"].as_i64().unwrap())
        .collect()
}

/// The job ids `GET /api/decisions` lists for `query`.
async fn listed(h: &Harness, query: &[(&str, &str)]) -> Vec<i64> {
    let (status, rows) = get(h, "/api/decisions", query).await;
    assert_eq!(status, 200, "{query:?}: {rows}");
    job_ids(&rows)
}

async fn post(h: &Harness, path: &str, body: Option<Value>) -> (u16, Value) {
    let mut request = client()
        .post(format!("{}{path}", h.http))
        .bearer_auth(TOKEN);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

fn job(instance: &str, project_path: &str, job_id: u64) -> Job {
    Job {
        instance: instance.into(),
        project_id: 7,
        project_path: project_path.into(),
        job_id,
        name: "build x86_64".into(),
        stage: "build".into(),
        status: "failed".into(),
        failure_reason: Some("script_failure".into()),
        allow_failure: false,
        pipeline_id: 100,
        git_ref: "main".into(),
        web_url: format!("https://{instance}/{project_path}/-/jobs/{job_id}"),
        retries_count: Some(0),
    }
}

fn decision(matcher: Option<&str>, action: DecidedAction) -> Decision {
    Decision {
        matcher: matcher.map(str::to_owned),
        matcher_action: None,
        action,
        reason: format!("{} for the test", action.as_str()),
        attempt: 1,
        retry_limit: None,
        delay: None,
        log_line: None,
    }
}

/// Records a decision as the herder does; nothing queues a retry for it, so it stays as left.
async fn record(ledger: &Ledger, job: &Job, decision: &Decision) -> DecisionRow {
    ledger
        .record(job, &format!("event-{}", job.job_id), decision, None)
        .await
        .unwrap()
        .expect("a new decision")
}

#[tokio::test]
async fn decisions_are_filtered_exactly_and_paged_newest_first() {
    let h = Harness::start().await;
    let ledger = Ledger::connect(&h.database.url, Duration::from_secs(5))
        .await
        .unwrap();
    let scheduled = record(
        &ledger,
        &job(INSTANCE, PROJECT, 801),
        &decision(Some("image-pull"), DecidedAction::Retry),
    )
    .await;
    ledger
        .mark_scheduled(scheduled.id, Duration::from_secs(3600))
        .await
        .unwrap();
    record(
        &ledger,
        &job(INSTANCE, PROJECT, 802),
        &decision(None, DecidedAction::None),
    )
    .await;
    record(
        &ledger,
        &job(INSTANCE, "kernel/other", 803),
        &decision(Some("disk-alert"), DecidedAction::Alert),
    )
    .await;
    record(
        &ledger,
        &job("gitlab.elsewhere.org", PROJECT, 804),
        &decision(None, DecidedAction::Report),
    )
    .await;
    record(
        &ledger,
        &job(INSTANCE, PROJECT, 805),
        &decision(Some("image-pull"), DecidedAction::Retry),
    )
    .await;

    assert_eq!(listed(&h, &[]).await, [805, 804, 803, 802, 801]);
    assert_eq!(
        listed(&h, &[("instance", "gitlab.elsewhere.org")]).await,
        [804]
    );
    assert_eq!(listed(&h, &[("project", "kernel/other")]).await, [803]);
    assert_eq!(
        listed(&h, &[("project", "kernel")]).await,
        [] as [i64; 0],
        "a project path matches exactly, not as a prefix"
    );
    assert_eq!(listed(&h, &[("matcher", "image-pull")]).await, [805, 801]);
    assert_eq!(listed(&h, &[("action", "alert")]).await, [803]);
    assert_eq!(listed(&h, &[("state", "scheduled")]).await, [801]);
    assert_eq!(listed(&h, &[("state", "done")]).await, [804, 803, 802]);
    assert_eq!(
        listed(
            &h,
            &[
                ("instance", INSTANCE),
                ("action", "retry"),
                ("state", "new")
            ]
        )
        .await,
        [805]
    );
    assert_eq!(
        listed(&h, &[("action", "explode")]).await,
        [] as [i64; 0],
        "an unknown value matches nothing"
    );
    assert_eq!(
        listed(&h, &[("instance", "' OR '1'='1")]).await,
        [] as [i64; 0],
        "values are bound, never spliced into the SQL"
    );

    // Paging: each page continues below the last id of the one before.
    let (_, page) = get(&h, "/api/decisions", &[("limit", "2")]).await;
    assert_eq!(job_ids(&page), [805, 804]);
    let last = page[1]["id"].to_string();
    let (_, page) = get(&h, "/api/decisions", &[("limit", "2"), ("before", &last)]).await;
    assert_eq!(job_ids(&page), [803, 802]);
    let last = page[1]["id"].to_string();
    let (_, page) = get(&h, "/api/decisions", &[("limit", "2"), ("before", &last)]).await;
    assert_eq!(job_ids(&page), [801]);
    let last = page[0]["id"].to_string();
    assert_eq!(
        listed(&h, &[("before", &last)]).await,
        [] as [i64; 0],
        "past the oldest, an empty page"
    );
    assert_eq!(
        listed(&h, &[("before", &last), ("matcher", "image-pull")]).await,
        [] as [i64; 0]
    );
    let (_, page) = get(&h, "/api/decisions", &[("limit", "2")]).await;
    let newest = page[0]["id"].to_string();
    assert_eq!(
        listed(&h, &[("before", &newest), ("matcher", "image-pull")]).await,
        [801],
        "paging and filters combine"
    );
}

#[tokio::test]
async fn unknown_and_malformed_query_parameters_are_refused_with_their_name() {
    let h = Harness::start().await;
    let (status, body) = get(&h, "/api/decisions", &[("projet", PROJECT)]).await;
    assert_eq!(status, 400);
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("unknown field `projet`, expected one of"),
        "{body}"
    );
    let (status, body) = get(&h, "/api/decisions", &[("before", "yesterday")]).await;
    assert_eq!(
        (status, body["detail"].as_str()),
        (
            400,
            Some("Failed to deserialize query string: before: invalid digit found in string")
        )
    );
    let (status, body) = get(&h, "/api/decisions", &[("limit", "501")]).await;
    assert_eq!(
        (status, body["detail"].as_str()),
        (400, Some("`limit` must be between 1 and 500"))
    );

    for path in ["/api/decisions", "/api/decisions/1"] {
        let response = client()
            .get(format!("{}{path}", h.http))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 401, "{path} without a token");
        assert_eq!(response.headers()["www-authenticate"], "Bearer");
    }
}

/// Makes the new job a retry created fail with `log`, and sends its Job Hook.
async fn fail_new_job(h: &Harness, job_id: u64, log: &str, retries_count: u32) {
    let mut job = h.gitlab.job(job_id).expect("the retry created the job");
    job.status = "failed".into();
    job.failure_reason = Some("script_failure".into());
    job.trace = log.as_bytes().to_vec();
    h.gitlab.add_job(job.clone());
    h.publish_hook(&job_hook(&job, retries_count), &format!("hook-{job_id}"))
        .await;
}

#[tokio::test]
async fn a_decision_shows_the_chain_of_a_job_retried_twice() {
    let h = Harness::start().await;
    // An unrelated decision, which no chain includes.
    let other = h.add_failed_job(702, "test x86_64", TEST_FAILURE_LOG);
    h.publish_hook(&job_hook(&other, 0), "hook-702").await;
    h.finished(702).await;

    let first = h.add_failed_job(701, "build x86_64", IMAGE_PULL_LOG);
    h.publish_hook(&job_hook(&first, 0), "hook-701").await;
    let first = h.finished(701).await;
    let second_job = first.new_job_id.expect("retried") as u64;
    fail_new_job(&h, second_job, IMAGE_PULL_LOG, 1).await;
    let second = h.finished(second_job).await;
    assert_eq!(second.outcome.as_deref(), Some("retried"));
    let third_job = second.new_job_id.expect("retried again") as u64;
    fail_new_job(&h, third_job, TEST_FAILURE_LOG, 2).await;
    let third = h.finished(third_job).await;
    assert_eq!(third.outcome.as_deref(), Some("no_problem"));

    let lineage = [701, second_job as i64, third_job as i64];
    for row in [&first, &second, &third] {
        let (status, detail) = get(&h, &format!("/api/decisions/{}", row.id), &[]).await;
        assert_eq!(status, 200, "{detail}");
        assert_eq!(detail["decision"]["id"], row.id);
        assert_eq!(
            job_ids(&detail["chain"]),
            lineage,
            "from job {}: oldest first, both ways",
            row.job_id
        );
    }

    // The decision has the shape of a list item, log line included.
    let (_, detail) = get(&h, &format!("/api/decisions/{}", second.id), &[]).await;
    let before = (second.id + 1).to_string();
    let (_, page) = get(&h, "/api/decisions", &[("before", &before), ("limit", "1")]).await;
    assert_eq!(detail["decision"], page[0]);
    assert_eq!(detail["chain"][1], page[0]);
    assert!(
        detail["decision"]["log_line"]
            .as_str()
            .is_some_and(|line| line.contains("failed to pull image")),
        "{detail}"
    );
    assert_eq!(detail["chain"][0]["new_job_id"], second_job);
    assert_eq!(detail["chain"][2]["new_job_id"], Value::Null);

    let (_, matched) = get(&h, "/api/decisions", &[("matcher", "image-pull")]).await;
    assert_eq!(
        job_ids(&matched),
        [second_job as i64, 701],
        "the genuine failure at the end had no matcher"
    );
    let other = h.finished(702).await;
    let (_, detail) = get(&h, &format!("/api/decisions/{}", other.id), &[]).await;
    assert_eq!(job_ids(&detail["chain"]), [702], "a job never retried");
}

#[tokio::test]
async fn an_unknown_decision_is_404_and_a_malformed_id_400() {
    let h = Harness::start().await;
    let (status, body) = get(&h, "/api/decisions/999999", &[]).await;
    assert_eq!(
        (status, body["detail"].as_str()),
        (404, Some("decision 999999 not found"))
    );
    for id in ["abc", "0", "-3", "1.5", "99999999999999999999"] {
        let (status, body) = get(&h, &format!("/api/decisions/{id}"), &[]).await;
        assert_eq!(
            (status, body["detail"].as_str()),
            (
                400,
                Some(format!("the decision id must be a positive integer, not `{id}`").as_str())
            )
        );
    }
}

fn since(state: &Value) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(state["since"].as_str().expect("`since` is a timestamp"))
        .unwrap()
        .with_timezone(&Utc)
}

#[tokio::test]
async fn the_switch_records_who_flipped_it_and_since_when() {
    let h = Harness::start().await;
    let (_, state) = get(&h, "/api/pause", &[]).await;
    assert_eq!(
        (state["paused"].as_bool(), &state["by"]),
        (Some(false), &Value::Null),
        "never changed: nobody to name"
    );

    let asked = Utc::now();
    let (status, paused) = post(
        &h,
        "/api/pause",
        Some(json!({"reason": "quay.io outage", "by": "alice@example.com"})),
    )
    .await;
    assert_eq!(status, 200, "{paused}");
    assert_eq!(paused["paused"], true);
    assert_eq!(paused["reason"], "quay.io outage");
    assert_eq!(paused["by"], "alice@example.com");
    let paused_since = since(&paused);
    assert!(
        asked <= paused_since && paused_since <= Utc::now(),
        "{paused_since}"
    );
    let (_, state) = get(&h, "/api/pause", &[]).await;
    assert_eq!(state, paused);
    let (_, ready) = get(&h, "/readyz", &[]).await;
    let detail = ready["checks"]["pause"]["detail"].as_str().unwrap();
    assert!(
        detail.ends_with(" by alice@example.com (quay.io outage): retries become reports"),
        "{detail}"
    );

    let (status, resumed) = post(
        &h,
        "/api/resume",
        Some(json!({"by": "bob", "reason": "quay.io is back"})),
    )
    .await;
    assert_eq!(status, 200, "{resumed}");
    assert_eq!(resumed["paused"], false);
    assert_eq!(resumed["by"], "bob");
    assert_eq!(resumed["reason"], "quay.io is back");
    assert!(since(&resumed) > paused_since);
    let (_, state) = get(&h, "/api/pause", &[]).await;
    assert_eq!(state, resumed);

    // Callers that name nobody are recorded as `api`.
    let (_, paused) = post(&h, "/api/pause", None).await;
    assert_eq!(
        (&paused["by"], &paused["reason"]),
        (&json!("api"), &Value::Null)
    );
    let (_, resumed) = post(&h, "/api/resume", Some(json!({}))).await;
    assert_eq!(resumed["by"], "api");
}

#[tokio::test]
async fn a_bad_or_unauthenticated_attribution_is_refused_and_changes_nothing() {
    let h = Harness::start().await;
    for path in ["/api/pause", "/api/resume"] {
        let (status, body) = post(&h, path, Some(json!({"by": "x".repeat(201)}))).await;
        assert_eq!(
            (status, body["detail"].as_str()),
            (400, Some("`by` is longer than 200 characters")),
            "{path}"
        );
        let (status, body) = post(&h, path, Some(json!({"by": "  "}))).await;
        assert_eq!(
            (status, body["detail"].as_str()),
            (
                400,
                Some("`by` is empty: name who changes the switch, or leave `by` out")
            ),
            "{path}"
        );
        let (status, body) = post(&h, path, Some(json!({"who": "alice"}))).await;
        assert_eq!(status, 400, "{path}");
        assert!(
            body["detail"]
                .as_str()
                .unwrap()
                .contains("unknown field `who`"),
            "{body}"
        );
        let response = client()
            .post(format!("{}{path}", h.http))
            .json(&json!({"by": "mallory"}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 401, "{path} without a token");
    }
    // A name of exactly 200 characters is fine.
    let (status, paused) = post(&h, "/api/pause", Some(json!({"by": "é".repeat(200)}))).await;
    assert_eq!(
        (status, paused["by"].as_str().map(|by| by.chars().count())),
        (200, Some(200))
    );
    let (_, resumed) = post(&h, "/api/resume", None).await;
    assert_eq!(resumed["paused"], false);
    // Only those two went through.
    let (_, state) = get(&h, "/api/pause", &[]).await;
    assert_eq!(state["by"], "api");
}

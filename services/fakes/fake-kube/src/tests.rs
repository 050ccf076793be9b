//! The fake over real HTTP, as a client sees it.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use super::{FakeKube, Fault, KindSpec};

struct Client {
    http: reqwest::Client,
    base: String,
}

impl Client {
    fn new(fake: &FakeKube) -> Self {
        Self {
            http: reqwest::Client::new(),
            base: fake.url().to_owned(),
        }
    }

    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        content_type: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(body) = body {
            request = request
                .header("content-type", content_type)
                .body(body.to_string());
        }
        let response = request.send().await.expect("request");
        let status = response.status();
        let text = response.text().await.expect("body");
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.send(reqwest::Method::GET, path, "", None).await
    }

    async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.send(reqwest::Method::POST, path, "application/json", Some(body))
            .await
    }
}

#[tokio::test]
async fn discovery_describes_kinds_and_registered_ones() {
    let fake = FakeKube::start().await;
    let c = Client::new(&fake);
    let (status, core) = c.get("/api/v1").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        core["resources"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["name"] == "configmaps")
    );
    let (_, groups) = c.get("/apis").await;
    assert!(
        groups["groups"]
            .as_array()
            .unwrap()
            .iter()
            .any(|g| g["name"] == "batch")
    );
    assert_eq!(c.get("/apis/example.com/v1").await.0, StatusCode::NOT_FOUND);

    fake.register_kind(KindSpec::new("example.com", "v1", "Widget", "widgets"));
    let (status, list) = c.get("/apis/example.com/v1").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["resources"][0]["kind"], "Widget");
    let (status, created) = c
        .post("/apis/example.com/v1/namespaces/default/widgets", json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}, "spec": {"size": 3}}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(
        fake.get("example.com/v1", "Widget", Some("default"), "w")
            .unwrap()["spec"]["size"],
        3
    );
}

#[tokio::test]
async fn crud_with_selectors_and_errors_as_status_objects() {
    let fake = FakeKube::start().await;
    let c = Client::new(&fake);
    for (name, tier) in [("a", "web"), ("b", "db")] {
        let (status, _) = c
            .post(
                "/api/v1/namespaces/default/configmaps",
                json!({"metadata": {"name": name, "labels": {"tier": tier}}, "data": {"k": "v"}}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED);
    }
    let (_, list) = c
        .get("/api/v1/namespaces/default/configmaps?labelSelector=tier%3Dweb")
        .await;
    assert_eq!(list["kind"], "ConfigMapList");
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    assert_eq!(list["items"][0]["metadata"]["name"], "a");

    let (status, err) = c.get("/api/v1/namespaces/default/configmaps/missing").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(err["kind"], "Status");
    assert_eq!(err["reason"], "NotFound");
    assert_eq!(err["message"], "configmaps \"missing\" not found");

    let (status, err) = c
        .post(
            "/api/v1/namespaces/default/configmaps",
            json!({"metadata": {"name": "a"}}),
        )
        .await;
    assert_eq!(
        (status, err["reason"].as_str()),
        (StatusCode::CONFLICT, Some("AlreadyExists"))
    );

    let (status, err) = c
        .post(
            "/api/v1/namespaces",
            json!({"metadata": {"name": "Bad_Name"}}),
        )
        .await;
    assert_eq!(
        (status, err["reason"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("Invalid"))
    );

    let (status, err) = c
        .get("/api/v1/namespaces/default/configmaps?labelSelector=tier+in+web")
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{err}");

    let (status, err) = c
        .send(
            reqwest::Method::POST,
            "/api/v1/namespaces/default/configmaps",
            "text/plain",
            Some(json!({})),
        )
        .await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{err}");
}

#[tokio::test]
async fn update_conflicts_patches_and_status_subresource() {
    let fake = FakeKube::start().await;
    let c = Client::new(&fake);
    let (_, job) = c
        .post("/apis/batch/v1/namespaces/default/jobs", json!({"metadata": {"name": "j"}, "spec": {"template": {"spec": {"containers": [{"name": "main", "image": "a:1"}]}}}}))
        .await;
    let rv = job["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_owned();

    // Strategic merge patch merges the named containers list.
    let (status, patched) = c
        .send(reqwest::Method::PATCH, "/apis/batch/v1/namespaces/default/jobs/j", "application/strategic-merge-patch+json",
            Some(json!({"spec": {"template": {"spec": {"containers": [{"name": "main", "image": "a:2"}]}}}})))
        .await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    assert_eq!(
        patched["spec"]["template"]["spec"]["containers"][0]["image"],
        "a:2"
    );
    assert_eq!(patched["metadata"]["generation"], 2);

    // A PUT carrying the old resourceVersion is refused.
    let mut stale = job.clone();
    stale["metadata"]["resourceVersion"] = rv.into();
    let (status, err) = c
        .send(
            reqwest::Method::PUT,
            "/apis/batch/v1/namespaces/default/jobs/j",
            "application/json",
            Some(stale),
        )
        .await;
    assert_eq!(
        (status, err["reason"].as_str()),
        (StatusCode::CONFLICT, Some("Conflict"))
    );

    // Status only changes through /status.
    let (_, after) = c
        .send(
            reqwest::Method::PATCH,
            "/apis/batch/v1/namespaces/default/jobs/j",
            "application/merge-patch+json",
            Some(json!({"status": {"succeeded": 9}})),
        )
        .await;
    assert_ne!(after["status"]["succeeded"], 9);
    let (_, after) = c
        .send(
            reqwest::Method::PATCH,
            "/apis/batch/v1/namespaces/default/jobs/j/status",
            "application/merge-patch+json",
            Some(json!({"status": {"succeeded": 9}})),
        )
        .await;
    assert_eq!(after["status"]["succeeded"], 9);

    // Server-side apply creates an absent object.
    let (status, created) = c
        .send(reqwest::Method::PATCH, "/api/v1/namespaces/default/configmaps/applied?fieldManager=test", "application/apply-patch+yaml",
            Some(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "applied"}, "data": {"a": "1"}})))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
}

#[tokio::test]
async fn jobs_get_pods_and_end_as_tests_decide() {
    let fake = FakeKube::start().await;
    let c = Client::new(&fake);
    for name in ["ok", "bad"] {
        c.post("/apis/batch/v1/namespaces/default/jobs", json!({"metadata": {"name": name}, "spec": {"template": {"spec": {"containers": [{"name": "main", "image": "x"}]}}}}))
            .await;
    }
    let (_, pods) = c
        .get("/api/v1/namespaces/default/pods?labelSelector=job-name%3Dbad")
        .await;
    assert_eq!(pods["items"][0]["status"]["phase"], "Running");
    assert_eq!(
        fake.get("batch/v1", "Job", Some("default"), "ok").unwrap()["status"]["active"],
        1
    );

    fake.complete_job("default", "ok");
    fake.fail_job(
        "default",
        "bad",
        "BackoffLimitExceeded",
        "Job has reached the specified backoff limit",
    );
    let ok = fake.get("batch/v1", "Job", Some("default"), "ok").unwrap();
    assert!(
        ok["status"]["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["type"] == "Complete" && c["status"] == "True")
    );
    let (_, pods) = c
        .get("/api/v1/namespaces/default/pods?labelSelector=job-name%3Dbad")
        .await;
    assert_eq!(pods["items"][0]["status"]["phase"], "Failed");
    let pod = pods["items"][0]["metadata"]["name"]
        .as_str()
        .unwrap()
        .to_owned();
    fake.set_pod_log("default", &pod, "boom\n");
    let (status, log) = c
        .get(&format!("/api/v1/namespaces/default/pods/{pod}/log"))
        .await;
    assert_eq!(
        (status, log),
        (StatusCode::OK, Value::String("boom\n".into()))
    );

    // Deleting the Job (background propagation) removes its Pod.
    let (status, _) = c
        .send(
            reqwest::Method::DELETE,
            "/apis/batch/v1/namespaces/default/jobs/bad",
            "application/json",
            Some(json!({"propagationPolicy": "Background"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        fake.list("v1", "Pod", Some("default"))
            .iter()
            .all(|p| p["metadata"]["labels"]["job-name"] != "bad")
    );
}

#[tokio::test]
async fn fake_fail_over_http_fails_a_burst_then_answers_slowly() {
    let fake = FakeKube::start().await;
    let c = Client::new(&fake);
    let (status, _) = c
        .post(
            "/fake/fail",
            json!({"statuses": [503, 500], "delay_ms": 300, "slow_for_ms": 1500}),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    // The burst: the next two requests, whatever they ask, then normal answers.
    let body = json!({"metadata": {"name": "x"}});
    let path = "/api/v1/namespaces/default/configmaps";
    assert_eq!(
        c.post(path, body.clone()).await.0,
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(
        c.get("/api/v1/namespaces/default/configmaps/x").await.0,
        StatusCode::INTERNAL_SERVER_ERROR
    );
    // Slow meanwhile: answered, but late.
    let started = std::time::Instant::now();
    assert_eq!(c.post(path, body).await.0, StatusCode::CREATED);
    assert!(started.elapsed() >= Duration::from_millis(300));
    // Bad scripts are refused.
    let (status, _) = c.post("/fake/fail", json!({"statuses": [200]})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    // After the period, no delay.
    fake.slow_for(Duration::from_secs(5), Duration::ZERO);
    let started = std::time::Instant::now();
    assert_eq!(c.get(path).await.0, StatusCode::OK);
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn faults_answer_with_status_then_stop() {
    let fake = FakeKube::start().await;
    let c = Client::new(&fake);
    fake.inject(
        Fault::status(503)
            .on("create")
            .resource("configmaps")
            .times(1),
    );
    fake.inject(
        Fault::status(403)
            .on("delete")
            .resource("configmaps")
            .always(),
    );
    let body = json!({"metadata": {"name": "x"}});
    let (status, err) = c
        .post("/api/v1/namespaces/default/configmaps", body.clone())
        .await;
    assert_eq!(
        (status, err["reason"].as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, Some("ServiceUnavailable"))
    );
    assert_eq!(
        c.post("/api/v1/namespaces/default/configmaps", body)
            .await
            .0,
        StatusCode::CREATED
    );
    let (status, err) = c
        .send(
            reqwest::Method::DELETE,
            "/api/v1/namespaces/default/configmaps/x",
            "application/json",
            Some(json!({})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(
        err["message"]
            .as_str()
            .unwrap()
            .contains("cannot delete resource \"configmaps\""),
        "{err}"
    );
    assert_eq!(fake.count("create", "configmaps"), 2);
}

#[tokio::test]
async fn watch_streams_changes_after_a_resource_version() {
    let fake = FakeKube::start().await;
    let c = Client::new(&fake);
    let (_, list) = c.get("/api/v1/namespaces/default/configmaps").await;
    let rv = list["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut response = c
        .http
        .get(format!("{}/api/v1/namespaces/default/configmaps?watch=true&resourceVersion={rv}&timeoutSeconds=10", c.base))
        .send()
        .await
        .unwrap();
    c.post(
        "/api/v1/namespaces/default/configmaps",
        json!({"metadata": {"name": "w"}}),
    )
    .await;
    fake.remove("v1", "ConfigMap", Some("default"), "w");
    let mut seen = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while seen.lines().count() < 2 {
        let chunk = tokio::time::timeout_at(deadline, response.chunk())
            .await
            .expect("events in time")
            .unwrap()
            .unwrap();
        seen.push_str(std::str::from_utf8(&chunk).unwrap());
    }
    let events: Vec<Value> = seen
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(events[0]["type"], "ADDED");
    assert_eq!(events[0]["object"]["metadata"]["name"], "w");
    assert_eq!(events[1]["type"], "DELETED");
}

#[tokio::test]
async fn kubeconfig_points_at_the_server() {
    let fake = FakeKube::start().await;
    let file = fake.kubeconfig_file();
    let text = std::fs::read_to_string(file.path()).unwrap();
    assert!(text.contains(&format!("server: {}", fake.url())));
    let path = file.path().to_owned();
    drop(file);
    assert!(!path.exists());
}

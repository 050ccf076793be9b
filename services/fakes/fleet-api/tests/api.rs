//! fleet-api against a real PostgreSQL database, over HTTP, as the sentinel and adapters use it.

use fleet_api::{App, Config, Running};
use reqwest::{Client, StatusCode};
use serde_json::{Value, json};
use steadfast_test_support::TestDatabase;

struct Api {
    running: Running,
    client: Client,
    _db: TestDatabase,
}

impl Api {
    async fn start(config: impl FnOnce(Config) -> Config) -> Self {
        steadfast_test_support::init_test_logging();
        let db = TestDatabase::new().await;
        let running = App::build(config(Config::local(&db.url)))
            .await
            .expect("fleet-api builds")
            .spawn();
        Self {
            running,
            client: Client::new(),
            _db: db,
        }
    }

    async fn with_adapters() -> Self {
        Self::start(|c| c.with_required_adapters(&["validator", "dns"], &["validator"])).await
    }

    fn url(&self, path: &str) -> String {
        format!("{}/api/hyperfleet/v1{path}", self.running.base_url())
    }

    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut request = self.client.request(method, self.url(path));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("request");
        let status = response.status();
        let text = response.text().await.unwrap();
        let value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
        };
        (status, value)
    }

    async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.send(reqwest::Method::GET, path, None).await
    }

    async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.send(reqwest::Method::POST, path, Some(body)).await
    }

    async fn patch(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.send(reqwest::Method::PATCH, path, Some(body)).await
    }

    async fn put(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.send(reqwest::Method::PUT, path, Some(body)).await
    }

    async fn delete(&self, path: &str) -> (StatusCode, Value) {
        self.send(reqwest::Method::DELETE, path, None).await
    }

    async fn cluster(&self, name: &str, labels: Value) -> Value {
        let (status, body) = self
            .post("/clusters", json!({"kind": "Cluster", "name": name, "labels": labels, "spec": {"region": "eu"}}))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body
    }
}

fn condition<'a>(resource: &'a Value, kind: &str) -> &'a Value {
    resource["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == kind)
        .unwrap_or_else(|| panic!("no {kind} condition in {resource}"))
}

fn report(adapter: &str, generation: i64, at: &str, available: &str) -> Value {
    json!({"adapter": adapter, "observed_generation": generation, "observed_time": at,
           "conditions": [{"type": "Available", "status": available, "reason": "Checked"},
                          {"type": "Applied", "status": "True"},
                          {"type": "Health", "status": "True"}]})
}

fn assert_problem(body: &Value, status: u16, code: &str, instance: &str) {
    assert_eq!(body["status"], status, "{body}");
    assert_eq!(body["code"], code, "{body}");
    assert_eq!(body["instance"], instance, "{body}");
    assert!(
        body["type"]
            .as_str()
            .unwrap()
            .starts_with("https://api.hyperfleet.io/errors/"),
        "{body}"
    );
    assert!(
        body["title"].is_string() && body["detail"].is_string() && body["timestamp"].is_string(),
        "{body}"
    );
}

#[tokio::test]
async fn create_get_and_the_initial_status() {
    let api = Api::with_adapters().await;
    let created = api.cluster("prod-eu-1", json!({"env": "prod"})).await;
    let id = created["id"].as_str().unwrap();
    assert_eq!(created["kind"], "Cluster");
    assert_eq!(created["href"], format!("/api/hyperfleet/v1/clusters/{id}"));
    assert_eq!(created["generation"], 1);
    assert_eq!(created["labels"], json!({"env": "prod"}));
    assert_eq!(created["spec"], json!({"region": "eu"}));
    assert_eq!(created["created_by"], "fleet-api");
    assert!(created.get("deleted_time").is_none());
    let reconciled = condition(&created, "Reconciled");
    assert_eq!(reconciled["status"], "False");
    assert_eq!(reconciled["observed_generation"], 1);
    assert_eq!(reconciled["last_updated_time"], created["updated_time"]);
    assert_eq!(reconciled["reason"], "MissingRequiredAdapters");
    assert_eq!(
        condition(&created, "LastKnownReconciled")["status"],
        "False"
    );

    let (status, fetched) = api.get(&format!("/clusters/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(fetched, created);
}

#[tokio::test]
async fn errors_are_hyperfleet_problems() {
    let api = Api::with_adapters().await;
    let (status, body) = api.get("/clusters/not-a-uuid").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_problem(
        &body,
        404,
        "HYPERFLEET-NTF-002",
        "/api/hyperfleet/v1/clusters/not-a-uuid",
    );
    assert_eq!(body["detail"], "Cluster with id='not-a-uuid' not found");

    let (status, body) = api.get("/clusterz").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_problem(
        &body,
        404,
        "HYPERFLEET-NTF-000",
        "/api/hyperfleet/v1/clusterz",
    );

    let (status, body) = api
        .post("/clusters", json!({"kind": "Cluster", "spec": {}}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_problem(
        &body,
        400,
        "HYPERFLEET-VAL-001",
        "/api/hyperfleet/v1/clusters",
    );
    assert_eq!(
        body["errors"],
        json!([{"field": "name", "constraint": "required", "message": "is required"}])
    );

    let (status, body) = api
        .post(
            "/clusters",
            json!({"kind": "Cluster", "name": "Bad_Name", "spec": 1}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["code"], "HYPERFLEET-VAL-000");
    assert_eq!(body["errors"].as_array().unwrap().len(), 2, "{body}");

    let response = api
        .client
        .post(api.url("/clusters"))
        .header("content-type", "application/json")
        .body("{\"kind\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["code"], "HYPERFLEET-VAL-006");
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .starts_with("malformed JSON: EOF while parsing"),
        "{body}"
    );

    let response = api
        .client
        .post(api.url("/clusters"))
        .body("name=x")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body["detail"],
        "expected Content-Type application/json, got none"
    );

    let huge =
        json!({"kind": "Cluster", "name": "big", "spec": {"blob": "x".repeat(2 * 1024 * 1024)}});
    let (status, body) = api.post("/clusters", huge).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(
        body["detail"],
        "the request body is over the 1048576-byte limit"
    );

    // PostgreSQL cannot store U+0000 in jsonb: a client error, not a 5xx.
    let (status, body) = api
        .post(
            "/clusters",
            json!({"kind": "Cluster", "name": "nul", "spec": {"a": "x\u{0}y"}}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["errors"][0]["field"], "spec.a");
    let (status, body) = api.get("/clusters?search=name%3D%27a%00%27").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["errors"][0]["field"], "search");
    let (status, body) = api.get("/clusters?page=2147483648").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["errors"][0]["message"], "must be at most 2147483647");

    let response = api.client.put(api.url("/clusters")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);

    api.cluster("twin", json!({})).await;
    let (status, body) = api
        .post(
            "/clusters",
            json!({"kind": "Cluster", "name": "twin", "spec": {}}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(body["code"], "HYPERFLEET-CNF-001");
    assert_eq!(body["detail"], "a Cluster named 'twin' already exists");
}

#[tokio::test]
async fn patch_bumps_the_generation_and_unreconciles() {
    let api = Api::with_adapters().await;
    let created = api.cluster("patchy", json!({})).await;
    let id = created["id"].as_str().unwrap();
    for adapter in ["validator", "dns"] {
        let (status, _) = api
            .put(
                &format!("/clusters/{id}/statuses"),
                report(adapter, 1, "2030-01-01T00:00:00Z", "True"),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED);
    }
    let (_, reconciled) = api.get(&format!("/clusters/{id}")).await;
    assert_eq!(condition(&reconciled, "Reconciled")["status"], "True");

    let (status, patched) = api
        .patch(
            &format!("/clusters/{id}"),
            json!({"spec": {"region": "us"}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    assert_eq!(patched["generation"], 2);
    assert_eq!(patched["spec"], json!({"region": "us"}));
    let c = condition(&patched, "Reconciled");
    assert_eq!(c["status"], "False");
    assert_eq!(c["observed_generation"], 2);
    assert_eq!(c["last_transition_time"], patched["updated_time"]);
    assert_eq!(condition(&patched, "LastKnownReconciled")["status"], "True");

    // The same spec again changes nothing.
    let (_, same) = api
        .patch(
            &format!("/clusters/{id}"),
            json!({"spec": {"region": "us"}}),
        )
        .await;
    assert_eq!(same["generation"], 2);
    let (status, body) = api.patch(&format!("/clusters/{id}"), json!({})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["errors"][0]["field"], "body");
    let (status, body) = api
        .patch(&format!("/clusters/{id}"), json!({"name": "renamed"}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["errors"][0]["field"], "name");
}

#[tokio::test]
async fn lists_page_order_and_search() {
    let api = Api::with_adapters().await;
    let mut ids = Vec::new();
    for (i, shard) in ["1", "2", "1", "2", "1"].iter().enumerate() {
        let c = api
            .cluster(&format!("c-{i}"), json!({"shard": shard, "env": "prod"}))
            .await;
        ids.push(c["id"].as_str().unwrap().to_owned());
    }
    let (status, page) = api.get("/clusters?page=2&size=2").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(page["kind"], "ClusterList");
    assert_eq!(
        (
            page["page"].clone(),
            page["size"].clone(),
            page["total"].clone()
        ),
        (json!(2), json!(2), json!(5))
    );
    let names: Vec<&str> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["c-2", "c-3"]);
    let (_, last) = api.get("/clusters?page=3&size=2").await;
    assert_eq!(last["items"].as_array().unwrap().len(), 1);
    let (_, beyond) = api.get("/clusters?page=9&size=2").await;
    assert_eq!(
        (beyond["total"].clone(), beyond["items"].clone()),
        (json!(5), json!([]))
    );

    let (_, desc) = api.get("/clusters?order=name%20desc&size=1").await;
    assert_eq!(desc["items"][0]["name"], "c-4");

    let search = |q: &str| format!("/clusters?search={}", url_encode(q));
    let (_, shard1) = api
        .get(&search("labels.shard='1' and labels.env='prod'"))
        .await;
    assert_eq!(shard1["total"], 3);
    let (_, none) = api
        .get(&format!(
            "{}&size=1",
            search("labels.non_existing_label='value'")
        ))
        .await;
    assert_eq!(
        (none["total"].clone(), none["items"].clone()),
        (json!(0), json!([]))
    );
    let (_, by_name) = api.get(&search("name in ('c-0', 'c-4')")).await;
    assert_eq!(by_name["total"], 2);
    let (_, not_reconciled) = api
        .get(&search("status.conditions.Reconciled='False'"))
        .await;
    assert_eq!(not_reconciled["total"], 5);

    for (query, field) in [
        ("size=101", "size"),
        ("size=0", "size"),
        ("page=0", "page"),
        ("page=x", "page"),
        ("order=color", "order"),
    ] {
        let (status, body) = api.get(&format!("/clusters?{query}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}");
        assert_eq!(body["errors"][0]["field"], field, "{query}: {body}");
    }
    let (status, body) = api.get(&search("labels.shard=")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["code"], "HYPERFLEET-VAL-007");
    assert_eq!(
        body["detail"],
        "Failed to parse search query: expected a value, found the end of the query"
    );
}

fn url_encode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

#[tokio::test]
async fn nodepools_belong_to_their_cluster() {
    let api = Api::with_adapters().await;
    let cluster = api.cluster("owner", json!({})).await;
    let cid = cluster["id"].as_str().unwrap();
    let (status, pool) = api
        .post(
            &format!("/clusters/{cid}/nodepools"),
            json!({"kind": "NodePool", "name": "workers", "spec": {"replicas": 3}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{pool}");
    let pid = pool["id"].as_str().unwrap();
    assert_eq!(pool["kind"], "NodePool");
    assert_eq!(
        pool["href"],
        format!("/api/hyperfleet/v1/clusters/{cid}/nodepools/{pid}")
    );
    assert_eq!(
        pool["owner_references"],
        json!({"id": cid, "kind": "Cluster", "href": format!("/api/hyperfleet/v1/clusters/{cid}")})
    );
    let (status, got) = api.get(&format!("/clusters/{cid}/nodepools/{pid}")).await;
    assert_eq!((status, got.clone()), (StatusCode::OK, pool.clone()));
    let (_, all) = api.get("/nodepools").await;
    assert_eq!(all["kind"], "NodePoolList");
    assert_eq!(all["total"], 1);
    let (_, owned) = api.get(&format!("/clusters/{cid}/nodepools")).await;
    assert_eq!(owned["items"][0]["id"], pid);

    let other = api.cluster("other", json!({})).await;
    let (status, body) = api
        .get(&format!(
            "/clusters/{}/nodepools/{pid}",
            other["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["code"], "HYPERFLEET-NTF-003");
    let missing = uuid::Uuid::now_v7();
    let (status, body) = api
        .post(
            &format!("/clusters/{missing}/nodepools"),
            json!({"kind": "NodePool", "name": "x-1", "spec": {}}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["code"], "HYPERFLEET-NTF-002");
    let (status, body) = api
        .post(
            &format!("/clusters/{cid}/nodepools"),
            json!({"kind": "NodePool", "name": "name-too-long-for-a-pool", "spec": {}}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["errors"][0]["constraint"], "max_length");

    let (status, _) = api
        .put(
            &format!("/clusters/{cid}/nodepools/{pid}/statuses"),
            report("validator", 1, "2030-01-01T00:00:00Z", "True"),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (_, pool) = api.get(&format!("/clusters/{cid}/nodepools/{pid}")).await;
    assert_eq!(condition(&pool, "Reconciled")["status"], "True");
    assert_eq!(condition(&pool, "ValidatorSuccessful")["status"], "True");
}

#[tokio::test]
async fn status_reports_follow_the_accept_and_discard_rules() {
    let api = Api::with_adapters().await;
    let cluster = api.cluster("reported", json!({})).await;
    let id = cluster["id"].as_str().unwrap();
    let statuses = format!("/clusters/{id}/statuses");

    let (status, stored) = api
        .put(
            &statuses,
            report("validator", 1, "2030-01-01T00:00:10Z", "True"),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(stored["adapter"], "validator");
    assert_eq!(stored["last_report_time"], "2030-01-01T00:00:10Z");
    assert_eq!(
        stored["conditions"][0]["last_transition_time"],
        "2030-01-01T00:00:10Z"
    );
    let (_, after_one) = api.get(&format!("/clusters/{id}")).await;
    assert_eq!(condition(&after_one, "Reconciled")["status"], "False");
    assert_eq!(
        condition(&after_one, "Reconciled")["last_updated_time"],
        "2030-01-01T00:00:10Z"
    );

    let (status, _) = api
        .put(&statuses, report("dns", 1, "2030-01-01T00:00:05Z", "True"))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (_, reconciled) = api.get(&format!("/clusters/{id}")).await;
    let c = condition(&reconciled, "Reconciled");
    assert_eq!(c["status"], "True");
    assert_eq!(
        c["last_updated_time"], "2030-01-01T00:00:05Z",
        "oldest report at the generation"
    );
    assert_eq!(condition(&reconciled, "DnsSuccessful")["status"], "True");

    // Stale, ahead and Unknown-after-True reports are discarded.
    for body in [
        report("validator", 1, "2030-01-01T00:00:01Z", "False"),
        report("validator", 2, "2030-01-01T00:01:00Z", "True"),
        report("validator", 1, "2030-01-01T00:02:00Z", "Unknown"),
    ] {
        let (status, response) = api.put(&statuses, body).await;
        assert_eq!(status, StatusCode::NO_CONTENT, "{response}");
    }
    let (_, unchanged) = api.get(&format!("/clusters/{id}")).await;
    assert_eq!(unchanged["status"], reconciled["status"]);

    let mut missing = report("validator", 1, "2030-01-01T00:03:00Z", "True");
    missing["conditions"]
        .as_array_mut()
        .unwrap()
        .retain(|c| c["type"] != "Health");
    let (status, body) = api.put(&statuses, missing).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("mandatory condition `Health` is missing"),
        "{body}"
    );

    let (status, list) = api.get(&statuses).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["total"], 2);
    let adapters: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["adapter"].as_str().unwrap())
        .collect();
    assert_eq!(adapters, ["validator", "dns"]);
}

#[tokio::test]
async fn deletion_cascades_and_finishes_when_finalized() {
    let api = Api::with_adapters().await;
    let cluster = api.cluster("doomed", json!({})).await;
    let cid = cluster["id"].as_str().unwrap().to_owned();
    let (_, pool) = api
        .post(
            &format!("/clusters/{cid}/nodepools"),
            json!({"kind": "NodePool", "name": "pool", "spec": {}}),
        )
        .await;
    let pid = pool["id"].as_str().unwrap().to_owned();

    let (status, body) = api
        .post(
            &format!("/clusters/{cid}/force-delete"),
            json!({"reason": "stuck"}),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::CONFLICT,
        "force-delete needs a soft delete first: {body}"
    );

    let (status, deleted) = api.delete(&format!("/clusters/{cid}")).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(deleted["generation"], 2);
    assert!(deleted["deleted_time"].is_string() && deleted["deleted_by"] == "fleet-api");
    let (_, pool) = api.get(&format!("/clusters/{cid}/nodepools/{pid}")).await;
    assert_eq!(pool["generation"], 2);
    assert!(pool["deleted_time"].is_string(), "cascaded: {pool}");
    let (again_status, again) = api.delete(&format!("/clusters/{cid}")).await;
    assert_eq!(
        (again_status, again["generation"].clone()),
        (StatusCode::ACCEPTED, json!(2))
    );
    let (status, _) = api
        .patch(&format!("/clusters/{cid}"), json!({"labels": {"a": "b"}}))
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (status, _) = api
        .post(
            &format!("/clusters/{cid}/nodepools"),
            json!({"kind": "NodePool", "name": "late", "spec": {}}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);

    let finalized = |adapter: &str| {
        let mut body = report(adapter, 2, "2030-01-01T00:00:00Z", "True");
        body["conditions"]
            .as_array_mut()
            .unwrap()
            .push(json!({"type": "Finalized", "status": "True"}));
        body
    };
    // The nodepool goes once its adapter finalizes; the cluster once both of its adapters
    // have and no nodepool is left.
    let (status, _) = api
        .put(
            &format!("/clusters/{cid}/nodepools/{pid}/statuses"),
            finalized("validator"),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, _) = api.get(&format!("/clusters/{cid}/nodepools/{pid}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    api.put(&format!("/clusters/{cid}/statuses"), finalized("validator"))
        .await;
    let (status, _) = api.get(&format!("/clusters/{cid}")).await;
    assert_eq!(status, StatusCode::OK, "dns has not finalized yet");
    api.put(&format!("/clusters/{cid}/statuses"), finalized("dns"))
        .await;
    let (status, _) = api.get(&format!("/clusters/{cid}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let stuck = api.cluster("stuck", json!({})).await;
    let sid = stuck["id"].as_str().unwrap();
    api.delete(&format!("/clusters/{sid}")).await;
    let (status, body) = api
        .post(&format!("/clusters/{sid}/force-delete"), json!({}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["errors"][0]["field"], "reason");
    let (status, _) = api
        .post(
            &format!("/clusters/{sid}/force-delete"),
            json!({"reason": "adapter gone"}),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = api.get(&format!("/clusters/{sid}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn bearer_token_guards_the_api_but_not_the_probes() {
    let api = Api::start(|mut c| {
        c.api_token = Some("s3cret".into());
        c
    })
    .await;
    let (status, body) = api.get("/clusters").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["code"], "HYPERFLEET-AUT-001");
    let response = api
        .client
        .get(api.url("/clusters"))
        .bearer_auth("wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["code"], "HYPERFLEET-AUT-002");
    let response = api
        .client
        .get(api.url("/clusters"))
        .bearer_auth("s3cret")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);

    let base = api.running.base_url();
    let ready: Value = api
        .client
        .get(format!("{base}/readyz"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ready["checks"]["database"]["status"], "ok", "{ready}");
    let health = api
        .client
        .get(format!("{base}/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    let metrics = api
        .client
        .get(format!("{}/metrics", api.running.metrics_url()))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(r#"fleet_api_http_requests_total{code="401",method="GET",route="/api/hyperfleet/v1/clusters"} 2"#),
        "{metrics}"
    );
}

#[tokio::test]
async fn seeding_makes_a_fleet_at_rest() {
    let db = TestDatabase::new().await;
    let pool = fleet_api::store::connect(&db.url, 2).await.unwrap();
    let at = chrono::Utc::now() - chrono::Duration::minutes(5);
    let inserted = fleet_api::store::seed_clusters(
        &pool,
        "bench",
        12_000,
        4,
        Some(at),
        &["validator".to_owned()],
    )
    .await
    .unwrap();
    assert_eq!(inserted, 12_000);
    let api = App::build(Config::local(&db.url).with_required_adapters(&["validator"], &[]))
        .await
        .unwrap()
        .spawn();
    let client = Client::new();
    let page: Value = client
        .get(format!(
            "{}/api/hyperfleet/v1/clusters?search=labels.shard%3D%273%27&size=1",
            api.base_url()
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(page["total"], 3_000);
    assert_eq!(condition(&page["items"][0], "Reconciled")["status"], "True");
    let statuses: Value = client
        .get(format!(
            "{}/api/hyperfleet/v1/clusters/{}/statuses",
            api.base_url(),
            page["items"][0]["id"].as_str().unwrap()
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(statuses["items"][0]["adapter"], "validator");
}

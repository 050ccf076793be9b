//! The HTTP interface: Euphrosyne's `POST /webhook` goes through the alert queue; every
//! endpoint refuses what it cannot use with a precise problem; probes and metrics.

mod common;

use common::*;
use serde_json::{Value, json};
use steadfast_test_support::eventually_async;

fn notification() -> Value {
    json!({
        "receiver": "grafana",
        "status": "firing",
        "orgId": 1,
        "groupKey": "{}:{alertname=\"HighErrorRate\"}",
        "groupLabels": {"alertname": "HighErrorRate"},
        "commonLabels": {"alertname": "HighErrorRate"},
        "externalURL": "http://grafana:3000/",
        "alerts": [{
            "status": "firing",
            "labels": {"alertname": "HighErrorRate", "pod": "web-3"},
            "annotations": {},
            "startsAt": "2025-06-01T10:00:00Z",
            "fingerprint": "0011223344556677",
            "dashboardURL": "http://grafana:3000/d/errors"
        }]
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn post_webhook_goes_through_the_alert_queue() {
    let h = Harness::standard().await;
    let app = h.start().await;
    let probe = h
        .broker
        .probe("webhook", &h.broker.name("webhooks"), "alertmanager.#")
        .await;

    let (status, body) = app.post("/webhook", None, &notification()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        json!({"message": "Alert received and processed", "alerts": 1})
    );

    // The alert went over the broker like any receiver event ...
    let (event, raw) = probe.next_event::<Value>(WAIT).await;
    assert_eq!(event.event_type, "io.prometheus.alertmanager.alert");
    assert_eq!(raw.header("message-type").as_deref(), Some("alertmanager"));
    assert_eq!(
        event.id,
        alert_reconciler::alert::alert_event_id(
            "0011223344556677",
            alert_reconciler::alert::AlertStatus::Firing,
            "2025-06-01T10:00:00Z"
        )
    );
    assert_eq!(event.data["groupKey"], "{}:{alertname=\"HighErrorRate\"}");
    assert_eq!(event.data["dashboardURL"], "http://grafana:3000/d/errors");

    // ... and opened an incident whose recipes got Grafana's extras in data.json.
    let id = app.only_incident().await;
    let body = app.wait_state(&id, "awaiting_approval").await;
    assert_eq!(body["incident"]["receiver"], "grafana");
    let analysis = h.message(1).await;
    assert!(analysis.markdown.unwrap().contains("pod web-3 answers 5xx"));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn post_webhook_refuses_what_it_cannot_use() {
    let mut h = Harness::standard().await;
    h.config.webhook_token = Some("webhook-token".into());
    let app = h.start().await;
    let client = reqwest::Client::new();
    let url = format!("{}/webhook", app.base);

    let (status, _) = app.post("/webhook", None, &notification()).await;
    assert_eq!(status, 401);
    let (status, _) = app.post("/webhook", Some("wrong"), &notification()).await;
    assert_eq!(status, 401);

    let cases: Vec<(reqwest::RequestBuilder, u16, &str)> = vec![
        (
            client.post(&url).bearer_auth("webhook-token").body("{}"),
            415,
            "expected Content-Type application/json, got none",
        ),
        (
            client
                .post(&url)
                .bearer_auth("webhook-token")
                .header("content-type", "application/json")
                .body("{\"alerts\": "),
            400,
            "malformed JSON",
        ),
        (
            client
                .post(&url)
                .bearer_auth("webhook-token")
                .json(&json!({"receiver": "x"})),
            400,
            "invalid notification: missing `alerts`",
        ),
        (
            client
                .post(&url)
                .bearer_auth("webhook-token")
                .json(&json!({"alerts": [{"status": "pending"}]})),
            400,
            "invalid notification: alerts[0]: `status` must be `firing` or `resolved`, not `pending`",
        ),
        (
            client
                .post(&url)
                .bearer_auth("webhook-token")
                .header("content-type", "application/json")
                .body(vec![b' '; alert_reconciler::api::MAX_WEBHOOK_BYTES + 1]),
            413,
            "the request body exceeds 4194304 bytes",
        ),
    ];
    for (request, expected_status, expected) in cases {
        let response = request.send().await.unwrap();
        assert_eq!(response.status().as_u16(), expected_status);
        assert_eq!(
            response.headers()["content-type"],
            "application/problem+json"
        );
        let problem: Value = response.json().await.unwrap();
        assert!(
            problem["detail"].as_str().unwrap().starts_with(expected),
            "{problem}"
        );
    }
    let (status, body) = app
        .post("/webhook", Some("webhook-token"), &notification())
        .await;
    assert_eq!(status, 200, "{body}");
    app.only_incident().await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn incidents_status_and_recipes_are_readable_with_the_token_only() {
    let h = Harness::standard().await;
    let app = h.start().await;
    let (id, _) = h.analysed_incident(&app).await;

    for path in [
        "/api/incidents".to_owned(),
        format!("/api/incidents/{id}"),
        "/api/recipes".to_owned(),
    ] {
        let response = app
            .client
            .get(format!("{}{path}", app.base))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 401, "{path}");
    }
    let (status, _) = app.post("/api/status", None, &json!({})).await;
    assert_eq!(status, 401);

    let (status, list) = app
        .get("/api/incidents?state=awaiting_approval&limit=10")
        .await;
    assert_eq!(status, 200);
    assert_eq!(list["incidents"][0]["id"], id.as_str());
    let (_, none) = app.get("/api/incidents?state=resolved").await;
    assert_eq!(none["incidents"], json!([]));
    for (path, expected) in [
        (
            "/api/incidents?state=open",
            "`state` must be one of received, investigating, awaiting_approval, executing, resolved, expired, not `open`",
        ),
        (
            "/api/incidents?limit=0",
            "`limit` must be a number from 1 to 500",
        ),
        (
            "/api/incidents/not-a-uuid",
            "`not-a-uuid` is not an incident id (a UUID)",
        ),
    ] {
        let (status, problem) = app.get(path).await;
        assert_eq!(status, 400, "{path}");
        assert_eq!(problem["detail"], expected);
    }
    let (status, _) = app
        .get(&format!("/api/incidents/{}", uuid::Uuid::new_v4()))
        .await;
    assert_eq!(status, 404);

    // Euphrosyne's status: the incident's recipes as Jobs.
    let (status, body) = app
        .post("/api/status", Some(API_TOKEN), &json!({"uuid": id}))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["message"], "Status Request received and processed");
    let mut statuses: Vec<(String, String)> = body["status"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["labels"]["recipe"].as_str().unwrap().to_owned(),
                s["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    statuses.sort();
    assert_eq!(
        statuses,
        vec![
            ("broken".into(), "Failed".into()),
            ("check-errors".into(), "Completed".into())
        ]
    );
    let (status, problem) = app
        .post("/api/status", Some(API_TOKEN), &json!({"uuid": 7}))
        .await;
    assert_eq!(
        (status, problem["detail"].as_str().unwrap()),
        (400, "`uuid` must be a string")
    );
    let (status, body) = app.post("/api/status", Some(API_TOKEN), &json!({})).await;
    assert_eq!(
        (status, body["status"].clone()),
        (200, json!([])),
        "nothing runs now"
    );

    let (status, recipes) = app.get("/api/recipes").await;
    assert_eq!(status, 200);
    assert_eq!(recipes["executor"], "local");
    let names: Vec<&str> = recipes["debugging"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["broken", "check-errors", "disk"]);
    assert_eq!(
        recipes["debugging"][1]["env"],
        json!(["RECIPE_BIN"]),
        "names only, never values"
    );
    assert!(recipes["registry"]["last_error"].is_null());
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn probes_and_metrics() {
    let h = Harness::standard().await;
    let app = h.start().await;
    let ready: Value = app
        .client
        .get(format!("{}/readyz", app.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for check in ["broker", "redis", "database", "recipes"] {
        assert_eq!(ready["checks"][check]["status"], "ok", "{ready}");
    }
    let health = app
        .client
        .get(format!("{}/healthz", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    h.analysed_incident(&app).await;
    let metrics = eventually_async("incident gauges", WAIT, || async {
        let text = app.metrics_text().await;
        text.contains(r#"steadfast_reconciler_incidents{state="awaiting_approval"} 1"#)
            .then_some(text)
    })
    .await;
    for name in [
        r#"steadfast_reconciler_alerts_received_total{status="firing"} 1"#,
        r#"steadfast_reconciler_chat_deliveries_total{outcome="sent",sink="webex"} 1"#,
        "steadfast_reconciler_recipe_duration_seconds_bucket",
        "steadfast_reconciler_time_to_report_seconds_bucket",
        "steadfast_messages_consumed_total",
    ] {
        assert!(metrics.contains(name), "{name} missing:\n{metrics}");
    }
    app.stop().await;
}

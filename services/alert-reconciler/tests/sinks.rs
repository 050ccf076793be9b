//! Euphrosyne's bot interface and a generic chat webhook as sinks, beside Webex: what each
//! receives for an analysis, an outcome and a status request; a sink that fails for a while
//! still gets its report.

mod common;

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use common::*;
use serde_json::{Value, json};
use steadfast_test_support::{eventually, spawn_http};

#[derive(Clone, Default)]
struct Recorder {
    requests: Arc<Mutex<Vec<(String, Value)>>>,
    /// Answer 503 to this many requests first.
    failures: Arc<Mutex<usize>>,
}

impl Recorder {
    fn bodies(&self, path: &str) -> Vec<Value> {
        self.requests
            .lock()
            .unwrap()
            .iter()
            .filter(|(p, _)| p == path)
            .map(|(_, b)| b.clone())
            .collect()
    }
}

async fn record(
    State(recorder): State<Recorder>,
    uri: axum::http::Uri,
    body: axum::Json<Value>,
) -> StatusCode {
    {
        let mut failures = recorder.failures.lock().unwrap();
        if *failures > 0 {
            *failures -= 1;
            return StatusCode::SERVICE_UNAVAILABLE;
        }
    }
    recorder
        .requests
        .lock()
        .unwrap()
        .push((uri.path().to_owned(), body.0));
    StatusCode::OK
}

async fn server(recorder: Recorder) -> String {
    spawn_http(
        Router::new()
            .route("/api/analysis", post(record))
            .route("/api/status", post(record))
            .route("/hooks/chat", post(record))
            .with_state(recorder),
    )
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn the_bot_and_the_chat_webhook_get_analyses_outcomes_and_status() {
    let mut h = Harness::standard().await;
    let bot = Recorder::default();
    *bot.failures.lock().unwrap() = 2;
    let bot_url = server(bot.clone()).await;
    let chat = Recorder::default();
    let chat_url = format!("{}/hooks/chat", server(chat.clone()).await);
    h.config.sinks.bot_url = Some(bot_url.parse().unwrap());
    h.config.sinks.chat_webhook_url = Some(chat_url.parse().unwrap());
    let app = h.start().await;
    let (id, _) = h.analysed_incident(&app).await;

    // Euphrosyne's bot: {uuid, actions, analysis}, after two 503s.
    let analysis = eventually("the bot's analysis", WAIT, || {
        bot.bodies("/api/analysis").first().cloned()
    })
    .await;
    assert_eq!(
        analysis,
        json!({
            "uuid": id,
            "actions": ["restart-web"],
            "analysis": format!("Recipe 'check-errors' completed successfully in response to incident '{id}': pod web-1 answers 5xx since the 10:00 deploy "),
        })
    );
    // The chat webhook: Slack-style text plus the structured report.
    let hook = eventually("the chat webhook's analysis", WAIT, || {
        chat.bodies("/hooks/chat").first().cloned()
    })
    .await;
    assert!(
        hook["text"]
            .as_str()
            .unwrap()
            .contains("pod web-1 answers 5xx"),
        "{hook}"
    );
    assert_eq!(hook["report"]["kind"], "analysis");
    assert_eq!(hook["report"]["incident"]["id"], id.as_str());
    assert_eq!(hook["report"]["actions"][0]["name"], "restart-web");
    assert!(hook["report"]["actions"][0]["approval_id"].is_string());

    // The bot approves as Euphrosyne's did, with the uuid it was given; the outcome follows.
    let (status, accepted) = app
        .post(
            "/api/actions",
            Some(API_TOKEN),
            &json!({"uuid": id, "actions": [{"name": "restart-web", "data": {}}]}),
        )
        .await;
    assert_eq!(status, 202, "{accepted}");
    let outcome = eventually("the bot's outcome", WAIT, || {
        bot.bodies("/api/analysis").get(1).cloned()
    })
    .await;
    assert_eq!(outcome["uuid"], id.as_str());
    assert_eq!(outcome["actions"], json!([]));
    assert!(
        outcome["analysis"]
            .as_str()
            .unwrap()
            .starts_with("Recipe 'restart-web' completed successfully")
    );
    let hook = eventually("the chat webhook's outcome", WAIT, || {
        chat.bodies("/hooks/chat").get(1).cloned()
    })
    .await;
    assert_eq!(hook["report"]["kind"], "outcome");
    assert_eq!(hook["report"]["approved_by"], "api");

    // POST /api/status is answered and pushed to the bot, as Euphrosyne did.
    let (status, body) = app
        .post("/api/status", Some(API_TOKEN), &json!({"uuid": id}))
        .await;
    assert_eq!(status, 200);
    let pushed = eventually("the status push", WAIT, || {
        bot.bodies("/api/status").first().cloned()
    })
    .await;
    assert_eq!(pushed, body["status"]);
    assert_eq!(
        pushed.as_array().unwrap().len(),
        3,
        "two debugging recipes and one action"
    );

    let body = app.incident(&id).await;
    let bot_delivery = body["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["sink"] == "euphrosyne-bot")
        .unwrap();
    assert_eq!(bot_delivery["state"], "sent");
    app.stop().await;
}

//! Approvals are what lets a recipe touch production: every way to get one wrong is refused
//! with its own status, and nothing runs.

mod common;

use std::time::Duration;

use common::*;
use fake_webex::{send_callback, send_callback_with_signature, sign};
use serde_json::{Value, json};

fn callback_url(app: &Running) -> String {
    format!("{}/webex/attachment-actions", app.base)
}

#[tokio::test(flavor = "multi_thread")]
async fn webex_callbacks_are_verified_authorised_and_single_use() {
    let h = Harness::standard().await;
    let app = h.start().await;
    let (id, analysis) = h.analysed_incident(&app).await;
    let button = analysis.submit_actions()[0].1.clone();
    let url = callback_url(&app);

    // Forged: signed with another secret, or not signed at all → 401, nothing fetched.
    let action = h
        .webex
        .create_attachment_action(&analysis.id, ALICE, button.clone());
    let body = h.webex.notification_body(&action);
    let forged = send_callback(&url, Some("not-the-secret"), &body).await;
    assert_eq!(forged.status, 401, "{}", forged.body);
    assert!(
        forged.body.contains("missing or invalid X-Spark-Signature"),
        "{}",
        forged.body
    );
    let unsigned = send_callback_with_signature(&url, None, &body).await;
    assert_eq!(unsigned.status, 401);
    let garbage = send_callback_with_signature(&url, Some("zz-not-hex"), &body).await;
    assert_eq!(garbage.status, 401);
    // A valid signature over other bytes does not transfer.
    let mut tampered = body.clone();
    tampered.extend_from_slice(b" ");
    let moved = send_callback_with_signature(&url, Some(&sign(SECRET, &body)), &tampered).await;
    assert_eq!(moved.status, 401);
    assert!(
        !h.webex
            .requests()
            .iter()
            .any(|r| r.path.starts_with("/v1/attachment/actions")),
        "nothing was fetched for an unverified callback"
    );

    // Someone who is not an approver → 403.
    let mallory = h.webex.submit(&analysis.id, MALLORY, button.clone()).await;
    assert_eq!(mallory[0].status, 403, "{}", mallory[0].body);
    assert!(
        mallory[0]
            .body
            .contains("person person-mallory may not approve actions")
    );

    // The button pressed on a message that is not the card (another message in the room),
    // or outside the room → 403.
    let other: Value = reqwest::Client::new()
        .post(format!("{}/messages", h.webex.api_url()))
        .bearer_auth(BOT_TOKEN)
        .json(&json!({"roomId": ROOM, "text": "some other message"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let elsewhere = h
        .webex
        .submit(other["id"].as_str().unwrap(), ALICE, button.clone())
        .await;
    assert_eq!(elsewhere[0].status, 403, "{}", elsewhere[0].body);
    assert!(
        elsewhere[0]
            .body
            .contains("this approval is not on that message")
    );
    let unknown_room = h
        .webex
        .submit("message-in-another-room", ALICE, button.clone())
        .await;
    assert_eq!(unknown_room[0].status, 403);
    assert!(unknown_room[0].body.contains("not in the room"));

    // Inputs without an approval id → 400.
    let no_id = h
        .webex
        .submit(&analysis.id, ALICE, json!({"action": "restart-web"}))
        .await;
    assert_eq!(no_id[0].status, 400);
    assert_eq!(h.restarts(), 0, "nothing ran so far");

    // Alice → 200, the action runs once.
    let approved = h.webex.submit(&analysis.id, ALICE, button.clone()).await;
    assert_eq!(approved[0].status, 200, "{}", approved[0].body);
    // #2 is the other message posted above; #3 the outcome.
    let outcome = h.message(3).await;
    assert_eq!(outcome.parent_id.as_deref(), Some(analysis.id.as_str()));

    // Pressing again, or replaying the very same signed callback → 409.
    let again = h.webex.submit(&analysis.id, ALICE, button.clone()).await;
    assert_eq!(again[0].status, 409, "{}", again[0].body);
    assert!(
        again[0]
            .body
            .contains("already approved by webex:person-alice"),
        "{}",
        again[0].body
    );
    let action = h
        .webex
        .create_attachment_action(&analysis.id, ALICE, button.clone());
    let body = h.webex.notification_body(&action);
    let first = send_callback(&url, Some(SECRET), &body).await;
    let replay = send_callback(&url, Some(SECRET), &body).await;
    assert_eq!((first.status, replay.status), (409, 409));
    assert_eq!(h.restarts(), 1, "the action ran exactly once");

    let metrics = app.metrics_text().await;
    for decision in ["bad_signature", "forbidden", "replayed", "approved"] {
        assert!(
            metrics.contains(&format!("decision=\"{decision}\",via=\"webex\"")),
            "{decision} not counted:\n{metrics}"
        );
    }
    let body = app.incident(&id).await;
    assert_eq!(body["approvals"][0]["state"], "approved");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_expired_approval_answers_410_and_the_incident_expires() {
    let mut h = Harness::standard().await;
    h.config.approval_ttl = Duration::from_millis(400);
    let app = h.start().await;
    let (id, analysis) = h.analysed_incident(&app).await;
    let button = analysis.submit_actions()[0].1.clone();

    // The sweeper closes the window (the wait is the behaviour under test: the TTL passing).
    let body = app.wait_state(&id, "expired").await;
    assert_eq!(body["approvals"][0]["state"], "expired");
    assert!(audit_actions(&body).contains(&"approval window expired".to_owned()));

    let late = h.webex.submit(&analysis.id, ALICE, button).await;
    assert_eq!(late[0].status, 410, "{}", late[0].body);
    assert!(late[0].body.contains("expired"), "{}", late[0].body);
    let (status, problem) = app
        .post(
            "/api/actions",
            Some(API_TOKEN),
            &json!({"uuid": id, "actions": [{"name": "restart-web"}]}),
        )
        .await;
    assert_eq!(status, 410, "{problem}");
    assert_eq!(h.restarts(), 0);
    let closed = h.message(2).await;
    assert!(
        closed
            .markdown
            .unwrap()
            .contains("is expired: no action was approved within")
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn api_actions_need_the_token_and_a_suggested_action_unless_forced() {
    let h = Harness::standard().await;
    let app = h.start().await;
    let (id, _) = h.analysed_incident(&app).await;
    let request = json!({"uuid": id, "actions": [{"name": "restart-web"}]});

    // No token, a wrong one → 401 with a challenge.
    let (status, problem) = app.post("/api/actions", None, &request).await;
    assert_eq!(status, 401);
    assert_eq!(problem["detail"], "missing or invalid credentials");
    let (status, _) = app
        .post("/api/actions", Some("wrong-token-wrong-token"), &request)
        .await;
    assert_eq!(status, 401);
    let challenge = reqwest::Client::new()
        .post(format!("{}/api/actions", app.base))
        .json(&request)
        .send()
        .await
        .unwrap();
    assert_eq!(
        challenge.headers()["www-authenticate"],
        "Bearer realm=\"alert-reconciler\""
    );

    // Bad bodies → 400/404/415 with the reason.
    let cases = [
        (
            json!({"uuid": id, "actions": []}),
            400,
            "`actions` is empty: name at least one action",
        ),
        (
            json!({"uuid": "nope", "actions": [{"name": "x"}]}),
            400,
            "`uuid` `nope` is not a UUID",
        ),
        (
            json!({"actions": [{"name": "x"}]}),
            400,
            "invalid request body: missing field `uuid`",
        ),
        (
            json!({"uuid": id, "actions": [{"name": "x", "data": [1]}]}),
            400,
            "the `data` of action `x` must be an object",
        ),
        (
            json!({"uuid": uuid::Uuid::new_v4(), "actions": [{"name": "x"}]}),
            404,
            "no incident",
        ),
    ];
    for (body, expected_status, expected) in cases {
        let (status, problem) = app.post("/api/actions", Some(API_TOKEN), &body).await;
        assert_eq!(status, expected_status, "{body}: {problem}");
        assert!(
            problem["detail"].as_str().unwrap().contains(expected),
            "{problem}"
        );
    }
    let text = reqwest::Client::new()
        .post(format!("{}/api/actions", app.base))
        .bearer_auth(API_TOKEN)
        .body("uuid=1")
        .send()
        .await
        .unwrap();
    assert_eq!(text.status(), 415);

    // Not suggested → 422 (no recipe of that name: 422 even forced).
    let jira = json!({"uuid": id, "actions": [{"name": "restart-web"}, {"name": "jira"}]});
    let (status, problem) = app.post("/api/actions", Some(API_TOKEN), &jira).await;
    assert_eq!(status, 422, "{problem}");
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("`jira` was not suggested")
    );
    assert_eq!(
        h.restarts(),
        0,
        "all or nothing: restart-web did not run either"
    );
    let mut forced = jira.clone();
    forced["force"] = json!(true);
    let (status, problem) = app.post("/api/actions", Some(API_TOKEN), &forced).await;
    assert_eq!(status, 422);
    assert_eq!(
        problem["detail"],
        "no enabled action recipe is named `jira`"
    );

    // The suggested action, by the bot with its approver → 202; again → 409.
    let mut by_bot = request.clone();
    by_bot["approver"] = json!("bob@example.com");
    let (status, accepted) = app.post("/api/actions", Some(API_TOKEN), &by_bot).await;
    assert_eq!(status, 202, "{accepted}");
    assert_eq!(accepted["runs"][0]["action"], "restart-web");
    assert_eq!(accepted["runs"][0]["forced"], false);
    let (status, problem) = app.post("/api/actions", Some(API_TOKEN), &request).await;
    assert_eq!(status, 409, "{problem}");
    assert!(
        h.message(2)
            .await
            .markdown
            .unwrap()
            .contains("approved by api:bob@example.com")
    );

    // An action recipe that was not suggested, forced → 202, audited as forced.
    let forced_restart = json!({"uuid": id, "actions": [{"name": "restart-db", "data": {"pod": "db-0"}}], "force": true});
    let mut h2_yaml = std::fs::read_to_string(h.dir.join("recipes.yaml")).unwrap();
    h2_yaml.push_str(&format!(
        "  restart-db:\n    entrypoint: ./restart-web.sh\n    env: {{RECIPE_BIN: \"{}\", MARKER: \"{}\"}}\n",
        recipe_bin(),
        h.dir.join("restarted.txt").display()
    ));
    std::fs::write(h.dir.join("recipes.yaml"), h2_yaml).unwrap();
    let (status, accepted) =
        steadfast_test_support::eventually_async("restart-db to be loaded", WAIT, || async {
            let (status, body) = app
                .post("/api/actions", Some(API_TOKEN), &forced_restart)
                .await;
            (status != 422).then_some((status, body))
        })
        .await;
    assert_eq!(status, 202, "{accepted}");
    assert_eq!(accepted["runs"][0]["forced"], true);

    let body = steadfast_test_support::eventually_async("both actions reported", WAIT, || async {
        let body = app.incident(&id).await;
        let done = body["audit"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["action"] == "action completed")
            .count();
        (done == 2).then_some(body)
    })
    .await;
    let audit = body["audit"].as_array().unwrap();
    let approved = audit
        .iter()
        .find(|e| e["action"] == "action approved")
        .unwrap();
    assert_eq!(approved["actor"], "api:bob@example.com");
    let forced = audit
        .iter()
        .find(|e| e["action"] == "action forced")
        .unwrap();
    assert_eq!(forced["actor"], "api");
    assert_eq!(forced["detail"]["forced"], true);
    assert_eq!(h.restarts(), 2);
    let restarted = std::fs::read_to_string(h.dir.join("restarted.txt")).unwrap();
    assert_eq!(restarted.lines().collect::<Vec<_>>(), vec!["web-1", "db-0"]);
    let forced_message = h.message(3).await;
    assert!(
        forced_message
            .markdown
            .unwrap()
            .contains("(forced: not suggested)")
    );
    app.stop().await;
}

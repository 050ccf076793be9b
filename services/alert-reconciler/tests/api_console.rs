//! What the web console needs of the API: incidents a page at a time with counts per state,
//! and rejecting a suggested action — final, audited, refused like an approval.

mod common;

use common::*;
use serde_json::{Value, json};
use steadfast_test_support::eventually_async;
use uuid::Uuid;

/// Writes an incident as intake would leave it, `seconds_ago` old: paging needs exact opening
/// times (ties included), which alerts cannot give. No approval window, so no sweep moves it.
async fn seed(pool: &sqlx::PgPool, id: Uuid, state: &str, seconds_ago: f64) {
    sqlx::query(
        "INSERT INTO incidents (id, group_key, state, title, receiver, labels, group_data, opened_at) \
         VALUES ($1, $2, $3, 'seeded', 'reconciler', '{}', '{}', \
                 date_trunc('second', now()) - make_interval(secs => $4))",
    )
    .bind(id)
    .bind(format!("group-{id}"))
    .bind(state)
    .bind(seconds_ago)
    .execute(pool)
    .await
    .unwrap();
}

fn ids(page: &Value) -> Vec<String> {
    page["incidents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_owned())
        .collect()
}

/// Follows `next_before` from the first page of `query` to the last; every page's ids.
async fn walk(app: &Running, query: &str) -> Vec<Vec<String>> {
    let mut pages = Vec::new();
    let mut path = format!("/api/incidents?{query}");
    loop {
        let (status, page) = app.get(&path).await;
        assert_eq!(status, 200, "{path}: {page}");
        pages.push(ids(&page));
        match page["next_before"].as_str() {
            Some(next) => path = format!("/api/incidents?{query}&before={next}"),
            None => return pages,
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn incidents_page_newest_first_with_counts_per_state() {
    let h = Harness::standard().await;
    let app = h.start().await;
    let pool = h.pool().await;
    // Oldest to newest; the two awaiting incidents opened in the same second are ordered by id.
    let id = |n: u128| Uuid::from_u128(n);
    seed(&pool, id(1), "resolved", 600.0).await;
    seed(&pool, id(2), "awaiting_approval", 500.0).await;
    seed(&pool, id(3), "resolved", 400.0).await;
    seed(&pool, id(4), "awaiting_approval", 300.0).await;
    seed(&pool, id(5), "awaiting_approval", 300.0).await;
    seed(&pool, id(6), "expired", 200.0).await;
    let names = |ns: &[u128]| -> Vec<String> { ns.iter().map(|n| id(*n).to_string()).collect() };

    let (status, first) = app.get("/api/incidents?limit=2").await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(ids(&first), names(&[6, 5]));
    assert_eq!(first["next_before"], id(5).to_string());
    let expected_counts = json!({
        "received": 0, "investigating": 0, "awaiting_approval": 3,
        "executing": 0, "resolved": 2, "expired": 1,
    });
    assert_eq!(first["counts"], expected_counts);

    // Every incident exactly once, newest first, the last page saying it is the last.
    assert_eq!(
        walk(&app, "limit=2").await,
        vec![names(&[6, 5]), names(&[4, 3]), names(&[2, 1])]
    );
    let (_, last) = app
        .get(&format!("/api/incidents?limit=2&before={}", id(3)))
        .await;
    assert_eq!(ids(&last), names(&[2, 1]));
    assert_eq!(last["next_before"], Value::Null);
    assert_eq!(last["counts"], expected_counts, "counts ignore paging");
    let (_, beyond) = app.get(&format!("/api/incidents?before={}", id(1))).await;
    assert_eq!(beyond["incidents"], json!([]));

    // Of one state, across the tie one at a time; counts still cover every state.
    assert_eq!(
        walk(&app, "state=awaiting_approval&limit=1").await,
        vec![names(&[5]), names(&[4]), names(&[2])]
    );
    let (_, awaiting) = app
        .get(&format!(
            "/api/incidents?state=awaiting_approval&before={}",
            id(5)
        ))
        .await;
    assert_eq!(ids(&awaiting), names(&[4, 2]));
    assert_eq!(awaiting["counts"], expected_counts);
    // `before` may name an incident of another state: the page continues below it.
    let (_, after_expired) = app
        .get(&format!(
            "/api/incidents?state=resolved&limit=1&before={}",
            id(6)
        ))
        .await;
    assert_eq!(ids(&after_expired), names(&[3]));
    assert_eq!(after_expired["next_before"], id(3).to_string());

    let missing = Uuid::from_u128(99);
    for (path, expected) in [
        (
            "/api/incidents?page=2".to_owned(),
            "unknown query parameter `page`; expected state, limit or before".to_owned(),
        ),
        (
            "/api/incidents?limit=2&sort=asc".to_owned(),
            "unknown query parameter `sort`; expected state, limit or before".to_owned(),
        ),
        (
            "/api/incidents?before=yesterday".to_owned(),
            "`before` must be an incident id (a UUID), not `yesterday`".to_owned(),
        ),
        (
            format!("/api/incidents?before={missing}"),
            format!("`before` names no incident: `{missing}` does not exist"),
        ),
        (
            "/api/incidents?limit=1&limit=2".to_owned(),
            "query parameter `limit` is given more than once".to_owned(),
        ),
        (
            "/api/incidents?limit=501".to_owned(),
            "`limit` must be a number from 1 to 500".to_owned(),
        ),
    ] {
        let (status, problem) = app.get(&path).await;
        assert_eq!(status, 400, "{path}: {problem}");
        assert_eq!(problem["detail"], expected.as_str(), "{path}");
    }
    app.stop().await;
}

fn reject_body(id: &str, approver: &str, reason: Option<&str>) -> Value {
    let mut body = json!({"uuid": id, "action": "restart-web", "approver": approver});
    if let Some(reason) = reason {
        body["reason"] = json!(reason);
    }
    body
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rejection_is_final_audited_and_shown_on_the_incident() {
    let h = Harness::standard().await;
    let app = h.start().await;
    let (id, analysis) = h.analysed_incident(&app).await;
    let button = analysis.submit_actions()[0].1.clone();
    // The recipes' `uuid` (the debugging run) names the incident as well as its id.
    let run = app.incident(&id).await["runs"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let (status, rejected) = app
        .post(
            "/api/actions/reject",
            Some(API_TOKEN),
            &reject_body(&run, "console:alice", Some("  not during the sale  ")),
        )
        .await;
    assert_eq!(status, 200, "{rejected}");
    assert_eq!(rejected["message"], "Action rejected");
    assert_eq!(rejected["incident"], id.as_str());
    let approval = &rejected["approval"];
    assert_eq!(approval["action"], "restart-web");
    assert_eq!(approval["state"], "rejected");
    assert_eq!(approval["decided_by"], "api:console:alice");
    assert_eq!(approval["reason"], "not during the sale");
    let at = approval["decided_at"].as_str().unwrap().to_owned();
    let refusal = format!(
        "action `restart-web` was rejected by api:console:alice at {at} (reason: not during the sale); the decision is final"
    );

    // Rejecting again, approving through the API (forced or not) or the card's button: 409
    // naming who rejected it and when; nothing runs.
    let (status, problem) = app
        .post(
            "/api/actions/reject",
            Some(API_TOKEN),
            &reject_body(&id, "console:bob", None),
        )
        .await;
    assert_eq!((status, problem["detail"].as_str()), (409, Some(&*refusal)));
    for force in [false, true] {
        let (status, problem) = app
            .post(
                "/api/actions",
                Some(API_TOKEN),
                &json!({"uuid": id, "actions": [{"name": "restart-web"}], "approver": "console:bob", "force": force}),
            )
            .await;
        assert_eq!(
            (status, problem["detail"].as_str()),
            (409, Some(&*refusal)),
            "force: {force}"
        );
    }
    // The card's button is valid once the outbox recorded which message carries it.
    eventually_async("the card's message to be recorded", WAIT, || async {
        let body = app.incident(&id).await;
        body["approvals"][0]["message_id"].is_string().then_some(())
    })
    .await;
    let pressed = h.webex.submit(&analysis.id, ALICE, button).await;
    assert_eq!(pressed[0].status, 409, "{}", pressed[0].body);
    assert!(
        pressed[0]
            .body
            .contains("was rejected by api:console:alice"),
        "{}",
        pressed[0].body
    );
    assert_eq!(h.restarts(), 0);

    // The incident shows the decision; it still awaits approval of what else is suggested.
    let body = app.incident(&id).await;
    assert_eq!(body["incident"]["state"], "awaiting_approval");
    assert_eq!(body["approvals"][0], *approval);
    let entry = body["audit"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "action rejected")
        .expect("the rejection is audited");
    assert_eq!(entry["actor"], "api:console:alice");
    assert_eq!(
        entry["detail"],
        json!({"action": "restart-web", "approval": approval["id"], "via": "api", "reason": "not during the sale"})
    );
    assert_eq!(
        audit_actions(&body)
            .iter()
            .filter(|a| a.starts_with("action "))
            .count(),
        1,
        "nothing but the rejection was decided: {:?}",
        audit_actions(&body)
    );
    let metrics = app.metrics_text().await;
    for decision in ["rejected", "already_rejected"] {
        assert!(
            metrics.contains(&format!("decision=\"{decision}\",via=\"api\"")),
            "{decision} not counted:\n{metrics}"
        );
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_approval_by_the_console_names_its_user_and_cannot_be_rejected() {
    let h = Harness::standard().await;
    let app = h.start().await;
    let (id, _) = h.analysed_incident(&app).await;

    let (status, accepted) = app
        .post(
            "/api/actions",
            Some(API_TOKEN),
            &json!({"uuid": id, "actions": [{"name": "restart-web"}], "approver": "console:alice"}),
        )
        .await;
    assert_eq!(status, 202, "{accepted}");
    let (status, problem) = app
        .post(
            "/api/actions/reject",
            Some(API_TOKEN),
            &reject_body(&id, "console:bob", Some("too late")),
        )
        .await;
    assert_eq!(status, 409, "{problem}");
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .starts_with("action `restart-web` was already approved by api:console:alice at "),
        "{problem}"
    );

    let body = app.incident(&id).await;
    let approved = body["audit"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "action approved")
        .expect("the approval is audited");
    assert_eq!(approved["actor"], "api:console:alice");
    assert_eq!(body["approvals"][0]["state"], "approved");
    assert_eq!(body["approvals"][0]["decided_by"], "api:console:alice");
    assert_eq!(body["approvals"][0]["reason"], Value::Null);
    assert!(!audit_actions(&body).contains(&"action rejected".to_owned()));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rejection_is_refused_with_the_reason() {
    let h = Harness::standard().await;
    let app = h.start().await;
    let (id, _) = h.analysed_incident(&app).await;
    let valid = reject_body(&id, "console:alice", None);

    // No token, a wrong one → 401 with a challenge.
    let (status, problem) = app.post("/api/actions/reject", None, &valid).await;
    assert_eq!(status, 401);
    assert_eq!(problem["detail"], "missing or invalid credentials");
    let wrong = app
        .client
        .post(format!("{}/api/actions/reject", app.base))
        .bearer_auth("wrong-token-wrong-token")
        .json(&valid)
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    assert_eq!(
        wrong.headers()["www-authenticate"],
        "Bearer realm=\"alert-reconciler\""
    );

    let unknown = Uuid::new_v4();
    let mut with_force = valid.clone();
    with_force["force"] = json!(true);
    let cases = [
        (
            json!({"uuid": id, "action": "restart-web"}),
            400,
            "invalid request body: missing field `approver`".to_owned(),
        ),
        (
            with_force,
            400,
            "invalid request body: unknown field `force`".to_owned(),
        ),
        (
            reject_body(&id, "  ", None),
            400,
            "`approver` is empty: say who rejects the action".to_owned(),
        ),
        (
            reject_body(&id, &"a".repeat(201), None),
            400,
            "`approver` is 201 characters long; at most 200".to_owned(),
        ),
        (
            json!({"uuid": id, "action": " ", "approver": "console:alice"}),
            400,
            "`action` is empty: name the action to reject".to_owned(),
        ),
        (
            reject_body(&id, "console:alice", Some(&"x".repeat(501))),
            400,
            "`reason` is 501 characters long; at most 500".to_owned(),
        ),
        (
            reject_body("INC-1", "console:alice", None),
            400,
            "`uuid` `INC-1` is not a UUID".to_owned(),
        ),
        (
            reject_body(&unknown.to_string(), "console:alice", None),
            404,
            format!("no incident `{unknown}`"),
        ),
        (
            json!({"uuid": id, "action": "jira", "approver": "console:alice"}),
            422,
            "action `jira` was not suggested for this incident: there is no approval to reject"
                .to_owned(),
        ),
    ];
    for (body, expected_status, expected) in cases {
        let (status, problem) = app
            .post("/api/actions/reject", Some(API_TOKEN), &body)
            .await;
        assert_eq!(status, expected_status, "{body}: {problem}");
        assert!(
            problem["detail"].as_str().unwrap().starts_with(&expected),
            "{body}: {problem}"
        );
    }
    let form = app
        .client
        .post(format!("{}/api/actions/reject", app.base))
        .bearer_auth(API_TOKEN)
        .body("uuid=1")
        .send()
        .await
        .unwrap();
    assert_eq!(form.status(), 415);
    assert_eq!(
        app.incident(&id).await["approvals"][0]["state"],
        "pending",
        "no refusal decided anything"
    );

    // The limit counts characters, not bytes: 500 two-byte characters are a valid reason.
    let long = "é".repeat(500);
    let (status, rejected) = app
        .post(
            "/api/actions/reject",
            Some(API_TOKEN),
            &reject_body(&id, "console:alice", Some(&long)),
        )
        .await;
    assert_eq!(status, 200, "{rejected}");
    assert_eq!(rejected["approval"]["reason"], long.as_str());
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn rejecting_an_expired_approval_answers_410() {
    let mut h = Harness::standard().await;
    h.config.approval_ttl = std::time::Duration::from_millis(400);
    let app = h.start().await;
    h.publish_alert(&alert("checkout", "web-1", "firing")).await;
    let id = app.only_incident().await;
    // The sweeper closes the window (the wait is the behaviour under test: the TTL passing).
    app.wait_state(&id, "expired").await;

    let (status, problem) = app
        .post(
            "/api/actions/reject",
            Some(API_TOKEN),
            &reject_body(&id, "console:alice", None),
        )
        .await;
    assert_eq!(status, 410, "{problem}");
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .starts_with("the approval of `restart-web` expired at "),
        "{problem}"
    );
    let body = app.incident(&id).await;
    assert_eq!(body["approvals"][0]["state"], "expired");
    assert!(!audit_actions(&body).contains(&"action rejected".to_owned()));
    app.stop().await;
}

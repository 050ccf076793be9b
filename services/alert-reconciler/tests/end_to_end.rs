//! The whole flow with the local executor, real Redis, PostgreSQL and RabbitMQ: an alert →
//! two debugging recipes in parallel (one answers with an analysis and a suggested action,
//! the other exits non-zero) → one Webex message with an approve button → a signed callback
//! from an approver → the action recipe runs → its outcome in the thread; then repeats,
//! duplicates and the resolution.

mod common;

use std::time::Duration;

use common::*;
use serde_json::json;
use steadfast_test_support::eventually_async;

#[tokio::test(flavor = "multi_thread")]
async fn alert_to_analysis_to_approved_action_to_outcome() {
    let mut h = Harness::standard().await;
    h.config.recipe_timeout = Duration::from_secs(120);
    let app = h.start().await;

    let firing = alert("checkout", "web-1", "firing");
    let event_id = h.publish_alert(&firing).await;
    let id = app.only_incident().await;

    // One message: the analysis, the failure, and an approve button.
    let analysis = h.message(1).await;
    assert_eq!(analysis.room_id, ROOM);
    let text = analysis.markdown.clone().unwrap();
    assert!(
        text.contains("pod web-1 answers 5xx since the 10:00 deploy"),
        "{text}"
    );
    assert!(text.contains("**broken** — failed"), "{text}");
    assert!(
        text.contains("exited with status 3: cannot reach prometheus"),
        "{text}"
    );
    assert!(text.contains("http://grafana/d/errors"), "{text}");
    let buttons = analysis.submit_actions();
    assert_eq!(buttons.len(), 1, "{buttons:?}");
    assert_eq!(buttons[0].0, "Approve restart-web");

    // Failed at once: the run finished long before its 120 s timeout.
    let body = app.wait_state(&id, "awaiting_approval").await;
    let run = &body["runs"][0];
    assert_eq!(run["kind"], "debugging");
    assert_eq!(run["state"], "completed");
    let broken = run["recipes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["recipe"] == "broken")
        .unwrap();
    assert_eq!(broken["state"], "failed");
    assert_eq!(
        run["recipes"].as_array().unwrap().len(),
        2,
        "`disk` does not match"
    );
    let created =
        chrono::DateTime::parse_from_rfc3339(run["created_at"].as_str().unwrap()).unwrap();
    let completed =
        chrono::DateTime::parse_from_rfc3339(run["completed_at"].as_str().unwrap()).unwrap();
    assert!((completed - created).num_seconds() < 30, "{run}");

    // Alice presses the button; Webex calls us, signed.
    let answers = h
        .webex
        .submit(&analysis.id, ALICE, buttons[0].1.clone())
        .await;
    assert_eq!(answers.len(), 1);
    assert_eq!(answers[0].status, 200, "{}", answers[0].body);

    let outcome = h.message(2).await;
    assert_eq!(
        outcome.parent_id.as_deref(),
        Some(analysis.id.as_str()),
        "replies in the thread"
    );
    let outcome_text = outcome.markdown.unwrap();
    assert!(
        outcome_text.contains("Action `restart-web`"),
        "{outcome_text}"
    );
    assert!(
        outcome_text.contains("approved by webex:person-alice"),
        "{outcome_text}"
    );
    assert!(outcome_text.contains("restarted web-1"), "{outcome_text}");
    // The suggested parameters reached the action recipe.
    let marker = std::fs::read_to_string(h.dir.join("restarted.txt")).unwrap();
    assert_eq!(marker.trim(), "web-1");

    let body = app.wait_state(&id, "awaiting_approval").await;
    let actions = audit_actions(&body);
    for expected in [
        "incident opened",
        "investigation started",
        "investigation completed",
        "analysis reported",
        "action approved",
        "action completed",
        "awaiting further decisions",
    ] {
        assert!(
            actions.contains(&expected.to_owned()),
            "{expected} missing from {actions:?}"
        );
    }
    let approved = body["audit"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "action approved")
        .unwrap();
    assert_eq!(approved["actor"], "webex:person-alice");
    assert_eq!(approved["detail"]["via"], "webex");
    assert_eq!(body["approvals"][0]["state"], "approved");
    assert_eq!(body["approvals"][0]["decided_by"], "webex:person-alice");

    // The same event again (a redelivery) and the same alert in a repeat notification: nothing new.
    h.publish_alert_with_id(&firing, &event_id).await;
    h.publish_alert_with_id(&firing, "repeat-notification-1")
        .await;
    let metrics = eventually_async("both duplicates counted", WAIT, || async {
        let text = app.metrics_text().await;
        (text.contains(
            r#"steadfast_reconciler_alerts_deduplicated_total{reason="duplicate_event"} 1"#,
        ) && text.contains(
            r#"steadfast_reconciler_alerts_deduplicated_total{reason="repeat_notification"} 1"#,
        ))
        .then_some(text)
    })
    .await;
    assert!(metrics.contains(r#"steadfast_reconciler_recipe_runs_total{kind="debugging",outcome="failed",recipe="broken"} 1"#));
    // Every metric an alert rule or dashboard in k8s/components/monitoring names is exported
    // by a reconciler that has been through a whole incident.
    steadfast_test_support::monitoring::assert_exports(
        &metrics,
        &["alert-reconciler", "every-service"],
    );
    let body = app.incident(&id).await;
    assert_eq!(
        body["runs"].as_array().unwrap().len(),
        2,
        "one investigation, one action"
    );
    let (_, list) = app.get("/api/incidents").await;
    assert_eq!(list["incidents"].as_array().unwrap().len(), 1);

    // Resolved: the incident closes and the thread hears of it.
    h.publish_alert(&alert("checkout", "web-1", "resolved"))
        .await;
    let body = app.wait_state(&id, "resolved").await;
    assert!(body["incident"]["closed_at"].is_string());
    let closed = h.message(3).await;
    assert_eq!(closed.parent_id.as_deref(), Some(analysis.id.as_str()));
    assert!(
        closed
            .markdown
            .unwrap()
            .contains("is resolved: all of its alerts resolved")
    );
    assert_eq!(h.webex.messages().len(), 3);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_second_alert_of_the_group_joins_the_incident_and_only_the_last_resolution_closes_it() {
    let mut h = Harness::standard().await;
    h.config.sinks.webex = None;
    let app = h.start().await;
    h.publish_alert(&alert("cart", "web-1", "firing")).await;
    let id = app.only_incident().await;
    h.publish_alert(&alert("cart", "web-2", "firing")).await;
    eventually_async("the second alert on the incident", WAIT, || async {
        let body = app.incident(&id).await;
        (body["alerts"].as_array().unwrap().len() == 2).then_some(())
    })
    .await;
    h.publish_alert(&alert("cart", "web-1", "resolved")).await;
    let body = eventually_async("web-1 resolved", WAIT, || async {
        let body = app.incident(&id).await;
        audit_actions(&body)
            .contains(&"alert resolved".to_owned())
            .then_some(body)
    })
    .await;
    assert_ne!(body["incident"]["state"], "resolved", "web-2 still fires");
    h.publish_alert(&alert("cart", "web-2", "resolved")).await;
    app.wait_state(&id, "resolved").await;
    let body = app.incident(&id).await;
    assert_eq!(
        body["runs"].as_array().unwrap().len(),
        1,
        "one investigation for the group"
    );

    // A new firing notification after the resolution opens a new incident.
    let mut again = alert("cart", "web-1", "firing");
    again["startsAt"] = json!("2025-06-01T12:00:00Z");
    h.publish_alert(&again).await;
    eventually_async("a second incident", WAIT, || async {
        let (_, list) = app.get("/api/incidents").await;
        (list["incidents"].as_array().unwrap().len() == 2).then_some(())
    })
    .await;
    app.stop().await;
}

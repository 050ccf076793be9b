//! The example recipes shipped in `services/alert-reconciler/recipes/` work as written: the
//! registry loads, the shell recipes report through `steadfast-recipe`, and the action recipe
//! takes its parameters.

mod common;

use alert_reconciler::config::RecipeSource;
use common::*;
use serde_json::json;
use steadfast_test_support::eventually_async;

#[tokio::test(flavor = "multi_thread")]
async fn the_shipped_example_recipes_investigate_and_act() {
    let mut h = Harness::new("debugging: {}\n").await;
    h.config.recipes = RecipeSource::File(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("recipes/local.yaml"),
    );
    let app = h.start().await;
    let mut firing = alert("checkout", "web-1", "firing");
    firing["annotations"]["runbook_url"] = json!("https://runbooks.example.com/high-error-rate");
    h.publish_alert(&firing).await;
    let id = app.only_incident().await;
    let body = app.wait_state(&id, "awaiting_approval").await;

    let recipes = body["runs"][0]["recipes"].as_array().unwrap();
    let summary = recipes
        .iter()
        .find(|r| r["recipe"] == "summarize-alert")
        .unwrap();
    assert_eq!(summary["state"], "successful", "{summary}");
    assert_eq!(
        summary["results"]["analysis"],
        "HighErrorRate firing since 2025-06-01T10:00:00Z: 5xx above 5%"
    );
    assert_eq!(
        summary["results"]["links"],
        json!([{"url": "http://prometheus:9090/graph"}, {"url": "https://runbooks.example.com/high-error-rate"}])
    );
    // With or without kubectl on this machine, it reports about the pod (never silently).
    let restarts = recipes
        .iter()
        .find(|r| r["recipe"] == "recent-restarts")
        .unwrap();
    assert!(
        restarts["results"]["analysis"]
            .as_str()
            .unwrap()
            .contains("default/web-1"),
        "{restarts}"
    );

    // A critical alert: the summary suggests a ticket; the approver presses the button.
    let analysis = h.message(1).await;
    let buttons = analysis.submit_actions();
    assert_eq!(buttons.len(), 1, "{buttons:?}");
    assert_eq!(buttons[0].0, "Approve open-ticket");
    let answers = h
        .webex
        .submit(&analysis.id, ALICE, buttons[0].1.clone())
        .await;
    assert_eq!(answers[0].status, 200, "{}", answers[0].body);
    let ticket = h.message(2).await.markdown.unwrap();
    assert!(
        ticket.contains(&format!(
            "would open ticket: [critical] HighErrorRate (incident {id})"
        )),
        "{ticket}"
    );

    // An action nobody suggested, with the parameters a human gives it: a dry run by default.
    let (status, accepted) = app
        .post(
            "/api/actions",
            Some(API_TOKEN),
            &json!({"uuid": id, "force": true, "actions": [{"name": "restart-pod", "data": {"pod": "web-1", "namespace": "shop"}}]}),
        )
        .await;
    assert_eq!(status, 202, "{accepted}");
    let body = eventually_async("the action's outcome", WAIT, || async {
        let body = app.incident(&id).await;
        (body["runs"].as_array()?.len() == 3 && body["runs"][2]["state"] == "completed")
            .then_some(body)
    })
    .await;
    assert_eq!(
        body["runs"][2]["recipes"][0]["results"]["analysis"],
        "dry run: would delete pod shop/web-1"
    );
    app.stop().await;
}

//! End to end through the real webhook-receiver: Alertmanager posts a notification to the
//! receiver, which publishes one event per alert; the reconciler investigates, reports to
//! Webex, takes the signed approval and runs the action. Then the same notification again
//! (nothing new) and its resolution.

mod common;

use common::*;
use serde_json::{Value, json};
use steadfast_test_support::eventually_async;

fn notification(status: &str) -> Value {
    json!({
        "version": "4",
        "groupKey": "{}/{severity=\"critical\"}:{service=\"checkout\"}",
        "truncatedAlerts": 0,
        "status": status,
        "receiver": "reconciler",
        "groupLabels": {"service": "checkout"},
        "commonLabels": {"alertname": "HighErrorRate", "severity": "critical", "service": "checkout", "pod": "web-7"},
        "commonAnnotations": {"summary": "5xx above 5%"},
        "externalURL": "http://alertmanager:9093",
        "alerts": [{
            "status": status,
            "labels": {"alertname": "HighErrorRate", "severity": "critical", "service": "checkout", "pod": "web-7"},
            "annotations": {"summary": "5xx above 5%"},
            "startsAt": "2025-06-01T10:00:00Z",
            "endsAt": if status == "resolved" { "2025-06-01T10:20:00Z" } else { "0001-01-01T00:00:00Z" },
            "generatorURL": "http://prometheus:9090/graph",
            "fingerprint": "5f3b1c0e9a7d2b44"
        }]
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn an_alertmanager_notification_through_the_receiver_ends_in_an_approved_action() {
    let h = Harness::standard().await;
    let app = h.start().await;

    let receiver = Receiver::start(&h).await;
    let receiver_url = receiver.alertmanager_url.clone();

    let client = reqwest::Client::new();
    let post = |body: Value| {
        let client = client.clone();
        let url = receiver_url.clone();
        async move {
            eventually_async("the receiver to accept the notification", WAIT, || async {
                let response = client
                    .post(&url)
                    .bearer_auth(ALERTMANAGER_TOKEN)
                    .json(&body)
                    .send()
                    .await
                    .ok()?;
                (response.status() == 200).then_some(())
            })
            .await;
        }
    };

    post(notification("firing")).await;
    let id = app.only_incident().await;
    let analysis = h.message(1).await;
    let text = analysis.markdown.clone().unwrap();
    assert!(text.contains("pod web-7 answers 5xx"), "{text}");
    assert!(text.contains("**broken** — failed"), "{text}");
    let button = analysis.submit_actions()[0].1.clone();

    let answers = h.webex.submit(&analysis.id, ALICE, button).await;
    assert_eq!(answers[0].status, 200, "{}", answers[0].body);
    let outcome = h.message(2).await;
    assert!(outcome.markdown.unwrap().contains("restarted web-7"));

    // Alertmanager repeats the notification: same event id, nothing new.
    post(notification("firing")).await;
    eventually_async("the repeat deduplicated", WAIT, || async {
        app.metrics_text()
            .await
            .contains(
                r#"steadfast_reconciler_alerts_deduplicated_total{reason="duplicate_event"} 1"#,
            )
            .then_some(())
    })
    .await;

    post(notification("resolved")).await;
    let body = app.wait_state(&id, "resolved").await;
    assert_eq!(
        body["runs"].as_array().unwrap().len(),
        2,
        "one investigation, one action"
    );
    let steps = audit_actions(&body);
    assert_eq!(
        steps,
        vec![
            "incident opened",
            "investigation started",
            "investigation completed",
            "analysis reported",
            "action approved",
            "action completed",
            "awaiting further decisions",
            "incident resolved",
        ]
    );
    assert_eq!(body["incident"]["receiver"], "reconciler");
    h.message(3).await;

    receiver.stop().await;
    app.stop().await;
}

#[test]
fn post_webhook_splits_a_notification_exactly_as_the_receiver_does() {
    // The same notification through Euphrosyne's `POST /webhook` and through the receiver must
    // give the same events (ids, routing keys, data), or an alert arriving by both paths would
    // start two investigations.
    for status in ["firing", "resolved"] {
        let body = notification(status);
        let ours = alert_reconciler::alert::split_notification(body.clone()).unwrap();
        let theirs = webhook_receiver::alertmanager::split(
            &body,
            &steadfast_events::TraceParent::new_random(),
        )
        .unwrap();
        assert_eq!(ours.len(), theirs.len());
        for (ours, theirs) in ours.iter().zip(&theirs) {
            assert_eq!(ours.id, theirs.envelope.id, "{status}");
            assert_eq!(ours.routing_key, theirs.routing_key, "{status}");
            assert_eq!(ours.data, theirs.envelope.data, "{status}");
        }
    }
}

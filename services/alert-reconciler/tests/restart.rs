//! Restart safety: a reconciler killed mid-investigation, and another built on the same
//! database and broker namespace, completes the run — launching nothing twice and reporting
//! nothing twice.

mod common;

use common::*;
use steadfast_test_support::{eventually, eventually_async};

fn recipes(h: &Harness) -> String {
    h.script(
        "fast.sh",
        r#"echo fast >> "$LAUNCHES"
"$RECIPE_BIN" report --status successful --analysis "fast looked at it" --action restart-web"#,
    );
    // Waits for the test to open the gate: it answers only once its reconciler is gone.
    h.script(
        "gated.sh",
        r#"echo gated >> "$LAUNCHES"
while [ ! -f "$GATE" ]; do sleep 0.05; done
"$RECIPE_BIN" report --status successful --analysis "gated answered while nobody listened"
echo done > "$GATE.done""#,
    );
    format!(
        r#"
debugging:
  fast:
    entrypoint: ./fast.sh
    env: {{RECIPE_BIN: "{bin}", LAUNCHES: "{launches}"}}
  gated:
    entrypoint: ./gated.sh
    env: {{RECIPE_BIN: "{bin}", LAUNCHES: "{launches}", GATE: "{gate}"}}
actions:
  restart-web:
    entrypoint: ./fast.sh
"#,
        bin = recipe_bin(),
        launches = h.dir.join("launches.txt").display(),
        gate = h.dir.join("gate").display(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reconciler_killed_mid_investigation_is_resumed_by_the_next_without_repeats() {
    let h = Harness::new("debugging: {}\n").await;
    std::fs::write(h.dir.join("recipes.yaml"), recipes(&h)).unwrap();
    let first = h.start().await;
    h.publish_alert(&alert("checkout", "web-1", "firing")).await;
    let id = first.only_incident().await;

    // Mid-investigation: `fast` has answered, `gated` runs and waits.
    eventually_async("fast answered and gated running", WAIT, || async {
        let body = first.incident(&id).await;
        let recipes = body["runs"][0]["recipes"].as_array()?.clone();
        let state = |name: &str| {
            recipes
                .iter()
                .find(|r| r["recipe"] == name)
                .map(|r| r["state"].clone())
        };
        (state("fast")? == "successful" && state("gated")? == "launched").then_some(())
    })
    .await;
    assert_eq!(h.webex.messages().len(), 0);
    first.kill().await;

    // While no reconciler runs, `gated` answers.
    std::fs::write(h.dir.join("gate"), "open").unwrap();
    eventually("gated to have reported", WAIT, || {
        h.dir.join("gate.done").exists().then_some(())
    })
    .await;

    let second = h.start().await;
    let analysis = h.message(1).await;
    let text = analysis.markdown.clone().unwrap();
    assert!(text.contains("fast looked at it"), "{text}");
    assert!(
        text.contains("gated answered while nobody listened"),
        "{text}"
    );
    assert_eq!(analysis.submit_actions().len(), 1);

    let body = second.wait_state(&id, "awaiting_approval").await;
    let launches = std::fs::read_to_string(h.dir.join("launches.txt")).unwrap();
    let mut launched: Vec<&str> = launches.lines().collect();
    launched.sort_unstable();
    assert_eq!(launched, vec!["fast", "gated"], "each recipe launched once");
    assert_eq!(body["runs"].as_array().unwrap().len(), 1);
    let completed = audit_actions(&body)
        .iter()
        .filter(|a| *a == "investigation completed")
        .count();
    assert_eq!(completed, 1);
    // The outbox is empty and holds one analysis per sink: nothing can be sent again.
    let deliveries = body["deliveries"].as_array().unwrap();
    assert_eq!(deliveries.len(), 1, "{deliveries:?}");
    assert_eq!(deliveries[0]["state"], "sent");
    assert_eq!(h.webex.messages().len(), 1);

    // The resumed incident still works end to end: its button runs the action.
    let button = h.webex.messages()[0].submit_actions()[0].1.clone();
    let answers = h
        .webex
        .submit(&h.webex.messages()[0].id, ALICE, button)
        .await;
    assert_eq!(answers[0].status, 200, "{}", answers[0].body);
    h.message(2).await;
    second.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_report_queued_before_a_crash_is_sent_once_after_it() {
    let h = Harness::new("debugging: {}\n").await;
    std::fs::write(h.dir.join("recipes.yaml"), recipes(&h)).unwrap();
    std::fs::write(h.dir.join("gate"), "open").unwrap();
    // Webex is down: the analysis stays in the outbox.
    h.webex.fail_next_messages(1000, 503);
    let first = h.start().await;
    h.publish_alert(&alert("checkout", "web-1", "firing")).await;
    let id = first.only_incident().await;
    let body = first.wait_state(&id, "awaiting_approval").await;
    assert_eq!(body["deliveries"][0]["state"], "pending");
    first.kill().await;

    let webex_up = fake_webex::FakeWebex::start(BOT_TOKEN).await;
    let mut config = h.config.clone();
    if let Some(webex) = config.sinks.webex.as_mut() {
        webex.api_url = webex_up.api_url().parse().unwrap();
    }
    let second = start(config).await;
    eventually("the queued analysis", WAIT, || {
        webex_up.messages().first().cloned()
    })
    .await;
    let body = eventually_async("the delivery marked sent", WAIT, || async {
        let body = second.incident(&id).await;
        (body["deliveries"][0]["state"] == "sent").then_some(body)
    })
    .await;
    assert_eq!(body["deliveries"].as_array().unwrap().len(), 1);
    assert_eq!(webex_up.messages().len(), 1);
    second.stop().await;
}

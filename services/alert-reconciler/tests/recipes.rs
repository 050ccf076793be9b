//! Recipes as the local executor runs them: every way a recipe can end is known as soon as it
//! happens; the registry is re-read when it changes and a bad edit keeps the last good set; a
//! resolved alert stops its investigation.

mod common;

use std::time::Duration;

use common::*;
use serde_json::Value;
use steadfast_test_support::{eventually, eventually_async};

fn recipe<'a>(body: &'a Value, name: &str) -> &'a Value {
    body["runs"][0]["recipes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["recipe"] == name)
        .unwrap_or_else(|| panic!("no recipe {name} in {body}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn every_ending_of_a_recipe_is_known_without_waiting_for_the_run_timeout() {
    let h = Harness::new("debugging: {}\n").await;
    h.script("slow.sh", "sleep 60");
    h.script("silent.sh", "exit 0");
    h.script(
        "says-failed.sh",
        r#""$RECIPE_BIN" report --status failed --analysis "prometheus is down"
exit 1"#,
    );
    std::fs::write(
        h.dir.join("recipes.yaml"),
        format!(
            r#"
debugging:
  slow: {{entrypoint: ./slow.sh, timeout: 1s}}
  silent: {{entrypoint: ./silent.sh}}
  missing: {{entrypoint: ./does-not-exist.sh}}
  says-failed: {{entrypoint: ./says-failed.sh, env: {{RECIPE_BIN: "{}"}}}}
"#,
            recipe_bin()
        ),
    )
    .unwrap();
    let app = h.start().await;
    h.publish_alert(&alert("checkout", "web-1", "firing")).await;
    let id = app.only_incident().await;
    // The run's own timeout is 120 s: the report comes long before.
    let body = app.wait_state(&id, "awaiting_approval").await;

    let slow = recipe(&body, "slow");
    assert_eq!(slow["state"], "timed_out");
    assert_eq!(slow["detail"], "killed after its 1s timeout");
    let silent = recipe(&body, "silent");
    assert_eq!(silent["state"], "unknown");
    assert_eq!(
        silent["detail"],
        "exited successfully without reporting a result"
    );
    let missing = recipe(&body, "missing");
    assert_eq!(missing["state"], "failed");
    assert!(
        missing["detail"]
            .as_str()
            .unwrap()
            .starts_with("could not be launched: cannot start"),
        "{missing}"
    );
    // Its own report wins over its exit status.
    let said = recipe(&body, "says-failed");
    assert_eq!(said["state"], "failed");
    assert_eq!(said["results"]["analysis"], "prometheus is down");
    assert!(said["detail"].is_null());

    let text = h.message(1).await.markdown.unwrap();
    assert!(text.contains("**slow** — timed out"), "{text}");
    assert!(text.contains("No action suggested."), "{text}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bad_edit_keeps_the_last_good_registry_and_a_good_one_replaces_it() {
    let h = Harness::new("debugging: {}\n").await;
    h.script(
        "one.sh",
        r#""$RECIPE_BIN" report --status successful --analysis "one ran""#,
    );
    let good = |name: &str| {
        format!(
            "debugging:\n  {name}:\n    entrypoint: ./one.sh\n    env: {{RECIPE_BIN: \"{}\"}}\n",
            recipe_bin()
        )
    };
    let file = h.dir.join("recipes.yaml");
    std::fs::write(&file, good("first")).unwrap();
    let app = h.start().await;

    std::fs::write(
        &file,
        "debugging:\n  first:\n    entrypoint: ./one.sh\n    timeot: 5s\n",
    )
    .unwrap();
    let recipes = eventually_async("the bad edit to be refused", WAIT, || async {
        let (_, recipes) = app.get("/api/recipes").await;
        recipes["registry"]["last_error"]
            .is_object()
            .then_some(recipes)
    })
    .await;
    let error = recipes["registry"]["last_error"]["error"].as_str().unwrap();
    assert!(error.contains("unknown field `timeot`"), "{error}");
    assert!(error.contains("line 4"), "{error}");
    assert_eq!(
        recipes["debugging"][0]["name"], "first",
        "the last good set stays"
    );
    let ready: Value = app
        .client
        .get(format!("{}/readyz", app.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        ready["status"], "ready",
        "a refused edit does not take the service down"
    );
    assert!(
        ready["checks"]["recipes"]["detail"]
            .as_str()
            .unwrap()
            .contains("refused")
    );

    h.publish_alert(&alert("a", "web-1", "firing")).await;
    let first = app.only_incident().await;
    let body = app.wait_state(&first, "awaiting_approval").await;
    assert_eq!(body["runs"][0]["recipes"][0]["recipe"], "first");

    std::fs::write(&file, good("second")).unwrap();
    eventually_async("the good edit to be loaded", WAIT, || async {
        let (_, recipes) = app.get("/api/recipes").await;
        (recipes["debugging"][0]["name"] == "second" && recipes["registry"]["last_error"].is_null())
            .then_some(())
    })
    .await;
    h.publish_alert(&alert("b", "web-1", "firing")).await;
    let second = eventually_async("the second incident", WAIT, || async {
        let (_, list) = app.get("/api/incidents?state=awaiting_approval").await;
        list["incidents"]
            .as_array()?
            .iter()
            .find(|i| i["id"] != first.as_str())
            .map(|i| i["id"].as_str().unwrap().to_owned())
    })
    .await;
    let body = app.incident(&second).await;
    assert_eq!(body["runs"][0]["recipes"][0]["recipe"], "second");
    let metrics = app.metrics_text().await;
    assert!(
        metrics.contains(r#"steadfast_reconciler_recipe_reloads_total{outcome="rejected"} 1"#),
        "{metrics}"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_resolution_during_the_investigation_stops_its_recipes_and_reports_nothing() {
    let h = Harness::new("debugging: {}\n").await;
    h.script(
        "forever.sh",
        r#"echo $$ > "$PIDFILE"
exec sleep 300"#,
    );
    std::fs::write(
        h.dir.join("recipes.yaml"),
        format!(
            "debugging:\n  forever:\n    entrypoint: ./forever.sh\n    env: {{PIDFILE: \"{}\"}}\n",
            h.dir.join("pid").display()
        ),
    )
    .unwrap();
    let app = h.start().await;
    h.publish_alert(&alert("checkout", "web-1", "firing")).await;
    let id = app.only_incident().await;
    let pid = eventually("the recipe to start", WAIT, || {
        std::fs::read_to_string(h.dir.join("pid"))
            .ok()
            .filter(|p| !p.trim().is_empty())
    })
    .await;
    let proc = format!("/proc/{}", pid.trim());
    assert!(std::path::Path::new(&proc).exists());

    h.publish_alert(&alert("checkout", "web-1", "resolved"))
        .await;
    let body = app.wait_state(&id, "resolved").await;
    assert_eq!(body["runs"][0]["state"], "cancelled");
    assert_eq!(body["runs"][0]["recipes"][0]["state"], "cancelled");
    eventually("the recipe process to be killed", WAIT, || {
        // A killed child may linger as a zombie until reaped: gone or zombie both mean dead.
        let status = std::fs::read_to_string(format!("{proc}/status")).unwrap_or_default();
        (status.is_empty() || status.contains("State:\tZ")).then_some(())
    })
    .await;
    assert!(h.webex.messages().is_empty(), "chat never heard of it");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_alert_no_recipe_matches_is_still_reported() {
    let mut h = Harness::new(
        "debugging:\n  disk:\n    entrypoint: ./x.sh\n    match: {alertname: DiskFull}\n",
    )
    .await;
    h.config.result_grace = Duration::from_millis(100);
    let app = h.start().await;
    h.publish_alert(&alert("checkout", "web-1", "firing")).await;
    let id = app.only_incident().await;
    let body = app.wait_state(&id, "awaiting_approval").await;
    assert_eq!(body["runs"][0]["recipes"], serde_json::json!([]));
    let text = h.message(1).await.markdown.unwrap();
    assert!(
        text.contains("No debugging recipe matches this alert."),
        "{text}"
    );
    app.stop().await;
}

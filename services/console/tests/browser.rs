//! The console in a real browser (headless Chromium over WebDriver), against the real
//! services: what an operator clicks, what a viewer cannot, what a forged request gets. Every
//! page is saved as a screenshot under `target/tmp/console-screenshots/`.
//!
//! Without Debian's `chromium` and `chromium-driver` these tests say SKIPPED and pass, unless
//! `STEADFAST_REQUIRE_BROWSER=1` (set by `scripts/test.sh`, which installs them).

mod common;

use std::path::PathBuf;
use std::sync::atomic::Ordering;

use common::poison::PoisonConsumer;
use common::{Harness, Options, WAIT};
use serde_json::{Value, json};
use steadfast_test_support::eventually_async;
use steadfast_test_support::webdriver::{Browser as Chromium, require_browser};

fn screenshots() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("console-screenshots")
}

/// A browser, or `None` (and a line saying so) when none is installed and none is required.
async fn chromium(test: &str) -> Option<Chromium> {
    match Chromium::start(&screenshots()).await {
        Some(browser) => Some(browser),
        None if require_browser() => panic!(
            "STEADFAST_REQUIRE_BROWSER is set but chromium or chromedriver is missing: apt-get install chromium chromium-driver"
        ),
        None => {
            eprintln!(
                "SKIPPED {test}: no chromium/chromedriver here (apt-get install chromium chromium-driver)"
            );
            None
        }
    }
}

/// A browser and the console (with `options`) it will look at, or `None` when there is no
/// browser here and none is required.
async fn open(test: &str, options: Options) -> Option<(Chromium, Harness)> {
    let browser = chromium(test).await?;
    Some((browser, Harness::start_with(options).await))
}

/// Signs in through the login form, as a person would.
async fn sign_in(browser: &Chromium, h: &Harness, user: &str, password: &str) {
    browser.goto(&format!("{}/login", h.url)).await;
    let name = browser.find("#user").await;
    browser.type_into(&name, user).await;
    let secret = browser.find("#password").await;
    browser.type_into(&secret, password).await;
    let submit = browser.find("form.login button[type=submit]").await;
    browser.click(&submit).await;
    browser.wait_for_text(&format!("{user} ·")).await;
}

/// Posts a form from inside the page with `fetch` (what a forged or hand-made request does) and
/// returns the status and the answer's text.
async fn post_from_page(browser: &Chromium, action: &str, fields: Value) -> (u16, String) {
    let answer = browser
        .execute(
            "const [action, fields] = a;
             const body = new URLSearchParams(fields);
             const r = await fetch(action, {method: 'POST', body, redirect: 'manual'});
             return [r.status, await r.text()];",
            json!([action, fields]),
        )
        .await;
    (
        answer[0].as_u64().unwrap_or_default() as u16,
        answer[1].as_str().unwrap_or_default().to_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_signs_in_and_sees_every_service_and_queue() {
    let Some((browser, h)) = open(
        "an_operator_signs_in_and_sees_every_service_and_queue",
        Options {
            herder: true,
            ..Options::default()
        },
    )
    .await
    else {
        return;
    };
    browser.goto(&format!("{}/", h.url)).await;
    assert!(browser.current_url().await.contains("/login?next="));
    browser.screenshot("login").await;
    sign_in(&browser, &h, "alice", common::ALICE_PASSWORD).await;
    browser.wait_for_text("services ready").await;
    let jobs = format!("{}.pipeline-herder.jobs", h.broker.namespace);
    // Queue depths come from the management API, refreshed live without a reload.
    browser.wait_for_text(&jobs).await;
    let live = browser.find("#live").await;
    eventually_async("a live refresh", WAIT, || async {
        browser.attribute(&live, "data-refreshed").await
    })
    .await;
    browser.screenshot("overview").await;
    browser.resize(390, 844).await;
    browser.screenshot("overview-phone").await;
    // Keyboard users get a skip link first, and every form control has a label.
    let skip = browser.find("a.skip").await;
    assert_eq!(
        browser.attribute(&skip, "href").await.as_deref(),
        Some("#main")
    );
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poison_message_is_found_inspected_replayed_and_processed_in_the_browser() {
    let test = "a_poison_message_is_found_inspected_replayed_and_processed_in_the_browser";
    let Some((browser, h)) = open(test, Options::default()).await else {
        return;
    };
    let consumer = PoisonConsumer::start(&h).await;
    consumer.park(&h, &["order-7", "order-8"]).await;
    let work = consumer.spec.name.clone();
    sign_in(&browser, &h, "alice", common::ALICE_PASSWORD).await;

    // The parking lots, then this one.
    eventually_async("the parking lot listed", WAIT, || async {
        browser.goto(&format!("{}/parked", h.url)).await;
        browser
            .source()
            .await
            .contains(&consumer.spec.parked_queue())
            .then_some(())
    })
    .await;
    browser.screenshot("parked-queues").await;
    let link = browser.find(&format!("a[href=\"/parked/{work}\"]")).await;
    browser.click(&link).await;
    browser
        .wait_for_text("422: order order-7 has no customer")
        .await;
    browser.screenshot("parked-messages").await;

    // One message: its headers and body.
    let open = browser
        .find(&format!("a[href=\"/parked/{work}/message/order-7\"]"))
        .await;
    browser.click(&open).await;
    browser.wait_for_text("steadfast-parked-reason").await;
    browser.wait_for_text("\"poison\": true").await;
    browser.screenshot("parked-message").await;

    // The bug is fixed; replay it from its page.
    consumer.fixed.store(true, Ordering::SeqCst);
    let replay = browser.find("button[formaction$=\"/replay\"]").await;
    browser.click(&replay).await;
    browser
        .wait_for_text(&format!("Replayed 1 message(s) to {work}."))
        .await;
    browser.screenshot("parked-after-replay").await;
    eventually_async("order-7 processed", WAIT, || async {
        consumer.processed().contains("order-7").then_some(())
    })
    .await;
    consumer.wait_parked(&h, 1).await;
    assert!(
        browser.source().await.contains("order-8"),
        "the other stays parked and listed"
    );
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_herder_is_paused_and_resumed_in_the_browser() {
    let Some((browser, h)) = open(
        "the_herder_is_paused_and_resumed_in_the_browser",
        Options {
            herder: true,
            ..Options::default()
        },
    )
    .await
    else {
        return;
    };
    sign_in(&browser, &h, "alice", common::ALICE_PASSWORD).await;
    browser.goto(&format!("{}/herder", h.url)).await;
    browser.wait_for_text("Retrying").await;
    let reason = browser.find("#reason").await;
    browser.type_into(&reason, "registry outage").await;
    let pause = browser.find("form[action=\"/herder/pause\"] button").await;
    browser.click(&pause).await;
    browser.wait_for_text("Retries are paused.").await;
    browser.wait_for_text("by console:alice").await;
    browser.wait_for_text("registry outage").await;
    browser.screenshot("herder-paused").await;
    let resume = browser.find("form[action=\"/herder/resume\"] button").await;
    browser.click(&resume).await;
    browser.wait_for_text("Retries resumed.").await;
    browser.screenshot("herder").await;
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_viewer_has_no_buttons_and_forged_posts_are_refused() {
    let Some((browser, h)) = open(
        "a_viewer_has_no_buttons_and_forged_posts_are_refused",
        Options {
            herder: true,
            ..Options::default()
        },
    )
    .await
    else {
        return;
    };
    let consumer = PoisonConsumer::start(&h).await;
    consumer.park(&h, &["stay-1"]).await;
    let work = consumer.spec.name.clone();

    sign_in(&browser, &h, "victor", common::VICTOR_PASSWORD).await;
    browser.goto(&format!("{}/parked/{work}", h.url)).await;
    browser.wait_for_text("stay-1").await;
    assert!(
        browser
            .find_all("button[formaction$=\"/replay\"]")
            .await
            .is_empty()
    );
    assert!(browser.find_all("input[name=id]").await.is_empty());
    browser.screenshot("viewer-parked").await;
    browser.goto(&format!("{}/herder", h.url)).await;
    browser.wait_for_text("Retrying").await;
    assert!(
        browser
            .find_all("form[action=\"/herder/pause\"]")
            .await
            .is_empty()
    );
    // With the session's own CSRF token, the viewer's POST is still refused.
    let csrf = browser
        .attribute(&browser.find("input[name=csrf]").await, "value")
        .await
        .unwrap();
    let (status, text) = post_from_page(
        &browser,
        &format!("/parked/{work}/replay"),
        json!({"csrf": csrf, "id": "stay-1"}),
    )
    .await;
    assert_eq!(status, 403);
    assert!(text.contains("the viewer role"), "{text}");
    let (status, _) = post_from_page(
        &browser,
        "/herder/pause",
        json!({"csrf": csrf, "reason": "x"}),
    )
    .await;
    assert_eq!(status, 403);

    // An operator's browser, a form without the token (what another site would send).
    browser.delete_cookie("console_session").await;
    sign_in(&browser, &h, "alice", common::ALICE_PASSWORD).await;
    let (status, text) = post_from_page(
        &browser,
        &format!("/parked/{work}/replay"),
        json!({"id": "stay-1"}),
    )
    .await;
    assert_eq!(status, 403);
    assert!(text.contains("CSRF token is missing"), "{text}");
    consumer.wait_parked(&h, 1).await;
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alert_becomes_an_incident_that_is_approved_in_the_browser() {
    let options = Options {
        alerts: true,
        ..Options::default()
    };
    let test = "an_alert_becomes_an_incident_that_is_approved_in_the_browser";
    let Some((browser, h)) = open(test, options).await else {
        return;
    };
    let stack = h.alerts.as_ref().unwrap();
    stack.fire("web-9").await;
    let id = stack.incident_in("awaiting_approval").await;
    sign_in(&browser, &h, "alice", common::ALICE_PASSWORD).await;

    browser.goto(&format!("{}/incidents", h.url)).await;
    let open = browser.find(&format!("a[href=\"/incidents/{id}\"]")).await;
    browser.screenshot("incidents").await;
    browser.click(&open).await;
    browser
        .wait_for_text("pod web-9 answers 5xx since the 10:00 deploy")
        .await;
    browser.screenshot("incident").await;
    let approve = browser
        .find("form[action$=\"/approve\"] button[type=submit]")
        .await;
    browser.click(&approve).await;
    browser
        .wait_for_text("Approved restart-web: its run has started.")
        .await;
    eventually_async("the action to restart web-9", WAIT, || async {
        (stack.restarted() == ["web-9"]).then_some(())
    })
    .await;
    // Its outcome appears on the incident's page.
    eventually_async("the outcome on the page", WAIT, || async {
        browser.goto(&format!("{}/incidents/{id}", h.url)).await;
        browser
            .source()
            .await
            .contains("restarted web-9")
            .then_some(())
    })
    .await;
    browser.wait_for_text("approved by api:console:alice").await;
    browser.screenshot("incident-approved").await;
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fleet_and_a_cluster_in_the_browser() {
    let Some((browser, h)) = open(
        "the_fleet_and_a_cluster_in_the_browser",
        Options {
            fleet: true,
            ..Options::default()
        },
    )
    .await
    else {
        return;
    };
    let fleet = h.fleet.as_ref().unwrap();
    fleet.cluster("c-eu-1", json!({"env": "prod"})).await;
    let dev = fleet.cluster("c-eu-2", json!({"env": "dev"})).await;
    fleet.report_available(&dev, 1).await;
    sign_in(&browser, &h, "alice", common::ALICE_PASSWORD).await;
    browser.goto(&format!("{}/fleet", h.url)).await;
    browser.wait_for_text("c-eu-1").await;
    browser.wait_for_text("not reconciled").await;
    browser.screenshot("fleet").await;
    let unreconciled = browser.find("#f-unreconciled").await;
    browser.click(&unreconciled).await;
    let filter = browser.find("form.filters button[type=submit]").await;
    browser.click(&filter).await;
    eventually_async("only the unreconciled cluster listed", WAIT, || async {
        let source = browser.source().await;
        (source.contains("c-eu-1") && !source.contains("c-eu-2")).then_some(())
    })
    .await;
    browser
        .goto(&format!("{}/fleet/clusters/{dev}", h.url))
        .await;
    browser.wait_for_text("Adapters' last reports").await;
    browser.screenshot("cluster").await;
    h.stop().await;
}

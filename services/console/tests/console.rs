//! The console through HTTP, as a browser uses it, against the real RabbitMQ, Redis and a real
//! pipeline-herder: signing in and out, the parking lot (find, inspect, replay, discard), the
//! herder's switch, and every refusal — no session, no CSRF token, the viewer role, unknown ids.

mod common;

use std::sync::atomic::Ordering;
use std::time::Duration;

use common::poison::PoisonConsumer;
use common::{Browser, HERDER_TOKEN, Harness, Options, WAIT};
use reqwest::StatusCode;
use serde_json::Value;
use steadfast_test_support::eventually_async;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_session_only_the_login_page_and_assets_answer() {
    let h = Harness::start().await;
    let mut browser = h.browser();
    for path in ["/", "/parked", "/herder", "/no/such/page"] {
        let page = browser.get(path).await;
        assert_eq!(page.status, StatusCode::SEE_OTHER, "{path}");
        let location = page.location.unwrap();
        assert!(location.starts_with("/login?next="), "{path} → {location}");
    }
    let forged = browser.post("/herder/pause", &[("reason", "x")]).await;
    assert_eq!(forged.status, StatusCode::SEE_OTHER);
    assert!(forged.location.unwrap().starts_with("/login"));

    let login = browser.get("/login").await;
    assert_eq!(login.status, StatusCode::OK);
    assert!(login.contains(r#"<label for="password">Password</label>"#));
    let cookie = login
        .set_cookies
        .iter()
        .find(|c| c.starts_with("console_login="))
        .expect("a login-form cookie");
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    let css = browser.get("/assets/console.css").await;
    assert_eq!(css.status, StatusCode::OK);
    assert!(css.body.contains(":focus-visible"));
    assert_eq!(
        browser.get("/assets/other.css").await.status,
        StatusCode::NOT_FOUND
    );

    let raw = reqwest::get(format!("{}/login", h.url)).await.unwrap();
    let csp = raw.headers()["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("default-src 'self'") && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_and_out_and_wrong_passwords_are_refused_alike() {
    let h = Harness::start().await;
    let mut browser = h.browser();
    let wrong = browser.login("alice", "not-her-password").await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert!(wrong.contains("Wrong user name or password."));
    let unknown = browser.login("mallory", "anything").await;
    assert_eq!(unknown.status, StatusCode::UNAUTHORIZED);
    assert!(unknown.contains("Wrong user name or password."));

    // A login form posted from elsewhere (no login cookie of ours) is refused.
    let mut stranger = h.browser();
    let forged = stranger
        .post(
            "/login",
            &[
                ("login_token", "0000"),
                ("user", "alice"),
                ("password", common::ALICE_PASSWORD),
            ],
        )
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    assert!(forged.contains("This sign-in form has expired or did not come from this console"));
    assert!(!stranger.cookies.contains_key("console_session"));

    let signed_in = browser.login("alice", common::ALICE_PASSWORD).await;
    assert_eq!(signed_in.status, StatusCode::SEE_OTHER);
    assert_eq!(signed_in.location.as_deref(), Some("/"));
    let cookie = signed_in
        .set_cookies
        .iter()
        .find(|c| c.starts_with("console_session="))
        .expect("a session cookie");
    for flag in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=3600"] {
        assert!(cookie.contains(flag), "{flag} in {cookie}");
    }
    assert!(
        !cookie.contains("Secure"),
        "served over plain http in the test"
    );
    let overview = browser.get("/").await;
    assert_eq!(overview.status, StatusCode::OK);
    assert!(overview.contains("alice") && overview.contains("operator"));
    let session = browser.cookies["console_session"].clone();

    let out = browser.submit("/", "/logout", &[]).await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    assert_eq!(out.location.as_deref(), Some("/login"));
    // The old cookie is dead on the server, not only forgotten by the browser.
    let mut replayed = h.browser();
    replayed.cookies.insert("console_session".into(), session);
    assert_eq!(replayed.get("/").await.status, StatusCode::SEE_OTHER);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poison_message_is_found_inspected_replayed_and_then_processed() {
    let h = Harness::start().await;
    let consumer = PoisonConsumer::start(&h).await;
    consumer.park(&h, &["order-1", "order-2"]).await;
    let work = consumer.spec.name.clone();
    let parked_queue = consumer.spec.parked_queue();
    let mut alice = h.signed_in("alice").await;

    // The parking lot is listed (the management API's statistics lag a few seconds).
    let index = eventually_async("the parking lot listed with 2 messages", WAIT, || {
        let mut browser = Browser::new(&h.url);
        browser.cookies = alice.cookies.clone();
        let expected = format!(r#">{parked_queue}</a></td><td class="num bad">2</td>"#);
        async move {
            let page = browser.get("/parked").await;
            page.contains(&expected).then_some(page)
        }
    })
    .await;
    assert!(index.contains(&format!(r#"href="/parked/{work}""#)));

    let list = alice.get(&format!("/parked/{work}")).await;
    assert_eq!(list.status, StatusCode::OK);
    for text in [
        "order-1",
        "order-2",
        "order.created",
        "permanent",
        "422: order order-1 has no customer",
    ] {
        assert!(list.contains(text), "{text} in the list");
    }
    let one = alice.get(&format!("/parked/{work}/message/order-1")).await;
    assert_eq!(one.status, StatusCode::OK);
    for text in [
        "steadfast-error",
        "steadfast-failed-at",
        "&quot;poison&quot;: true",
        "shop",
    ] {
        assert!(
            one.contains(text),
            "{text} on the message page: {}",
            one.body
        );
    }

    // A form without this session's CSRF token changes nothing.
    let forged = alice
        .post(&format!("/parked/{work}/replay"), &[("id", "order-1")])
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    assert!(forged.contains("its CSRF token is missing or is not this session"));
    let wrong = alice
        .post(
            &format!("/parked/{work}/replay"),
            &[("csrf", "0".repeat(64).as_str()), ("id", "order-1")],
        )
        .await;
    assert_eq!(wrong.status, StatusCode::FORBIDDEN);
    consumer.wait_parked(&h, 2).await;

    // Fixed: replay one of the two; it is processed, the other stays parked.
    consumer.fixed.store(true, Ordering::SeqCst);
    let replayed = alice
        .submit(
            &format!("/parked/{work}"),
            &format!("/parked/{work}/replay"),
            &[("id", "order-1")],
        )
        .await;
    assert_eq!(replayed.status, StatusCode::SEE_OTHER, "{}", replayed.body);
    let back = replayed.location.unwrap();
    assert!(
        back.starts_with(&format!("/parked/{work}?notice=")),
        "{back}"
    );
    let shown = alice.get(&back).await;
    assert!(
        shown.contains(&format!("Replayed 1 message(s) to {work}.")),
        "{}",
        shown.body
    );
    eventually_async("order-1 processed", WAIT, || async {
        consumer.processed().contains("order-1").then_some(())
    })
    .await;
    consumer.wait_parked(&h, 1).await;
    assert!(!consumer.processed().contains("order-2"));

    // "Replay all matching" takes the rest.
    let all = alice
        .submit(
            &format!("/parked/{work}"),
            &format!("/parked/{work}/replay"),
            &[
                ("scope", "matching"),
                ("type", "order.created"),
                ("older_than", ""),
            ],
        )
        .await;
    assert_eq!(all.status, StatusCode::SEE_OTHER);
    eventually_async("order-2 processed", WAIT, || async {
        consumer.processed().contains("order-2").then_some(())
    })
    .await;
    consumer.wait_parked(&h, 0).await;
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discarding_asks_first_and_then_removes_only_the_selection() {
    let h = Harness::start().await;
    let consumer = PoisonConsumer::start(&h).await;
    consumer.park(&h, &["bad-1", "bad-2"]).await;
    let work = consumer.spec.name.clone();
    let mut alice = h.signed_in("alice").await;

    let confirm = alice
        .submit(
            &format!("/parked/{work}"),
            &format!("/parked/{work}/discard"),
            &[("id", "bad-1")],
        )
        .await;
    assert_eq!(confirm.status, StatusCode::OK);
    assert!(
        confirm.contains("for good") && confirm.contains("bad-1"),
        "{}",
        confirm.body
    );
    assert!(!confirm.contains("bad-2"));
    consumer.wait_parked(&h, 2).await;

    let csrf = confirm.csrf();
    let done = alice
        .post(
            &format!("/parked/{work}/discard"),
            &[("csrf", &csrf), ("id", "bad-1"), ("confirm", "yes")],
        )
        .await;
    assert_eq!(done.status, StatusCode::SEE_OTHER);
    let shown = alice.get(&done.location.unwrap()).await;
    assert!(shown.contains("Discarded 1 message(s)"), "{}", shown.body);
    consumer.wait_parked(&h, 1).await;
    let left = alice.get(&format!("/parked/{work}")).await;
    assert!(left.contains("bad-2") && !left.contains("bad-1"));

    // Nothing selected: told so, nothing removed.
    let empty = alice
        .submit(
            &format!("/parked/{work}"),
            &format!("/parked/{work}/discard"),
            &[],
        )
        .await;
    assert_eq!(empty.status, StatusCode::SEE_OTHER);
    assert!(
        alice
            .get(&empty.location.unwrap())
            .await
            .contains("Select at least one message.")
    );
    consumer.wait_parked(&h, 1).await;
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_viewer_sees_everything_and_can_change_nothing() {
    let h = Harness::start_with(Options {
        herder: true,
        ..Options::default()
    })
    .await;
    let consumer = PoisonConsumer::start(&h).await;
    consumer.park(&h, &["keep-1"]).await;
    let work = consumer.spec.name.clone();
    let mut victor = h.signed_in("victor").await;

    let list = victor.get(&format!("/parked/{work}")).await;
    assert_eq!(list.status, StatusCode::OK);
    assert!(list.contains("keep-1") && list.contains("viewer"));
    assert!(!list.contains("Replay selected") && !list.contains(r#"name="id""#));
    let herder = victor.get("/herder").await;
    assert_eq!(herder.status, StatusCode::OK);
    assert!(herder.contains("Retrying") && !herder.contains("Pause retries"));

    for (action, form) in [
        (format!("/parked/{work}/replay"), vec![("id", "keep-1")]),
        (
            format!("/parked/{work}/discard"),
            vec![("id", "keep-1"), ("confirm", "yes")],
        ),
        (
            "/herder/pause".to_owned(),
            vec![("reason", "viewer was here")],
        ),
    ] {
        let refused = victor.submit("/", &action, &form).await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN, "{action}");
        assert!(
            refused.contains("the viewer role"),
            "{action}: {}",
            refused.body
        );
    }
    consumer.wait_parked(&h, 1).await;
    let herder_url = &h.herder.as_ref().unwrap().url;
    let pause: Value = reqwest::get(format!("{herder_url}/api/pause"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(pause["paused"], false);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_herder_is_paused_and_resumed_saying_who_and_why() {
    let h = Harness::start_with(Options {
        herder: true,
        ..Options::default()
    })
    .await;
    let herder_url = h.herder.as_ref().unwrap().url.clone();
    let mut alice = h.signed_in("alice").await;
    let page = alice.get("/herder").await;
    assert!(
        page.contains("Retrying") && page.contains("Pause retries"),
        "{}",
        page.body
    );
    assert!(page.contains("No decisions match."));

    let long = "x".repeat(501);
    let refused = alice
        .submit("/herder", "/herder/pause", &[("reason", &long)])
        .await;
    assert!(alice.get(&refused.location.unwrap()).await.contains(
        "The herder did not pause: 400 Bad Request: `reason` is longer than 500 characters"
    ));

    let paused = alice
        .submit("/herder", "/herder/pause", &[("reason", "GitLab upgrade")])
        .await;
    assert_eq!(paused.status, StatusCode::SEE_OTHER);
    let shown = alice.get(&paused.location.unwrap()).await;
    assert!(shown.contains("Retries are paused."));
    assert!(
        shown.contains("Paused</strong> by console:alice"),
        "{}",
        shown.body
    );
    assert!(shown.contains("GitLab upgrade") && shown.contains("Resume retries"));
    let state: Value = reqwest::get(format!("{herder_url}/api/pause"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(state["paused"], true);
    assert_eq!(state["by"], "console:alice");
    assert_eq!(state["reason"], "GitLab upgrade");

    let resumed = alice.submit("/herder", "/herder/resume", &[]).await;
    assert_eq!(resumed.status, StatusCode::SEE_OTHER);
    assert!(
        alice
            .get(&resumed.location.unwrap())
            .await
            .contains("Retries resumed.")
    );
    let state: Value = reqwest::Client::new()
        .get(format!("{herder_url}/api/pause"))
        .bearer_auth(HERDER_TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (state["paused"].as_bool(), state["by"].as_str()),
        (Some(false), Some("console:alice"))
    );
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_ids_and_queues_are_404_pages_that_say_what_is_missing() {
    let h = Harness::start_with(Options {
        herder: true,
        ..Options::default()
    })
    .await;
    let ns = h.broker.namespace.to_string();
    let mut alice = h.signed_in("alice").await;
    let cases = [
        (
            format!("/parked/{ns}.nothing.here"),
            format!("There is no queue `{ns}.nothing.here.parked`"),
        ),
        (
            "/parked/other-ns.svc.work".to_owned(),
            format!("is not a work queue of namespace `{ns}`"),
        ),
        (
            format!("/parked/{ns}.x.work.retry.1s"),
            "is not a work queue".to_owned(),
        ),
        (
            "/herder/decisions/999999".to_owned(),
            "The herder has no decision 999999.".to_owned(),
        ),
        (
            "/herder/decisions/abc".to_owned(),
            "decision ids are numbers".to_owned(),
        ),
        (
            "/no/such/page".to_owned(),
            "There is no such page in the console.".to_owned(),
        ),
    ];
    for (path, says) in cases {
        let page = alice.get(&path).await;
        assert_eq!(page.status, StatusCode::NOT_FOUND, "{path}");
        assert!(page.contains(&says), "{path}: {}", page.body);
    }
    let consumer = PoisonConsumer::start(&h).await;
    let missing = alice
        .get(&format!(
            "/parked/{}/message/never-parked",
            consumer.spec.name
        ))
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert!(missing.contains("No message `never-parked` is parked"));
    let bad_filter = alice
        .get(&format!("/parked/{}?older_than=soon", consumer.spec.name))
        .await;
    assert_eq!(bad_filter.status, StatusCode::BAD_REQUEST);
    assert!(bad_filter.contains("`older than`"), "{}", bad_filter.body);
    let bad_before = alice.get("/herder?before=yesterday").await;
    assert_eq!(bad_before.status, StatusCode::BAD_REQUEST);
    assert!(bad_before.contains("`before` must be a decision id (a number), not `yesterday`"));
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_session_goes_back_to_the_login_page() {
    let h = Harness::start_with(Options {
        session_ttl: Some(Duration::from_secs(1)),
        ..Options::default()
    })
    .await;
    let mut alice = h.signed_in("alice").await;
    let cookies = alice.cookies.clone();
    let expired = eventually_async("the session to expire", WAIT, || {
        let mut browser = Browser::new(&h.url);
        browser.cookies = cookies.clone();
        async move {
            let page = browser.get("/parked?x=1").await;
            (page.status == StatusCode::SEE_OTHER).then_some(page)
        }
    })
    .await;
    assert_eq!(
        expired.location.as_deref(),
        Some("/login?next=%2Fparked%3Fx%3D1")
    );
    // A form posted after expiry lands on the login page too, not on an error.
    let late = alice.post("/logout", &[("csrf", "whatever")]).await;
    assert_eq!(late.status, StatusCode::SEE_OTHER);
    assert!(late.location.unwrap().starts_with("/login"));
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_users_are_believed_only_from_the_proxy() {
    let h = Harness::start_with(Options {
        proxy: Some((vec!["127.0.0.0/8"], vec!["pat@example.com"])),
        ..Options::default()
    })
    .await;
    let mut pat = h.browser();
    pat.forwarded_user = Some("pat@example.com".into());
    let page = pat.get("/").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.contains("pat@example.com") && page.contains("operator"));
    assert!(
        pat.cookies.contains_key("console_session"),
        "a session carries the CSRF token"
    );
    let again = pat.get("/parked").await;
    assert_eq!(again.status, StatusCode::OK);
    assert!(again.set_cookies.is_empty(), "the same session is reused");

    let mut sam = h.browser();
    sam.forwarded_user = Some("sam".into());
    let page = sam.get("/").await;
    assert!(page.contains("sam") && page.contains("viewer"));
    // Pat's cookie without the proxy vouching for pat is not a login.
    let mut stolen = h.browser();
    stolen.cookies = pat.cookies.clone();
    assert_eq!(stolen.get("/").await.status, StatusCode::SEE_OTHER);
    h.stop().await;

    // Trusting only 10.0.0.0/8: the same header from loopback is ignored.
    let h = Harness::start_with(Options {
        proxy: Some((vec!["10.0.0.0/8"], vec![])),
        ..Options::default()
    })
    .await;
    let mut spoof = h.browser();
    spoof.forwarded_user = Some("alice".into());
    let page = spoof.get("/").await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert!(page.location.unwrap().starts_with("/login"));
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_overview_shows_readiness_and_queues_and_refreshes_live() {
    let h = Harness::start_with(Options {
        herder: true,
        ..Options::default()
    })
    .await;
    let ns = h.broker.namespace.to_string();
    let alice = h.signed_in("alice").await;
    let jobs_queue = format!("{ns}.pipeline-herder.jobs");
    let overview = eventually_async("the herder's queues on the overview", WAIT, || {
        let mut browser = Browser::new(&h.url);
        browser.cookies = alice.cookies.clone();
        let jobs_queue = jobs_queue.clone();
        async move {
            let page = browser.get("/").await;
            page.contains(&jobs_queue).then_some(page)
        }
    })
    .await;
    assert!(
        overview.contains(r#"<td>pipeline-herder</td><td class="good">ready</td>"#),
        "{}",
        overview.body
    );
    assert!(overview.contains("1/1") && overview.contains("services ready"));
    assert!(overview.contains(r#"data-live="/live/overview""#));

    // The live stream sends the same fragment, refreshed.
    let cookie = format!("console_session={}", alice.cookies["console_session"]);
    let mut live = reqwest::Client::new()
        .get(format!("{}/live/overview", h.url))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(live.headers()["content-type"], "text/event-stream");
    let mut received = String::new();
    tokio::time::timeout(WAIT, async {
        while !received.contains("event: refresh") || !received.contains("services ready") {
            let chunk = live.chunk().await.unwrap().expect("the stream stays open");
            received.push_str(&String::from_utf8_lossy(&chunk));
        }
    })
    .await
    .expect("a refresh event");
    assert!(received.contains(&jobs_queue));

    // Shutting down ends the open stream instead of waiting on it.
    h.stop().await;
    let ended = tokio::time::timeout(WAIT, async {
        while let Ok(Some(_)) = live.chunk().await {}
    })
    .await;
    assert!(ended.is_ok(), "the live stream ends at shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_incident_is_approved_from_the_console_and_a_used_approval_says_why_not() {
    let h = Harness::start_with(Options {
        alerts: true,
        ..Options::default()
    })
    .await;
    let stack = h.alerts.as_ref().unwrap();
    stack.fire("web-1").await;
    let id = stack.incident_in("awaiting_approval").await;
    let mut alice = h.signed_in("alice").await;

    let list = alice.get("/incidents").await;
    assert_eq!(list.status, StatusCode::OK);
    assert!(
        list.contains(&format!(r#"href="/incidents/{id}""#)),
        "{}",
        list.body
    );
    assert!(list.contains("awaiting approval (1)"));
    let overview = alice.get("/").await;
    assert!(overview.contains("incidents open") && overview.contains("awaiting approval"));
    // The receiver accepted the notification: the overview counts it per minute.
    eventually_async("webhooks per minute on the overview", WAIT, || {
        let mut browser = Browser::new(&h.url);
        browser.cookies = alice.cookies.clone();
        async move {
            let page = browser.get("/").await;
            let at = page.body.find("webhooks/min")?;
            let before = &page.body[..at];
            let number = before.rsplit("<span class=\"number\">").next()?;
            let value: f64 = number.split('<').next()?.parse().ok()?;
            (value > 0.0).then_some(())
        }
    })
    .await;

    let page = alice.get(&format!("/incidents/{id}")).await;
    assert_eq!(page.status, StatusCode::OK);
    for text in [
        "alert HighErrorRate firing",
        "recipe check-errors successful",
        "pod web-1 answers 5xx since the 10:00 deploy",
        "Approve restart-web",
    ] {
        assert!(
            page.contains(text),
            "{text} on the incident page: {}",
            page.body
        );
    }

    // A viewer sees the incident but no button, and cannot approve by posting.
    let mut victor = h.signed_in("victor").await;
    let seen = victor.get(&format!("/incidents/{id}")).await;
    assert!(seen.contains("restart-web") && !seen.contains("Approve restart-web"));
    let refused = victor
        .submit(
            &format!("/incidents/{id}"),
            &format!("/incidents/{id}/approve"),
            &[("action", "restart-web")],
        )
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert!(stack.restarted().is_empty());

    let approved = alice
        .submit(
            &format!("/incidents/{id}"),
            &format!("/incidents/{id}/approve"),
            &[("action", "restart-web")],
        )
        .await;
    assert_eq!(approved.status, StatusCode::SEE_OTHER);
    let shown = alice.get(&approved.location.unwrap()).await;
    assert!(
        shown.contains("Approved restart-web: its run has started."),
        "{}",
        shown.body
    );
    eventually_async("the action to restart web-1", WAIT, || async {
        (stack.restarted() == ["web-1"]).then_some(())
    })
    .await;
    let after = eventually_async("the action's outcome on the page", WAIT, || {
        let mut browser = Browser::new(&h.url);
        browser.cookies = alice.cookies.clone();
        let path = format!("/incidents/{id}");
        async move {
            let page = browser.get(&path).await;
            page.contains("restarted web-1").then_some(page)
        }
    })
    .await;
    assert!(
        after.contains("action restart-web approved by api:console:alice"),
        "{}",
        after.body
    );

    // The approval is single-use: the console shows the reconciler's reason.
    let again = alice
        .submit(
            &format!("/incidents/{id}"),
            &format!("/incidents/{id}/approve"),
            &[("action", "restart-web")],
        )
        .await;
    let shown = alice.get(&again.location.unwrap()).await;
    assert!(
        shown.contains("Refused: ") && shown.contains("console:alice"),
        "{}",
        shown.body
    );
    assert_eq!(stack.restarted(), ["web-1"], "nothing ran twice");

    for (path, says) in [
        (
            "/incidents/0190a5b2-0000-7000-8000-000000000000".to_owned(),
            "The alert-reconciler has no incident `0190a5b2-0000-7000-8000-000000000000`.",
        ),
        (
            "/incidents/not-an-id".to_owned(),
            "has no incident `not-an-id`",
        ),
    ] {
        let page = alice.get(&path).await;
        assert_eq!(page.status, StatusCode::NOT_FOUND, "{path}");
        assert!(page.contains(says), "{path}: {}", page.body);
    }
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejected_or_expired_approval_cannot_be_approved_and_the_page_says_why() {
    let h = Harness::start_with(Options {
        alerts: true,
        approval_ttl: Some(Duration::from_secs(3)),
        ..Options::default()
    })
    .await;
    let stack = h.alerts.as_ref().unwrap();
    stack.fire("web-2").await;
    let id = stack.incident_in("awaiting_approval").await;
    let mut alice = h.signed_in("alice").await;
    let page = format!("/incidents/{id}");

    // The reconciler judges the reason's length; the page shows its refusal.
    let long = "x".repeat(501);
    let too_long = alice
        .submit(
            &page,
            &format!("/incidents/{id}/reject"),
            &[("action", "restart-web"), ("reason", &long)],
        )
        .await;
    let shown = alice.get(&too_long.location.unwrap()).await;
    assert!(
        shown.contains("Refused: `reason` is 501 characters long; at most 500"),
        "{}",
        shown.body
    );
    let rejected = alice
        .submit(
            &page,
            &format!("/incidents/{id}/reject"),
            &[
                ("action", "restart-web"),
                ("reason", "the deploy is being rolled back"),
            ],
        )
        .await;
    assert_eq!(rejected.status, StatusCode::SEE_OTHER);
    let shown = alice.get(&rejected.location.unwrap()).await;
    assert!(shown.contains("Rejected restart-web."), "{}", shown.body);
    assert!(shown.contains("action restart-web rejected by api:console:alice"));
    assert!(shown.contains("the deploy is being rolled back"));
    let late = alice
        .submit(
            &page,
            &format!("/incidents/{id}/approve"),
            &[("action", "restart-web")],
        )
        .await;
    let shown = alice.get(&late.location.unwrap()).await;
    assert!(
        shown.contains("Refused: ") && shown.contains("rejected"),
        "{}",
        shown.body
    );

    // A second incident whose approval runs out before anyone answers.
    stack.fire("web-3").await;
    let second = eventually_async("a second incident awaiting approval", WAIT, || async {
        stack
            .incidents()
            .await
            .into_iter()
            .find(|i| i["state"] == "awaiting_approval" && i["id"] != id.as_str())
            .and_then(|i| i["id"].as_str().map(str::to_owned))
    })
    .await;
    eventually_async("the approval to expire", WAIT, || async {
        let page = stack.incidents().await;
        page.iter()
            .any(|i| i["id"] == second.as_str() && i["state"] == "expired")
            .then_some(())
    })
    .await;
    let expired = alice
        .submit(
            &format!("/incidents/{second}"),
            &format!("/incidents/{second}/approve"),
            &[("action", "restart-web")],
        )
        .await;
    let shown = alice.get(&expired.location.unwrap()).await;
    assert!(
        shown.contains("Refused: ") && shown.contains("expired"),
        "{}",
        shown.body
    );
    assert!(stack.restarted().is_empty(), "nothing ran");
    h.stop().await;
}

/// Records a decision in the herder's ledger through the herder's own code.
async fn record_decision(
    ledger: &pipeline_herder::ledger::Ledger,
    job_id: u64,
    project: &str,
    matcher: Option<&str>,
    action: pipeline_herder::decide::DecidedAction,
    log_line: Option<&str>,
) -> i64 {
    let job = pipeline_herder::hook::Job {
        instance: "gitlab.test".into(),
        project_id: 7,
        project_path: project.into(),
        job_id,
        name: "build-x86_64".into(),
        stage: "build".into(),
        status: "failed".into(),
        failure_reason: Some("script_failure".into()),
        allow_failure: false,
        pipeline_id: 100,
        git_ref: "main".into(),
        web_url: format!("https://gitlab.test/{project}/-/jobs/{job_id}"),
        retries_count: None,
    };
    let decision = pipeline_herder::decide::Decision {
        matcher: matcher.map(str::to_owned),
        matcher_action: None,
        action,
        reason: "recorded by the console test".into(),
        attempt: 1,
        retry_limit: Some(3),
        delay: None,
        log_line: log_line.map(str::to_owned),
    };
    ledger
        .record(&job, &format!("evt-{job_id}"), &decision, None)
        .await
        .unwrap()
        .expect("a new decision")
        .id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_herders_decisions_are_listed_filtered_and_shown_with_their_log_line() {
    use pipeline_herder::decide::DecidedAction;
    let h = Harness::start_with(Options {
        herder: true,
        ..Options::default()
    })
    .await;
    let herder = h.herder.as_ref().unwrap();
    let ledger =
        pipeline_herder::ledger::Ledger::connect(&herder.database.url, Duration::from_secs(10))
            .await
            .unwrap();
    let pulled = record_decision(
        &ledger,
        501,
        "kernel/ark",
        Some("image-pull"),
        DecidedAction::Report,
        Some("ERROR: Job failed: failed to pull image \"quay.io/cki/builder:latest\""),
    )
    .await;
    record_decision(
        &ledger,
        502,
        "kernel/other",
        None,
        DecidedAction::None,
        None,
    )
    .await;
    let mut alice = h.signed_in("alice").await;

    let all = alice.get("/herder").await;
    assert!(
        all.contains("kernel/ark") && all.contains("kernel/other"),
        "{}",
        all.body
    );
    let filtered = alice.get("/herder?matcher=image-pull").await;
    assert!(filtered.contains("kernel/ark") && !filtered.contains("kernel/other"));
    let by_project = alice.get("/herder?project=kernel%2Fother").await;
    assert!(by_project.contains("kernel/other") && !by_project.contains("kernel/ark"));
    let none = alice.get("/herder?state=nonexistent").await;
    assert!(none.contains("No decisions match."));

    let detail = alice.get(&format!("/herder/decisions/{pulled}")).await;
    assert_eq!(detail.status, StatusCode::OK);
    assert!(
        detail.contains("failed to pull image &quot;quay.io/cki/builder:latest&quot;"),
        "{}",
        detail.body
    );
    assert!(detail.contains("This job and its retries"));
    assert!(detail.contains(r#"href="https://gitlab.test/kernel/ark/-/jobs/501""#));
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fleet_shows_what_is_not_reconciled_and_when_the_sentinel_published() {
    let h = Harness::start_with(Options {
        fleet: true,
        ..Options::default()
    })
    .await;
    let fleet = h.fleet.as_ref().unwrap();
    let prod = fleet
        .cluster("c-prod", serde_json::json!({"env": "prod"}))
        .await;
    let dev = fleet
        .cluster(
            "c-dev",
            serde_json::json!({"env": "dev", "team": "o'brien"}),
        )
        .await;
    fleet.report_available(&dev, 1).await;
    let mut alice = h.signed_in("alice").await;

    // The sentinel polls every 100 ms; once it has published for both, the page says so.
    let page = eventually_async(
        "the sentinel's publish for c-prod on the fleet page",
        WAIT,
        || {
            let mut browser = Browser::new(&h.url);
            browser.cookies = alice.cookies.clone();
            async move {
                let page = browser.get("/fleet").await;
                page.contains("published <time").then_some(page)
            }
        },
    )
    .await;
    assert!(
        page.contains("c-prod") && page.contains("c-dev"),
        "{}",
        page.body
    );
    assert!(
        page.contains("not reconciled") && page.contains(">reconciled<"),
        "{}",
        page.body
    );
    // A reconciled cluster gives the sentinel nothing to publish.
    assert!(page.contains("not published"), "{}", page.body);

    let prod_only = alice.get("/fleet?label=env%3Dprod").await;
    assert!(prod_only.contains("c-prod") && !prod_only.contains("c-dev"));
    let quoted = alice.get("/fleet?label=team%3Do%27brien").await;
    assert!(
        quoted.contains("c-dev") && !quoted.contains("c-prod"),
        "{}",
        quoted.body
    );
    let unreconciled = alice.get("/fleet?unreconciled=1").await;
    assert!(unreconciled.contains("c-prod") && !unreconciled.contains("c-dev"));
    let bad = alice.get("/fleet?label=env").await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.contains("`env` is not a label filter: write key=value"));
    let bad_page = alice.get("/fleet?page=0").await;
    assert_eq!(bad_page.status, StatusCode::BAD_REQUEST);

    let detail = alice.get(&format!("/fleet/clusters/{dev}")).await;
    assert_eq!(detail.status, StatusCode::OK);
    for text in ["Reconciled", "validator", "Available=True", "No nodepools."] {
        assert!(detail.contains(text), "{text}: {}", detail.body);
    }
    let prod_detail = alice.get(&format!("/fleet/clusters/{prod}")).await;
    for text in [
        "not reconciled since",
        "No adapter has reported yet.",
        "last published",
    ] {
        assert!(prod_detail.contains(text), "{text}: {}", prod_detail.body);
    }
    let missing = alice
        .get("/fleet/clusters/0190a5b2-0000-7000-8000-000000000000")
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert!(missing.contains("The HyperFleet API has no cluster"));

    let overview = alice.get("/").await;
    assert!(
        overview.contains(r#"<span class="number bad">1</span><span class="label"><a href="/fleet?unreconciled=1">clusters not reconciled"#),
        "{}",
        overview.body
    );
    h.stop().await;
}

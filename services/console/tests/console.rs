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
    assert!(
        alice
            .get(&refused.location.unwrap())
            .await
            .contains("longer than 500")
    );

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

//! `steadfastctl` as an operator runs it: the real binary against the real local broker.

use std::process::Output;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use steadfast_events::Envelope;
use steadfast_messaging::{Consumer, ConsumerSettings, Incoming, Outcome, Publisher, QueueSpec};
use steadfast_test_support::{FnHandler, TestBroker, eventually, eventually_async};
use tokio_util::sync::CancellationToken;

const WAIT: Duration = Duration::from_secs(20);

async fn ctl(tb: &TestBroker, args: &[&str]) -> Output {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_steadfastctl"));
    command
        .args(args)
        .env("AMQP_URL", steadfast_test_support::amqp_url())
        .env("STEADFAST_NAMESPACE", tb.namespace.as_str())
        .env_remove("RABBITMQ_MANAGEMENT_URL");
    command.output().await.expect("run steadfastctl")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[tokio::test]
async fn parked_shows_failures_and_replay_brings_them_back_to_be_processed() {
    let tb = TestBroker::new().await;
    let exchange = tb.name("webhooks");
    let spec = QueueSpec::new(tb.name("svc.jobs")).bind(&exchange, "#");
    let fixed = Arc::new(AtomicBool::new(false));
    let handled: Arc<Mutex<Vec<(String, u32)>>> = Arc::default();
    let (flag, record) = (fixed.clone(), handled.clone());
    let consumer = Consumer::new(
        tb.start_broker("ctl-test-consumer"),
        spec.clone(),
        ConsumerSettings::default(),
        FnHandler(move |m: Incoming<Value>| {
            let (flag, record) = (flag.clone(), record.clone());
            async move {
                if !flag.load(Ordering::SeqCst) {
                    return Outcome::park("GitLab answered 403 Forbidden for the retry call");
                }
                record.lock().unwrap().push((m.event.id, m.attempt));
                Outcome::Done
            }
        }),
    );
    let shutdown = CancellationToken::new();
    let handle = tokio::spawn(consumer.run(shutdown.clone()));
    tb.broker.declare_queue(spec.clone()).await.unwrap();

    let publisher = Publisher::new(tb.broker.clone());
    for (id, kind) in [
        ("job-1", "com.gitlab.build"),
        ("mr-2", "com.gitlab.merge_request"),
        ("job-3", "com.gitlab.build"),
    ] {
        let event = Envelope::new("https://gitlab.com/g/p", kind, json!({"id": id})).with_id(id);
        publisher
            .publish(&exchange, "gitlab.com.g.p.build", &event, Some("gitlab"))
            .await
            .unwrap();
    }
    let parked = tb.queue(&spec.parked_queue());
    eventually_async("three parked messages", WAIT, || async {
        (parked.depth().await == 3).then_some(())
    })
    .await;

    let out = ctl(&tb, &["parked", &spec.name]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("id=job-1 type=com.gitlab.build reason=permanent"),
        "{text}"
    );
    assert!(
        text.contains("error: GitLab answered 403 Forbidden for the retry call"),
        "{text}"
    );
    assert!(
        text.contains(&format!("route={exchange}/gitlab.com.g.p.build")),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "3 parked message(s); `steadfastctl replay {}` moves them back",
            spec.name
        )),
        "{text}"
    );

    let out = ctl(&tb, &["parked", &spec.parked_queue(), "--json"]).await;
    let listed: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(listed.len(), 3);
    assert_eq!(
        listed[0]["error"],
        "GitLab answered 403 Forbidden for the retry call"
    );
    eventually_async("the parking lot intact after reading", WAIT, || async {
        (parked.depth().await == 3).then_some(())
    })
    .await;

    fixed.store(true, Ordering::SeqCst);
    let out = ctl(&tb, &["replay", &spec.name, "--type", "com.gitlab.build"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        format!(
            "moved 2 message(s) from {0}.parked back to {0}; 1 left parked\n",
            spec.name
        )
    );
    eventually("the replayed jobs handled", WAIT, || {
        (handled.lock().unwrap().len() == 2).then_some(())
    })
    .await;
    let mut done = handled.lock().unwrap().clone();
    done.sort();
    assert_eq!(done, vec![("job-1".into(), 1), ("job-3".into(), 1)]);

    let out = ctl(&tb, &["replay", &spec.name]).await;
    assert!(
        stdout(&out).starts_with("moved 1 message(s)"),
        "{}",
        stdout(&out)
    );
    eventually("the merge request handled", WAIT, || {
        (handled.lock().unwrap().len() == 3).then_some(())
    })
    .await;
    shutdown.cancel();
    handle.await.unwrap().unwrap();
}

#[tokio::test]
async fn queues_lists_the_namespace_with_depths() {
    let tb = TestBroker::new().await;
    let exchange = tb.name("webhooks");
    let spec = QueueSpec::new(tb.name("svc.jobs")).bind(&exchange, "#");
    tb.broker.declare_queue(spec.clone()).await.unwrap();
    let publisher = Publisher::new(tb.broker.clone());
    for n in 0..3 {
        publisher
            .publish(
                &exchange,
                "k",
                &Envelope::new("s", "t", json!({ "n": n })),
                None,
            )
            .await
            .unwrap();
    }
    // The management API refreshes its statistics every few seconds.
    let text = eventually_async(
        "the depth to show in `steadfastctl queues`",
        WAIT,
        || async {
            let text = stdout(&ctl(&tb, &["queues"]).await);
            text.lines()
                .any(|l| {
                    l.split_whitespace().collect::<Vec<_>>() == [spec.name.as_str(), "3", "0", "0"]
                })
                .then_some(text)
        },
    )
    .await;
    assert!(text.starts_with("QUEUE"), "{text}");
    assert!(text.contains(&spec.parked_queue()), "{text}");
    assert!(text.contains(&format!("{}.retry.5s", spec.name)), "{text}");

    let out = ctl(&tb, &["queues", "--json"]).await;
    let queues: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert!(queues.iter().all(|q| {
        q["name"]
            .as_str()
            .unwrap()
            .starts_with(tb.namespace.as_str())
    }));
    assert!(
        queues
            .iter()
            .any(|q| q["name"] == spec.name.as_str() && q["type"] == "quorum")
    );
}

#[tokio::test]
async fn mistakes_get_clear_errors() {
    let tb = TestBroker::new().await;
    let out = ctl(&tb, &["replay", &tb.name("svc.jobs.retry.5s")]).await;
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains(&format!(
            "is a retry or delay queue; name the work queue, e.g. `{}`",
            tb.name("svc.jobs")
        )),
        "{}",
        stderr(&out)
    );

    let out = ctl(&tb, &["parked", &tb.name("nothing")]).await;
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains(&format!(
            "queue `{}.parked` does not exist",
            tb.name("nothing")
        )),
        "{}",
        stderr(&out)
    );

    let out = ctl(&tb, &["replay", "q", "--older-than", "soon"]).await;
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("invalid value 'soon' for '--older-than"),
        "{}",
        stderr(&out)
    );

    let out = ctl(&tb, &["discard", &tb.name("svc.jobs.retry.5s"), "--yes"]).await;
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("is a retry or delay queue; name the work queue"),
        "{}",
        stderr(&out)
    );

    let out = ctl(&tb, &["discard", &tb.name("nothing"), "--yes"]).await;
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains(&format!(
            "queue `{}.parked` does not exist",
            tb.name("nothing")
        )),
        "{}",
        stderr(&out)
    );

    let out = ctl(&tb, &["queues", "--management-url", "http://127.0.0.1:1/"]).await;
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("cannot reach the RabbitMQ management API at http://127.0.0.1:1/: "),
        "{}",
        stderr(&out)
    );

    let out = ctl(
        &tb,
        &[
            "queues",
            "--management-url",
            "http://guest:wrong@127.0.0.1:15672/",
        ],
    )
    .await;
    assert!(!out.status.success());
    assert_eq!(
        stderr(&out),
        "error: the RabbitMQ management API at http://127.0.0.1:15672/ refused user `guest` \
         (401 Unauthorized): wrong user name or password\n"
    );

    let out = ctl(&tb, &["queues", "--management-url", "rabbit:15672"]).await;
    assert!(!out.status.success());
    assert_eq!(
        stderr(&out),
        "error: management API URL `rabbit:15672` is not valid: the scheme is `rabbit`, not \
         http or https\n"
    );
}

#[tokio::test]
async fn replay_and_discard_pick_messages_by_id_and_discard_asks_for_yes() {
    let tb = TestBroker::new().await;
    let exchange = tb.name("webhooks");
    let spec = QueueSpec::new(tb.name("svc.jobs")).bind(&exchange, "#");
    // One at a time, so they are parked in the order published.
    let settings = ConsumerSettings {
        prefetch: 1,
        concurrency: 1,
        ..ConsumerSettings::default()
    };
    let consumer = Consumer::new(
        tb.start_broker("ctl-test-consumer"),
        spec.clone(),
        settings,
        FnHandler(|_: Incoming<Value>| async { Outcome::park("422 Unprocessable Entity") }),
    );
    let shutdown = CancellationToken::new();
    let handle = tokio::spawn(consumer.run(shutdown.clone()));
    tb.broker.declare_queue(spec.clone()).await.unwrap();
    let publisher = Publisher::new(tb.broker.clone());
    for (id, kind) in [
        ("job-1", "com.gitlab.build"),
        ("mr-2", "com.gitlab.merge_request"),
        ("job-3", "com.gitlab.build"),
        ("job-4", "com.gitlab.build"),
    ] {
        let event = Envelope::new("https://gitlab.com/g/p", kind, json!({"id": id})).with_id(id);
        publisher
            .publish(&exchange, "k", &event, None)
            .await
            .unwrap();
    }
    let parked = tb.queue(&spec.parked_queue());
    eventually_async("four parked messages", WAIT, || async {
        (parked.depth().await == 4).then_some(())
    })
    .await;
    // Stopped, so a replayed message stays on the work queue for the test to see.
    shutdown.cancel();
    handle.await.unwrap().unwrap();

    let out = ctl(&tb, &["replay", &spec.name, "--id", "job-3"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        format!(
            "moved 1 message(s) from {0}.parked back to {0}; 3 left parked\n",
            spec.name
        )
    );
    let replayed = tb.queue(&spec.name).next(WAIT).await;
    assert_eq!(replayed.message_id().as_deref(), Some("job-3"));

    let out = ctl(&tb, &["discard", &spec.name, "--type", "com.gitlab.build"]).await;
    assert!(!out.status.success());
    assert_eq!(
        stderr(&out),
        format!(
            "error: would remove 2 of the 3 parked message(s) of {}: job-1 (com.gitlab.build), \
             job-4 (com.gitlab.build); nothing was removed: add --yes to remove them\n",
            spec.name
        )
    );
    assert_eq!(parked.depth().await, 3, "nothing removed without --yes");

    let out = ctl(
        &tb,
        &[
            "discard",
            &spec.parked_queue(),
            "--id",
            "job-1",
            "--id",
            "mr-2",
            "--yes",
        ],
    )
    .await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        format!(
            "removed 2 message(s) from {}.parked; 1 left parked\n",
            spec.name
        )
    );
    // Each removal leaves a trace on stderr.
    let log = stderr(&out);
    let lines: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("WARN") && l.contains("discarded a parked message"))
        .collect();
    assert_eq!(lines.len(), 2, "{log}");
    assert!(
        lines[0].contains("id=job-1 event_type=com.gitlab.build"),
        "{log}"
    );
    assert!(
        lines[1].contains("id=mr-2 event_type=com.gitlab.merge_request"),
        "{log}"
    );

    let out = ctl(&tb, &["parked", &spec.name, "--json"]).await;
    let listed: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    let ids: Vec<&str> = listed.iter().filter_map(|m| m["id"].as_str()).collect();
    assert_eq!(ids, ["job-4"]);

    let out = ctl(&tb, &["discard", &spec.name, "--id", "job-1"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        format!(
            "none of the 1 parked message(s) of {} matches; nothing to remove\n",
            spec.name
        )
    );
}

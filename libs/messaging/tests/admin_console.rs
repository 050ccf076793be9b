//! What an operator (steadfastctl, the console) does to the parking lot and sees of the
//! queues, against the real local RabbitMQ and its management API. Each test has its own
//! namespace.

use std::collections::BTreeSet;
use std::time::Duration;

use chrono::Utc;
use serde_json::{Value, json};
use steadfast_events::Envelope;
use steadfast_messaging::admin::management::{ManagementApi, ManagementError, QueueInfo};
use steadfast_messaging::admin::{self, DiscardReport, ReplayFilter, ReplayReport};
use steadfast_messaging::{
    Consumer, ConsumerSettings, Incoming, MessagingError, Outcome, Publisher, QueueSpec,
    RetryPolicy,
};
use steadfast_test_support::{FnHandler, TestBroker, eventually_async};
use tokio_util::sync::CancellationToken;

const WAIT: Duration = Duration::from_secs(15);

/// Six messages: ids `m1`..`m6`, types alternating `type.one` / `type.two`.
const MESSAGES: [(&str, &str); 6] = [
    ("m1", "type.one"),
    ("m2", "type.two"),
    ("m3", "type.one"),
    ("m4", "type.two"),
    ("m5", "type.one"),
    ("m6", "type.two"),
];

fn spec(tb: &TestBroker) -> QueueSpec {
    QueueSpec::new(tb.name("svc.work"))
        .bind(tb.name("events"), "#")
        .with_retry(RetryPolicy {
            delays: vec![Duration::from_millis(100)],
            max_attempts: Some(5),
        })
}

/// Publishes `messages` and lets a consumer park each one (after one retry if `retry_first`),
/// one at a time so they are parked in the order published; the consumer is stopped before
/// returning, so replayed messages stay on the work queue for the test to take.
async fn park(tb: &TestBroker, spec: &QueueSpec, messages: &[(&str, &str)], retry_first: bool) {
    let shutdown = CancellationToken::new();
    let consumer = Consumer::new(
        tb.start_broker(&format!("consumer-{}", tb.namespace)),
        spec.clone(),
        ConsumerSettings {
            prefetch: 1,
            concurrency: 1,
            drain_timeout: Duration::from_secs(5),
            ..ConsumerSettings::default()
        },
        FnHandler(move |m: Incoming<Value>| async move {
            if retry_first && m.attempt == 1 {
                return Outcome::retry("503 from the API");
            }
            Outcome::park(format!("422 for {}", m.event.id))
        }),
    );
    let handle = tokio::spawn(consumer.run(shutdown.clone()));
    eventually_async("the consumer to subscribe", WAIT, || async {
        admin::queue_state(&tb.broker, &spec.name)
            .await
            .ok()
            .flatten()
            .filter(|s| s.consumers > 0)
    })
    .await;
    let publisher = Publisher::new(tb.broker.clone());
    for (id, kind) in messages {
        let event = Envelope::new("https://example.test/src", *kind, json!({ "id": id }))
            .with_id(*id)
            .with_time(Utc::now());
        publisher
            .publish(
                &spec.bindings[0].0,
                "orders.created",
                &event,
                Some("gitlab"),
            )
            .await
            .unwrap();
    }
    let parked = tb.queue(&spec.parked_queue());
    eventually_async("every message parked", WAIT, || async {
        (parked.depth().await as usize == messages.len()).then_some(())
    })
    .await;
    shutdown.cancel();
    handle.await.unwrap().unwrap();
}

async fn parked_ids(tb: &TestBroker, spec: &QueueSpec) -> Vec<String> {
    admin::parked(&tb.broker, &spec.name, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.id.unwrap())
        .collect()
}

/// Takes every message on the work queue, returning their ids in order.
async fn drain_work_queue(tb: &TestBroker, spec: &QueueSpec) -> Vec<String> {
    let work = tb.queue(&spec.name);
    let mut ids = Vec::new();
    while let Some(message) = work.try_next().await {
        ids.push(message.message_id().unwrap());
    }
    ids
}

fn ids(ids: &[&str]) -> Option<BTreeSet<String>> {
    Some(ids.iter().map(|s| (*s).to_owned()).collect())
}

#[tokio::test]
async fn replay_by_ids_moves_exactly_the_chosen_messages_and_keeps_the_rest_in_order() {
    let tb = TestBroker::new().await;
    let spec = spec(&tb);
    park(&tb, &spec, &MESSAGES, false).await;
    let all = ["m1", "m2", "m3", "m4", "m5", "m6"];
    assert_eq!(parked_ids(&tb, &spec).await, all);
    // Looking at the first few leaves the order alone.
    let first = admin::parked(&tb.broker, &spec.name, 2).await.unwrap();
    let first: Vec<_> = first.iter().filter_map(|m| m.id.as_deref()).collect();
    assert_eq!(first, ["m1", "m2"]);
    assert_eq!(parked_ids(&tb, &spec).await, all);

    let chosen = ReplayFilter {
        ids: ids(&["m2", "m5"]),
        ..Default::default()
    };
    let report = admin::replay(&tb.broker, &spec.name, &chosen)
        .await
        .unwrap();
    assert_eq!(
        report,
        ReplayReport {
            moved: 2,
            skipped: 4
        }
    );
    assert_eq!(drain_work_queue(&tb, &spec).await, ["m2", "m5"]);
    assert_eq!(parked_ids(&tb, &spec).await, ["m1", "m3", "m4", "m6"]);

    // Ids and type together: both must hold.
    let both = ReplayFilter {
        ids: ids(&["m1", "m4"]),
        event_type: Some("type.two".into()),
        ..Default::default()
    };
    let report = admin::replay(&tb.broker, &spec.parked_queue(), &both)
        .await
        .unwrap();
    assert_eq!((report.moved, report.skipped), (1, 3));
    assert_eq!(drain_work_queue(&tb, &spec).await, ["m4"]);
    assert_eq!(parked_ids(&tb, &spec).await, ["m1", "m3", "m6"]);

    // Unknown ids, and an empty selection, move nothing.
    for nothing in [ids(&["no-such-id"]), ids(&[])] {
        let filter = ReplayFilter {
            ids: nothing,
            ..Default::default()
        };
        let report = admin::replay(&tb.broker, &spec.name, &filter)
            .await
            .unwrap();
        assert_eq!((report.moved, report.skipped), (0, 3));
    }
    assert!(drain_work_queue(&tb, &spec).await.is_empty());
    assert_eq!(parked_ids(&tb, &spec).await, ["m1", "m3", "m6"]);
}

#[tokio::test]
async fn discard_removes_exactly_the_chosen_messages() {
    let tb = TestBroker::new().await;
    let spec = spec(&tb);
    park(&tb, &spec, &MESSAGES, false).await;

    let by_id = ReplayFilter {
        ids: ids(&["m1", "m4"]),
        ..Default::default()
    };
    let report = admin::discard(&tb.broker, &spec.name, &by_id)
        .await
        .unwrap();
    assert_eq!(
        report,
        DiscardReport {
            removed: 2,
            skipped: 4
        }
    );
    assert_eq!(parked_ids(&tb, &spec).await, ["m2", "m3", "m5", "m6"]);

    let by_type = ReplayFilter {
        event_type: Some("type.one".into()),
        limit: Some(1),
        ..Default::default()
    };
    let report = admin::discard(&tb.broker, &spec.parked_queue(), &by_type)
        .await
        .unwrap();
    assert_eq!((report.removed, report.skipped), (1, 3));
    assert_eq!(parked_ids(&tb, &spec).await, ["m2", "m5", "m6"]);

    let by_type = ReplayFilter {
        limit: None,
        ..by_type
    };
    let report = admin::discard(&tb.broker, &spec.name, &by_type)
        .await
        .unwrap();
    assert_eq!((report.removed, report.skipped), (1, 2));
    assert_eq!(parked_ids(&tb, &spec).await, ["m2", "m6"]);

    // Nothing matches: nothing goes, and nothing is replayed either.
    for nothing in [
        ReplayFilter {
            event_type: Some("type.none".into()),
            ..Default::default()
        },
        ReplayFilter {
            ids: ids(&[]),
            ..Default::default()
        },
        ReplayFilter {
            older_than: Some(Duration::from_secs(3600)),
            ..Default::default()
        },
    ] {
        let report = admin::discard(&tb.broker, &spec.name, &nothing)
            .await
            .unwrap();
        assert_eq!((report.removed, report.skipped), (0, 2), "{nothing:?}");
    }
    assert_eq!(parked_ids(&tb, &spec).await, ["m2", "m6"]);
    assert!(drain_work_queue(&tb, &spec).await.is_empty());

    let missing = tb.name("nothing");
    let error = admin::discard(&tb.broker, &missing, &ReplayFilter::default())
        .await
        .unwrap_err();
    assert!(matches!(error, MessagingError::QueueNotFound(_)), "{error}");
    assert_eq!(
        error.to_string(),
        format!("queue `{missing}.parked` does not exist")
    );
}

#[tokio::test]
async fn parked_messages_show_every_header_and_when_they_were_parked() {
    let tb = TestBroker::new().await;
    let spec = spec(&tb);
    let before = Utc::now();
    park(&tb, &spec, &MESSAGES[..1], true).await;
    let after = Utc::now();

    let listed = admin::parked(&tb.broker, &spec.name, 100).await.unwrap();
    let [message] = listed.as_slice() else {
        panic!("one parked message expected: {listed:?}")
    };
    assert_eq!(message.id.as_deref(), Some("m1"));
    assert_eq!(message.routing_key, spec.parked_queue());
    assert_eq!(
        message.original_routing_key.as_deref(),
        Some("orders.created")
    );
    assert_eq!(message.reason.as_deref(), Some("permanent"));
    assert_eq!(message.retry_count, 1);
    let parked_at = message.parked_at.expect("parked_at");
    // The header has milliseconds; the window's ends are truncated to match.
    assert!(
        before - chrono::Duration::milliseconds(1) <= parked_at && parked_at <= after,
        "{before} <= {parked_at} <= {after}"
    );
    assert_eq!(
        message.failed_at.as_deref(),
        Some(
            parked_at
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
                .as_str()
        )
    );
    let timestamp = message.timestamp.expect("timestamp");
    assert!(timestamp.timestamp() >= before.timestamp() && timestamp <= after);
    assert_eq!(
        message.app_id,
        Some(format!("test-{}", tb.namespace)),
        "the publisher's app id"
    );
    assert_eq!(
        message.content_type.as_deref(),
        Some("application/cloudevents+json")
    );

    let headers = &message.headers;
    assert_eq!(headers["message-type"], "gitlab");
    assert_eq!(headers["steadfast-error"], "422 for m1");
    assert_eq!(headers["steadfast-last-error"], "503 from the API");
    assert_eq!(headers["steadfast-parked-reason"], "permanent");
    assert_eq!(
        headers["steadfast-failed-at"],
        message.failed_at.clone().unwrap()
    );
    // An integer header, rendered as a number.
    assert_eq!(headers["steadfast-retry-count"], "1");
    assert_eq!(headers["steadfast-original-exchange"], tb.name("events"));
    assert_eq!(headers["steadfast-original-routing-key"], "orders.created");
    // The broker's own headers too, tables and arrays as JSON.
    let deaths: Value = serde_json::from_str(&headers["x-death"]).unwrap();
    assert_eq!(
        deaths[0]["queue"],
        spec.retry_queue(Duration::from_millis(100))
    );
    assert_eq!(deaths[0]["reason"], "expired");
    assert_eq!(deaths[0]["count"], 1);

    let body: Value = serde_json::from_str(&message.body).unwrap();
    assert_eq!(body["id"], "m1");
    assert_eq!(body["data"], json!({ "id": "m1" }));
    assert_eq!(message.bytes, message.body.len());

    // What `older_than` compares with is what `parked_at` says.
    let old = ReplayFilter {
        older_than: Some(Duration::from_secs(3600)),
        ..Default::default()
    };
    assert!(!old.matches(message));
    let recent = ReplayFilter {
        older_than: Some(Duration::ZERO),
        ..Default::default()
    };
    assert!(recent.matches(message));
}

fn local_api(password: Option<&str>) -> ManagementApi {
    let mut amqp = url::Url::parse(&steadfast_test_support::amqp_url()).unwrap();
    if let Some(password) = password {
        amqp.set_password(Some(password)).unwrap();
    }
    ManagementApi::from_amqp_url(amqp.as_str()).unwrap()
}

#[tokio::test]
async fn the_management_api_lists_the_namespace_queues_with_depths() {
    let tb = TestBroker::new().await;
    let other = TestBroker::new().await;
    let spec = spec(&tb);
    park(&tb, &spec, &MESSAGES[..2], false).await;
    other
        .broker
        .declare_queue(QueueSpec::new(other.name("svc.work")))
        .await
        .unwrap();
    let publisher = Publisher::new(tb.broker.clone());
    for n in 0..3 {
        let event = Envelope::new("s", "t", json!({ "n": n }));
        publisher
            .publish(&spec.bindings[0].0, "k", &event, None)
            .await
            .unwrap();
    }

    let api = local_api(None);
    let depth = |queues: &[QueueInfo], name: &str| {
        queues
            .iter()
            .find(|q| q.name == name)
            .map(|q| (q.messages, q.messages_ready, q.consumers))
    };
    // The management API refreshes its statistics every few seconds.
    let queues = eventually_async("the depths in the management API", WAIT, || async {
        let queues = api.namespace_queues(&tb.namespace).await.unwrap();
        (depth(&queues, &spec.name) == Some((3, 3, 0))
            && depth(&queues, &spec.parked_queue()) == Some((2, 2, 0)))
        .then_some(queues)
    })
    .await;
    let names: Vec<String> = queues.iter().map(|q| q.name.clone()).collect();
    let tier = spec.retry_queue(Duration::from_millis(100));
    let mut expected = vec![spec.name.clone(), spec.parked_queue(), tier.clone()];
    expected.sort();
    assert_eq!(names, expected, "only this namespace, sorted by name");
    assert_eq!(depth(&queues, &tier), Some((0, 0, 0)));
    assert!(
        queues
            .iter()
            .all(|q| q.queue_type.as_deref() == Some("quorum"))
    );

    let everything = api.queues().await.unwrap();
    assert!(everything.iter().any(|q| q.name == other.name("svc.work")));
    assert!(everything.iter().any(|q| q.name == spec.name));
}

#[tokio::test]
async fn management_api_mistakes_get_precise_errors() {
    let api = local_api(Some("wrong"));
    let error = api.queues().await.unwrap_err();
    assert!(
        matches!(error, ManagementError::Unauthorized { .. }),
        "{error:?}"
    );
    assert_eq!(
        error.to_string(),
        format!(
            "the RabbitMQ management API at {} refused user `guest` (401 Unauthorized): wrong user name or password",
            api.url()
        )
    );

    let mut amqp = url::Url::parse(&steadfast_test_support::amqp_url()).unwrap();
    amqp.set_path("/no-such-vhost");
    let api = ManagementApi::from_amqp_url(amqp.as_str()).unwrap();
    let error = api.queues().await.unwrap_err();
    assert_eq!(
        error.to_string(),
        format!(
            "virtual host `no-such-vhost` does not exist on the RabbitMQ management API at {}",
            api.url()
        )
    );

    let error = ManagementApi::new("http://127.0.0.1:1/")
        .unwrap()
        .queues()
        .await
        .unwrap_err();
    assert!(
        matches!(error, ManagementError::Unreachable { .. }),
        "{error:?}"
    );
    let text = error.to_string();
    assert!(
        text.starts_with("cannot reach the RabbitMQ management API at http://127.0.0.1:1/: ")
            && text.contains("Connection refused"),
        "{text}"
    );
}

#[tokio::test]
async fn answers_that_are_not_a_queue_list_are_named_with_an_excerpt() {
    use axum::http::StatusCode;
    let down = steadfast_test_support::spawn_http(axum::Router::new().fallback(|| async {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "<html>\n  <body>down for maintenance</body>\n</html>",
        )
    }))
    .await;
    let error = ManagementApi::new(&format!("{down}/rabbitmq/"))
        .unwrap()
        .queues()
        .await
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "the RabbitMQ management API answered HTTP 503 for /rabbitmq/api/queues/%2F: \
         <html> <body>down for maintenance</body> </html>"
    );

    let not_json = steadfast_test_support::spawn_http(
        axum::Router::new().fallback(|| async { "<html>a login page</html>" }),
    )
    .await;
    let error = ManagementApi::new(&not_json)
        .unwrap()
        .queues()
        .await
        .unwrap_err();
    assert!(
        matches!(error, ManagementError::InvalidAnswer { .. }),
        "{error:?}"
    );
    assert_eq!(
        error.to_string(),
        "the RabbitMQ management API sent an answer for /api/queues/%2F that is not a queue list: \
         expected value at line 1 column 1; the answer starts with: <html>a login page</html>"
    );
}

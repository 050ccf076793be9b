//! The messaging contract, against the real local RabbitMQ. Each test has its own namespace.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use steadfast_events::{Envelope, TraceParent};
use steadfast_messaging::admin::{self, ReplayFilter};
use steadfast_messaging::{
    Consumer, ConsumerSettings, ExchangeSpec, Incoming, Outcome, PublishError, Publisher,
    QueueSpec, RetryPolicy, topology,
};
use steadfast_test_support::{FnHandler, TestBroker, eventually, eventually_async};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

const WAIT: Duration = Duration::from_secs(15);

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn event(n: u64) -> Envelope<Value> {
    Envelope::new(
        "https://example.test/src",
        "com.example.test",
        json!({ "n": n }),
    )
}

fn settings() -> ConsumerSettings {
    ConsumerSettings {
        drain_timeout: Duration::from_secs(5),
        ..ConsumerSettings::default()
    }
}

/// Starts a consumer on its own broker connection; returns the shutdown token and join handle.
fn spawn_consumer<F, Fut>(
    tb: &TestBroker,
    spec: QueueSpec,
    settings: ConsumerSettings,
    handler: F,
) -> (CancellationToken, tokio::task::JoinHandle<()>)
where
    F: Fn(Incoming<Value>) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Outcome> + Send + 'static,
{
    steadfast_test_support::init_test_logging();
    let broker = tb.start_broker(&format!("consumer-{}", tb.namespace));
    let shutdown = CancellationToken::new();
    let consumer = Consumer::new(broker, spec, settings, FnHandler(handler));
    let token = shutdown.clone();
    let handle = tokio::spawn(async move {
        consumer.run(token).await.expect("consumer run");
    });
    (shutdown, handle)
}

async fn wait_consuming(tb: &TestBroker, queue: &str) {
    eventually_async(&format!("a consumer on {queue}"), WAIT, || async {
        admin::queue_state(&tb.broker, queue)
            .await
            .ok()
            .flatten()
            .filter(|s| s.consumers > 0)
    })
    .await;
}

#[tokio::test]
async fn published_event_arrives_with_every_attribute_and_property() {
    let tb = TestBroker::new().await;
    let exchange = tb.name("webhooks");
    tb.broker
        .declare_exchange(ExchangeSpec::topic(&exchange))
        .await
        .unwrap();
    let probe = tb.probe("all", &exchange, "#").await;
    let publisher = Publisher::new(tb.broker.clone());
    let traceparent = TraceParent::new_random();
    let sent = event(1)
        .with_id("delivery-123")
        .with_subject("jobs/1")
        .with_traceparent(&traceparent);

    publisher
        .publish(
            &exchange,
            "gitlab.com.group.project.build",
            &sent,
            Some("gitlab"),
        )
        .await
        .unwrap();

    let (received, raw) = probe.next_event::<Value>(WAIT).await;
    assert_eq!(received.id, "delivery-123");
    assert_eq!(received.source, sent.source);
    assert_eq!(received.event_type, "com.example.test");
    assert_eq!(received.subject.as_deref(), Some("jobs/1"));
    assert_eq!(received.data, json!({"n": 1}));
    assert_eq!(received.traceparent(), Some(traceparent));
    assert_eq!(raw.routing_key, "gitlab.com.group.project.build");
    assert_eq!(raw.message_id().as_deref(), Some("delivery-123"));
    assert_eq!(raw.kind().as_deref(), Some("com.example.test"));
    assert_eq!(
        raw.app_id().as_deref(),
        Some(format!("test-{}", tb.namespace).as_str())
    );
    assert_eq!(
        raw.content_type().as_deref(),
        Some("application/cloudevents+json")
    );
    assert_eq!(raw.delivery_mode(), Some(2));
    assert_eq!(raw.timestamp(), sent.time.map(|t| t.timestamp() as u64));
    assert_eq!(raw.header("message-type").as_deref(), Some("gitlab"));
    assert_eq!(raw.header("traceparent"), Some(traceparent.to_string()));
}

#[tokio::test]
async fn transient_failures_walk_the_tiers_and_park_after_max_attempts() {
    let tb = TestBroker::new().await;
    let exchange = tb.name("events");
    // Another consumer on the same exchange must see the event once, and never its retries.
    let bystander = tb.probe("bystander", &exchange, "#").await;
    let spec = QueueSpec::new(tb.name("svc.work"))
        .bind(&exchange, "orders.#")
        .with_retry(RetryPolicy {
            delays: vec![ms(300), ms(600)],
            max_attempts: Some(3),
        });
    let seen: Arc<Mutex<Vec<(u32, Instant)>>> = Arc::default();
    let record = seen.clone();
    let (shutdown, handle) =
        spawn_consumer(&tb, spec.clone(), settings(), move |m: Incoming<Value>| {
            let record = record.clone();
            async move {
                assert_eq!(
                    m.routing_key, "orders.created",
                    "handlers see the original routing key"
                );
                record.lock().unwrap().push((m.attempt, Instant::now()));
                Outcome::retry(format!("downstream 503 on attempt {}", m.attempt))
            }
        });
    wait_consuming(&tb, &spec.name).await;

    Publisher::new(tb.broker.clone())
        .publish(
            &exchange,
            "orders.created",
            &event(7).with_id("order-7"),
            None,
        )
        .await
        .unwrap();

    let parked = tb.queue(&spec.parked_queue());
    let message = parked.next(WAIT).await;
    let attempts = seen.lock().unwrap().clone();
    assert_eq!(
        attempts.iter().map(|(a, _)| *a).collect::<Vec<_>>(),
        vec![1, 2, 3]
    );
    let first_gap = attempts[1].1 - attempts[0].1;
    let second_gap = attempts[2].1 - attempts[1].1;
    assert!(first_gap >= ms(300), "first retry waited {first_gap:?}");
    assert!(second_gap >= ms(600), "second retry waited {second_gap:?}");

    assert_eq!(message.message_id().as_deref(), Some("order-7"));
    assert_eq!(
        message.header("steadfast-error").as_deref(),
        Some("gave up after 3 attempts: downstream 503 on attempt 3")
    );
    assert_eq!(
        message.header("steadfast-parked-reason").as_deref(),
        Some("exhausted")
    );
    assert!(message.header("steadfast-failed-at").is_some());
    assert_eq!(
        message.header("steadfast-original-exchange"),
        Some(exchange.clone())
    );
    assert_eq!(
        message.header("steadfast-original-routing-key").as_deref(),
        Some("orders.created")
    );
    assert_eq!(message.retry_count(), 2);

    // The bystander saw the original publish and nothing else.
    let original = bystander.next(WAIT).await;
    assert_eq!(original.message_id().as_deref(), Some("order-7"));
    assert!(
        bystander.try_next().await.is_none(),
        "retries leaked onto the topic exchange"
    );
    assert_eq!(tb.queue(&spec.name).depth().await, 0);

    shutdown.cancel();
    handle.await.unwrap();
}

#[tokio::test]
async fn undecodable_body_is_parked_at_once_and_the_queue_keeps_flowing() {
    let tb = TestBroker::new().await;
    let exchange = tb.name("events");
    let spec = QueueSpec::new(tb.name("svc.work")).bind(&exchange, "#");
    let handled: Arc<Mutex<Vec<String>>> = Arc::default();
    let record = handled.clone();
    let (shutdown, handle) =
        spawn_consumer(&tb, spec.clone(), settings(), move |m: Incoming<Value>| {
            let record = record.clone();
            async move {
                record.lock().unwrap().push(m.event.id);
                Outcome::Done
            }
        });
    wait_consuming(&tb, &spec.name).await;
    let publisher = Publisher::new(tb.broker.clone());
    // A body that is JSON but not a CloudEvent, then garbage, then a good event.
    publisher
        .publish(&exchange, "x", &event(1).with_id("good-1"), None)
        .await
        .unwrap();
    let mut not_an_event = event(2);
    not_an_event.source = String::new();
    publisher
        .publish(&exchange, "x", &not_an_event, None)
        .await
        .unwrap();
    publisher
        .publish(&exchange, "x", &event(3).with_id("good-3"), None)
        .await
        .unwrap();

    let parked = tb.queue(&spec.parked_queue()).next(WAIT).await;
    assert_eq!(
        parked.header("steadfast-error").as_deref(),
        Some("CloudEvents attribute `source` must not be empty")
    );
    assert_eq!(
        parked.header("steadfast-parked-reason").as_deref(),
        Some("undecodable")
    );
    eventually("both good events handled", WAIT, || {
        let h = handled.lock().unwrap();
        (h.len() == 2).then(|| h.clone())
    })
    .await;
    assert_eq!(
        *handled.lock().unwrap(),
        vec!["good-1".to_owned(), "good-3".to_owned()]
    );
    shutdown.cancel();
    handle.await.unwrap();
}

#[tokio::test]
async fn unroutable_and_refused_publishes_are_errors_and_the_publisher_recovers() {
    let tb = TestBroker::new().await;
    let exchange = tb.name("lonely");
    tb.broker
        .declare_exchange(ExchangeSpec::topic(&exchange))
        .await
        .unwrap();
    let publisher = Publisher::new(tb.broker.clone());

    let err = publisher
        .publish(&exchange, "nobody.listens", &event(1), None)
        .await
        .unwrap_err();
    assert!(matches!(err, PublishError::Unroutable { .. }), "{err}");
    assert!(
        err.to_string()
            .contains("no queue bound for routing key `nobody.listens`"),
        "{err}"
    );

    let missing = tb.name("does-not-exist");
    let err = publisher
        .publish(&missing, "k", &event(2), None)
        .await
        .unwrap_err();
    assert!(matches!(err, PublishError::Refused { .. }), "{err}");
    assert!(err.to_string().contains("NOT_FOUND"), "{err}");
    assert!(!err.is_transient());

    // The channel the broker closed is replaced transparently.
    let probe = tb.probe("p", &exchange, "#").await;
    publisher
        .publish(&exchange, "now.routed", &event(3), None)
        .await
        .unwrap();
    assert_eq!(probe.next(WAIT).await.routing_key, "now.routed");
}

#[tokio::test]
async fn publishing_and_consuming_resume_after_the_broker_closes_connections() {
    let tb = TestBroker::new().await;
    let exchange = tb.name("events");
    let spec = QueueSpec::new(tb.name("svc.work")).bind(&exchange, "#");
    let received: Arc<Mutex<BTreeSet<String>>> = Arc::default();
    let record = received.clone();
    let (shutdown, handle) =
        spawn_consumer(&tb, spec.clone(), settings(), move |m: Incoming<Value>| {
            let record = record.clone();
            async move {
                record.lock().unwrap().insert(m.event.id);
                Outcome::Done
            }
        });
    wait_consuming(&tb, &spec.name).await;

    let app = format!("publisher-{}", tb.namespace);
    let publisher_broker = tb.start_broker(&app);
    publisher_broker.wait_connected(WAIT).await.unwrap();
    let publisher = Publisher::new(publisher_broker.clone());
    let mut confirmed = BTreeSet::new();
    for n in 0..40u64 {
        if n == 20 {
            // Both the publisher's and the consumer's connections are cut by the broker.
            let closed =
                steadfast_test_support::close_broker_connections(&tb.namespace.to_string(), 2)
                    .await;
            assert!(closed >= 2, "closed {closed} connections");
        }
        let e = event(n).with_id(format!("m-{n}"));
        if publisher.publish(&exchange, "k", &e, None).await.is_ok() {
            confirmed.insert(e.id);
        }
    }
    assert!(
        confirmed.len() >= 39,
        "publishes kept succeeding across the reconnect: {confirmed:?}"
    );
    eventually("every confirmed message delivered", WAIT, || {
        let r = received.lock().unwrap();
        confirmed.is_subset(&r).then_some(())
    })
    .await;
    assert!(publisher_broker.metrics().reconnects.get() >= 1);
    assert!(publisher_broker.generation() >= 2);
    shutdown.cancel();
    handle.await.unwrap();
}

#[tokio::test]
async fn publish_delayed_delivers_no_earlier_than_asked() {
    let tb = TestBroker::new().await;
    let spec = QueueSpec::new(tb.name("svc.scheduled"));
    tb.broker.declare_queue(spec.clone()).await.unwrap();
    let publisher = Publisher::new(tb.broker.clone());
    let delay = ms(800);
    let started = Instant::now();
    publisher
        .publish_delayed(&spec.name, &event(1).with_id("later"), delay, None)
        .await
        .unwrap();
    let queue = tb.queue(&spec.name);
    assert!(
        queue.try_next().await.is_none(),
        "delivered before the delay"
    );
    let message = queue.next(WAIT).await;
    let waited = started.elapsed();
    assert_eq!(message.message_id().as_deref(), Some("later"));
    assert!(
        waited >= delay,
        "arrived after {waited:?}, asked for {delay:?}"
    );
    let delay_queue = format!("{}.delayed.800ms", spec.name);
    assert!(
        admin::queue_state(&tb.broker, &delay_queue)
            .await
            .unwrap()
            .is_some(),
        "the per-delay queue stays"
    );
    // It has a retry tier's arguments, without `x-expires` (RabbitMQ would delete it with its
    // waiting messages): a declare with exactly those arguments is accepted, where any
    // difference would be refused with PRECONDITION_FAILED.
    let connection = lapin::Connection::connect(
        &steadfast_test_support::amqp_url(),
        lapin::ConnectionProperties::default(),
    )
    .await
    .unwrap();
    let channel = connection.create_channel().await.unwrap();
    channel
        .queue_declare(
            delay_queue.as_str().into(),
            lapin::options::QueueDeclareOptions::durable(),
            topology::ttl_queue_arguments(&spec.name, delay),
        )
        .await
        .expect("the delay queue's arguments are a retry tier's, without x-expires");
    let _ = connection.close(200, "done".into()).await;
}

#[tokio::test]
async fn shutdown_finishes_in_flight_handlers_and_leaves_the_rest_on_the_queue() {
    let tb = TestBroker::new().await;
    let exchange = tb.name("events");
    let spec = QueueSpec::new(tb.name("svc.work")).bind(&exchange, "#");
    let started: Arc<Mutex<Vec<String>>> = Arc::default();
    let finished: Arc<Mutex<Vec<String>>> = Arc::default();
    let (release, released) = tokio::sync::watch::channel(false);
    let (s, f, r) = (started.clone(), finished.clone(), released);
    let (shutdown, handle) = spawn_consumer(
        &tb,
        spec.clone(),
        ConsumerSettings {
            prefetch: 10,
            concurrency: 2,
            ..settings()
        },
        move |m: Incoming<Value>| {
            let (s, f, r) = (s.clone(), f.clone(), r.clone());
            async move {
                s.lock().unwrap().push(m.event.id.clone());
                let _ = r.clone().wait_for(|go| *go).await;
                f.lock().unwrap().push(m.event.id);
                Outcome::Done
            }
        },
    );
    wait_consuming(&tb, &spec.name).await;
    let publisher = Publisher::new(tb.broker.clone());
    for n in 0..5 {
        publisher
            .publish(&exchange, "k", &event(n), None)
            .await
            .unwrap();
    }
    eventually("two handlers in flight", WAIT, || {
        (started.lock().unwrap().len() == 2).then_some(())
    })
    .await;

    // The runner checks for shutdown before taking any new message, so once the token is
    // cancelled the released handlers' permits cannot start the other three.
    shutdown.cancel();
    release.send_replace(true);
    tokio::time::timeout(WAIT, handle)
        .await
        .expect("consumer stopped")
        .unwrap();

    assert_eq!(
        finished.lock().unwrap().len(),
        2,
        "in-flight handlers completed"
    );
    assert_eq!(
        started.lock().unwrap().len(),
        2,
        "nothing new started after shutdown"
    );
    let queue = tb.queue(&spec.name);
    eventually_async("the unstarted messages back on the queue", WAIT, || async {
        (queue.depth().await == 3).then_some(())
    })
    .await;
}

#[tokio::test]
async fn panics_and_timeouts_are_transient_and_unlimited_policies_keep_trying() {
    let tb = TestBroker::new().await;
    let exchange = tb.name("events");
    let spec = QueueSpec::new(tb.name("svc.work"))
        .bind(&exchange, "#")
        .with_retry(RetryPolicy {
            delays: vec![ms(100)],
            max_attempts: None,
        });
    let attempts: Arc<Mutex<Vec<u32>>> = Arc::default();
    let record = attempts.clone();
    let (shutdown, handle) = spawn_consumer(
        &tb,
        spec.clone(),
        ConsumerSettings {
            handler_timeout: ms(300),
            ..settings()
        },
        move |m: Incoming<Value>| {
            let record = record.clone();
            async move {
                record.lock().unwrap().push(m.attempt);
                match m.attempt {
                    1 => panic!("bug on first attempt"),
                    2 => {
                        // A handler that never finishes: the runner's timeout must end it.
                        std::future::pending::<Outcome>().await
                    }
                    3..=6 => Outcome::retry("still flaky"),
                    _ => Outcome::Done,
                }
            }
        },
    );
    wait_consuming(&tb, &spec.name).await;
    Publisher::new(tb.broker.clone())
        .publish(&exchange, "k", &event(1), None)
        .await
        .unwrap();
    eventually("seven attempts", WAIT, || {
        (attempts.lock().unwrap().len() == 7).then_some(())
    })
    .await;
    assert_eq!(*attempts.lock().unwrap(), vec![1, 2, 3, 4, 5, 6, 7]);
    let retried = tb.queue(&spec.parked_queue());
    assert!(
        retried.try_next().await.is_none(),
        "unlimited policy never parks"
    );
    shutdown.cancel();
    handle.await.unwrap();
}

#[tokio::test]
async fn permanent_failures_park_with_the_reason_and_replay_brings_them_back() {
    let tb = TestBroker::new().await;
    let exchange = tb.name("events");
    let spec = QueueSpec::new(tb.name("svc.work")).bind(&exchange, "#");
    let fixed = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let done: Arc<Mutex<Vec<(String, u32)>>> = Arc::default();
    let (flag, record) = (fixed.clone(), done.clone());
    let (shutdown, handle) =
        spawn_consumer(&tb, spec.clone(), settings(), move |m: Incoming<Value>| {
            let (flag, record) = (flag.clone(), record.clone());
            async move {
                if !flag.load(std::sync::atomic::Ordering::SeqCst) {
                    return Outcome::park("422 from the API: field `name` is required");
                }
                record.lock().unwrap().push((m.event.id, m.attempt));
                Outcome::Done
            }
        });
    wait_consuming(&tb, &spec.name).await;
    let publisher = Publisher::new(tb.broker.clone());
    for (id, kind) in [("a", "type.one"), ("b", "type.two"), ("c", "type.one")] {
        let mut e = event(1).with_id(id);
        e.event_type = kind.into();
        publisher.publish(&exchange, "k", &e, None).await.unwrap();
    }
    let parked_queue = tb.queue(&spec.parked_queue());
    eventually_async("three parked messages", WAIT, || async {
        (parked_queue.depth().await == 3).then_some(())
    })
    .await;

    // Reading the parking lot leaves it intact.
    let listed = admin::parked(&tb.broker, &spec.name, 100).await.unwrap();
    assert_eq!(listed.len(), 3);
    assert!(
        listed
            .iter()
            .all(|p| p.error.as_deref() == Some("422 from the API: field `name` is required"))
    );
    assert!(
        listed
            .iter()
            .all(|p| p.reason.as_deref() == Some("permanent"))
    );
    eventually_async("the parking lot intact after reading", WAIT, || async {
        (parked_queue.depth().await == 3).then_some(())
    })
    .await;

    fixed.store(true, std::sync::atomic::Ordering::SeqCst);
    let report = admin::replay(
        &tb.broker,
        &spec.parked_queue(),
        &ReplayFilter {
            event_type: Some("type.one".into()),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!((report.moved, report.skipped), (2, 1));
    eventually("the replayed messages handled", WAIT, || {
        (done.lock().unwrap().len() == 2).then_some(())
    })
    .await;
    let mut ids: Vec<(String, u32)> = done.lock().unwrap().clone();
    ids.sort();
    assert_eq!(
        ids,
        vec![("a".into(), 1), ("c".into(), 1)],
        "replayed with the counter reset"
    );
    eventually_async("only the filtered-out message left", WAIT, || async {
        (parked_queue.depth().await == 1).then_some(())
    })
    .await;
    shutdown.cancel();
    handle.await.unwrap();
}

#[tokio::test]
async fn every_component_declares_the_same_topology_without_clashing() {
    let tb = TestBroker::new().await;
    let spec = QueueSpec::new(tb.name("svc.work"))
        .bind(tb.name("events"), "#")
        .with_retry(RetryPolicy {
            delays: vec![ms(500), Duration::from_secs(30)],
            max_attempts: Some(4),
        });
    tb.broker.declare_queue(spec.clone()).await.unwrap();
    let other = tb.start_broker("another-component");
    other.wait_connected(WAIT).await.unwrap();
    other.declare_queue(spec.clone()).await.unwrap();
    for name in [
        spec.name.clone(),
        spec.parked_queue(),
        spec.retry_queue(ms(500)),
        spec.retry_queue(Duration::from_secs(30)),
    ] {
        assert!(
            admin::queue_state(&tb.broker, &name)
                .await
                .unwrap()
                .is_some(),
            "{name} declared"
        );
    }
}

#[tokio::test]
async fn a_dead_node_in_the_host_list_is_skipped_and_readiness_reflects_the_link() {
    // Port 1 on loopback refuses connections: a cluster node that is down.
    let dead = "amqp://guest:guest@127.0.0.1:1/%2f";
    let mut only_dead = steadfast_messaging::BrokerConfig::new(dead, "readiness-test").unwrap();
    only_dead.reconnect_min = ms(20);
    only_dead.reconnect_max = ms(50);
    let broker = steadfast_messaging::Broker::start(
        only_dead,
        steadfast_messaging::MessagingMetrics::unregistered().unwrap(),
    );
    let err = broker.wait_connected(ms(500)).await.unwrap_err();
    assert_eq!(err.to_string(), "not connected to the broker within 500ms");
    assert_eq!(
        broker.health(),
        (false, "disconnected; reconnecting".to_owned())
    );
    broker.close().await;

    let list = format!("{dead} {}", steadfast_test_support::amqp_url());
    let mut config = steadfast_messaging::BrokerConfig::new(&list, "host-list-test").unwrap();
    config.reconnect_min = ms(20);
    config.reconnect_max = ms(50);
    let broker = steadfast_messaging::Broker::start(
        config,
        steadfast_messaging::MessagingMetrics::unregistered().unwrap(),
    );
    broker.wait_connected(WAIT).await.unwrap();
    let (ready, detail) = broker.health();
    assert!(ready, "{detail}");
    assert!(detail.starts_with("connected"), "{detail}");
    broker.close().await;
    assert_eq!(broker.health(), (false, "closed".to_owned()));
}

/// A publisher whose broker connection runs through a [`FaultProxy`], with a 700 ms publish
/// deadline, that has already published once to `exchange` (bound to a probe queue).
async fn publishing_through_a_proxy(
    tb: &TestBroker,
    connection_name: &str,
) -> (
    String,
    steadfast_test_support::FaultProxy,
    steadfast_messaging::Broker,
    Publisher,
) {
    let exchange = tb.name("events");
    tb.broker
        .declare_exchange(ExchangeSpec::topic(&exchange))
        .await
        .unwrap();
    tb.probe("p", &exchange, "#").await;
    let proxy = steadfast_test_support::FaultProxy::to_broker().await;
    let mut config = steadfast_messaging::BrokerConfig::new(&proxy.amqp_url(), connection_name)
        .unwrap()
        .with_publish_timeout(ms(700));
    config.reconnect_min = ms(20);
    let broker = steadfast_messaging::Broker::start(
        config,
        steadfast_messaging::MessagingMetrics::unregistered().unwrap(),
    );
    broker.wait_connected(WAIT).await.unwrap();
    let publisher = Publisher::new(broker.clone());
    publisher
        .publish(&exchange, "k", &event(1), None)
        .await
        .unwrap();
    (exchange, proxy, broker, publisher)
}

#[tokio::test]
async fn a_publish_the_broker_stops_reading_fails_within_the_deadline() {
    let tb = TestBroker::new().await;
    let (exchange, proxy, broker, publisher) = publishing_through_a_proxy(&tb, "unread-test").await;

    // The broker stops reading: a message larger than the loopback socket buffers can never be
    // written out, so the wait is for the write itself, not for the confirm.
    proxy.stall();
    let big = vec![b'x'; 32 * 1024 * 1024];
    let started = Instant::now();
    let result = tokio::time::timeout(
        Duration::from_secs(10),
        publisher.publish_raw(&exchange, "k", &big, Default::default()),
    )
    .await
    .expect("the publish returns instead of waiting for the heartbeat");
    let err = result.unwrap_err();
    assert!(matches!(err, PublishError::Timeout(_)), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "took {:?}",
        started.elapsed()
    );
    proxy.cut();
    tokio::time::timeout(Duration::from_secs(8), broker.close())
        .await
        .expect("close is bounded");
}

#[tokio::test]
async fn a_hung_broker_fails_publishes_within_the_deadline_and_does_not_hang_shutdown() {
    let tb = TestBroker::new().await;
    let (exchange, proxy, broker, publisher) = publishing_through_a_proxy(&tb, "hung-test").await;

    // The broker stops answering (a partition, a hung node): confirms never come.
    proxy.stall();
    let started = Instant::now();
    let err = publisher
        .publish(&exchange, "k", &event(2), None)
        .await
        .unwrap_err();
    assert!(matches!(err, PublishError::Timeout(_)), "{err}");
    assert!(err.is_transient());
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "took {:?}",
        started.elapsed()
    );

    let started = Instant::now();
    broker.close().await;
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "close took {:?}",
        started.elapsed()
    );
}

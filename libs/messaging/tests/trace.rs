//! With spans exported, a trace crosses queues: the consumer's span is the child of the
//! publisher's, and an event published from inside a handler (here delayed, through a TTL
//! queue) carries the handler's trace on. Checked with an in-process OTLP collector. One test
//! per binary: the subscriber is process-global.

use std::time::Duration;

use serde_json::{Value, json};
use steadfast_events::{Envelope, TraceParent};
use steadfast_messaging::{
    Consumer, ConsumerSettings, ExchangeSpec, Incoming, Outcome, Publisher, QueueSpec,
};
use steadfast_telemetry::{LogFormat, TelemetryConfig};
use steadfast_test_support::otlp::{CollectedSpan, Collector};
use steadfast_test_support::{FnHandler, TestBroker};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

const WAIT: Duration = Duration::from_secs(30);

fn event(n: u64) -> Envelope<Value> {
    Envelope::new(
        "https://example.test/src",
        "com.example.test",
        json!({"n": n}),
    )
}

fn only<'a>(spans: &'a [CollectedSpan], name: &str) -> Option<&'a CollectedSpan> {
    spans.iter().find(|s| s.name == name)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trace_follows_an_event_through_two_queues_and_a_delay() {
    let collector = Collector::start().await;
    let _telemetry = steadfast_telemetry::init(&TelemetryConfig {
        service: "messaging-test".into(),
        level: "info".into(),
        format: LogFormat::Json,
        loki_url: None,
        otlp_endpoint: Some(collector.endpoint()),
        otlp_protocol: None,
    })
    .expect("telemetry");

    let tb = TestBroker::new().await;
    let exchange = tb.name("webhooks");
    tb.broker
        .declare_exchange(ExchangeSpec::topic(&exchange))
        .await
        .unwrap();
    let first = QueueSpec::new(tb.name("svc.first")).bind(&exchange, "#");
    let second = QueueSpec::new(tb.name("svc.second"));
    tb.broker.declare_queue(first.clone()).await.unwrap();
    tb.broker.declare_queue(second.clone()).await.unwrap();
    let publisher = Publisher::new(tb.broker.clone());

    // The first handler publishes a follow-up with a delay; the second reports what it got.
    let (seen, mut arrived) = mpsc::unbounded_channel::<(String, Option<TraceParent>)>();
    let shutdown = CancellationToken::new();
    let follow_up = publisher.clone();
    let second_queue = second.name.clone();
    let to_test = seen.clone();
    let handler = FnHandler(move |message: Incoming<Value>| {
        let publisher = follow_up.clone();
        let queue = second_queue.clone();
        let seen = to_test.clone();
        async move {
            let _ = seen.send(("first".into(), message.event.traceparent()));
            if message.event.data["n"] == 1 {
                publisher
                    .publish_delayed(&queue, &event(2), Duration::from_millis(200), None)
                    .await
                    .expect("publish the follow-up");
            }
            Outcome::Done
        }
    });
    let run_first = Consumer::new(
        tb.broker.clone(),
        first.clone(),
        ConsumerSettings::default(),
        handler,
    )
    .run(shutdown.clone());
    let to_test = seen.clone();
    let handler = FnHandler(move |message: Incoming<Value>| {
        let seen = to_test.clone();
        async move {
            let _ = seen.send(("second".into(), message.event.traceparent()));
            Outcome::Done
        }
    });
    let run_second = Consumer::new(
        tb.broker.clone(),
        second.clone(),
        ConsumerSettings::default(),
        handler,
    )
    .run(shutdown.clone());
    let consumers = tokio::spawn(async move {
        let _ = tokio::join!(run_first, run_second);
    });

    // A request starts the trace; the event published inside it has no traceparent of its own.
    let request = tracing::info_span!("test.request", otel.kind = "server");
    publisher
        .publish(&exchange, "a.b", &event(1), None)
        .instrument(request.clone())
        .await
        .unwrap();
    // An event that already carries a traceparent keeps it, byte for byte.
    let own = TraceParent::new_random();
    publisher
        .publish(&exchange, "a.b", &event(3).with_traceparent(&own), None)
        .instrument(request)
        .await
        .unwrap();
    let mut received = Vec::new();
    while received.len() < 3 {
        let next = tokio::time::timeout(WAIT, arrived.recv())
            .await
            .expect("all three events handled")
            .unwrap();
        received.push(next);
    }
    assert!(
        received.iter().any(|(_, tp)| tp.as_ref() == Some(&own)),
        "an event's own traceparent is kept: {received:?}"
    );

    let first_process = format!("{} process", first.name);
    let second_process = format!("{} process", second.name);
    let exchange_publish = format!("{exchange} publish");
    let second_publish = format!("{} publish", second.name);
    let spans = collector
        .wait_for("both consumers' spans", WAIT, |spans| {
            let done = spans.iter().filter(|s| s.name == first_process).count() == 2
                && only(spans, &second_process).is_some()
                && only(spans, "test.request").is_some();
            done.then(|| spans.to_vec())
        })
        .await;
    let request = only(&spans, "test.request").unwrap();
    let publish = only(&spans, &exchange_publish).expect("a publish span");
    assert_eq!(publish.kind, "producer");
    assert!(publish.is_child_of(request), "{publish:?}");
    assert_eq!(publish.attribute("messaging.system"), Some("rabbitmq"));
    assert_eq!(
        publish.attribute("messaging.destination.name"),
        Some(exchange.as_str())
    );
    assert_eq!(
        spans.iter().filter(|s| s.name == exchange_publish).count(),
        1,
        "an event that has a traceparent is published without a span of its own"
    );

    let processed: Vec<&CollectedSpan> = spans.iter().filter(|s| s.name == first_process).collect();
    let handled = processed
        .iter()
        .find(|s| s.is_child_of(publish))
        .expect("the consumer's span is the child of the publisher's");
    assert_eq!(handled.kind, "consumer");
    let continued = processed.iter().find(|s| !s.is_child_of(publish)).unwrap();
    assert_eq!(continued.trace_id, own.trace_id());
    assert_eq!(
        continued.parent_span_id.as_deref(),
        Some(own.parent_id().as_str())
    );

    let delayed = only(&spans, &second_publish).expect("the delayed publish's span");
    assert!(
        delayed.is_child_of(handled),
        "published from inside the handler"
    );
    assert_eq!(
        delayed.attribute("messaging.rabbitmq.delay_ms"),
        Some("200")
    );
    let last = only(&spans, &second_process).unwrap();
    assert!(last.is_child_of(delayed), "{last:?}");
    assert_eq!(
        last.trace_id, request.trace_id,
        "one trace across both queues"
    );

    shutdown.cancel();
    consumers.await.unwrap();
}

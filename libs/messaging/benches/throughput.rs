//! Throughput of our Publisher and Consumer against bare lapin, in one run, on the local broker.
//!
//!   cargo bench -p steadfast-messaging --bench throughput
//!   BENCH_COUNT=50000 BENCH_ROUNDS=5 cargo bench -p steadfast-messaging --bench throughput
//!
//! Every figure is 2 KiB persistent messages on a quorum queue with publisher confirms. Ours
//! includes everything a service pays for: CloudEvents encoding, topic routing, a consumer
//! queue with its retry tiers and parking lot declared, envelope decoding, metrics, manual acks.
//! Rounds alternate bare and ours so drift on the machine hits both; the median is reported.

#[path = "common/bare.rs"]
mod bare;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;
use steadfast_events::Envelope;
use steadfast_messaging::{Consumer, ConsumerSettings, Outcome, Publisher, QueueSpec, RetryPolicy};
use steadfast_test_support::{FnHandler, TestBroker};
use tokio_util::sync::CancellationToken;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// An event whose encoded envelope is about `size` bytes.
fn event(n: usize, size: usize) -> Envelope<serde_json::Value> {
    let base = Envelope::new(
        "https://bench.test/src",
        "com.example.bench",
        json!({"n": n, "pad": ""}),
    );
    let overhead = base.to_json().unwrap().len();
    Envelope::new(
        "https://bench.test/src",
        "com.example.bench",
        json!({"n": n, "pad": "x".repeat(size.saturating_sub(overhead))}),
    )
}

async fn ours_publish(
    publisher: &Publisher,
    exchange: &str,
    count: usize,
    concurrency: usize,
    size: usize,
) -> f64 {
    let events: Arc<Vec<_>> = Arc::new((0..concurrency).map(|n| event(n, size)).collect());
    let started = Instant::now();
    let mut tasks = Vec::new();
    for worker in 0..concurrency {
        let (publisher, exchange, events) =
            (publisher.clone(), exchange.to_owned(), events.clone());
        let share = count / concurrency + usize::from(worker < count % concurrency);
        tasks.push(tokio::spawn(async move {
            for _ in 0..share {
                publisher
                    .publish(&exchange, "bench.event", &events[worker], None)
                    .await
                    .expect("confirmed publish");
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    count as f64 / started.elapsed().as_secs_f64()
}

async fn ours_consume(
    tb: &TestBroker,
    spec: &QueueSpec,
    count: usize,
    prefetch: u16,
    concurrency: usize,
) -> f64 {
    let done = Arc::new(AtomicUsize::new(0));
    let counter = done.clone();
    let broker = tb.start_broker("bench-consumer");
    broker
        .wait_connected(Duration::from_secs(10))
        .await
        .unwrap();
    let consumer = Consumer::new(
        broker.clone(),
        spec.clone(),
        ConsumerSettings {
            prefetch,
            concurrency,
            ..ConsumerSettings::default()
        },
        FnHandler(move |m: steadfast_messaging::Incoming<serde_json::Value>| {
            let counter = counter.clone();
            async move {
                std::hint::black_box(&m.event.data);
                counter.fetch_add(1, Ordering::Relaxed);
                Outcome::Done
            }
        }),
    );
    let shutdown = CancellationToken::new();
    let token = shutdown.clone();
    let started = Instant::now();
    let handle = tokio::spawn(async move { consumer.run(token).await });
    while done.load(Ordering::Relaxed) < count {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "consumer stalled"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let rate = count as f64 / started.elapsed().as_secs_f64();
    shutdown.cancel();
    handle.await.unwrap().unwrap();
    broker.close().await;
    rate
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

#[tokio::main]
async fn main() {
    // `cargo bench` passes --bench; `cargo test --benches` passes nothing: run a tiny smoke then.
    let smoke = !std::env::args().any(|a| a == "--bench");
    let count = if smoke {
        200
    } else {
        env("BENCH_COUNT", 20_000)
    };
    let rounds = if smoke { 1 } else { env("BENCH_ROUNDS", 3) };
    let concurrency = env("BENCH_CONCURRENCY", 32);
    let prefetch = env("BENCH_PREFETCH", 64) as u16;
    let size = 2048;

    let tb = TestBroker::new().await;
    let bare_conn = bare::connect("bench-bare").await;
    let bare_queue = tb.name("bare");
    bare::declare_quorum(&bare_conn, &bare_queue).await;

    let exchange = tb.name("bench");
    let spec = QueueSpec::new(tb.name("ours"))
        .bind(&exchange, "#")
        .with_retry(RetryPolicy {
            delays: vec![Duration::from_secs(5), Duration::from_secs(30)],
            max_attempts: Some(5),
        });
    tb.broker.declare_queue(spec.clone()).await.unwrap();
    let publisher_broker = tb.start_broker("bench-publisher");
    publisher_broker
        .wait_connected(Duration::from_secs(10))
        .await
        .unwrap();
    let publisher = Publisher::new(publisher_broker.clone());

    let (mut bp, mut bc, mut op, mut oc) = (vec![], vec![], vec![], vec![]);
    for round in 1..=rounds {
        bp.push(bare::publish(&bare_conn, &bare_queue, count, concurrency, size).await);
        bc.push(bare::consume(&bare_conn, &bare_queue, count, prefetch).await);
        op.push(ours_publish(&publisher, &exchange, count, concurrency, size).await);
        oc.push(ours_consume(&tb, &spec, count, prefetch, concurrency).await);
        eprintln!(
            "round {round}: bare publish {:.0}/s consume {:.0}/s | ours publish {:.0}/s consume {:.0}/s",
            bp[round - 1],
            bc[round - 1],
            op[round - 1],
            oc[round - 1]
        );
    }
    bare::delete(&bare_conn, &bare_queue).await;
    publisher_broker.close().await;

    let (bp, bc, op, oc) = (median(bp), median(bc), median(op), median(oc));
    println!(
        "messages: {count} x 2 KiB persistent, quorum queue, {concurrency} publishers, prefetch {prefetch}, {rounds} rounds (median)"
    );
    println!(
        "{:<10} {:>14} {:>14} {:>8}",
        "", "bare lapin/s", "steadfast/s", "ratio"
    );
    println!(
        "{:<10} {:>14.0} {:>14.0} {:>7.0}%",
        "publish",
        bp,
        op,
        100.0 * op / bp
    );
    println!(
        "{:<10} {:>14.0} {:>14.0} {:>7.0}%",
        "consume",
        bc,
        oc,
        100.0 * oc / bc
    );
}

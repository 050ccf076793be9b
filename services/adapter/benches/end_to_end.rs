//! Events per second end to end: 1,000 cluster events on the real broker through the adapter,
//! each one a GET from fleet-api (PostgreSQL), a namespace and a Job created in the fake
//! Kubernetes API, both discovered, and a status PUT that fleet-api stores and aggregates.
//! Baseline, same run: the same 1,000 events through a consumer that only acks them.
//!
//!   cargo bench -p adapter --bench end_to_end            (scripts/bench/adapter.sh)
//!   BENCH_EVENTS=5000 cargo bench -p adapter --bench end_to_end
//!
//! Runs the adapter at several prefetch / parallelism settings and prints each rate and its
//! ratio to the baseline.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use adapter::config::{self, Config, Overrides, ServiceSettings, Sources};
use fake_kube::FakeKube;
use serde_json::{Value, json};
use steadfast_events::Envelope;
use steadfast_messaging::{Consumer, ConsumerSettings, Outcome, Publisher, QueueSpec};
use steadfast_test_support::{
    FnHandler, TestBroker, TestDatabase, amqp_url, eventually_async, shared_dir,
};
use tokio_util::sync::CancellationToken;

const DEADLINE: Duration = Duration::from_secs(600);

#[tokio::main]
async fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` does not, and a 1,000-event run
    // is no test.
    if !std::env::args().any(|a| a == "--bench") {
        println!("end_to_end: run with `cargo bench -p adapter --bench end_to_end`");
        return;
    }
    let events: usize = std::env::var("BENCH_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let broker = TestBroker::new().await;
    let db = TestDatabase::new().await;
    let api = fleet_api::App::build(
        fleet_api::Config::local(&db.url).with_required_adapters(&["bench-adapter"], &[]),
    )
    .await
    .expect("fleet-api builds")
    .spawn();
    let client = reqwest::Client::new();
    let mut ids = Vec::with_capacity(events);
    for i in 0..events {
        let created: Value = client
            .post(format!("{}/api/hyperfleet/v1/clusters", api.base_url()))
            .json(&json!({"kind": "Cluster", "name": format!("bench-{i}"), "spec": {}}))
            .send()
            .await
            .expect("create cluster")
            .json()
            .await
            .expect("cluster JSON");
        ids.push(created["id"].as_str().expect("id").to_owned());
    }
    println!("{events} clusters in fleet-api");

    let baseline = baseline(&broker, &ids).await;
    println!(
        "baseline (ack-only consumer): {:.0} events/s",
        rate(events, baseline)
    );
    let mut results = Vec::new();
    for (prefetch, parallelism) in [(8, 4), (32, 16), (64, 32)] {
        let elapsed = adapter_run(&broker, api.base_url(), &ids, prefetch, parallelism).await;
        let r = rate(events, elapsed);
        println!(
            "adapter prefetch {prefetch:>3} parallelism {parallelism:>3}: {r:.0} events/s ({:.1} s)",
            elapsed.as_secs_f64()
        );
        results.push((prefetch, parallelism, r));
    }
    let base = rate(events, baseline);
    let (p, c, best) = results
        .iter()
        .copied()
        .fold((0, 0, 0.0), |a, b| if b.2 > a.2 { b } else { a });
    println!(
        "\nsummary: adapter {best:.0} events/s (prefetch {p}, parallelism {c}), ack-only baseline {base:.0} events/s, ratio {:.3}",
        best / base
    );
    api.stop().await;
}

fn rate(events: usize, elapsed: Duration) -> f64 {
    events as f64 / elapsed.as_secs_f64()
}

fn event(id: &str) -> Envelope<Value> {
    Envelope::new(
        "hyperfleet-sentinel",
        "com.redhat.hyperfleet.cluster.reconcile",
        json!({"id": id, "kind": "Cluster", "href": format!("/api/hyperfleet/v1/clusters/{id}"), "generation": 1}),
    )
}

async fn publish_all(broker: &TestBroker, exchange: &str, ids: &[String]) {
    let publisher = Publisher::new(broker.broker.clone());
    // The consumer declares its queue before binding it: until then a publish is unroutable.
    let first = event(&ids[0]);
    eventually_async("the queue to be bound", Duration::from_secs(30), || async {
        publisher.publish(exchange, "", &first, None).await.ok()
    })
    .await;
    let mut pending = futures_util::stream::FuturesUnordered::new();
    for id in &ids[1..] {
        let publisher = publisher.clone();
        let event = event(id);
        let exchange = exchange.to_owned();
        pending.push(async move {
            publisher
                .publish(&exchange, "", &event, None)
                .await
                .expect("publish")
        });
        if pending.len() >= 64 {
            use futures_util::StreamExt;
            pending.next().await;
        }
    }
    use futures_util::StreamExt;
    while pending.next().await.is_some() {}
}

/// The same events through an ack-only consumer: the broker's share of the cost.
async fn baseline(broker: &TestBroker, ids: &[String]) -> Duration {
    let exchange = broker.name("baseline");
    let spec = QueueSpec::new(broker.name("baseline-q")).bind(exchange.clone(), "");
    broker
        .broker
        .declare_queue(spec.clone())
        .await
        .expect("declare");
    let seen = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&seen);
    let stop = CancellationToken::new();
    let settings = ConsumerSettings {
        prefetch: 64,
        concurrency: 32,
        ..ConsumerSettings::default()
    };
    let consumer = Consumer::new(
        broker.start_broker("bench-baseline"),
        spec,
        settings,
        FnHandler(move |_| {
            counter.fetch_add(1, Ordering::SeqCst);
            async { Outcome::Done }
        }),
    );
    let task = tokio::spawn(consumer.run(stop.clone()));
    let started = Instant::now();
    publish_all(broker, &exchange, ids).await;
    eventually_async(
        "the baseline consumer to ack every event",
        DEADLINE,
        || async { (seen.load(Ordering::SeqCst) >= ids.len()).then_some(()) },
    )
    .await;
    let elapsed = started.elapsed();
    stop.cancel();
    let _ = task.await;
    elapsed
}

async fn adapter_run(
    broker: &TestBroker,
    api: &str,
    ids: &[String],
    prefetch: u16,
    parallelism: usize,
) -> Duration {
    let fake = FakeKube::start().await;
    let kubeconfig = fake.kubeconfig_file();
    let dir = std::env::temp_dir().join(steadfast_test_support::unique_name("adapter-bench"));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let topic = broker.name(&format!("bench-{prefetch}"));
    let adapter_yaml = format!(
        "adapter: {{name: bench-adapter, version: \"0.2.0\"}}\nclients:\n  hyperfleet_api: {{base_url: \"{api}\"}}\n  broker: {{subscription_id: bench, topic: \"{topic}\", prefetch_count: {prefetch}, parallelism: {parallelism}}}\n  kubernetes: {{kube_config_path: \"{}\"}}\n",
        kubeconfig.path().display()
    );
    std::fs::write(dir.join("adapter.yaml"), adapter_yaml).expect("write config");
    let example = shared_dir().join("peer-cases/hyperfleet-adapter/examples/kubernetes");
    let sources = Sources {
        adapter_config: Some(dir.join("adapter.yaml")),
        task_config: Some(example.join("adapter-task-config.yaml")),
        overrides: Overrides::default(),
        remaps: vec![(
            "/etc/adapter/job.yaml".into(),
            example.join("adapter-task-resource-job.yaml"),
        )],
        ..Sources::default()
    };
    let clock = steadfast_rules::system_clock();
    let config = Config {
        loaded: config::load(&sources, clock.clone(), false).expect("config"),
        service: ServiceSettings {
            http_listen: "127.0.0.1:0".parse().unwrap(),
            metrics_listen: "127.0.0.1:0".parse().unwrap(),
            amqp_url: amqp_url(),
            shutdown_timeout: Duration::from_secs(10),
        },
        environment: Arc::new(BTreeMap::new()),
        clock,
    };
    let queue = config.loaded.adapter.queue_name().expect("queue");
    let app = adapter::App::build(config).await.expect("adapter builds");
    let metrics = format!("http://{}/metrics", app.metrics_addr());
    let stop = CancellationToken::new();
    let task = tokio::spawn(app.run(stop.clone()));
    eventually_async("the adapter's queue", Duration::from_secs(30), || async {
        steadfast_messaging::admin::queue_state(&broker.broker, &queue)
            .await
            .ok()
            .flatten()
    })
    .await;
    let processed = || async {
        let text = reqwest::get(&metrics).await.ok()?.text().await.ok()?;
        Some(
            text.lines()
                .filter(|l| l.starts_with("hyperfleet_adapter_events_processed_total"))
                .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
                .sum::<f64>() as usize,
        )
    };
    let started = Instant::now();
    publish_all(broker, &topic, ids).await;
    eventually_async("the adapter to process every event", DEADLINE, || async {
        (processed().await? >= ids.len()).then_some(())
    })
    .await;
    let elapsed = started.elapsed();
    let failed = reqwest::get(&metrics).await.unwrap().text().await.unwrap();
    assert!(
        !failed.contains("status=\"failed\""),
        "some events failed:\n{failed}"
    );
    stop.cancel();
    let _ = task.await;
    let _ = std::fs::remove_dir_all(&dir);
    elapsed
}

//! Incident overhead: from an alert accepted by the broker to the analysis in chat, with 10
//! local recipes that answer at once, over 100 incidents (one at a time), against the real
//! RabbitMQ, Redis and PostgreSQL and the fake Webex.
//!
//! Baseline, measured in the same run: the same 10 recipe processes started directly, from
//! the first spawn to the 10th result received over Redis — what running the recipes costs
//! with no reconciler at all. The ratio is the reconciler's median over the baseline's.
//!
//!   cargo bench -p alert-reconciler --bench incident_overhead      (or scripts/bench/alert-reconciler.sh)

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use alert_reconciler::config::{ExecutorConfig, RecipeSource, SinksConfig, WebexConfig};
use alert_reconciler::results::{BusEvent, ResultBus};
use alert_reconciler::{App, Config};
use fake_webex::FakeWebex;
use serde_json::json;
use steadfast_events::Envelope;
use steadfast_events::catalogue::{ALERTMANAGER_ALERT, MESSAGE_TYPE_ALERTMANAGER};
use steadfast_messaging::Publisher;
use steadfast_test_support::{TestBroker, TestDatabase, redis_url, unique_name};
use tokio_util::sync::CancellationToken;

const INCIDENTS: usize = 100;
const RECIPES: usize = 10;
const TOKEN: &str = "bench-api-token-0123456789";

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn summary(name: &str, samples: &mut [Duration]) -> Duration {
    samples.sort();
    let median = percentile(samples, 50.0);
    println!(
        "{name:<44} median {:>8.2} ms   p99 {:>8.2} ms   min {:>7.2} ms   max {:>8.2} ms",
        median.as_secs_f64() * 1e3,
        percentile(samples, 99.0).as_secs_f64() * 1e3,
        samples[0].as_secs_f64() * 1e3,
        samples[samples.len() - 1].as_secs_f64() * 1e3,
    );
    median
}

fn write_recipe(dir: &Path) {
    steadfast_test_support::write_script(
        dir,
        "answer.sh",
        "exec \"$RECIPE_BIN\" report --status successful --analysis \"nothing wrong\"",
    );
    let mut yaml = String::from("debugging:\n");
    for i in 0..RECIPES {
        yaml.push_str(&format!(
            "  r{i}:\n    entrypoint: ./answer.sh\n    env: {{RECIPE_BIN: \"{}\"}}\n",
            env!("CARGO_BIN_EXE_steadfast-recipe")
        ));
    }
    std::fs::write(dir.join("recipes.yaml"), yaml).unwrap();
}

/// The 10 recipe processes alone: spawn → 10 results on a subscribed channel.
async fn baseline(dir: &Path, bus: &ResultBus) -> Duration {
    let run = uuid::Uuid::new_v4().to_string();
    let data = dir.join(format!("{run}.json"));
    std::fs::write(&data, json!({"uuid": run}).to_string()).unwrap();
    let mut subscription = bus.subscribe(&run).await.unwrap();
    let address = redis_url();
    let address = address.trim_start_matches("redis://").trim_end_matches('/');
    let started = Instant::now();
    let mut children = Vec::new();
    for i in 0..RECIPES {
        children.push(
            tokio::process::Command::new(dir.join("answer.sh"))
                .env("RECIPE_BIN", env!("CARGO_BIN_EXE_steadfast-recipe"))
                .env("STEADFAST_DATA_FILE", &data)
                .env("STEADFAST_RECIPE", format!("r{i}"))
                .env("STEADFAST_REDIS_ADDRESS", address)
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        );
    }
    let mut received = 0;
    while received < RECIPES {
        if let Some(BusEvent::Message(_)) = subscription.recv().await {
            received += 1;
        }
    }
    let elapsed = started.elapsed();
    for mut child in children {
        let _ = child.wait().await;
    }
    let _ = bus.forget(&run).await;
    elapsed
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(bench());
}

async fn bench() {
    steadfast_test_support::init_test_logging();
    let broker = TestBroker::new().await;
    let db = TestDatabase::new().await;
    let webex = FakeWebex::start("bench-bot").await;
    let dir = std::env::temp_dir().join(unique_name("reconciler-bench"));
    std::fs::create_dir_all(dir.join("work")).unwrap();
    write_recipe(&dir);

    let mut config = Config::new(
        &db.url,
        &redis_url(),
        broker.namespace.clone(),
        TestBroker::config_for("alert-reconciler-bench"),
        TOKEN,
        RecipeSource::File(dir.join("recipes.yaml")),
    );
    config.executor = ExecutorConfig::Local {
        work_dir: dir.join("work"),
    };
    config.leader_retry = Duration::from_millis(100);
    config.sinks = SinksConfig {
        webex: Some(WebexConfig {
            api_url: webex.api_url().parse().unwrap(),
            bot_token: "bench-bot".into(),
            room_id: "room".into(),
            webhook_secret: "secret".into(),
            approvers: Vec::new(),
            webhook_url: None,
        }),
        ..SinksConfig::default()
    };
    let app = App::build(config).await.expect("the App builds");
    let ready = format!("http://{}/readyz", app.http_addr());
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(app.run(shutdown.clone()));
    let client = reqwest::Client::new();
    while !client
        .get(&ready)
        .send()
        .await
        .is_ok_and(|r| r.status().is_success())
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let publisher = Publisher::new(broker.broker.clone());
    let exchange = broker.name("webhooks");
    let mut overhead = Vec::with_capacity(INCIDENTS);
    println!(
        "alert-reconciler incident overhead: {INCIDENTS} incidents, {RECIPES} local recipes each"
    );
    for i in 0..INCIDENTS + 5 {
        let alert = json!({
            "status": "firing",
            "labels": {"alertname": "BenchAlert", "instance": format!("i{i}")},
            "annotations": {},
            "startsAt": "2025-06-01T10:00:00Z",
            "fingerprint": format!("bench-{i}"),
            "groupKey": format!("{{}}:{{instance=\"i{i}\"}}"),
            "receiver": "bench",
            "externalURL": "http://alertmanager:9093",
            "groupLabels": {}, "commonLabels": {}, "commonAnnotations": {},
        });
        let event = Envelope::new("http://alertmanager:9093", ALERTMANAGER_ALERT, alert);
        publisher
            .publish(
                &exchange,
                "alertmanager.bench.firing",
                &event,
                Some(MESSAGE_TYPE_ALERTMANAGER),
            )
            .await
            .expect("publish");
        // The alert is accepted: the broker confirmed it (what the receiver's 200 means).
        let accepted = Instant::now();
        let arrived = loop {
            if let Some((_, at)) = webex.messages_with_arrival().get(i) {
                break *at;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        };
        // The first five warm the caches and connections up.
        if i >= 5 {
            overhead.push(arrived.saturating_duration_since(accepted));
        }
    }

    let bus = ResultBus::new(&redis_url()).unwrap();
    let stop = CancellationToken::new();
    tokio::spawn(bus.clone().run(stop.clone()));
    bus.wait_connected(Duration::from_secs(10)).await;
    let mut base = Vec::with_capacity(INCIDENTS);
    for i in 0..INCIDENTS + 5 {
        let elapsed = baseline(&dir, &bus).await;
        if i >= 5 {
            base.push(elapsed);
        }
    }
    stop.cancel();

    let reconciler = summary("alert accepted → analysis in Webex", &mut overhead);
    let floor = summary("baseline: 10 recipes spawned → 10 results", &mut base);
    println!(
        "ratio (median, reconciler / baseline): {:.2}x   reconciler's own share: {:.2} ms",
        reconciler.as_secs_f64() / floor.as_secs_f64(),
        (reconciler.saturating_sub(floor)).as_secs_f64() * 1e3
    );
    shutdown.cancel();
    let _ = task.await;
    let _ = std::fs::remove_dir_all(&dir);
}

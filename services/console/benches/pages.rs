//! How fast the console's busiest pages are with a lot behind them: the overview and the
//! incident list, with 10,000 incidents in the alert-reconciler and 1,000 messages parked.
//! Everything real: the console, the alert-reconciler (its PostgreSQL holds the incidents),
//! the webhook-receiver, RabbitMQ and its management API, Redis for the session.
//!
//! Server time is the console's own `Server-Timing: app;dur=…` (its upstream calls included).
//! Baseline, in the same run: the same data fetched straight from the services — one page of
//! incidents (with the counts) from the reconciler's API, and the namespace's queues from the
//! management API — what any page showing them must wait for. The ratio is the console's
//! median over the baseline's.
//!
//!   cargo bench -p console --bench pages        (or scripts/bench/console.sh)

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::Instant;

use common::alerts::RECONCILER_TOKEN;
use common::poison::PoisonConsumer;
use common::{Harness, Options};

const INCIDENTS: i64 = 10_000;
const PARKED: usize = 1_000;
const ROUNDS: usize = 100;
const TARGET_MS: f64 = 100.0;

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn summary(name: &str, samples: &mut [f64]) -> f64 {
    samples.sort_by(f64::total_cmp);
    let median = percentile(samples, 50.0);
    println!(
        "{name:<52} median {median:>7.2} ms   p99 {:>7.2} ms   max {:>7.2} ms",
        percentile(samples, 99.0),
        samples[samples.len() - 1],
    );
    median
}

/// The console's own time for one page, from its `Server-Timing` header.
async fn server_ms(client: &reqwest::Client, url: &str, cookie: &str) -> f64 {
    let response = client
        .get(url)
        .header("cookie", cookie)
        .send()
        .await
        .expect("the console answers");
    assert_eq!(response.status(), 200, "{url}");
    let timing = response.headers()["server-timing"]
        .to_str()
        .unwrap()
        .to_owned();
    let _ = response.bytes().await.unwrap();
    timing
        .strip_prefix("app;dur=")
        .and_then(|ms| ms.parse().ok())
        .expect("app;dur=<ms>")
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(run());
}

async fn run() {
    let h = Harness::start_with(Options {
        alerts: true,
        ..Options::default()
    })
    .await;
    let stack = h.alerts.as_ref().unwrap();

    // 10,000 incidents, one in ten still awaiting approval, straight into the reconciler's
    // tables (creating them through recipes would take the benchmark's whole budget).
    let pool = stack.database.pool().await;
    sqlx::query(
        "INSERT INTO incidents (id, group_key, state, title, receiver, labels, group_data, \
         opened_at, updated_at, closed_at, approval_expires_at) \
         SELECT gen_random_uuid(), 'bench-' || n, \
                CASE WHEN n % 10 = 0 THEN 'awaiting_approval' ELSE 'resolved' END, \
                'BenchAlert ' || n || ': disk almost full', 'reconciler', \
                jsonb_build_object('alertname', 'BenchAlert', 'severity', 'warning', 'n', n::text), \
                '{}'::jsonb, now() - n * interval '1 minute', now() - n * interval '1 minute', \
                CASE WHEN n % 10 = 0 THEN NULL ELSE now() END, \
                CASE WHEN n % 10 = 0 THEN now() + interval '1 day' END \
         FROM generate_series(1, $1) AS n",
    )
    .bind(INCIDENTS)
    .execute(&pool)
    .await
    .expect("seed the incidents");
    sqlx::query("ANALYZE incidents")
        .execute(&pool)
        .await
        .unwrap();

    // 1,000 parked messages, parked by a real consumer.
    let consumer = PoisonConsumer::start(&h).await;
    let ids: Vec<String> = (0..PARKED).map(|i| format!("bench-{i}")).collect();
    let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
    consumer.park(&h, &ids).await;
    println!(
        "seeded {INCIDENTS} incidents and {PARKED} parked messages; {ROUNDS} rounds each (load average {})",
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .split(' ')
            .next()
            .unwrap_or("?")
    );

    let alice = h.signed_in("alice").await;
    let cookie = format!("console_session={}", alice.cookies["console_session"]);
    let client = reqwest::Client::new();
    let management = steadfast_messaging::admin::management::ManagementApi::from_amqp_url(
        &steadfast_test_support::amqp_url(),
    )
    .unwrap();
    let incidents_api = format!("{}/api/incidents?limit=50", stack.reconciler_url);

    // Warm-up: connections, the first statistics tick, PostgreSQL's caches.
    for _ in 0..10 {
        server_ms(&client, &format!("{}/", h.url), &cookie).await;
        server_ms(&client, &format!("{}/incidents", h.url), &cookie).await;
    }

    let (mut overview, mut list, mut awaiting, mut baseline) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        overview.push(server_ms(&client, &format!("{}/", h.url), &cookie).await);
        list.push(server_ms(&client, &format!("{}/incidents", h.url), &cookie).await);
        awaiting.push(
            server_ms(
                &client,
                &format!("{}/incidents?state=awaiting_approval", h.url),
                &cookie,
            )
            .await,
        );
        let started = Instant::now();
        let (page, queues) = tokio::join!(
            client
                .get(&incidents_api)
                .bearer_auth(RECONCILER_TOKEN)
                .send(),
            management.namespace_queues(&h.broker.namespace),
        );
        let _ = page.unwrap().bytes().await.unwrap();
        queues.unwrap();
        baseline.push(started.elapsed().as_secs_f64() * 1e3);
    }
    let base = summary(
        "baseline: incident page + queue list, direct",
        &mut baseline,
    );
    let rows = [
        ("console GET / (overview)", &mut overview),
        ("console GET /incidents", &mut list),
        (
            "console GET /incidents?state=awaiting_approval",
            &mut awaiting,
        ),
    ];
    let mut worst_p99: f64 = 0.0;
    for (name, samples) in rows {
        let median = summary(name, samples);
        worst_p99 = worst_p99.max(percentile(samples, 99.0));
        println!("{:<52} ratio to baseline {:.2}×", "", median / base);
    }
    // The parking lot's own page reads every parked message (basic.get): shown for scale.
    let mut parked = Vec::new();
    for _ in 0..5 {
        parked.push(
            server_ms(
                &client,
                &format!("{}/parked/{}", h.url, consumer.spec.name),
                &cookie,
            )
            .await,
        );
    }
    summary("console GET /parked/<queue> (1,000 messages)", &mut parked);
    println!(
        "target: overview and incident list under {TARGET_MS} ms server time: {}",
        if worst_p99 < TARGET_MS {
            "met (p99)"
        } else {
            "NOT met"
        }
    );
    drop(consumer);
    h.stop().await;
}

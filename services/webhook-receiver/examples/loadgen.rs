//! Load generator for `scripts/bench/receiver.sh`: POSTs GitLab Job Hooks of a fixed size to a
//! receiver and reports throughput and latency.
//!
//! ```text
//! loadgen --url http://127.0.0.1:8081/gitlab --token T --size 2048 --duration 20 --concurrency 64
//! loadgen --url ... --rate 1000 --duration 20
//! ```
//!
//! * `--concurrency N`: closed loop, N connections each sending the next request as soon as
//!   the previous one is answered — the most the receiver can take.
//! * `--print-body`: print the request body and exit (for `wrk`, see scripts/bench).
//! * `--rate R`: open loop, one request every 1/R s whatever the answers do; latency is
//!   measured from the *scheduled* send time, so a stall shows up in the percentiles instead
//!   of silently lowering the offered load (coordinated omission).
//!
//! Prints one line: `loadgen mode=<closed|open> requests=N rate=<req/s> p50_ms=.. p99_ms=..
//! max_ms=.. errors=N statuses=<code:count,..>`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Mutex;
use tokio::time::Instant;

struct Args {
    url: String,
    token: String,
    size: usize,
    duration: Duration,
    concurrency: Option<usize>,
    rate: Option<f64>,
}

fn parse_args() -> Args {
    let args: Vec<String> = std::env::args().collect();
    let value = |name: &str| -> Option<String> {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let number = |name: &str| -> Option<f64> {
        value(name).map(|v| {
            v.parse()
                .unwrap_or_else(|_| panic!("{name} takes a number, not `{v}`"))
        })
    };
    let rate = number("--rate");
    Args {
        url: value("--url").unwrap_or_else(|| "http://127.0.0.1:8081/gitlab".into()),
        token: value("--token").unwrap_or_else(|| "dev-gitlab-secret".into()),
        size: number("--size").map_or(2048, |n| n as usize),
        duration: Duration::from_secs_f64(number("--duration").unwrap_or(20.0)),
        concurrency: number("--concurrency")
            .map(|n| n as usize)
            .or(if rate.is_none() { Some(64) } else { None }),
        rate,
    }
}

/// The job hook fixture (compact JSON), trimmed of optional fields if needed and padded (in
/// `commit.message`) to exactly `size` bytes.
fn job_hook(size: usize) -> String {
    let mut hook: serde_json::Value =
        serde_json::from_str(include_str!("../tests/fixtures/gitlab-job-hook.json"))
            .expect("fixture");
    hook["commit"]["message"] = "".into();
    for (object, field) in [
        ("user", "avatar_url"),
        ("runner", "tags"),
        ("commit", "author_url"),
    ] {
        if hook.to_string().len() <= size {
            break;
        }
        if let Some(map) = hook[object].as_object_mut() {
            map.remove(field);
        }
    }
    let base = hook.to_string().len();
    assert!(size >= base, "--size must be at least {base} bytes");
    hook["commit"]["message"] = "x".repeat(size - base).into();
    let body = hook.to_string();
    assert_eq!(body.len(), size);
    body
}

#[derive(Default)]
struct Results {
    latencies: Vec<Duration>,
    statuses: BTreeMap<u16, usize>,
    errors: usize,
}

impl Results {
    fn record(&mut self, latency: Duration, outcome: Result<u16, reqwest::Error>) {
        self.latencies.push(latency);
        match outcome {
            Ok(status) => *self.statuses.entry(status).or_default() += 1,
            Err(_) => self.errors += 1,
        }
    }
}

async fn send(client: &reqwest::Client, args: &Args, body: &str) -> Result<u16, reqwest::Error> {
    let response = client
        .post(&args.url)
        .header("content-type", "application/json")
        .header("x-gitlab-event", "Job Hook")
        .header("x-gitlab-token", &args.token)
        .body(body.to_owned())
        .send()
        .await?;
    let status = response.status().as_u16();
    response.bytes().await?;
    Ok(status)
}

#[tokio::main]
async fn main() {
    let args = Arc::new(parse_args());
    let body: Arc<str> = job_hook(args.size).into();
    if std::env::args().any(|a| a == "--print-body") {
        // For other load tools (wrk) to send exactly the same request body.
        print!("{body}");
        return;
    }
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(1024)
        .timeout(Duration::from_secs(15))
        .build()
        .expect("HTTP client");
    let results = Arc::new(Mutex::new(Results::default()));
    let started = Instant::now();
    let end = started + args.duration;

    let mode = if let Some(rate) = args.rate {
        let interval = Duration::from_secs_f64(1.0 / rate);
        let mut tasks = Vec::new();
        let mut next = started;
        while next < end {
            tokio::time::sleep_until(next).await;
            let (client, args, body, results) =
                (client.clone(), args.clone(), body.clone(), results.clone());
            let scheduled = next;
            tasks.push(tokio::spawn(async move {
                let outcome = send(&client, &args, &body).await;
                results.lock().await.record(scheduled.elapsed(), outcome);
            }));
            next += interval;
        }
        for task in tasks {
            let _ = task.await;
        }
        "open"
    } else {
        let workers = args.concurrency.unwrap_or(64);
        let mut tasks = Vec::new();
        for _ in 0..workers {
            let (client, args, body, results) =
                (client.clone(), args.clone(), body.clone(), results.clone());
            tasks.push(tokio::spawn(async move {
                while Instant::now() < end {
                    let sent = Instant::now();
                    let outcome = send(&client, &args, &body).await;
                    results.lock().await.record(sent.elapsed(), outcome);
                }
            }));
        }
        for task in tasks {
            let _ = task.await;
        }
        "closed"
    };

    let elapsed = started.elapsed().as_secs_f64();
    let mut results = results.lock().await;
    results.latencies.sort();
    let n = results.latencies.len();
    let percentile = |p: f64| -> f64 {
        if n == 0 {
            return 0.0;
        }
        let index = ((p * n as f64).ceil() as usize).clamp(1, n) - 1;
        results.latencies[index].as_secs_f64() * 1000.0
    };
    let statuses: Vec<String> = results
        .statuses
        .iter()
        .map(|(code, count)| format!("{code}:{count}"))
        .collect();
    println!(
        "loadgen mode={mode} requests={n} rate={:.0} p50_ms={:.2} p99_ms={:.2} max_ms={:.2} errors={} statuses={}",
        n as f64 / elapsed,
        percentile(0.50),
        percentile(0.99),
        percentile(1.0),
        results.errors,
        statuses.join(",")
    );
}

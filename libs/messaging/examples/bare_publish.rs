//! Bare lapin confirmed publishing, the broker baseline other benchmarks compare against.
//!
//!   cargo run --release -p steadfast-messaging --example bare_publish -- \
//!       --count 20000 --concurrency 32 --size 2048
//!
//! Prints `bare_publish rate=<messages per second>`.

// Shared with the throughput bench, which also uses the consuming half.
#[allow(dead_code)]
#[path = "../benches/common/bare.rs"]
mod bare;

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map(|v| {
            v.parse()
                .unwrap_or_else(|_| panic!("{name} takes a number"))
        })
        .unwrap_or(default)
}

#[tokio::main]
async fn main() {
    let count = arg("--count", 20_000);
    let concurrency = arg("--concurrency", 32);
    let size = arg("--size", 2048);
    let queue = format!("bench-bare-{}", std::process::id());
    let conn = bare::connect("bare-publish-baseline").await;
    bare::declare_quorum(&conn, &queue).await;
    let rate = bare::publish(&conn, &queue, count, concurrency, size).await;
    bare::delete(&conn, &queue).await;
    println!("bare_publish rate={rate:.0}");
}

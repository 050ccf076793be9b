//! Bare lapin confirmed publishing, the broker baseline other benchmarks compare against.
//!
//!   cargo run --release -p steadfast-messaging --example bare_publish -- \
//!       --count 20000 --concurrency 32 --size 2048 [--cloudevent-key gitlab.com.a.b.build]
//!
//! Plain messages by default; with `--cloudevent-key K` each message carries the properties
//! and headers of one of our CloudEvents and routing key K (`bare::Shape::cloudevent`), so a
//! service's benchmark can also compare against bare publishing of messages like its own.
//! Prints `bare_publish rate=<messages per second>`.

// Shared with the throughput bench, which also uses the consuming half.
#[allow(dead_code)]
#[path = "../benches/common/bare.rs"]
mod bare;

fn arg(name: &str, default: usize) -> usize {
    bare::arg(name).map_or(default, |v| {
        v.parse()
            .unwrap_or_else(|_| panic!("{name} takes a number"))
    })
}

#[tokio::main]
async fn main() {
    let count = arg("--count", 20_000);
    let concurrency = arg("--concurrency", 32);
    let size = arg("--size", 2048);
    let queue = format!("bench-bare-{}", std::process::id());
    let conn = bare::connect("bare-publish-baseline").await;
    bare::declare_quorum(&conn, &queue).await;
    let shape = match bare::arg("--cloudevent-key") {
        Some(key) => bare::Shape::cloudevent(&key),
        None => bare::Shape::plain(),
    };
    let rate = bare::publish_shaped(&conn, &queue, count, concurrency, size, &shape).await;
    bare::delete(&conn, &queue).await;
    println!("bare_publish rate={rate:.0}");
}

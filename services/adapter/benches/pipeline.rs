//! The per-event cost of the pipeline: HyperFleet's Kubernetes example task config (an API
//! GET, three params, a namespace and a Job rendered and applied, both discovered, a status
//! payload of ~20 CEL expressions built and PUT), with the in-memory cluster and the recorded
//! API of the dry run, so only the adapter's own work is measured.
//!
//!   cargo bench -p adapter --bench pipeline
//!
//! * `create` — a cluster seen for the first time: every object is created;
//! * `steady` — the same event again: generations match, every apply is a skip (the common case:
//!   the sentinel re-publishes reconciled clusters);
//! * `decode` — the baseline: decoding the CloudEvent from JSON, what any consumer pays.
//!
//! At the end the medians and their ratio to the baseline are printed.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use adapter::config::{self, Overrides, Sources};
use adapter::hyperfleet_api::ApiClient;
use adapter::hyperfleet_api::MockApi;
use adapter::pipeline::{Executor, RunOptions, Verdict};
use adapter::transport::{MemoryCluster, Transport};
use criterion::{BatchSize, Criterion};
use serde_json::Value;
use steadfast_events::Envelope;

const GROUP: &str = "adapter_event";

fn shared() -> PathBuf {
    steadfast_test_support::shared_dir().join("peer-cases/hyperfleet-adapter")
}

fn main() {
    let example = shared().join("examples/kubernetes");
    let sources = Sources {
        adapter_config: Some(example.join("adapter-config.yaml")),
        task_config: Some(example.join("adapter-task-config.yaml")),
        overrides: Overrides::default(),
        remaps: vec![(
            "/etc/adapter/job.yaml".into(),
            example.join("adapter-task-resource-job.yaml"),
        )],
        ..Sources::default()
    };
    let loaded = Arc::new(
        config::load(&sources, steadfast_rules::system_clock(), true).expect("the example loads"),
    );
    let responses = shared().join("dryrun/dryrun-api-responses.json");
    let event_json = std::fs::read(shared().join("dryrun/event.json")).expect("event");
    let event: Envelope<Value> =
        Envelope::from_json(&event_json, usize::MAX).expect("event decodes");
    let environment = BTreeMap::new();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");

    let executor = |cluster: MemoryCluster| {
        let api = ApiClient::mock(
            &loaded.adapter.clients.hyperfleet_api,
            Arc::new(MockApi::from_file(&responses).expect("responses")),
        );
        Executor::new(
            Arc::clone(&loaded),
            Arc::new(api),
            Arc::new(Transport::Memory(cluster)),
            &environment,
            None,
        )
    };
    let steady = executor(MemoryCluster::new(HashMap::new()));
    let first = runtime.block_on(steady.execute(&event.data, RunOptions::default()));
    assert_eq!(first.verdict, Verdict::Success, "{:?}", first.failure);
    assert_eq!(first.resources[1].operation, "create");
    let again = runtime.block_on(steady.execute(&event.data, RunOptions::default()));
    assert_eq!(again.resources[1].operation, "skip");

    let mut criterion = Criterion::default()
        .warm_up_time(Duration::from_secs(2))
        .measurement_time(Duration::from_secs(8))
        .configure_from_args();
    let mut group = criterion.benchmark_group(GROUP);
    group.bench_function("decode", |b| {
        b.iter(|| {
            std::hint::black_box(
                Envelope::<Value>::from_json(&event_json, usize::MAX).expect("decodes"),
            )
        })
    });
    group.bench_function("steady", |b| {
        b.iter(|| {
            std::hint::black_box(
                runtime.block_on(steady.execute(&event.data, RunOptions::default())),
            )
        })
    });
    group.bench_function("create", |b| {
        b.iter_batched(
            || executor(MemoryCluster::new(HashMap::new())),
            |fresh| {
                std::hint::black_box(
                    runtime.block_on(fresh.execute(&event.data, RunOptions::default())),
                )
            },
            BatchSize::SmallInput,
        )
    });
    group.finish();
    criterion.final_summary();
    report();
}

fn report() {
    let base = std::env::var_os("CRITERION_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/criterion")
        });
    let median = |function: &str| -> Option<f64> {
        let text =
            std::fs::read_to_string(base.join(GROUP).join(function).join("new/estimates.json"))
                .ok()?;
        serde_json::from_str::<Value>(&text).ok()?["median"]["point_estimate"].as_f64()
    };
    let (Some(decode), Some(steady), Some(create)) =
        (median("decode"), median("steady"), median("create"))
    else {
        println!(
            "(no criterion estimates under {}; ratios not computed)",
            base.display()
        );
        return;
    };
    println!(
        "\nsummary: decode {:.1} µs (baseline); steady {:.1} µs = {:.0}x, {:.0} events/s/core; create {:.1} µs = {:.0}x, {:.0} events/s/core",
        decode / 1e3,
        steady / 1e3,
        steady / decode,
        1e9 / steady,
        create / 1e3,
        create / decode,
        1e9 / create
    );
}

//! The decision engine's throughput: HyperFleet's default `message_decision` over realistic
//! cluster resources (three conditions, labels, spec), the way the poll loop calls it.
//!
//! Target: at least 200,000 resources/s on one core. The baseline in the same run is the cost
//! of only parsing each resource's JSON, which the sentinel pays anyway; the printed ratio is
//! deciding versus that.
//!
//!     cargo bench -p sentinel --bench decision

use std::hint::black_box;
use std::time::{Duration, Instant};

use chrono::{TimeZone, Utc};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use sentinel::decision::{DecisionEngine, MessageTemplate, REASON_MATCHED, environment};
use serde_json::{Value, json};

fn resource(i: usize) -> Value {
    let reconciled = !i.is_multiple_of(3);
    let at = if i.is_multiple_of(2) {
        "2026-05-01T11:00:00.123456Z"
    } else {
        "2026-05-01T11:59:58Z"
    };
    json!({
        "kind": "Cluster", "id": format!("019466a0-8f8e-7abc-9def-{i:012}"),
        "href": format!("/api/hyperfleet/v1/clusters/019466a0-8f8e-7abc-9def-{i:012}"),
        "name": format!("cluster-{i}"), "generation": 1 + (i % 4) as i64,
        "labels": {"shard": (i % 8).to_string(), "env": "prod", "region": "eu-west-1"},
        "spec": {"region": "eu-west-1", "version": "4.16", "nodes": 3},
        "created_time": "2026-05-01T10:00:00Z", "updated_time": at,
        "created_by": "user@example.com", "updated_by": "user@example.com",
        "status": {"conditions": [
            {"type": "Reconciled", "status": if reconciled { "True" } else { "False" },
             "reason": "ReconciledAll", "message": "All required adapters reported Available=True",
             "observed_generation": 1 + (i % 4) as i64, "created_time": "2026-05-01T10:00:00Z",
             "last_updated_time": at, "last_transition_time": at},
            {"type": "LastKnownReconciled", "status": "True", "reason": "AllAdaptersReconciled",
             "message": "ok", "observed_generation": 1, "created_time": "2026-05-01T10:00:00Z",
             "last_updated_time": at, "last_transition_time": at},
            {"type": "ValidatorSuccessful", "status": "True", "reason": "Checked", "message": "ok",
             "observed_generation": 1, "created_time": "2026-05-01T10:00:00Z",
             "last_updated_time": at, "last_transition_time": at}
        ]}
    })
}

fn bench(c: &mut Criterion) {
    let engine = DecisionEngine::default_decision();
    let env = environment();
    let evaluator = env.evaluator();
    let template = MessageTemplate::compile(
        &env,
        json!({"id": "resource.id", "kind": "resource.kind", "href": "resource.href",
               "generation": "resource.generation"})
        .as_object()
        .unwrap(),
    )
    .unwrap();
    let now = Utc.with_ymd_and_hms(2026, 5, 1, 12, 0, 0).unwrap();
    let resources: Vec<Value> = (0..1000).map(resource).collect();
    let texts: Vec<Vec<u8>> = resources
        .iter()
        .map(|r| serde_json::to_vec(r).unwrap())
        .collect();

    let mut group = c.benchmark_group("decision");
    group.throughput(Throughput::Elements(resources.len() as u64));
    group.bench_function("baseline: parse 1000 resources", |b| {
        b.iter(|| {
            for text in &texts {
                black_box(serde_json::from_slice::<Value>(text).unwrap());
            }
        })
    });
    group.bench_function("default decision, 1000 resources", |b| {
        b.iter(|| {
            for r in &resources {
                black_box(engine.decide(&evaluator, r, now).unwrap());
            }
        })
    });
    group.bench_function("default decision + message_data, 1000 resources", |b| {
        b.iter(|| {
            for r in &resources {
                if engine.decide(&evaluator, r, now).unwrap()
                    == sentinel::decision::Decision::Publish
                {
                    black_box(template.render(&evaluator, r, REASON_MATCHED));
                }
            }
        })
    });
    group.finish();

    // A plain summary with the ratio, measured in this same run.
    let time = |f: &mut dyn FnMut()| {
        let started = Instant::now();
        let mut rounds = 0u32;
        while started.elapsed() < Duration::from_secs(2) {
            f();
            rounds += 1;
        }
        started.elapsed().as_secs_f64() / f64::from(rounds)
    };
    let parse = time(&mut || {
        for text in &texts {
            black_box(serde_json::from_slice::<Value>(text).unwrap());
        }
    });
    let decide = time(&mut || {
        for r in &resources {
            black_box(engine.decide(&evaluator, r, now).unwrap());
        }
    });
    let per_second = resources.len() as f64 / decide;
    println!(
        "\nsummary: decision {per_second:.0} resources/s ({:.2} µs each; target ≥ 200000/s: {}); \
         parsing the same JSON {:.0} resources/s; deciding costs {:.2}× parsing",
        decide / resources.len() as f64 * 1e6,
        if per_second >= 200_000.0 {
            "met"
        } else {
            "NOT met"
        },
        resources.len() as f64 / parse,
        decide / parse
    );
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).measurement_time(Duration::from_secs(5));
    targets = bench
}
criterion_main!(benches);

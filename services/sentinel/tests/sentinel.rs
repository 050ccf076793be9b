//! The sentinel end to end: fleet-api on PostgreSQL, the real broker, events on the adapters'
//! queue; time moved with an injected clock instead of waited for.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use axum::routing::get;
use common::{Fleet, Running, TestClock, drain};
use serde_json::{Value, json};
use steadfast_test_support::{TestBroker, eventually_async};

const WAIT: Duration = Duration::from_secs(20);

#[tokio::test]
async fn a_new_cluster_gets_an_event_after_the_debounce_and_not_before() {
    let fleet = Fleet::start().await;
    let broker = TestBroker::new().await;
    let exchange = broker.name("clusters");
    let queue = common::adapter_queue(&broker, &exchange).await;
    let cluster = fleet.cluster("fresh", json!({})).await;
    let clock = TestClock::default();
    let mut config = common::config(fleet.api.base_url(), &exchange, "clusters", "");
    config.clock = clock.clock();
    let sentinel = Running::start(config).await;

    // Created just now: Reconciled=False, updated < 10 s ago — still debouncing.
    sentinel.wait_cycles(2).await;
    assert_eq!(queue.depth().await, 0);
    assert_eq!(
        sentinel
            .metric(r#"hyperfleet_sentinel_resources_skipped_total{component="sentinel",reason="message decision result is false""#)
            .await
            .min(1.0),
        1.0
    );

    clock.advance(chrono::Duration::seconds(11));
    let (event, raw) = queue.next_event::<Value>(WAIT).await;
    assert_eq!(event.data["id"], cluster["id"]);
    assert_eq!(event.data["generation"], 1);
    assert_eq!(event.event_type, "com.redhat.hyperfleet.cluster.reconcile");
    assert_eq!(raw.routing_key, "");
    assert!(
        sentinel
            .metric(r#"hyperfleet_sentinel_events_published_total{component="sentinel",reason="message decision matched""#)
            .await
            >= 1.0
    );
    sentinel.stop().await;
}

#[tokio::test]
async fn a_spec_change_gets_an_event_and_a_reconciled_report_stops_them() {
    let fleet = Fleet::start().await;
    let broker = TestBroker::new().await;
    let exchange = broker.name("clusters");
    let queue = common::adapter_queue(&broker, &exchange).await;
    let cluster = fleet.cluster("changing", json!({})).await;
    let path = format!("/clusters/{}", cluster["id"].as_str().unwrap());
    fleet.report_available(&path, 1).await;
    let clock = TestClock::default();
    clock.advance(chrono::Duration::seconds(11));
    let mut config = common::config(fleet.api.base_url(), &exchange, "clusters", "");
    config.clock = clock.clock();
    let sentinel = Running::start(config).await;

    sentinel.wait_cycles(2).await;
    assert_eq!(
        queue.depth().await,
        0,
        "reconciled at generation 1: nothing to do"
    );

    let patched = fleet.patch(&path, json!({"spec": {"region": "us"}})).await;
    assert_eq!(patched["generation"], 2);
    let (event, _) = queue.next_event::<Value>(WAIT).await;
    assert_eq!(event.data["generation"], 2);

    // While the adapter has not caught up, every cycle publishes again (stateless).
    queue.next(WAIT).await;
    // Its report at generation 2 stops them.
    fleet.report_available(&path, 2).await;
    sentinel.wait_cycles(2).await;
    drain(&queue).await;
    sentinel.wait_cycles(3).await;
    assert_eq!(
        queue.depth().await,
        0,
        "no events once reconciled at the current generation"
    );
    sentinel.stop().await;
}

#[tokio::test]
async fn a_reconciled_cluster_is_checked_again_only_after_30_minutes() {
    let fleet = Fleet::start().await;
    let broker = TestBroker::new().await;
    let exchange = broker.name("clusters");
    let queue = common::adapter_queue(&broker, &exchange).await;
    let cluster = fleet.cluster("steady", json!({})).await;
    fleet
        .report_available(&format!("/clusters/{}", cluster["id"].as_str().unwrap()), 1)
        .await;
    let clock = TestClock::default();
    let mut config = common::config(fleet.api.base_url(), &exchange, "clusters", "");
    config.clock = clock.clock();
    let sentinel = Running::start(config).await;

    clock.advance(chrono::Duration::minutes(29));
    sentinel.wait_cycles(3).await;
    assert_eq!(
        queue.depth().await,
        0,
        "29 minutes after reconciling: quiet"
    );

    clock.advance(chrono::Duration::minutes(2));
    let (event, _) = queue.next_event::<Value>(WAIT).await;
    assert_eq!(event.data["id"], cluster["id"]);
    sentinel.stop().await;
}

/// Runs one sentinel per `extra` config for exactly one cycle each (an hour-long interval)
/// and returns, per cluster id, how many events were published.
async fn one_cycle_each(
    fleet: &Fleet,
    broker: &TestBroker,
    extras: &[&str],
) -> BTreeMap<String, usize> {
    let exchange = broker.name("clusters");
    let queue = common::adapter_queue(broker, &exchange).await;
    let clock = TestClock::default();
    clock.advance(chrono::Duration::seconds(11));
    let mut seen = BTreeMap::new();
    for extra in extras {
        let mut config = common::config(fleet.api.base_url(), &exchange, "clusters", extra);
        config.poll_interval = Duration::from_secs(3600);
        config.clock = clock.clock();
        let sentinel = Running::start(config).await;
        eventually_async("the first poll cycle", WAIT, || async {
            (sentinel
                .metric("hyperfleet_sentinel_poll_duration_seconds_count")
                .await
                >= 1.0)
                .then_some(())
        })
        .await;
        sentinel.stop().await;
    }
    for (event, _) in drain(&queue).await {
        *seen
            .entry(event["data"]["id"].as_str().unwrap().to_owned())
            .or_insert(0) += 1;
    }
    seen
}

#[tokio::test]
async fn label_selectors_and_shards_partition_the_fleet() {
    let fleet = Fleet::start().await;
    let mut all = Vec::new();
    let mut eu = Vec::new();
    for i in 0..24u32 {
        let region = if i.is_multiple_of(3) { "eu" } else { "us" };
        let c = fleet
            .cluster(&format!("c-{i}"), json!({"region": region, "tier": "gold"}))
            .await;
        let id = c["id"].as_str().unwrap().to_owned();
        if region == "eu" {
            eu.push(id.clone());
        }
        all.push(id);
    }
    all.sort();
    eu.sort();

    let broker = TestBroker::new().await;
    let selected = one_cycle_each(
        &fleet,
        &broker,
        &["resource_selector:\n  - {label: region, value: eu}\n  - {label: tier, value: gold}"],
    )
    .await;
    assert_eq!(selected.keys().cloned().collect::<Vec<_>>(), eu);
    assert!(selected.values().all(|n| *n == 1));

    let broker = TestBroker::new().await;
    let sharded = one_cycle_each(
        &fleet,
        &broker,
        &[
            "shard: {index: 0, count: 3}",
            "shard: {index: 1, count: 3}",
            "shard: {index: 2, count: 3}",
        ],
    )
    .await;
    assert_eq!(
        sharded.keys().cloned().collect::<Vec<_>>(),
        all,
        "every cluster covered"
    );
    assert!(
        sharded.values().all(|n| *n == 1),
        "none doubled: {sharded:?}"
    );

    // Shards combine with selectors: two shards of the eu clusters cover exactly those.
    let broker = TestBroker::new().await;
    let both = one_cycle_each(
        &fleet,
        &broker,
        &[
            "resource_selector: [{label: region, value: eu}]\nshard: {index: 0, count: 2}",
            "resource_selector: [{label: region, value: eu}]\nshard: {index: 1, count: 2}",
        ],
    )
    .await;
    assert_eq!(both.keys().cloned().collect::<Vec<_>>(), eu);
    assert!(both.values().all(|n| *n == 1));
}

/// A fake HyperFleet API: the connectivity probe succeeds; list requests answer from
/// `statuses` in turn (the last one repeats), with one cluster on a 200.
async fn flaky_api(statuses: Vec<u16>) -> (String, Arc<AtomicUsize>) {
    let lists = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&lists);
    let router = Router::new().route(
        "/api/hyperfleet/v1/clusters",
        get(move |query: axum::extract::RawQuery| {
            let counter = Arc::clone(&counter);
            let statuses = statuses.clone();
            async move {
                let query = query.0.unwrap_or_default();
                if query.contains("non_existing_label") {
                    return (StatusCode::OK, axum::Json(json!({"page": 1, "size": 0, "total": 0, "items": []})));
                }
                let n = counter.fetch_add(1, Ordering::SeqCst);
                let status = StatusCode::from_u16(*statuses.get(n).or(statuses.last()).unwrap()).unwrap();
                if status != StatusCode::OK {
                    return (status, axum::Json(json!({"code": "HYPERFLEET-SVC-001"})));
                }
                (
                    StatusCode::OK,
                    axum::Json(json!({"page": 1, "size": 1, "total": 1, "items": [{
                        "id": "flaky-1", "kind": "Cluster", "href": "/api/hyperfleet/v1/clusters/flaky-1",
                        "generation": 1, "status": {"conditions": []}}]})),
                )
            }
        }),
    );
    (steadfast_test_support::spawn_http(router).await, lists)
}

#[tokio::test]
async fn the_api_is_retried_on_503_but_not_on_400() {
    let broker = TestBroker::new().await;
    let exchange = broker.name("clusters");
    let queue = common::adapter_queue(&broker, &exchange).await;
    let (url, lists) = flaky_api(vec![503, 503, 200]).await;
    let mut config = common::config(&url, &exchange, "clusters", "");
    config.poll_interval = Duration::from_secs(3600);
    let sentinel = Running::start(config).await;
    let (event, _) = queue.next_event::<Value>(WAIT).await;
    assert_eq!(event.data["id"], "flaky-1");
    assert_eq!(lists.load(Ordering::SeqCst), 3, "two 503s, then the 200");
    assert_eq!(
        sentinel
            .metric("hyperfleet_sentinel_api_errors_total")
            .await,
        0.0
    );
    sentinel.stop().await;

    let (url, lists) = flaky_api(vec![400]).await;
    let mut config = common::config(&url, &exchange, "clusters", "");
    config.poll_interval = Duration::from_secs(3600);
    let sentinel = Running::start(config).await;
    eventually_async("a fetch error", WAIT, || async {
        (sentinel
            .metric(r#"hyperfleet_sentinel_api_errors_total{component="sentinel",error_type="fetch_error""#)
            .await
            == 1.0)
            .then_some(())
    })
    .await;
    assert_eq!(lists.load(Ordering::SeqCst), 1, "a 400 is not retried");
    assert_eq!(queue.depth().await, 0);
    sentinel.stop().await;
}

#[tokio::test]
async fn events_match_hyperfleets_format_byte_for_byte() {
    let fleet = Fleet::start().await;
    let broker = TestBroker::new().await;
    let clusters = broker.name("clusters");
    let nodepools = broker.name("nodepools");
    let cluster_queue = broker.probe("cluster-adapter", &clusters, "").await;
    let nodepool_queue = broker.probe("nodepool-adapter", &nodepools, "").await;
    let cluster = fleet.cluster("formatted", json!({})).await;
    let cid = cluster["id"].as_str().unwrap();
    let pool = fleet
        .post(
            &format!("/clusters/{cid}/nodepools"),
            json!({"kind": "NodePool", "name": "workers", "spec": {}}),
        )
        .await;
    let pid = pool["id"].as_str().unwrap();
    let clock = TestClock::default();
    clock.advance(chrono::Duration::seconds(11));

    let mut cluster_config = common::config(fleet.api.base_url(), &clusters, "clusters", "");
    cluster_config.clock = clock.clock();
    let nodepool_data = r#"  owner_references:
    id: "resource.owner_references.id"
    href: "resource.owner_references.href"
    kind: "resource.owner_references.kind""#;
    let mut nodepool_config =
        common::config(fleet.api.base_url(), &nodepools, "nodepools", nodepool_data);
    nodepool_config.clock = clock.clock();
    let s1 = Running::start(cluster_config).await;
    let s2 = Running::start(nodepool_config).await;

    let raw = cluster_queue.next(WAIT).await;
    let id = raw.message_id().unwrap();
    assert_eq!(
        String::from_utf8(raw.body.clone()).unwrap(),
        format!(
            r#"{{"specversion":"1.0","id":"{id}","source":"hyperfleet-sentinel","type":"com.redhat.hyperfleet.cluster.reconcile","datacontenttype":"application/json","data":{{"generation":1,"href":"/api/hyperfleet/v1/clusters/{cid}","id":"{cid}","kind":"Cluster"}}}}"#
        )
    );
    assert_eq!(uuid::Uuid::parse_str(&id).unwrap().get_version_num(), 7);
    assert_eq!(
        raw.header("_watermill_message_uuid").as_deref(),
        Some(id.as_str())
    );
    assert_eq!(raw.delivery_mode(), Some(2));
    assert_eq!(raw.routing_key, "");

    let raw = nodepool_queue.next(WAIT).await;
    let id = raw.message_id().unwrap();
    assert_eq!(
        String::from_utf8(raw.body.clone()).unwrap(),
        format!(
            r#"{{"specversion":"1.0","id":"{id}","source":"hyperfleet-sentinel","type":"com.redhat.hyperfleet.nodepool.reconcile","datacontenttype":"application/json","data":{{"generation":1,"href":"/api/hyperfleet/v1/clusters/{cid}/nodepools/{pid}","id":"{pid}","kind":"NodePool","owner_references":{{"href":"/api/hyperfleet/v1/clusters/{cid}","id":"{cid}","kind":"Cluster"}}}}}}"#
        )
    );
    s1.stop().await;
    s2.stop().await;
}

#[tokio::test]
async fn probes_and_metrics_speak_hyperfleet() {
    let broker = TestBroker::new().await;
    let exchange = broker.name("clusters");
    let queue = common::adapter_queue(&broker, &exchange).await;
    let (url, _) = flaky_api(vec![200, 500]).await;
    let mut config = common::config(&url, &exchange, "clusters", "");
    config.poll_interval = Duration::from_millis(100);
    let sentinel = Running::start(config).await;
    let client = reqwest::Client::new();

    eventually_async("ready after the first poll", WAIT, || async {
        let r = client
            .get(format!("{}/readyz", sentinel.http))
            .send()
            .await
            .ok()?;
        (r.status() == 200).then_some(())
    })
    .await;
    let ready: Value = client
        .get(format!("{}/readyz", sentinel.http))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ready["checks"]["broker"]["status"], "ok");
    assert_eq!(ready["checks"]["sentinel_poll"]["status"], "ok");

    // Every later fetch fails: past 3 poll intervals the dead man's switch trips.
    let stale: Value = eventually_async("healthz to report a stale poll", WAIT, || async {
        let r = client
            .get(format!("{}/healthz", sentinel.http))
            .send()
            .await
            .ok()?;
        if r.status() != 503 {
            return None;
        }
        r.json().await.ok()
    })
    .await;
    assert_eq!(stale["checks"]["sentinel_poll"]["detail"], "poll stale");

    queue.next(WAIT).await;
    eventually_async("a counted fetch error", WAIT, || async {
        (sentinel
            .metric("hyperfleet_sentinel_api_errors_total")
            .await
            >= 1.0)
            .then_some(())
    })
    .await;
    let text = sentinel.metrics_text().await;
    for name in [
        "hyperfleet_sentinel_pending_resources{component=\"sentinel\",resource_selector=\"all\",resource_type=\"clusters\"",
        "hyperfleet_sentinel_poll_duration_seconds_bucket{component=\"sentinel\",resource_selector=\"all\",resource_type=\"clusters\"",
        "hyperfleet_sentinel_api_errors_total{component=\"sentinel\",error_type=\"fetch_error\",resource_selector=\"all\",resource_type=\"clusters\"",
        "hyperfleet_sentinel_last_successful_poll_timestamp_seconds{component=\"sentinel\"",
        "hyperfleet_broker_messages_published_total{component=\"sentinel\",topic=",
    ] {
        assert!(text.contains(name), "missing {name} in\n{text}");
    }
    // Every metric an alert rule or dashboard in k8s/components/monitoring names.
    steadfast_test_support::monitoring::assert_exports(&text, &["sentinel", "every-service"]);
    sentinel.shutdown.cancel();
    let not_ready = client.get(format!("{}/readyz", sentinel.http)).send().await;
    if let Ok(r) = not_ready {
        assert_ne!(r.status(), 200);
    }
    let _ = sentinel.task.await;
}

#[tokio::test]
async fn an_expression_error_skips_only_that_resource() {
    let fleet = Fleet::start().await;
    let broker = TestBroker::new().await;
    let exchange = broker.name("clusters");
    let queue = common::adapter_queue(&broker, &exchange).await;
    let labelled = fleet.cluster("labelled", json!({"team": "a"})).await;
    fleet.cluster("unlabelled", json!({})).await;
    let extra = r#"message_decision:
  params:
    - name: team
      expr: 'resource.labels.team'
  result: 'team == "a"'"#;
    let sentinel = Running::start(common::config(
        fleet.api.base_url(),
        &exchange,
        "clusters",
        extra,
    ))
    .await;
    let (event, _) = queue.next_event::<Value>(WAIT).await;
    assert_eq!(event.data["id"], labelled["id"]);
    sentinel.wait_cycles(1).await;
    assert!(
        sentinel
            .metric(r#"hyperfleet_sentinel_resources_skipped_total{component="sentinel",reason="message decision evaluation failed""#)
            .await
            >= 1.0
    );
    sentinel.stop().await;
}

#[tokio::test]
async fn outage_broker_restart_mid_cycle_loses_no_decision() {
    let fleet = Fleet::start().await;
    let broker = TestBroker::new().await;
    let exchange = broker.name("clusters");
    let queue = common::adapter_queue(&broker, &exchange).await;
    let mut ids = Vec::new();
    for i in 0..6 {
        ids.push(
            fleet.cluster(&format!("o-{i}"), json!({})).await["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    ids.sort();
    let clock = TestClock::default();
    clock.advance(chrono::Duration::seconds(11));
    let mut config = common::config(fleet.api.base_url(), &exchange, "clusters", "");
    config.poll_interval = Duration::from_millis(300);
    config.clock = clock.clock();
    let sentinel = Running::start(config).await;
    queue.next(WAIT).await;

    rabbitmqctl(&["stop_app"]);
    rabbitmqctl(&["start_app"]);
    rabbitmqctl(&["await_startup"]);
    let restarted_ms = chrono::Utc::now().timestamp_millis() as u64;
    // Every cluster is published again by a cycle after the restart. (The test's own
    // connection is reconnecting too, so a failed read just means "try again".)
    let take_all = || async {
        let mut events = Vec::new();
        while let Ok(Some(raw)) =
            steadfast_messaging::admin::take(&broker.broker, &queue.queue).await
        {
            events.push(serde_json::from_slice::<Value>(&raw.body).unwrap());
        }
        events
    };
    let seen = std::sync::Mutex::new(std::collections::BTreeSet::new());
    eventually_async(
        "every cluster published after the restart",
        Duration::from_secs(60),
        || async {
            let events = take_all().await;
            let mut seen = seen.lock().unwrap();
            for event in events {
                // Only events created after the restart count (UUIDv7 ids carry their time).
                let id = uuid::Uuid::parse_str(event["id"].as_str().unwrap()).unwrap();
                let (secs, nanos) = id.get_timestamp().unwrap().to_unix();
                if secs * 1000 + u64::from(nanos / 1_000_000) >= restarted_ms {
                    seen.insert(event["data"]["id"].as_str().unwrap().to_owned());
                }
            }
            (seen.len() == ids.len()).then_some(())
        },
    )
    .await;
    assert_eq!(
        seen.into_inner().unwrap().into_iter().collect::<Vec<_>>(),
        ids
    );
    sentinel.stop().await;
}

fn rabbitmqctl(args: &[&str]) {
    let status = std::process::Command::new("rabbitmqctl")
        .args(args)
        .stdout(std::process::Stdio::null())
        .status()
        .expect("rabbitmqctl runs");
    assert!(status.success(), "rabbitmqctl {args:?}");
}

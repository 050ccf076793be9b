//! The adapter on the real broker, the fake Kubernetes API and a recording HyperFleet API,
//! running HyperFleet's own Kubernetes example task config unchanged.

mod support;

use std::time::Duration;

use fake_kube::Fault;
use serde_json::Value;
use steadfast_test_support::{eventually, eventually_async, unique_name};
use support::*;

const WAIT: Duration = Duration::from_secs(30);

struct Setup {
    world: World,
    adapter: Running,
}

async fn setup(retry: &str) -> Setup {
    let world = World::start("kubernetes-example", retry).await;
    let config = load_config(
        &world.adapter_config,
        &example_dir().join("adapter-task-config.yaml"),
        example_remaps(),
    );
    let adapter = Running::start(config).await;
    Setup { world, adapter }
}

fn cluster_id() -> String {
    unique_name("c")
}

impl Setup {
    async fn send(&self, id: &str, generation: i64) {
        self.world.send(&self.adapter, id, generation).await;
    }

    fn job(&self, id: &str) -> Option<Value> {
        self.world.kube.get(
            "batch/v1",
            "Job",
            Some(&format!("{id}-k8s")),
            "hello-world-job",
        )
    }

    async fn reports(&self, id: &str, n: usize) -> Vec<Value> {
        eventually(&format!("{n} status report(s) for {id}"), WAIT, || {
            let reports = self.world.fleet.reports(id);
            (reports.len() >= n).then_some(reports)
        })
        .await
    }
}

#[tokio::test]
async fn applies_the_example_and_reports_available_once_the_job_completes() {
    steadfast_test_support::skip_without_peer_cases!();
    let s = setup("1s").await;
    let id = cluster_id();
    s.world.fleet.set_cluster(&id, 1, false);
    s.send(&id, 1).await;

    let first = s.reports(&id, 1).await.remove(0);
    let namespace = s
        .world
        .kube
        .get("v1", "Namespace", None, &format!("{id}-k8s"))
        .expect("namespace created");
    assert_eq!(
        namespace["metadata"]["labels"]["hyperfleet.io/managed-by"],
        "kubernetes-example"
    );
    assert_eq!(
        namespace["metadata"]["annotations"]["hyperfleet.io/generation"],
        "1"
    );
    let job = s.job(&id).expect("job created");
    assert_eq!(
        job["spec"]["template"]["spec"]["containers"][0]["image"],
        "alpine:3.19"
    );
    assert_eq!(first["adapter"], "kubernetes-example");
    assert_eq!(first["observed_generation"], 1);
    assert!(chrono::DateTime::parse_from_rfc3339(first["observed_time"].as_str().unwrap()).is_ok());
    assert_eq!(condition(&first, "Applied")["status"], "True");
    assert_eq!(condition(&first, "Available")["status"], "False");
    assert_eq!(condition(&first, "Available")["reason"], "JobRunning");
    assert_eq!(condition(&first, "Health")["status"], "True");

    s.world
        .kube
        .complete_job(&format!("{id}-k8s"), "hello-world-job");
    s.send(&id, 1).await;
    let second = s.reports(&id, 2).await.remove(1);
    assert_eq!(condition(&second, "Available")["status"], "True");
    assert_eq!(condition(&second, "Available")["reason"], "JobComplete");
    // Same generation: nothing was written again.
    assert_eq!(s.world.kube.count("update", "jobs"), 0);
    assert_eq!(s.world.kube.count("create", "jobs"), 1);
    let metrics = s.adapter.metrics_text().await;
    assert!(metrics.contains("hyperfleet_adapter_events_processed_total{adapter_name=\"kubernetes-example\",component=\"adapter\",status=\"success\",version=\"0.1.0\"} 2"), "{metrics}");
    s.adapter.stop().await;
}

#[tokio::test]
async fn generation_bump_updates_and_deletion_reports_finalized() {
    steadfast_test_support::skip_without_peer_cases!();
    let s = setup("1s").await;
    let id = cluster_id();
    s.world.fleet.set_cluster(&id, 1, false);
    s.send(&id, 1).await;
    s.reports(&id, 1).await;

    s.world.fleet.set_cluster(&id, 2, false);
    s.send(&id, 2).await;
    let report = s.reports(&id, 2).await.remove(1);
    assert_eq!(report["observed_generation"], 2);
    let job = s.job(&id).unwrap();
    assert_eq!(
        job["metadata"]["annotations"]["hyperfleet.io/generation"],
        "2"
    );
    assert_eq!(s.world.kube.count("update", "jobs"), 1);

    s.world.fleet.set_cluster(&id, 3, true);
    s.send(&id, 3).await;
    let report = s.reports(&id, 3).await.remove(2);
    assert!(
        s.world
            .kube
            .get("v1", "Namespace", None, &format!("{id}-k8s"))
            .is_none()
    );
    assert!(s.job(&id).is_none());
    assert_eq!(
        condition(&report, "Finalized")["status"],
        "True",
        "{report}"
    );
    assert_eq!(
        condition(&report, "Finalized")["reason"],
        "CleanupConfirmed"
    );
    s.adapter.stop().await;
}

#[tokio::test]
async fn kubernetes_503_is_retried_through_a_tier_and_reported_once() {
    steadfast_test_support::skip_without_peer_cases!();
    let s = setup("1s").await;
    let id = cluster_id();
    s.world.fleet.set_cluster(&id, 1, false);
    s.world
        .kube
        .inject(Fault::status(503).on("create").resource("jobs").times(1));
    s.send(&id, 1).await;

    let reports = s.reports(&id, 1).await;
    assert_eq!(
        s.world.kube.count("create", "jobs"),
        2,
        "first attempt failed, the retry created it"
    );
    assert!(s.job(&id).is_some());
    assert_eq!(condition(&reports[0], "Health")["status"], "True");
    // The failed attempt reported nothing: exactly one report once the retry has run.
    let metrics = s.adapter.metrics_text().await;
    assert!(metrics.contains("outcome=\"retry\""), "{metrics}");
    let tier = format!(
        "steadfast_messages_retried_total{{queue=\"{}\",tier=\"1s\"}} 1",
        s.adapter.queue
    );
    assert!(metrics.contains(&tier), "{metrics}");
    assert_eq!(s.world.fleet.reports(&id).len(), 1);
    s.adapter.stop().await;
}

#[tokio::test]
async fn forbidden_is_reported_unhealthy_and_parked_with_the_reason() {
    steadfast_test_support::skip_without_peer_cases!();
    let s = setup("1s").await;
    let id = cluster_id();
    s.world.fleet.set_cluster(&id, 1, false);
    s.world
        .kube
        .inject(Fault::status(403).on("create").resource("jobs").always());
    s.send(&id, 1).await;

    let parked = s.world.broker.queue(&format!("{}.parked", s.adapter.queue));
    let message = parked.next(WAIT).await;
    let error = message.header("steadfast-error").unwrap_or_default();
    assert!(error.contains("forbidden"), "{error}");
    assert!(error.contains("resources [helloWorldJob]"), "{error}");
    let report = s.reports(&id, 1).await.remove(0);
    assert_eq!(condition(&report, "Health")["status"], "False");
    assert_eq!(
        condition(&report, "Health")["reason"],
        "ExecutionFailed:resources"
    );
    assert!(
        condition(&report, "Health")["message"]
            .as_str()
            .unwrap()
            .contains("forbidden")
    );
    assert_eq!(
        s.world.kube.count("create", "jobs"),
        1,
        "a permanent failure is not retried"
    );
    s.adapter.stop().await;
}

#[tokio::test]
async fn status_report_503_is_retried_and_reported_once() {
    steadfast_test_support::skip_without_peer_cases!();
    let s = setup("1s").await;
    let id = cluster_id();
    s.world.fleet.set_cluster(&id, 1, false);
    // Both in-process attempts of the first execution fail; the retry tier brings it back.
    s.world.fleet.fail_puts(&[503, 503]);
    s.send(&id, 1).await;
    let reports = s.reports(&id, 1).await;
    assert_eq!(condition(&reports[0], "Applied")["status"], "True");
    assert_eq!(
        s.world.kube.count("create", "jobs"),
        1,
        "the retry skips the unchanged job"
    );
    s.adapter.stop().await;
}

#[tokio::test]
async fn missing_cluster_is_acknowledged_without_a_report() {
    steadfast_test_support::skip_without_peer_cases!();
    let s = setup("1s").await;
    let id = cluster_id();
    s.send(&id, 1).await;
    let metrics = eventually_async("the event to be skipped", WAIT, || async {
        let text = s.adapter.metrics_text().await;
        text.contains("status=\"skipped\"").then_some(text)
    })
    .await;
    assert!(metrics.contains("outcome=\"ack\""), "{metrics}");
    assert!(s.world.fleet.reports(&id).is_empty());
    assert_eq!(s.world.kube.count("create", "namespaces"), 0);
    s.adapter.stop().await;
}

#[tokio::test]
async fn probes_name_config_and_broker_checks() {
    steadfast_test_support::skip_without_peer_cases!();
    let s = setup("1s").await;
    let body: Value = reqwest::get(format!("{}/readyz", s.adapter.http))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["checks"]["config"]["status"], "ok");
    assert_eq!(body["checks"]["broker"]["status"], "ok");
    let health = reqwest::get(format!("{}/healthz", s.adapter.http))
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    let metrics = s.adapter.metrics_text().await;
    assert!(
        metrics.contains("hyperfleet_adapter_up{component=\"adapter\",version=\"0.1.0\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("hyperfleet_adapter_build_info"),
        "{metrics}"
    );
    assert_eq!(
        reqwest::get(format!("{}/config", s.adapter.http))
            .await
            .unwrap()
            .status(),
        404
    );
    s.adapter.stop().await;
}

#[tokio::test]
async fn events_published_before_a_reconcile_of_their_generation_started_are_acked_without_running()
{
    steadfast_test_support::skip_without_peer_cases!();
    let s = setup("1s").await;
    let id = cluster_id();
    s.world.fleet.set_cluster(&id, 1, false);
    s.send(&id, 1).await;
    s.reports(&id, 1).await;

    // What the sentinel published every poll while the adapter was behind: minted a minute
    // ago, at the generation just reconciled. Acked without running: no status report.
    let mut stale = cluster_event(&id, 1);
    stale.time = Some(chrono::Utc::now() - chrono::TimeDelta::seconds(60));
    publish_envelope(&s.world.broker, &s.world.topic, &s.adapter.queue, &stale).await;
    let duplicate = "outcome=\"duplicate\"";
    eventually_async("the stale event acked as a duplicate", WAIT, || async {
        let metrics = s.adapter.metrics_text().await;
        metrics
            .lines()
            .any(|l| l.contains(duplicate) && l.ends_with(" 1"))
            .then_some(())
    })
    .await;
    // A fresh event of the same generation (the sentinel's deliberate re-publish) runs.
    s.send(&id, 1).await;
    let reports = s.reports(&id, 2).await;
    assert_eq!(reports.len(), 2, "the duplicate reported nothing");
    // An old event of a newer generation runs too: nothing covered generation 2 yet.
    s.world.fleet.set_cluster(&id, 2, false);
    let mut newer = cluster_event(&id, 2);
    newer.time = Some(chrono::Utc::now() - chrono::TimeDelta::seconds(60));
    publish_envelope(&s.world.broker, &s.world.topic, &s.adapter.queue, &newer).await;
    let third = s.reports(&id, 3).await.remove(2);
    assert_eq!(third["observed_generation"], 2);
    let metrics = s.adapter.metrics_text().await;
    assert!(
        metrics.contains("hyperfleet_adapter_events_processed_total{adapter_name=\"kubernetes-example\",component=\"adapter\",status=\"success\",version=\"0.1.0\"} 3"),
        "{metrics}"
    );
    s.adapter.stop().await;
}

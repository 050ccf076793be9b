//! Spans reach a collector over OTLP/gRPC — HyperFleet's default, the collector's port 4317 —
//! with their parent links intact. One test per binary: the logger is process-global.

use std::time::Duration;

use steadfast_telemetry::{LogFormat, OtlpProtocol, TelemetryConfig};
use steadfast_test_support::otlp::Collector;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_reach_the_collector_over_grpc_with_their_parents() {
    let collector = Collector::start().await;
    let guard = steadfast_telemetry::init(&TelemetryConfig {
        service: "telemetry-grpc-test".into(),
        level: "info".into(),
        format: LogFormat::Json,
        loki_url: None,
        otlp_endpoint: Some(collector.endpoint()),
        otlp_protocol: Some(OtlpProtocol::Grpc),
    })
    .expect("telemetry init");

    {
        let poll = tracing::info_span!("sentinel.poll", cycle = 7);
        let _poll = poll.enter();
        let publish = tracing::info_span!("sentinel.publish", resource = "cluster-1");
        let _publish = publish.enter();
        tracing::info!("published a reconcile event");
    }
    guard.shutdown().await;

    let (parent, child) = collector
        .wait_for(
            "the poll span and its publish child",
            Duration::from_secs(20),
            |spans| {
                let parent = spans.iter().find(|s| s.name == "sentinel.poll")?;
                let child = spans.iter().find(|s| s.name == "sentinel.publish")?;
                Some((parent.clone(), child.clone()))
            },
        )
        .await;
    assert!(child.is_child_of(&parent), "{child:?} under {parent:?}");
    assert_eq!(parent.parent_span_id, None);
    for span in [&parent, &child] {
        assert_eq!(span.transport, "grpc", "{span:?}");
        assert_eq!(span.service, "telemetry-grpc-test");
    }
    assert_eq!(parent.attribute("cycle"), Some("7"));
    assert_eq!(child.attribute("resource"), Some("cluster-1"));
    assert!(
        collector.spans().iter().all(|s| s.transport == "grpc"),
        "nothing may arrive over HTTP: {:?}",
        collector.spans()
    );
}

//! One trace from an Alertmanager notification to the approved action's report: the real
//! webhook-receiver and reconciler (in-process, real RabbitMQ, PostgreSQL and Redis, local
//! executor, fake Webex) export their spans to an in-process OTLP/HTTP collector, and the test
//! checks every parent link, through the steps the reconciler keeps in PostgreSQL:
//!
//! ```text
//! POST /alertmanager (receiver, server)
//! └─ <ns>.alert-reconciler.alerts process (consumer)
//!    └─ reconciler.incident (opened)
//!       └─ debugging run (driven by the supervisor)
//!          ├─ recipe check-errors, recipe broken
//!          └─ report to webex (analysis)
//!             ├─ POST …/messages (client)
//!             └─ reconciler.approval (Alice pressed the card's button)
//!                └─ action run
//!                   ├─ recipe restart-web (its process got TRACEPARENT)
//!                   └─ report to webex (outcome)
//!                      └─ POST …/messages (client)
//! ```
//!
//! Its own test binary: the tracing subscriber is process-global.

mod common;

use std::time::Duration;

use common::*;
use serde_json::{Value, json};
use steadfast_telemetry::{LogFormat, TelemetryConfig};
use steadfast_test_support::eventually_async;
use steadfast_test_support::otlp::{CollectedSpan, Collector};

/// Spans are exported in batches (every 5 s by default).
const SPANS: Duration = Duration::from_secs(30);

fn notification() -> Value {
    json!({
        "version": "4",
        "groupKey": "{}/{severity=\"critical\"}:{service=\"checkout\"}",
        "truncatedAlerts": 0,
        "status": "firing",
        "receiver": "reconciler",
        "groupLabels": {"service": "checkout"},
        "commonLabels": {"alertname": "HighErrorRate", "severity": "critical", "service": "checkout", "pod": "web-9"},
        "commonAnnotations": {"summary": "5xx above 5%"},
        "externalURL": "http://alertmanager:9093",
        "alerts": [{
            "status": "firing",
            "labels": {"alertname": "HighErrorRate", "severity": "critical", "service": "checkout", "pod": "web-9"},
            "annotations": {"summary": "5xx above 5%"},
            "startsAt": "2025-06-01T10:00:00Z",
            "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "http://prometheus:9090/graph",
            "fingerprint": "7a1c0e9a7d2b4400"
        }]
    })
}

fn named<'a>(spans: &'a [CollectedSpan], name: &str) -> Vec<&'a CollectedSpan> {
    spans.iter().filter(|s| s.name == name).collect()
}

/// The one span named `name` whose parent is `parent`.
fn child<'a>(spans: &'a [CollectedSpan], parent: &CollectedSpan, name: &str) -> &'a CollectedSpan {
    let found: Vec<&CollectedSpan> = named(spans, name)
        .into_iter()
        .filter(|s| s.is_child_of(parent))
        .collect();
    assert_eq!(
        found.len(),
        1,
        "one `{name}` under `{}`; spans named so: {:#?}",
        parent.name,
        named(spans, name)
    );
    found[0]
}

fn report<'a>(spans: &'a [CollectedSpan], kind: &str) -> &'a CollectedSpan {
    spans
        .iter()
        .find(|s| {
            s.name == "report to webex"
                && s.attribute("report")
                    .is_some_and(|r| r.starts_with(&format!("{kind}:")))
        })
        .unwrap_or_else(|| panic!("no {kind} report span"))
}

#[tokio::test(flavor = "multi_thread")]
async fn an_alert_to_its_approved_action_is_one_trace() {
    let collector = Collector::start().await;
    let telemetry = steadfast_telemetry::init(&TelemetryConfig {
        service: "reconciler-trace-test".into(),
        level: "warn,steadfast_telemetry=info,steadfast_messaging=info,alert_reconciler=info,webhook_receiver=info".into(),
        format: LogFormat::Json,
        loki_url: None,
        otlp_endpoint: Some(collector.endpoint()),
        otlp_protocol: None,
    })
    .expect("telemetry");

    let h = Harness::standard().await;
    // The action also records the trace context it was given.
    let given = h.dir.join("traceparent.txt");
    h.script(
        "restart-web.sh",
        &format!(
            r#"set -e
echo "$TRACEPARENT" > "{given}"
pod=$("$RECIPE_BIN" get pod)
echo "$pod" >> "$MARKER"
"$RECIPE_BIN" report --status successful --analysis "restarted $pod""#,
            given = given.display()
        ),
    );
    let app = h.start().await;

    let receiver = Receiver::start(&h).await;
    let receiver_url = receiver.alertmanager_url.clone();

    let client = reqwest::Client::new();
    eventually_async("the receiver to accept the notification", WAIT, || async {
        let response = client
            .post(&receiver_url)
            .bearer_auth(ALERTMANAGER_TOKEN)
            .json(&notification())
            .send()
            .await
            .ok()?;
        (response.status() == 200).then_some(())
    })
    .await;
    let analysis = h.message(1).await;
    let button = analysis.submit_actions()[0].1.clone();
    let answers = h.webex.submit(&analysis.id, ALICE, button).await;
    assert_eq!(answers[0].status, 200, "{}", answers[0].body);
    let outcome = h.message(2).await;
    assert!(outcome.markdown.unwrap().contains("restarted web-9"));

    let ns = h.broker.namespace.as_str().to_owned();
    let alerts_process = format!("{ns}.alert-reconciler.alerts process");
    let spans = collector
        .wait_for("the spans from the alert to the action's report", SPANS, |spans| {
            let outcome_sent = spans.iter().any(|s| {
                s.name == "report to webex"
                    && s.attribute("report").is_some_and(|r| r.starts_with("outcome:"))
            });
            let complete = outcome_sent
                && spans.iter().any(|s| s.name == "POST /alertmanager")
                && spans.iter().any(|s| s.name == "recipe restart-web")
                && spans.iter().any(|s| s.name == "POST /webex/attachment-actions")
                // The report's request ends inside it, so is exported with or before it.
                && spans
                    .iter()
                    .filter(|s| s.kind == "client" && s.attribute("url.full").is_some_and(|u| u.ends_with("/messages")))
                    .count()
                    >= 2;
            complete.then(|| spans.to_vec())
        })
        .await;

    // Alert → incident → investigation.
    let request = named(&spans, "POST /alertmanager")
        .into_iter()
        .find(|s| s.attribute("http.response.status_code") == Some("200"))
        .expect("the accepted notification's request");
    assert_eq!(request.kind, "server");
    assert_eq!(
        request.parent_span_id, None,
        "the notification starts the trace"
    );
    let consumed = child(&spans, request, &alerts_process);
    assert_eq!(consumed.kind, "consumer");
    let incident = child(&spans, consumed, "reconciler.incident");
    assert_eq!(incident.attribute("outcome"), Some("opened"));
    let investigation = child(&spans, incident, "debugging run");
    let check = child(&spans, investigation, "recipe check-errors");
    assert_eq!(check.attribute("outcome"), Some("successful"));
    let broken = child(&spans, investigation, "recipe broken");
    assert_eq!(broken.attribute("outcome"), Some("failed"));

    // → chat → approval → action → its report.
    let analysis_report = report(&spans, "analysis");
    assert!(
        analysis_report.is_child_of(investigation),
        "{analysis_report:?}"
    );
    let posted = child(&spans, analysis_report, "POST");
    assert_eq!(posted.kind, "client");
    assert_eq!(posted.attribute("http.response.status_code"), Some("200"));
    let approval = child(&spans, analysis_report, "reconciler.approval");
    assert_eq!(approval.attribute("action"), Some("restart-web"));
    assert_eq!(approval.attribute("actor"), Some("webex:person-alice"));
    let action = child(&spans, approval, "action run");
    let restart = child(&spans, action, "recipe restart-web");
    assert_eq!(restart.attribute("outcome"), Some("successful"));
    let outcome_report = report(&spans, "outcome");
    assert!(outcome_report.is_child_of(action), "{outcome_report:?}");
    child(&spans, outcome_report, "POST");

    // The recipe process was handed its span.
    let handed = std::fs::read_to_string(&given).unwrap();
    assert_eq!(
        handed.trim(),
        format!("00-{}-{}-01", restart.trace_id, restart.span_id)
    );
    for span in [
        consumed,
        incident,
        investigation,
        analysis_report,
        approval,
        action,
        restart,
        outcome_report,
    ] {
        assert_eq!(
            span.trace_id, request.trace_id,
            "{} in the alert's trace",
            span.name
        );
    }

    // The button's callback is a request of its own (Webex sends no trace context), in which
    // the reconciler asks Webex who pressed it.
    let callback = named(&spans, "POST /webex/attachment-actions")[0];
    assert_eq!(callback.attribute("http.response.status_code"), Some("200"));
    let asked = child(&spans, callback, "GET");
    assert!(
        asked
            .attribute("url.full")
            .is_some_and(|u| u.contains("/attachment/actions/")),
        "{asked:?}"
    );

    receiver.stop().await;
    app.stop().await;
    telemetry.shutdown().await;
}

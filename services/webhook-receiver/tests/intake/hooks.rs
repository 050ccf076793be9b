//! A generic source from the config file, verified by an HMAC-SHA256 signature.

use http::HeaderName;
use reqwest::StatusCode;
use serde_json::{Value, json};
use steadfast_service_kit::auth::hmac_sha256_hex;
use steadfast_test_support::TestBroker;
use webhook_receiver::auth::Secret;
use webhook_receiver::hooks::HookSource;

use crate::common::*;

pub fn grafana() -> HookSource {
    let mut source = HookSource::new("grafana", Secret::new("grafana-secret").unwrap());
    source.event_header = Some(HeaderName::from_static("x-grafana-event"));
    source.event_field = Some("/status".into());
    source.id_header = Some(HeaderName::from_static("x-delivery"));
    source
}

#[tokio::test]
async fn a_signed_hook_becomes_an_event_named_by_its_source_and_event() {
    let tb = TestBroker::new().await;
    let mut config = config(&tb);
    config.hooks = vec![grafana()];
    let receiver = Receiver::start(config).await;
    let probe = tb.probe("grafana", &tb.name("webhooks"), "grafana.*").await;
    let body = r#"{"status":"firing","title":"disk full"}"#;
    let signature = format!(
        "sha256={}",
        hmac_sha256_hex(b"grafana-secret", body.as_bytes())
    );

    let (status, answer) = receiver
        .post(
            "/hooks/grafana",
            body,
            &[
                ("content-type", "application/json"),
                ("x-hub-signature-256", &signature),
                ("x-delivery", "delivery-42"),
            ],
        )
        .await;

    assert_eq!(status, StatusCode::OK, "{answer}");
    let (event, raw) = probe.next_event::<Value>(WAIT).await;
    assert_eq!(
        raw.routing_key, "grafana.firing",
        "event name from the body's /status"
    );
    assert_eq!(event.id, "delivery-42");
    assert_eq!(event.event_type, "io.steadfast.hook.grafana.firing");
    assert_eq!(event.source, "urn:steadfast:hook:grafana");
    assert_eq!(
        event.data,
        json!({"status": "firing", "title": "disk full"})
    );
    assert_eq!(raw.header("message-type").as_deref(), Some("grafana"));

    // The event header wins over the body.
    let (status, _) = receiver
        .post(
            "/hooks/grafana",
            body,
            &[
                ("content-type", "application/json"),
                ("x-hub-signature-256", &signature),
                ("x-grafana-event", "test"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(probe.next(WAIT).await.routing_key, "grafana.test");
    receiver.stop().await;
}

//! A real Alertmanager v4 notification becomes one event per alert.

use base64::Engine as _;
use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use steadfast_test_support::TestBroker;
use webhook_receiver::auth::{AlertmanagerAuth, Secret};

use crate::common::*;

fn expected_id(fingerprint: &str, status: &str, starts_at: &str) -> String {
    hex::encode(Sha256::digest(
        format!("{fingerprint}|{status}|{starts_at}").as_bytes(),
    ))
}

fn bearer() -> String {
    format!("Bearer {ALERTMANAGER_TOKEN}")
}

#[tokio::test]
async fn each_alert_becomes_an_event_keyed_by_receiver_and_status() {
    let tb = TestBroker::new().await;
    let receiver = Receiver::start(config(&tb)).await;
    let probe = tb
        .probe("alerts", &tb.name("webhooks"), "alertmanager.#")
        .await;
    let notification: Value = serde_json::from_str(ALERTMANAGER_NOTIFICATION).unwrap();

    let (status, body) = receiver
        .post(
            "/alertmanager",
            ALERTMANAGER_NOTIFICATION,
            &[
                ("content-type", "application/json"),
                ("authorization", &bearer()),
            ],
        )
        .await;

    assert_eq!(status, StatusCode::OK, "{body}");
    let firing_id = expected_id("5c8e2a4d1f3b9e07", "firing", "2026-11-25T11:52:30.123Z");
    let resolved_id = expected_id("a91d0e3c77b2f410", "resolved", "2026-11-25T11:40:00Z");
    assert_eq!(
        body,
        json!({"status": "published", "events": [
            {"id": firing_id, "routing_key": "alertmanager.steadfast.firing", "outcome": "published"},
            {"id": resolved_id, "routing_key": "alertmanager.steadfast.resolved", "outcome": "published"},
        ]})
    );

    for (index, (id, key)) in [
        (&firing_id, "alertmanager.steadfast.firing"),
        (&resolved_id, "alertmanager.steadfast.resolved"),
    ]
    .into_iter()
    .enumerate()
    {
        let (event, raw) = probe.next_event::<Value>(WAIT).await;
        let alert = &notification["alerts"][index];
        assert_eq!(raw.routing_key, key);
        assert_eq!(&event.id, id);
        assert_eq!(event.event_type, "io.prometheus.alertmanager.alert");
        assert_eq!(event.source, "http://alertmanager.monitoring:9093");
        assert_eq!(
            event.subject.as_ref(),
            alert["fingerprint"].as_str().map(str::to_owned).as_ref()
        );
        assert_eq!(raw.header("message-type").as_deref(), Some("alertmanager"));
        assert_eq!(raw.message_id().as_ref(), Some(id));
        // The alert as sent, plus the group's fields; nothing else.
        let mut expected = alert.as_object().unwrap().clone();
        for field in [
            "groupKey",
            "receiver",
            "externalURL",
            "groupLabels",
            "commonLabels",
            "commonAnnotations",
        ] {
            expected.insert(field.into(), notification[field].clone());
        }
        assert_eq!(event.data, Value::Object(expected));
    }
    receiver.stop().await;
}

#[tokio::test]
async fn a_repeated_notification_gives_the_same_ids_so_consumers_can_dedupe() {
    let tb = TestBroker::new().await;
    let receiver = Receiver::start(config(&tb)).await;
    let probe = tb
        .probe("alerts", &tb.name("webhooks"), "alertmanager.#")
        .await;
    let headers = [
        ("content-type", "application/json"),
        ("authorization", &*bearer()),
    ];

    let (first, _) = receiver
        .post("/alertmanager", ALERTMANAGER_NOTIFICATION, &headers)
        .await;
    let (second, _) = receiver
        .post("/alertmanager", ALERTMANAGER_NOTIFICATION, &headers)
        .await;

    assert_eq!((first, second), (StatusCode::OK, StatusCode::OK));
    let mut ids = Vec::new();
    for _ in 0..4 {
        ids.push(probe.next(WAIT).await.message_id().unwrap());
    }
    assert_eq!(ids[0], ids[2]);
    assert_eq!(ids[1], ids[3]);
    assert_ne!(ids[0], ids[1]);
    receiver.stop().await;
}

#[tokio::test]
async fn basic_auth_is_accepted_instead_of_a_bearer_token() {
    let tb = TestBroker::new().await;
    let mut config = config(&tb);
    config.alertmanager = AlertmanagerAuth {
        bearer: None,
        basic: Some(("alertmanager".into(), Secret::new("pa:ss").unwrap())),
    };
    let receiver = Receiver::start(config).await;
    let probe = tb
        .probe("alerts", &tb.name("webhooks"), "alertmanager.#")
        .await;
    let basic = |user_pass: &str| {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(user_pass)
        )
    };

    let (status, _) = receiver
        .post(
            "/alertmanager",
            ALERTMANAGER_NOTIFICATION,
            &[
                ("content-type", "application/json"),
                ("authorization", &basic("alertmanager:pa:ss")),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = receiver
        .post(
            "/alertmanager",
            ALERTMANAGER_NOTIFICATION,
            &[
                ("content-type", "application/json"),
                ("authorization", &basic("alertmanager:wrong")),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["detail"], "missing or invalid credentials");

    assert_eq!(
        probe.next(WAIT).await.routing_key,
        "alertmanager.steadfast.firing"
    );
    assert_eq!(
        probe.next(WAIT).await.routing_key,
        "alertmanager.steadfast.resolved"
    );
    assert!(
        probe.try_next().await.is_none(),
        "the refused notification published nothing"
    );
    receiver.stop().await;
}

//! Real GitLab payloads (Job, Pipeline and Merge Request Hooks, shaped as GitLab documents
//! them) become CloudEvents with CKI's routing keys.

use reqwest::StatusCode;
use serde_json::{Value, json};
use steadfast_events::Envelope;
use steadfast_test_support::TestBroker;
use webhook_receiver::auth::{ProjectSecret, Secret};

use crate::common::*;

fn fixture(text: &str) -> Value {
    serde_json::from_str(text).unwrap()
}

#[tokio::test]
async fn job_hook_becomes_a_cloudevent_with_ckis_routing_key() {
    let tb = TestBroker::new().await;
    let receiver = Receiver::start(config(&tb)).await;
    let exchange = tb.name("webhooks");
    let probe = tb
        .probe("builds", &exchange, "gitlab.com.cki-project.#.build")
        .await;

    let (status, body) = receiver
        .post_gitlab(
            JOB_HOOK,
            &[
                ("x-gitlab-event", "Job Hook"),
                (
                    "x-gitlab-webhook-uuid",
                    "0b6c8bd6-9f3a-4e4c-9a52-1f0c7c8e2d11",
                ),
                (
                    "x-gitlab-event-uuid",
                    "5e1f2d3c-aaaa-4bbb-8ccc-0123456789ab",
                ),
            ],
        )
        .await;

    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body,
        json!({"status": "published", "events": [{
            "id": "0b6c8bd6-9f3a-4e4c-9a52-1f0c7c8e2d11",
            "routing_key": JOB_ROUTING_KEY,
            "outcome": "published"
        }]})
    );
    let (event, raw) = probe.next_event::<Value>(WAIT).await;
    assert_eq!(raw.exchange, exchange);
    assert_eq!(raw.routing_key, JOB_ROUTING_KEY);
    assert_eq!(event.id, "0b6c8bd6-9f3a-4e4c-9a52-1f0c7c8e2d11");
    assert_eq!(event.event_type, "com.gitlab.build");
    assert_eq!(event.source, "https://gitlab.com/cki-project/kernel-ark");
    assert_eq!(event.datacontenttype.as_deref(), Some("application/json"));
    assert_eq!(
        event.data,
        fixture(JOB_HOOK),
        "the body is passed on unchanged"
    );
    // AMQP properties and headers, as consumers (and CKI's) read them.
    assert_eq!(raw.header("message-type").as_deref(), Some("gitlab"));
    assert_eq!(raw.message_id().as_deref(), Some(event.id.as_str()));
    assert_eq!(raw.kind().as_deref(), Some("com.gitlab.build"));
    assert_eq!(raw.app_id().as_deref(), Some("webhook-receiver"));
    assert_eq!(
        raw.content_type().as_deref(),
        Some("application/cloudevents+json")
    );
    assert_eq!(raw.delivery_mode(), Some(2));
    assert!(raw.timestamp().is_some());
    let trace = event.traceparent().expect("a trace context");
    assert_eq!(raw.header("traceparent"), Some(trace.to_string()));
    receiver.stop().await;
}

#[tokio::test]
async fn pipeline_hook_takes_its_host_from_the_instance_header_and_its_id_from_idempotency_key() {
    let tb = TestBroker::new().await;
    let receiver = Receiver::start(config(&tb)).await;
    let probe = tb.probe("all", &tb.name("webhooks"), "#").await;
    let parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    let (status, body) = receiver
        .post_gitlab(
            PIPELINE_HOOK,
            &[
                ("x-gitlab-event", "Pipeline Hook"),
                ("x-gitlab-instance", "https://gitlab.com"),
                ("idempotency-key", "idem-7f3c"),
                ("x-gitlab-webhook-uuid", "not-this-one"),
                ("traceparent", parent),
            ],
        )
        .await;

    assert_eq!(status, StatusCode::OK, "{body}");
    let (event, raw) = probe.next_event::<Value>(WAIT).await;
    assert_eq!(
        raw.routing_key,
        "gitlab.com.cki-project.kernel-ark.pipeline"
    );
    assert_eq!(event.id, "idem-7f3c");
    assert_eq!(event.event_type, "com.gitlab.pipeline");
    assert_eq!(event.source, "https://gitlab.com/cki-project/kernel-ark");
    assert_eq!(event.data, fixture(PIPELINE_HOOK));
    assert_eq!(
        event.traceparent().unwrap().trace_id(),
        "4bf92f3577b34da6a3ce929d0e0e4736",
        "the sender's trace continues"
    );
    receiver.stop().await;
}

#[tokio::test]
async fn merge_request_hook_on_the_cki_route_gets_a_new_uuid_v7_without_id_headers() {
    let tb = TestBroker::new().await;
    let receiver = Receiver::start(config(&tb)).await;
    let probe = tb
        .probe(
            "mr",
            &tb.name("webhooks"),
            "#.kernel.sub.tools.merge_request",
        )
        .await;

    let (status, body) = receiver
        .post(
            "/",
            MERGE_REQUEST_HOOK,
            &[
                ("content-type", "application/json"),
                ("x-gitlab-token", GITLAB_SECRET),
                ("x-gitlab-event", "Merge Request Hook"),
            ],
        )
        .await;

    assert_eq!(status, StatusCode::OK, "{body}");
    let (event, raw) = probe.next_event::<Value>(WAIT).await;
    assert_eq!(
        raw.routing_key,
        "gitlab.example.com.kernel.sub.tools.merge_request"
    );
    assert_eq!(event.event_type, "com.gitlab.merge_request");
    assert_eq!(event.source, "https://gitlab.example.com/kernel/sub/tools");
    let id = uuid::Uuid::parse_str(&event.id).expect("a UUID");
    assert_eq!(id.get_version_num(), 7);
    assert_eq!(body["events"][0]["id"], event.id);
    assert_eq!(event.data, fixture(MERGE_REQUEST_HOOK));
    receiver.stop().await;
}

#[tokio::test]
async fn ids_fall_back_from_webhook_uuid_to_event_uuid() {
    let tb = TestBroker::new().await;
    let receiver = Receiver::start(config(&tb)).await;
    let probe = tb.probe("all", &tb.name("webhooks"), "#").await;

    let (status, _) = receiver
        .post_gitlab(JOB_HOOK, &[("x-gitlab-event-uuid", "event-uuid-1")])
        .await;
    assert_eq!(status, StatusCode::OK);
    let (event, _) = probe.next_event::<Value>(WAIT).await;
    assert_eq!(event.id, "event-uuid-1");
    receiver.stop().await;
}

#[tokio::test]
async fn an_old_job_hook_without_project_uses_the_repository_homepage() {
    let tb = TestBroker::new().await;
    let receiver = Receiver::start(config(&tb)).await;
    let probe = tb.probe("all", &tb.name("webhooks"), "#").await;
    // GitLab before 15.x sent no `project` in Job Hooks, and some fixtures still do not.
    let mut hook = fixture(JOB_HOOK);
    hook.as_object_mut().unwrap().remove("project");
    hook["repository"]["homepage"] = json!("http://192.168.64.1:3005/gitlab-org/gitlab-test");

    let (status, body) = receiver.post_gitlab(&hook.to_string(), &[]).await;

    assert_eq!(status, StatusCode::OK, "{body}");
    let (event, raw): (Envelope<Value>, _) = probe.next_event(WAIT).await;
    assert_eq!(
        raw.routing_key,
        "192.168.64.1:3005.gitlab-org.gitlab-test.build"
    );
    assert_eq!(
        event.source,
        "https://192.168.64.1:3005/gitlab-org/gitlab-test"
    );
    receiver.stop().await;
}

#[tokio::test]
async fn a_project_glob_secret_replaces_the_default_for_its_projects_only() {
    let tb = TestBroker::new().await;
    let mut config = config(&tb);
    config.gitlab.projects = vec![
        ProjectSecret::new("cki-project/**", Secret::new("cki-only-secret").unwrap()).unwrap(),
    ];
    let receiver = Receiver::start(config).await;
    let probe = tb.probe("all", &tb.name("webhooks"), "#").await;
    let post = |body: &'static str, token: &'static str| {
        let receiver = &receiver;
        async move {
            receiver
                .post(
                    "/gitlab",
                    body,
                    &[
                        ("content-type", "application/json"),
                        ("x-gitlab-token", token),
                    ],
                )
                .await
        }
    };

    // cki-project/kernel-ark: its own secret, not the default.
    assert_eq!(post(JOB_HOOK, "cki-only-secret").await.0, StatusCode::OK);
    let (status, body) = post(JOB_HOOK, GITLAB_SECRET).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["detail"], "missing or invalid credentials");
    // kernel/sub/tools: the default, not cki-project's secret.
    assert_eq!(
        post(MERGE_REQUEST_HOOK, GITLAB_SECRET).await.0,
        StatusCode::OK
    );
    assert_eq!(
        post(MERGE_REQUEST_HOOK, "cki-only-secret").await.0,
        StatusCode::UNAUTHORIZED
    );

    // Exactly the two accepted hooks reached the broker.
    let first = probe.next(WAIT).await;
    let second = probe.next(WAIT).await;
    assert_eq!(first.routing_key, JOB_ROUTING_KEY);
    assert_eq!(
        second.routing_key,
        "gitlab.example.com.kernel.sub.tools.merge_request"
    );
    assert!(probe.try_next().await.is_none());
    receiver.stop().await;
}

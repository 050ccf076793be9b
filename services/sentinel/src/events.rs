//! HyperFleet's reconcile CloudEvent, and publishing it the way HyperFleet's broker library
//! does (the whole event as the JSON body, persistent, header `_watermill_message_uuid`), so
//! HyperFleet's own adapters consume it — but confirmed by the broker.

use serde_json::Value as Json;
use steadfast_events::{Envelope, TraceParent, catalogue};
use steadfast_messaging::{PublishError, Publisher};

/// The `source` HyperFleet's Sentinel sets.
pub const SOURCE: &str = "hyperfleet-sentinel";
/// Watermill's message-id header, which HyperFleet's consumers read.
pub const WATERMILL_UUID_HEADER: &str = "_watermill_message_uuid";

/// `com.redhat.hyperfleet.<kind>.reconcile` with `data`; a fresh UUIDv7 id; no `time` and no
/// `subject`, as HyperFleet sends it; `traceparent` when tracing.
pub fn reconcile_event(
    kind: &str,
    data: Json,
    traceparent: Option<&TraceParent>,
) -> Envelope<Json> {
    let mut event = Envelope::new(SOURCE, catalogue::hyperfleet_reconcile_type(kind), data);
    event.time = None;
    if let Some(traceparent) = traceparent {
        event = event.with_traceparent(traceparent);
    }
    event
}

/// Publishes `event` to `exchange` with `routing_key` and waits for the broker's confirm.
pub async fn publish(
    publisher: &Publisher,
    exchange: &str,
    routing_key: &str,
    event: &Envelope<Json>,
) -> Result<(), PublishError> {
    let body = event.to_json()?;
    let mut meta = event.amqp_metadata("sentinel", None);
    meta.headers
        .push((WATERMILL_UUID_HEADER.to_owned(), event.id.clone()));
    publisher
        .publish_raw(
            exchange,
            routing_key,
            &body,
            steadfast_messaging::headers::properties_from(&meta),
        )
        .await
}

/// The `error_type` label of a failed publish: HyperFleet's `publish_error`, or
/// `unroutable` when no queue is bound to the exchange (no adapter would see the event).
pub fn error_type(error: &PublishError) -> &'static str {
    match error {
        PublishError::Unroutable { .. } => "unroutable",
        _ => "publish_error",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_event_is_hyperfleets_byte_for_byte() {
        let data = json!({"id": "c1", "kind": "Cluster", "href": "/api/hyperfleet/v1/clusters/c1", "generation": 2});
        let event = reconcile_event("Cluster", data, None).with_id("0194");
        assert_eq!(
            String::from_utf8(event.to_json().unwrap()).unwrap(),
            r#"{"specversion":"1.0","id":"0194","source":"hyperfleet-sentinel","type":"com.redhat.hyperfleet.cluster.reconcile","datacontenttype":"application/json","data":{"generation":2,"href":"/api/hyperfleet/v1/clusters/c1","id":"c1","kind":"Cluster"}}"#
        );
        let fresh = reconcile_event("NodePool", json!({}), None);
        assert_eq!(
            uuid::Uuid::parse_str(&fresh.id).unwrap().get_version_num(),
            7
        );
        assert_eq!(fresh.event_type, "com.redhat.hyperfleet.nodepool.reconcile");
    }
}

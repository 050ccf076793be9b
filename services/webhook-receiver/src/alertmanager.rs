//! Alertmanager webhook notifications (version 4) → one CloudEvent per alert.
//!
//! A notification carries every alert of its group, firing and resolved; consumers want to
//! act per alert, so each alert becomes its own event:
//! * type `io.prometheus.alertmanager.alert`, routing key
//!   `alertmanager.<receiver>.<firing|resolved>` (the alert's own status);
//! * id = hex SHA-256 of `<fingerprint>|<status>|<startsAt>`: the same alert in the same state
//!   gets the same id however often Alertmanager (or each peer of an HA pair) repeats it, so
//!   consumers deduplicate on the id;
//! * subject = the fingerprint, source = the notification's `externalURL`;
//! * data = the alert as sent, plus the group's `groupKey`, `receiver`, `externalURL`,
//!   `groupLabels`, `commonLabels` and `commonAnnotations`.

use serde_json::{Map, Value};
use steadfast_events::alertmanager::{GROUP_FIELDS, alert_event_id, receiver_segment, routing_key};
use steadfast_events::catalogue::ALERTMANAGER_ALERT;
use steadfast_events::{Envelope, TraceParent};

use crate::event::{RoutingKeyTooLong, check_routing_key};

/// The only notification format Alertmanager has sent since 0.x (`version: "4"`).
pub const SUPPORTED_VERSION: &str = "4";
/// One alert of a notification, ready to publish.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertEvent {
    pub routing_key: String,
    pub envelope: Envelope<Value>,
}

/// Splits a notification into per-alert events. The error is the reason for a 400.
pub fn split(
    notification: &Value,
    trace: &TraceParent,
) -> Result<Vec<AlertEvent>, NotificationError> {
    let version = notification
        .get("version")
        .ok_or(NotificationError::Missing { field: "version" })?;
    if version.as_str() != Some(SUPPORTED_VERSION) {
        return Err(NotificationError::UnsupportedVersion {
            version: version.clone(),
        });
    }
    let receiver = required_str(notification, "receiver")?;
    required_str(notification, "groupKey")?;
    let alerts = notification
        .get("alerts")
        .ok_or(NotificationError::Missing { field: "alerts" })?
        .as_array()
        .ok_or(NotificationError::AlertsNotAnArray)?;
    let source = source(notification, receiver);

    alerts
        .iter()
        .enumerate()
        .map(|(index, alert)| {
            let alert = alert
                .as_object()
                .ok_or(NotificationError::AlertNotAnObject { index })?;
            let field = |field: &'static str| -> Result<&str, NotificationError> {
                alert
                    .get(field)
                    .and_then(Value::as_str)
                    .filter(|s| !s.is_empty())
                    .ok_or(NotificationError::AlertField { index, field })
            };
            let status = field("status")?;
            if status != "firing" && status != "resolved" {
                return Err(NotificationError::AlertStatus {
                    index,
                    status: status.to_owned(),
                });
            }
            let fingerprint = field("fingerprint")?;
            let starts_at = field("startsAt")?;

            let mut data: Map<String, Value> = alert.clone();
            for name in GROUP_FIELDS {
                data.insert(
                    name.to_owned(),
                    notification.get(name).cloned().unwrap_or(Value::Null),
                );
            }
            let routing_key = routing_key(receiver, status);
            check_routing_key(&routing_key)?;
            let envelope = Envelope::new(source.clone(), ALERTMANAGER_ALERT, Value::Object(data))
                .with_id(alert_event_id(fingerprint, status, starts_at))
                .with_subject(fingerprint)
                .with_traceparent(trace);
            Ok(AlertEvent {
                routing_key,
                envelope,
            })
        })
        .collect()
}

fn required_str<'a>(
    notification: &'a Value,
    field: &'static str,
) -> Result<&'a str, NotificationError> {
    notification
        .get(field)
        .and_then(Value::as_str)
        .ok_or(NotificationError::MissingString { field })
}

/// Why a body is not an Alertmanager notification the receiver can split: the reason for a
/// 400.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum NotificationError {
    #[error("invalid Alertmanager notification: missing field `{field}`")]
    Missing { field: &'static str },
    #[error("invalid Alertmanager notification: missing field `{field}` string")]
    MissingString { field: &'static str },
    #[error(
        "unsupported Alertmanager notification version {version}; expected \"{SUPPORTED_VERSION}\""
    )]
    UnsupportedVersion { version: Value },
    #[error("invalid Alertmanager notification: `alerts` must be an array")]
    AlertsNotAnArray,
    #[error("invalid Alertmanager notification: alerts[{index}] must be an object")]
    AlertNotAnObject { index: usize },
    #[error("invalid Alertmanager notification: alerts[{index}] has no `{field}` string")]
    AlertField { index: usize, field: &'static str },
    #[error(
        "invalid Alertmanager notification: alerts[{index}].status is `{status}`; expected `firing` or `resolved`"
    )]
    AlertStatus { index: usize, status: String },
    #[error(transparent)]
    RoutingKey(#[from] RoutingKeyTooLong),
}

/// `externalURL` when it is a usable URI, else a URN naming the receiver.
fn source(notification: &Value, receiver: &str) -> String {
    notification
        .get("externalURL")
        .and_then(Value::as_str)
        .filter(|url| !url.is_empty() && !url.chars().any(char::is_whitespace))
        .map_or_else(
            || format!("urn:alertmanager:{}", receiver_segment(receiver)),
            str::to_owned,
        )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn notification() -> Value {
        json!({
            "version": "4",
            "groupKey": "{}:{alertname=\"ProbeFailure\"}",
            "truncatedAlerts": 0,
            "status": "firing",
            "receiver": "team.pager",
            "groupLabels": {"alertname": "ProbeFailure"},
            "commonLabels": {"alertname": "ProbeFailure"},
            "commonAnnotations": {},
            "externalURL": "http://alertmanager:9093",
            "alerts": [
                {"status": "firing", "labels": {"alertname": "ProbeFailure"}, "annotations": {},
                 "startsAt": "2026-11-25T12:00:00Z", "endsAt": "0001-01-01T00:00:00Z",
                 "generatorURL": "http://prometheus/graph", "fingerprint": "a1b2c3"}
            ]
        })
    }

    #[test]
    fn one_event_per_alert_with_a_stable_id() {
        let trace = TraceParent::new_random();
        let events = split(&notification(), &trace).unwrap();
        assert_eq!(events.len(), 1);
        let event = &events[0];
        assert_eq!(event.routing_key, "alertmanager.team_pager.firing");
        assert_eq!(
            event.envelope.id,
            alert_event_id("a1b2c3", "firing", "2026-11-25T12:00:00Z")
        );
        assert_eq!(event.envelope.subject.as_deref(), Some("a1b2c3"));
        assert_eq!(event.envelope.source, "http://alertmanager:9093");
        assert_eq!(event.envelope.data["receiver"], "team.pager");
        assert_eq!(event.envelope.data["fingerprint"], "a1b2c3");
        assert!(event.envelope.data.get("truncatedAlerts").is_none());
        let again = split(&notification(), &TraceParent::new_random()).unwrap();
        assert_eq!(again[0].envelope.id, event.envelope.id);
    }

    #[test]
    fn bad_notifications_are_explained() {
        let mut n = notification();
        n["version"] = json!("3");
        assert_eq!(
            split(&n, &TraceParent::new_random())
                .unwrap_err()
                .to_string(),
            "unsupported Alertmanager notification version \"3\"; expected \"4\""
        );
        let mut n = notification();
        n["alerts"][0]
            .as_object_mut()
            .unwrap()
            .remove("fingerprint");
        assert_eq!(
            split(&n, &TraceParent::new_random())
                .unwrap_err()
                .to_string(),
            "invalid Alertmanager notification: alerts[0] has no `fingerprint` string"
        );
        let mut n = notification();
        n["alerts"][0]["status"] = json!("pending");
        assert!(
            split(&n, &TraceParent::new_random())
                .unwrap_err()
                .to_string()
                .ends_with("alerts[0].status is `pending`; expected `firing` or `resolved`")
        );
        let mut n = notification();
        n.as_object_mut().unwrap().remove("receiver");
        assert_eq!(
            split(&n, &TraceParent::new_random())
                .unwrap_err()
                .to_string(),
            "invalid Alertmanager notification: missing field `receiver` string"
        );
    }
}

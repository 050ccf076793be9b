//! Alerts as they arrive: one event per alert, and Alertmanager/Grafana notifications split
//! into such events.
//!
//! The webhook-receiver publishes each alert of a notification as its own CloudEvent (type
//! `io.prometheus.alertmanager.alert`, routing key `alertmanager.<receiver>.<status>`) whose data
//! is the alert object plus the notification's group fields (`groupKey`, `receiver`,
//! `externalURL`, `groupLabels`, `commonLabels`, `commonAnnotations`). Its id is derived from
//! the alert's fingerprint, status and start time, so a repeated delivery has the same id.
//! Euphrosyne's `POST /webhook` is split here the same way, so both paths are one.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

pub use steadfast_events::alertmanager::GROUP_FIELDS;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertStatus {
    Firing,
    Resolved,
}

impl AlertStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Firing => "firing",
            Self::Resolved => "resolved",
        }
    }

    fn parse(value: Option<&Value>, field: &str) -> Result<Self, AlertError> {
        match value.and_then(Value::as_str) {
            Some("firing") => Ok(Self::Firing),
            Some("resolved") => Ok(Self::Resolved),
            Some(other) => Err(AlertError::BadStatus {
                field: field.to_owned(),
                value: other.to_owned(),
            }),
            None => Err(AlertError::Missing {
                field: field.to_owned(),
            }),
        }
    }
}

/// Why an alert or notification cannot be used; the message names the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AlertError {
    #[error("alert event data must be a JSON object")]
    EventNotAnObject,
    #[error("the notification must be a JSON object")]
    NotificationNotAnObject,
    #[error("missing `{field}`")]
    Missing { field: String },
    #[error("`groupKey` must not be empty")]
    EmptyGroupKey,
    #[error("`{field}` must be `firing` or `resolved`, not `{value}`")]
    BadStatus { field: String, value: String },
    #[error("`{field}` must be a string")]
    NotAString { field: String },
    #[error("`{field}` must be an object")]
    NotAnObject { field: String },
    #[error("`alerts` is empty")]
    NoAlerts,
    #[error("`alerts` must be an array")]
    AlertsNotAnArray,
    #[error("alerts[{index}] must be an object")]
    AlertNotAnObject { index: usize },
    /// A problem with one alert of a notification.
    #[error("alerts[{index}]: {error}")]
    InAlert {
        index: usize,
        #[source]
        error: Box<AlertError>,
    },
}

/// One alert with the group it was notified in.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertEvent {
    pub status: AlertStatus,
    pub fingerprint: String,
    /// RFC 3339, as Alertmanager sent it (empty when the sender gave none).
    pub starts_at: String,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub group_key: String,
    pub receiver: String,
    pub external_url: Option<String>,
    pub group_labels: BTreeMap<String, String>,
    pub common_labels: BTreeMap<String, String>,
    pub common_annotations: BTreeMap<String, String>,
    /// The alert object alone (Alertmanager's fields and any Grafana extras such as
    /// `dashboardURL`), as recipes receive it in `alerts[]`.
    pub alert: Map<String, Value>,
}

impl AlertEvent {
    /// Reads the data of an alert event.
    pub fn from_data(data: Value) -> Result<Self, AlertError> {
        let Value::Object(mut object) = data else {
            return Err(AlertError::EventNotAnObject);
        };
        let group_key = string_field(&object, "groupKey")?.ok_or_else(|| AlertError::Missing {
            field: "groupKey".into(),
        })?;
        if group_key.is_empty() {
            return Err(AlertError::EmptyGroupKey);
        }
        let receiver = string_field(&object, "receiver")?.unwrap_or_default();
        let external_url = string_field(&object, "externalURL")?;
        let group_labels = string_map(&object, "groupLabels")?;
        let common_labels = string_map(&object, "commonLabels")?;
        let common_annotations = string_map(&object, "commonAnnotations")?;
        for field in GROUP_FIELDS {
            object.remove(field);
        }
        let status = AlertStatus::parse(object.get("status"), "status")?;
        let labels = string_map(&object, "labels")?;
        let annotations = string_map(&object, "annotations")?;
        let starts_at = string_field(&object, "startsAt")?.unwrap_or_default();
        let fingerprint = match string_field(&object, "fingerprint")? {
            Some(f) if !f.is_empty() => f,
            _ => {
                let f = fingerprint_of(&labels);
                object.insert("fingerprint".into(), Value::String(f.clone()));
                f
            }
        };
        Ok(Self {
            status,
            fingerprint,
            starts_at,
            labels,
            annotations,
            group_key,
            receiver,
            external_url,
            group_labels,
            common_labels,
            common_annotations,
            alert: object,
        })
    }

    /// The stable id of this alert event: repeated deliveries of the same alert state share it.
    pub fn event_id(&self) -> String {
        alert_event_id(&self.fingerprint, self.status, &self.starts_at)
    }

    /// `alertname`, or the group key when the alert has none.
    pub fn alertname(&self) -> &str {
        self.labels
            .get("alertname")
            .map_or(self.group_key.as_str(), String::as_str)
    }

    /// The group fields, as recipes receive them at the top of `data.json`.
    pub fn group_data(&self) -> Value {
        serde_json::json!({
            "version": "4",
            "groupKey": self.group_key,
            "receiver": self.receiver,
            "externalURL": self.external_url,
            "groupLabels": self.group_labels,
            "commonLabels": self.common_labels,
            "commonAnnotations": self.common_annotations,
        })
    }
}

/// The id of an alert event, as the webhook-receiver derives it, so an alert reaching us by
/// either path dedupes.
pub fn alert_event_id(fingerprint: &str, status: AlertStatus, starts_at: &str) -> String {
    steadfast_events::alertmanager::alert_event_id(fingerprint, status.as_str(), starts_at)
}

/// Alertmanager's fingerprint is a hash of the label set; senders that omit it get ours,
/// computed the same way in spirit (sorted labels), 16 hex digits.
pub fn fingerprint_of(labels: &BTreeMap<String, String>) -> String {
    let mut hasher = Sha256::new();
    for (name, value) in labels {
        hasher.update(name.as_bytes());
        hasher.update([0xff]);
        hasher.update(value.as_bytes());
        hasher.update([0xff]);
    }
    hex::encode(&hasher.finalize()[..8])
}

/// `alertmanager.<receiver>.<status>`, exactly as the webhook-receiver routes it.
pub fn routing_key(receiver: &str, status: AlertStatus) -> String {
    steadfast_events::alertmanager::routing_key(receiver, status.as_str())
}

/// One alert event to publish: its id, routing key and data.
#[derive(Debug, Clone, PartialEq)]
pub struct SplitAlert {
    pub id: String,
    pub routing_key: String,
    pub status: AlertStatus,
    pub data: Value,
}

/// Splits an Alertmanager (v4) or Grafana webhook notification into one event per alert.
pub fn split_notification(body: Value) -> Result<Vec<SplitAlert>, AlertError> {
    let Value::Object(notification) = body else {
        return Err(AlertError::NotificationNotAnObject);
    };
    let alerts = match notification.get("alerts") {
        Some(Value::Array(alerts)) if !alerts.is_empty() => alerts,
        Some(Value::Array(_)) => return Err(AlertError::NoAlerts),
        Some(_) => return Err(AlertError::AlertsNotAnArray),
        None => {
            return Err(AlertError::Missing {
                field: "alerts".into(),
            });
        }
    };
    let receiver = string_field(&notification, "receiver")?.unwrap_or_default();
    let group_labels = string_map(&notification, "groupLabels")?;
    let group_key = match string_field(&notification, "groupKey")? {
        Some(key) if !key.is_empty() => key,
        // A sender without group keys (a hand-written curl): the group is the receiver and
        // its group labels, which is what Alertmanager's key is made of.
        _ => format!(
            "{{}}:{{{}}}/{receiver}",
            group_labels
                .iter()
                .map(|(k, v)| format!("{k}={v:?}"))
                .collect::<Vec<_>>()
                .join(",")
        ),
    };
    let mut group = Map::new();
    group.insert("groupKey".into(), Value::String(group_key));
    group.insert("receiver".into(), Value::String(receiver.clone()));
    for field in [
        "externalURL",
        "groupLabels",
        "commonLabels",
        "commonAnnotations",
    ] {
        if let Some(value) = notification.get(field) {
            group.insert(field.into(), value.clone());
        }
    }
    alerts
        .iter()
        .enumerate()
        .map(|(index, alert)| {
            let Value::Object(alert) = alert else {
                return Err(AlertError::AlertNotAnObject { index });
            };
            let mut data = alert.clone();
            data.extend(group.clone());
            let event = AlertEvent::from_data(Value::Object(data)).map_err(|error| {
                AlertError::InAlert {
                    index,
                    error: Box::new(error),
                }
            })?;
            let mut data = event.alert.clone();
            data.extend(group.clone());
            Ok(SplitAlert {
                id: event.event_id(),
                routing_key: routing_key(&receiver, event.status),
                status: event.status,
                data: Value::Object(data),
            })
        })
        .collect()
}

fn string_field(object: &Map<String, Value>, field: &str) -> Result<Option<String>, AlertError> {
    match object.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(AlertError::NotAString {
            field: field.to_owned(),
        }),
    }
}

fn string_map(
    object: &Map<String, Value>,
    field: &str,
) -> Result<BTreeMap<String, String>, AlertError> {
    match object.get(field) {
        None | Some(Value::Null) => Ok(BTreeMap::new()),
        Some(Value::Object(map)) => map
            .iter()
            .map(|(k, v)| match v {
                Value::String(s) => Ok((k.clone(), s.clone())),
                _ => Err(AlertError::NotAString {
                    field: format!("{field}.{k}"),
                }),
            })
            .collect(),
        Some(_) => Err(AlertError::NotAnObject {
            field: field.to_owned(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn notification() -> Value {
        json!({
            "version": "4",
            "groupKey": "{}/{severity=\"critical\"}:{alertname=\"HighErrorRate\"}",
            "truncatedAlerts": 0,
            "status": "firing",
            "receiver": "reconciler",
            "groupLabels": {"alertname": "HighErrorRate"},
            "commonLabels": {"alertname": "HighErrorRate", "severity": "critical"},
            "commonAnnotations": {"summary": "5xx above 5%"},
            "externalURL": "http://alertmanager:9093",
            "alerts": [
                {"status": "firing", "labels": {"alertname": "HighErrorRate", "severity": "critical", "pod": "web-1"},
                 "annotations": {"summary": "5xx above 5%"}, "startsAt": "2025-01-01T10:00:00Z",
                 "endsAt": "0001-01-01T00:00:00Z", "generatorURL": "http://prom/graph", "fingerprint": "a1b2c3d4e5f60708"},
                {"status": "resolved", "labels": {"alertname": "HighErrorRate", "severity": "critical", "pod": "web-2"},
                 "annotations": {}, "startsAt": "2025-01-01T09:00:00Z", "endsAt": "2025-01-01T10:00:00Z",
                 "dashboardURL": "http://grafana/d/1"}
            ]
        })
    }

    #[test]
    fn splits_into_one_event_per_alert() {
        let events = split_notification(notification()).unwrap();
        assert_eq!(events.len(), 2);
        assert_eq!(events[0].routing_key, "alertmanager.reconciler.firing");
        assert_eq!(events[1].routing_key, "alertmanager.reconciler.resolved");
        assert_eq!(events[0].data["groupKey"], notification()["groupKey"]);
        assert_eq!(events[0].data["labels"]["pod"], "web-1");
        // Grafana extras reach the recipes; a missing fingerprint is derived from the labels.
        assert_eq!(events[1].data["dashboardURL"], "http://grafana/d/1");
        assert_eq!(events[1].data["fingerprint"].as_str().unwrap().len(), 16);

        let event = AlertEvent::from_data(events[0].data.clone()).unwrap();
        assert_eq!(event.status, AlertStatus::Firing);
        assert_eq!(event.alertname(), "HighErrorRate");
        assert_eq!(event.receiver, "reconciler");
        assert!(!event.alert.contains_key("groupKey"));
        assert_eq!(event.event_id(), events[0].id);
        // Same alert state, same id; another status, another id.
        assert_eq!(
            alert_event_id(
                "a1b2c3d4e5f60708",
                AlertStatus::Firing,
                "2025-01-01T10:00:00Z"
            ),
            events[0].id
        );
        assert_ne!(
            alert_event_id(
                "a1b2c3d4e5f60708",
                AlertStatus::Resolved,
                "2025-01-01T10:00:00Z"
            ),
            events[0].id
        );
    }

    #[test]
    fn bad_input_is_named() {
        let cases = [
            (json!([]), "the notification must be a JSON object"),
            (json!({}), "missing `alerts`"),
            (json!({"alerts": []}), "`alerts` is empty"),
            (json!({"alerts": [1]}), "alerts[0] must be an object"),
            (
                json!({"alerts": [{"labels": {}}]}),
                "alerts[0]: missing `status`",
            ),
            (
                json!({"alerts": [{"status": "pending"}]}),
                "alerts[0]: `status` must be `firing` or `resolved`, not `pending`",
            ),
            (
                json!({"alerts": [{"status": "firing", "labels": {"code": 500}}]}),
                "alerts[0]: `labels.code` must be a string",
            ),
        ];
        for (body, expected) in cases {
            assert_eq!(split_notification(body).unwrap_err().to_string(), expected);
        }
        assert_eq!(
            AlertEvent::from_data(json!({"status": "firing"}))
                .unwrap_err()
                .to_string(),
            "missing `groupKey`"
        );
    }

    #[test]
    fn routing_keys_are_safe() {
        assert_eq!(
            routing_key("team.sre #1", AlertStatus::Firing),
            "alertmanager.team_sre_#1.firing"
        );
        assert_eq!(
            routing_key("", AlertStatus::Resolved),
            "alertmanager.default.resolved"
        );
    }
}

//! The contract of alert events: how an Alertmanager notification's alerts become CloudEvents.
//!
//! The webhook-receiver produces these events and the alert-reconciler produces them too (for
//! Euphrosyne's `POST /webhook`), so both paths must agree on every derived value; they live
//! here, once:
//! * one event per alert, type [`ALERTMANAGER_ALERT`](crate::catalogue::ALERTMANAGER_ALERT);
//! * id = hex SHA-256 of `<fingerprint>|<status>|<startsAt>` ([`alert_event_id`]): the same alert
//!   in the same state has the same id however often it is notified, so consumers deduplicate;
//! * routing key `alertmanager.<receiver>.<firing|resolved>` ([`routing_key`]);
//! * data = the alert object plus the notification's [`GROUP_FIELDS`].

use sha2::{Digest, Sha256};

/// The notification-level fields copied into every alert event's data.
pub const GROUP_FIELDS: [&str; 6] = [
    "groupKey",
    "receiver",
    "externalURL",
    "groupLabels",
    "commonLabels",
    "commonAnnotations",
];

/// The stable id of an alert event: hex SHA-256 of `<fingerprint>|<status>|<startsAt>`.
pub fn alert_event_id(fingerprint: &str, status: &str, starts_at: &str) -> String {
    hex::encode(Sha256::digest(format!(
        "{fingerprint}|{status}|{starts_at}"
    )))
}

/// A receiver name as one routing-key segment: a `.` would split it in two and break
/// consumers' `alertmanager.<receiver>.*` bindings, so dots and whitespace become `_`; an empty
/// name becomes `default`.
pub fn receiver_segment(receiver: &str) -> String {
    if receiver.is_empty() {
        return "default".into();
    }
    receiver
        .chars()
        .map(|c| {
            if c == '.' || c.is_whitespace() {
                '_'
            } else {
                c
            }
        })
        .collect()
}

/// `alertmanager.<receiver>.<status>`.
pub fn routing_key(receiver: &str, status: &str) -> String {
    format!("alertmanager.{}.{status}", receiver_segment(receiver))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_stable_and_distinguish_state() {
        let firing = alert_event_id("a1b2c3", "firing", "2026-11-25T12:00:00Z");
        assert_eq!(firing.len(), 64);
        assert_eq!(
            firing,
            alert_event_id("a1b2c3", "firing", "2026-11-25T12:00:00Z")
        );
        assert_ne!(
            firing,
            alert_event_id("a1b2c3", "resolved", "2026-11-25T12:00:00Z")
        );
        assert_ne!(
            firing,
            alert_event_id("a1b2c3", "firing", "2026-11-25T12:05:00Z")
        );
        // sha256("a1b2c3|firing|2026-11-25T12:00:00Z"), pinned: changing it breaks dedup across
        // a rolling upgrade.
        assert_eq!(
            firing,
            hex::encode(Sha256::digest(b"a1b2c3|firing|2026-11-25T12:00:00Z"))
        );
    }

    #[test]
    fn receivers_become_one_segment() {
        assert_eq!(
            routing_key("team.pager", "firing"),
            "alertmanager.team_pager.firing"
        );
        assert_eq!(
            routing_key("on call", "resolved"),
            "alertmanager.on_call.resolved"
        );
        assert_eq!(routing_key("", "firing"), "alertmanager.default.firing");
    }
}

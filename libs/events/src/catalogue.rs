//! The event types Steadfast services exchange, and the `message-type` header values.
//!
//! Producers and consumers name types through these constants so a rename is a compile error,
//! not a silently ignored message. Typed payloads live with the service that owns them; this
//! module only holds the names that cross service boundaries.

/// `message-type` header of events made from GitLab webhooks (CKI's value).
pub const MESSAGE_TYPE_GITLAB: &str = "gitlab";
/// `message-type` header of events made from Alertmanager notifications.
pub const MESSAGE_TYPE_ALERTMANAGER: &str = "alertmanager";
/// `message-type` header of Steadfast's own notifications.
pub const MESSAGE_TYPE_STEADFAST: &str = "steadfast";

/// Prefix of GitLab event types: `com.gitlab.<object_kind>`.
pub const GITLAB_TYPE_PREFIX: &str = "com.gitlab.";
/// One event per alert of an Alertmanager notification.
pub const ALERTMANAGER_ALERT: &str = "io.prometheus.alertmanager.alert";
/// A pipeline-herder decision, published to `<ns>.notifications`.
pub const HERDER_DECISION: &str = "io.steadfast.pipeline-herder.decision";

/// The CloudEvent type for a GitLab `object_kind`.
pub fn gitlab_type(object_kind: &str) -> String {
    format!("{GITLAB_TYPE_PREFIX}{object_kind}")
}

/// HyperFleet's reconcile event type for a resource kind (`Cluster` → `com.redhat.hyperfleet.cluster.reconcile`).
pub fn hyperfleet_reconcile_type(kind: &str) -> String {
    format!(
        "com.redhat.hyperfleet.{}.reconcile",
        kind.to_ascii_lowercase()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_type_names() {
        assert_eq!(gitlab_type("build"), "com.gitlab.build");
        assert_eq!(
            hyperfleet_reconcile_type("NodePool"),
            "com.redhat.hyperfleet.nodepool.reconcile"
        );
    }
}

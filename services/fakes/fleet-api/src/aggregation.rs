//! The resource status HyperFleet computes from adapter reports: `Reconciled`,
//! `LastKnownReconciled`, and one `<Adapter>Successful` condition per required adapter that has
//! reported.
//!
//! Pure and clock-free, as HyperFleet's (`pkg/services/aggregation.go`): the reference time is
//! the resource's `updated_time`, so the same inputs always give the same conditions.
//!
//! * `Reconciled` is True when every required adapter reports `Available=True` at the
//!   resource's current generation (while deleting: `Finalized=True` instead — HyperFleet's
//!   adapters report `Available=False` once their resources are gone). Its
//!   `observed_generation` is always the resource generation; `last_updated_time` is the oldest
//!   report at the current generation (any `Available` value), or `updated_time` if none;
//!   `last_transition_time` moves only when the status flips (to `updated_time` when a
//!   generation bump turns it False).
//! * `LastKnownReconciled` is True when every required adapter reports `Available=True` at one
//!   common generation, and stays True ("sticky") while adapters move to a newer generation,
//!   until one reports False at the generation it tracks.
//! * `<Adapter>Successful` mirrors that adapter's `Available` (`my-adapter` →
//!   `MyAdapterSuccessful`).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub const RECONCILED: &str = "Reconciled";
pub const LAST_KNOWN_RECONCILED: &str = "LastKnownReconciled";

/// A condition of a cluster's or nodepool's `status.conditions`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResourceCondition {
    #[serde(rename = "type")]
    pub kind: String,
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    pub observed_generation: i32,
    pub created_time: DateTime<Utc>,
    pub last_updated_time: DateTime<Utc>,
    pub last_transition_time: DateTime<Utc>,
}

/// A condition in an adapter's report, as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AdapterCondition {
    #[serde(rename = "type")]
    pub kind: String,
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    pub last_transition_time: DateTime<Utc>,
}

/// An adapter's latest stored report.
#[derive(Debug, Clone, PartialEq)]
pub struct AdapterReport {
    pub adapter: String,
    pub observed_generation: i32,
    pub last_report_time: DateTime<Utc>,
    pub conditions: Vec<AdapterCondition>,
}

impl AdapterReport {
    pub fn condition(&self, kind: &str) -> Option<&AdapterCondition> {
        self.conditions.iter().find(|c| c.kind == kind)
    }
}

/// What the aggregation reads.
pub struct Input<'a> {
    pub generation: i32,
    /// The resource's `updated_time`.
    pub reference_time: DateTime<Utc>,
    pub deleting: bool,
    pub previous: &'a [ResourceCondition],
    pub required_adapters: &'a [String],
    pub reports: &'a [AdapterReport],
}

/// One required adapter's `Available` signal, when it counts.
struct Snapshot<'a> {
    adapter: &'a str,
    observed_time: DateTime<Utc>,
    observed_generation: i32,
    available: bool,
    finalized: bool,
    reason: Option<&'a String>,
    message: Option<&'a String>,
}

/// The conditions for `input`, in HyperFleet's order.
pub fn aggregate(input: &Input<'_>) -> Vec<ResourceCondition> {
    let snapshots = snapshots(input);
    let previous = |kind: &str| input.previous.iter().find(|c| c.kind == kind);
    let mut conditions = vec![
        reconciled(input, &snapshots, previous(RECONCILED)),
        last_known_reconciled(input, &snapshots, previous(LAST_KNOWN_RECONCILED)),
    ];
    for snapshot in &snapshots {
        let kind = adapter_condition_type(snapshot.adapter);
        let prev = previous(&kind);
        let status = status_word(snapshot.available);
        conditions.push(ResourceCondition {
            status: status.into(),
            reason: snapshot.reason.cloned(),
            message: snapshot.message.cloned(),
            observed_generation: snapshot.observed_generation,
            created_time: prev.map_or(input.reference_time, |p| p.created_time),
            last_updated_time: snapshot.observed_time,
            last_transition_time: match prev {
                Some(p) if p.status == status => p.last_transition_time,
                _ => snapshot.observed_time,
            },
            kind,
        });
    }
    conditions
}

/// `adapter1` → `Adapter1Successful`, `my-adapter` → `MyAdapterSuccessful`.
pub fn adapter_condition_type(adapter: &str) -> String {
    let mut out = String::with_capacity(adapter.len() + 10);
    for part in adapter.split('-').filter(|p| !p.is_empty()) {
        let mut chars = part.chars();
        if let Some(first) = chars.next() {
            out.extend(first.to_uppercase());
            out.push_str(chars.as_str());
        }
    }
    out.push_str("Successful");
    out
}

fn status_word(ok: bool) -> &'static str {
    if ok { "True" } else { "False" }
}

/// The required adapters' reports that count, in the configured order: not ahead of the
/// resource, with an `Available` of True or False.
fn snapshots<'a>(input: &Input<'a>) -> Vec<Snapshot<'a>> {
    input
        .required_adapters
        .iter()
        .filter_map(|name| {
            let report = input.reports.iter().find(|r| &r.adapter == name)?;
            if report.observed_generation > input.generation {
                return None;
            }
            let available = report.condition("Available")?;
            if available.status != "True" && available.status != "False" {
                return None;
            }
            Some(Snapshot {
                adapter: name,
                observed_time: report.last_report_time,
                observed_generation: report.observed_generation,
                available: available.status == "True",
                finalized: report
                    .condition("Finalized")
                    .is_some_and(|c| c.status == "True"),
                reason: available.reason.as_ref(),
                message: available.message.as_ref(),
            })
        })
        .collect()
}

impl Snapshot<'_> {
    /// Whether this adapter is done with the resource: applied and available, or — while the
    /// resource is being deleted — finalized (its objects are gone, so it is not "available").
    fn done(&self, deleting: bool) -> bool {
        if deleting {
            self.finalized
        } else {
            self.available
        }
    }
}

fn find<'s, 'a>(snapshots: &'s [Snapshot<'a>], adapter: &str) -> Option<&'s Snapshot<'a>> {
    snapshots.iter().find(|s| s.adapter == adapter)
}

fn reconciled(
    input: &Input<'_>,
    snapshots: &[Snapshot<'_>],
    prev: Option<&ResourceCondition>,
) -> ResourceCondition {
    let generation = input.generation;
    let all = !input.required_adapters.is_empty()
        && input.required_adapters.iter().all(|name| {
            find(snapshots, name)
                .is_some_and(|s| s.observed_generation == generation && s.done(input.deleting))
        });
    let status = status_word(all);
    let at_generation = input
        .required_adapters
        .iter()
        .filter_map(|name| find(snapshots, name))
        .filter(|s| s.observed_generation == generation)
        .map(|s| s.observed_time)
        .min();
    let last_updated = at_generation.unwrap_or(input.reference_time);
    let last_transition = match prev {
        None => last_updated,
        Some(p) if p.status == status => p.last_transition_time,
        // A generation bump turns a True Reconciled False at the moment of the change.
        Some(p) if p.status == "True" && generation > p.observed_generation => input.reference_time,
        Some(_) => last_updated,
    };
    let (reason, message) = if all {
        (
            "ReconciledAll".to_owned(),
            if input.deleting {
                "All required adapters reported Finalized=True at the current generation".to_owned()
            } else {
                "All required adapters reported Available=True at the current generation".to_owned()
            },
        )
    } else {
        let mut missing: Vec<&str> = Vec::new();
        let mut reporting: Vec<&str> = Vec::new();
        for name in input.required_adapters {
            match find(snapshots, name) {
                Some(s) => {
                    reporting.push(name);
                    if !s.done(input.deleting) || s.observed_generation != generation {
                        missing.push(name);
                    }
                }
                None => missing.push(name),
            }
        }
        missing.sort_unstable();
        reporting.sort_unstable();
        (
            "MissingRequiredAdapters".to_owned(),
            format!(
                "Required adapters not reporting Available=True: [{}]. Currently reporting: [{}]",
                missing.join(", "),
                reporting.join(", ")
            ),
        )
    };
    ResourceCondition {
        kind: RECONCILED.into(),
        status: status.into(),
        reason: Some(reason),
        message: Some(message),
        observed_generation: generation,
        created_time: prev.map_or(input.reference_time, |p| p.created_time),
        last_updated_time: last_updated,
        last_transition_time: last_transition,
    }
}

fn last_known_reconciled(
    input: &Input<'_>,
    snapshots: &[Snapshot<'_>],
    prev: Option<&ResourceCondition>,
) -> ResourceCondition {
    let required = input.required_adapters;
    let reported: Vec<&Snapshot<'_>> = required
        .iter()
        .filter_map(|name| find(snapshots, name))
        .collect();
    let everyone_reported = !required.is_empty() && reported.len() == required.len();
    let all_true = everyone_reported && reported.iter().all(|s| s.available);
    let common_generation = reported.first().map(|s| s.observed_generation);
    let mixed = reported
        .iter()
        .any(|s| Some(s.observed_generation) != common_generation);
    let was_true = prev.is_some_and(|p| p.status == "True");

    let status = if !everyone_reported {
        false
    } else if all_true {
        !mixed || was_true
    } else {
        // Sticky: a failure only counts at the generation the condition tracks.
        was_true
            && prev.is_some_and(|p| {
                !reported
                    .iter()
                    .any(|s| !s.available && s.observed_generation == p.observed_generation)
            })
    };

    let observed_generation = if status {
        match (all_true && !mixed, prev) {
            (true, _) => common_generation.unwrap_or(1),
            (false, Some(p)) => p.observed_generation,
            (false, None) => 1,
        }
    } else {
        reported
            .iter()
            .map(|s| s.observed_generation)
            .max()
            .or(prev.map(|p| p.observed_generation))
            .unwrap_or(1)
    };

    let last_updated = if required.is_empty() {
        input.reference_time
    } else if all_true && !mixed {
        reported
            .iter()
            .map(|s| s.observed_time)
            .min()
            .unwrap_or(input.reference_time)
    } else if !status {
        let failing_at_tracked = reported
            .iter()
            .any(|s| !s.available && s.observed_generation == observed_generation);
        let at_tracked = reported
            .iter()
            .filter(|s| s.observed_generation == observed_generation)
            .map(|s| s.observed_time)
            .min();
        match (failing_at_tracked, at_tracked, prev) {
            (true, Some(time), _) => time,
            (_, _, Some(p)) => p.last_updated_time,
            _ => input.reference_time,
        }
    } else {
        prev.map_or(input.reference_time, |p| p.last_updated_time)
    };

    let status_text = status_word(status);
    let (reason, message) = if status {
        (
            "AllAdaptersReconciled",
            "All required adapters report Available=True for the tracked generation",
        )
    } else {
        (
            "AdaptersNotReconciled",
            "Required adapters do not report a consistent Available=True state",
        )
    };
    ResourceCondition {
        kind: LAST_KNOWN_RECONCILED.into(),
        status: status_text.into(),
        reason: Some(reason.into()),
        message: Some(message.into()),
        observed_generation,
        created_time: prev.map_or(input.reference_time, |p| p.created_time),
        last_updated_time: last_updated,
        last_transition_time: match prev {
            Some(p) if p.status == status_text => p.last_transition_time,
            _ => last_updated,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn report(adapter: &str, generation: i32, at: &str, available: &str) -> AdapterReport {
        AdapterReport {
            adapter: adapter.into(),
            observed_generation: generation,
            last_report_time: t(at),
            conditions: vec![AdapterCondition {
                kind: "Available".into(),
                status: available.into(),
                reason: Some("r".into()),
                message: None,
                last_transition_time: t(at),
            }],
        }
    }

    fn run(
        generation: i32,
        updated: &str,
        previous: &[ResourceCondition],
        reports: &[AdapterReport],
    ) -> Vec<ResourceCondition> {
        let required = vec!["adapter1".to_owned(), "dns-check".to_owned()];
        aggregate(&Input {
            generation,
            reference_time: t(updated),
            deleting: false,
            previous,
            required_adapters: &required,
            reports,
        })
    }

    #[test]
    fn new_resource_is_not_reconciled_from_its_update_time() {
        let c = run(1, "2026-01-01T00:00:00Z", &[], &[]);
        assert_eq!(c.len(), 2);
        assert_eq!(
            (c[0].kind.as_str(), c[0].status.as_str()),
            ("Reconciled", "False")
        );
        assert_eq!(c[0].observed_generation, 1);
        assert_eq!(c[0].last_updated_time, t("2026-01-01T00:00:00Z"));
        assert_eq!(
            c[0].message.as_deref(),
            Some(
                "Required adapters not reporting Available=True: [adapter1, dns-check]. Currently reporting: []"
            )
        );
        assert_eq!(c[1].kind, "LastKnownReconciled");
        assert_eq!(c[1].status, "False");
    }

    #[test]
    fn all_available_at_current_generation_reconciles_with_the_oldest_report_time() {
        let reports = [
            report("adapter1", 1, "2026-01-01T00:00:20Z", "True"),
            report("dns-check", 1, "2026-01-01T00:00:10Z", "True"),
        ];
        let c = run(1, "2026-01-01T00:00:00Z", &[], &reports);
        assert_eq!(c[0].status, "True");
        assert_eq!(c[0].last_updated_time, t("2026-01-01T00:00:10Z"));
        assert_eq!(c[1].status, "True");
        assert_eq!(c[2].kind, "Adapter1Successful");
        assert_eq!(c[3].kind, "DnsCheckSuccessful");
        assert_eq!(c[3].status, "True");
    }

    #[test]
    fn a_generation_bump_unreconciles_and_last_known_stays_true() {
        let reports = [
            report("adapter1", 1, "2026-01-01T00:00:20Z", "True"),
            report("dns-check", 1, "2026-01-01T00:00:10Z", "True"),
        ];
        let before = run(1, "2026-01-01T00:00:00Z", &[], &reports);
        let after = run(2, "2026-01-01T01:00:00Z", &before, &reports);
        assert_eq!(after[0].status, "False");
        assert_eq!(after[0].observed_generation, 2);
        assert_eq!(after[0].last_transition_time, t("2026-01-01T01:00:00Z"));
        assert_eq!(after[0].last_updated_time, t("2026-01-01T01:00:00Z"));
        assert_eq!(after[1].status, "True", "sticky across generations");
        assert_eq!(after[1].observed_generation, 1);
        // One adapter catches up: still not reconciled, last_updated is its report.
        let reports = [
            report("adapter1", 2, "2026-01-01T01:00:30Z", "True"),
            report("dns-check", 1, "2026-01-01T00:00:10Z", "True"),
        ];
        let partial = run(2, "2026-01-01T01:00:00Z", &after, &reports);
        assert_eq!(partial[0].status, "False");
        assert_eq!(partial[0].last_updated_time, t("2026-01-01T01:00:30Z"));
        assert_eq!(partial[1].status, "True");
        // A failure at the tracked generation ends LastKnownReconciled.
        let reports = [
            report("adapter1", 1, "2026-01-01T01:00:40Z", "False"),
            report("dns-check", 1, "2026-01-01T00:00:10Z", "True"),
        ];
        let failed = run(2, "2026-01-01T01:00:00Z", &partial, &reports);
        assert_eq!(failed[1].status, "False");
    }

    #[test]
    fn reports_ahead_of_the_resource_or_without_available_do_not_count() {
        let mut unknown = report("dns-check", 1, "2026-01-01T00:00:10Z", "Unknown");
        unknown.adapter = "dns-check".into();
        let reports = [
            report("adapter1", 5, "2026-01-01T00:00:20Z", "True"),
            unknown,
        ];
        let c = run(1, "2026-01-01T00:00:00Z", &[], &reports);
        assert_eq!(c.len(), 2, "no per-adapter conditions: {c:?}");
        assert_eq!(c[0].status, "False");
    }

    #[test]
    fn deletion_needs_finalized() {
        let mut a = report("adapter1", 2, "2026-01-01T00:00:20Z", "True");
        let mut b = report("dns-check", 2, "2026-01-01T00:00:20Z", "True");
        let required = vec!["adapter1".to_owned(), "dns-check".to_owned()];
        let input = |reports: &[AdapterReport]| {
            aggregate(&Input {
                generation: 2,
                reference_time: t("2026-01-01T00:00:00Z"),
                deleting: true,
                previous: &[],
                required_adapters: &required,
                reports,
            })
        };
        assert_eq!(
            input(&[a.clone(), b.clone()])[0].status,
            "False",
            "Available alone does not finish a deletion"
        );
        for r in [&mut a, &mut b] {
            // As HyperFleet's example adapter reports once its objects are deleted.
            r.conditions
                .iter_mut()
                .find(|c| c.kind == "Available")
                .unwrap()
                .status = "False".into();
            r.conditions.push(AdapterCondition {
                kind: "Finalized".into(),
                status: "True".into(),
                reason: None,
                message: None,
                last_transition_time: r.last_report_time,
            });
        }
        assert_eq!(input(&[a, b])[0].status, "True");
    }

    #[test]
    fn adapter_condition_names() {
        assert_eq!(adapter_condition_type("adapter1"), "Adapter1Successful");
        assert_eq!(adapter_condition_type("my-adapter"), "MyAdapterSuccessful");
        assert_eq!(adapter_condition_type("validator"), "ValidatorSuccessful");
    }
}

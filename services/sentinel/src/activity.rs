//! What the sentinel last did for each resource, kept in memory for the read API
//! (`GET /api/resources`): when it last published for a resource, and why it did or did not.
//!
//! The decisions stay stateless — every cycle decides from the API's answer alone; this is
//! only a record of them, lost on restart. Bounded: the resources the last cycle saw (one
//! that has left the API, the selector or the shard is dropped when the next complete cycle
//! has not seen it), and never more than [`MAX_TRACKED`] of them.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value as Json;

/// The most resources remembered: ~30 MiB at worst. Past it new resources go unrecorded
/// (and a warning says so) until a cycle drops some that disappeared.
pub const MAX_TRACKED: usize = 100_000;

/// Why a decided publish has no confirm: the broker went away earlier in the cycle.
pub const NOT_ATTEMPTED: &str =
    "not attempted: the broker is unavailable; the next cycle publishes it again";

/// The decision of the last evaluation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DecisionRecord {
    /// Whether the CEL decision said to publish.
    pub publish: bool,
    /// HyperFleet's reason text (`message decision matched`, `... result is false`,
    /// `... evaluation failed`).
    pub reason: &'static str,
    /// The failing expression and why, when the evaluation failed.
    pub error: Option<String>,
}

/// What publishing the event of one evaluation came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Published {
    /// Nothing to publish (the decision said no, or failed).
    Nothing,
    /// Confirmed by the broker at that time.
    At(DateTime<Utc>),
    /// Not confirmed, with why.
    Failed(String),
}

/// One evaluation of one resource, as the poller saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observation {
    pub id: String,
    pub cluster_id: Option<String>,
    pub generation: Option<i64>,
    pub decision: DecisionRecord,
    pub evaluated_at: DateTime<Utc>,
    pub published: Published,
}

impl Observation {
    /// An evaluation of `resource` (the API's JSON) at `at`; nothing published yet. A
    /// nodepool's cluster is its `owner_references.id`.
    pub fn of(resource: &Json, id: &str, decision: DecisionRecord, at: DateTime<Utc>) -> Self {
        Self {
            id: id.to_owned(),
            cluster_id: resource
                .pointer("/owner_references/id")
                .and_then(Json::as_str)
                .map(str::to_owned),
            generation: resource.get("generation").and_then(Json::as_i64),
            decision,
            evaluated_at: at,
            published: Published::Nothing,
        }
    }
}

/// One resource in the read API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ResourceActivity {
    /// The resource type polled: `clusters` or `nodepools`.
    pub kind: String,
    pub id: String,
    /// A nodepool's cluster; `null` for clusters.
    pub cluster_id: Option<String>,
    /// The generation the last evaluation saw.
    pub generation: Option<i64>,
    pub decision: DecisionRecord,
    /// Why the last decided publish was not confirmed; `null` once one is, and when the last
    /// decision was not to publish.
    pub publish_error: Option<String>,
    /// The last confirmed publish since the sentinel started.
    pub last_published_at: Option<DateTime<Utc>>,
    pub last_evaluated_at: DateTime<Utc>,
}

/// The poll loop as the read API shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct PollSummary {
    /// When the last complete cycle ended.
    pub last_cycle_at: Option<DateTime<Utc>>,
    /// Complete cycles since start (failed ones are not counted).
    pub cycles: u64,
}

/// The body of `GET /api/resources`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Snapshot {
    pub resources: Vec<ResourceActivity>,
    pub poll: PollSummary,
}

/// Which resources to show; `None` is any.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    pub kind: Option<String>,
    pub id: Option<String>,
}

/// A resource as kept: its kind and id are the record's and the map's, so not repeated.
struct Entry {
    cluster_id: Option<String>,
    generation: Option<i64>,
    decision: DecisionRecord,
    publish_error: Option<String>,
    last_published_at: Option<DateTime<Utc>>,
    last_evaluated_at: DateTime<Utc>,
    /// The cycle that last saw the resource.
    seen: u64,
}

struct Inner {
    /// Keyed by id; one sentinel polls one kind, so this is also "by kind then id".
    entries: BTreeMap<String, Entry>,
    /// Cycles begun, complete or not.
    begun: u64,
    /// Resources this cycle could not record for want of room.
    untracked: u64,
    poll: PollSummary,
}

/// The record, shared by the poller (writing) and the read API (reading).
#[derive(Clone)]
pub struct Activity {
    kind: Arc<str>,
    capacity: usize,
    inner: Arc<Mutex<Inner>>,
}

impl Activity {
    /// An empty record of `kind` (the resource type polled), holding [`MAX_TRACKED`] at most.
    pub fn new(kind: &str) -> Self {
        Self::with_capacity(kind, MAX_TRACKED)
    }

    pub fn with_capacity(kind: &str, capacity: usize) -> Self {
        Self {
            kind: kind.into(),
            capacity,
            inner: Arc::new(Mutex::new(Inner {
                entries: BTreeMap::new(),
                begun: 0,
                untracked: 0,
                poll: PollSummary {
                    last_cycle_at: None,
                    cycles: 0,
                },
            })),
        }
    }

    pub fn kind(&self) -> &str {
        &self.kind
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // The record is only ever updated whole under the lock; a panic elsewhere leaves it
        // consistent, so a poisoned lock is still usable.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A cycle starts: what it records is marked as seen by it.
    pub fn begin_cycle(&self) {
        let mut inner = self.lock();
        inner.begun += 1;
        inner.untracked = 0;
    }

    /// Records a page's evaluations (and their publishes).
    pub fn record(&self, observations: Vec<Observation>) {
        let mut inner = self.lock();
        let seen = inner.begun;
        for observation in observations {
            let Observation {
                id,
                cluster_id,
                generation,
                decision,
                evaluated_at,
                published,
            } = observation;
            let last_published_at = match inner.entries.get(&id) {
                Some(known) => known.last_published_at,
                None if inner.entries.len() >= self.capacity => {
                    inner.untracked += 1;
                    continue;
                }
                None => None,
            };
            let (last_published_at, publish_error) = match published {
                Published::Nothing => (last_published_at, None),
                Published::At(at) => (Some(at), None),
                Published::Failed(error) => (last_published_at, Some(error)),
            };
            inner.entries.insert(
                id,
                Entry {
                    cluster_id,
                    generation,
                    decision,
                    publish_error,
                    last_published_at,
                    last_evaluated_at: evaluated_at,
                    seen,
                },
            );
        }
    }

    /// A cycle went through every page: resources it did not see are dropped. Returns how many
    /// resources it could not record for want of room. (A failed cycle drops nothing: it did
    /// not see the whole list.)
    pub fn complete_cycle(&self, at: DateTime<Utc>) -> u64 {
        let mut inner = self.lock();
        let current = inner.begun;
        inner.entries.retain(|_, entry| entry.seen == current);
        inner.poll.cycles += 1;
        inner.poll.last_cycle_at = Some(at);
        inner.untracked
    }

    /// The resources `filter` selects, by kind then id, and the poll summary.
    pub fn snapshot(&self, filter: &Filter) -> Snapshot {
        let inner = self.lock();
        let shown = |(id, entry): (&String, &Entry)| ResourceActivity {
            kind: self.kind.to_string(),
            id: id.clone(),
            cluster_id: entry.cluster_id.clone(),
            generation: entry.generation,
            decision: entry.decision.clone(),
            publish_error: entry.publish_error.clone(),
            last_published_at: entry.last_published_at,
            last_evaluated_at: entry.last_evaluated_at,
        };
        let resources = if filter.kind.as_deref().is_some_and(|k| k != &*self.kind) {
            Vec::new()
        } else if let Some(id) = &filter.id {
            inner
                .entries
                .get_key_value(id)
                .map(shown)
                .into_iter()
                .collect()
        } else {
            inner.entries.iter().map(shown).collect()
        };
        Snapshot {
            resources,
            poll: inner.poll,
        }
    }

    pub fn len(&self) -> usize {
        self.lock().entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decision::{REASON_FALSE, REASON_MATCHED};
    use serde_json::json;

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + seconds, 0).unwrap()
    }

    fn seen(id: &str, publish: bool, when: i64, published: Published) -> Observation {
        let decision = DecisionRecord {
            publish,
            reason: if publish {
                REASON_MATCHED
            } else {
                REASON_FALSE
            },
            error: None,
        };
        let mut observation = Observation::of(
            &json!({"id": id, "generation": 3, "owner_references": {"id": "c-1"}}),
            id,
            decision,
            at(when),
        );
        observation.published = published;
        observation
    }

    #[test]
    fn a_skip_keeps_the_last_publish_time_and_a_failure_says_why() {
        let activity = Activity::new("nodepools");
        activity.begin_cycle();
        activity.record(vec![seen("p", true, 1, Published::At(at(2)))]);
        activity.complete_cycle(at(3));
        activity.begin_cycle();
        activity.record(vec![seen("p", false, 10, Published::Nothing)]);
        let p = activity.snapshot(&Filter::default()).resources[0].clone();
        assert_eq!(p.last_published_at, Some(at(2)));
        assert_eq!(p.last_evaluated_at, at(10));
        assert_eq!(p.cluster_id.as_deref(), Some("c-1"));
        assert_eq!(p.generation, Some(3));
        assert!(!p.decision.publish);

        activity.record(vec![seen(
            "p",
            true,
            20,
            Published::Failed(NOT_ATTEMPTED.into()),
        )]);
        let p = activity.snapshot(&Filter::default()).resources[0].clone();
        assert_eq!(p.publish_error.as_deref(), Some(NOT_ATTEMPTED));
        assert_eq!(p.last_published_at, Some(at(2)));
    }

    #[test]
    fn unseen_resources_go_at_the_end_of_a_complete_cycle_only() {
        let activity = Activity::new("clusters");
        activity.begin_cycle();
        activity.record(vec![
            seen("a", false, 1, Published::Nothing),
            seen("b", false, 1, Published::Nothing),
        ]);
        activity.complete_cycle(at(2));
        // A cycle that fails after seeing only `a` drops nothing.
        activity.begin_cycle();
        activity.record(vec![seen("a", false, 3, Published::Nothing)]);
        assert_eq!(activity.len(), 2);
        activity.begin_cycle();
        activity.record(vec![seen("a", false, 4, Published::Nothing)]);
        activity.complete_cycle(at(5));
        let snapshot = activity.snapshot(&Filter::default());
        assert_eq!(
            snapshot
                .resources
                .iter()
                .map(|r| r.id.as_str())
                .collect::<Vec<_>>(),
            ["a"]
        );
        assert_eq!(
            snapshot.poll,
            PollSummary {
                last_cycle_at: Some(at(5)),
                cycles: 2
            }
        );
    }

    #[test]
    fn past_the_cap_new_resources_are_counted_not_kept() {
        let activity = Activity::with_capacity("clusters", 2);
        activity.begin_cycle();
        activity.record(vec![
            seen("a", false, 1, Published::Nothing),
            seen("b", false, 1, Published::Nothing),
            seen("c", false, 1, Published::Nothing),
        ]);
        // A known one is still updated.
        activity.record(vec![seen("a", true, 2, Published::At(at(2)))]);
        assert_eq!(activity.complete_cycle(at(3)), 1);
        assert_eq!(activity.len(), 2);
        assert_eq!(
            activity.snapshot(&Filter::default()).resources[0].last_published_at,
            Some(at(2))
        );
    }

    #[test]
    fn filters_select_by_kind_and_exact_id() {
        let activity = Activity::new("clusters");
        activity.begin_cycle();
        activity.record(vec![
            seen("b", false, 1, Published::Nothing),
            seen("a", false, 1, Published::Nothing),
        ]);
        let ids = |filter: Filter| {
            activity
                .snapshot(&filter)
                .resources
                .into_iter()
                .map(|r| r.id)
                .collect::<Vec<_>>()
        };
        assert_eq!(ids(Filter::default()), ["a", "b"]);
        let kind = |k: &str| Some(k.to_owned());
        assert_eq!(
            ids(Filter {
                kind: kind("clusters"),
                id: None
            }),
            ["a", "b"]
        );
        assert!(
            ids(Filter {
                kind: kind("nodepools"),
                id: None
            })
            .is_empty()
        );
        assert_eq!(
            ids(Filter {
                kind: None,
                id: Some("b".into())
            }),
            ["b"]
        );
        assert!(
            ids(Filter {
                kind: None,
                id: Some("".into())
            })
            .is_empty()
        );
    }
}

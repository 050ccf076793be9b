//! Duplicate reconcile events, acknowledged without work.
//!
//! HyperFleet's sentinel is level-triggered: it publishes a reconcile event for a resource on
//! every poll while its `Reconciled` condition lags its generation (and every 10 s while it is
//! not reconciled). When the adapter falls behind — a burst of new clusters, an outage, a slow
//! Kubernetes API — each waiting resource collects an event per poll, every one of them costs
//! the full pipeline (API reads, Kubernetes reads under the client's rate limit, a status
//! report), and the queue can grow faster than it drains: the chaos suite saw 5,400 events
//! still queued ten minutes after 200 clusters were created (docs/reliability.md).
//!
//! An event is a duplicate when this adapter has already reconciled the same resource, at the
//! event's generation or a later one, in an execution that *started after the event was
//! minted*: that execution read the state the event announces, so running again adds nothing.
//! When the event was minted comes from its CloudEvent `time`, else from its id when that is a
//! UUIDv7 (the sentinel's are: it sends no `time`, as HyperFleet's does not); an event with
//! neither is never a duplicate. Re-publishes the sentinel makes on purpose — a stale
//! reconciled resource after 30 min, an unreconciled one every 10 s — are minted after the
//! last execution started, so they run. Each replica remembers only its own executions.

use std::collections::HashMap;
use std::sync::Mutex;

use chrono::{DateTime, TimeDelta, Utc};
use serde_json::Value;

/// How much earlier than an execution's start an event must be minted to count as covered by
/// it: the sentinel's clock and ours may disagree by this much.
pub const CLOCK_SKEW_MARGIN: TimeDelta = TimeDelta::seconds(1);
/// Executions older than this are forgotten once more than [`REMEMBER_AT_MOST`] resources are
/// remembered (deleted clusters would otherwise stay for good); a duplicate that waited longer
/// than this in the queue simply runs again.
pub const FORGET_AFTER: TimeDelta = TimeDelta::hours(1);
pub const REMEMBER_AT_MOST: usize = 1024;

/// The resource an event is about: `(kind, id)` from its data.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ResourceKey {
    pub kind: String,
    pub id: String,
}

/// What an event says, as far as coalescing goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventFacts {
    pub resource: ResourceKey,
    pub generation: i64,
    /// When the event was minted (its `time`, or its UUIDv7 id's timestamp).
    pub minted: DateTime<Utc>,
}

impl EventFacts {
    /// The facts of an event with `data` (`kind`, `id`, `generation`), `id` and `time`;
    /// `None` when any is missing.
    pub fn of(data: &Value, id: &str, time: Option<DateTime<Utc>>) -> Option<Self> {
        let resource = ResourceKey {
            kind: data.get("kind")?.as_str()?.to_owned(),
            id: data.get("id")?.as_str()?.to_owned(),
        };
        let generation = data.get("generation")?.as_i64()?;
        let minted = time.or_else(|| uuid_v7_time(id))?;
        Some(Self {
            resource,
            generation,
            minted,
        })
    }
}

/// The timestamp of a UUIDv7 (milliseconds since the epoch in its first 48 bits).
fn uuid_v7_time(id: &str) -> Option<DateTime<Utc>> {
    let uuid = uuid::Uuid::parse_str(id).ok()?;
    if uuid.get_version_num() != 7 {
        return None;
    }
    let (seconds, nanos) = uuid.get_timestamp()?.to_unix();
    DateTime::from_timestamp(i64::try_from(seconds).ok()?, nanos)
}

/// A successful execution that makes earlier events redundant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Execution {
    pub generation: i64,
    pub started: DateTime<Utc>,
}

/// The last successful execution per resource.
#[derive(Debug, Default)]
pub struct RecentExecutions {
    by_resource: Mutex<HashMap<ResourceKey, Execution>>,
}

impl RecentExecutions {
    /// The execution that covers `event`, if one does.
    pub fn covering(&self, event: &EventFacts) -> Option<Execution> {
        let executions = self
            .by_resource
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        executions.get(&event.resource).copied().filter(|done| {
            done.generation >= event.generation && event.minted + CLOCK_SKEW_MARGIN < done.started
        })
    }

    /// Remembers a successful execution for `resource` (the later of two, by start).
    pub fn record(&self, resource: ResourceKey, execution: Execution) {
        let mut executions = self
            .by_resource
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let entry = executions.entry(resource).or_insert(execution);
        if execution.started > entry.started {
            *entry = execution;
        }
        if executions.len() > REMEMBER_AT_MOST {
            let horizon = execution.started - FORGET_AFTER;
            executions.retain(|_, done| done.started > horizon);
        }
    }

    /// How many resources are remembered.
    pub fn len(&self) -> usize {
        self.by_resource
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + seconds, 0).unwrap()
    }

    fn facts(generation: i64, minted: i64) -> EventFacts {
        EventFacts {
            resource: ResourceKey {
                kind: "Cluster".into(),
                id: "c1".into(),
            },
            generation,
            minted: at(minted),
        }
    }

    #[test]
    fn an_event_minted_before_an_execution_of_its_generation_started_is_covered() {
        let recent = RecentExecutions::default();
        assert_eq!(recent.covering(&facts(3, 0)), None, "nothing ran yet");
        let done = Execution {
            generation: 3,
            started: at(10),
        };
        recent.record(facts(3, 0).resource, done);
        assert_eq!(recent.covering(&facts(3, 0)), Some(done));
        assert_eq!(
            recent.covering(&facts(2, 5)),
            Some(done),
            "an older generation"
        );
        // A newer generation, one minted after the start (a deliberate re-publish), or within
        // the clock-skew margin of it: run.
        assert_eq!(recent.covering(&facts(4, 0)), None);
        assert_eq!(recent.covering(&facts(3, 11)), None);
        assert_eq!(recent.covering(&facts(3, 9)), None);
        // Another resource.
        let mut other = facts(3, 0);
        other.resource.id = "c2".into();
        assert_eq!(recent.covering(&other), None);
        // An execution that started earlier does not replace a later one.
        recent.record(
            facts(3, 0).resource,
            Execution {
                generation: 3,
                started: at(1),
            },
        );
        assert_eq!(recent.covering(&facts(3, 0)), Some(done));
    }

    #[test]
    fn old_executions_are_forgotten_once_many_resources_are_remembered() {
        let recent = RecentExecutions::default();
        let key = |n: usize| ResourceKey {
            kind: "Cluster".into(),
            id: format!("c{n}"),
        };
        let at_generation_1 = |started| Execution {
            generation: 1,
            started,
        };
        // Two hours ago: deleted clusters nobody hears of again.
        for n in 0..REMEMBER_AT_MOST {
            recent.record(key(n), at_generation_1(at(-7_200)));
        }
        assert_eq!(recent.len(), REMEMBER_AT_MOST);
        // One more, now: the old ones go, the new one stays.
        recent.record(key(REMEMBER_AT_MOST), at_generation_1(at(0)));
        assert_eq!(recent.len(), 1);
        let mut recent_event = facts(1, -10);
        recent_event.resource = key(REMEMBER_AT_MOST);
        assert!(recent.covering(&recent_event).is_some());
    }

    #[test]
    fn when_an_event_was_minted_comes_from_its_time_or_its_uuid_v7() {
        let data = json!({"kind": "Cluster", "id": "c1", "generation": 2, "href": "/x"});
        let v7 = uuid::Uuid::now_v7().to_string();
        let minted = EventFacts::of(&data, &v7, None).unwrap().minted;
        assert!((Utc::now() - minted).num_seconds().abs() < 5, "{minted}");
        // `time` wins when present.
        let facts = EventFacts::of(&data, &v7, Some(at(0))).unwrap();
        assert_eq!(facts.minted, at(0));
        assert_eq!(facts.generation, 2);
        // Neither a time nor a UUIDv7 (a v4, not a UUID): never a duplicate.
        let v4 = uuid::Uuid::new_v4().to_string();
        assert_eq!(EventFacts::of(&data, &v4, None), None);
        assert_eq!(EventFacts::of(&data, "event-1", None), None);
        // Data without what identifies the resource and its generation.
        assert_eq!(
            EventFacts::of(&json!({"kind": "Cluster", "id": "c1"}), &v7, None),
            None
        );
    }
}

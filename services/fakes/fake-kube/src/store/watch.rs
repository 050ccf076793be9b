//! Watch history: every write is an event, kept for resuming watches and broadcast to the
//! open ones.

use serde_json::Value;
use tokio::sync::broadcast;

use super::{ApiError, Store};
use crate::kinds::KindSpec;

/// How many past events a watch can resume from; older resource versions get `410 Gone`.
const HISTORY: usize = 10_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    Added,
    Modified,
    Deleted,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Added => "ADDED",
            Self::Modified => "MODIFIED",
            Self::Deleted => "DELETED",
        }
    }
}

/// One change, as a watch reports it.
#[derive(Debug, Clone)]
pub struct Event {
    pub revision: u64,
    pub group: String,
    pub plural: String,
    pub kind: EventType,
    pub object: Value,
    /// The object before a modification, so a watch with a selector can tell an object
    /// leaving the selection (reported as DELETED).
    pub previous: Option<Value>,
}

impl Store {
    /// Events after `since` (all current objects as ADDED when `since` is `None`) and a
    /// receiver for what follows, taken under one lock so nothing falls in between.
    /// `Err` when `since` is older than the kept history.
    #[allow(clippy::type_complexity)]
    pub fn subscribe(
        &self,
        spec: &KindSpec,
        since: Option<u64>,
    ) -> Result<(Vec<Event>, broadcast::Receiver<Event>), ApiError> {
        let receiver = self.events.subscribe();
        let backlog = match since {
            None => self
                .objects
                .iter()
                .filter(|(k, _)| k.group == spec.group && k.plural == spec.plural)
                .map(|(_, o)| Event {
                    revision: self.revision,
                    group: spec.group.clone(),
                    plural: spec.plural.clone(),
                    kind: EventType::Added,
                    object: o.clone(),
                    previous: None,
                })
                .collect(),
            Some(since) => {
                let oldest = self.history.front().map_or(self.revision, |e| e.revision);
                if since + 1 < oldest && since < self.revision {
                    return Err(ApiError::new(
                        410,
                        format!("too old resource version: {since} ({oldest})"),
                    ));
                }
                self.history
                    .iter()
                    .filter(|e| {
                        e.revision > since && e.group == spec.group && e.plural == spec.plural
                    })
                    .cloned()
                    .collect()
            }
        };
        Ok((backlog, receiver))
    }

    pub(super) fn emit(
        &mut self,
        spec: &KindSpec,
        kind: EventType,
        object: Value,
        previous: Option<Value>,
    ) {
        let event = Event {
            revision: self.revision,
            group: spec.group.clone(),
            plural: spec.plural.clone(),
            kind,
            object,
            previous,
        };
        if self.history.len() >= HISTORY {
            self.history.pop_front();
        }
        self.history.push_back(event.clone());
        let _ = self.events.send(event);
    }
}

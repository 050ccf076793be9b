//! The invariants, as pure functions over what the run recorded and observed, so each can be
//! tested both ways without a stack. Every violation names the ids it is about.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::Serialize;

use crate::fleet::{ClusterObs, ClusterPlan};
use crate::load::{AlertSent, Delivery, Flow, JobKind, JobPlan};
use crate::poison::{Parked, Poison};
use crate::recipe::{RecipeDef, answer_marker};

/// The verdict on one invariant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verdict {
    pub name: &'static str,
    pub holds: bool,
    /// How many things were checked (events, jobs, incidents, ...).
    pub checked: usize,
    /// One line per violation, naming the ids.
    pub violations: Vec<String>,
    /// What holds but deserves a word (e.g. a result lost, with its reason given).
    pub notes: Vec<String>,
    /// What has not happened yet while the queues still hold work for it (a backlog at the
    /// quiet period's end, not a loss): the invariant does not hold, but these are not lost.
    pub pending: Vec<String>,
}

impl Verdict {
    fn new(
        name: &'static str,
        checked: usize,
        violations: Vec<String>,
        notes: Vec<String>,
    ) -> Self {
        Self {
            name,
            holds: violations.is_empty(),
            checked,
            violations,
            notes,
            pending: Vec::new(),
        }
    }

    /// The invariant could not be checked: what was needed could not be read.
    pub fn unreadable(name: &'static str, error: String) -> Self {
        Self::new(name, 0, vec![error], Vec::new())
    }

    /// Adds what is still queued; the invariant holds only once nothing is.
    fn with_pending(mut self, pending: Vec<String>) -> Self {
        self.holds = self.holds && pending.is_empty();
        self.pending = pending;
        self
    }
}

/// Messages the run's queues still hold for a running consumer (ready, unacknowledged, in
/// retry tiers and delay queues), by queue; the probe and the parking lots are not work. A
/// queue nobody consumes (its consumer stopped, and the tiers and delay queues that lead into
/// it) is not a backlog: what waits there is stuck, not on its way.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Backlog {
    pub queues: BTreeMap<String, u64>,
    /// Messages in the suite's probe queue it has not read yet.
    pub probe_unread: u64,
    /// Queues holding messages that nobody consumes, with their depth.
    pub unconsumed: BTreeMap<String, u64>,
}

/// What `libs/messaging` names a queue's retry tiers and delay queues by: `Q.retry.<delay>`,
/// `Q.delayed.<delay>` and the older `Q.delay.<delay>` (crate `steadfast_messaging::topology`).
const WAITING_INFIXES: [&str; 3] = [".retry.", ".delayed.", ".delay."];

/// The queue a waiting queue dead-letters into; `queue` itself for any other.
fn consumed_through(queue: &str) -> &str {
    WAITING_INFIXES
        .iter()
        .filter_map(|infix| queue.find(infix))
        .min()
        .map_or(queue, |at| &queue[..at])
}

impl Backlog {
    /// The backlog among `queues` (name, messages, consumers) of a run.
    pub fn of(queues: impl IntoIterator<Item = (String, u64, u64)>, probe_queue: &str) -> Self {
        let queues: Vec<(String, u64, u64)> = queues.into_iter().collect();
        let consumers: HashMap<&str, u64> =
            queues.iter().map(|(n, _, c)| (n.as_str(), *c)).collect();
        let mut backlog = Self::default();
        for (name, depth, _) in &queues {
            if name == probe_queue {
                backlog.probe_unread = *depth;
            } else if *depth > 0 && !name.ends_with(".parked") {
                let consumed = consumers
                    .get(consumed_through(name))
                    .is_some_and(|c| *c > 0);
                if consumed {
                    backlog.queues.insert(name.clone(), *depth);
                } else {
                    backlog.unconsumed.insert(name.clone(), *depth);
                }
            }
        }
        backlog
    }

    /// Messages in every work queue.
    pub fn total(&self) -> u64 {
        self.queues.values().sum()
    }

    /// Messages in the queues whose name contains `consumer` (e.g. `pipeline-herder`).
    pub fn of_consumer(&self, consumer: &str) -> u64 {
        self.queues
            .iter()
            .filter(|(name, _)| name.contains(consumer))
            .map(|(_, depth)| depth)
            .sum()
    }

    /// `<consumer>'s queues still hold <queue depth, ...>` while they hold anything: why
    /// something that consumer has not done yet is not lost.
    pub fn waiting_for(&self, consumer: &str) -> Option<String> {
        (self.of_consumer(consumer) > 0)
            .then(|| format!("{consumer}'s queues still hold {}", self.describe(consumer)))
    }

    /// Why an event the probe has not seen is not lost, while its queue holds unread ones.
    pub fn probe_waiting(&self) -> Option<String> {
        (self.probe_unread > 0)
            .then(|| format!("the probe queue still holds {} unread", self.probe_unread))
    }

    /// `queue depth, ...` of the consumer's queues, largest first.
    pub fn describe(&self, consumer: &str) -> String {
        let mut queues: Vec<(&String, &u64)> = self
            .queues
            .iter()
            .filter(|(name, _)| name.contains(consumer))
            .collect();
        queues.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        queues
            .iter()
            .map(|(name, depth)| format!("{name} {depth}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// The queues' names contain these (the adapter's queue is `<topic>-steadfast-adapter`).
pub const HERDER: &str = "pipeline-herder";
pub const RECONCILER: &str = "alert-reconciler";
pub const ADAPTER: &str = "steadfast-adapter";

pub const WEBHOOKS_DELIVERED: &str =
    "webhooks answered 2xx reached the exchange (probe) and every consumer bound to them";
pub const JOBS_RETRIED_ONCE: &str =
    "transient jobs retried exactly once per attempt up to their limit, others never";
pub const ALERTS_ONE_INCIDENT: &str =
    "one incident per alert group, analysed in chat with every recipe's result or reason";
pub const FLEET_RECONCILED: &str =
    "every live cluster Reconciled=True at its latest generation, deleted ones gone";
pub const QUIET_STATE: &str =
    "parked queues hold exactly the poison injected on purpose, spool empty, every service ready";

/// What the consumers recorded themselves, read from their databases: the evidence that an
/// event reached them, beyond the exchange. `Err` when it could not be read.
#[derive(Debug, Clone)]
pub struct ConsumerSeen {
    /// Job ids in the pipeline-herder's ledger (`decisions`): it records every failed job.
    pub herder_jobs: Result<HashSet<u64>, String>,
    /// Event ids in the alert-reconciler's `processed_events`.
    pub reconciler_events: Result<HashSet<String>, String>,
}

/// (a) Every event id the receivers answered 2xx for was seen at the probe queue bound to
/// `<ns>.webhooks` with `#`, and at the consumers bound to it: every failed job whose hook was
/// accepted has a decision in the herder's ledger (successes have none: the herder ignores
/// them), every accepted alert event is among the reconciler's processed events. An event a
/// consumer has not seen while its queues still hold messages is pending, not lost.
pub fn webhooks_delivered(
    deliveries: &[Delivery],
    probe_seen: &HashSet<String>,
    jobs: &[JobPlan],
    consumers: &ConsumerSeen,
    backlog: &Backlog,
) -> Verdict {
    let mut pending = Vec::new();
    let accepted: BTreeMap<&str, &Delivery> = deliveries
        .iter()
        .filter(|d| d.answered_2xx())
        .flat_map(|d| d.event_ids.iter().map(move |id| (id.as_str(), d)))
        .collect();
    let mut violations: Vec<String> = Vec::new();
    for (id, d) in accepted.iter().filter(|(id, _)| !probe_seen.contains(**id)) {
        let what = format!(
            "event {id} ({} {}, answered {} by replica {} at {:.1}s)",
            d.flow.as_str(),
            d.id,
            d.status.unwrap_or_default(),
            d.target + 1,
            d.sent_at
        );
        // Not read yet is not lost: the suite's own probe is behind.
        match backlog.probe_waiting() {
            Some(queued) => pending.push(format!("{what} not seen yet; {queued}")),
            None => violations.push(format!("{what} never reached the exchange")),
        }
    }
    let mut events_of: HashMap<&str, Vec<&str>> = HashMap::new();
    for (id, d) in &accepted {
        events_of.entry(d.id.as_str()).or_default().push(id);
    }
    match &consumers.herder_jobs {
        Ok(decided) => {
            for job in jobs
                .iter()
                .filter(|j| j.answered && j.kind != JobKind::Success)
                .filter(|j| !decided.contains(&j.job_id))
            {
                let events = events_of.get(job.key.as_str()).cloned().unwrap_or_default();
                let what = format!(
                    "job {} ({:?}, key {}, event {}) accepted at {:.1}s",
                    job.job_id,
                    job.kind,
                    job.key,
                    events.join(", "),
                    job.sent_at
                );
                match backlog.waiting_for(HERDER) {
                    Some(queued) => pending.push(format!("{what} not decided yet; {queued}")),
                    None => violations.push(format!(
                        "{what} never reached pipeline-herder (no decision in its ledger)"
                    )),
                }
            }
        }
        Err(error) => violations.push(format!("pipeline-herder's ledger unreadable: {error}")),
    }
    match &consumers.reconciler_events {
        Ok(processed) => {
            for (id, d) in accepted
                .iter()
                .filter(|(_, d)| d.flow == Flow::Alert)
                .filter(|(id, _)| !processed.contains(**id))
            {
                let what = format!(
                    "alert event {id} ({}, answered {} at {:.1}s)",
                    d.id,
                    d.status.unwrap_or_default(),
                    d.sent_at
                );
                match backlog.waiting_for(RECONCILER) {
                    Some(queued) => pending.push(format!("{what} not processed yet; {queued}")),
                    None => violations.push(format!(
                        "{what} never reached alert-reconciler (not among its processed events)"
                    )),
                }
            }
        }
        Err(error) => violations.push(format!(
            "alert-reconciler's processed events unreadable: {error}"
        )),
    }
    Verdict::new(WEBHOOKS_DELIVERED, accepted.len(), violations, Vec::new()).with_pending(pending)
}

/// (b) `retries` counts the successful (2xx) retry calls per job id at the fake GitLab. Per
/// attempt of each chain: a transient attempt below the limit whose hook was answered 2xx is
/// retried exactly once; one whose hook never was may have been retried at most once (the
/// receiver may have published before dying); the attempt at the limit, genuine failures,
/// successes and superseded jobs never. An attempt whose chain fails again and that was
/// retried must have its next attempt hooked by the suite (else the chain is still going).
/// A transient attempt not retried yet while the herder's queues still hold messages (its
/// event, or a retry waiting out its delay), and a chain whose next attempt the suite has not
/// hooked yet, are pending, not violations.
pub fn jobs_retried_once(
    jobs: &[JobPlan],
    retries: &HashMap<u64, u32>,
    backlog: &Backlog,
) -> Verdict {
    let mut violations = Vec::new();
    let mut pending = Vec::new();
    let herder_waiting = backlog.waiting_for(HERDER);
    let known: HashSet<u64> = jobs.iter().map(|j| j.job_id).collect();
    let followed: HashSet<u64> = jobs.iter().filter_map(|j| j.previous).collect();
    for job in jobs {
        let count = retries.get(&job.job_id).copied().unwrap_or(0);
        let expected = match (job.kind, job.answered) {
            (JobKind::Transient, true) => 1..=1,
            (JobKind::Transient, false) => 0..=1,
            _ => 0..=0,
        };
        let attempt = format!(
            "attempt {} of chain {}, {} retries before",
            job.retries + 1,
            job.chain,
            job.retries
        );
        let owed = count == 0 && job.kind == JobKind::Transient && job.answered;
        if let Some(queued) = herder_waiting.as_deref().filter(|_| owed) {
            pending.push(format!(
                "job {} ({attempt}, key {}) not retried yet; {queued}",
                job.job_id, job.key
            ));
        } else if !expected.contains(&count) {
            violations.push(format!(
                "job {} ({:?}, {attempt}, hook {}answered 2xx, key {}) retried {count} time(s), expected {}",
                job.job_id,
                job.kind,
                if job.answered { "" } else { "not " },
                job.key,
                if expected.start() == expected.end() {
                    expected.start().to_string()
                } else {
                    format!("{}..{}", expected.start(), expected.end())
                }
            ));
        } else if job.kind == JobKind::Transient
            && job.fails_again
            && count > 0
            && !followed.contains(&job.job_id)
        {
            pending.push(format!(
                "job {} ({attempt}) was retried but its next attempt was not hooked yet (the chain is still going)",
                job.job_id
            ));
        }
    }
    let mut unknown: Vec<&u64> = retries.keys().filter(|id| !known.contains(id)).collect();
    unknown.sort();
    for id in unknown {
        violations.push(format!("job {id} retried but the load never hooked it"));
    }
    let chains = jobs.iter().map(|j| j.chain).collect::<HashSet<_>>().len();
    let longest = jobs.iter().map(|j| j.retries + 1).max();
    let mut notes = Vec::new();
    if let Some(longest) = longest {
        notes.push(format!(
            "{} attempts in {chains} chains; {} attempts hooked by following a retry; longest chain reaches attempt {longest}",
            jobs.len(),
            followed.len()
        ));
    }
    Verdict::new(JOBS_RETRIED_ONCE, jobs.len(), violations, notes).with_pending(pending)
}

/// An incident as the reconciler's API lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncidentObs {
    pub id: String,
    /// The alert group, from the incident's group key; `None` if not one of the run's.
    pub group: Option<usize>,
    pub state: String,
    /// Resolved while still investigating: chat hears of an incident only once it is
    /// analysed, so no analysis is expected (the reconciler's documented behaviour).
    pub resolved_before_analysis: bool,
}

/// The analysis section of one recipe in a chat message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub recipe: String,
    pub status: String,
    /// The lines under the heading: analysis, `_detail_`, links.
    pub body: String,
}

/// Splits an analysis report's Markdown (the reconciler's `chat::markdown`) into its recipe
/// sections: `**name** — status` followed by the analysis, `_detail_` and links.
pub fn findings(markdown: &str) -> Vec<Finding> {
    let mut out: Vec<Finding> = Vec::new();
    for line in markdown.lines() {
        let heading = line
            .strip_prefix("**")
            .and_then(|rest| rest.split_once("** — "))
            .filter(|(name, _)| !name.contains(' ') && !name.starts_with("Incident"));
        if let Some((name, status)) = heading {
            out.push(Finding {
                recipe: name.to_owned(),
                status: status.trim().to_owned(),
                body: String::new(),
            });
        } else if line.starts_with("**Suggested actions") || line.starts_with("No action") {
            break;
        } else if let Some(last) = out.last_mut() {
            last.body.push_str(line);
            last.body.push('\n');
        }
    }
    out
}

/// (c) Each group with an answered firing has exactly one incident; each incident has an
/// analysis in chat (`messages`: incident id → the Markdown of its analysis reports) in which
/// every debugging recipe matching the group shows its result (answering recipes: the
/// [`answer_marker`]) or the reason it has none (a status other than successful, or a
/// `_detail_` line). More than one analysis per incident is a duplicate effect, noted.
pub fn alerts_one_incident(
    alerts: &[AlertSent],
    incidents: &[IncidentObs],
    messages: &HashMap<String, Vec<String>>,
    recipes: &[RecipeDef],
) -> Verdict {
    let mut violations = Vec::new();
    let mut notes = Vec::new();
    let fired: BTreeMap<usize, bool> = alerts
        .iter()
        .filter(|a| a.firing && a.answered)
        .map(|a| (a.group, true))
        .collect();
    let mut by_group: BTreeMap<usize, Vec<&IncidentObs>> = BTreeMap::new();
    for incident in incidents {
        match incident.group {
            Some(group) => by_group.entry(group).or_default().push(incident),
            None => violations.push(format!(
                "incident {} is of no alert group of the run",
                incident.id
            )),
        }
    }
    for group in fired.keys() {
        let found = by_group.get(group).map(Vec::as_slice).unwrap_or_default();
        if found.len() != 1 {
            let ids: Vec<&str> = found.iter().map(|i| i.id.as_str()).collect();
            violations.push(format!(
                "group {} has {} incidents, expected 1: [{}]",
                crate::recipe::alert_name(*group),
                found.len(),
                ids.join(", ")
            ));
        }
    }
    for (group, found) in &by_group {
        for incident in found {
            let reports = messages
                .get(&incident.id)
                .map(Vec::as_slice)
                .unwrap_or_default();
            let name = crate::recipe::alert_name(*group);
            let Some(first) = reports.first() else {
                if incident.resolved_before_analysis {
                    notes.push(format!(
                        "incident {} ({name}): resolved before its analysis was ready; nothing in chat, by design",
                        incident.id
                    ));
                } else {
                    violations.push(format!(
                        "incident {} ({name}): no analysis in chat",
                        incident.id
                    ));
                }
                continue;
            };
            if reports.len() > 1 {
                notes.push(format!(
                    "incident {} ({name}): {} analyses in chat (duplicate effect)",
                    incident.id,
                    reports.len()
                ));
            }
            let sections = findings(first);
            for recipe in recipes
                .iter()
                .filter(|r| r.debugging && r.groups.contains(group))
            {
                let Some(finding) = sections.iter().find(|f| f.recipe == recipe.name) else {
                    violations.push(format!(
                        "incident {} ({name}): recipe {} is missing from the analysis",
                        incident.id, recipe.name
                    ));
                    continue;
                };
                let has_result = finding.body.contains(&answer_marker(&recipe.name));
                let reason = finding
                    .body
                    .lines()
                    .find(|l| l.starts_with('_') && l.ends_with('_') && l.len() > 2);
                match (recipe.behaviour, has_result, reason) {
                    (crate::cli::RecipeBehaviour::Answer, true, _) => {}
                    (crate::cli::RecipeBehaviour::Answer, false, Some(reason)) => notes.push(format!(
                        "incident {} ({name}): recipe {} has no result; reason given: {} ({})",
                        incident.id, recipe.name, reason.trim_matches('_'), finding.status
                    )),
                    (crate::cli::RecipeBehaviour::Answer, false, None) => violations.push(format!(
                        "incident {} ({name}): recipe {} shows `{}` with neither its result nor a reason",
                        incident.id, recipe.name, finding.status
                    )),
                    (_, _, _) if finding.status != "successful" => {}
                    (_, _, _) => violations.push(format!(
                        "incident {} ({name}): recipe {} cannot have succeeded, the analysis says `{}`",
                        incident.id, recipe.name, finding.status
                    )),
                }
            }
        }
    }
    Verdict::new(ALERTS_ONE_INCIDENT, incidents.len(), violations, notes)
}

/// (d) Every cluster the run created and did not delete is `Reconciled=True` at its current
/// generation, which is at least the last one fleet-api acknowledged; every cluster whose
/// deletion was accepted is gone (HyperFleet removes it once the adapter reports it
/// `Finalized`); nothing else exists. A cluster whose creation or deletion got no answer may
/// or may not exist, but if it does it must be reconciled. A cluster not reconciled (or not
/// gone) yet while the adapter's queue still holds messages is pending.
pub fn fleet_reconciled(
    plans: &[ClusterPlan],
    listed: &[ClusterObs],
    backlog: &Backlog,
) -> Verdict {
    let mut violations = Vec::new();
    // What the adapter has not done yet: pending while its queue holds work, else violations.
    let mut not_yet = Vec::new();
    let by_name: HashMap<&str, &ClusterObs> = listed.iter().map(|c| (c.name.as_str(), c)).collect();
    let describe = |c: &ClusterObs| match &c.reconciled {
        Some((status, g)) => format!("Reconciled={status} at generation {g}"),
        None => "no Reconciled condition".to_owned(),
    };
    for plan in plans {
        let found = by_name.get(plan.name.as_str()).copied();
        let id = plan
            .id
            .clone()
            .or_else(|| found.map(|c| c.id.clone()))
            .unwrap_or_else(|| "(id unknown)".into());
        match found {
            Some(c) if plan.deleted() => not_yet.push(format!(
                "cluster {id} ({}) deleted at {:.1}s is still there: generation {}, {}{}",
                plan.name,
                plan.changes
                    .iter()
                    .find(|c| c.kind == crate::fleet::ChangeKind::Delete && c.answered_2xx())
                    .map_or(0.0, |c| c.at),
                c.generation,
                if c.deleting { "deletion pending, " } else { "" },
                describe(c)
            )),
            Some(c) if c.deleting && !plan.delete_sent() => not_yet.push(format!(
                "cluster {id} ({}) is being deleted though the run never deleted it",
                plan.name
            )),
            Some(c) if c.deleting => not_yet.push(format!(
                "cluster {id} ({}) deletion (unanswered request) never finished: generation {}, {}",
                plan.name,
                c.generation,
                describe(c)
            )),
            Some(c) => {
                if let Some(acked) = plan.acknowledged_generation()
                    && c.generation < acked
                {
                    not_yet.push(format!(
                        "cluster {id} ({}) is at generation {} but fleet-api acknowledged generation {acked}",
                        plan.name, c.generation
                    ));
                } else if !c.reconciled_now() {
                    not_yet.push(format!(
                        "cluster {id} ({}) generation {}: {}",
                        plan.name,
                        c.generation,
                        describe(c)
                    ));
                }
            }
            None if plan.id.is_some() && !plan.delete_sent() => not_yet.push(format!(
                "cluster {id} ({}) is gone though the run never deleted it",
                plan.name
            )),
            // A refusal (4xx) is the suite's mistake, not the system's, but a fleet invariant
            // that holds over clusters never created proves nothing: said loudly.
            None => {
                if let Some(refused) = plan.changes.iter().find(|c| {
                    c.kind == crate::fleet::ChangeKind::Create
                        && c.status.is_some_and(|s| (400..500).contains(&s))
                }) {
                    violations.push(format!(
                        "cluster {} was never created: fleet-api refused it with {}",
                        plan.name,
                        refused.status.unwrap_or_default()
                    ));
                }
            }
        }
    }
    let pending = match backlog.waiting_for(ADAPTER) {
        Some(queued) => not_yet
            .into_iter()
            .map(|line| format!("{line} ({queued})"))
            .collect(),
        None => {
            violations.extend(not_yet);
            Vec::new()
        }
    };
    let planned: HashSet<&str> = plans.iter().map(|p| p.name.as_str()).collect();
    for c in listed.iter().filter(|c| !planned.contains(c.name.as_str())) {
        violations.push(format!(
            "cluster {} ({}) is not one the run created",
            c.id, c.name
        ));
    }
    let deleted = plans.iter().filter(|p| p.deleted()).count();
    let notes = if plans.is_empty() {
        Vec::new()
    } else {
        vec![format!(
            "{} clusters created, {deleted} deleted, {} listed at the end",
            plans.len(),
            listed.len()
        )]
    };
    Verdict::new(FLEET_RECONCILED, plans.len(), violations, notes).with_pending(pending)
}

/// (e) The parked queues hold exactly the poison the suite injected on purpose — each once, in
/// the parked queue of the queue it was injected into, with the consumer's reason — nothing is
/// left in the receivers' spool, every process is ready, and none exited without being killed
/// by the suite.
pub fn quiet_state(
    parked: &Parked,
    injected: &[Poison],
    spool_depth: i64,
    not_ready: &[String],
    unexpected_exits: &[String],
) -> Verdict {
    let mut violations: Vec<String> = Vec::new();
    let mut notes = Vec::new();
    let mut depths = parked.depths.clone();
    depths.sort();
    for (queue, depth) in &depths {
        let read = parked.messages.iter().filter(|m| &m.queue == queue).count() as u64;
        if *depth > read {
            violations.push(format!(
                "{queue} holds {depth} parked message(s), {} of them not examined",
                depth - read
            ));
        }
    }
    let by_id: HashMap<&str, &Poison> = injected.iter().map(|p| (p.id.as_str(), p)).collect();
    let mut parked_ids: HashMap<&str, usize> = HashMap::new();
    for message in &parked.messages {
        let reason = format!(
            "{}{}",
            message.reason.as_deref().unwrap_or("(no reason)"),
            message
                .error
                .as_deref()
                .map(|e| format!(": {e}"))
                .unwrap_or_default()
        );
        match message.message_id.as_deref().and_then(|id| by_id.get(id)) {
            Some(poison) => {
                *parked_ids.entry(poison.id.as_str()).or_default() += 1;
                let expected_queue = format!("{}.parked", poison.queue);
                if message.queue != expected_queue {
                    violations.push(format!(
                        "poison {} injected into {} was parked in {}",
                        poison.id, poison.queue, message.queue
                    ));
                } else if message.reason.is_none() {
                    violations.push(format!(
                        "poison {} parked in {} without a reason",
                        poison.id, message.queue
                    ));
                } else {
                    notes.push(format!(
                        "poison {} ({}) parked in {}: {reason}",
                        poison.id, poison.what, message.queue
                    ));
                }
            }
            None => violations.push(format!(
                "{}: unexpected parked message {}: {reason}",
                message.queue,
                message.message_id.as_deref().unwrap_or("(no message id)")
            )),
        }
    }
    for poison in injected {
        match parked_ids.get(poison.id.as_str()).copied().unwrap_or(0) {
            0 => violations.push(format!(
                "poison {} ({}) injected into {} at {:.1}s was not parked",
                poison.id, poison.what, poison.queue, poison.at
            )),
            1 => {}
            n => violations.push(format!("poison {} parked {n} times", poison.id)),
        }
    }
    if spool_depth != 0 {
        violations.push(format!("the receivers' spool holds {spool_depth} event(s)"));
    }
    violations.extend(not_ready.iter().map(|n| format!("not ready: {n}")));
    violations.extend(
        unexpected_exits
            .iter()
            .map(|e| format!("exited on its own: {e}")),
    );
    Verdict::new(
        QUIET_STATE,
        injected.len() + parked.messages.len(),
        violations,
        notes,
    )
}

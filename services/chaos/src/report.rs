//! The run's report: a table for people, the same as JSON (`--json`) for machines.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use crate::faults::FaultRecord;
use crate::invariants::Verdict;
use crate::load::{Delivery, Flow};
use crate::sabotage::SabotageRecord;

/// Requests of one flow.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct FlowLoad {
    pub offered: usize,
    pub answered_2xx: usize,
    pub answered_other: usize,
    pub no_answer: usize,
}

/// p50, p99 and the largest of a set of seconds, and how many.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Latency {
    pub count: usize,
    pub p50: f64,
    pub p99: f64,
    pub max: f64,
}

impl Latency {
    pub fn of(mut samples: Vec<f64>) -> Option<Self> {
        if samples.is_empty() {
            return None;
        }
        samples.sort_by(f64::total_cmp);
        let at = |q: f64| {
            let index = ((samples.len() as f64 - 1.0) * q).round() as usize;
            samples[index.min(samples.len() - 1)]
        };
        Some(Self {
            count: samples.len(),
            p50: at(0.5),
            p99: at(0.99),
            max: samples[samples.len() - 1],
        })
    }
}

/// Faults of one kind.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FaultSummary {
    pub injected: usize,
    pub failed: usize,
    pub recovery: Option<Latency>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub run: String,
    pub seed: u64,
    pub namespace: String,
    pub duration_secs: f64,
    pub interrupted: bool,
    pub load: BTreeMap<Flow, FlowLoad>,
    pub faults: Vec<FaultRecord>,
    pub faults_by_kind: BTreeMap<String, FaultSummary>,
    /// Things accepted that never had their effect while nothing queued could still bring it
    /// (must be 0).
    pub lost: usize,
    /// Effects that had not happened at the end while the queues still held work for them
    /// (a backlog: the stack did not keep up, nothing was lost; the run still fails).
    pub still_queued: usize,
    /// Messages left in the run's work queues at the end, by queue.
    pub backlog: BTreeMap<String, u64>,
    /// Messages left in queues nobody consumed at the end (a consumer that stopped): stuck.
    pub unconsumed: BTreeMap<String, u64>,
    /// Effects that happened more than once (retries, chat analyses).
    pub duplicate_effects: usize,
    /// Events that reached the exchange more than once (at-least-once; not an error).
    pub redelivered_events: u64,
    /// End-to-end latency per flow, seconds.
    pub latency: BTreeMap<Flow, Latency>,
    pub invariants: Vec<Verdict>,
    /// Invariants broken on purpose (`--sabotage`): a run with any must FAIL.
    pub sabotage: Vec<SabotageRecord>,
    /// Observer and infrastructure problems that did not stop the run.
    pub warnings: Vec<String>,
    pub log_dir: String,
}

impl Report {
    pub fn holds(&self) -> bool {
        !self.interrupted && self.lost == 0 && self.invariants.iter().all(|v| v.holds)
    }

    /// Offered / answered per flow from the recorded deliveries.
    pub fn load_of(deliveries: &[Delivery]) -> BTreeMap<Flow, FlowLoad> {
        let mut out: BTreeMap<Flow, FlowLoad> = BTreeMap::new();
        for d in deliveries {
            let entry = out.entry(d.flow).or_default();
            entry.offered += 1;
            match d.status {
                Some(s) if (200..300).contains(&s) => entry.answered_2xx += 1,
                Some(_) => entry.answered_other += 1,
                None => entry.no_answer += 1,
            }
        }
        out
    }

    pub fn faults_summary(faults: &[FaultRecord]) -> BTreeMap<String, FaultSummary> {
        let mut grouped: BTreeMap<String, Vec<&FaultRecord>> = BTreeMap::new();
        for f in faults {
            grouped
                .entry(f.kind.as_str().to_owned())
                .or_default()
                .push(f);
        }
        grouped
            .into_iter()
            .map(|(kind, list)| {
                let summary = FaultSummary {
                    injected: list.len(),
                    failed: list.iter().filter(|f| f.error.is_some()).count(),
                    recovery: Latency::of(list.iter().filter_map(|f| f.recovery).collect()),
                };
                (kind, summary)
            })
            .collect()
    }

    /// The table.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "\nsteadfast-chaos report — run {} (seed {}, namespace {}, {:.0}s{})",
            self.run,
            self.seed,
            self.namespace,
            self.duration_secs,
            if self.interrupted {
                ", INTERRUPTED"
            } else {
                ""
            }
        );
        let _ = writeln!(
            out,
            "\nload            offered   2xx       other     no answer"
        );
        for (flow, load) in &self.load {
            let _ = writeln!(
                out,
                "  {:<13} {:<9} {:<9} {:<9} {}",
                flow.as_str(),
                load.offered,
                load.answered_2xx,
                load.answered_other,
                load.no_answer
            );
        }
        let _ = writeln!(
            out,
            "\nfaults          injected  failed    recovery p50 / max"
        );
        if self.faults_by_kind.is_empty() {
            let _ = writeln!(out, "  (none)");
        }
        for (kind, summary) in &self.faults_by_kind {
            let recovery = summary
                .recovery
                .as_ref()
                .map(|l| format!("{:.1}s / {:.1}s", l.p50, l.max))
                .unwrap_or_else(|| "-".into());
            let _ = writeln!(
                out,
                "  {:<13} {:<9} {:<9} {recovery}",
                kind, summary.injected, summary.failed
            );
        }
        for f in &self.faults {
            let _ = writeln!(
                out,
                "    {:>6.1}s {} {:<20} {}",
                f.at,
                f.kind.as_str(),
                f.target,
                match (&f.recovery, &f.error) {
                    (_, Some(e)) => format!("FAILED: {e}"),
                    (Some(r), None) => format!("ready again after {r:.1}s"),
                    (None, None) => "-".into(),
                }
            );
        }
        let _ = writeln!(out, "\nlatency (end to end)      count     p50       p99");
        let labels = [
            (Flow::Gitlab, "webhook → retry call"),
            (Flow::Alert, "alert → chat analysis"),
            (Flow::Fleet, "cluster → Reconciled"),
        ];
        for (flow, label) in labels {
            match self.latency.get(&flow) {
                Some(l) => {
                    let _ = writeln!(
                        out,
                        "  {label:<23} {:<9} {:<9} {:.1}s",
                        l.count,
                        format!("{:.1}s", l.p50),
                        l.p99
                    );
                }
                None => {
                    let _ = writeln!(out, "  {label:<23} -");
                }
            }
        }
        let _ = writeln!(
            out,
            "\nlost: {}   still queued: {}   duplicate effects: {}   events redelivered to the exchange: {}",
            self.lost, self.still_queued, self.duplicate_effects, self.redelivered_events
        );
        if !self.backlog.is_empty() {
            let mut queues: Vec<(&String, &u64)> = self.backlog.iter().collect();
            queues.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
            let _ = writeln!(
                out,
                "backlog at the end: {} message(s) in {} queue(s)",
                self.backlog.values().sum::<u64>(),
                queues.len()
            );
            for (queue, depth) in queues.iter().take(10) {
                let _ = writeln!(out, "    {depth:>8} {queue}");
            }
        }
        if !self.unconsumed.is_empty() {
            let _ = writeln!(out, "stuck at the end, in queues nobody consumes:");
            for (queue, depth) in &self.unconsumed {
                let _ = writeln!(out, "    {depth:>8} {queue}");
            }
        }
        if !self.sabotage.is_empty() {
            let _ = writeln!(
                out,
                "\nsabotage (on purpose: the invariants they break must FAIL)"
            );
            for s in &self.sabotage {
                let _ = writeln!(
                    out,
                    "    {:>6.1}s {:<17} {}{}",
                    s.at,
                    s.kind.as_str(),
                    s.what,
                    s.error
                        .as_ref()
                        .map(|e| format!(" — FAILED: {e}"))
                        .unwrap_or_default()
                );
            }
        }
        let _ = writeln!(out, "\ninvariants");
        for v in &self.invariants {
            let _ = writeln!(
                out,
                "  [{}] {} ({} checked)",
                if v.holds { " ok " } else { "FAIL" },
                v.name,
                v.checked
            );
            for line in v.violations.iter().take(20) {
                let _ = writeln!(out, "         ✗ {line}");
            }
            if v.violations.len() > 20 {
                let _ = writeln!(
                    out,
                    "         … {} more (see --json)",
                    v.violations.len() - 20
                );
            }
            for line in v.pending.iter().take(10) {
                let _ = writeln!(out, "         … {line}");
            }
            if v.pending.len() > 10 {
                let _ = writeln!(
                    out,
                    "         … {} more still queued (see --json)",
                    v.pending.len() - 10
                );
            }
            for line in v.notes.iter().take(10) {
                let _ = writeln!(out, "         · {line}");
            }
            if v.notes.len() > 10 {
                let _ = writeln!(out, "         · … {} more notes", v.notes.len() - 10);
            }
        }
        for w in self.warnings.iter().take(10) {
            let _ = writeln!(out, "warning: {w}");
        }
        let _ = writeln!(out, "\nlogs: {}", self.log_dir);
        let _ = writeln!(
            out,
            "result: {}",
            if self.holds() {
                "PASS — every invariant holds"
            } else {
                "FAIL"
            }
        );
        out
    }
}

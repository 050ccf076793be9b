//! Matchers: which failed jobs the herder recognises, and what it does about them.
//!
//! A matcher's conditions are about the job (`job_status`, `job_name`, `web_url`,
//! `failure_reason`) and about its log (`messages`, `builtin: no_trace`). The first matcher,
//! in file order, whose conditions all hold decides the action. Matchers are validated and
//! their patterns compiled once, at load ([`MatcherSet::from_entries`]); a log is scanned once
//! for all of them ([`scan`]).
//!
//! Field semantics (CKI's schema):
//! * `job_status` — statuses considered, default `[failed]`; `[]` means any status.
//! * `job_name` — the job's name starts with one of these (CKI's jobs are named
//!   `<stage> <arch>`, so `test` covers `test x86_64`).
//! * `web_url` — the job's URL starts with one of these prefixes (an instance or project).
//! * `failure_reason` — GitLab's `failure_reason` is one of these.
//! * `messages` — any one of them appears on a line within the last `maximum_artifact_size`
//!   bytes of the log (default 1 000 000); text is a plain substring, `{regex: ...}` a regex.
//! * `builtin: no_trace` — the log is empty. (`missed_tests` needs CKI's test-result
//!   artifacts, which Steadfast does not read: such a matcher loads with a warning and never
//!   matches.)
//! * `action` — `retry` (default), `report` or `alert`; `retry_limit` (default 3, 0 disables
//!   retrying) and `retry_delays` (default `[5m]`; the n-th retry waits the n-th delay, the
//!   last one repeats).

pub mod scan;
pub mod schema;
mod validate;
mod verdict;

use std::ops::Range;
use std::time::Duration;

use serde::Serialize;

use self::scan::Scanner;
use self::schema::RawMatcher;
use self::validate::{flatten, validate};
use self::verdict::{job_evidence, log_verdict};

pub use self::validate::{DelayError, Problem};
pub use self::verdict::{Evaluation, Evidence, Verdict, excerpt};

/// The matcher file shipped with the herder, used when the config names none.
pub const DEFAULT_MATCHERS_YAML: &str = include_str!("../../matchers/default.yaml");
pub const DEFAULT_RETRY_LIMIT: u32 = 3;
pub const DEFAULT_RETRY_DELAY: Duration = Duration::from_secs(300);
pub const DEFAULT_MAXIMUM_ARTIFACT_SIZE: u64 = 1_000_000;
/// The largest log tail a matcher may ask for; the tail is held in memory.
pub const MAXIMUM_ARTIFACT_SIZE_LIMIT: u64 = 256 << 20;
/// The longest delay a retry may wait (a delay queue lives twice as long as its delay).
pub const MAXIMUM_RETRY_DELAY: Duration = Duration::from_secs(7 * 24 * 3600);

/// Job statuses GitLab reports.
pub const GITLAB_JOB_STATUSES: &[&str] = &[
    "created",
    "waiting_for_resource",
    "preparing",
    "pending",
    "running",
    "success",
    "failed",
    "canceling",
    "canceled",
    "skipped",
    "manual",
    "scheduled",
];

/// What a matcher does with a job it recognises.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// Retry the job after the matcher's delay (if under its retry limit).
    Retry,
    /// Tell people (notification and chat); change nothing.
    Report,
    /// Like report, but marked as needing attention.
    Alert,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Retry => "retry",
            Self::Report => "report",
            Self::Alert => "alert",
        }
    }
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Code matchers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Builtin {
    /// The log is empty.
    NoTrace,
    /// CKI's "tests did not run"; needs test-result artifacts: never matches here.
    MissedTests,
}

/// A `messages` entry as written, for reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Message {
    pub text: String,
    pub regex: bool,
}

/// One validated matcher.
#[derive(Debug, Clone)]
pub struct Matcher {
    pub name: String,
    pub description: String,
    pub action: Action,
    pub retry_limit: u32,
    pub retry_delays: Vec<Duration>,
    /// Empty: any status.
    pub job_status: Vec<String>,
    pub job_name: Vec<String>,
    pub web_url: Vec<String>,
    pub failure_reason: Vec<String>,
    pub messages: Vec<Message>,
    pub maximum_artifact_size: u64,
    pub builtin: Option<Builtin>,
    /// This matcher's patterns in the shared scanner.
    patterns: Range<usize>,
}

impl Matcher {
    /// The delay before retry number `retry` (1-based): the n-th delay, the last repeating.
    pub fn delay_for_retry(&self, retry: u32) -> Duration {
        let index = usize::try_from(retry.saturating_sub(1)).unwrap_or(usize::MAX);
        self.retry_delays
            .get(index)
            .or(self.retry_delays.last())
            .copied()
            .unwrap_or(DEFAULT_RETRY_DELAY)
    }

    /// False for matchers that load but can never match here (`missed_tests`).
    pub fn can_match(&self) -> bool {
        self.builtin != Some(Builtin::MissedTests)
    }

    /// Whether deciding this matcher needs the job's log.
    pub fn needs_trace(&self) -> bool {
        !self.messages.is_empty() || self.builtin == Some(Builtin::NoTrace)
    }

    /// Why this matcher does not apply to the job, judging by the job alone.
    pub fn job_mismatch(&self, job: &JobFacts<'_>) -> Option<String> {
        if !self.job_status.is_empty() && !self.job_status.iter().any(|s| s == job.status) {
            return Some(format!(
                "job status `{}` is not one of [{}]",
                job.status,
                self.job_status.join(", ")
            ));
        }
        if !self.job_name.is_empty()
            && !self
                .job_name
                .iter()
                .any(|n| job.name.starts_with(n.as_str()))
        {
            return Some(format!(
                "job name `{}` does not start with any of [{}]",
                job.name,
                self.job_name.join(", ")
            ));
        }
        if !self.web_url.is_empty()
            && !self
                .web_url
                .iter()
                .any(|u| job.web_url.starts_with(u.as_str()))
        {
            return Some(format!(
                "job URL `{}` is not under any of [{}]",
                job.web_url,
                self.web_url.join(", ")
            ));
        }
        if !self.failure_reason.is_empty()
            && !job
                .failure_reason
                .is_some_and(|r| self.failure_reason.iter().any(|f| f == r))
        {
            return Some(format!(
                "failure reason `{}` is not one of [{}]",
                job.failure_reason.unwrap_or("none"),
                self.failure_reason.join(", ")
            ));
        }
        None
    }
}

/// What the matchers look at in a job.
#[derive(Debug, Clone, Copy)]
pub struct JobFacts<'a> {
    pub status: &'a str,
    pub name: &'a str,
    pub web_url: &'a str,
    pub failure_reason: Option<&'a str>,
}

/// The end of a job's log, as fetched.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Trace {
    /// The last bytes of the log (all of it when short enough).
    pub tail: Vec<u8>,
    /// The size of the whole log.
    pub total_bytes: u64,
}

impl Trace {
    pub fn from_bytes(bytes: Vec<u8>) -> Self {
        Self {
            total_bytes: bytes.len() as u64,
            tail: bytes,
        }
    }

    /// No log, or only whitespace.
    pub fn is_empty(&self) -> bool {
        self.total_bytes == self.tail.len() as u64 && self.tail.iter().all(u8::is_ascii_whitespace)
    }
}

/// A matcher that failed validation.
#[derive(Debug, thiserror::Error)]
#[error("matcher {matcher}: {problem}")]
pub struct MatcherError {
    /// `` `name` `` or `#<position>` when unnamed; `file` or `list` for the whole file.
    pub matcher: String,
    pub problem: Problem,
}

/// The validated matchers with their compiled patterns.
#[derive(Debug, Clone)]
pub struct MatcherSet {
    matchers: Vec<Matcher>,
    scanner: Scanner,
    /// Every message as a regex, in matcher order (plain text escaped).
    patterns: Vec<String>,
    warnings: Vec<String>,
}

impl MatcherSet {
    /// The shipped default matchers.
    pub fn default_set() -> Self {
        Self::from_yaml(DEFAULT_MATCHERS_YAML).expect("the shipped default matchers are valid")
    }

    /// Parses and validates a matchers file (`{matchers: [...]}` or a list).
    pub fn from_yaml(text: &str) -> Result<Self, MatcherError> {
        let entries = schema::parse_matchers_file(text).map_err(|e| MatcherError {
            matcher: "file".into(),
            problem: e.into(),
        })?;
        Self::from_entries(entries)
    }

    /// Validates matchers (groups flattened in file order) and compiles their patterns.
    pub fn from_entries(entries: Vec<RawMatcher>) -> Result<Self, MatcherError> {
        let mut flat = Vec::new();
        flatten(entries, None, &mut flat);
        if flat.is_empty() {
            return Err(MatcherError {
                matcher: "list".into(),
                problem: Problem::NoMatchers,
            });
        }
        let mut matchers = Vec::with_capacity(flat.len());
        let mut patterns = Vec::new();
        let mut owners = Vec::new();
        let mut warnings = Vec::new();
        for (position, raw) in flat.into_iter().enumerate() {
            let label = raw
                .name
                .as_ref()
                .filter(|n| !n.trim().is_empty())
                .map_or_else(|| format!("#{}", position + 1), |n| format!("`{n}`"));
            let fail = |problem: Problem| MatcherError {
                matcher: label.clone(),
                problem,
            };
            let matcher = validate(raw, position, &mut patterns, &mut owners).map_err(fail)?;
            if matchers.iter().any(|m: &Matcher| m.name == matcher.name) {
                return Err(fail(Problem::DuplicateName));
            }
            if matcher.builtin == Some(Builtin::MissedTests) {
                warnings.push(format!(
                    "matcher `{}`: builtin `missed_tests` needs CKI's test-result artifacts, which Steadfast does not read; it never matches",
                    matcher.name
                ));
            }
            matchers.push(matcher);
        }
        let scanner = Scanner::new(&patterns).map_err(|e| {
            let (matcher, message) = owners[e.index];
            let m: &Matcher = &matchers[matcher];
            MatcherError {
                matcher: format!("`{}`", m.name),
                problem: Problem::Pattern {
                    number: message + 1,
                    text: m.messages[message].text.clone(),
                    source: e,
                },
            }
        })?;
        Ok(Self {
            matchers,
            scanner,
            patterns,
            warnings,
        })
    }

    pub fn matchers(&self) -> &[Matcher] {
        &self.matchers
    }

    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    pub fn pattern_count(&self) -> usize {
        self.scanner.pattern_count()
    }

    /// Every `messages` entry as the regex it is compiled to (plain text escaped), in
    /// matcher order — e.g. to hand the same patterns to `rg -f` in the benchmark.
    pub fn patterns(&self) -> &[String] {
        &self.patterns
    }

    /// Whether any matcher looks at jobs in this status (if none does, the event is ignored
    /// without fetching anything).
    pub fn considers_status(&self, status: &str) -> bool {
        self.matchers
            .iter()
            .any(|m| m.job_status.is_empty() || m.job_status.iter().any(|s| s == status))
    }

    /// How much of the log the evaluation needs: `None` when the first matcher that applies
    /// to the job decides without the log (or none applies), else the largest
    /// `maximum_artifact_size` among the applicable matchers that read it.
    pub fn trace_window(&self, job: &JobFacts<'_>) -> Option<u64> {
        let mut applicable = self
            .matchers
            .iter()
            .filter(|m| m.can_match() && m.job_mismatch(job).is_none());
        let first = applicable.next()?;
        if !first.needs_trace() {
            return None;
        }
        std::iter::once(first)
            .chain(applicable)
            .filter(|m| m.needs_trace())
            .map(|m| m.maximum_artifact_size)
            .max()
    }

    /// Every matcher's verdict on `job`. Without `trace`, matchers that need the log and come
    /// after a match are [`Verdict::NotEvaluated`]; before one, they do not match.
    pub fn evaluate(&self, job: &JobFacts<'_>, trace: Option<&Trace>) -> Evaluation {
        let scan = trace.map(|t| self.scanner.scan(&t.tail));
        let mut decided = false;
        let verdicts = self
            .matchers
            .iter()
            .map(|m| {
                let verdict = match (m.job_mismatch(job), trace, &scan) {
                    (Some(reason), _, _) => Verdict::NotApplicable { reason },
                    (None, _, _) if !m.can_match() => Verdict::NoMatch {
                        reason: "builtin `missed_tests` is not supported".into(),
                    },
                    (None, _, _) if !m.needs_trace() => Verdict::Matched(Evidence {
                        reason: job_evidence(m, job),
                        message: None,
                        line: None,
                    }),
                    (None, Some(trace), Some(scan)) => log_verdict(m, trace, scan),
                    (None, _, _) if decided => Verdict::NotEvaluated,
                    (None, _, _) => Verdict::NoMatch {
                        reason: "the log was not fetched".into(),
                    },
                };
                decided |= matches!(verdict, Verdict::Matched(_));
                verdict
            })
            .collect();
        Evaluation { verdicts }
    }
}

#[cfg(test)]
mod defaults_tests;

#[cfg(test)]
mod tests;

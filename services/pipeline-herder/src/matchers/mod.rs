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

use std::ops::Range;
use std::time::Duration;

use serde::Serialize;

use self::scan::{ScanResult, Scanner};
use self::schema::{RawDuration, RawMatcher, RawMessage};

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

/// Why a matcher matched.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Evidence {
    /// One sentence: "message `...` found in the log", "the log is empty", ...
    pub reason: String,
    /// The message that matched, as written.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The log line it matched on (escape sequences removed, shortened).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<String>,
}

/// One matcher's verdict on one job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum Verdict {
    Matched(Evidence),
    /// The job conditions do not hold.
    NotApplicable {
        reason: String,
    },
    /// The job conditions hold, the log does not match.
    NoMatch {
        reason: String,
    },
    /// Not decided because an earlier matcher matched without the log.
    NotEvaluated,
}

/// Every matcher's verdict, in file order.
#[derive(Debug, Clone)]
pub struct Evaluation {
    pub verdicts: Vec<Verdict>,
}

impl Evaluation {
    /// The deciding matcher: the first that matched.
    pub fn first_match(&self) -> Option<(usize, &Evidence)> {
        self.verdicts.iter().enumerate().find_map(|(i, v)| match v {
            Verdict::Matched(evidence) => Some((i, evidence)),
            _ => None,
        })
    }
}

/// A matcher that failed validation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("matcher {matcher}: {reason}")]
pub struct MatcherError {
    /// `` `name` `` or `#<position>` when unnamed.
    pub matcher: String,
    pub reason: String,
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
        let entries = schema::parse_matchers_file(text).map_err(|reason| MatcherError {
            matcher: "file".into(),
            reason,
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
                reason: "no matchers are defined".into(),
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
            let fail = |reason: String| MatcherError {
                matcher: label.clone(),
                reason,
            };
            let matcher = validate(raw, position, &mut patterns, &mut owners).map_err(fail)?;
            if matchers.iter().any(|m: &Matcher| m.name == matcher.name) {
                return Err(fail(
                    "the name is used by an earlier matcher; names must be unique".into(),
                ));
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
                reason: format!(
                    "message {} (`{}`) {}",
                    message + 1,
                    m.messages[message].text,
                    e.reason
                ),
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

/// Groups flattened in file order; each child inherits its group's fields.
fn flatten(entries: Vec<RawMatcher>, group: Option<&RawMatcher>, out: &mut Vec<RawMatcher>) {
    for entry in entries {
        let entry = match group {
            Some(group) => entry.inherit(group),
            None => entry,
        };
        match entry.matchers.clone() {
            Some(children) => flatten(children, Some(&entry), out),
            None => out.push(entry),
        }
    }
}

fn validate(
    raw: RawMatcher,
    position: usize,
    patterns: &mut Vec<String>,
    owners: &mut Vec<(usize, usize)>,
) -> Result<Matcher, String> {
    let name = raw
        .name
        .map(|n| n.trim().to_owned())
        .filter(|n| !n.is_empty())
        .ok_or("has no `name` (names label metrics and the ledger)")?;
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    {
        return Err("the name may contain only letters, digits, '-', '_' and '.'".into());
    }
    let action = match raw.action.as_deref().unwrap_or("retry") {
        "retry" => Action::Retry,
        "report" => Action::Report,
        "alert" => Action::Alert,
        other => {
            return Err(format!(
                "unknown action `{other}` (expected retry, report or alert)"
            ));
        }
    };
    let retry_delays = match raw.retry_delays {
        None => vec![DEFAULT_RETRY_DELAY],
        Some(list) if list.is_empty() => {
            return Err("`retry_delays` is empty (omit it for the default [5m])".into());
        }
        Some(list) => list
            .iter()
            .enumerate()
            .map(|(i, d)| parse_delay(d).map_err(|e| format!("retry_delays[{i}]: {e}")))
            .collect::<Result<_, _>>()?,
    };
    let job_status = raw
        .job_status
        .map_or_else(|| vec!["failed".to_owned()], |s| s.into_vec());
    if let Some(unknown) = job_status
        .iter()
        .find(|s| !GITLAB_JOB_STATUSES.contains(&s.as_str()))
    {
        return Err(format!(
            "unknown job_status `{unknown}` (GitLab's statuses: {})",
            GITLAB_JOB_STATUSES.join(", ")
        ));
    }
    let builtin = match raw.builtin.as_deref() {
        None => None,
        Some("no_trace") => Some(Builtin::NoTrace),
        Some("missed_tests") => Some(Builtin::MissedTests),
        Some(other) => {
            return Err(format!(
                "unknown builtin `{other}` (expected no_trace or missed_tests)"
            ));
        }
    };
    let maximum_artifact_size = raw
        .maximum_artifact_size
        .unwrap_or(DEFAULT_MAXIMUM_ARTIFACT_SIZE);
    if maximum_artifact_size == 0 || maximum_artifact_size > MAXIMUM_ARTIFACT_SIZE_LIMIT {
        return Err(format!(
            "maximum_artifact_size must be between 1 and {MAXIMUM_ARTIFACT_SIZE_LIMIT} bytes, not {maximum_artifact_size}"
        ));
    }
    let non_empty = |field: &str, values: Vec<String>| -> Result<Vec<String>, String> {
        if values.iter().any(|v| v.trim().is_empty()) {
            return Err(format!("`{field}` contains an empty value"));
        }
        Ok(values)
    };
    let job_name = non_empty(
        "job_name",
        raw.job_name.map(|v| v.into_vec()).unwrap_or_default(),
    )?;
    let web_url = non_empty(
        "web_url",
        raw.web_url.map(|v| v.into_vec()).unwrap_or_default(),
    )?;
    let failure_reason = non_empty(
        "failure_reason",
        raw.failure_reason.map(|v| v.into_vec()).unwrap_or_default(),
    )?;
    let raw_messages = raw.messages.unwrap_or_default();
    if raw_messages.is_empty()
        && builtin.is_none()
        && failure_reason.is_empty()
        && job_name.is_empty()
        && web_url.is_empty()
    {
        return Err(
            "has no condition, so it would match every failed job: give messages, failure_reason, job_name, web_url or builtin"
                .into(),
        );
    }
    let first_pattern = patterns.len();
    let mut messages = Vec::with_capacity(raw_messages.len());
    for (index, message) in raw_messages.into_iter().enumerate() {
        let (text, regex, pattern) = match message {
            RawMessage::Text(text) => {
                let pattern = escape(&text);
                (text, false, pattern)
            }
            RawMessage::Regex(pattern) => (pattern.clone(), true, pattern),
        };
        if text.is_empty() {
            return Err(format!("message {} is empty", index + 1));
        }
        patterns.push(pattern);
        owners.push((position, index));
        messages.push(Message { text, regex });
    }
    Ok(Matcher {
        name,
        description: raw.description.unwrap_or_default(),
        action,
        retry_limit: raw.retry_limit.unwrap_or(DEFAULT_RETRY_LIMIT),
        retry_delays,
        job_status,
        job_name,
        web_url,
        failure_reason,
        messages,
        maximum_artifact_size,
        builtin,
        patterns: first_pattern..patterns.len(),
    })
}

fn parse_delay(raw: &RawDuration) -> Result<Duration, String> {
    let delay = match raw {
        RawDuration::Text(text) => steadfast_service_kit::config::parse_duration(text)?,
        RawDuration::Seconds(seconds) if seconds.is_finite() && *seconds >= 0.0 => {
            Duration::from_secs_f64(*seconds)
        }
        RawDuration::Seconds(seconds) => {
            return Err(format!("`{seconds}` must be a non-negative duration"));
        }
    };
    if delay > MAXIMUM_RETRY_DELAY {
        return Err(format!("`{raw}` is longer than the maximum of 7 days"));
    }
    Ok(delay)
}

/// Plain text as a regex that matches it literally (every meta character escaped).
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if "\\.+*?()|[]{}^$#&-~".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn job_evidence(matcher: &Matcher, job: &JobFacts<'_>) -> String {
    if !matcher.failure_reason.is_empty() {
        format!(
            "failure reason `{}`",
            job.failure_reason.unwrap_or_default()
        )
    } else if !matcher.job_name.is_empty() {
        format!("job name `{}`", job.name)
    } else {
        format!("job URL `{}`", job.web_url)
    }
}

fn log_verdict(matcher: &Matcher, trace: &Trace, scan: &ScanResult) -> Verdict {
    match matcher.builtin {
        Some(Builtin::NoTrace) if !trace.is_empty() => {
            return Verdict::NoMatch {
                reason: "the log is not empty".into(),
            };
        }
        Some(Builtin::NoTrace) if matcher.messages.is_empty() => {
            return Verdict::Matched(Evidence {
                reason: "the log is empty".into(),
                message: None,
                line: None,
            });
        }
        _ => {}
    }
    // The part of the fetched tail this matcher may look at.
    let window_start = trace
        .tail
        .len()
        .saturating_sub(usize::try_from(matcher.maximum_artifact_size).unwrap_or(usize::MAX));
    let hit = matcher
        .patterns
        .clone()
        .zip(&matcher.messages)
        .filter_map(|(pattern, message)| scan.last_hit(pattern).map(|hit| (hit, message)))
        .filter(|(hit, _)| hit.line_end > window_start)
        // The last line that matched; on it, the first message in file order.
        .min_by_key(|(hit, _)| std::cmp::Reverse(hit.line_start));
    match hit {
        Some((hit, message)) => Verdict::Matched(Evidence {
            reason: format!("message `{}` found in the log", message.text),
            message: Some(message.text.clone()),
            line: Some(excerpt(&trace.tail[hit.line_start..hit.line_end])),
        }),
        None => Verdict::NoMatch {
            reason: format!(
                "none of its {} message(s) is in the last {} bytes of the log",
                matcher.messages.len(),
                matcher.maximum_artifact_size
            ),
        },
    }
}

/// A log line fit for a chat message: ANSI escape sequences and carriage returns removed,
/// invalid UTF-8 replaced, at most 200 characters.
pub fn excerpt(line: &[u8]) -> String {
    let text = String::from_utf8_lossy(line);
    let mut out = String::with_capacity(text.len().min(256));
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\x1b' => {
                // CSI: ESC [ parameters final-byte
                if chars.peek() == Some(&'[') {
                    chars.next();
                    for c in chars.by_ref() {
                        if ('@'..='~').contains(&c) {
                            break;
                        }
                    }
                }
            }
            '\r' => {}
            c if c.is_control() && c != '\t' => {}
            c => out.push(c),
        }
    }
    let trimmed = out.trim();
    match trimmed.char_indices().nth(200) {
        Some((cut, _)) => format!("{}…", &trimmed[..cut]),
        None => trimmed.to_owned(),
    }
}

#[cfg(test)]
mod defaults_tests;

#[cfg(test)]
mod tests {
    use super::*;

    fn error(yaml: &str) -> String {
        MatcherSet::from_yaml(yaml).unwrap_err().to_string()
    }

    #[test]
    fn invalid_matchers_are_named_with_the_reason() {
        assert_eq!(
            error("- name: pull\n  action: retr\n  messages: [x]\n"),
            "matcher `pull`: unknown action `retr` (expected retry, report or alert)"
        );
        let bad_regex = error(
            "- name: ok\n  messages: [x]\n- name: pull\n  messages: [a, {regex: 'image (pull'}]\n",
        );
        assert!(
            bad_regex
                .starts_with("matcher `pull`: message 2 (`image (pull`) is not a valid regex:"),
            "{bad_regex}"
        );
        assert_eq!(
            error("- name: all\n  messages: [{regex: '.*'}]\n"),
            "matcher `all`: message 1 (`.*`) matches an empty line, so it would match every log"
        );
        assert_eq!(
            error("- messages: [x]\n"),
            "matcher #1: has no `name` (names label metrics and the ledger)"
        );
        assert_eq!(
            error("- name: a\n  messages: [x]\n- name: a\n  messages: [y]\n"),
            "matcher `a`: the name is used by an earlier matcher; names must be unique"
        );
        assert_eq!(
            error("- name: everything\n  action: retry\n"),
            "matcher `everything`: has no condition, so it would match every failed job: give messages, failure_reason, job_name, web_url or builtin"
        );
        assert!(
            error("- name: s\n  job_status: [fail]\n  messages: [x]\n")
                .starts_with("matcher `s`: unknown job_status `fail` (GitLab's statuses: created,"),
        );
        assert_eq!(
            error("- name: d\n  retry_delays: [5m, soon]\n  messages: [x]\n"),
            "matcher `d`: retry_delays[1]: `soon` is not a duration like 500ms, 30s, 5m or 1h30m"
        );
        assert_eq!(
            error("- name: b\n  builtin: no_log\n"),
            "matcher `b`: unknown builtin `no_log` (expected no_trace or missed_tests)"
        );
        assert_eq!(
            error("- name: m\n  maximum_artifact_size: 0\n  messages: [x]\n"),
            "matcher `m`: maximum_artifact_size must be between 1 and 268435456 bytes, not 0"
        );
        assert_eq!(
            error("matchers: []\n"),
            "matcher list: no matchers are defined"
        );
    }

    #[test]
    fn plain_text_is_literal_and_groups_nest() {
        let set = MatcherSet::from_yaml(
            "matchers:\n  - action: alert\n    retry_limit: 0\n    matchers:\n      - job_status: []\n        matchers:\n          - name: lit\n            messages: ['a.b (c) [d]* $e']\n",
        )
        .unwrap();
        let m = &set.matchers()[0];
        assert_eq!((m.action, m.retry_limit), (Action::Alert, 0));
        assert!(m.job_status.is_empty(), "inherited through two groups");
        let job = JobFacts {
            status: "success",
            name: "n",
            web_url: "u",
            failure_reason: None,
        };
        let hit = set.evaluate(
            &job,
            Some(&Trace::from_bytes(b"x a.b (c) [d]* $e y\n".to_vec())),
        );
        assert!(hit.first_match().is_some());
        let miss = set.evaluate(&job, Some(&Trace::from_bytes(b"aXb (c) d $e\n".to_vec())));
        assert!(miss.first_match().is_none());
    }

    #[test]
    fn job_conditions_explain_themselves_and_decide_whether_the_log_is_needed() {
        let set = MatcherSet::from_yaml(
            "- name: infra\n  failure_reason: runner_system_failure\n- name: tests\n  job_name: test\n  web_url: https://gitlab.com/cki-project/\n  messages: [Timeout]\n",
        )
        .unwrap();
        let mut job = JobFacts {
            status: "failed",
            name: "test x86_64",
            web_url: "https://gitlab.com/cki-project/kernel-ark/-/jobs/1",
            failure_reason: Some("runner_system_failure"),
        };
        assert_eq!(
            set.trace_window(&job),
            None,
            "the first applicable matcher needs no log"
        );
        let evaluation = set.evaluate(&job, None);
        assert_eq!(evaluation.first_match().unwrap().0, 0);
        assert_eq!(evaluation.verdicts[1], Verdict::NotEvaluated);

        job.failure_reason = Some("script_failure");
        assert_eq!(set.trace_window(&job), Some(DEFAULT_MAXIMUM_ARTIFACT_SIZE));
        let evaluation = set.evaluate(&job, Some(&Trace::from_bytes(b"Timeout\n".to_vec())));
        assert_eq!(
            evaluation.verdicts[0],
            Verdict::NotApplicable {
                reason: "failure reason `script_failure` is not one of [runner_system_failure]"
                    .into()
            }
        );
        assert_eq!(evaluation.first_match().unwrap().0, 1);

        job.name = "build x86_64";
        assert_eq!(set.trace_window(&job), None, "nothing applies");
        assert!(!set.considers_status("success"));
        assert!(set.considers_status("failed"));
    }

    #[test]
    fn excerpts_are_clean_and_short() {
        assert_eq!(excerpt(b"\x1b[31;1mERROR: boom\x1b[0;m\r"), "ERROR: boom");
        let long = excerpt("é".repeat(300).as_bytes());
        assert_eq!(long.chars().count(), 201);
        assert!(long.ends_with('…'));
    }

    #[test]
    fn a_missed_tests_builtin_loads_with_a_warning_and_never_matches() {
        let set = MatcherSet::from_yaml(
            "- name: tests-not-run\n  job_status: []\n  job_name: test\n  builtin: missed_tests\n",
        )
        .unwrap();
        assert_eq!(set.warnings().len(), 1);
        let job = JobFacts {
            status: "success",
            name: "test x86_64",
            web_url: "u",
            failure_reason: None,
        };
        assert!(
            set.evaluate(&job, Some(&Trace::default()))
                .first_match()
                .is_none()
        );
    }
}

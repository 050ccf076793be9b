//! Validation of one matcher as written: every field checked, defaults filled in, its
//! messages turned into patterns for the scanner. Each refusal is a [`Problem`].

use std::time::Duration;

use steadfast_service_kit::config::{DurationError, parse_duration};

use super::scan::PatternError;
use super::schema::{RawDuration, RawMatcher, RawMessage};
use super::{
    Action, Builtin, DEFAULT_MAXIMUM_ARTIFACT_SIZE, DEFAULT_RETRY_DELAY, DEFAULT_RETRY_LIMIT,
    GITLAB_JOB_STATUSES, MAXIMUM_ARTIFACT_SIZE_LIMIT, MAXIMUM_RETRY_DELAY, Matcher, Message,
};

/// Why a matcher (or the list of them) is refused.
#[derive(Debug, thiserror::Error)]
pub enum Problem {
    #[error("has no `name` (names label metrics and the ledger)")]
    NoName,
    #[error("the name may contain only letters, digits, '-', '_' and '.'")]
    BadName,
    #[error("the name is used by an earlier matcher; names must be unique")]
    DuplicateName,
    #[error("unknown action `{action}` (expected retry, report or alert)")]
    UnknownAction { action: String },
    #[error("`retry_delays` is empty (omit it for the default [5m])")]
    NoRetryDelays,
    #[error("retry_delays[{index}]: {source}")]
    RetryDelay {
        index: usize,
        #[source]
        source: DelayError,
    },
    #[error("unknown job_status `{status}` (GitLab's statuses: {statuses})", statuses = GITLAB_JOB_STATUSES.join(", "))]
    UnknownJobStatus { status: String },
    #[error("unknown builtin `{builtin}` (expected no_trace or missed_tests)")]
    UnknownBuiltin { builtin: String },
    #[error(
        "maximum_artifact_size must be between 1 and {MAXIMUM_ARTIFACT_SIZE_LIMIT} bytes, not {size}"
    )]
    ArtifactSize { size: u64 },
    #[error("`{field}` contains an empty value")]
    EmptyValue { field: &'static str },
    #[error(
        "has no condition, so it would match every failed job: give messages, failure_reason, job_name, web_url or builtin"
    )]
    NoCondition,
    #[error("message {number} is empty")]
    EmptyMessage { number: usize },
    /// A message that does not compile, alone or with the others.
    #[error("message {number} (`{text}`) {source}")]
    Pattern {
        number: usize,
        text: String,
        #[source]
        source: PatternError,
    },
    #[error("no matchers are defined")]
    NoMatchers,
    #[error(transparent)]
    File(#[from] super::schema::SchemaError),
}

/// Why a `retry_delays` entry is refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DelayError {
    #[error(transparent)]
    Text(#[from] DurationError),
    #[error("`{seconds}` must be a non-negative duration")]
    Negative { seconds: f64 },
    #[error("`{delay}` is longer than the maximum of 7 days")]
    TooLong { delay: String },
}

/// Groups flattened in file order; each child inherits its group's fields.
pub(super) fn flatten(
    entries: Vec<RawMatcher>,
    group: Option<&RawMatcher>,
    out: &mut Vec<RawMatcher>,
) {
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

pub(super) fn validate(
    raw: RawMatcher,
    position: usize,
    patterns: &mut Vec<String>,
    owners: &mut Vec<(usize, usize)>,
) -> Result<Matcher, Problem> {
    let name = raw
        .name
        .map(|n| n.trim().to_owned())
        .filter(|n| !n.is_empty())
        .ok_or(Problem::NoName)?;
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    {
        return Err(Problem::BadName);
    }
    let action = match raw.action.as_deref().unwrap_or("retry") {
        "retry" => Action::Retry,
        "report" => Action::Report,
        "alert" => Action::Alert,
        other => {
            return Err(Problem::UnknownAction {
                action: other.to_owned(),
            });
        }
    };
    let retry_delays = match raw.retry_delays {
        None => vec![DEFAULT_RETRY_DELAY],
        Some(list) if list.is_empty() => {
            return Err(Problem::NoRetryDelays);
        }
        Some(list) => list
            .iter()
            .enumerate()
            .map(|(index, d)| {
                parse_delay(d).map_err(|source| Problem::RetryDelay { index, source })
            })
            .collect::<Result<_, _>>()?,
    };
    let job_status = raw
        .job_status
        .map_or_else(|| vec!["failed".to_owned()], |s| s.into_vec());
    if let Some(unknown) = job_status
        .iter()
        .find(|s| !GITLAB_JOB_STATUSES.contains(&s.as_str()))
    {
        return Err(Problem::UnknownJobStatus {
            status: unknown.clone(),
        });
    }
    let builtin = match raw.builtin.as_deref() {
        None => None,
        Some("no_trace") => Some(Builtin::NoTrace),
        Some("missed_tests") => Some(Builtin::MissedTests),
        Some(other) => {
            return Err(Problem::UnknownBuiltin {
                builtin: other.to_owned(),
            });
        }
    };
    let maximum_artifact_size = raw
        .maximum_artifact_size
        .unwrap_or(DEFAULT_MAXIMUM_ARTIFACT_SIZE);
    if maximum_artifact_size == 0 || maximum_artifact_size > MAXIMUM_ARTIFACT_SIZE_LIMIT {
        return Err(Problem::ArtifactSize {
            size: maximum_artifact_size,
        });
    }
    let non_empty = |field: &'static str, values: Vec<String>| -> Result<Vec<String>, Problem> {
        if values.iter().any(|v| v.trim().is_empty()) {
            return Err(Problem::EmptyValue { field });
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
        return Err(Problem::NoCondition);
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
            return Err(Problem::EmptyMessage { number: index + 1 });
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

fn parse_delay(raw: &RawDuration) -> Result<Duration, DelayError> {
    let delay = match raw {
        RawDuration::Text(text) => parse_duration(text)?,
        RawDuration::Seconds(seconds) if seconds.is_finite() && *seconds >= 0.0 => {
            Duration::from_secs_f64(*seconds)
        }
        RawDuration::Seconds(seconds) => {
            return Err(DelayError::Negative { seconds: *seconds });
        }
    };
    if delay > MAXIMUM_RETRY_DELAY {
        return Err(DelayError::TooLong {
            delay: raw.to_string(),
        });
    }
    Ok(delay)
}

/// Plain text as a regex that matches it literally (every meta character escaped).
pub(super) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if "\\.+*?()|[]{}^$#&-~".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

//! What the matchers found: one [`Verdict`] per matcher, with the [`Evidence`] of a match
//! and the log line it matched on.

use serde::Serialize;

use super::scan::ScanResult;
use super::{Builtin, JobFacts, Matcher, Trace};

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

pub(super) fn job_evidence(matcher: &Matcher, job: &JobFacts<'_>) -> String {
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

pub(super) fn log_verdict(matcher: &Matcher, trace: &Trace, scan: &ScanResult) -> Verdict {
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

//! The policy: from a failed job to a decision. Reads GitLab, changes nothing, so the
//! service and `check --job-url` share it.
//!
//! In order: an unknown instance is reported; the log's tail is fetched if the matchers need
//! it; the first matching matcher decides. A `retry` becomes a `report` when the job already
//! had `retry_limit` retries, when its pipeline is no longer the newest of its ref, or while
//! the herder is paused. A 4xx from GitLab (no access, job gone) is final and reported;
//! transient GitLab errors are returned, so the event is tried again later.

use std::time::Duration;

use serde::Serialize;

use crate::gitlab::{GitLab, GitLabError, ProjectRef};
use crate::hook::Job;
use crate::matchers::{Action, Evaluation, MatcherSet};

/// What the herder does about a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DecidedAction {
    Retry,
    Report,
    Alert,
    /// No problem detected: nothing to do.
    None,
}

impl DecidedAction {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Retry => "retry",
            Self::Report => "report",
            Self::Alert => "alert",
            Self::None => "none",
        }
    }
}

impl From<Action> for DecidedAction {
    fn from(action: Action) -> Self {
        match action {
            Action::Retry => Self::Retry,
            Action::Report => Self::Report,
            Action::Alert => Self::Alert,
        }
    }
}

/// A decision about one job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Decision {
    /// The matcher that matched, if any.
    pub matcher: Option<String>,
    /// What that matcher asked for (before limits, supersession and pause).
    pub matcher_action: Option<Action>,
    pub action: DecidedAction,
    /// One sentence for people.
    pub reason: String,
    /// The retry this would be: earlier attempts + 1.
    pub attempt: u32,
    pub retry_limit: Option<u32>,
    #[serde(serialize_with = "seconds")]
    pub delay: Option<Duration>,
    /// The log line that matched.
    pub log_line: Option<String>,
}

fn seconds<S: serde::Serializer>(delay: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    match delay {
        Some(d) => s.serialize_some(&d.as_secs_f64()),
        None => s.serialize_none(),
    }
}

impl Decision {
    fn report(reason: String) -> Self {
        Self {
            matcher: None,
            matcher_action: None,
            action: DecidedAction::Report,
            reason,
            attempt: 0,
            retry_limit: None,
            delay: None,
            log_line: None,
        }
    }

    /// The outcome recorded at once for decisions that schedule nothing.
    pub fn immediate_outcome(&self) -> Option<&'static str> {
        match self.action {
            DecidedAction::Retry => None,
            DecidedAction::None => Some("no_problem"),
            DecidedAction::Report | DecidedAction::Alert => Some("reported"),
        }
    }
}

/// The decision and, when the matchers ran, every matcher's verdict.
#[derive(Debug, Clone)]
pub struct Assessment {
    pub evaluation: Option<Evaluation>,
    pub decision: Decision,
}

/// Whether to fetch the log even when the first applicable matcher does not need it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFetch {
    /// Only when the decision needs it (the service).
    WhenNeeded,
    /// Always, so every matcher gets a verdict (`check --job-url`).
    Always,
}

/// Decides what to do about `job`. Errors are transient GitLab failures only.
pub async fn assess(
    gitlab: &GitLab,
    matchers: &MatcherSet,
    job: &Job,
    paused: bool,
    fetch: LogFetch,
) -> Result<Assessment, GitLabError> {
    if !gitlab.knows(&job.instance) {
        return Ok(Assessment {
            evaluation: None,
            decision: Decision::report(format!(
                "GitLab instance `{}` is not configured in gitlab_instances, so the job cannot be examined or retried",
                job.instance
            )),
        });
    }
    let project = job.project_ref();
    let facts = job.facts();
    let window = match fetch {
        LogFetch::WhenNeeded => matchers.trace_window(&facts),
        LogFetch::Always => matchers
            .matchers()
            .iter()
            .map(|m| m.maximum_artifact_size)
            .max(),
    };
    let trace = match window {
        Some(bytes) => match gitlab
            .trace_tail(&job.instance, &project, job.job_id, bytes)
            .await
        {
            Ok(trace) => Some(trace),
            Err(e) if e.is_transient() => return Err(e),
            Err(e) => return Ok(final_error("cannot read the job's log", &e)),
        },
        None => None,
    };
    let evaluation = matchers.evaluate(&facts, trace.as_ref());
    let Some((index, evidence)) = evaluation.first_match() else {
        return Ok(Assessment {
            evaluation: Some(evaluation),
            decision: Decision {
                matcher: None,
                matcher_action: None,
                action: DecidedAction::None,
                reason: "no problem detected".into(),
                attempt: 0,
                retry_limit: None,
                delay: None,
                log_line: None,
            },
        });
    };
    let matcher = &matchers.matchers()[index];
    let mut decision = Decision {
        matcher: Some(matcher.name.clone()),
        matcher_action: Some(matcher.action),
        action: matcher.action.into(),
        reason: format!("matcher `{}`: {}", matcher.name, evidence.reason),
        attempt: 0,
        retry_limit: None,
        delay: None,
        log_line: evidence.line.clone(),
    };
    if matcher.action == Action::Retry {
        let retries = match job.retries_count {
            Some(count) => Ok(count),
            None => {
                gitlab
                    .earlier_attempts(
                        &job.instance,
                        &project,
                        job.pipeline_id,
                        &job.name,
                        job.job_id,
                    )
                    .await
            }
        };
        let retries = match retries {
            Ok(count) => count,
            Err(e) if e.is_transient() => return Err(e),
            Err(e) => {
                return Ok(with_evaluation(
                    final_error("cannot count the job's earlier attempts", &e),
                    evaluation,
                ));
            }
        };
        decision.attempt = retries + 1;
        decision.retry_limit = Some(matcher.retry_limit);
        if let Some(why_not) =
            retry_blocker(gitlab, job, &project, retries, matcher.retry_limit, paused).await?
        {
            decision.action = DecidedAction::Report;
            decision.reason = format!("{}; not retried: {why_not}", decision.reason);
        } else {
            let delay = matcher.delay_for_retry(decision.attempt);
            decision.delay = Some(delay);
            decision.reason = format!(
                "{}; retry {} of {} in {}",
                decision.reason,
                decision.attempt,
                matcher.retry_limit,
                steadfast_messaging::topology::delay_label(delay)
            );
        }
    }
    Ok(Assessment {
        evaluation: Some(evaluation),
        decision,
    })
}

/// Why a retry must not happen now, if it must not.
async fn retry_blocker(
    gitlab: &GitLab,
    job: &Job,
    project: &ProjectRef,
    retries: u32,
    limit: u32,
    paused: bool,
) -> Result<Option<String>, GitLabError> {
    if retries >= limit {
        return Ok(Some(if limit == 0 {
            "the matcher's retry_limit is 0".into()
        } else {
            format!(
                "the job was already retried {retries} time(s), the matcher's retry_limit is {limit}"
            )
        }));
    }
    if let Some(newer) = superseded_by(gitlab, job, project).await? {
        return Ok(Some(newer));
    }
    if paused {
        return Ok(Some("the herder is paused".into()));
    }
    Ok(None)
}

/// `Some(reason)` when a newer pipeline exists for the job's ref. A 4xx on the pipelines
/// list is reported as the reason (the retry would fail the same way).
pub async fn superseded_by(
    gitlab: &GitLab,
    job: &Job,
    project: &ProjectRef,
) -> Result<Option<String>, GitLabError> {
    match gitlab
        .newest_pipeline(&job.instance, project, &job.git_ref)
        .await
    {
        Ok(Some(newest)) if newest > job.pipeline_id => Ok(Some(format!(
            "pipeline {} is superseded by pipeline {newest} on ref `{}`",
            job.pipeline_id, job.git_ref
        ))),
        Ok(_) => Ok(None),
        Err(e) if e.is_transient() => Err(e),
        Err(e) => Ok(Some(format!(
            "cannot tell whether the pipeline is the newest: {e}"
        ))),
    }
}

fn final_error(what: &str, error: &GitLabError) -> Assessment {
    Assessment {
        evaluation: None,
        decision: Decision::report(format!("{what}: {error}")),
    }
}

fn with_evaluation(mut assessment: Assessment, evaluation: Evaluation) -> Assessment {
    assessment.evaluation = Some(evaluation);
    assessment
}

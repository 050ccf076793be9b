//! The Job Hook consumer (`#.build` on `<ns>.webhooks`): decide, record, schedule, notify.
//!
//! Idempotent by (instance, job id): a job that already has a ledger row is a duplicate —
//! unless its retry was decided but never queued (the process died in between), in which
//! case the retry is queued now. Outcomes:
//! * not a Job Hook, a status no matcher considers, `allow_failure` → done (ignored);
//! * a payload that cannot be a Job Hook → parked with the reason;
//! * database, broker or transient GitLab trouble → retried later through the retry tiers.

use steadfast_events::catalogue::{MESSAGE_TYPE_GITLAB, gitlab_type};
use steadfast_messaging::{Handler, Incoming, Outcome};
use tokio::time::Instant;

use crate::decide::{self, DecidedAction, Decision, LogFetch};
use crate::gitlab::GitLabError;
use crate::herder::{Herder, ScheduleError};
use crate::hook::{HookError, Job, JobHook};
use crate::ledger::{DecisionRow, LedgerError};
use crate::notify::DecisionEvent;

/// Why a Job Hook event was not handled, or not yet.
#[derive(Debug, thiserror::Error)]
pub enum JobEventError {
    /// The data does not deserialise as a Job Hook.
    #[error("not a valid Job Hook: {0}")]
    InvalidHook(#[source] serde_json::Error),
    /// A Job Hook that cannot be placed on a GitLab instance.
    #[error(transparent)]
    Hook(#[from] HookError),
    /// Reading or writing the ledger, or reading the pause switch.
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    /// GitLab could not be read (only transient errors get here; 4xx are decided on).
    #[error(transparent)]
    GitLab(#[from] GitLabError),
    /// Queueing the retry (broker) or marking it scheduled (ledger).
    #[error(transparent)]
    Schedule(#[from] ScheduleError),
    /// Another delivery recorded the job, yet its row cannot be read back.
    #[error("the ledger row vanished")]
    RowVanished { instance: String, job_id: u64 },
}

impl JobEventError {
    /// The consumer's outcome: a payload that can never be a job is parked; database,
    /// broker and transient GitLab trouble go to the retry tiers.
    pub fn outcome(&self) -> Outcome {
        match self {
            Self::InvalidHook(_) | Self::Hook(_) => Outcome::park(self),
            Self::GitLab(e) if !e.is_transient() => Outcome::park(self),
            Self::Ledger(_) | Self::GitLab(_) | Self::Schedule(_) | Self::RowVanished { .. } => {
                Outcome::retry(self)
            }
        }
    }
}

pub struct JobEvents {
    pub herder: Herder,
}

impl Handler for JobEvents {
    type Data = serde_json::Value;

    async fn handle(&self, message: Incoming<serde_json::Value>) -> Outcome {
        let herder = &self.herder;
        let count = |result: &str| herder.metrics.events.with_label_values(&[result]).inc();
        if message.event.event_type != gitlab_type("build")
            || message
                .message_type
                .as_deref()
                .is_some_and(|t| t != MESSAGE_TYPE_GITLAB)
        {
            tracing::debug!(event_type = %message.event.event_type, "not a GitLab Job Hook; ignored");
            count("not_a_job");
            return Outcome::Done;
        }
        let hook: JobHook = match serde_json::from_value(message.event.data) {
            Ok(hook) => hook,
            Err(error) => return JobEventError::InvalidHook(error).outcome(),
        };
        let job = match Job::from_hook(&hook, &message.event.source) {
            Ok(job) => job,
            Err(error) => return JobEventError::from(error).outcome(),
        };
        if !herder.matchers.considers_status(&job.status) {
            count("ignored_status");
            return Outcome::Done;
        }
        if job.allow_failure {
            tracing::debug!(
                job_id = job.job_id,
                "the job may fail (allow_failure); ignored"
            );
            count("ignored_allow_failure");
            return Outcome::Done;
        }
        match self.decide(&job, &message.event.id).await {
            Ok(outcome) => outcome,
            Err(error) => {
                let outcome = error.outcome();
                if matches!(outcome, Outcome::Retry(_)) {
                    tracing::warn!(job_id = job.job_id, instance = %job.instance, reason = %error, "cannot decide yet; will try again");
                }
                outcome
            }
        }
    }
}

impl JobEvents {
    async fn decide(&self, job: &Job, event_id: &str) -> Result<Outcome, JobEventError> {
        let herder = &self.herder;
        if let Some(row) = herder.ledger.find(&job.instance, job.job_id).await? {
            return self.resume(row).await;
        }
        let started = Instant::now();
        let paused = herder.pause.is_paused().await?;
        let assessment = decide::assess(
            &herder.gitlab,
            &herder.matchers,
            job,
            paused,
            LogFetch::WhenNeeded,
        )
        .await?;
        let decision = assessment.decision;
        let notification = DecisionEvent::decided(job, &decision).into_notification("decision");
        let Some(row) = herder
            .ledger
            .record(job, event_id, &decision, Some(&notification))
            .await?
        else {
            // Another delivery of the same job won the race.
            let row = herder
                .ledger
                .find(&job.instance, job.job_id)
                .await?
                .ok_or_else(|| JobEventError::RowVanished {
                    instance: job.instance.clone(),
                    job_id: job.job_id,
                })?;
            return self.resume(row).await;
        };
        herder.metrics.events.with_label_values(&["decided"]).inc();
        herder
            .metrics
            .decision_seconds
            .observe(started.elapsed().as_secs_f64());
        self.count_problem(job, &decision);
        tracing::info!(
            job_id = job.job_id,
            job_name = %job.name,
            instance = %job.instance,
            matcher = decision.matcher.as_deref().unwrap_or(""),
            action = decision.action.as_str(),
            reason = %decision.reason,
            "decided"
        );
        if decision.action == DecidedAction::Retry {
            herder.schedule(&row).await?;
        }
        herder.notifier.kick();
        Ok(Outcome::Done)
    }

    /// A job that already has a decision: queue its retry if that never happened, else
    /// nothing (a redelivered or repeated hook).
    async fn resume(&self, row: DecisionRow) -> Result<Outcome, JobEventError> {
        if row.state == "new" && row.action == "retry" {
            tracing::info!(
                job_id = row.job_id,
                "the retry was decided but not queued; queueing it now"
            );
            self.herder.schedule(&row).await?;
        } else {
            tracing::info!(job_id = row.job_id, state = %row.state, "the job already has a decision; duplicate ignored");
        }
        self.herder
            .metrics
            .events
            .with_label_values(&["duplicate"])
            .inc();
        Ok(Outcome::Done)
    }

    fn count_problem(&self, job: &Job, decision: &Decision) {
        let metrics = &self.herder.metrics;
        match &decision.matcher {
            Some(matcher) => {
                metrics
                    .problem_detected
                    .with_label_values(&[&job.stage, &job.name, matcher, decision.action.as_str()])
                    .inc();
                if decision.attempt > 0 {
                    metrics
                        .problem_retries
                        .with_label_values(&[&job.stage, &job.name, matcher])
                        .observe(f64::from(decision.attempt - 1));
                }
            }
            None if decision.action == DecidedAction::None => metrics
                .no_problem_detected
                .with_label_values(&[&job.stage, &job.name])
                .inc(),
            None => {}
        }
    }
}

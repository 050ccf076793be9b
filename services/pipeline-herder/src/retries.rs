//! The retry-due consumer (`<ns>.pipeline-herder.retries`): when a scheduled retry's delay
//! has passed, retry the job in GitLab — once.
//!
//! The ledger row is claimed first, so a duplicate message finds it `retrying` (and waits) or
//! `done` (and stops). Just before the call the herder checks again what may have changed
//! during the delay: the pause switch, a newer pipeline on the ref, a retry by someone else.
//! Transient GitLab trouble releases the claim and the message comes back through the retry
//! tiers; a 4xx is final and reported.

use steadfast_messaging::{Handler, Incoming, Outcome};
use tracing::Instrument;

use crate::decide::superseded_by;
use crate::gitlab::GitLabError;
use crate::herder::{Herder, RetryOrder};
use crate::hook::Job;
use crate::ledger::{Claim, DecisionRow, Finish, LedgerError};
use crate::notify::DecisionEvent;

/// Why a due retry was not carried out, or not yet.
#[derive(Debug, thiserror::Error)]
pub enum RetryDueError {
    /// Another worker holds the claim on the ledger row.
    #[error("another worker is retrying this job")]
    Busy { decision_id: i64 },
    /// The message names a decision the ledger does not have.
    #[error("no ledger decision {decision_id} for job {job_id}")]
    Missing { decision_id: i64, job_id: u64 },
    /// Reading the pause switch, claiming or finishing the ledger row.
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    /// GitLab could not be asked (only transient errors get here; a 4xx is final and
    /// recorded as the outcome).
    #[error(transparent)]
    GitLab(#[from] GitLabError),
}

impl RetryDueError {
    /// The consumer's outcome: a message without its decision is parked; a busy claim,
    /// database and transient GitLab trouble go to the retry tiers.
    pub fn outcome(&self) -> Outcome {
        match self {
            Self::Missing { .. } => Outcome::park(self),
            Self::GitLab(e) if !e.is_transient() => Outcome::park(self),
            Self::Busy { .. } | Self::Ledger(_) | Self::GitLab(_) => Outcome::retry(self),
        }
    }
}

pub struct RetriesDue {
    pub herder: Herder,
}

impl Handler for RetriesDue {
    type Data = RetryOrder;

    async fn handle(&self, message: Incoming<RetryOrder>) -> Outcome {
        let order = &message.event.data;
        let span = tracing::info_span!(
            "herder.retry_due",
            job_id = order.job_id,
            instance = %order.instance,
            decision_id = order.decision_id,
            attempt = order.attempt,
        );
        match self.run(order).instrument(span).await {
            Ok(()) => Outcome::Done,
            Err(error) => error.outcome(),
        }
    }
}

impl RetriesDue {
    /// Claims the ledger row and performs the retry; a failure after the claim releases it.
    async fn run(&self, order: &RetryOrder) -> Result<(), RetryDueError> {
        let herder = &self.herder;
        let (row, lock) = match herder
            .ledger
            .claim(order.decision_id, herder.retry_lease)
            .await?
        {
            Claim::Claimed(row, lock) => (row, lock),
            Claim::Done(row) => {
                tracing::info!(
                    job_id = row.job_id,
                    outcome = row.outcome.as_deref().unwrap_or(""),
                    "retry already handled; duplicate ignored"
                );
                return Ok(());
            }
            Claim::Busy => {
                return Err(RetryDueError::Busy {
                    decision_id: order.decision_id,
                });
            }
            Claim::Missing => {
                return Err(RetryDueError::Missing {
                    decision_id: order.decision_id,
                    job_id: order.job_id,
                });
            }
        };
        let performed = self.perform(&row).await;
        if let Err(reason) = &performed {
            self.release(&row, reason).await;
            tracing::warn!(job_id = row.job_id, %reason, "retry not done yet; will try again");
        }
        lock.release().await;
        performed
    }

    /// Gives the claim back (the row goes back to `scheduled` with the reason). If the database
    /// is away — often the very failure — the row stays `retrying`, and the next delivery takes
    /// it over once it answers: this worker's session lock is gone with its connection.
    async fn release(&self, row: &DecisionRow, reason: &RetryDueError) {
        if let Err(error) = self
            .herder
            .ledger
            .release(row.id, &reason.to_string())
            .await
        {
            tracing::warn!(job_id = row.job_id, %error, "cannot give the claim back; the next delivery takes it over");
        }
    }

    /// Checks, retries and records; `Err` is a transient failure (the claim is released).
    async fn perform(&self, row: &DecisionRow) -> Result<(), RetryDueError> {
        let herder = &self.herder;
        let job = job_of(row);
        let project = job.project_ref();

        if herder.pause.is_paused().await? {
            return self
                .finish(
                    row,
                    "report",
                    "paused",
                    "the herder was paused when the retry was due",
                    None,
                    None,
                )
                .await;
        }
        if let Some(reason) = superseded_by(&herder.gitlab, &job, &project).await? {
            return self
                .finish(row, "report", "superseded", &reason, None, None)
                .await;
        }
        match herder
            .gitlab
            .later_attempt(
                &job.instance,
                &project,
                job.pipeline_id,
                &job.name,
                job.job_id,
            )
            .await
        {
            Ok(Some(newer)) => {
                let reason = format!("the job was already retried as job {newer}");
                return self
                    .finish(row, "retry", "already_retried", &reason, Some(newer), None)
                    .await;
            }
            Ok(None) => {}
            Err(e) if e.is_transient() => return Err(e.into()),
            // Listing jobs may need more rights than retrying; go on and let the retry decide.
            Err(e) => {
                tracing::warn!(error = %e, "cannot list the pipeline's jobs; retrying without that check")
            }
        }
        match herder
            .gitlab
            .retry_job(
                &job.instance,
                &project,
                job.pipeline_id,
                &job.name,
                job.job_id,
            )
            .await
        {
            Ok(new_job) => {
                let reason = format!("retried as job {new_job}");
                self.finish(row, "retry", "retried", &reason, Some(new_job), None)
                    .await
            }
            Err(e) if e.is_transient() => Err(e.into()),
            Err(e) => {
                let error = e.to_string();
                let reason = format!("GitLab refused the retry: {error}");
                self.finish(row, "report", "failed", &reason, None, Some(&error))
                    .await
            }
        }
    }

    async fn finish(
        &self,
        row: &DecisionRow,
        action: &str,
        outcome: &str,
        reason: &str,
        new_job_id: Option<u64>,
        error: Option<&str>,
    ) -> Result<(), RetryDueError> {
        let herder = &self.herder;
        let finish = Finish {
            action,
            outcome,
            reason,
            new_job_id,
            error,
        };
        let notification = DecisionEvent::finished(row, &finish).into_notification("outcome");
        let finished = herder
            .ledger
            .finish(row.id, &finish, Some(&notification))
            .await?;
        if !finished {
            tracing::warn!(
                job_id = row.job_id,
                "the claim was taken over by another worker; its result stands"
            );
            return Ok(());
        }
        herder
            .metrics
            .retries
            .with_label_values(&[row.matcher.as_deref().unwrap_or(""), outcome])
            .inc();
        tracing::info!(job_id = row.job_id, instance = %row.instance, outcome, reason, "retry finished");
        herder.notifier.kick();
        Ok(())
    }
}

/// The job a ledger row is about.
fn job_of(row: &DecisionRow) -> Job {
    let unsigned = |v: i64| u64::try_from(v).unwrap_or_default();
    Job {
        instance: row.instance.clone(),
        project_id: unsigned(row.project_id),
        project_path: row.project_path.clone(),
        job_id: unsigned(row.job_id),
        name: row.job_name.clone(),
        stage: row.job_stage.clone(),
        status: "failed".into(),
        failure_reason: row.failure_reason.clone(),
        allow_failure: false,
        pipeline_id: unsigned(row.pipeline_id),
        git_ref: row.git_ref.clone(),
        web_url: row.job_url.clone(),
        retries_count: None,
    }
}

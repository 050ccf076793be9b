//! `pipeline-herder check --job-url URL`: every matcher against one job, read through the
//! API, and what the herder would do — without recording, queueing or retrying anything.
//! The pause switch (in the service's database) is not consulted.

use std::fmt::Write as _;

use serde::Serialize;

use crate::config::HerderSettings;
use crate::decide::{self, DecidedAction, Decision, LogFetch};
use crate::gitlab::{GitLab, GitLabError, ProjectRef};
use crate::hook::{Job, JobUrl, JobUrlError};
use crate::matchers::{Action, Verdict};

#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error(transparent)]
    BadUrl(#[from] JobUrlError),
    #[error("GitLab instance `{instance}` is not configured in gitlab_instances")]
    UnknownInstance { instance: String },
    #[error("reading the job from GitLab: {0}")]
    GitLab(#[from] GitLabError),
    #[error("HTTP client: {0}")]
    Client(#[from] reqwest::Error),
}

/// One matcher's verdict, for printing.
#[derive(Debug, Clone, Serialize)]
pub struct MatcherReport {
    pub name: String,
    pub action: Action,
    #[serde(flatten)]
    pub verdict: Verdict,
}

#[derive(Debug, Clone, Serialize)]
pub struct CheckReport {
    pub job: Job,
    pub matchers: Vec<MatcherReport>,
    pub decision: Decision,
}

pub async fn check(settings: &HerderSettings, job_url: &str) -> Result<CheckReport, CheckError> {
    let url = JobUrl::parse(job_url)?;
    let instance = url.project.instance.clone();
    if !settings.instances.contains_key(&instance) {
        return Err(CheckError::UnknownInstance { instance });
    }
    let gitlab = GitLab::new(settings.instances.clone(), &settings.api, None)?;
    let api_job = gitlab
        .job(
            &instance,
            &ProjectRef::Path(url.project.path.clone()),
            url.job_id,
        )
        .await?;
    let job = Job {
        instance,
        project_id: api_job
            .project
            .as_ref()
            .and_then(|p| p.id)
            .or(api_job.pipeline.project_id)
            .unwrap_or_default(),
        project_path: url.project.path.clone(),
        job_id: api_job.id,
        name: api_job.name,
        stage: api_job.stage,
        status: api_job.status,
        failure_reason: api_job.failure_reason,
        allow_failure: api_job.allow_failure,
        pipeline_id: api_job.pipeline.id,
        git_ref: api_job.pipeline.git_ref.unwrap_or(api_job.git_ref),
        web_url: if api_job.web_url.is_empty() {
            format!("{}/-/jobs/{}", url.project.base, url.job_id)
        } else {
            api_job.web_url
        },
        retries_count: None,
    };
    let assessment =
        decide::assess(&gitlab, &settings.matchers, &job, false, LogFetch::Always).await?;
    let matchers = match assessment.evaluation {
        Some(evaluation) => settings
            .matchers
            .matchers()
            .iter()
            .zip(evaluation.verdicts)
            .map(|(m, verdict)| MatcherReport {
                name: m.name.clone(),
                action: m.action,
                verdict,
            })
            .collect(),
        None => Vec::new(),
    };
    Ok(CheckReport {
        job,
        matchers,
        decision: assessment.decision,
    })
}

/// The report for a terminal.
pub fn render_text(report: &CheckReport) -> String {
    let job = &report.job;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "job {} `{}` (stage {}) of {} on {}",
        job.job_id, job.name, job.stage, job.project_path, job.instance
    );
    let _ = writeln!(
        out,
        "  status {}, failure reason {}, pipeline {} on ref {}{}",
        job.status,
        job.failure_reason.as_deref().unwrap_or("none"),
        job.pipeline_id,
        job.git_ref,
        if job.allow_failure {
            ", allowed to fail (the service ignores it)"
        } else {
            ""
        }
    );
    let _ = writeln!(out, "  {}", job.web_url);
    if !report.matchers.is_empty() {
        let _ = writeln!(out, "\nmatchers (the first match decides):");
        let width = report
            .matchers
            .iter()
            .map(|m| m.name.len())
            .max()
            .unwrap_or(0);
        for m in &report.matchers {
            let verdict = match &m.verdict {
                Verdict::Matched(evidence) => format!("MATCHED: {}", evidence.reason),
                Verdict::NotApplicable { reason } => format!("not applicable: {reason}"),
                Verdict::NoMatch { reason } => format!("no match: {reason}"),
                Verdict::NotEvaluated => "not evaluated".into(),
            };
            let _ = writeln!(
                out,
                "  {:width$}  {:6}  {verdict}",
                m.name,
                m.action.as_str()
            );
            if let Verdict::Matched(evidence) = &m.verdict
                && let Some(line) = &evidence.line
            {
                let _ = writeln!(out, "  {:width$}          line: {line}", "");
            }
        }
    }
    let decision = &report.decision;
    let _ = writeln!(out);
    let _ = match decision.action {
        DecidedAction::None => writeln!(
            out,
            "decision: no problem detected; the herder would do nothing"
        ),
        action => writeln!(out, "decision: {} — {}", action.as_str(), decision.reason),
    };
    out
}

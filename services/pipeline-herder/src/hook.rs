//! GitLab's Job Hook (`object_kind: build`) as it arrives in a CloudEvent, and the job it is
//! about.
//!
//! Only the fields the herder uses are read; GitLab adds fields over time and they are
//! ignored. `retries_count` is absent on GitLab versions without it (feature flag
//! `job_webhook_retries_count`); the herder then counts earlier attempts through the API.

use serde::{Deserialize, Serialize};
use url::Url;

use crate::gitlab::ProjectRef;
use crate::matchers::JobFacts;

/// The Job Hook body.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct JobHook {
    pub object_kind: String,
    #[serde(rename = "ref")]
    pub git_ref: String,
    #[serde(default)]
    pub tag: bool,
    pub build_id: u64,
    pub build_name: String,
    #[serde(default)]
    pub build_stage: String,
    pub build_status: String,
    #[serde(default)]
    pub build_allow_failure: bool,
    #[serde(default)]
    pub build_failure_reason: Option<String>,
    #[serde(default)]
    pub retries_count: Option<u32>,
    pub pipeline_id: u64,
    pub project_id: u64,
    #[serde(default)]
    pub project_name: String,
    #[serde(default)]
    pub repository: Option<HookRepository>,
    #[serde(default)]
    pub project: Option<HookProject>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct HookRepository {
    #[serde(default)]
    pub homepage: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct HookProject {
    #[serde(default)]
    pub web_url: Option<String>,
    #[serde(default)]
    pub path_with_namespace: Option<String>,
}

/// Why a hook cannot be placed on a GitLab instance.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HookError {
    #[error("the event has object_kind `{object_kind}`, not `build`")]
    NotAJob { object_kind: String },
    #[error(
        "cannot tell the project's URL: neither the event source `{event_source}` nor the payload's project.web_url / repository.homepage is an http(s) URL with a path"
    )]
    NoProjectUrl { event_source: String },
}

/// A job, wherever its description came from (a hook or the API).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Job {
    /// The GitLab instance: the web host, with the port when one is given (`gitlab.com`,
    /// `127.0.0.1:8090`).
    pub instance: String,
    pub project_id: u64,
    /// `group/project`.
    pub project_path: String,
    pub job_id: u64,
    pub name: String,
    pub stage: String,
    pub status: String,
    pub failure_reason: Option<String>,
    pub allow_failure: bool,
    pub pipeline_id: u64,
    pub git_ref: String,
    /// The job's page, e.g. `https://gitlab.com/group/project/-/jobs/12`.
    pub web_url: String,
    /// Earlier attempts of this job, when GitLab says.
    pub retries_count: Option<u32>,
}

impl Job {
    /// The job of a Job Hook delivered as an event with `source` (the receiver sets it to
    /// `https://<host>/<project path>`).
    pub fn from_hook(hook: &JobHook, source: &str) -> Result<Self, HookError> {
        if hook.object_kind != "build" {
            return Err(HookError::NotAJob {
                object_kind: hook.object_kind.clone(),
            });
        }
        let from_payload = [
            hook.project.as_ref().and_then(|p| p.web_url.as_deref()),
            hook.repository.as_ref().and_then(|r| r.homepage.as_deref()),
        ]
        .into_iter()
        .flatten()
        .find_map(ProjectUrl::parse);
        // The event's source names the instance, but always as https (CKI's convention): for
        // the same project the payload's URL also knows the scheme (an http GitLab's pages).
        let project_url = match (ProjectUrl::parse(source), from_payload) {
            (Some(source), Some(payload))
                if source.instance == payload.instance && source.path == payload.path =>
            {
                payload
            }
            (Some(source), _) => source,
            (None, Some(payload)) => payload,
            (None, None) => {
                return Err(HookError::NoProjectUrl {
                    event_source: source.to_owned(),
                });
            }
        };
        Ok(Self {
            web_url: format!("{}/-/jobs/{}", project_url.base, hook.build_id),
            instance: project_url.instance,
            project_id: hook.project_id,
            project_path: project_url.path,
            job_id: hook.build_id,
            name: hook.build_name.clone(),
            stage: hook.build_stage.clone(),
            status: hook.build_status.clone(),
            failure_reason: hook.build_failure_reason.clone(),
            allow_failure: hook.build_allow_failure,
            pipeline_id: hook.pipeline_id,
            git_ref: hook.git_ref.clone(),
            retries_count: hook.retries_count,
        })
    }

    /// How to name the project in API calls: by id when known, else by path.
    pub fn project_ref(&self) -> ProjectRef {
        if self.project_id == 0 {
            ProjectRef::Path(self.project_path.clone())
        } else {
            ProjectRef::Id(self.project_id)
        }
    }

    /// What the matchers look at.
    pub fn facts(&self) -> JobFacts<'_> {
        JobFacts {
            status: &self.status,
            name: &self.name,
            web_url: &self.web_url,
            failure_reason: self.failure_reason.as_deref(),
        }
    }
}

/// A project's web URL split into the instance and the project path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectUrl {
    pub instance: String,
    pub path: String,
    /// `scheme://instance/path`, without a trailing slash.
    pub base: String,
}

impl ProjectUrl {
    pub fn parse(text: &str) -> Option<Self> {
        let url = Url::parse(text).ok()?;
        if !matches!(url.scheme(), "http" | "https") {
            return None;
        }
        let instance = instance_of(&url)?;
        let path = url.path().trim_matches('/').to_owned();
        if path.is_empty() {
            return None;
        }
        Some(Self {
            base: format!("{}://{instance}/{path}", url.scheme()),
            instance,
            path,
        })
    }
}

/// A job page URL, `https://<instance>/<project path>/-/jobs/<id>`, as `check --job-url` takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobUrl {
    pub project: ProjectUrl,
    pub job_id: u64,
}

impl JobUrl {
    pub fn parse(text: &str) -> Result<Self, JobUrlError> {
        let invalid = || JobUrlError { text: text.into() };
        let (project, job) = text
            .trim_end_matches('/')
            .split_once("/-/jobs/")
            .ok_or_else(invalid)?;
        let job_id = job.parse::<u64>().map_err(|_| invalid())?;
        let project = ProjectUrl::parse(project).ok_or_else(invalid)?;
        Ok(Self { project, job_id })
    }
}

/// Text that is not a job page URL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{text}` is not a GitLab job URL like https://gitlab.com/group/project/-/jobs/123")]
pub struct JobUrlError {
    pub text: String,
}

/// `host` or `host:port` (when the URL names a port).
pub fn instance_of(url: &Url) -> Option<String> {
    let host = url.host_str()?;
    Some(match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hook(json: serde_json::Value) -> JobHook {
        serde_json::from_value(json).unwrap()
    }

    fn sample() -> serde_json::Value {
        serde_json::json!({
            "object_kind": "build",
            "ref": "main",
            "tag": false,
            "before_sha": "0000000000000000000000000000000000000000",
            "sha": "95d49d1efbd941908580e79d65e4b5ecaf4a8305",
            "build_id": 1977,
            "build_name": "build x86_64",
            "build_stage": "build",
            "build_status": "failed",
            "build_created_at": "2021-02-23T02:41:37.886Z",
            "build_duration": 12.5,
            "build_allow_failure": false,
            "build_failure_reason": "script_failure",
            "retries_count": 1,
            "pipeline_id": 2366,
            "project_id": 380,
            "project_name": "gitlab-org / gitlab-test",
            "user": {"id": 3, "name": "User", "email": "user@gitlab.com"},
            "commit": {"id": 2366, "status": "failed"},
            "repository": {"name": "gitlab_test", "homepage": "http://192.168.64.1:3005/gitlab-org/gitlab-test"},
            "runner": {"active": true, "is_shared": false, "id": 380987, "description": "shared-runners-manager-6.gitlab.com"},
            "environment": null
        })
    }

    #[test]
    fn a_job_hook_becomes_a_job_on_the_events_instance() {
        let job =
            Job::from_hook(&hook(sample()), "https://gitlab.com/gitlab-org/gitlab-test").unwrap();
        assert_eq!(job.instance, "gitlab.com");
        assert_eq!(job.project_path, "gitlab-org/gitlab-test");
        assert_eq!(
            job.web_url,
            "https://gitlab.com/gitlab-org/gitlab-test/-/jobs/1977"
        );
        assert_eq!(job.retries_count, Some(1));
        assert_eq!(job.failure_reason.as_deref(), Some("script_failure"));
    }

    #[test]
    fn an_http_gitlab_keeps_its_scheme_from_the_payload() {
        let mut http = sample();
        http["repository"]["homepage"] =
            "http://gitlab.internal:8090/gitlab-org/gitlab-test".into();
        let job = Job::from_hook(
            &hook(http),
            "https://gitlab.internal:8090/gitlab-org/gitlab-test",
        )
        .unwrap();
        assert_eq!(job.instance, "gitlab.internal:8090");
        assert_eq!(
            job.web_url,
            "http://gitlab.internal:8090/gitlab-org/gitlab-test/-/jobs/1977"
        );
    }

    #[test]
    fn falls_back_to_the_payloads_urls_and_keeps_ports() {
        let job = Job::from_hook(&hook(sample()), "urn:unknown").unwrap();
        assert_eq!(job.instance, "192.168.64.1:3005");
        assert_eq!(
            job.web_url,
            "http://192.168.64.1:3005/gitlab-org/gitlab-test/-/jobs/1977"
        );
        let mut bare = sample();
        bare.as_object_mut().unwrap().remove("repository");
        bare.as_object_mut().unwrap().remove("retries_count");
        let parsed = hook(bare);
        assert_eq!(parsed.retries_count, None);
        assert_eq!(
            Job::from_hook(&parsed, "urn:x").unwrap_err().to_string(),
            "cannot tell the project's URL: neither the event source `urn:x` nor the payload's project.web_url / repository.homepage is an http(s) URL with a path"
        );
        let mut pipeline = sample();
        pipeline["object_kind"] = "pipeline".into();
        assert_eq!(
            Job::from_hook(&hook(pipeline), "https://gitlab.com/a/b").unwrap_err(),
            HookError::NotAJob {
                object_kind: "pipeline".into()
            }
        );
    }

    #[test]
    fn job_urls_parse_strictly() {
        let url =
            JobUrl::parse("https://gitlab.com/cki-project/kernel-ark/-/jobs/8123456").unwrap();
        assert_eq!(url.project.instance, "gitlab.com");
        assert_eq!(url.project.path, "cki-project/kernel-ark");
        assert_eq!(url.job_id, 8123456);
        for bad in [
            "https://gitlab.com/cki-project/kernel-ark/-/pipelines/1",
            "https://gitlab.com/-/jobs/1",
            "gitlab.com/a/b/-/jobs/1",
            "https://gitlab.com/a/b/-/jobs/x",
        ] {
            assert!(
                JobUrl::parse(bad)
                    .unwrap_err()
                    .to_string()
                    .contains("is not a GitLab job URL"),
                "{bad}"
            );
        }
    }
}

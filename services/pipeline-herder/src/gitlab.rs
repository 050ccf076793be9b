//! The GitLab REST API (v4), as far as the herder uses it.
//!
//! * `GET /projects/:id/jobs/:job_id` — a job (for `check --job-url`);
//! * `GET /projects/:id/jobs/:job_id/trace` — its log, of which only the tail is kept;
//! * `GET /projects/:id/pipelines?ref=` — the newest pipeline of a ref;
//! * `GET /projects/:id/pipelines/:pipeline_id/jobs?include_retried=true` — every attempt of
//!   every job of a pipeline (to count attempts and to see whether a job was retried);
//! * `POST /projects/:id/jobs/:job_id/retry` — retry a job (GitLab creates a new job).
//!
//! GETs go through [`HttpClient`], which retries 408/429/5xx and network errors with
//! backoff; a 4xx is final. The retry POST is not idempotent, so it is retried by hand: after a
//! failed attempt the herder first looks whether GitLab created the new job anyway (a 502
//! from a proxy, a timeout after the commit), and only posts again if it did not. Every failed
//! attempt is counted in `pipeline_herder_gitlab_api_errors_total`.

use std::collections::HashMap;
use std::time::Duration;

use prometheus::IntCounterVec;
use reqwest::{Client, RequestBuilder, Response};
use serde::Deserialize;
use steadfast_service_kit::http_client::{HttpClient, HttpError, RetryPolicy};
use url::Url;

use crate::matchers::Trace;

/// How to reach one GitLab instance.
#[derive(Debug, Clone)]
pub struct Instance {
    /// e.g. `https://gitlab.com/api/v4`.
    pub api_url: Url,
    /// Sent as `PRIVATE-TOKEN`; `None` for anonymous access (public projects, the fake).
    pub token: Option<String>,
}

/// A project: by numeric id (hooks carry it) or by path (job URLs carry it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProjectRef {
    Id(u64),
    Path(String),
}

impl ProjectRef {
    fn segment(&self) -> String {
        match self {
            Self::Id(id) => id.to_string(),
            // One path segment: `Url::path_segments_mut` encodes its `/` as `%2F`.
            Self::Path(path) => path.clone(),
        }
    }
}

/// A job as the API describes it.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct ApiJob {
    pub id: u64,
    pub name: String,
    #[serde(default)]
    pub stage: String,
    pub status: String,
    #[serde(rename = "ref", default)]
    pub git_ref: String,
    #[serde(default)]
    pub allow_failure: bool,
    #[serde(default)]
    pub failure_reason: Option<String>,
    #[serde(default)]
    pub web_url: String,
    pub pipeline: ApiPipeline,
    #[serde(default)]
    pub project: Option<ApiProject>,
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct ApiPipeline {
    pub id: u64,
    #[serde(default)]
    pub project_id: Option<u64>,
    #[serde(rename = "ref", default)]
    pub git_ref: Option<String>,
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct ApiProject {
    #[serde(default)]
    pub id: Option<u64>,
}

/// Why an API call failed.
#[derive(Debug, thiserror::Error)]
pub enum GitLabError {
    #[error("GitLab instance `{instance}` is not configured in gitlab_instances")]
    UnknownInstance { instance: String },
    #[error(transparent)]
    Http(#[from] HttpError),
    #[error("reading the response of GET {url}: {source}")]
    Body {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("GET {url} answered something unexpected: {source}")]
    Decode {
        url: String,
        #[source]
        source: serde_json::Error,
    },
}

impl GitLabError {
    /// Whether trying again later may work (network, 408/429/5xx); 4xx and unknown instances
    /// are final.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Http(e) => e.is_transient(),
            Self::Body { .. } => true,
            Self::UnknownInstance { .. } | Self::Decode { .. } => false,
        }
    }
}

/// HTTP settings for the GitLab API.
#[derive(Debug, Clone)]
pub struct ApiSettings {
    /// Per attempt.
    pub timeout: Duration,
    pub retry: RetryPolicy,
}

/// A client for every configured instance.
#[derive(Clone)]
pub struct GitLab {
    instances: HashMap<String, Instance>,
    http: HttpClient,
    single_attempt: HttpClient,
    errors: Option<IntCounterVec>,
}

const PAGE_SIZE: usize = 100;
/// Pipelines with more than 5000 jobs are not paged further.
const MAX_PAGES: usize = 50;

impl GitLab {
    /// `errors` counts failed attempts by instance, endpoint and status.
    pub fn new(
        instances: HashMap<String, Instance>,
        settings: &ApiSettings,
        errors: Option<IntCounterVec>,
    ) -> Result<Self, reqwest::Error> {
        let http = HttpClient::new(settings.timeout, settings.retry.clone())?;
        let single_attempt = HttpClient::from_client(http.client().clone(), RetryPolicy::none());
        Ok(Self {
            instances,
            http,
            single_attempt,
            errors,
        })
    }

    pub fn knows(&self, instance: &str) -> bool {
        self.instances.contains_key(instance)
    }

    fn url(&self, instance: &str, segments: &[&str]) -> Result<(Url, &Instance), GitLabError> {
        let config = self
            .instances
            .get(instance)
            .ok_or_else(|| GitLabError::UnknownInstance {
                instance: instance.to_owned(),
            })?;
        let mut url = config.api_url.clone();
        url.path_segments_mut()
            .expect("api_url is validated as a base URL")
            .pop_if_empty()
            .extend(segments);
        Ok((url, config))
    }

    /// `.../projects/:id/jobs/:job_id` followed by `action` (`trace`, `retry`), if any.
    fn job_url(
        &self,
        instance: &str,
        project: &ProjectRef,
        job_id: u64,
        action: Option<&str>,
    ) -> Result<(Url, &Instance), GitLabError> {
        let (project, job) = (project.segment(), job_id.to_string());
        let mut segments = vec!["projects", &project, "jobs", &job];
        segments.extend(action);
        self.url(instance, &segments)
    }

    fn authorised(request: RequestBuilder, config: &Instance) -> RequestBuilder {
        match &config.token {
            Some(token) => request.header("PRIVATE-TOKEN", token),
            None => request,
        }
    }

    fn observer<'a>(&'a self, instance: &'a str, endpoint: &'a str) -> impl FnMut(&HttpError) + 'a {
        move |error: &HttpError| {
            let status = match error.status() {
                Some(status) => status.as_u16().to_string(),
                None => "network".into(),
            };
            tracing::warn!(%error, instance, endpoint, "GitLab API call failed");
            if let Some(errors) = &self.errors {
                errors
                    .with_label_values(&[instance, endpoint, &status])
                    .inc();
            }
        }
    }

    async fn get(
        &self,
        instance: &str,
        endpoint: &str,
        url: Url,
        config: &Instance,
    ) -> Result<Response, GitLabError> {
        let build = |client: &Client| Self::authorised(client.get(url.clone()), config);
        Ok(self
            .http
            .send_observed(build, self.observer(instance, endpoint))
            .await?)
    }

    async fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        instance: &str,
        endpoint: &str,
        url: Url,
        config: &Instance,
    ) -> Result<(T, Option<String>), GitLabError> {
        let response = self.get(instance, endpoint, url.clone(), config).await?;
        let next_page = response
            .headers()
            .get("x-next-page")
            .and_then(|v| v.to_str().ok())
            .filter(|v| !v.is_empty())
            .map(str::to_owned);
        let bytes = response.bytes().await.map_err(|source| GitLabError::Body {
            url: url.to_string(),
            source,
        })?;
        let value = serde_json::from_slice(&bytes).map_err(|e| GitLabError::Decode {
            url: url.to_string(),
            source: e,
        })?;
        Ok((value, next_page))
    }

    /// `GET /projects/:id/jobs/:job_id`.
    pub async fn job(
        &self,
        instance: &str,
        project: &ProjectRef,
        job_id: u64,
    ) -> Result<ApiJob, GitLabError> {
        let (url, config) = self.job_url(instance, project, job_id, None)?;
        Ok(self.get_json(instance, "job", url, config).await?.0)
    }

    /// The last `max_bytes` of the job's log (`GET .../trace`), read as a stream so memory
    /// stays bounded however long the log is.
    pub async fn trace_tail(
        &self,
        instance: &str,
        project: &ProjectRef,
        job_id: u64,
        max_bytes: u64,
    ) -> Result<Trace, GitLabError> {
        let (url, config) = self.job_url(instance, project, job_id, Some("trace"))?;
        let mut response = self.get(instance, "trace", url.clone(), config).await?;
        let keep = usize::try_from(max_bytes).unwrap_or(usize::MAX);
        let mut tail: Vec<u8> = Vec::new();
        let mut total: u64 = 0;
        while let Some(chunk) = response.chunk().await.map_err(|source| GitLabError::Body {
            url: url.to_string(),
            source,
        })? {
            total += chunk.len() as u64;
            tail.extend_from_slice(&chunk);
            // Trim in batches, so a long log costs O(n) copying rather than O(n²).
            if tail.len() > keep.saturating_mul(2) {
                tail.drain(..tail.len() - keep);
            }
        }
        if tail.len() > keep {
            tail.drain(..tail.len() - keep);
        }
        Ok(Trace {
            tail,
            total_bytes: total,
        })
    }

    /// The id of the newest pipeline of `git_ref`, if there is any.
    pub async fn newest_pipeline(
        &self,
        instance: &str,
        project: &ProjectRef,
        git_ref: &str,
    ) -> Result<Option<u64>, GitLabError> {
        let (mut url, config) =
            self.url(instance, &["projects", &project.segment(), "pipelines"])?;
        url.query_pairs_mut()
            .append_pair("ref", git_ref)
            .append_pair("order_by", "id")
            .append_pair("sort", "desc")
            .append_pair("per_page", "1");
        #[derive(Deserialize)]
        struct Listed {
            id: u64,
        }
        let (pipelines, _): (Vec<Listed>, _) =
            self.get_json(instance, "pipelines", url, config).await?;
        Ok(pipelines.first().map(|p| p.id))
    }

    /// Every job of a pipeline, retried attempts included.
    pub async fn pipeline_jobs(
        &self,
        instance: &str,
        project: &ProjectRef,
        pipeline_id: u64,
    ) -> Result<Vec<ApiJob>, GitLabError> {
        let mut jobs = Vec::new();
        let mut page = 1usize;
        loop {
            let (mut url, config) = self.url(
                instance,
                &[
                    "projects",
                    &project.segment(),
                    "pipelines",
                    &pipeline_id.to_string(),
                    "jobs",
                ],
            )?;
            url.query_pairs_mut()
                .append_pair("include_retried", "true")
                .append_pair("per_page", &PAGE_SIZE.to_string())
                .append_pair("page", &page.to_string());
            let (batch, next): (Vec<ApiJob>, _) = self
                .get_json(instance, "pipeline_jobs", url, config)
                .await?;
            let full = batch.len() == PAGE_SIZE;
            jobs.extend(batch);
            if next.is_none() && !full || page >= MAX_PAGES {
                return Ok(jobs);
            }
            page += 1;
        }
    }

    /// A later attempt of job `job_id` (same name, same pipeline, larger id), if GitLab has
    /// one: the job was retried already (by the herder, by a person or by `retry:`).
    pub async fn later_attempt(
        &self,
        instance: &str,
        project: &ProjectRef,
        pipeline_id: u64,
        name: &str,
        job_id: u64,
    ) -> Result<Option<u64>, GitLabError> {
        let jobs = self.pipeline_jobs(instance, project, pipeline_id).await?;
        Ok(jobs
            .iter()
            .filter(|j| j.name == name && j.id > job_id)
            .map(|j| j.id)
            .min())
    }

    /// How many attempts of job `name` came before `job_id` in its pipeline (its retry count,
    /// for GitLab versions whose hooks lack `retries_count`).
    pub async fn earlier_attempts(
        &self,
        instance: &str,
        project: &ProjectRef,
        pipeline_id: u64,
        name: &str,
        job_id: u64,
    ) -> Result<u32, GitLabError> {
        let jobs = self.pipeline_jobs(instance, project, pipeline_id).await?;
        let earlier = jobs
            .iter()
            .filter(|j| j.name == name && j.id < job_id)
            .count();
        Ok(u32::try_from(earlier).unwrap_or(u32::MAX))
    }

    /// `POST /projects/:id/jobs/:job_id/retry`, retried on 408/429/5xx/network errors with
    /// the configured backoff — but only after checking that GitLab did not create the new
    /// job anyway. Returns the new job's id.
    #[tracing::instrument(
        name = "gitlab.retry_job",
        skip_all,
        fields(instance, job_id, new_job_id = tracing::field::Empty)
    )]
    pub async fn retry_job(
        &self,
        instance: &str,
        project: &ProjectRef,
        pipeline_id: u64,
        name: &str,
        job_id: u64,
    ) -> Result<u64, GitLabError> {
        let (url, config) = self.job_url(instance, project, job_id, Some("retry"))?;
        let policy = self.http.policy().clone();
        let started = tokio::time::Instant::now();
        let mut attempt = 1u32;
        loop {
            let build = |client: &Client| Self::authorised(client.post(url.clone()), config);
            let error = match self
                .single_attempt
                .send_observed(build, self.observer(instance, "retry"))
                .await
            {
                Ok(response) => {
                    let bytes = response.bytes().await.map_err(|source| GitLabError::Body {
                        url: url.to_string(),
                        source,
                    })?;
                    #[derive(Deserialize)]
                    struct Created {
                        id: u64,
                    }
                    let created: Created =
                        serde_json::from_slice(&bytes).map_err(|e| GitLabError::Decode {
                            url: url.to_string(),
                            source: e,
                        })?;
                    tracing::Span::current().record("new_job_id", created.id);
                    return Ok(created.id);
                }
                Err(error) => error,
            };
            if !error.is_transient() {
                return Err(error.into());
            }
            // The attempt may have succeeded on GitLab's side.
            if let Ok(Some(new_job)) = self
                .later_attempt(instance, project, pipeline_id, name, job_id)
                .await
            {
                tracing::info!(
                    instance,
                    job_id,
                    new_job,
                    "the failed retry call had created the new job"
                );
                return Ok(new_job);
            }
            let wait = policy.delay(attempt);
            let out_of_attempts = policy.max_attempts.is_some_and(|max| attempt >= max);
            let out_of_time = policy
                .max_elapsed
                .is_some_and(|budget| started.elapsed() + wait > budget);
            if out_of_attempts || out_of_time {
                return Err(error.into());
            }
            tracing::debug!(
                instance,
                job_id,
                attempt,
                wait_ms = wait.as_millis() as u64,
                "retrying the retry call"
            );
            tokio::time::sleep(wait).await;
            attempt += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fake_gitlab::{FakeGitLab, FakeJob, FakePipeline};

    fn client(fake: &FakeGitLab, token: Option<&str>) -> GitLab {
        let mut instances = HashMap::new();
        instances.insert(
            "gitlab.test".to_owned(),
            Instance {
                api_url: Url::parse(&fake.api_url()).unwrap(),
                token: token.map(str::to_owned),
            },
        );
        let settings = ApiSettings {
            timeout: Duration::from_secs(5),
            retry: RetryPolicy {
                base_delay: Duration::from_millis(10),
                max_delay: Duration::from_millis(50),
                max_attempts: Some(4),
                ..RetryPolicy::default()
            },
        };
        GitLab::new(instances, &settings, None).unwrap()
    }

    #[tokio::test]
    async fn api_calls_carry_the_handlers_trace() {
        use axum::http::HeaderMap;
        use steadfast_telemetry::trace;
        use tracing::Instrument;

        // The fake GitLab does not record headers: a route of our own that does.
        let seen = steadfast_test_support::HeaderLog::traceparent();
        let record = seen.clone();
        let base = steadfast_test_support::spawn_http(axum::Router::new().route(
            "/api/v4/projects/7/jobs/5/retry",
            axum::routing::post(move |headers: HeaderMap| {
                record.record(&headers);
                async {
                    (
                        axum::http::StatusCode::CREATED,
                        axum::Json(serde_json::json!({"id": 6})),
                    )
                }
            }),
        ))
        .await;
        let mut instances = HashMap::new();
        instances.insert(
            "gitlab.test".to_owned(),
            Instance {
                api_url: Url::parse(&format!("{base}/api/v4")).unwrap(),
                token: None,
            },
        );
        let settings = ApiSettings {
            timeout: Duration::from_secs(5),
            retry: RetryPolicy::none(),
        };
        let gitlab = GitLab::new(instances, &settings, None).unwrap();

        let _tracer = trace::testing::local_tracer();
        let handler = tracing::info_span!("herder.retry_due");
        let handler_trace = trace::traceparent(&handler).unwrap().trace_id();
        let new_job = gitlab
            .retry_job("gitlab.test", &ProjectRef::Id(7), 1, "build", 5)
            .instrument(handler)
            .await
            .unwrap();
        assert_eq!(new_job, 6);
        let header = seen.values()[0].clone().expect("a traceparent header");
        assert_eq!(header.split('-').nth(1), Some(handler_trace.as_str()));
    }

    #[tokio::test]
    async fn keeps_only_the_tail_of_a_long_log() {
        let fake = FakeGitLab::start().await;
        let log: String = (0..50_000).map(|i| format!("line {i}\n")).collect();
        fake.add_job(FakeJob::failed(5, 1, "g/p", 9, "build", &log));
        let gitlab = client(&fake, None);
        let trace = gitlab
            .trace_tail("gitlab.test", &ProjectRef::Path("g/p".into()), 5, 1000)
            .await
            .unwrap();
        assert_eq!(trace.total_bytes, log.len() as u64);
        assert_eq!(trace.tail.len(), 1000);
        assert!(log.as_bytes().ends_with(&trace.tail));
        let requests = fake.requests();
        assert_eq!(
            requests[0].path, "/api/v4/projects/g%2Fp/jobs/5/trace",
            "paths are encoded"
        );
    }

    #[tokio::test]
    async fn gets_retry_5xx_and_report_4xx_at_once() {
        let fake = FakeGitLab::start().await;
        fake.add_job(FakeJob::failed(5, 1, "g/p", 9, "build", "x"));
        let gitlab = client(&fake, None);
        fake.fail_next("GET", "/projects/1/pipelines", &[503]);
        let newest = gitlab
            .newest_pipeline("gitlab.test", &ProjectRef::Id(1), "main")
            .await
            .unwrap();
        assert_eq!(newest, Some(9));
        fake.fail_next("GET", "/projects/1/jobs/5", &[403]);
        let err = gitlab
            .job("gitlab.test", &ProjectRef::Id(1), 5)
            .await
            .unwrap_err();
        assert!(!err.is_transient());
        assert!(err.to_string().contains("answered 403 Forbidden"), "{err}");
        assert_eq!(fake.requests_to("GET", "/projects/1/jobs/5").len(), 1);
        let unknown = gitlab
            .job("elsewhere", &ProjectRef::Id(1), 5)
            .await
            .unwrap_err();
        assert_eq!(
            unknown.to_string(),
            "GitLab instance `elsewhere` is not configured in gitlab_instances"
        );
    }

    #[tokio::test]
    async fn the_retry_call_is_repeated_after_5xx_and_sends_the_token() {
        let fake = FakeGitLab::start_with(fake_gitlab::FakeGitLabOptions {
            token: Some("t0ken".into()),
            web_base: None,
        })
        .await;
        fake.add_job(FakeJob::failed(5, 1, "g/p", 9, "build", "x"));
        fake.fail_next("POST", "/projects/1/jobs/5/retry", &[500, 502]);
        let gitlab = client(&fake, Some("t0ken"));
        let new_job = gitlab
            .retry_job("gitlab.test", &ProjectRef::Id(1), 9, "build", 5)
            .await
            .unwrap();
        assert!(new_job > 5);
        let posts = fake.requests_to("POST", "/projects/1/jobs/5/retry");
        assert_eq!(
            posts.iter().map(|r| r.status).collect::<Vec<_>>(),
            vec![500, 502, 201]
        );
        assert!(posts.iter().all(|r| r.token.as_deref() == Some("t0ken")));
        assert_eq!(
            gitlab
                .earlier_attempts("gitlab.test", &ProjectRef::Id(1), 9, "build", new_job)
                .await
                .unwrap(),
            1
        );
    }

    #[tokio::test]
    async fn a_retry_that_happened_despite_an_error_is_not_repeated() {
        let fake = FakeGitLab::start().await;
        fake.add_job(FakeJob::failed(5, 1, "g/p", 9, "build", "x"));
        // GitLab created job 6 but the proxy answered 502.
        let mut created = FakeJob::failed(6, 1, "g/p", 9, "build", "");
        created.status = "pending".into();
        fake.add_job(created);
        fake.fail_next("POST", "/projects/1/jobs/5/retry", &[502]);
        let gitlab = client(&fake, None);
        let new_job = gitlab
            .retry_job("gitlab.test", &ProjectRef::Id(1), 9, "build", 5)
            .await
            .unwrap();
        assert_eq!(new_job, 6);
        assert_eq!(
            fake.requests_to("POST", "/projects/1/jobs/5/retry").len(),
            1
        );
    }

    #[tokio::test]
    async fn the_retry_call_gives_up_on_4xx() {
        let fake = FakeGitLab::start().await;
        fake.add_job(FakeJob::failed(5, 1, "g/p", 9, "build", "x"));
        fake.add_pipeline(FakePipeline {
            id: 9,
            project_id: 1,
            git_ref: "main".into(),
            status: "failed".into(),
        });
        fake.fail_next("POST", "/projects/1/jobs/5/retry", &[403]);
        let gitlab = client(&fake, None);
        let err = gitlab
            .retry_job("gitlab.test", &ProjectRef::Id(1), 9, "build", 5)
            .await
            .unwrap_err();
        assert!(!err.is_transient());
        assert_eq!(
            fake.requests_to("POST", "/projects/1/jobs/5/retry").len(),
            1
        );
    }
}

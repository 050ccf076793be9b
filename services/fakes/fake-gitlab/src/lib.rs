//! A fake GitLab REST API (v4): the jobs, traces, retry and pipelines endpoints the
//! pipeline-herder uses, with in-memory state and a record of every request.
//!
//! Tests seed projects, pipelines and jobs (with their traces), script failures
//! ([`FakeGitLab::fail_next`] answers the next calls of one endpoint with given statuses, e.g.
//! 500 then the real answer; [`FakeGitLab::slow_for`] answers every request late for a while),
//! and assert on [`FakeGitLab::requests`]. The local dev stack runs
//! the same server as the `fake-gitlab` binary, seeded with a demo project; its `/fake/*`
//! endpoints let a developer add jobs and read the request log with curl.
//!
//! Like GitLab, a project is addressed by numeric id or by its URL-encoded path
//! (`group%2Fproject`), job ids are global, a retry creates a new job (a new id) and marks the
//! old one retried, and lists are paginated with `page` / `per_page`.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::Json;
use axum::Router;
use axum::extract::Request;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// A job as the fake stores it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FakeJob {
    pub id: u64,
    pub project_id: u64,
    /// `group/project`.
    pub project_path: String,
    pub pipeline_id: u64,
    pub name: String,
    #[serde(default = "default_stage")]
    pub stage: String,
    #[serde(default = "default_status")]
    pub status: String,
    #[serde(rename = "ref", default = "default_ref")]
    pub git_ref: String,
    #[serde(default)]
    pub failure_reason: Option<String>,
    #[serde(default)]
    pub allow_failure: bool,
    /// Set when the job was retried (GitLab hides such jobs unless `include_retried=true`).
    #[serde(default)]
    pub retried: bool,
    /// The log, served by `GET .../trace`.
    #[serde(default, with = "lossy_text")]
    pub trace: Vec<u8>,
}

fn default_stage() -> String {
    "test".into()
}
fn default_status() -> String {
    "failed".into()
}
fn default_ref() -> String {
    "main".into()
}

impl FakeJob {
    /// A failed job of `pipeline_id` in project `project_id` (`project_path`) on ref `main`.
    pub fn failed(
        id: u64,
        project_id: u64,
        project_path: &str,
        pipeline_id: u64,
        name: &str,
        trace: &str,
    ) -> Self {
        Self {
            id,
            project_id,
            project_path: project_path.into(),
            pipeline_id,
            name: name.into(),
            stage: default_stage(),
            status: default_status(),
            git_ref: default_ref(),
            failure_reason: Some("script_failure".into()),
            allow_failure: false,
            retried: false,
            trace: trace.as_bytes().to_vec(),
        }
    }
}

/// A pipeline as the fake stores it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FakePipeline {
    pub id: u64,
    pub project_id: u64,
    #[serde(rename = "ref")]
    pub git_ref: String,
    #[serde(default = "default_pipeline_status")]
    pub status: String,
}

fn default_pipeline_status() -> String {
    "failed".into()
}

/// One request the fake received.
#[derive(Debug, Clone, Serialize)]
pub struct RecordedRequest {
    pub method: String,
    /// The path as sent (still percent-encoded), e.g. `/api/v4/projects/7/jobs/3/retry`.
    pub path: String,
    pub query: Option<String>,
    /// The `PRIVATE-TOKEN` header, or the bearer token.
    pub token: Option<String>,
    /// The status the fake answered.
    pub status: u16,
    /// When the request arrived, in milliseconds since the Unix epoch: a client reading the
    /// log (the chaos suite) measures latencies to the request itself, not to when it looked.
    pub received_at_ms: u64,
    #[serde(skip)]
    pub at: Instant,
}

#[derive(Default)]
struct FakeState {
    token: Option<String>,
    web_base: String,
    jobs: HashMap<u64, FakeJob>,
    pipelines: HashMap<u64, FakePipeline>,
    next_job_id: u64,
    /// `(method, path)` → statuses to answer before behaving normally.
    scripted: HashMap<(String, String), VecDeque<u16>>,
    requests: Vec<RecordedRequest>,
    /// Until when every API request is answered how much late ([`FakeGitLab::slow_for`]).
    slow: Option<(tokio::time::Instant, Duration)>,
}

type Shared = Arc<Mutex<FakeState>>;

fn lock(state: &Shared) -> MutexGuard<'_, FakeState> {
    state
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Options of a fake GitLab.
#[derive(Debug, Clone, Default)]
pub struct FakeGitLabOptions {
    /// When set, every API request must carry it (`PRIVATE-TOKEN` or bearer), else 401.
    pub token: Option<String>,
    /// The base of `web_url`s (e.g. `https://gitlab.test`); the fake's own URL by default.
    pub web_base: Option<String>,
}

/// A running fake GitLab; clones share its state.
#[derive(Clone)]
pub struct FakeGitLab {
    /// `http://127.0.0.1:<port>`.
    pub base_url: String,
    state: Shared,
}

impl FakeGitLab {
    /// Starts an empty fake on an ephemeral loopback port, without a token.
    pub async fn start() -> Self {
        Self::start_with(FakeGitLabOptions::default()).await
    }

    pub async fn start_with(options: FakeGitLabOptions) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind an ephemeral port");
        let base_url = format!("http://{}", listener.local_addr().expect("local addr"));
        let fake = Self::new(options, &base_url);
        let router = fake.router();
        tokio::spawn(async move {
            axum::serve(listener, router).await.expect("fake GitLab");
        });
        fake
    }

    /// The fake's state without a server, for a binary that serves [`FakeGitLab::router`]
    /// itself; `base_url` is where it will listen.
    pub fn new(options: FakeGitLabOptions, base_url: &str) -> Self {
        let state = FakeState {
            token: options.token,
            web_base: options
                .web_base
                .unwrap_or_else(|| base_url.to_owned())
                .trim_end_matches('/')
                .to_owned(),
            next_job_id: 1_000_000,
            ..FakeState::default()
        };
        Self {
            base_url: base_url.to_owned(),
            state: Arc::new(Mutex::new(state)),
        }
    }

    /// `<base_url>/api/v4`, the `api_url` to configure.
    pub fn api_url(&self) -> String {
        format!("{}/api/v4", self.base_url)
    }

    /// The `web_url` of a job, as GitLab shows it.
    pub fn job_web_url(&self, project_path: &str, job_id: u64) -> String {
        format!(
            "{}/{project_path}/-/jobs/{job_id}",
            lock(&self.state).web_base
        )
    }

    pub fn add_pipeline(&self, pipeline: FakePipeline) {
        lock(&self.state).pipelines.insert(pipeline.id, pipeline);
    }

    /// Adds (or replaces) a job; its pipeline is created on ref `job.ref` if missing.
    pub fn add_job(&self, job: FakeJob) {
        let mut state = lock(&self.state);
        state
            .pipelines
            .entry(job.pipeline_id)
            .or_insert_with(|| FakePipeline {
                id: job.pipeline_id,
                project_id: job.project_id,
                git_ref: job.git_ref.clone(),
                status: default_pipeline_status(),
            });
        state.jobs.insert(job.id, job);
    }

    pub fn job(&self, id: u64) -> Option<FakeJob> {
        lock(&self.state).jobs.get(&id).cloned()
    }

    /// The next `statuses.len()` requests `method path` (path under `/api/v4`, e.g.
    /// `/projects/7/jobs/3/retry`) are answered with these statuses and a GitLab-style error
    /// body; later ones behave normally.
    pub fn fail_next(&self, method: &str, path: &str, statuses: &[u16]) {
        lock(&self.state)
            .scripted
            .entry((method.to_ascii_uppercase(), format!("/api/v4{path}")))
            .or_default()
            .extend(statuses);
    }

    /// The jobs a retry creates get ids from `next` on (1 000 001 by default). Refused (with the
    /// highest id in use) unless `next` is above every job the fake holds, so a job never gets
    /// the id of another.
    pub fn number_jobs_from(&self, next: u64) -> Result<(), u64> {
        let mut state = lock(&self.state);
        let highest = state
            .jobs
            .keys()
            .copied()
            .max()
            .unwrap_or(0)
            .max(state.next_job_id);
        if next <= highest {
            return Err(highest);
        }
        // The counter is incremented before use.
        state.next_job_id = next - 1;
        Ok(())
    }

    /// Every API request is answered `delay` late during the next `period` (a slow GitLab, as
    /// under load); a request is recorded, and handled, once its delay is over.
    pub fn slow_for(&self, delay: Duration, period: Duration) {
        lock(&self.state).slow = Some((tokio::time::Instant::now() + period, delay));
    }

    /// Every request so far, in order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.state).requests.clone()
    }

    /// The requests `method path` (path under `/api/v4`) so far.
    pub fn requests_to(&self, method: &str, path: &str) -> Vec<RecordedRequest> {
        let full = format!("/api/v4{path}");
        self.requests()
            .into_iter()
            .filter(|r| r.method.eq_ignore_ascii_case(method) && r.path == full)
            .collect()
    }

    /// The router: the API under `/api/v4`, and `/fake/*` for seeding and inspection.
    pub fn router(&self) -> Router {
        let api = Router::new()
            .route("/api/v4/projects/{project}/jobs/{job}", get(get_job))
            .route(
                "/api/v4/projects/{project}/jobs/{job}/trace",
                get(get_trace),
            )
            .route(
                "/api/v4/projects/{project}/jobs/{job}/retry",
                post(retry_job),
            )
            .route("/api/v4/projects/{project}/pipelines", get(list_pipelines))
            .route(
                "/api/v4/projects/{project}/pipelines/{pipeline}",
                get(get_pipeline),
            )
            .route(
                "/api/v4/projects/{project}/pipelines/{pipeline}/jobs",
                get(list_pipeline_jobs),
            )
            .fallback(not_found)
            .layer(middleware::from_fn_with_state(self.state.clone(), gate));
        Router::new()
            .route("/fake/jobs", post(seed_job))
            .route("/fake/pipelines", post(seed_pipeline))
            .route("/fake/requests", get(list_requests))
            .route("/fake/fail", post(seed_failure))
            .route("/fake/job-ids", post(seed_job_ids))
            .merge(api)
            .with_state(self.state.clone())
    }
}

// --- the API -----------------------------------------------------------------------------

/// Records the request and decides whether it is answered by a script or an auth failure.
fn admit(
    state: &mut FakeState,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
) -> Option<Response> {
    let token = headers
        .get("private-token")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or_else(|| {
            headers
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "))
                .map(str::to_owned)
        });
    let mut answer = None;
    if state.token.is_some() && token != state.token {
        answer = Some(error(StatusCode::UNAUTHORIZED, "401 Unauthorized"));
    } else if let Some(queue) = state
        .scripted
        .get_mut(&(method.to_string(), uri.path().to_owned()))
        && let Some(status) = queue.pop_front()
    {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        answer = Some(error(status, &status.to_string()));
    }
    state.requests.push(RecordedRequest {
        method: method.to_string(),
        path: uri.path().to_owned(),
        query: uri.query().map(str::to_owned),
        token,
        status: answer.as_ref().map_or(0, |r| r.status().as_u16()),
        received_at_ms: unix_millis(),
        at: Instant::now(),
    });
    answer
}

/// Every API request (and every unknown path) goes through here: recorded, refused on a wrong
/// token or answered by a scripted failure, else passed to its handler; the recorded status
/// is the one answered.
async fn gate(State(state): State<Shared>, request: Request, next: Next) -> Response {
    let slow = match lock(&state).slow {
        Some((until, delay)) if tokio::time::Instant::now() < until => Some(delay),
        _ => None,
    };
    if let Some(delay) = slow {
        tokio::time::sleep(delay).await;
    }
    let recorded = {
        let mut state = lock(&state);
        if let Some(refused) = admit(
            &mut state,
            request.method(),
            request.uri(),
            request.headers(),
        ) {
            return refused;
        }
        state.requests.len() - 1
    };
    let response = next.run(request).await;
    if let Some(request) = lock(&state).requests.get_mut(recorded) {
        request.status = response.status().as_u16();
    }
    response
}

/// Now, in milliseconds since the Unix epoch (0 if the clock is before it).
fn unix_millis() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

fn error(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({ "message": message }))).into_response()
}

fn not_found_message(what: &str) -> Response {
    error(StatusCode::NOT_FOUND, &format!("404 {what} Not Found"))
}

/// Resolves `:id` — a numeric id or a URL-encoded path (axum has decoded it already).
fn project_id(state: &FakeState, project: &str) -> Option<u64> {
    if let Ok(id) = project.parse::<u64>() {
        return Some(id);
    }
    state
        .jobs
        .values()
        .find(|j| j.project_path == project)
        .map(|j| j.project_id)
}

fn project_path(state: &FakeState, project_id: u64) -> String {
    state
        .jobs
        .values()
        .find(|j| j.project_id == project_id)
        .map(|j| j.project_path.clone())
        .unwrap_or_else(|| format!("project-{project_id}"))
}

fn pipeline_json(state: &FakeState, p: &FakePipeline) -> Value {
    json!({
        "id": p.id,
        "iid": p.id,
        "project_id": p.project_id,
        "ref": p.git_ref,
        "sha": format!("{:040x}", p.id),
        "status": p.status,
        "source": "push",
        "web_url": format!("{}/{}/-/pipelines/{}", state.web_base, project_path(state, p.project_id), p.id),
    })
}

fn job_json(state: &FakeState, job: &FakeJob) -> Value {
    let pipeline = state
        .pipelines
        .get(&job.pipeline_id)
        .map(|p| pipeline_json(state, p))
        .unwrap_or_else(
            || json!({"id": job.pipeline_id, "project_id": job.project_id, "ref": job.git_ref}),
        );
    json!({
        "id": job.id,
        "name": job.name,
        "stage": job.stage,
        "status": job.status,
        "ref": job.git_ref,
        "tag": false,
        "allow_failure": job.allow_failure,
        "failure_reason": job.failure_reason,
        "retried": job.retried,
        "web_url": format!("{}/{}/-/jobs/{}", state.web_base, job.project_path, job.id),
        "pipeline": pipeline,
        "project": {"id": job.project_id, "path_with_namespace": job.project_path},
    })
}

fn find_job<'a>(state: &'a FakeState, project: &str, job: u64) -> Option<&'a FakeJob> {
    let project = project_id(state, project)?;
    state.jobs.get(&job).filter(|j| j.project_id == project)
}

async fn get_job(
    State(state): State<Shared>,
    Path((project, job)): Path<(String, u64)>,
) -> Response {
    let state = lock(&state);

    match find_job(&state, &project, job) {
        Some(found) => Json(job_json(&state, found)).into_response(),
        None => not_found_message("Job"),
    }
}

async fn get_trace(
    State(state): State<Shared>,
    Path((project, job)): Path<(String, u64)>,
) -> Response {
    let state = lock(&state);

    match find_job(&state, &project, job) {
        Some(found) => (
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            found.trace.clone(),
        )
            .into_response(),
        None => not_found_message("Job"),
    }
}

async fn retry_job(
    State(state): State<Shared>,
    Path((project, job)): Path<(String, u64)>,
) -> Response {
    let mut state = lock(&state);
    let Some(old) = find_job(&state, &project, job).cloned() else {
        return not_found_message("Job");
    };
    state.next_job_id += 1;
    let new = FakeJob {
        id: state.next_job_id,
        status: "pending".into(),
        failure_reason: None,
        retried: false,
        trace: Vec::new(),
        ..old.clone()
    };
    if let Some(stored) = state.jobs.get_mut(&old.id) {
        stored.retried = true;
    }
    let body = job_json(&state, &new);
    state.jobs.insert(new.id, new);

    (StatusCode::CREATED, Json(body)).into_response()
}

#[derive(Deserialize)]
struct ListQuery {
    #[serde(rename = "ref")]
    git_ref: Option<String>,
    sort: Option<String>,
    #[serde(default)]
    include_retried: bool,
    page: Option<usize>,
    per_page: Option<usize>,
}

/// GitLab's pagination: `page` from 1, `per_page` up to 100 (default 20).
fn paginate(items: Vec<Value>, query: &ListQuery) -> Response {
    let per_page = query.per_page.unwrap_or(20).clamp(1, 100);
    let page = query.page.unwrap_or(1).max(1);
    let total = items.len();
    let slice: Vec<Value> = items
        .into_iter()
        .skip((page - 1) * per_page)
        .take(per_page)
        .collect();
    let mut response = Json(slice).into_response();
    let headers = response.headers_mut();
    headers.insert("x-total", total.into());
    headers.insert("x-page", page.into());
    headers.insert("x-per-page", per_page.into());
    if page * per_page < total {
        headers.insert("x-next-page", (page + 1).into());
    }
    response
}

async fn list_pipelines(
    State(state): State<Shared>,
    Path(project): Path<String>,
    Query(query): Query<ListQuery>,
) -> Response {
    let state = lock(&state);
    let Some(project) = project_id(&state, &project) else {
        return not_found_message("Project");
    };
    let mut pipelines: Vec<&FakePipeline> = state
        .pipelines
        .values()
        .filter(|p| p.project_id == project)
        .filter(|p| query.git_ref.as_ref().is_none_or(|r| &p.git_ref == r))
        .collect();
    pipelines.sort_by_key(|p| std::cmp::Reverse(p.id));
    if query.sort.as_deref() == Some("asc") {
        pipelines.reverse();
    }
    let items = pipelines.iter().map(|p| pipeline_json(&state, p)).collect();

    paginate(items, &query)
}

async fn get_pipeline(
    State(state): State<Shared>,
    Path((project, pipeline)): Path<(String, u64)>,
) -> Response {
    let state = lock(&state);
    let project = project_id(&state, &project);

    match state
        .pipelines
        .get(&pipeline)
        .filter(|p| Some(p.project_id) == project)
    {
        Some(p) => Json(pipeline_json(&state, p)).into_response(),
        None => not_found_message("Pipeline"),
    }
}

async fn list_pipeline_jobs(
    State(state): State<Shared>,
    Path((project, pipeline)): Path<(String, u64)>,
    Query(query): Query<ListQuery>,
) -> Response {
    let state = lock(&state);
    let project = project_id(&state, &project);
    if state
        .pipelines
        .get(&pipeline)
        .is_none_or(|p| Some(p.project_id) != project)
    {
        return not_found_message("Pipeline");
    }
    let mut jobs: Vec<&FakeJob> = state
        .jobs
        .values()
        .filter(|j| j.pipeline_id == pipeline && (query.include_retried || !j.retried))
        .collect();
    jobs.sort_by_key(|j| std::cmp::Reverse(j.id));
    let items = jobs.iter().map(|j| job_json(&state, j)).collect();

    paginate(items, &query)
}

async fn not_found() -> Response {
    error(StatusCode::NOT_FOUND, "404 Not Found")
}

// --- seeding and inspection (dev stack) ----------------------------------------------------

async fn seed_job(State(state): State<Shared>, Json(job): Json<FakeJob>) -> Response {
    let fake = FakeGitLab {
        base_url: String::new(),
        state,
    };
    fake.add_job(job.clone());
    let body = job_json(&lock(&fake.state), &job);
    (StatusCode::CREATED, Json(body)).into_response()
}

async fn seed_pipeline(
    State(state): State<Shared>,
    Json(pipeline): Json<FakePipeline>,
) -> Response {
    let mut state = lock(&state);
    let body = pipeline_json(&state, &pipeline);
    state.pipelines.insert(pipeline.id, pipeline);
    (StatusCode::CREATED, Json(body)).into_response()
}

/// `POST /fake/fail`: statuses for the next calls of one endpoint, a slow period, or both.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FailureScript {
    method: Option<String>,
    /// Under `/api/v4`, e.g. `/projects/1/jobs/1001/retry`.
    path: Option<String>,
    #[serde(default)]
    statuses: Vec<u16>,
    /// With `slow_for_ms`: every API request answered this much late for that long.
    delay_ms: Option<u64>,
    slow_for_ms: Option<u64>,
}

async fn seed_failure(State(state): State<Shared>, Json(script): Json<FailureScript>) -> Response {
    let fake = FakeGitLab {
        base_url: String::new(),
        state,
    };
    if !script.statuses.is_empty() {
        let (Some(method), Some(path)) = (&script.method, &script.path) else {
            return error(
                StatusCode::BAD_REQUEST,
                "statuses need the method and path they answer",
            );
        };
        fake.fail_next(method, path, &script.statuses);
    }
    match (script.delay_ms, script.slow_for_ms) {
        (Some(delay), Some(period)) => {
            fake.slow_for(Duration::from_millis(delay), Duration::from_millis(period));
        }
        (None, None) => {}
        _ => {
            return error(
                StatusCode::BAD_REQUEST,
                "delay_ms and slow_for_ms go together",
            );
        }
    }
    StatusCode::NO_CONTENT.into_response()
}

/// `POST /fake/job-ids`: `{"next": N}`, where the ids of jobs created by retries start.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JobIds {
    next: u64,
}

async fn seed_job_ids(State(state): State<Shared>, Json(ids): Json<JobIds>) -> Response {
    let fake = FakeGitLab {
        base_url: String::new(),
        state,
    };
    match fake.number_jobs_from(ids.next) {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(highest) => error(
            StatusCode::CONFLICT,
            &format!(
                "next job id {} is not above the highest id in use ({highest})",
                ids.next
            ),
        ),
    }
}

async fn list_requests(State(state): State<Shared>) -> Response {
    Json(lock(&state).requests.clone()).into_response()
}

/// Traces are bytes; in seeding JSON they are text.
mod lossy_text {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&String::from_utf8_lossy(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u8>, D::Error> {
        Ok(String::deserialize(deserializer)?.into_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn serves_jobs_traces_pipelines_and_retries_with_a_record() {
        let fake = FakeGitLab::start_with(FakeGitLabOptions {
            token: Some("secret".into()),
            web_base: Some("https://gitlab.test".into()),
        })
        .await;
        fake.add_job(FakeJob::failed(
            10,
            7,
            "group/project",
            100,
            "build",
            "log line\n",
        ));
        fake.add_pipeline(FakePipeline {
            id: 101,
            project_id: 7,
            git_ref: "main".into(),
            status: "running".into(),
        });
        let client = reqwest::Client::new();
        let api = fake.api_url();
        let get = |path: &str| {
            client
                .get(format!("{api}{path}"))
                .header("PRIVATE-TOKEN", "secret")
                .send()
        };

        let job: Value = get("/projects/group%2Fproject/jobs/10")
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(
            job["web_url"],
            "https://gitlab.test/group/project/-/jobs/10"
        );
        assert_eq!(job["pipeline"]["id"], 100);
        let trace = get("/projects/7/jobs/10/trace")
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert_eq!(trace, "log line\n");
        let newest: Value = get("/projects/7/pipelines?ref=main&per_page=1")
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(newest[0]["id"], 101);

        let unauthorised = client
            .get(format!("{api}/projects/7/jobs/10"))
            .send()
            .await
            .unwrap();
        assert_eq!(unauthorised.status(), 401);

        fake.fail_next("POST", "/projects/7/jobs/10/retry", &[500]);
        let post = || {
            client
                .post(format!("{api}/projects/7/jobs/10/retry"))
                .header("PRIVATE-TOKEN", "secret")
                .send()
        };
        assert_eq!(post().await.unwrap().status(), 500);
        let retried = post().await.unwrap();
        assert_eq!(retried.status(), 201);
        let new: Value = retried.json().await.unwrap();
        assert_ne!(new["id"], 10);
        assert_eq!(new["status"], "pending");
        assert!(fake.job(10).unwrap().retried);

        let jobs: Value = get("/projects/7/pipelines/100/jobs")
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(jobs.as_array().unwrap().len(), 1, "retried jobs are hidden");
        let all: Value = get("/projects/7/pipelines/100/jobs?include_retried=true")
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(all.as_array().unwrap().len(), 2);

        let retries = fake.requests_to("POST", "/projects/7/jobs/10/retry");
        assert_eq!(
            retries.iter().map(|r| r.status).collect::<Vec<_>>(),
            vec![500, 201]
        );
        assert_eq!(fake.requests()[1].status, 200);
        assert_eq!(fake.requests()[3].status, 401);

        // Every request carries the time it arrived, also in the log's JSON.
        let before = unix_millis();
        assert!(fake.requests().iter().all(|r| r.received_at_ms > 0));
        let log: Value = client
            .get(format!("{}/fake/requests", fake.base_url))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let last = log.as_array().unwrap().last().unwrap();
        let at = last["received_at_ms"].as_u64().unwrap();
        assert!(at <= before && before - at < 60_000, "{last}");
        assert_eq!(last["path"], "/api/v4/projects/7/pipelines/100/jobs");

        // Unknown paths are answered and recorded like the API's own.
        assert_eq!(get("/projects/7/nothing").await.unwrap().status(), 404);
        let last = fake.requests().pop().unwrap();
        assert_eq!(
            (last.path.as_str(), last.status),
            ("/api/v4/projects/7/nothing", 404)
        );
    }

    #[tokio::test]
    async fn fake_fail_over_http_scripts_statuses_and_a_slow_period() {
        let fake = FakeGitLab::start_with(FakeGitLabOptions::default()).await;
        fake.add_job(FakeJob::failed(
            10,
            7,
            "group/project",
            100,
            "build",
            "log\n",
        ));
        let client = reqwest::Client::new();
        let fail = |body: Value| {
            client
                .post(format!("{}/fake/fail", fake.base_url))
                .json(&body)
                .send()
        };
        let job = || {
            client
                .get(format!("{}/projects/7/jobs/10", fake.api_url()))
                .send()
        };
        let script = json!({
            "method": "GET", "path": "/projects/7/jobs/10", "statuses": [502],
            "delay_ms": 300, "slow_for_ms": 60_000,
        });
        assert_eq!(fail(script).await.unwrap().status(), 204);
        // The scripted status first, then the real answer; both late.
        let started = std::time::Instant::now();
        assert_eq!(job().await.unwrap().status(), 502);
        assert_eq!(job().await.unwrap().status(), 200);
        assert!(started.elapsed() >= Duration::from_millis(600));
        // After the period, no delay (a period already over).
        fake.slow_for(Duration::from_secs(30), Duration::ZERO);
        let started = std::time::Instant::now();
        assert_eq!(job().await.unwrap().status(), 200);
        assert!(started.elapsed() < Duration::from_secs(30));
        // Scripts that cannot be followed are refused, saying why.
        for (body, message) in [
            (
                json!({"statuses": [500]}),
                "statuses need the method and path they answer",
            ),
            (
                json!({"delay_ms": 100}),
                "delay_ms and slow_for_ms go together",
            ),
        ] {
            let refused = fail(body).await.unwrap();
            assert_eq!(refused.status(), 400);
            let body: Value = refused.json().await.unwrap();
            assert_eq!(body["message"], message);
        }
    }

    #[tokio::test]
    async fn retries_are_numbered_from_where_a_test_says_never_reusing_an_id() {
        let fake = FakeGitLab::start_with(FakeGitLabOptions::default()).await;
        fake.add_job(FakeJob::failed(
            5_000_000,
            7,
            "group/project",
            100,
            "build",
            "log\n",
        ));
        let client = reqwest::Client::new();
        let set = |next: u64| {
            client
                .post(format!("{}/fake/job-ids", fake.base_url))
                .json(&json!({ "next": next }))
                .send()
        };
        let refused = set(4_000_000).await.unwrap();
        assert_eq!(refused.status(), 409);
        let body: Value = refused.json().await.unwrap();
        assert_eq!(
            body["message"],
            "next job id 4000000 is not above the highest id in use (5000000)"
        );
        assert_eq!(set(9_000_000).await.unwrap().status(), 204);
        // The id of the job a retry of `job` creates.
        let retry = |api: String, job: u64| {
            let request = client.post(format!("{api}/projects/7/jobs/{job}/retry"));
            async move {
                let created: Value = request.send().await.unwrap().json().await.unwrap();
                created["id"].as_u64().unwrap()
            }
        };
        assert_eq!(retry(fake.api_url(), 5_000_000).await, 9_000_000);
        // The default numbering stays for a fake nobody told otherwise.
        let other = FakeGitLab::start_with(FakeGitLabOptions::default()).await;
        other.add_job(FakeJob::failed(
            10,
            7,
            "group/project",
            100,
            "build",
            "log\n",
        ));
        assert_eq!(retry(other.api_url(), 10).await, 1_000_001);
    }
}

//! The fake GitLab API as a process, for the local dev stack (`scripts/dev/*-fake-gitlab.env`).
//!
//!   fake-gitlab [LISTEN]      default 127.0.0.1:8090 (or FAKE_GITLAB_LISTEN)
//!
//! `FAKE_GITLAB_TOKEN`, when set, is required on every API call (`PRIVATE-TOKEN`).
//! `FAKE_GITLAB_WEB_BASE` is the base of the `web_url`s it hands out (default: its own
//! address; in containers, the address a browser uses, e.g. `http://localhost:8090`). It starts
//! with a demo project `demo/kernel` (id 1), pipeline 100 on `main` and two failed jobs:
//! 1001 `build x86_64` (an image pull failure the herder retries) and 1002 `test x86_64` (a
//! genuine test failure it leaves alone). Control endpoints:
//!   POST /fake/jobs        a job as JSON (`id, project_id, project_path, pipeline_id, name,
//!                          stage, status, ref, failure_reason, allow_failure, trace`)
//!   POST /fake/pipelines   `{id, project_id, ref, status}` (a newer one supersedes older ones)
//!   POST /fake/fail        `{method, path, statuses}`: answer the next calls with these statuses;
//!                          `{delay_ms, slow_for_ms}`: answer every request late for a while
//!   POST /fake/job-ids     `{next}`: the jobs retries create get ids from `next` on
//!   GET  /fake/requests    every request received, with the status answered

use fake_gitlab::{FakeGitLab, FakeGitLabOptions, FakeJob};

const IMAGE_PULL_TRACE: &str = "\
Running with gitlab-runner 17.5.0 (7ad2a5a8)
  on kernel-runner-03 t3_xYz9a, system ID: r_8fJ2k1
Preparing the \"docker\" executor
Using Docker executor with image quay.io/cki/builder-rawhide:latest ...
Pulling docker image quay.io/cki/builder-rawhide:latest ...
WARNING: Failed to pull image with policy \"always\": Error response from daemon: Get \"https://quay.io/v2/\": net/http: request canceled while waiting for connection (Client.Timeout exceeded while awaiting headers) (manager.go:250:15s)
ERROR: Job failed: failed to pull image \"quay.io/cki/builder-rawhide:latest\" with specified policies [always]: Error response from daemon: Get \"https://quay.io/v2/\": net/http: request canceled (manager.go:250:15s)
";

const TEST_FAILURE_TRACE: &str = "\
Running with gitlab-runner 17.5.0 (7ad2a5a8)
$ make -C tools/testing/selftests run_tests
not ok 12 selftests: net: fib_tests.sh # exit=1
# Totals: pass:41 fail:1 xfail:0 xpass:0 skip:3 error:0
make: *** [Makefile:151: run_tests] Error 1
Cleaning up project directory and file based variables
ERROR: Job failed: exit code 2
";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let listen = std::env::args()
        .nth(1)
        .or_else(|| std::env::var("FAKE_GITLAB_LISTEN").ok())
        .unwrap_or_else(|| "127.0.0.1:8090".into());
    let listener = tokio::net::TcpListener::bind(&listen).await?;
    let base = format!("http://{}", listener.local_addr()?);
    let fake = FakeGitLab::new(
        FakeGitLabOptions {
            token: std::env::var("FAKE_GITLAB_TOKEN")
                .ok()
                .filter(|t| !t.is_empty()),
            web_base: std::env::var("FAKE_GITLAB_WEB_BASE")
                .ok()
                .filter(|b| !b.is_empty()),
        },
        &base,
    );
    let mut build_job = FakeJob::failed(
        1001,
        1,
        "demo/kernel",
        100,
        "build x86_64",
        IMAGE_PULL_TRACE,
    );
    build_job.stage = "build".into();
    build_job.failure_reason = Some("runner_system_failure".into());
    fake.add_job(build_job);
    fake.add_job(FakeJob::failed(
        1002,
        1,
        "demo/kernel",
        100,
        "test x86_64",
        TEST_FAILURE_TRACE,
    ));
    println!(
        "fake GitLab API on {base}/api/v4 (demo jobs {} and {})",
        fake.job_web_url("demo/kernel", 1001),
        fake.job_web_url("demo/kernel", 1002)
    );
    axum::serve(listener, fake.router()).await?;
    Ok(())
}

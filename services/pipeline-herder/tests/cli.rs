//! The binary: `--help`, `serve --check-config` and `check --job-url`, run as an operator
//! would run them.

mod common;

use std::path::PathBuf;
use std::process::Output;

use common::{IMAGE_PULL_LOG, INSTANCE, PROJECT, PROJECT_ID, TEST_FAILURE_LOG, settings_yaml};
use fake_gitlab::{FakeGitLab, FakeGitLabOptions, FakeJob};
use serde_json::Value;
use steadfast_test_support::unique_name;
use tokio::process::Command;

/// A scratch directory removed at the end of the test.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Self {
        let dir = std::env::temp_dir().join(unique_name("herder-cli"));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn herder() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_pipeline-herder"));
    command
        .env_clear()
        .env("TEST_GITLAB_TOKEN", "glpat-test")
        .env("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/herder")
        .env("LOG_FORMAT", "json");
    command
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

async fn run(command: &mut Command) -> Output {
    command.output().await.expect("run pipeline-herder")
}

#[tokio::test]
async fn help_names_both_commands_and_the_flags() {
    let out = run(herder().arg("--help")).await;
    assert!(out.status.success());
    let help = text(&out.stdout);
    assert!(help.contains("serve") && help.contains("check"), "{help}");
    let out = run(herder().args(["serve", "--help"])).await;
    let help = text(&out.stdout);
    for flag in [
        "--config",
        "--check-config",
        "--chatbot-url",
        "--admin-token",
        "HERDER_ADMIN_TOKEN",
    ] {
        assert!(help.contains(flag), "{flag} missing from:\n{help}");
    }
}

#[tokio::test]
async fn check_config_accepts_a_valid_file() {
    let scratch = Scratch::new();
    let config = scratch.write(
        "herder.yaml",
        "gitlab_instances:\n  gitlab.com:\n    api_url: https://gitlab.com/api/v4\n    token_env: TEST_GITLAB_TOKEN\n",
    );
    let out = run(herder()
        .args(["serve", "--config"])
        .arg(&config)
        .arg("--check-config"))
    .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.starts_with("configuration OK: 10 matchers (27 log patterns) from the shipped default matchers; GitLab instances: gitlab.com;"),
        "{stdout}"
    );
}

#[tokio::test]
async fn check_config_names_the_first_invalid_matcher_and_exits_78() {
    let scratch = Scratch::new();
    for (matchers, expected) in [
        (
            "matchers:\n  - name: pull\n    messages: ['image pull failed']\n  - name: disk\n    action: retri\n    messages: [x]\n",
            "invalid configuration: matcher `disk`: unknown action `retri` (expected retry, report or alert)",
        ),
        (
            "matchers:\n  - name: pull\n    messages: [{regex: 'pull (failed'}]\n",
            "invalid configuration: matcher `pull`: message 1 (`pull (failed`) is not a valid regex: unclosed group",
        ),
    ] {
        let config = scratch.write("herder.yaml", matchers);
        let out = run(herder()
            .args(["serve", "--config"])
            .arg(&config)
            .arg("--check-config"))
        .await;
        assert_eq!(out.status.code(), Some(78));
        assert_eq!(text(&out.stderr).trim(), expected);
    }
    let out = run(herder().args([
        "serve",
        "--config",
        "/nonexistent/herder.yaml",
        "--check-config",
    ]))
    .await;
    assert_eq!(out.status.code(), Some(78));
    assert_eq!(
        text(&out.stderr).trim(),
        "invalid configuration: cannot read config file `/nonexistent/herder.yaml`: No such file or directory (os error 2)"
    );
    let config = scratch.write("ok.yaml", "{}\n");
    let out = run(herder()
        .args(["serve", "--config"])
        .arg(&config)
        .arg("--check-config")
        .env_remove("DATABASE_URL"))
    .await;
    assert_eq!(out.status.code(), Some(78));
    assert_eq!(
        text(&out.stderr).trim(),
        "invalid configuration: DATABASE_URL is not set (the herder keeps its ledger in PostgreSQL)"
    );
}

async fn fake_with_jobs() -> FakeGitLab {
    let fake = FakeGitLab::start_with(FakeGitLabOptions {
        token: Some("glpat-test".into()),
        web_base: Some(format!("https://{INSTANCE}")),
    })
    .await;
    fake.add_job(FakeJob::failed(
        701,
        PROJECT_ID,
        PROJECT,
        100,
        "build x86_64",
        IMAGE_PULL_LOG,
    ));
    fake.add_job(FakeJob::failed(
        702,
        PROJECT_ID,
        PROJECT,
        100,
        "test x86_64",
        TEST_FAILURE_LOG,
    ));
    fake
}

#[tokio::test]
async fn check_prints_the_matching_matcher_for_a_known_failure() {
    let fake = fake_with_jobs().await;
    let scratch = Scratch::new();
    let config = scratch.write("herder.yaml", &settings_yaml(&fake, ""));
    let url = format!("https://{INSTANCE}/{PROJECT}/-/jobs/701");
    let out = run(herder()
        .args(["check", "--config"])
        .arg(&config)
        .args(["--job-url", &url]))
    .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.starts_with("job 701 `build x86_64` (stage test) of kernel/ark on gitlab.test\n"),
        "{stdout}"
    );
    assert!(
        stdout.contains("image-pull                 retry   MATCHED: message `ERROR: Job failed: failed to pull image` found in the log"),
        "{stdout}"
    );
    assert!(
        stdout.contains(
            "line: ERROR: Job failed: failed to pull image \"quay.io/cki/builder-rawhide:latest\""
        ),
        "{stdout}"
    );
    assert!(
        stdout.contains("decision: retry — matcher `image-pull`: message `ERROR: Job failed: failed to pull image` found in the log; retry 1 of 3 in 5m"),
        "{stdout}"
    );
    // Nothing was changed: only reads.
    assert!(fake.requests().iter().all(|r| r.method == "GET"));
}

#[tokio::test]
async fn check_says_no_problem_detected_for_a_genuine_test_failure() {
    let fake = fake_with_jobs().await;
    let scratch = Scratch::new();
    let config = scratch.write("herder.yaml", &settings_yaml(&fake, ""));
    let url = format!("https://{INSTANCE}/{PROJECT}/-/jobs/702");
    let out = run(herder()
        .args(["check", "--config"])
        .arg(&config)
        .args(["--job-url", &url]))
    .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("no-space-left              retry   no match: none of its 3 message(s) is in the last 1000000 bytes of the log"), "{stdout}");
    assert!(
        stdout.ends_with("decision: no problem detected; the herder would do nothing\n"),
        "{stdout}"
    );

    let out = run(herder()
        .args(["check", "--json", "--config"])
        .arg(&config)
        .args(["--job-url", &url]))
    .await;
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["decision"]["action"], "none");
    assert_eq!(report["job"]["job_id"], 702);
    assert_eq!(report["matchers"][0]["name"], "image-pull");
    assert_eq!(report["matchers"][0]["verdict"], "no_match");
}

#[tokio::test]
async fn check_explains_bad_urls_and_unknown_instances() {
    let fake = fake_with_jobs().await;
    let scratch = Scratch::new();
    let config = scratch.write("herder.yaml", &settings_yaml(&fake, ""));
    let out = run(herder()
        .args(["check", "--config"])
        .arg(&config)
        .args(["--job-url", "https://gitlab.test/kernel/ark/-/pipelines/1"]))
    .await;
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr).trim(),
        "check failed: `https://gitlab.test/kernel/ark/-/pipelines/1` is not a GitLab job URL like https://gitlab.com/group/project/-/jobs/123"
    );
    let out = run(herder()
        .args(["check", "--config"])
        .arg(&config)
        .args(["--job-url", "https://gitlab.com/kernel/ark/-/jobs/1"]))
    .await;
    assert_eq!(
        text(&out.stderr).trim(),
        "check failed: GitLab instance `gitlab.com` is not configured in gitlab_instances"
    );
    let out = run(herder()
        .args(["check", "--config"])
        .arg(&config)
        .args(["--job-url", "https://gitlab.test/kernel/ark/-/jobs/999"]))
    .await;
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.starts_with("check failed: reading the job from GitLab: GET "),
        "{stderr}"
    );
    assert!(stderr.contains("answered 404 Not Found"), "{stderr}");
}

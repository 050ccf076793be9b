//! The `webhook-receiver` binary as an operator runs it: `--help`, `--check-config`, JSON
//! logs without secrets, SIGTERM.

use std::process::Stdio;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;
use steadfast_test_support::TestBroker;
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{ChildStdout, Command};

use crate::common::*;

const BINARY: &str = env!("CARGO_BIN_EXE_webhook-receiver");

/// The binary with a clean environment (the test runner's DATABASE_URL etc. must not leak in).
fn command(env: &[(&str, &str)]) -> Command {
    let mut command = Command::new(BINARY);
    command.env_clear().envs(env.iter().copied());
    command
}

#[tokio::test]
async fn help_lists_the_settings() {
    let output = command(&[]).arg("--help").output().await.unwrap();
    assert!(output.status.success());
    let help = String::from_utf8(output.stdout).unwrap();
    for flag in [
        "GITLAB_WEBHOOK_SECRET",
        "ALERTMANAGER_TOKEN",
        "ALERTMANAGER_BASIC_AUTH",
        "RECEIVER_CONFIG",
        "PUBLISH_TIMEOUT",
        "MAX_BODY_SIZE",
        "DATABASE_URL",
        "--check-config",
    ] {
        assert!(help.contains(flag), "--help mentions {flag}:\n{help}");
    }
}

#[tokio::test]
async fn check_config_says_ok_or_exits_78_with_the_reason() {
    let output = command(&[("GITLAB_WEBHOOK_SECRET", "s3cret-value")])
        .arg("--check-config")
        .output()
        .await
        .unwrap();
    assert_eq!(output.status.code(), Some(0));
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(
        stdout.starts_with("configuration OK: exchange steadfast.webhooks; sources: gitlab"),
        "{stdout}"
    );
    assert!(!stdout.contains("s3cret-value"));

    let output = command(&[]).arg("--check-config").output().await.unwrap();
    assert_eq!(output.status.code(), Some(78));
    assert_eq!(
        String::from_utf8(output.stderr).unwrap().trim_end(),
        "invalid configuration: no webhook source is configured: set GITLAB_WEBHOOK_SECRET, \
         ALERTMANAGER_TOKEN or ALERTMANAGER_BASIC_AUTH, or list `hooks` in RECEIVER_CONFIG"
    );

    let output = command(&[
        ("GITLAB_WEBHOOK_SECRET", "s"),
        ("RECEIVER_CONFIG", "/nonexistent/receiver.yaml"),
    ])
    .arg("--check-config")
    .output()
    .await
    .unwrap();
    assert_eq!(output.status.code(), Some(78));
    assert!(String::from_utf8(output.stderr).unwrap().starts_with(
        "invalid configuration: cannot read config file `/nonexistent/receiver.yaml`"
    ),);
}

/// Reads JSON log lines until one has `message == wanted`.
async fn wait_for_line(
    lines: &mut Lines<BufReader<ChildStdout>>,
    wanted: &str,
    seen: &mut String,
) -> Value {
    tokio::time::timeout(WAIT, async {
        loop {
            let line = lines
                .next_line()
                .await
                .unwrap()
                .expect("the process ended early");
            seen.push_str(&line);
            seen.push('\n');
            let value: Value = serde_json::from_str(&line)
                .unwrap_or_else(|e| panic!("log line is not JSON ({e}): {line}"));
            if value["message"] == wanted {
                return value;
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no `{wanted}` log line; saw:\n{seen}"))
}

#[tokio::test]
async fn the_binary_logs_one_json_line_per_event_without_secrets_and_stops_on_sigterm() {
    let tb = TestBroker::new().await;
    let _probe = tb.probe("all", &tb.name("webhooks"), "#").await;
    let amqp_url = steadfast_test_support::amqp_url();
    let mut child = command(&[
        ("STEADFAST_NAMESPACE", tb.namespace.as_str()),
        ("AMQP_URL", amqp_url.as_str()),
        ("GITLAB_WEBHOOK_SECRET", GITLAB_SECRET),
        ("HTTP_LISTEN", "127.0.0.1:0"),
        ("METRICS_LISTEN", "127.0.0.1:0"),
        ("LOG_FORMAT", "json"),
    ])
    .stdout(Stdio::piped())
    .kill_on_drop(true)
    .spawn()
    .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut seen = String::new();

    let listening = wait_for_line(&mut lines, "webhook-receiver listening", &mut seen).await;
    assert_eq!(listening["service"], "webhook-receiver");
    let addr = listening["http"].as_str().unwrap().to_owned();
    let response = reqwest::Client::new()
        .post(format!("http://{addr}/gitlab"))
        .header("content-type", "application/json")
        .header("x-gitlab-token", GITLAB_SECRET)
        .header("x-gitlab-event-uuid", "log-line-1")
        .body(JOB_HOOK)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);

    let line = wait_for_line(&mut lines, "webhook accepted", &mut seen).await;
    assert_eq!(line["level"], "info");
    assert_eq!(line["event_id"], "log-line-1");
    assert_eq!(line["routing_key"], JOB_ROUTING_KEY);
    assert_eq!(line["outcome"], "published");
    assert_eq!(line["status"], 200);
    assert_eq!(line["trace_id"].as_str().map(str::len), Some(32));

    let pid = child.id().unwrap().to_string();
    let killed = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .await
        .unwrap();
    assert!(killed.success());
    wait_for_line(&mut lines, "webhook-receiver stopped", &mut seen).await;
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .expect("exits after SIGTERM")
        .unwrap();
    assert!(status.success(), "{status:?}");
    while let Ok(Some(line)) = lines.next_line().await {
        seen.push_str(&line);
    }
    assert!(
        !seen.contains(GITLAB_SECRET),
        "a secret reached the logs:\n{seen}"
    );
}

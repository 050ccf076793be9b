//! The binary as an operator runs it: `--help`, `--check-config`, `hash-password`, and a real
//! start and SIGTERM.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use console::auth::users::Users;
use steadfast_test_support::{eventually_async, redis_url, unique_name};
use tokio::io::AsyncWriteExt as _;
use tokio::process::Command;

/// A scratch directory removed at the end of the test.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Self {
        let dir = std::env::temp_dir().join(unique_name("console-cli"));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    fn write(&self, name: &str, text: &str) -> String {
        let path = self.0.join(name);
        std::fs::write(&path, text).unwrap();
        path.display().to_string()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn console() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_console"));
    command
        .env_clear()
        .env("REDIS_URL", redis_url())
        .env("LOG_FORMAT", "json")
        .kill_on_drop(true);
    command
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

async fn hash(password: &str) -> String {
    let mut child = console()
        .arg("hash-password")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin
        .write_all(format!("{password}\n").as_bytes())
        .await
        .unwrap();
    drop(stdin);
    let output = child.wait_with_output().await.unwrap();
    assert!(output.status.success(), "{}", text(&output.stderr));
    text(&output.stdout).trim().to_owned()
}

#[tokio::test]
async fn help_names_every_setting() {
    let output = console().arg("--help").output().await.unwrap();
    assert!(output.status.success());
    let help = text(&output.stdout);
    for setting in [
        "CONSOLE_USERS_FILE",
        "CONSOLE_TRUSTED_PROXIES",
        "CONSOLE_OPERATORS",
        "CONSOLE_SESSION_TTL",
        "HERDER_URL",
        "RABBITMQ_MANAGEMENT_URL",
        "--check-config",
        "hash-password",
    ] {
        assert!(help.contains(setting), "{setting} in --help:\n{help}");
    }
}

#[tokio::test]
async fn hash_password_makes_a_hash_the_users_file_accepts() {
    let hash = hash("s3cret pass").await;
    assert!(hash.starts_with("$argon2id$"), "{hash}");
    let users = Users::parse(
        std::path::Path::new("users.yaml"),
        &format!("users:\n  - name: ops\n    role: operator\n    password_hash: \"{hash}\"\n"),
    )
    .unwrap();
    assert!(
        users.verify("ops", "s3cret pass").is_some(),
        "the newline is not part of it"
    );
    assert!(users.verify("ops", "s3cret pass\n").is_none());

    let empty = console()
        .arg("hash-password")
        .stdin(Stdio::null())
        .output()
        .await
        .unwrap();
    assert!(!empty.status.success());
    assert_eq!(
        text(&empty.stderr).trim(),
        "cannot hash the password: the password is empty"
    );
}

#[tokio::test]
async fn check_config_accepts_a_good_file_and_names_what_is_wrong() {
    let scratch = Scratch::new();
    let hash = hash("pw").await;
    let good = scratch.write(
        "users.yaml",
        &format!("users:\n  - name: alice\n    role: operator\n    password_hash: \"{hash}\"\n"),
    );
    let ok = console()
        .args(["--check-config", "--users-file", &good])
        .output()
        .await
        .unwrap();
    assert_eq!(ok.status.code(), Some(0), "{}", text(&ok.stderr));
    assert!(
        text(&ok.stdout)
            .starts_with("configuration OK: namespace steadfast; login 1 built-in users"),
        "{}",
        text(&ok.stdout)
    );

    let bad = scratch.write(
        "bad.yaml",
        "users:\n  - name: bob\n    role: root\n    password_hash: x\n",
    );
    let refused = console()
        .args(["--check-config", "--users-file", &bad])
        .output()
        .await
        .unwrap();
    assert_eq!(refused.status.code(), Some(78));
    let stderr = text(&refused.stderr);
    assert!(
        stderr.contains(&format!(
            "CONSOLE_USERS_FILE `{bad}`: user `bob`: the role must be `viewer` or `operator`, not `root`"
        )),
        "{stderr}"
    );

    let nobody = console().arg("--check-config").output().await.unwrap();
    assert_eq!(nobody.status.code(), Some(78));
    assert!(text(&nobody.stderr).contains("no way to log in"));
}

#[tokio::test]
async fn it_serves_and_stops_on_sigterm() {
    let scratch = Scratch::new();
    let hash = hash("pw").await;
    let users = scratch.write(
        "users.yaml",
        &format!("users:\n  - name: alice\n    role: viewer\n    password_hash: \"{hash}\"\n"),
    );
    let port = free_port();
    let metrics = free_port();
    let child = console()
        .args(["--users-file", &users])
        .env("STEADFAST_NAMESPACE", unique_name("console-cli"))
        .env("AMQP_URL", steadfast_test_support::amqp_url())
        .env("HTTP_LISTEN", format!("127.0.0.1:{port}"))
        .env("METRICS_LISTEN", format!("127.0.0.1:{metrics}"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let client = reqwest::Client::new();
    eventually_async("the console ready", Duration::from_secs(20), || async {
        let response = client
            .get(format!("http://127.0.0.1:{port}/readyz"))
            .send()
            .await
            .ok()?;
        response.status().is_success().then_some(())
    })
    .await;
    let login = client
        .get(format!("http://127.0.0.1:{port}/login"))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 200);
    let scrape = client
        .get(format!("http://127.0.0.1:{metrics}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        scrape.contains("steadfast_build_info{service=\"console\""),
        "{scrape}"
    );
    assert!(scrape.contains("steadfast_console_actions_total{action=\"replay\",outcome=\"ok\"} 0"));

    let pid = child.id().unwrap().to_string();
    let killed = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .await
        .unwrap();
    assert!(killed.success());
    let output = tokio::time::timeout(Duration::from_secs(20), child.wait_with_output())
        .await
        .expect("stops within 20 s")
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    let logs = text(&output.stdout);
    assert!(
        logs.contains(r#""message":"console shutting down""#),
        "{logs}"
    );
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

use std::path::PathBuf;

use clap::Parser;

use super::*;

fn cli(args: &[&str]) -> Cli {
    let mut all = vec!["webhook-receiver"];
    all.extend_from_slice(args);
    Cli::try_parse_from(all).unwrap()
}

fn error(args: &[&str]) -> String {
    Config::from_cli(&cli(args)).unwrap_err().to_string()
}

#[test]
fn defaults_and_a_default_gitlab_secret() {
    let config = Config::from_cli(&cli(&["--gitlab-webhook-secret", "s"])).unwrap();
    assert_eq!(config.broker.publish_timeout, Duration::from_secs(2));
    assert_eq!(config.max_body_bytes, 1024 * 1024);
    assert_eq!(config.http_listen.to_string(), "0.0.0.0:8080");
    // clap reads DATABASE_URL from the environment; without it the spool is off.
    if std::env::var_os("DATABASE_URL").is_none() {
        assert!(config.database_url.is_none());
        assert!(
            config
                .summary()
                .contains("spool: disabled (no DATABASE_URL)")
        );
    }
    assert!(!format!("{config:?}").contains("\"s\""));
}

#[test]
fn a_receiver_without_sources_is_refused() {
    assert!(error(&[]).starts_with("no webhook source is configured"));
}

#[test]
fn bad_values_are_named() {
    assert_eq!(
        error(&["--alertmanager-token", ""]),
        "ALERTMANAGER_TOKEN is set but empty"
    );
    assert_eq!(
        error(&["--alertmanager-basic-auth", "nopassword"]),
        "ALERTMANAGER_BASIC_AUTH must be `user:password`"
    );
    assert!(
        error(&["--gitlab-webhook-secret", "s", "--publish-timeout", "8s"])
            .starts_with("PUBLISH_TIMEOUT + SPOOL_TIMEOUT is 11s")
    );
    assert_eq!(
        error(&[
            "--gitlab-webhook-secret",
            "s",
            "--database-url",
            "mysql://u:pw@h/db"
        ]),
        "DATABASE_URL `mysql://u:***@h/db` is not a PostgreSQL URL (postgres://user@host:5432/database)"
    );
    assert!(
        error(&["--gitlab-webhook-secret", "s", "--namespace", "Bad NS"])
            .contains("namespace `Bad NS`")
    );
}

#[test]
fn sizes_parse() {
    assert_eq!(parse_size("1MiB").unwrap(), 1024 * 1024);
    assert_eq!(parse_size("512KiB").unwrap(), 512 * 1024);
    assert_eq!(parse_size("2048").unwrap(), 2048);
    assert_eq!(parse_size("2MB").unwrap(), 2_000_000);
    assert_eq!(
        parse_size("1 parsec").unwrap_err().to_string(),
        "`1 parsec`: unknown size unit `parsec` (use B, KiB or MiB)"
    );
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn temp_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("receiver-config-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn the_file_adds_project_secrets_and_hooks() {
    let dir = temp_dir();
    let secret_file = write(&dir, "grafana", "from-file\n");
    let path = write(
        &dir,
        "receiver.yaml",
        &format!(
            "gitlab:\n  projects:\n    - match: \"cki-project/**\"\n      secret: literal-secret\n\
             hooks:\n  - name: grafana\n    secret: {{file: {}}}\n    event_field: /status\n",
            secret_file.display()
        ),
    );
    let config = Config::from_cli(&cli(&["--config", path.to_str().unwrap()])).unwrap();
    assert!(config.gitlab.authorizes("cki-project/x", "literal-secret"));
    assert_eq!(config.hooks[0].secret.expose(), "from-file");
    assert_eq!(config.hooks[0].routing_key("firing"), "grafana.firing");
}

#[test]
fn file_errors_name_the_file_and_field() {
    let dir = temp_dir();
    let path = write(
        &dir,
        "bad-glob.yaml",
        "gitlab:\n  projects:\n    - match: \"a/[\"\n      secret: x\n",
    );
    let err = error(&["--config", path.to_str().unwrap()]);
    assert!(err.contains("bad-glob.yaml"), "{err}");
    assert!(
        err.contains("gitlab.projects[0].match `a/[` is not a valid glob"),
        "{err}"
    );

    let path = write(
        &dir,
        "env.yaml",
        "gitlab:\n  projects:\n    - match: \"a/*\"\n      secret: {env: STEADFAST_TEST_SURELY_UNSET_VARIABLE}\n",
    );
    let err = error(&["--config", path.to_str().unwrap()]);
    assert!(
        err.ends_with("gitlab.projects[0].secret: environment variable STEADFAST_TEST_SURELY_UNSET_VARIABLE is not set"),
        "{err}"
    );

    let path = write(&dir, "typo.yaml", "gitlab:\n  project: []\n");
    let err = error(&["--config", path.to_str().unwrap()]);
    assert!(err.contains("unknown field `project`"), "{err}");

    let path = write(
        &dir,
        "secret.yaml",
        "hooks:\n  - name: x\n    secret: {vault: y}\n    default_event: e\n",
    );
    let err = error(&["--config", path.to_str().unwrap()]);
    assert!(
        err.contains("unknown field `vault`, expected `env` or `file`"),
        "{err}"
    );

    let err = error(&["--config", dir.join("missing.yaml").to_str().unwrap()]);
    assert!(err.starts_with("cannot read config file"), "{err}");
}

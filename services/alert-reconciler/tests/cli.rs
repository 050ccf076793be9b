//! The binaries as an operator meets them: `--help`, `--check-config` (exit 0 or 78 with the
//! precise reason), and `steadfast-recipe` against the real Redis.

use std::process::Command;

use alert_reconciler::results::{BusEvent, ResultBus};
use steadfast_test_support::{redis_url, unique_name};

fn reconciler() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_alert-reconciler"));
    // Only what each case sets: the test runner's own DATABASE_URL etc. must not leak in.
    command.env_clear();
    command
}

fn dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(unique_name("reconciler-cli"));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn check_config_accepts_a_good_configuration_and_names_what_is_wrong() {
    let dir = dir();
    let recipes = dir.join("recipes.yaml");
    std::fs::write(
        &recipes,
        "debugging:\n  a:\n    entrypoint: ./a.sh\nactions: {}\n",
    )
    .unwrap();
    let base = [
        ("DATABASE_URL", "postgres://postgres@127.0.0.1/reconciler"),
        ("REDIS_URL", "redis://127.0.0.1:6379/"),
        ("RECONCILER_API_TOKEN", "0123456789abcdef0123"),
        ("EXECUTOR", "local"),
    ];
    let output = reconciler()
        .envs(base)
        .env("RECIPES_FILE", &recipes)
        .arg("--check-config")
        .output()
        .unwrap();
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.starts_with("configuration OK\n"), "{stdout}");
    assert!(stdout.contains("executor: local"), "{stdout}");
    assert!(
        !stdout.contains("0123456789abcdef0123"),
        "no secret is printed"
    );

    let invalid = |command: &mut Command| {
        let output = command.arg("--check-config").output().unwrap();
        assert_eq!(output.status.code(), Some(78));
        String::from_utf8_lossy(&output.stderr).trim().to_owned()
    };
    assert_eq!(
        invalid(
            reconciler()
                .envs(base.iter().filter(|(k, _)| *k != "DATABASE_URL").copied())
                .env("RECIPES_FILE", &recipes)
        ),
        "invalid configuration: DATABASE_URL is required (incidents are kept in PostgreSQL)"
    );
    assert_eq!(
        invalid(
            reconciler()
                .envs(base)
                .env("RECIPES_FILE", &recipes)
                .env("WEBEX_BOT_TOKEN", "t")
                .env("WEBEX_ROOM_ID", "r")
        ),
        "invalid configuration: WEBEX_WEBHOOK_SECRET is required with the Webex sink: approval callbacks are verified with it"
    );
    std::fs::write(
        &recipes,
        "debugging:\n  a:\n    entrypoint: ./a.sh\n    timeot: 5s\n",
    )
    .unwrap();
    let message = invalid(reconciler().envs(base).env("RECIPES_FILE", &recipes));
    assert!(
        message.starts_with("invalid configuration: recipes file"),
        "{message}"
    );
    assert!(message.contains("unknown field `timeot`"), "{message}");
    std::fs::write(&recipes, "debugging:\n  a:\n    entrypoint: ./a.sh\n").unwrap();
    assert_eq!(
        invalid(
            reconciler()
                .envs(base)
                .env("RECIPES_FILE", &recipes)
                .env("EXECUTOR", "kubernetes")
        ),
        format!(
            "invalid configuration: recipes file `{}`: debugging.a: `image` is required with the kubernetes executor",
            recipes.display()
        )
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn help_lists_euphrosynes_flags() {
    let output = reconciler().arg("--help").output().unwrap();
    assert!(output.status.success());
    let help = String::from_utf8_lossy(&output.stdout);
    for flag in [
        "--recipes <FILE>",
        "--executor",
        "--recipe-timeout",
        "--recipe-namespace",
        "--redis-address",
        "--webex-bot-address",
        "--chat-webhook-url",
        "--check-config",
    ] {
        assert!(help.contains(flag), "{flag} missing from --help");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn steadfast_recipe_reports_live_and_durably() {
    let dir = dir();
    let run = uuid::Uuid::new_v4().to_string();
    let data = dir.join("data.json");
    std::fs::write(
        &data,
        format!(r#"{{"uuid": "{run}", "alerts": [{{"labels": {{"pod": "web-9"}}}}]}}"#),
    )
    .unwrap();
    let bus = ResultBus::new(&redis_url()).unwrap();
    let stop = tokio_util::sync::CancellationToken::new();
    tokio::spawn(bus.clone().run(stop.clone()));
    assert!(bus.wait_connected(std::time::Duration::from_secs(10)).await);
    let mut subscription = bus.subscribe(&run).await.unwrap();

    let recipe = || {
        let mut command = Command::new(env!("CARGO_BIN_EXE_steadfast-recipe"));
        command
            .env_clear()
            .env("STEADFAST_DATA_FILE", &data)
            .env("STEADFAST_RECIPE", "pods")
            .env(
                "STEADFAST_REDIS_ADDRESS",
                redis_url()
                    .trim_start_matches("redis://")
                    .trim_end_matches('/'),
            );
        command
    };
    let pod = recipe()
        .args(["get", "alerts.0.labels.pod"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&pod.stdout).trim(), "web-9");
    let missing = recipe().args(["get", "alerts.3"]).output().unwrap();
    assert_eq!(missing.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no `alerts.3` in"));

    let reported = recipe()
        .args([
            "report",
            "--status",
            "successful",
            "--analysis",
            "web-9 is fine",
            "--action",
            "restart-pod",
        ])
        .output()
        .unwrap();
    assert!(
        reported.status.success(),
        "{}",
        String::from_utf8_lossy(&reported.stderr)
    );
    assert!(String::from_utf8_lossy(&reported.stderr).contains("reported successful for `pods`"));
    let Some(BusEvent::Message(live)) = subscription.recv().await else {
        panic!("no live message")
    };
    let backlog = bus.backlog(&run).await.unwrap();
    assert_eq!(backlog, vec![live.clone()]);
    let message: serde_json::Value = serde_json::from_slice(&live).unwrap();
    assert_eq!(message["incident"], run.as_str());
    assert_eq!(message["name"], "pods");
    assert_eq!(message["results"]["analysis"], "web-9 is fine");
    assert_eq!(message["results"]["actions"][0]["name"], "restart-pod");

    let unreachable = recipe()
        .env("STEADFAST_REDIS_ADDRESS", "127.0.0.1:1")
        .args(["report", "--status", "failed"])
        .output()
        .unwrap();
    assert_eq!(unreachable.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&unreachable.stderr)
            .starts_with("steadfast-recipe: cannot publish to Redis at 127.0.0.1:1")
    );
    bus.forget(&run).await.unwrap();
    stop.cancel();
    std::fs::remove_dir_all(dir).unwrap();
}

//! HyperFleet's Sentinel configs load unchanged, and bad ones are refused with the reason.

use std::path::PathBuf;
use std::process::Command;

use clap::Parser;
use sentinel::{Cli, Config};

fn peer_cases() -> PathBuf {
    steadfast_test_support::shared_dir().join("peer-cases/hyperfleet-sentinel")
}

fn load(args: &[&str]) -> Result<Config, String> {
    let mut argv = vec!["sentinel", "serve"];
    argv.extend_from_slice(args);
    let cli = Cli::try_parse_from(argv).map_err(|e| e.to_string())?;
    let sentinel::Command::Serve(args) = cli.command else {
        unreachable!()
    };
    Config::from_args(&args).map_err(|e| e.to_string())
}

#[test]
fn every_hyperfleet_config_loads_as_it_is() {
    steadfast_test_support::skip_without_peer_cases!();
    for file in [
        "configs/dev-example.yaml",
        "configs/rabbitmq-example.yaml",
        "testdata/full-workflow.yaml",
        "testdata/minimal.yaml",
    ] {
        let path = peer_cases().join(file);
        let config = load(&["-c", path.to_str().unwrap(), "--broker-topic", "hf-test"])
            .unwrap_or_else(|e| panic!("{file}: {e}"));
        config
            .validate_for_serve()
            .unwrap_or_else(|e| panic!("{file}: {e}"));
    }
    let full = load(&[
        "-c",
        peer_cases()
            .join("testdata/full-workflow.yaml")
            .to_str()
            .unwrap(),
    ])
    .unwrap();
    assert_eq!(full.name, "hyperfleet-sentinel-nodepools");
    assert_eq!(full.resource_type, "nodepools");
    assert_eq!(full.poll_interval, std::time::Duration::from_secs(3));
    assert_eq!(full.api.timeout, std::time::Duration::from_secs(20));
    assert_eq!(full.api.page_size, 20);
    assert_eq!(
        full.search().as_deref(),
        Some("labels.cluster-id='cls-123' and labels.region='eu-west'")
    );
    assert_eq!(full.selector_label(), "cluster-id:cls-123,region:eu-west");
    let minimal = load(&[
        "-c",
        peer_cases().join("testdata/minimal.yaml").to_str().unwrap(),
    ])
    .unwrap();
    assert_eq!(minimal.name, "hyperfleet-sentinel-minimal");
    assert_eq!(minimal.poll_interval, std::time::Duration::from_secs(5));
    assert_eq!(minimal.api.timeout, std::time::Duration::from_secs(10));
    assert!(minimal.tracing_enabled);
}

#[test]
fn unknown_fields_are_rejected_by_name() {
    steadfast_test_support::skip_without_peer_cases!();
    let err = load(&[
        "-c",
        peer_cases()
            .join("testdata/unknown-field.yaml")
            .to_str()
            .unwrap(),
    ])
    .unwrap_err();
    assert!(err.contains("unknown field `resouce_type`"), "{err}");
    assert!(err.contains("line 9"), "{err}");
}

#[test]
fn flags_beat_the_file() {
    steadfast_test_support::skip_without_peer_cases!();
    let path = peer_cases().join("configs/dev-example.yaml");
    let config = load(&[
        "-c",
        path.to_str().unwrap(),
        "--poll-interval",
        "7s",
        "--resource-type",
        "nodepools",
        "--hyperfleet-api-base-url",
        "https://api.example.com",
        "--health-server-bindaddress",
        ":18080",
        "--shard",
        "1/4",
    ])
    .unwrap();
    assert_eq!(config.poll_interval, std::time::Duration::from_secs(7));
    assert_eq!(config.resource_type, "nodepools");
    assert_eq!(config.api.base_url.as_str(), "https://api.example.com/");
    assert_eq!(config.http_listen.to_string(), "0.0.0.0:18080");
    assert_eq!(
        config.shard,
        Some(sentinel::shard::Shard { index: 1, count: 4 })
    );
}

fn write(name: &str, text: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(steadfast_test_support::unique_name("sentinel-config"));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

const BASE: &str = "clients:\n  hyperfleet_api:\n    base_url: http://api.example.com\n  broker:\n    topic: hf\nresource_type: clusters\nmessage_data:\n  id: resource.id\n";

#[test]
fn bad_values_are_named() {
    for (extra, expected) in [
        (
            "poll_interval: 0s\n",
            "poll_interval must be greater than 0",
        ),
        ("poll_interval: soon\n", "`soon` is not a duration"),
        (
            "shard: {index: 3, count: 3}\n",
            "shard.index must be below shard.count",
        ),
        (
            "message_decision:\n  params:\n    - {name: a, expr: 'resource.generation >'}\n  result: a\n",
            "message_decision.params[0] (a): invalid CEL expression `resource.generation >`",
        ),
        (
            "message_decision:\n  params: []\n  result: 'is_reconciled'\n",
            "message_decision.result: `is_reconciled` uses `is_reconciled`, which is not defined here",
        ),
    ] {
        let path = write("c.yaml", &format!("{BASE}{extra}"));
        let err = load(&["-c", path.to_str().unwrap()]).unwrap_err();
        assert!(err.contains(expected), "{extra}: {err}");
    }
    let path = write("c.yaml", &BASE.replace("http://api.example.com", "ftp://x"));
    assert!(
        load(&["-c", path.to_str().unwrap()])
            .unwrap_err()
            .contains("must be http or https")
    );
    let path = write(
        "c.yaml",
        &BASE.replace("message_data:\n  id: resource.id\n", ""),
    );
    assert!(
        load(&["-c", path.to_str().unwrap()])
            .unwrap_err()
            .contains("message_data is required")
    );
}

#[test]
fn check_config_exits_78_with_the_reason_and_0_when_valid() {
    steadfast_test_support::skip_without_peer_cases!();
    let bin = env!("CARGO_BIN_EXE_sentinel");
    let bad = write(
        "bad.yaml",
        &format!("{BASE}message_decision:\n  params: []\n  result: 'resource.generation =='\n"),
    );
    let out = Command::new(bin)
        .args(["serve", "--check-config", "-c", bad.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(78));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with("invalid configuration: message_decision.result: invalid CEL expression `resource.generation ==`"),
        "{stderr}"
    );
    let good = write("good.yaml", BASE);
    let out = Command::new(bin)
        .args(["serve", "--check-config", "-c", good.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "configuration OK\n");
    let out = Command::new(bin)
        .args([
            "config-dump",
            "-c",
            peer_cases().join("testdata/minimal.yaml").to_str().unwrap(),
        ])
        .output()
        .unwrap();
    let dump = String::from_utf8_lossy(&out.stdout);
    assert!(dump.contains("resource_type: clusters"), "{dump}");
    assert!(
        dump.contains("name: is_new_resource"),
        "defaults are shown: {dump}"
    );
    let out = Command::new(bin).arg("version").output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("sentinel "));
}

//! The deployment file of `steadfast-chaos run --target`: the documented example is accepted,
//! and every mistake is refused with a message that names the field.

use std::path::Path;

use steadfast_chaos::deployment::Deployment;
use steadfast_chaos::faults::FaultKind;
use steadfast_chaos::stack::{Launch, Readiness};

/// The example the runbook shows (docs/runbooks/chaos-target.example.yaml), so it stays valid.
fn example() -> String {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/runbooks/chaos-target.example.yaml");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn parse(text: &str, faults: &[FaultKind]) -> Result<Deployment, String> {
    let dir = tempdir();
    std::fs::write(dir.join("broker-password"), "s3cret\n").unwrap();
    Deployment::parse(text, &dir, faults)
}

fn tempdir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "steadfast-chaos-deployment-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn the_documented_example_is_a_valid_deployment() {
    let deployment = parse(&example(), &[FaultKind::Kill, FaultKind::Fake5xx]).unwrap();
    assert_eq!(deployment.namespace, "steadfast");
    assert_eq!(
        deployment.replicas("webhook-receiver"),
        ["webhook-receiver-1", "webhook-receiver-2"]
    );
    assert_eq!(
        deployment.replicas("alert-reconciler"),
        ["alert-reconciler-1", "alert-reconciler-2"]
    );
    // Secrets from files, relative to the file's directory, without the trailing newline.
    assert_eq!(deployment.management_password, "s3cret");
    let specs = deployment.specs();
    let herder = specs.iter().find(|s| s.name == "pipeline-herder").unwrap();
    assert_eq!(
        herder.ready,
        Readiness::Ok200("http://pipeline-herder.steadfast.svc:8080/readyz".into())
    );
    assert!(
        matches!(&herder.launch, Launch::Deployed { kill: Some(k) } if k.contains("kubectl")),
        "{herder:?}"
    );
}

/// The example with one line replaced (`from` must occur).
fn example_with(from: &str, to: &str) -> String {
    let text = example();
    assert!(text.contains(from), "the example has no {from:?}");
    text.replacen(from, to, 1)
}

#[test]
fn mistakes_are_refused_naming_the_field() {
    let kill = [FaultKind::Kill];
    let cases: Vec<(String, &[FaultKind], &str)> = vec![
        (
            example_with("namespace: steadfast", "namespace: \"stead*\""),
            &kill,
            "namespace \"stead*\" must be letters, digits, '-' and '_'",
        ),
        (
            example_with("  sentinel:", "  sentinal:"),
            &kill,
            "services.sentinal: unknown service",
        ),
        (
            example_with(
                "  pipeline-herder:\n    url: http://pipeline-herder.steadfast.svc:8080",
                "  pipeline-herder:\n    url: pipeline-herder:8080",
            ),
            &kill,
            "services.pipeline-herder.url: \"pipeline-herder:8080\" is not an http:// or https:// URL",
        ),
        (
            example_with("amqp_url: amqps://", "amqp_url: http://"),
            &kill,
            "broker.amqp_url: address 1 must start with amqp:// or amqps://",
        ),
        (
            example_with("password: {file: broker-password}", "password: {}"),
            &kill,
            "broker.password: give value or file",
        ),
        (
            example_with(
                "password: {file: broker-password}",
                "password: {file: missing-file}",
            ),
            &kill,
            "broker.password: cannot read",
        ),
        (
            example_with(
                "password: {file: broker-password}",
                "password: {file: broker-password, value: x}",
            ),
            &kill,
            "broker.password: give value or file, not both",
        ),
        (
            example_with("adapter_queue: steadfast-", "adapter_queue: other-"),
            &kill,
            "does not start with the namespace",
        ),
        (
            example_with("fleet_api:", "fleet_apj:"),
            &kill,
            "unknown field `fleet_apj`",
        ),
        (
            example(),
            &[FaultKind::Broker],
            "broker faults need infrastructure the suite owns",
        ),
    ];
    for (text, faults, expected) in cases {
        let error = parse(&text, faults).expect_err(expected);
        assert!(
            error.contains(expected),
            "expected {expected:?} in {error:?}"
        );
    }
}

#[test]
fn kill_faults_need_a_kill_command_for_every_service() {
    let text = example_with(
        "    kill: kubectl -n steadfast get pod -l app.kubernetes.io/name=sentinel -o name | head -n 1 | xargs kubectl -n steadfast delete --grace-period=0 --force --wait=true\n",
        "",
    );
    // Without kill faults, a service without a command is fine.
    parse(&text, &[FaultKind::Fake5xx]).unwrap();
    let error = parse(&text, &[FaultKind::Kill]).unwrap_err();
    assert_eq!(
        error,
        "`kill` faults need a kill command for every service; none for sentinel"
    );
}

#[test]
fn a_missing_service_is_named() {
    let text = example();
    let start = text.find("  adapter:").unwrap();
    let end = start + text[start..].find("\n  alert-reconciler-1:").unwrap() + 1;
    let without = format!("{}{}", &text[..start], &text[end..]);
    assert_eq!(
        parse(&without, &[]).unwrap_err(),
        "services.adapter is missing"
    );
}

#[test]
fn a_deployment_written_back_reads_the_same() {
    // What `steadfast-chaos stack --write-target` writes goes through the same file format.
    let deployment = parse(&example(), &[FaultKind::Kill]).unwrap();
    let written = deployment.to_yaml();
    assert!(written.contains("value: s3cret"), "{written}");
    assert_eq!(parse(&written, &[FaultKind::Kill]).unwrap(), deployment);
}

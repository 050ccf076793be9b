//! Load-time validation: each message the runbook tells the on-call engineer to look for, and
//! HyperFleet's own configs loading unchanged.

mod support;

use std::path::PathBuf;
use std::process::Command;

use adapter::config::{self, ConfigError, Overrides, Sources};
use support::*;

const ADAPTER: &str = LIVE_ADAPTER;

const TASK: &str = r#"params:
  - name: clusterId
    source: event.id
    required: true
resources:
  - name: ns
    manifest:
      apiVersion: v1
      kind: Namespace
      metadata:
        name: "{{ .clusterId }}"
        annotations:
          hyperfleet.io/generation: "1"
    discovery:
      by_name: "{{ .clusterId }}"
"#;

fn load(dir: &TempDir, adapter: &str, task: &str) -> Result<config::Loaded, ConfigError> {
    let sources = Sources {
        adapter_config: Some(dir.write("adapter.yaml", adapter)),
        task_config: Some(dir.write("task.yaml", task)),
        overrides: Overrides::default(),
        remaps: Vec::new(),
        ..Sources::default()
    };
    config::load(&sources, steadfast_rules::system_clock(), false)
}

fn error(adapter: &str, task: &str) -> String {
    let dir = TempDir::new();
    match load(&dir, adapter, task) {
        Ok(_) => panic!("the config was accepted"),
        Err(e) => e.to_string(),
    }
}

fn assert_contains(text: &str, fragments: &[&str]) {
    for fragment in fragments {
        assert!(text.contains(fragment), "expected `{fragment}` in:\n{text}");
    }
}

#[test]
fn hyperfleet_examples_load_unchanged() {
    steadfast_test_support::skip_without_peer_cases!();
    let sources = Sources {
        adapter_config: Some(example_dir().join("adapter-config.yaml")),
        task_config: Some(example_dir().join("adapter-task-config.yaml")),
        overrides: Overrides {
            subscription_id: Some("sub".into()),
            topic: Some("clusters".into()),
            ..Overrides::default()
        },
        remaps: example_remaps(),
        ..Sources::default()
    };
    let loaded = config::load(&sources, steadfast_rules::system_clock(), false).unwrap();
    assert_eq!(loaded.adapter.adapter.name, "kubernetes-example");
    assert_eq!(loaded.task.resources.len(), 2);
    assert_eq!(loaded.config_json["clients"]["broker"]["topic"], "clusters");

    let showcase = Sources {
        adapter_config: Some(dryrun_dir().join("dryrun-kubernetes-adapter-config.yaml")),
        task_config: Some(dryrun_dir().join("cel-showcase/dryrun-cel-showcase-task-config.yaml")),
        ..Sources::default()
    };
    let loaded = config::load(&showcase, steadfast_rules::system_clock(), true).unwrap();
    assert_eq!(loaded.task.params.len(), 23);
}

#[test]
fn config_paths_are_required() {
    let dir = TempDir::new();
    let task = dir.write("task.yaml", TASK);
    let no_adapter = Sources {
        task_config: Some(task),
        ..Sources::default()
    };
    let err = config::load(&no_adapter, steadfast_rules::system_clock(), false)
        .unwrap_err()
        .to_string();
    assert_contains(
        &err,
        &[
            "adapter config file path is required",
            "HYPERFLEET_ADAPTER_CONFIG",
        ],
    );
    let no_task = Sources {
        adapter_config: Some(dir.write("adapter.yaml", ADAPTER)),
        ..Sources::default()
    };
    let err = config::load(&no_task, steadfast_rules::system_clock(), false)
        .unwrap_err()
        .to_string();
    assert_contains(
        &err,
        &[
            "task config file path is required",
            "HYPERFLEET_TASK_CONFIG",
        ],
    );
}

#[test]
fn unreadable_and_malformed_files_are_named() {
    let missing = Sources {
        adapter_config: Some(PathBuf::from("/nonexistent/adapter.yaml")),
        task_config: Some(PathBuf::from("/nonexistent/task.yaml")),
        ..Sources::default()
    };
    let err = config::load(&missing, steadfast_rules::system_clock(), false)
        .unwrap_err()
        .to_string();
    assert_contains(
        &err,
        &[
            "failed to read adapter config file",
            "/nonexistent/adapter.yaml",
        ],
    );
    let err = error("adapter: [unclosed", TASK);
    assert_contains(
        &err,
        &["failed to parse adapter config YAML", "adapter.yaml"],
    );
    let err = error(&ADAPTER.replace("topic:", "topik:"), TASK);
    assert_contains(&err, &["unknown field `topik`"]);
    let err = error(ADAPTER, &TASK.replace("by_name:", "byName:"));
    assert_contains(
        &err,
        &[
            "failed to parse task config YAML",
            "unknown field `byName`",
            "line",
        ],
    );
}

#[test]
fn version_mismatch_and_missing_settings() {
    let err = error(&ADAPTER.replace("\"0.2.0\"", "\"1.4.0\""), TASK);
    assert_contains(&err, &["adapter version mismatch", "\"1.4.0\"", "0.1, 0.2"]);
    // Not semver: not checked, as in HyperFleet.
    let dir = TempDir::new();
    load(&dir, &ADAPTER.replace("\"0.2.0\"", "\"dev\""), TASK).unwrap();

    let err = error(
        &ADAPTER.replace("    base_url: http://127.0.0.1:1\n", ""),
        TASK,
    );
    assert_contains(
        &err,
        &[
            "HyperFleet API base URL not configured",
            "HYPERFLEET_API_BASE_URL",
        ],
    );
    let err = error(&ADAPTER.replace("    subscription_id: sub\n", ""), TASK);
    assert_contains(
        &err,
        &["Missing required broker configuration: subscription_id"],
    );
    let err = error(&ADAPTER.replace("name: test-adapter", "name: \"\""), TASK);
    assert_contains(&err, &["adapter.name is required"]);
    let err = error(&ADAPTER.replace("http://127.0.0.1:1", "ftp://x"), TASK);
    assert_contains(&err, &["is not usable", "http or https"]);
}

#[test]
fn maestro_is_refused_clearly() {
    let task = TASK.replace("  - name: ns\n", "  - name: ns\n    transport:\n      client: maestro\n      maestro:\n        target_cluster: \"{{ .clusterId }}\"\n");
    let err = error(ADAPTER, &task);
    assert_contains(
        &err,
        &[
            "maestro transport is not supported yet",
            "resources[0].transport.client",
        ],
    );
    // A clients.maestro section no resource uses is ignored, with a warning (HyperFleet's own
    // adapter-config template has one beside Kubernetes-only task configs).
    let dir = TempDir::new();
    let loaded = load(
        &dir,
        &format!("{ADAPTER}  maestro:\n    grpc_server_address: maestro:8090\n"),
        TASK,
    )
    .expect("an unused maestro section loads");
    assert_eq!(
        loaded
            .warnings
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>(),
        [
            "clients.maestro: ignored: no resource uses the maestro transport (Steadfast does not support Maestro yet)"
        ]
    );
}

#[test]
fn cel_parse_errors_name_the_expression() {
    let task = format!(
        "{TASK}post:\n  payloads:\n    - name: p\n      build:\n        ok:\n          expression: \"clusterId ==\"\n"
    );
    let err = error(ADAPTER, &task);
    assert_contains(
        &err,
        &["post.payloads[0].build.ok.expression", "CEL parse error"],
    );
}

#[test]
fn undefined_template_variables_are_refused_where_hyperfleet_looks() {
    let err = error(
        ADAPTER,
        &TASK.replace(
            "by_name: \"{{ .clusterId }}\"",
            "by_name: \"{{ .clusterID }}\"",
        ),
    );
    assert_contains(
        &err,
        &[
            "resources[0].discovery.by_name",
            "undefined template variable \"clusterID\"",
        ],
    );
    // A param's api_call may read only the params before it.
    let task = "params:\n  - name: cluster\n    source:\n      api_call:\n        method: GET\n        url: \"/clusters/{{ .clusterId }}\"\n  - name: clusterId\n    source: event.id\n";
    assert_contains(
        &error(ADAPTER, task),
        &[
            "params[0].source.api_call.url",
            "undefined template variable \"clusterId\"",
        ],
    );
}

#[test]
fn mutually_exclusive_options_are_refused() {
    let task = format!(
        "{TASK}post:\n  payloads:\n    - name: p\n      build: {{a: b}}\n      build_ref: other.yaml\n"
    );
    assert_contains(
        &error(ADAPTER, &task),
        &[
            "post.payloads[0]",
            "'build' and 'build_ref' are mutually exclusive",
        ],
    );
    let task = format!(
        "{TASK}preconditions:\n  - name: c\n    capture:\n      - name: x\n        field: a\n        expression: \"1\"\n    expression: \"true\"\n"
    );
    assert_contains(
        &error(ADAPTER, &task),
        &[
            "preconditions[0].capture[0]",
            "'field' and 'expression' are mutually exclusive",
        ],
    );
    let task = TASK.replace(
        "      by_name: \"{{ .clusterId }}\"",
        "      by_name: \"{{ .clusterId }}\"\n      by_selectors:\n        label_selector: {a: b}",
    );
    assert_contains(
        &error(ADAPTER, &task),
        &["'by_selectors' and 'by_name' are mutually exclusive"],
    );
    let task = TASK.replace(
        "    source: event.id\n",
        "    source:\n      expression: event.id\n      file: {path: /etc/id}\n",
    );
    assert_contains(
        &error(ADAPTER, &task),
        &["only one of 'api_call', 'expression', or 'file' may be set"],
    );
}

#[test]
fn manifests_and_references_are_checked() {
    let task = TASK.replace(
        "    manifest:\n      apiVersion: v1\n      kind: Namespace\n      metadata:\n        name: \"{{ .clusterId }}\"\n        annotations:\n          hyperfleet.io/generation: \"1\"\n",
        "",
    );
    assert_contains(
        &error(ADAPTER, &task),
        &[
            "resources[0].manifest",
            "manifest is required for kubernetes transport",
        ],
    );
    let task = TASK.replace(
        "    manifest:\n      apiVersion: v1\n",
        "    manifest:\n      ref: /etc/adapter/missing.yaml\n    unused:\n      apiVersion: v1\n",
    );
    // (unknown key `unused` is reported by the parser before references are read)
    assert_contains(&error(ADAPTER, &task), &["unknown field `unused`"]);
    let task = "resources:\n  - name: job\n    manifest:\n      ref: templates/missing.yaml\n    discovery:\n      by_name: x\n";
    assert_contains(
        &error(ADAPTER, task),
        &[
            "resources[0].manifest.ref",
            "referenced file \"templates/missing.yaml\" does not exist",
            "--remap-path",
        ],
    );
    // HyperFleet keeps `ref` files inside the task config's directory.
    for outside in ["/etc/adapter/job.yaml", "../job.yaml"] {
        let task = format!(
            "resources:\n  - name: job\n    manifest:\n      ref: {outside}\n    discovery:\n      by_name: x\n"
        );
        assert_contains(
            &error(ADAPTER, &task),
            &[
                "resources[0].manifest.ref",
                &format!("path {outside:?} escapes base directory"),
            ],
        );
    }
    let task =
        "resources:\n  - name: job\n    manifest:\n      apiVersion: v1\n      kind: ConfigMap\n";
    assert_contains(
        &error(ADAPTER, task),
        &["resources[0].discovery is required"],
    );
}

#[test]
fn every_problem_is_listed_at_once() {
    let task = format!(
        "{TASK}preconditions:\n  - name: a\n    expression: \"((\"\n  - name: Bad-Name\n    conditions:\n      - field: clusterId\n        operator: in\n        value: x\n"
    );
    let err = error(ADAPTER, &task);
    assert_contains(
        &err,
        &[
            "validation failed with 3 error(s)",
            "CEL parse error",
            "preconditions[1].name: \"Bad-Name\": must start with lowercase letter",
            "value must be a list",
        ],
    );
}

/// Each refusal HyperFleet's loader makes, with its wording.
#[test]
fn what_hyperfleet_refuses_is_refused_with_its_message() {
    let cases: &[(&str, &str)] = &[
        (
            "resources:\n  - name: my-ns\n    manifest: {apiVersion: v1, kind: Namespace}\n    discovery: {by_name: x}\n",
            "resources[0].name: \"my-ns\": must start with lowercase letter and contain only letters, numbers, underscores (no hyphens)",
        ),
        (
            "resources:\n  - name: ns\n    manifest: {apiVersion: v1, kind: Namespace}\n    discovery: {by_name: x}\n  - name: ns\n    manifest: {apiVersion: v1, kind: Namespace}\n    discovery: {by_name: y}\n",
            "resources: contains duplicate name values",
        ),
        (
            "params:\n  - name: region\n    source: env.STEADFAST_TEST_UNSET_REGION\n    required: true\n",
            "params[0]: required environment variable STEADFAST_TEST_UNSET_REGION is not set",
        ),
        (
            "params:\n  - name: p\n    source:\n      expression: \"  \"\n",
            "params[0].source: expression must not be empty",
        ),
        ("params:\n  - name: p\n", "params[0].source is required"),
        (
            "preconditions:\n  - name: check\n    capture:\n      - name: x\n",
            "preconditions[0]: must specify api_call, expression or conditions",
        ),
        (
            "preconditions:\n  - name: check\n    expression: \"true\"\n    capture:\n      - name: x\n",
            "preconditions[0].capture[0]: must have either 'field' or 'expression' set",
        ),
        (
            "preconditions:\n  - name: check\n    conditions:\n      - {field: a, operator: exists, value: 1}\n",
            "value/values should not be set for operator \"exists\"",
        ),
        (
            "preconditions:\n  - name: check\n    conditions:\n      - {field: a, operator: equals}\n",
            "value is required for operator \"equals\"",
        ),
        (
            "post:\n  payloads:\n    - name: p\n      when: {expression: \"\"}\n      build: {a: b}\n",
            "post.payloads[0].when.expression: expression is required",
        ),
        (
            "post:\n  post_actions:\n    - name: report-status\n      log: {message: hi}\n",
            "post.post_actions[0].name: \"report-status\": must start with lowercase letter",
        ),
        (
            "resources:\n  - name: ns\n    manifest: {apiVersion: v1, kind: Namespace}\n    discovery: {by_name: x}\n    lifecycle:\n      delete:\n        propagationPolicy: Later\n        when: {expression: \"true\"}\n",
            "invalid propagationPolicy \"Later\": must be one of Background, Foreground, Orphan",
        ),
        (
            "resources:\n  - name: ns\n    manifest: {ref: templates}\n    discovery: {by_name: x}\n",
            "resources[0].manifest.ref: referenced path \"templates\" is a directory, not a file",
        ),
        (
            "resources:\n  - name: ns\n    manifest: {apiVersion: v1, kind: Namespace}\n    discovery: {by_name: x}\n    nested_discoveries:\n      - name: my-job\n        discovery: {by_name: y}\n",
            "resources[0].nested_discoveries[0].name: \"my-job\": must start with lowercase letter",
        ),
        (
            "params:\n  - name: cluster\n    source:\n      api_call: {method: GET, url: \"\"}\n",
            "params[0].source.api_call.url is required",
        ),
    ];
    for (task, message) in cases {
        let dir = TempDir::new();
        std::fs::create_dir_all(dir.0.join("templates")).unwrap();
        let err = match load(&dir, ADAPTER, task) {
            Ok(_) => panic!("accepted:\n{task}"),
            Err(e) => e.to_string(),
        };
        assert_contains(&err, &[message]);
    }
}

/// What only our stricter checks find loads, as in HyperFleet, with warnings; strict
/// validation (the flag or the adapter config's key) refuses it, naming every one.
const WARNED_TASK: &str = r#"params:
  - name: clusterId
    source: event.id
    required: true
  - name: clusterId
    source: event.id
  - name: clusterStatus2
    source:
      expression: non_existent
  - name: shouted
    source:
      expression: clusterId.shout()
resources:
  - name: ns
    manifest:
      apiVersion: v1
      metadata:
        name: "{{ .clusterId | nosuch }}"
        labels:
          tier: "{{ if .tier }}gold{{ end }}"
    discovery:
      by_name: "{{ .clusterId }}"
post:
  payloads:
    - name: status
      build:
        id:
          expression: clusterStatus2
"#;

#[test]
fn what_only_we_check_loads_with_warnings() {
    let dir = TempDir::new();
    let loaded = load(&dir, ADAPTER, WARNED_TASK).expect("HyperFleet loads this, so do we");
    let warnings: Vec<String> = loaded.warnings.iter().map(ToString::to_string).collect();
    let expected = [
        "params[1].name: duplicate name \"clusterId\" (also params[0]); the later one wins",
        "params[2].source.expression: CEL expression `non_existent` uses undefined variable `non_existent`",
        "params[3].source.expression: CEL expression `clusterId.shout()` calls unknown function `shout`",
        "resources[0].manifest.metadata.name: template parse error: function \"nosuch\" not defined",
        "resources[0].manifest.metadata.labels.tier: undefined template variable \"tier\"",
        "resources[0].manifest.kind: the manifest has no kind",
        "post.payloads[0].build.id.expression: reads `clusterStatus2`, which is never set: params[2] (clusterStatus2) reads `non_existent` undefined, and has no default",
    ];
    for fragment in expected {
        assert!(
            warnings.iter().any(|w| w.contains(fragment)),
            "no warning with `{fragment}` in {warnings:#?}"
        );
    }
    assert_eq!(warnings.len(), expected.len(), "{warnings:#?}");

    let strict = Sources {
        adapter_config: Some(dir.write("adapter.yaml", ADAPTER)),
        task_config: Some(dir.write("task.yaml", WARNED_TASK)),
        strict: true,
        ..Sources::default()
    };
    let err = config::load(&strict, steadfast_rules::system_clock(), false)
        .unwrap_err()
        .to_string();
    assert_contains(&err, &["refused by strict validation: 7 warning(s)"]);
    assert_contains(&err, &expected);

    let strict_by_file = format!("{ADAPTER}validation:\n  strict: true\n");
    let err = match load(&dir, &strict_by_file, WARNED_TASK) {
        Ok(_) => panic!("validation.strict did not refuse"),
        Err(e) => e.to_string(),
    };
    assert_contains(&err, &["refused by strict validation: 7 warning(s)"]);
}

fn adapter_binary() -> Command {
    Command::new(env!("CARGO_BIN_EXE_adapter"))
}

#[test]
fn check_config_exits_0_or_78_with_the_reason() {
    let dir = TempDir::new();
    let adapter = dir.write("adapter.yaml", ADAPTER);
    let task = dir.write("task.yaml", TASK);
    let output = adapter_binary()
        .args(["serve", "--check-config", "--config"])
        .arg(&adapter)
        .arg("--task-config")
        .arg(&task)
        .output()
        .unwrap();
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        "configuration OK"
    );

    let bad = dir.write(
        "bad.yaml",
        &TASK.replace("by_name: \"{{ .clusterId }}\"", "by_name: \"{{ .nope }}\""),
    );
    let output = adapter_binary()
        .args(["serve", "--check-config", "--config"])
        .arg(&adapter)
        .arg("--task-config")
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(78));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.starts_with("invalid configuration: task config validation failed"),
        "{stderr}"
    );
    assert!(
        stderr.contains("undefined template variable \"nope\""),
        "{stderr}"
    );

    let output = adapter_binary()
        .args(["serve", "--check-config"])
        .env_remove("HYPERFLEET_ADAPTER_CONFIG")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(78));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("adapter config file path is required")
    );
}

#[test]
fn environment_overrides_win_over_the_file() {
    let dir = TempDir::new();
    let adapter = dir.write(
        "adapter.yaml",
        &ADAPTER.replace("    topic: clusters\n", ""),
    );
    let task = dir.write("task.yaml", TASK);
    let output = adapter_binary()
        .args(["serve", "--check-config", "--config"])
        .arg(&adapter)
        .arg("--task-config")
        .arg(&task)
        .env("BROKER_TOPIC", "legacy-topic")
        .output()
        .unwrap();
    assert_eq!(
        output.status.code(),
        Some(0),
        "legacy BROKER_TOPIC is honoured: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn shipped_configs_load() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let task = root.join("k8s/base/adapter/task-config.yaml");
    for adapter in [
        root.join("k8s/base/adapter/adapter-config.yaml"),
        root.join("services/adapter/config/dev.yaml"),
        root.join("services/adapter/config/compose.yaml"),
    ] {
        let sources = Sources {
            adapter_config: Some(adapter.clone()),
            task_config: Some(task.clone()),
            ..Sources::default()
        };
        let loaded = config::load(&sources, steadfast_rules::system_clock(), false)
            .unwrap_or_else(|e| panic!("{}: {e}", adapter.display()));
        assert_eq!(loaded.warnings, [], "{}", adapter.display());
        assert_eq!(
            loaded.adapter.queue_name().as_deref(),
            Some("hyperfleet-clusters-steadfast-adapter")
        );
        assert_eq!(loaded.task.resources.len(), 2);
    }
}

#[test]
fn check_config_lists_the_warnings_and_strict_refuses_them() {
    let dir = TempDir::new();
    let adapter = dir.write("adapter.yaml", ADAPTER);
    let task = dir.write("task.yaml", WARNED_TASK);
    let run = |extra: &[&str]| {
        adapter_binary()
            .args(["serve", "--check-config", "--config"])
            .arg(&adapter)
            .arg("--task-config")
            .arg(&task)
            .args(extra)
            .env_remove("ADAPTER_STRICT_VALIDATION")
            .output()
            .unwrap()
    };
    let output = run(&[]);
    assert_eq!(output.status.code(), Some(0));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.starts_with(
            "configuration OK\n7 warning(s) (HyperFleet loads this too; --strict refuses it):\n  - params[1].name: duplicate name"
        ),
        "{stdout}"
    );
    let output = run(&["--strict"]);
    assert_eq!(output.status.code(), Some(78));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.starts_with(
            "invalid configuration: task config refused by strict validation: 7 warning(s)"
        ),
        "{stderr}"
    );
    assert!(
        stderr.contains("uses undefined variable `non_existent`"),
        "{stderr}"
    );
    assert!(
        stderr.contains("reads `clusterStatus2`, which is never set"),
        "{stderr}"
    );
}

/// HyperFleet's client counts 0 attempts as 1 and caps every delay at max_delay: such a
/// deployment config loads, with a warning each.
#[test]
fn retry_settings_hyperfleet_clamps_load_with_warnings() {
    let dir = TempDir::new();
    let adapter = ADAPTER.replace(
        "    base_url: http://127.0.0.1:1\n",
        "    base_url: http://127.0.0.1:1\n    retry_attempts: 0\n    base_delay: 40s\n",
    );
    let loaded = load(&dir, &adapter, TASK).expect("HyperFleet loads it");
    let warnings: Vec<String> = loaded.warnings.iter().map(ToString::to_string).collect();
    assert_eq!(
        warnings,
        [
            "clients.hyperfleet_api.retry_attempts: 0 counts as 1: retry_attempts counts every attempt, the first included",
            "clients.hyperfleet_api.base_delay: 40s is longer than max_delay (30s): every retry waits max_delay",
        ]
    );
}

/// A warning names every place the problem stands, not only the first: the operator fixes
/// them all from one `--check-config` run.
#[test]
fn a_warning_names_every_place_it_stands() {
    let task = format!(
        "{TASK}post:\n  payloads:\n    - name: a\n      when: {{expression: \"nope == 1\"}}\n      build: {{x: \"{{{{ if .tier }}}}t{{{{ end }}}}\"}}\n    - name: b\n      when: {{expression: \"nope == 1\"}}\n      build: {{x: \"{{{{ if .tier }}}}t{{{{ end }}}}\"}}\n"
    );
    let dir = TempDir::new();
    let loaded = load(&dir, ADAPTER, &task).expect("loads with warnings");
    let paths: Vec<&str> = loaded.warnings.iter().map(|w| w.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "post.payloads[0].when.expression",
            "post.payloads[0].build.x",
            "post.payloads[1].when.expression",
            "post.payloads[1].build.x",
        ],
        "{:#?}",
        loaded.warnings
    );
}

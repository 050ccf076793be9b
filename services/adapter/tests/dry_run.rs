//! Dry-run of HyperFleet's own dry-run cases and Kubernetes example, through the binary, as an
//! adapter author runs it.

mod support;

use std::process::{Command, Output};

use serde_json::Value;
use support::*;

fn dry_run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_adapter"))
        .arg("serve")
        .args(args)
        .output()
        .expect("run the adapter binary")
}

fn path(p: std::path::PathBuf) -> String {
    p.display().to_string()
}

fn showcase(output: &str) -> Output {
    let d = dryrun_dir();
    dry_run(&[
        "--config",
        &path(d.join("dryrun-kubernetes-adapter-config.yaml")),
        "--task-config",
        &path(d.join("cel-showcase/dryrun-cel-showcase-task-config.yaml")),
        "--dry-run-event",
        &path(d.join("event.json")),
        "--dry-run-api-responses",
        &path(d.join("cel-showcase/dryrun-cel-showcase-api-responses.json")),
        "--dry-run-discovery",
        &path(d.join("cel-showcase/dryrun-cel-showcase-discovery.json")),
        "--dry-run-output",
        output,
    ])
}

fn text(output: &Output) -> String {
    assert_eq!(
        output.status.code(),
        Some(0),
        "stderr: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn cel_showcase_prints_phases_manifests_and_payload_as_text() {
    steadfast_test_support::skip_without_peer_cases!();
    let out = text(&showcase("text"));
    for fragment in [
        "Event: id=abc123 type=io.hyperfleet.cluster.updated",
        "Phase 1: Parameter Extraction .............. SUCCESS",
        "clusterStatus    = \"False\"",
        "Phase 2: Preconditions ..................... SUCCESS (MET)",
        "[1/3] namespace0                     CREATE",
        "Kind: ConfigMap    Namespace: abc123       Name: abc123-config",
        "\"endpoint\": \"https://abc123.us-east-1.hyperfleet.io\"",
        "Payload statusPayload:",
        "\"reason\": \"AllResourcesApplied\"",
        "[1/1] updateStatus                   EXECUTED",
        "PUT /api/hyperfleet/v1/clusters/abc123/statuses -> 200",
        "Result: SUCCESS",
    ] {
        assert!(out.contains(fragment), "missing `{fragment}` in:\n{out}");
    }
}

#[test]
fn cel_showcase_payload_is_what_the_task_config_describes() {
    steadfast_test_support::skip_without_peer_cases!();
    let trace: Value = serde_json::from_str(&text(&showcase("json"))).expect("JSON trace");
    assert_eq!(trace["status"], "success");
    assert_eq!(
        trace["resources"][0]["manifest"]["metadata"]["name"],
        "abc123"
    );
    assert_eq!(
        trace["resources"][1]["manifest"]["data"]["cluster_name"],
        "abc123"
    );
    assert_eq!(
        trace["discoveredResources"]["namespace0"]["status"]["phase"],
        "Active"
    );
    let payload = &trace["payloads"]["statusPayload"];
    let condition = |kind: &str| {
        payload["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["type"] == kind)
            .unwrap()
            .clone()
    };
    assert_eq!(condition("Applied")["status"], "True");
    assert_eq!(
        condition("Applied")["message"],
        "All resources applied: abc123, abc123-config, abc123-extra"
    );
    assert_eq!(condition("Available")["status"], "True");
    assert_eq!(condition("Health")["reason"], "Healthy");
    assert_eq!(condition("Finalized")["status"], "False");
    assert_eq!(payload["observed_generation"], 5);
    let data = &payload["data"];
    assert_eq!(data["configmap"]["cluster_id"], "abc123");
    assert_eq!(data["extra"]["max_replicas"], "10");
    assert_eq!(
        data["lists"]["unique_tags"],
        r#"["production","tier-1","us-east"]"#
    );
    assert_eq!(data["lists"]["first_pool"], "worker-pool");
    assert_eq!(
        data["lists"]["pools_by_replicas"],
        r#"["infra-pool","worker-pool"]"#
    );
    assert_eq!(data["overall_status"], "Ready");
    assert_eq!(
        data["cluster_url"],
        "https://console.us-east-1.hyperfleet.io/clusters/abc123"
    );
    assert_eq!(data["reconciled_status"], "False");
    assert_eq!(data["is_reconciled_stable"], false);
    assert_eq!(data["health_status"], "False");
    assert!(data["reconciled_age_seconds"].as_i64().unwrap() > 0);
    assert!(
        data["namespace"]["labels_json"]
            .as_str()
            .unwrap()
            .contains("\"environment\":\"production\"")
    );
    assert_eq!(trace["apiRequests"][0]["method"], "GET");
    assert_eq!(
        trace["apiRequests"][1]["url"],
        "/api/hyperfleet/v1/clusters/abc123/statuses"
    );
    assert!(
        trace["transportOperations"]
            .as_array()
            .unwrap()
            .iter()
            .any(|o| o["operation"] == "create" && o["kind"] == "Namespace")
    );
}

#[test]
fn kubernetes_example_reports_the_completed_job() {
    steadfast_test_support::skip_without_peer_cases!();
    let d = dryrun_dir();
    let e = example_dir();
    let output = dry_run(&[
        "--config",
        &path(e.join("adapter-config.yaml")),
        "--task-config",
        &path(e.join("adapter-task-config.yaml")),
        "--remap-path",
        &format!(
            "/etc/adapter/job.yaml={}",
            path(e.join("adapter-task-resource-job.yaml"))
        ),
        "--dry-run-event",
        &path(d.join("event.json")),
        "--dry-run-api-responses",
        &path(d.join("dryrun-api-responses.json")),
        "--dry-run-discovery",
        &path(e.join("dryrun-discovery.json")),
        "--dry-run-output",
        "json",
        "--dry-run-verbose",
    ]);
    let trace: Value = serde_json::from_str(&text(&output)).unwrap();
    let job = &trace["resources"][1]["manifest"];
    assert_eq!(job["metadata"]["namespace"], "abc123-k8s");
    assert_eq!(
        job["metadata"]["annotations"]["hyperfleet.io/generation"],
        "77"
    );
    assert_eq!(
        job["spec"]["template"]["spec"]["containers"][0]["command"][2],
        "echo 'Hello, World!'"
    );
    let payload = &trace["payloads"]["clusterStatusPayload"];
    let available = payload["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "Available")
        .unwrap();
    assert_eq!(available["status"], "True");
    assert_eq!(available["reason"], "JobComplete");
    // The API sent generation as text; the status contract wants an integer.
    assert_eq!(payload["observed_generation"], 77);
    assert!(
        trace["postActions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["name"] == "reportClusterStatusSkipped" && a["skipped"] == true)
    );
    assert_eq!(
        trace["apiRequests"][0]["url"],
        "http://hyperfleet-api:8000/api/hyperfleet/v1/clusters/abc123"
    );
    assert!(
        trace["apiRequests"][1]["requestBody"]
            .as_str()
            .unwrap()
            .contains("\"JobComplete\"")
    );
}

#[test]
fn unmet_precondition_skips_resources_and_exits_0() {
    steadfast_test_support::skip_without_peer_cases!();
    let d = dryrun_dir();
    let dir = TempDir::new();
    let responses =
        std::fs::read_to_string(d.join("cel-showcase/dryrun-cel-showcase-api-responses.json"))
            .unwrap()
            .replacen(
                "\"status\": \"False\",\n                  \"reason\": \"ClusterProvisioning\"",
                "\"status\": \"True\",\n                  \"reason\": \"ClusterProvisioning\"",
                1,
            );
    assert!(
        responses.contains(
            "\"status\": \"True\",\n                  \"reason\": \"ClusterProvisioning\""
        )
    );
    let responses = dir.write("responses.json", &responses);
    let out = text(&dry_run(&[
        "--config",
        &path(d.join("dryrun-kubernetes-adapter-config.yaml")),
        "--task-config",
        &path(d.join("cel-showcase/dryrun-cel-showcase-task-config.yaml")),
        "--dry-run-event",
        &path(d.join("event.json")),
        "--dry-run-api-responses",
        &path(responses),
    ]));
    assert!(
        out.contains("Phase 2: Preconditions ..................... SUCCESS (NOT MET)"),
        "{out}"
    );
    assert!(
        out.contains("[1/1] fetchCluster                   NOT MET"),
        "{out}"
    );
    assert!(
        out.contains("Phase 3: Resources ........................ SKIPPED"),
        "{out}"
    );
    assert!(
        out.contains("updateStatus                   SKIPPED"),
        "{out}"
    );
}

#[test]
fn a_bad_cel_expression_exits_non_zero_naming_it() {
    steadfast_test_support::skip_without_peer_cases!();
    let d = dryrun_dir();
    let dir = TempDir::new();
    let task = std::fs::read_to_string(d.join("cel-showcase/dryrun-cel-showcase-task-config.yaml"))
        .unwrap()
        .replacen(
            "fetchCluster.spec.node_pools.size()",
            "fetchCluster.spec.node_pools.size(",
            1,
        );
    let task = dir.write("task.yaml", &task);
    let output = dry_run(&[
        "--config",
        &path(d.join("dryrun-kubernetes-adapter-config.yaml")),
        "--task-config",
        &path(task),
        "--dry-run-event",
        &path(d.join("event.json")),
    ]);
    assert_eq!(output.status.code(), Some(78));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("params[10].source.expression"), "{stderr}");
    assert!(
        stderr.contains("fetchCluster.spec.node_pools.size("),
        "{stderr}"
    );
    assert!(stderr.contains("CEL parse error"), "{stderr}");
    assert!(output.stdout.is_empty());
}

#[test]
fn missing_or_invalid_inputs_are_named() {
    steadfast_test_support::skip_without_peer_cases!();
    let d = dryrun_dir();
    let dir = TempDir::new();
    let config = path(d.join("dryrun-kubernetes-adapter-config.yaml"));
    let task = path(d.join("cel-showcase/dryrun-cel-showcase-task-config.yaml"));
    let output = dry_run(&[
        "--config",
        &config,
        "--task-config",
        &task,
        "--dry-run-event",
        "/nonexistent/event.json",
    ]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&output.stderr)
            .contains("cannot read dry-run event `/nonexistent/event.json`")
    );
    let event = dir.write(
        "event.json",
        r#"{"specversion": "1.0", "id": "x", "type": "t", "data": {}}"#,
    );
    let output = dry_run(&[
        "--config",
        &config,
        "--task-config",
        &task,
        "--dry-run-event",
        &path(event),
    ]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&output.stderr)
            .contains("missing required CloudEvents attribute `source`"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let responses = dir.write("r.json", r#"{"responses": [{"match": {"method": "GET", "urlPattern": "("}, "responses": [{"statusCode": 200}]}]}"#);
    let output = dry_run(&[
        "--config",
        &config,
        "--task-config",
        &task,
        "--dry-run-event",
        &path(d.join("event.json")),
        "--dry-run-api-responses",
        &path(responses),
    ]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&output.stderr)
            .contains("endpoint 0: urlPattern is not a valid regex")
    );
}

/// The JSON trace of a dry run of cluster `c1` at `generation` with the dev adapter config,
/// `task_config` and recorded API `responses` (a file in `dir`).
fn dry_run_cluster(
    dir: &TempDir,
    task_config: &std::path::Path,
    responses: &str,
    generation: u32,
) -> Value {
    let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let responses = dir.write("responses.json", responses);
    let event = dir.write(
        "event.json",
        &format!(
            r#"{{"specversion": "1.0", "id": "e1", "source": "hyperfleet-sentinel", "type": "com.redhat.hyperfleet.cluster.reconcile", "data": {{"id": "c1", "kind": "Cluster", "generation": {generation}}}}}"#
        ),
    );
    let output = dry_run(&[
        "--config",
        &path(root.join("services/adapter/config/dev.yaml")),
        "--task-config",
        &path(task_config.to_owned()),
        "--dry-run-event",
        &path(event),
        "--dry-run-api-responses",
        &path(responses),
        "--dry-run-output",
        "json",
    ]);
    serde_json::from_str(&text(&output)).unwrap()
}

#[test]
fn the_shipped_task_config_renders_a_namespace_and_a_job() {
    let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let dir = TempDir::new();
    let trace = dry_run_cluster(
        &dir,
        &root.join("k8s/base/adapter/task-config.yaml"),
        r#"{"responses": [
          {"match": {"method": "GET", "urlPattern": "/clusters/c1$"},
           "responses": [{"statusCode": 200, "body": {"id": "c1", "kind": "Cluster", "generation": 4, "spec": {}}}]},
          {"match": {"method": "PUT", "urlPattern": "/statuses$"}, "responses": [{"statusCode": 201, "body": {}}]}]}"#,
        4,
    );
    assert_eq!(
        trace["resources"][0]["manifest"]["metadata"]["name"],
        "c1-work"
    );
    assert_eq!(
        trace["resources"][1]["manifest"]["metadata"]["annotations"]["hyperfleet.io/generation"],
        "4"
    );
    let payload = &trace["payloads"]["status"];
    assert_eq!(payload["observed_generation"], 4);
    let reason = |kind: &str| {
        payload["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["type"] == kind)
            .unwrap()["reason"]
            .clone()
    };
    assert_eq!(reason("Applied"), "JobApplied");
    assert_eq!(reason("Available"), "JobRunning");
    assert_eq!(reason("Health"), "Healthy");
    assert_eq!(reason("Finalized"), "NotDeleting");
    assert_eq!(
        trace["apiRequests"][1]["url"],
        "http://127.0.0.1:8000/api/hyperfleet/v1/clusters/c1/statuses"
    );
}

/// HyperFleet's template functions `trimPrefix`, `trimSuffix` and `float` (its
/// `pkg/utils/template.go`; string first, as Go's `strings.TrimPrefix`) load and render in a
/// task config, as they do on HyperFleet's adapter.
#[test]
fn a_task_config_using_trim_prefix_trim_suffix_and_float_renders() {
    let dir = TempDir::new();
    let task = dir.write(
        "task.yaml",
        r#"params:
  - name: clusterId
    source: event.id
    type: string
    required: true
  - name: cluster
    source:
      api_call:
        method: GET
        url: "/clusters/{{ .clusterId }}"
  - name: version
    source: cluster.spec.version
    type: string
  - name: manifestFile
    source: cluster.spec.manifest
    type: string
  - name: cpu
    source: cluster.spec.cpu
    type: string
resources:
  - name: workNamespace
    transport:
      client: kubernetes
    manifest:
      apiVersion: v1
      kind: Namespace
      metadata:
        name: "{{ trimSuffix .manifestFile \".yaml\" }}-{{ .clusterId }}"
        labels:
          version: "{{ trimPrefix .version \"v\" }}"
        annotations:
          cpu: '{{ printf "%.2f" (float .cpu) }}'
          size: '{{ if gt (float .cpu) 1.0 }}large{{ else }}small{{ end }}'
    discovery:
      by_name: "{{ trimSuffix .manifestFile \".yaml\" }}-{{ .clusterId }}"
"#,
    );
    let trace = dry_run_cluster(
        &dir,
        &task,
        r#"{"responses": [
          {"match": {"method": "GET", "urlPattern": "/clusters/c1$"},
           "responses": [{"statusCode": 200, "body": {"id": "c1", "kind": "Cluster", "generation": 1,
             "spec": {"version": "v4.16.2", "manifest": "cluster.yaml", "cpu": "0.5"}}}]}]}"#,
        1,
    );
    let metadata = &trace["resources"][0]["manifest"]["metadata"];
    assert_eq!(metadata["name"], "cluster-c1", "{trace:#}");
    assert_eq!(metadata["labels"]["version"], "4.16.2");
    assert_eq!(metadata["annotations"]["cpu"], "0.50");
    assert_eq!(metadata["annotations"]["size"], "small");
}

/// HyperFleet's 2026 template context: `env` and `event` namespaces, and `file` param sources
/// (trimmed, converted to the param's type), rendered in a manifest.
#[test]
fn templates_read_the_env_and_event_namespaces_and_file_params() {
    let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let dir = TempDir::new();
    let owner = dir.write("owner.txt", "  team-a\n");
    let replicas = dir.write("replicas.txt", "3\n");
    let task = dir.write(
        "task.yaml",
        &format!(
            r#"params:
  - name: owner
    source:
      file:
        path: {owner}
  - name: replicas
    type: int
    source:
      file:
        path: {replicas}
resources:
  - name: ns
    manifest:
      apiVersion: v1
      kind: Namespace
      metadata:
        name: "{{{{ .event.kind | lower }}}}-{{{{ .event.id }}}}"
        labels:
          region: "{{{{ .env.STEADFAST_TEST_REGION }}}}"
          owner: "{{{{ .owner }}}}"
          replicas: "{{{{ .replicas }}}}"
    discovery:
      by_name: "{{{{ .event.kind | lower }}}}-{{{{ .event.id }}}}"
"#,
            owner = owner.display(),
            replicas = replicas.display()
        ),
    );
    let event = dir.write(
        "event.json",
        r#"{"specversion": "1.0", "id": "e1", "source": "hyperfleet-sentinel", "type": "com.redhat.hyperfleet.cluster.reconcile", "data": {"id": "c1", "kind": "Cluster", "generation": 1}}"#,
    );
    let output = Command::new(env!("CARGO_BIN_EXE_adapter"))
        .arg("serve")
        .args([
            "--config",
            &path(root.join("services/adapter/config/dev.yaml")),
        ])
        .args(["--task-config", &path(task)])
        .args(["--dry-run-event", &path(event)])
        .args(["--dry-run-output", "json"])
        .env("STEADFAST_TEST_REGION", "eu-west-1")
        .output()
        .expect("run the adapter binary");
    let trace: Value = serde_json::from_str(&text(&output)).unwrap();
    let metadata = &trace["resources"][0]["manifest"]["metadata"];
    assert_eq!(metadata["name"], "cluster-c1", "{trace:#}");
    assert_eq!(metadata["labels"]["region"], "eu-west-1");
    assert_eq!(metadata["labels"]["owner"], "team-a");
    assert_eq!(metadata["labels"]["replicas"], "3");
    assert_eq!(trace["params"]["replicas"], 3);
}

//! What happens when an expression fails on an event's data, case by case as HyperFleet's
//! executor does it (`docs/hyperfleet-compatibility.md`, "When an expression fails"): the
//! adapter on the real broker, the fake Kubernetes API and a recording HyperFleet API, with task
//! configs of our own (no ../shared needed).

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use steadfast_test_support::{eventually, unique_name};
use support::*;

const WAIT: Duration = Duration::from_secs(30);

/// The params every case starts from: the event's id and the cluster from the API.
const PARAMS: &str = r#"params:
  - name: clusterId
    source: event.id
    required: true
  - name: cluster
    source:
      api_call:
        method: GET
        url: "/api/hyperfleet/v1/clusters/{{ .clusterId }}"
"#;

/// The namespace resource every case applies (unless preconditions skip it).
const NAMESPACE: &str = r#"resources:
  - name: ns
    manifest:
      apiVersion: v1
      kind: Namespace
      metadata:
        name: "{{ .clusterId }}"
    discovery:
      by_name: "{{ .clusterId }}"
"#;

/// The status report, with HyperFleet's Health condition built from `adapter.*`.
const REPORT: &str = r#"post:
  payloads:
    - name: statusPayload
      build:
        adapter: "{{ .adapter.name }}"
        conditions:
          - type: Health
            status:
              expression: |
                adapter.executionStatus == "success" && !adapter.resourcesSkipped ? "True" : "False"
            reason:
              expression: |
                adapter.executionStatus != "success"
                ? "ExecutionFailed:" + adapter.?executionError.?phase.orValue("unknown")
                : adapter.resourcesSkipped ? "ResourcesSkipped" : "Healthy"
            message:
              expression: |
                adapter.?executionError.?message.orValue(adapter.skipReason)
        observed_generation:
          expression: event.generation
  post_actions:
    - name: report
      api_call:
        method: PUT
        url: "/api/hyperfleet/v1/clusters/{{ .clusterId }}/statuses"
        body: "{{ .statusPayload }}"
"#;

struct Case {
    world: World,
    adapter: Running,
    /// The cluster the API knows and the event names.
    id: String,
}

impl Case {
    /// An adapter running `task`, and a cluster the API knows.
    async fn start(task: &str) -> Self {
        Self::start_with(task, &[]).await
    }

    /// Also writes `files` (name, text) beside the task config.
    async fn start_with(task: &str, files: &[(&str, &str)]) -> Self {
        let world = World::start("expressions", "1s").await;
        for (name, text) in files {
            world.dir.write(name, text);
        }
        let task_config = world.dir.write("task.yaml", task);
        let config = load_config(&world.adapter_config, &task_config, Vec::new());
        let adapter = Running::start(config).await;
        let id = unique_name("c");
        world.fleet.set_cluster(&id, 3, false);
        Self { world, adapter, id }
    }

    async fn send(&self) {
        self.world.send(&self.adapter, &self.id, 3).await;
    }

    async fn report(&self) -> Value {
        eventually("a status report", WAIT, || {
            self.world.fleet.reports(&self.id).into_iter().next()
        })
        .await
    }

    fn namespace(&self) -> Option<Value> {
        self.world.kube.get("v1", "Namespace", None, &self.id)
    }

    /// The `steadfast-error` header of the next parked message.
    async fn parked_error(&self) -> String {
        let parked = self
            .world
            .broker
            .queue(&format!("{}.parked", self.adapter.queue));
        let message = parked.next(WAIT).await;
        message.header("steadfast-error").unwrap_or_default()
    }

    /// Waits until the adapter has acknowledged the event (done, not retried or parked).
    async fn acknowledged(&self) {
        steadfast_test_support::eventually_async("the event to be acknowledged", WAIT, || async {
            let metrics = self.adapter.metrics_text().await;
            metrics
                .lines()
                .any(|l| {
                    l.starts_with("hyperfleet_adapter_event_outcomes_total{")
                        && l.contains("outcome=\"ack\"")
                        && l.ends_with(" 1")
                })
                .then_some(())
        })
        .await;
    }
}

/// Optional params whose expression fails take their default or stay unset, a param reading
/// one that stayed unset stays unset too, a capture expression that fails captures null, a
/// field capture that finds nothing takes its default, a delete `when` that fails does not
/// delete, and payload values that cannot be computed take their default or null. The run
/// succeeds: the namespace is applied and the report sent.
#[tokio::test]
async fn optional_values_fall_back_and_the_run_succeeds() {
    let task = format!(
        r#"{PARAMS}  - name: region
    source:
      expression: cluster.spec.region
    default: us-east-1
  - name: zone
    source:
      expression: non_existent
  - name: zoneLabel
    source:
      expression: zone + "-a"
preconditions:
  - name: clusterState
    api_call:
      method: GET
      url: "/api/hyperfleet/v1/clusters/{{{{ .clusterId }}}}"
    capture:
      - name: owner
        expression: spec.owner.name
      - name: tier
        field: spec.tier
        default: standard
    conditions:
      - field: kind
        operator: equals
        value: Cluster
resources:
  - name: ns
    manifest:
      apiVersion: v1
      kind: Namespace
      metadata:
        name: "{{{{ .clusterId }}}}"
        labels:
          region: "{{{{ .region }}}}"
          tier: "{{{{ .tier }}}}"
    discovery:
      by_name: "{{{{ .clusterId }}}}"
    lifecycle:
      delete:
        when:
          expression: cluster.deleted_time != null
post:
  payloads:
    - name: statusPayload
      build:
        data:
          region:
            expression: region
          zone:
            expression: zone
          zoneLabel:
            expression: zoneLabel
            default: none
          owner:
            expression: owner
          tier:
            expression: tier
          missing:
            field: cluster.spec.nothing
            default: fallback
  post_actions:
    - name: report
      api_call:
        method: PUT
        url: "/api/hyperfleet/v1/clusters/{{{{ .clusterId }}}}/statuses"
        body: "{{{{ .statusPayload }}}}"
"#
    );
    let case = Case::start(&task).await;
    case.send().await;

    let report = case.report().await;
    assert_eq!(
        report["data"],
        json!({
            "region": "us-east-1",
            "zone": null,
            "zoneLabel": "none",
            "owner": null,
            "tier": "standard",
            "missing": "fallback",
        })
    );
    let namespace = case.namespace().expect("the namespace is applied");
    assert_eq!(namespace["metadata"]["labels"]["region"], "us-east-1");
    assert_eq!(namespace["metadata"]["labels"]["tier"], "standard");
    case.acknowledged().await;
    assert_eq!(case.world.fleet.reports(&case.id).len(), 1);
    case.adapter.stop().await;
}

/// A required param whose expression fails stops the run in the params phase, with
/// HyperFleet's message; as in HyperFleet nothing is reported (there are no params to report
/// with), and the event is parked with the reason.
#[tokio::test]
async fn a_required_param_that_fails_stops_the_params_phase() {
    let task = format!(
        "{PARAMS}  - name: zone\n    required: true\n    source:\n      expression: non_existent\n{NAMESPACE}{REPORT}"
    );
    let case = Case::start(&task).await;
    case.send().await;

    let error = case.parked_error().await;
    assert!(
        error.contains(
            "failed to extract required parameter 'zone' from source 'expression(\"non_existent\")'"
        ),
        "{error}"
    );
    assert!(case.namespace().is_none());
    assert!(case.world.fleet.reports(&case.id).is_empty());
    case.adapter.stop().await;
}

/// A precondition expression that fails on the data is "not met", as in HyperFleet: resources
/// are skipped, the report says so, and the event is done (not parked).
#[tokio::test]
async fn a_precondition_expression_that_fails_is_not_met() {
    let task = format!(
        "{PARAMS}preconditions:\n  - name: ready\n    expression: cluster.status.phase == \"Ready\"\n{NAMESPACE}{REPORT}"
    );
    let case = Case::start(&task).await;
    case.send().await;

    let report = case.report().await;
    assert_eq!(condition(&report, "Health")["status"], "False");
    assert_eq!(condition(&report, "Health")["reason"], "ResourcesSkipped");
    assert_eq!(report["observed_generation"], 3);
    case.acknowledged().await;
    assert!(case.namespace().is_none(), "resources are skipped");
    case.adapter.stop().await;
}

/// A payload `when` that fails to evaluate fails the post phase (HyperFleet: "when condition
/// evaluation error for payload"): no report goes out, and the event is parked with the
/// reason. The resources were applied before.
#[tokio::test]
async fn a_payload_when_that_fails_stops_the_post_phase() {
    let report = REPORT.replace(
        "    - name: statusPayload\n",
        "    - name: statusPayload\n      when:\n        expression: cluster.spec.reporting\n",
    );
    let task = format!("{PARAMS}{NAMESPACE}{report}");
    let case = Case::start(&task).await;
    case.send().await;

    let error = case.parked_error().await;
    assert!(
        error.contains("failed to evaluate when condition for payload 'statusPayload'"),
        "{error}"
    );
    assert!(
        case.namespace().is_some(),
        "resources ran before the post phase"
    );
    assert!(case.world.fleet.reports(&case.id).is_empty());
    case.adapter.stop().await;
}

/// A `lifecycle.create.when` that fails to evaluate does not create (HyperFleet: not
/// matched): the resource is skipped and the report says why.
#[tokio::test]
async fn a_create_when_that_fails_does_not_create() {
    let namespace = NAMESPACE.replace(
        "    discovery:\n",
        "    lifecycle:\n      create:\n        when:\n          expression: cluster.spec.wanted\n    discovery:\n",
    );
    let task = format!("{PARAMS}{namespace}{REPORT}");
    let case = Case::start(&task).await;
    case.send().await;

    let report = case.report().await;
    assert_eq!(condition(&report, "Health")["reason"], "ResourcesSkipped");
    let message = condition(&report, "Health")["message"].as_str().unwrap();
    assert!(
        message.contains("ns: lifecycle.create.when could not be evaluated"),
        "{message}"
    );
    case.acknowledged().await;
    assert!(case.namespace().is_none());
    case.adapter.stop().await;
}

/// A post action whose `when` fails to evaluate fails (HyperFleet: "failed to evaluate when
/// condition"), and the post actions after it do not run: no report, the event is parked.
#[tokio::test]
async fn a_post_action_when_that_fails_stops_the_post_actions() {
    let report = REPORT.replace(
        "    - name: report\n",
        "    - name: report\n      when:\n        expression: cluster.spec.reporting\n",
    );
    let task = format!("{PARAMS}{NAMESPACE}{report}");
    let case = Case::start(&task).await;
    case.send().await;

    let error = case.parked_error().await;
    assert!(
        error.contains("failed to evaluate when condition"),
        "{error}"
    );
    assert!(error.contains("reporting"), "{error}");
    assert!(case.world.fleet.reports(&case.id).is_empty());
    case.adapter.stop().await;
}

/// A payload value with both `field` and `expression` loads (HyperFleet parses it as a value
/// definition and does not check it at load; we warn), and fails the build when used.
#[tokio::test]
async fn a_payload_value_with_field_and_expression_fails_the_build() {
    let report = REPORT.replace(
        "        observed_generation:\n          expression: event.generation\n",
        "        observed_generation:\n          expression: event.generation\n          field: event.generation\n",
    );
    let task = format!("{PARAMS}{NAMESPACE}{report}");
    let case = Case::start(&task).await;
    case.send().await;

    let error = case.parked_error().await;
    assert!(
        error.contains(
            "failed to build payload 'statusPayload': field and expression are mutually exclusive"
        ),
        "{error}"
    );
    assert!(case.world.fleet.reports(&case.id).is_empty());
    case.adapter.stop().await;
}

/// A `build_ref` file is not checked by HyperFleet at load: an expression in it that does not
/// parse loads (with our warning) and fails the build of that payload, as in HyperFleet.
#[tokio::test]
async fn an_unparsable_expression_in_a_build_ref_fails_the_build() {
    let report = REPORT.replace(
        "      build:\n        adapter: \"{{ .adapter.name }}\"\n",
        "      build_ref: status.yaml\n      unused_build:\n",
    );
    let report = cut_inline_build(&report);
    let build = "adapter: fixed\nobserved_generation:\n  expression: \"event.generation +\"\n";
    let task = format!("{PARAMS}{NAMESPACE}{report}");
    let case = Case::start_with(&task, &[("status.yaml", build)]).await;
    case.send().await;

    let error = case.parked_error().await;
    assert!(
        error.contains("failed to build payload 'statusPayload': CEL parse error"),
        "{error}"
    );
    assert!(case.namespace().is_some());
    assert!(case.world.fleet.reports(&case.id).is_empty());
    case.adapter.stop().await;
}

/// REPORT with its inline build (from the `unused_build:` marker to `post_actions:`) removed.
fn cut_inline_build(report: &str) -> String {
    let start = report.find("      unused_build:\n").expect("marker");
    let end = report.find("  post_actions:\n").expect("post actions");
    format!("{}{}", &report[..start], &report[end..])
}

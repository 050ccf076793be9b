//! The Kubernetes executor against the fake Kubernetes API: the registry from Euphrosyne's
//! ConfigMap, a Job and a data ConfigMap per recipe with the right labels, arguments, mount and
//! deadline; a failed pod counted at once; cleanup; and re-attaching after a restart.

mod common;

use std::time::Duration;

use alert_reconciler::config::{ExecutorConfig, KubeTarget, RecipeSource};
use alert_reconciler::results::{self, RecipeResult, ResultBody, ResultStatus, SuggestedAction};
use common::*;
use fake_kube::{FakeKube, KubeconfigFile};
use serde_json::{Value, json};
use steadfast_test_support::{eventually, eventually_async, redis_url};

const NS: &str = "recipes";

struct Cluster {
    fake: FakeKube,
    _kubeconfig: KubeconfigFile,
}

/// A fake cluster with a recipe namespace, Euphrosyne's registry ConfigMap, and `h` pointed at it.
async fn cluster(h: &mut Harness) -> Cluster {
    let fake = FakeKube::start().await;
    let kubeconfig = fake.kubeconfig_file();
    fake.put(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}}));
    fake.put(json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "orpheus-operator-recipes", "namespace": "default"},
        "data": {
            "debugging": "http-errors:\n  enabled: true\n  image: \"phoevos/euphrosyne-recipes:latest\"\n  entrypoint: \"http-errors\"\n  description: \"Recipe for debugging alerts related to HTTP errors.\"\n  timeout: 90s\n  args: [\"--verbose\"]\n  env: {LOG_LEVEL: debug}\n  service_account: recipe-reader\nbroken:\n  enabled: true\n  image: \"phoevos/euphrosyne-recipes:latest\"\n  entrypoint: \"broken\"\n  description: \"Always fails.\"\n",
            "actions": "jira:\n  enabled: true\n  image: \"phoevos/euphrosyne-recipes:latest\"\n  entrypoint: \"jira\"\n  description: \"Recipe for creating a JIRA issue.\"\n",
        }
    }));
    h.config.recipes = RecipeSource::ConfigMap {
        namespace: "default".into(),
        name: "orpheus-operator-recipes".into(),
    };
    h.config.executor = ExecutorConfig::Kubernetes {
        namespace: NS.into(),
        job_ttl: Duration::from_secs(3600),
    };
    h.config.kube = KubeTarget::Kubeconfig(kubeconfig.path().to_owned());
    h.config.recipe_redis_address = "redis.steadfast.svc:6379".into();
    h.config.aggregator_address = "thalia-aggregator.default.svc.cluster.local".into();
    Cluster {
        fake,
        _kubeconfig: kubeconfig,
    }
}

fn jobs(fake: &FakeKube) -> Vec<Value> {
    fake.list("batch/v1", "Job", Some(NS))
}

fn job_named<'a>(jobs: &'a [Value], recipe: &str) -> &'a Value {
    jobs.iter()
        .find(|j| j["metadata"]["labels"]["steadfast.io/recipe"] == recipe)
        .unwrap_or_else(|| panic!("no Job for {recipe}"))
}

fn name(object: &Value) -> String {
    object["metadata"]["name"].as_str().unwrap().to_owned()
}

/// What an Euphrosyne recipe publishes (through the same code `steadfast-recipe` uses).
async fn answer(run: &str, recipe: &str, analysis: &str, actions: &[&str]) {
    let result = RecipeResult {
        incident: run.into(),
        name: recipe.into(),
        status: ResultStatus::Successful,
        results: ResultBody {
            actions: actions
                .iter()
                .map(|a| SuggestedAction {
                    name: (*a).into(),
                    data: json!({}),
                })
                .collect(),
            analysis: analysis.into(),
            ..ResultBody::default()
        },
    };
    results::publish(&redis_url(), &result).await.unwrap();
}

fn pod_of(fake: &FakeKube, job: &str) -> String {
    fake.list("v1", "Pod", Some(NS))
        .iter()
        .find(|p| p["metadata"]["labels"]["job-name"] == job)
        .map(name)
        .unwrap_or_else(|| panic!("no pod for {job}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn recipes_run_as_jobs_a_failed_pod_counts_at_once_and_everything_is_cleaned_up() {
    let mut h = Harness::new("debugging: {}\n").await;
    let cluster = cluster(&mut h).await;
    let fake = &cluster.fake;
    let app = h.start().await;
    h.publish_alert(&alert("checkout", "web-1", "firing")).await;
    let id = app.only_incident().await;

    let created = eventually("two recipe Jobs", WAIT, || {
        let jobs = jobs(fake);
        (jobs.len() == 2).then_some(jobs)
    })
    .await;
    let body = app.incident(&id).await;
    let run = body["runs"][0]["id"].as_str().unwrap().to_owned();

    // The Job: Euphrosyne's labels and command line, our labels, deadline, mount, identity.
    let job = job_named(&created, "http-errors");
    let labels = &job["metadata"]["labels"];
    assert_eq!(labels["app"], "euphrosyne");
    assert_eq!(labels["uuid"], run.as_str());
    assert_eq!(labels["recipe"], "http-errors");
    assert_eq!(labels["steadfast.io/run"], run.as_str());
    assert_eq!(labels["steadfast.io/incident"], id.as_str());
    assert_eq!(labels["steadfast.io/kind"], "debugging");
    assert_eq!(
        labels["app.kubernetes.io/managed-by"],
        "steadfast-alert-reconciler"
    );
    assert_eq!(
        name(job),
        format!("http-errors-{}", &run.replace('-', "")[..12])
    );
    assert_eq!(
        job["metadata"]["annotations"]["description"],
        "Recipe for debugging alerts related to HTTP errors."
    );
    let spec = &job["spec"];
    assert_eq!(spec["backoffLimit"], 0);
    assert_eq!(spec["activeDeadlineSeconds"], 90);
    assert_eq!(spec["ttlSecondsAfterFinished"], 3600);
    let pod = &spec["template"]["spec"];
    assert_eq!(pod["restartPolicy"], "Never");
    assert_eq!(pod["serviceAccountName"], "recipe-reader");
    let container = &pod["containers"][0];
    assert_eq!(container["image"], "phoevos/euphrosyne-recipes:latest");
    assert_eq!(container["command"], json!(["http-errors"]));
    assert_eq!(
        container["args"],
        json!([
            "--verbose",
            "--data-file-path",
            "/app/data.json",
            "--aggregator-address",
            "thalia-aggregator.default.svc.cluster.local",
            "--redis-address",
            "redis.steadfast.svc:6379"
        ])
    );
    let env: Vec<(String, String)> = container["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["name"].as_str().unwrap().to_owned(),
                e["value"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert!(env.contains(&("LOG_LEVEL".into(), "debug".into())));
    assert!(env.contains(&("STEADFAST_RESULT_CHANNEL".into(), run.clone())));
    assert!(env.contains(&("STEADFAST_RECIPE".into(), "http-errors".into())));
    assert_eq!(
        container["volumeMounts"],
        json!([{"name": "data", "mountPath": "/app", "readOnly": true}])
    );
    let configmap = format!("steadfast-run-{run}");
    assert_eq!(pod["volumes"][0]["configMap"]["name"], configmap.as_str());
    let broken = job_named(&created, "broken");
    assert_eq!(
        broken["spec"]["activeDeadlineSeconds"], 120,
        "the service's --recipe-timeout"
    );
    assert_eq!(
        broken["spec"]["template"]["spec"]["automountServiceAccountToken"],
        false
    );

    // The data file: the alert as Alertmanager sent it, and the run id as `uuid`.
    let map = fake
        .get("v1", "ConfigMap", Some(NS), &configmap)
        .expect("the run's ConfigMap");
    assert_eq!(map["metadata"]["labels"]["steadfast.io/run"], run.as_str());
    let data: Value = serde_json::from_str(map["data"]["data.json"].as_str().unwrap()).unwrap();
    assert_eq!(data["uuid"], run.as_str());
    assert_eq!(data["version"], "4");
    assert_eq!(data["alerts"][0]["labels"]["pod"], "web-1");

    // http-errors answers and completes; broken's pod fails: reported at once.
    answer(&run, "http-errors", "5xx from the checkout pods", &["jira"]).await;
    fake.complete_job(NS, &name(job));
    let broken_job = name(broken);
    fake.set_pod_log(
        NS,
        &pod_of(fake, &broken_job),
        "Traceback (most recent call last):\nConnectionError: prometheus unreachable",
    );
    fake.fail_job(
        NS,
        &broken_job,
        "BackoffLimitExceeded",
        "Job has reached the specified backoff limit",
    );

    let body = app.wait_state(&id, "awaiting_approval").await;
    let recipes = body["runs"][0]["recipes"].as_array().unwrap();
    let failed = recipes.iter().find(|r| r["recipe"] == "broken").unwrap();
    assert_eq!(failed["state"], "failed");
    let detail = failed["detail"].as_str().unwrap();
    assert!(
        detail.starts_with(
            "its Job failed: BackoffLimitExceeded: Job has reached the specified backoff limit"
        ),
        "{detail}"
    );
    assert!(
        detail.contains("ConnectionError: prometheus unreachable"),
        "{detail}"
    );
    let analysis = h.message(1).await;
    assert_eq!(analysis.submit_actions()[0].0, "Approve jira");

    // Cleanup: the run's Jobs (with their pods) and its ConfigMap are gone.
    eventually("the run's objects deleted", WAIT, || {
        let left = jobs(fake).len()
            + fake
                .get("v1", "ConfigMap", Some(NS), &configmap)
                .map_or(0, |_| 1)
            + fake.list("v1", "Pod", Some(NS)).len();
        (left == 0).then_some(())
    })
    .await;

    // The approved action is a Job too, with Euphrosyne's action data.
    let (status, accepted) = app
        .post("/api/actions", Some(API_TOKEN), &json!({"uuid": id, "actions": [{"name": "jira", "data": {"summary": "checkout 5xx"}}]}))
        .await;
    assert_eq!(status, 202, "{accepted}");
    let action_run = accepted["runs"][0]["run"].as_str().unwrap().to_owned();
    let action_job = eventually("the action Job", WAIT, || jobs(fake).into_iter().next()).await;
    assert_eq!(
        action_job["metadata"]["labels"]["steadfast.io/kind"],
        "action"
    );
    assert_eq!(
        action_job["metadata"]["labels"]["uuid"],
        action_run.as_str()
    );
    let action_map = fake
        .get(
            "v1",
            "ConfigMap",
            Some(NS),
            &format!("steadfast-run-{action_run}"),
        )
        .unwrap();
    let action_data: Value =
        serde_json::from_str(action_map["data"]["data.json"].as_str().unwrap()).unwrap();
    assert_eq!(action_data["summary"], "checkout 5xx");
    assert_eq!(action_data["uuid"], action_run.as_str());
    answer(&action_run, "jira", "created SCRUM-42", &[]).await;
    fake.complete_job(NS, &name(&action_job));
    let outcome = h.message(2).await;
    assert!(outcome.markdown.unwrap().contains("created SCRUM-42"));

    // Editing the ConfigMap changes the registry in force.
    fake.put(json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "orpheus-operator-recipes", "namespace": "default"},
        "data": {"debugging": "http-errors:\n  enabled: false\n  image: i\n  entrypoint: http-errors\n"}
    }));
    eventually_async("the edited ConfigMap in force", WAIT, || async {
        let (_, recipes) = app.get("/api/recipes").await;
        (recipes["debugging"].as_array()?.len() == 1 && recipes["debugging"][0]["enabled"] == false)
            .then_some(())
    })
    .await;
    app.stop().await;
}

/// An alert's investigation launched as two Jobs, then its reconciler killed: the incident id,
/// the run id and the Jobs.
async fn investigation_whose_reconciler_was_killed(
    h: &Harness,
    fake: &FakeKube,
) -> (String, String, Vec<Value>) {
    let first = h.start().await;
    h.publish_alert(&alert("checkout", "web-1", "firing")).await;
    let id = first.only_incident().await;
    let created = eventually("two recipe Jobs", WAIT, || {
        let jobs = jobs(fake);
        (jobs.len() == 2).then_some(jobs)
    })
    .await;
    let run = first.incident(&id).await["runs"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    first.kill().await;
    (id, run, created)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_restarted_reconciler_re_attaches_to_its_jobs_and_removes_strays() {
    let mut h = Harness::new("debugging: {}\n").await;
    let cluster = cluster(&mut h).await;
    let fake = &cluster.fake;
    let (id, run, created) = investigation_whose_reconciler_was_killed(&h, fake).await;

    // While no reconciler runs: one recipe answers and completes, the other's pod fails.
    answer(&run, "http-errors", "5xx from the checkout pods", &[]).await;
    fake.complete_job(NS, &name(job_named(&created, "http-errors")));
    fake.fail_job(
        NS,
        &name(job_named(&created, "broken")),
        "BackoffLimitExceeded",
        "Job has reached the specified backoff limit",
    );
    // And a Job of ours whose run is long over, left by some earlier crash.
    fake.put(json!({
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": "stray-0123456789ab", "namespace": NS, "labels": {
            "app.kubernetes.io/managed-by": "steadfast-alert-reconciler",
            "steadfast.io/run": uuid::Uuid::new_v4().to_string()}},
        "spec": {"template": {"spec": {"containers": [{"name": "x", "image": "x"}], "restartPolicy": "Never"}}}
    }));

    let second = h.start().await;
    let body = second.wait_state(&id, "awaiting_approval").await;
    let recipes = body["runs"][0]["recipes"].as_array().unwrap();
    let state = |n: &str| recipes.iter().find(|r| r["recipe"] == n).unwrap()["state"].clone();
    assert_eq!(state("http-errors"), "successful");
    assert_eq!(state("broken"), "failed");
    assert_eq!(
        fake.count("create", "jobs"),
        2,
        "nothing was launched again"
    );
    h.message(1).await;
    assert_eq!(h.webex.messages().len(), 1);
    eventually_async("the stray Job and the run's Jobs removed", WAIT, || async {
        jobs(fake).is_empty().then_some(())
    })
    .await;
    second.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_job_whose_lone_answer_was_lost_in_a_failover_runs_again_as_a_second_job() {
    let mut h = Harness::new("debugging: {}\n").await;
    let cluster = cluster(&mut h).await;
    let fake = &cluster.fake;
    let (id, run, created) = investigation_whose_reconciler_was_killed(&h, fake).await;

    // While no reconciler runs, http-errors answers the Euphrosyne way (one PUBLISH, heard by
    // nobody) and its Job completes; broken's pod fails.
    let client = redis::Client::open(redis_url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let lost = json!({"incident": run, "name": "http-errors", "status": "successful",
                      "results": {"analysis": "lost with the first reconciler"}});
    let heard: i64 = redis::cmd("PUBLISH")
        .arg(&run)
        .arg(lost.to_string())
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(heard, 0, "nobody listened");
    fake.complete_job(NS, &name(job_named(&created, "http-errors")));
    fake.fail_job(
        NS,
        &name(job_named(&created, "broken")),
        "BackoffLimitExceeded",
        "Job has reached the specified backoff limit",
    );

    let second = h.start().await;
    let rerun_name = format!("http-errors-{}-2", &run.replace('-', "")[..12]);
    let rerun = eventually("the re-run's Job", WAIT, || {
        jobs(fake).into_iter().find(|j| name(j) == rerun_name)
    })
    .await;
    assert_eq!(rerun["metadata"]["labels"]["steadfast.io/attempt"], "2");
    let env = rerun["spec"]["template"]["spec"]["containers"][0]["env"]
        .as_array()
        .unwrap();
    assert!(
        env.contains(&json!({"name": "STEADFAST_RECIPE_ATTEMPT", "value": "2"})),
        "{env:?}"
    );
    assert_eq!(fake.count("create", "jobs"), 3, "broken is not re-run");
    answer(&run, "http-errors", "5xx from the checkout pods", &[]).await;

    let text = h.message(1).await.markdown.unwrap();
    assert!(text.contains("5xx from the checkout pods"), "{text}");
    assert!(
        text.contains("Re-run: its result was lost in a failover"),
        "{text}"
    );
    assert!(text.contains("**broken** — failed"), "{text}");
    second.wait_state(&id, "awaiting_approval").await;
    second.stop().await;
}

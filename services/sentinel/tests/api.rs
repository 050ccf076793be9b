//! The read API, `GET /api/resources`, against fleet-api on PostgreSQL and the real broker:
//! what an operator console sees of when the sentinel last published for a resource, and why.

mod common;

use std::time::Duration;

use clap::Parser;
use common::{Fleet, Running, TestClock};
use serde_json::{Value, json};
use steadfast_test_support::{TestBroker, eventually_async};

const WAIT: Duration = Duration::from_secs(20);
const TOKEN: &str = "console-s3cret";

/// What the API answered: status, `WWW-Authenticate`, `Content-Type` and the JSON body.
struct Answer {
    status: u16,
    www_authenticate: Option<String>,
    content_type: Option<String>,
    body: Value,
}

async fn get(sentinel: &Running, query: &str, token: Option<&str>) -> Answer {
    let mut request = reqwest::Client::new().get(format!("{}/api/resources{query}", sentinel.http));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    let header = |name: reqwest::header::HeaderName| {
        response
            .headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
    };
    Answer {
        status: response.status().as_u16(),
        www_authenticate: header(reqwest::header::WWW_AUTHENTICATE),
        content_type: header(reqwest::header::CONTENT_TYPE),
        body: response.json().await.unwrap(),
    }
}

/// The body of an authorised `GET /api/resources{query}`, which must be a 200.
async fn resources(sentinel: &Running, query: &str) -> Value {
    let answer = get(sentinel, query, Some(TOKEN)).await;
    assert_eq!(answer.status, 200, "{query}: {}", answer.body);
    answer.body
}

fn find<'a>(body: &'a Value, id: &str) -> Option<&'a Value> {
    body["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == id)
}

fn ids(body: &Value) -> Vec<&str> {
    body["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect()
}

fn id_of(resource: &Value) -> String {
    resource["id"].as_str().unwrap().to_owned()
}

/// A sentinel config with the read API on, the clock `clock`.
fn config(fleet: &Fleet, exchange: &str, kind: &str, clock: &TestClock) -> sentinel::Config {
    let mut config = common::config(fleet.api.base_url(), exchange, kind, "");
    config.clock = clock.clock();
    config.api_token = Some(TOKEN.into());
    config
}

#[tokio::test]
async fn published_and_skipped_resources_show_when_and_why() {
    let fleet = Fleet::start().await;
    let broker = TestBroker::new().await;
    let exchange = broker.name("clusters");
    let queue = common::adapter_queue(&broker, &exchange).await;
    let due = id_of(&fleet.cluster("due", json!({})).await);
    let settled = id_of(&fleet.cluster("settled", json!({})).await);
    let settled_path = format!("/clusters/{settled}");
    fleet.report_available(&settled_path, 1).await;
    let clock = TestClock::default();
    // Past the 10 s debounce: `due` is published, `settled` is reconciled and skipped.
    clock.advance(chrono::Duration::seconds(11));
    let sentinel = Running::start(config(&fleet, &exchange, "clusters", &clock)).await;

    let (event, _) = queue.next_event::<Value>(WAIT).await;
    assert_eq!(event.data["id"], due.as_str());
    let body = eventually_async("the publish in the read API", WAIT, || async {
        let body = resources(&sentinel, "").await;
        find(&body, &due)?["last_published_at"].as_str()?;
        find(&body, &settled)?;
        Some(body)
    })
    .await;
    let mut sorted = vec![due.as_str(), settled.as_str()];
    sorted.sort();
    assert_eq!(ids(&body), sorted, "by kind then id");
    let published = find(&body, &due).unwrap();
    assert_eq!(published["kind"], "clusters");
    assert_eq!(published["cluster_id"], Value::Null);
    assert_eq!(published["generation"], 1);
    assert_eq!(
        published["decision"],
        json!({"publish": true, "reason": "message decision matched", "error": null})
    );
    assert_eq!(published["publish_error"], Value::Null);
    assert!(published["last_evaluated_at"].is_string());
    let skipped = find(&body, &settled).unwrap();
    assert_eq!(skipped["generation"], 1);
    assert_eq!(
        skipped["decision"],
        json!({"publish": false, "reason": "message decision result is false", "error": null})
    );
    assert_eq!(skipped["last_published_at"], Value::Null, "never published");
    assert!(skipped["last_evaluated_at"].is_string());
    assert!(body["poll"]["cycles"].as_u64().unwrap() >= 1);
    assert!(body["poll"]["last_cycle_at"].is_string());

    // A spec change is published at generation 2; once reconciled, the resource is skipped
    // again and keeps the time of its last publish.
    fleet
        .patch(&settled_path, json!({"spec": {"region": "us"}}))
        .await;
    eventually_async("generation 2 published", WAIT, || async {
        let body = resources(&sentinel, &format!("?id={settled}")).await;
        let entry = find(&body, &settled)?;
        (entry["generation"] == 2 && entry["last_published_at"].is_string()).then_some(())
    })
    .await;
    fleet.report_available(&settled_path, 2).await;
    let reconciled = eventually_async("generation 2 reconciled and skipped", WAIT, || async {
        let body = resources(&sentinel, &format!("?id={settled}")).await;
        let entry = find(&body, &settled)?.clone();
        (entry["generation"] == 2 && entry["decision"]["publish"] == false).then_some(entry)
    })
    .await;
    sentinel.wait_cycles(2).await;
    let body = resources(&sentinel, &format!("?id={settled}")).await;
    let later = find(&body, &settled).unwrap();
    assert_eq!(
        later["decision"]["reason"],
        "message decision result is false"
    );
    assert_eq!(later["last_published_at"], reconciled["last_published_at"]);
    assert!(later["last_published_at"].is_string());
    assert_ne!(later["last_evaluated_at"], reconciled["last_evaluated_at"]);
    sentinel.stop().await;
}

#[tokio::test]
async fn a_failed_evaluation_or_publish_says_why() {
    let fleet = Fleet::start().await;
    let broker = TestBroker::new().await;
    // No adapter queue is bound: every publish is unroutable.
    let exchange = broker.name("clusters");
    let labelled = id_of(&fleet.cluster("labelled", json!({"team": "a"})).await);
    let unlabelled = id_of(&fleet.cluster("unlabelled", json!({})).await);
    let extra = r#"message_decision:
  params:
    - name: team
      expr: 'resource.labels.team'
  result: 'team == "a"'"#;
    let mut config = common::config(fleet.api.base_url(), &exchange, "clusters", extra);
    config.api_token = Some(TOKEN.into());
    let sentinel = Running::start(config).await;
    let body = eventually_async("both evaluated", WAIT, || async {
        let body = resources(&sentinel, "").await;
        find(&body, &labelled)?["publish_error"].as_str()?;
        find(&body, &unlabelled)?;
        Some(body)
    })
    .await;

    let unroutable = find(&body, &labelled).unwrap();
    assert_eq!(unroutable["decision"]["publish"], true);
    assert_eq!(unroutable["last_published_at"], Value::Null);
    let error = unroutable["publish_error"].as_str().unwrap();
    assert!(
        error.starts_with(&format!(
            "unroutable: exchange `{exchange}` has no queue bound"
        )),
        "{error}"
    );
    let failed = find(&body, &unlabelled).unwrap();
    assert_eq!(
        failed["decision"],
        json!({"publish": false, "reason": "message decision evaluation failed",
               "error": "evaluating `resource.labels.team`: No such key: team"})
    );
    assert_eq!(failed["publish_error"], Value::Null);
    assert_eq!(failed["last_published_at"], Value::Null);
    sentinel.stop().await;
}

#[tokio::test]
async fn filters_select_by_kind_and_exact_id_and_nodepools_name_their_cluster() {
    let fleet = Fleet::start().await;
    let broker = TestBroker::new().await;
    let clusters = broker.name("clusters");
    let nodepools = broker.name("nodepools");
    let _cluster_queue = broker.probe("cluster-adapter", &clusters, "").await;
    let _nodepool_queue = broker.probe("nodepool-adapter", &nodepools, "").await;
    let a = id_of(&fleet.cluster("alpha", json!({})).await);
    let b = id_of(&fleet.cluster("bravo", json!({})).await);
    let pool = id_of(
        &fleet
            .post(
                &format!("/clusters/{a}/nodepools"),
                json!({"kind": "NodePool", "name": "workers", "spec": {}}),
            )
            .await,
    );
    let clock = TestClock::default();
    let cluster_sentinel = Running::start(config(&fleet, &clusters, "clusters", &clock)).await;
    let pool_sentinel = Running::start(config(&fleet, &nodepools, "nodepools", &clock)).await;
    cluster_sentinel.wait_cycles(1).await;
    pool_sentinel.wait_cycles(1).await;

    let mut both = vec![a.as_str(), b.as_str()];
    both.sort();
    assert_eq!(ids(&resources(&cluster_sentinel, "").await), both);
    assert_eq!(
        ids(&resources(&cluster_sentinel, "?kind=clusters").await),
        both
    );
    let other_kind = resources(&cluster_sentinel, "?kind=nodepools").await;
    assert!(ids(&other_kind).is_empty(), "{other_kind}");
    assert!(other_kind["poll"]["cycles"].as_u64().unwrap() >= 1);
    assert_eq!(
        ids(&resources(&cluster_sentinel, &format!("?id={b}")).await),
        [b.as_str()]
    );
    assert_eq!(
        ids(&resources(&cluster_sentinel, &format!("?kind=clusters&id={a}")).await),
        [a.as_str()]
    );
    assert!(ids(&resources(&cluster_sentinel, "?id=no-such-cluster").await).is_empty());

    let body = resources(&pool_sentinel, &format!("?kind=nodepools&id={pool}")).await;
    assert_eq!(ids(&body), [pool.as_str()]);
    let entry = &body["resources"][0];
    assert_eq!(entry["kind"], "nodepools");
    assert_eq!(entry["cluster_id"], a.as_str());
    assert_eq!(entry["generation"], 1);
    assert!(ids(&resources(&pool_sentinel, "?kind=clusters").await).is_empty());
    cluster_sentinel.stop().await;
    pool_sentinel.stop().await;
}

#[tokio::test]
async fn the_api_needs_its_token_and_refuses_unknown_parameters() {
    let fleet = Fleet::start().await;
    let broker = TestBroker::new().await;
    let exchange = broker.name("clusters");
    let clock = TestClock::default();

    let mut disabled = config(&fleet, &exchange, "clusters", &clock);
    disabled.api_token = None;
    let sentinel = Running::start(disabled).await;
    for token in [Some(TOKEN), None] {
        let answer = get(&sentinel, "", token).await;
        assert_eq!(answer.status, 403);
        assert_eq!(
            answer.content_type.as_deref(),
            Some("application/problem+json")
        );
        assert_eq!(
            answer.body["detail"],
            "the read API is disabled: set SENTINEL_API_TOKEN"
        );
    }
    let healthz = reqwest::get(format!("{}/healthz", sentinel.http))
        .await
        .unwrap();
    assert_eq!(healthz.status(), 200, "the probes are served beside it");
    sentinel.stop().await;

    let sentinel = Running::start(config(&fleet, &exchange, "clusters", &clock)).await;
    for token in [None, Some("wrong"), Some("")] {
        let answer = get(&sentinel, "", token).await;
        assert_eq!(answer.status, 401, "token {token:?}");
        assert_eq!(answer.www_authenticate.as_deref(), Some("Bearer"));
        assert_eq!(answer.body["detail"], "missing or invalid credentials");
    }
    // Credentials are checked before the query: nothing is said to a caller without them.
    assert_eq!(get(&sentinel, "?status=due", None).await.status, 401);

    for (query, detail) in [
        (
            "?kind=clusters&status=due",
            "unknown query parameter `status`: the parameters are `kind` and `id`",
        ),
        (
            "?kind=Cluster",
            "query parameter `kind` must be clusters or nodepools, not `Cluster`",
        ),
        ("?id=", "query parameter `id` is empty"),
        ("?id=a&id=b", "query parameter `id` is given more than once"),
    ] {
        let answer = get(&sentinel, query, Some(TOKEN)).await;
        assert_eq!(answer.status, 400, "{query}");
        assert_eq!(
            answer.content_type.as_deref(),
            Some("application/problem+json")
        );
        assert_eq!(answer.body["detail"], detail, "{query}");
    }
    assert_eq!(get(&sentinel, "", Some(TOKEN)).await.status, 200);
    sentinel.stop().await;
}

#[tokio::test]
async fn a_deleted_cluster_disappears_after_the_next_cycle() {
    let fleet = Fleet::start().await;
    let broker = TestBroker::new().await;
    let exchange = broker.name("clusters");
    let _queue = common::adapter_queue(&broker, &exchange).await;
    let kept = id_of(&fleet.cluster("kept", json!({})).await);
    let gone = id_of(&fleet.cluster("gone", json!({})).await);
    let clock = TestClock::default();
    let sentinel = Running::start(config(&fleet, &exchange, "clusters", &clock)).await;
    eventually_async("both clusters in the read API", WAIT, || async {
        (resources(&sentinel, "").await["resources"]
            .as_array()?
            .len()
            == 2)
            .then_some(())
    })
    .await;

    fleet.remove(&format!("/clusters/{gone}")).await;
    let body = eventually_async("the deleted cluster dropped", WAIT, || async {
        let body = resources(&sentinel, "").await;
        (ids(&body) == [kept.as_str()]).then_some(body)
    })
    .await;
    assert!(find(&body, &gone).is_none());
    assert!(
        ids(&resources(&sentinel, &format!("?id={gone}")).await).is_empty(),
        "not found by id either"
    );
    sentinel.stop().await;
}

/// `sentinel serve -c <file> [args]`'s configuration.
fn load(args: &[&str]) -> sentinel::Config {
    let path = std::env::temp_dir().join(format!("sentinel-api-{}.yaml", std::process::id()));
    std::fs::write(
        &path,
        "resource_type: clusters\nclients: {hyperfleet_api: {base_url: 'http://127.0.0.1:8000'}}\nmessage_data: {id: resource.id}\n",
    )
    .unwrap();
    let mut argv = vec!["sentinel", "serve", "-c", path.to_str().unwrap()];
    argv.extend_from_slice(args);
    let sentinel::Command::Serve(args) = sentinel::Cli::try_parse_from(argv).unwrap().command
    else {
        unreachable!()
    };
    let config = sentinel::Config::from_args(&args).unwrap();
    std::fs::remove_file(&path).unwrap();
    config
}

#[test]
fn the_token_is_set_by_flag_trimmed_and_never_dumped() {
    assert_eq!(load(&[]).api_token, None);
    let config = load(&["--api-token", " console-s3cret\n"]);
    assert_eq!(config.api_token.as_deref(), Some("console-s3cret"));
    assert!(!config.dump().contains("console-s3cret"));
    assert!(!format!("{config:?}").contains("console-s3cret"));
    assert_eq!(
        load(&["--api-token", "  "]).api_token,
        None,
        "blank is unset"
    );
}

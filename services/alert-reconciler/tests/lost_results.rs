//! Answers lost to a failover or a Redis reconnect. Recipes written for Euphrosyne answer with
//! one `PUBLISH` (no durable copy), which reaches only a reconciler subscribed at that instant.
//! A debugging recipe whose answer was lost is launched again (bounded, and the report says
//! so); an action recipe never is, and its report says why it has no result.

mod common;

use common::*;
use serde_json::{Value, json};
use steadfast_test_support::{FaultProxy, eventually, eventually_async, redis_url};

/// A recipe as Euphrosyne's SDK writes them: one `PUBLISH` of its result, nothing durable.
/// Its first launch waits for `$GATE` before answering; later launches answer at once.
const EUPHROSYNE_RECIPE: &str = r#"echo "$STEADFAST_RECIPE_ATTEMPT" >> "$LAUNCHES"
if [ "$STEADFAST_RECIPE_ATTEMPT" = 1 ]; then
  while [ ! -f "$GATE" ]; do sleep 0.05; done
fi
redis-cli -h "${STEADFAST_REDIS_ADDRESS%:*}" -p "${STEADFAST_REDIS_ADDRESS##*:}" \
  PUBLISH "$STEADFAST_RUN_ID" "{\"incident\": \"$STEADFAST_RUN_ID\", \"name\": \"$STEADFAST_RECIPE\", \"status\": \"successful\", \"results\": {\"analysis\": \"answered on attempt $STEADFAST_RECIPE_ATTEMPT\", \"actions\": [\"restart-web\"]}}" > /dev/null
if [ "$STEADFAST_RECIPE_ATTEMPT" = 1 ]; then echo done > "$GATE.done"; fi"#;

/// `investigate` (debugging) and `restart-web` (action) both answer the Euphrosyne way; the
/// gate of each is its own file.
fn recipes(h: &Harness) -> String {
    h.script("euphrosyne.sh", EUPHROSYNE_RECIPE);
    format!(
        r#"
debugging:
  investigate:
    entrypoint: ./euphrosyne.sh
    env: {{LAUNCHES: "{dir}/investigate.launches", GATE: "{dir}/investigate.gate"}}
actions:
  restart-web:
    entrypoint: ./euphrosyne.sh
    description: Restarts the web pod
    env: {{LAUNCHES: "{dir}/restart-web.launches", GATE: "{dir}/restart-web.gate"}}
"#,
        dir = h.dir.display(),
    )
}

async fn harness() -> Harness {
    let h = Harness::new("debugging: {}\n").await;
    std::fs::write(h.dir.join("recipes.yaml"), recipes(&h)).unwrap();
    h
}

impl Harness {
    /// The attempts each launch of `recipe` wrote, in order.
    fn launches(&self, recipe: &str) -> Vec<String> {
        std::fs::read_to_string(self.dir.join(format!("{recipe}.launches")))
            .map(|s| s.lines().map(str::to_owned).collect())
            .unwrap_or_default()
    }

    /// Lets the first launch of `recipe` answer, and waits until it has.
    async fn open_gate(&self, recipe: &str) {
        std::fs::write(self.dir.join(format!("{recipe}.gate")), "open").unwrap();
        let done = self.dir.join(format!("{recipe}.gate.done"));
        eventually(&format!("{recipe} to have published"), WAIT, || {
            done.exists().then_some(())
        })
        .await;
    }
}

impl Harness {
    /// Starts a reconciler on a runtime of its own, so that [`crash`] ends every task it
    /// spawned — the recipe watchers too — as a `kill -9` would (the `kill` of the common
    /// harness aborts the App's task, but detached tasks live on in the test's runtime, and a
    /// watcher still timing out the first launch would race the adopting reconciler).
    async fn start_crashable(&self) -> (Running, tokio::runtime::Runtime) {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let running = runtime.spawn(start(self.config.clone())).await.unwrap();
        self.webex.clear_webhooks();
        self.webex.register_webhook(
            &format!("{}/webex/attachment-actions", running.base),
            Some(SECRET),
        );
        (running, runtime)
    }
}

/// Ends the reconciler started by [`Harness::start_crashable`] at once, mid-flight. Its recipe
/// processes live on, as after a real crash.
fn crash((running, runtime): (Running, tokio::runtime::Runtime)) {
    drop(running);
    runtime.shutdown_background();
}

impl Running {
    /// Waits until `recipe` of the incident's `run`-th run (0-based) is launched and its
    /// process recorded; returns the run's id.
    async fn launched(&self, incident: &str, run: usize, recipe: &str) -> String {
        eventually_async(&format!("{recipe} launched"), WAIT, || async {
            let body = self.incident(incident).await;
            let run = body["runs"].get(run)?.clone();
            let row = run["recipes"]
                .as_array()?
                .iter()
                .find(|r| r["recipe"] == recipe)?
                .clone();
            // `launched` is set when the recipe is claimed, its process handle once it runs: a
            // crash in between leaves a recipe nobody can watch, which is another test's case.
            (row["state"] == "launched" && row["handle"].is_string())
                .then(|| run["id"].as_str().unwrap().to_owned())
        })
        .await
    }
}

fn recipe_row(incident: &Value, run: usize, recipe: &str) -> Value {
    incident["runs"][run]["recipes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["recipe"] == recipe)
        .unwrap()
        .clone()
}

/// How many connections are subscribed to `channel` on the real Redis.
async fn subscribers(channel: &str) -> i64 {
    let client = redis::Client::open(redis_url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let (_, count): (String, i64) = redis::cmd("PUBSUB")
        .arg("NUMSUB")
        .arg(channel)
        .query_async(&mut conn)
        .await
        .unwrap();
    count
}

#[tokio::test(flavor = "multi_thread")]
async fn a_debugging_answer_lost_in_a_failover_is_recovered_by_running_the_recipe_again() {
    let h = harness().await;
    let first = h.start_crashable().await;
    h.publish_alert(&alert("checkout", "web-1", "firing")).await;
    let id = first.0.only_incident().await;
    first.0.launched(&id, 0, "investigate").await;
    crash(first);

    // The recipe answers while no reconciler listens: its only PUBLISH reaches nobody.
    h.open_gate("investigate").await;

    let second = h.start().await;
    let analysis = h.message(1).await;
    let text = analysis.markdown.clone().unwrap();
    assert!(text.contains("answered on attempt 2"), "{text}");
    assert!(
        text.contains("Re-run: its result was lost in a failover"),
        "{text}"
    );
    assert_eq!(
        analysis.submit_actions().len(),
        1,
        "its suggestion survives"
    );
    assert_eq!(h.launches("investigate"), ["1", "2"]);

    let body = second.wait_state(&id, "awaiting_approval").await;
    let row = recipe_row(&body, 0, "investigate");
    assert_eq!(row["state"], "successful");
    assert_eq!(row["attempt"], 2);
    assert_eq!(row["reruns"].as_array().unwrap().len(), 1, "{row}");
    let metrics = second.metrics_text().await;
    assert!(
        metrics.contains("steadfast_reconciler_recipe_reruns_total{recipe=\"investigate\"} 1"),
        "{metrics}"
    );
    assert_eq!(h.webex.messages().len(), 1);
    second.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_recipe_still_running_after_a_failover_answers_the_new_reconciler_without_a_rerun() {
    let h = harness().await;
    let first = h.start_crashable().await;
    h.publish_alert(&alert("checkout", "web-1", "firing")).await;
    let id = first.0.only_incident().await;
    let run = first.0.launched(&id, 0, "investigate").await;
    crash(first);
    eventually_async(
        "the killed reconciler to have unsubscribed",
        WAIT,
        || async { (subscribers(&run).await == 0).then_some(()) },
    )
    .await;

    let second = h.start().await;
    eventually_async("the new reconciler subscribed to the run", WAIT, || async {
        (subscribers(&run).await == 1).then_some(())
    })
    .await;
    h.open_gate("investigate").await;

    let text = h.message(1).await.markdown.unwrap();
    assert!(text.contains("answered on attempt 1"), "{text}");
    assert!(!text.contains("Re-run"), "{text}");
    assert_eq!(h.launches("investigate"), ["1"], "watched, not re-run");
    let body = second.wait_state(&id, "awaiting_approval").await;
    assert_eq!(recipe_row(&body, 0, "investigate")["attempt"], 1);
    second.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_action_whose_answer_was_lost_in_a_failover_is_never_run_again_and_the_report_says_why()
{
    let h = harness().await;
    // The investigation answers at once; only the action's answer will be lost.
    std::fs::write(h.dir.join("investigate.gate"), "open").unwrap();
    let first = h.start_crashable().await;
    h.publish_alert(&alert("checkout", "web-1", "firing")).await;
    let id = first.0.only_incident().await;
    h.message(1).await;
    first.0.wait_state(&id, "awaiting_approval").await;
    let (status, body) = first
        .0
        .post(
            "/api/actions",
            Some(API_TOKEN),
            &json!({"uuid": id, "actions": [{"name": "restart-web"}]}),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    first.0.launched(&id, 1, "restart-web").await;
    crash(first);
    h.open_gate("restart-web").await;

    let second = h.start().await;
    let outcome = h.message(2).await.markdown.unwrap();
    assert!(outcome.contains("restart-web"), "{outcome}");
    assert!(
        outcome.contains("its result was lost in a failover"),
        "{outcome}"
    );
    assert!(
        outcome.contains("an action recipe is never run again on its own"),
        "{outcome}"
    );
    assert_eq!(h.launches("restart-web"), ["1"], "an action runs once");
    let body = second.wait_state(&id, "awaiting_approval").await;
    let row = recipe_row(&body, 1, "restart-web");
    assert_eq!(row["state"], "unknown");
    assert_eq!(row["attempt"], 1);
    second.stop().await;
}

/// A reconciler that reaches Redis through a proxy the test cuts (recipes reach Redis
/// directly), with `reruns` re-runs of lost answers: `investigate` answers while the proxy is
/// cut, then the reconciler reconnects. Returns the analysis in chat (and what must live on).
async fn analysis_after_an_answer_lost_to_redis(reruns: u32) -> (Harness, FaultProxy, String) {
    let mut h = harness().await;
    let url = url::Url::parse(&redis_url()).unwrap();
    let upstream = format!("{}:{}", url.host_str().unwrap(), url.port().unwrap_or(6379));
    let proxy = FaultProxy::start(&upstream).await;
    h.config.redis_url = format!("redis://{}/", proxy.addr());
    h.config.lost_result_reruns = reruns;
    let app = h.start().await;
    h.publish_alert(&alert("checkout", "web-1", "firing")).await;
    let id = app.only_incident().await;
    app.launched(&id, 0, "investigate").await;

    proxy.cut();
    eventually_async("the reconciler to notice Redis is gone", WAIT, || async {
        let (status, _) = app.get("/readyz").await;
        (status == 503).then_some(())
    })
    .await;
    h.open_gate("investigate").await;
    proxy.restore();

    let text = h.message(1).await.markdown.unwrap();
    app.stop().await;
    (h, proxy, text)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_debugging_answer_lost_in_a_redis_reconnect_is_recovered_by_running_the_recipe_again() {
    let (h, _proxy, text) = analysis_after_an_answer_lost_to_redis(2).await;
    assert!(text.contains("answered on attempt 2"), "{text}");
    assert!(
        text.contains("Re-run: its result was lost while the reconciler reconnected to Redis"),
        "{text}"
    );
    assert_eq!(h.launches("investigate"), ["1", "2"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn with_reruns_off_a_lost_answer_is_reported_with_its_reason() {
    let (h, _proxy, text) = analysis_after_an_answer_lost_to_redis(0).await;
    assert!(text.contains("**investigate** — unknown"), "{text}");
    assert!(
        text.contains("it ended without its result reaching the reconciler, but its result was lost while the reconciler reconnected to Redis"),
        "{text}"
    );
    assert!(text.contains("re-runs of lost results are off"), "{text}");
    assert_eq!(h.launches("investigate"), ["1"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_recipe_adopted_after_a_failover_is_still_killed_at_its_own_timeout() {
    let h = Harness::new("debugging: {}\n").await;
    h.script("euphrosyne.sh", EUPHROSYNE_RECIPE);
    h.script(
        "hang.sh",
        "echo $$ > \"$PIDFILE\"\nwhile true; do sleep 0.05; done",
    );
    std::fs::write(
        h.dir.join("recipes.yaml"),
        format!(
            r#"
debugging:
  investigate:
    entrypoint: ./euphrosyne.sh
    env: {{LAUNCHES: "{dir}/investigate.launches", GATE: "{dir}/investigate.gate"}}
  hang:
    entrypoint: ./hang.sh
    timeout: 3s
    env: {{PIDFILE: "{dir}/hang.pid"}}
"#,
            dir = h.dir.display()
        ),
    )
    .unwrap();
    let first = h.start_crashable().await;
    h.publish_alert(&alert("checkout", "web-1", "firing")).await;
    let id = first.0.only_incident().await;
    let run = first.0.launched(&id, 0, "hang").await;
    crash(first);
    eventually_async(
        "the killed reconciler to have unsubscribed",
        WAIT,
        || async { (subscribers(&run).await == 0).then_some(()) },
    )
    .await;

    let second = h.start().await;
    let body = eventually_async("hang killed at its timeout", WAIT, || async {
        let body = second.incident(&id).await;
        (recipe_row(&body, 0, "hang")["state"] == "timed_out").then_some(body)
    })
    .await;
    let hang = recipe_row(&body, 0, "hang");
    assert_eq!(
        hang["detail"], "killed after its 3s timeout",
        "its own timeout, not the run's deadline: {hang}"
    );
    let pid = std::fs::read_to_string(h.dir.join("hang.pid")).unwrap();
    // Gone, or a zombie its crashed parent (this test process) has not reaped.
    eventually("the adopted process gone", WAIT, || {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", pid.trim()));
        let dead = match stat {
            Err(_) => true,
            Ok(stat) => stat
                .rsplit(") ")
                .next()
                .is_some_and(|rest| rest.starts_with('Z')),
        };
        dead.then_some(())
    })
    .await;
    assert_eq!(recipe_row(&body, 0, "investigate")["state"], "launched");

    h.open_gate("investigate").await;
    let text = h.message(1).await.markdown.unwrap();
    assert!(text.contains("**hang** — timed out"), "{text}");
    assert!(text.contains("killed after its 3s timeout"), "{text}");
    second.stop().await;
}

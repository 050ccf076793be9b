//! The herder end to end on the real broker and database, with a fake GitLab: Job Hook
//! events published exactly as the webhook-receiver publishes them.

mod common;

use std::time::Duration;

use common::{Harness, IMAGE_PULL_LOG, Options, PROJECT_ID, TEST_FAILURE_LOG, WAIT, job_hook};
use fake_gitlab::FakePipeline;
use serde_json::json;
use steadfast_test_support::{eventually, eventually_async};

#[tokio::test]
async fn a_known_failure_is_retried_once_after_the_delay() {
    let h = Harness::start().await;
    let job = h.add_failed_job(501, "build x86_64", IMAGE_PULL_LOG);
    h.publish_hook(&job_hook(&job, 0), "hook-501").await;

    let decided = h.next_decision().await;
    assert_eq!(decided["job_id"], 501);
    assert_eq!(decided["matcher"], "image-pull");
    assert_eq!(decided["action"], "retry");
    assert_eq!(decided["outcome"], "scheduled");
    assert_eq!(decided["attempt"], 1);
    assert_eq!(decided["delay_seconds"], 1.0);
    assert_eq!(
        decided["job_url"],
        "https://gitlab.test/kernel/ark/-/jobs/501"
    );
    assert!(
        decided["log_line"]
            .as_str()
            .unwrap()
            .starts_with("ERROR: Job failed: failed to pull image")
    );

    let row = h.finished(501).await;
    assert_eq!(row.outcome.as_deref(), Some("retried"));
    assert_eq!(row.action, "retry");
    let new_job = row.new_job_id.expect("the new job's id") as u64;
    assert!(h.gitlab.job(new_job).is_some(), "GitLab has the new job");
    assert_eq!(h.retry_calls(501), vec![201], "exactly one retry call");

    // The retry waited for the matcher's first delay after the log was read.
    let requests = h.gitlab.requests();
    let trace_read = requests
        .iter()
        .find(|r| r.path.ends_with("/jobs/501/trace"))
        .unwrap()
        .at;
    let retried = requests
        .iter()
        .find(|r| r.path.ends_with("/jobs/501/retry"))
        .unwrap()
        .at;
    assert!(
        retried.duration_since(trace_read) >= Duration::from_secs(1),
        "retried {:?} after reading the log",
        retried.duration_since(trace_read)
    );
    assert!(
        requests
            .iter()
            .all(|r| r.token.as_deref() == Some("glpat-test"))
    );

    let outcome = h.next_decision().await;
    assert_eq!(outcome["outcome"], "retried");
    assert_eq!(outcome["new_job_id"], new_job);

    h.metric_reaches(
        r#"cki_herder_problem_detected_total{action="retry",gitlab_job="build x86_64",gitlab_stage="test",matcher="image-pull"}"#,
        1.0,
    )
    .await;
    h.metric_reaches(
        r#"pipeline_herder_retries_total{matcher="image-pull",outcome="retried"}"#,
        1.0,
    )
    .await;
}

#[tokio::test]
async fn the_same_event_delivered_twice_retries_once() {
    let h = Harness::start().await;
    let job = h.add_failed_job(502, "build x86_64", IMAGE_PULL_LOG);
    let hook = job_hook(&job, 0);
    h.publish_hook(&hook, "hook-502").await;
    h.publish_hook(&hook, "hook-502").await;
    let row = h.finished(502).await;
    assert_eq!(row.outcome.as_deref(), Some("retried"));
    h.metric_reaches(r#"pipeline_herder_events_total{result="duplicate"}"#, 1.0)
        .await;

    // And once more after the retry happened.
    h.publish_hook(&hook, "hook-502").await;
    h.metric_reaches(r#"pipeline_herder_events_total{result="duplicate"}"#, 2.0)
        .await;
    // Every copy of the retry message has been consumed.
    let retries = h.broker.queue(&h.broker.name("pipeline-herder.retries"));
    let delayed = h
        .broker
        .queue(&h.broker.name("pipeline-herder.retries.delayed.1s"));
    eventually_async("no retry message left", WAIT, || async {
        (retries.depth().await + delayed.depth().await == 0).then_some(())
    })
    .await;
    assert_eq!(
        h.retry_calls(502),
        vec![201],
        "still exactly one retry call"
    );
    assert_eq!(h.rows().await.len(), 1);
}

#[tokio::test]
async fn at_the_retry_limit_the_job_is_reported_not_retried() {
    let h = Harness::start().await;
    let job = h.add_failed_job(503, "build x86_64", IMAGE_PULL_LOG);
    h.publish_hook(&job_hook(&job, 3), "hook-503").await;
    let decided = h.next_decision().await;
    assert_eq!(decided["action"], "report");
    assert_eq!(decided["outcome"], "reported");
    assert_eq!(decided["matcher"], "image-pull");
    assert!(
        decided["reason"].as_str().unwrap().ends_with(
            "not retried: the job was already retried 3 time(s), the matcher's retry_limit is 3"
        ),
        "{}",
        decided["reason"]
    );
    let row = h.finished(503).await;
    assert_eq!(
        (row.action.as_str(), row.attempt, row.retry_limit),
        ("report", 4, Some(3))
    );
    assert!(h.retry_calls(503).is_empty());
}

#[tokio::test]
async fn without_retries_count_earlier_attempts_are_counted_through_the_api() {
    let h = Harness::start().await;
    // Three earlier attempts of the same job in the same pipeline.
    for id in [504, 505, 506] {
        let mut earlier = h.add_failed_job(id, "build x86_64", IMAGE_PULL_LOG);
        earlier.retried = true;
        h.gitlab.add_job(earlier);
    }
    let job = h.add_failed_job(507, "build x86_64", IMAGE_PULL_LOG);
    let mut hook = job_hook(&job, 0);
    hook.as_object_mut().unwrap().remove("retries_count");
    h.publish_hook(&hook, "hook-507").await;
    let row = h.finished(507).await;
    assert_eq!(row.action, "report");
    assert_eq!(row.attempt, 4);
    assert!(h.retry_calls(507).is_empty());
}

#[tokio::test]
async fn a_superseded_pipeline_is_not_retried() {
    let h = Harness::start().await;
    let job = h.add_failed_job(508, "build x86_64", IMAGE_PULL_LOG);
    h.gitlab.add_pipeline(FakePipeline {
        id: 101,
        project_id: PROJECT_ID,
        git_ref: "main".into(),
        status: "running".into(),
    });
    h.publish_hook(&job_hook(&job, 0), "hook-508").await;
    let row = h.finished(508).await;
    assert_eq!(row.action, "report");
    assert!(
        row.reason
            .ends_with("not retried: pipeline 100 is superseded by pipeline 101 on ref `main`"),
        "{}",
        row.reason
    );
    assert!(h.retry_calls(508).is_empty());
}

#[tokio::test]
async fn a_pipeline_superseded_during_the_delay_is_not_retried() {
    let h = Harness::start().await;
    let job = h.add_failed_job(509, "build x86_64", IMAGE_PULL_LOG);
    h.publish_hook(&job_hook(&job, 0), "hook-509").await;
    h.decision_where(509, "the retry to be scheduled", |r| r.state == "scheduled")
        .await;
    // Someone pushed while the retry waited.
    h.gitlab.add_pipeline(FakePipeline {
        id: 102,
        project_id: PROJECT_ID,
        git_ref: "main".into(),
        status: "running".into(),
    });
    let row = h.finished(509).await;
    assert_eq!(row.outcome.as_deref(), Some("superseded"));
    assert_eq!(row.action, "report");
    assert!(h.retry_calls(509).is_empty());
    h.next_decision().await;
    let outcome = h.next_decision().await;
    assert_eq!(outcome["outcome"], "superseded");
}

#[tokio::test]
async fn a_job_retried_by_someone_else_during_the_delay_is_left_alone() {
    let h = Harness::start().await;
    let job = h.add_failed_job(510, "build x86_64", IMAGE_PULL_LOG);
    h.publish_hook(&job_hook(&job, 0), "hook-510").await;
    h.decision_where(510, "the retry to be scheduled", |r| r.state == "scheduled")
        .await;
    let mut by_hand = h.add_failed_job(511, "build x86_64", "");
    by_hand.status = "running".into();
    h.gitlab.add_job(by_hand);
    let row = h.finished(510).await;
    assert_eq!(row.outcome.as_deref(), Some("already_retried"));
    assert_eq!(row.new_job_id, Some(511));
    assert!(h.retry_calls(510).is_empty());
}

#[tokio::test]
async fn allow_failure_jobs_are_ignored() {
    let h = Harness::start().await;
    let mut job = h.add_failed_job(512, "lint", IMAGE_PULL_LOG);
    job.allow_failure = true;
    h.gitlab.add_job(job.clone());
    h.publish_hook(&job_hook(&job, 0), "hook-512").await;
    h.metric_reaches(
        r#"pipeline_herder_events_total{result="ignored_allow_failure"}"#,
        1.0,
    )
    .await;
    assert!(h.gitlab.requests().is_empty(), "GitLab was not even asked");
    assert!(h.rows().await.is_empty());
    assert!(h.decisions.try_next().await.is_none());
}

#[tokio::test]
async fn jobs_in_other_states_are_ignored_without_asking_gitlab() {
    let h = Harness::start().await;
    let mut job = h.add_failed_job(513, "build x86_64", "");
    job.status = "running".into();
    h.publish_hook(&job_hook(&job, 0), "hook-513").await;
    h.metric_reaches(
        r#"pipeline_herder_events_total{result="ignored_status"}"#,
        1.0,
    )
    .await;
    assert!(h.gitlab.requests().is_empty());
}

#[tokio::test]
async fn a_gitlab_500_on_the_retry_call_is_retried_with_backoff_and_then_succeeds() {
    let h = Harness::start().await;
    let job = h.add_failed_job(514, "build x86_64", IMAGE_PULL_LOG);
    h.gitlab.fail_next(
        "POST",
        &format!("/projects/{PROJECT_ID}/jobs/514/retry"),
        &[500],
    );
    h.publish_hook(&job_hook(&job, 0), "hook-514").await;
    let row = h.finished(514).await;
    assert_eq!(row.outcome.as_deref(), Some("retried"));
    assert_eq!(h.retry_calls(514), vec![500, 201]);
    h.metric_reaches(
        r#"pipeline_herder_gitlab_api_errors_total{endpoint="retry",instance="gitlab.test",status="500"}"#,
        1.0,
    )
    .await;
}

#[tokio::test]
async fn a_gitlab_outage_longer_than_the_http_retries_goes_through_the_retry_tiers() {
    let h = Harness::start().await;
    let job = h.add_failed_job(515, "build x86_64", IMAGE_PULL_LOG);
    // Three attempts per handling: the first handling fails entirely, the message comes back.
    h.gitlab.fail_next(
        "GET",
        &format!("/projects/{PROJECT_ID}/jobs/515/trace"),
        &[503, 503, 503],
    );
    h.publish_hook(&job_hook(&job, 0), "hook-515").await;
    let row = h.finished(515).await;
    assert_eq!(row.outcome.as_deref(), Some("retried"));
    let queue = h.broker.name("pipeline-herder.jobs");
    h.metric_reaches(
        &format!(r#"steadfast_messages_consumed_total{{outcome="retry",queue="{queue}"}}"#),
        1.0,
    )
    .await;
}

#[tokio::test]
async fn a_refused_retry_is_final_and_reported() {
    let h = Harness::start().await;
    let job = h.add_failed_job(516, "build x86_64", IMAGE_PULL_LOG);
    h.gitlab.fail_next(
        "POST",
        &format!("/projects/{PROJECT_ID}/jobs/516/retry"),
        &[403],
    );
    h.publish_hook(&job_hook(&job, 0), "hook-516").await;
    let row = h.finished(516).await;
    assert_eq!(row.outcome.as_deref(), Some("failed"));
    assert_eq!(row.action, "report");
    assert!(
        row.reason.starts_with("GitLab refused the retry: POST "),
        "{}",
        row.reason
    );
    assert!(
        row.reason.contains("answered 403 Forbidden"),
        "{}",
        row.reason
    );
    assert_eq!(h.retry_calls(516), vec![403]);
}

#[tokio::test]
async fn a_log_gitlab_refuses_to_show_is_reported() {
    let h = Harness::start().await;
    let job = h.add_failed_job(517, "build x86_64", IMAGE_PULL_LOG);
    h.gitlab.fail_next(
        "GET",
        &format!("/projects/{PROJECT_ID}/jobs/517/trace"),
        &[404],
    );
    h.publish_hook(&job_hook(&job, 0), "hook-517").await;
    let row = h.finished(517).await;
    assert_eq!(row.action, "report");
    assert!(
        row.reason.starts_with("cannot read the job's log: GET "),
        "{}",
        row.reason
    );
    assert!(h.retry_calls(517).is_empty());
}

#[tokio::test]
async fn a_genuine_failure_is_recorded_as_no_problem() {
    let h = Harness::start().await;
    let job = h.add_failed_job(518, "test x86_64", TEST_FAILURE_LOG);
    h.publish_hook(&job_hook(&job, 0), "hook-518").await;
    let row = h.finished(518).await;
    assert_eq!(
        (row.action.as_str(), row.outcome.as_deref()),
        ("none", Some("no_problem"))
    );
    assert_eq!(row.reason, "no problem detected");
    let decided = h.next_decision().await;
    assert_eq!(decided["action"], "none");
    h.metric_reaches(
        r#"cki_herder_no_problem_detected_total{gitlab_job="test x86_64",gitlab_stage="test"}"#,
        1.0,
    )
    .await;
    assert!(h.retry_calls(518).is_empty());
}

#[tokio::test]
async fn a_job_on_an_unknown_instance_is_reported() {
    let h = Harness::start().await;
    let job = h.add_failed_job(519, "build x86_64", IMAGE_PULL_LOG);
    let mut hook = job_hook(&job, 0);
    hook["project"]["web_url"] = json!("https://gitlab.elsewhere.org/kernel/ark");
    // The receiver's source names the instance.
    let event = steadfast_events::Envelope::new(
        "https://gitlab.elsewhere.org/kernel/ark",
        "com.gitlab.build",
        hook,
    )
    .with_id("hook-519");
    steadfast_messaging::Publisher::new(h.broker.broker.clone())
        .publish(
            &h.broker.namespace.exchange("webhooks"),
            "gitlab.elsewhere.org.kernel.ark.build",
            &event,
            Some("gitlab"),
        )
        .await
        .unwrap();
    let decided = h.next_decision().await;
    assert_eq!(decided["instance"], "gitlab.elsewhere.org");
    assert_eq!(decided["action"], "report");
    assert_eq!(
        decided["reason"],
        "GitLab instance `gitlab.elsewhere.org` is not configured in gitlab_instances, so the job cannot be examined or retried"
    );
    assert!(h.gitlab.requests().is_empty());
}

#[tokio::test]
async fn an_alert_matcher_reports_and_tells_the_chat() {
    let h = Harness::start_with(Options {
        chat: true,
        ..Options::default()
    })
    .await;
    let job = h.add_failed_job(
        520,
        "build x86_64",
        "ld: final link failed: No space left on device\n",
    );
    h.publish_hook(&job_hook(&job, 0), "hook-520").await;
    let row = h.finished(520).await;
    assert_eq!(
        (row.action.as_str(), row.matcher.as_deref()),
        ("alert", Some("disk-alert"))
    );
    let messages = eventually("a chat message", WAIT, || {
        let m = h.chat_messages();
        (!m.is_empty()).then_some(m)
    })
    .await;
    assert_eq!(
        messages[0],
        "pipeline-herder ALERT: job `build x86_64` #520 (kernel/ark, pipeline 100) — matcher `disk-alert`: message `No space left on device` found in the log: https://gitlab.test/kernel/ark/-/jobs/520"
    );
}

#[tokio::test]
async fn a_retry_is_announced_in_chat_with_its_delay() {
    let h = Harness::start_with(Options {
        chat: true,
        ..Options::default()
    })
    .await;
    let job = h.add_failed_job(521, "build x86_64", IMAGE_PULL_LOG);
    h.publish_hook(&job_hook(&job, 1), "hook-521").await;
    h.finished(521).await;
    let messages = eventually("two chat messages", WAIT, || {
        let m = h.chat_messages();
        (m.len() >= 2).then_some(m)
    })
    .await;
    assert_eq!(
        messages[0],
        "pipeline-herder: will retry job `build x86_64` #521 (kernel/ark, pipeline 100) in 2s (matcher `image-pull`, retry 2 of 3): https://gitlab.test/kernel/ark/-/jobs/521"
    );
    assert!(
        messages[1].starts_with("pipeline-herder: retried job `build x86_64` #521"),
        "{}",
        messages[1]
    );
}

#[tokio::test]
async fn a_payload_that_is_not_a_job_hook_is_parked_with_the_reason() {
    let h = Harness::start().await;
    h.publish_hook(
        &json!({"object_kind": "build", "build_id": "not a number"}),
        "hook-bad",
    )
    .await;
    let parked = h
        .broker
        .queue(&h.broker.name("pipeline-herder.jobs.parked"));
    let message = parked.next(WAIT).await;
    let error = message.header("steadfast-error").unwrap();
    assert!(
        error.starts_with("not a valid Job Hook: invalid type: string \"not a number\""),
        "{error}"
    );
}

#[tokio::test]
async fn shutting_down_finishes_in_time_and_keeps_scheduled_retries() {
    let mut h = Harness::start().await;
    let job = h.add_failed_job(522, "build x86_64", IMAGE_PULL_LOG);
    // The second retry waits 2s, long enough to stop the herder first.
    h.publish_hook(&job_hook(&job, 1), "hook-522").await;
    h.decision_where(522, "the retry to be scheduled", |r| r.state == "scheduled")
        .await;
    h.stop().await;
    // The retry waits in the broker, not in the stopped process.
    let delayed = h.broker.name("pipeline-herder.retries.delayed.2s");
    let waiting = h.broker.queue(&delayed).depth().await
        + h.broker
            .queue(&h.broker.name("pipeline-herder.retries"))
            .depth()
            .await;
    assert_eq!(waiting, 1);
    assert!(h.retry_calls(522).is_empty());
}

/// Every metric an alert rule or dashboard in k8s/components/monitoring names is exported by a
/// herder that has handled a retried job (with one GitLab error) and a job it did not
/// recognise; the herder also stands for the messaging library's consumer and publisher.
#[tokio::test]
async fn every_metric_the_alert_rules_and_dashboards_name_is_exported() {
    let h = Harness::start().await;
    let known = h.add_failed_job(560, "build x86_64", IMAGE_PULL_LOG);
    h.gitlab.fail_next(
        "POST",
        &format!("/projects/{PROJECT_ID}/jobs/560/retry"),
        &[500],
    );
    h.publish_hook(&job_hook(&known, 0), "hook-560").await;
    let unknown = h.add_failed_job(561, "test x86_64", TEST_FAILURE_LOG);
    h.publish_hook(&job_hook(&unknown, 0), "hook-561").await;
    assert_eq!(h.finished(560).await.outcome.as_deref(), Some("retried"));
    h.finished(561).await;

    let text = reqwest::get(format!("{}/metrics", h.metrics))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    steadfast_test_support::monitoring::assert_exports(
        &text,
        &["pipeline-herder", "messaging", "every-service"],
    );
}

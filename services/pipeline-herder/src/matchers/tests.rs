use super::*;

fn error(yaml: &str) -> String {
    MatcherSet::from_yaml(yaml).unwrap_err().to_string()
}

#[test]
fn invalid_matchers_are_named_with_the_reason() {
    assert_eq!(
        error("- name: pull\n  action: retr\n  messages: [x]\n"),
        "matcher `pull`: unknown action `retr` (expected retry, report or alert)"
    );
    let bad_regex = error(
        "- name: ok\n  messages: [x]\n- name: pull\n  messages: [a, {regex: 'image (pull'}]\n",
    );
    assert!(
        bad_regex.starts_with("matcher `pull`: message 2 (`image (pull`) is not a valid regex:"),
        "{bad_regex}"
    );
    assert_eq!(
        error("- name: all\n  messages: [{regex: '.*'}]\n"),
        "matcher `all`: message 1 (`.*`) matches an empty line, so it would match every log"
    );
    assert_eq!(
        error("- messages: [x]\n"),
        "matcher #1: has no `name` (names label metrics and the ledger)"
    );
    assert_eq!(
        error("- name: a\n  messages: [x]\n- name: a\n  messages: [y]\n"),
        "matcher `a`: the name is used by an earlier matcher; names must be unique"
    );
    assert_eq!(
        error("- name: everything\n  action: retry\n"),
        "matcher `everything`: has no condition, so it would match every failed job: give messages, failure_reason, job_name, web_url or builtin"
    );
    assert!(
        error("- name: s\n  job_status: [fail]\n  messages: [x]\n")
            .starts_with("matcher `s`: unknown job_status `fail` (GitLab's statuses: created,"),
    );
    assert_eq!(
        error("- name: d\n  retry_delays: [5m, soon]\n  messages: [x]\n"),
        "matcher `d`: retry_delays[1]: `soon` is not a duration like 500ms, 30s, 5m or 1h30m"
    );
    assert_eq!(
        error("- name: b\n  builtin: no_log\n"),
        "matcher `b`: unknown builtin `no_log` (expected no_trace or missed_tests)"
    );
    assert_eq!(
        error("- name: m\n  maximum_artifact_size: 0\n  messages: [x]\n"),
        "matcher `m`: maximum_artifact_size must be between 1 and 268435456 bytes, not 0"
    );
    assert_eq!(
        error("matchers: []\n"),
        "matcher list: no matchers are defined"
    );
}

#[test]
fn plain_text_is_literal_and_groups_nest() {
    let set = MatcherSet::from_yaml(
        "matchers:\n  - action: alert\n    retry_limit: 0\n    matchers:\n      - job_status: []\n        matchers:\n          - name: lit\n            messages: ['a.b (c) [d]* $e']\n",
    )
    .unwrap();
    let m = &set.matchers()[0];
    assert_eq!((m.action, m.retry_limit), (Action::Alert, 0));
    assert!(m.job_status.is_empty(), "inherited through two groups");
    let job = JobFacts {
        status: "success",
        name: "n",
        web_url: "u",
        failure_reason: None,
    };
    let hit = set.evaluate(
        &job,
        Some(&Trace::from_bytes(b"x a.b (c) [d]* $e y\n".to_vec())),
    );
    assert!(hit.first_match().is_some());
    let miss = set.evaluate(&job, Some(&Trace::from_bytes(b"aXb (c) d $e\n".to_vec())));
    assert!(miss.first_match().is_none());
}

#[test]
fn job_conditions_explain_themselves_and_decide_whether_the_log_is_needed() {
    let set = MatcherSet::from_yaml(
        "- name: infra\n  failure_reason: runner_system_failure\n- name: tests\n  job_name: test\n  web_url: https://gitlab.com/cki-project/\n  messages: [Timeout]\n",
    )
    .unwrap();
    let mut job = JobFacts {
        status: "failed",
        name: "test x86_64",
        web_url: "https://gitlab.com/cki-project/kernel-ark/-/jobs/1",
        failure_reason: Some("runner_system_failure"),
    };
    assert_eq!(
        set.trace_window(&job),
        None,
        "the first applicable matcher needs no log"
    );
    let evaluation = set.evaluate(&job, None);
    assert_eq!(evaluation.first_match().unwrap().0, 0);
    assert_eq!(evaluation.verdicts[1], Verdict::NotEvaluated);

    job.failure_reason = Some("script_failure");
    assert_eq!(set.trace_window(&job), Some(DEFAULT_MAXIMUM_ARTIFACT_SIZE));
    let evaluation = set.evaluate(&job, Some(&Trace::from_bytes(b"Timeout\n".to_vec())));
    assert_eq!(
        evaluation.verdicts[0],
        Verdict::NotApplicable {
            reason: "failure reason `script_failure` is not one of [runner_system_failure]".into()
        }
    );
    assert_eq!(evaluation.first_match().unwrap().0, 1);

    job.name = "build x86_64";
    assert_eq!(set.trace_window(&job), None, "nothing applies");
    assert!(!set.considers_status("success"));
    assert!(set.considers_status("failed"));
}

#[test]
fn excerpts_are_clean_and_short() {
    assert_eq!(excerpt(b"\x1b[31;1mERROR: boom\x1b[0;m\r"), "ERROR: boom");
    let long = excerpt("é".repeat(300).as_bytes());
    assert_eq!(long.chars().count(), 201);
    assert!(long.ends_with('…'));
}

#[test]
fn a_missed_tests_builtin_loads_with_a_warning_and_never_matches() {
    let set = MatcherSet::from_yaml(
        "- name: tests-not-run\n  job_status: []\n  job_name: test\n  builtin: missed_tests\n",
    )
    .unwrap();
    assert_eq!(set.warnings().len(), 1);
    let job = JobFacts {
        status: "success",
        name: "test x86_64",
        web_url: "u",
        failure_reason: None,
    };
    assert!(
        set.evaluate(&job, Some(&Trace::default()))
            .first_match()
            .is_none()
    );
}

//! Each invariant checker both ways: it holds on consistent records, and a violation names
//! the ids it is about.

use std::collections::{HashMap, HashSet};

use steadfast_chaos::fleet::{Change, ChangeKind, ClusterObs, ClusterPlan};
use steadfast_chaos::invariants::{
    Backlog, ConsumerSeen, IncidentObs, alerts_one_incident, findings, fleet_reconciled,
    jobs_retried_once, quiet_state, webhooks_delivered,
};
use steadfast_chaos::load::{AlertSent, Delivery, Flow, JobKind, JobPlan};
use steadfast_chaos::poison::{Parked, ParkedMessage, Poison};
use steadfast_chaos::recipe::{self, answer_marker};

fn delivery(id: &str, status: Option<u16>, events: &[&str]) -> Delivery {
    Delivery {
        flow: Flow::Gitlab,
        id: id.into(),
        sent_at: 1.0,
        status,
        target: 0,
        event_ids: events.iter().map(|e| (*e).to_owned()).collect(),
        resend: false,
    }
}

#[test]
fn webhooks_delivered_holds_when_every_accepted_event_reached_the_probe() {
    let deliveries = [
        delivery("k1", Some(200), &["e1"]),
        delivery("k2", Some(202), &["e2"]),
        // Not accepted: need not arrive.
        delivery("k3", None, &[]),
        delivery("k4", Some(503), &[]),
    ];
    let seen: HashSet<String> = ["e1", "e2"].map(String::from).into();
    let verdict = webhooks_delivered(
        &deliveries,
        &seen,
        &[],
        &consumers_saw(&[], &[]),
        &Backlog::default(),
    );
    assert!(verdict.holds, "{verdict:?}");
    assert_eq!(verdict.checked, 2);
}

fn consumers_saw(jobs: &[u64], events: &[&str]) -> ConsumerSeen {
    ConsumerSeen {
        herder_jobs: Ok(jobs.iter().copied().collect()),
        reconciler_events: Ok(events.iter().map(|e| (*e).to_owned()).collect()),
    }
}

fn alert_delivery(id: &str, events: &[&str]) -> Delivery {
    Delivery {
        flow: Flow::Alert,
        ..delivery(id, Some(200), events)
    }
}

#[test]
fn webhooks_delivered_holds_when_the_consumers_saw_every_accepted_event() {
    let deliveries = [
        delivery("key-1", Some(200), &["e1"]),
        delivery("key-2", Some(200), &["e2"]),
        alert_delivery("ChaosAlert00:firing", &["a1"]),
        // Repeats of one firing carry the same event id.
        alert_delivery("ChaosAlert00:firing", &["a1"]),
    ];
    let seen: HashSet<String> = ["e1", "e2", "a1"].map(String::from).into();
    // Job 2 succeeded: the herder records no decision for a success.
    let jobs = [
        job(1, JobKind::Genuine, true),
        job(2, JobKind::Success, true),
    ];
    let verdict = webhooks_delivered(
        &deliveries,
        &seen,
        &jobs,
        &consumers_saw(&[1], &["a1"]),
        &Backlog::default(),
    );
    assert!(verdict.holds, "{verdict:?}");
}

#[test]
fn webhooks_delivered_names_events_a_consumer_never_saw() {
    let deliveries = [
        delivery("key-1", Some(200), &["e1"]),
        delivery("key-3", Some(202), &["e3"]),
        alert_delivery("ChaosAlert01:firing", &["a1"]),
    ];
    // Everything reached the exchange: the probe alone would say all is well.
    let seen: HashSet<String> = ["e1", "e3", "a1"].map(String::from).into();
    let jobs = [
        job(1, JobKind::Transient, true),
        job(3, JobKind::AtLimit, true),
    ];
    let verdict = webhooks_delivered(
        &deliveries,
        &seen,
        &jobs,
        &consumers_saw(&[1], &[]),
        &Backlog::default(),
    );
    assert!(!verdict.holds);
    let text = verdict.violations.join("\n");
    assert_eq!(verdict.violations.len(), 2, "{text}");
    for expected in [
        "job 3 (AtLimit, key key-3, event e3)",
        "never reached pipeline-herder",
        "alert event a1 (ChaosAlert01:firing",
        "never reached alert-reconciler",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }
    // A consumer whose record cannot be read fails the invariant too.
    let unreadable = ConsumerSeen {
        herder_jobs: Err("connection refused".into()),
        reconciler_events: Ok(HashSet::from(["a1".to_owned()])),
    };
    let verdict = webhooks_delivered(&deliveries, &seen, &jobs, &unreadable, &Backlog::default());
    assert!(
        verdict.violations[0].contains("ledger unreadable"),
        "{verdict:?}"
    );
}

#[test]
fn webhooks_delivered_names_the_lost_event() {
    let deliveries = [
        delivery("k1", Some(200), &["e1"]),
        delivery("k2", Some(202), &["e2"]),
    ];
    let seen: HashSet<String> = ["e1"].map(String::from).into();
    let verdict = webhooks_delivered(
        &deliveries,
        &seen,
        &[],
        &consumers_saw(&[], &[]),
        &Backlog::default(),
    );
    assert!(!verdict.holds);
    assert_eq!(verdict.violations.len(), 1);
    assert!(
        verdict.violations[0].contains("e2"),
        "{:?}",
        verdict.violations
    );
    assert!(
        verdict.violations[0].contains("k2"),
        "{:?}",
        verdict.violations
    );
}

fn job(id: u64, kind: JobKind, answered: bool) -> JobPlan {
    JobPlan {
        job_id: id,
        kind,
        key: format!("key-{id}"),
        sent_at: 0.0,
        answered,
        retries: if kind == JobKind::AtLimit { 3 } else { 0 },
        chain: id,
        previous: None,
        fails_again: false,
    }
}

/// Attempt `retries + 1` of chain `chain`, created by the retry of `previous`.
fn attempt(id: u64, chain: u64, retries: u32, previous: Option<u64>) -> JobPlan {
    JobPlan {
        kind: if retries >= 3 {
            JobKind::AtLimit
        } else {
            JobKind::Transient
        },
        retries,
        chain,
        previous,
        fails_again: true,
        ..job(id, JobKind::Transient, true)
    }
}

#[test]
fn jobs_retried_once_holds_for_a_chain_retried_once_per_attempt_up_to_its_limit() {
    // Chain 7: hooked with 1 retry before, fails again twice; the attempt at 3 is the last.
    let jobs = [
        attempt(7, 7, 1, None),
        attempt(1_000_001, 7, 2, Some(7)),
        attempt(1_000_002, 7, 3, Some(1_000_001)),
    ];
    let retries = HashMap::from([(7, 1), (1_000_001, 1)]);
    let verdict = jobs_retried_once(&jobs, &retries, &Backlog::default());
    assert!(verdict.holds, "{verdict:?}");
    assert!(verdict.notes[0].contains("1 chains"), "{:?}", verdict.notes);
}

#[test]
fn jobs_retried_once_names_a_chain_retried_beyond_its_limit_or_not_followed() {
    let jobs = [
        attempt(7, 7, 2, None),
        attempt(1_000_001, 7, 3, Some(7)),
        // Chain 8: retried, but its next attempt was never hooked.
        attempt(8, 8, 0, None),
        // Chain 9: its second attempt was hooked but never retried.
        attempt(9, 9, 0, None),
        attempt(1_000_003, 9, 1, Some(9)),
    ];
    let retries = HashMap::from([(7, 1), (1_000_001, 1), (8, 1), (9, 1)]);
    let verdict = jobs_retried_once(&jobs, &retries, &Backlog::default());
    assert!(!verdict.holds);
    let text = verdict.violations.join("\n");
    assert_eq!(verdict.violations.len(), 2, "{text}");
    // A chain the suite has not followed yet is the suite's work still going, not a loss.
    assert_eq!(
        verdict.pending,
        [
            "job 8 (attempt 1 of chain 8, 0 retries before) was retried but its next attempt was not hooked yet (the chain is still going)"
        ]
    );
    for expected in [
        "job 1000001 (AtLimit, attempt 4 of chain 7, 3 retries before",
        "retried 1 time(s), expected 0",
        "job 1000003 (Transient, attempt 2 of chain 9",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }
}

#[test]
fn jobs_retried_once_holds_for_one_retry_per_transient_job_and_none_otherwise() {
    let jobs = [
        job(1, JobKind::Transient, true),
        job(2, JobKind::Genuine, true),
        job(3, JobKind::Success, true),
        job(4, JobKind::AtLimit, true),
        job(5, JobKind::Superseded, true),
        // Its hook never got a 2xx: a retry may or may not have happened.
        job(6, JobKind::Transient, false),
    ];
    let retries = HashMap::from([(1, 1)]);
    let verdict = jobs_retried_once(&jobs, &retries, &Backlog::default());
    assert!(verdict.holds, "{verdict:?}");
    let retries = HashMap::from([(1, 1), (6, 1)]);
    assert!(jobs_retried_once(&jobs, &retries, &Backlog::default()).holds);
}

#[test]
fn jobs_retried_once_names_missing_double_and_forbidden_retries() {
    let jobs = [
        job(1, JobKind::Transient, true),
        job(2, JobKind::Transient, true),
        job(3, JobKind::Genuine, true),
        job(4, JobKind::Superseded, true),
    ];
    // 1 never retried (lost), 2 twice (duplicate), 3 and 4 must not be; 99 is not ours.
    let retries = HashMap::from([(2, 2), (3, 1), (4, 1), (99, 1)]);
    let verdict = jobs_retried_once(&jobs, &retries, &Backlog::default());
    assert!(!verdict.holds);
    let text = verdict.violations.join("\n");
    assert_eq!(verdict.violations.len(), 5, "{text}");
    for expected in [
        "job 1 (Transient",
        "job 2 (Transient",
        "retried 2 time(s)",
        "job 3 (Genuine",
        "job 4 (Superseded",
        "job 99 retried",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }
}

fn analysis(incident: &str, group: usize, sections: &[(&str, &str, &str)]) -> String {
    let mut text = format!(
        "**Incident: {}** (warning) — [Alertmanager](http://am)\nGroup `{{}}:{{alertname=\"{}\"}}` · incident `{incident}`\n\n",
        recipe::alert_name(group),
        recipe::alert_name(group)
    );
    for (name, status, body) in sections {
        text.push_str(&format!("**{name}** — {status}\n{body}\n\n"));
    }
    text.push_str("**Suggested actions:** `chaos-action`");
    text
}

const INCIDENT_0: &str = "00000000-0000-0000-0000-000000000000";
const INCIDENT_1: &str = "11111111-1111-1111-1111-111111111111";

fn firing(group: usize) -> AlertSent {
    AlertSent {
        group,
        firing: true,
        sent_at: 0.0,
        answered: true,
    }
}

fn incident(id: &str, group: usize) -> IncidentObs {
    IncidentObs {
        id: id.into(),
        group: Some(group),
        state: "awaiting_approval".into(),
        resolved_before_analysis: false,
    }
}

#[test]
fn findings_splits_the_reconcilers_markdown() {
    let text = analysis(
        INCIDENT_0,
        0,
        &[
            (
                "chaos-answer-a",
                "successful",
                "chaos-answer:chaos-answer-a: ok",
            ),
            ("chaos-hang", "timed out", "_no result within 8s_"),
        ],
    );
    let found = findings(&text);
    assert_eq!(found.len(), 2, "{found:?}");
    assert_eq!(found[0].recipe, "chaos-answer-a");
    assert_eq!(found[1].status, "timed out");
    assert!(found[1].body.contains("_no result within 8s_"));
}

#[test]
fn alerts_one_incident_holds_with_every_result_or_reason() {
    let recipes = recipe::plan(4);
    // Group 1 matches chaos-fail, group 2 chaos-hang (every fourth group from 1 and 2).
    let a = answer_marker("chaos-answer-a");
    let b = answer_marker("chaos-answer-b");
    let messages = HashMap::from([
        (
            INCIDENT_0.to_owned(),
            vec![analysis(
                INCIDENT_0,
                1,
                &[
                    ("chaos-answer-a", "successful", &a),
                    // Lost in a failover, but the report says so: holds, noted.
                    ("chaos-answer-b", "unknown", "_result lost in a failover_"),
                    ("chaos-fail", "failed", "_exited with 1_"),
                ],
            )],
        ),
        (
            INCIDENT_1.to_owned(),
            vec![analysis(
                INCIDENT_1,
                2,
                &[
                    ("chaos-answer-a", "successful", &a),
                    ("chaos-answer-b", "successful", &b),
                    ("chaos-hang", "timed out", ""),
                ],
            )],
        ),
    ]);
    let verdict = alerts_one_incident(
        &[firing(1), firing(2)],
        &[incident(INCIDENT_0, 1), incident(INCIDENT_1, 2)],
        &messages,
        &recipes,
    );
    assert!(verdict.holds, "{verdict:?}");
    assert_eq!(verdict.notes.len(), 1, "{:?}", verdict.notes);
    assert!(verdict.notes[0].contains("chaos-answer-b"));
}

#[test]
fn alerts_one_incident_names_empty_analyses_missing_reports_and_split_groups() {
    let recipes = recipe::plan(4);
    let a = answer_marker("chaos-answer-a");
    let messages = HashMap::from([(
        INCIDENT_0.to_owned(),
        vec![analysis(
            INCIDENT_0,
            0,
            &[
                ("chaos-answer-a", "successful", &a),
                // The bug of issue 14: an answering recipe, empty, and no reason.
                ("chaos-answer-b", "successful", ""),
            ],
        )],
    )]);
    let other = "22222222-2222-2222-2222-222222222222";
    let verdict = alerts_one_incident(
        &[firing(0), firing(3)],
        &[
            incident(INCIDENT_0, 0),
            // Group 3 split in two incidents, neither analysed.
            incident(INCIDENT_1, 3),
            incident(other, 3),
        ],
        &messages,
        &recipes,
    );
    assert!(!verdict.holds);
    let text = verdict.violations.join("\n");
    for expected in [
        format!("incident {INCIDENT_0} (ChaosAlert00): recipe chaos-answer-b"),
        "group ChaosAlert03 has 2 incidents".to_owned(),
        format!("incident {INCIDENT_1} (ChaosAlert03): no analysis in chat"),
        format!("incident {other} (ChaosAlert03): no analysis in chat"),
    ] {
        assert!(text.contains(&expected), "missing {expected:?} in:\n{text}");
    }
}

#[test]
fn alerts_one_incident_expects_no_analysis_of_an_incident_resolved_while_investigating() {
    let quick = IncidentObs {
        state: "resolved".into(),
        resolved_before_analysis: true,
        ..incident(INCIDENT_0, 0)
    };
    let verdict = alerts_one_incident(&[firing(0)], &[quick], &HashMap::new(), &recipe::plan(4));
    assert!(verdict.holds, "{verdict:?}");
    assert!(verdict.notes[0].contains("resolved before its analysis was ready"));
    // Resolved after it was analysed: the analysis must be there.
    let late = IncidentObs {
        state: "resolved".into(),
        ..incident(INCIDENT_0, 0)
    };
    let verdict = alerts_one_incident(&[firing(0)], &[late], &HashMap::new(), &recipe::plan(4));
    assert!(!verdict.holds);
    assert!(verdict.violations[0].contains("no analysis in chat"));
}

#[test]
fn alerts_one_incident_names_a_group_without_incident() {
    let verdict = alerts_one_incident(&[firing(5)], &[], &HashMap::new(), &recipe::plan(8));
    assert!(!verdict.holds);
    assert!(verdict.violations[0].contains("ChaosAlert05 has 0 incidents"));
}

fn poison(id: &str, queue: &str) -> Poison {
    Poison {
        id: id.into(),
        queue: queue.into(),
        what: "not a CloudEvent",
        at: 1.0,
    }
}

fn parked(queue: &str, id: Option<&str>, reason: Option<&str>) -> ParkedMessage {
    ParkedMessage {
        queue: queue.into(),
        message_id: id.map(str::to_owned),
        reason: reason.map(str::to_owned),
        error: Some("expected value at line 1 column 1".into()),
    }
}

#[test]
fn quiet_state_holds_when_only_the_injected_poison_is_parked() {
    let injected = [poison("p-0", "ns.pipeline-herder.jobs")];
    let state = Parked {
        messages: vec![parked(
            "ns.pipeline-herder.jobs.parked",
            Some("p-0"),
            Some("undecodable"),
        )],
        depths: vec![
            ("ns.pipeline-herder.jobs.parked".to_owned(), 1),
            ("ns.alert-reconciler.alerts.parked".to_owned(), 0),
        ],
    };
    let verdict = quiet_state(&state, &injected, 0, &[], &[]);
    assert!(verdict.holds, "{verdict:?}");
    assert!(
        verdict.notes[0].contains("poison p-0") && verdict.notes[0].contains("undecodable"),
        "{:?}",
        verdict.notes
    );
    assert!(quiet_state(&Parked::default(), &[], 0, &[], &[]).holds);
}

#[test]
fn quiet_state_names_unexpected_and_missing_poison_spool_and_unready_services() {
    let injected = [
        poison("p-0", "ns.pipeline-herder.jobs"),
        poison("p-1", "ns.alert-reconciler.alerts"),
        poison("p-2", "ns-clusters-steadfast-adapter"),
    ];
    let state = Parked {
        messages: vec![
            parked(
                "ns.pipeline-herder.jobs.parked",
                Some("p-0"),
                Some("undecodable"),
            ),
            // Not injected: a real message the consumer gave up on.
            parked(
                "ns.pipeline-herder.jobs.parked",
                Some("e-42"),
                Some("retries exhausted"),
            ),
            // Injected into the reconciler's queue, parked without a reason.
            parked("ns.alert-reconciler.alerts.parked", Some("p-1"), None),
        ],
        depths: vec![
            ("ns.pipeline-herder.jobs.parked".to_owned(), 3),
            ("ns.alert-reconciler.alerts.parked".to_owned(), 1),
        ],
    };
    let verdict = quiet_state(
        &state,
        &injected,
        7,
        &["sentinel: http://127.0.0.1:1/readyz answered 503".to_owned()],
        &["adapter (pid 42) exited: signal 6".to_owned()],
    );
    assert!(!verdict.holds);
    let text = verdict.violations.join("\n");
    assert_eq!(verdict.violations.len(), 7, "{text}");
    for expected in [
        "ns.pipeline-herder.jobs.parked holds 3 parked message(s), 1 of them not examined",
        "unexpected parked message e-42: retries exhausted",
        "poison p-1 parked in ns.alert-reconciler.alerts.parked without a reason",
        "poison p-2 (not a CloudEvent) injected into ns-clusters-steadfast-adapter at 1.0s was not parked",
        "spool holds 7",
        "not ready: sentinel",
        "exited on its own: adapter (pid 42)",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }
}

fn cluster(
    name: &str,
    id: &str,
    changes: &[(ChangeKind, Option<u16>, Option<i64>)],
) -> ClusterPlan {
    ClusterPlan {
        name: name.into(),
        id: Some(id.into()),
        changes: changes
            .iter()
            .enumerate()
            .map(|(i, (kind, status, generation))| Change {
                kind: *kind,
                at: i as f64,
                status: *status,
                generation: *generation,
            })
            .collect(),
    }
}

fn listed(
    name: &str,
    id: &str,
    generation: i64,
    deleting: bool,
    reconciled: (&str, i64),
) -> ClusterObs {
    ClusterObs {
        id: id.into(),
        name: name.into(),
        generation,
        deleting,
        reconciled: Some((reconciled.0.into(), reconciled.1)),
    }
}

#[test]
fn fleet_reconciled_holds_for_reconciled_live_clusters_and_deleted_ones_gone() {
    use ChangeKind::{Create, Delete, Update};
    let plans = [
        cluster(
            "c0",
            "id-0",
            &[(Create, Some(201), Some(1)), (Update, Some(200), Some(2))],
        ),
        cluster(
            "c1",
            "id-1",
            &[(Create, Some(201), Some(1)), (Delete, Some(202), Some(2))],
        ),
        // Its deletion got no answer and it is gone: fine either way.
        cluster(
            "c2",
            "id-2",
            &[(Create, Some(201), Some(1)), (Delete, None, None)],
        ),
    ];
    let clusters = [listed("c0", "id-0", 2, false, ("True", 2))];
    let verdict = fleet_reconciled(&plans, &clusters, &Backlog::default());
    assert!(verdict.holds, "{verdict:?}");
    assert_eq!(verdict.checked, 3);
}

#[test]
fn fleet_reconciled_names_unreconciled_stale_lingering_and_unknown_clusters() {
    use ChangeKind::{Create, Delete, Update};
    let plans = [
        // Reconciled, but at the generation before the last update.
        cluster(
            "c0",
            "id-0",
            &[(Create, Some(201), Some(1)), (Update, Some(200), Some(2))],
        ),
        // Deleted, still there.
        cluster(
            "c1",
            "id-1",
            &[(Create, Some(201), Some(1)), (Delete, Some(202), Some(2))],
        ),
        // Lost a generation fleet-api acknowledged.
        cluster(
            "c2",
            "id-2",
            &[(Create, Some(201), Some(1)), (Update, Some(200), Some(2))],
        ),
        // Gone without being deleted.
        cluster("c3", "id-3", &[(Create, Some(201), Some(1))]),
    ];
    let clusters = [
        listed("c0", "id-0", 2, false, ("False", 2)),
        listed("c1", "id-1", 2, true, ("False", 2)),
        listed("c2", "id-2", 1, false, ("True", 1)),
        listed("c9", "id-9", 1, false, ("True", 1)),
    ];
    let verdict = fleet_reconciled(&plans, &clusters, &Backlog::default());
    assert!(!verdict.holds);
    let text = verdict.violations.join("\n");
    assert_eq!(verdict.violations.len(), 5, "{text}");
    for expected in [
        "cluster id-0 (c0) generation 2: Reconciled=False at generation 2",
        "cluster id-1 (c1) deleted at 1.0s is still there",
        "cluster id-2 (c2) is at generation 1 but fleet-api acknowledged generation 2",
        "cluster id-3 (c3) is gone though the run never deleted it",
        "cluster id-9 (c9) is not one the run created",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }
}

/// Queues (name, depth), every one consumed.
fn backlog(queues: &[(&str, u64)]) -> Backlog {
    Backlog::of(
        queues.iter().map(|(q, n)| ((*q).to_owned(), *n, 1)),
        "ns.chaos.probe",
    )
}

#[test]
fn the_backlog_counts_work_queues_only() {
    let queued = backlog(&[
        ("ns.pipeline-herder.jobs", 3),
        ("ns.pipeline-herder.jobs.delayed.5s", 2),
        ("ns.pipeline-herder.jobs.parked", 7),
        ("ns.chaos.probe", 100),
        ("ns.alert-reconciler.events", 0),
        ("ns-clusters-steadfast-adapter", 4),
    ]);
    assert_eq!(queued.total(), 9);
    assert_eq!(queued.probe_unread, 100);
    assert_eq!(queued.of_consumer("pipeline-herder"), 5);
    assert_eq!(queued.of_consumer("alert-reconciler"), 0);
    assert_eq!(
        queued.describe("pipeline-herder"),
        "ns.pipeline-herder.jobs 3, ns.pipeline-herder.jobs.delayed.5s 2"
    );
}

#[test]
fn a_queue_nobody_consumes_is_stuck_not_a_backlog() {
    // The adapter stopped: its queue, and the retry tier leading into it, have no consumer.
    let queues = [
        ("ns-clusters-steadfast-adapter", 40, 0),
        ("ns-clusters-steadfast-adapter.retry.5s", 2, 0),
        ("ns.pipeline-herder.retries", 1, 1),
        ("ns.pipeline-herder.retries.delayed.1s", 3, 0),
    ];
    let queued = Backlog::of(
        queues.map(|(q, n, c)| (q.to_owned(), n, c)),
        "ns.chaos.probe",
    );
    assert_eq!(queued.of_consumer("steadfast-adapter"), 0);
    assert_eq!(
        queued.unconsumed.keys().collect::<Vec<_>>(),
        [
            "ns-clusters-steadfast-adapter",
            "ns-clusters-steadfast-adapter.retry.5s"
        ]
    );
    // A delay queue leads into a consumed queue: on its way.
    assert_eq!(queued.of_consumer("pipeline-herder"), 4);
}

#[test]
fn what_a_consumer_has_not_seen_while_its_queue_holds_messages_is_still_queued_not_lost() {
    let deliveries = [
        delivery("key-1", Some(200), &["e1"]),
        alert_delivery("ChaosAlert01:firing", &["a1"]),
    ];
    let seen: HashSet<String> = ["e1", "a1"].map(String::from).into();
    let jobs = [job(1, JobKind::Transient, true)];
    let nobody = consumers_saw(&[], &[]);
    let busy = backlog(&[("ns.pipeline-herder.jobs", 40)]);
    let verdict = webhooks_delivered(&deliveries, &seen, &jobs, &nobody, &busy);
    // Still failing (the stack has not caught up), but the job is queued, not lost; the alert
    // event is lost: the reconciler's queues are empty.
    assert!(!verdict.holds);
    assert_eq!(verdict.pending.len(), 1, "{verdict:?}");
    assert!(verdict.pending[0].contains("job 1"), "{verdict:?}");
    assert!(
        verdict.pending[0].contains("ns.pipeline-herder.jobs 40"),
        "{verdict:?}"
    );
    assert_eq!(verdict.violations.len(), 1, "{verdict:?}");
    assert!(verdict.violations[0].contains("never reached alert-reconciler"));
    // The job not retried yet is pending too; without a backlog it is a violation.
    let retries = HashMap::new();
    let verdict = jobs_retried_once(&jobs, &retries, &busy);
    assert!(!verdict.holds);
    assert!(verdict.violations.is_empty(), "{verdict:?}");
    assert!(
        verdict.pending[0].contains("not retried yet"),
        "{verdict:?}"
    );
    let verdict = jobs_retried_once(&jobs, &retries, &Backlog::default());
    assert!(verdict.pending.is_empty());
    assert!(
        verdict.violations[0].contains("retried 0 time(s)"),
        "{verdict:?}"
    );
}

#[test]
fn an_event_the_probe_has_not_read_yet_is_not_lost() {
    let deliveries = [delivery("k1", Some(200), &["e1"])];
    let nothing_seen = HashSet::new();
    let unread = backlog(&[("ns.chaos.probe", 3)]);
    let verdict = webhooks_delivered(
        &deliveries,
        &nothing_seen,
        &[],
        &consumers_saw(&[], &[]),
        &unread,
    );
    assert!(!verdict.holds);
    assert!(verdict.violations.is_empty(), "{verdict:?}");
    assert_eq!(
        verdict.pending,
        [
            "event e1 (gitlab k1, answered 200 by replica 1 at 1.0s) not seen yet; the probe queue still holds 3 unread"
        ]
    );
    let verdict = webhooks_delivered(
        &deliveries,
        &nothing_seen,
        &[],
        &consumers_saw(&[], &[]),
        &Backlog::default(),
    );
    assert_eq!(
        verdict.violations,
        ["event e1 (gitlab k1, answered 200 by replica 1 at 1.0s) never reached the exchange"]
    );
}

#[test]
fn a_cluster_not_reconciled_while_the_adapter_has_work_queued_is_pending() {
    use ChangeKind::{Create, Update};
    let plans = [cluster(
        "c0",
        "id-0",
        &[(Create, Some(201), Some(1)), (Update, Some(200), Some(2))],
    )];
    let clusters = [listed("c0", "id-0", 2, false, ("False", 1))];
    let busy = backlog(&[("ns-clusters-steadfast-adapter", 12)]);
    let verdict = fleet_reconciled(&plans, &clusters, &busy);
    assert!(!verdict.holds);
    assert!(verdict.violations.is_empty(), "{verdict:?}");
    assert_eq!(
        verdict.pending,
        [
            "cluster id-0 (c0) generation 2: Reconciled=False at generation 1 (steadfast-adapter's queues still hold ns-clusters-steadfast-adapter 12)"
        ]
    );
    // Nothing queued for the adapter: the same cluster is a violation.
    let verdict = fleet_reconciled(&plans, &clusters, &Backlog::default());
    assert_eq!(
        verdict.violations,
        ["cluster id-0 (c0) generation 2: Reconciled=False at generation 1"]
    );
}

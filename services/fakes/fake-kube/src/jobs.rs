//! A Job controller in miniature: a Job created through the API gets one Pod (labelled
//! `job-name` / `batch.kubernetes.io/job-name`, owned by the Job) and `status.active = 1`.
//! Tests then decide the outcome with `FakeKube::complete_job` / `FakeKube::fail_job` (or the
//! fake completes Jobs by itself after a delay), which set the Pod's phase and the Job's
//! `Complete` / `Failed` condition the way the real controller does.

use serde_json::{Value, json};

use super::store::{ApiError, Store, now};

/// How a Job ends.
#[derive(Debug, Clone)]
pub enum JobOutcome {
    Succeeded,
    Failed { reason: String, message: String },
}

/// Starts the Job's Pod and marks the Job active.
pub fn start(store: &mut Store, job: &Value) -> Result<(), ApiError> {
    let (Some(namespace), Some(name), Some(uid)) = (
        job.pointer("/metadata/namespace").and_then(Value::as_str),
        job.pointer("/metadata/name").and_then(Value::as_str),
        job.pointer("/metadata/uid").and_then(Value::as_str),
    ) else {
        return Ok(());
    };
    let pods = store.kind("", "v1", "pods").expect("builtin").clone();
    let jobs = store.kind("batch", "v1", "jobs").expect("builtin").clone();
    let template = job.pointer("/spec/template").cloned().unwrap_or(json!({}));
    let mut labels = template
        .pointer("/metadata/labels")
        .cloned()
        .unwrap_or(json!({}));
    for key in ["job-name", "batch.kubernetes.io/job-name"] {
        labels[key] = name.into();
    }
    for key in ["controller-uid", "batch.kubernetes.io/controller-uid"] {
        labels[key] = uid.into();
    }
    let pod = json!({
        "metadata": {
            "generateName": format!("{name}-"),
            "labels": labels,
            "ownerReferences": [{
                "apiVersion": "batch/v1", "kind": "Job", "name": name, "uid": uid,
                "controller": true, "blockOwnerDeletion": true,
            }],
        },
        "spec": template.get("spec").cloned().unwrap_or(json!({})),
    });
    let pod = store.create(&pods, Some(namespace), pod, false)?;
    let pod_name = pod["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let started = now();
    store.modify(&pods, Some(namespace), &pod_name, true, false, |p| {
        p["status"] = json!({"phase": "Running", "startTime": started});
        Ok(())
    })?;
    store.modify(&jobs, Some(namespace), name, true, false, |j| {
        j["status"] = json!({"active": 1, "startTime": started, "ready": 1});
        Ok(())
    })?;
    Ok(())
}

/// Ends the Job: the Pod's phase and the Job's condition and counters. `Err` (404) when the
/// Job does not exist.
pub fn finish(
    store: &mut Store,
    namespace: &str,
    name: &str,
    outcome: &JobOutcome,
) -> Result<(), ApiError> {
    let pods = store.kind("", "v1", "pods").expect("builtin").clone();
    let jobs = store.kind("batch", "v1", "jobs").expect("builtin").clone();
    let job = store.get(&jobs, Some(namespace), name)?;
    let finished = now();
    let (phase, exit_code) = match outcome {
        JobOutcome::Succeeded => ("Succeeded", 0),
        JobOutcome::Failed { .. } => ("Failed", 1),
    };
    let selector =
        super::selector::LabelSelector::parse(&format!("batch.kubernetes.io/job-name={name}"))
            .expect("valid selector");
    let owned = store.list(&pods, Some(namespace), &selector, &Default::default());
    for pod in owned.items {
        let pod_name = pod["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let started = pod.pointer("/status/startTime").cloned();
        let reason = if exit_code == 0 { "Completed" } else { "Error" };
        store.modify(&pods, Some(namespace), &pod_name, true, false, |p| {
            p["status"] = json!({
                "phase": phase,
                "startTime": started,
                "containerStatuses": [{
                    "name": p.pointer("/spec/containers/0/name").cloned().unwrap_or("main".into()),
                    "ready": false, "restartCount": 0,
                    "state": {"terminated": {"exitCode": exit_code, "reason": reason, "finishedAt": finished}},
                }],
            });
            Ok(())
        })?;
    }
    let started = job
        .pointer("/status/startTime")
        .cloned()
        .unwrap_or_else(|| finished.clone().into());
    let status = match outcome {
        JobOutcome::Succeeded => json!({
            "startTime": started,
            "completionTime": finished,
            "succeeded": 1,
            "ready": 0,
            "conditions": [
                {"type": "SuccessCriteriaMet", "status": "True", "reason": "CompletionsReached",
                 "message": "Reached expected number of succeeded pods",
                 "lastProbeTime": finished, "lastTransitionTime": finished},
                {"type": "Complete", "status": "True", "reason": "CompletionsReached",
                 "message": "Reached expected number of succeeded pods",
                 "lastProbeTime": finished, "lastTransitionTime": finished},
            ],
        }),
        JobOutcome::Failed { reason, message } => json!({
            "startTime": started,
            "failed": 1,
            "ready": 0,
            "conditions": [
                {"type": "FailureTarget", "status": "True", "reason": reason, "message": message,
                 "lastProbeTime": finished, "lastTransitionTime": finished},
                {"type": "Failed", "status": "True", "reason": reason, "message": message,
                 "lastProbeTime": finished, "lastTransitionTime": finished},
            ],
        }),
    };
    store.modify(&jobs, Some(namespace), name, true, false, |j| {
        j["status"] = status;
        Ok(())
    })?;
    Ok(())
}

//! The record of one dry run: what the pipeline did, the API calls the mock answered and the
//! operations the in-memory cluster saw; and its JSON form (`--dry-run-output json`).

use serde_json::{Value, json};

use crate::hyperfleet_api::RecordedCall;
use crate::pipeline::{ExecutionResult, Verdict};
use crate::transport::memory::Recorded;

/// A finished dry run.
pub struct Trace {
    pub event_id: String,
    pub event_type: String,
    pub result: ExecutionResult,
    pub calls: Vec<RecordedCall>,
    pub operations: Vec<Recorded>,
    pub verbose: bool,
}

impl Trace {
    /// 0 when the execution succeeded or was skipped by a precondition, 1 when it failed.
    pub fn exit_code(&self) -> u8 {
        u8::from(self.result.verdict == Verdict::Failed)
    }

    /// The trace as one JSON document.
    pub fn json(&self) -> Value {
        let r = &self.result;
        let resources: Vec<Value> = r
            .resources
            .iter()
            .map(|res| {
                let mut v = serde_json::to_value(res).expect("serializable");
                if let Some(manifest) = &res.manifest {
                    v["manifest"] = manifest.clone();
                }
                v
            })
            .collect();
        let mut errors = serde_json::Map::new();
        if let Some(f) = &r.failure {
            errors.insert(f.phase.as_str().into(), json!(f.message()));
        }
        let calls: Vec<Value> = self
            .calls
            .iter()
            .map(|c| {
                let mut v = json!({"method": c.method, "url": c.url, "statusCode": c.status});
                if self.verbose {
                    v["requestBody"] = json!(c.request);
                    v["responseBody"] = json!(c.response);
                }
                v
            })
            .collect();
        json!({
            "event": {"id": self.event_id, "type": self.event_type},
            "status": if r.verdict == Verdict::Failed { "failed" } else { "success" },
            "verdict": r.verdict,
            "params": r.params,
            "preconditions": r.preconditions,
            "resourcesSkipped": r.resources_skipped,
            "skipReason": r.skip_reason,
            "resources": resources,
            "discoveredResources": r.discovered,
            "payloads": r.payloads,
            "postActions": r.post_actions,
            "errors": errors,
            "apiRequests": calls,
            "transportOperations": self.operations,
        })
    }
}

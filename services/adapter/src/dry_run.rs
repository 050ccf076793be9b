//! Dry-run: one event through the real pipeline with a recorded API and an in-memory cluster,
//! printing each phase, every rendered manifest and the status payload. Touches no broker, API
//! or cluster. File formats are HyperFleet's:
//!
//! * the event: a full CloudEvent (JSON);
//! * `--dry-run-api-responses`: `{"responses": [{"match": {"method": "GET", "urlPattern":
//!   "<regex>"}, "responses": [{"statusCode": 200, "headers": {...}, "body": {...}}, ...]}]}` —
//!   an endpoint's responses are served in order, the last one repeating; a call nothing
//!   matches gets 200 with `{}`;
//! * `--dry-run-discovery`: `{"<rendered metadata.name>": {<full object>}}` — what the cluster
//!   reports for an applied object (status, uid, ...).

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use steadfast_events::Envelope;

use crate::config::Loaded;
use crate::hyperfleet_api::ApiClient;
use crate::pipeline::{ExecutionResult, Executor, RunOptions, StepStatus, Verdict};
use crate::transport::{MemoryCluster, Transport};

#[derive(Debug, thiserror::Error)]
pub enum DryRunError {
    #[error("cannot read {what} `{path}`: {source}")]
    Read {
        what: &'static str,
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{what} `{path}` is not valid: {reason}")]
    Invalid {
        what: &'static str,
        path: String,
        reason: String,
    },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ResponsesFile {
    responses: Vec<EndpointFile>,
}

#[derive(Debug, Deserialize)]
struct EndpointFile {
    #[serde(rename = "match")]
    matcher: MatchFile,
    responses: Vec<ResponseFile>,
}

#[derive(Debug, Deserialize)]
struct MatchFile {
    #[serde(default)]
    method: String,
    #[serde(rename = "urlPattern")]
    url_pattern: String,
}

#[derive(Debug, Clone, Deserialize)]
struct ResponseFile {
    #[serde(rename = "statusCode")]
    status: u16,
    #[serde(default)]
    #[allow(dead_code)]
    headers: BTreeMap<String, String>,
    #[serde(default)]
    body: Value,
}

struct Endpoint {
    method: String,
    pattern: regex::Regex,
    responses: Vec<ResponseFile>,
    served: AtomicUsize,
}

/// One call the mock answered.
#[derive(Debug, Clone, Serialize)]
pub struct RecordedCall {
    pub method: String,
    pub url: String,
    #[serde(rename = "statusCode")]
    pub status: u16,
    #[serde(rename = "requestBody", skip_serializing_if = "Option::is_none")]
    pub request: Option<String>,
    #[serde(rename = "responseBody")]
    pub response: String,
}

/// The recorded HyperFleet API.
#[derive(Default)]
pub struct MockApi {
    endpoints: Vec<Endpoint>,
    calls: Mutex<Vec<RecordedCall>>,
}

impl MockApi {
    /// Reads a responses file; every endpoint needs a pattern that compiles and a response.
    pub fn from_file(path: &Path) -> Result<Self, DryRunError> {
        let what = "dry-run API responses file";
        let text = read(what, path)?;
        let invalid = |reason: String| DryRunError::Invalid {
            what,
            path: path.display().to_string(),
            reason,
        };
        let file: ResponsesFile =
            serde_json::from_str(&text).map_err(|e| invalid(e.to_string()))?;
        let mut endpoints = Vec::new();
        for (i, endpoint) in file.responses.into_iter().enumerate() {
            if endpoint.responses.is_empty() {
                return Err(invalid(format!("endpoint {i} has no responses defined")));
            }
            if endpoint.matcher.url_pattern.is_empty() {
                return Err(invalid(format!("endpoint {i} has an empty urlPattern")));
            }
            let pattern = regex::Regex::new(&endpoint.matcher.url_pattern).map_err(|e| {
                invalid(format!(
                    "endpoint {i}: urlPattern is not a valid regex: {e}"
                ))
            })?;
            endpoints.push(Endpoint {
                method: endpoint.matcher.method.to_ascii_uppercase(),
                pattern,
                responses: endpoint.responses,
                served: AtomicUsize::new(0),
            });
        }
        Ok(Self {
            endpoints,
            calls: Mutex::new(Vec::new()),
        })
    }

    /// The next response for this call (and a record of it).
    pub fn answer(&self, method: &str, url: &str, body: Option<&str>) -> (u16, String) {
        let endpoint = self.endpoints.iter().find(|e| {
            (e.method.is_empty() || e.method == "*" || e.method == method)
                && e.pattern.is_match(url)
        });
        let (status, response) = match endpoint {
            Some(e) => {
                let n = e
                    .served
                    .fetch_add(1, Ordering::SeqCst)
                    .min(e.responses.len() - 1);
                let r = &e.responses[n];
                let text = match &r.body {
                    Value::Null => String::new(),
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                (r.status, text)
            }
            None => (200, "{}".to_owned()),
        };
        self.calls
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(RecordedCall {
                method: method.into(),
                url: url.into(),
                status,
                request: body.map(str::to_owned),
                response: response.clone(),
            });
        (status, response)
    }

    pub fn calls(&self) -> Vec<RecordedCall> {
        self.calls
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

fn read(what: &'static str, path: &Path) -> Result<String, DryRunError> {
    std::fs::read_to_string(path).map_err(|source| DryRunError::Read {
        what,
        path: path.display().to_string(),
        source,
    })
}

/// Reads the discovery overrides; each needs `apiVersion` and `kind`.
pub fn load_discovery(path: &Path) -> Result<HashMap<String, Value>, DryRunError> {
    let what = "dry-run discovery file";
    let invalid = |reason: String| DryRunError::Invalid {
        what,
        path: path.display().to_string(),
        reason,
    };
    let overrides: HashMap<String, Value> =
        serde_json::from_str(&read(what, path)?).map_err(|e| invalid(e.to_string()))?;
    for (name, object) in &overrides {
        for field in ["apiVersion", "kind"] {
            if object.get(field).is_none() {
                return Err(invalid(format!(
                    "discovery override \"{name}\" is missing required field \"{field}\""
                )));
            }
        }
    }
    Ok(overrides)
}

/// Reads the event: a CloudEvent, validated as our consumers validate them.
pub fn load_event(path: &Path) -> Result<Envelope<Value>, DryRunError> {
    let what = "dry-run event";
    let text = read(what, path)?;
    Envelope::<Value>::from_json(text.as_bytes(), steadfast_events::DEFAULT_MAX_EVENT_BYTES)
        .map_err(|e| DryRunError::Invalid {
            what,
            path: path.display().to_string(),
            reason: e.to_string(),
        })
}

/// What to print.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Output {
    #[default]
    Text,
    Json,
}

/// A finished dry run.
pub struct Trace {
    pub event_id: String,
    pub event_type: String,
    pub result: ExecutionResult,
    pub calls: Vec<RecordedCall>,
    pub operations: Vec<crate::transport::memory::Recorded>,
    pub verbose: bool,
}

impl Trace {
    /// 0 when the execution succeeded or was skipped by a precondition, 1 when it failed.
    pub fn exit_code(&self) -> u8 {
        u8::from(self.result.verdict == Verdict::Failed)
    }

    pub fn render(&self, output: Output) -> String {
        match output {
            Output::Text => self.text(),
            Output::Json => {
                serde_json::to_string_pretty(&self.json()).expect("JSON values serialize") + "\n"
            }
        }
    }

    fn json(&self) -> Value {
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
            errors.insert(f.phase.as_str().into(), json!(f.message));
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

    fn text(&self) -> String {
        let r = &self.result;
        let mut out = String::new();
        let status = |failed: bool| if failed { "FAILED" } else { "SUCCESS" };
        let failed_in = |phase: crate::pipeline::Phase| r.failed_phase() == Some(phase);
        let _ = writeln!(out, "Dry-Run Execution Trace\n========================");
        let _ = writeln!(
            out,
            "Event: id={} type={}\n",
            self.event_id, self.event_type
        );

        let _ = writeln!(
            out,
            "Phase 1: Parameter Extraction .............. {}",
            status(failed_in(crate::pipeline::Phase::ParamExtraction))
        );
        for (name, value) in &r.params {
            if r.payloads.contains_key(name) {
                continue;
            }
            let _ = writeln!(out, "  {name:<16} = {}", format_value(value));
        }
        if let Some(f) = r
            .failure
            .as_ref()
            .filter(|f| f.phase == crate::pipeline::Phase::ParamExtraction)
        {
            let _ = writeln!(out, "  Error: {}", f.message);
        }

        let detail = if failed_in(crate::pipeline::Phase::Preconditions) {
            ""
        } else if r.preconditions.iter().any(|p| !p.matched) {
            " (NOT MET)"
        } else if !r.preconditions.is_empty() {
            " (MET)"
        } else {
            ""
        };
        let _ = writeln!(
            out,
            "\nPhase 2: Preconditions ..................... {}{detail}",
            status(failed_in(crate::pipeline::Phase::Preconditions))
        );
        let total = r.preconditions.len();
        for (i, p) in r.preconditions.iter().enumerate() {
            let state = match (p.status, p.matched) {
                (StepStatus::Failed, _) => "FAIL",
                (_, false) => "NOT MET",
                _ => "PASS",
            };
            let _ = writeln!(out, "  [{}/{total}] {:<30} {state}", i + 1, p.name);
            if let Some(call) = &p.api_call {
                let _ = writeln!(
                    out,
                    "    API Call: {} {} -> {}",
                    call.method, call.url, call.status
                );
            }
            for (name, value) in &p.captured {
                let _ = writeln!(out, "    Captured: {name} = {}", format_value(value));
            }
            if let Some(e) = &p.error {
                let _ = writeln!(out, "    Error: {e}");
            }
        }

        let resources_status = if failed_in(crate::pipeline::Phase::Resources) {
            "FAILED"
        } else if r.resources_skipped && r.resources.is_empty() {
            "SKIPPED"
        } else {
            "SUCCESS"
        };
        let _ = writeln!(
            out,
            "\nPhase 3: Resources ........................ {resources_status}"
        );
        if r.resources_skipped && r.resources.is_empty() {
            let _ = writeln!(
                out,
                "  Reason: {}",
                r.skip_reason.as_deref().unwrap_or_default()
            );
        }
        let total = r.resources.len();
        for (i, res) in r.resources.iter().enumerate() {
            let op = if res.status == StepStatus::Failed {
                "FAILED".to_owned()
            } else {
                res.operation.to_ascii_uppercase()
            };
            let _ = writeln!(out, "  [{}/{total}] {:<30} {op}", i + 1, res.name);
            let _ = writeln!(
                out,
                "    Kind: {:<12} Namespace: {:<12} Name: {}",
                res.kind, res.namespace, res.resource_name
            );
            if let Some(manifest) = &res.manifest {
                let _ = writeln!(
                    out,
                    "    Rendered manifest:\n{}",
                    indent(
                        &serde_json::to_string_pretty(manifest).unwrap_or_default(),
                        6
                    )
                );
            }
            if let Some(e) = &res.error {
                let _ = writeln!(out, "    Error: {e}");
            }
        }
        if !r.discovered.is_empty() {
            let _ = writeln!(
                out,
                "\nPhase 3.5: Discovery Results ................. (available as resources.* in payload)"
            );
            for (name, object) in &r.discovered {
                let _ = writeln!(out, "  {name}:");
                if self.verbose {
                    let _ = writeln!(
                        out,
                        "{}",
                        indent(&serde_json::to_string_pretty(object).unwrap_or_default(), 4)
                    );
                } else {
                    let _ = writeln!(
                        out,
                        "    {} {}",
                        object["kind"].as_str().unwrap_or_default(),
                        object
                            .pointer("/metadata/name")
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                    );
                }
            }
        }

        let _ = writeln!(
            out,
            "\nPhase 4: Post Actions ..................... {}",
            status(failed_in(crate::pipeline::Phase::PostActions))
        );
        for (name, payload) in &r.payloads {
            let _ = writeln!(
                out,
                "  Payload {name}:\n{}",
                indent(
                    &serde_json::to_string_pretty(payload).unwrap_or_default(),
                    4
                )
            );
        }
        let total = r.post_actions.len();
        for (i, a) in r.post_actions.iter().enumerate() {
            let state = if a.skipped {
                "SKIPPED"
            } else if a.status == StepStatus::Failed {
                "FAILED"
            } else {
                "EXECUTED"
            };
            let _ = writeln!(out, "  [{}/{total}] {:<30} {state}", i + 1, a.name);
            if let Some(reason) = &a.skip_reason {
                let _ = writeln!(out, "    Reason: {reason}");
            }
            if let Some(call) = &a.api_call {
                let _ = writeln!(
                    out,
                    "    API Call: {} {} -> {}",
                    call.method, call.url, call.status
                );
            }
            if self.verbose
                && let Some(body) = &a.body
            {
                let pretty = serde_json::from_str::<Value>(body).map_or_else(
                    |_| body.clone(),
                    |v| serde_json::to_string_pretty(&v).unwrap_or_default(),
                );
                let _ = writeln!(out, "    [verbose] Request body:\n{}", indent(&pretty, 6));
            }
            if let Some(e) = &a.error {
                let _ = writeln!(out, "    Error: {e}");
            }
        }
        if !self.calls.is_empty() {
            let _ = writeln!(out, "\nAPI calls:");
        }
        for call in &self.calls {
            let _ = writeln!(out, "  {} {} -> {}", call.method, call.url, call.status);
            if self.verbose && !call.response.is_empty() {
                let _ = writeln!(out, "    [verbose] Response body: {}", call.response);
            }
        }
        let _ = writeln!(
            out,
            "\nResult: {}",
            if r.verdict == Verdict::Failed {
                "FAILED"
            } else {
                "SUCCESS"
            }
        );
        if let Some(f) = &r.failure {
            let _ = writeln!(out, "  {} [{}]: {}", f.phase.as_str(), f.step, f.message);
        }
        out
    }
}

fn indent(text: &str, width: usize) -> String {
    let pad = " ".repeat(width);
    text.lines()
        .map(|l| format!("{pad}{l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn format_value(value: &Value) -> String {
    match value {
        Value::String(s) => format!("{s:?}"),
        other => other.to_string(),
    }
}

/// Inputs of one dry run.
pub struct DryRun<'a> {
    pub event: &'a Path,
    pub api_responses: Option<&'a Path>,
    pub discovery: Option<&'a Path>,
    pub verbose: bool,
}

/// Runs the event through the pipeline with mocks.
pub async fn run(
    loaded: Arc<Loaded>,
    inputs: &DryRun<'_>,
    environment: &BTreeMap<String, String>,
) -> Result<Trace, DryRunError> {
    let event = load_event(inputs.event)?;
    let mock = Arc::new(match inputs.api_responses {
        Some(path) => MockApi::from_file(path)?,
        None => MockApi::default(),
    });
    let overrides = match inputs.discovery {
        Some(path) => load_discovery(path)?,
        None => HashMap::new(),
    };
    let api = Arc::new(ApiClient::mock(
        &loaded.adapter.clients.hyperfleet_api,
        Arc::clone(&mock),
    ));
    let transport = Arc::new(Transport::Memory(MemoryCluster::new(overrides)));
    let executor = Executor::new(loaded, api, Arc::clone(&transport), environment, None);
    let result = executor
        .execute(
            &event.data,
            RunOptions {
                report_transient: true,
            },
        )
        .await;
    let operations = match transport.as_ref() {
        Transport::Memory(memory) => memory.records(),
        Transport::Kube(_) => Vec::new(),
    };
    Ok(Trace {
        event_id: event.id,
        event_type: event.event_type,
        result,
        calls: mock.calls(),
        operations,
        verbose: inputs.verbose,
    })
}

//! The trace as text (HyperFleet's dry-run layout, phase by phase) or as JSON.

use std::fmt::Write as _;

use serde_json::Value;

use super::Trace;
use crate::pipeline::{Phase, StepStatus, Verdict};

/// What to print.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Output {
    #[default]
    Text,
    Json,
}

impl Trace {
    pub fn render(&self, output: Output) -> String {
        match output {
            Output::Text => self.text(),
            Output::Json => {
                serde_json::to_string_pretty(&self.json()).expect("JSON values serialize") + "\n"
            }
        }
    }

    fn text(&self) -> String {
        let r = &self.result;
        let mut out = String::new();
        let status = |failed: bool| if failed { "FAILED" } else { "SUCCESS" };
        let failed_in = |phase: Phase| r.failed_phase() == Some(phase);
        let _ = writeln!(out, "Dry-Run Execution Trace\n========================");
        let _ = writeln!(
            out,
            "Event: id={} type={}\n",
            self.event_id, self.event_type
        );

        let _ = writeln!(
            out,
            "Phase 1: Parameter Extraction .............. {}",
            status(failed_in(Phase::ParamExtraction))
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
            .filter(|f| f.phase == Phase::ParamExtraction)
        {
            let _ = writeln!(out, "  Error: {}", f.message());
        }

        let detail = if failed_in(Phase::Preconditions) {
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
            status(failed_in(Phase::Preconditions))
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

        let resources_status = if failed_in(Phase::Resources) {
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
            status(failed_in(Phase::PostActions))
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
            let _ = writeln!(out, "  {} [{}]: {}", f.phase.as_str(), f.step, f.message());
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

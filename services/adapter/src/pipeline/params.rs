//! Phase 1: params, in order, each from its source.

use std::io::Read;

use serde_json::Value;

use super::result::Phase;
use super::values::{convert, lookup};
use super::{CallError, Run};
use crate::config::task::{Param, ParamSource};

/// File sources bigger than this are refused (HyperFleet's cap).
const MAX_FILE_SOURCE_BYTES: u64 = 1 << 20;

/// Why a param has no value.
enum Missing {
    /// Stop the phase: already recorded (API transient failure, resource gone, ...).
    Stop,
    /// No value, for this reason (a default or `required` decides what happens).
    Reason(String),
}

impl Run<'_> {
    pub(super) async fn params(&mut self) {
        let params = &self.executor.loaded.task.params;
        for param in params {
            let value = match self.extract(param).await {
                Ok(value) => value,
                Err(Missing::Stop) => return,
                Err(Missing::Reason(reason)) => {
                    if param.required {
                        let message = format!(
                            "failed to extract required parameter '{}' from source '{}': {reason}",
                            param.name,
                            describe(param)
                        );
                        tracing::error!(param = %param.name, "{message}");
                        self.fail(Phase::ParamExtraction, &param.name, message, false);
                        return;
                    }
                    tracing::debug!(param = %param.name, %reason, "optional parameter has no value");
                    if let Some(default) = &param.default {
                        self.ctx.set(&param.name, default.clone());
                    }
                    continue;
                }
            };
            let empty = value.is_null() || value.as_str() == Some("");
            let mut value = match (&param.default, empty) {
                (Some(default), true) => default.clone(),
                _ => value,
            };
            let converts = matches!(&param.source, Some(ParamSource::Path(_)))
                || matches!(&param.source, Some(ParamSource::Structured(s)) if s.file.is_some());
            if let (Some(kind), true, false) = (param.kind, converts, value.is_null()) {
                match convert(&value, kind) {
                    Ok(converted) => value = converted,
                    Err(reason) if param.required => {
                        let message = format!(
                            "failed to convert parameter '{}' to type {kind:?}: {reason}",
                            param.name
                        );
                        tracing::error!(param = %param.name, "{message}");
                        self.fail(Phase::ParamExtraction, &param.name, message, false);
                        return;
                    }
                    Err(_) => {
                        if let Some(default) = &param.default {
                            self.ctx.set(&param.name, default.clone());
                        }
                        continue;
                    }
                }
            }
            if !value.is_null() {
                self.ctx.set(&param.name, value);
            }
        }
    }

    async fn extract(&mut self, param: &Param) -> Result<Value, Missing> {
        let Some(source) = &param.source else {
            return Err(Missing::Reason("no source".into()));
        };
        match source {
            ParamSource::Path(path) => self.path_source(path),
            ParamSource::Structured(s) => {
                if let Some(call) = &s.api_call {
                    return match self.call(call).await {
                        Ok((response, _)) => {
                            serde_json::from_str::<Value>(&response.body).map_err(|e| {
                                Missing::Reason(format!(
                                    "failed to parse API response as JSON: {e}"
                                ))
                            })
                        }
                        Err(CallError::Render(e)) => {
                            Err(Missing::Reason(format!("failed to render api_call: {e}")))
                        }
                        Err(CallError::Api(error)) if error.is_resource_not_found() => {
                            self.resource_not_found(&param.name, &error);
                            Err(Missing::Stop)
                        }
                        Err(CallError::Api(error))
                            if error.is_transient() || param.required || error.is_no_route() =>
                        {
                            // An API that is down or misconfigured must not turn into a
                            // status report computed from missing data.
                            self.fail_api(
                                Phase::ParamExtraction,
                                &param.name,
                                &format!("failed to extract parameter '{}'", param.name),
                                &error,
                            );
                            Err(Missing::Stop)
                        }
                        Err(CallError::Api(error)) => Err(Missing::Reason(error.to_string())),
                    };
                }
                if let Some(expression) = &s.expression {
                    return self
                        .evaluate(expression, None)
                        .map_err(|e| Missing::Reason(format!("CEL evaluation failed: {e}")));
                }
                if let Some(file) = &s.file {
                    let path = self
                        .executor
                        .loaded
                        .paths
                        .resolve(&file.path.to_string_lossy());
                    let mut text = String::new();
                    std::fs::File::open(&path)
                        .and_then(|f| f.take(MAX_FILE_SOURCE_BYTES + 1).read_to_string(&mut text))
                        .map_err(|e| Missing::Reason(format!("reading {}: {e}", path.display())))?;
                    if text.len() as u64 > MAX_FILE_SOURCE_BYTES {
                        return Err(Missing::Reason(format!(
                            "file {} exceeds {MAX_FILE_SOURCE_BYTES} bytes",
                            path.display()
                        )));
                    }
                    if file.trim.unwrap_or(true) {
                        text = text.trim().to_owned();
                    }
                    if param.required && text.trim().is_empty() {
                        return Err(Missing::Reason(format!("file {} is empty", path.display())));
                    }
                    return Ok(Value::String(text));
                }
                Err(Missing::Reason("no source".into()))
            }
        }
    }

    /// `env.X`, `event.a.b`, `config.a.b`, `<param>.a.b`, or a bare event path.
    fn path_source(&self, source: &str) -> Result<Value, Missing> {
        let source = source.trim();
        let not_found = |what: &str| Missing::Reason(format!("{what} not found"));
        if let Some(var) = source.strip_prefix("env.") {
            return self
                .executor
                .env
                .get(var)
                .cloned()
                .ok_or_else(|| Missing::Reason(format!("environment variable {var} not set")));
        }
        if let Some(path) = source.strip_prefix("event.") {
            return lookup(self.ctx.event(), path)
                .cloned()
                .ok_or_else(|| not_found(&format!("field '{path}' in the event data")));
        }
        if let Some(path) = source.strip_prefix("config.") {
            return lookup(&self.executor.config, path)
                .cloned()
                .ok_or_else(|| not_found(&format!("config field '{path}'")));
        }
        let (head, rest) = source.split_once('.').unwrap_or((source, ""));
        if let Some(base) = self
            .ctx
            .get(head)
            .filter(|_| !super::context::BUILTINS.contains(&head))
        {
            if rest.is_empty() {
                return Ok(base.clone());
            }
            if !base.is_object() && !base.is_array() {
                return Err(Missing::Reason(format!(
                    "param '{head}' is not a map, cannot read '{rest}' from it"
                )));
            }
            return lookup(base, rest)
                .cloned()
                .ok_or_else(|| not_found(&format!("field '{rest}' of param '{head}'")));
        }
        // HyperFleet's fallback: an unqualified name is a path in the event data.
        lookup(self.ctx.event(), source).cloned().ok_or_else(|| {
            not_found(&format!(
                "'{source}' (not a param, and not in the event data)"
            ))
        })
    }
}

fn describe(param: &Param) -> String {
    match &param.source {
        Some(ParamSource::Path(p)) => p.clone(),
        Some(ParamSource::Structured(s)) if s.api_call.is_some() => {
            let call = s.api_call.as_ref().expect("checked");
            format!("api_call {} {}", call.method.as_str(), call.url)
        }
        Some(ParamSource::Structured(s)) if s.expression.is_some() => "expression".into(),
        Some(ParamSource::Structured(_)) => "file".into(),
        None => "none".into(),
    }
}

//! Phase 1: params, in order, each from its source.

use std::io::Read;

use serde_json::Value;

use super::error::{ParamError, StepError};
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
    Reason(ParamError),
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
                        let error = StepError::RequiredParam {
                            param: param.name.clone(),
                            from: describe(param),
                            reason,
                        };
                        tracing::error!(param = %param.name, "{error}");
                        self.fail(Phase::ParamExtraction, &param.name, error);
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
                        let error = StepError::ConvertParam {
                            param: param.name.clone(),
                            kind,
                            reason,
                        };
                        tracing::error!(param = %param.name, "{error}");
                        self.fail(Phase::ParamExtraction, &param.name, error);
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
            return Err(Missing::Reason(ParamError::NoSource));
        };
        match source {
            ParamSource::Path(path) => self.path_source(path),
            ParamSource::Structured(s) => {
                if let Some(call) = &s.api_call {
                    return match self.call(call).await {
                        Ok((response, _)) => serde_json::from_str::<Value>(&response.body)
                            .map_err(|e| Missing::Reason(ParamError::ResponseJson(e.into()))),
                        Err(CallError::Render(e)) => {
                            Err(Missing::Reason(ParamError::RenderCall(e)))
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
                            self.fail(
                                Phase::ParamExtraction,
                                &param.name,
                                StepError::ParamApi {
                                    param: param.name.clone(),
                                    error,
                                },
                            );
                            Err(Missing::Stop)
                        }
                        Err(CallError::Api(error)) => Err(Missing::Reason(ParamError::Api(error))),
                    };
                }
                if let Some(expression) = &s.expression {
                    return self
                        .evaluate(expression, None)
                        .map_err(|e| Missing::Reason(ParamError::Expression(e)));
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
                        .map_err(|e| {
                            Missing::Reason(ParamError::ReadFile {
                                path: path.clone(),
                                source: e.into(),
                            })
                        })?;
                    if text.len() as u64 > MAX_FILE_SOURCE_BYTES {
                        return Err(Missing::Reason(ParamError::FileTooLarge {
                            path,
                            limit: MAX_FILE_SOURCE_BYTES,
                        }));
                    }
                    if file.trim.unwrap_or(true) {
                        text = text.trim().to_owned();
                    }
                    if param.required && text.trim().is_empty() {
                        return Err(Missing::Reason(ParamError::FileEmpty { path }));
                    }
                    return Ok(Value::String(text));
                }
                Err(Missing::Reason(ParamError::NoSource))
            }
        }
    }

    /// `env.X`, `event.a.b`, `config.a.b`, `<param>.a.b`, or a bare event path.
    fn path_source(&self, source: &str) -> Result<Value, Missing> {
        let source = source.trim();
        if let Some(var) = source.strip_prefix("env.") {
            return self.executor.env.get(var).cloned().ok_or_else(|| {
                Missing::Reason(ParamError::EnvNotSet {
                    var: var.to_owned(),
                })
            });
        }
        if let Some(path) = source.strip_prefix("event.") {
            return lookup(self.ctx.event(), path).cloned().ok_or_else(|| {
                Missing::Reason(ParamError::EventField {
                    path: path.to_owned(),
                })
            });
        }
        if let Some(path) = source.strip_prefix("config.") {
            return lookup(&self.executor.config, path).cloned().ok_or_else(|| {
                Missing::Reason(ParamError::ConfigField {
                    path: path.to_owned(),
                })
            });
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
                return Err(Missing::Reason(ParamError::NotAMap {
                    param: head.to_owned(),
                    field: rest.to_owned(),
                }));
            }
            return lookup(base, rest).cloned().ok_or_else(|| {
                Missing::Reason(ParamError::ParamField {
                    param: head.to_owned(),
                    field: rest.to_owned(),
                })
            });
        }
        // HyperFleet's fallback: an unqualified name is a path in the event data.
        lookup(self.ctx.event(), source).cloned().ok_or_else(|| {
            Missing::Reason(ParamError::Unqualified {
                path: source.to_owned(),
            })
        })
    }
}

/// The source as HyperFleet's `ParameterSource.Describe` writes it in error messages.
fn describe(param: &Param) -> String {
    match &param.source {
        Some(ParamSource::Path(p)) => p.clone(),
        Some(ParamSource::Structured(s)) => {
            if let Some(call) = &s.api_call {
                format!("api_call({} {})", call.method.as_str(), call.url)
            } else if let Some(expression) = &s.expression {
                format!("expression({:?})", expression.trim())
            } else if let Some(file) = &s.file {
                format!("file({})", file.path.display())
            } else {
                String::new()
            }
        }
        None => String::new(),
    }
}

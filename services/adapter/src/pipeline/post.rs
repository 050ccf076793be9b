//! Phase 4: payloads are built (CEL and templates), then post actions run in order — usually
//! the status report. A post action whose body uses a payload that was not built (its `when`
//! was false) is skipped.

use serde_json::{Map, Value};

use super::error::{EvalError, StepError};
use super::result::{Phase, PostActionResult, StepStatus};
use super::values::lookup;
use super::{CallError, Run};
use crate::config::task::ValueDefinition;
use steadfast_gotemplate::Template;

impl Run<'_> {
    pub(super) async fn post(&mut self) {
        let Some(post) = &self.executor.loaded.task.post else {
            return;
        };
        let mut skipped_payloads = Vec::new();
        for (index, payload) in post.payloads.iter().enumerate() {
            if let Some(when) = &payload.when {
                match self.evaluate_matched(&when.expression) {
                    Ok(true) => {}
                    Ok(false) => {
                        tracing::debug!(payload = %payload.name, "payload skipped: when condition is false");
                        skipped_payloads.push(payload.name.clone());
                        continue;
                    }
                    Err(error) => {
                        self.fail(
                            Phase::PostActions,
                            "build_payloads",
                            StepError::PayloadWhen {
                                payload: payload.name.clone(),
                                error,
                            },
                        );
                        return;
                    }
                }
            }
            let Some(build) = self.compiled().builds.get(index).cloned().flatten() else {
                continue;
            };
            match self.build(&build) {
                Ok(mut built) => {
                    integer_generation(&mut built);
                    let text = serde_json::to_string(&built).expect("JSON values serialize");
                    self.result.payloads.insert(payload.name.clone(), built);
                    // As a JSON string, so `{{ .statusPayload }}` renders the document.
                    self.ctx.set(&payload.name, Value::String(text));
                }
                Err(error) => {
                    self.fail(
                        Phase::PostActions,
                        "build_payloads",
                        StepError::PayloadBuild {
                            payload: payload.name.clone(),
                            error,
                        },
                    );
                    return;
                }
            }
        }
        for action in &post.post_actions {
            let mut outcome = PostActionResult {
                name: action.name.clone(),
                status: StepStatus::Success,
                skipped: false,
                skip_reason: None,
                error: None,
                api_call: None,
                body: None,
            };
            let body_roots = action
                .api_call
                .as_ref()
                .and_then(|c| c.body.as_deref())
                .and_then(|b| Template::parse(b).ok())
                .map(|t| t.root_variables())
                .unwrap_or_default();
            if let Some(skipped) = skipped_payloads.iter().find(|p| body_roots.contains(*p)) {
                outcome.status = StepStatus::Skipped;
                outcome.skipped = true;
                outcome.skip_reason = Some(format!("referenced payload '{skipped}' was skipped"));
                self.result.post_actions.push(outcome);
                continue;
            }
            if let Some(when) = &action.when {
                match self.evaluate_matched(&when.expression) {
                    Ok(true) => {}
                    Ok(false) => {
                        outcome.status = StepStatus::Skipped;
                        outcome.skipped = true;
                        outcome.skip_reason = Some(format!(
                            "when condition evaluated to false: {}",
                            when.expression.trim()
                        ));
                        self.result.post_actions.push(outcome);
                        continue;
                    }
                    Err(e) => {
                        let error = StepError::PostActionWhen(e);
                        tracing::error!(post_action = %action.name, %error, "PostAction[{}] processed: FAILED", action.name);
                        outcome.status = StepStatus::Failed;
                        outcome.error = Some(error.to_string());
                        self.result.post_actions.push(outcome);
                        self.fail(Phase::PostActions, &action.name, error);
                        return;
                    }
                }
            }
            if let Some(log) = &action.log {
                self.log_action(log);
            }
            if let Some(call) = &action.api_call {
                outcome.body = call.body.as_deref().and_then(|b| self.render(b).ok());
                match self.call(call).await {
                    Ok((_, record)) => outcome.api_call = Some(record),
                    Err(CallError::Render(e)) => {
                        let error = StepError::PostActionRender(e);
                        tracing::error!(post_action = %action.name, %error, "PostAction[{}] processed: FAILED", action.name);
                        outcome.status = StepStatus::Failed;
                        outcome.error = Some(error.to_string());
                        self.result.post_actions.push(outcome);
                        self.fail(Phase::PostActions, &action.name, error);
                        return;
                    }
                    Err(CallError::Api(error)) if error.is_resource_not_found() => {
                        // The resource was deleted meanwhile: nothing left to report to.
                        tracing::info!(post_action = %action.name, %error, "resource not found; skipping the remaining post actions");
                        outcome.status = StepStatus::Skipped;
                        outcome.skipped = true;
                        outcome.skip_reason = Some("resource not found".into());
                        self.result.post_actions.push(outcome);
                        return;
                    }
                    Err(CallError::Api(error)) => {
                        tracing::error!(post_action = %action.name, %error, "PostAction[{}] processed: FAILED", action.name);
                        outcome.status = StepStatus::Failed;
                        outcome.error = Some(error.to_string());
                        self.result.post_actions.push(outcome);
                        // A report that did not get through cannot be "reported" instead:
                        // a transient failure always goes back for a retry.
                        let report = std::mem::replace(&mut self.options.report_transient, false);
                        self.fail(
                            Phase::PostActions,
                            &action.name,
                            StepError::StatusReport { error },
                        );
                        self.options.report_transient = report;
                        return;
                    }
                }
            }
            tracing::info!(post_action = %action.name, "PostAction[{}] processed: SUCCESS", action.name);
            self.result.post_actions.push(outcome);
        }
    }

    /// Builds a payload as HyperFleet's executor does: a value definition (`{expression}` or
    /// `{field}`, with `default`) computed, strings rendered, keys rendered, the rest literal.
    /// A value that cannot be computed (an evaluation error, a missing field, null) takes its
    /// default, or null; an expression that does not even parse, or a definition with both
    /// `field` and `expression`, fails the build.
    fn build(&self, value: &Value) -> Result<Value, EvalError> {
        match value {
            Value::String(s) => self.render(s).map(Value::String),
            Value::Array(items) => items
                .iter()
                .map(|i| self.build(i))
                .collect::<Result<Vec<_>, _>>()
                .map(Value::Array),
            Value::Object(map) => match ValueDefinition::of(map) {
                Some(definition) => self.compute(&definition),
                None => {
                    let mut out = Map::with_capacity(map.len());
                    for (key, item) in map {
                        out.insert(self.render(key)?, self.build(item)?);
                    }
                    Ok(Value::Object(out))
                }
            },
            other => Ok(other.clone()),
        }
    }

    fn compute(&self, definition: &ValueDefinition<'_>) -> Result<Value, EvalError> {
        let computed = match (definition.field, definition.expression) {
            (Some(_), Some(_)) => return Err(EvalError::FieldAndExpression),
            (None, Some(expression)) => match self.evaluate(expression, None) {
                Ok(value) => value,
                Err(error) if !error.is_about_the_data() => return Err(error),
                Err(error) => {
                    tracing::warn!(expression = expression.trim(), %error, "payload value could not be computed; using its default");
                    Value::Null
                }
            },
            (Some(field), None) => lookup(self.ctx.template_data(), field)
                .cloned()
                .unwrap_or(Value::Null),
            (None, None) => Value::Null,
        };
        Ok(if computed.is_null() {
            definition.default.cloned().unwrap_or(Value::Null)
        } else {
            computed
        })
    }
}

/// The status contract wants `observed_generation` as an integer; a generation read from an
/// API that sends it as text (`"77"`) would otherwise be refused by the API.
fn integer_generation(payload: &mut Value) {
    if let Some(slot) = payload.get_mut("observed_generation")
        && let Some(number) = slot.as_str().and_then(|s| s.trim().parse::<i64>().ok())
    {
        *slot = Value::from(number);
    }
}

//! Phase 2: preconditions, in order; all must pass. The first one not met skips the resources
//! (and status is still reported); one that cannot be evaluated fails the phase.

use serde_json::{Map, Value};

use super::error::{PreconditionError, StepError};
use super::result::{Phase, PreconditionResult, StepStatus};
use super::values::{evaluate, lookup};
use super::{CallError, Run};
use crate::config::task::Precondition;

impl Run<'_> {
    pub(super) async fn preconditions(&mut self) {
        let preconditions = &self.executor.loaded.task.preconditions;
        for precondition in preconditions {
            let mut outcome = PreconditionResult {
                name: precondition.name.clone(),
                status: StepStatus::Success,
                matched: true,
                error: None,
                captured: Map::new(),
                api_call: None,
            };
            match self.precondition(precondition, &mut outcome).await {
                Ok(true) => {
                    tracing::info!(precondition = %precondition.name, "Precondition[{}] evaluated: MET", precondition.name);
                    self.result.preconditions.push(outcome);
                }
                Ok(false) => {
                    tracing::info!(precondition = %precondition.name, "Precondition[{}] evaluated: NOT_MET", precondition.name);
                    outcome.matched = false;
                    self.result.preconditions.push(outcome);
                    self.ctx
                        .skip(&format!("precondition '{}' not met", precondition.name));
                    return;
                }
                Err(error) => {
                    tracing::warn!(precondition = %precondition.name, %error, "Precondition[{}] evaluated: FAILED", precondition.name);
                    outcome.status = StepStatus::Failed;
                    outcome.matched = false;
                    outcome.error = Some(error.to_string());
                    self.result.preconditions.push(outcome);
                    return;
                }
            }
        }
    }

    /// Whether the precondition holds. `Err` has already been recorded (as a failure, or as
    /// the resource being gone).
    async fn precondition(
        &mut self,
        precondition: &Precondition,
        outcome: &mut PreconditionResult,
    ) -> Result<bool, PreconditionError> {
        let mut response: Option<Map<String, Value>> = None;
        if let Some(call) = &precondition.api_call {
            match self.call(call).await {
                Ok((answer, record)) => {
                    outcome.api_call = Some(record);
                    match serde_json::from_str::<Value>(&answer.body) {
                        Ok(Value::Object(map)) => response = Some(map),
                        Ok(other) => {
                            response = Some(Map::from_iter([("response".to_owned(), other)]))
                        }
                        Err(e) => {
                            return Err(self.precondition_failed(
                                precondition,
                                PreconditionError::ResponseJson(e.into()),
                            ));
                        }
                    }
                }
                Err(CallError::Render(e)) => {
                    return Err(
                        self.precondition_failed(precondition, PreconditionError::RenderCall(e))
                    );
                }
                Err(CallError::Api(error)) if error.is_resource_not_found() => {
                    self.resource_not_found(&precondition.name, &error);
                    return Err(PreconditionError::ResourceNotFound);
                }
                Err(CallError::Api(error)) => {
                    self.fail(
                        Phase::Preconditions,
                        &precondition.name,
                        StepError::PreconditionApi {
                            error: error.clone(),
                        },
                    );
                    return Err(PreconditionError::Api(error));
                }
            }
        }
        for capture in &precondition.capture {
            let field = capture.field.as_deref().filter(|f| !f.is_empty());
            let value = if let Some(field) = field {
                let found = response
                    .as_ref()
                    .and_then(|r| lookup_map(r, field))
                    .or_else(|| lookup(self.ctx.template_data(), field).cloned());
                match (found, &capture.default) {
                    (Some(value), _) => value,
                    (None, Some(default)) => default.clone(),
                    (None, None) => {
                        tracing::warn!(capture = %capture.name, field, "Failed to capture '{}': field not found", capture.name);
                        Value::Null
                    }
                }
            } else {
                // As HyperFleet: an expression that fails on this data captures null (with a
                // warning); one that does not compile fails the precondition.
                let expression = capture.expression.as_deref().unwrap_or_default();
                match self.evaluate(expression, response.as_ref()) {
                    Ok(value) => value,
                    Err(error) if error.is_about_the_data() => {
                        tracing::warn!(capture = %capture.name, %error, "CEL evaluation failed for capture '{}'; captured null", capture.name);
                        Value::Null
                    }
                    Err(error) => {
                        return Err(self.precondition_failed(
                            precondition,
                            PreconditionError::Capture {
                                capture: capture.name.clone(),
                                error,
                            },
                        ));
                    }
                }
            };
            outcome.captured.insert(capture.name.clone(), value.clone());
            self.ctx.set(&capture.name, value);
        }
        if let Some(log) = &precondition.log {
            self.log_action(log);
        }
        for condition in &precondition.conditions {
            let actual = lookup(self.ctx.template_data(), &condition.field)
                .cloned()
                .or_else(|| {
                    response
                        .as_ref()
                        .and_then(|r| lookup_map(r, &condition.field))
                });
            let expected = condition.value.as_ref().or(condition.values.as_ref());
            match evaluate(condition.operator, actual.as_ref(), expected) {
                Ok(true) => {}
                Ok(false) => {
                    let seen = actual.map_or_else(|| "absent".to_owned(), |v| v.to_string());
                    tracing::debug!(
                        precondition = %precondition.name,
                        field = %condition.field,
                        operator = condition.operator.as_str(),
                        actual = %seen,
                        "condition not met"
                    );
                    return Ok(false);
                }
                Err(error) => {
                    return Err(self.precondition_failed(
                        precondition,
                        PreconditionError::Condition {
                            field: condition.field.clone(),
                            error,
                        },
                    ));
                }
            }
        }
        if let Some(expression) = precondition.expression.as_deref().filter(|e| !e.is_empty()) {
            // HyperFleet's `Matched`: an evaluation error or an empty value is "not met"; only
            // an expression that does not compile fails the precondition.
            return match self.evaluate(expression, response.as_ref()) {
                Ok(value) => Ok(super::context::matched(&value)),
                Err(e) if !e.is_about_the_data() => {
                    Err(self.precondition_failed(precondition, PreconditionError::Expression(e)))
                }
                Err(e) => {
                    tracing::warn!(precondition = %precondition.name, error = %e, "precondition expression could not be evaluated; not met");
                    Ok(false)
                }
            };
        }
        Ok(true)
    }

    fn precondition_failed(
        &mut self,
        precondition: &Precondition,
        error: PreconditionError,
    ) -> PreconditionError {
        self.fail(
            Phase::Preconditions,
            &precondition.name,
            StepError::Precondition(error.clone()),
        );
        error
    }
}

fn lookup_map(map: &Map<String, Value>, path: &str) -> Option<Value> {
    let (head, rest) = path.split_once('.').unwrap_or((path, ""));
    let value = map.get(head)?;
    if rest.is_empty() {
        Some(value.clone())
    } else {
        lookup(value, rest).cloned()
    }
}

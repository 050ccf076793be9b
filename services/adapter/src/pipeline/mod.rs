//! One event through HyperFleet's four phases: params → preconditions → resources → post.
//!
//! The phases follow HyperFleet's executor (`internal/executor`), with one deliberate change:
//! a transient failure (API 408/429/5xx or network, Kubernetes retryable errors) stops the
//! execution *before* status is reported, so the message can go through a retry tier and the
//! retry reports once — unless this is the last attempt ([`RunOptions::report_transient`]),
//! in which case it reports `Health=False` as HyperFleet would. Permanent failures are reported
//! and then parked by the handler.
//!
//! * [`params`] — event, env, config, earlier params, api_call, CEL, file;
//! * [`preconditions`] — structured conditions and CEL; not met → resources skipped;
//! * [`resources`] — render, apply, discover, lifecycle create/delete;
//! * [`post`] — payloads and post actions (the status report).

mod context;
pub mod error;
mod params;
mod post;
mod preconditions;
mod resources;
pub mod result;
pub mod values;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value};
use steadfast_rules::Evaluator;

pub use context::Context;
pub use error::{EvalError, KubeStep, ManifestError, ParamError, PreconditionError, StepError};
pub use result::{ExecutionResult, Failure, Phase, StepStatus, Verdict};

use crate::config::Loaded;
use crate::hyperfleet_api::{ApiClient, ApiError};
use crate::metrics::Metrics;
use crate::transport::{ErrorClass, KubeError, Transport};

/// How one execution may end.
#[derive(Debug, Clone, Copy, Default)]
pub struct RunOptions {
    /// On a transient failure, carry on and report it (last attempt, dry-run) instead of
    /// stopping for a retry.
    pub report_transient: bool,
}

/// Runs task configs against events. Shared by every in-flight event.
pub struct Executor {
    loaded: Arc<Loaded>,
    api: Arc<ApiClient>,
    transport: Arc<Transport>,
    env: Value,
    config: Value,
    deletion_wait: Duration,
    metrics: Option<Metrics>,
}

impl Executor {
    pub fn new(
        loaded: Arc<Loaded>,
        api: Arc<ApiClient>,
        transport: Arc<Transport>,
        environment: &BTreeMap<String, String>,
        metrics: Option<Metrics>,
    ) -> Self {
        let env = Value::Object(
            environment
                .iter()
                .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                .collect(),
        );
        let config = loaded.config_json.clone();
        Self {
            loaded,
            api,
            transport,
            env,
            config,
            deletion_wait: Duration::from_secs(30),
            metrics,
        }
    }

    pub fn loaded(&self) -> &Loaded {
        &self.loaded
    }

    /// Runs every phase for one event's `data`.
    pub async fn execute(&self, event_data: &Value, options: RunOptions) -> ExecutionResult {
        let adapter = &self.loaded.adapter.adapter;
        let mut run = Run {
            executor: self,
            evaluator: self.loaded.compiled.environment().evaluator(),
            ctx: Context::new(
                event_data.clone(),
                self.config.clone(),
                self.env.clone(),
                &adapter.name,
                adapter.version.as_deref().unwrap_or_default(),
            ),
            result: ExecutionResult::new(),
            options,
            stopped: false,
            resource_gone: false,
        };
        run.all().await;
        run.finish()
    }
}

/// The state of one execution.
struct Run<'e> {
    executor: &'e Executor,
    evaluator: Evaluator,
    ctx: Context,
    result: ExecutionResult,
    options: RunOptions,
    /// Stop here: nothing more runs (deferred for a retry, or the resource is gone).
    stopped: bool,
    /// The HyperFleet resource no longer exists (API 404): nothing to do or report.
    resource_gone: bool,
}

impl Run<'_> {
    async fn all(&mut self) {
        if !self.ctx.event().is_object() {
            let error = StepError::EventNotObject {
                data: self.ctx.event().clone(),
            };
            tracing::error!("{error}");
            self.fail(Phase::ParamExtraction, "event", error);
            self.stopped = true;
            return;
        }
        self.params().await;
        if self.stopped || self.result.failed_phase() == Some(Phase::ParamExtraction) {
            // HyperFleet does not report after a param failure: without params there is
            // nothing to report about.
            return;
        }
        self.preconditions().await;
        if self.stopped {
            return;
        }
        let precondition_failed = self.result.failed_phase() == Some(Phase::Preconditions);
        if !self.ctx.adapter.resources_skipped && !precondition_failed {
            self.resources().await;
            if self.stopped {
                return;
            }
        } else if !self.ctx.adapter.resources_skipped {
            self.result.resources_skipped = true;
            self.result.skip_reason = Some("a precondition failed to evaluate".into());
        }
        self.post().await;
    }

    /// Records a failure. A transient one ([`StepError::class`]) stops the execution for a
    /// retry unless `report_transient` is set.
    fn fail(&mut self, phase: Phase, step: &str, error: StepError) {
        let transient = error.class() == ErrorClass::Retryable;
        self.ctx.fail(phase, step, &error.to_string());
        if self.result.failure.is_none() {
            self.result.failure = Some(Failure {
                phase,
                step: step.to_owned(),
                error,
            });
        }
        if transient && !self.options.report_transient {
            self.stopped = true;
            self.result.deferred = true;
        }
    }

    fn fail_kube(&mut self, resource: &str, step: KubeStep, error: &KubeError) {
        self.fail(
            Phase::Resources,
            resource,
            StepError::Kube {
                step,
                error: error.clone(),
            },
        );
    }

    /// The HyperFleet resource is gone: acknowledge without reporting (HyperFleet's
    /// "ResourceNotFound" skip).
    fn resource_not_found(&mut self, step: &str, error: &ApiError) {
        tracing::info!(step, %error, "resource not found in the HyperFleet API; skipping (nothing to report)");
        self.ctx.skip("ResourceNotFound");
        self.resource_gone = true;
        self.stopped = true;
    }

    fn finish(mut self) -> ExecutionResult {
        self.result.params = self.ctx.params();
        self.result.discovered = self.ctx.resources().clone();
        self.result.resources_skipped =
            self.result.resources_skipped || self.ctx.adapter.resources_skipped;
        if self.ctx.adapter.resources_skipped && self.result.skip_reason.is_none() {
            self.result.skip_reason = Some(self.ctx.adapter.skip_reason.clone());
        }
        self.result.verdict = if self.result.failure.is_some() {
            Verdict::Failed
        } else if self.resource_gone || self.ctx.adapter.resources_skipped {
            Verdict::Skipped
        } else {
            Verdict::Success
        };
        self.result
    }

    fn compiled(&self) -> &crate::config::Compiled {
        &self.executor.loaded.compiled
    }

    fn render(&self, source: &str) -> Result<String, EvalError> {
        self.ctx.render(self.compiled(), source)
    }

    fn evaluate(
        &self,
        source: &str,
        extra: Option<&Map<String, Value>>,
    ) -> Result<Value, EvalError> {
        self.ctx
            .evaluate(&self.evaluator, self.compiled(), source, extra)
    }

    fn evaluate_matched(&self, source: &str) -> Result<bool, EvalError> {
        self.ctx
            .evaluate_matched(&self.evaluator, self.compiled(), source)
    }

    /// Renders and sends an `api_call`.
    async fn call(
        &self,
        call: &crate::config::task::ApiCall,
    ) -> Result<(crate::hyperfleet_api::ApiResponse, result::ApiCallRecord), CallError> {
        let url = self.render(&call.url).map_err(CallError::Render)?;
        let body = match &call.body {
            Some(body) => Some(self.render(body).map_err(CallError::Render)?),
            None => None,
        };
        let mut headers = Vec::with_capacity(call.headers.len());
        for header in &call.headers {
            headers.push((
                header.name.clone(),
                self.render(&header.value).map_err(CallError::Render)?,
            ));
        }
        let request = crate::hyperfleet_api::ApiRequest {
            method: call.method.as_str().into(),
            url,
            headers,
            body,
            timeout: call.timeout,
            // 0 means "not set" (HyperFleet's `omitempty` int): the client's own attempts.
            retry_attempts: call.retry_attempts.filter(|n| *n > 0),
            retry_backoff: call.retry_backoff,
        };
        tracing::debug!(method = %request.method, url = %request.url, "making api call");
        match self.executor.api.send(&request).await {
            Ok(response) => {
                let record = result::ApiCallRecord {
                    method: request.method.clone(),
                    url: response.url.clone(),
                    status: response.status,
                };
                Ok((response, record))
            }
            Err(error) => Err(CallError::Api(error)),
        }
    }

    fn log_action(&self, log: &crate::config::task::LogAction) {
        match self.render(&log.message) {
            Ok(message) => match log
                .level
                .as_deref()
                .unwrap_or("info")
                .to_ascii_lowercase()
                .as_str()
            {
                "debug" => tracing::debug!("[config] {message}"),
                "warn" | "warning" => tracing::warn!("[config] {message}"),
                "error" => tracing::error!("[config] {message}"),
                _ => tracing::info!("[config] {message}"),
            },
            Err(error) => tracing::error!(%error, "failed to render log message"),
        }
    }
}

/// Why an `api_call` produced no response.
enum CallError {
    /// Its url, body or a header did not render.
    Render(EvalError),
    Api(ApiError),
}

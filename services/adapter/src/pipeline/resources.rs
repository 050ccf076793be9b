//! Phase 3: resources, in order. Apply failures stop the phase ("fail fast"); delete failures
//! do not, so every deletion is attempted. Each resource is discovered after it is applied and
//! exposed to later CEL as `resources.<name>`.

use std::time::Instant;

use serde_json::Value;

use super::Run;
use super::error::{EvalError, KubeStep, ManifestError, StepError};
use super::result::{Phase, ResourceResult, StepStatus};
use crate::config::Manifest;
use crate::config::task::{Discovery, Resource};
use crate::transport::{KubeError, ObjectRef, Operation, latest_generation, selector_string};

impl Run<'_> {
    pub(super) async fn resources(&mut self) {
        let resources = &self.executor.loaded.task.resources;
        let has_lifecycle = resources.iter().any(|r| {
            r.lifecycle
                .as_ref()
                .is_some_and(|l| l.create.is_some() || l.delete.is_some())
        });
        if has_lifecycle {
            // Before any `when` runs, every resource's current state is known, whatever its
            // position in the list. Not found leaves it absent; any other error fails: a
            // resource wrongly believed absent could trigger a deletion or a premature
            // Finalized=True.
            for (index, resource) in resources.iter().enumerate() {
                match self.discover(index, resource).await {
                    Ok(found) => self.ctx.set_resource(&resource.name, found),
                    Err(error) => {
                        self.fail_kube(&resource.name, KubeStep::PreDiscovery, &error);
                        return;
                    }
                }
            }
        }
        for (index, resource) in resources.iter().enumerate() {
            let (outcome, fatal) = self.resource(index, resource).await;
            if outcome.status == StepStatus::Failed {
                let error = outcome.error.clone().unwrap_or_default();
                self.ctx
                    .adapter
                    .resource_errors
                    .insert(resource.name.clone(), serde_json::json!({"phase": "resources", "step": resource.name, "message": error}));
            }
            self.result.resources.push(outcome);
            if self.stopped || fatal {
                return;
            }
        }
    }

    /// One resource. Returns its result and whether the phase must stop (an apply failure).
    async fn resource(&mut self, index: usize, resource: &Resource) -> (ResourceResult, bool) {
        let mut outcome = ResourceResult {
            name: resource.name.clone(),
            kind: String::new(),
            namespace: String::new(),
            resource_name: String::new(),
            status: StepStatus::Success,
            operation: String::new(),
            reason: String::new(),
            error: None,
            manifest: None,
        };
        let lifecycle = resource.lifecycle.clone().unwrap_or_default();
        if let Some(create) = &lifecycle.create
            && !self.ctx.resources().contains_key(&resource.name)
        {
            let expression = create
                .when
                .as_ref()
                .map(|w| w.expression.as_str())
                .unwrap_or("true");
            // HyperFleet: an expression that fails on this data does not match (a parse
            // error, which load refuses, would fail the step).
            match self.evaluate_matched(expression) {
                Ok(true) => {}
                Err(e) if e.is_about_the_data() => {
                    tracing::warn!(resource = %resource.name, error = %e, "lifecycle.create.when could not be evaluated; not creating");
                    outcome.status = StepStatus::Skipped;
                    outcome.operation = Operation::Skip.as_str().into();
                    outcome.reason = format!("lifecycle.create.when could not be evaluated: {e}");
                    self.ctx
                        .skip(&format!("{}: {}", resource.name, outcome.reason));
                    return (outcome, false);
                }
                Ok(false) => {
                    outcome.status = StepStatus::Skipped;
                    outcome.operation = Operation::Skip.as_str().into();
                    outcome.reason = "lifecycle.create.when condition evaluated to false".into();
                    self.ctx
                        .skip(&format!("{}: {}", resource.name, outcome.reason));
                    tracing::info!(resource = %resource.name, "resource skipped: create.when condition is false");
                    return (outcome, false);
                }
                Err(e) => {
                    return self.resource_failed(outcome, &resource.name, StepError::CreateWhen(e));
                }
            }
        }
        if let Some(delete) = &lifecycle.delete
            && let Some(when) = &delete.when
        {
            match self.evaluate_matched(&when.expression) {
                Err(e) if e.is_about_the_data() => {
                    tracing::warn!(resource = %resource.name, error = %e, "lifecycle.delete.when could not be evaluated; not deleting");
                }
                Ok(true) => {
                    let policy = delete
                        .propagation_policy
                        .clone()
                        .unwrap_or_else(|| "Background".into());
                    return self.delete(index, resource, outcome, &policy).await;
                }
                Ok(false) => {}
                Err(e) => {
                    return self.resource_failed(outcome, &resource.name, StepError::DeleteWhen(e));
                }
            }
        }
        let manifest = match self.manifest(index) {
            Ok(manifest) => manifest,
            Err(e) => {
                tracing::error!(resource = %resource.name, error = %e, "failed to render manifest");
                return self.resource_failed(outcome, &resource.name, StepError::Manifest(e));
            }
        };
        let target = ObjectRef::of(&manifest);
        outcome.kind.clone_from(&target.kind);
        outcome.namespace.clone_from(&target.namespace);
        outcome.resource_name.clone_from(&target.name);
        outcome.manifest = Some(manifest.clone());
        match self
            .executor
            .transport
            .apply(
                &manifest,
                resource.recreate_on_change,
                self.executor.deletion_wait,
            )
            .await
        {
            Ok(applied) => {
                outcome.operation = applied.operation.as_str().into();
                outcome.reason = applied.reason;
                tracing::info!(resource = %resource.name, operation = %outcome.operation, reason = %outcome.reason, "resource processed");
            }
            Err(error) => {
                tracing::error!(resource = %resource.name, %error, "failed to apply resource");
                outcome.status = StepStatus::Failed;
                outcome.error = Some(error.to_string());
                self.fail_kube(&resource.name, KubeStep::Apply, &error);
                return (outcome, true);
            }
        }
        match self.discover(index, resource).await {
            Ok(found) => self.ctx.set_resource(&resource.name, found),
            Err(error) => {
                outcome.status = StepStatus::Failed;
                outcome.error = Some(error.to_string());
                self.fail_kube(&resource.name, KubeStep::DiscoverAfterApply, &error);
                return (outcome, true);
            }
        }
        (outcome, false)
    }

    fn resource_failed(
        &mut self,
        mut outcome: ResourceResult,
        step: &str,
        error: StepError,
    ) -> (ResourceResult, bool) {
        outcome.status = StepStatus::Failed;
        outcome.error = Some(error.to_string());
        self.fail(Phase::Resources, step, error);
        (outcome, true)
    }

    /// `lifecycle.delete.when` is true: delete if present, then look again.
    async fn delete(
        &mut self,
        index: usize,
        resource: &Resource,
        mut outcome: ResourceResult,
        policy: &str,
    ) -> (ResourceResult, bool) {
        outcome.operation = Operation::Delete.as_str().into();
        let kind = self.kind_of(index).unwrap_or_else(|| "Unknown".into());
        let started = Instant::now();
        let metrics = self.executor.metrics.clone();
        let _in_progress = metrics.as_ref().map(|m| m.deletion_started(&kind));
        let record = |status: &str| {
            if let Some(m) = &metrics {
                m.deletion_finished(&kind, status, started.elapsed());
            }
        };
        let found = match self.discover(index, resource).await {
            Ok(found) => found,
            Err(error) => {
                record("error");
                outcome.status = StepStatus::Failed;
                outcome.error = Some(error.to_string());
                self.fail_kube(&resource.name, KubeStep::DiscoverForDeletion, &error);
                return (outcome, false);
            }
        };
        let Some(found) = found else {
            record("success");
            self.ctx.set_resource(&resource.name, None);
            outcome.reason = "resource already deleted or never existed".into();
            tracing::info!(resource = %resource.name, "resource delete: already deleted or never existed");
            return (outcome, false);
        };
        let target = ObjectRef::of(&found);
        outcome.kind.clone_from(&target.kind);
        outcome.namespace.clone_from(&target.namespace);
        outcome.resource_name.clone_from(&target.name);
        if let Err(error) = self.executor.transport.delete(&target, policy).await {
            record("error");
            tracing::error!(resource = %resource.name, %error, "resource delete: failed");
            outcome.status = StepStatus::Failed;
            outcome.error = Some(error.to_string());
            self.fail_kube(&resource.name, KubeStep::Delete, &error);
            return (outcome, false);
        }
        record("success");
        // Gone now (no finalizers): dependants can go in this same execution. Still there
        // (finalizers running): they wait for the next event.
        let after = self.discover(index, resource).await.unwrap_or(Some(found));
        self.ctx.set_resource(&resource.name, after);
        outcome.reason = "lifecycle.delete.when evaluated to true".into();
        tracing::info!(resource = %resource.name, propagation_policy = policy, "resource delete");
        (outcome, false)
    }

    /// The rendered manifest of resource `index`.
    fn manifest(&self, index: usize) -> Result<Value, ManifestError> {
        let compiled = self.compiled();
        let manifest = compiled
            .manifests
            .get(index)
            .and_then(Option::as_ref)
            .ok_or(ManifestError::Missing)?;
        let rendered = match manifest {
            Manifest::Object(object) => self.render_value(object)?,
            Manifest::Text(template) => {
                let text = template
                    .render(self.ctx.template_data())
                    .map_err(EvalError::from)?;
                serde_norway::from_str::<Value>(&text)
                    .map_err(|e| ManifestError::NotYaml(e.into()))?
            }
        };
        if !rendered.is_object() {
            return Err(ManifestError::NotObject { value: rendered });
        }
        Ok(rendered)
    }

    /// Renders every string key and value of `value`.
    fn render_value(&self, value: &Value) -> Result<Value, EvalError> {
        Ok(match value {
            Value::String(s) => Value::String(self.render(s)?),
            Value::Array(items) => Value::Array(
                items
                    .iter()
                    .map(|i| self.render_value(i))
                    .collect::<Result<_, _>>()?,
            ),
            Value::Object(map) => {
                let mut out = serde_json::Map::with_capacity(map.len());
                for (key, item) in map {
                    out.insert(self.render(key)?, self.render_value(item)?);
                }
                Value::Object(out)
            }
            other => other.clone(),
        })
    }

    /// `apiVersion` and `kind` of resource `index`, without rendering everything.
    fn gvk(&self, index: usize) -> Option<(String, String)> {
        match self.compiled().manifests.get(index)?.as_ref()? {
            Manifest::Object(object) => {
                let field = |name: &str| {
                    object
                        .get(name)
                        .and_then(Value::as_str)
                        .and_then(|s| self.render(s).ok())
                };
                Some((field("apiVersion")?, field("kind")?))
            }
            Manifest::Text(template) => {
                // A template may not be YAML before rendering: read the top-level lines.
                let top = |name: &str| {
                    template.source().lines().find_map(|line| {
                        line.strip_prefix(&format!("{name}:"))
                            .map(|v| v.trim().trim_matches(['"', '\'']).to_owned())
                    })
                };
                let render = |s: String| self.render(&s).ok();
                Some((render(top("apiVersion")?)?, render(top("kind")?)?))
            }
        }
    }

    fn kind_of(&self, index: usize) -> Option<String> {
        self.gvk(index).map(|(_, kind)| kind)
    }

    /// Finds resource `index` by its discovery config: by name (in the discovery namespace,
    /// else the manifest's), or by labels (the highest generation wins).
    async fn discover(
        &self,
        index: usize,
        resource: &Resource,
    ) -> Result<Option<Value>, KubeError> {
        let Some(discovery) = &resource.discovery else {
            return Ok(None);
        };
        let invalid = |message: String| {
            ObjectRef {
                api_version: String::new(),
                kind: String::new(),
                namespace: String::new(),
                name: resource.name.clone(),
            }
            .error(
                "discover",
                crate::transport::ErrorClass::Fatal,
                None,
                "Invalid",
                message,
            )
        };
        let (api_version, kind) = self
            .gvk(index)
            .ok_or_else(|| invalid("cannot tell the manifest's apiVersion and kind".into()))?;
        let namespace = self
            .discovery_namespace(index, discovery)
            .map_err(|e| invalid(format!("failed to render namespace: {e}")))?;
        if let Some(by_name) = &discovery.by_name {
            let name = self
                .render(by_name)
                .map_err(|e| invalid(format!("failed to render by_name: {e}")))?;
            let target = ObjectRef {
                api_version,
                kind,
                namespace,
                name,
            };
            return self.executor.transport.get(&target).await;
        }
        let mut labels = std::collections::BTreeMap::new();
        for (key, value) in discovery
            .by_selectors
            .as_ref()
            .map(|s| &s.label_selector)
            .into_iter()
            .flatten()
        {
            labels.insert(
                self.render(key)
                    .map_err(|e| invalid(format!("failed to render label key: {e}")))?,
                self.render(value)
                    .map_err(|e| invalid(format!("failed to render label value: {e}")))?,
            );
        }
        let items = self
            .executor
            .transport
            .list(&api_version, &kind, &namespace, &selector_string(&labels))
            .await?;
        Ok(latest_generation(items))
    }

    fn discovery_namespace(
        &self,
        index: usize,
        discovery: &Discovery,
    ) -> Result<String, EvalError> {
        if let Some(ns) = discovery.namespace.as_deref().filter(|n| !n.is_empty()) {
            return self.render(ns);
        }
        Ok(self
            .manifest(index)
            .ok()
            .and_then(|m| {
                m.pointer("/metadata/namespace")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            })
            .unwrap_or_default())
    }
}

//! The Kubernetes executor: one Job per recipe in `--recipe-namespace`, the run's data in a
//! ConfigMap mounted at `/app` (so recipes read `/app/data.json`, as in Euphrosyne).
//!
//! Names are derived from the run, not generated: the ConfigMap is `steadfast-run-<run id>`
//! and a Job `<recipe>-<first 12 hex digits of the run id>`, so creating again after a restart
//! finds the object instead of duplicating it. Every object carries
//! `app.kubernetes.io/managed-by=steadfast-alert-reconciler` and `steadfast.io/{incident,run,
//! recipe,kind}` labels, plus Euphrosyne's `app=euphrosyne`, `uuid` and `recipe`.
//!
//! One watch per run (label `steadfast.io/run`) reports each Job's end at once: `Complete` →
//! the result should be in Redis; `Failed` (the pod failed; `backoffLimit: 0` means no retry)
//! → failed, with the end of the pod's log; `DeadlineExceeded` → timed out. After a restart,
//! attaching starts the same watch, whose initial listing reports Jobs that ended while the
//! reconciler was away. `activeDeadlineSeconds` bounds each Job in the cluster and
//! `ttlSecondsAfterFinished` is a backstop for our own cleanup, which deletes the run's Jobs
//! (with their pods) and ConfigMap.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use k8s_openapi::api::batch::v1::{Job, JobSpec};
use k8s_openapi::api::core::v1::{
    ConfigMap, ConfigMapVolumeSource, Container, EnvVar, Pod, PodSpec, PodTemplateSpec, Volume,
    VolumeMount,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, DeleteParams, ListParams, LogParams, PostParams};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;
use uuid::Uuid;

use super::{ExecError, Exit, ExitEvent, ExitSender, JOB_DATA_FILE, Launch, human};
use crate::config::KubeTarget;
use crate::recipes::Recipe;

pub const MANAGED_BY: &str = "app.kubernetes.io/managed-by";
pub const MANAGER: &str = "steadfast-alert-reconciler";
pub const LABEL_RUN: &str = "steadfast.io/run";
pub const LABEL_INCIDENT: &str = "steadfast.io/incident";
pub const LABEL_RECIPE: &str = "steadfast.io/recipe";
pub const LABEL_KIND: &str = "steadfast.io/kind";
/// Which launch of the recipe a Job is (absent on first launches of older versions: 1).
pub const LABEL_ATTEMPT: &str = "steadfast.io/attempt";
/// Lines of a failed pod's log quoted in its failure reason.
const LOG_TAIL_LINES: i64 = 20;

/// Why no Kubernetes client could be built for a [`KubeTarget`].
#[derive(Debug, thiserror::Error)]
pub enum KubeClientError {
    /// Neither the in-cluster service account nor `~/.kube/config` works.
    #[error("{0}")]
    Infer(#[source] Box<kube::config::InferConfigError>),
    /// The kubeconfig file cannot be read or used.
    #[error("{}: {source}", path.display())]
    Kubeconfig {
        path: PathBuf,
        source: Box<kube::config::KubeconfigError>,
    },
    /// `--kube-api-url` is not a URI the client accepts.
    #[error("{url}: {source}")]
    Url {
        url: String,
        source: http::uri::InvalidUri,
    },
    /// The client could not be built from a valid configuration (TLS, proxy).
    #[error("{0}")]
    Client(#[source] Box<kube::Error>),
}

/// A Kubernetes client for `target`.
pub async fn client(target: &KubeTarget) -> Result<kube::Client, KubeClientError> {
    let config = match target {
        KubeTarget::Infer => kube::Config::infer()
            .await
            .map_err(|e| KubeClientError::Infer(Box::new(e)))?,
        KubeTarget::Kubeconfig(path) => {
            let unusable = |e| KubeClientError::Kubeconfig {
                path: path.clone(),
                source: Box::new(e),
            };
            let kubeconfig = kube::config::Kubeconfig::read_from(path).map_err(unusable)?;
            kube::Config::from_custom_kubeconfig(
                kubeconfig,
                &kube::config::KubeConfigOptions::default(),
            )
            .await
            .map_err(unusable)?
        }
        KubeTarget::Url(url) => {
            let uri = url
                .as_str()
                .parse::<http::Uri>()
                .map_err(|source| KubeClientError::Url {
                    url: url.to_string(),
                    source,
                })?;
            kube::Config::new(uri)
        }
    };
    // Every API request (the Job, its ConfigMap, the watch) is a client span in the recipe's
    // trace and carries its traceparent.
    Ok(kube::client::ClientBuilder::try_from(config)
        .map_err(|e| KubeClientError::Client(Box::new(e)))?
        .with_layer(&steadfast_telemetry::trace::HttpClientLayer)
        .build())
}

#[derive(Clone)]
pub struct KubeExecutor {
    client: kube::Client,
    namespace: String,
    job_ttl: Duration,
    watches: Arc<Mutex<HashMap<Uuid, CancellationToken>>>,
}

/// The ConfigMap holding a run's data.json.
pub fn configmap_name(run: Uuid) -> String {
    format!("steadfast-run-{run}")
}

/// The Job of `recipe` in `run`; a re-run (attempt 2, 3 …) gets its own Job, named with its
/// attempt, so the first Job's status stays what it was.
pub fn job_name(recipe: &str, run: Uuid, attempt: u32) -> String {
    let run = &run.simple().to_string()[..12];
    if attempt <= 1 {
        format!("{recipe}-{run}")
    } else {
        format!("{recipe}-{run}-{attempt}")
    }
}

fn run_selector(run: Uuid) -> String {
    format!("{LABEL_RUN}={run}")
}

impl KubeExecutor {
    pub fn new(client: kube::Client, namespace: String, job_ttl: Duration) -> Self {
        Self {
            client,
            namespace,
            job_ttl,
            watches: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    fn jobs(&self) -> Api<Job> {
        Api::namespaced(self.client.clone(), &self.namespace)
    }

    fn configmaps(&self) -> Api<ConfigMap> {
        Api::namespaced(self.client.clone(), &self.namespace)
    }

    fn labels(launch: &Launch<'_>) -> BTreeMap<String, String> {
        let run = launch.run_id.to_string();
        BTreeMap::from([
            (MANAGED_BY.to_owned(), MANAGER.to_owned()),
            ("app".to_owned(), "euphrosyne".to_owned()),
            (LABEL_RUN.to_owned(), run.clone()),
            ("uuid".to_owned(), run),
            (LABEL_INCIDENT.to_owned(), launch.incident_id.to_string()),
            (
                LABEL_KIND.to_owned(),
                launch.recipe.kind.as_str().to_owned(),
            ),
        ])
    }

    pub async fn launch(
        &self,
        launch: &Launch<'_>,
        exits: ExitSender,
    ) -> Result<String, ExecError> {
        let recipe = launch.recipe;
        let image = recipe.image.clone().ok_or_else(|| ExecError::NoImage {
            recipe: recipe.name.clone(),
        })?;
        let labels = Self::labels(launch);
        self.ensure_configmap(launch, &labels).await?;
        // Watch before creating, so not even an instant failure can be missed.
        self.watch_run(launch.run_id, exits);

        let name = job_name(&recipe.name, launch.run_id, launch.attempt);
        let mut job_labels = labels.clone();
        job_labels.insert(LABEL_RECIPE.to_owned(), recipe.name.clone());
        job_labels.insert(LABEL_ATTEMPT.to_owned(), launch.attempt.to_string());
        job_labels.insert("recipe".to_owned(), recipe.name.clone());
        let command = recipe.command();
        let job = Job {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                namespace: Some(self.namespace.clone()),
                labels: Some(job_labels.clone()),
                annotations: Some(BTreeMap::from([(
                    "description".to_owned(),
                    recipe.description.clone(),
                )])),
                ..ObjectMeta::default()
            },
            spec: Some(JobSpec {
                backoff_limit: Some(0),
                active_deadline_seconds: Some(launch.timeout.as_secs().max(1) as i64),
                ttl_seconds_after_finished: Some(self.job_ttl.as_secs().min(i32::MAX as u64) as i32),
                template: PodTemplateSpec {
                    metadata: Some(ObjectMeta {
                        labels: Some(job_labels),
                        ..ObjectMeta::default()
                    }),
                    spec: Some(PodSpec {
                        restart_policy: Some("Never".into()),
                        service_account_name: recipe.service_account.clone(),
                        // Recipes without a service account of their own get no API token.
                        automount_service_account_token: Some(recipe.service_account.is_some()),
                        containers: vec![Container {
                            name: "recipe".into(),
                            image: Some(image),
                            command: Some(command),
                            args: Some(launch.arguments(JOB_DATA_FILE)),
                            env: Some(
                                launch
                                    .environment(JOB_DATA_FILE)
                                    .into_iter()
                                    .map(|(name, value)| EnvVar {
                                        name,
                                        value: Some(value),
                                        ..EnvVar::default()
                                    })
                                    .collect(),
                            ),
                            volume_mounts: Some(vec![VolumeMount {
                                name: "data".into(),
                                mount_path: "/app".into(),
                                read_only: Some(true),
                                ..VolumeMount::default()
                            }]),
                            ..Container::default()
                        }],
                        volumes: Some(vec![Volume {
                            name: "data".into(),
                            config_map: Some(ConfigMapVolumeSource {
                                name: configmap_name(launch.run_id),
                                ..ConfigMapVolumeSource::default()
                            }),
                            ..Volume::default()
                        }]),
                        ..PodSpec::default()
                    }),
                },
                ..JobSpec::default()
            }),
            ..Job::default()
        };
        match self.jobs().create(&PostParams::default(), &job).await {
            Ok(_) => Ok(name),
            // Created by us before a restart: the watch picks it up.
            Err(kube::Error::Api(status)) if status.code == 409 => Ok(name),
            Err(error) => Err(classify(
                &format!("create Job {}/{name}", self.namespace),
                error,
            )),
        }
    }

    async fn ensure_configmap(
        &self,
        launch: &Launch<'_>,
        labels: &BTreeMap<String, String>,
    ) -> Result<(), ExecError> {
        let name = configmap_name(launch.run_id);
        let data = serde_json::to_string_pretty(launch.data).expect("JSON values serialise");
        let map = ConfigMap {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                namespace: Some(self.namespace.clone()),
                labels: Some(labels.clone()),
                ..ObjectMeta::default()
            },
            data: Some(BTreeMap::from([("data.json".to_owned(), data)])),
            ..ConfigMap::default()
        };
        match self.configmaps().create(&PostParams::default(), &map).await {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(status)) if status.code == 409 => Ok(()),
            Err(error) => Err(classify(
                &format!("create ConfigMap {}/{name}", self.namespace),
                error,
            )),
        }
    }

    /// Re-attaches to a recipe launched before a restart: the run's watch lists its Job.
    pub async fn attach(
        &self,
        run: Uuid,
        recipe: &Recipe,
        exits: ExitSender,
    ) -> Result<(), ExecError> {
        tracing::info!(run_id = %run, recipe = %recipe.name, "re-attaching to the recipe's Job");
        self.watch_run(run, exits);
        Ok(())
    }

    /// Starts the run's watch unless it runs already.
    fn watch_run(&self, run: Uuid, exits: ExitSender) {
        let token = {
            let mut watches = self
                .watches
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if watches.contains_key(&run) {
                return;
            }
            let token = CancellationToken::new();
            watches.insert(run, token.clone());
            token
        };
        let executor = self.clone();
        // In the trace of the launch that started it (its list and watch requests are spans).
        let span = tracing::info_span!("reconciler.watch_jobs", run_id = %run);
        tokio::spawn(
            async move {
                executor.watch(run, exits, token).await;
            }
            .instrument(span),
        );
    }

    async fn watch(&self, run: Uuid, exits: ExitSender, stop: CancellationToken) {
        let config = watcher::Config::default().labels(&run_selector(run));
        let mut events = watcher(self.jobs(), config).default_backoff().boxed();
        // Keyed by recipe and attempt: a re-run's Job ends on its own, after the first one.
        let mut reported: HashSet<(String, u32)> = HashSet::new();
        loop {
            let event = tokio::select! {
                () = stop.cancelled() => return,
                event = events.next() => event,
            };
            let (job, deleted) = match event {
                Some(Ok(watcher::Event::Apply(job) | watcher::Event::InitApply(job))) => {
                    (job, false)
                }
                Some(Ok(watcher::Event::Delete(job))) => (job, true),
                Some(Ok(_)) => continue,
                Some(Err(error)) => {
                    tracing::warn!(run_id = %run, %error, "watching recipe Jobs failed; retrying");
                    continue;
                }
                None => return,
            };
            let Some(recipe) = recipe_of(&job) else {
                continue;
            };
            let attempt = attempt_of(&job);
            if reported.contains(&(recipe.clone(), attempt)) {
                continue;
            }
            let exit = if deleted {
                Exit::Failed("its Job was deleted before it finished".into())
            } else {
                let Some(exit) = self.exit_of(&job).await else {
                    continue;
                };
                exit
            };
            reported.insert((recipe.clone(), attempt));
            if exits
                .send(ExitEvent {
                    recipe,
                    attempt,
                    exit,
                })
                .is_err()
            {
                // Nobody is waiting for this run any more.
                return;
            }
        }
    }

    /// How a Job ended, or `None` while it runs.
    async fn exit_of(&self, job: &Job) -> Option<Exit> {
        let status = job.status.as_ref()?;
        let condition = |kind: &str| {
            status
                .conditions
                .iter()
                .flatten()
                .find(|c| c.type_ == kind && c.status == "True")
        };
        if condition("Complete").is_some() || status.succeeded.unwrap_or(0) > 0 {
            return Some(Exit::Succeeded);
        }
        let failed = condition("Failed");
        if failed.is_none() && status.failed.unwrap_or(0) == 0 {
            return None;
        }
        let reason = failed.and_then(|c| c.reason.clone()).unwrap_or_default();
        let message = failed.and_then(|c| c.message.clone()).unwrap_or_default();
        if reason == "DeadlineExceeded" {
            let deadline = job
                .spec
                .as_ref()
                .and_then(|s| s.active_deadline_seconds)
                .map(|s| human(Duration::from_secs(s.max(0) as u64)))
                .unwrap_or_else(|| "its".into());
            return Some(Exit::TimedOut(format!(
                "its Job exceeded the {deadline} deadline"
            )));
        }
        let mut detail = match (reason.is_empty(), message.is_empty()) {
            (true, _) => "its pod failed".to_owned(),
            (false, true) => format!("its Job failed: {reason}"),
            (false, false) => format!("its Job failed: {reason}: {message}"),
        };
        if let Some(log) = self.pod_log_tail(job).await {
            detail.push_str(&format!("; log: {log}"));
        }
        Some(Exit::Failed(detail))
    }

    /// The end of the log of the Job's pod, best effort.
    async fn pod_log_tail(&self, job: &Job) -> Option<String> {
        let name = job.metadata.name.as_deref()?;
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), &self.namespace);
        let list = pods
            .list(&ListParams::default().labels(&format!("job-name={name}")))
            .await
            .ok()?;
        let pod = list.items.first()?.metadata.name.clone()?;
        let log = pods
            .logs(
                &pod,
                &LogParams {
                    tail_lines: Some(LOG_TAIL_LINES),
                    ..LogParams::default()
                },
            )
            .await
            .ok()?;
        let log = log.trim();
        (!log.is_empty()).then(|| crate::chat::truncate(log, 1024))
    }

    fn stop_watch(&self, run: Uuid) {
        if let Some(token) = self
            .watches
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(&run)
        {
            token.cancel();
        }
    }

    /// Deletes the run's Jobs (and so their pods): what still runs stops.
    pub async fn cancel(&self, run: Uuid) {
        self.stop_watch(run);
        let selector = run_selector(run);
        if let Err(error) = self
            .jobs()
            .delete_collection(
                &DeleteParams::background(),
                &ListParams::default().labels(&selector),
            )
            .await
        {
            tracing::warn!(run_id = %run, %error, "cannot delete the run's Jobs");
        }
    }

    /// Deletes the run's Jobs and ConfigMap.
    pub async fn cleanup(&self, run: Uuid) {
        self.cancel(run).await;
        let selector = run_selector(run);
        if let Err(error) = self
            .configmaps()
            .delete_collection(
                &DeleteParams::default(),
                &ListParams::default().labels(&selector),
            )
            .await
        {
            tracing::warn!(run_id = %run, %error, "cannot delete the run's ConfigMap");
        }
    }

    /// Deletes Jobs and ConfigMaps of ours whose run is no longer running.
    pub async fn collect_garbage(&self, running: &HashSet<Uuid>) {
        let params = ListParams::default().labels(&format!("{MANAGED_BY}={MANAGER}"));
        let stale = |labels: Option<&BTreeMap<String, String>>| {
            labels
                .and_then(|l| l.get(LABEL_RUN))
                .and_then(|r| r.parse::<Uuid>().ok())
                .is_some_and(|run| !running.contains(&run))
        };
        match self.jobs().list(&params).await {
            Ok(jobs) => {
                for job in jobs
                    .items
                    .iter()
                    .filter(|j| stale(j.metadata.labels.as_ref()))
                {
                    if let Some(name) = &job.metadata.name {
                        tracing::info!(job = %name, "deleting the Job of a finished run");
                        let _ = self.jobs().delete(name, &DeleteParams::background()).await;
                    }
                }
            }
            Err(error) => tracing::warn!(%error, "cannot list recipe Jobs for clean-up"),
        }
        match self.configmaps().list(&params).await {
            Ok(maps) => {
                for map in maps
                    .items
                    .iter()
                    .filter(|m| stale(m.metadata.labels.as_ref()))
                {
                    if let Some(name) = &map.metadata.name {
                        let _ = self
                            .configmaps()
                            .delete(name, &DeleteParams::default())
                            .await;
                    }
                }
            }
            Err(error) => tracing::warn!(%error, "cannot list recipe ConfigMaps for clean-up"),
        }
    }
}

fn recipe_of(job: &Job) -> Option<String> {
    job.metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(LABEL_RECIPE))
        .cloned()
}

fn attempt_of(job: &Job) -> u32 {
    job.metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(LABEL_ATTEMPT))
        .and_then(|a| a.parse().ok())
        .unwrap_or(1)
}

/// A refusal by the API server is final for this recipe; no answer at all may pass.
fn classify(request: &str, error: kube::Error) -> ExecError {
    match error {
        kube::Error::Api(status) if status.code < 500 && status.code != 429 => ExecError::Refused {
            request: request.to_owned(),
            message: status.message,
        },
        source => ExecError::Unavailable {
            request: request.to_owned(),
            source: Box::new(source),
        },
    }
}

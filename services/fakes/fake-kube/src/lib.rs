//! A fake Kubernetes API server: real HTTP, in-memory objects, so kube (or `kubectl`) talks to
//! it through a kubeconfig exactly as it talks to a cluster.
//!
//! ```no_run
//! # async fn demo() {
//! use fake_kube::{FakeKube, Fault};
//! let fake = FakeKube::start().await;              // 127.0.0.1:<ephemeral>
//! let kubeconfig = fake.kubeconfig_file();         // temp file, removed on drop
//! // point the code under test at kubeconfig.path() ...
//! fake.inject(Fault::status(503).on("create").resource("jobs").times(1));
//! // ... it creates a Job: the first attempt gets 503, the next one succeeds
//! let job = fake.get("batch/v1", "Job", Some("default"), "hello").unwrap();
//! fake.complete_job("default", "hello");           // Pod Succeeded, Job condition Complete
//! # let _ = job;
//! # }
//! ```
//!
//! # What it serves
//! * Kinds: Namespace, ConfigMap, Secret, Pod, Service, ServiceAccount (`v1`), Job
//!   (`batch/v1`), Deployment (`apps/v1`), and any kind added with [`FakeKube::register_kind`]
//!   (custom resources). Namespaces `default` and `kube-system` exist from the start.
//! * Verbs: get, list (label and field selectors, `limit`/`continue`), watch (`?watch=true`,
//!   resuming from a `resourceVersion`; what kube's `watcher` uses), create (`generateName`,
//!   `dryRun=All`), update (PUT, optimistic concurrency on `resourceVersion`), patch (merge,
//!   strategic merge, JSON patch, server-side apply), delete (propagation policy, finalizers,
//!   owner-reference cascade, namespace cascade), deletecollection; `status` subresources;
//!   `pods/<name>/log` (text set with [`FakeKube::set_pod_log`]).
//! * Discovery: `/version`, `/api`, `/api/v1`, `/apis`, `/apis/<group>`,
//!   `/apis/<group>/<version>`.
//! * `kubectl` reads it (`get`, `describe`, `logs`); its writes send protobuf, which the fake
//!   does not decode (415), so create objects through kube or JSON.
//! * Errors are `Status` objects with Kubernetes' codes and reasons (404 NotFound, 409
//!   AlreadyExists / Conflict, 422 Invalid for bad names and labels, 403 when creating in a
//!   terminating namespace, ...), so client code classifies them as it would in production.
//!
//! # Jobs and Pods
//! A Job created through the API gets a Pod (`job-name` labels, owned by the Job) and
//! `status.active = 1`. [`FakeKube::complete_job`] / [`FakeKube::fail_job`] end it: Pod phase
//! `Succeeded`/`Failed`, Job condition `Complete`/`Failed`. With
//! [`FakeKubeOptions::complete_jobs_after`] every Job completes by itself (the dev stack).
//!
//! # Test controls
//! [`FakeKube::inject`] makes matching requests fail with a chosen status (by verb, resource,
//! name, a number of times or for good), [`FakeKube::requests`] records what was asked,
//! [`FakeKube::put`] / [`FakeKube::set_status`] seed objects directly (status included).
//! [`FakeKube::slow_for`] delays every API request for a while. Over HTTP (the binary, e.g.
//! for the chaos suite), `POST /fake/fail` with
//! `{"statuses": [503, 500], "delay_ms": 700, "slow_for_ms": 3000}` makes the next requests
//! fail with those statuses, one each, then (and meanwhile) answers every request `delay_ms`
//! late for `slow_for_ms`; both parts are optional.

mod http;
mod jobs;
mod kinds;
mod patch;
mod selector;
mod store;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::http::{Method, Uri};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use jobs::JobOutcome;
pub use kinds::KindSpec;

use store::{ApiError, Store};

/// How the fake behaves beyond the defaults.
#[derive(Debug, Clone, Default)]
pub struct FakeKubeOptions {
    /// Every Job created through the API succeeds after this long (the dev stack); `None`
    /// leaves Jobs running until a test ends them.
    pub complete_jobs_after: Option<Duration>,
    /// Kinds served in addition to the built-in ones.
    pub extra_kinds: Vec<KindSpec>,
}

/// A failure to inject: requests that match answer `code` with a Kubernetes `Status` body.
#[derive(Debug, Clone)]
pub struct Fault {
    code: u16,
    verb: Option<String>,
    resource: Option<String>,
    name: Option<String>,
    remaining: Option<usize>,
    message: Option<String>,
}

impl Fault {
    /// Every request fails with `code`, once (narrow it with the builder methods).
    pub fn status(code: u16) -> Self {
        Self {
            code,
            verb: None,
            resource: None,
            name: None,
            remaining: Some(1),
            message: None,
        }
    }

    /// Only this verb: get, list, watch, create, update, patch, delete, deletecollection.
    #[must_use]
    pub fn on(mut self, verb: &str) -> Self {
        self.verb = Some(verb.into());
        self
    }

    /// Only this resource (plural, e.g. `jobs`).
    #[must_use]
    pub fn resource(mut self, plural: &str) -> Self {
        self.resource = Some(plural.into());
        self
    }

    /// Only the object with this name.
    #[must_use]
    pub fn named(mut self, name: &str) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Fail this many matching requests, then stop.
    #[must_use]
    pub fn times(mut self, n: usize) -> Self {
        self.remaining = Some(n);
        self
    }

    /// Fail every matching request until [`FakeKube::clear_faults`].
    #[must_use]
    pub fn always(mut self) -> Self {
        self.remaining = None;
        self
    }

    /// The `message` of the Status body (a realistic default otherwise).
    #[must_use]
    pub fn message(mut self, message: &str) -> Self {
        self.message = Some(message.into());
        self
    }

    fn matches(&self, verb: &str, resource: &str, name: Option<&str>) -> bool {
        self.remaining != Some(0)
            && self.verb.as_deref().is_none_or(|v| v == verb)
            && self.resource.as_deref().is_none_or(|r| r == resource)
            && self.name.as_deref().is_none_or(|n| Some(n) == name)
    }
}

/// One request the fake received.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedRequest {
    pub method: String,
    pub path: String,
    pub query: String,
    /// Kubernetes verb (`get`, `create`, ...), `discover` for discovery, `unknown` otherwise.
    pub verb: String,
    /// Resource plural, e.g. `jobs`.
    pub resource: Option<String>,
    pub namespace: Option<String>,
    pub name: Option<String>,
    /// The JSON body, when there was one.
    pub body: Option<Value>,
}

impl RecordedRequest {
    fn new(
        method: &Method,
        uri: &Uri,
        verb: &str,
        resource: Option<&str>,
        namespace: Option<&str>,
        name: Option<&str>,
        body: &[u8],
    ) -> Self {
        Self {
            method: method.to_string(),
            path: uri.path().to_owned(),
            query: uri.query().unwrap_or_default().to_owned(),
            verb: verb.to_owned(),
            resource: resource.map(str::to_owned),
            namespace: namespace.map(str::to_owned),
            name: name.map(str::to_owned),
            body: serde_json::from_slice(body).ok(),
        }
    }
}

struct Shared {
    store: Mutex<Store>,
    faults: Mutex<Vec<Fault>>,
    /// Until when requests are answered late, and how late.
    slow: Mutex<Option<(tokio::time::Instant, Duration)>>,
    requests: Mutex<Vec<RecordedRequest>>,
    address: Mutex<Option<SocketAddr>>,
    options: FakeKubeOptions,
    shutdown: CancellationToken,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shared {
    fn store(&self) -> MutexGuard<'_, Store> {
        lock(&self.store)
    }

    fn server_address(&self) -> String {
        lock(&self.address).map_or_else(String::new, |a| a.to_string())
    }

    /// Waits out the slowness set by [`FakeKube::slow_for`], if any is in force.
    async fn slow_down(&self) {
        let delay = match *lock(&self.slow) {
            Some((until, delay)) if tokio::time::Instant::now() < until => delay,
            _ => return,
        };
        tokio::time::sleep(delay).await;
    }

    fn record(&self, request: RecordedRequest) {
        let mut requests = lock(&self.requests);
        // Bounded, so a long-running dev fake does not grow without limit.
        if requests.len() >= 100_000 {
            requests.drain(..50_000);
        }
        requests.push(request);
    }

    fn take_fault(
        &self,
        verb: &str,
        spec: &KindSpec,
        _namespace: Option<&str>,
        name: Option<&str>,
    ) -> Option<ApiError> {
        let mut faults = lock(&self.faults);
        let fault = faults
            .iter_mut()
            .find(|f| f.matches(verb, &spec.plural, name))?;
        if let Some(remaining) = fault.remaining.as_mut() {
            *remaining -= 1;
        }
        let message = fault.message.clone().unwrap_or_else(|| match fault.code {
            403 => format!(
                "{} is forbidden: User \"system:serviceaccount:default:adapter\" cannot {verb} resource \"{}\" in API group \"{}\"",
                store::resource_name(spec),
                spec.plural,
                spec.group
            ),
            code => format!("injected failure: {} ({code})", store::reason_for(code)),
        });
        Some(ApiError::new(fault.code, message))
    }

    /// What a controller would do after a create: Jobs start a Pod.
    fn after_create(self: &Arc<Self>, spec: &KindSpec, object: &Value) {
        if spec.group != "batch" || spec.kind != "Job" {
            return;
        }
        if let Err(error) = jobs::start(&mut self.store(), object) {
            eprintln!(
                "fake-kube: could not start the Job's pod: {}",
                error.message
            );
        }
        if let Some(delay) = self.options.complete_jobs_after {
            let shared = Arc::clone(self);
            let namespace = object["metadata"]["namespace"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            let name = object["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            tokio::spawn(async move {
                tokio::select! {
                    () = shared.shutdown.cancelled() => {}
                    () = tokio::time::sleep(delay) => {
                        let _ = jobs::finish(&mut shared.store(), &namespace, &name, &JobOutcome::Succeeded);
                    }
                }
            });
        }
    }
}

/// A running fake API server. Clones share the same server and state.
#[derive(Clone)]
pub struct FakeKube {
    shared: Arc<Shared>,
    url: String,
}

impl FakeKube {
    /// Serves on an ephemeral loopback port.
    pub async fn start() -> Self {
        Self::start_with(FakeKubeOptions::default()).await
    }

    pub async fn start_with(options: FakeKubeOptions) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind an ephemeral port");
        Self::serve(listener, options)
    }

    /// Serves on `listener` until [`FakeKube::shutdown`] (the `fake-kube` binary uses this).
    pub fn serve(listener: TcpListener, options: FakeKubeOptions) -> Self {
        let address = listener.local_addr().expect("local address");
        let mut kinds = kinds::builtin();
        kinds.extend(options.extra_kinds.iter().cloned());
        let shared = Arc::new(Shared {
            store: Mutex::new(Store::new(kinds)),
            faults: Mutex::new(Vec::new()),
            slow: Mutex::new(None),
            requests: Mutex::new(Vec::new()),
            address: Mutex::new(Some(address)),
            options,
            shutdown: CancellationToken::new(),
        });
        let router = Self::router(shared.clone());
        let stop = shared.shutdown.clone();
        tokio::spawn(async move {
            let _ = axum::serve(listener, router)
                .with_graceful_shutdown(async move { stop.cancelled().await })
                .await;
        });
        Self {
            shared,
            url: format!("http://{address}"),
        }
    }

    fn router(shared: Arc<Shared>) -> Router {
        Router::new()
            .route("/fake/fail", axum::routing::post(http::fake_fail))
            .fallback(http::handle)
            .layer(axum::extract::DefaultBodyLimit::max(3 * 1024 * 1024))
            .with_state(shared)
    }

    /// Stops serving; open watches end.
    pub fn shutdown(&self) {
        self.shared.shutdown.cancel();
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// A kubeconfig (context `fake`, namespace `default`) that points at this server.
    pub fn kubeconfig(&self) -> String {
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n    server: {url}\nusers:\n- name: fake\n  user:\n    token: fake-token\ncontexts:\n- name: fake\n  context:\n    cluster: fake\n    user: fake\n    namespace: default\ncurrent-context: fake\n",
            url = self.url
        )
    }

    pub fn write_kubeconfig(&self, path: &Path) -> std::io::Result<()> {
        std::fs::write(path, self.kubeconfig())
    }

    /// The kubeconfig in a temporary file that is removed when the handle drops.
    pub fn kubeconfig_file(&self) -> KubeconfigFile {
        let path = std::env::temp_dir().join(format!(
            "fake-kube-{}.kubeconfig",
            uuid::Uuid::new_v4().simple()
        ));
        self.write_kubeconfig(&path).expect("write kubeconfig");
        KubeconfigFile { path }
    }

    /// Serves another kind from now on (e.g. a custom resource).
    pub fn register_kind(&self, spec: KindSpec) {
        self.shared.store().register(spec);
    }

    fn spec(&self, api_version: &str, kind: &str) -> KindSpec {
        self.shared
            .store()
            .kind_of(api_version, kind)
            .cloned()
            .unwrap_or_else(|| {
                panic!("the fake does not serve {api_version} {kind}; register_kind it first")
            })
    }

    /// The stored object, if any.
    pub fn get(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> Option<Value> {
        let spec = self.spec(api_version, kind);
        self.shared.store().get(&spec, namespace, name).ok()
    }

    /// Every object of a kind (in one namespace, or all).
    pub fn list(&self, api_version: &str, kind: &str, namespace: Option<&str>) -> Vec<Value> {
        let spec = self.spec(api_version, kind);
        self.shared
            .store()
            .list(&spec, namespace, &Default::default(), &Default::default())
            .items
    }

    /// Stores an object as given, status included (creating or overwriting it), bypassing
    /// validation of the request path. For seeding a test's starting state.
    pub fn put(&self, object: Value) -> Value {
        let api_version = object["apiVersion"]
            .as_str()
            .expect("apiVersion")
            .to_owned();
        let kind = object["kind"].as_str().expect("kind").to_owned();
        let spec = self.spec(&api_version, &kind);
        let name = object["metadata"]["name"]
            .as_str()
            .expect("metadata.name")
            .to_owned();
        let namespace = object["metadata"]["namespace"].as_str().map(str::to_owned);
        let status = object.get("status").cloned();
        let mut store = self.shared.store();
        let exists = store.get(&spec, namespace.as_deref(), &name).is_ok();
        let result = if exists {
            let replacement = object.clone();
            store.modify(&spec, namespace.as_deref(), &name, false, false, move |o| {
                let keep = o["metadata"].clone();
                *o = replacement;
                o["metadata"]["resourceVersion"] = keep["resourceVersion"].clone();
                Ok(())
            })
        } else {
            store.create(&spec, namespace.as_deref(), object, false)
        };
        let stored = result.unwrap_or_else(|e| panic!("put {kind} {name}: {}", e.message));
        match status {
            Some(status) => store
                .modify(&spec, namespace.as_deref(), &name, true, false, |o| {
                    o["status"] = status;
                    Ok(())
                })
                .expect("set status"),
            None => stored,
        }
    }

    /// Replaces an object's status, as its controller would. Panics when it does not exist.
    pub fn set_status(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
        status: Value,
    ) -> Value {
        let spec = self.spec(api_version, kind);
        self.shared
            .store()
            .modify(&spec, namespace, name, true, false, |o| {
                o["status"] = status;
                Ok(())
            })
            .unwrap_or_else(|e| panic!("set_status {kind} {name}: {}", e.message))
    }

    /// Deletes an object as a user with `kubectl delete` would. Whether it existed.
    pub fn remove(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> bool {
        let spec = self.spec(api_version, kind);
        self.shared
            .store()
            .delete(&spec, namespace, name, None, false)
            .is_ok()
    }

    /// The Job's Pod succeeds and the Job becomes `Complete`. Panics when the Job is absent.
    pub fn complete_job(&self, namespace: &str, name: &str) {
        jobs::finish(
            &mut self.shared.store(),
            namespace,
            name,
            &JobOutcome::Succeeded,
        )
        .unwrap_or_else(|e| panic!("complete_job {namespace}/{name}: {}", e.message));
    }

    /// The Job's Pod fails and the Job becomes `Failed` with `reason`.
    pub fn fail_job(&self, namespace: &str, name: &str, reason: &str, message: &str) {
        let outcome = JobOutcome::Failed {
            reason: reason.into(),
            message: message.into(),
        };
        jobs::finish(&mut self.shared.store(), namespace, name, &outcome)
            .unwrap_or_else(|e| panic!("fail_job {namespace}/{name}: {}", e.message));
    }

    /// The text `GET .../pods/<pod>/log` returns.
    pub fn set_pod_log(&self, namespace: &str, pod: &str, text: &str) {
        self.shared
            .store()
            .pod_logs
            .insert((namespace.into(), pod.into()), text.into());
    }

    /// Makes matching requests fail; faults are checked in the order they were added.
    pub fn inject(&self, fault: Fault) {
        lock(&self.shared.faults).push(fault);
    }

    pub fn clear_faults(&self) {
        lock(&self.shared.faults).clear();
        *lock(&self.shared.slow) = None;
    }

    /// Every API request is answered `delay` late during the next `period` (a slow API
    /// server); `/fake/*` is not delayed.
    pub fn slow_for(&self, delay: Duration, period: Duration) {
        *lock(&self.shared.slow) = Some((tokio::time::Instant::now() + period, delay));
    }

    /// Every request received so far, oldest first.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.shared.requests).clone()
    }

    /// How many requests had this verb on this resource plural.
    pub fn count(&self, verb: &str, resource: &str) -> usize {
        lock(&self.shared.requests)
            .iter()
            .filter(|r| r.verb == verb && r.resource.as_deref() == Some(resource))
            .count()
    }

    /// A status-free snapshot of the whole store, for debugging a failing test.
    pub fn dump(&self) -> Value {
        let store = self.shared.store();
        let kinds: Vec<KindSpec> = store.kinds().to_vec();
        let mut out = serde_json::Map::new();
        for spec in kinds {
            let items = store
                .list(&spec, None, &Default::default(), &Default::default())
                .items;
            if !items.is_empty() {
                out.insert(
                    format!("{}/{}", spec.api_version(), spec.kind),
                    json!(items),
                );
            }
        }
        Value::Object(out)
    }
}

/// A kubeconfig written to a temporary file; the file is removed on drop.
pub struct KubeconfigFile {
    path: PathBuf,
}

impl KubeconfigFile {
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for KubeconfigFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests;

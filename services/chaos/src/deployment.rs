//! A deployment the suite runs against instead of starting processes of its own
//! (`steadfast-chaos run --target FILE`, docs/runbooks/chaos.md): a staging installation,
//! configured for the suite (its herder pointed at a fake GitLab, its reconciler at a fake
//! Webex), whose URLs, broker, databases and kill commands the file names.
//!
//! Only what the suite can do from outside is offered: the load, `kill` faults through the
//! commands given (e.g. `kubectl delete pod`; the orchestrator restarts the pod), `fake-5xx`
//! through the fakes, and every invariant, read from the deployment's broker and databases.
//! Infrastructure faults need infrastructure the suite owns; against a deployment they are
//! injected with the operator's own tooling while the suite runs.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::cli::RunArgs;
use crate::faults::FaultKind;
use crate::infra::Management;
use crate::load::{self, Targets};
use crate::proxy::BrokerProxies;
use crate::run::RunError;
use crate::stack::{Launch, ProcSpec, Readiness, Role, Stack};
use crate::system::{Cleanup, CleanupGuard, Evidence, Fakes, ManagementLogin, System};

/// Why a deployment file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum DeploymentError {
    #[error("cannot read the deployment file {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the deployment file {} is not valid: {message}", path.display())]
    Invalid { path: PathBuf, message: String },
}

/// A secret given inline or, better, as a file (a mounted Kubernetes secret).
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SecretSource {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<PathBuf>,
}

impl SecretSource {
    fn inline(value: &str) -> Self {
        Self {
            value: Some(value.to_owned()),
            file: None,
        }
    }
}

/// One process of the deployment.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceTarget {
    /// Base URL of its HTTP port (`/readyz` is asked there; the receivers get the load there,
    /// the reconcilers are asked for their incidents there).
    pub url: String,
    /// Shell command that kills it (`kill` faults), e.g. `kubectl -n steadfast delete pod
    /// webhook-receiver-0 --grace-period=0 --force`; its orchestrator must start it again.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kill: Option<String>,
}

/// The broker the deployment uses.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct BrokerTarget {
    /// `amqp://` URL(s), comma separated for a cluster: the suite's probe queue consumes here.
    pub amqp_url: String,
    /// The management API (`http://host:15672/api`), for queue depths and parked messages.
    pub management_url: String,
    pub user: String,
    pub password: SecretSource,
}

/// Read access to the services' databases: the evidence that events reached them.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseTargets {
    /// The receivers' (its `webhook_spool` must be empty at the end).
    pub receiver: SecretSource,
    /// The pipeline-herder's (its ledger of decisions).
    pub herder: SecretSource,
    /// The alert-reconciler's (its processed events).
    pub reconciler: SecretSource,
}

/// The deployment file (`fakes` as [`Fakes`]: the fakes deployed beside the services).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct File {
    namespace: String,
    services: BTreeMap<String, ServiceTarget>,
    fleet_api: String,
    adapter_queue: String,
    fakes: Fakes,
    broker: BrokerTarget,
    databases: DatabaseTargets,
    gitlab_webhook_secret: SecretSource,
    alertmanager_token: SecretSource,
    reconciler_api_token: SecretSource,
}

/// A deployment, read and checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deployment {
    /// The deployment's `STEADFAST_NAMESPACE`.
    pub namespace: String,
    /// Every process, by the names the fault schedule uses.
    pub services: BTreeMap<String, ServiceTarget>,
    pub fleet_api: String,
    /// The adapter's HyperFleet queue, `<topic>-<subscription_id>`.
    pub adapter_queue: String,
    pub fakes: Fakes,
    pub amqp_url: String,
    pub management_url: String,
    pub management_user: String,
    pub management_password: String,
    pub receiver_db: String,
    pub herder_db: String,
    pub reconciler_db: String,
    pub gitlab_webhook_secret: String,
    pub alertmanager_token: String,
    pub reconciler_api_token: String,
}

/// The names a deployment's services must have: what the fault schedule and the evidence
/// refer to.
const SINGLE: [&str; 3] = ["pipeline-herder", "sentinel", "adapter"];
const REPLICATED: [&str; 2] = ["webhook-receiver", "alert-reconciler"];

impl Deployment {
    /// Reads and checks `path`; `faults` are the kinds the run will inject.
    pub fn load(path: &Path, faults: &[FaultKind]) -> Result<Self, DeploymentError> {
        let text = std::fs::read_to_string(path).map_err(|source| DeploymentError::Read {
            path: path.to_owned(),
            source,
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        Self::parse(&text, base, faults).map_err(|message| DeploymentError::Invalid {
            path: path.to_owned(),
            message,
        })
    }

    /// Parses a deployment file's text; relative secret files are read from `base`.
    pub fn parse(text: &str, base: &Path, faults: &[FaultKind]) -> Result<Self, String> {
        let file: File = serde_norway::from_str(text).map_err(|e| e.to_string())?;
        check_namespace(&file.namespace)?;
        for name in file.services.keys() {
            let known = SINGLE.contains(&name.as_str())
                || REPLICATED.iter().any(|r| replica_number(name, r).is_some());
            if !known {
                return Err(format!(
                    "services.{name}: unknown service (expected {}, or {} with -1, -2, ...)",
                    SINGLE.join(", "),
                    REPLICATED.join(" or ")
                ));
            }
        }
        for name in SINGLE {
            if !file.services.contains_key(name) {
                return Err(format!("services.{name} is missing"));
            }
        }
        for prefix in REPLICATED {
            if !file.services.contains_key(&format!("{prefix}-1")) {
                return Err(format!(
                    "services.{prefix}-1 is missing (replicas are numbered from 1)"
                ));
            }
        }
        for (name, service) in &file.services {
            check_url(&format!("services.{name}.url"), &service.url)?;
            if service.kill.as_deref().is_some_and(|k| k.trim().is_empty()) {
                return Err(format!("services.{name}.kill is empty"));
            }
        }
        if faults.contains(&FaultKind::Kill) {
            let unkillable: Vec<&str> = file
                .services
                .iter()
                .filter(|(_, s)| s.kill.is_none())
                .map(|(n, _)| n.as_str())
                .collect();
            if !unkillable.is_empty() {
                return Err(format!(
                    "`kill` faults need a kill command for every service; none for {}",
                    unkillable.join(", ")
                ));
            }
        }
        let refused: Vec<&str> = faults
            .iter()
            .filter(|k| !matches!(k, FaultKind::Kill | FaultKind::Fake5xx | FaultKind::None))
            .map(|k| k.as_str())
            .collect();
        if !refused.is_empty() {
            return Err(format!(
                "{} faults need infrastructure the suite owns; against a deployment, use \
--faults kill,fake-5xx and inject the others with your own tooling while the suite runs",
                refused.join(", ")
            ));
        }
        for (field, url) in [
            ("fleet_api", &file.fleet_api),
            ("fakes.gitlab", &file.fakes.gitlab),
            ("fakes.webex", &file.fakes.webex),
            ("broker.management_url", &file.broker.management_url),
        ] {
            check_url(field, url)?;
        }
        if let Some(kube) = &file.fakes.kube {
            check_url("fakes.kube", kube)?;
        }
        for (i, url) in file.broker.amqp_url.split(',').enumerate() {
            if !(url.starts_with("amqp://") || url.starts_with("amqps://")) {
                return Err(format!(
                    "broker.amqp_url: address {} must start with amqp:// or amqps://",
                    i + 1
                ));
            }
        }
        if !file.adapter_queue.starts_with(&file.namespace) {
            return Err(format!(
                "adapter_queue {:?} does not start with the namespace {:?} (its topic is \
`<namespace>-clusters` in the shipped configuration)",
                file.adapter_queue, file.namespace
            ));
        }
        let secret = |field: &str, source: &SecretSource| read_secret(field, source, base);
        Ok(Self {
            management_password: secret("broker.password", &file.broker.password)?,
            receiver_db: secret("databases.receiver", &file.databases.receiver)?,
            herder_db: secret("databases.herder", &file.databases.herder)?,
            reconciler_db: secret("databases.reconciler", &file.databases.reconciler)?,
            gitlab_webhook_secret: secret("gitlab_webhook_secret", &file.gitlab_webhook_secret)?,
            alertmanager_token: secret("alertmanager_token", &file.alertmanager_token)?,
            reconciler_api_token: secret("reconciler_api_token", &file.reconciler_api_token)?,
            namespace: file.namespace,
            services: file.services,
            fleet_api: trim(&file.fleet_api),
            adapter_queue: file.adapter_queue,
            fakes: Fakes {
                gitlab: trim(&file.fakes.gitlab),
                webex: trim(&file.fakes.webex),
                kube: file.fakes.kube.as_deref().map(trim),
            },
            amqp_url: file.broker.amqp_url,
            management_url: trim(&file.broker.management_url),
            management_user: file.broker.user,
        })
    }

    /// The deployment file that describes it, every secret inline (what `steadfast-chaos
    /// stack` writes for the stack it holds); [`Deployment::parse`] reads it back.
    pub fn to_yaml(&self) -> String {
        let file = File {
            namespace: self.namespace.clone(),
            services: self.services.clone(),
            fleet_api: self.fleet_api.clone(),
            adapter_queue: self.adapter_queue.clone(),
            fakes: self.fakes.clone(),
            broker: BrokerTarget {
                amqp_url: self.amqp_url.clone(),
                management_url: self.management_url.clone(),
                user: self.management_user.clone(),
                password: SecretSource::inline(&self.management_password),
            },
            databases: DatabaseTargets {
                receiver: SecretSource::inline(&self.receiver_db),
                herder: SecretSource::inline(&self.herder_db),
                reconciler: SecretSource::inline(&self.reconciler_db),
            },
            gitlab_webhook_secret: SecretSource::inline(&self.gitlab_webhook_secret),
            alertmanager_token: SecretSource::inline(&self.alertmanager_token),
            reconciler_api_token: SecretSource::inline(&self.reconciler_api_token),
        };
        serde_norway::to_string(&file).unwrap_or_default()
    }

    /// The replicas of `prefix` (`webhook-receiver`), in order of their number.
    pub fn replicas(&self, prefix: &str) -> Vec<String> {
        let mut names: Vec<(u32, &String)> = self
            .services
            .keys()
            .filter_map(|n| replica_number(n, prefix).map(|i| (i, n)))
            .collect();
        names.sort();
        names.into_iter().map(|(_, n)| n.clone()).collect()
    }

    /// The processes as the stack sees them: not started by the suite, killed by their command.
    pub fn specs(&self) -> Vec<ProcSpec> {
        self.services
            .iter()
            .map(|(name, service)| {
                let url = trim(&service.url);
                ProcSpec {
                    name: name.clone(),
                    role: Role::Service,
                    launch: Launch::Deployed {
                        kill: service.kill.clone(),
                    },
                    ready: Readiness::Ok200(format!("{url}/readyz")),
                    http: url,
                }
            })
            .collect()
    }
}

fn trim(url: &str) -> String {
    url.trim_end_matches('/').to_owned()
}

/// `n` of `<prefix>-<n>`, n ≥ 1.
fn replica_number(name: &str, prefix: &str) -> Option<u32> {
    name.strip_prefix(prefix)?
        .strip_prefix('-')?
        .parse()
        .ok()
        .filter(|n| *n >= 1)
}

fn check_url(field: &str, url: &str) -> Result<(), String> {
    if url.starts_with("http://") || url.starts_with("https://") {
        Ok(())
    } else {
        Err(format!(
            "{field}: {url:?} is not an http:// or https:// URL"
        ))
    }
}

/// The namespace prefixes every queue the suite reads and the one it creates (its probe): a
/// wildcard or an empty one would reach other installations' queues.
fn check_namespace(namespace: &str) -> Result<(), String> {
    let valid = !namespace.is_empty()
        && namespace
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if valid {
        Ok(())
    } else {
        Err(format!(
            "namespace {namespace:?} must be letters, digits, '-' and '_' (the deployment's \
STEADFAST_NAMESPACE)"
        ))
    }
}

fn read_secret(field: &str, source: &SecretSource, base: &Path) -> Result<String, String> {
    match (&source.value, &source.file) {
        (Some(_), Some(_)) => Err(format!("{field}: give value or file, not both")),
        (None, None) => Err(format!("{field}: give value or file")),
        (Some(value), None) => Ok(value.clone()),
        (None, Some(file)) => {
            let path = base.join(file);
            let text = std::fs::read_to_string(&path)
                .map_err(|e| format!("{field}: cannot read {}: {e}", path.display()))?;
            let value = text.trim_end_matches(['\r', '\n']).to_owned();
            if value.is_empty() {
                return Err(format!("{field}: {} is empty", path.display()));
            }
            Ok(value)
        }
    }
}

/// Reads the deployment file at `path` and makes it the run's system: the load goes to its
/// receivers, the evidence is read from its broker and databases, and nothing of it is
/// started, stopped or deleted except the run's own probe queue.
pub async fn attach(
    args: &RunArgs,
    path: &Path,
    dir: &Path,
    run_tag: &str,
) -> Result<System, RunError> {
    if !args.sabotage.is_empty() {
        return Err(RunError::Refused(
            "--sabotage breaks what it runs against: only with a stack of the suite's own".into(),
        ));
    }
    if args.infra.cluster {
        return Err(RunError::Refused(
            "--cluster starts a broker of the suite's own: the deployment has its own".into(),
        ));
    }
    let deployment = Deployment::load(path, &args.faults)?;
    let management = Management::new(
        &deployment.management_url,
        &deployment.management_user,
        &deployment.management_password,
    );
    // Before anything is created: a run whose cleanup cannot reach the management API would
    // leave its probe queue behind.
    management.queues(&deployment.namespace).await?;
    let first_job_id = load::first_job_id(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
    );
    // The fake GitLab numbers the jobs retries create after the load's range (its ids and the
    // herder's ledger outlive the run).
    number_retry_jobs(
        &deployment.fakes.gitlab,
        load::first_retry_job_id(first_job_id),
    )
    .await?;
    let mut stack = Stack::new(args.ready_timeout);
    stack.start_group(deployment.specs()).await?;
    let guard = CleanupGuard((!args.keep).then(|| Cleanup {
        databases: None,
        management: management.clone(),
        prefix: format!("{}.{run_tag}.", deployment.namespace),
        alive_file: dir.join("alive"),
    }));
    let receivers = deployment
        .replicas("webhook-receiver")
        .iter()
        .map(|n| trim(&deployment.services[n].url))
        .collect();
    Ok(System {
        stack,
        namespace: deployment.namespace.clone(),
        amqp_urls: deployment.amqp_url.split(',').map(str::to_owned).collect(),
        management,
        management_login: ManagementLogin {
            url: deployment.management_url.clone(),
            user: deployment.management_user.clone(),
            password: deployment.management_password.clone(),
        },
        targets: Targets {
            receivers,
            fake_gitlab: deployment.fakes.gitlab.clone(),
            gitlab_secret: deployment.gitlab_webhook_secret.clone(),
            alertmanager_token: deployment.alertmanager_token.clone(),
            run_tag: run_tag.to_owned(),
            first_job_id,
        },
        fakes: deployment.fakes.clone(),
        fleet_api: deployment.fleet_api.clone(),
        adapter_queue: deployment.adapter_queue.clone(),
        evidence: Evidence {
            receiver_db: deployment.receiver_db.clone(),
            herder_db: deployment.herder_db.clone(),
            reconciler_db: deployment.reconciler_db.clone(),
        },
        reconciler_token: deployment.reconciler_api_token.clone(),
        recipes: Vec::new(),
        reconcilers: deployment.replicas("alert-reconciler"),
        proxies: BrokerProxies::default(),
        guard,
        private: None,
        deployed: true,
        kept: format!("the probe queue {}.{run_tag}.probe", deployment.namespace),
    })
}

/// `POST /fake/job-ids` on the fake GitLab.
async fn number_retry_jobs(fake_gitlab: &str, next: u64) -> Result<(), RunError> {
    let url = format!("{fake_gitlab}/fake/job-ids");
    let refused = |detail: String| {
        RunError::Refused(format!(
            "the fake GitLab cannot number retried jobs from {next} ({url}: {detail}); is it \
the fake (services/fakes/fake-gitlab) of this version?"
        ))
    };
    let response = reqwest::Client::new()
        .post(&url)
        .json(&serde_json::json!({ "next": next }))
        .timeout(std::time::Duration::from_secs(10))
        .send()
        .await
        .map_err(|e| refused(e.to_string()))?;
    if response.status().is_success() {
        Ok(())
    } else {
        let status = response.status();
        let body = response.text().await.unwrap_or_default();
        Err(refused(format!(
            "{status}: {}",
            body.chars().take(200).collect::<String>()
        )))
    }
}

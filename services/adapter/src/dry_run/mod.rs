//! Dry-run: one event through the real pipeline with a recorded API and an in-memory cluster,
//! printing each phase, every rendered manifest and the status payload. Touches no broker, API
//! or cluster. File formats are HyperFleet's:
//!
//! * the event: a full CloudEvent (JSON);
//! * `--dry-run-api-responses`: `{"responses": [{"match": {"method": "GET", "urlPattern":
//!   "<regex>"}, "responses": [{"statusCode": 200, "headers": {...}, "body": {...}}, ...]}]}` —
//!   an endpoint's responses are served in order, the last one repeating; a call nothing
//!   matches gets 200 with `{}`;
//! * `--dry-run-discovery`: `{"<rendered metadata.name>": {<full object>}}` — what the cluster
//!   reports for an applied object (status, uid, ...).
//! * [`render`] — the trace as text or JSON; [`trace`] — what one run recorded;
//! * the recorded API is [`crate::hyperfleet_api::MockApi`], the cluster
//!   [`crate::transport::MemoryCluster`].

mod render;
mod trace;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::Value;
use steadfast_events::{Envelope, EnvelopeError};

use crate::config::Loaded;
use crate::hyperfleet_api::ApiClient;
pub use crate::hyperfleet_api::{MockApi, MockFileError, RecordedCall};
use crate::pipeline::{Executor, RunOptions};
use crate::transport::{MemoryCluster, Transport};

pub use render::Output;
pub use trace::Trace;

/// Why a dry run could not start: one of its input files is unreadable or invalid.
#[derive(Debug, thiserror::Error)]
pub enum DryRunError {
    #[error("cannot read {what} `{}`: {source}", .path.display())]
    Read {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("dry-run event `{}` is not valid: {source}", .path.display())]
    InvalidEvent {
        path: PathBuf,
        #[source]
        source: EnvelopeError,
    },
    #[error("dry-run discovery file `{}` is not valid: {source}", .path.display())]
    DiscoveryJson {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("dry-run discovery file `{}` is not valid: discovery override \"{name}\" is missing required field \"{field}\"", .path.display())]
    DiscoveryField {
        path: PathBuf,
        name: String,
        field: &'static str,
    },
    #[error(transparent)]
    ApiResponses(#[from] MockFileError),
}

fn read(what: &'static str, path: &Path) -> Result<String, DryRunError> {
    std::fs::read_to_string(path).map_err(|source| DryRunError::Read {
        what,
        path: path.to_owned(),
        source,
    })
}

/// Reads the discovery overrides; each needs `apiVersion` and `kind`.
pub fn load_discovery(path: &Path) -> Result<HashMap<String, Value>, DryRunError> {
    let overrides: HashMap<String, Value> =
        serde_json::from_str(&read("dry-run discovery file", path)?).map_err(|source| {
            DryRunError::DiscoveryJson {
                path: path.to_owned(),
                source,
            }
        })?;
    for (name, object) in &overrides {
        for field in ["apiVersion", "kind"] {
            if object.get(field).is_none() {
                return Err(DryRunError::DiscoveryField {
                    path: path.to_owned(),
                    name: name.clone(),
                    field,
                });
            }
        }
    }
    Ok(overrides)
}

/// Reads the event: a CloudEvent, validated as our consumers validate them.
pub fn load_event(path: &Path) -> Result<Envelope<Value>, DryRunError> {
    let text = read("dry-run event", path)?;
    Envelope::<Value>::from_json(text.as_bytes(), steadfast_events::DEFAULT_MAX_EVENT_BYTES)
        .map_err(|source| DryRunError::InvalidEvent {
            path: path.to_owned(),
            source,
        })
}

/// Inputs of one dry run.
pub struct DryRun<'a> {
    pub event: &'a Path,
    pub api_responses: Option<&'a Path>,
    pub discovery: Option<&'a Path>,
    pub verbose: bool,
}

/// Runs the event through the pipeline with mocks.
pub async fn run(
    loaded: Arc<Loaded>,
    inputs: &DryRun<'_>,
    environment: &BTreeMap<String, String>,
) -> Result<Trace, DryRunError> {
    let event = load_event(inputs.event)?;
    let mock = Arc::new(match inputs.api_responses {
        Some(path) => MockApi::from_file(path)?,
        None => MockApi::default(),
    });
    let overrides = match inputs.discovery {
        Some(path) => load_discovery(path)?,
        None => HashMap::new(),
    };
    let api = Arc::new(ApiClient::mock(
        &loaded.adapter.clients.hyperfleet_api,
        Arc::clone(&mock),
    ));
    let transport = Arc::new(Transport::Memory(MemoryCluster::new(overrides)));
    let executor = Executor::new(loaded, api, Arc::clone(&transport), environment, None);
    let result = executor
        .execute(
            &event.data,
            RunOptions {
                report_transient: true,
            },
        )
        .await;
    let operations = match transport.as_ref() {
        Transport::Memory(memory) => memory.records(),
        Transport::Kube(_) => Vec::new(),
    };
    Ok(Trace {
        event_id: event.id,
        event_type: event.event_type,
        result,
        calls: mock.calls(),
        operations,
        verbose: inputs.verbose,
    })
}

//! The recorded HyperFleet API the dry run (and the benchmarks) answer from, in HyperFleet's
//! file format: `{"responses": [{"match": {"method": "GET", "urlPattern": "<regex>"},
//! "responses": [{"statusCode": 200, "headers": {...}, "body": {...}}, ...]}]}` — an endpoint's
//! responses are served in order, the last one repeating; a call nothing matches gets 200 with
//! `{}`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Why a responses file cannot be used. The texts name the file as the dry run's other inputs
/// do (`cannot read <what> ...`, `<what> ... is not valid: ...`).
#[derive(Debug, thiserror::Error)]
pub enum MockFileError {
    #[error("cannot read dry-run API responses file `{}`: {source}", .path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("dry-run API responses file `{}` is not valid: {source}", .path.display())]
    Json {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("dry-run API responses file `{}` is not valid: endpoint {index} has no responses defined", .path.display())]
    NoResponses { path: PathBuf, index: usize },
    #[error("dry-run API responses file `{}` is not valid: endpoint {index} has an empty urlPattern", .path.display())]
    EmptyPattern { path: PathBuf, index: usize },
    #[error("dry-run API responses file `{}` is not valid: endpoint {index}: urlPattern is not a valid regex: {source}", .path.display())]
    BadPattern {
        path: PathBuf,
        index: usize,
        #[source]
        source: regex::Error,
    },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ResponsesFile {
    responses: Vec<EndpointFile>,
}

#[derive(Debug, Deserialize)]
struct EndpointFile {
    #[serde(rename = "match")]
    matcher: MatchFile,
    responses: Vec<ResponseFile>,
}

#[derive(Debug, Deserialize)]
struct MatchFile {
    #[serde(default)]
    method: String,
    #[serde(rename = "urlPattern")]
    url_pattern: String,
}

#[derive(Debug, Clone, Deserialize)]
struct ResponseFile {
    #[serde(rename = "statusCode")]
    status: u16,
    #[serde(default)]
    #[allow(dead_code)]
    headers: BTreeMap<String, String>,
    #[serde(default)]
    body: Value,
}

struct Endpoint {
    method: String,
    pattern: regex::Regex,
    responses: Vec<ResponseFile>,
    served: AtomicUsize,
}

/// One call the mock answered.
#[derive(Debug, Clone, Serialize)]
pub struct RecordedCall {
    pub method: String,
    pub url: String,
    #[serde(rename = "statusCode")]
    pub status: u16,
    #[serde(rename = "requestBody", skip_serializing_if = "Option::is_none")]
    pub request: Option<String>,
    #[serde(rename = "responseBody")]
    pub response: String,
}

/// The recorded HyperFleet API.
#[derive(Default)]
pub struct MockApi {
    endpoints: Vec<Endpoint>,
    calls: Mutex<Vec<RecordedCall>>,
}

impl MockApi {
    /// Reads a responses file; every endpoint needs a pattern that compiles and a response.
    pub fn from_file(path: &Path) -> Result<Self, MockFileError> {
        let text = std::fs::read_to_string(path).map_err(|source| MockFileError::Read {
            path: path.to_owned(),
            source,
        })?;
        let file: ResponsesFile =
            serde_json::from_str(&text).map_err(|source| MockFileError::Json {
                path: path.to_owned(),
                source,
            })?;
        let mut endpoints = Vec::new();
        for (index, endpoint) in file.responses.into_iter().enumerate() {
            if endpoint.responses.is_empty() {
                return Err(MockFileError::NoResponses {
                    path: path.to_owned(),
                    index,
                });
            }
            if endpoint.matcher.url_pattern.is_empty() {
                return Err(MockFileError::EmptyPattern {
                    path: path.to_owned(),
                    index,
                });
            }
            let pattern = regex::Regex::new(&endpoint.matcher.url_pattern).map_err(|source| {
                MockFileError::BadPattern {
                    path: path.to_owned(),
                    index,
                    source,
                }
            })?;
            endpoints.push(Endpoint {
                method: endpoint.matcher.method.to_ascii_uppercase(),
                pattern,
                responses: endpoint.responses,
                served: AtomicUsize::new(0),
            });
        }
        Ok(Self {
            endpoints,
            calls: Mutex::new(Vec::new()),
        })
    }

    /// The next response for this call (and a record of it).
    pub fn answer(&self, method: &str, url: &str, body: Option<&str>) -> (u16, String) {
        let endpoint = self.endpoints.iter().find(|e| {
            (e.method.is_empty() || e.method == "*" || e.method == method)
                && e.pattern.is_match(url)
        });
        let (status, response) = match endpoint {
            Some(e) => {
                let n = e
                    .served
                    .fetch_add(1, Ordering::SeqCst)
                    .min(e.responses.len() - 1);
                let r = &e.responses[n];
                let text = match &r.body {
                    Value::Null => String::new(),
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                (r.status, text)
            }
            None => (200, "{}".to_owned()),
        };
        self.calls
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(RecordedCall {
                method: method.into(),
                url: url.into(),
                status,
                request: body.map(str::to_owned),
                response: response.clone(),
            });
        (status, response)
    }

    pub fn calls(&self) -> Vec<RecordedCall> {
        self.calls
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

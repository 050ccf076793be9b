//! Poison messages on purpose, and what the parked queues hold.
//!
//! The suite publishes a few invalid messages straight into the consumer queues of the run's
//! namespace (through the default exchange, so they reach exactly one consumer and never the
//! probe), records their ids, and invariant (e) then says the parked queues hold exactly those,
//! each with the reason the consumer gave. Everything goes through RabbitMQ's management HTTP
//! API (`POST /api/exchanges/<vhost>/amq.default/publish`, `POST /api/queues/.../get` with
//! `ack_requeue_true` to read without taking), the same API the rest of the suite uses; the
//! suite has no AMQP client of its own.

use std::time::Duration;

use serde::Serialize;
use serde_json::{Value, json};

use crate::cli::InfraArgs;

/// Messages read per parked queue at most (a run parks a handful; more is a finding anyway,
/// and the depth says how many there are).
const PEEK_LIMIT: u32 = 1000;

/// Why the management API could not be used.
#[derive(Debug, thiserror::Error)]
pub enum BrokerApiError {
    #[error("RabbitMQ management API {method} {path}: {source}")]
    Http {
        method: &'static str,
        path: String,
        source: reqwest::Error,
    },
    #[error("RabbitMQ management API {method} {path} answered {status}: {body}")]
    Status {
        method: &'static str,
        path: String,
        status: u16,
        body: String,
    },
    #[error("the message {id} published to {queue} was not routed (no such queue?)")]
    NotRouted { id: String, queue: String },
}

/// The slice of the management API the poison, the parked-queue check and the sabotage need
/// (vhost `/`).
#[derive(Clone)]
pub struct BrokerApi {
    base: String,
    user: String,
    password: String,
    http: reqwest::Client,
}

/// Percent-encodes a name for a path segment.
pub fn segment(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for byte in name.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(byte as char)
            }
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

impl BrokerApi {
    pub fn new(infra: &InfraArgs) -> Self {
        Self {
            base: infra.management_url.trim_end_matches('/').to_owned(),
            user: infra.management_user.clone(),
            password: infra.management_password.clone(),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap_or_default(),
        }
    }

    pub async fn call(
        &self,
        method: &'static str,
        path: String,
        body: Option<Value>,
    ) -> Result<Value, BrokerApiError> {
        let url = format!("{}/api{path}", self.base);
        let request = match method {
            "GET" => self.http.get(&url),
            "POST" => self.http.post(&url),
            "PUT" => self.http.put(&url),
            _ => self.http.delete(&url),
        }
        .basic_auth(&self.user, Some(&self.password));
        let request = match body {
            Some(body) => request.json(&body),
            None => request,
        };
        let http_error = |source| BrokerApiError::Http {
            method,
            path: path.clone(),
            source,
        };
        let response = request.send().await.map_err(http_error)?;
        let status = response.status().as_u16();
        let text = response.text().await.map_err(http_error)?;
        if !(200..300).contains(&status) {
            return Err(BrokerApiError::Status {
                method,
                path,
                status,
                body: text.chars().take(300).collect(),
            });
        }
        Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// Publishes `payload` with `message_id` straight into `queue` (the default exchange),
    /// persistent; fails unless it was routed.
    pub async fn publish_to_queue(
        &self,
        queue: &str,
        message_id: &str,
        content_type: &str,
        payload: &str,
    ) -> Result<(), BrokerApiError> {
        let answer = self
            .call(
                "POST",
                "/exchanges/%2F/amq.default/publish".into(),
                Some(json!({
                    "properties": {"message_id": message_id, "delivery_mode": 2,
                                   "content_type": content_type, "app_id": "steadfast-chaos"},
                    "routing_key": queue,
                    "payload": payload,
                    "payload_encoding": "string",
                })),
            )
            .await?;
        if answer["routed"] == true {
            Ok(())
        } else {
            Err(BrokerApiError::NotRouted {
                id: message_id.to_owned(),
                queue: queue.to_owned(),
            })
        }
    }

    /// Every queue (name and depth) whose name starts with `prefix`.
    pub async fn queues(&self, prefix: &str) -> Result<Vec<(String, u64)>, BrokerApiError> {
        let all = self
            .call("GET", "/queues/%2F?columns=name,messages".into(), None)
            .await?;
        Ok(all
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|q| {
                let name = q["name"].as_str()?;
                name.starts_with(prefix)
                    .then(|| (name.to_owned(), q["messages"].as_u64().unwrap_or(0)))
            })
            .collect())
    }

    /// The messages of every `*.parked` queue of the run (read and put back), and the depth of
    /// each parked queue.
    pub async fn parked(&self, prefix: &str) -> Result<Parked, BrokerApiError> {
        let mut out = Parked::default();
        for (queue, depth) in self.queues(prefix).await? {
            if !queue.ends_with(".parked") {
                continue;
            }
            out.depths.push((queue.clone(), depth));
            if depth == 0 {
                continue;
            }
            let got = self
                .call(
                    "POST",
                    format!("/queues/%2F/{}/get", segment(&queue)),
                    Some(json!({"count": PEEK_LIMIT, "ackmode": "ack_requeue_true",
                                "encoding": "auto", "truncate": 200})),
                )
                .await?;
            for message in got.as_array().into_iter().flatten() {
                let props = &message["properties"];
                let header = |name: &str| props["headers"][name].as_str().map(str::to_owned);
                out.messages.push(ParkedMessage {
                    queue: queue.clone(),
                    message_id: props["message_id"].as_str().map(str::to_owned),
                    reason: header("steadfast-parked-reason"),
                    error: header("steadfast-error"),
                });
            }
        }
        Ok(out)
    }
}

/// A parked message: where, its id, and why the consumer parked it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ParkedMessage {
    pub queue: String,
    pub message_id: Option<String>,
    /// `steadfast-parked-reason`.
    pub reason: Option<String>,
    /// `steadfast-error`.
    pub error: Option<String>,
}

/// What the parked queues hold.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Parked {
    pub messages: Vec<ParkedMessage>,
    /// Every parked queue of the run and its depth.
    pub depths: Vec<(String, u64)>,
}

/// A poison message the suite injected on purpose.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Poison {
    pub id: String,
    /// The consumer queue it was published to.
    pub queue: String,
    /// What is wrong with it.
    pub what: &'static str,
    /// Seconds since the run's start.
    pub at: f64,
}

/// The poison of a run: one per consumer, each invalid its own way, as (queue, what is wrong,
/// content type, payload with `{id}` where the message id goes). `adapter_queue` is the
/// adapter's HyperFleet queue (`<topic>-<subscription_id>`).
pub fn plan(
    namespace: &str,
    adapter_queue: &str,
) -> Vec<(String, &'static str, &'static str, String)> {
    let herder = format!("{namespace}.pipeline-herder.jobs");
    let alerts = format!("{namespace}.alert-reconciler.alerts");
    vec![
        (
            herder,
            "a body that is not a CloudEvent (not even JSON)",
            "text/plain",
            "this is not a CloudEvent: {{{".to_owned(),
        ),
        (
            alerts,
            "an Alertmanager alert event whose data lacks labels, status and startsAt",
            "application/cloudevents+json",
            json!({
                "specversion": "1.0",
                "id": "{id}",
                "source": "steadfast-chaos",
                "type": "io.prometheus.alertmanager.alert",
                "datacontenttype": "application/json",
                "data": {"fingerprint": "c4a05poison"},
            })
            .to_string(),
        ),
        (
            adapter_queue.to_owned(),
            "a JSON object that is not a CloudEvent (no specversion, id, source or type)",
            "application/json",
            json!({"kind": "Cluster", "id": "not-an-event"}).to_string(),
        ),
    ]
}

/// Publishes the poison of [`plan`] with ids `<namespace>-poison-<n>`; returns what was
/// injected (those that could not be published are errors, not injected).
pub async fn inject(
    api: &BrokerApi,
    namespace: &str,
    adapter_queue: &str,
    at: f64,
) -> (Vec<Poison>, Vec<BrokerApiError>) {
    let mut injected = Vec::new();
    let mut errors = Vec::new();
    for (n, (queue, what, content_type, payload)) in
        plan(namespace, adapter_queue).into_iter().enumerate()
    {
        let id = format!("{namespace}-poison-{n}");
        match api
            .publish_to_queue(&queue, &id, content_type, &payload.replace("{id}", &id))
            .await
        {
            Ok(()) => injected.push(Poison {
                id,
                queue,
                what,
                at,
            }),
            Err(error) => errors.push(error),
        }
    }
    (injected, errors)
}

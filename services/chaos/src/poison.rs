//! Poison messages on purpose, and what the parked queues hold.
//!
//! The suite publishes a few invalid messages straight into the consumer queues of the run's
//! namespace (through the default exchange, so they reach exactly one consumer and never the
//! probe), records their ids, and invariant (e) then says the parked queues hold exactly those,
//! each with the reason the consumer gave. Everything goes through RabbitMQ's management HTTP
//! API (`POST /api/exchanges/<vhost>/amq.default/publish`, `POST /api/queues/.../get` with
//! `ack_requeue_true` to read without taking), through the suite's one management client
//! ([`Management`], which fails over between a cluster's nodes).

use std::collections::HashMap;

use serde::Serialize;
use serde_json::json;

use crate::infra::{InfraError, Management, QueueInfo, segment};

/// Messages read per parked queue at most (a run parks a handful; more is a finding anyway,
/// and the depth says how many there are).
const PEEK_LIMIT: u32 = 1000;

/// Why a poison message could not be injected.
#[derive(Debug, thiserror::Error)]
pub enum PoisonError {
    #[error(transparent)]
    Management(#[from] InfraError),
    #[error("the message {id} published to {queue} was not routed (no such queue?)")]
    NotRouted { id: String, queue: String },
}

/// What poison and the parked-queue check add to the suite's management API client.
impl Management {
    /// Publishes `payload` with `message_id` straight into `queue` (the default exchange),
    /// persistent; fails unless it was routed.
    pub async fn publish_to_queue(
        &self,
        queue: &str,
        message_id: &str,
        content_type: &str,
        payload: &str,
    ) -> Result<(), PoisonError> {
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
            Err(PoisonError::NotRouted {
                id: message_id.to_owned(),
                queue: queue.to_owned(),
            })
        }
    }

    /// The messages of every `*.parked` queue of the run (read and put back), and the depth of
    /// each parked queue.
    pub async fn parked(&self, prefix: &str) -> Result<Parked, InfraError> {
        let mut out = Parked::default();
        for QueueInfo {
            name: queue,
            messages: depth,
            ..
        } in self.queues(prefix).await?
        {
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

impl Parked {
    /// What is parked now that was not parked `before`: messages matched by queue and message
    /// id (each earlier one once), depths less the earlier depth of the same queue.
    pub fn without(mut self, before: &Parked) -> Parked {
        let mut earlier: HashMap<(String, Option<String>), usize> = HashMap::new();
        for m in &before.messages {
            *earlier
                .entry((m.queue.clone(), m.message_id.clone()))
                .or_default() += 1;
        }
        self.messages.retain(
            |m| match earlier.get_mut(&(m.queue.clone(), m.message_id.clone())) {
                Some(n) if *n > 0 => {
                    *n -= 1;
                    false
                }
                _ => true,
            },
        );
        for (queue, depth) in &mut self.depths {
            let old = before
                .depths
                .iter()
                .find(|(q, _)| q == queue)
                .map_or(0, |(_, d)| *d);
            *depth = depth.saturating_sub(old);
        }
        self
    }
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
    api: &Management,
    namespace: &str,
    adapter_queue: &str,
    at: f64,
) -> (Vec<Poison>, Vec<PoisonError>) {
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

//! A broker namespace of one's own, removed when the test ends.

use std::time::Duration;

use steadfast_events::Envelope;
use steadfast_messaging::admin::{self, RawMessage};
use steadfast_messaging::{Broker, BrokerConfig, MessagingMetrics, Namespace};

/// `AMQP_URL`, or the local broker's guest account.
pub fn amqp_url() -> String {
    std::env::var("AMQP_URL").unwrap_or_else(|_| steadfast_messaging::DEFAULT_AMQP_URL.into())
}

fn management_url() -> String {
    std::env::var("RABBITMQ_MANAGEMENT_URL").unwrap_or_else(|_| "http://127.0.0.1:15672".into())
}

/// A unique namespace (`t-<hex>`) on the real local broker, and a connected [`Broker`] for the
/// test's own publishing and probing. Dropping it deletes every queue and exchange whose name
/// starts with the namespace, so quorum queues do not pile up on the broker across runs.
pub struct TestBroker {
    pub namespace: Namespace,
    pub broker: Broker,
}

impl TestBroker {
    pub async fn new() -> Self {
        let namespace = Namespace::new(crate::unique_name("t")).expect("valid namespace");
        let broker = Broker::connect(
            Self::config_for(&format!("test-{namespace}")),
            MessagingMetrics::unregistered().expect("metrics"),
            Duration::from_secs(15),
        )
        .await
        .expect("the local RabbitMQ must be running (scripts/ensure-services.sh starts it)");
        Self { namespace, broker }
    }

    /// Broker settings for a component under test, with short deadlines.
    pub fn config_for(app_id: &str) -> BrokerConfig {
        let mut config = BrokerConfig::new(&amqp_url(), app_id).expect("valid AMQP_URL");
        config.reconnect_min = Duration::from_millis(50);
        config.reconnect_max = Duration::from_millis(500);
        config
    }

    /// A second, independent connection (the component under test should not share ours).
    pub fn start_broker(&self, app_id: &str) -> Broker {
        Broker::start(
            Self::config_for(app_id),
            MessagingMetrics::unregistered().expect("metrics"),
        )
    }

    /// `<ns>.<name>`.
    pub fn name(&self, name: &str) -> String {
        format!("{}.{name}", self.namespace)
    }

    /// A durable queue named `<ns>.probe.<suffix>` bound to `exchange` with `routing_key`, to
    /// observe what a component published. Durable, so it survives a broker restart in
    /// outage tests.
    pub async fn probe(&self, suffix: &str, exchange: &str, routing_key: &str) -> Probe {
        let queue = self.name(&format!("probe.{suffix}"));
        admin::declare_bound_queue(
            &self.broker,
            &queue,
            &[(exchange.into(), routing_key.into())],
        )
        .await
        .expect("declare probe queue");
        Probe {
            broker: self.broker.clone(),
            queue,
        }
    }

    /// A handle on an existing queue, to take messages from it.
    pub fn queue(&self, queue: &str) -> Probe {
        Probe {
            broker: self.broker.clone(),
            queue: queue.to_owned(),
        }
    }
}

impl Drop for TestBroker {
    fn drop(&mut self) {
        let prefix = format!("{}.", self.namespace);
        // Runs on its own thread: Drop may run inside the test's runtime, which cannot block.
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(delete_namespace(&prefix));
        })
        .join();
    }
}

/// Deletes every queue and exchange starting with `prefix` through the management API.
/// Best effort: a missing management plugin only means leftovers, never a failed test.
pub async fn delete_namespace(prefix: &str) {
    let client = reqwest::Client::new();
    let base = management_url();
    for kind in ["queues", "exchanges"] {
        let Ok(response) = client
            .get(format!("{base}/api/{kind}/%2f?columns=name"))
            .basic_auth("guest", Some("guest"))
            .send()
            .await
        else {
            return;
        };
        let Ok(items) = response.json::<Vec<serde_json::Value>>().await else {
            return;
        };
        for name in items
            .iter()
            .filter_map(|i| i["name"].as_str())
            .filter(|n| n.starts_with(prefix))
        {
            let _ = client
                .delete(crate::management_path(&base, &["api", kind, "/", name]))
                .basic_auth("guest", Some("guest"))
                .send()
                .await;
        }
    }
}

/// A queue the test reads from.
#[derive(Clone)]
pub struct Probe {
    broker: Broker,
    pub queue: String,
}

impl Probe {
    /// The next message, waiting up to `timeout`; panics if none arrives.
    pub async fn next(&self, timeout: Duration) -> RawMessage {
        crate::eventually_async(
            &format!("a message on `{}`", self.queue),
            timeout,
            || async { admin::take(&self.broker, &self.queue).await.ok().flatten() },
        )
        .await
    }

    /// The next message decoded as a CloudEvent with `T` data.
    pub async fn next_event<T: serde::de::DeserializeOwned>(
        &self,
        timeout: Duration,
    ) -> (Envelope<T>, RawMessage) {
        let raw = self.next(timeout).await;
        let event = Envelope::from_json(&raw.body, usize::MAX)
            .unwrap_or_else(|e| panic!("message on `{}` is not a CloudEvent: {e}", self.queue));
        (event, raw)
    }

    /// Whatever is on the queue now, without waiting.
    pub async fn try_next(&self) -> Option<RawMessage> {
        admin::take(&self.broker, &self.queue)
            .await
            .expect("basic.get")
    }

    /// Current depth.
    pub async fn depth(&self) -> u32 {
        admin::queue_state(&self.broker, &self.queue)
            .await
            .expect("passive declare")
            .map(|s| s.messages)
            .unwrap_or(0)
    }
}

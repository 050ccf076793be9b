//! A consumer that parks what it is given until told the bug is fixed: the poison message an
//! operator finds in the console.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use serde_json::{Value, json};
use steadfast_events::Envelope;
use steadfast_messaging::admin;
use steadfast_messaging::{
    Consumer, ConsumerSettings, Incoming, Outcome, Publisher, QueueSpec, RetryPolicy,
};
use steadfast_test_support::{FnHandler, eventually_async};
use tokio_util::sync::CancellationToken;

use super::{Harness, WAIT};

/// A consumer of `<ns>.svc.work` that parks every message until `fixed` is set, and records
/// the ids it has processed.
pub struct PoisonConsumer {
    pub spec: QueueSpec,
    pub fixed: Arc<AtomicBool>,
    processed: Arc<Mutex<BTreeSet<String>>>,
    shutdown: CancellationToken,
}

impl PoisonConsumer {
    pub async fn start(h: &Harness) -> Self {
        let spec = QueueSpec::new(h.broker.name("svc.work"))
            .bind(h.broker.name("events"), "#")
            .with_retry(RetryPolicy {
                delays: vec![Duration::from_millis(100)],
                max_attempts: Some(3),
            });
        let fixed = Arc::new(AtomicBool::new(false));
        let processed = Arc::new(Mutex::new(BTreeSet::new()));
        let shutdown = CancellationToken::new();
        let (is_fixed, record) = (fixed.clone(), processed.clone());
        let consumer = Consumer::new(
            h.broker.start_broker("svc"),
            spec.clone(),
            ConsumerSettings {
                prefetch: 1,
                concurrency: 1,
                drain_timeout: Duration::from_secs(5),
                ..ConsumerSettings::default()
            },
            FnHandler(move |m: Incoming<Value>| {
                let (is_fixed, record) = (is_fixed.clone(), record.clone());
                async move {
                    if !is_fixed.load(Ordering::SeqCst) {
                        return Outcome::park(format!("422: order {} has no customer", m.event.id));
                    }
                    record.lock().unwrap().insert(m.event.id.clone());
                    Outcome::Done
                }
            }),
        );
        tokio::spawn(consumer.run(shutdown.clone()));
        eventually_async("the consumer to subscribe", WAIT, || async {
            admin::queue_state(&h.broker.broker, &spec.name)
                .await
                .ok()
                .flatten()
                .filter(|s| s.consumers > 0)
        })
        .await;
        Self {
            spec,
            fixed,
            processed,
            shutdown,
        }
    }

    /// Publishes events `ids` of type `order.created` and waits until all are parked.
    pub async fn park(&self, h: &Harness, ids: &[&str]) {
        let publisher = Publisher::new(h.broker.broker.clone());
        for id in ids {
            let event = Envelope::new(
                "https://shop.test/orders",
                "order.created",
                json!({"order": id, "poison": true}),
            )
            .with_id(*id)
            .with_time(Utc::now());
            publisher
                .publish(
                    &self.spec.bindings[0].0,
                    "order.created",
                    &event,
                    Some("shop"),
                )
                .await
                .unwrap();
        }
        self.wait_parked(h, ids.len()).await;
    }

    pub async fn wait_parked(&self, h: &Harness, count: usize) {
        let parked = h.broker.queue(&self.spec.parked_queue());
        eventually_async(&format!("{count} message(s) parked"), WAIT, || async {
            (parked.depth().await as usize == count).then_some(())
        })
        .await;
    }

    pub fn processed(&self) -> BTreeSet<String> {
        self.processed.lock().unwrap().clone()
    }
}

impl Drop for PoisonConsumer {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

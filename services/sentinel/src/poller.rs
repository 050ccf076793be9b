//! One poll cycle: page through the resources, decide for each, publish the events.
//!
//! Pages are processed as they arrive and dropped, so memory stays flat however large the
//! fleet. An expression that fails skips that resource (counted), never the cycle. A page
//! that cannot be fetched ends the cycle (`api_errors_total`); the next tick starts afresh.
//! A publish that fails is counted and the cycle goes on; if the broker is unreachable, the
//! rest of the cycle's events are not attempted (each would wait out the publish deadline)
//! — the sentinel keeps no state, so the next cycle decides and publishes them again.
//!
//! What each cycle decided and published is recorded in [`Activity`] for the read API; it
//! is a record only, never read back by a decision.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

use futures_util::future::join_all;
use serde_json::Value as Json;
use steadfast_messaging::{PublishError, Publisher};
use steadfast_rules::Evaluator;
use steadfast_telemetry::trace;
use tokio::time::Instant;
use tracing::Instrument;

use crate::activity::{Activity, DecisionRecord, NOT_ATTEMPTED, Observation, Published};
use crate::client::{ApiClient, FetchError};
use crate::config::{Clock, Config};
use crate::decision::{Decision, DecisionEngine, MessageTemplate, REASON_FAILED};
use crate::events;
use crate::metrics::SentinelMetrics;
use crate::shard::Shard;

/// What the probes read: when the last cycle completed.
#[derive(Debug, Default)]
pub struct PollState {
    /// Unix milliseconds of the last successful cycle; 0 before the first.
    last_success_ms: AtomicI64,
    pub completed_one: AtomicBool,
}

impl PollState {
    pub fn last_success_ms(&self) -> Option<i64> {
        match self.last_success_ms.load(Ordering::SeqCst) {
            0 => None,
            ms => Some(ms),
        }
    }

    fn record_success(&self) {
        self.last_success_ms
            .store(chrono::Utc::now().timestamp_millis(), Ordering::SeqCst);
        self.completed_one.store(true, Ordering::SeqCst);
    }
}

/// The counts of one cycle, logged at its end.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct CycleStats {
    pub pages: u32,
    pub resources: u64,
    pub other_shards: u64,
    pub published: u64,
    pub skipped: u64,
    pub failed_evaluations: u64,
    pub publish_errors: u64,
}

/// The poll loop's state.
pub struct Poller {
    client: ApiClient,
    engine: DecisionEngine,
    template: MessageTemplate,
    evaluator: Evaluator,
    publisher: Publisher,
    exchange: String,
    routing_key: String,
    resource_type: String,
    selector: String,
    shard: Option<Shard>,
    clock: Clock,
    tracing: bool,
    metrics: SentinelMetrics,
    pub state: Arc<PollState>,
    /// What the last cycles did per resource, for the read API.
    pub activity: Activity,
}

/// A decision ready to publish.
struct Outgoing {
    id: String,
    kind: String,
    data: Json,
    /// Its evaluation in the page's observations, where the outcome is written.
    observation: usize,
}

impl Poller {
    pub fn new(
        config: &Config,
        client: ApiClient,
        publisher: Publisher,
        metrics: SentinelMetrics,
    ) -> Self {
        Self {
            client,
            engine: config.decision.clone(),
            template: config.message_data.clone(),
            evaluator: crate::decision::environment().evaluator(),
            publisher,
            exchange: config.broker.exchange.clone(),
            routing_key: config.broker.routing_key.clone(),
            resource_type: config.resource_type.clone(),
            selector: config.selector_label(),
            shard: config.shard,
            clock: Arc::clone(&config.clock),
            tracing: config.tracing_enabled && config.otlp_endpoint.is_some(),
            metrics,
            state: Arc::new(PollState::default()),
            activity: Activity::new(&config.resource_type),
        }
    }

    fn labels<'a>(&'a self, extra: &'a str) -> [&'a str; 3] {
        [&self.resource_type, &self.selector, extra]
    }

    /// Runs one cycle. An API error ends it (and is counted); anything else is per resource.
    pub async fn cycle(&mut self) -> Result<CycleStats, FetchError> {
        let span = tracing::info_span!("sentinel.poll", resource_type = %self.resource_type, otel.name = "sentinel.poll");
        let started = Instant::now();
        self.activity.begin_cycle();
        let result = self.pages().instrument(span).await;
        let base = [self.resource_type.as_str(), self.selector.as_str()];
        match &result {
            Ok(stats) => {
                let untracked = self.activity.complete_cycle((self.clock)());
                if untracked > 0 {
                    tracing::warn!(
                        untracked,
                        limit = crate::activity::MAX_TRACKED,
                        "more resources than the read API keeps; the rest are not shown in /api/resources"
                    );
                }
                self.metrics
                    .pending_resources
                    .with_label_values(&base)
                    .set(stats.published as f64 + stats.publish_errors as f64);
                self.metrics
                    .poll_duration
                    .with_label_values(&base)
                    .observe(started.elapsed().as_secs_f64());
                self.state.record_success();
                self.metrics
                    .last_successful_poll
                    .set(chrono::Utc::now().timestamp() as f64);
                tracing::info!(
                    resource_type = %self.resource_type,
                    pages = stats.pages,
                    resources = stats.resources,
                    other_shards = stats.other_shards,
                    published = stats.published,
                    skipped = stats.skipped,
                    failed_evaluations = stats.failed_evaluations,
                    publish_errors = stats.publish_errors,
                    duration_ms = started.elapsed().as_millis() as u64,
                    "poll cycle complete"
                );
            }
            Err(error) => {
                self.metrics
                    .api_errors
                    .with_label_values(&self.labels(error.error_type()))
                    .inc();
                tracing::error!(
                    %error,
                    error_type = error.error_type(),
                    url = self.client.list_url(),
                    "poll cycle failed: cannot fetch resources from the HyperFleet API"
                );
            }
        }
        result
    }

    async fn pages(&mut self) -> Result<CycleStats, FetchError> {
        let mut stats = CycleStats::default();
        let mut broker_down = false;
        let mut page_number = 1u32;
        loop {
            let page = self.client.page(page_number).await?;
            stats.pages += 1;
            if page.items.is_empty() {
                break;
            }
            stats.resources += page.items.len() as u64;
            let (outgoing, mut observations) = self.decide_page(&page.items, &mut stats);
            drop(page.items);
            self.publish_all(outgoing, &mut observations, &mut stats, &mut broker_down)
                .await;
            self.activity.record(observations);
            if stats.resources >= page.total {
                break;
            }
            page_number += 1;
        }
        Ok(stats)
    }

    /// Decides for every resource of a page (synchronously: no await while the CEL scopes
    /// borrow the page): the events to publish, and every evaluation for the record.
    fn decide_page(
        &self,
        items: &[Json],
        stats: &mut CycleStats,
    ) -> (Vec<Outgoing>, Vec<Observation>) {
        let now = (self.clock)();
        let mut outgoing = Vec::new();
        let mut observations = Vec::with_capacity(items.len());
        for resource in items {
            let Some(id) = resource
                .get("id")
                .and_then(Json::as_str)
                .filter(|id| !id.is_empty())
            else {
                tracing::warn!("resource without an id skipped");
                continue;
            };
            if let Some(shard) = &self.shard
                && !shard.owns(id)
            {
                stats.other_shards += 1;
                continue;
            }
            let span = self.tracing.then(|| {
                tracing::info_span!("sentinel.evaluate", hyperfleet.resource_id = %id, hyperfleet.decision_reason = tracing::field::Empty)
            });
            let _entered = span.as_ref().map(tracing::Span::enter);
            match self.engine.decide(&self.evaluator, resource, now) {
                Ok(decision) => {
                    if let Some(span) = &span {
                        span.record("hyperfleet.decision_reason", decision.reason());
                    }
                    let record = DecisionRecord {
                        publish: decision == Decision::Publish,
                        reason: decision.reason(),
                        error: None,
                    };
                    observations.push(Observation::of(resource, id, record, now));
                    match decision {
                        Decision::Publish => outgoing.push(Outgoing {
                            id: id.to_owned(),
                            kind: resource
                                .get("kind")
                                .and_then(Json::as_str)
                                .unwrap_or_default()
                                .to_owned(),
                            data: self.template.render(
                                &self.evaluator,
                                resource,
                                decision.reason(),
                            ),
                            observation: observations.len() - 1,
                        }),
                        Decision::Skip => {
                            stats.skipped += 1;
                            self.metrics
                                .resources_skipped
                                .with_label_values(&self.labels(decision.reason()))
                                .inc();
                        }
                    }
                }
                Err(error) => {
                    let record = DecisionRecord {
                        publish: false,
                        reason: REASON_FAILED,
                        error: Some(error.to_string()),
                    };
                    observations.push(Observation::of(resource, id, record, now));
                    stats.failed_evaluations += 1;
                    self.metrics
                        .resources_skipped
                        .with_label_values(&self.labels(REASON_FAILED))
                        .inc();
                    tracing::warn!(resource_id = %id, %error, "message decision evaluation failed; resource skipped");
                }
            }
        }
        (outgoing, observations)
    }

    /// Publishes `outgoing`, writing each outcome into its evaluation in `observations`.
    async fn publish_all(
        &self,
        outgoing: Vec<Outgoing>,
        observations: &mut [Observation],
        stats: &mut CycleStats,
        broker_down: &mut bool,
    ) {
        if outgoing.is_empty() {
            return;
        }
        if *broker_down {
            for item in &outgoing {
                self.count_publish_error(&item.id, "publish_error", None);
                observations[item.observation].published = Published::Failed(NOT_ATTEMPTED.into());
            }
            stats.publish_errors += outgoing.len() as u64;
            return;
        }
        let results = join_all(outgoing.iter().map(|item| self.publish_one(item))).await;
        let confirmed_at = (self.clock)();
        for (item, result) in outgoing.iter().zip(results) {
            observations[item.observation].published = match &result {
                Ok(()) => Published::At(confirmed_at),
                Err(error) => Published::Failed(error.to_string()),
            };
            match result {
                Ok(()) => {
                    stats.published += 1;
                    self.metrics
                        .events_published
                        .with_label_values(&self.labels(crate::decision::REASON_MATCHED))
                        .inc();
                    self.metrics
                        .broker_published
                        .with_label_values(&[&self.exchange])
                        .inc();
                }
                Err(error) => {
                    stats.publish_errors += 1;
                    if matches!(error, PublishError::Timeout(_) | PublishError::Closed) {
                        *broker_down = true;
                    }
                    self.count_publish_error(&item.id, events::error_type(&error), Some(&error));
                }
            }
        }
        if *broker_down {
            tracing::error!(
                exchange = %self.exchange,
                "broker unavailable; the rest of this cycle's events are left for the next cycle"
            );
        }
    }

    fn count_publish_error(&self, id: &str, error_type: &str, error: Option<&PublishError>) {
        self.metrics
            .broker_errors
            .with_label_values(&self.labels(error_type))
            .inc();
        self.metrics
            .broker_failures
            .with_label_values(&[&self.exchange, "publish"])
            .inc();
        if let Some(error) = error {
            tracing::error!(resource_id = %id, %error, error_type, exchange = %self.exchange, "publishing the reconcile event failed");
        }
    }

    async fn publish_one(&self, item: &Outgoing) -> Result<(), PublishError> {
        let span = tracing::info_span!(
            "publish",
            otel.name = %format!("{} publish", self.exchange),
            otel.kind = "producer",
            messaging.system = "rabbitmq",
            messaging.destination.name = %self.exchange,
            messaging.message.id = tracing::field::Empty,
            hyperfleet.resource_id = %item.id,
        );
        let traceparent = if self.tracing {
            trace::traceparent(&span)
        } else {
            None
        };
        let event = events::reconcile_event(&item.kind, item.data.clone(), traceparent.as_ref());
        span.record("messaging.message.id", event.id.as_str());
        events::publish(&self.publisher, &self.exchange, &self.routing_key, &event)
            .instrument(span)
            .await
    }
}

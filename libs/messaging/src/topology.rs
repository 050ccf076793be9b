//! Names and declarations: which exchanges and queues exist, and with which arguments.
//!
//! Every name is built from a [`Namespace`], so a test run or a staging shadow never touches
//! production's queues. Every argument is derived from the name alone (the delay lives in the
//! tier's name), so each component — service, `steadfastctl`, test — declares a queue with the
//! same arguments; RabbitMQ treats a re-declare with other arguments as a channel error.
//!
//! For a consumer queue `Q` the family is:
//! * `Q` — durable quorum queue, bound to the exchanges the consumer listens on;
//! * `Q.retry.<delay>` — one per delay tier: queue TTL = delay, dead-lettered through the
//!   default exchange to `Q` only (never back to the topic exchange, where other consumers
//!   would see the retry);
//! * `Q.parked` — the parking lot for messages that failed for good;
//! * `Q.delayed.<delay>` — created on demand by `publish_delayed`, one per delay used, kept like
//!   the retry tiers. Never with `x-expires`: RabbitMQ (measured on 3.10, quorum queues) counts
//!   a queue's expiry from its creation even while messages are published into it — re-declaring
//!   does not renew it — and deletes the queue *with* its waiting messages. The chaos suite lost
//!   scheduled retries that way; the delays a service uses are few and fixed by its config.

use std::time::Duration;

use lapin::options::{ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable, ShortString};
use lapin::{Channel, ExchangeKind};

use crate::error::MessagingError;

/// Suffix of the parking-lot queue of a consumer queue.
pub const PARKED_SUFFIX: &str = ".parked";
const RETRY_INFIX: &str = ".retry.";
const DELAY_INFIX: &str = ".delayed.";
/// The infix of delay queues before `.delayed.` (they had `x-expires`, and vanish on their own).
pub const LEGACY_DELAY_INFIX: &str = ".delay.";

/// The prefix of every exchange and queue name (default `steadfast`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Namespace(String);

impl Namespace {
    /// Accepts lower-case letters, digits, `-`, `_` and `.`, so names stay valid AMQP short
    /// strings and readable topic routing keys.
    pub fn new(prefix: impl Into<String>) -> Result<Self, MessagingError> {
        let prefix = prefix.into();
        let valid = !prefix.is_empty()
            && prefix.len() <= 64
            && prefix
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_.".contains(&b));
        if !valid {
            return Err(MessagingError::InvalidName(format!(
                "namespace `{prefix}` must be 1-64 characters of a-z, 0-9, '-', '_' or '.'"
            )));
        }
        Ok(Self(prefix))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `<ns>.<name>`, e.g. `steadfast.webhooks`.
    pub fn exchange(&self, name: &str) -> String {
        format!("{}.{name}", self.0)
    }

    /// `<ns>.<service>.<purpose>`, e.g. `steadfast.pipeline-herder.jobs`.
    pub fn queue(&self, service: &str, purpose: &str) -> String {
        format!("{}.{service}.{purpose}", self.0)
    }
}

impl Default for Namespace {
    fn default() -> Self {
        Self("steadfast".into())
    }
}

impl std::fmt::Display for Namespace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A compact, stable label for a delay, used in queue names: `300ms`, `5s`, `2m`, `1h`,
/// `1h30m`. Two equal durations always give the same label.
pub fn delay_label(delay: Duration) -> String {
    let ms = delay.as_millis();
    if ms == 0 {
        return "0s".into();
    }
    if !ms.is_multiple_of(1000) {
        return format!("{ms}ms");
    }
    let mut secs = ms / 1000;
    let mut out = String::new();
    for (unit, size) in [("h", 3600), ("m", 60), ("s", 1)] {
        if secs >= size {
            out.push_str(&format!("{}{unit}", secs / size));
            secs %= size;
        }
    }
    out
}

/// How a consumer retries transient failures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// The n-th retry waits `delays[n-1]`; once past the end, the last delay repeats.
    pub delays: Vec<Duration>,
    /// Total handler attempts before a message is parked; `None` circulates until handled
    /// (CKI's behaviour for its webhook consumers).
    pub max_attempts: Option<u32>,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            delays: [5, 30, 120, 600, 3600]
                .into_iter()
                .map(Duration::from_secs)
                .collect(),
            max_attempts: Some(6),
        }
    }
}

impl RetryPolicy {
    /// The delay before retry number `retry` (1-based).
    pub fn delay_for(&self, retry: u32) -> Duration {
        let index = usize::try_from(retry.saturating_sub(1)).unwrap_or(usize::MAX);
        self.delays
            .get(index)
            .or(self.delays.last())
            .copied()
            .unwrap_or(Duration::from_secs(5))
    }

    /// Whether a message that has been retried `retries` times and failed again is exhausted.
    pub fn exhausted(&self, retries: u32) -> bool {
        self.max_attempts.is_some_and(|max| retries + 1 >= max)
    }

    pub fn validate(&self) -> Result<(), MessagingError> {
        if self.delays.is_empty() {
            return Err(MessagingError::InvalidName(
                "a retry policy needs at least one delay".into(),
            ));
        }
        if self.delays.iter().any(|d| d.is_zero()) {
            return Err(MessagingError::InvalidName(
                "retry delays must be greater than zero".into(),
            ));
        }
        if self.max_attempts == Some(0) {
            return Err(MessagingError::InvalidName(
                "max_attempts must be at least 1 (omit it for unlimited)".into(),
            ));
        }
        Ok(())
    }
}

/// A durable topic exchange.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExchangeSpec {
    pub name: String,
}

impl ExchangeSpec {
    pub fn topic(name: impl Into<String>) -> Self {
        Self { name: name.into() }
    }

    pub async fn declare(&self, channel: &Channel) -> Result<(), MessagingError> {
        channel
            .exchange_declare(
                short(&self.name)?,
                ExchangeKind::Topic,
                ExchangeDeclareOptions {
                    durable: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await
            .map_err(|e| MessagingError::declare(&self.name, e))
    }
}

/// A consumer queue bound to exchanges, with its retry tiers and parking lot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueSpec {
    pub name: String,
    /// `(exchange, routing key)` pairs; the exchanges are declared too.
    pub bindings: Vec<(String, String)>,
    pub retry: RetryPolicy,
}

impl QueueSpec {
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            bindings: Vec::new(),
            retry: RetryPolicy::default(),
        }
    }

    #[must_use]
    pub fn bind(mut self, exchange: impl Into<String>, routing_key: impl Into<String>) -> Self {
        self.bindings.push((exchange.into(), routing_key.into()));
        self
    }

    #[must_use]
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    pub fn parked_queue(&self) -> String {
        parked_queue_name(&self.name)
    }

    pub fn retry_queue(&self, delay: Duration) -> String {
        format!("{}{RETRY_INFIX}{}", self.name, delay_label(delay))
    }

    /// Declares the exchanges, `Q`, its tiers and `Q.parked`, and the bindings.
    pub async fn declare(&self, channel: &Channel) -> Result<(), MessagingError> {
        self.retry.validate()?;
        let mut exchanges: Vec<&str> = self.bindings.iter().map(|(e, _)| e.as_str()).collect();
        exchanges.dedup();
        for exchange in exchanges {
            ExchangeSpec::topic(exchange).declare(channel).await?;
        }
        declare_queue(channel, &self.name, main_queue_arguments()).await?;
        declare_queue(channel, &self.parked_queue(), main_queue_arguments()).await?;
        let mut delays = self.retry.delays.clone();
        delays.sort();
        delays.dedup();
        for delay in delays {
            declare_queue(
                channel,
                &self.retry_queue(delay),
                ttl_queue_arguments(&self.name, delay),
            )
            .await?;
        }
        for (exchange, key) in &self.bindings {
            channel
                .queue_bind(
                    short(&self.name)?,
                    short(exchange)?,
                    short(key)?,
                    QueueBindOptions::default(),
                    FieldTable::default(),
                )
                .await
                .map_err(|e| MessagingError::declare(&self.name, e))?;
        }
        Ok(())
    }
}

/// `Q.parked` for a consumer queue `Q`.
pub fn parked_queue_name(queue: &str) -> String {
    format!("{queue}{PARKED_SUFFIX}")
}

/// The queue `publish_delayed` parks a message in before it dead-letters into `target`.
pub fn delay_queue_name(target: &str, delay: Duration) -> String {
    format!("{target}{DELAY_INFIX}{}", delay_label(delay))
}

/// Whether `queue` is a retry tier or a delay queue (of this version or the one before).
pub fn is_waiting_queue(queue: &str) -> bool {
    [RETRY_INFIX, DELAY_INFIX, LEGACY_DELAY_INFIX]
        .iter()
        .any(|infix| queue.contains(infix))
}

/// Declares the TTL queue `Q.delayed.<delay>` (idempotent; the same arguments as a retry tier).
pub async fn declare_delay_queue(
    channel: &Channel,
    target: &str,
    delay: Duration,
) -> Result<String, MessagingError> {
    let name = delay_queue_name(target, delay);
    declare_queue(channel, &name, ttl_queue_arguments(target, delay)).await?;
    Ok(name)
}

/// Arguments of `Q` and `Q.parked`.
pub fn main_queue_arguments() -> FieldTable {
    let mut args = FieldTable::default();
    args.insert(
        "x-queue-type".into(),
        AMQPValue::LongString("quorum".into()),
    );
    args
}

/// Arguments of a queue whose messages wait `delay` and then go to `target` alone.
///
/// `at-least-once` dead-lettering keeps a message in the tier until the target queue has
/// confirmed it, so a broker crash between expiry and re-delivery loses nothing; it requires
/// `x-overflow: reject-publish`.
pub fn ttl_queue_arguments(target: &str, delay: Duration) -> FieldTable {
    let mut args = main_queue_arguments();
    args.insert(
        "x-message-ttl".into(),
        AMQPValue::LongLongInt(i64::try_from(delay.as_millis()).unwrap_or(i64::MAX)),
    );
    args.insert(
        "x-dead-letter-exchange".into(),
        AMQPValue::LongString("".into()),
    );
    args.insert(
        "x-dead-letter-routing-key".into(),
        AMQPValue::LongString(target.into()),
    );
    args.insert(
        "x-dead-letter-strategy".into(),
        AMQPValue::LongString("at-least-once".into()),
    );
    args.insert(
        "x-overflow".into(),
        AMQPValue::LongString("reject-publish".into()),
    );
    args
}

async fn declare_queue(
    channel: &Channel,
    name: &str,
    args: FieldTable,
) -> Result<(), MessagingError> {
    channel
        .queue_declare(short(name)?, QueueDeclareOptions::durable(), args)
        .await
        .map(|_| ())
        .map_err(|e| MessagingError::declare(name, e))
}

/// AMQP names are short strings (at most 255 bytes).
pub(crate) fn short(name: &str) -> Result<ShortString, MessagingError> {
    ShortString::try_new(name)
        .map_err(|_| MessagingError::InvalidName(format!("`{name}` is longer than 255 bytes")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delay_labels_are_compact_and_stable() {
        assert_eq!(delay_label(Duration::from_millis(300)), "300ms");
        assert_eq!(delay_label(Duration::from_secs(5)), "5s");
        assert_eq!(delay_label(Duration::from_secs(120)), "2m");
        assert_eq!(delay_label(Duration::from_secs(3600)), "1h");
        assert_eq!(delay_label(Duration::from_secs(5400)), "1h30m");
        assert_eq!(delay_label(Duration::from_secs(3661)), "1h1m1s");
        assert_eq!(delay_label(Duration::from_millis(1500)), "1500ms");
    }

    #[test]
    fn names_follow_the_namespace() {
        let ns = Namespace::new("t-1a2b").unwrap();
        assert_eq!(ns.exchange("webhooks"), "t-1a2b.webhooks");
        let q = QueueSpec::new(ns.queue("pipeline-herder", "jobs"));
        assert_eq!(q.name, "t-1a2b.pipeline-herder.jobs");
        assert_eq!(q.parked_queue(), "t-1a2b.pipeline-herder.jobs.parked");
        assert_eq!(
            q.retry_queue(Duration::from_secs(30)),
            "t-1a2b.pipeline-herder.jobs.retry.30s"
        );
        assert_eq!(
            delay_queue_name(&q.name, Duration::from_secs(300)),
            "t-1a2b.pipeline-herder.jobs.delayed.5m"
        );
        assert!(Namespace::new("Bad Name").is_err());
        assert!(Namespace::new("").is_err());
    }

    #[test]
    fn retry_policy_picks_tiers_and_gives_up() {
        let policy = RetryPolicy {
            delays: vec![Duration::from_secs(1), Duration::from_secs(10)],
            max_attempts: Some(3),
        };
        assert_eq!(policy.delay_for(1), Duration::from_secs(1));
        assert_eq!(policy.delay_for(2), Duration::from_secs(10));
        assert_eq!(
            policy.delay_for(7),
            Duration::from_secs(10),
            "the last delay repeats"
        );
        assert!(!policy.exhausted(0));
        assert!(!policy.exhausted(1));
        assert!(policy.exhausted(2), "third failed attempt parks");
        let unlimited = RetryPolicy {
            max_attempts: None,
            ..policy
        };
        assert!(!unlimited.exhausted(10_000));
    }

    #[test]
    fn tier_arguments_dead_letter_to_the_queue_only() {
        let args = ttl_queue_arguments("ns.svc.q", Duration::from_millis(250));
        let inner = args.inner();
        assert_eq!(
            inner.get("x-message-ttl"),
            Some(&AMQPValue::LongLongInt(250))
        );
        assert_eq!(
            inner.get("x-dead-letter-exchange"),
            Some(&AMQPValue::LongString("".into()))
        );
        assert_eq!(
            inner.get("x-dead-letter-routing-key"),
            Some(&AMQPValue::LongString("ns.svc.q".into()))
        );
        assert_eq!(
            inner.get("x-queue-type"),
            Some(&AMQPValue::LongString("quorum".into()))
        );
        assert!(!inner.contains_key("x-expires"));
    }
}

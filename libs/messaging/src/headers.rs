//! Our bookkeeping headers and conversions between envelopes and AMQP properties.
//!
//! The retry counter is ours (`steadfast-retry-count`), never `x-death`: RabbitMQ 3.13 changed
//! how `x-death` counts client republishes and 4.x reserves `x-` headers for the broker.

use chrono::{SecondsFormat, Utc};
use lapin::BasicProperties;
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use steadfast_events::AmqpMetadata;

pub const RETRY_COUNT: &str = "steadfast-retry-count";
pub const LAST_ERROR: &str = "steadfast-last-error";
pub const ERROR: &str = "steadfast-error";
pub const FAILED_AT: &str = "steadfast-failed-at";
pub const PARKED_REASON: &str = "steadfast-parked-reason";
pub const ORIGINAL_EXCHANGE: &str = "steadfast-original-exchange";
pub const ORIGINAL_ROUTING_KEY: &str = "steadfast-original-routing-key";

/// Longest error text kept in a header; the full error is in the consumer's log.
const MAX_ERROR_LEN: usize = 2000;

/// AMQP properties for an envelope's metadata.
pub fn properties_from(meta: &AmqpMetadata) -> BasicProperties {
    let mut headers = FieldTable::default();
    for (name, value) in &meta.headers {
        headers.insert(name.as_str().into(), string_value(value));
    }
    let mut props = BasicProperties::default()
        .with_content_type(meta.content_type.into())
        .with_delivery_mode(if meta.persistent { 2 } else { 1 })
        .with_headers(headers);
    if let Ok(id) = ShortString::try_new(meta.message_id.as_str()) {
        props = props.with_message_id(id);
    }
    if let Ok(kind) = ShortString::try_new(meta.kind.as_str()) {
        props = props.with_type(kind);
    }
    if let Ok(app) = ShortString::try_new(meta.app_id.as_str()) {
        props = props.with_app_id(app);
    }
    if let Some(ts) = meta.timestamp {
        props = props.with_timestamp(ts);
    }
    props
}

pub fn string_value(value: &str) -> AMQPValue {
    AMQPValue::LongString(LongString::from(value.as_bytes().to_vec()))
}

/// A header as text, whatever string or number type the producer used.
pub fn header_str(props: &BasicProperties, name: &str) -> Option<String> {
    let value = props.headers().as_ref()?.inner().get(name)?;
    match value {
        AMQPValue::LongString(s) => Some(String::from_utf8_lossy(s.as_bytes()).into_owned()),
        AMQPValue::ShortString(s) => Some(s.as_str().to_owned()),
        other => as_i64(other).map(|n| n.to_string()),
    }
}

/// The retry counter of a message; absent or unreadable means it was never retried.
pub fn retry_count(props: &BasicProperties) -> u32 {
    let Some(value) = props
        .headers()
        .as_ref()
        .and_then(|h| h.inner().get(RETRY_COUNT))
    else {
        return 0;
    };
    let n = as_i64(value).or_else(|| match value {
        AMQPValue::LongString(s) => std::str::from_utf8(s.as_bytes()).ok()?.trim().parse().ok(),
        _ => None,
    });
    n.and_then(|n| u32::try_from(n).ok()).unwrap_or(0)
}

fn as_i64(value: &AMQPValue) -> Option<i64> {
    Some(match value {
        AMQPValue::ShortShortInt(n) => i64::from(*n),
        AMQPValue::ShortShortUInt(n) => i64::from(*n),
        AMQPValue::ShortInt(n) => i64::from(*n),
        AMQPValue::ShortUInt(n) => i64::from(*n),
        AMQPValue::LongInt(n) => i64::from(*n),
        AMQPValue::LongUInt(n) => i64::from(*n),
        AMQPValue::LongLongInt(n) => *n,
        _ => return None,
    })
}

/// Copies `props`, applying `edit` to its headers.
pub fn with_headers(
    props: &BasicProperties,
    edit: impl FnOnce(&mut FieldTable),
) -> BasicProperties {
    let mut headers = props.headers().clone().unwrap_or_default();
    edit(&mut headers);
    props.clone().with_headers(headers)
}

/// Error text bounded for a header, cut on a character boundary.
pub fn bounded_error(reason: &str) -> String {
    if reason.len() <= MAX_ERROR_LEN {
        return reason.to_owned();
    }
    let mut end = MAX_ERROR_LEN;
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &reason[..end])
}

/// Stamps the original route once, so a message that went through retry tiers (and arrived
/// back through the default exchange) still tells where it was first published.
pub fn keep_original_route(headers: &mut FieldTable, exchange: &str, routing_key: &str) {
    if !headers.contains_key(ORIGINAL_EXCHANGE) {
        headers.insert(ORIGINAL_EXCHANGE.into(), string_value(exchange));
    }
    if !headers.contains_key(ORIGINAL_ROUTING_KEY) {
        headers.insert(ORIGINAL_ROUTING_KEY.into(), string_value(routing_key));
    }
}

pub fn now_rfc3339() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Removes every bookkeeping header so a replayed message starts afresh; the original route
/// stays, so the handler still sees the routing key the event was first published with.
pub fn reset_for_replay(headers: &mut FieldTable) {
    let mut kept = FieldTable::default();
    for (name, value) in headers.inner() {
        let name_str = name.as_str();
        if [RETRY_COUNT, LAST_ERROR, ERROR, FAILED_AT, PARKED_REASON].contains(&name_str)
            || name_str.starts_with("x-")
        {
            continue;
        }
        kept.insert(name.clone(), value.clone());
    }
    *headers = kept;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_retry_count_in_any_integer_encoding() {
        for value in [
            AMQPValue::LongLongInt(3),
            AMQPValue::LongInt(3),
            AMQPValue::ShortShortUInt(3),
            string_value("3"),
        ] {
            let mut headers = FieldTable::default();
            headers.insert(RETRY_COUNT.into(), value);
            let props = BasicProperties::default().with_headers(headers);
            assert_eq!(retry_count(&props), 3);
        }
        assert_eq!(retry_count(&BasicProperties::default()), 0);
    }

    #[test]
    fn bounds_long_errors_on_char_boundaries() {
        let long = "é".repeat(3000);
        let cut = bounded_error(&long);
        assert!(cut.len() <= MAX_ERROR_LEN + '…'.len_utf8());
        assert!(cut.ends_with('…'));
    }

    #[test]
    fn replay_reset_keeps_the_route_and_drops_bookkeeping() {
        let mut headers = FieldTable::default();
        headers.insert(RETRY_COUNT.into(), AMQPValue::LongLongInt(4));
        headers.insert(ERROR.into(), string_value("boom"));
        headers.insert("x-death".into(), string_value("broker"));
        headers.insert("message-type".into(), string_value("gitlab"));
        keep_original_route(&mut headers, "ns.webhooks", "a.b.build");
        reset_for_replay(&mut headers);
        let names: Vec<&str> = headers.inner().keys().map(|k| k.as_str()).collect();
        assert_eq!(
            names,
            vec!["message-type", ORIGINAL_EXCHANGE, ORIGINAL_ROUTING_KEY]
        );
    }
}

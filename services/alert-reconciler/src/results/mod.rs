//! Recipe results over Redis.
//!
//! * [`message`] — Euphrosyne's result message and its durable copy's key.
//! * [`bus`] — the reconciler's side: one shared pub/sub connection routing messages to runs.
//! * [`publish`] — the recipe's side (used by `steadfast-recipe report`).

pub mod bus;
pub mod message;

pub use bus::{BusEvent, ResultBus, Subscription};
pub use message::{DecodeError, RecipeResult, ResultBody, ResultStatus, SuggestedAction};

use message::{DURABLE_TTL_SECS, durable_key};

/// Publishes `result` on its run's channel, after appending a durable copy (atomically, in one
/// MULTI/EXEC), so a reconciler that restarts meanwhile still finds it. Returns how many
/// subscribers received the live message.
pub async fn publish(redis_url: &str, result: &RecipeResult) -> Result<i64, redis::RedisError> {
    let client = redis::Client::open(redis_url)?;
    let mut connection = client.get_multiplexed_async_connection().await?;
    let body = serde_json::to_vec(result).expect("a result always serialises");
    let key = durable_key(&result.incident);
    let (_, _, receivers): (i64, i64, i64) = redis::pipe()
        .atomic()
        .rpush(&key, &body)
        .expire(&key, DURABLE_TTL_SECS as i64)
        .publish(&result.incident, &body)
        .query_async(&mut connection)
        .await?;
    Ok(receivers)
}

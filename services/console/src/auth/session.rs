//! Sessions, kept in Redis so every console replica knows them and a restart logs nobody out.
//!
//! The cookie holds 32 random bytes; Redis holds the session under the SHA-256 of that value,
//! so reading Redis (or a dump of it) does not give anyone a usable cookie. A session expires
//! with its key: `CONSOLE_SESSION_TTL` after login, whatever happens in between.

use std::time::Duration;

use redis::AsyncCommands as _;
use redis::aio::ConnectionManager;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::Role;

#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("Redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("a stored session is unreadable: {0}")]
    Corrupt(#[from] serde_json::Error),
}

/// What a session knows about its user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    pub user: String,
    pub role: Role,
    /// The token every state-changing form must carry.
    pub csrf: String,
    /// `login` (built-in users) or `proxy`.
    pub via: String,
}

#[derive(Clone)]
pub struct Sessions {
    redis: ConnectionManager,
    prefix: String,
    ttl: Duration,
}

/// 32 random bytes, hex: a session id or a CSRF token.
pub fn random_token() -> String {
    let bytes: [u8; 32] = rand::random();
    hex::encode(bytes)
}

impl Sessions {
    /// Connects to Redis (the connection manager reconnects by itself afterwards).
    pub async fn connect(
        redis_url: &str,
        namespace: &str,
        ttl: Duration,
    ) -> Result<Self, SessionError> {
        let client = redis::Client::open(redis_url)?;
        let redis = ConnectionManager::new(client).await?;
        Ok(Self {
            redis,
            prefix: format!("{namespace}:console:session:"),
            ttl,
        })
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    fn key(&self, id: &str) -> String {
        format!(
            "{}{}",
            self.prefix,
            hex::encode(Sha256::digest(id.as_bytes()))
        )
    }

    /// Starts a session; returns the cookie value and the session.
    pub async fn create(
        &self,
        user: &str,
        role: Role,
        via: &str,
    ) -> Result<(String, Session), SessionError> {
        let id = random_token();
        let session = Session {
            user: user.to_owned(),
            role,
            csrf: random_token(),
            via: via.to_owned(),
        };
        let mut redis = self.redis.clone();
        let _: () = redis
            .set_ex(
                self.key(&id),
                serde_json::to_string(&session)?,
                self.ttl.as_secs().max(1),
            )
            .await?;
        Ok((id, session))
    }

    /// The session of cookie value `id`, if it exists and has not expired.
    pub async fn get(&self, id: &str) -> Result<Option<Session>, SessionError> {
        // A cookie that is not one of ours is not worth a round trip.
        if id.len() != 64 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Ok(None);
        }
        let mut redis = self.redis.clone();
        let stored: Option<String> = redis.get(self.key(id)).await?;
        stored
            .map(|text| serde_json::from_str(&text))
            .transpose()
            .map_err(Into::into)
    }

    pub async fn delete(&self, id: &str) -> Result<(), SessionError> {
        let mut redis = self.redis.clone();
        let _: () = redis.del(self.key(id)).await?;
        Ok(())
    }

    /// Whether Redis answers (for `/readyz`).
    pub async fn ping(&self) -> Result<(), SessionError> {
        let mut redis = self.redis.clone();
        let _: String = redis::cmd("PING").query_async(&mut redis).await?;
        Ok(())
    }
}

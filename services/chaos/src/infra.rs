//! The shared infrastructure a run isolates itself in: its own PostgreSQL databases, and the
//! RabbitMQ management API (declaring the probe queue, parked queues, cleanup of the run's names).
//!
//! Nothing here stops or restarts RabbitMQ, PostgreSQL or Redis: the shared ones serve other
//! users, and the run's own ([`crate::private`]) are stopped by the faults only.

use std::time::Duration;

use serde::Deserialize;
use serde_json::{Value, json};
use sqlx::{Connection, Executor};

/// Why the infrastructure could not be used.
#[derive(Debug, thiserror::Error)]
pub enum InfraError {
    #[error("PostgreSQL at {url}: {source}")]
    Database { url: String, source: sqlx::Error },
    #[error("RabbitMQ management API {method} {path}: {source}")]
    Management {
        method: &'static str,
        path: String,
        source: reqwest::Error,
    },
    #[error("RabbitMQ management API {method} {path} answered {status}: {body}")]
    ManagementStatus {
        method: &'static str,
        path: String,
        status: u16,
        body: String,
    },
}

/// The run's databases on one PostgreSQL server.
#[derive(Debug, Clone)]
pub struct Databases {
    /// `postgres://user@host:port` (no database).
    pub base: String,
}

impl Databases {
    pub fn url(&self, name: &str) -> String {
        format!("{}/{name}", self.base.trim_end_matches('/'))
    }

    async fn admin(&self) -> Result<sqlx::PgConnection, InfraError> {
        let url = self.url("postgres");
        sqlx::PgConnection::connect(&url)
            .await
            .map_err(|source| InfraError::Database { url, source })
    }

    /// Creates `name` (dropping a leftover of the same name first).
    pub async fn create(&self, name: &str) -> Result<(), InfraError> {
        self.drop_database(name).await?;
        self.admin_statement(name, format!("CREATE DATABASE \"{name}\""))
            .await
    }

    /// Drops `name`, disconnecting whoever still uses it.
    pub async fn drop_database(&self, name: &str) -> Result<(), InfraError> {
        self.admin_statement(
            name,
            format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"),
        )
        .await
    }

    /// Runs `statement` about database `name` on the server's `postgres` database. Names are
    /// generated (`chaos_<hex>_<service>`), never user input: quoting suffices.
    async fn admin_statement(&self, name: &str, statement: String) -> Result<(), InfraError> {
        let mut conn = self.admin().await?;
        conn.execute(sqlx::AssertSqlSafe(statement))
            .await
            .map_err(|source| InfraError::Database {
                url: self.url(name),
                source,
            })?;
        Ok(())
    }
}

/// `SELECT count(*) FROM <table>` in the database at `url`.
pub async fn count_rows(url: &str, table: &str) -> Result<i64, InfraError> {
    let database = |source| InfraError::Database {
        url: redact(url),
        source,
    };
    let mut conn = sqlx::PgConnection::connect(url).await.map_err(database)?;
    let (count,): (i64,) =
        sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT count(*) FROM {table}")))
            .fetch_one(&mut conn)
            .await
            .map_err(database)?;
    Ok(count)
}

/// A database URL without its password (a deployment's URLs carry real ones).
pub fn redact(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        _ => url.to_owned(),
    }
}

/// One queue as the management API lists it.
#[derive(Debug, Clone, Deserialize)]
pub struct QueueInfo {
    pub name: String,
    #[serde(default)]
    pub messages: u64,
    #[serde(default)]
    pub consumers: u64,
}

/// The slice of the RabbitMQ management API the suite needs (vhost `/`).
#[derive(Clone)]
pub struct Management {
    /// One per node of a cluster (any serves the whole cluster's API); the first that accepts
    /// a connection is used, and kept while it does (a `broker` fault kills nodes).
    bases: Vec<String>,
    current: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    user: String,
    password: String,
    http: reqwest::Client,
}

/// Percent-encodes a queue or exchange name for a path segment.
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

impl Management {
    /// Adds other nodes' management APIs, tried in turn when the current one refuses
    /// connections.
    #[must_use]
    pub fn with_fallbacks(mut self, others: &[String]) -> Self {
        self.bases
            .extend(others.iter().map(|b| b.trim_end_matches('/').to_owned()));
        self
    }

    /// `base` is one URL or a comma-separated list (a cluster's nodes).
    pub fn new(base: &str, user: &str, password: &str) -> Self {
        Self {
            bases: base
                .split(',')
                .map(|b| b.trim().trim_end_matches('/').to_owned())
                .filter(|b| !b.is_empty())
                .collect(),
            current: std::sync::Arc::default(),
            user: user.to_owned(),
            password: password.to_owned(),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap_or_default(),
        }
    }

    /// One call to the management API (`path` under `/api`), on the first node that answers.
    pub async fn call(
        &self,
        method: &'static str,
        path: String,
        body: Option<Value>,
    ) -> Result<Value, InfraError> {
        use std::sync::atomic::Ordering;
        let count = self.bases.len().max(1);
        let first = self.current.load(Ordering::Relaxed);
        let mut attempt = 0;
        let response = loop {
            let index = (first + attempt) % count;
            let base = self.bases.get(index).map_or("", String::as_str);
            let url = format!("{base}/api{path}");
            let request = match method {
                "GET" => self.http.get(&url),
                "PUT" => self.http.put(&url),
                "POST" => self.http.post(&url),
                _ => self.http.delete(&url),
            };
            let request = request.basic_auth(&self.user, Some(&self.password));
            let request = match &body {
                Some(body) => request.json(body),
                None => request,
            };
            match request.send().await {
                Ok(response) => {
                    self.current.store(index, Ordering::Relaxed);
                    break response;
                }
                // Only a refused connection moves on to the next node: nothing was sent, so
                // even a `get` that acknowledges messages cannot be done twice.
                Err(source) if source.is_connect() && attempt + 1 < count => attempt += 1,
                Err(source) => {
                    return Err(InfraError::Management {
                        method,
                        path: path.clone(),
                        source,
                    });
                }
            }
        };
        let status = response.status().as_u16();
        let text = response
            .text()
            .await
            .map_err(|source| InfraError::Management {
                method,
                path: path.clone(),
                source,
            })?;
        // A DELETE of something already gone is what cleanup wants.
        let gone = method == "DELETE" && status == 404;
        if !((200..300).contains(&status) || gone) {
            return Err(InfraError::ManagementStatus {
                method,
                path,
                status,
                body: text.chars().take(300).collect(),
            });
        }
        Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// Every queue whose name starts with `prefix`.
    pub async fn queues(&self, prefix: &str) -> Result<Vec<QueueInfo>, InfraError> {
        let all = self
            .call(
                "GET",
                "/queues/%2F?columns=name,messages,consumers".into(),
                None,
            )
            .await?;
        let queues: Vec<QueueInfo> = serde_json::from_value(all).unwrap_or_default();
        Ok(queues
            .into_iter()
            .filter(|q| q.name.starts_with(prefix))
            .collect())
    }

    /// Every queue whose name starts with `prefix`, as `depth<TAB>waiting for dead-lettering
    /// <TAB>name<TAB>leader<TAB>online members` lines (a post-mortem of a run's broker).
    pub async fn queue_report(&self, prefix: &str) -> Result<String, InfraError> {
        let all = self
            .call(
                "GET",
                "/queues/%2F?columns=name,messages,messages_dlx,leader,online".into(),
                None,
            )
            .await?;
        let mut lines = vec!["messages\tmessages_dlx\tname\tleader\tonline".to_owned()];
        for queue in all.as_array().into_iter().flatten() {
            let name = queue["name"].as_str().unwrap_or_default();
            if !name.starts_with(prefix) {
                continue;
            }
            let online: Vec<&str> = queue["online"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            lines.push(format!(
                "{}\t{}\t{name}\t{}\t{}",
                queue["messages"].as_u64().unwrap_or(0),
                queue["messages_dlx"].as_u64().unwrap_or(0),
                queue["leader"].as_str().unwrap_or("-"),
                online.join(",")
            ));
        }
        Ok(lines.join("\n") + "\n")
    }

    /// Every exchange whose name starts with `prefix`.
    pub async fn exchanges(&self, prefix: &str) -> Result<Vec<String>, InfraError> {
        let all = self
            .call("GET", "/exchanges/%2F?columns=name".into(), None)
            .await?;
        Ok(all
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|e| e["name"].as_str())
            .filter(|name| name.starts_with(prefix))
            .map(str::to_owned)
            .collect())
    }

    /// Declares a durable quorum queue bound to `exchange` with `routing_key` (quorum: it
    /// survives a cluster node's death like the services' queues; a classic queue on the
    /// killed node would miss what was routed meanwhile).
    pub async fn declare_bound_queue(
        &self,
        queue: &str,
        exchange: &str,
        routing_key: &str,
    ) -> Result<(), InfraError> {
        self.call(
            "PUT",
            format!("/queues/%2F/{}", segment(queue)),
            Some(json!({"durable": true, "auto_delete": false, "arguments": {"x-queue-type": "quorum"}})),
        )
        .await?;
        self.call(
            "POST",
            format!("/bindings/%2F/e/{}/q/{}", segment(exchange), segment(queue)),
            Some(json!({"routing_key": routing_key})),
        )
        .await?;
        Ok(())
    }

    /// Deletes every queue and exchange whose name starts with `prefix`; returns how many.
    pub async fn delete_prefixed(&self, prefix: &str) -> Result<(usize, usize), InfraError> {
        let queues = self.queues(prefix).await?;
        for queue in &queues {
            self.call(
                "DELETE",
                format!("/queues/%2F/{}", segment(&queue.name)),
                None,
            )
            .await?;
        }
        let exchanges = self.exchanges(prefix).await?;
        for exchange in &exchanges {
            self.call(
                "DELETE",
                format!("/exchanges/%2F/{}", segment(exchange)),
                None,
            )
            .await?;
        }
        Ok((queues.len(), exchanges.len()))
    }
}

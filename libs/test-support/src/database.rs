//! A PostgreSQL database of one's own, dropped when the test ends.

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, Connection, Executor, PgPool};

/// `DATABASE_URL` of the local server (an administrative database), or the local default.
pub fn database_url() -> String {
    std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// A fresh, empty database (`t_<hex>`) on the local server. Services run their own migrations
/// against [`TestDatabase::url`], exactly as they do in production.
pub struct TestDatabase {
    pub name: String,
    pub url: String,
    admin_url: String,
}

impl TestDatabase {
    pub async fn new() -> Self {
        let admin_url = database_url();
        let name = crate::unique_name("t").replace('-', "_");
        let mut admin = sqlx::PgConnection::connect(&admin_url)
            .await
            .expect("the local PostgreSQL must be running (scripts/ensure-services.sh starts it)");
        admin
            .execute(sqlx::AssertSqlSafe(format!(r#"CREATE DATABASE "{name}""#)))
            .await
            .expect("create test database");
        let url = admin_url
            .parse::<PgConnectOptions>()
            .expect("valid DATABASE_URL")
            .database(&name)
            .to_url_lossy()
            .to_string();
        Self {
            name,
            url,
            admin_url,
        }
    }

    /// A small pool on the test database, for assertions on rows.
    pub async fn pool(&self) -> PgPool {
        PgPoolOptions::new()
            .max_connections(2)
            .connect(&self.url)
            .await
            .expect("connect to test database")
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let admin_url = self.admin_url.clone();
        let name = self.name.clone();
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async {
                if let Ok(mut admin) = sqlx::PgConnection::connect(&admin_url).await {
                    let _ = admin
                        .execute(sqlx::AssertSqlSafe(format!(
                            r#"DROP DATABASE IF EXISTS "{name}" WITH (FORCE)"#
                        )))
                        .await;
                }
            });
        })
        .join();
    }
}

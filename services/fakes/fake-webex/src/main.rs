//! The fake Webex API as a process, for the local dev stack (`scripts/dev/*-fake-webex.env`).
//!
//!   fake-webex [LISTEN]      default 127.0.0.1:8092; bot token from WEBEX_BOT_TOKEN
//!
//! Besides the `/v1` API it has two control endpoints for playing the human:
//!   GET  /fake/messages                       every message the bot posted
//!   POST /fake/attachment-actions             {"messageId", "personId", "inputs"}: press a
//!                                             card button; the signed callback goes to every
//!                                             registered attachmentActions webhook

use fake_webex::FakeWebex;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let listen = std::env::args()
        .nth(1)
        .or_else(|| std::env::var("FAKE_WEBEX_LISTEN").ok())
        .unwrap_or_else(|| "127.0.0.1:8092".into());
    let token = std::env::var("WEBEX_BOT_TOKEN").unwrap_or_else(|_| "dev-bot-token".into());
    let listener = tokio::net::TcpListener::bind(&listen).await?;
    let base = format!("http://{}", listener.local_addr()?);
    let (_fake, router) = FakeWebex::serve_parts(&token, base.clone());
    println!("fake Webex API on {base}/v1 (bot token from WEBEX_BOT_TOKEN)");
    axum::serve(listener, router).await?;
    Ok(())
}

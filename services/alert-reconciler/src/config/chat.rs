//! Where analyses and outcomes go: Webex, Euphrosyne's bot interface, a chat webhook.

use url::Url;

use super::{ConfigError, check_http_url, non_empty};
use crate::cli::Cli;

/// Not `Debug`: it holds the bot token and the webhook secret.
#[derive(Clone)]
pub struct WebexConfig {
    pub api_url: Url,
    pub bot_token: String,
    pub room_id: String,
    pub webhook_secret: String,
    pub approvers: Vec<String>,
    pub webhook_url: Option<Url>,
}

/// Where analyses and outcomes go (not `Debug`: chat webhook URLs carry tokens).
#[derive(Clone, Default)]
pub struct SinksConfig {
    pub webex: Option<WebexConfig>,
    pub bot_url: Option<Url>,
    pub chat_webhook_url: Option<Url>,
}

/// Every sink the flags configure, checked.
pub(super) fn sinks_config(cli: &Cli) -> Result<SinksConfig, ConfigError> {
    let sinks = SinksConfig {
        webex: webex_config(cli)?,
        bot_url: cli.webex_bot_address.clone(),
        chat_webhook_url: cli.chat_webhook_url.clone(),
    };
    for (setting, url) in [
        ("--webex-bot-address", sinks.bot_url.as_ref()),
        ("--chat-webhook-url", sinks.chat_webhook_url.as_ref()),
    ] {
        if let Some(url) = url {
            check_http_url(setting, url)?;
        }
    }
    Ok(sinks)
}

fn webex_config(cli: &Cli) -> Result<Option<WebexConfig>, ConfigError> {
    let token = non_empty(cli.webex_bot_token.as_deref());
    let room = non_empty(cli.webex_room_id.as_deref());
    let (bot_token, room_id) = match (token, room) {
        (None, None) => return Ok(None),
        (Some(_), None) => return Err(ConfigError::WebexRoomMissing),
        (None, Some(_)) => return Err(ConfigError::WebexTokenMissing),
        (Some(token), Some(room)) => (token, room),
    };
    let webhook_secret =
        non_empty(cli.webex_webhook_secret.as_deref()).ok_or(ConfigError::WebexSecretMissing)?;
    check_http_url("WEBEX_API_URL", &cli.webex_api_url)?;
    if let Some(url) = &cli.webex_webhook_url {
        check_http_url("WEBEX_WEBHOOK_URL", url)?;
    }
    let approvers: Vec<String> = cli
        .webex_approvers
        .iter()
        .map(|a| a.trim().to_owned())
        .filter(|a| !a.is_empty())
        .collect();
    Ok(Some(WebexConfig {
        api_url: cli.webex_api_url.clone(),
        bot_token,
        room_id,
        webhook_secret,
        approvers,
        webhook_url: cli.webex_webhook_url.clone(),
    }))
}

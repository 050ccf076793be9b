//! A fake of the Webex REST API, for the alert-reconciler's chat sink and approval callbacks.
//!
//! It serves the part of `https://webexapis.com/v1` a bot uses, with Webex's shapes:
//! * `POST /v1/messages` (text/markdown, an optional adaptive-card attachment, `parentId` for
//!   threads), `GET /v1/messages?roomId=`, `GET /v1/messages/{id}`;
//! * `GET /v1/attachment/actions/{id}` — what a bot fetches after an `attachmentActions`
//!   webhook, because the webhook itself carries only ids;
//! * `POST|GET /v1/webhooks`, `DELETE /v1/webhooks/{id}` — webhook registration with a secret;
//! * `GET /v1/people/me` — the bot's own identity.
//!
//! Every `/v1` call needs `Authorization: Bearer <bot token>` (401 otherwise, as Webex answers).
//! Ids look like Webex's: base64 of `ciscospark://us/<KIND>/<uuid>`.
//!
//! Tests (and the dev stack, through `POST /fake/attachment-actions`) play the human: [`FakeWebex::submit`]
//! records an attachment action for a message, as if someone pressed a card button, and delivers
//! the `attachmentActions`/`created` notification to every registered webhook, signed with
//! `X-Spark-Signature` = hex HMAC-SHA1 of the raw body under the webhook's secret. Forged or
//! unsigned deliveries are built with [`FakeWebex::notification_body`] and
//! [`send_callback`].
//!
//! Failure injection: [`FakeWebex::fail_next_messages`] makes the next message posts answer an
//! error status, to exercise retries. [`FakeWebex::fail_next_requests`] and
//! [`FakeWebex::slow_for`] hit every `/v1` call (a Webex outage, then a slow Webex); over HTTP
//! (the binary, e.g. for the chaos suite) `POST /fake/fail` with
//! `{"statuses": [503, 500], "delay_ms": 700, "slow_for_ms": 3000}` does both, each optional.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use axum::Json;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use base64::Engine as _;
use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// The longest markdown Webex accepts in one message.
pub const MAX_MESSAGE_BYTES: usize = 7439;
/// The content type of an adaptive card attachment.
pub const ADAPTIVE_CARD: &str = "application/vnd.microsoft.card.adaptive";

/// A message as Webex returns it (and as the fake stored it).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Message {
    pub id: String,
    pub room_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub markdown: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<Value>,
    pub person_id: String,
    pub person_email: String,
    pub created: String,
}

impl Message {
    /// The adaptive card of the message, if it has one.
    pub fn card(&self) -> Option<&Value> {
        self.attachments
            .iter()
            .find(|a| a["contentType"] == ADAPTIVE_CARD)
            .map(|a| &a["content"])
    }

    /// The `Action.Submit` buttons of the card: `(title, data)`.
    pub fn submit_actions(&self) -> Vec<(String, Value)> {
        let Some(card) = self.card() else {
            return Vec::new();
        };
        card["actions"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|a| a["type"] == "Action.Submit")
            .map(|a| {
                (
                    a["title"].as_str().unwrap_or_default().to_owned(),
                    a["data"].clone(),
                )
            })
            .collect()
    }
}

/// What `GET /v1/attachment/actions/{id}` returns.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AttachmentAction {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub message_id: String,
    pub person_id: String,
    pub room_id: String,
    pub inputs: Value,
    pub created: String,
}

/// A registered webhook.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Webhook {
    pub id: String,
    pub name: String,
    pub target_url: String,
    pub resource: String,
    pub event: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<String>,
    pub status: String,
    pub created: String,
}

/// One request the fake answered, for assertions on what the client sent.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    pub method: String,
    pub path: String,
    pub authorization: Option<String>,
    pub body: Option<Value>,
}

/// The answer of our service to a callback the fake delivered.
#[derive(Debug, Clone)]
pub struct CallbackDelivery {
    pub target_url: String,
    pub status: u16,
    pub body: String,
}

#[derive(Default)]
struct Inner {
    bot_token: String,
    messages: Vec<(Message, Instant)>,
    actions: Vec<AttachmentAction>,
    webhooks: Vec<Webhook>,
    requests: Vec<RecordedRequest>,
    failures: VecDeque<u16>,
    /// Statuses the next `/v1` calls answer, whatever they are.
    burst: VecDeque<u16>,
    /// Until when `/v1` calls are answered late, and how late.
    slow: Option<(Instant, std::time::Duration)>,
}

/// The running fake; clones share its state.
#[derive(Clone)]
pub struct FakeWebex {
    /// `http://127.0.0.1:<port>`; the API is under `/v1`.
    pub base_url: String,
    state: Arc<Mutex<Inner>>,
}

/// The bot's own person id in the fake.
pub const BOT_PERSON_ID: &str = "Y2lzY29zcGFyazovL3VzL1BFT1BMRS9ib3Q";
/// The bot's e-mail in the fake.
pub const BOT_EMAIL: &str = "steadfast-bot@webex.bot";

impl FakeWebex {
    /// Starts the fake on an ephemeral loopback port; `bot_token` is the only accepted token.
    pub async fn start(bot_token: &str) -> Self {
        let state = Self::new_state(bot_token);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind an ephemeral port");
        let base_url = format!("http://{}", listener.local_addr().expect("local addr"));
        let app = router(state.clone());
        tokio::spawn(async move {
            axum::serve(listener, app).await.expect("fake Webex");
        });
        Self { base_url, state }
    }

    /// The fake's state and router, for serving it on a chosen listener (the `fake-webex` binary).
    pub fn serve_parts(bot_token: &str, base_url: String) -> (Self, Router) {
        let state = Self::new_state(bot_token);
        (
            Self {
                base_url,
                state: state.clone(),
            },
            router(state),
        )
    }

    fn new_state(bot_token: &str) -> Arc<Mutex<Inner>> {
        Arc::new(Mutex::new(Inner {
            bot_token: bot_token.to_owned(),
            ..Inner::default()
        }))
    }

    /// The API base URL a client is configured with (`WEBEX_API_URL`).
    pub fn api_url(&self) -> String {
        format!("{}/v1", self.base_url)
    }

    /// Every message posted so far, oldest first.
    pub fn messages(&self) -> Vec<Message> {
        lock(&self.state)
            .messages
            .iter()
            .map(|(m, _)| m.clone())
            .collect()
    }

    /// Every message posted so far with the instant the fake received it (for benchmarks).
    pub fn messages_with_arrival(&self) -> Vec<(Message, Instant)> {
        lock(&self.state).messages.clone()
    }

    /// Every registered webhook.
    pub fn webhooks(&self) -> Vec<Webhook> {
        lock(&self.state).webhooks.clone()
    }

    /// Every request answered so far.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.state).requests.clone()
    }

    /// The next `count` message posts answer `status` (e.g. 503, 429) instead of succeeding.
    pub fn fail_next_messages(&self, count: usize, status: u16) {
        let mut state = lock(&self.state);
        for _ in 0..count {
            state.failures.push_back(status);
        }
    }

    /// The next `/v1` calls, whichever they are, answer these statuses (one each, in order)
    /// with Webex's error body, before any token check.
    pub fn fail_next_requests(&self, statuses: &[u16]) {
        lock(&self.state).burst.extend(statuses);
    }

    /// Every `/v1` call is answered `delay` late during the next `period`.
    pub fn slow_for(&self, delay: std::time::Duration, period: std::time::Duration) {
        lock(&self.state).slow = Some((Instant::now() + period, delay));
    }

    /// Registers a webhook directly (as if the bot had called `POST /v1/webhooks`).
    pub fn register_webhook(&self, target_url: &str, secret: Option<&str>) -> Webhook {
        let webhook = Webhook {
            id: webex_id("WEBHOOK"),
            name: "test".into(),
            target_url: target_url.to_owned(),
            resource: "attachmentActions".into(),
            event: "created".into(),
            secret: secret.map(str::to_owned),
            filter: None,
            status: "active".into(),
            created: now(),
        };
        lock(&self.state).webhooks.push(webhook.clone());
        webhook
    }

    /// Forgets every registered webhook (e.g. before registering a restarted service's).
    pub fn clear_webhooks(&self) {
        lock(&self.state).webhooks.clear();
    }

    /// Records that `person_id` pressed a card button of `message_id` with `inputs` (the
    /// button's `data`), without notifying anyone. Returns the attachment action.
    pub fn create_attachment_action(
        &self,
        message_id: &str,
        person_id: &str,
        inputs: Value,
    ) -> AttachmentAction {
        let mut state = lock(&self.state);
        let room_id = state
            .messages
            .iter()
            .find(|(m, _)| m.id == message_id)
            .map(|(m, _)| m.room_id.clone())
            .unwrap_or_else(|| webex_id("ROOM"));
        let action = AttachmentAction {
            id: webex_id("ATTACHMENT_ACTION"),
            kind: "submit".into(),
            message_id: message_id.to_owned(),
            person_id: person_id.to_owned(),
            room_id,
            inputs,
            created: now(),
        };
        state.actions.push(action.clone());
        action
    }

    /// The raw body of the `attachmentActions`/`created` notification Webex sends for `action`.
    pub fn notification_body(&self, action: &AttachmentAction) -> Vec<u8> {
        let webhook = lock(&self.state)
            .webhooks
            .iter()
            .find(|w| w.resource == "attachmentActions")
            .cloned();
        let (webhook_id, name, target) = webhook
            .map(|w| (w.id, w.name, w.target_url))
            .unwrap_or_else(|| (webex_id("WEBHOOK"), "unregistered".into(), String::new()));
        let body = json!({
            "id": webhook_id,
            "name": name,
            "targetUrl": target,
            "resource": "attachmentActions",
            "event": "created",
            "orgId": webex_id("ORGANIZATION"),
            "createdBy": BOT_PERSON_ID,
            "appId": webex_id("APPLICATION"),
            "ownedBy": "creator",
            "status": "active",
            "created": now(),
            "actorId": action.person_id,
            "data": {
                "id": action.id,
                "type": action.kind,
                "messageId": action.message_id,
                "personId": action.person_id,
                "roomId": action.room_id,
                "created": action.created,
            }
        });
        serde_json::to_vec(&body).expect("serialise notification")
    }

    /// A person presses a card button: records the attachment action and delivers the signed
    /// notification to every registered `attachmentActions` webhook. Returns each answer.
    pub async fn submit(
        &self,
        message_id: &str,
        person_id: &str,
        inputs: Value,
    ) -> Vec<CallbackDelivery> {
        let action = self.create_attachment_action(message_id, person_id, inputs);
        let body = self.notification_body(&action);
        let targets: Vec<Webhook> = lock(&self.state)
            .webhooks
            .iter()
            .filter(|w| w.resource == "attachmentActions" && w.status == "active")
            .cloned()
            .collect();
        let mut answers = Vec::new();
        for webhook in targets {
            answers
                .push(send_callback(&webhook.target_url, webhook.secret.as_deref(), &body).await);
        }
        answers
    }
}

/// Hex HMAC-SHA1 of `body` under `secret`: Webex's `X-Spark-Signature`.
pub fn sign(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// POSTs a webhook notification `body` to `target_url`, signed with `secret` when given (as
/// Webex does), and returns the answer.
pub async fn send_callback(
    target_url: &str,
    secret: Option<&str>,
    body: &[u8],
) -> CallbackDelivery {
    send_callback_with_signature(target_url, secret.map(|s| sign(s, body)).as_deref(), body).await
}

/// POSTs `body` to `target_url` with exactly the `X-Spark-Signature` given (or none): for forged
/// and malformed signatures.
pub async fn send_callback_with_signature(
    target_url: &str,
    signature: Option<&str>,
    body: &[u8],
) -> CallbackDelivery {
    let mut request = reqwest::Client::new()
        .post(target_url)
        .header("content-type", "application/json")
        .body(body.to_vec());
    if let Some(signature) = signature {
        request = request.header("x-spark-signature", signature);
    }
    match request.send().await {
        Ok(response) => {
            let status = response.status().as_u16();
            CallbackDelivery {
                target_url: target_url.to_owned(),
                status,
                body: response.text().await.unwrap_or_default(),
            }
        }
        Err(error) => CallbackDelivery {
            target_url: target_url.to_owned(),
            status: 0,
            body: error.to_string(),
        },
    }
}

fn router(state: Arc<Mutex<Inner>>) -> Router {
    let api = Router::new()
        .route("/v1/messages", post(create_message).get(list_messages))
        .route("/v1/messages/{id}", get(get_message))
        .route("/v1/attachment/actions/{id}", get(get_attachment_action))
        .route("/v1/webhooks", post(create_webhook).get(list_webhooks))
        .route("/v1/webhooks/{id}", delete(delete_webhook))
        .route("/v1/people/me", get(me))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            injected_faults,
        ));
    Router::new()
        .route("/fake/attachment-actions", post(fake_submit))
        .route("/fake/messages", get(fake_messages))
        .route("/fake/fail", post(fake_fail))
        .merge(api)
        .with_state(state)
}

/// Every `/v1` call: late while [`FakeWebex::slow_for`] holds, then failed if a burst status
/// is left ([`FakeWebex::fail_next_requests`]), else handled.
async fn injected_faults(
    State(state): State<Arc<Mutex<Inner>>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let delay = match lock(&state).slow {
        Some((until, delay)) if Instant::now() < until => Some(delay),
        _ => None,
    };
    if let Some(delay) = delay {
        tokio::time::sleep(delay).await;
    }
    let failure = lock(&state).burst.pop_front();
    if let Some(status) = failure {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        return error(status, "injected failure (fake-webex)");
    }
    next.run(request).await
}

#[derive(Deserialize)]
struct FailScript {
    #[serde(default)]
    statuses: Vec<u16>,
    #[serde(default)]
    delay_ms: u64,
    #[serde(default)]
    slow_for_ms: u64,
}

/// `POST /fake/fail`: a burst of error statuses for the next `/v1` calls and/or a slow period.
async fn fake_fail(
    State(state): State<Arc<Mutex<Inner>>>,
    Json(script): Json<FailScript>,
) -> Response {
    if let Some(bad) = script.statuses.iter().find(|s| !(400..=599).contains(*s)) {
        return error(
            StatusCode::BAD_REQUEST,
            &format!("not an error status: {bad}"),
        );
    }
    let fake = FakeWebex {
        base_url: String::new(),
        state,
    };
    fake.fail_next_requests(&script.statuses);
    if script.delay_ms > 0 && script.slow_for_ms > 0 {
        fake.slow_for(
            std::time::Duration::from_millis(script.delay_ms),
            std::time::Duration::from_millis(script.slow_for_ms),
        );
    }
    StatusCode::NO_CONTENT.into_response()
}

fn lock(state: &Arc<Mutex<Inner>>) -> MutexGuard<'_, Inner> {
    state
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn webex_id(kind: &str) -> String {
    let raw = format!("ciscospark://us/{kind}/{}", uuid::Uuid::new_v4());
    base64::engine::general_purpose::STANDARD_NO_PAD.encode(raw)
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Webex's error body.
fn error(status: StatusCode, message: &str) -> Response {
    (
        status,
        Json(json!({
            "message": message,
            "errors": [{"description": message}],
            "trackingId": format!("FAKE_{}", uuid::Uuid::new_v4()),
        })),
    )
        .into_response()
}

/// Records the request and checks the bot token: `Some(401)` when it is wrong.
fn authorise(
    state: &Arc<Mutex<Inner>>,
    method: &str,
    path: &str,
    headers: &HeaderMap,
    body: Option<Value>,
) -> Option<Response> {
    let authorization = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let mut state = lock(state);
    state.requests.push(RecordedRequest {
        method: method.into(),
        path: path.into(),
        authorization: authorization.clone(),
        body,
    });
    let expected = format!("Bearer {}", state.bot_token);
    (authorization.as_deref() != Some(expected.as_str())).then(|| {
        error(
            StatusCode::UNAUTHORIZED,
            "The request requires a valid access token set in the Authorization request header.",
        )
    })
}

async fn create_message(
    State(state): State<Arc<Mutex<Inner>>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let parsed: Option<Value> = serde_json::from_slice(&body).ok();
    if let Some(response) = authorise(&state, "POST", "/v1/messages", &headers, parsed.clone()) {
        return response;
    }
    let Some(Value::Object(body)) = parsed else {
        return error(
            StatusCode::BAD_REQUEST,
            "Unable to parse the request body as JSON.",
        );
    };
    if let Some(status) = lock(&state).failures.pop_front() {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
        return error(status, "injected failure");
    }
    let Some(room_id) = body.get("roomId").and_then(Value::as_str) else {
        return error(StatusCode::BAD_REQUEST, "Missing roomId or toPersonId.");
    };
    let text = body.get("text").and_then(Value::as_str).map(str::to_owned);
    let markdown = body
        .get("markdown")
        .and_then(Value::as_str)
        .map(str::to_owned);
    if text.is_none() && markdown.is_none() {
        return error(
            StatusCode::BAD_REQUEST,
            "Message must have text, markdown or files.",
        );
    }
    let size = markdown.as_deref().or(text.as_deref()).map_or(0, str::len);
    if size > MAX_MESSAGE_BYTES {
        return error(
            StatusCode::BAD_REQUEST,
            &format!("Message length {size} exceeds the maximum of {MAX_MESSAGE_BYTES} bytes."),
        );
    }
    let attachments = body
        .get("attachments")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if attachments.len() > 1 {
        return error(
            StatusCode::BAD_REQUEST,
            "Only one attachment is allowed per message.",
        );
    }
    if let Some(attachment) = attachments.first()
        && (attachment["contentType"] != ADAPTIVE_CARD || !attachment["content"].is_object())
    {
        return error(
            StatusCode::BAD_REQUEST,
            "Attachment must be an adaptive card (contentType application/vnd.microsoft.card.adaptive with content).",
        );
    }
    let parent_id = body
        .get("parentId")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let mut state = lock(&state);
    if let Some(parent) = &parent_id
        && !state.messages.iter().any(|(m, _)| &m.id == parent)
    {
        return error(StatusCode::BAD_REQUEST, "Parent message not found.");
    }
    let message = Message {
        id: webex_id("MESSAGE"),
        room_id: room_id.to_owned(),
        parent_id,
        text,
        markdown,
        attachments,
        person_id: BOT_PERSON_ID.into(),
        person_email: BOT_EMAIL.into(),
        created: now(),
    };
    state.messages.push((message.clone(), Instant::now()));
    (StatusCode::OK, Json(message)).into_response()
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ListQuery {
    room_id: Option<String>,
}

async fn list_messages(
    State(state): State<Arc<Mutex<Inner>>>,
    headers: HeaderMap,
    Query(query): Query<ListQuery>,
) -> Response {
    if let Some(response) = authorise(&state, "GET", "/v1/messages", &headers, None) {
        return response;
    }
    let Some(room) = query.room_id else {
        return error(StatusCode::BAD_REQUEST, "roomId is required.");
    };
    // Webex lists newest first.
    let items: Vec<Message> = lock(&state)
        .messages
        .iter()
        .rev()
        .filter(|(m, _)| m.room_id == room)
        .map(|(m, _)| m.clone())
        .collect();
    Json(json!({ "items": items })).into_response()
}

async fn get_message(
    State(state): State<Arc<Mutex<Inner>>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if let Some(response) = authorise(&state, "GET", &format!("/v1/messages/{id}"), &headers, None)
    {
        return response;
    }
    match lock(&state).messages.iter().find(|(m, _)| m.id == id) {
        Some((message, _)) => Json(message.clone()).into_response(),
        None => error(StatusCode::NOT_FOUND, "Could not find the message."),
    }
}

async fn get_attachment_action(
    State(state): State<Arc<Mutex<Inner>>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let path = format!("/v1/attachment/actions/{id}");
    if let Some(response) = authorise(&state, "GET", &path, &headers, None) {
        return response;
    }
    match lock(&state).actions.iter().find(|a| a.id == id) {
        Some(action) => Json(action.clone()).into_response(),
        None => error(
            StatusCode::NOT_FOUND,
            "Could not find the attachment action.",
        ),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct NewWebhook {
    name: String,
    target_url: String,
    resource: String,
    event: String,
    secret: Option<String>,
    filter: Option<String>,
}

async fn create_webhook(
    State(state): State<Arc<Mutex<Inner>>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let parsed: Option<Value> = serde_json::from_slice(&body).ok();
    if let Some(response) = authorise(&state, "POST", "/v1/webhooks", &headers, parsed.clone()) {
        return response;
    }
    let Some(new) = parsed.and_then(|v| serde_json::from_value::<NewWebhook>(v).ok()) else {
        return error(
            StatusCode::BAD_REQUEST,
            "name, targetUrl, resource and event are required.",
        );
    };
    let webhook = Webhook {
        id: webex_id("WEBHOOK"),
        name: new.name,
        target_url: new.target_url,
        resource: new.resource,
        event: new.event,
        secret: new.secret,
        filter: new.filter,
        status: "active".into(),
        created: now(),
    };
    lock(&state).webhooks.push(webhook.clone());
    Json(webhook).into_response()
}

async fn list_webhooks(State(state): State<Arc<Mutex<Inner>>>, headers: HeaderMap) -> Response {
    if let Some(response) = authorise(&state, "GET", "/v1/webhooks", &headers, None) {
        return response;
    }
    let items = lock(&state).webhooks.clone();
    Json(json!({ "items": items })).into_response()
}

async fn delete_webhook(
    State(state): State<Arc<Mutex<Inner>>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if let Some(response) = authorise(
        &state,
        "DELETE",
        &format!("/v1/webhooks/{id}"),
        &headers,
        None,
    ) {
        return response;
    }
    let mut state = lock(&state);
    let before = state.webhooks.len();
    state.webhooks.retain(|w| w.id != id);
    if state.webhooks.len() == before {
        return error(StatusCode::NOT_FOUND, "Could not find the webhook.");
    }
    StatusCode::NO_CONTENT.into_response()
}

async fn me(State(state): State<Arc<Mutex<Inner>>>, headers: HeaderMap) -> Response {
    if let Some(response) = authorise(&state, "GET", "/v1/people/me", &headers, None) {
        return response;
    }
    Json(json!({
        "id": BOT_PERSON_ID,
        "emails": [BOT_EMAIL],
        "displayName": "Steadfast",
        "type": "bot",
    }))
    .into_response()
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct FakeSubmit {
    message_id: String,
    person_id: String,
    #[serde(default)]
    inputs: Value,
}

/// Dev-stack control: someone presses a button of `messageId`.
async fn fake_submit(
    State(state): State<Arc<Mutex<Inner>>>,
    Json(submit): Json<FakeSubmit>,
) -> Response {
    let fake = FakeWebex {
        base_url: String::new(),
        state,
    };
    let answers = fake
        .submit(&submit.message_id, &submit.person_id, submit.inputs)
        .await;
    let answers: Vec<Value> = answers
        .into_iter()
        .map(|a| json!({"targetUrl": a.target_url, "status": a.status, "body": a.body}))
        .collect();
    Json(json!({ "deliveries": answers })).into_response()
}

/// Dev-stack control: every message, oldest first.
async fn fake_messages(State(state): State<Arc<Mutex<Inner>>>) -> Response {
    let items: Vec<Message> = lock(&state)
        .messages
        .iter()
        .map(|(m, _)| m.clone())
        .collect();
    Json(json!({ "items": items })).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn posts_messages_and_delivers_signed_callbacks() {
        let fake = FakeWebex::start("bot-token").await;
        let client = reqwest::Client::new();
        let unauthorised = client
            .post(format!("{}/messages", fake.api_url()))
            .json(&json!({"roomId": "r", "text": "hi"}))
            .send()
            .await
            .unwrap();
        assert_eq!(unauthorised.status(), 401);

        let posted: Message = client
            .post(format!("{}/messages", fake.api_url()))
            .bearer_auth("bot-token")
            .json(&json!({"roomId": "r", "markdown": "hi", "attachments": [
                {"contentType": ADAPTIVE_CARD, "content": {"type": "AdaptiveCard", "actions": [
                    {"type": "Action.Submit", "title": "Approve", "data": {"approval": "a1"}}]}}]}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(fake.messages(), vec![posted.clone()]);
        assert_eq!(
            posted.submit_actions(),
            vec![("Approve".to_owned(), json!({"approval": "a1"}))]
        );

        // A receiver that checks the signature the way a bot must.
        let seen = Arc::new(Mutex::new(Vec::<(Option<String>, Vec<u8>)>::new()));
        let record = seen.clone();
        let target = steadfast_test_support::spawn_http(Router::new().route(
            "/callback",
            post(move |headers: HeaderMap, body: axum::body::Bytes| {
                let record = record.clone();
                async move {
                    let signature = headers
                        .get("x-spark-signature")
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_owned);
                    record.lock().unwrap().push((signature, body.to_vec()));
                    StatusCode::NO_CONTENT
                }
            }),
        ))
        .await;
        fake.register_webhook(&format!("{target}/callback"), Some("s3cret"));
        let answers = fake
            .submit(&posted.id, "person-1", json!({"approval": "a1"}))
            .await;
        assert_eq!(answers.len(), 1);
        assert_eq!(answers[0].status, 204);
        let (signature, body) = seen.lock().unwrap()[0].clone();
        assert_eq!(signature.unwrap(), sign("s3cret", &body));
        let notification: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(notification["resource"], "attachmentActions");
        let action_id = notification["data"]["id"].as_str().unwrap();

        let action: AttachmentAction = client
            .get(format!("{}/attachment/actions/{action_id}", fake.api_url()))
            .bearer_auth("bot-token")
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(action.person_id, "person-1");
        assert_eq!(action.message_id, posted.id);
        assert_eq!(action.room_id, "r");
        assert_eq!(action.inputs, json!({"approval": "a1"}));
    }

    #[tokio::test]
    async fn fake_fail_over_http_fails_a_burst_then_answers_slowly() {
        let fake = FakeWebex::start("t").await;
        let client = reqwest::Client::new();
        let script = |body: Value| {
            client
                .post(format!("{}/fake/fail", fake.base_url))
                .json(&body)
                .send()
        };
        let answered =
            script(json!({"statuses": [503, 502], "delay_ms": 300, "slow_for_ms": 1500}))
                .await
                .unwrap();
        assert_eq!(answered.status(), 204);
        let me = || {
            client
                .get(format!("{}/people/me", fake.api_url()))
                .bearer_auth("t")
                .send()
        };
        let post = || {
            client
                .post(format!("{}/messages", fake.api_url()))
                .bearer_auth("t")
                .json(&json!({"roomId": "r", "text": "x"}))
                .send()
        };
        // The burst hits whatever comes next, then calls succeed — late, while slow.
        assert_eq!(me().await.unwrap().status(), 503);
        assert_eq!(post().await.unwrap().status(), 502);
        let started = Instant::now();
        assert_eq!(post().await.unwrap().status(), 200);
        assert!(started.elapsed() >= std::time::Duration::from_millis(300));
        assert_eq!(fake.messages().len(), 1, "a failed post stores nothing");
        // /fake/* is never failed nor delayed; bad scripts are refused.
        assert_eq!(
            script(json!({"statuses": [200]})).await.unwrap().status(),
            400
        );
        fake.slow_for(std::time::Duration::from_secs(5), std::time::Duration::ZERO);
        let started = Instant::now();
        assert_eq!(me().await.unwrap().status(), 200);
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
    }

    #[tokio::test]
    async fn injected_failures_and_validation() {
        let fake = FakeWebex::start("t").await;
        fake.fail_next_messages(1, 503);
        let client = reqwest::Client::new();
        let post = |body: Value| {
            client
                .post(format!("{}/messages", fake.api_url()))
                .bearer_auth("t")
                .json(&body)
                .send()
        };
        assert_eq!(
            post(json!({"roomId": "r", "text": "x"}))
                .await
                .unwrap()
                .status(),
            503
        );
        assert_eq!(
            post(json!({"roomId": "r", "text": "x"}))
                .await
                .unwrap()
                .status(),
            200
        );
        assert_eq!(post(json!({"text": "x"})).await.unwrap().status(), 400);
        let long = "x".repeat(MAX_MESSAGE_BYTES + 1);
        assert_eq!(
            post(json!({"roomId": "r", "markdown": long}))
                .await
                .unwrap()
                .status(),
            400
        );
        assert_eq!(fake.messages().len(), 1);
    }
}

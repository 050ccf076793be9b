//! Who is asking, and may they?
//!
//! Two ways in, both ending in a [`Session`] (so both carry a CSRF token):
//! * **an authenticating proxy** (oauth2-proxy's convention): `X-Forwarded-User` /
//!   `X-Forwarded-Email` are believed only on connections from `CONSOLE_TRUSTED_PROXIES`; the
//!   first request starts a session for that user, and the session is only honoured while the
//!   proxy keeps vouching for the same user;
//! * **built-in users** from `CONSOLE_USERS_FILE`, through the login form.
//!
//! [`authenticate`] puts the [`Principal`] into the request (or sends the browser to the login
//! page); [`verify_form`] refuses every state-changing form whose `csrf` field is not the
//! session's token; [`require_operator`] guards what viewers may not do.

pub mod session;
pub mod users;

use std::net::{IpAddr, SocketAddr};

use axum::body::{Body, to_bytes};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq as _;

pub use session::{Session, SessionError, Sessions};

use crate::app::AppState;
use crate::form::FormFields;
use crate::pages;

/// The session cookie.
pub const SESSION_COOKIE: &str = "console_session";
/// Bigger forms than this are refused (a replay of a few hundred selected ids fits).
pub const MAX_FORM_BYTES: usize = 64 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Viewer,
    Operator,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Viewer => "viewer",
            Self::Operator => "operator",
        }
    }
}

impl std::str::FromStr for Role {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.trim() {
            "viewer" => Ok(Self::Viewer),
            "operator" => Ok(Self::Operator),
            other => Err(format!(
                "the role must be `viewer` or `operator`, not `{other}`"
            )),
        }
    }
}

/// The user behind a request.
#[derive(Debug, Clone)]
pub struct Principal {
    pub user: String,
    pub role: Role,
    pub csrf: String,
}

impl Principal {
    pub fn may_operate(&self) -> bool {
        self.role == Role::Operator
    }

    /// How the user appears in the other services' audit logs.
    pub fn audit_name(&self) -> String {
        format!("console:{}", self.user)
    }
}

/// The value of cookie `name`.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}

/// A `Set-Cookie` value: HttpOnly, SameSite=Strict, path `/`, Secure over https.
pub fn set_cookie(name: &str, value: &str, max_age_secs: u64, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{name}={value}; Path=/; Max-Age={max_age_secs}; HttpOnly; SameSite=Strict{secure}"
    ))
    .expect("cookie values are hex")
}

/// The session cookie for session `id`, living as long as the session.
pub fn session_cookie(state: &AppState, id: &str) -> HeaderValue {
    set_cookie(
        SESSION_COOKIE,
        id,
        state.sessions.ttl().as_secs(),
        state.config.auth.secure_cookies,
    )
}

/// The user an authenticating proxy vouches for, if the connection comes from one we trust.
fn proxy_user(state: &AppState, peer: IpAddr, headers: &HeaderMap) -> Option<(String, Role)> {
    let proxy = state.config.auth.proxy.as_ref()?;
    let header_text = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    };
    let user = header_text("x-forwarded-user");
    let email = header_text("x-forwarded-email");
    if user.is_none() && email.is_none() {
        return None;
    }
    if !proxy.trusted.iter().any(|range| range.contains(peer)) {
        tracing::warn!(%peer, "ignored X-Forwarded-User/-Email from an address that is not a trusted proxy");
        return None;
    }
    let is_operator = [&user, &email]
        .into_iter()
        .flatten()
        .any(|name| proxy.operators.contains(&name.to_lowercase()));
    let name = user.or(email).expect("one of them is set");
    Some((
        name,
        if is_operator {
            Role::Operator
        } else {
            Role::Viewer
        },
    ))
}

/// Finds the principal (from the proxy or the session cookie) or sends the browser to log in.
pub async fn authenticate(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    mut request: Request,
    next: Next,
) -> Response {
    let headers = request.headers();
    let cookie_id = cookie(headers, SESSION_COOKIE).map(str::to_owned);
    let stored = match &cookie_id {
        Some(id) => match state.sessions.get(id).await {
            Ok(session) => session,
            Err(error) => return sessions_unavailable(&error),
        },
        None => None,
    };
    let mut new_cookie = None;
    let session = match proxy_user(&state, peer.ip(), headers) {
        Some((user, role)) => match stored {
            Some(s) if s.via == "proxy" && s.user == user && s.role == role => s,
            _ => match state.sessions.create(&user, role, "proxy").await {
                Ok((id, session)) => {
                    tracing::info!(user = %user, role = role.as_str(), "console session started through the proxy");
                    new_cookie = Some(id);
                    session
                }
                Err(error) => return sessions_unavailable(&error),
            },
        },
        // A proxy session is only good while the proxy vouches for its user.
        None => match stored {
            Some(s) if s.via == "login" => s,
            _ => return to_login(&request),
        },
    };
    request.extensions_mut().insert(Principal {
        user: session.user,
        role: session.role,
        csrf: session.csrf,
    });
    let mut response = next.run(request).await;
    if let Some(id) = new_cookie {
        response
            .headers_mut()
            .append(header::SET_COOKIE, session_cookie(&state, &id));
    }
    response
}

fn sessions_unavailable(error: &SessionError) -> Response {
    tracing::error!(%error, "console sessions unavailable");
    pages::error_page(
        StatusCode::SERVICE_UNAVAILABLE,
        "Sessions unavailable",
        &format!(
            "The console cannot read its sessions: {error}. It keeps them in Redis (REDIS_URL)."
        ),
    )
}

/// Back to the login page, coming back here afterwards (for a page) or to where the form was
/// (a form posted with an expired session cannot be replayed: its CSRF token died with it).
fn to_login(request: &Request) -> Response {
    let uri = request.uri();
    let back = if request.method() == Method::GET {
        uri.path_and_query().map_or("/", |p| p.as_str()).to_owned()
    } else {
        request
            .headers()
            .get(header::REFERER)
            .and_then(|v| v.to_str().ok())
            .and_then(|r| url::Url::parse(r).ok())
            .map(|u| u.path().to_owned())
            .unwrap_or_else(|| "/".to_owned())
    };
    let target = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("next", &back)
        .finish();
    Redirect::to(&format!("/login?{target}")).into_response()
}

/// Reads a form body (bounded), refuses it unless its `csrf` field is the session's token, and
/// hands the parsed fields to the handler as an extension.
pub async fn verify_form(request: Request, next: Next) -> Response {
    if request.method() != Method::POST {
        return next.run(request).await;
    }
    let principal = request
        .extensions()
        .get::<Principal>()
        .cloned()
        .expect("authenticate runs first");
    let (mut parts, body) = request.into_parts();
    let bytes = match to_bytes(body, MAX_FORM_BYTES).await {
        Ok(bytes) => bytes,
        Err(_) => {
            return pages::error_page(
                StatusCode::PAYLOAD_TOO_LARGE,
                "Form too large",
                &format!(
                    "The form is larger than {MAX_FORM_BYTES} bytes. Select fewer messages, or use a filter."
                ),
            );
        }
    };
    let fields = FormFields::parse(&bytes);
    let given = fields.get("csrf").unwrap_or_default();
    let matches: bool = given.as_bytes().ct_eq(principal.csrf.as_bytes()).into();
    if !matches {
        tracing::warn!(user = %principal.user, path = %parts.uri.path(), "refused a form without this session's CSRF token");
        return pages::error_page(
            StatusCode::FORBIDDEN,
            "Form refused",
            "The form was refused: its CSRF token is missing or is not this session's. Reload the page and try again.",
        );
    }
    parts.extensions.insert(fields);
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

/// Lets only operators through.
pub async fn require_operator(request: Request, next: Next) -> Response {
    let principal = request
        .extensions()
        .get::<Principal>()
        .expect("authenticate runs first");
    if !principal.may_operate() {
        tracing::warn!(user = %principal.user, path = %request.uri().path(), "refused: the viewer role cannot change anything");
        return pages::error_page(
            StatusCode::FORBIDDEN,
            "Not allowed",
            &format!(
                "You are signed in as {} with the viewer role: replaying, discarding, pausing and approving need the operator role.",
                principal.user
            ),
        );
    }
    next.run(request).await
}

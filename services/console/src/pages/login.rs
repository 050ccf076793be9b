//! Signing in and out.
//!
//! The login form is protected against login CSRF the double-submit way: `GET /login` sets a
//! short-lived random `console_login` cookie and puts the same value in the form; `POST /login`
//! needs both to match (a page on another site can make a browser post the form, but cannot
//! read or set our cookie, and SameSite=Strict keeps it from being sent along anyway).

use axum::Extension;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use serde::Deserialize;
use subtle::ConstantTimeEq as _;

use super::bare_page;
use crate::app::AppState;
use crate::auth::session::random_token;
use crate::auth::{Principal, SESSION_COOKIE, cookie, session_cookie, set_cookie};
use crate::form::FormFields;

const LOGIN_COOKIE: &str = "console_login";
/// How long a login form stays usable.
const LOGIN_FORM_SECS: u64 = 15 * 60;
/// A login form is a name and a password.
pub const MAX_LOGIN_BYTES: usize = 4 * 1024;

#[derive(Debug, Default, Deserialize)]
pub struct LoginQuery {
    #[serde(default)]
    next: Option<String>,
}

/// Only a path on this site: never `//host` or `https://…` (no open redirect).
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n) if n.starts_with('/') && !n.starts_with("//") && !n.contains('\\') => n.to_owned(),
        _ => "/".to_owned(),
    }
}

fn form(state: &AppState, next: &str, token: &str, problem: Option<&str>) -> Markup {
    let has_users = !state.config.auth.users.is_empty();
    bare_page(
        "Sign in",
        html! {
            @if let Some(problem) = problem {
                p.failure role="alert" { (problem) }
            }
            @if has_users {
                form.login method="post" action="/login" {
                    input type="hidden" name="login_token" value=(token);
                    input type="hidden" name="next" value=(next);
                    label for="user" { "User name" }
                    input #user type="text" name="user" autocomplete="username" required autofocus;
                    label for="password" { "Password" }
                    input #password type="password" name="password" autocomplete="current-password" required;
                    button type="submit" { "Sign in" }
                }
            }
            @if state.config.auth.proxy.is_some() {
                p { "Signed-in users of your company's login reach this console through its authenticating proxy." }
            }
        },
    )
}

fn with_login_cookie(state: &AppState, status: StatusCode, body: Markup, token: &str) -> Response {
    (
        status,
        [(
            header::SET_COOKIE,
            set_cookie(
                LOGIN_COOKIE,
                token,
                LOGIN_FORM_SECS,
                state.config.auth.secure_cookies,
            ),
        )],
        body,
    )
        .into_response()
}

/// `GET /login`.
pub async fn page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<LoginQuery>,
) -> Response {
    let next = safe_next(query.next.as_deref());
    if let Some(id) = cookie(&headers, SESSION_COOKIE)
        && let Ok(Some(session)) = state.sessions.get(id).await
        && session.via == "login"
    {
        return Redirect::to(&next).into_response();
    }
    let token = random_token();
    with_login_cookie(
        &state,
        StatusCode::OK,
        form(&state, &next, &token, None),
        &token,
    )
}

/// `POST /login`.
pub async fn submit(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let fields = FormFields::parse(&body);
    let next = safe_next(fields.get("next"));
    let refuse = |status: StatusCode, problem: &str| {
        let token = random_token();
        with_login_cookie(
            &state,
            status,
            form(&state, &next, &token, Some(problem)),
            &token,
        )
    };
    let expected = cookie(&headers, LOGIN_COOKIE).unwrap_or_default();
    let given = fields.get("login_token").unwrap_or_default();
    let same: bool = given.as_bytes().ct_eq(expected.as_bytes()).into();
    if expected.is_empty() || !same {
        return refuse(
            StatusCode::FORBIDDEN,
            "This sign-in form has expired or did not come from this console. Please sign in again.",
        );
    }
    let (Some(user), Some(password)) = (fields.get("user"), fields.get("password")) else {
        return refuse(StatusCode::BAD_REQUEST, "Enter a user name and a password.");
    };
    let users = state.config.auth.users.clone();
    let (user, password) = (user.to_owned(), password.to_owned());
    let name = user.clone();
    let verified = tokio::task::spawn_blocking(move || users.verify(&user, &password))
        .await
        .ok()
        .flatten();
    let Some(verified) = verified else {
        state.metrics.login("refused");
        tracing::warn!(user = %name, "console sign-in refused: wrong user name or password");
        return refuse(StatusCode::UNAUTHORIZED, "Wrong user name or password.");
    };
    match state
        .sessions
        .create(&verified.name, verified.role, "login")
        .await
    {
        Ok((id, _)) => {
            state.metrics.login("ok");
            tracing::info!(user = %verified.name, role = verified.role.as_str(), "console sign-in");
            let mut response = Redirect::to(&next).into_response();
            let headers = response.headers_mut();
            headers.append(header::SET_COOKIE, session_cookie(&state, &id));
            headers.append(header::SET_COOKIE, set_cookie(LOGIN_COOKIE, "", 0, false));
            response
        }
        Err(error) => {
            tracing::error!(%error, "console sessions unavailable");
            refuse(
                StatusCode::SERVICE_UNAVAILABLE,
                &format!("Cannot start a session: {error}"),
            )
        }
    }
}

/// `POST /logout` (behind the CSRF check).
pub async fn logout(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    headers: HeaderMap,
) -> Response {
    if let Some(id) = cookie(&headers, SESSION_COOKIE)
        && let Err(error) = state.sessions.delete(id).await
    {
        tracing::warn!(%error, "could not delete a console session");
    }
    tracing::info!(user = %principal.user, "console sign-out");
    (
        [(
            header::SET_COOKIE,
            set_cookie(SESSION_COOKIE, "", 0, state.config.auth.secure_cookies),
        )],
        Redirect::to("/login"),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::safe_next;

    #[test]
    fn next_never_leaves_the_site() {
        assert_eq!(safe_next(Some("/parked?queue=x")), "/parked?queue=x");
        assert_eq!(safe_next(Some("//evil.example/")), "/");
        assert_eq!(safe_next(Some("https://evil.example/")), "/");
        assert_eq!(safe_next(Some("/\\evil.example")), "/");
        assert_eq!(safe_next(None), "/");
    }
}

//! The pages, rendered on the server with maud (every value escaped unless marked otherwise).
//! Forms post and redirect back with a notice, so everything works without JavaScript;
//! `assets/console.js` only adds live refresh and "select all".

pub mod fleet;
pub mod herder;
pub mod incidents;
pub mod login;
pub mod overview;
pub mod parked;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use chrono::{DateTime, Utc};
use maud::{DOCTYPE, Markup, html};
use serde::Deserialize;

use crate::auth::Principal;

/// Which entry of the navigation is current.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    Overview,
    Incidents,
    Fleet,
    Parked,
    Herder,
}

const SECTIONS: [(Section, &str, &str); 5] = [
    (Section::Overview, "/", "Overview"),
    (Section::Incidents, "/incidents", "Incidents"),
    (Section::Fleet, "/fleet", "Fleet"),
    (Section::Parked, "/parked", "Parked messages"),
    (Section::Herder, "/herder", "Pipeline herder"),
];

/// `?notice=…` / `?error=…`: what the last form did, shown once at the top of the page.
#[derive(Debug, Default, Deserialize)]
pub struct Flash {
    #[serde(default)]
    pub notice: Option<String>,
    #[serde(default)]
    pub error: Option<String>,
}

fn head(title: &str) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width, initial-scale=1";
            title { (title) " · Steadfast console" }
            link rel="stylesheet" href="/assets/console.css";
            script src="/assets/console.js" defer {}
        }
    }
}

/// A page for a signed-in user: navigation, who they are, a way out, the flash and the content.
pub fn page(
    principal: &Principal,
    section: Section,
    title: &str,
    flash: &Flash,
    content: Markup,
) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(title))
            body {
                a.skip href="#main" { "Skip to content" }
                header.top {
                    span.brand { "Steadfast" }
                    nav aria-label="Sections" {
                        ul {
                            @for (s, href, label) in SECTIONS {
                                li {
                                    @if s == section {
                                        a href=(href) aria-current="page" { (label) }
                                    } @else {
                                        a href=(href) { (label) }
                                    }
                                }
                            }
                        }
                    }
                    form.who method="post" action="/logout" {
                        span { (principal.user) " · " span.role { (principal.role.as_str()) } }
                        (csrf_field(principal))
                        button type="submit" { "Sign out" }
                    }
                }
                main #main {
                    h1 { (title) }
                    @if let Some(notice) = &flash.notice {
                        p.notice role="status" { (notice) }
                    }
                    @if let Some(error) = &flash.error {
                        p.failure role="alert" { (error) }
                    }
                    (content)
                }
            }
        }
    }
}

/// A page without navigation (login, errors before or outside a session).
pub fn bare_page(title: &str, content: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(title))
            body.bare {
                main #main {
                    h1 { (title) }
                    (content)
                }
            }
        }
    }
}

/// The hidden field every state-changing form carries.
pub fn csrf_field(principal: &Principal) -> Markup {
    html! { input type="hidden" name="csrf" value=(principal.csrf); }
}

/// An error page with its status code.
pub fn error_page(status: StatusCode, title: &str, detail: &str) -> Response {
    let body = bare_page(
        title,
        html! {
            p.failure role="alert" { (detail) }
            p { a href="/" { "Back to the overview" } }
        },
    );
    (status, body).into_response()
}

/// Why a page cannot be shown, turned into an error page when answered.
#[derive(Debug)]
pub struct PageError {
    pub status: StatusCode,
    pub title: &'static str,
    pub detail: String,
}

impl PageError {
    pub fn not_found(detail: impl Into<String>) -> Self {
        Self {
            status: StatusCode::NOT_FOUND,
            title: "Not found",
            detail: detail.into(),
        }
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        error_page(self.status, self.title, &self.detail)
    }
}

/// 404 for an unknown page or id.
pub fn not_found(what: &str) -> Response {
    error_page(StatusCode::NOT_FOUND, "Not found", what)
}

/// 502 when a service the console reads from fails.
pub fn upstream_failed(service: &str, error: &dyn std::fmt::Display) -> Response {
    error_page(
        StatusCode::BAD_GATEWAY,
        &format!("{service} did not answer"),
        &format!("The console could not read from {service}: {error}"),
    )
}

/// After a form: back to `path` with a notice or an error (Post/Redirect/Get).
pub fn back(path: &str, outcome: Result<String, String>) -> Response {
    let (key, text) = match outcome {
        Ok(notice) => ("notice", notice),
        Err(error) => ("error", error),
    };
    let query = url::form_urlencoded::Serializer::new(String::new())
        .append_pair(key, &text)
        .finish();
    let separator = if path.contains('?') { '&' } else { '?' };
    Redirect::to(&format!("{path}{separator}{query}")).into_response()
}

/// A timestamp as operators read it, with how long ago.
pub fn when(at: DateTime<Utc>, now: DateTime<Utc>) -> Markup {
    html! {
        time datetime=(at.to_rfc3339()) title=(at.format("%Y-%m-%d %H:%M:%S UTC").to_string()) {
            (ago(now - at))
        }
    }
}

/// `3 s ago`, `5 min ago`, `2 h ago`, `4 d ago`.
pub fn ago(elapsed: chrono::TimeDelta) -> String {
    let secs = elapsed.num_seconds();
    if secs < 0 {
        return format!("in {}", ago(-elapsed).trim_end_matches(" ago"));
    }
    match secs {
        0..=59 => format!("{secs} s ago"),
        60..=3599 => format!("{} min ago", secs / 60),
        3600..=86_399 => format!("{} h ago", secs / 3600),
        _ => format!("{} d ago", secs / 86_400),
    }
}

/// Text cut to `max` characters, with an ellipsis when cut.
pub fn excerpt(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_read_naturally() {
        assert_eq!(ago(chrono::TimeDelta::seconds(5)), "5 s ago");
        assert_eq!(ago(chrono::TimeDelta::seconds(125)), "2 min ago");
        assert_eq!(ago(chrono::TimeDelta::hours(3)), "3 h ago");
        assert_eq!(ago(chrono::TimeDelta::days(2)), "2 d ago");
        assert_eq!(ago(chrono::TimeDelta::seconds(-90)), "in 1 min");
        assert_eq!(excerpt("abcdef", 3), "abc…");
        assert_eq!(excerpt("abc", 3), "abc");
    }
}

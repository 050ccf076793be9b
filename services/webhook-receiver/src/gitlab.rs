//! GitLab webhooks → CloudEvents, in CKI's routing scheme.
//!
//! * event kind: the body's `object_kind` (`build` for a Job Hook), else `event_name` (system
//!   hooks), else derived from `X-Gitlab-Event` (`Job Hook` → `build`);
//! * host: `X-Gitlab-Instance`, else the host of `project.web_url`, else of
//!   `repository.homepage` (older Job Hooks carry no `project`);
//! * project path: `project.path_with_namespace`, else the path of `repository.homepage`;
//! * routing key `<host>.<project path, '/' → '.'>.<kind>`, type `com.gitlab.<kind>`, source
//!   `https://<host>/<project path>`, id from `Idempotency-Key`, `X-Gitlab-Webhook-UUID`,
//!   `X-Gitlab-Event-UUID` or a new UUIDv7; header `message-type: gitlab`.
//!
//! The body is passed on unchanged as the event's `data`: it is parsed once, for the few
//! fields above, and embedded verbatim (no tree, no re-encoding — this is the hot path).

use std::borrow::Cow;

use http::HeaderMap;
use serde::Deserialize;
use serde_json::value::RawValue;
use steadfast_events::catalogue::gitlab_type;
use steadfast_events::{Envelope, TraceParent};

use crate::event::{RoutingKeyTooLong, check_routing_key};
use crate::request::{IDEMPOTENCY_KEY, header_text};

pub const EVENT_HEADER: &str = "x-gitlab-event";
pub const INSTANCE_HEADER: &str = "x-gitlab-instance";
/// Where the event id comes from, first present wins.
pub const ID_HEADERS: [&str; 3] = [
    IDEMPOTENCY_KEY,
    "x-gitlab-webhook-uuid",
    "x-gitlab-event-uuid",
];

/// The fields of a GitLab body the receiver reads; everything else is skipped unparsed.
#[derive(Debug, Default, Deserialize)]
struct Fields<'a> {
    #[serde(borrow, default)]
    object_kind: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    event_name: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    project: Option<ProjectFields<'a>>,
    #[serde(borrow, default)]
    repository: Option<RepositoryFields<'a>>,
}

#[derive(Debug, Default, Deserialize)]
struct ProjectFields<'a> {
    #[serde(borrow, default)]
    path_with_namespace: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    web_url: Option<Cow<'a, str>>,
}

#[derive(Debug, Default, Deserialize)]
struct RepositoryFields<'a> {
    #[serde(borrow, default)]
    homepage: Option<Cow<'a, str>>,
}

/// What the receiver makes of one GitLab webhook.
#[derive(Debug)]
pub struct GitlabHook {
    pub object_kind: String,
    /// `host[:port]` of the GitLab instance.
    pub host: String,
    /// `group/subgroup/project`.
    pub project_path: String,
    /// The body, verbatim.
    pub payload: Box<RawValue>,
}

impl GitlabHook {
    /// Reads kind, host and project from the headers and the body (a JSON object). The error
    /// is the reason for a 400.
    pub fn interpret(headers: &HeaderMap, payload: Box<RawValue>) -> Result<Self, GitlabHookError> {
        let fields: Fields<'_> =
            serde_json::from_str(payload.get()).map_err(GitlabHookError::InvalidBody)?;
        let object_kind = object_kind(headers, &fields)?;
        let project_path = project_path(&fields)?;
        let host = host(headers, &fields)?;
        let hook = Self {
            object_kind,
            host,
            project_path,
            payload,
        };
        check_routing_key(&hook.routing_key())?;
        Ok(hook)
    }

    /// `gitlab.com.cki-project.kernel-ark.build`.
    pub fn routing_key(&self) -> String {
        format!(
            "{}.{}.{}",
            self.host,
            self.project_path.replace('/', "."),
            self.object_kind
        )
    }

    /// `https://gitlab.com/cki-project/kernel-ark`.
    pub fn source(&self) -> String {
        format!("https://{}/{}", self.host, self.project_path)
    }

    pub fn into_envelope(self, id: String, trace: &TraceParent) -> Envelope<Box<RawValue>> {
        Envelope::new(self.source(), gitlab_type(&self.object_kind), self.payload)
            .with_id(id)
            .with_traceparent(trace)
    }
}

/// Why a body cannot be a GitLab webhook: the reason for a 400.
#[derive(Debug, thiserror::Error)]
pub enum GitlabHookError {
    #[error("invalid GitLab webhook body: {0}")]
    InvalidBody(#[source] serde_json::Error),
    #[error(
        "cannot tell the event kind: the body has no `object_kind` and there is no X-Gitlab-Event header"
    )]
    NoKind,
    #[error(
        "`{kind}` is not a GitLab event kind (expected lower-case letters, digits and `_`, like `build`)"
    )]
    BadKind { kind: String },
    #[error("cannot tell the project: `repository.homepage` `{homepage}` is not a URL: {source}")]
    HomepageNotAUrl {
        homepage: String,
        #[source]
        source: url::ParseError,
    },
    #[error(
        "cannot tell the project: the body has no `project.path_with_namespace` or `repository.homepage`"
    )]
    NoProject,
    #[error(
        "`{path}` is not a GitLab project path (expected `group/project` of letters, digits, `_`, `.` and `-`)"
    )]
    BadProjectPath { path: String },
    #[error("header X-Gitlab-Instance `{instance}` is not a host or URL")]
    BadInstanceHeader { instance: String },
    #[error("cannot tell the GitLab host: `{field}` `{url}` is not a URL")]
    HostNotAUrl { field: &'static str, url: String },
    #[error(
        "cannot tell the GitLab host: there is no X-Gitlab-Instance header and the body has no `project.web_url` or `repository.homepage`"
    )]
    NoHost,
    #[error(transparent)]
    RoutingKey(#[from] RoutingKeyTooLong),
}

fn object_kind(headers: &HeaderMap, fields: &Fields<'_>) -> Result<String, GitlabHookError> {
    let from_body = fields
        .object_kind
        .as_deref()
        .or(fields.event_name.as_deref())
        .map(str::to_owned);
    let kind = match from_body {
        Some(kind) => kind,
        None => header_text(headers, EVENT_HEADER)
            .map(kind_from_event_header)
            .ok_or(GitlabHookError::NoKind)?,
    };
    let valid = !kind.is_empty()
        && kind.len() <= 64
        && kind
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if !valid {
        return Err(GitlabHookError::BadKind { kind });
    }
    Ok(kind)
}

/// `Job Hook` → `build`, `Merge Request Hook` → `merge_request`, `Pipeline Event` (GitLab 9.5)
/// → `pipeline`: the `object_kind` GitLab puts in the body of the same event.
pub fn kind_from_event_header(header: &str) -> String {
    let name = header
        .trim()
        .trim_end_matches(" Hook")
        .trim_end_matches(" Event")
        .trim();
    match name {
        "Job" | "Build" => "build".to_owned(),
        "Confidential Issue" => "issue".to_owned(),
        "Confidential Note" => "note".to_owned(),
        "Resource Access Token" => "access_token".to_owned(),
        other => other.to_ascii_lowercase().replace([' ', '-'], "_"),
    }
}

fn project_path(fields: &Fields<'_>) -> Result<String, GitlabHookError> {
    let from_project = fields
        .project
        .as_ref()
        .and_then(|p| p.path_with_namespace.as_deref());
    let homepage = fields
        .repository
        .as_ref()
        .and_then(|r| r.homepage.as_deref());
    let path = match (from_project, homepage) {
        (Some(path), _) => path.trim_matches('/').to_owned(),
        (None, Some(homepage)) => {
            let url =
                url::Url::parse(homepage).map_err(|source| GitlabHookError::HomepageNotAUrl {
                    homepage: homepage.to_owned(),
                    source,
                })?;
            url.path().trim_matches('/').to_owned()
        }
        (None, None) => return Err(GitlabHookError::NoProject),
    };
    let valid = !path.is_empty()
        && path.split('/').all(|segment| {
            !segment.is_empty()
                && segment
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
        });
    if !valid {
        return Err(GitlabHookError::BadProjectPath { path });
    }
    Ok(path)
}

fn host(headers: &HeaderMap, fields: &Fields<'_>) -> Result<String, GitlabHookError> {
    if let Some(instance) = header_text(headers, INSTANCE_HEADER) {
        let url = if instance.contains("://") {
            instance.to_owned()
        } else {
            format!("https://{instance}")
        };
        return authority(&url).ok_or_else(|| GitlabHookError::BadInstanceHeader {
            instance: instance.to_owned(),
        });
    }
    let candidates = [
        (
            "project.web_url",
            fields.project.as_ref().and_then(|p| p.web_url.as_deref()),
        ),
        (
            "repository.homepage",
            fields
                .repository
                .as_ref()
                .and_then(|r| r.homepage.as_deref()),
        ),
    ];
    for (field, url) in candidates {
        if let Some(url) = url {
            return authority(url).ok_or_else(|| GitlabHookError::HostNotAUrl {
                field,
                url: url.to_owned(),
            });
        }
    }
    Err(GitlabHookError::NoHost)
}

/// `host[:port]` of a URL, lower-case.
fn authority(url: &str) -> Option<String> {
    let url = url::Url::parse(url).ok()?;
    let host = url
        .host_str()
        .filter(|h| !h.is_empty())?
        .to_ascii_lowercase();
    Some(match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;
    use serde_json::{Value, json};

    fn raw(value: Value) -> Box<RawValue> {
        serde_json::value::to_raw_value(&value).unwrap()
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (name, value) in pairs {
            h.insert(*name, HeaderValue::from_str(value).unwrap());
        }
        h
    }

    #[test]
    fn builds_ckis_routing_key_type_and_source() {
        let payload = json!({
            "object_kind": "build",
            "project": {
                "path_with_namespace": "cki-project/kernel-ark",
                "web_url": "https://gitlab.com/cki-project/kernel-ark"
            }
        });
        let hook = GitlabHook::interpret(&HeaderMap::new(), raw(payload)).unwrap();
        assert_eq!(
            hook.routing_key(),
            "gitlab.com.cki-project.kernel-ark.build"
        );
        assert_eq!(hook.source(), "https://gitlab.com/cki-project/kernel-ark");
        let envelope = hook.into_envelope("id".into(), &TraceParent::new_random());
        assert_eq!(envelope.event_type, "com.gitlab.build");
    }

    #[test]
    fn the_instance_header_wins_over_the_body() {
        let payload = json!({
            "object_kind": "pipeline",
            "project": {"path_with_namespace": "a/b", "web_url": "http://10.0.0.1:3000/a/b"}
        });
        let hook = GitlabHook::interpret(
            &headers(&[("x-gitlab-instance", "https://GitLab.Example.com")]),
            raw(payload.clone()),
        )
        .unwrap();
        assert_eq!(hook.routing_key(), "gitlab.example.com.a.b.pipeline");
        let hook = GitlabHook::interpret(&HeaderMap::new(), raw(payload)).unwrap();
        assert_eq!(hook.host, "10.0.0.1:3000");
        assert_eq!(hook.source(), "https://10.0.0.1:3000/a/b");
    }

    #[test]
    fn old_job_hooks_without_a_project_use_the_repository_homepage() {
        let payload = json!({
            "object_kind": "build",
            "repository": {"homepage": "http://192.168.64.1:3005/gitlab-org/gitlab-test"}
        });
        let hook = GitlabHook::interpret(&HeaderMap::new(), raw(payload)).unwrap();
        assert_eq!(
            hook.routing_key(),
            "192.168.64.1:3005.gitlab-org.gitlab-test.build"
        );
    }

    #[test]
    fn the_kind_falls_back_on_the_event_header() {
        for (header, kind) in [
            ("Job Hook", "build"),
            ("Pipeline Hook", "pipeline"),
            ("Pipeline Event", "pipeline"),
            ("Merge Request Hook", "merge_request"),
            ("Tag Push Hook", "tag_push"),
            ("Confidential Note Hook", "note"),
            ("Wiki Page Hook", "wiki_page"),
        ] {
            assert_eq!(kind_from_event_header(header), kind, "{header}");
        }
        let payload =
            json!({"project": {"path_with_namespace": "a/b", "web_url": "https://h/a/b"}});
        let hook = GitlabHook::interpret(&headers(&[("x-gitlab-event", "Job Hook")]), raw(payload))
            .unwrap();
        assert_eq!(hook.object_kind, "build");
    }

    #[test]
    fn missing_or_bad_fields_are_named() {
        let project = json!({"path_with_namespace": "a/b", "web_url": "https://h/a/b"});
        let err = GitlabHook::interpret(&HeaderMap::new(), raw(json!({"project": project})))
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "cannot tell the event kind: the body has no `object_kind` and there is no X-Gitlab-Event header"
        );
        let err = GitlabHook::interpret(&HeaderMap::new(), raw(json!({"object_kind": "build"})))
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "cannot tell the project: the body has no `project.path_with_namespace` or `repository.homepage`"
        );
        let err = GitlabHook::interpret(
            &HeaderMap::new(),
            raw(json!({"object_kind": "Build Hook!", "project": project})),
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.starts_with("`Build Hook!` is not a GitLab event kind"),
            "{err}"
        );
        let err = GitlabHook::interpret(
            &HeaderMap::new(),
            raw(json!({"object_kind": "build", "project": {"path_with_namespace": "a/b"}})),
        )
        .unwrap_err()
        .to_string();
        assert!(err.starts_with("cannot tell the GitLab host"), "{err}");
        let err = GitlabHook::interpret(
            &HeaderMap::new(),
            raw(json!({"object_kind": "build", "project": {"path_with_namespace": "a b/c", "web_url": "https://h/x"}})),
        )
        .unwrap_err().to_string();
        assert!(
            err.starts_with("`a b/c` is not a GitLab project path"),
            "{err}"
        );
    }

    #[test]
    fn over_long_routing_keys_are_refused() {
        let long = format!("group/{}", "p".repeat(260));
        let err = GitlabHook::interpret(
            &HeaderMap::new(),
            raw(json!({"object_kind": "build", "project": {"path_with_namespace": long, "web_url": "https://h/x"}})),
        )
        .unwrap_err().to_string();
        assert!(err.contains("AMQP allows 255"), "{err}");
    }
}

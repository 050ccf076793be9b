//! Who may send what: GitLab tokens per project glob, Alertmanager bearer or basic credentials.
//!
//! Every comparison of a secret with request input is constant-time
//! ([`steadfast_service_kit::auth`]). Secrets are held in [`Secret`], whose `Debug` prints
//! `***`, so a logged config never leaks one.

use globset::{Glob, GlobBuilder, GlobMatcher};
use http::HeaderMap;
use steadfast_service_kit::auth::{basic_credentials, bearer_token, constant_time_eq};

/// The GitLab header carrying the hook's secret token, verbatim.
pub const GITLAB_TOKEN_HEADER: &str = "x-gitlab-token";

/// A shared secret. Never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Refuses an empty secret: an empty token would let an empty header through.
    pub fn new(value: impl Into<String>) -> Option<Self> {
        let value = value.into();
        (!value.is_empty()).then_some(Self(value))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    fn matches(&self, given: &str) -> bool {
        constant_time_eq(self.0.as_bytes(), given.as_bytes())
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// One `gitlab.projects` entry: projects whose path matches `pattern` use `secret`.
#[derive(Debug, Clone)]
pub struct ProjectSecret {
    pub pattern: String,
    matcher: GlobMatcher,
    pub secret: Secret,
}

impl ProjectSecret {
    /// `pattern` is a glob over `group/subgroup/project`; `*` stays within one path segment,
    /// `**` crosses segments (`cki-project/**` is every project under the group).
    pub fn new(pattern: &str, secret: Secret) -> Result<Self, globset::Error> {
        let glob: Glob = GlobBuilder::new(pattern).literal_separator(true).build()?;
        Ok(Self {
            pattern: pattern.to_owned(),
            matcher: glob.compile_matcher(),
            secret,
        })
    }
}

/// The GitLab secrets: per project glob (first match wins), else the default.
#[derive(Debug, Clone, Default)]
pub struct GitlabSecrets {
    pub projects: Vec<ProjectSecret>,
    pub default: Option<Secret>,
}

impl GitlabSecrets {
    pub fn is_configured(&self) -> bool {
        self.default.is_some() || !self.projects.is_empty()
    }

    /// The `X-Gitlab-Token` header, if present and readable.
    pub fn token(headers: &HeaderMap) -> Option<&str> {
        headers.get(GITLAB_TOKEN_HEADER)?.to_str().ok()
    }

    /// Whether `token` is one of the configured secrets at all. Checked before the body is
    /// read, so a sender without a valid token learns nothing about what we make of bodies.
    /// Every secret is compared (no early exit), so timing does not tell which one matched.
    pub fn is_known(&self, token: &str) -> bool {
        let mut known = false;
        for secret in self.projects.iter().map(|p| &p.secret).chain(&self.default) {
            known |= secret.matches(token);
        }
        known
    }

    /// The secret that applies to `project_path`.
    pub fn secret_for(&self, project_path: &str) -> Option<&Secret> {
        self.projects
            .iter()
            .find(|p| p.matcher.is_match(project_path))
            .map(|p| &p.secret)
            .or(self.default.as_ref())
    }

    /// Whether `token` is the secret of `project_path`.
    pub fn authorizes(&self, project_path: &str, token: &str) -> bool {
        self.secret_for(project_path)
            .is_some_and(|secret| secret.matches(token))
    }
}

/// Alertmanager's credentials: `http_config.authorization` (bearer) and/or `basic_auth`.
#[derive(Debug, Clone, Default)]
pub struct AlertmanagerAuth {
    pub bearer: Option<Secret>,
    pub basic: Option<(String, Secret)>,
}

impl AlertmanagerAuth {
    pub fn is_configured(&self) -> bool {
        self.bearer.is_some() || self.basic.is_some()
    }

    /// Whether the request carries one of the configured credentials.
    pub fn authorizes(&self, headers: &HeaderMap) -> bool {
        if let (Some(expected), Some(given)) = (&self.bearer, bearer_token(headers))
            && expected.matches(given)
        {
            return true;
        }
        if let (Some((user, password)), Some((given_user, given_password))) =
            (&self.basic, basic_credentials(headers))
        {
            // Both compared, always, so a right user name is not told apart by timing.
            let user_ok = constant_time_eq(user.as_bytes(), given_user.as_bytes());
            let password_ok = password.matches(&given_password);
            return user_ok & password_ok;
        }
        false
    }

    /// Parses `ALERTMANAGER_BASIC_AUTH` (`user:password`; the password may contain `:`).
    pub fn parse_basic(value: &str) -> Result<(String, Secret), BasicAuthError> {
        let (user, password) = value
            .split_once(':')
            .ok_or(BasicAuthError::NotUserPassword)?;
        if user.is_empty() {
            return Err(BasicAuthError::EmptyUser);
        }
        let password = Secret::new(password).ok_or(BasicAuthError::EmptyPassword)?;
        Ok((user.to_owned(), password))
    }
}

/// Why `ALERTMANAGER_BASIC_AUTH` cannot be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BasicAuthError {
    #[error("ALERTMANAGER_BASIC_AUTH must be `user:password`")]
    NotUserPassword,
    #[error("ALERTMANAGER_BASIC_AUTH has an empty user name")]
    EmptyUser,
    #[error("ALERTMANAGER_BASIC_AUTH has an empty password")]
    EmptyPassword,
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn secret(s: &str) -> Secret {
        Secret::new(s).unwrap()
    }

    #[test]
    fn project_globs_choose_the_secret_and_fall_back_to_the_default() {
        let secrets = GitlabSecrets {
            projects: vec![
                ProjectSecret::new("cki-project/kernel-ark", secret("ark")).unwrap(),
                ProjectSecret::new("cki-project/**", secret("cki")).unwrap(),
                ProjectSecret::new("team/*", secret("team")).unwrap(),
            ],
            default: Some(secret("default")),
        };
        assert!(secrets.authorizes("cki-project/kernel-ark", "ark"));
        assert!(!secrets.authorizes("cki-project/kernel-ark", "cki"));
        assert!(secrets.authorizes("cki-project/sub/tools", "cki"));
        assert!(secrets.authorizes("team/app", "team"));
        // `*` does not cross a `/`: a subgroup project falls through to the default.
        assert!(secrets.authorizes("team/sub/app", "default"));
        assert!(!secrets.authorizes("team/sub/app", "team"));
        assert!(secrets.is_known("team"));
        assert!(!secrets.is_known("nope"));
    }

    #[test]
    fn no_default_means_unmatched_projects_are_refused() {
        let secrets = GitlabSecrets {
            projects: vec![ProjectSecret::new("a/*", secret("x")).unwrap()],
            default: None,
        };
        assert!(!secrets.authorizes("b/c", "x"));
    }

    #[test]
    fn secrets_never_print() {
        let s = secret("hunter2");
        assert_eq!(format!("{s:?}"), "Secret(***)");
        let auth = AlertmanagerAuth {
            bearer: Some(secret("hunter2")),
            basic: Some(("am".into(), secret("hunter3"))),
        };
        assert!(!format!("{auth:?}").contains("hunter"));
        assert!(Secret::new("").is_none());
    }

    #[test]
    fn alertmanager_accepts_bearer_or_basic() {
        let auth = AlertmanagerAuth {
            bearer: Some(secret("tok")),
            basic: Some(AlertmanagerAuth::parse_basic("am:pa:ss").unwrap()),
        };
        let with = |value: &str| {
            let mut h = HeaderMap::new();
            h.insert(
                http::header::AUTHORIZATION,
                HeaderValue::from_str(value).unwrap(),
            );
            h
        };
        assert!(auth.authorizes(&with("Bearer tok")));
        assert!(!auth.authorizes(&with("Bearer tok2")));
        // "am:pa:ss" in base64.
        assert!(auth.authorizes(&with("Basic YW06cGE6c3M=")));
        // "am:wrong"
        assert!(!auth.authorizes(&with("Basic YW06d3Jvbmc=")));
        assert!(!auth.authorizes(&HeaderMap::new()));
        assert_eq!(
            AlertmanagerAuth::parse_basic("nopassword")
                .unwrap_err()
                .to_string(),
            "ALERTMANAGER_BASIC_AUTH must be `user:password`"
        );
    }
}

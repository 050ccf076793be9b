//! The optional YAML file (`RECEIVER_CONFIG`): per-project GitLab secrets and generic hook
//! sources, and where their secrets come from.

use std::path::PathBuf;

use http::HeaderName;
use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};

use crate::auth::Secret;
use crate::hooks::HookSource;

/// Why a hook source in the file cannot be built.
#[derive(Debug, thiserror::Error)]
pub enum HookFileError {
    #[error("{field} `{value}` is not a valid header name")]
    BadHeader { field: &'static str, value: String },
    #[error("secret: {0}")]
    Secret(#[source] SecretError),
}

/// Why a secret named in the file cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("environment variable {name} is not set")]
    EnvUnset { name: String },
    #[error("cannot read `{path}`: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("is empty")]
    EmptyLiteral,
    #[error("environment variable {name} is empty")]
    EmptyEnv { name: String },
    #[error("`{path}` is empty")]
    EmptyFile { path: PathBuf },
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileConfig {
    #[serde(default)]
    pub(super) gitlab: GitlabFile,
    #[serde(default)]
    pub(super) hooks: Vec<HookFile>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct GitlabFile {
    #[serde(default)]
    pub(super) projects: Vec<ProjectFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ProjectFile {
    #[serde(rename = "match")]
    pub(super) pattern: String,
    pub(super) secret: SecretRef,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct HookFile {
    name: String,
    secret: SecretRef,
    signature_header: Option<String>,
    event_header: Option<String>,
    event_field: Option<String>,
    default_event: Option<String>,
    id_header: Option<String>,
    message_type: Option<String>,
    type_prefix: Option<String>,
    source: Option<String>,
}

impl HookFile {
    pub(super) fn to_source(&self) -> Result<HookSource, HookFileError> {
        let header = |field: &'static str, value: &str| {
            HeaderName::try_from(value).map_err(|_| HookFileError::BadHeader {
                field,
                value: value.to_owned(),
            })
        };
        let secret = self.secret.resolve().map_err(HookFileError::Secret)?;
        let mut source = HookSource::new(&self.name, secret);
        if let Some(h) = &self.signature_header {
            source.signature_header = header("signature_header", h)?;
        }
        if let Some(h) = &self.event_header {
            source.event_header = Some(header("event_header", h)?);
        }
        if let Some(h) = &self.id_header {
            source.id_header = Some(header("id_header", h)?);
        }
        source.event_field = self.event_field.clone();
        source.default_event = self.default_event.clone();
        if let Some(v) = &self.message_type {
            source.message_type = v.clone();
        }
        if let Some(v) = &self.type_prefix {
            source.type_prefix = v.clone();
        }
        if let Some(v) = &self.source {
            source.source_uri = v.clone();
        }
        Ok(source)
    }
}

/// Where a secret in the file comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum SecretRef {
    Literal(String),
    Env(String),
    File(PathBuf),
}

impl SecretRef {
    pub(super) fn resolve(&self) -> Result<Secret, SecretError> {
        let value = match self {
            Self::Literal(value) => value.clone(),
            Self::Env(name) => {
                std::env::var(name).map_err(|_| SecretError::EnvUnset { name: name.clone() })?
            }
            Self::File(path) => std::fs::read_to_string(path)
                .map_err(|source| SecretError::Read {
                    path: path.clone(),
                    source,
                })?
                .trim_end_matches(['\n', '\r'])
                .to_owned(),
        };
        Secret::new(value).ok_or_else(|| match self {
            Self::Literal(_) => SecretError::EmptyLiteral,
            Self::Env(name) => SecretError::EmptyEnv { name: name.clone() },
            Self::File(path) => SecretError::EmptyFile { path: path.clone() },
        })
    }
}

impl<'de> Deserialize<'de> for SecretRef {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct SecretVisitor;

        impl<'de> Visitor<'de> for SecretVisitor {
            type Value = SecretRef;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a secret: `{env: NAME}`, `{file: PATH}` or a string")
            }

            fn visit_str<E: de::Error>(self, value: &str) -> Result<SecretRef, E> {
                Ok(SecretRef::Literal(value.to_owned()))
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<SecretRef, A::Error> {
                let Some(key) = map.next_key::<String>()? else {
                    return Err(de::Error::custom("a secret needs `env` or `file`"));
                };
                let value: String = map.next_value()?;
                let secret = match key.as_str() {
                    "env" => SecretRef::Env(value),
                    "file" => SecretRef::File(value.into()),
                    other => return Err(de::Error::unknown_field(other, &["env", "file"])),
                };
                if map.next_key::<String>()?.is_some() {
                    return Err(de::Error::custom(
                        "a secret has exactly one of `env` or `file`",
                    ));
                }
                Ok(secret)
            }
        }

        deserializer.deserialize_any(SecretVisitor)
    }
}

//! The recipe registry: Euphrosyne's ConfigMap format, plus our optional fields.
//!
//! Euphrosyne keeps two YAML-in-a-string keys, `debugging` and `actions`, each mapping a recipe
//! name to `{enabled, image, entrypoint, description}`. We read exactly that — as the `data` of
//! a ConfigMap, as a whole ConfigMap manifest, or as a plain YAML file whose `debugging` and
//! `actions` are strings or mappings — and add `match` (alert label matchers), `timeout`, `env`,
//! `args` and `service_account`. Unknown fields are errors (a misspelt `timeout` must not
//! silently mean "no timeout"), and every error names the section and recipe.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_norway::Value as Yaml;

use super::matcher::{Matcher, MatcherError, all_match};

/// Which map of the registry a recipe comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RecipeKind {
    Debugging,
    Action,
}

impl RecipeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Debugging => "debugging",
            Self::Action => "action",
        }
    }

    /// The registry section the kind is listed under.
    pub fn section(self) -> &'static str {
        match self {
            Self::Debugging => "debugging",
            Self::Action => "actions",
        }
    }
}

/// One validated recipe. It is also stored with each run (a snapshot), so a run resumed after a
/// restart executes what was planned even if the registry changed since.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Recipe {
    pub name: String,
    pub kind: RecipeKind,
    pub enabled: bool,
    pub image: Option<String>,
    /// The program to run and its leading arguments, split on whitespace; never given to a
    /// shell (Euphrosyne spliced it into `/bin/sh -c`).
    pub entrypoint: String,
    pub description: String,
    pub matchers: Vec<Matcher>,
    pub timeout_ms: Option<u64>,
    pub env: BTreeMap<String, String>,
    pub args: Vec<String>,
    pub service_account: Option<String>,
    /// Relative entrypoints of the local executor resolve against this directory (the recipe
    /// file's).
    pub base_dir: Option<PathBuf>,
}

impl Recipe {
    /// The entrypoint split into program and arguments.
    pub fn command(&self) -> Vec<String> {
        self.entrypoint
            .split_whitespace()
            .map(str::to_owned)
            .collect()
    }

    /// The recipe's own timeout, or the service default.
    pub fn timeout_or(&self, default: Duration) -> Duration {
        self.timeout_ms.map_or(default, Duration::from_millis)
    }

    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        all_match(&self.matchers, labels)
    }
}

/// Why a registry cannot be used: the document, a section, a recipe, or reading the source.
#[derive(Debug, thiserror::Error)]
pub enum RecipeError {
    /// Not YAML, or not the shape of a registry (the message has the line).
    #[error("{0}")]
    Yaml(#[source] serde_norway::Error),
    #[error("the registry is empty: expected `debugging:` and/or `actions:`")]
    Empty,
    #[error("the registry must be a mapping with `debugging:` and/or `actions:`")]
    NotAMapping,
    #[error("a manifest with `kind` must be a ConfigMap")]
    NotAConfigMap,
    #[error("the ConfigMap has no `data`")]
    NoConfigMapData,
    #[error("ConfigMap data `{key}` must be a string of YAML")]
    DataNotAString { key: String },
    #[error("{key}: in the embedded YAML: {source}")]
    EmbeddedYaml {
        key: String,
        source: serde_norway::Error,
    },
    #[error("ConfigMap data key `{key}` is neither `debugging` nor `actions`")]
    UnknownDataKey { key: String },
    /// One recipe is invalid.
    #[error("{section}.{name}: {problem}")]
    Invalid {
        section: &'static str,
        name: String,
        #[source]
        problem: InvalidRecipe,
    },
    #[error("{section}.{name}: `image` is required with the kubernetes executor")]
    ImageRequired { section: &'static str, name: String },
    #[error("cannot read recipes file `{}`: {source}", path.display())]
    ReadFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("a ConfigMap registry needs a Kubernetes client")]
    NoKubeClient,
    #[error("cannot read ConfigMap {namespace}/{name}: {source}")]
    ReadConfigMap {
        namespace: String,
        name: String,
        source: Box<kube::Error>,
    },
    #[error("ConfigMap {namespace}/{name}: {source}")]
    EncodeConfigMap {
        namespace: String,
        name: String,
        source: serde_json::Error,
    },
    /// A problem of the registry read from `registry` (`file PATH`, `configmap NS/NAME`).
    #[error("{registry}: {error}")]
    InRegistry {
        registry: String,
        #[source]
        error: Box<RecipeError>,
    },
}

/// What is wrong with one recipe (its section and name are added by [`RecipeError::Invalid`]).
#[derive(Debug, thiserror::Error)]
pub enum InvalidRecipe {
    #[error(
        "recipe names must be lower-case letters, digits and '-' (at most {max}), because they name Kubernetes Jobs"
    )]
    Name { max: usize },
    #[error("`entrypoint` must not be empty")]
    EmptyEntrypoint,
    #[error("`image` must not be empty")]
    EmptyImage,
    #[error("`timeout` must be greater than zero")]
    ZeroTimeout,
    #[error("env `{key}` is not a valid variable name")]
    EnvName { key: String },
    #[error("env `{key}`: STEADFAST_* variables are set by the reconciler")]
    ReservedEnv { key: String },
    #[error("`service_account` `{account}` is not a valid Kubernetes name")]
    ServiceAccount { account: String },
    #[error("match: list entries must be matcher strings such as `severity=~\"critical|warning\"`")]
    MatchEntryNotAString,
    #[error("match: label names must be strings")]
    MatchLabelNotAString,
    #[error("match: the value of `{label}` must be a string")]
    MatchValueNotAString { label: String },
    #[error("match: must be a list of matchers or a map of label: value")]
    MatchShape,
    #[error("match: {0}")]
    Matcher(#[from] MatcherError),
}

/// Both maps of a registry.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RecipeSet {
    pub debugging: BTreeMap<String, Recipe>,
    pub actions: BTreeMap<String, Recipe>,
}

impl RecipeSet {
    /// Parses a registry document (see the module docs for the accepted shapes).
    pub fn parse(text: &str, base_dir: Option<PathBuf>) -> Result<Self, RecipeError> {
        let document: Yaml = serde_norway::from_str(text).map_err(RecipeError::Yaml)?;
        let raw = match &document {
            Yaml::Null => {
                return Err(RecipeError::Empty);
            }
            Yaml::Mapping(map) if map.contains_key("kind") => configmap_sections(map)?,
            Yaml::Mapping(_) => {
                serde_norway::from_str::<Sections>(text).map_err(RecipeError::Yaml)?
            }
            _ => {
                return Err(RecipeError::NotAMapping);
            }
        };
        Ok(Self {
            debugging: validate_section(RecipeKind::Debugging, raw.debugging, &base_dir)?,
            actions: validate_section(RecipeKind::Action, raw.actions, &base_dir)?,
        })
    }

    /// Enabled debugging recipes whose `match` holds for the alert's labels.
    pub fn debugging_for(&self, labels: &BTreeMap<String, String>) -> Vec<&Recipe> {
        self.debugging
            .values()
            .filter(|r| r.enabled && r.matches(labels))
            .collect()
    }

    /// The enabled action recipe called `name`.
    pub fn action(&self, name: &str) -> Option<&Recipe> {
        self.actions.get(name).filter(|r| r.enabled)
    }

    /// Checks what the Kubernetes executor needs: an image for every enabled recipe.
    pub fn check_for_kubernetes(&self) -> Result<(), RecipeError> {
        for recipe in self.debugging.values().chain(self.actions.values()) {
            if recipe.enabled && recipe.image.is_none() {
                return Err(RecipeError::ImageRequired {
                    section: recipe.kind.section(),
                    name: recipe.name.clone(),
                });
            }
        }
        Ok(())
    }

    /// `(enabled debugging, enabled actions)`.
    pub fn counts(&self) -> (usize, usize) {
        (
            self.debugging.values().filter(|r| r.enabled).count(),
            self.actions.values().filter(|r| r.enabled).count(),
        )
    }
}

/// Whether `name` is a DNS-1123 label of at most `max` characters.
pub fn is_dns_label(name: &str, max: usize) -> bool {
    !name.is_empty()
        && name.len() <= max
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-')
}

/// Recipe names become Job names with a 12-character run suffix: `<name>-<12 hex>` ≤ 63.
const MAX_RECIPE_NAME: usize = 50;

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Sections {
    #[serde(default, deserialize_with = "section")]
    debugging: BTreeMap<String, RawRecipe>,
    #[serde(default, deserialize_with = "section")]
    actions: BTreeMap<String, RawRecipe>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRecipe {
    #[serde(default = "enabled_by_default")]
    enabled: bool,
    #[serde(default)]
    image: Option<String>,
    entrypoint: String,
    #[serde(default)]
    description: String,
    #[serde(default, rename = "match")]
    matchers: Option<Yaml>,
    #[serde(
        default,
        deserialize_with = "steadfast_service_kit::config::deserialize_optional_duration"
    )]
    timeout: Option<Duration>,
    #[serde(default)]
    env: BTreeMap<String, String>,
    #[serde(default)]
    args: Vec<String>,
    #[serde(default, alias = "serviceAccount", alias = "serviceAccountName")]
    service_account: Option<String>,
}

/// A listed recipe runs unless it says `enabled: false` (every Euphrosyne registry sets the
/// field explicitly, so this only decides for new files).
fn enabled_by_default() -> bool {
    true
}

/// A section is Euphrosyne's YAML-in-a-string or a plain mapping.
fn section<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<BTreeMap<String, RawRecipe>, D::Error> {
    struct SectionVisitor;
    impl<'de> Visitor<'de> for SectionVisitor {
        type Value = BTreeMap<String, RawRecipe>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a mapping of recipe names, or a string holding one as YAML")
        }

        fn visit_str<E: de::Error>(self, text: &str) -> Result<Self::Value, E> {
            parse_embedded(text).map_err(|e| E::custom(format_args!("in the embedded YAML: {e}")))
        }

        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(BTreeMap::new())
        }

        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
            Deserialize::deserialize(de::value::MapAccessDeserializer::new(map))
        }
    }
    deserializer.deserialize_any(SectionVisitor)
}

fn parse_embedded(text: &str) -> Result<BTreeMap<String, RawRecipe>, serde_norway::Error> {
    if text.trim().is_empty() {
        return Ok(BTreeMap::new());
    }
    serde_norway::from_str::<Option<BTreeMap<String, RawRecipe>>>(text)
        .map(Option::unwrap_or_default)
}

fn configmap_sections(map: &serde_norway::Mapping) -> Result<Sections, RecipeError> {
    if map.get("kind").and_then(Yaml::as_str) != Some("ConfigMap") {
        return Err(RecipeError::NotAConfigMap);
    }
    let Some(data) = map.get("data").and_then(Yaml::as_mapping) else {
        return Err(RecipeError::NoConfigMapData);
    };
    let mut sections = Sections::default();
    for (key, value) in data {
        let key = key.as_str().unwrap_or_default();
        let text = value.as_str().ok_or_else(|| RecipeError::DataNotAString {
            key: key.to_owned(),
        })?;
        let parsed = parse_embedded(text).map_err(|source| RecipeError::EmbeddedYaml {
            key: key.to_owned(),
            source,
        })?;
        match key {
            "debugging" => sections.debugging = parsed,
            "actions" => sections.actions = parsed,
            other => {
                return Err(RecipeError::UnknownDataKey {
                    key: other.to_owned(),
                });
            }
        }
    }
    Ok(sections)
}

fn validate_section(
    kind: RecipeKind,
    raw: BTreeMap<String, RawRecipe>,
    base_dir: &Option<PathBuf>,
) -> Result<BTreeMap<String, Recipe>, RecipeError> {
    raw.into_iter()
        .map(|(name, raw)| match validate(kind, &name, raw, base_dir) {
            Ok(recipe) => Ok((name, recipe)),
            Err(problem) => Err(RecipeError::Invalid {
                section: kind.section(),
                name,
                problem,
            }),
        })
        .collect()
}

fn validate(
    kind: RecipeKind,
    name: &str,
    raw: RawRecipe,
    base_dir: &Option<PathBuf>,
) -> Result<Recipe, InvalidRecipe> {
    if !is_dns_label(name, MAX_RECIPE_NAME) {
        return Err(InvalidRecipe::Name {
            max: MAX_RECIPE_NAME,
        });
    }
    if raw.entrypoint.trim().is_empty() {
        return Err(InvalidRecipe::EmptyEntrypoint);
    }
    if raw.image.as_deref().is_some_and(|i| i.trim().is_empty()) {
        return Err(InvalidRecipe::EmptyImage);
    }
    if raw.timeout.is_some_and(|t| t.is_zero()) {
        return Err(InvalidRecipe::ZeroTimeout);
    }
    for key in raw.env.keys() {
        let valid = key
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            return Err(InvalidRecipe::EnvName { key: key.clone() });
        }
        if key.starts_with("STEADFAST_") {
            return Err(InvalidRecipe::ReservedEnv { key: key.clone() });
        }
    }
    if let Some(account) = &raw.service_account
        && !is_dns_label(account, 253)
    {
        return Err(InvalidRecipe::ServiceAccount {
            account: account.clone(),
        });
    }
    let matchers = match &raw.matchers {
        None | Some(Yaml::Null) => Vec::new(),
        Some(spec) => match_spec(spec)?,
    };
    Ok(Recipe {
        name: name.to_owned(),
        kind,
        enabled: raw.enabled,
        image: raw.image.map(|i| i.trim().to_owned()),
        entrypoint: raw.entrypoint.trim().to_owned(),
        description: raw.description,
        matchers,
        timeout_ms: raw
            .timeout
            .map(|t| u64::try_from(t.as_millis()).unwrap_or(u64::MAX)),
        env: raw.env,
        args: raw.args,
        service_account: raw.service_account,
        base_dir: base_dir.clone(),
    })
}

/// `match` as a list of matcher strings or a map of exact label values.
fn match_spec(spec: &Yaml) -> Result<Vec<Matcher>, InvalidRecipe> {
    match spec {
        Yaml::Sequence(items) => items
            .iter()
            .map(|item| match item {
                Yaml::String(text) => Ok(Matcher::parse(text)?),
                _ => Err(InvalidRecipe::MatchEntryNotAString),
            })
            .collect(),
        Yaml::Mapping(map) => map
            .iter()
            .map(|(label, value)| {
                let label = label.as_str().ok_or(InvalidRecipe::MatchLabelNotAString)?;
                let value = match value {
                    Yaml::String(s) => s.clone(),
                    Yaml::Number(n) => n.to_string(),
                    Yaml::Bool(b) => b.to_string(),
                    _ => {
                        return Err(InvalidRecipe::MatchValueNotAString {
                            label: label.to_owned(),
                        });
                    }
                };
                Ok(Matcher::new(label, super::matcher::MatchOp::Equal, &value)?)
            })
            .collect(),
        _ => Err(InvalidRecipe::MatchShape),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EUPHROSYNE: &str = r#"
apiVersion: v1
kind: ConfigMap
metadata:
  name: orpheus-operator-recipes
data:
  debugging: |
    http-errors:
      enabled: true
      image: "phoevos/euphrosyne-recipes:latest"
      entrypoint: "http-errors"
      description: "Recipe for debugging alerts related to HTTP errors."
  actions: |
    jira:
      enabled: true
      image: "phoevos/euphrosyne-recipes:latest"
      entrypoint: "jira"
      description: "Recipe for creating a JIRA issue."
"#;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn reads_euphrosynes_configmap_unchanged() {
        let set = RecipeSet::parse(EUPHROSYNE, None).unwrap();
        let http = &set.debugging["http-errors"];
        assert!(http.enabled);
        assert_eq!(
            http.image.as_deref(),
            Some("phoevos/euphrosyne-recipes:latest")
        );
        assert_eq!(http.command(), vec!["http-errors"]);
        assert_eq!(set.action("jira").unwrap().kind, RecipeKind::Action);
        assert!(set.check_for_kubernetes().is_ok());
        // No `match`: every alert runs it, as in Euphrosyne.
        assert_eq!(set.debugging_for(&labels(&[])).len(), 1);
    }

    #[test]
    fn plain_file_with_our_fields() {
        let text = r#"
debugging:
  disk:
    entrypoint: ./disk.sh --verbose
    match: ['alertname=~"Disk.*"', 'severity!="info"']
    timeout: 2m
    env: {THRESHOLD: "90"}
    args: ["--mount", "/data"]
  pods:
    entrypoint: pods.sh
    match: {alertname: PodCrashLooping}
  off:
    enabled: false
    entrypoint: off.sh
actions:
  restart:
    entrypoint: restart.sh
    service_account: restarter
"#;
        let set = RecipeSet::parse(text, Some("/etc/recipes".into())).unwrap();
        let disk = &set.debugging["disk"];
        assert_eq!(disk.command(), vec!["./disk.sh", "--verbose"]);
        assert_eq!(
            disk.timeout_or(Duration::from_secs(300)),
            Duration::from_secs(120)
        );
        assert_eq!(
            disk.base_dir.as_deref(),
            Some(std::path::Path::new("/etc/recipes"))
        );
        let chosen: Vec<&str> = set
            .debugging_for(&labels(&[
                ("alertname", "DiskFull"),
                ("severity", "critical"),
            ]))
            .iter()
            .map(|r| r.name.as_str())
            .collect();
        assert_eq!(chosen, vec!["disk"]);
        assert_eq!(
            set.debugging_for(&labels(&[("alertname", "PodCrashLooping")]))
                .iter()
                .map(|r| r.name.as_str())
                .collect::<Vec<_>>(),
            vec!["pods"]
        );
        assert!(set.action("restart").is_some());
        assert_eq!(set.counts(), (2, 1));
        assert_eq!(
            set.check_for_kubernetes().unwrap_err().to_string(),
            "debugging.disk: `image` is required with the kubernetes executor"
        );
        // The snapshot stored with a run round-trips.
        let json = serde_json::to_value(disk).unwrap();
        assert_eq!(&serde_json::from_value::<Recipe>(json).unwrap(), disk);
    }

    #[test]
    fn errors_name_section_recipe_and_line() {
        let cases: &[(&str, &str)] = &[
            (
                "",
                "the registry is empty: expected `debugging:` and/or `actions:`",
            ),
            (
                "- a\n- b\n",
                "the registry must be a mapping with `debugging:` and/or `actions:`",
            ),
            (
                "debugging:\n  x:\n    entrypoint: a\n    timeot: 5s\n",
                "unknown field `timeot`",
            ),
            ("debuging: {}\n", "unknown field `debuging`"),
            (
                "debugging:\n  x:\n    image: i\n",
                "missing field `entrypoint`",
            ),
            (
                "debugging:\n  Bad_Name:\n    entrypoint: a\n",
                "debugging.Bad_Name: recipe names must be lower-case letters, digits and '-' (at most 50), because they name Kubernetes Jobs",
            ),
            (
                "actions:\n  x:\n    entrypoint: a\n    match: ['severity']\n",
                "actions.x: match: matcher `severity` has no operator (=, !=, =~ or !~)",
            ),
            (
                "debugging:\n  x:\n    entrypoint: a\n    timeout: soon\n",
                "`soon` is not a duration",
            ),
            (
                "debugging:\n  x:\n    entrypoint: a\n    env: {STEADFAST_RUN: x}\n",
                "debugging.x: env `STEADFAST_RUN`: STEADFAST_* variables are set by the reconciler",
            ),
            (
                "debugging: |\n  x:\n    entrypoint: a\n    bogus: 1\n",
                "debugging: in the embedded YAML: x: unknown field `bogus`",
            ),
            (
                "kind: ConfigMap\ndata:\n  debuging: |\n    x: {entrypoint: a}\n",
                "ConfigMap data key `debuging` is neither `debugging` nor `actions`",
            ),
        ];
        for (text, expected) in cases {
            let err = RecipeSet::parse(text, None).unwrap_err().to_string();
            assert!(
                err.contains(expected),
                "{text:?}: got `{err}`, want `{expected}`"
            );
        }
        // Line numbers for the editor.
        let err = RecipeSet::parse(
            "debugging:\n  x:\n    entrypoint: a\n    timeot: 5s\n",
            None,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("line 4"), "{err}");
    }
}

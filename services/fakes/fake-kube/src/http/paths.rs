//! The URL layout: which discovery document or which objects a path names.

use crate::Shared;
use crate::kinds::KindSpec;
use crate::store::ApiError;

/// What a path names.
pub(super) enum Target {
    Version,
    CoreVersions,
    Groups,
    Group(String),
    Resources(String, String),
    Object {
        spec: KindSpec,
        namespace: Option<String>,
        name: Option<String>,
        subresource: Option<String>,
    },
}

pub(super) fn resolve(shared: &Shared, path: &str) -> Result<Target, ApiError> {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let unknown = || {
        ApiError::new(
            404,
            format!("the server could not find the requested resource ({path})"),
        )
    };
    let (group, version, rest) = match segments.as_slice() {
        ["version"] => return Ok(Target::Version),
        ["api"] => return Ok(Target::CoreVersions),
        ["apis"] => return Ok(Target::Groups),
        ["apis", group] => return Ok(Target::Group((*group).to_owned())),
        ["api", version, rest @ ..] => ("", *version, rest),
        ["apis", group, version, rest @ ..] => (*group, *version, rest),
        _ => return Err(unknown()),
    };
    if rest.is_empty() {
        return Ok(Target::Resources(group.to_owned(), version.to_owned()));
    }
    let store = shared.store();
    let lookup = |plural: &str| store.kind(group, version, plural).cloned();
    let target = match rest {
        ["namespaces", namespace, plural, tail @ ..]
            if lookup(plural).is_some_and(|k| k.namespaced) =>
        {
            let spec = lookup(plural).expect("checked");
            match tail {
                [] => (spec, Some(*namespace), None, None),
                [name] => (spec, Some(*namespace), Some(*name), None),
                [name, sub] => (spec, Some(*namespace), Some(*name), Some(*sub)),
                _ => return Err(unknown()),
            }
        }
        [plural, tail @ ..] => {
            let spec = lookup(plural).ok_or_else(unknown)?;
            match tail {
                [] => (spec, None, None, None),
                [name] => (spec, None, Some(*name), None),
                [name, sub] => (spec, None, Some(*name), Some(*sub)),
                _ => return Err(unknown()),
            }
        }
        [] => return Err(unknown()),
    };
    let (spec, namespace, name, subresource) = target;
    if let Some(sub) = subresource {
        let allowed = (sub == "status" && spec.status_subresource)
            || (sub == "log" && spec.kind == "Pod" && spec.group.is_empty());
        if !allowed {
            return Err(unknown());
        }
    }
    if name.is_some() && spec.namespaced && namespace.is_none() {
        return Err(unknown());
    }
    Ok(Target::Object {
        spec,
        namespace: namespace.map(str::to_owned),
        name: name.map(str::to_owned),
        subresource: subresource.map(str::to_owned),
    })
}

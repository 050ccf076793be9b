//! The patch formats kube sends: JSON merge patch (RFC 7386), strategic merge patch, JSON patch
//! (RFC 6902); server-side apply reuses the strategic merge.
//!
//! The strategic merge is the part of Kubernetes' algorithm that matters for manifests: lists of
//! objects that carry a `name` (containers, env, volumes, ports) merge element by element, a
//! `$patch: delete` element removes its match and `$patch: replace` on a map replaces it; every
//! other list is replaced. The API server's per-field merge keys (e.g. `containerPort`) are not
//! modelled.

use serde_json::{Map, Value};

/// Why a JSON patch was refused (422); nothing of it is applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JsonPatchError {
    #[error("a JSON patch must be an array of operations")]
    NotAnArray,
    #[error("operation {index}: {error}")]
    Operation {
        index: usize,
        #[source]
        error: OperationError,
    },
}

/// What was wrong with one operation of a JSON patch.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OperationError {
    /// `op`, `path`, `value` or `from`.
    #[error("missing `{member}`")]
    Missing { member: &'static str },
    #[error("unknown op `{op}`")]
    UnknownOp { op: String },
    #[error("`from` {from} does not exist")]
    NoSuchFrom { from: String },
    #[error("test failed at {path}")]
    TestFailed { path: String },
    #[error("the whole document cannot be replaced by a patch")]
    WholeDocument,
    #[error("`{path}` is not a JSON pointer")]
    NotAPointer { path: String },
    #[error("`{segment}` is not an array index")]
    NotAnIndex { segment: String },
    #[error("index {index} is out of bounds at {path}")]
    OutOfBounds { index: usize, path: String },
    #[error("the parent of {path} does not exist")]
    NoParent { path: String },
    #[error("{path} does not exist")]
    NoSuchPath { path: String },
}

/// RFC 7386: objects merge recursively, `null` removes, anything else replaces.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(patch) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let object = target.as_object_mut().expect("object");
    for (key, value) in patch {
        if value.is_null() {
            object.remove(key);
        } else {
            merge_patch(object.entry(key.clone()).or_insert(Value::Null), value);
        }
    }
}

/// Strategic merge, see the module docs.
pub fn strategic_merge(target: &mut Value, patch: &Value) {
    match patch {
        Value::Object(p) => {
            if p.get("$patch").and_then(Value::as_str) == Some("replace") {
                let mut replacement = p.clone();
                replacement.remove("$patch");
                *target = Value::Object(replacement);
                return;
            }
            if !target.is_object() {
                *target = Value::Object(Map::new());
            }
            let object = target.as_object_mut().expect("object");
            for (key, value) in p {
                if key.starts_with('$') {
                    continue;
                }
                if value.is_null() {
                    object.remove(key);
                } else {
                    strategic_merge(object.entry(key.clone()).or_insert(Value::Null), value);
                }
            }
        }
        Value::Array(items) if is_named_list(items) && target.is_array() => {
            let existing = target.as_array_mut().expect("array");
            for item in items {
                let name = item.get("name").cloned();
                let position = existing.iter().position(|e| e.get("name") == name.as_ref());
                let delete = item.get("$patch").and_then(Value::as_str) == Some("delete");
                match (position, delete) {
                    (Some(i), true) => {
                        existing.remove(i);
                    }
                    (None, true) => {}
                    (Some(i), false) => strategic_merge(&mut existing[i], item),
                    (None, false) => {
                        let mut fresh = Value::Null;
                        strategic_merge(&mut fresh, item);
                        existing.push(fresh);
                    }
                }
            }
        }
        other => *target = other.clone(),
    }
}

fn is_named_list(items: &[Value]) -> bool {
    !items.is_empty()
        && items
            .iter()
            .all(|i| i.get("name").is_some_and(Value::is_string))
}

/// RFC 6902 on a copy of `target`; the first failing operation aborts the whole patch.
pub fn json_patch(target: &Value, operations: &Value) -> Result<Value, JsonPatchError> {
    let operations = operations.as_array().ok_or(JsonPatchError::NotAnArray)?;
    let mut document = target.clone();
    for (index, op) in operations.iter().enumerate() {
        apply(&mut document, op).map_err(|error| JsonPatchError::Operation { index, error })?;
    }
    Ok(document)
}

/// One operation of a JSON patch.
fn apply(document: &mut Value, op: &Value) -> Result<(), OperationError> {
    let member = |member: &'static str| op.get(member).ok_or(OperationError::Missing { member });
    let text = |name: &'static str| {
        member(name)?
            .as_str()
            .ok_or(OperationError::Missing { member: name })
    };
    let kind = text("op")?;
    let path = text("path")?;
    let value = || member("value").cloned();
    let from = || text("from");
    match kind {
        "add" => add(document, path, value()?)?,
        "remove" => {
            remove(document, path)?;
        }
        "replace" => {
            remove(document, path)?;
            add(document, path, value()?)?;
        }
        "move" => {
            let moved = remove(document, from()?)?;
            add(document, path, moved)?;
        }
        "copy" => {
            let from = from()?;
            let copied = document
                .pointer(from)
                .cloned()
                .ok_or_else(|| OperationError::NoSuchFrom { from: from.into() })?;
            add(document, path, copied)?;
        }
        "test" => {
            if document.pointer(path) != Some(&value()?) {
                return Err(OperationError::TestFailed { path: path.into() });
            }
        }
        other => return Err(OperationError::UnknownOp { op: other.into() }),
    }
    Ok(())
}

fn split_pointer(path: &str) -> Result<(String, String), OperationError> {
    if path.is_empty() {
        return Err(OperationError::WholeDocument);
    }
    let cut = path
        .rfind('/')
        .ok_or_else(|| OperationError::NotAPointer { path: path.into() })?;
    let last = path[cut + 1..].replace("~1", "/").replace("~0", "~");
    Ok((path[..cut].to_owned(), last))
}

fn add(document: &mut Value, path: &str, value: Value) -> Result<(), OperationError> {
    let (parent, last) = split_pointer(path)?;
    match document.pointer_mut(&parent) {
        Some(Value::Object(map)) => {
            map.insert(last, value);
            Ok(())
        }
        Some(Value::Array(items)) => {
            if last == "-" {
                items.push(value);
                return Ok(());
            }
            let index = array_index(&last)?;
            if index > items.len() {
                return Err(OperationError::OutOfBounds {
                    index,
                    path: path.into(),
                });
            }
            items.insert(index, value);
            Ok(())
        }
        _ => Err(OperationError::NoParent { path: path.into() }),
    }
}

fn remove(document: &mut Value, path: &str) -> Result<Value, OperationError> {
    let missing = || OperationError::NoSuchPath { path: path.into() };
    let (parent, last) = split_pointer(path)?;
    match document.pointer_mut(&parent) {
        Some(Value::Object(map)) => map.remove(&last).ok_or_else(missing),
        Some(Value::Array(items)) => {
            let index = array_index(&last)?;
            if index >= items.len() {
                return Err(missing());
            }
            Ok(items.remove(index))
        }
        _ => Err(missing()),
    }
}

fn array_index(segment: &str) -> Result<usize, OperationError> {
    segment.parse().map_err(|_| OperationError::NotAnIndex {
        segment: segment.into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merge_patch_follows_rfc_7386() {
        let mut doc = json!({"a": "b", "c": {"d": "e", "f": "g"}, "l": [1, 2]});
        merge_patch(&mut doc, &json!({"a": "z", "c": {"f": null}, "l": [3]}));
        assert_eq!(doc, json!({"a": "z", "c": {"d": "e"}, "l": [3]}));
    }

    #[test]
    fn strategic_merge_merges_named_lists() {
        let mut doc = json!({"spec": {"containers": [
            {"name": "a", "image": "a:1"}, {"name": "b", "image": "b:1"}
        ], "args": ["x"]}});
        strategic_merge(
            &mut doc,
            &json!({"spec": {"containers": [
                {"name": "b", "image": "b:2"}, {"name": "c", "image": "c:1"},
                {"name": "a", "$patch": "delete"}
            ], "args": ["y"]}}),
        );
        assert_eq!(
            doc,
            json!({"spec": {"containers": [
                {"name": "b", "image": "b:2"}, {"name": "c", "image": "c:1"}
            ], "args": ["y"]}})
        );
    }

    #[test]
    fn json_patch_applies_all_or_nothing() {
        let doc = json!({"metadata": {"labels": {"a": "1"}}, "items": [1, 2]});
        let out = json_patch(
            &doc,
            &json!([
                {"op": "add", "path": "/metadata/labels/b~1c", "value": "2"},
                {"op": "replace", "path": "/items/0", "value": 9},
                {"op": "remove", "path": "/metadata/labels/a"},
                {"op": "test", "path": "/items/1", "value": 2}
            ]),
        )
        .unwrap();
        assert_eq!(
            out,
            json!({"metadata": {"labels": {"b/c": "2"}}, "items": [9, 2]})
        );
        let err = json_patch(&doc, &json!([{"op": "remove", "path": "/nope"}])).unwrap_err();
        assert_eq!(err.to_string(), "operation 0: /nope does not exist");
        for (operation, message) in [
            (json!({"path": "/a"}), "operation 0: missing `op`"),
            (
                json!({"op": "add", "path": "/a"}),
                "operation 0: missing `value`",
            ),
            (
                json!({"op": "copy", "path": "/a", "from": "/x"}),
                "operation 0: `from` /x does not exist",
            ),
            (
                json!({"op": "add", "path": "/items/x", "value": 1}),
                "operation 0: `x` is not an array index",
            ),
            (
                json!({"op": "add", "path": "/items/5", "value": 1}),
                "operation 0: index 5 is out of bounds at /items/5",
            ),
            (
                json!({"op": "frob", "path": "/a"}),
                "operation 0: unknown op `frob`",
            ),
        ] {
            let err = json_patch(&doc, &json!([operation])).unwrap_err();
            assert_eq!(err.to_string(), message);
        }
        assert_eq!(
            json_patch(&doc, &json!({})),
            Err(JsonPatchError::NotAnArray)
        );
    }
}

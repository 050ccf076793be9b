//! The patch formats kube sends: JSON merge patch (RFC 7386), strategic merge patch, JSON patch
//! (RFC 6902); server-side apply reuses the strategic merge.
//!
//! The strategic merge is the part of Kubernetes' algorithm that matters for manifests: lists of
//! objects that carry a `name` (containers, env, volumes, ports) merge element by element, a
//! `$patch: delete` element removes its match and `$patch: replace` on a map replaces it; every
//! other list is replaced. The API server's per-field merge keys (e.g. `containerPort`) are not
//! modelled.

use serde_json::{Map, Value};

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
pub fn json_patch(target: &Value, operations: &Value) -> Result<Value, String> {
    let operations = operations
        .as_array()
        .ok_or("a JSON patch must be an array of operations")?;
    let mut document = target.clone();
    for (index, op) in operations.iter().enumerate() {
        let fail = |why: String| format!("operation {index}: {why}");
        let kind = op
            .get("op")
            .and_then(Value::as_str)
            .ok_or_else(|| fail("missing `op`".into()))?;
        let path = op
            .get("path")
            .and_then(Value::as_str)
            .ok_or_else(|| fail("missing `path`".into()))?;
        let value = || {
            op.get("value")
                .cloned()
                .ok_or_else(|| fail("missing `value`".into()))
        };
        let from = || {
            op.get("from")
                .and_then(Value::as_str)
                .ok_or_else(|| fail("missing `from`".into()))
        };
        match kind {
            "add" => add(&mut document, path, value()?).map_err(fail)?,
            "remove" => {
                remove(&mut document, path).map_err(fail)?;
            }
            "replace" => {
                remove(&mut document, path).map_err(fail)?;
                add(&mut document, path, value()?).map_err(fail)?;
            }
            "move" => {
                let moved = remove(&mut document, from()?).map_err(fail)?;
                add(&mut document, path, moved).map_err(fail)?;
            }
            "copy" => {
                let copied = document.pointer(from()?).cloned().ok_or_else(|| {
                    fail(format!("`from` {} does not exist", from().unwrap_or("")))
                })?;
                add(&mut document, path, copied).map_err(fail)?;
            }
            "test" => {
                if document.pointer(path) != Some(&value()?) {
                    return Err(fail(format!("test failed at {path}")));
                }
            }
            other => return Err(fail(format!("unknown op `{other}`"))),
        }
    }
    Ok(document)
}

fn split_pointer(path: &str) -> Result<(String, String), String> {
    if path.is_empty() {
        return Err("the whole document cannot be replaced by a patch".into());
    }
    let cut = path
        .rfind('/')
        .ok_or_else(|| format!("`{path}` is not a JSON pointer"))?;
    let last = path[cut + 1..].replace("~1", "/").replace("~0", "~");
    Ok((path[..cut].to_owned(), last))
}

fn add(document: &mut Value, path: &str, value: Value) -> Result<(), String> {
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
            let index: usize = last
                .parse()
                .map_err(|_| format!("`{last}` is not an array index"))?;
            if index > items.len() {
                return Err(format!("index {index} is out of bounds at {path}"));
            }
            items.insert(index, value);
            Ok(())
        }
        _ => Err(format!("the parent of {path} does not exist")),
    }
}

fn remove(document: &mut Value, path: &str) -> Result<Value, String> {
    let (parent, last) = split_pointer(path)?;
    match document.pointer_mut(&parent) {
        Some(Value::Object(map)) => map
            .remove(&last)
            .ok_or_else(|| format!("{path} does not exist")),
        Some(Value::Array(items)) => {
            let index: usize = last
                .parse()
                .map_err(|_| format!("`{last}` is not an array index"))?;
            if index >= items.len() {
                return Err(format!("{path} does not exist"));
            }
            Ok(items.remove(index))
        }
        _ => Err(format!("{path} does not exist")),
    }
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
        assert_eq!(err, "operation 0: /nope does not exist");
    }
}

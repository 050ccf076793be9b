use super::*;
use crate::kinds::builtin;

fn store() -> (Store, KindSpec, KindSpec) {
    let store = Store::new(builtin());
    let cm = store.kind("", "v1", "configmaps").unwrap().clone();
    let ns = store.kind("", "v1", "namespaces").unwrap().clone();
    (store, cm, ns)
}

#[test]
fn create_stamps_metadata_and_refuses_duplicates() {
    let (mut s, cm, _) = store();
    let created = s
        .create(
            &cm,
            Some("default"),
            json!({"metadata": {"name": "a"}, "data": {"k": "v"}}),
            false,
        )
        .unwrap();
    assert_eq!(created["kind"], "ConfigMap");
    assert_eq!(created["metadata"]["namespace"], "default");
    assert_eq!(created["metadata"]["generation"], 1);
    assert!(created["metadata"]["uid"].is_string());
    let err = s
        .create(
            &cm,
            Some("default"),
            json!({"metadata": {"name": "a"}}),
            false,
        )
        .unwrap_err();
    assert_eq!((err.code, err.reason.as_str()), (409, "AlreadyExists"));
    let err = s
        .create(
            &cm,
            Some("nowhere"),
            json!({"metadata": {"name": "b"}}),
            false,
        )
        .unwrap_err();
    assert_eq!(err.message, "namespaces \"nowhere\" not found");
}

#[test]
fn invalid_names_and_labels_are_422() {
    let (mut s, cm, ns) = store();
    let err = s
        .create(&ns, None, json!({"metadata": {"name": "Not_Valid"}}), false)
        .unwrap_err();
    assert_eq!(err.code, 422);
    assert!(
        err.message
            .starts_with("Namespace \"Not_Valid\" is invalid"),
        "{}",
        err.message
    );
    let err = s
        .create(
            &cm,
            Some("default"),
            json!({"metadata": {"name": "x", "labels": {"a": "has space"}}}),
            false,
        )
        .unwrap_err();
    assert_eq!(err.code, 422);
}

#[test]
fn stale_resource_version_conflicts_and_generation_tracks_spec() {
    let (mut s, cm, _) = store();
    let created = s
        .create(
            &cm,
            Some("default"),
            json!({"metadata": {"name": "a"}, "data": {"k": "1"}}),
            false,
        )
        .unwrap();
    let mut update = created.clone();
    update["data"]["k"] = "2".into();
    let updated = s
        .replace(&cm, Some("default"), "a", update.clone(), false, false)
        .unwrap();
    assert_eq!(updated["metadata"]["generation"], 2);
    let err = s
        .replace(&cm, Some("default"), "a", update, false, false)
        .unwrap_err();
    assert_eq!(err.code, 409);
}

#[test]
fn namespace_deletion_cascades_and_finalizers_hold() {
    let (mut s, cm, ns) = store();
    s.create(&ns, None, json!({"metadata": {"name": "team"}}), false)
        .unwrap();
    s.create(&cm, Some("team"), json!({"metadata": {"name": "a"}}), false)
        .unwrap();
    s.create(
        &cm,
        Some("default"),
        json!({"metadata": {"name": "held", "finalizers": ["x/y"]}}),
        false,
    )
    .unwrap();
    assert!(matches!(
        s.delete(&ns, None, "team", None, false).unwrap(),
        Deleted::Gone(_)
    ));
    assert_eq!(s.get(&cm, Some("team"), "a").unwrap_err().code, 404);
    assert!(matches!(
        s.delete(&cm, Some("default"), "held", None, false).unwrap(),
        Deleted::Pending(_)
    ));
    s.modify(&cm, Some("default"), "held", false, false, |o| {
        o["metadata"]["finalizers"] = json!([]);
        Ok(())
    })
    .unwrap();
    assert_eq!(s.get(&cm, Some("default"), "held").unwrap_err().code, 404);
}

//! Golden tests: the CEL behaviour Steadfast depends on. `cel` is pre-1.0 and pinned; when it
//! is upgraded, these say what changed.

use std::sync::Arc;

use chrono::{DateTime, TimeZone, Utc};
use serde_json::{Value as Json, json};
use steadfast_rules::{Clock, Environment, Expression, FunctionError, Value};

fn sentinel_env() -> Environment {
    Environment::builder()
        .strings()
        .hyperfleet_sentinel()
        .build()
        .unwrap()
}

fn eval(env: &Environment, source: &str, vars: &[(&str, &Json)]) -> Result<Value, String> {
    let expr = env.compile(source).map_err(|e| e.to_string())?;
    let evaluator = env.evaluator();
    let mut scope = evaluator.scope();
    for (name, value) in vars {
        scope.bind_json(name, value);
    }
    scope.evaluate(&expr).map_err(|e| e.to_string())
}

fn t(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .unwrap()
        .with_timezone(&Utc)
}

/// HyperFleet Sentinel's default `message_decision`, exactly as it ships.
const DEFAULT_PARAMS: [(&str, &str); 7] = [
    ("ref_time", r#"condition("Reconciled").last_updated_time"#),
    (
        "is_reconciled",
        r#"condition("Reconciled").status == "True""#,
    ),
    ("has_ref_time", r#"ref_time != """#),
    (
        "is_new_resource",
        "resource.generation == 1 && !has_ref_time",
    ),
    (
        "generation_mismatch",
        r#"resource.generation > condition("Reconciled").observed_generation"#,
    ),
    (
        "reconciled_and_stale",
        r#"is_reconciled && has_ref_time && now - timestamp(ref_time) > duration("30m")"#,
    ),
    (
        "not_reconciled_and_debounced",
        r#"!is_reconciled && has_ref_time && now - timestamp(ref_time) > duration("10s")"#,
    ),
];
const DEFAULT_RESULT: &str = "is_new_resource || generation_mismatch || reconciled_and_stale || not_reconciled_and_debounced";

fn decide(resource: &Json, now: DateTime<Utc>) -> bool {
    let env = sentinel_env();
    let params: Vec<(&str, Expression)> = DEFAULT_PARAMS
        .iter()
        .map(|(name, source)| (*name, env.compile(source).unwrap()))
        .collect();
    let result = env.compile(DEFAULT_RESULT).unwrap();
    let evaluator = env.evaluator();
    let mut scope = evaluator.scope();
    scope.bind_json("resource", resource);
    scope.bind_timestamp("now", now);
    for (name, expr) in &params {
        scope.evaluate_and_bind(name, expr).unwrap();
    }
    scope.evaluate_bool(&result).unwrap()
}

fn cluster(generation: i64, reconciled: Option<(&str, i64, &str)>) -> Json {
    let conditions: Vec<Json> = reconciled
        .map(|(status, observed, updated)| {
            json!({"type": "Reconciled", "status": status, "observed_generation": observed,
                   "last_updated_time": updated, "last_transition_time": updated,
                   "reason": "r", "message": "m"})
        })
        .into_iter()
        .collect();
    json!({"id": "c1", "kind": "Cluster", "href": "/api/hyperfleet/v1/clusters/c1",
           "generation": generation, "labels": {"env": "prod"},
           "status": {"conditions": conditions}})
}

#[test]
fn default_decision_matches_hyperfleet() {
    let now = t("2026-05-01T12:00:00Z");
    // Never reported: a new resource gets an event at once.
    assert!(decide(&cluster(1, None), now));
    // Not reconciled, updated 5 s ago: still in the debounce window.
    assert!(!decide(
        &cluster(1, Some(("False", 1, "2026-05-01T11:59:55Z"))),
        now
    ));
    // Not reconciled for 11 s: debounced, publish.
    assert!(decide(
        &cluster(1, Some(("False", 1, "2026-05-01T11:59:49Z"))),
        now
    ));
    // Reconciled 29 minutes ago: nothing to do.
    assert!(!decide(
        &cluster(3, Some(("True", 3, "2026-05-01T11:31:00Z"))),
        now
    ));
    // Reconciled 31 minutes ago: the periodic re-check.
    assert!(decide(
        &cluster(3, Some(("True", 3, "2026-05-01T11:29:00.5Z"))),
        now
    ));
    // Spec changed since the last report.
    assert!(decide(
        &cluster(4, Some(("True", 3, "2026-05-01T11:59:59Z"))),
        now
    ));
}

#[test]
fn condition_returns_the_zero_value_when_absent() {
    let env = sentinel_env();
    let resource = cluster(1, None);
    let v = eval(
        &env,
        r#"condition("Reconciled")"#,
        &[("resource", &resource)],
    )
    .unwrap();
    assert_eq!(
        v.to_json().unwrap(),
        json!({"status": "", "observed_generation": 0, "last_updated_time": "",
               "last_transition_time": "", "reason": "", "message": ""})
    );
    // A resource without `status` at all behaves the same.
    let bare = json!({"id": "x", "generation": 1});
    let v = eval(&env, r#"condition("Ready").status"#, &[("resource", &bare)]).unwrap();
    assert_eq!(v.as_str(), Some(""));
}

#[test]
fn condition_renders_times_as_go_rfc3339nano() {
    let env = sentinel_env();
    let resource = cluster(2, Some(("True", 2, "2026-05-01T11:00:00.120000Z")));
    let v = eval(
        &env,
        r#"condition("Reconciled")"#,
        &[("resource", &resource)],
    )
    .unwrap();
    assert_eq!(
        v.to_json().unwrap(),
        json!({"status": "True", "observed_generation": 2,
               "last_updated_time": "2026-05-01T11:00:00.12Z",
               "last_transition_time": "2026-05-01T11:00:00.12Z",
               "reason": "r", "message": "m"})
    );
}

#[test]
fn compile_errors_name_the_expression_and_position() {
    let env = sentinel_env();
    let err = env.compile("resource.generation >").unwrap_err();
    assert_eq!(err.expression, "resource.generation >");
    assert!(
        err.to_string()
            .starts_with("invalid CEL expression `resource.generation >`: 1:"),
        "{err}"
    );
    let err = env.compile(r#"conditon("Reconciled").status"#).unwrap_err();
    assert_eq!(err.message, "unknown function `conditon`");
    let err = env.compile("  ").unwrap_err();
    assert_eq!(err.message, "the expression is empty");
    // Functions of the standard library and enabled extensions are known.
    for ok in [
        r#"size(resource.labels) > 0 && "a".startsWith("a") && timestamp("2026-01-01T00:00:00Z") < now"#,
        r#"resource.name.lowerAscii().contains("x") || int("1") == 1 || string(1) == "1""#,
        r#"optional.of(1).hasValue() && resource.?spec.orValue({}) == {}"#,
        r#"resource.labels.exists(k, k == "env") && [1, 2].all(x, x > 0) && [1].map(x, x * 2) == [2]"#,
    ] {
        env.compile(ok).unwrap_or_else(|e| panic!("{e}"));
    }
}

#[test]
fn free_variables_skip_comprehension_variables_and_namespaces() {
    let env = sentinel_env();
    let expr = env
        .compile(r#"resource.labels.exists(k, k == wanted) && optional.none() == optional.none() && type(x) == int"#)
        .unwrap();
    let vars: Vec<String> = expr.free_variables().into_iter().collect();
    assert_eq!(vars, ["resource", "wanted", "x"]);
    let expr = env.compile(DEFAULT_PARAMS[5].1).unwrap();
    let vars: Vec<String> = expr.free_variables().into_iter().collect();
    assert_eq!(vars, ["has_ref_time", "is_reconciled", "now", "ref_time"]);
}

#[test]
fn missing_keys_are_errors_and_has_and_optionals_avoid_them() {
    let env = sentinel_env();
    let resource = cluster(1, None);
    let vars = [("resource", &resource)];
    let err = eval(&env, "resource.owner_references.id", &vars).unwrap_err();
    assert_eq!(
        err,
        "evaluating `resource.owner_references.id`: No such key: owner_references"
    );
    assert_eq!(
        eval(&env, "has(resource.owner_references)", &vars).unwrap(),
        Value::from(false)
    );
    assert_eq!(
        eval(
            &env,
            r#"resource.?owner_references.?id.orValue("none")"#,
            &vars
        )
        .unwrap(),
        Value::from("none")
    );
    let err = eval(&env, "undefined_thing == 1", &vars).unwrap_err();
    assert_eq!(
        err,
        "evaluating `undefined_thing == 1`: Undeclared reference to 'undefined_thing'"
    );
}

#[test]
fn numbers_strings_and_equality() {
    let env = sentinel_env();
    let doc = json!({"i": 5, "f": 2.5, "big": 18446744073709551615u64, "s": "x"});
    let vars = [("d", &doc)];
    assert_eq!(eval(&env, "d.i + 1", &vars).unwrap(), Value::from(6));
    assert_eq!(eval(&env, "d.f * 2.0", &vars).unwrap(), Value::from(5.0));
    assert_eq!(
        eval(&env, "type(d.big) == uint", &vars).unwrap(),
        Value::from(true)
    );
    // Heterogeneous numeric equality holds, as in current cel-go.
    assert_eq!(eval(&env, "d.i == 5.0", &vars).unwrap(), Value::from(true));
    // Mixed-type arithmetic does not.
    assert!(eval(&env, "d.i + d.f", &vars).is_err());
    assert_eq!(
        eval(&env, r#"d.s + "y" == "xy""#, &vars).unwrap(),
        Value::from(true)
    );
    assert!(
        eval(&env, "1 / 0", &vars)
            .unwrap_err()
            .contains("Division by zero")
    );
}

#[test]
fn results_convert_to_json() {
    let env = sentinel_env();
    let resource = cluster(7, None);
    let vars = [("resource", &resource)];
    let v = eval(
        &env,
        r#"{"id": resource.id, "gen": resource.generation, "labels": resource.labels, "list": [1, "a", null, true]}"#,
        &vars,
    )
    .unwrap();
    assert_eq!(
        v.to_json().unwrap(),
        json!({"id": "c1", "gen": 7, "labels": {"env": "prod"}, "list": [1, "a", null, true]})
    );
    assert_eq!(
        eval(&env, r#"timestamp("2026-05-01T12:00:00.5+02:00")"#, &vars)
            .unwrap()
            .to_json()
            .unwrap(),
        json!("2026-05-01T10:00:00.5Z")
    );
    assert_eq!(
        eval(&env, r#"duration("30m")"#, &vars)
            .unwrap()
            .to_json()
            .unwrap(),
        json!("1800s")
    );
    assert_eq!(
        eval(&env, r#"resource.?nope"#, &vars)
            .unwrap()
            .to_json()
            .unwrap(),
        Json::Null
    );
    let v = eval(&env, "resource.generation", &vars).unwrap();
    assert_eq!(
        (v.as_i64(), v.as_bool(), v.type_name()),
        (Some(7), None, "int")
    );
}

#[test]
fn evaluate_bool_names_the_wrong_type() {
    let env = sentinel_env();
    let expr = env.compile("1 + 1").unwrap();
    let err = env.evaluator().scope().evaluate_bool(&expr).unwrap_err();
    assert_eq!(
        err.to_string(),
        "evaluating `1 + 1`: returned int, not bool"
    );
}

#[test]
fn strings_and_lists_extensions() {
    let env = Environment::builder().strings().lists().build().unwrap();
    let doc = json!({"tags": ["b", "a", "b"], "pools": [{"n": "x", "r": 3}, {"n": "y", "r": 1}]});
    let vars = [("d", &doc)];
    assert_eq!(
        eval(
            &env,
            r#""Hello".lowerAscii() + "-" + "a,b".split(",")[1]"#,
            &vars
        )
        .unwrap(),
        Value::from("hello-b")
    );
    assert_eq!(
        eval(&env, "d.tags.distinct().sort()", &vars)
            .unwrap()
            .to_json()
            .unwrap(),
        json!(["a", "b"])
    );
    assert_eq!(
        eval(&env, "d.pools.sortBy(p, p.r).map(p, p.n)", &vars)
            .unwrap()
            .to_json()
            .unwrap(),
        json!(["y", "x"])
    );
    // Without the extension the function is unknown at compile time.
    let bare = Environment::standard();
    assert_eq!(
        bare.compile(r#""A".lowerAscii()"#).unwrap_err().message,
        "unknown function `lowerAscii`"
    );
}

fn adapter_env(now: &'static str) -> Environment {
    let clock: Clock = Arc::new(move || t(now));
    Environment::builder()
        .hyperfleet_adapter(clock)
        .build()
        .unwrap()
}

#[test]
fn hyperfleet_adapter_helpers() {
    let env = adapter_env("2026-05-01T12:00:00Z");
    let conditions = json!([
        {"type": "Reconciled", "status": "True", "last_transition_time": "2026-05-01T11:58:00Z"},
        {"type": "Applied", "status": "False", "last_transition_time": "2026-05-01T11:59:50Z"}
    ]);
    let doc = json!({"a": {"b": [{"c": "deep"}]}, "labels": {"z": "<1>", "a": "&"}});
    let vars = [("conditions", &conditions), ("doc", &doc)];
    let s = |src: &str| eval(&env, src, &vars).unwrap();
    assert_eq!(s("now()"), Value::from("2026-05-01T12:00:00Z"));
    assert_eq!(
        s("toJson(doc.labels)"),
        Value::from(r#"{"a":"\u0026","z":"\u003c1\u003e"}"#)
    );
    assert_eq!(s(r#"dig(doc, "a.b.0.c")"#), Value::from("deep"));
    assert!(s(r#"dig(doc, "a.x.c")"#).is_null());
    assert_eq!(
        s(r#"conditionStatus(conditions, "Reconciled")"#),
        Value::from("True")
    );
    assert_eq!(
        s(r#"conditionStatus(conditions, "Health")"#),
        Value::from("Unknown")
    );
    assert_eq!(
        s(r#"conditionAge(conditions, "Reconciled")"#),
        Value::from(120)
    );
    assert_eq!(s(r#"conditionAge(conditions, "Health")"#), Value::from(-1));
    assert_eq!(
        s(r#"stableFor(conditions, "Reconciled", 120)"#),
        Value::from(true)
    );
    assert_eq!(
        s(r#"stableFor(conditions, "Reconciled", 121)"#),
        Value::from(false)
    );
    assert_eq!(
        s(r#"stableFor(conditions, "Applied", 1)"#),
        Value::from(false)
    );
    assert_eq!(s("triState(false, true)"), Value::from("False"));
    assert_eq!(s("triState(true, true)"), Value::from("True"));
    assert_eq!(s("triState(false, false)"), Value::from("Unknown"));
    let err = eval(&env, "triState(1, true)", &vars).unwrap_err();
    assert_eq!(
        err,
        "evaluating `triState(1, true)`: Error executing function 'triState': triState() takes two bools"
    );
}

#[test]
fn custom_functions_are_called_globally_and_as_methods() {
    let env = Environment::builder()
        .function("greet", |args: &[Value]| match args {
            [name] => Ok(Value::from(format!(
                "hello {}",
                name.as_str().unwrap_or("?")
            ))),
            _ => Err(FunctionError::argument_count("greet", 1, args.len())),
        })
        .build()
        .unwrap();
    let empty: [(&str, &Json); 0] = [];
    assert_eq!(
        eval(&env, r#"greet("a") + "/" + "b".greet()"#, &empty).unwrap(),
        Value::from("hello a/hello b")
    );
    assert_eq!(
        eval(&env, r#"greet("a", "b")"#, &empty).unwrap_err(),
        r#"evaluating `greet("a", "b")`: Error executing function 'greet': greet() takes 1 argument, got 2"#
    );
    let err = Environment::builder()
        .function("size", |_| Ok(Value::NULL))
        .build()
        .unwrap_err();
    assert_eq!(err.function, "size");
    let err = Environment::builder()
        .function("f", |_| Ok(Value::NULL))
        .function("f", |_| Ok(Value::NULL))
        .build()
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "cannot declare CEL function `f`: declared twice"
    );
}

#[test]
fn scopes_are_independent_and_bound_results_are_visible() {
    let env = sentinel_env();
    let evaluator = env.evaluator();
    let double = env.compile("x * 2").unwrap();
    let plus = env.compile("doubled + 1").unwrap();
    for x in [1i64, 5] {
        let mut scope = evaluator.scope();
        scope.bind("x", x);
        scope.evaluate_and_bind("doubled", &double).unwrap();
        assert_eq!(scope.evaluate(&plus).unwrap(), Value::from(x * 2 + 1));
        assert_eq!(scope.get("doubled"), Some(Value::from(x * 2)));
    }
    // A fresh scope does not see the previous one's variables.
    let scope = evaluator.scope();
    assert!(scope.evaluate(&plus).is_err());
}

#[test]
fn types_are_shareable_across_threads() {
    fn send_sync<T: Send + Sync>() {}
    fn send<T: Send>() {}
    send_sync::<Environment>();
    send_sync::<Expression>();
    send::<steadfast_rules::Evaluator>();
    let now = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
    let env = sentinel_env();
    let expr = env.compile("now > timestamp(0)").unwrap();
    let handle = std::thread::spawn(move || {
        let evaluator = env.evaluator();
        let mut scope = evaluator.scope();
        scope.bind_timestamp("now", now);
        scope.evaluate_bool(&expr).unwrap()
    });
    assert!(handle.join().unwrap());
}

#[test]
fn field_use_and_literal_arguments_drive_partial_binding() {
    use steadfast_rules::FieldUse;
    let env = sentinel_env();
    let e = env
        .compile(r#"resource.generation > 1 && has(resource.labels.env) && resource.?spec.orValue({}) == {} && condition("Reconciled").status == "True""#)
        .unwrap();
    assert_eq!(
        e.field_use("resource"),
        FieldUse::Fields(["generation", "labels", "spec"].map(String::from).into())
    );
    assert_eq!(
        e.literal_arguments("condition"),
        Some(["Reconciled".to_owned()].into())
    );
    let whole = env
        .compile(r#"size(resource) > 0 && condition(resource.kind).status == """#)
        .unwrap();
    assert_eq!(whole.field_use("resource"), FieldUse::Whole);
    assert_eq!(whole.literal_arguments("condition"), None);
}

#[test]
fn partial_binding_and_precomputed_conditions_give_the_same_decision() {
    let now = t("2026-05-01T12:00:00Z");
    let env = sentinel_env();
    let expressions: Vec<Expression> = DEFAULT_PARAMS
        .iter()
        .map(|(_, source)| env.compile(source).unwrap())
        .collect();
    let mut fields = steadfast_rules::FieldUse::Fields(Default::default());
    let mut names = std::collections::BTreeSet::new();
    for e in &expressions {
        fields.merge(&e.field_use("resource"));
        names.extend(e.literal_arguments("condition").unwrap());
    }
    let evaluator = env.evaluator();
    for resource in [
        cluster(1, None),
        cluster(1, Some(("False", 1, "2026-05-01T11:59:49.000100Z"))),
        cluster(3, Some(("True", 3, "2026-05-01T11:29:00+00:00"))),
        cluster(4, Some(("True", 3, "2026-05-01T11:59:59Z"))),
    ] {
        let run = |partial: bool| {
            let mut scope = evaluator.scope();
            if partial {
                scope.bind_json_fields("resource", &resource, &fields);
                steadfast_rules::hyperfleet::bind_conditions(&mut scope, &resource, &names);
            } else {
                scope.bind_json("resource", &resource);
            }
            scope.bind_timestamp("now", now);
            for ((name, _), e) in DEFAULT_PARAMS.iter().zip(&expressions) {
                scope.evaluate_and_bind(name, e).unwrap();
            }
            DEFAULT_PARAMS
                .iter()
                .map(|(name, _)| scope.get(name).unwrap())
                .collect::<Vec<_>>()
        };
        assert_eq!(run(true), run(false), "{resource}");
    }
}

use super::strings::title_case;
use super::*;
use serde_json::json;

fn j(v: Value) -> TValue<'static> {
    TValue::owned(v)
}

/// Arguments every function accepts: strings where strings are wanted, a time for
/// `date`, a format for `printf`.
fn sample_args(f: &Func) -> Vec<TValue<'static>> {
    let n = match f.arity {
        Arity::Exactly(n) => n,
        Arity::AtLeast(n) => n.max(1),
    };
    match f.name {
        "date" | "dateFormat" => vec![j(json!("2006")), TValue::Time(Utc::now())],
        "index" | "slice" => vec![j(json!(["a"]))],
        "eq" => vec![j(json!(1)), j(json!(1))],
        "b64dec" => vec![j(json!("YQ=="))],
        _ => (0..n).map(|_| j(json!("a"))).collect(),
    }
}

#[test]
fn every_entry_is_callable_and_unique() {
    let mut names = std::collections::BTreeSet::new();
    for f in FUNCTIONS {
        assert!(names.insert(f.name), "{} listed twice", f.name);
        assert!(
            !f.doc.is_empty() && f.usage.starts_with(f.name),
            "{}",
            f.name
        );
        assert!(exists(f.name));
        let result = f.call(sample_args(f));
        if f.name == "call" {
            assert!(matches!(result, Err(FuncError::NotAFunction { .. })));
        } else {
            assert!(result.is_ok(), "{}: {result:?}", f.name);
        }
    }
    assert_eq!(
        call("nope", vec![]),
        Err(FuncError::Undefined("nope".into()))
    );
}

#[test]
fn arity_is_checked_from_the_table() {
    assert_eq!(
        call("lower", vec![j(json!("a")), j(json!("b"))])
            .unwrap_err()
            .to_string(),
        "wrong number of args for lower: want 1 got 2"
    );
    assert_eq!(
        call("printf", vec![]).unwrap_err().to_string(),
        "wrong number of args for printf: want at least 1 got 0"
    );
}

#[test]
fn hyperfleet_argument_order() {
    let call3 = |name, a: Value, b: Value| call(name, vec![j(a), j(b)]).unwrap();
    assert_eq!(
        call3("trimPrefix", json!("v1.2"), json!("v")),
        j(json!("1.2"))
    );
    assert_eq!(
        call3("trimSuffix", json!("app.yaml"), json!(".yaml")),
        j(json!("app"))
    );
    assert_eq!(call3("default", json!("x"), json!("")), j(json!("x")));
    assert_eq!(call3("default", json!("x"), json!(0)), j(json!(0)));
    assert_eq!(
        call3("hasPrefix", json!("abc"), json!("ab")),
        j(json!(true))
    );
    assert_eq!(
        call(
            "replace",
            vec![j(json!("a-b")), j(json!("-")), j(json!("."))]
        )
        .unwrap(),
        j(json!("a.b"))
    );
}

#[test]
fn conversions_follow_hyperfleet() {
    let one = |name, v: Value| call(name, vec![j(v)]).unwrap();
    assert_eq!(one("int", json!("42")), j(json!(42)));
    assert_eq!(one("int", json!(" 42")), j(json!(0)));
    assert_eq!(one("int", json!("4.5")), j(json!(0)));
    assert_eq!(one("int", json!(-7.9)), j(json!(-7)));
    assert_eq!(one("int", json!(true)), j(json!(0)));
    assert_eq!(
        one("int", json!("99999999999999999999")),
        j(json!(i64::MAX))
    );
    assert_eq!(one("float", json!("1.5")), j(json!(1.5)));
    assert_eq!(one("float", json!("1_000.5")), j(json!(1000.5)));
    assert_eq!(one("float", json!("0x1p-2")), j(json!(0.25)));
    assert_eq!(one("float", json!("abc")), j(json!(0.0)));
    assert_eq!(one("float", json!(null)), j(json!(0.0)));
    assert!(matches!(
        call("float", vec![j(json!("1e400"))]),
        Err(FuncError::NotFinite { .. })
    ));
}

#[test]
fn title_cases_words() {
    for (input, expected) in [
        ("hELLO wORLD", "Hello World"),
        ("o'neil x.y foo_bar", "O'neil X.y Foo_bar"),
        ("hello-world 3rd", "Hello-World 3Rd"),
    ] {
        assert_eq!(title_case(input), expected, "{input}");
    }
}

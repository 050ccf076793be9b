use super::*;
use serde_json::json;

fn f(format: &str, args: Vec<Value>) -> String {
    let args: Vec<TValue<'static>> = args.into_iter().map(TValue::owned).collect();
    sprintf(format, &args).unwrap()
}

#[test]
fn floats_print_like_go() {
    for (value, expected) in [
        (json!(0.5), "0.5"),
        (json!(1e6), "1e+06"),
        (json!(123456.5), "123456.5"),
        (json!(1e-5), "1e-05"),
        (json!(0.0001), "0.0001"),
        (json!(1e21), "1e+21"),
        (json!(5.0), "5"),
        (json!(-2.5), "-2.5"),
    ] {
        assert_eq!(
            print_one(&TValue::owned(value.clone())),
            expected,
            "{value}"
        );
    }
}

#[test]
fn printf_verbs() {
    assert_eq!(
        f(
            "%5.2f|%-5d|%05d",
            vec![json!(1.23456), json!(42), json!(-42)]
        ),
        " 1.23|42   |-0042"
    );
    assert_eq!(
        f(
            "%.3g %g %e",
            vec![json!(1234.5678), json!(100000.0), json!(1.5)]
        ),
        "1.23e+03 100000 1.500000e+00"
    );
    assert_eq!(
        f(
            "%x %X %#x %o %b",
            vec![json!(255), json!(255), json!(255), json!(8), json!(5)]
        ),
        "ff FF 0xff 10 101"
    );
    assert_eq!(
        f("%d %s", vec![json!("a"), json!(1)]),
        "%!d(string=a) %!s(int=1)"
    );
    assert_eq!(f("%d", vec![]), "%!d(MISSING)");
    assert_eq!(f("%d", vec![json!(1), json!("x")]), "1%!(EXTRA string=x)");
    assert_eq!(f("%[2]d %[1]d", vec![json!(1), json!(2)]), "2 1");
    assert_eq!(f("%x", vec![json!(1.5)]), "0x1.8p+00");
}

#[test]
fn json_like_go() {
    assert_eq!(
        to_json(&TValue::owned(
            json!({"b": [1, 2.5, 5.0, 1e21], "a": "<&>"})
        )),
        r#"{"a":"\u003c\u0026\u003e","b":[1,2.5,5,1e+21]}"#
    );
    assert_eq!(to_json(&TValue::owned(json!(1e-7))), "1e-7");
}

//! Conformance with Go's `text/template` (https://pkg.go.dev/text/template) and HyperFleet's
//! function map (`pkg/utils/template.go` of openshift-hyperfleet/hyperfleet-adapter).
//!
//! Each case is a template, its data as JSON, and what Go prints (or a fragment of the error
//! this port gives where Go fails too). The data is what HyperFleet hands its templates: JSON
//! integers are Go `int`s, other numbers `float64`, objects `map[string]interface {}`, and the
//! templates run with `missingkey=error`.
//!
//! `GO` cases were checked against Go's `text/template` with HyperFleet's function map; `NEWER_GO`
//! holds features of the Go releases HyperFleet builds with (1.23 `else with`, 1.24 `range`
//! over an int); `REFUSED` are Go features refused at load; `DATES` formats times given as RFC 3339 strings (an extension: HyperFleet's
//! `date` takes only a `time.Time`) with Go's layouts; `DEVIATIONS` are the places this port
//! deliberately differs from Go, each with what Go does instead.

use serde_json::Value;
use steadfast_gotemplate::Template;

/// The shared data document (`D`).
const D: &str = r#"{
    "name": "World",
    "clusterId": "ABC123",
    "generation": 5,
    "ratio": 0.5,
    "big": 1500000.0,
    "neg": -3,
    "zero": 0,
    "zeroFloat": 0.0,
    "t": true,
    "f": false,
    "empty": "",
    "space": " ",
    "zeroStr": "0",
    "nothing": null,
    "list": ["a", "b", "c"],
    "nums": [3, 1, 2],
    "emptyList": [],
    "emptyMap": {},
    "labels": {"b": "2", "a": "1", "c": "3"},
    "nested": {"inner": {"value": "deep"}},
    "items": [{"name": "x", "n": 1}, {"name": "y", "n": 2}],
    "mixed": [1, "two", 3.5, true, null],
    "spaces": "  padded \t\n",
    "version": "v1.2.3",
    "file": "app.yaml",
    "text": "Hello, World",
    "quoteMe": "say \"hi\"\n",
    "b64": "aGVsbG8=",
    "url": "a b&c=d/e?f*~",
    "html": "<a href='x'>&</a>",
    "numStr": "42",
    "floatStr": "3.25",
    "ts": "2026-03-07T14:05:09.12Z"
}"#;

enum Expect {
    Out(&'static str),
    Err(&'static str),
}

struct Case {
    template: &'static str,
    data: &'static str,
    expect: Expect,
}

const fn c(template: &'static str, data: &'static str, expect: Expect) -> Case {
    Case {
        template,
        data,
        expect,
    }
}

const fn out(text: &'static str) -> Expect {
    Expect::Out(text)
}

const fn err(fragment: &'static str) -> Expect {
    Expect::Err(fragment)
}

#[rustfmt::skip]
const GO: &[Case] = &[
    // Fields, printing.
    c("Hello {{ .name }}!", D, out("Hello World!")),
    c("plain text", D, out("plain text")),
    c("{{ .nested.inner.value }}", D, out("deep")),
    c("{{ $.nested.inner.value }}", D, out("deep")),
    c("{{ .generation }}", D, out("5")),
    c("{{ .ratio }}", D, out("0.5")),
    c("{{ .big }}", D, out("1.5e+06")),
    c("{{ .neg }}", D, out("-3")),
    c("{{ .zeroFloat }}", D, out("0")),
    c("{{ .t }} {{ .f }}", D, out("true false")),
    c("{{ .list }}", D, out("[a b c]")),
    c("{{ .labels }}", D, out("map[a:1 b:2 c:3]")),
    c("{{ .mixed }}", D, out("[1 two 3.5 true <nil>]")),
    c("{{ .items }}", D, out("[map[n:1 name:x] map[n:2 name:y]]")),
    c("{{ .nothing }}", D, out("<no value>")),
    c("{{ .emptyList }} {{ .emptyMap }}", D, out("[] map[]")),
    c("{{ . }}", r#"{"a": 1, "b": [true]}"#, out("map[a:1 b:[true]]")),
    c(r#"{"id": "{{ .clusterId }}", "gen": {{ .generation }}}"#, D, out(r#"{"id": "ABC123", "gen": 5}"#)),
    // missingkey=error.
    c("{{ .missing }}", D, err(r#"map has no entry for key "missing""#)),
    c("{{ .nested.missing }}", D, err(r#"map has no entry for key "missing""#)),
    c("{{ .missing.deeper }}", D, err(r#"map has no entry for key "missing""#)),
    c("{{ .missing | default \"x\" }}", D, err(r#"map has no entry for key "missing""#)),
    c("{{ if .missing }}x{{ end }}", D, err(r#"map has no entry for key "missing""#)),
    c("{{ with .nested.inner }}{{ .missing }}{{ end }}", D, err(r#"map has no entry for key "missing""#)),
    c("{{ range .items }}{{ .missing }}{{ end }}", D, err(r#"map has no entry for key "missing""#)),
    c("{{ .nothing.x }}", D, err("nil pointer evaluating interface {}.x")),
    c("{{ .name.x }}", D, err("can't evaluate field x in type")),
    c(r#"{{ index .labels "zz" }}"#, D, out("<no value>")),
    // Literals.
    c(r#"{{ "text" }}"#, D, out("text")),
    c(r#"{{ "tab\tq\"\\" }}"#, D, out("tab\tq\"\\")),
    c(r#"{{ "\u00e9\x41\101" }}"#, D, out("éAA")),
    c("{{ `raw\\n` }}", D, out("raw\\n")),
    c("{{ 42 }} {{ -7 }} {{ +7 }}", D, out("42 -7 7")),
    c("{{ 3.5 }} {{ 1.0 }} {{ .5 }}", D, out("3.5 1 0.5")),
    c("{{ 1e3 }} {{ 1e6 }} {{ 1e-5 }}", D, out("1000 1e+06 1e-05")),
    c("{{ 0x1F }} {{ 0o17 }} {{ 017 }} {{ 0b101 }} {{ 1_000 }}", D, out("31 15 15 5 1000")),
    c("{{ 'a' }} {{ '\\n' }}", D, out("97 10")),
    c("{{ true }} {{ false }}", D, out("true false")),
    c("{{ nil }}", D, err("nil is not a command")),
    c(r#"{{ "a".x }}"#, D, err("after")),
    c("{{ 1x }}", D, err("bad number syntax")),
    c(r#"{{ "\'" }}"#, D, err("escape")),
    // Whitespace trimming and comments.
    c("a  {{- .name -}}  b", D, out("aWorldb")),
    c("a \n\t{{- .name }} b", D, out("aWorld b")),
    c("{{ .name -}}\n\n  x", D, out("Worldx")),
    c("a\n{{- if .t }}\n  yes\n{{- end }}\n", D, out("a\n  yes\n")),
    c("x{{-3}}y", D, out("x-3y")),
    c("a {{- /* comment */ -}} b", D, out("ab")),
    c("{{/* a\nmulti-line comment */}}ok", D, out("ok")),
    c("{{ /* not a comment */ }}", D, err("")),
    c("{{/* c */ .name }}", D, err("comment ends before closing delimiter")),
    c("{{/* unclosed }}", D, err("unclosed comment")),
    // Pipelines.
    c("{{ .name | lower }}", D, out("world")),
    c(r#"{{ .name | printf "%s-%s" "x" }}"#, D, out("x-World")),
    c(r#"{{ "a" | printf "%s%s" "b" | upper }}"#, D, out("BA")),
    c("{{ (index .list 1) | upper }}", D, out("B")),
    c(r#"{{ printf "%s/%d" (lower .name) (len .list) }}"#, D, out("world/3")),
    c("{{ (index .items 1).name }}", D, out("y")),
    c("{{ (.nested).inner.value }}", D, out("deep")),
    c("{{ len (slice .list 1) }}", D, out("2")),
    c(r#"{{ .name | "x" }}"#, D, err("non executable command in pipeline stage 2")),
    c("{{ .name 1 }}", D, err("")),
    c("{{ | lower }}", D, err("")),
    c("{{ }}", D, err("missing value for command")),
    // Variables.
    c(r#"{{ $x := "v" }}{{ $x }}"#, D, out("v")),
    c("{{ $x := 1 }}{{ $x = 2 }}{{ $x }}", D, out("2")),
    c("{{ $x := 1 }}{{ if .t }}{{ $x = 2 }}{{ end }}{{ $x }}", D, out("2")),
    c("{{ $x := 1 }}{{ range .list }}{{ $x = . }}{{ end }}{{ $x }}", D, out("c")),
    c("{{ if .t }}{{ $y := 1 }}{{ end }}{{ $y }}", D, err(r#"undefined variable "$y""#)),
    c("{{ $undefined }}", D, err(r#"undefined variable "$undefined""#)),
    c("{{ range .list }}{{ $.name }}{{ end }}", D, out("WorldWorldWorld")),
    c("{{ $ }}", r#"{"a": 1}"#, out("map[a:1]")),
    c("{{ with $x := .nested.inner }}{{ $x.value }}{{ end }}", D, out("deep")),
    c("{{ if $n := len .list }}{{ $n }}{{ end }}", D, out("3")),
    c("{{ $a, $b := 1 }}", D, err("too many declarations")),
    c("{{ $n := len .list }}{{ $n }}", D, out("3")),
    c("{{ $m := .nested }}{{ $m.inner.value }}", D, out("deep")),
    // if / else.
    c("{{ if .t }}y{{ else }}n{{ end }}", D, out("y")),
    c("{{ if .empty }}T{{ else }}F{{ end }}", D, out("F")),
    c("{{ if .zero }}T{{ else }}F{{ end }}", D, out("F")),
    c("{{ if .zeroFloat }}T{{ else }}F{{ end }}", D, out("F")),
    c("{{ if .f }}T{{ else }}F{{ end }}", D, out("F")),
    c("{{ if .nothing }}T{{ else }}F{{ end }}", D, out("F")),
    c("{{ if .emptyList }}T{{ else }}F{{ end }}", D, out("F")),
    c("{{ if .emptyMap }}T{{ else }}F{{ end }}", D, out("F")),
    c("{{ if .space }}T{{ else }}F{{ end }}", D, out("T")),
    c("{{ if .zeroStr }}T{{ else }}F{{ end }}", D, out("T")),
    c("{{ if .neg }}T{{ else }}F{{ end }}", D, out("T")),
    c("{{ if .ratio }}T{{ else }}F{{ end }}", D, out("T")),
    c("{{ if .list }}T{{ else }}F{{ end }}", D, out("T")),
    c("{{ if .labels }}T{{ else }}F{{ end }}", D, out("T")),
    c("{{ if .f }}a{{ else if .zero }}b{{ else if .name }}c{{ else }}d{{ end }}", D, out("c")),
    c("{{ if .f }}a{{ else if .zero }}b{{ else }}d{{ end }}", D, out("d")),
    c("{{ if and .t .name }}ok{{ end }}", D, out("ok")),
    c("{{ if not .empty }}ok{{ end }}", D, out("ok")),
    c("{{ if eq .generation 5 }}five{{ end }}", D, out("five")),
    // with.
    c("{{ with .nested }}{{ .inner.value }}{{ end }}", D, out("deep")),
    c("{{ with .empty }}x{{ else }}empty{{ end }}", D, out("empty")),
    c("{{ with .nothing }}x{{ else }}{{ .name }}{{ end }}", D, out("World")),
    c("{{ with .list }}{{ len . }}{{ end }}", D, out("3")),
    // range.
    c("{{ range .list }}[{{ . }}]{{ end }}", D, out("[a][b][c]")),
    c("{{ range $i, $v := .list }}{{ $i }}={{ $v }};{{ end }}", D, out("0=a;1=b;2=c;")),
    c("{{ range $k, $v := .labels }}{{ $k }}={{ $v }};{{ end }}", D, out("a=1;b=2;c=3;")),
    c("{{ range .labels }}{{ . }}{{ end }}", D, out("123")),
    c("{{ range $v := .nums }}{{ $v }}{{ end }}", D, out("312")),
    c("{{ range .emptyList }}x{{ else }}none{{ end }}", D, out("none")),
    c("{{ range .emptyMap }}x{{ else }}none{{ end }}", D, out("none")),
    c("{{ range .nothing }}x{{ else }}none{{ end }}", D, out("none")),
    c("{{ range .items }}{{ .name }}:{{ .n }} {{ end }}", D, out("x:1 y:2 ")),
    c("{{ range $i, $v := .list }}{{ if $i }},{{ end }}{{ $v }}{{ end }}", D, out("a,b,c")),
    c("{{ range .items }}{{ $item := . }}{{ range $.list }}{{ $item.name }}{{ . }}{{ end }}{{ end }}", D, out("xaxbxcyaybyc")),
    c("{{ range .name }}x{{ end }}", D, err("range can't iterate over World")),
    c("{{ range .ratio }}x{{ end }}", D, err("range can't iterate over 0.5")),
    // Comparisons.
    c(r#"{{ eq .name "World" }}"#, D, out("true")),
    c(r#"{{ eq .name "a" "b" "World" }}"#, D, out("true")),
    c(r#"{{ eq .name "a" "b" }}"#, D, out("false")),
    c("{{ eq .generation 5 }} {{ ne .generation 4 }}", D, out("true true")),
    c("{{ eq .ratio 0.5 }}", D, out("true")),
    c("{{ eq .t true }} {{ ne .t .f }}", D, out("true true")),
    c(r#"{{ eq 1 1 "a" }}"#, D, out("true")),
    c(r#"{{ eq .nothing "x" }}"#, D, out("false")),
    c("{{ eq .name 5 }}", D, err("incompatible types for comparison")),
    c(r#"{{ eq 1 "a" 1 }}"#, D, err("incompatible types for comparison")),
    c(r#"{{ ne .t "true" }}"#, D, err("incompatible types for comparison")),
    c("{{ eq .list .list }}", D, err("non-comparable")),
    c("{{ eq 1 }}", D, err("missing argument for comparison")),
    c("{{ lt 1 2 }} {{ le 2 2 }} {{ gt 3 2 }} {{ ge 2 3 }}", D, out("true true true false")),
    c("{{ lt .ratio 1.5 }} {{ gt .ratio 0.25 }}", D, out("true true")),
    c(r#"{{ lt "a" "b" }} {{ gt "b" "a" }} {{ le "b" "a" }}"#, D, out("true true false")),
    c("{{ ge .neg -3 }} {{ lt .neg 0 }}", D, out("true true")),
    c("{{ lt .name 5 }}", D, err("incompatible types for comparison")),
    c("{{ lt .t .f }}", D, err("invalid type for comparison")),
    c("{{ lt .nothing 1 }}", D, err("invalid type for comparison")),
    c("{{ lt .list 1 }}", D, err("invalid type for comparison")),
    // and, or, not.
    c(r#"{{ and 1 "x" 0 "y" }}"#, D, out("0")),
    c(r#"{{ and 1 "x" }}"#, D, out("x")),
    c(r#"{{ or 0 "" "z" }}"#, D, out("z")),
    c(r#"{{ or 0 "" }}|"#, D, out("|")),
    c("{{ or .name .missing }}", D, out("World")),
    c("{{ and .f .missing }}", D, out("false")),
    c("{{ or .f .missing }}", D, err(r#"map has no entry for key "missing""#)),
    c(r#"{{ .empty | or "fallback" }}"#, D, out("fallback")),
    c("{{ not .t }} {{ not .empty }} {{ not 0 }} {{ not .list }}", D, out("false true true false")),
    c("{{ and }}", D, err("wrong number of args for and: want at least 1 got 0")),
    c("{{ not 1 2 }}", D, err("wrong number of args for not: want 1 got 2")),
    // len, index, slice.
    c(r#"{{ len .list }} {{ len .labels }} {{ len .name }} {{ len "héllo" }}"#, D, out("3 3 5 6")),
    c("{{ len .generation }}", D, err("len of type int")),
    c("{{ len .nothing }}", D, err("len of nil pointer")),
    c(r#"{{ index .list 0 }} {{ index .labels "b" }} {{ index .items 1 "name" }}"#, D, out("a 2 y")),
    c("{{ index .list }}", D, out("[a b c]")),
    c("{{ index .name 0 }}", D, out("87")),
    c("{{ index .list 5 }}", D, err("index out of range: 5")),
    c("{{ index .list -1 }}", D, err("index out of range: -1")),
    c("{{ index .list 3 }}", D, err("out of range")),
    c(r#"{{ index .list "a" }}"#, D, err("cannot index slice/array with type string")),
    c("{{ index .labels 1 }}", D, err("")),
    c("{{ index .generation 0 }}", D, err("can't index item of type int")),
    c("{{ index .nothing 0 }}", D, err("index of untyped nil")),
    c("{{ slice .list 1 }} {{ slice .list 1 2 }} {{ slice .list }}", D, out("[b c] [b] [a b c]")),
    c("{{ slice .name 1 3 }}", D, out("or")),
    c("{{ slice .list 2 1 }}", D, err("invalid slice index: 2 > 1")),
    c("{{ slice .name 1 2 3 }}", D, err("cannot 3-index slice a string")),
    c("{{ slice .generation 1 }}", D, err("can't slice item of type int")),
    // print, println.
    c("{{ print 1 2 }}", D, out("1 2")),
    c(r#"{{ print "a" 1 "b" }}"#, D, out("a1b")),
    c(r#"{{ print 1 "a" 2 3 }}"#, D, out("1a2 3")),
    c("{{ print .nothing }}", D, out("<nil>")),
    c("{{ print .list .t .ratio }}", D, out("[a b c] true 0.5")),
    c(r#"{{ println "a" 1 }}"#, D, out("a 1\n")),
    c("[{{ print }}]", D, out("[]")),
    // printf.
    c(r#"{{ printf "%s" .name }}"#, D, out("World")),
    c(r#"{{ printf "%d" .generation }}"#, D, out("5")),
    c(r#"{{ printf "%v %v" .ratio .big }}"#, D, out("0.5 1.5e+06")),
    c(r#"{{ printf "%q" .name }}"#, D, out(r#""World""#)),
    c(r#"{{ printf "%x" .name }}"#, D, out("576f726c64")),
    c(r#"{{ printf "% x" "hi" }}"#, D, out("68 69")),
    c(r#"{{ printf "%X %x" 255 -255 }}"#, D, out("FF -ff")),
    c(r#"{{ printf "%05d" 42 }}"#, D, out("00042")),
    c(r#"{{ printf "%05d" -42 }}"#, D, out("-0042")),
    c(r#"{{ printf "%5d|%-5d|" 42 42 }}"#, D, out("   42|42   |")),
    c(r#"{{ printf "%.2f" .ratio }}"#, D, out("0.50")),
    c(r#"{{ printf "%.2f" 3.14159 }}"#, D, out("3.14")),
    c(r#"{{ printf "%8.3f|%-8.2f|" 3.14159 2.5 }}"#, D, out("   3.142|2.50    |")),
    c(r#"{{ printf "%08.3f" -3.14159 }}"#, D, out("-003.142")),
    c(r#"{{ printf "%f" .big }}"#, D, out("1500000.000000")),
    c(r#"{{ printf "%.1f %.0f %.0f" 0.25 2.5 3.5 }}"#, D, out("0.2 2 4")),
    c(r#"{{ printf "%e" 123456.789 }}"#, D, out("1.234568e+05")),
    c(r#"{{ printf "%+.1e" 12345.0 }}"#, D, out("+1.2e+04")),
    c(r#"{{ printf "%g %g %g" 0.000012 100000.0 100000000.0 }}"#, D, out("1.2e-05 100000 1e+08")),
    c(r#"{{ printf "%.3g %G" 1234.5678 1e-10 }}"#, D, out("1.23e+03 1E-10")),
    c(r#"{{ printf "%v %v" 1e21 123456789.0 }}"#, D, out("1e+21 1.23456789e+08")),
    c(r#"{{ printf "%x" 1.5 }}"#, D, out("0x1.8p+00")),
    c(r#"{{ printf "%t %v" .t .f }}"#, D, out("true false")),
    c(r#"{{ printf "%v" .nothing }}"#, D, out("<nil>")),
    c(r#"{{ printf "%s|%d" .nothing .nothing }}"#, D, out("%!s(<nil>)|%!d(<nil>)")),
    c(r#"{{ printf "%v" .labels }}"#, D, out("map[a:1 b:2 c:3]")),
    c(r#"{{ printf "%v|%s" .list .list }}"#, D, out("[a b c]|[a b c]")),
    c(r#"{{ printf "%q" .list }}"#, D, out(r#"["a" "b" "c"]"#)),
    c(r#"{{ printf "%d" .nums }}"#, D, out("[3 1 2]")),
    c(r#"{{ printf "%v" .mixed }}"#, D, out("[1 two 3.5 true <nil>]")),
    c(r#"{{ printf "%d" .mixed }}"#, D, out("[1 %!d(string=two) %!d(float64=3.5) %!d(bool=true) <nil>]")),
    c(r#"{{ printf "%s" .items }}"#, D, out("[map[n:%!s(int=1) name:x] map[n:%!s(int=2) name:y]]")),
    c(r#"{{ printf "%s" .generation }}"#, D, out("%!s(int=5)")),
    c(r#"{{ printf "%d" .name }}"#, D, out("%!d(string=World)")),
    c(r#"{{ printf "%d" .ratio }}"#, D, out("%!d(float64=0.5)")),
    c(r#"{{ printf "%t" 1 }}"#, D, out("%!t(int=1)")),
    c(r#"{{ printf "%s" .t }}"#, D, out("%!s(bool=true)")),
    c(r#"{{ printf "%z" 1 }}"#, D, out("%!z(int=1)")),
    c(r#"{{ printf "%s %s" "a" }}"#, D, out("a %!s(MISSING)")),
    c(r#"{{ printf "%s" "a" "b" 3 }}"#, D, out("a%!(EXTRA string=b, int=3)")),
    c(r#"{{ printf "100%%" }}"#, D, out("100%")),
    c(r#"{{ printf "%" }}"#, D, out("%!(NOVERB)")),
    c(r#"{{ printf "%c|%U|%q" 65 65 65 }}"#, D, out("A|U+0041|'A'")),
    c(r#"{{ printf "%+d|% d" 5 5 }}"#, D, out("+5| 5")),
    c(r#"{{ printf "%#x %#o %b %o" 255 8 5 8 }}"#, D, out("0xff 010 101 10")),
    c(r#"{{ printf "%T %T %T %T" 1 1.5 "s" true }}"#, D, out("int float64 string bool")),
    c(r#"{{ printf "%T|%T|%T" .list .labels .nothing }}"#, D, out("[]interface {}|map[string]interface {}|<nil>")),
    c(r#"{{ printf "%#v" .list }}"#, D, out(r#"[]interface {}{"a", "b", "c"}"#)),
    c(r#"{{ printf "%#v %#v %#v" .name 5 1.0 }}"#, D, out(r#""World" 5 1"#)),
    c(r#"{{ printf "%.3s|%6s|%-6s|" "abcdef" "ab" "cd" }}"#, D, out("abc|    ab|cd    |")),
    c(r#"{{ printf "%[2]s %[1]s" "a" "b" }}"#, D, out("b a")),
    c(r#"{{ printf "%*d|%-*d|" 5 42 4 7 }}"#, D, out("   42|7   |")),
    c(r#"{{ printf "%q" .quoteMe }}"#, D, out(r#""say \"hi\"\n""#)),
    c("{{ printf 1 }}", D, err("wrong type for value; expected string; got int")),
    // HyperFleet: strings.
    c(r#"{{ lower "ÀBC" }} {{ upper .name }}"#, D, out("àbc WORLD")),
    c(r#"{{ title "hello wORLD" }}"#, D, out("Hello World")),
    c(r#"{{ title "o'neil foo_bar x.y hello-world" }}"#, D, out("O'neil Foo_bar X.y Hello-World")),
    c("[{{ trim .spaces }}]", D, out("[padded]")),
    c(r#"{{ trimPrefix .version "v" }} {{ trimPrefix .version "x" }}"#, D, out("1.2.3 v1.2.3")),
    c(r#"{{ trimSuffix .file ".yaml" }} {{ trimSuffix .file ".yml" }}"#, D, out("app app.yaml")),
    c(r#"{{ .version | trimPrefix "v" }}"#, D, out("v")),
    c(r#"{{ "-" | trimSuffix "release-" }}"#, D, out("release")),
    c(r#"{{ trimPrefix (trimSuffix .file ".yaml") "ap" }}"#, D, out("p")),
    c(r#"{{ replace .text "World" "Go" }} {{ replace "aaa" "a" "b" }}"#, D, out("Hello, Go bbb")),
    c(r#"{{ contains .text "World" }} {{ contains .text "world" }}"#, D, out("true false")),
    c(r#"{{ hasPrefix .version "v1" }} {{ hasSuffix .file ".yml" }}"#, D, out("true false")),
    c("{{ quote .name }} {{ quote .quoteMe }}", D, out(r#""World" "say \"hi\"\n""#)),
    c("{{ quote 5 }}", D, err("wrong type for value; expected string; got int")),
    c("{{ lower .generation }}", D, err("expected string")),
    c(r#"{{ trimPrefix .version }}"#, D, err("wrong number of args for trimPrefix: want 2 got 1")),
    // HyperFleet: default.
    c(r#"{{ default "d" .empty }} {{ default "d" .nothing }} {{ default "d" .name }}"#, D, out("d d World")),
    c(r#"{{ default "d" .zero }} {{ default "d" .f }} {{ default "d" .emptyList }}"#, D, out("0 false []")),
    c(r#"{{ .empty | default "d" }}"#, D, out("d")),
    c(r#"{{ default "d" }}"#, D, err("wrong number of args for default: want 2 got 1")),
    // HyperFleet: conversions.
    c(r#"{{ int "42" }} {{ int .numStr }} {{ int64 "-12" }} {{ int 5 }}"#, D, out("42 42 -12 5")),
    c("{{ int 7.9 }} {{ int -7.9 }} {{ int .ratio }}", D, out("7 -7 0")),
    c(r#"{{ int "4.5" }} {{ int "abc" }} {{ int " 42" }} {{ int .t }} {{ int .nothing }}"#, D, out("0 0 0 0 0")),
    c(r#"{{ int "99999999999999999999" }}"#, D, out("9223372036854775807")),
    c(r#"{{ printf "%T %d" (int "3") (int "3") }}"#, D, out("int 3")),
    c(r#"{{ eq (int "5") .generation }}"#, D, out("true")),
    c(r#"{{ float "3.25" }} {{ float .floatStr }} {{ float64 "7.5" }} {{ float 5 }}"#, D, out("3.25 3.25 7.5 5")),
    c(r#"{{ float "abc" }} {{ float "" }} {{ float .t }} {{ float .nothing }} {{ float " 1.5" }}"#, D, out("0 0 0 0 0")),
    c(r#"{{ float "1e3" }} {{ float "-2.5" }} {{ float ".5" }} {{ float "1_000.5" }} {{ float "0x1p-2" }}"#, D, out("1000 -2.5 0.5 1000.5 0.25")),
    c(r#"{{ printf "%.2f %T" (float "2") (float 5) }}"#, D, out("2.00 float64")),
    c(r#"{{ lt (float "2.5") 3.0 }}"#, D, out("true")),
    c("{{ string 5 }} {{ string .list }} {{ string .nothing }} {{ string .ratio }}", D, out("5 [a b c] <nil> 0.5")),
    c(r#"{{ printf "%T" (string 5) }}"#, D, out("string")),
    // Go: html, js, urlquery, call; an unknown function.
    c("{{ html .html }}", D, out("&lt;a href=&#39;x&#39;&gt;&amp;&lt;/a&gt;")),
    c(r#"{{ js "a'b\"<>=&" }}"#, D, out(r#"a\'b\"\u003C\u003E\u003D\u0026"#)),
    c("{{ urlquery .url }}", D, out("a+b%26c%3Dd%2Fe%3Ff%2A~")),
    c(r#"{{ urlquery "a" 1 2 }}"#, D, out("a1+2")),
    c("{{ call .name }}", D, err("non-function")),
    c("{{ nosuch 1 }}", D, err(r#"function "nosuch" not defined"#)),
    // Sprig helpers, as Go's json and base64 packages write them.
    c("{{ toJson .labels }}", D, out(r#"{"a":"1","b":"2","c":"3"}"#)),
    c("{{ toJson .mixed }}", D, out(r#"[1,"two",3.5,true,null]"#)),
    c("{{ toJson .html }}", D, out(r#""\u003ca href='x'\u003e\u0026\u003c/a\u003e""#)),
    c("{{ toJson .big }} {{ toJson 1e21 }} {{ toJson .nested }}", D, out(r#"1500000 1e+21 {"inner":{"value":"deep"}}"#)),
    c("{{ b64enc .name }} {{ b64dec .b64 }}", D, out("V29ybGQ= hello")),
    c(r#"{{ b64dec "!!" }}"#, D, err("illegal base64 data")),
    // Parse errors.
    c("{{ .name ", D, err("unclosed action")),
    c("{{ if .t }}x", D, err("missing {{end}}")),
    c("{{ end }}", D, err("unexpected {{end}}")),
    c("{{ else }}", D, err("unexpected {{else}}")),
    c("{{ ( .name }}", D, err("unclosed left paren")),
    c("{{ .name ) }}", D, err("unexpected right paren")),
    c(r#"{{ "unterminated }}"#, D, err("unterminated quoted string")),
    c("{{ $x = 1 }}", D, err(r#"undefined variable "$x""#)),
];

/// Features of Go releases after 1.22, which HyperFleet builds with.
#[rustfmt::skip]
const NEWER_GO: &[Case] = &[
    // Go 1.23: {{else with}}.
    c("{{ with .empty }}a{{ else with .name }}{{ . }}{{ end }}", D, out("World")),
    c("{{ with .empty }}a{{ else with .zero }}b{{ else }}c{{ end }}", D, out("c")),
    // Go 1.24: range over an int.
    c("{{ range 3 }}{{ . }}{{ end }}", D, out("012")),
    c("{{ range $i := .generation }}{{ $i }}{{ end }}", D, out("01234")),
    c("{{ range 0 }}x{{ else }}none{{ end }}", D, out("none")),
    c("{{ range $i, $v := 3 }}{{ end }}", D, err("can't use 3 to iterate over more than one variable")),
    // Go 1.22: encoding/json writes \b and \f short.
    c(r#"{{ toJson "\b\f" }}"#, D, out(r#""\b\f""#)),
];

/// `date` over times given as RFC 3339 strings (HyperFleet's `date` takes a `time.Time`, such
/// as `now`'s): the layouts are Go's.
#[rustfmt::skip]
const DATES: &[Case] = &[
    c(r#"{{ date "2006-01-02" .ts }}"#, D, out("2026-03-07")),
    c(r#"{{ .ts | date "2006-01-02T15:04:05Z07:00" }}"#, D, out("2026-03-07T14:05:09Z")),
    c(r#"{{ .ts | date "2006-01-02T15:04:05-07:00" }}"#, D, out("2026-03-07T14:05:09+00:00")),
    c(r#"{{ dateFormat "Jan 2, 2006 at 3:04pm (MST)" .ts }}"#, D, out("Mar 7, 2026 at 2:05pm (UTC)")),
    c(r#"{{ date "Monday 02/01/06 15:04:05.000" .ts }}"#, D, out("Saturday 07/03/26 14:05:09.120")),
    c(r#"{{ date "2006-01-02 15:04:05.999999999 -0700" .ts }}"#, D, out("2026-03-07 14:05:09.12 +0000")),
    c(r#"{{ date "Month _2 __2 002 _2006" .ts }}"#, D, out("Month  7  66 066 _2026")),
    c(r#"{{ date "January Mon 3PM .000000 ,999" .ts }}"#, D, out("March Sat 2PM .120000 ,12")),
    c(r#"{{ date "2006" .name }}"#, D, err("is not a time")),
];

/// Go features refused when a template loads, with a message that says so: named templates
/// and loop control (Go runs these).
#[rustfmt::skip]
const REFUSED: &[Case] = &[
    c(r#"{{ define "x" }}y{{ end }}"#, D, err("{{define}} is not supported")),
    c(r#"{{ template "x" }}"#, D, err("{{template}} is not supported")),
    c(r#"{{ block "x" . }}y{{ end }}"#, D, err("{{block}} is not supported")),
    c("{{ range .list }}{{ break }}{{ end }}", D, err("{{break}} is not supported")),
    c("{{ range .list }}{{ continue }}{{ end }}", D, err("{{continue}} is not supported")),
];

/// Where this port deliberately differs from Go, with what Go does instead.
#[rustfmt::skip]
const DEVIATIONS: &[Case] = &[
    // A JSON number has no Go type of its own: HyperFleet hands its templates float64 for
    // numbers from API responses, where this port sees an integer. So an integer and a float
    // compare by value (Go: "incompatible types for comparison") ...
    c("{{ eq 1 1.0 }} {{ lt .generation 5.5 }} {{ gt .clusterData 0.0 }}", r#"{"generation": 5, "clusterData": 3}"#, out("true true true")),
    // ... and float verbs take integers (Go: %!f(int=5)).
    c(r#"{{ printf "%.1f|%e" .generation 2 }}"#, D, out("5.0|2.000000e+00")),
    // `date` also takes RFC 3339 strings and Unix seconds (Go: wrong type for value).
    c(r#"{{ date "2006-01-02" 1772892309 }}"#, D, out("2026-03-07")),
    // `float` of a string that parses to Inf or NaN fails: JSON cannot hold it (Go: +Inf).
    c(r#"{{ float "1e400" }}"#, D, err("cannot hold")),
    // Methods of times are not supported (Go calls time.Time.Year).
    c("{{ now.Year }}", D, err("time methods are not supported")),
];

fn run(cases: &[Case], table: &str) -> usize {
    let mut failures = Vec::new();
    for case in cases {
        let data: Value = serde_json::from_str(case.data)
            .unwrap_or_else(|e| panic!("{table}: bad data for {:?}: {e}", case.template));
        let result = Template::parse(case.template).and_then(|t| t.render(&data));
        match (&case.expect, result) {
            (Expect::Out(want), Ok(got)) if got == *want => {}
            (Expect::Err(fragment), Err(e)) if e.to_string().contains(fragment) => {}
            (Expect::Out(want), got) => {
                failures.push(format!(
                    "{:?}\n    want {want:?}\n    got  {got:?}",
                    case.template
                ));
            }
            (Expect::Err(fragment), got) => failures.push(format!(
                "{:?}\n    want an error containing {fragment:?}\n    got  {got:?}",
                case.template
            )),
        }
    }
    assert!(
        failures.is_empty(),
        "{table}: {} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
    cases.len()
}

#[test]
fn go_text_template() {
    run(GO, "GO");
}

#[test]
fn newer_go_releases() {
    run(NEWER_GO, "NEWER_GO");
}

#[test]
fn date_layouts() {
    run(DATES, "DATES");
}

#[test]
fn refused_go_features() {
    run(REFUSED, "REFUSED");
}

#[test]
fn deliberate_deviations() {
    run(DEVIATIONS, "DEVIATIONS");
}

#[test]
fn now_is_a_time_in_utc() {
    let data: Value = serde_json::from_str(D).unwrap();
    let out = Template::parse(r#"{{ now | date "2006-01-02T15:04:05Z07:00" }}"#)
        .unwrap()
        .render(&data)
        .unwrap();
    assert!(chrono::DateTime::parse_from_rfc3339(&out).is_ok(), "{out}");
    assert!(out.ends_with('Z'), "{out}");
    let year = Template::parse(r#"{{ now | date "2006" | int }}"#)
        .unwrap()
        .render(&data)
        .unwrap();
    assert!(year.parse::<i32>().is_ok_and(|y| y >= 2024), "{year}");
}

/// The task-config snippets of HyperFleet's new functions, as a config would use them.
#[test]
fn hyperfleet_new_functions_in_task_configs() {
    let data: Value = serde_json::from_str(
        r#"{"imageTag": "v4.16.2", "manifestFile": "cluster.yaml", "cpuRequest": "0.5", "replicas": "3"}"#,
    )
    .unwrap();
    for (source, expected) in [
        (r#"{{ trimPrefix .imageTag "v" }}"#, "4.16.2"),
        (r#"{{ trimSuffix .manifestFile ".yaml" }}"#, "cluster"),
        (r#"{{ float .cpuRequest }}"#, "0.5"),
        (r#"{{ printf "%.2f" (float .cpuRequest) }}"#, "0.50"),
        (
            r#"{{ if gt (float .replicas) 2.0 }}ha{{ else }}single{{ end }}"#,
            "ha",
        ),
    ] {
        let got = Template::parse(source).unwrap().render(&data).unwrap();
        assert_eq!(got, expected, "{source}");
    }
}

//! Property tests: [`RowDecoder::decode_json`] (the fast path, falling back on the serde path) and
//! `decode_json_serde` (the serde path alone, the reference) agree on every event: the same row, bit for bit, and
//! the same result, error field and message included. Events are random (keys in any order, extra fields,
//! nested junk, whitespace variants, numbers in every JSON form, strings with every kind of escape, categorical
//! labels, escaped feature names), and random byte-level corruptions of valid events. Also checks that numbers
//! are read correctly rounded (as `str::parse::<f64>` reads them), which rests on serde_json's `float_roundtrip`.
//!
//! The decoders capture fields too ([`CAPTURED`]: features or not, one named twice), which events hold any
//! number of times, with any value: on every event that decodes, each captured span must be the exact text of
//! the value of the first top-level occurrence of its key as serde_json reads the keys ([`spans_agree`]), and
//! the fast path's spans must be those `capture.rs` finds.

use std::fmt;
use std::ops::Range;

use proptest::prelude::*;
use proptest::sample::{select, Index};
use serde::de::{Deserializer, IgnoredAny, MapAccess, Visitor};

use super::*;
use crate::schema::FeatureSpec;

fn categorical(name: &str, categories: &[&str]) -> FeatureSpec {
    FeatureSpec {
        name: name.into(),
        kind: FeatureKind::Categorical {
            categories: categories.iter().map(|c| c.to_string()).collect(),
        },
    }
}

/// Names that need escapes or are not ASCII; a categorical feature with a duplicate and numeric-looking labels;
/// one with no known categories.
const NAMES: [&str; 9] = [
    "a",
    "b",
    "x0",
    "x1",
    "c",
    "k",
    "q\"uote",
    "naïve",
    "tab\tname",
];

/// Fields the decoders capture: features, other fields, an escaped name, a repeated one, the empty name.
const CAPTURED: [&str; 9] = [
    "id",
    "ts",
    "a",
    "naïve",
    "k",
    "pass\\through",
    "id",
    "é😀",
    "",
];

fn decoder(reject: bool) -> RowDecoder {
    let mut specs: Vec<FeatureSpec> = NAMES.iter().map(|n| FeatureSpec::numeric(*n)).collect();
    specs[4] = categorical("c", &["x", "y", "é", "x", " 7 ", "1e3", ""]);
    specs[5] = categorical("k", &[]);
    let policy = if reject {
        MissingPolicy::Reject
    } else {
        MissingPolicy::Allow
    };
    RowDecoder::new(FeatureSchema::new(specs).unwrap(), policy).with_captured_fields(&CAPTURED)
}

/// A JSON value; strings and keys are kept as the text between their quotes.
#[derive(Debug, Clone)]
enum J {
    Null,
    Bool(bool),
    Num(String),
    Str(String),
    Arr(Vec<J>),
    Obj(Vec<(String, J)>),
}

/// Writes `s` as a JSON string body, each character raw or escaped as `modes` says (cycling); escapes where JSON
/// requires them.
fn encode(s: &str, modes: &[u8]) -> String {
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        let mode = modes.get(i % modes.len().max(1)).copied().unwrap_or(0) % 4;
        let short = match c {
            '"' => Some("\\\""),
            '\\' => Some("\\\\"),
            '/' => Some("\\/"),
            '\u{8}' => Some("\\b"),
            '\u{c}' => Some("\\f"),
            '\n' => Some("\\n"),
            '\r' => Some("\\r"),
            '\t' => Some("\\t"),
            _ => None,
        };
        let must_escape = c == '"' || c == '\\' || c < ' ';
        match (mode, short) {
            (0, _) if !must_escape => out.push(c),
            (1, Some(e)) => out.push_str(e),
            _ => {
                let mut units = [0u16; 2];
                for u in c.encode_utf16(&mut units) {
                    if mode == 3 {
                        out.push_str(&format!("\\u{u:04X}"));
                    } else {
                        out.push_str(&format!("\\u{u:04x}"));
                    }
                }
            }
        }
    }
    out
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z0-9 ]{0,8}",
        "\\PC{0,6}",
        "[\\x00-\\x1f\"\\\\/\u{7f}é😀]{1,4}",
        select(
            &[
                "x",
                "y",
                "é",
                " 7 ",
                "1e3",
                "",
                "zebra",
                " 12.5 ",
                "-0",
                "NaN",
                "inf",
                "-inf",
                "1e400",
                "0x10",
                "1_000",
                "+3",
                ".5",
                "5.",
                "\u{a0}4\u{a0}",
                "\u{2003}8",
            ][..]
        )
        .prop_map(String::from),
    ]
}

/// Raw string bodies that are invalid or unusual: lone surrogates, bad escapes, control characters.
fn odd_body() -> impl Strategy<Value = String> {
    select(
        &[
            "\\ud800",
            "\\udc00x",
            "\\ud83d\\ude00",
            "\\uD83D\\uDE00",
            "\\ud83dx\\ude00",
            "\\ud83d\\u0041",
            "\\u12",
            "\\u12g4",
            "\\x",
            "\\a",
            "\\",
            "\u{1}",
            "\t",
            "\\u0000",
            "ab\\u00e9",
        ][..],
    )
    .prop_map(String::from)
}

fn string_body() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => (text(), prop::collection::vec(any::<u8>(), 0..6)).prop_map(|(s, m)| encode(&s, &m)),
        1 => odd_body(),
    ]
}

fn number() -> impl Strategy<Value = String> {
    let exp = prop_oneof![
        "[0-9]{1,3}",
        select(
            &[
                "308",
                "309",
                "324",
                "325",
                "22",
                "23",
                "0000000000000000000000400",
                "99999999999"
            ][..]
        )
        .prop_map(String::from),
    ];
    let structured = (
        any::<bool>(),
        prop_oneof!["0", "[1-9][0-9]{0,24}"],
        prop::option::of("[0-9]{1,25}"),
        prop::option::of((select(&["e", "E"][..]), select(&["", "+", "-"][..]), exp)),
    )
        .prop_map(|(neg, int, frac, exp)| {
            let mut s = if neg { "-".to_string() } else { String::new() };
            s.push_str(&int);
            if let Some(f) = frac {
                s.push('.');
                s.push_str(&f);
            }
            if let Some((e, sign, digits)) = exp {
                s.push_str(e);
                s.push_str(sign);
                s.push_str(&digits);
            }
            s
        });
    let float = (
        any::<f64>().prop_filter("finite", |v| v.is_finite()),
        0..3u8,
    )
        .prop_map(|(v, f)| match f {
            0 => format!("{v:?}"),
            1 => format!("{v:e}"),
            _ => format!("{v}"),
        });
    prop_oneof![
        4 => structured,
        3 => float,
        1 => any::<i64>().prop_map(|v| v.to_string()),
        1 => any::<u64>().prop_map(|v| v.to_string()),
        1 => select(&[
            "-0", "0", "-0.0", "1e400", "-1e400", "1e-400", "4.9e-324", "2.4703282292062327e-324",
            "2.4703282292062328e-324", "2.2250738585072011e-308", "1.7976931348623157e308",
            "1.7976931348623158e308", "1.7976931348623159e308", "9007199254740993", "9007199254740992.5",
            "18446744073709551615", "18446744073709551616", "-9223372036854775808", "-9223372036854775809",
            "0.1", "0.30000000000000004", "1e22", "1e23", "123456789012345678901234567890e-30",
        ][..])
        .prop_map(String::from),
    ]
}

fn leaf() -> impl Strategy<Value = J> {
    prop_oneof![
        1 => Just(J::Null),
        1 => any::<bool>().prop_map(J::Bool),
        5 => number().prop_map(J::Num),
        3 => string_body().prop_map(J::Str),
    ]
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => (select(&NAMES[..]), prop::collection::vec(any::<u8>(), 0..4))
            .prop_map(|(n, m)| encode(n, &m)),
        1 => string_body(),
    ]
}

fn value() -> impl Strategy<Value = J> {
    leaf().prop_recursive(4, 24, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(J::Arr),
            prop::collection::vec((key(), inner), 0..5).prop_map(J::Obj),
        ]
    })
}

/// Values a feature field mostly holds: numbers, nulls, booleans, labels and numbers as strings; sometimes
/// anything.
fn feature_value() -> impl Strategy<Value = J> {
    let typical = (
        any::<f64>().prop_filter("finite", |v| v.is_finite()),
        -1e6..1e6f64,
    )
        .prop_map(|(wide, narrow)| format!("{:?}", if wide.abs() < 1e300 { wide } else { narrow }));
    prop_oneof![
        20 => typical.prop_map(J::Num),
        10 => number().prop_map(J::Num),
        2 => Just(J::Null),
        2 => any::<bool>().prop_map(J::Bool),
        4 => (
            select(&["x", "y", "é", " 7 ", "1e3", "", "zebra", " 12.5 ", "-0", "2", "1e400", r"\u00e9"][..]),
            prop::collection::vec(any::<u8>(), 0..3),
        )
            .prop_map(|(s, m)| J::Str(if s.starts_with('\\') { s.to_string() } else { encode(s, &m) })),
        1 => value(),
    ]
}

/// An event: a top-level object of feature fields (names escaped or not) and extra fields of any value.
fn event() -> impl Strategy<Value = J> {
    let feature = (
        select(&NAMES[..]),
        prop::collection::vec(0..2u8, 0..4),
        feature_value(),
    )
        .prop_map(|(n, m, v)| (encode(n, &m), v));
    let extra_key = prop_oneof![1 => key(), 8 => string_body()];
    let extra = (extra_key, value());
    let captured = (
        select(&CAPTURED[..]),
        prop::collection::vec(any::<u8>(), 0..4),
        value(),
    )
        .prop_map(|(n, m, v)| (encode(n, &m), v));
    prop::collection::vec(prop_oneof![6 => feature, 2 => extra, 1 => captured], 0..14)
        .prop_map(J::Obj)
}

const WS: [&str; 8] = ["", "", "", " ", "  ", "\n", "\t", "\r\n "];

fn render(j: &J, ws: &[u8], at: &mut usize, out: &mut String) {
    let space = |out: &mut String, at: &mut usize| {
        *at += 1;
        out.push_str(WS[ws.get(*at % ws.len().max(1)).copied().unwrap_or(0) as usize % WS.len()]);
    };
    match j {
        J::Null => out.push_str("null"),
        J::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        J::Num(n) => out.push_str(n),
        J::Str(s) => {
            out.push('"');
            out.push_str(s);
            out.push('"');
        }
        J::Arr(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                space(out, at);
                render(item, ws, at, out);
                space(out, at);
            }
            out.push(']');
        }
        J::Obj(fields) => {
            out.push('{');
            space(out, at);
            for (i, (k, v)) in fields.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                    space(out, at);
                }
                out.push('"');
                out.push_str(k);
                out.push('"');
                space(out, at);
                out.push(':');
                space(out, at);
                render(v, ws, at, out);
                space(out, at);
            }
            out.push('}');
        }
    }
}

fn rendered_event() -> impl Strategy<Value = Vec<u8>> {
    (event(), prop::collection::vec(any::<u8>(), 0..16)).prop_map(|(e, ws)| {
        let mut out = String::new();
        let mut at = 0;
        out.push_str(WS[ws.first().copied().unwrap_or(0) as usize % WS.len()]);
        render(&e, &ws, &mut at, &mut out);
        out.push_str(WS[ws.last().copied().unwrap_or(0) as usize % WS.len()]);
        out.into_bytes()
    })
}

#[derive(Debug, Clone)]
enum Mutation {
    Delete(Index),
    Insert(Index, u8),
    Replace(Index, u8),
    Truncate(Index),
    Duplicate(Index, usize),
    /// Deletes (`None`) or replaces one of the bytes that structure JSON (brackets, commas, colons, quotes,
    /// backslashes, a number's `.`, `e` or sign), or the byte after it (`true`).
    Special(Index, bool, Option<u8>),
    /// Inserts a byte before one of those.
    InsertSpecial(Index, u8),
}

const SPECIAL: &[u8] = b"{}[],:\"\\.eE+-";

fn byte() -> impl Strategy<Value = u8> {
    prop_oneof![
        3 => select(&b"{}[],:\"\\/0123456789eE+-. ntfuabxdD\x00\x1f\x7f\x80\xbf\xc3\xe2\xed\xf0\xff"[..]),
        1 => any::<u8>(),
    ]
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        1 => any::<Index>().prop_map(Mutation::Delete),
        1 => (any::<Index>(), byte()).prop_map(|(i, b)| Mutation::Insert(i, b)),
        1 => (any::<Index>(), byte()).prop_map(|(i, b)| Mutation::Replace(i, b)),
        1 => any::<Index>().prop_map(Mutation::Truncate),
        1 => (any::<Index>(), 1..12usize).prop_map(|(i, n)| Mutation::Duplicate(i, n)),
        4 => (any::<Index>(), any::<bool>(), prop::option::of(byte()))
            .prop_map(|(i, next, b)| Mutation::Special(i, next, b)),
        2 => (any::<Index>(), byte()).prop_map(|(i, b)| Mutation::InsertSpecial(i, b)),
    ]
}

fn mutate(bytes: &mut Vec<u8>, m: &Mutation) {
    if bytes.is_empty() {
        return;
    }
    match m {
        Mutation::Delete(i) => {
            bytes.remove(i.index(bytes.len()));
        }
        Mutation::Insert(i, b) => bytes.insert(i.index(bytes.len() + 1), *b),
        Mutation::Replace(i, b) => {
            let i = i.index(bytes.len());
            bytes[i] = *b;
        }
        Mutation::Truncate(i) => bytes.truncate(i.index(bytes.len())),
        Mutation::Duplicate(i, n) => {
            let i = i.index(bytes.len());
            let piece = bytes[i..(i + n).min(bytes.len())].to_vec();
            bytes.splice(i..i, piece);
        }
        Mutation::Special(i, _, _) | Mutation::InsertSpecial(i, _) => {
            let special: Vec<usize> = (0..bytes.len())
                .filter(|&j| SPECIAL.contains(&bytes[j]))
                .collect();
            if special.is_empty() {
                return;
            }
            let j = special[i.index(special.len())];
            match *m {
                Mutation::InsertSpecial(_, b) => bytes.insert(j, b),
                Mutation::Special(_, next, Some(b)) => {
                    let j = (j + usize::from(next)).min(bytes.len() - 1);
                    bytes[j] = b;
                }
                _ => {
                    bytes.remove(j);
                }
            }
        }
    }
}

/// `PROPTEST_CASES` when set, else `default`.
pub(super) fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn bits(row: &[f64]) -> Vec<u64> {
    row.iter().map(|v| v.to_bits()).collect()
}

/// Both paths on one event: the same result and the same row bits; then the spans of [`CAPTURED`], checked.
fn agree(dec: &mut RowDecoder, json: &[u8]) -> Result<(), TestCaseError> {
    agree_capturing(dec, &CAPTURED, json)
}

/// [`agree`] for a decoder that captures `names`.
fn agree_capturing(dec: &mut RowDecoder, names: &[&str], json: &[u8]) -> Result<(), TestCaseError> {
    let n = dec.schema().len();
    let (mut fast, mut reference) = (vec![0.0; n], vec![1.0; n]);
    let got = dec.decode_json(json, &mut fast);
    let captured = dec.captured().to_vec();
    let want = dec.decode_json_serde(json, &mut reference);
    let shown = String::from_utf8_lossy(json);
    prop_assert_eq!(&got, &want, "event: {}", shown);
    prop_assert_eq!(bits(&fast), bits(&reference), "event: {}", shown);
    if got.is_err() {
        prop_assert!(captured.iter().all(Option::is_none), "event: {}", shown);
        return Ok(());
    }
    spans_agree(json, names, &captured)?;
    // `capture.rs` (the spans of events the serde path decodes) finds the same spans on every event that
    // decodes, not only on those the fast path hands over.
    let mut walked = vec![None; captured.len()];
    capture::spans(&dec.fast, json, &mut walked, &mut Vec::new());
    for &(i, j) in &dec.repeated {
        walked[i] = walked[j].clone();
    }
    prop_assert_eq!(&walked, &captured, "event: {}", shown);
    Ok(())
}

/// The top-level keys of a JSON object, in order, repeats included, unescaped by serde_json, which skips the
/// values as the serde path skips unknown fields; `None` if serde_json does not take it.
fn serde_keys(json: &[u8]) -> Option<Vec<String>> {
    struct Keys;
    impl<'de> Visitor<'de> for Keys {
        type Value = Vec<String>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("an object")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Vec<String>, A::Error> {
            let mut keys = Vec::new();
            while let Some(key) = map.next_key::<String>()? {
                map.next_value::<IgnoredAny>()?;
                keys.push(key);
            }
            Ok(keys)
        }
    }
    let mut de = serde_json::Deserializer::from_slice(json);
    let keys = de.deserialize_map(Keys).ok()?;
    de.end().ok()?;
    Some(keys)
}

fn is_ws(c: u8) -> bool {
    matches!(c, b' ' | b'\n' | b'\t' | b'\r')
}

/// Checks the spans captured from an event that decoded against serde_json: for each name, `None` when no
/// top-level key is the name, else exactly the text of the value of the key's first occurrence.
fn spans_agree(
    json: &[u8],
    names: &[&str],
    captured: &[Option<Range<usize>>],
) -> Result<(), TestCaseError> {
    let shown = String::from_utf8_lossy(json);
    let keys = serde_keys(json);
    prop_assert!(
        keys.is_some(),
        "serde_json refuses a decoded event: {}",
        shown
    );
    let keys = keys.unwrap_or_default();
    prop_assert_eq!(captured.len(), names.len());
    for (name, span) in names.iter().zip(captured) {
        let first = keys.iter().position(|k| k == name);
        let (first, span) = match (first, span) {
            (None, None) => continue,
            (Some(first), Some(span)) => (first, span.clone()),
            _ => {
                return Err(TestCaseError::fail(format!(
                    "{name:?}: first occurrence {first:?}, captured {span:?}, event: {shown}"
                )))
            }
        };
        prop_assert!(
            span.start < span.end && span.end <= json.len(),
            "{:?}",
            span
        );
        let text = &json[span.clone()];
        let last = text.len() - 1;
        // One whole JSON value with no whitespace around it ...
        prop_assert!(
            !is_ws(text[0]) && !is_ws(text[last]),
            "{:?}: {}",
            name,
            shown
        );
        prop_assert!(
            serde_json::from_slice::<IgnoredAny>(text).is_ok(),
            "{:?}: {}",
            name,
            shown
        );
        // ... and not the start of a longer number: the field ends there ...
        let after = json[span.end..].iter().copied().find(|&c| !is_ws(c));
        prop_assert!(matches!(after, Some(b',' | b'}')), "{:?}: {}", name, shown);
        // ... and begins where the value of the key's first occurrence at the top level does: cut there and
        // closed with `null}`, the event has exactly the keys up to that one.
        let mut cut = json[..span.start].to_vec();
        cut.extend_from_slice(b"null}");
        let cut_keys = serde_keys(&cut);
        prop_assert_eq!(
            cut_keys.as_deref(),
            Some(&keys[..=first]),
            "{:?}: {}",
            name,
            shown
        );
    }
    Ok(())
}

proptest! {
    // 4000 cases each; PROPTEST_CASES=1000000 for a long run.
    #![proptest_config(ProptestConfig::with_cases(cases(4000)))]

    #[test]
    fn random_events_agree(json in rendered_event(), reject in prop::bool::weighted(0.25)) {
        agree(&mut decoder(reject), &json)?;
    }

    #[test]
    fn corrupted_events_agree(
        json in rendered_event(),
        mutations in prop::collection::vec(mutation(), 1..4),
        reject in prop::bool::weighted(0.25),
    ) {
        let mut json = json;
        for m in &mutations {
            mutate(&mut json, m);
        }
        agree(&mut decoder(reject), &json)?;
    }

    #[test]
    fn numbers_are_correctly_rounded(n in number(), ws in select(&WS[..])) {
        let json = format!("{{\"a\":{ws}{n}{ws}}}");
        let mut dec = decoder(false);
        agree(&mut dec, json.as_bytes())?;
        let mut row = vec![0.0; NAMES.len()];
        let expected = n.parse::<f64>().unwrap();
        match dec.decode_json(json.as_bytes(), &mut row) {
            Ok(()) => prop_assert_eq!(row[0].to_bits(), expected.to_bits(), "{}", n),
            Err(e) => {
                prop_assert!(expected.is_infinite(), "{}: {}", n, e);
                prop_assert!(e.message.contains("number out of range"), "{}: {}", n, e);
            }
        }
    }
}

/// The bench events: both paths agree, and every number is `str::parse`'s.
#[test]
fn bench_fixture_agrees_and_is_correctly_rounded() {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/bench/rows.jsonl");
    let lines = std::fs::read_to_string(path).unwrap();
    let names: Vec<String> = (0..30).map(|i| format!("x{i}")).collect();
    let captured = ["x29", "x0", "id", "x0"];
    let mut dec = RowDecoder::new(
        FeatureSchema::numeric(&names).unwrap(),
        MissingPolicy::Reject,
    )
    .with_captured_fields(&captured);
    let mut row = vec![0.0; 30];
    for line in lines.lines() {
        agree_capturing(&mut dec, &captured, line.as_bytes()).unwrap();
        dec.decode_json(line.as_bytes(), &mut row).unwrap();
        let map: serde_json::Map<String, serde_json::Value> = serde_json::from_str(line).unwrap();
        for (i, name) in names.iter().enumerate() {
            let text = line.split(&format!("\"{name}\": ")).nth(1).unwrap();
            let text = &text[..text.find([',', '}']).unwrap()];
            assert_eq!(
                row[i].to_bits(),
                text.parse::<f64>().unwrap().to_bits(),
                "{text}"
            );
            assert!(map.contains_key(name));
        }
    }
}

/// Hand-picked events where the fast path has to stop and leave the error to the serde path.
#[test]
fn hand_picked_events_agree() {
    let events: &[&[u8]] = &[
        br#"{"a": 1, "a": null}"#,
        br#"{"a": null, "a": 2}"#,
        br#"{"c": "x"}"#,
        br#"{"c": "\u00e9", "k": "3", "b": " 4 "}"#,
        br#"{"c": "1e3", "k": "1e3"}"#,
        br#"{"k": "x"}"#,
        br#"{"q\"uote": 1, "na\u00efve": 2, "tab\tname": 3}"#,
        br#"{"a": "\ud800"}"#,
        br#"{"zz": "\ud800"}"#,
        b"{\"zz\": \"\xff\"}",
        b"{\"\xff\": 1}",
        b"{\"a\": \"\xc3\"}",
        b"\xef\xbb\xbf{}",
        br#"{"a": 01}"#,
        br#"{"a": 1.}"#,
        br#"{"a": .5}"#,
        br#"{"a": -}"#,
        br#"{"a": 1e}"#,
        br#"{"a": 1e+}"#,
        br#"{"a": tru}"#,
        br#"{"a": nul}"#,
        br#"{"a": 1 "b": 2}"#,
        br#"{"a" 1}"#,
        br#"{a: 1}"#,
        br#"{"a": 1,}"#,
        br#"{,}"#,
        br#"{"zz": [1,]}"#,
        br#"{"zz": {"k": 1,}}"#,
        br#"{"zz": {1: 1}}"#,
        br#"{"zz": {"k" 1}}"#,
        br#"{"zz": {"k": 1 "j": 2}}"#,
        br#"{"zz": "\a"}"#,
        br#"{"zz": [}"#,
        br#"{"zz": {]}"#,
        br#"{"a": 1}}"#,
        br#"{"a": 1} {"#,
        br#"{"a": {}}"#,
        br#"{"a": []}"#,
        br#"{"a": "NaN"}"#,
        br#"{"a": "inf"}"#,
        br#"{"a": 1e309}"#,
        br#"{"zz": 1e309}"#,
        br#"{"a": -1e309}"#,
        b"",
        b"   ",
        b"null",
        b"[]",
        b"\"a\"",
        b"{\"a\": 1}\x00",
        b"{\"a\":\x0c1}",
    ];
    for reject in [false, true] {
        let mut dec = decoder(reject);
        for json in events {
            agree(&mut dec, json).unwrap();
        }
        let deep = format!("{{\"zz\": {}1{}}}", "[".repeat(200), "]".repeat(200));
        agree(&mut dec, deep.as_bytes()).unwrap();
        let deep_bad = format!("{{\"zz\": {}1{}}}", "[".repeat(200), "]".repeat(199));
        agree(&mut dec, deep_bad.as_bytes()).unwrap();
    }
}

/// An event, whether the fast path takes it, and the text captured for each of [`CAPTURED`].
type Case<'a> = (&'a [u8], bool, [Option<&'a str>; 9]);

/// Captured fields on hand-picked events, some of which only the serde path decodes (nesting deeper than the
/// fast path follows, a lone surrogate or invalid UTF-8 in a string no feature reads).
#[test]
fn hand_picked_captures() {
    let deep = format!("{}1{}", "[".repeat(100), "]".repeat(100));
    let deep_event = format!(r#"{{"ts": {deep}, "a": 1}}"#);
    #[rustfmt::skip]
    let cases: &[Case] = &[
        // event, taken by the fast path, then the text captured for each of `CAPTURED`
        (br#"{"id": "e1", "a": 1, "id": "e2", "ts": 5}"#, true,
            [Some(r#""e1""#), Some("5"), Some("1"), None, None, None, Some(r#""e1""#), None, None]),
        (br#" { "\u0069d" : {"x": [1, "]}\""]} ,"a":-0.5e1 , "ts":null}"#, true,
            [Some(r#"{"x": [1, "]}\""]}"#), Some("null"), Some("-0.5e1"), None, None, None,
             Some(r#"{"x": [1, "]}\""]}"#), None, None]),
        (br#"{"k": "3", "na\u00efve": " 7 ", "pass\\through": [], "\u00e9\ud83d\ude00": "\ud83d\ude00", "": {}}"#, true,
            [None, None, None, Some(r#"" 7 ""#), Some(r#""3""#), Some("[]"), None,
             Some(r#""\ud83d\ude00""#), Some("{}")]),
        (deep_event.as_bytes(), false,
            [None, Some(deep.as_str()), Some("1"), None, None, None, None, None, None]),
        (br#"{"id": "\ud800", "ts": 7, "a": 1}"#, false,
            [Some(r#""\ud800""#), Some("7"), Some("1"), None, None, None, Some(r#""\ud800""#), None, None]),
        (b"{\"id\": {\"\xff\": 2}, \"a\": 1, \"id\": 3}", false,
            [Some("{\"\u{fffd}\": 2}"), None, Some("1"), None, None, None, Some("{\"\u{fffd}\": 2}"), None, None]),
        (br#"{"id": 1, "a": [1]}"#, false, [None; 9]),
        (br#"{"id": 1, "a": 1, }"#, false, [None; 9]),
    ];
    for (json, fast_path, expected) in cases {
        let shown = String::from_utf8_lossy(json);
        let mut dec = decoder(false);
        let mut row = vec![0.0; NAMES.len()];
        assert_eq!(
            fast::decode(&mut dec, json, &mut row),
            *fast_path,
            "{shown}"
        );
        agree(&mut dec, json).unwrap();
        let _ = dec.decode_json(json, &mut row);
        let got: Vec<Option<String>> = dec
            .captured()
            .iter()
            .map(|s| {
                s.clone()
                    .map(|r| String::from_utf8_lossy(&json[r]).into_owned())
            })
            .collect();
        let expected: Vec<Option<String>> = expected.iter().map(|e| e.map(String::from)).collect();
        assert_eq!(got, expected, "{shown}");
    }
}

//! The captured fields' spans (see [`RowDecoder::with_captured_fields`]) of an event the fast path handed over
//! to the serde path and that decoded there, so that is a JSON object serde_json accepts (even though it may
//! nest deeper than the fast path follows, or hold lone surrogates or invalid UTF-8 in strings nobody reads).
//!
//! Only the top level is walked for real: keys are unescaped as the fast path does and looked up in the same
//! table; values are skipped by their structure alone (strings to their closing quote, arrays and objects to
//! the matching bracket), without recursion, which is enough on a valid document. It never panics, whatever the
//! input; on one that is not valid JSON it stops and leaves the fields not found yet uncaptured.

use std::ops::Range;

use super::fast::{unescape, Tables};

/// Fills `captured` (one slot per captured name) with the span of the first value of each captured field in
/// `json`, and `None` for those absent.
pub(super) fn spans(
    t: &Tables,
    json: &[u8],
    captured: &mut [Option<Range<usize>>],
    scratch: &mut Vec<u8>,
) {
    captured.fill(None);
    let b = json;
    let mut i = ws(b, 0);
    if b.get(i) != Some(&b'{') {
        return;
    }
    i = ws(b, i + 1);
    if b.get(i) == Some(&b'}') {
        return;
    }
    loop {
        if b.get(i) != Some(&b'"') {
            return;
        }
        let Some(end) = string_end(b, i + 1) else {
            return;
        };
        let Some(raw) = b.get(i + 1..end - 1) else {
            return;
        };
        let field = if raw.contains(&b'\\') {
            unescape(raw, scratch).and_then(|key| t.field(key.as_bytes()))
        } else {
            t.field(raw)
        };
        i = ws(b, end);
        if b.get(i) != Some(&b':') {
            return;
        }
        let start = ws(b, i + 1);
        let Some(stop) = value_end(b, start) else {
            return;
        };
        if let Some(span) = field
            .and_then(|f| f.capture())
            .and_then(|j| captured.get_mut(j))
        {
            span.get_or_insert(start..stop);
        }
        i = ws(b, stop);
        if b.get(i) != Some(&b',') {
            return;
        }
        i = ws(b, i + 1);
    }
}

/// The index of the first byte at or after `i` that is not JSON whitespace.
fn ws(b: &[u8], mut i: usize) -> usize {
    while let Some(b' ' | b'\n' | b'\t' | b'\r') = b.get(i) {
        i += 1;
    }
    i
}

/// The index after the closing quote of the string whose body starts at `i`.
fn string_end(b: &[u8], mut i: usize) -> Option<usize> {
    loop {
        match *b.get(i)? {
            b'"' => return Some(i + 1),
            b'\\' => i += 2,
            _ => i += 1,
        }
    }
}

/// The end of the value of an object field starting at `i`: the first whitespace, comma or closing bracket
/// outside any string, array or object.
fn value_end(b: &[u8], mut i: usize) -> Option<usize> {
    let mut depth = 0usize;
    loop {
        match *b.get(i)? {
            b'"' => i = string_end(b, i + 1)?,
            b'[' | b'{' => {
                depth += 1;
                i += 1;
            }
            b']' | b'}' if depth > 0 => {
                depth -= 1;
                i += 1;
            }
            b' ' | b'\n' | b'\t' | b'\r' | b',' | b']' | b'}' if depth == 0 => return Some(i),
            _ => i += 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::FeatureSchema;

    fn run(json: &str) -> Vec<Option<String>> {
        let schema = FeatureSchema::numeric(&["a"]).unwrap();
        let t = Tables::new(&schema, &[(0, "id"), (1, "a"), (2, "é\"")]);
        let mut captured = vec![Some(0..0); 3];
        spans(&t, json.as_bytes(), &mut captured, &mut Vec::new());
        captured
            .into_iter()
            .map(|s| s.map(|r| json[r].to_string()))
            .collect()
    }

    #[test]
    fn finds_first_values_past_deep_and_odd_values() {
        let deep = format!("{}1{}", "[".repeat(300), "]".repeat(300));
        let json = format!(
            r#" {{ "x": {deep}, "\u0069d" :  {{"k": "\ud800 \"}}"}} , "id": 2, "a":-1.5e3 ,"é\"":"v"}} "#
        );
        let got = run(&json);
        assert_eq!(got[0].as_deref(), Some(r#"{"k": "\ud800 \"}"}"#));
        assert_eq!(got[1].as_deref(), Some("-1.5e3"));
        assert_eq!(got[2].as_deref(), Some(r#""v""#));
        assert_eq!(run("{}"), vec![None, None, None]);
    }

    #[test]
    fn stops_without_panicking_on_anything_invalid() {
        for (bad, id) in [
            ("", None),
            ("{", None),
            ("{\"", None),
            ("{\"id\"", None),
            ("{\"id\":", None),
            ("{\"id\":\"", None),
            ("{\"id\": 1", None),
            ("{\"id\": 1 x", Some("1")),
            ("{\"id\": 1,", Some("1")),
            ("{\"i\\", None),
            ("{\"\\u12\": 1}", None),
            ("[", None),
            ("{\"id\": [}", None),
            ("{\"id\": ]", Some("")),
            ("{\"a\": 1,", None),
        ] {
            assert_eq!(run(bad)[0].as_deref(), id, "{bad}");
        }
    }
}

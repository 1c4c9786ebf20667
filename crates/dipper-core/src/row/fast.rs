//! The fast path of [`RowDecoder::decode_json`]: one pass over the event's bytes, for the common case.
//!
//! Keys are looked up in a byte-string table straight from the input (first against the name of the column after
//! the last one found, since producers usually write fields in a fixed order); keys and strings with escapes are
//! unescaped into the decoder's scratch buffer. Numbers are converted to the nearest f64 exactly (`number.rs`).
//! Ignored values are checked as strictly as serde_json checks them, or more. The same table names the captured
//! fields (see [`RowDecoder::with_captured_fields`]): the span of the first value of each is recorded on the way.
//!
//! The scanner gives up (returns `None`) on anything it does not handle with certainty: any syntax error,
//! control characters, invalid UTF-8, lone surrogates in `\u` escapes, numbers out of range, nesting deeper than
//! [`MAX_DEPTH`], values that are errors for the feature (arrays, objects, non-numeric strings). The caller then
//! decodes the event again from the start with the serde path, which decides and words the error.

use std::ops::Range;

use super::names::{same, NameTable};
use super::number;
use super::RowDecoder;
use crate::schema::{FeatureKind, FeatureSchema};

/// What a top-level key is to the decoder: the column it fills and the captured field it is, each when it is one.
#[derive(Debug, Clone, Copy)]
pub(super) struct Field {
    column: u32,
    capture: u32,
}

impl Field {
    /// Marks the absence of a column or a capture.
    const NONE: u32 = u32::MAX;

    #[inline]
    fn column(self) -> Option<usize> {
        (self.column != Self::NONE).then_some(self.column as usize)
    }

    #[inline]
    pub(super) fn capture(self) -> Option<usize> {
        (self.capture != Self::NONE).then_some(self.capture as usize)
    }
}

fn index(i: usize) -> u32 {
    u32::try_from(i)
        .ok()
        .filter(|&i| i != Field::NONE)
        .expect("fewer than 2^32 - 1 names")
}

/// Lookup tables of the fast path, built once per decoder.
#[derive(Debug, Clone)]
pub(super) struct Tables {
    /// Column and capture by field name. Entry `i` is column `i` (schema names are unique); the captured fields
    /// that are not features follow.
    names: NameTable<Field>,
    /// Category codes by label, for categorical features with known categories.
    categories: Vec<Option<NameTable<f64>>>,
    /// Whether each name is written as it is in JSON (no quote, backslash or control character), so that its
    /// bytes followed by a quote are the whole key.
    plain: Vec<bool>,
}

impl Tables {
    /// The tables of `schema`'s features and of the fields `captures` names, each with its index there (the
    /// names must be distinct).
    pub(super) fn new(schema: &FeatureSchema, captures: &[(usize, &str)]) -> Self {
        let mut entries: Vec<(&str, Field)> = schema
            .names()
            .enumerate()
            .map(|(i, n)| {
                let field = Field {
                    column: index(i),
                    capture: Field::NONE,
                };
                (n, field)
            })
            .collect();
        for &(j, name) in captures {
            match schema.index_of(name) {
                Some(c) => entries[c].1.capture = index(j),
                None => entries.push((
                    name,
                    Field {
                        column: Field::NONE,
                        capture: index(j),
                    },
                )),
            }
        }
        let names = NameTable::new(entries);
        let categories = schema
            .features()
            .iter()
            .map(|f| match &f.kind {
                FeatureKind::Categorical { categories } if !categories.is_empty() => {
                    Some(NameTable::new(
                        categories
                            .iter()
                            .enumerate()
                            .map(|(i, c)| (c.as_str(), i as f64)),
                    ))
                }
                _ => None,
            })
            .collect();
        let plain = schema
            .names()
            .map(|n| n.bytes().all(|c| CLASS[c as usize] == PLAIN || c >= 0x80))
            .collect();
        Tables {
            names,
            categories,
            plain,
        }
    }

    /// What the (unescaped) key `key` is to the decoder.
    #[inline]
    pub(super) fn field(&self, key: &[u8]) -> Option<Field> {
        self.names.get(key)
    }
}

/// Nesting of arrays and objects (the event's own object included) the scanner follows; deeper events go to the
/// serde path.
const MAX_DEPTH: u32 = 64;

/// Decodes `json` into `row`, the decoder's `seen` flags and its captured spans when it can do so with
/// certainty, and says whether it did. When it returns false, `row`, `seen` and the spans hold partial results
/// and the event must be decoded again with the serde path.
pub(super) fn decode(dec: &mut RowDecoder, json: &[u8], row: &mut [f64]) -> bool {
    row.fill(f64::NAN);
    dec.seen.fill(false);
    dec.captured.fill(None);
    let RowDecoder {
        fast,
        seen,
        captured,
        scratch,
        ..
    } = dec;
    let mut out = Out {
        row,
        seen,
        captured,
    };
    Scanner { b: json, i: 0 }
        .event(fast, &mut out, scratch)
        .is_some()
}

/// Where the scanner puts what it reads.
struct Out<'a> {
    row: &'a mut [f64],
    seen: &'a mut [bool],
    captured: &'a mut [Option<Range<usize>>],
}

/// Byte classes inside strings.
const PLAIN: u8 = 0;
const QUOTE: u8 = 1;
const BACKSLASH: u8 = 2;
const CONTROL: u8 = 3;
const HIGH: u8 = 4;

static CLASS: [u8; 256] = {
    let mut t = [PLAIN; 256];
    let mut c = 0;
    while c < 256 {
        t[c] = match c as u8 {
            b'"' => QUOTE,
            b'\\' => BACKSLASH,
            0..=0x1f => CONTROL,
            0x80..=0xff => HIGH,
            _ => PLAIN,
        };
        c += 1;
    }
    t
};

/// A string's body `b[start..end]` (the quotes excluded), with what the scan saw in it.
struct Str {
    start: usize,
    end: usize,
    escaped: bool,
    non_ascii: bool,
}

struct Scanner<'a> {
    b: &'a [u8],
    i: usize,
}

impl<'a> Scanner<'a> {
    #[inline]
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    #[inline]
    fn next(&mut self) -> Option<u8> {
        let c = self.peek()?;
        self.i += 1;
        Some(c)
    }

    #[inline]
    fn eat(&mut self, c: u8) -> Option<()> {
        (self.next()? == c).then_some(())
    }

    /// Skips JSON whitespace (the four bytes serde_json skips).
    #[inline]
    fn ws(&mut self) {
        while let Some(b' ' | b'\n' | b'\t' | b'\r') = self.peek() {
            self.i += 1;
        }
    }

    #[inline]
    fn literal(&mut self, lit: &[u8]) -> Option<()> {
        if self.b[self.i..].starts_with(lit) {
            self.i += lit.len();
            Some(())
        } else {
            None
        }
    }

    fn event(&mut self, t: &Tables, out: &mut Out, scratch: &mut Vec<u8>) -> Option<()> {
        self.ws();
        self.eat(b'{')?;
        self.ws();
        if self.peek()? == b'}' {
            self.i += 1;
        } else {
            // The column whose name is the likeliest next key: the one after the last found.
            let mut expect = 0;
            loop {
                self.eat(b'"')?;
                let field = match self.expected_key(t, expect) {
                    Some(f) => Some(f),
                    None => self.key(t, scratch)?,
                };
                self.ws();
                self.eat(b':')?;
                self.ws();
                match field {
                    Some(f) => {
                        let start = self.i;
                        match f.column() {
                            Some(c) => {
                                out.row[c] = self.value(t.categories[c].as_ref(), scratch)?;
                                out.seen[c] = true;
                                expect = c + 1;
                            }
                            None => self.skip_value(1)?,
                        }
                        if let Some(span) = f.capture().and_then(|j| out.captured.get_mut(j)) {
                            // The first occurrence wins.
                            span.get_or_insert(start..self.i);
                        }
                    }
                    None => self.skip_value(1)?,
                }
                self.ws();
                match self.next()? {
                    b',' => self.ws(),
                    b'}' => break,
                    _ => return None,
                }
            }
        }
        self.ws();
        (self.i == self.b.len()).then_some(())
    }

    /// Reads the key (after its opening quote) if it is the name of column `expect`, written as it is.
    #[inline]
    fn expected_key(&mut self, t: &Tables, expect: usize) -> Option<Field> {
        if !*t.plain.get(expect)? {
            return None;
        }
        let name = t.names.key(expect);
        let end = self.i + name.len();
        if self.b.get(end) == Some(&b'"') && same(&self.b[self.i..end], name) {
            self.i = end + 1;
            Some(t.names.value(expect))
        } else {
            None
        }
    }

    /// Reads a key (after its opening quote) and finds what it is.
    #[inline]
    fn key(&mut self, t: &Tables, scratch: &mut Vec<u8>) -> Option<Option<Field>> {
        let s = self.string()?;
        let raw = &self.b[s.start..s.end];
        if s.escaped {
            let key = unescape(raw, scratch)?;
            return Some(t.field(key.as_bytes()));
        }
        let field = t.field(raw);
        // A key equal to a feature or captured name is valid UTF-8; any other must be checked.
        if field.is_none() && s.non_ascii {
            std::str::from_utf8(raw).ok()?;
        }
        Some(field)
    }

    /// Reads the value of a feature's field.
    #[inline]
    fn value(&mut self, cats: Option<&NameTable<f64>>, scratch: &mut Vec<u8>) -> Option<f64> {
        match self.peek()? {
            b'-' | b'0'..=b'9' => self.number(),
            b'"' => {
                self.i += 1;
                let s = self.string()?;
                let raw = &self.b[s.start..s.end];
                let text = if s.escaped {
                    unescape(raw, scratch)?
                } else {
                    std::str::from_utf8(raw).ok()?
                };
                string_value(cats, text)
            }
            b't' => self.literal(b"true").map(|()| 1.0),
            b'f' => self.literal(b"false").map(|()| 0.0),
            b'n' => self.literal(b"null").map(|()| f64::NAN),
            _ => None,
        }
    }

    /// Scans a string's body after its opening quote, up to and including the closing quote. Checks escapes
    /// (refusing surrogates) and refuses control characters; does not check UTF-8.
    #[inline]
    fn string(&mut self) -> Option<Str> {
        let b = self.b;
        let start = self.i;
        let mut i = start;
        let mut escaped = false;
        let mut non_ascii = false;
        loop {
            while i < b.len() && CLASS[b[i] as usize] == PLAIN {
                i += 1;
            }
            match CLASS[*b.get(i)? as usize] {
                QUOTE => break,
                BACKSLASH => {
                    escaped = true;
                    match *b.get(i + 1)? {
                        b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => i += 2,
                        b'u' => i += escape_len(&b[i..])?,
                        _ => return None,
                    }
                }
                HIGH => {
                    non_ascii = true;
                    i += 1;
                }
                _ => return None,
            }
        }
        self.i = i + 1;
        Some(Str {
            start,
            end: i,
            escaped,
            non_ascii,
        })
    }

    /// Skips a string after its opening quote, refusing invalid UTF-8 too.
    fn skip_string(&mut self) -> Option<()> {
        let s = self.string()?;
        if s.non_ascii {
            std::str::from_utf8(&self.b[s.start..s.end]).ok()?;
        }
        Some(())
    }

    /// Reads a number, correctly rounded; `None` when out of f64's range (an error for serde_json).
    #[inline]
    fn number(&mut self) -> Option<f64> {
        let (v, end) = number::read(self.b, self.i)?;
        self.i = end;
        Some(v)
    }

    /// Skips a value of a field no feature reads, `depth` being the number of enclosing arrays and objects.
    fn skip_value(&mut self, depth: u32) -> Option<()> {
        match self.peek()? {
            b'"' => {
                self.i += 1;
                self.skip_string()
            }
            b'-' | b'0'..=b'9' => {
                self.i = number::scan(self.b, self.i)?.1;
                Some(())
            }
            b't' => self.literal(b"true"),
            b'f' => self.literal(b"false"),
            b'n' => self.literal(b"null"),
            b'[' => {
                if depth >= MAX_DEPTH {
                    return None;
                }
                self.i += 1;
                self.ws();
                if self.peek()? == b']' {
                    self.i += 1;
                    return Some(());
                }
                loop {
                    self.skip_value(depth + 1)?;
                    self.ws();
                    match self.next()? {
                        b',' => self.ws(),
                        b']' => return Some(()),
                        _ => return None,
                    }
                }
            }
            b'{' => {
                if depth >= MAX_DEPTH {
                    return None;
                }
                self.i += 1;
                self.ws();
                if self.peek()? == b'}' {
                    self.i += 1;
                    return Some(());
                }
                loop {
                    self.eat(b'"')?;
                    self.skip_string()?;
                    self.ws();
                    self.eat(b':')?;
                    self.ws();
                    self.skip_value(depth + 1)?;
                    self.ws();
                    match self.next()? {
                        b',' => self.ws(),
                        b'}' => return Some(()),
                        _ => return None,
                    }
                }
            }
            _ => None,
        }
    }
}

/// The value of four hex digits.
#[inline]
fn hex4(h: &[u8]) -> Option<u32> {
    h.iter().try_fold(0u32, |acc, &c| {
        let d = (c as char).to_digit(16)?;
        Some(acc << 4 | d)
    })
}

/// The code point of the `\uXXXX` escape (or surrogate pair `\uXXXX\uXXXX`) at the start of `b`; `None` for a
/// lone surrogate.
#[inline]
fn unicode_escape(b: &[u8]) -> Option<u32> {
    let unit = hex4(b.get(2..6)?)?;
    match unit {
        0xd800..=0xdbff => {
            if b.get(6..8)? != b"\\u" {
                return None;
            }
            let low = hex4(b.get(8..12)?)?;
            (0xdc00..=0xdfff)
                .contains(&low)
                .then(|| 0x10000 + ((unit - 0xd800) << 10) + (low - 0xdc00))
        }
        0xdc00..=0xdfff => None,
        _ => Some(unit),
    }
}

/// The length of the `\u` escape at the start of `b` (12 for a surrogate pair); `None` if it is invalid or a
/// lone surrogate.
#[inline]
fn escape_len(b: &[u8]) -> Option<usize> {
    let c = unicode_escape(b)?;
    Some(if c >= 0x10000 { 12 } else { 6 })
}

/// Unescapes a string body already checked by [`Scanner::string`] into `out`; `None` if it is not valid UTF-8.
/// (On a body not checked, `None` also for invalid escapes and lone surrogates.)
pub(super) fn unescape<'s>(raw: &[u8], out: &'s mut Vec<u8>) -> Option<&'s str> {
    out.clear();
    let mut i = 0;
    while let Some(&c) = raw.get(i) {
        if c != b'\\' {
            out.push(c);
            i += 1;
            continue;
        }
        let byte = match *raw.get(i + 1)? {
            b'"' => b'"',
            b'\\' => b'\\',
            b'/' => b'/',
            b'b' => 0x08,
            b'f' => 0x0c,
            b'n' => b'\n',
            b'r' => b'\r',
            b't' => b'\t',
            b'u' => {
                let ch = char::from_u32(unicode_escape(&raw[i..])?)?;
                out.extend_from_slice(ch.encode_utf8(&mut [0; 4]).as_bytes());
                i += escape_len(&raw[i..])?;
                continue;
            }
            _ => return None,
        };
        out.push(byte);
        i += 2;
    }
    std::str::from_utf8(out).ok()
}

/// A string field's value, as the serde path reads it; `None` where that is an error.
#[inline]
fn string_value(cats: Option<&NameTable<f64>>, v: &str) -> Option<f64> {
    if let Some(code) = cats.and_then(|c| c.get(v.as_bytes())) {
        return Some(code);
    }
    match v.trim().parse::<f64>() {
        Ok(x) if x.is_finite() => Some(x),
        _ if cats.is_some() => Some(crate::UNKNOWN_CATEGORY),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::FeatureSpec;
    use crate::MissingPolicy;

    fn handled(dec: &mut RowDecoder, json: &str) -> bool {
        let mut row = vec![0.0; dec.schema().len()];
        decode(dec, json.as_bytes(), &mut row)
    }

    /// The fast path must take the common events itself, not hand them all to the serde path.
    #[test]
    fn typical_events_stay_on_the_fast_path() {
        let schema = FeatureSchema::new(vec![
            FeatureSpec::numeric("a"),
            FeatureSpec::numeric("b"),
            FeatureSpec {
                name: "c".into(),
                kind: FeatureKind::Categorical {
                    categories: vec!["x".into(), "y".into()],
                },
            },
            FeatureSpec::numeric("né"),
        ])
        .unwrap();
        let mut d = RowDecoder::new(schema, MissingPolicy::Allow);
        for ok in [
            r#"{}"#,
            r#" {"a": 1, "b": -2.5e-3, "c": "y", "né": null} "#,
            r#"{"c":"zebra","b":true,"a":"12.5","extra":{"k":[1,{"z":null}],"s":"caf\u00e9 \"q\" \\"}}"#,
            r#"{"\u0061": 1e300, "q\"k": [], "x": 1e400, "y": "\ud83d\ude00", "c": "\ud83d\ude00"}"#,
            r#"{"a": 0.30000000000000004, "b": 123456789012345678901234567890, "a": -0}"#,
        ] {
            assert!(handled(&mut d, ok), "{ok}");
        }
        for fallback in [
            r#"{"a": [1]}"#,
            r#"{"a": 1e400}"#,
            r#"{"a": "twelve"}"#,
            r#"{"c": "\ud83d"}"#,
            r#"{"y": "\ude00"}"#,
            r#"{"a": 1,}"#,
            r#"{"a": 1} x"#,
            r#"[1]"#,
            "{\"a\": \"\x01\"}",
        ] {
            assert!(!handled(&mut d, fallback), "{fallback}");
        }
        let lines = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../fixtures/bench/rows.jsonl"),
        )
        .unwrap();
        let names: Vec<String> = (0..30).map(|i| format!("x{i}")).collect();
        let mut d = RowDecoder::new(
            FeatureSchema::numeric(&names).unwrap(),
            MissingPolicy::Reject,
        );
        for line in lines.lines() {
            assert!(handled(&mut d, line), "{line}");
        }
    }
}

//! Decoding one JSON event into a numeric feature row, by field name, without building an intermediate map.
//!
//! Fields the schema does not name are skipped. A value is read as: a number as it is (correctly rounded to the
//! nearest f64, as `str::parse` does); `true`/`false` as 1/0; a string holding a number (`"12.5"`) as that number;
//! for a categorical feature with known categories, a string as the category's code (an unknown category is
//! missing). `null` or an absent field is missing (NaN) when the [`MissingPolicy`] allows it and an error naming
//! the field otherwise. Anything else (a non-numeric string, an array, an object, a non-finite number) is an error
//! naming the field.
//!
//! Two paths give the same results: a hand-written single-pass scanner over the bytes (`fast.rs`) for the common
//! case, and serde_json's streaming deserializer (`serde_path.rs`), which takes over, from the start of the event,
//! whenever the scanner meets anything it does not handle with certainty (any error, escapes it does not decode,
//! numbers out of range, ...), so error messages come from one place. Property tests (`equivalence.rs`) check
//! the two agree on random and corrupted events.
//!
//! A decoder can also note where in the event the values of a few other top-level fields are (an event id,
//! fields to pass through to the output, ...: [`RowDecoder::with_captured_fields`]), in the same pass, so that
//! the caller need not read the event again. Spans of events the serde path decoded come from `capture.rs`.

mod capture;
mod fast;
mod names;
mod number;
mod serde_path;

#[cfg(test)]
mod equivalence;

use std::collections::HashMap;
use std::ops::Range;

use crate::schema::{FeatureKind, FeatureSchema};

/// What to do with a feature that is absent or null.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MissingPolicy {
    /// The model defines missing-value handling: pass NaN.
    Allow,
    /// The model has no missing-value handling: an absent feature is an error.
    Reject,
}

/// Why an event could not be decoded; `field` names the feature when one is at fault.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{}{message}", field.as_ref().map(|f| format!("field '{f}': ")).unwrap_or_default())]
pub struct DecodeError {
    pub field: Option<String>,
    pub message: String,
}

impl DecodeError {
    fn field(field: &str, message: impl Into<String>) -> Self {
        DecodeError {
            field: Some(field.to_string()),
            message: message.into(),
        }
    }
}

/// Decodes JSON events into rows of the schema's columns. Holds reusable scratch space: one per worker.
#[derive(Debug, Clone)]
pub struct RowDecoder {
    schema: FeatureSchema,
    missing: MissingPolicy,
    /// Category codes by label, for the serde path.
    categories: Vec<Option<HashMap<String, f64>>>,
    /// Whether each column's field was present (null or not) in the event being decoded.
    seen: Vec<bool>,
    /// Name and category tables of the fast path.
    fast: fast::Tables,
    /// Unescaped keys and strings of the fast path.
    scratch: Vec<u8>,
    /// Per captured name: the span of its value in the event last decoded.
    captured: Vec<Option<Range<usize>>>,
    /// `(i, j)`: captured name `i` repeats name `j`, its first occurrence; only `j` is looked for.
    repeated: Vec<(usize, usize)>,
}

impl RowDecoder {
    pub fn new(schema: FeatureSchema, missing: MissingPolicy) -> Self {
        let categories = schema
            .features()
            .iter()
            .map(|f| match &f.kind {
                FeatureKind::Categorical { categories } if !categories.is_empty() => Some(
                    categories
                        .iter()
                        .enumerate()
                        .map(|(i, c)| (c.clone(), i as f64))
                        .collect::<HashMap<_, _>>(),
                ),
                _ => None,
            })
            .collect();
        let seen = vec![false; schema.len()];
        let fast = fast::Tables::new(&schema, &[]);
        RowDecoder {
            schema,
            missing,
            categories,
            seen,
            fast,
            scratch: Vec::new(),
            captured: Vec::new(),
            repeated: Vec::new(),
        }
    }

    /// The same decoder, also capturing the top-level fields `names` (replacing any captured before): each
    /// [`decode_json`](Self::decode_json) that succeeds notes where in the event the value of each is, for
    /// [`captured`](Self::captured). A key matches a name as a feature's does, once unescaped; when a field
    /// repeats in an event, its first occurrence is the one captured. A name may also be a feature's, or be
    /// given twice. Capturing costs no second pass over the event and no allocation.
    pub fn with_captured_fields<S: AsRef<str>>(mut self, names: &[S]) -> Self {
        let mut distinct: Vec<(usize, &str)> = Vec::new();
        self.repeated.clear();
        for (i, name) in names.iter().enumerate() {
            let name = name.as_ref();
            match distinct.iter().find(|(_, n)| *n == name) {
                Some(&(j, _)) => self.repeated.push((i, j)),
                None => distinct.push((i, name)),
            }
        }
        self.fast = fast::Tables::new(&self.schema, &distinct);
        self.captured = vec![None; names.len()];
        self
    }

    /// After a successful [`decode_json`](Self::decode_json), one entry per name given to
    /// [`with_captured_fields`](Self::with_captured_fields), in that order: the byte range of the field's
    /// value in the event (its JSON text exactly as written, without the whitespace around it; a string keeps
    /// its quotes and escapes), or `None` when the event has no such field. All `None` after a failed decode.
    pub fn captured(&self) -> &[Option<Range<usize>>] {
        &self.captured
    }

    pub fn schema(&self) -> &FeatureSchema {
        &self.schema
    }

    /// Decodes one JSON object into `row` (length = number of features).
    pub fn decode_json(&mut self, json: &[u8], row: &mut [f64]) -> Result<(), DecodeError> {
        assert_eq!(
            row.len(),
            self.schema.len(),
            "row buffer must have one slot per feature"
        );
        let result = if fast::decode(self, json, row) {
            self.check_missing(row)
        } else {
            let result = self.decode_json_serde(json, row);
            if result.is_ok() && !self.captured.is_empty() {
                capture::spans(&self.fast, json, &mut self.captured, &mut self.scratch);
            }
            result
        };
        if result.is_ok() {
            for &(i, j) in &self.repeated {
                self.captured[i] = self.captured[j].clone();
            }
        } else {
            self.captured.fill(None);
        }
        result
    }

    /// After a successful decode: with [`MissingPolicy::Reject`], the first missing or null feature is an error.
    fn check_missing(&self, row: &[f64]) -> Result<(), DecodeError> {
        if self.missing == MissingPolicy::Reject {
            for (i, (v, seen)) in row.iter().zip(&self.seen).enumerate() {
                if v.is_nan() {
                    let name = &self.schema.get(i).name;
                    let why = if *seen { "is null" } else { "is missing" };
                    return Err(DecodeError::field(
                        name,
                        format!("{why} and this model has no missing-value handling"),
                    ));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::FeatureSpec;

    fn decoder(policy: MissingPolicy) -> RowDecoder {
        let schema = FeatureSchema::new(vec![
            FeatureSpec::numeric("a"),
            FeatureSpec::numeric("b"),
            FeatureSpec {
                name: "c".into(),
                kind: FeatureKind::Categorical {
                    categories: vec!["x".into(), "y".into()],
                },
            },
        ])
        .unwrap();
        RowDecoder::new(schema, policy)
    }

    #[test]
    fn decodes_by_name_and_ignores_extra_fields() {
        let mut d = decoder(MissingPolicy::Allow);
        let mut row = [0.0; 3];
        d.decode_json(
            br#"{"zz": [1, {"q": 2}], "b": 2, "a": -1.5e1, "c": "y", "label": "fraud"}"#,
            &mut row,
        )
        .unwrap();
        assert_eq!(row, [-15.0, 2.0, 1.0]);
        d.decode_json(br#"{"a": "3.25", "b": true, "c": 0}"#, &mut row)
            .unwrap();
        assert_eq!(row, [3.25, 1.0, 0.0]);
        d.decode_json(br#"{"a": "3.25", "b": true, "c": 0}"#, &mut row)
            .unwrap();
    }

    #[test]
    fn escaped_keys_are_matched() {
        let mut d = decoder(MissingPolicy::Allow);
        let mut row = [0.0; 3];
        d.decode_json(br#"{"\u0061": 7}"#, &mut row).unwrap();
        assert_eq!(row[0], 7.0);
    }

    #[test]
    fn missing_allowed_becomes_nan_and_unknown_category_is_missing() {
        let mut d = decoder(MissingPolicy::Allow);
        let mut row = [0.0; 3];
        d.decode_json(br#"{"a": null, "c": "zebra"}"#, &mut row)
            .unwrap();
        assert!(row.iter().all(|v| v.is_nan()));
        // The unseen category is told apart from the missing and absent fields.
        assert!(crate::is_unknown_category(row[2]), "{:x}", row[2].to_bits());
        assert!(!crate::is_unknown_category(row[0]) && !crate::is_unknown_category(row[1]));
        let mut serde_row = [0.0; 3];
        d.decode_json(
            br#"{"a": null, "c": "zebra", "c2": [1, {"deep": 2}]}"#,
            &mut serde_row,
        )
        .unwrap();
        assert!(crate::is_unknown_category(serde_row[2]));
    }

    #[test]
    fn missing_rejected_names_the_field() {
        let mut d = decoder(MissingPolicy::Reject);
        let mut row = [0.0; 3];
        let e = d
            .decode_json(br#"{"a": 1, "c": "x"}"#, &mut row)
            .unwrap_err();
        assert_eq!(e.field.as_deref(), Some("b"));
        assert!(e.message.contains("is missing"), "{e}");
        let e = d
            .decode_json(br#"{"a": 1, "b": null, "c": "x"}"#, &mut row)
            .unwrap_err();
        assert!(e.to_string().contains("field 'b': is null"), "{e}");
    }

    #[test]
    fn bad_values_name_the_field() {
        let mut d = decoder(MissingPolicy::Allow);
        let mut row = [0.0; 3];
        let e = d
            .decode_json(br#"{"a": 1, "b": "twelve"}"#, &mut row)
            .unwrap_err();
        assert_eq!(e.field.as_deref(), Some("b"));
        assert_eq!(e.message, "expected a number, got the string \"twelve\"");
        let e = d.decode_json(br#"{"a": [1]}"#, &mut row).unwrap_err();
        assert_eq!(e.to_string(), "field 'a': expected a number, got an array");
        let e = d.decode_json(br#"{"a": "NaN"}"#, &mut row).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("a"));
    }

    #[test]
    fn captured_fields_are_spans_of_first_values() {
        let mut d = decoder(MissingPolicy::Reject).with_captured_fields(&["id", "b", "x", "id"]);
        let mut row = [0.0; 3];
        let json = br#"{"a": 1, "\u0069d" : {"k": [1]} ,"b":2, "c": "x", "id": 3}"#;
        d.decode_json(json, &mut row).unwrap();
        let texts: Vec<Option<&[u8]>> = d
            .captured()
            .iter()
            .map(|s| s.clone().map(|r| &json[r]))
            .collect();
        let id: &[u8] = br#"{"k": [1]}"#;
        assert_eq!(texts, [Some(id), Some(&b"2"[..]), None, Some(id)]);
        // Nothing is captured from an event that does not decode.
        d.decode_json(br#"{"a": 1, "id": 2}"#, &mut row)
            .unwrap_err();
        assert_eq!(d.captured(), [None, None, None, None]);
    }

    #[test]
    fn malformed_json_and_non_objects_are_errors() {
        let mut d = decoder(MissingPolicy::Allow);
        let mut row = [0.0; 3];
        for bad in [&br#"{"a": 1"#[..], br#"{"a": 1} x"#, b"[1,2]", b"", b"42"] {
            let e = d.decode_json(bad, &mut row).unwrap_err();
            assert!(e.field.is_none(), "{bad:?}: {e}");
        }
        let e = d.decode_json(br#"{"a": 1"#, &mut row).unwrap_err();
        assert!(e.message.starts_with("malformed JSON"), "{e}");
    }
}

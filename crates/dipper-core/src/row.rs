//! Decoding one JSON event into a numeric feature row, by field name, without building an intermediate map.
//!
//! Fields the schema does not name are skipped. A value is read as: a number as it is; `true`/`false` as 1/0; a
//! string holding a number (`"12.5"`) as that number; for a categorical feature with known categories, a string
//! as the category's code (an unknown category is missing). `null` or an absent field is missing (NaN) when the
//! [`MissingPolicy`] allows it and an error naming the field otherwise. Anything else (a non-numeric string, an
//! array, an object, a non-finite number) is an error naming the field.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};

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
    categories: Vec<Option<HashMap<String, f64>>>,
    seen: Vec<bool>,
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
        RowDecoder {
            schema,
            missing,
            categories,
            seen,
        }
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
        row.fill(f64::NAN);
        self.seen.fill(false);
        let mut de = serde_json::Deserializer::from_slice(json);
        let result = de.deserialize_map(EventVisitor { dec: self, row });
        match result {
            Ok(()) => {}
            Err(e) => return Err(self.json_error(e)),
        }
        if let Err(e) = de.end() {
            return Err(DecodeError {
                field: None,
                message: format!("malformed JSON: {e}"),
            });
        }
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

    fn json_error(&self, e: serde_json::Error) -> DecodeError {
        // Field errors are raised as custom errors carrying an encoded field name; everything else is syntax.
        let text = e.to_string();
        if let Some(rest) = text.strip_prefix(FIELD_ERROR_TAG) {
            if let Some((field, msg)) = rest.split_once('\u{1f}') {
                let msg = msg.rsplit_once(" at line ").map(|(m, _)| m).unwrap_or(msg);
                return DecodeError::field(field, msg);
            }
        }
        if e.is_data() && text.starts_with("invalid type") {
            return DecodeError {
                field: None,
                message: format!("expected a JSON object: {text}"),
            };
        }
        DecodeError {
            field: None,
            message: format!("malformed JSON: {text}"),
        }
    }
}

const FIELD_ERROR_TAG: &str = "\u{1e}field\u{1e}";

fn field_error<E: de::Error>(field: &str, msg: impl fmt::Display) -> E {
    E::custom(format!("{FIELD_ERROR_TAG}{field}\u{1f}{msg}"))
}

struct EventVisitor<'a> {
    dec: &'a mut RowDecoder,
    row: &'a mut [f64],
}

impl<'de> Visitor<'de> for EventVisitor<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object of features")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<KeyStr<'de>>()? {
            match self.dec.schema.index_of(&key.0) {
                Some(col) => {
                    let seed = ValueSeed { dec: self.dec, col };
                    let v = map.next_value_seed(seed)?;
                    self.row[col] = v;
                    self.dec.seen[col] = true;
                }
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
}

struct KeyStr<'de>(Cow<'de, str>);

impl<'de> de::Deserialize<'de> for KeyStr<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = KeyStr<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a field name")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(KeyStr(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(KeyStr(Cow::Owned(v.to_string())))
            }
        }
        d.deserialize_str(V)
    }
}

struct ValueSeed<'a> {
    dec: &'a RowDecoder,
    col: usize,
}

impl ValueSeed<'_> {
    fn name(&self) -> &str {
        &self.dec.schema.get(self.col).name
    }
}

impl<'de> DeserializeSeed<'de> for ValueSeed<'_> {
    type Value = f64;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<f64, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ValueSeed<'_> {
    type Value = f64;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a number")
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<f64, E> {
        Ok(v)
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<f64, E> {
        Ok(v as f64)
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<f64, E> {
        Ok(v as f64)
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<f64, E> {
        Ok(if v { 1.0 } else { 0.0 })
    }
    fn visit_unit<E: de::Error>(self) -> Result<f64, E> {
        Ok(f64::NAN)
    }
    fn visit_none<E: de::Error>(self) -> Result<f64, E> {
        Ok(f64::NAN)
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<f64, E> {
        if let Some(cats) = &self.dec.categories[self.col] {
            if let Some(code) = cats.get(v) {
                return Ok(*code);
            }
        }
        match v.trim().parse::<f64>() {
            Ok(x) if x.is_finite() => Ok(x),
            _ if self.dec.categories[self.col].is_some() => Ok(f64::NAN),
            _ => Err(field_error(
                self.name(),
                format_args!("expected a number, got the string {v:?}"),
            )),
        }
    }
    fn visit_seq<A: de::SeqAccess<'de>>(self, _: A) -> Result<f64, A::Error> {
        Err(field_error(self.name(), "expected a number, got an array"))
    }
    fn visit_map<A: MapAccess<'de>>(self, _: A) -> Result<f64, A::Error> {
        Err(field_error(self.name(), "expected a number, got an object"))
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

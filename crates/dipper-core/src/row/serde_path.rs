//! The serde_json path: the reference decoder. It handles every input, gives every error its message, and is the
//! fallback of the fast path in `fast.rs` for whatever that one does not handle with certainty (and the oracle
//! its property tests compare against).

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};

use super::{DecodeError, RowDecoder};

impl RowDecoder {
    /// Decodes one JSON object into `row` with serde_json's streaming deserializer; the behaviour
    /// [`RowDecoder::decode_json`] must keep, down to every bit and error message.
    pub(super) fn decode_json_serde(
        &mut self,
        json: &[u8],
        row: &mut [f64],
    ) -> Result<(), DecodeError> {
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
        self.check_missing(row)
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
            _ if self.dec.categories[self.col].is_some() => Ok(crate::UNKNOWN_CATEGORY),
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

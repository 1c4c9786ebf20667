//! Event decoders: record value bytes -> the model's feature row, plus the few fields the output
//! needs (event id, event time, pass-through fields). JSON today; Avro and Schema Registry plug in
//! behind [`EventDecoder`] later.

use std::borrow::Cow;
use std::fmt;

use dipper_core::{FeatureSchema, MissingPolicy, RowDecoder};
use dipper_monitor::DeadLetterReason;
use serde::de::{Deserialize, Deserializer, Error, IgnoredAny, MapAccess, Visitor};
use serde_json::value::RawValue;

use crate::error::RecordError;

/// What a decoder extracts besides the features.
#[derive(Debug, Default, Clone)]
pub struct EventMeta {
    /// The event-id field as JSON text (a string keeps its quotes), if configured and present.
    pub event_id: Option<String>,
    /// The event-time field in epoch milliseconds, if configured, present and numeric.
    pub event_time: Option<i64>,
    /// `"name":value` JSON fragments of pass-through fields that are present.
    pub pass_through: Vec<(usize, String)>,
}

/// Turns one record value into a feature row. One instance per worker (it keeps scratch space).
pub trait EventDecoder: Send {
    /// Fills `row` (one slot per model feature, NaN = missing) and `meta`.
    fn decode(
        &mut self,
        value: &[u8],
        row: &mut [f64],
        meta: &mut EventMeta,
    ) -> Result<(), RecordError>;
}

/// Which extra fields to pull out of each event.
#[derive(Debug, Clone, Default)]
pub struct MetaFields {
    pub event_id: Option<String>,
    pub event_time: Option<String>,
    pub pass_through: Vec<String>,
}

impl MetaFields {
    fn is_empty(&self) -> bool {
        self.event_id.is_none() && self.event_time.is_none() && self.pass_through.is_empty()
    }
}

/// JSON objects, features matched by field name.
///
/// The meta fields are read in a second pass that stops as soon as every one of them has been seen,
/// so events that put their id and pass-through fields first pay little for them. A field repeated
/// within one event counts once: its first occurrence wins.
pub struct JsonDecoder {
    rows: RowDecoder,
    meta: MetaFields,
    /// The distinct field names `meta` asks for.
    wanted: Vec<String>,
    /// Per wanted name: seen in the current event.
    seen: Vec<bool>,
}

impl JsonDecoder {
    pub fn new(schema: FeatureSchema, missing: MissingPolicy, meta: MetaFields) -> Self {
        let mut wanted: Vec<String> = Vec::new();
        let names = meta.event_id.iter().chain(&meta.event_time);
        for name in names.chain(&meta.pass_through) {
            if !wanted.contains(name) {
                wanted.push(name.clone());
            }
        }
        JsonDecoder {
            rows: RowDecoder::new(schema, missing),
            seen: vec![false; wanted.len()],
            wanted,
            meta,
        }
    }
}

impl EventDecoder for JsonDecoder {
    fn decode(
        &mut self,
        value: &[u8],
        row: &mut [f64],
        meta: &mut EventMeta,
    ) -> Result<(), RecordError> {
        self.rows.decode_json(value, row).map_err(|e| RecordError {
            // A field at fault means the event parsed but does not fit the model.
            reason: if e.field.is_some() {
                DeadLetterReason::Features
            } else {
                DeadLetterReason::Decode
            },
            field: e.field,
            message: e.message,
        })?;
        meta.event_id = None;
        meta.event_time = None;
        meta.pass_through.clear();
        if !self.meta.is_empty() {
            // The features decoded, so the value is a well-formed object: this cannot fail on syntax.
            self.seen.fill(false);
            let mut complete = false;
            let mut de = serde_json::Deserializer::from_slice(value);
            let scanned = de.deserialize_map(MetaVisitor {
                fields: &self.meta,
                wanted: &self.wanted,
                seen: &mut self.seen,
                complete: &mut complete,
                meta,
            });
            match scanned {
                Ok(()) => {}
                // Stopped early on purpose, so serde_json finds the object unfinished.
                Err(_) if complete => {}
                Err(e) => {
                    return Err(RecordError {
                        reason: DeadLetterReason::Decode,
                        field: None,
                        message: format!("malformed JSON: {e}"),
                    })
                }
            }
        }
        Ok(())
    }
}

/// An object key, borrowed from the input unless it holds escapes. (`Cow<str>` would not do: serde
/// deserialises it as an owned `String`, one allocation per key of every event.)
struct Key<'de>(Cow<'de, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(de: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a field name")
            }
            fn visit_borrowed_str<E: Error>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E: Error>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v.to_string())))
            }
        }
        de.deserialize_str(KeyVisitor)
    }
}

struct MetaVisitor<'a> {
    fields: &'a MetaFields,
    wanted: &'a [String],
    seen: &'a mut [bool],
    /// Set when the visitor returns before the end of the object because it has all it wants.
    complete: &'a mut bool,
    meta: &'a mut EventMeta,
}

impl<'de> Visitor<'de> for MetaVisitor<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut missing = self.wanted.len();
        while let Some(Key(key)) = map.next_key::<Key<'de>>()? {
            let wanted = self.wanted.iter().position(|w| *w == *key);
            let Some(w) = wanted.filter(|&w| !self.seen[w]) else {
                map.next_value::<IgnoredAny>()?;
                continue;
            };
            self.seen[w] = true;
            missing -= 1;
            let is_id = self.fields.event_id.as_deref() == Some(&*key);
            let is_time = self.fields.event_time.as_deref() == Some(&*key);
            let pass = self.fields.pass_through.iter().position(|p| *p == *key);
            let raw: &RawValue = map.next_value()?;
            let text = raw.get();
            if is_id && text != "null" {
                self.meta.event_id = Some(text.to_string());
            }
            if is_time {
                self.meta.event_time = text
                    .parse::<f64>()
                    .ok()
                    .filter(|v| v.is_finite())
                    .map(|v| v as i64);
            }
            if let Some(i) = pass {
                self.meta.pass_through.push((i, text.to_string()));
            }
            if missing == 0 {
                *self.complete = true;
                return Ok(());
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decoder(meta: MetaFields) -> JsonDecoder {
        let schema = FeatureSchema::numeric(&["a", "b"]).unwrap();
        JsonDecoder::new(schema, MissingPolicy::Reject, meta)
    }

    #[test]
    fn features_and_meta_fields() {
        let mut d = decoder(MetaFields {
            event_id: Some("id".into()),
            event_time: Some("ts".into()),
            pass_through: vec!["card".into(), "absent".into()],
        });
        let mut row = [0.0; 2];
        let mut meta = EventMeta::default();
        d.decode(
            br#"{"b":2,"id":"e1","x":{"y":[1,2]},"a":1.5,"ts":1700000000123,"card":"c9"}"#,
            &mut row,
            &mut meta,
        )
        .unwrap();
        assert_eq!(row, [1.5, 2.0]);
        assert_eq!(meta.event_id.as_deref(), Some("\"e1\""));
        assert_eq!(meta.event_time, Some(1_700_000_000_123));
        assert_eq!(meta.pass_through, vec![(0, "\"c9\"".to_string())]);
    }

    #[test]
    fn escaped_field_names_still_match() {
        let mut d = decoder(MetaFields {
            event_id: Some("id".into()),
            event_time: None,
            pass_through: vec!["card".into()],
        });
        let mut row = [0.0; 2];
        let mut meta = EventMeta::default();
        d.decode(
            br#"{"a":1,"b":2,"\u0069d":"e1","ca\u0072d":7}"#,
            &mut row,
            &mut meta,
        )
        .unwrap();
        assert_eq!(meta.event_id.as_deref(), Some("\"e1\""));
        assert_eq!(meta.pass_through, vec![(0, "7".to_string())]);
    }

    #[test]
    fn first_occurrence_wins_and_one_field_may_serve_several_roles() {
        let mut d = decoder(MetaFields {
            event_id: Some("id".into()),
            event_time: Some("ts".into()),
            pass_through: vec!["ts".into(), "card".into()],
        });
        let mut row = [0.0; 2];
        let mut meta = EventMeta::default();
        d.decode(
            br#"{"id":"e1","ts":5,"a":1,"id":"e2","card":"c1","b":2,"card":"c2","ts":6}"#,
            &mut row,
            &mut meta,
        )
        .unwrap();
        assert_eq!(row, [1.0, 2.0]);
        assert_eq!(meta.event_id.as_deref(), Some("\"e1\""));
        assert_eq!(meta.event_time, Some(5));
        assert_eq!(
            meta.pass_through,
            vec![(0, "5".to_string()), (1, "\"c1\"".to_string())]
        );
        // Missing fields are simply absent, and the next event starts afresh.
        d.decode(br#"{"a":3,"b":4,"card":"c3"}"#, &mut row, &mut meta)
            .unwrap();
        assert_eq!(meta.event_id, None);
        assert_eq!(meta.event_time, None);
        assert_eq!(meta.pass_through, vec![(1, "\"c3\"".to_string())]);
    }

    #[test]
    fn errors_are_classified() {
        let mut d = decoder(MetaFields::default());
        let mut row = [0.0; 2];
        let mut meta = EventMeta::default();
        let e = d.decode(b"{not json", &mut row, &mut meta).unwrap_err();
        assert_eq!(e.reason, DeadLetterReason::Decode);
        let e = d.decode(br#"{"a":1}"#, &mut row, &mut meta).unwrap_err();
        assert_eq!(e.reason, DeadLetterReason::Features);
        assert_eq!(e.field.as_deref(), Some("b"));
        let e = d
            .decode(br#"{"a":"x","b":1}"#, &mut row, &mut meta)
            .unwrap_err();
        assert_eq!(e.field.as_deref(), Some("a"));
    }
}

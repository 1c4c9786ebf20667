//! Event decoders: record value bytes -> the model's feature row, plus the few fields the output
//! needs (event id, event time, pass-through fields). JSON today; Avro and Schema Registry plug in
//! behind [`EventDecoder`] later.

use std::ops::Range;

use dipper_core::{FeatureSchema, MissingPolicy, RowDecoder};
use dipper_monitor::DeadLetterReason;

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

/// JSON objects, features matched by field name.
///
/// The meta fields are found in the same pass over the event as the features (the row decoder
/// notes where their values are), wherever they are in the event. A field repeated within one
/// event counts once: its first occurrence wins.
pub struct JsonDecoder {
    rows: RowDecoder,
    /// Per distinct field name `meta` asks for (the row decoder's captured fields): its roles.
    roles: Vec<Roles>,
    /// Scratch: `(start of the value in the event, name)` of the names present in the event.
    found: Vec<(usize, usize)>,
}

/// What one meta field is for (one field may serve several roles).
#[derive(Debug, Clone, Copy)]
struct Roles {
    event_id: bool,
    event_time: bool,
    /// Its index in [`MetaFields::pass_through`] (the first, if named twice).
    pass_through: Option<usize>,
}

impl JsonDecoder {
    pub fn new(schema: FeatureSchema, missing: MissingPolicy, meta: MetaFields) -> Self {
        let mut wanted: Vec<&String> = Vec::new();
        let names = meta.event_id.iter().chain(&meta.event_time);
        for name in names.chain(&meta.pass_through) {
            if !wanted.contains(&name) {
                wanted.push(name);
            }
        }
        let roles = wanted
            .iter()
            .map(|&name| Roles {
                event_id: meta.event_id.as_ref() == Some(name),
                event_time: meta.event_time.as_ref() == Some(name),
                pass_through: meta.pass_through.iter().position(|p| p == name),
            })
            .collect();
        JsonDecoder {
            rows: RowDecoder::new(schema, missing).with_captured_fields(&wanted),
            found: Vec::with_capacity(wanted.len()),
            roles,
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
        // The meta fields in the order they come in the event, as they are read.
        self.found.clear();
        let spans = self.rows.captured();
        for (w, span) in spans.iter().enumerate() {
            if let Some(span) = span {
                self.found.push((span.start, w));
            }
        }
        self.found.sort_unstable();
        for &(_, w) in &self.found {
            let (Some(span), Some(roles)) = (spans[w].clone(), self.roles.get(w)) else {
                continue;
            };
            let text = raw_text(value, span)?;
            if roles.event_id && text != "null" {
                meta.event_id = Some(text.to_string());
            }
            if roles.event_time {
                meta.event_time = text
                    .parse::<f64>()
                    .ok()
                    .filter(|v| v.is_finite())
                    .map(|v| v as i64);
            }
            if let Some(i) = roles.pass_through {
                meta.pass_through.push((i, text.to_string()));
            }
        }
        Ok(())
    }
}

/// The JSON text of a meta field's value. An event that decoded is valid UTF-8 everywhere except,
/// possibly, inside strings no feature reads; a meta field's value must be valid UTF-8 as a whole,
/// or the event is malformed (as serde_json words it for a raw value, the position included).
fn raw_text(value: &[u8], span: Range<usize>) -> Result<&str, RecordError> {
    let start = span.start;
    let bytes = value.get(span).unwrap_or_default();
    std::str::from_utf8(bytes).map_err(|e| {
        // The position of the first byte after the valid prefix, as serde_json gives it.
        let at = (start + e.valid_up_to() + 1).min(value.len());
        let before = &value[..at];
        let line_start = before
            .iter()
            .rposition(|&c| c == b'\n')
            .map_or(0, |i| i + 1);
        let line = 1 + before[..line_start].iter().filter(|&&c| c == b'\n').count();
        let column = at - line_start;
        RecordError {
            reason: DeadLetterReason::Decode,
            field: None,
            message: format!(
                "malformed JSON: invalid unicode code point at line {line} column {column}"
            ),
        }
    })
}

#[cfg(test)]
mod tests {
    use serde_json::value::RawValue;

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
    fn meta_fields_last_or_in_any_order_are_found() {
        let mut d = decoder(MetaFields {
            event_id: Some("id".into()),
            event_time: Some("ts".into()),
            pass_through: vec!["ts".into(), "card".into(), "card".into(), "a".into()],
        });
        let mut row = [0.0; 2];
        let mut meta = EventMeta::default();
        // Pass-through fragments come in the order of the event; a feature may be passed through.
        d.decode(
            br#"{"a": 1 ,"b":2,"x":[{"id":0}],"card" : {"n": [1, "}"]} , "ts":1.7e3,"id":null}"#,
            &mut row,
            &mut meta,
        )
        .unwrap();
        assert_eq!(row, [1.0, 2.0]);
        assert_eq!(meta.event_id, None);
        assert_eq!(meta.event_time, Some(1700));
        assert_eq!(
            meta.pass_through,
            vec![
                (3, "1".to_string()),
                (1, r#"{"n": [1, "}"]}"#.to_string()),
                (0, "1.7e3".to_string())
            ]
        );
        // A time that is not a number is no time; an id keeps its JSON text, escapes included.
        d.decode(
            br#"{"ts":"2024-05-01","id":"e\u00e9\"","a":1,"b":2}"#,
            &mut row,
            &mut meta,
        )
        .unwrap();
        assert_eq!(meta.event_id.as_deref(), Some(r#""e\u00e9\"""#));
        assert_eq!(meta.event_time, None);
        assert_eq!(
            meta.pass_through,
            vec![(0, r#""2024-05-01""#.to_string()), (3, "1".to_string())]
        );
    }

    #[test]
    fn meta_fields_of_events_only_serde_decodes() {
        let mut d = decoder(MetaFields {
            event_id: Some("id".into()),
            event_time: None,
            pass_through: vec!["deep".into()],
        });
        let mut row = [0.0; 2];
        let mut meta = EventMeta::default();
        let deep = format!("{}1{}", "[".repeat(100), "]".repeat(100));
        let event = format!(r#"{{"a":1,"deep":{deep},"b":2,"id":"\ud800","id":2}}"#);
        d.decode(event.as_bytes(), &mut row, &mut meta).unwrap();
        assert_eq!(row, [1.0, 2.0]);
        assert_eq!(meta.event_id.as_deref(), Some(r#""\ud800""#));
        assert_eq!(meta.pass_through, vec![(0, deep)]);
        // Invalid UTF-8 in a string no feature reads passes the serde path, but not as a meta
        // field: the error is serde_json's for a raw value.
        for event in [
            &b"{\"a\":1,\n\"b\":2,\n \"id\": [\"x\xff\"], \"z\": \"\xff\"}"[..],
            b"{\"a\":1,\"b\":2,\"deep\":\"\xc3\",\"id\":\"\xff\"}",
        ] {
            let e = d.decode(event, &mut row, &mut meta).unwrap_err();
            let want = raw_values_error(event);
            assert_eq!(e.reason, DeadLetterReason::Decode);
            assert_eq!(e.field, None);
            assert_eq!(e.message, format!("malformed JSON: {want}"));
        }
        // An invalid string the meta fields do not include is no error.
        d.decode(
            b"{\"a\":1,\"b\":2,\"z\":\"\xff\",\"id\":3}",
            &mut row,
            &mut meta,
        )
        .unwrap();
        assert_eq!(meta.event_id.as_deref(), Some("3"));
    }

    /// serde_json's error reading every field of an object as a raw value, as meta fields were
    /// once read.
    fn raw_values_error(event: &[u8]) -> serde_json::Error {
        serde_json::from_slice::<std::collections::BTreeMap<String, &RawValue>>(event)
            .expect_err("a raw value is not UTF-8")
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

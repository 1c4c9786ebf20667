//! Output records: the prediction JSON written to the output topic and the dead-letter record.
//!
//! A prediction record keeps the input key and reads
//! `{"event_id":..,<pass-through fields>,"prediction":..,"probabilities":{..},"model":..,
//! "model_version":..,"model_format":..,"latency_us":..,"event_time":..,"processing_time":..}`.
//! `latency_us` runs from the poll that returned the record to the model's output for its micro-batch.
//! Label spellings and model identity are rendered once, not per record.
//!
//! A dead-letter record keeps the input key and value untouched and says why and where in headers:
//! `dipper.error.reason`, `dipper.error.message`, `dipper.error.field`, `dipper.source.topic`,
//! `dipper.source.partition`, `dipper.source.offset`, `dipper.source.timestamp`, `dipper.pipeline`,
//! `dipper.model`.

use std::borrow::Cow;
use std::sync::Arc;

use dipper_models::{ClassLabel, ModelInfo, PredictionRef};

use crate::decode::EventMeta;
use crate::error::RecordError;
use crate::transport::{InRecord, OutRecord, TopicPartition};

/// Room reserved for a prediction record: enough for the usual one without regrowing.
const PREDICTION_BYTES: usize = 512;

/// Output field names the pipeline writes itself; pass-through fields may not reuse them.
pub const RESERVED_FIELDS: &[&str] = &[
    "event_id",
    "prediction",
    "probabilities",
    "model",
    "model_version",
    "model_format",
    "latency_us",
    "event_time",
    "processing_time",
];

/// Renders prediction and dead-letter records for one pipeline and model.
#[derive(Debug)]
pub struct Encoder {
    output_topic: Arc<str>,
    dead_letter_topic: Arc<str>,
    pipeline: String,
    /// `"model":"..","model_version":"..","model_format":".."` (no leading comma).
    model_fields: String,
    model_label: String,
    label_values: Vec<String>,
    label_keys: Vec<String>,
    probabilities: bool,
    /// `"name":` per pass-through field.
    pass_keys: Vec<String>,
}

/// The model identity as the output names it.
#[derive(Debug, Clone)]
pub struct ModelLabel {
    pub name: String,
    pub version: String,
    pub format: String,
}

fn json_str(s: &str) -> String {
    serde_json::to_string(s).expect("strings serialise")
}

impl Encoder {
    pub fn new(
        pipeline: &str,
        output_topic: &str,
        dead_letter_topic: &str,
        info: &ModelInfo,
        model: &ModelLabel,
        probabilities: bool,
        pass_through: &[String],
    ) -> Self {
        let label_values = info
            .classes
            .iter()
            .map(|c| serde_json::to_string(c).expect("labels serialise"))
            .collect();
        let label_keys = info
            .classes
            .iter()
            .map(|c| match c {
                ClassLabel::Int(i) => format!("{}:", json_str(&i.to_string())),
                ClassLabel::Str(s) => format!("{}:", json_str(s)),
            })
            .collect();
        Encoder {
            output_topic: Arc::from(output_topic),
            dead_letter_topic: Arc::from(dead_letter_topic),
            pipeline: pipeline.to_string(),
            model_fields: format!(
                "\"model\":{},\"model_version\":{},\"model_format\":{}",
                json_str(&model.name),
                json_str(&model.version),
                json_str(&model.format)
            ),
            model_label: format!("{}:{}", model.name, model.version),
            label_values,
            label_keys,
            probabilities,
            pass_keys: pass_through
                .iter()
                .map(|p| format!("{}:", json_str(p)))
                .collect(),
        }
    }

    /// The prediction record for `input`, which gives it its key, and its value's allocation for the
    /// prediction JSON (the event is decoded by now): no allocation per record. `buf` is scratch
    /// space reused across calls, used when the input has no value.
    #[allow(clippy::too_many_arguments)]
    pub fn prediction(
        &self,
        input: InRecord,
        meta: &EventMeta,
        p: PredictionRef<'_>,
        latency_us: f64,
        event_time: i64,
        processing_time: i64,
        buf: &mut Vec<u8>,
    ) -> OutRecord {
        let value = match input.value {
            Some(mut value) => {
                value.clear();
                // One allocation at most, should the event be shorter than its prediction.
                value.reserve(PREDICTION_BYTES);
                let at = (input.offset, event_time, processing_time);
                self.render(&mut value, &input.tp, at, meta, p, latency_us);
                value
            }
            None => {
                let at = (input.offset, event_time, processing_time);
                self.render(buf, &input.tp, at, meta, p, latency_us);
                buf.clone()
            }
        };
        OutRecord {
            topic: self.output_topic.clone(),
            key: input.key,
            value,
            headers: Vec::new(),
            timestamp: event_time,
            source_partition: input.tp.partition,
        }
    }

    /// Writes the prediction JSON into `buf` (cleared first). `at` is the input's offset, the event
    /// time and the processing time.
    fn render(
        &self,
        buf: &mut Vec<u8>,
        tp: &TopicPartition,
        at: (u64, i64, i64),
        meta: &EventMeta,
        p: PredictionRef<'_>,
        latency_us: f64,
    ) {
        let (offset, event_time, processing_time) = at;
        buf.clear();
        buf.extend_from_slice(b"{\"event_id\":");
        match &meta.event_id {
            Some(id) => buf.extend_from_slice(id.as_bytes()),
            None => {
                buf.push(b'"');
                buf.extend_from_slice(escape_plain(&tp.topic).as_bytes());
                buf.push(b'/');
                write_int(buf, tp.partition);
                buf.push(b'/');
                write_int(buf, offset);
                buf.push(b'"');
            }
        }
        for (i, raw) in &meta.pass_through {
            buf.push(b',');
            buf.extend_from_slice(self.pass_keys[*i].as_bytes());
            buf.extend_from_slice(raw.as_bytes());
        }
        buf.extend_from_slice(b",\"prediction\":");
        match p {
            PredictionRef::Value(v) => write_f64(buf, v),
            PredictionRef::Class {
                index,
                probabilities,
            } => {
                buf.extend_from_slice(self.label_values[index].as_bytes());
                if self.probabilities {
                    buf.extend_from_slice(b",\"probabilities\":{");
                    for (i, (key, p)) in self.label_keys.iter().zip(probabilities).enumerate() {
                        if i > 0 {
                            buf.push(b',');
                        }
                        buf.extend_from_slice(key.as_bytes());
                        write_f64(buf, *p);
                    }
                    buf.push(b'}');
                }
            }
        }
        buf.push(b',');
        buf.extend_from_slice(self.model_fields.as_bytes());
        buf.extend_from_slice(b",\"latency_us\":");
        write_f64(buf, (latency_us * 10.0).round() / 10.0);
        buf.extend_from_slice(b",\"event_time\":");
        write_int(buf, event_time);
        buf.extend_from_slice(b",\"processing_time\":");
        write_int(buf, processing_time);
        buf.push(b'}');
    }

    /// The dead-letter record for `input`, which gives it its key and value.
    pub fn dead_letter(&self, input: InRecord, error: &RecordError) -> OutRecord {
        let mut headers = vec![
            (
                "dipper.error.reason".to_string(),
                error.reason.as_str().as_bytes().to_vec(),
            ),
            (
                "dipper.error.message".to_string(),
                error.message.clone().into_bytes(),
            ),
        ];
        if let Some(f) = &error.field {
            headers.push(("dipper.error.field".to_string(), f.clone().into_bytes()));
        }
        headers.extend([
            (
                "dipper.source.topic".to_string(),
                input.tp.topic.as_bytes().to_vec(),
            ),
            (
                "dipper.source.partition".to_string(),
                input.tp.partition.to_string().into_bytes(),
            ),
            (
                "dipper.source.offset".to_string(),
                input.offset.to_string().into_bytes(),
            ),
            (
                "dipper.source.timestamp".to_string(),
                input.timestamp.to_string().into_bytes(),
            ),
            (
                "dipper.pipeline".to_string(),
                self.pipeline.clone().into_bytes(),
            ),
            (
                "dipper.model".to_string(),
                self.model_label.clone().into_bytes(),
            ),
        ]);
        OutRecord {
            topic: self.dead_letter_topic.clone(),
            key: input.key,
            value: input.value.unwrap_or_default(),
            headers,
            timestamp: input.timestamp,
            source_partition: input.tp.partition,
        }
    }
}

/// Topic names are `[a-zA-Z0-9._-]`, so they need no JSON escaping; anything else is replaced.
fn escape_plain(s: &str) -> Cow<'_, str> {
    if s.bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    {
        Cow::Borrowed(s)
    } else {
        Cow::Owned(
            s.chars()
                .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
                .collect(),
        )
    }
}

/// An integer in decimal (itoa through serde_json: much cheaper than `write!`).
fn write_int<T: serde::Serialize>(buf: &mut Vec<u8>, v: T) {
    let _ = serde_json::to_writer(&mut *buf, &v);
}

/// Shortest round-trip decimal; non-finite values (which JSON cannot carry) become null.
pub(crate) fn write_f64(buf: &mut Vec<u8>, v: f64) {
    if v.is_finite() {
        let _ = serde_json::to_writer(&mut *buf, &v);
    } else {
        buf.extend_from_slice(b"null");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dipper_core::FeatureSchema;
    use dipper_models::{Format, ModelId, Task};
    use dipper_monitor::DeadLetterReason;

    fn info() -> ModelInfo {
        ModelInfo {
            id: ModelId {
                name: "m".into(),
                format: Format::Native,
                digest: "00".repeat(32),
            },
            task: Task::Classification,
            features: FeatureSchema::numeric(&["a"]).unwrap(),
            named_features: true,
            classes: vec![ClassLabel::Int(0), ClassLabel::Str("fraud".into())],
            accepts_missing: true,
        }
    }

    fn input() -> InRecord {
        InRecord {
            tp: TopicPartition::new("tx", 2),
            offset: 17,
            key: Some(b"k".to_vec()),
            value: Some(b"{\"a\":1}".to_vec()),
            timestamp: 5,
        }
    }

    #[test]
    fn prediction_record_is_json_with_all_fields() {
        let label = ModelLabel {
            name: "fraud".into(),
            version: "v\"1".into(),
            format: "native".into(),
        };
        let enc = Encoder::new("p", "out", "dlq", &info(), &label, true, &["card".into()]);
        let meta = EventMeta {
            event_id: None,
            event_time: None,
            pass_through: vec![(0, "\"c1\"".into())],
        };
        let probs = [0.25, 0.75];
        let p = PredictionRef::Class {
            index: 1,
            probabilities: &probs,
        };
        let mut buf = Vec::new();
        let out = enc.prediction(input(), &meta, p, 12.34, 5, 9, &mut buf);
        let v: serde_json::Value = serde_json::from_slice(&out.value).unwrap();
        assert_eq!(v["event_id"], "tx/2/17");
        assert_eq!(v["card"], "c1");
        assert_eq!(v["prediction"], "fraud");
        assert_eq!(v["probabilities"]["0"], 0.25);
        assert_eq!(v["probabilities"]["fraud"], 0.75);
        assert_eq!(v["model_version"], "v\"1");
        assert_eq!(v["latency_us"], 12.3);
        assert_eq!(v["event_time"], 5);
        assert_eq!(v["processing_time"], 9);
        assert_eq!(out.key.as_deref(), Some(&b"k"[..]));
        assert_eq!(&*out.topic, "out");
    }

    #[test]
    fn prediction_is_the_same_whatever_buffer_the_input_leaves() {
        let label = ModelLabel {
            name: "m".into(),
            version: "1".into(),
            format: "native".into(),
        };
        let enc = Encoder::new("p", "out", "dlq", &info(), &label, true, &[]);
        let meta = EventMeta::default();
        let probs = [0.5, 0.5];
        let p = PredictionRef::Class {
            index: 0,
            probabilities: &probs,
        };
        let mut buf = Vec::new();
        let mut outs = Vec::new();
        // The input's value buffer is reused: longer, shorter than the output, or none at all.
        for value in [Some(vec![b'x'; 2000]), Some(b"{}".to_vec()), None] {
            let mut rec = input();
            rec.value = value;
            outs.push(enc.prediction(rec, &meta, p, 1.0, 5, 9, &mut buf).value);
        }
        assert_eq!(outs[0], outs[1]);
        assert_eq!(outs[0], outs[2]);
        let v: serde_json::Value = serde_json::from_slice(&outs[0]).unwrap();
        assert_eq!(v["event_id"], "tx/2/17");
    }

    #[test]
    fn dead_letter_keeps_value_and_says_why_and_where() {
        let label = ModelLabel {
            name: "m".into(),
            version: "1".into(),
            format: "native".into(),
        };
        let enc = Encoder::new("p", "out", "dlq", &info(), &label, true, &[]);
        let err = RecordError {
            reason: DeadLetterReason::Features,
            field: Some("a".into()),
            message: "is missing".into(),
        };
        let out = enc.dead_letter(input(), &err);
        assert_eq!(out.value, b"{\"a\":1}");
        let h = |k: &str| {
            String::from_utf8(out.headers.iter().find(|(n, _)| n == k).unwrap().1.clone()).unwrap()
        };
        assert_eq!(h("dipper.error.reason"), "features");
        assert_eq!(h("dipper.error.field"), "a");
        assert_eq!(h("dipper.source.offset"), "17");
        assert_eq!(h("dipper.source.partition"), "2");
        assert_eq!(h("dipper.source.topic"), "tx");
    }
}

//! Writing one JSON object per scored event: kept input fields, `prediction`, for classifiers `probabilities`
//! {label: p}, and for models that report more (PMML Output fields such as reason codes) `outputs` {name: value}.
//! Label spellings are rendered once per model, not per row.

use std::io::{self, Write};

use dipper_models::{ClassLabel, ModelInfo, OutputValue, PredictionRef};
use serde_json::value::RawValue;

pub struct OutputWriter {
    /// JSON of each class label as a prediction value (`0`, `"setosa"`).
    label_values: Vec<String>,
    /// JSON of each class label as an object key, with the colon (`"0":`).
    label_keys: Vec<String>,
    /// JSON of each extra output's name as an object key, with the colon.
    output_keys: Vec<String>,
}

impl OutputWriter {
    pub fn new(info: &ModelInfo, output_fields: &[String]) -> Self {
        let label_values = info
            .classes
            .iter()
            .map(|c| serde_json::to_string(c).expect("labels serialise"))
            .collect();
        let label_keys = info
            .classes
            .iter()
            .map(|c| {
                let key = match c {
                    ClassLabel::Int(i) => i.to_string(),
                    ClassLabel::Str(s) => s.clone(),
                };
                format!(
                    "{}:",
                    serde_json::to_string(&key).expect("strings serialise")
                )
            })
            .collect();
        let output_keys = output_fields
            .iter()
            .map(|n| format!("{}:", serde_json::to_string(n).expect("strings serialise")))
            .collect();
        OutputWriter {
            label_values,
            label_keys,
            output_keys,
        }
    }

    /// Writes one output line. `kept` holds `"name":value` fragments of passed-through input fields.
    pub fn write(
        &self,
        w: &mut impl Write,
        kept: &[(String, Box<RawValue>)],
        p: PredictionRef<'_>,
        outputs: &[OutputValue],
    ) -> io::Result<()> {
        w.write_all(b"{")?;
        for (name, value) in kept {
            serde_json::to_writer(&mut *w, name)?;
            w.write_all(b":")?;
            w.write_all(value.get().as_bytes())?;
            w.write_all(b",")?;
        }
        match p {
            PredictionRef::Value(v) => {
                w.write_all(b"\"prediction\":")?;
                write_f64(w, v)?;
            }
            PredictionRef::Class {
                index,
                probabilities,
            } => {
                w.write_all(b"\"prediction\":")?;
                w.write_all(self.label_values[index].as_bytes())?;
                w.write_all(b",\"probabilities\":{")?;
                for (i, (key, p)) in self.label_keys.iter().zip(probabilities).enumerate() {
                    if i > 0 {
                        w.write_all(b",")?;
                    }
                    w.write_all(key.as_bytes())?;
                    write_f64(w, *p)?;
                }
                w.write_all(b"}")?;
            }
        }
        if !self.output_keys.is_empty() {
            w.write_all(b",\"outputs\":{")?;
            for (i, (key, v)) in self.output_keys.iter().zip(outputs).enumerate() {
                if i > 0 {
                    w.write_all(b",")?;
                }
                w.write_all(key.as_bytes())?;
                match v {
                    OutputValue::Missing => w.write_all(b"null")?,
                    OutputValue::Num(x) => write_f64(w, *x)?,
                    OutputValue::Text(s) => serde_json::to_writer(&mut *w, &**s)?,
                }
            }
            w.write_all(b"}")?;
        }
        w.write_all(b"}\n")
    }
}

/// Shortest round-trip decimal; non-finite values (which JSON cannot carry) become null.
fn write_f64(w: &mut impl Write, v: f64) -> io::Result<()> {
    if v.is_finite() {
        serde_json::to_writer(&mut *w, &v).map_err(io::Error::other)
    } else {
        w.write_all(b"null")
    }
}

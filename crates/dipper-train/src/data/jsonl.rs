//! JSON-lines training files: one object per line; numbers, strings, booleans (1/0) and null (missing) are
//! accepted; a nested object or array in a used field is an error naming the line and field. Blank lines are
//! skipped.

use std::borrow::Cow;
use std::io::{BufRead, BufReader};
use std::path::Path;

use serde_json::Value;

use super::builder::{DatasetBuilder, Raw};
use crate::TrainError;

/// Reads every record into `builder`; returns the number of records.
pub fn read(path: &Path, builder: &mut DatasetBuilder) -> Result<usize, TrainError> {
    let shown = path.display().to_string();
    let file = std::fs::File::open(path).map_err(|e| TrainError::Io(format!("{shown}: {e}")))?;
    let mut n = 0;
    for (i, line) in BufReader::new(file).split(b'\n').enumerate() {
        let line = line.map_err(|e| TrainError::Io(format!("{shown} line {}: {e}", i + 1)))?;
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        push_json(&line, &|| format!("{shown} line {}", i + 1), builder)?;
        n += 1;
    }
    Ok(n)
}

/// Adds one JSON object (a file line or a Kafka record value) to `builder`.
pub fn push_json(
    json: &[u8],
    place: &dyn Fn() -> String,
    builder: &mut DatasetBuilder,
) -> Result<(), TrainError> {
    let obj: serde_json::Map<String, Value> = serde_json::from_slice(json)
        .map_err(|e| TrainError::data(place(), format!("not a JSON object: {e}")))?;
    let mut fields = Vec::with_capacity(obj.len());
    for (k, v) in &obj {
        let raw = match v {
            Value::Null => Raw::Missing,
            Value::Bool(b) => Raw::Num(if *b { 1.0 } else { 0.0 }),
            Value::Number(n) => match n.as_f64() {
                Some(x) if x.is_finite() => Raw::Num(x),
                _ => {
                    return Err(TrainError::data(
                        format!("{} field '{k}'", place()),
                        "number out of range",
                    ))
                }
            },
            Value::String(s) => Raw::Str(Cow::Borrowed(s.as_str())),
            Value::Array(_) | Value::Object(_) if builder.uses(k) => {
                return Err(TrainError::data(
                    format!("{} field '{k}'", place()),
                    "expected a number, string, boolean or null, got a nested array or object",
                ))
            }
            Value::Array(_) | Value::Object(_) => continue,
        };
        fields.push((k.as_str(), raw));
    }
    builder.push(place, fields)
}

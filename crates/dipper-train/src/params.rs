//! Reading hyperparameters from a JSON object, shared by the algorithms: unknown keys and wrong types are errors
//! naming the key.

use serde_json::{Map, Value};

use crate::TrainError;

static EMPTY: std::sync::LazyLock<Map<String, Value>> = std::sync::LazyLock::new(Map::new);

/// The parameters as a JSON object (`null` reads as no parameters).
pub(crate) fn map(params: &Value) -> Result<&Map<String, Value>, TrainError> {
    match params {
        Value::Object(o) => Ok(o),
        Value::Null => Ok(&EMPTY),
        other => Err(TrainError::param(
            "params",
            format!("expected a JSON object of hyperparameters, got {other}"),
        )),
    }
}

/// The parameters as an object whose keys are all in `known`.
pub(crate) fn object<'a>(
    params: &'a Value,
    known: &[&str],
) -> Result<&'a Map<String, Value>, TrainError> {
    let obj = map(params)?;
    if let Some(key) = obj.keys().find(|k| !known.contains(&k.as_str())) {
        return Err(TrainError::param(
            key.as_str(),
            format!("unknown parameter (known: {})", known.join(", ")),
        ));
    }
    Ok(obj)
}

/// A finite number in `[min, max]`, or `default` when absent (or null).
pub(crate) fn number(
    obj: &Map<String, Value>,
    name: &str,
    default: f64,
    min: f64,
    max: f64,
) -> Result<f64, TrainError> {
    match obj.get(name) {
        None | Some(Value::Null) => Ok(default),
        Some(v) => {
            let x = v
                .as_f64()
                .ok_or_else(|| TrainError::param(name, format!("expected a number, got {v}")))?;
            if !(x.is_finite() && x >= min && x <= max) {
                return Err(TrainError::param(
                    name,
                    format!("{x} is out of range [{min}, {max}]"),
                ));
            }
            Ok(x)
        }
    }
}

/// A non-negative integer no smaller than `min`, or `default`.
pub(crate) fn integer(
    obj: &Map<String, Value>,
    name: &str,
    default: u64,
    min: u64,
) -> Result<u64, TrainError> {
    match obj.get(name) {
        None | Some(Value::Null) => Ok(default),
        Some(v) => {
            let x = v.as_u64().ok_or_else(|| {
                TrainError::param(name, format!("expected a non-negative integer, got {v}"))
            })?;
            if x < min {
                return Err(TrainError::param(name, format!("must be at least {min}")));
            }
            Ok(x)
        }
    }
}

/// A boolean, or `default`.
pub(crate) fn boolean(
    obj: &Map<String, Value>,
    name: &str,
    default: bool,
) -> Result<bool, TrainError> {
    match obj.get(name) {
        None | Some(Value::Null) => Ok(default),
        Some(v) => v
            .as_bool()
            .ok_or_else(|| TrainError::param(name, format!("expected true or false, got {v}"))),
    }
}

/// A string, or `None` when absent.
pub(crate) fn string<'a>(
    obj: &'a Map<String, Value>,
    name: &str,
) -> Result<Option<&'a str>, TrainError> {
    match obj.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(v) => Err(TrainError::param(
            name,
            format!("expected a string, got {v}"),
        )),
    }
}

/// Counts rows per class and checks that every class has rows (so at least two classes are present).
pub(crate) fn class_counts(train: &crate::Dataset) -> Result<Vec<usize>, TrainError> {
    let k = train.n_classes();
    let mut counts = vec![0usize; k];
    for &y in &train.y {
        if !(y >= 0.0 && y.fract() == 0.0 && (y as usize) < k) {
            return Err(TrainError::Unfit(format!(
                "class index {y} is not one of the {k} classes"
            )));
        }
        counts[y as usize] += 1;
    }
    let present: Vec<String> = counts
        .iter()
        .zip(train.classes())
        .filter(|(n, _)| **n > 0)
        .map(|(_, c)| c.to_string())
        .collect();
    if present.len() < 2 {
        return Err(TrainError::Unfit(format!(
            "the training data has only one class ({}); a classifier needs at least two",
            present.join(", ")
        )));
    }
    if let Some((_, c)) = counts.iter().zip(train.classes()).find(|(n, _)| **n == 0) {
        return Err(TrainError::Unfit(format!(
            "class '{c}' has no rows in the training data"
        )));
    }
    Ok(counts)
}

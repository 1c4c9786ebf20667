//! The `Model` trait every format implements, the identity and schema a model carries, and the prediction
//! buffers it fills.
//!
//! A model is loaded and optimised once, then shared immutable (`Arc<dyn Model>`) across workers. Inputs are
//! rows of `f64` in the model's feature order (`info().features`); NaN means missing. Callers map named fields
//! to columns with `dipper_core::RowDecoder` over the same schema.

use std::fmt;
use std::sync::Arc;

use dipper_core::FeatureSchema;
use serde::Serialize;

use crate::ModelError;

/// What the model predicts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Task {
    Regression,
    Classification,
}

/// A class label, as the training tool named it: integers stay integers in the output.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
#[serde(untagged)]
pub enum ClassLabel {
    Int(i64),
    Str(String),
}

impl fmt::Display for ClassLabel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClassLabel::Int(i) => write!(f, "{i}"),
            ClassLabel::Str(s) => f.write_str(s),
        }
    }
}

/// The model file formats dipper reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    Lightgbm,
    Xgboost,
    Onnx,
    /// dipper's own model file, written by `dipper train`.
    Native,
    /// PMML 4.x (sklearn2pmml, R, Spark, SAS, KNIME, ...).
    Pmml,
}

impl Format {
    /// The format called `name` (as [`Format::name`] spells it).
    pub fn parse(name: &str) -> Option<Format> {
        Some(match name {
            "lightgbm" => Format::Lightgbm,
            "xgboost" => Format::Xgboost,
            "onnx" => Format::Onnx,
            "native" => Format::Native,
            "pmml" => Format::Pmml,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Format::Lightgbm => "lightgbm",
            Format::Xgboost => "xgboost",
            Format::Onnx => "onnx",
            Format::Native => "native",
            Format::Pmml => "pmml",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Who a model is: enough to say which model produced a prediction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ModelId {
    /// A human name, by default the file stem.
    pub name: String,
    pub format: Format,
    /// Hex SHA-256 of the model file's bytes.
    pub digest: String,
}

impl fmt::Display for ModelId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} ({}, sha256:{})",
            self.name,
            self.format,
            &self.digest[..self.digest.len().min(12)]
        )
    }
}

/// Everything a caller needs to know to feed a model and read its output.
#[derive(Debug, Clone)]
pub struct ModelInfo {
    pub id: ModelId,
    pub task: Task,
    /// The columns the model reads, in order.
    pub features: FeatureSchema,
    /// False when the format carries no feature names (ONNX): `features` are then `f0..fN` until renamed.
    pub named_features: bool,
    /// Class labels in probability order; empty for regression.
    pub classes: Vec<ClassLabel>,
    /// True when the model defines what a missing (NaN) input means, as tree ensembles do.
    pub accepts_missing: bool,
}

impl ModelInfo {
    /// Probabilities per row: the number of classes, or 0 for regression.
    pub fn n_classes(&self) -> usize {
        self.classes.len()
    }
}

/// A value a model reports beside its prediction: a PMML Output field such as a reason code or a transformed
/// value, named by [`Model::output_fields`].
#[derive(Debug, Clone, PartialEq)]
pub enum OutputValue {
    Missing,
    Num(f64),
    Text(Arc<str>),
}

/// A batch of predictions, reused across calls to avoid allocation.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Predictions {
    n_rows: usize,
    n_classes: usize,
    /// Extra outputs per row (see [`Model::output_fields`]); 0 for most models.
    n_outputs: usize,
    outputs: Vec<OutputValue>,
    /// Regression: one value per row. Classification: `n_classes` probabilities per row.
    values: Vec<f64>,
    /// Classification: the predicted class index per row.
    labels: Vec<u32>,
}

/// One row of a [`Predictions`] batch.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum PredictionRef<'a> {
    Value(f64),
    Class {
        index: usize,
        probabilities: &'a [f64],
    },
}

impl Predictions {
    /// Empties the batch and sets its shape: `n_classes` is 0 for regression.
    pub fn reset(&mut self, n_rows: usize, n_classes: usize) {
        self.n_rows = n_rows;
        self.n_classes = n_classes;
        self.values.clear();
        self.labels.clear();
        self.n_outputs = 0;
        self.outputs.clear();
        if n_classes == 0 {
            self.values.resize(n_rows, 0.0);
        } else {
            self.values.resize(n_rows * n_classes, 0.0);
            self.labels.resize(n_rows, 0);
        }
    }

    pub fn len(&self) -> usize {
        self.n_rows
    }

    /// Makes room for `n` extra outputs per row (all missing), after [`reset`](Self::reset).
    pub fn reset_outputs(&mut self, n: usize) {
        self.n_outputs = n;
        self.outputs.clear();
        self.outputs.resize(self.n_rows * n, OutputValue::Missing);
    }

    /// The extra outputs of `row`, in [`Model::output_fields`] order (empty for models without any).
    pub fn outputs(&self, row: usize) -> &[OutputValue] {
        &self.outputs[row * self.n_outputs..(row + 1) * self.n_outputs]
    }

    pub fn outputs_mut(&mut self, row: usize) -> &mut [OutputValue] {
        &mut self.outputs[row * self.n_outputs..(row + 1) * self.n_outputs]
    }

    pub fn is_empty(&self) -> bool {
        self.n_rows == 0
    }

    pub fn n_classes(&self) -> usize {
        self.n_classes
    }

    /// Regression values (one per row) or row-major class probabilities.
    pub fn values_mut(&mut self) -> &mut [f64] {
        &mut self.values
    }

    pub fn values(&self) -> &[f64] {
        &self.values
    }

    pub fn labels_mut(&mut self) -> &mut [u32] {
        &mut self.labels
    }

    /// Sets every row's label to the class of highest probability (the first one on ties).
    pub fn labels_from_argmax(&mut self) {
        let k = self.n_classes;
        for (label, probs) in self.labels.iter_mut().zip(self.values.chunks_exact(k)) {
            let mut best = 0;
            for (j, p) in probs.iter().enumerate().skip(1) {
                if *p > probs[best] {
                    best = j;
                }
            }
            *label = best as u32;
        }
    }

    pub fn get(&self, row: usize) -> PredictionRef<'_> {
        if self.n_classes == 0 {
            PredictionRef::Value(self.values[row])
        } else {
            let k = self.n_classes;
            PredictionRef::Class {
                index: self.labels[row] as usize,
                probabilities: &self.values[row * k..(row + 1) * k],
            }
        }
    }
}

/// A loaded model: immutable, shareable across threads, batch and single row.
pub trait Model: Send + Sync + fmt::Debug {
    fn info(&self) -> &ModelInfo;

    /// Names of the extra values each prediction carries ([`Predictions::outputs`]): a PMML model's Output fields
    /// beyond the prediction and probabilities, such as reason codes. Empty for most models.
    fn output_fields(&self) -> &[String] {
        &[]
    }

    /// Scores `rows` (row-major, `info().features.len()` columns, NaN = missing) into `out`, which is reset to
    /// one prediction per row.
    fn predict_batch(&self, rows: &[f64], out: &mut Predictions) -> Result<(), ModelError>;

    /// Scores one row. The default goes through `predict_batch`; formats override it when a single row can
    /// skip batch set-up.
    fn predict_one(&self, row: &[f64], out: &mut Predictions) -> Result<(), ModelError> {
        self.predict_batch(row, out)
    }
}

/// Checks that a row-major buffer holds whole rows of `n_features` and returns the row count.
pub fn row_count(rows: &[f64], n_features: usize) -> Result<usize, ModelError> {
    if n_features == 0 {
        return if rows.is_empty() {
            Ok(0)
        } else {
            Err(ModelError::FeatureCount {
                expected: 0,
                got: rows.len(),
            })
        };
    }
    if !rows.len().is_multiple_of(n_features) {
        return Err(ModelError::FeatureCount {
            expected: n_features,
            got: rows.len() % n_features,
        });
    }
    Ok(rows.len() / n_features)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argmax_takes_first_on_ties() {
        let mut p = Predictions::default();
        p.reset(3, 3);
        p.values_mut()
            .copy_from_slice(&[0.2, 0.5, 0.3, 0.4, 0.4, 0.2, 0.1, 0.1, 0.8]);
        p.labels_from_argmax();
        let idx: Vec<_> = (0..3)
            .map(|i| match p.get(i) {
                PredictionRef::Class { index, .. } => index,
                _ => unreachable!(),
            })
            .collect();
        assert_eq!(idx, [1, 0, 2]);
    }

    #[test]
    fn row_count_rejects_partial_rows() {
        assert_eq!(row_count(&[1.0; 6], 3).unwrap(), 2);
        assert!(matches!(
            row_count(&[1.0; 7], 3),
            Err(ModelError::FeatureCount {
                expected: 3,
                got: 1
            })
        ));
    }
}

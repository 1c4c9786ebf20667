//! Native neural networks: a dense feed-forward network (multi-layer perceptron) with its input encoding.
//!
//! A row is scored in three steps:
//!
//! 1. **Encoding.** Each feature, in schema order, becomes one or more network inputs as its [`MlpInput`] says:
//!    a numeric feature is standardised, `(x - mean) / std`; a categorical feature is one-hot encoded over
//!    `n_categories` codes. A category code outside `0..n_categories` (a category unseen in training) encodes
//!    as all zeros. Missing values (NaN) are not defined for this model: scoring a row with one is an error
//!    naming the feature (callers reject such rows first, since `accepts_missing` is false).
//! 2. **Layers.** Each [`MlpLayer`] computes `activation(inputs · weights + biases)`.
//! 3. **Output.** The last layer's raw outputs become a prediction as [`MlpOutput`] says.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::model::{row_count, Model, ModelInfo, Predictions, Task};
use crate::transform::{sigmoid, softmax_in_place};
use crate::{LoadContext, ModelError};

/// A dense feed-forward network.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MlpBody {
    /// How each feature becomes network inputs: one entry per feature, in the header's feature order.
    pub inputs: Vec<MlpInput>,
    /// The dense layers, from the input to the output. The first layer reads the encoded inputs (the sum of
    /// the inputs' widths); each next layer reads the previous layer's outputs.
    pub layers: Vec<MlpLayer>,
    /// How the last layer's outputs become the prediction.
    pub output: MlpOutput,
    /// Regression only: the prediction is `raw * output_scale + output_offset` (undoes the target
    /// standardisation used in training). Must be 1 for classifiers.
    #[serde(default = "one")]
    pub output_scale: f64,
    /// Regression only: see `output_scale`. Must be 0 for classifiers.
    #[serde(default)]
    pub output_offset: f64,
}

fn one() -> f64 {
    1.0
}

/// How one feature becomes network inputs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "encoding", rename_all = "snake_case", deny_unknown_fields)]
pub enum MlpInput {
    /// A numeric feature: one input, `(x - mean) / std`. `std` must be positive.
    Standardize { mean: f64, std: f64 },
    /// A categorical feature: `n_categories` inputs, input `c` is 1 when the code is `c`, else 0. Codes outside
    /// `0..n_categories` (or not whole numbers) give all zeros.
    OneHot { n_categories: usize },
}

impl MlpInput {
    /// Number of network inputs this feature produces.
    pub fn width(&self) -> usize {
        match self {
            MlpInput::Standardize { .. } => 1,
            MlpInput::OneHot { n_categories } => *n_categories,
        }
    }
}

/// The activation a layer applies to its outputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MlpActivation {
    /// `x` (the output layer).
    Identity,
    /// `max(0, x)`.
    Relu,
    /// `tanh(x)`.
    Tanh,
    /// `1 / (1 + exp(-x))`.
    Logistic,
}

impl MlpActivation {
    #[inline]
    fn apply(self, v: &mut [f64]) {
        match self {
            MlpActivation::Identity => {}
            MlpActivation::Relu => v.iter_mut().for_each(|x| *x = x.max(0.0)),
            MlpActivation::Tanh => v.iter_mut().for_each(|x| *x = x.tanh()),
            MlpActivation::Logistic => v.iter_mut().for_each(|x| *x = sigmoid(*x)),
        }
    }
}

/// One dense layer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MlpLayer {
    /// `weights[i][o]`: the weight from input `i` to output `o` (one row per input, each with one entry per
    /// output).
    pub weights: Vec<Vec<f64>>,
    /// One bias per output.
    pub biases: Vec<f64>,
    pub activation: MlpActivation,
}

/// How the network's raw outputs become a prediction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MlpOutput {
    /// Regression: one raw output, the value is `raw * output_scale + output_offset`.
    Identity,
    /// Binary classification: one raw output, p(second class) = sigmoid(raw).
    Sigmoid,
    /// Multiclass: one raw output per class, probabilities = softmax(raw).
    Softmax,
}

/// A compiled layer: weights flattened row-major `[input][output]`.
#[derive(Debug)]
struct Dense {
    n_in: usize,
    n_out: usize,
    weights: Vec<f64>,
    biases: Vec<f64>,
    activation: MlpActivation,
}

/// The scorer built from an [`MlpBody`].
#[derive(Debug)]
pub struct MlpModel {
    info: ModelInfo,
    inputs: Vec<MlpInput>,
    width: usize,
    layers: Vec<Dense>,
    output: MlpOutput,
    scale: f64,
    offset: f64,
}

/// Rows scored per block: keeps the block's activations in cache.
const BLOCK: usize = 64;
/// Refuse bodies whose encoded input or layers are absurdly wide (a corrupt file, not a model).
const MAX_WIDTH: usize = 1 << 24;

pub(crate) fn build(
    body: &MlpBody,
    info: ModelInfo,
    ctx: &LoadContext,
) -> Result<Arc<dyn Model>, ModelError> {
    Ok(Arc::new(MlpModel::new(body, info, ctx)?))
}

impl MlpModel {
    /// Checks the body against the header and compiles it.
    pub fn new(body: &MlpBody, info: ModelInfo, ctx: &LoadContext) -> Result<Self, ModelError> {
        let err = |m: String| ModelError::parse("native", format!("{} at body", ctx.source), m);
        if body.inputs.len() != info.features.len() {
            return Err(err(format!(
                "{} inputs for {} features",
                body.inputs.len(),
                info.features.len()
            )));
        }
        let mut width = 0usize;
        for (j, input) in body.inputs.iter().enumerate() {
            let name = &info.features.get(j).name;
            match (input, &info.features.get(j).kind) {
                (MlpInput::Standardize { mean, std }, dipper_core::FeatureKind::Numeric) => {
                    if !mean.is_finite() || !std.is_finite() || *std <= 0.0 {
                        return Err(err(format!(
                            "inputs[{j}] ('{name}'): mean {mean} / std {std} (std must be positive and finite)"
                        )));
                    }
                }
                (MlpInput::OneHot { .. }, dipper_core::FeatureKind::Categorical { .. }) => {}
                (other, kind) => {
                    return Err(err(format!(
                        "inputs[{j}] ('{name}'): encoding {other:?} does not fit a {kind:?} feature"
                    )))
                }
            }
            width = width
                .checked_add(input.width())
                .filter(|w| *w <= MAX_WIDTH)
                .ok_or_else(|| err("the encoded input is too wide".into()))?;
        }
        if body.layers.is_empty() {
            return Err(err("no layers".into()));
        }
        let mut layers = Vec::with_capacity(body.layers.len());
        let mut n_in = width;
        for (l, layer) in body.layers.iter().enumerate() {
            let n_out = layer.biases.len();
            if layer.weights.len() != n_in {
                return Err(err(format!(
                    "layers[{l}]: {} weight rows, expected {n_in} (one per input)",
                    layer.weights.len()
                )));
            }
            if n_out == 0 || n_out > MAX_WIDTH {
                return Err(err(format!("layers[{l}]: {n_out} outputs")));
            }
            let mut weights = Vec::with_capacity(n_in.saturating_mul(n_out));
            for (i, row) in layer.weights.iter().enumerate() {
                if row.len() != n_out {
                    return Err(err(format!(
                        "layers[{l}].weights[{i}]: {} entries, expected {n_out} (one per output)",
                        row.len()
                    )));
                }
                weights.extend_from_slice(row);
            }
            if weights.iter().chain(&layer.biases).any(|w| !w.is_finite()) {
                return Err(err(format!("layers[{l}]: a weight or bias is not finite")));
            }
            layers.push(Dense {
                n_in,
                n_out,
                weights,
                biases: layer.biases.clone(),
                activation: layer.activation,
            });
            n_in = n_out;
        }
        let n_classes = info.n_classes();
        let (expected_task, expected_outputs) = match body.output {
            MlpOutput::Identity => (Task::Regression, 1),
            MlpOutput::Sigmoid => (Task::Classification, if n_classes == 2 { 1 } else { 0 }),
            MlpOutput::Softmax => (Task::Classification, n_classes),
        };
        if info.task != expected_task || n_in != expected_outputs {
            return Err(err(format!(
                "output {:?} with {n_classes} classes does not fit a {:?} model whose last layer has {n_in} outputs",
                body.output, info.task
            )));
        }
        let (scale, offset) = (body.output_scale, body.output_offset);
        if !scale.is_finite() || !offset.is_finite() {
            return Err(err("output_scale / output_offset must be finite".into()));
        }
        if body.output != MlpOutput::Identity && (scale != 1.0 || offset != 0.0) {
            return Err(err(
                "output_scale / output_offset apply to regression only".into()
            ));
        }
        Ok(MlpModel {
            info,
            inputs: body.inputs.clone(),
            width,
            layers,
            output: body.output,
            scale,
            offset,
        })
    }

    /// Encodes `n` rows into `x` (`n * width`), failing on a missing value.
    fn encode(
        &self,
        rows: &[f64],
        n: usize,
        first_row: usize,
        x: &mut Vec<f64>,
    ) -> Result<(), ModelError> {
        let nf = self.inputs.len();
        x.clear();
        x.resize(n * self.width, 0.0);
        for r in 0..n {
            let row = &rows[r * nf..(r + 1) * nf];
            let enc = &mut x[r * self.width..(r + 1) * self.width];
            let mut at = 0;
            for (j, (v, input)) in row.iter().zip(&self.inputs).enumerate() {
                if v.is_nan() {
                    return Err(ModelError::Eval(format!(
                        "row {}: feature '{}' is missing; this neural network does not accept missing values",
                        first_row + r,
                        self.info.features.get(j).name
                    )));
                }
                match input {
                    MlpInput::Standardize { mean, std } => {
                        enc[at] = (v - mean) / std;
                        at += 1;
                    }
                    MlpInput::OneHot { n_categories } => {
                        if *v >= 0.0 && v.fract() == 0.0 && *v < *n_categories as f64 {
                            enc[at + *v as usize] = 1.0;
                        }
                        at += n_categories;
                    }
                }
            }
        }
        Ok(())
    }
}

/// `out (n × n_out) = activation(x (n × n_in) · W + b)`, loops ordered so the inner one runs along contiguous
/// rows of `W` and `out`.
fn dense_forward(layer: &Dense, x: &[f64], n: usize, out: &mut Vec<f64>) {
    out.clear();
    out.resize(n * layer.n_out, 0.0);
    if layer.n_out == 0 {
        return;
    }
    for (r, o_row) in out.chunks_exact_mut(layer.n_out).enumerate() {
        o_row.copy_from_slice(&layer.biases);
        let x_row = &x[r * layer.n_in..(r + 1) * layer.n_in];
        for (xi, w_row) in x_row.iter().zip(layer.weights.chunks_exact(layer.n_out)) {
            if *xi == 0.0 {
                continue; // one-hot inputs and ReLU outputs are often zero
            }
            for (o, w) in o_row.iter_mut().zip(w_row) {
                *o += xi * w;
            }
        }
        layer.activation.apply(o_row);
    }
}

impl Model for MlpModel {
    fn info(&self) -> &ModelInfo {
        &self.info
    }

    fn predict_batch(&self, rows: &[f64], out: &mut Predictions) -> Result<(), ModelError> {
        let nf = self.inputs.len();
        let n = row_count(rows, nf)?;
        let n_classes = self.info.n_classes();
        out.reset(n, n_classes);
        let (mut a, mut b) = (Vec::new(), Vec::new());
        for start in (0..n).step_by(BLOCK) {
            let m = BLOCK.min(n - start);
            self.encode(&rows[start * nf..(start + m) * nf], m, start, &mut a)?;
            for layer in &self.layers {
                dense_forward(layer, &a, m, &mut b);
                std::mem::swap(&mut a, &mut b);
            }
            // `a` now holds the raw outputs of the block.
            let values = out.values_mut();
            match self.output {
                MlpOutput::Identity => {
                    for (v, raw) in values[start..start + m].iter_mut().zip(&a) {
                        *v = raw * self.scale + self.offset;
                    }
                }
                MlpOutput::Sigmoid => {
                    for (pair, raw) in values[start * 2..(start + m) * 2]
                        .chunks_exact_mut(2)
                        .zip(&a)
                    {
                        let p = sigmoid(*raw);
                        pair[0] = 1.0 - p;
                        pair[1] = p;
                    }
                }
                MlpOutput::Softmax => {
                    let k = n_classes;
                    let dst = &mut values[start * k..(start + m) * k];
                    dst.copy_from_slice(&a[..m * k]);
                    for row in dst.chunks_exact_mut(k) {
                        softmax_in_place(row);
                    }
                }
            }
        }
        if n_classes > 0 {
            out.labels_from_argmax();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ClassLabel, Format, ModelId, PredictionRef};
    use dipper_core::{FeatureKind, FeatureSchema, FeatureSpec};

    fn ctx() -> LoadContext {
        LoadContext {
            source: "test".into(),
            id: ModelId {
                name: "t".into(),
                format: Format::Native,
                digest: "0".repeat(64),
            },
        }
    }

    fn info(task: Task, classes: usize, categorical_second: bool) -> ModelInfo {
        let mut features = vec![FeatureSpec::numeric("a")];
        features.push(if categorical_second {
            FeatureSpec {
                name: "c".into(),
                kind: FeatureKind::Categorical { categories: vec![] },
            }
        } else {
            FeatureSpec::numeric("b")
        });
        ModelInfo {
            id: ctx().id,
            task,
            features: FeatureSchema::new(features).unwrap(),
            named_features: true,
            classes: (0..classes as i64).map(ClassLabel::Int).collect(),
            accepts_missing: false,
        }
    }

    /// One numeric input (mean 1, std 2) and a 3-category one-hot; hidden layer of 2 ReLU units.
    fn body(output: MlpOutput, n_out: usize) -> MlpBody {
        MlpBody {
            inputs: vec![
                MlpInput::Standardize {
                    mean: 1.0,
                    std: 2.0,
                },
                MlpInput::OneHot { n_categories: 3 },
            ],
            layers: vec![
                MlpLayer {
                    weights: vec![
                        vec![1.0, -1.0],
                        vec![0.5, 0.0],
                        vec![0.0, 0.5],
                        vec![-2.0, 1.0],
                    ],
                    biases: vec![0.1, 0.2],
                    activation: MlpActivation::Relu,
                },
                MlpLayer {
                    weights: vec![vec![1.0; n_out], (0..n_out).map(|o| o as f64).collect()],
                    biases: vec![0.0; n_out],
                    activation: MlpActivation::Identity,
                },
            ],
            output,
            output_scale: 1.0,
            output_offset: 0.0,
        }
    }

    /// The same network, by hand, one row at a time.
    fn by_hand(x: f64, code: f64, n_out: usize) -> Vec<f64> {
        let z = (x - 1.0) / 2.0;
        let mut onehot = [0.0; 3];
        if (0.0..3.0).contains(&code) && code.fract() == 0.0 {
            onehot[code as usize] = 1.0;
        }
        let h0 = (z + 0.5 * onehot[0] - 2.0 * onehot[2] + 0.1f64).max(0.0);
        let h1 = (-z + 0.5 * onehot[1] + onehot[2] + 0.2f64).max(0.0);
        (0..n_out).map(|o| h0 + o as f64 * h1).collect()
    }

    const ROWS: [f64; 10] = [3.0, 0.0, -1.0, 1.0, 0.5, 2.0, 10.0, 7.0, 2.0, 1.5];

    #[test]
    fn regression_matches_hand_computation() {
        let mut b = body(MlpOutput::Identity, 1);
        b.output_scale = 3.0;
        b.output_offset = -1.0;
        let m = build(&b, info(Task::Regression, 0, true), &ctx()).unwrap();
        let mut out = Predictions::default();
        m.predict_batch(&ROWS, &mut out).unwrap();
        assert_eq!(out.len(), 5);
        for (r, row) in ROWS.chunks(2).enumerate() {
            let want = by_hand(row[0], row[1], 1)[0] * 3.0 - 1.0;
            assert!((out.values()[r] - want).abs() < 1e-12, "row {r}");
        }
        // Unseen (7) and fractional (1.5) codes encode as all zeros.
        assert!((out.values()[3] - (by_hand(10.0, -1.0, 1)[0] * 3.0 - 1.0)).abs() < 1e-12);
    }

    #[test]
    fn binary_and_multiclass_outputs() {
        let m = build(
            &body(MlpOutput::Sigmoid, 1),
            info(Task::Classification, 2, true),
            &ctx(),
        )
        .unwrap();
        let mut out = Predictions::default();
        m.predict_batch(&ROWS, &mut out).unwrap();
        for (r, row) in ROWS.chunks(2).enumerate() {
            let p = sigmoid(by_hand(row[0], row[1], 1)[0]);
            match out.get(r) {
                PredictionRef::Class {
                    index,
                    probabilities,
                } => {
                    assert!((probabilities[1] - p).abs() < 1e-12);
                    assert!((probabilities[0] - (1.0 - p)).abs() < 1e-12);
                    assert_eq!(index, usize::from(p > 0.5));
                }
                other => panic!("{other:?}"),
            }
        }
        let m = build(
            &body(MlpOutput::Softmax, 3),
            info(Task::Classification, 3, true),
            &ctx(),
        )
        .unwrap();
        m.predict_batch(&ROWS, &mut out).unwrap();
        for (r, row) in ROWS.chunks(2).enumerate() {
            let mut want = by_hand(row[0], row[1], 3);
            softmax_in_place(&mut want);
            let got = &out.values()[r * 3..r * 3 + 3];
            for (g, w) in got.iter().zip(&want) {
                assert!((g - w).abs() < 1e-12);
            }
        }
    }

    #[test]
    fn batches_larger_than_a_block_match_single_rows() {
        let m = build(
            &body(MlpOutput::Softmax, 3),
            info(Task::Classification, 3, true),
            &ctx(),
        )
        .unwrap();
        let rows: Vec<f64> = (0..300)
            .flat_map(|i| [(i as f64 * 0.37).sin() * 4.0, (i % 4) as f64])
            .collect();
        let mut batch = Predictions::default();
        m.predict_batch(&rows, &mut batch).unwrap();
        let mut one = Predictions::default();
        for (r, row) in rows.chunks(2).enumerate() {
            m.predict_one(row, &mut one).unwrap();
            assert_eq!(one.values(), &batch.values()[r * 3..r * 3 + 3]);
            assert_eq!(one.get(0), batch.get(r));
        }
        // Empty batches are fine.
        m.predict_batch(&[], &mut batch).unwrap();
        assert!(batch.is_empty());
    }

    #[test]
    fn missing_values_and_bad_shapes_are_errors() {
        let m = build(
            &body(MlpOutput::Identity, 1),
            info(Task::Regression, 0, true),
            &ctx(),
        )
        .unwrap();
        let mut out = Predictions::default();
        let e = m
            .predict_batch(&[1.0, 0.0, 1.0, f64::NAN], &mut out)
            .unwrap_err()
            .to_string();
        assert!(e.contains("row 1") && e.contains("'c'"), "{e}");
        assert!(matches!(
            m.predict_batch(&[1.0, 0.0, 1.0], &mut out),
            Err(ModelError::FeatureCount { .. })
        ));
    }

    #[test]
    fn inconsistent_bodies_are_refused() {
        let reg = || info(Task::Regression, 0, true);
        let check = |b: MlpBody, i: ModelInfo, want: &str| {
            let e = build(&b, i, &ctx()).unwrap_err().to_string();
            assert!(e.contains(want), "{e} lacks {want}");
        };
        let mut b = body(MlpOutput::Identity, 1);
        b.inputs.pop();
        check(b, reg(), "1 inputs for 2 features");
        let mut b = body(MlpOutput::Identity, 1);
        b.inputs[0] = MlpInput::Standardize {
            mean: 0.0,
            std: 0.0,
        };
        check(b, reg(), "std must be positive");
        // One-hot on a numeric feature.
        check(
            body(MlpOutput::Identity, 1),
            info(Task::Regression, 0, false),
            "does not fit",
        );
        let mut b = body(MlpOutput::Identity, 1);
        b.layers[0].weights.pop();
        check(b, reg(), "3 weight rows, expected 4");
        let mut b = body(MlpOutput::Identity, 1);
        b.layers[1].weights[1].push(1.0);
        check(b, reg(), "layers[1].weights[1]: 2 entries");
        let mut b = body(MlpOutput::Identity, 1);
        b.layers[1].biases[0] = f64::INFINITY;
        check(b, reg(), "not finite");
        let mut b = body(MlpOutput::Identity, 1);
        b.layers.clear();
        check(b, reg(), "no layers");
        // Softmax with 3 outputs on a binary classifier; sigmoid on a regression.
        check(
            body(MlpOutput::Softmax, 3),
            info(Task::Classification, 2, true),
            "does not fit",
        );
        check(body(MlpOutput::Sigmoid, 1), reg(), "does not fit");
        let mut b = body(MlpOutput::Sigmoid, 1);
        b.output_scale = 2.0;
        check(b, info(Task::Classification, 2, true), "regression only");
    }

    #[test]
    fn body_json_round_trips_and_refuses_unknown_fields() {
        let b = body(MlpOutput::Softmax, 3);
        let json = serde_json::to_string(&b).unwrap();
        assert!(json.contains(r#""encoding":"standardize""#), "{json}");
        assert!(json.contains(r#""encoding":"one_hot""#), "{json}");
        let back: MlpBody = serde_json::from_str(&json).unwrap();
        assert_eq!(back, b);
        let extra = json.replacen(r#""output":"#, r#""extra":1,"output":"#, 1);
        assert!(serde_json::from_str::<MlpBody>(&extra).is_err());
        let extra_input = json.replacen(r#""std":2.0"#, r#""std":2.0,"scale":1"#, 1);
        assert_ne!(extra_input, json);
        assert!(serde_json::from_str::<MlpBody>(&extra_input).is_err());
    }
}

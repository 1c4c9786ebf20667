//! Output transforms: from an ensemble's raw scores to what the model's own runtime reports (a value, or class
//! probabilities and a label). Shared by every tree format so that objectives are implemented once.

use crate::model::Predictions;

/// How raw scores (`n_outputs` per row) become predictions.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum OutputTransform {
    /// Regression: the score itself.
    Identity,
    /// Regression: `exp(score)` (Poisson, gamma, Tweedie).
    Exp,
    /// Regression: `1 / (1 + exp(-score))` (cross-entropy, `reg:logistic`).
    Logistic,
    /// Regression: `ln(1 + exp(score))` (LightGBM `cross_entropy_lambda`).
    Softplus,
    /// Binary classification from one score: p(class 1) = `1 / (1 + exp(-scale * score))`.
    BinaryLogistic { scale: f64 },
    /// Binary classification where the single score already is p(class 1).
    BinaryProbability,
    /// Multiclass: softmax over the scores.
    Softmax,
    /// Multiclass one-vs-all: each class's probability is `sigmoid(scale * score)`, not normalised (LightGBM).
    OneVsAll { scale: f64 },
    /// Classification where the scores already are the class probabilities.
    Probabilities,
}

impl OutputTransform {
    /// Number of raw scores per row this transform expects for `n_classes` classes (0 = regression).
    pub fn n_outputs(self, n_classes: usize) -> usize {
        match self {
            OutputTransform::Identity
            | OutputTransform::Exp
            | OutputTransform::Logistic
            | OutputTransform::Softplus
            | OutputTransform::BinaryLogistic { .. }
            | OutputTransform::BinaryProbability => 1,
            OutputTransform::Softmax
            | OutputTransform::OneVsAll { .. }
            | OutputTransform::Probabilities => n_classes,
        }
    }

    pub fn is_classification(self) -> bool {
        !matches!(
            self,
            OutputTransform::Identity
                | OutputTransform::Exp
                | OutputTransform::Logistic
                | OutputTransform::Softplus
        )
    }

    /// Turns `raw` (row-major, `n_outputs(n_classes)` per row) into `out`; labels are the most probable class.
    pub fn apply(self, raw: &[f64], n_classes: usize, out: &mut Predictions) {
        let width = self.n_outputs(n_classes);
        let n_rows = raw.len().checked_div(width).unwrap_or(0);
        if !self.is_classification() {
            out.reset(n_rows, 0);
            let f: fn(f64) -> f64 = match self {
                OutputTransform::Exp => f64::exp,
                OutputTransform::Logistic => sigmoid,
                OutputTransform::Softplus => |x| x.exp().ln_1p(),
                _ => |x| x,
            };
            for (o, r) in out.values_mut().iter_mut().zip(raw) {
                *o = f(*r);
            }
            return;
        }
        out.reset(n_rows, n_classes);
        let probs = out.values_mut();
        match self {
            OutputTransform::BinaryLogistic { scale } => binary(raw, probs, |r| sigmoid(scale * r)),
            OutputTransform::BinaryProbability => binary(raw, probs, |r| r),
            OutputTransform::Softmax => {
                probs.copy_from_slice(raw);
                for row in probs.chunks_exact_mut(n_classes) {
                    softmax_in_place(row);
                }
            }
            OutputTransform::OneVsAll { scale } => {
                for (p, r) in probs.iter_mut().zip(raw) {
                    *p = sigmoid(scale * r);
                }
            }
            _ => probs.copy_from_slice(raw),
        }
        out.labels_from_argmax();
    }
}

fn binary(raw: &[f64], probs: &mut [f64], p1: impl Fn(f64) -> f64) {
    for (pair, r) in probs.chunks_exact_mut(2).zip(raw) {
        let p = p1(*r);
        pair[0] = 1.0 - p;
        pair[1] = p;
    }
}

/// The logistic function.
pub fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// Softmax of a row, stable for large scores.
pub fn softmax_in_place(row: &mut [f64]) {
    let max = row.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let mut sum = 0.0;
    for v in row.iter_mut() {
        *v = (*v - max).exp();
        sum += *v;
    }
    for v in row.iter_mut() {
        *v /= sum;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::PredictionRef;

    #[test]
    fn binary_logistic_and_label() {
        let mut out = Predictions::default();
        OutputTransform::BinaryLogistic { scale: 1.0 }.apply(&[0.0, 2.0, -2.0], 2, &mut out);
        assert_eq!(out.len(), 3);
        match out.get(1) {
            PredictionRef::Class {
                index,
                probabilities,
            } => {
                assert_eq!(index, 1);
                assert!((probabilities[1] - 0.8807970779778823).abs() < 1e-15);
                assert!((probabilities[0] + probabilities[1] - 1.0).abs() < 1e-15);
            }
            other => panic!("{other:?}"),
        }
        // p = 0.5 exactly: the first class wins, as argmax does.
        assert!(matches!(out.get(0), PredictionRef::Class { index: 0, .. }));
    }

    #[test]
    fn softmax_is_stable_and_normalised() {
        let mut out = Predictions::default();
        OutputTransform::Softmax.apply(&[1000.0, 1001.0, 999.0], 3, &mut out);
        let p = out.values();
        assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        assert!(matches!(out.get(0), PredictionRef::Class { index: 1, .. }));
    }

    #[test]
    fn regression_transforms() {
        let mut out = Predictions::default();
        OutputTransform::Exp.apply(&[0.0, 1.0], 0, &mut out);
        assert_eq!(out.values(), &[1.0, std::f64::consts::E]);
        OutputTransform::Softplus.apply(&[0.0], 0, &mut out);
        assert!((out.values()[0] - 2f64.ln()).abs() < 1e-15);
        OutputTransform::Identity.apply(&[3.5], 0, &mut out);
        assert_eq!(out.get(0), PredictionRef::Value(3.5));
    }
}

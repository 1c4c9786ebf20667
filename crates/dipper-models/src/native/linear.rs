//! Native generalised linear models (linear, logistic, softmax and Poisson regression).
//!
//! A row becomes a vector of *design terms*: each input feature contributes one term (numeric features, as they
//! are) or one term per category (one-hot encoded categorical features). Every output has a linear predictor
//! `eta = intercept + sum(coefficients[t] * term[t])`, and the link turns the predictors into the prediction.
//! Coefficients are stored in the scale of the raw inputs: whatever standardisation training used is already
//! folded into them, so scoring needs nothing else.
//!
//! Missing inputs are not defined for a linear model, so the model does not accept them (callers reject rows
//! with missing values before scoring). A categorical code the model has no term for (an unseen category, or a
//! value that is not a non-negative integer) contributes nothing, like an all-zero one-hot vector.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::model::{row_count, Model, ModelInfo, Predictions};
use crate::{LoadContext, ModelError};

/// How the linear predictors become a prediction (the inverse of the GLM link function).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LinearLink {
    /// Regression: the value is `eta` (Gaussian family, linear regression). One output.
    Identity,
    /// Regression: the value is `exp(eta)` (Poisson family, log link). One output.
    Log,
    /// Binary classification: p(second class) = `1 / (1 + exp(-eta))` (binomial family). One output.
    Logit,
    /// Classification: class probabilities are the softmax of one `eta` per class (multinomial family).
    Softmax,
}

/// How one input feature enters the design terms.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "encoding", rename_all = "snake_case", deny_unknown_fields)]
pub enum LinearInput {
    /// One term: the value itself.
    Numeric {},
    /// `categories` terms: term `c` is 1 when the input holds category code `c`, else 0. Codes outside
    /// `0..categories` (or not integers) set no term.
    OneHot { categories: usize },
}

impl LinearInput {
    /// Number of design terms this input contributes.
    pub fn n_terms(&self) -> usize {
        match self {
            LinearInput::Numeric {} => 1,
            LinearInput::OneHot { categories } => *categories,
        }
    }
}

/// One linear predictor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinearOutput {
    pub intercept: f64,
    /// One coefficient per design term, in input order (a one-hot input's terms in category-code order).
    pub coefficients: Vec<f64>,
}

/// A fitted generalised linear model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinearBody {
    pub link: LinearLink,
    /// One entry per input feature, in the header's feature order.
    pub inputs: Vec<LinearInput>,
    /// The linear predictors: one for `identity`, `log` and `logit`; one per class (in class order) for
    /// `softmax`.
    pub outputs: Vec<LinearOutput>,
}

/// The scorer of a [`LinearBody`].
#[derive(Debug)]
struct LinearModel {
    info: ModelInfo,
    link: LinearLink,
    inputs: Vec<LinearInput>,
    n_terms: usize,
    intercepts: Vec<f64>,
    /// `coefficients[o * n_terms + t]`.
    coefficients: Vec<f64>,
}

pub(crate) fn build(
    body: &LinearBody,
    info: ModelInfo,
    ctx: &LoadContext,
) -> Result<Arc<dyn Model>, ModelError> {
    let err = |m: String| ModelError::parse("native", format!("{} at body", ctx.source), m);
    let n_classes = info.n_classes();
    let expected_outputs = match (body.link, n_classes) {
        (LinearLink::Identity | LinearLink::Log, 0) => 1,
        (LinearLink::Logit, 2) => 1,
        (LinearLink::Softmax, k) if k >= 2 => k,
        (link, k) => {
            return Err(err(format!(
                "link {link:?} does not fit a model with {k} classes"
            )))
        }
    };
    if body.outputs.len() != expected_outputs {
        return Err(err(format!(
            "link {:?} with {n_classes} classes needs {expected_outputs} outputs, the body has {}",
            body.link,
            body.outputs.len()
        )));
    }
    if body.inputs.len() != info.features.len() {
        return Err(err(format!(
            "the body describes {} inputs, the header has {} features",
            body.inputs.len(),
            info.features.len()
        )));
    }
    let n_terms = body
        .inputs
        .iter()
        .try_fold(0usize, |acc, i| acc.checked_add(i.n_terms()))
        .ok_or_else(|| err("too many design terms".into()))?;
    let mut coefficients = Vec::with_capacity(n_terms.saturating_mul(body.outputs.len()));
    for (o, out) in body.outputs.iter().enumerate() {
        if out.coefficients.len() != n_terms {
            return Err(err(format!(
                "outputs[{o}] has {} coefficients, the inputs make {n_terms} terms",
                out.coefficients.len()
            )));
        }
        if !out.intercept.is_finite() || out.coefficients.iter().any(|c| !c.is_finite()) {
            return Err(err(format!("outputs[{o}] has a non-finite coefficient")));
        }
        coefficients.extend_from_slice(&out.coefficients);
    }
    Ok(Arc::new(LinearModel {
        info,
        link: body.link,
        inputs: body.inputs.clone(),
        n_terms,
        intercepts: body.outputs.iter().map(|o| o.intercept).collect(),
        coefficients,
    }))
}

/// The category code a one-hot input holding `x` sets (`None` for codes outside `0..categories`, non-integers
/// and NaN). Training uses the same rule.
pub fn category_code(x: f64, categories: usize) -> Option<usize> {
    if x >= 0.0 && x.fract() == 0.0 && x < categories as f64 {
        Some(x as usize)
    } else {
        None
    }
}

impl LinearModel {
    /// The linear predictor of output `o` for one row.
    fn eta(&self, o: usize, row: &[f64]) -> f64 {
        let coef = &self.coefficients[o * self.n_terms..(o + 1) * self.n_terms];
        let mut eta = self.intercepts[o];
        let mut t = 0;
        for (input, &x) in self.inputs.iter().zip(row) {
            match input {
                LinearInput::Numeric {} => {
                    eta += coef[t] * x;
                    t += 1;
                }
                LinearInput::OneHot { categories } => {
                    if let Some(c) = category_code(x, *categories) {
                        eta += coef[t + c];
                    }
                    t += categories;
                }
            }
        }
        eta
    }
}

impl Model for LinearModel {
    fn info(&self) -> &ModelInfo {
        &self.info
    }

    fn predict_batch(&self, rows: &[f64], out: &mut Predictions) -> Result<(), ModelError> {
        let nf = self.inputs.len();
        let n = row_count(rows, nf)?;
        let k = self.info.n_classes();
        out.reset(n, k);
        let values = out.values_mut();
        for i in 0..n {
            let row = &rows[i * nf..(i + 1) * nf];
            match self.link {
                LinearLink::Identity => values[i] = self.eta(0, row),
                LinearLink::Log => values[i] = self.eta(0, row).exp(),
                LinearLink::Logit => {
                    let eta = self.eta(0, row);
                    // 1 - sigmoid(eta) = sigmoid(-eta), computed without cancellation.
                    let p1 = 1.0 / (1.0 + (-eta).exp());
                    let p0 = 1.0 / (1.0 + eta.exp());
                    values[2 * i] = p0;
                    values[2 * i + 1] = p1;
                }
                LinearLink::Softmax => {
                    let probs = &mut values[i * k..(i + 1) * k];
                    for (o, p) in probs.iter_mut().enumerate() {
                        *p = self.eta(o, row);
                    }
                    softmax_in_place(probs);
                }
            }
        }
        if k > 0 {
            out.labels_from_argmax();
        }
        Ok(())
    }
}

/// Replaces scores by their softmax (stable; NaN scores give NaN probabilities).
pub(crate) fn softmax_in_place(v: &mut [f64]) {
    let max = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let mut sum = 0.0;
    for x in v.iter_mut() {
        *x = (*x - max).exp();
        sum += *x;
    }
    for x in v.iter_mut() {
        *x /= sum;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ClassLabel, Format, ModelId, PredictionRef, Task};
    use dipper_core::{FeatureKind, FeatureSchema, FeatureSpec};

    fn info(classes: usize) -> ModelInfo {
        ModelInfo {
            id: ModelId {
                name: "t".into(),
                format: Format::Native,
                digest: "0".repeat(64),
            },
            task: if classes > 0 {
                Task::Classification
            } else {
                Task::Regression
            },
            features: FeatureSchema::new(vec![
                FeatureSpec::numeric("a"),
                FeatureSpec {
                    name: "c".into(),
                    kind: FeatureKind::Categorical { categories: vec![] },
                },
            ])
            .unwrap(),
            named_features: true,
            classes: (0..classes as i64).map(ClassLabel::Int).collect(),
            accepts_missing: false,
        }
    }

    fn ctx() -> LoadContext {
        LoadContext {
            source: "t".into(),
            id: info(0).id,
        }
    }

    fn body(link: LinearLink, outputs: usize) -> LinearBody {
        LinearBody {
            link,
            inputs: vec![
                LinearInput::Numeric {},
                LinearInput::OneHot { categories: 3 },
            ],
            outputs: (0..outputs)
                .map(|o| LinearOutput {
                    intercept: 0.5 * o as f64,
                    coefficients: vec![2.0, 0.0, 1.0, -1.0 - o as f64],
                })
                .collect(),
        }
    }

    #[test]
    fn identity_and_one_hot() {
        let m = build(&body(LinearLink::Identity, 1), info(0), &ctx()).unwrap();
        let mut out = Predictions::default();
        m.predict_batch(
            &[1.0, 0.0, 1.0, 1.0, 1.0, 2.0, 1.0, 7.0, 1.0, 0.5],
            &mut out,
        )
        .unwrap();
        assert_eq!(out.values(), &[2.0, 3.0, 1.0, 2.0, 2.0]);
        let m = build(&body(LinearLink::Log, 1), info(0), &ctx()).unwrap();
        m.predict_batch(&[1.0, 1.0], &mut out).unwrap();
        assert!((out.values()[0] - 3f64.exp()).abs() < 1e-12);
    }

    #[test]
    fn probabilities_sum_to_one() {
        let m = build(&body(LinearLink::Logit, 1), info(2), &ctx()).unwrap();
        let mut out = Predictions::default();
        m.predict_batch(&[0.0, 0.0, -3.0, 2.0, 1e6, 1.0], &mut out)
            .unwrap();
        let v = out.values();
        assert_eq!(&v[..2], &[0.5, 0.5]);
        for r in v.chunks(2) {
            assert!((r[0] + r[1] - 1.0).abs() < 1e-12);
        }
        assert_eq!(
            out.get(1),
            PredictionRef::Class {
                index: 0,
                probabilities: &v[2..4]
            }
        );
        assert_eq!(
            out.get(2),
            PredictionRef::Class {
                index: 1,
                probabilities: &v[4..6]
            }
        );

        let m = build(&body(LinearLink::Softmax, 3), info(3), &ctx()).unwrap();
        m.predict_batch(&[0.1, 2.0, 1e300, 0.0], &mut out).unwrap();
        for r in out.values().chunks(3) {
            assert!((r.iter().sum::<f64>() - 1.0).abs() < 1e-12);
            assert!(r.iter().all(|p| (0.0..=1.0).contains(p)));
        }
    }

    #[test]
    fn bad_bodies_are_refused() {
        let ctx = ctx();
        assert!(build(&body(LinearLink::Logit, 1), info(3), &ctx).is_err());
        assert!(build(&body(LinearLink::Softmax, 2), info(3), &ctx).is_err());
        assert!(build(&body(LinearLink::Identity, 1), info(2), &ctx).is_err());
        let mut b = body(LinearLink::Identity, 1);
        b.outputs[0].coefficients.pop();
        assert!(build(&b, info(0), &ctx).is_err());
        let mut b = body(LinearLink::Identity, 1);
        b.inputs.pop();
        assert!(build(&b, info(0), &ctx).is_err());
        let mut b = body(LinearLink::Identity, 1);
        b.outputs[0].intercept = f64::NAN;
        assert!(build(&b, info(0), &ctx).is_err());
        let m = build(&body(LinearLink::Identity, 1), info(0), &ctx).unwrap();
        assert!(m
            .predict_batch(&[1.0, 2.0, 3.0], &mut Predictions::default())
            .is_err());
    }

    #[test]
    fn json_is_self_describing() {
        let b = body(LinearLink::Logit, 1);
        let json = serde_json::to_value(&b).unwrap();
        assert_eq!(json["link"], "logit");
        assert_eq!(json["inputs"][1]["encoding"], "one_hot");
        assert_eq!(json["inputs"][1]["categories"], 3);
        let back: LinearBody = serde_json::from_value(json).unwrap();
        assert_eq!(back, b);
        let bad = serde_json::json!({"link": "logit", "inputs": [], "outputs": [], "extra": 1});
        assert!(serde_json::from_value::<LinearBody>(bad).is_err());
        let bad = serde_json::json!({"encoding": "numeric", "scale": 2});
        assert!(serde_json::from_value::<LinearInput>(bad).is_err());
    }
}

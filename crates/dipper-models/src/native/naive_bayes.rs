//! Native Naive Bayes classifiers: per class, a prior and one independent distribution per feature (Gaussian for
//! numeric features, a smoothed categorical distribution for categorical ones).
//!
//! Scoring adds the log prior and each feature's log likelihood per class and normalises with a softmax.
//! **Missing values are defined**: a missing (NaN) feature is left out of the product, which is the exact
//! marginal of the Naive Bayes model over that feature, so this model accepts missing inputs. A categorical code
//! the model has no probability for (unseen category, or not a non-negative integer) is left out the same way.
//! If an extreme value makes every class impossible (all log likelihoods `-inf`), the row gets the priors.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::linear::{category_code, softmax_in_place};
use crate::model::{row_count, Model, ModelInfo, Predictions};
use crate::{LoadContext, ModelError};

/// The per-class distribution of one feature.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "distribution", rename_all = "snake_case", deny_unknown_fields)]
pub enum NaiveBayesFeature {
    /// Normal distribution per class: `mean[c]`, `variance[c]` (smoothing already added; positive).
    Gaussian { mean: Vec<f64>, variance: Vec<f64> },
    /// `log_prob[c][code]`: natural log of p(category code | class c) (smoothing already applied).
    Categorical { log_prob: Vec<Vec<f64>> },
}

/// A fitted Naive Bayes classifier.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NaiveBayesBody {
    /// Natural log of each class's prior probability, in class order.
    pub class_log_prior: Vec<f64>,
    /// One entry per input feature, in the header's feature order.
    pub features: Vec<NaiveBayesFeature>,
}

/// Per-feature scoring constants.
#[derive(Debug)]
enum Scorer {
    /// Per class: `-0.5 * ln(2 pi var)`, `1 / (2 var)`, mean.
    Gaussian {
        log_norm: Vec<f64>,
        inv_two_var: Vec<f64>,
        mean: Vec<f64>,
    },
    /// `log_prob[code * k + c]`, `categories` codes.
    Categorical {
        categories: usize,
        log_prob: Vec<f64>,
    },
}

#[derive(Debug)]
struct NaiveBayesModel {
    info: ModelInfo,
    log_prior: Vec<f64>,
    features: Vec<Scorer>,
}

pub(crate) fn build(
    body: &NaiveBayesBody,
    mut info: ModelInfo,
    ctx: &LoadContext,
) -> Result<Arc<dyn Model>, ModelError> {
    let err = |m: String| ModelError::parse("native", format!("{} at body", ctx.source), m);
    let k = info.n_classes();
    if k < 2 {
        return Err(err("naive Bayes is a classifier and needs classes".into()));
    }
    if body.class_log_prior.len() != k {
        return Err(err(format!(
            "class_log_prior has {} entries for {k} classes",
            body.class_log_prior.len()
        )));
    }
    if body.class_log_prior.iter().any(|p| !p.is_finite()) {
        return Err(err("class_log_prior is not finite".into()));
    }
    if body.features.len() != info.features.len() {
        return Err(err(format!(
            "the body describes {} features, the header has {}",
            body.features.len(),
            info.features.len()
        )));
    }
    let mut features = Vec::with_capacity(body.features.len());
    for (j, f) in body.features.iter().enumerate() {
        let ferr = |m: &str| err(format!("features[{j}]: {m}"));
        features.push(match f {
            NaiveBayesFeature::Gaussian { mean, variance } => {
                if mean.len() != k || variance.len() != k {
                    return Err(ferr("mean and variance need one entry per class"));
                }
                if mean.iter().any(|m| !m.is_finite())
                    || variance.iter().any(|v| !(v.is_finite() && *v > 0.0))
                {
                    return Err(ferr("means must be finite and variances positive"));
                }
                Scorer::Gaussian {
                    log_norm: variance
                        .iter()
                        .map(|v| -0.5 * (2.0 * std::f64::consts::PI * v).ln())
                        .collect(),
                    inv_two_var: variance.iter().map(|v| 0.5 / v).collect(),
                    mean: mean.clone(),
                }
            }
            NaiveBayesFeature::Categorical { log_prob } => {
                let categories = log_prob.first().map_or(0, Vec::len);
                if log_prob.len() != k || log_prob.iter().any(|p| p.len() != categories) {
                    return Err(ferr(
                        "log_prob needs one row per class, all of the same length",
                    ));
                }
                if log_prob.iter().flatten().any(|p| !p.is_finite()) {
                    return Err(ferr("log_prob is not finite"));
                }
                let mut flat = vec![0.0; categories * k];
                for (c, row) in log_prob.iter().enumerate() {
                    for (code, p) in row.iter().enumerate() {
                        flat[code * k + c] = *p;
                    }
                }
                Scorer::Categorical {
                    categories,
                    log_prob: flat,
                }
            }
        });
    }
    info.accepts_missing = true;
    Ok(Arc::new(NaiveBayesModel {
        info,
        log_prior: body.class_log_prior.clone(),
        features,
    }))
}

impl Model for NaiveBayesModel {
    fn info(&self) -> &ModelInfo {
        &self.info
    }

    fn predict_batch(&self, rows: &[f64], out: &mut Predictions) -> Result<(), ModelError> {
        let nf = self.features.len();
        let n = row_count(rows, nf)?;
        let k = self.log_prior.len();
        out.reset(n, k);
        let values = out.values_mut();
        for i in 0..n {
            let row = &rows[i * nf..(i + 1) * nf];
            let joint = &mut values[i * k..(i + 1) * k];
            joint.copy_from_slice(&self.log_prior);
            for (f, &x) in self.features.iter().zip(row) {
                if x.is_nan() {
                    continue;
                }
                match f {
                    Scorer::Gaussian {
                        log_norm,
                        inv_two_var,
                        mean,
                    } => {
                        for c in 0..k {
                            let d = x - mean[c];
                            joint[c] += log_norm[c] - d * d * inv_two_var[c];
                        }
                    }
                    Scorer::Categorical {
                        categories,
                        log_prob,
                    } => {
                        if let Some(code) = category_code(x, *categories) {
                            for (j, p) in joint.iter_mut().zip(&log_prob[code * k..]) {
                                *j += p;
                            }
                        }
                    }
                }
            }
            if !joint.iter().any(|j| j.is_finite()) {
                joint.copy_from_slice(&self.log_prior);
            }
            softmax_in_place(joint);
        }
        out.labels_from_argmax();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ClassLabel, Format, ModelId, Task};
    use dipper_core::{FeatureKind, FeatureSchema, FeatureSpec};

    fn info() -> ModelInfo {
        ModelInfo {
            id: ModelId {
                name: "t".into(),
                format: Format::Native,
                digest: "0".repeat(64),
            },
            task: Task::Classification,
            features: FeatureSchema::new(vec![
                FeatureSpec::numeric("a"),
                FeatureSpec {
                    name: "c".into(),
                    kind: FeatureKind::Categorical { categories: vec![] },
                },
            ])
            .unwrap(),
            named_features: true,
            classes: vec![ClassLabel::Int(0), ClassLabel::Int(1)],
            accepts_missing: false,
        }
    }

    fn ctx() -> LoadContext {
        LoadContext {
            source: "t".into(),
            id: info().id,
        }
    }

    fn body() -> NaiveBayesBody {
        NaiveBayesBody {
            class_log_prior: vec![0.25f64.ln(), 0.75f64.ln()],
            features: vec![
                NaiveBayesFeature::Gaussian {
                    mean: vec![0.0, 2.0],
                    variance: vec![1.0, 4.0],
                },
                NaiveBayesFeature::Categorical {
                    log_prob: vec![
                        vec![0.5f64.ln(), 0.5f64.ln()],
                        vec![0.1f64.ln(), 0.9f64.ln()],
                    ],
                },
            ],
        }
    }

    fn normal(x: f64, m: f64, v: f64) -> f64 {
        (-(x - m) * (x - m) / (2.0 * v)).exp() / (2.0 * std::f64::consts::PI * v).sqrt()
    }

    #[test]
    fn matches_the_formula_and_skips_missing() {
        let m = build(&body(), info(), &ctx()).unwrap();
        assert!(m.info().accepts_missing);
        let mut out = Predictions::default();
        let nan = f64::NAN;
        m.predict_batch(
            &[1.0, 0.0, nan, 1.0, nan, nan, 1.0, 5.0, f64::INFINITY, 0.0],
            &mut out,
        )
        .unwrap();
        let v = out.values();
        let a = 0.25 * normal(1.0, 0.0, 1.0) * 0.5;
        let b = 0.75 * normal(1.0, 2.0, 4.0) * 0.1;
        assert!((v[1] - b / (a + b)).abs() < 1e-12);
        let (a, b) = (0.25 * 0.5, 0.75 * 0.9);
        assert!((v[3] - b / (a + b)).abs() < 1e-12);
        // All missing, and an unseen category: the prior, then only the numeric feature.
        assert!((v[5] - 0.75).abs() < 1e-12);
        let (a, b) = (0.25 * normal(1.0, 0.0, 1.0), 0.75 * normal(1.0, 2.0, 4.0));
        assert!((v[7] - b / (a + b)).abs() < 1e-12);
        // Infinite input: every class impossible, falls back to the priors.
        assert!((v[9] - 0.75).abs() < 1e-12);
        for r in v.chunks(2) {
            assert!((r[0] + r[1] - 1.0).abs() < 1e-12);
        }
    }

    #[test]
    fn bad_bodies_are_refused() {
        let mut b = body();
        b.class_log_prior.push(0.0);
        assert!(build(&b, info(), &ctx()).is_err());
        let mut b = body();
        b.features[0] = NaiveBayesFeature::Gaussian {
            mean: vec![0.0, 0.0],
            variance: vec![1.0, 0.0],
        };
        assert!(build(&b, info(), &ctx()).is_err());
        let mut b = body();
        b.features[1] = NaiveBayesFeature::Categorical {
            log_prob: vec![vec![0.0], vec![0.0, 0.0]],
        };
        assert!(build(&b, info(), &ctx()).is_err());
        let mut b = body();
        b.features.pop();
        assert!(build(&b, info(), &ctx()).is_err());
        let json = serde_json::to_value(body()).unwrap();
        assert_eq!(json["features"][0]["distribution"], "gaussian");
        assert_eq!(
            serde_json::from_value::<NaiveBayesBody>(json).unwrap(),
            body()
        );
    }
}

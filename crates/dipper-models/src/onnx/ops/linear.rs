//! Scaler, Imputer and LinearClassifier, computed in `f32` as onnxruntime computes them (facts from its
//! `scaler.cc`, `imputer.cc`, `linearclassifier.cc` and `ml_common.h`, checked against onnxruntime 1.32):
//!
//! * Scaler: `(x - offset) * scale`, each list of length 1 or one per column.
//! * Imputer: values equal to `replaced_value_float` (NaN: NaN values) become `imputed_value_floats`.
//! * LinearClassifier with one score per class: label = first class of highest raw score; probabilities are
//!   the post transform of the scores. With one score and two labels: label = class 1 when the score is > 0;
//!   probabilities `[1 - logistic(s), logistic(s)]` under LOGISTIC, else `[1 - s, s]`.

use std::sync::Arc;

use tract_onnx::pb::NodeProto;
use tract_onnx::tract_hir::internal::*;

use super::attrs::Attrs;
use super::post::{logistic, PostTransform};
use super::{f32_tensor, invalid, unsupported, ClassLabels, Kernel, OutSpec, Width};

/// A per-column parameter given once for all columns or once per column.
fn per_column(values: &[f32], n_features: usize, what: &str) -> TractResult<()> {
    if values.len() == 1 || values.len() == n_features {
        Ok(())
    } else {
        bail!(
            "{what} has {} values for {n_features} columns",
            values.len()
        )
    }
}

#[inline]
fn at(values: &[f32], j: usize) -> f32 {
    if values.len() == 1 {
        values[0]
    } else {
        values[j]
    }
}

#[derive(Debug)]
pub(crate) struct Scaler {
    offset: Vec<f32>,
    scale: Vec<f32>,
}

pub(crate) fn scaler(node: &NodeProto) -> TractResult<Arc<dyn Kernel>> {
    let a = Attrs::new(node);
    let offset = a.floats("offset").to_vec();
    let scale = a.floats("scale").to_vec();
    if offset.is_empty() || scale.is_empty() {
        return Err(invalid("Scaler needs offset and scale"));
    }
    Ok(Arc::new(Scaler { offset, scale }))
}

impl Kernel for Scaler {
    fn name(&self) -> &'static str {
        "Scaler"
    }

    fn n_features(&self) -> Option<usize> {
        [self.offset.len(), self.scale.len()]
            .into_iter()
            .find(|&n| n > 1)
    }

    fn outputs(&self) -> Vec<OutSpec> {
        vec![OutSpec {
            datum_type: f32::datum_type(),
            width: Width::SameAsInput,
        }]
    }

    fn run(&self, x: &[f32], n_rows: usize, n_features: usize) -> TractResult<TVec<Tensor>> {
        per_column(&self.offset, n_features, "offset")?;
        per_column(&self.scale, n_features, "scale")?;
        let mut out = x.to_vec();
        for row in out.chunks_exact_mut(n_features.max(1)) {
            for (j, v) in row.iter_mut().enumerate() {
                *v = (*v - at(&self.offset, j)) * at(&self.scale, j);
            }
        }
        Ok(tvec!(f32_tensor(&[n_rows, n_features], &out)?))
    }
}

#[derive(Debug)]
pub(crate) struct Imputer {
    imputed: Vec<f32>,
    replaced: f32,
}

impl Imputer {
    /// True when the imputer replaces NaN (so NaN inputs are defined).
    pub fn replaces_nan(node: &NodeProto) -> bool {
        Attrs::new(node).float("replaced_value_float", 0.0).is_nan()
    }
}

pub(crate) fn imputer(node: &NodeProto) -> TractResult<Arc<dyn Kernel>> {
    let a = Attrs::new(node);
    if !a.ints("imputed_value_int64s").is_empty() {
        return Err(unsupported("Imputer on integer values"));
    }
    let imputed = a.floats("imputed_value_floats").to_vec();
    if imputed.is_empty() {
        return Err(invalid("Imputer needs imputed_value_floats"));
    }
    Ok(Arc::new(Imputer {
        imputed,
        replaced: a.float("replaced_value_float", 0.0),
    }))
}

impl Kernel for Imputer {
    fn name(&self) -> &'static str {
        "Imputer"
    }

    fn n_features(&self) -> Option<usize> {
        Some(self.imputed.len()).filter(|&n| n > 1)
    }

    fn outputs(&self) -> Vec<OutSpec> {
        vec![OutSpec {
            datum_type: f32::datum_type(),
            width: Width::SameAsInput,
        }]
    }

    fn run(&self, x: &[f32], n_rows: usize, n_features: usize) -> TractResult<TVec<Tensor>> {
        per_column(&self.imputed, n_features, "imputed_value_floats")?;
        let mut out = x.to_vec();
        let nan = self.replaced.is_nan();
        for row in out.chunks_exact_mut(n_features.max(1)) {
            for (j, v) in row.iter_mut().enumerate() {
                if (nan && v.is_nan()) || *v == self.replaced {
                    *v = at(&self.imputed, j);
                }
            }
        }
        Ok(tvec!(f32_tensor(&[n_rows, n_features], &out)?))
    }
}

#[derive(Debug)]
pub(crate) struct LinearClassifier {
    /// `[targets, features]`, row-major.
    coefficients: Vec<f32>,
    intercepts: Vec<f32>,
    n_features: usize,
    labels: ClassLabels,
    post: PostTransform,
}

pub(crate) fn linear_classifier(node: &NodeProto) -> TractResult<Arc<dyn Kernel>> {
    let a = Attrs::new(node);
    let ints = a.ints("classlabels_ints");
    let strings = a.strings("classlabels_strings")?;
    let labels = match (ints.is_empty(), strings.is_empty()) {
        (false, true) => ClassLabels::Ints(ints.to_vec()),
        (true, false) => ClassLabels::Strings(strings),
        (true, true) => return Err(invalid("no classlabels_ints or classlabels_strings")),
        (false, false) => {
            return Err(invalid(
                "both classlabels_ints and classlabels_strings are set",
            ))
        }
    };
    let coefficients = a.floats("coefficients").to_vec();
    let intercepts = a.floats("intercepts").to_vec();
    let targets = intercepts.len();
    if targets == 0 {
        return Err(unsupported("LinearClassifier without intercepts"));
    }
    if coefficients.is_empty() || coefficients.len() / targets * targets != coefficients.len() {
        return Err(invalid(format!(
            "{} coefficients for {targets} intercepts",
            coefficients.len()
        )));
    }
    let post = PostTransform::parse(&a.string("post_transform", "NONE")?)?;
    if targets == 1 {
        if labels.len() != 2 {
            return Err(unsupported(
                "a one-score LinearClassifier without exactly two labels",
            ));
        }
        post.require(
            &[
                PostTransform::None,
                PostTransform::Logistic,
                PostTransform::Softmax,
            ],
            "a one-score LinearClassifier",
        )?;
    } else if labels.len() != targets {
        return Err(invalid(format!(
            "{} labels for {targets} scores",
            labels.len()
        )));
    }
    Ok(Arc::new(LinearClassifier {
        n_features: coefficients.len() / targets,
        coefficients,
        intercepts,
        labels,
        post,
    }))
}

impl Kernel for LinearClassifier {
    fn name(&self) -> &'static str {
        "LinearClassifier"
    }

    fn n_features(&self) -> Option<usize> {
        Some(self.n_features)
    }

    fn outputs(&self) -> Vec<OutSpec> {
        self.labels.classifier_outputs()
    }

    fn run(&self, x: &[f32], n_rows: usize, n_features: usize) -> TractResult<TVec<Tensor>> {
        let t = self.intercepts.len();
        let k = self.labels.len();
        let mut probs = vec![0.0f32; n_rows * k];
        let mut scores = vec![0.0f32; t];
        let mut picks = Vec::with_capacity(n_rows);
        for (row, p) in x
            .chunks_exact(n_features.max(1))
            .zip(probs.chunks_exact_mut(k))
        {
            for (j, s) in scores.iter_mut().enumerate() {
                let w = &self.coefficients[j * n_features..(j + 1) * n_features];
                *s = row.iter().zip(w).map(|(a, b)| a * b).sum::<f32>() + self.intercepts[j];
            }
            if t == 1 {
                let s = scores[0];
                picks.push(usize::from(s > 0.0));
                let p1 = if self.post == PostTransform::Logistic {
                    logistic(s)
                } else {
                    s
                };
                p[0] = 1.0 - p1;
                p[1] = p1;
            } else {
                let mut best = 0;
                for j in 1..t {
                    if scores[j] > scores[best] {
                        best = j;
                    }
                }
                picks.push(best);
                p.copy_from_slice(&scores);
                self.post.apply_row(p);
            }
        }
        Ok(tvec!(
            self.labels.tensor(&picks)?,
            f32_tensor(&[n_rows, k], &probs)?
        ))
    }
}

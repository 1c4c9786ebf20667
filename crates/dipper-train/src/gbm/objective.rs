//! The losses: their gradients and hessians, initial scores, validation metrics and how scores become
//! predictions. Scores are class-major: `scores[c * n + i]` is output `c` of row `i`.

use dipper_models::native::trees::TreeOutput;
use rayon::prelude::*;

use super::params::ObjectiveKind;
use crate::{Dataset, TrainError};

/// Rows per parallel task when computing gradients.
const CHUNK: usize = 4096;
/// Probabilities are clipped to [EPS, 1 - EPS] in log loss.
const EPS: f64 = 1e-15;
/// LightGBM's `poisson_max_delta_step`: the hessian is `exp(score + 0.7)`, which damps the first steps.
const POISSON_MAX_DELTA_STEP: f64 = 0.7;

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Objective {
    Regression,
    Poisson,
    Binary,
    Multiclass(usize),
}

impl Objective {
    /// The objective for `kind` on `train`, checking that the target fits it.
    pub fn resolve(kind: ObjectiveKind, train: &Dataset) -> Result<Self, TrainError> {
        let k = train.n_classes();
        let obj = match kind {
            ObjectiveKind::Auto if k == 0 => Objective::Regression,
            ObjectiveKind::Auto if k == 2 => Objective::Binary,
            ObjectiveKind::Auto => Objective::Multiclass(k),
            ObjectiveKind::Regression => Objective::Regression,
            ObjectiveKind::Poisson => Objective::Poisson,
            ObjectiveKind::Binary => Objective::Binary,
            ObjectiveKind::Multiclass => Objective::Multiclass(k),
        };
        let classification = matches!(obj, Objective::Binary | Objective::Multiclass(_));
        if classification != (k > 0) {
            return Err(TrainError::param(
                "objective",
                format!(
                    "{} does not fit a {} target",
                    kind.name(),
                    if k > 0 {
                        "classification"
                    } else {
                        "regression"
                    }
                ),
            ));
        }
        if obj == Objective::Binary && k != 2 {
            return Err(TrainError::param(
                "objective",
                format!("binary needs 2 classes, the target has {k}"),
            ));
        }
        if classification {
            if k < 2 {
                return Err(TrainError::Unfit(format!(
                    "classification needs at least 2 classes, the target has {k}"
                )));
            }
            let mut counts = vec![0usize; k];
            for (i, &y) in train.y.iter().enumerate() {
                if !(y >= 0.0 && (y as usize) < k && y.fract() == 0.0) {
                    return Err(TrainError::data(
                        format!("row {i}"),
                        format!("class index {y} is not one of the {k} classes"),
                    ));
                }
                counts[y as usize] += 1;
            }
            if let Some(c) = counts.iter().position(|&n| n == 0) {
                return Err(TrainError::Unfit(format!(
                    "class {} has no rows in the training set",
                    train.classes()[c]
                )));
            }
        } else {
            for (i, &y) in train.y.iter().enumerate() {
                if !y.is_finite() || (obj == Objective::Poisson && y < 0.0) {
                    return Err(TrainError::data(
                        format!("row {i}"),
                        format!(
                            "target {y} is not a finite{} number",
                            if obj == Objective::Poisson {
                                " non-negative"
                            } else {
                                ""
                            }
                        ),
                    ));
                }
            }
            if obj == Objective::Poisson && !train.y.iter().any(|&y| y > 0.0) {
                return Err(TrainError::Unfit(
                    "poisson needs some positive targets".into(),
                ));
            }
        }
        Ok(obj)
    }

    pub fn n_outputs(&self) -> usize {
        match self {
            Objective::Multiclass(k) => *k,
            _ => 1,
        }
    }

    pub fn output(&self) -> TreeOutput {
        match self {
            Objective::Regression => TreeOutput::Identity,
            Objective::Poisson => TreeOutput::Exp,
            Objective::Binary => TreeOutput::BinaryLogistic,
            Objective::Multiclass(_) => TreeOutput::Softmax,
        }
    }

    /// The constant scores that minimise the loss (the start of boosting).
    pub fn init_scores(&self, y: &[f64]) -> Vec<f64> {
        let n = y.len().max(1) as f64;
        let mean = y.iter().sum::<f64>() / n;
        match self {
            Objective::Regression => vec![mean],
            Objective::Poisson => vec![mean.max(EPS).ln()],
            Objective::Binary => {
                let p = mean.clamp(EPS, 1.0 - EPS);
                vec![(p / (1.0 - p)).ln()]
            }
            Objective::Multiclass(k) => {
                let mut counts = vec![0.0; *k];
                for &c in y {
                    counts[c as usize] += 1.0;
                }
                counts.iter().map(|c| (c / n).max(EPS).ln()).collect()
            }
        }
    }

    /// Fills `grads[c][i]` with the (gradient, hessian) of output `c` at row `i`.
    pub fn gradients(&self, y: &[f64], scores: &[f64], grads: &mut [Vec<[f32; 2]>]) {
        let n = y.len();
        match *self {
            Objective::Multiclass(k) => {
                let factor = k as f64 / (k as f64 - 1.0);
                // Row-major probabilities, then per class.
                let mut probs = vec![0.0f64; n * k];
                probs
                    .par_chunks_mut(k * CHUNK)
                    .enumerate()
                    .for_each(|(ci, chunk)| {
                        for (r, p) in chunk.chunks_mut(k).enumerate() {
                            let i = ci * CHUNK + r;
                            softmax((0..k).map(|c| scores[c * n + i]), p);
                        }
                    });
                for (c, g) in grads.iter_mut().enumerate() {
                    g.par_iter_mut()
                        .enumerate()
                        .with_min_len(CHUNK)
                        .for_each(|(i, gh)| {
                            let p = probs[i * k + c];
                            let t = if y[i] as usize == c { 1.0 } else { 0.0 };
                            *gh = [(p - t) as f32, (factor * p * (1.0 - p)) as f32];
                        });
                }
            }
            obj => {
                grads[0]
                    .par_iter_mut()
                    .enumerate()
                    .with_min_len(CHUNK)
                    .for_each(|(i, gh)| {
                        let (f, t) = (scores[i], y[i]);
                        *gh = match obj {
                            Objective::Regression => [(f - t) as f32, 1.0],
                            Objective::Poisson => [
                                (f.exp() - t) as f32,
                                (f + POISSON_MAX_DELTA_STEP).exp() as f32,
                            ],
                            _ => {
                                let p = sigmoid(f);
                                [(p - t) as f32, (p * (1.0 - p)) as f32]
                            }
                        };
                    });
            }
        }
    }

    /// The metric reported and used for early stopping (lower is better) and its name.
    pub fn metric_name(&self) -> &'static str {
        match self {
            Objective::Regression => "rmse",
            Objective::Poisson => "poisson",
            Objective::Binary | Objective::Multiclass(_) => "logloss",
        }
    }

    /// The metric of `scores` on targets `y`. Summed in parallel over fixed chunks of rows whose sums are
    /// added in order, so it does not depend on the thread count.
    pub fn metric(&self, y: &[f64], scores: &[f64]) -> f64 {
        let n = y.len();
        if n == 0 {
            return f64::NAN;
        }
        let row_loss = |i: usize, p: &mut Vec<f64>| -> f64 {
            let (f, t) = (scores[i], y[i]);
            match *self {
                Objective::Regression => (f - t) * (f - t),
                Objective::Poisson => f.exp() - t * f,
                Objective::Binary => {
                    let p = sigmoid(f).clamp(EPS, 1.0 - EPS);
                    -(if t > 0.5 { p.ln() } else { (1.0 - p).ln() })
                }
                Objective::Multiclass(k) => {
                    p.resize(k, 0.0);
                    softmax((0..k).map(|c| scores[c * n + i]), p);
                    -p[t as usize].clamp(EPS, 1.0 - EPS).ln()
                }
            }
        };
        let partial: Vec<f64> = (0..n.div_ceil(CHUNK))
            .into_par_iter()
            .map(|c| {
                let mut p = Vec::new();
                (c * CHUNK..((c + 1) * CHUNK).min(n))
                    .map(|i| row_loss(i, &mut p))
                    .sum()
            })
            .collect();
        let mean = partial.iter().sum::<f64>() / n as f64;
        if *self == Objective::Regression {
            mean.sqrt()
        } else {
            mean
        }
    }
}

fn sigmoid(f: f64) -> f64 {
    1.0 / (1.0 + (-f).exp())
}

fn softmax(scores: impl Iterator<Item = f64> + Clone, out: &mut [f64]) {
    let max = scores.clone().fold(f64::NEG_INFINITY, f64::max);
    let mut sum = 0.0;
    for (o, s) in out.iter_mut().zip(scores) {
        *o = (s - max).exp();
        sum += *o;
    }
    for o in out.iter_mut() {
        *o /= sum;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gradients_and_init_scores() {
        let y = [0.0, 1.0, 1.0, 1.0];
        let b = Objective::Binary;
        let init = b.init_scores(&y);
        assert!((init[0] - 3f64.ln()).abs() < 1e-12);
        let mut g = vec![vec![[0.0f32; 2]; 4]];
        b.gradients(&y, &[0.0; 4], &mut g);
        assert_eq!(g[0][0], [0.5, 0.25]);
        assert_eq!(g[0][1], [-0.5, 0.25]);
        let m = Objective::Multiclass(3);
        let y = [0.0, 1.0, 2.0, 2.0];
        let init = m.init_scores(&y);
        assert!((init[2] - 0.5f64.ln()).abs() < 1e-12);
        let mut g = vec![vec![[0.0f32; 2]; 4]; 3];
        m.gradients(&y, &[0.0; 12], &mut g);
        assert!((g[0][0][0] - (1.0 / 3.0 - 1.0)).abs() < 1e-6);
        assert!((g[1][0][0] - 1.0 / 3.0).abs() < 1e-6);
        assert!((m.metric(&y, &[0.0; 12]) - 3f64.ln()).abs() < 1e-12);
        let r = Objective::Regression;
        assert_eq!(r.init_scores(&[1.0, 3.0]), vec![2.0]);
        assert_eq!(r.metric(&[1.0, 3.0], &[2.0, 2.0]), 1.0);
    }
}

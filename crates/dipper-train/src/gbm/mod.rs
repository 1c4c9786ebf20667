//! Histogram-based gradient boosting after LightGBM's design: features are binned once into at most 255
//! quantile bins (a separate bin for missing values, whose side each split learns); each tree is grown
//! leaf-wise from per-leaf gradient/hessian histograms, building only the smaller child's and subtracting it
//! from the parent's for the sibling. Objectives: binary logistic, multiclass softmax (one tree per class per
//! iteration), L2 regression and Poisson (log link). Rows can be bagged per iteration and features sampled per
//! tree; with a validation set, training stops when its metric has not improved for `early_stopping_rounds`
//! iterations and keeps the best iteration.
//!
//! Categorical features (per the schema) are split LightGBM-style on sets of category codes, written to the
//! tree's `categories`. Histograms are built in parallel over features on the global rayon pool; every sum
//! runs in a fixed order, so a seed gives the same model whatever the thread count.
//!
//! Parameters use LightGBM's names and defaults (`num_iterations` 100, `learning_rate` 0.1, `num_leaves` 31,
//! `max_depth` none, `min_data_in_leaf` 20, `min_sum_hessian_in_leaf` 1e-3, `lambda_l1`/`lambda_l2` 0,
//! `min_gain_to_split` 0, `bagging_fraction`/`feature_fraction` 1, `max_bin` 255, `max_cat_to_onehot` 4,
//! `max_cat_threshold` 32, `cat_smooth` 10), except `early_stopping_rounds`, 20 here (0 turns it off), since a
//! validation set is given for early stopping only. Not implemented: sample weights, LightGBM's `cat_l2` and
//! `min_data_per_group` for categorical splits, exclusive feature bundling, GOSS and DART.
//!
//! The model's thresholds are the bin boundaries (half-way between neighbouring training values), so the
//! scorer routes every training value exactly as the bins did; the one exception is `+inf` at a split that
//! separates all values from missing ones (threshold `f64::MAX`, as JSON has no infinity).

mod binning;
mod grow;
mod histogram;
mod objective;
mod params;
mod split;

use dipper_models::native::trees::TreesBody;
use dipper_models::native::ModelBody;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

pub use params::{GbmParams, ObjectiveKind};

use crate::{Algorithm, Dataset, Progress, TrainError};
use binning::Binned;
use grow::{predict_raw, GrowConfig, TreeLearner};
use objective::Objective;
use split::SplitConfig;

/// Gradient boosted trees (`--algorithm gbm`).
#[derive(Debug, Clone)]
pub struct Gbm {
    pub params: GbmParams,
}

impl Gbm {
    /// Parameters as a JSON object with LightGBM's names (see [`GbmParams`]); unknown keys are errors.
    pub fn from_params(params: &serde_json::Value) -> Result<Self, TrainError> {
        Ok(Gbm {
            params: GbmParams::from_json(params)?,
        })
    }
}

impl Algorithm for Gbm {
    fn name(&self) -> &'static str {
        "gbm"
    }

    fn params(&self) -> serde_json::Value {
        self.params.to_json()
    }

    fn fit(
        &self,
        train: &Dataset,
        valid: Option<&Dataset>,
        progress: &dyn Progress,
    ) -> Result<ModelBody, TrainError> {
        fit(&self.params, train, valid, progress)
    }
}

/// Checks that `d` is rectangular and, for a validation set, matches the training set.
fn check_shape(d: &Dataset, what: &str, train: &Dataset) -> Result<(), TrainError> {
    if d.columns.len() != train.columns.len() {
        return Err(TrainError::Unfit(format!(
            "the {what} set has {} features, the training set {}",
            d.columns.len(),
            train.columns.len()
        )));
    }
    if let Some(j) = d.columns.iter().position(|c| c.len() != d.y.len()) {
        return Err(TrainError::Unfit(format!(
            "feature {j} of the {what} set has {} values for {} rows",
            d.columns[j].len(),
            d.y.len()
        )));
    }
    if d.target != train.target && !std::ptr::eq(d, train) {
        return Err(TrainError::Unfit(format!(
            "the {what} set's target (classes) differs from the training set's"
        )));
    }
    Ok(())
}

/// Chooses `m` of `n` indices, ascending (selection sampling).
fn sample_sorted(rng: &mut ChaCha8Rng, n: usize, m: usize) -> Vec<u32> {
    let mut out = Vec::with_capacity(m);
    let mut needed = m;
    for i in 0..n {
        if needed == 0 {
            break;
        }
        if rng.random_range(0..n - i) < needed {
            out.push(i as u32);
            needed -= 1;
        }
    }
    out
}

fn fit(
    p: &GbmParams,
    train: &Dataset,
    valid: Option<&Dataset>,
    progress: &dyn Progress,
) -> Result<ModelBody, TrainError> {
    check_shape(train, "training", train)?;
    let n = train.n_rows();
    if n == 0 {
        return Err(TrainError::Unfit("the training set has no rows".into()));
    }
    let obj = Objective::resolve(p.objective, train)?;
    let valid = match valid {
        Some(v) if v.n_rows() > 0 => {
            check_shape(v, "validation", train)?;
            let k = train.n_classes();
            if let Some(i) = v.y.iter().position(|&y| {
                !y.is_finite() || (k > 0 && !(y >= 0.0 && (y as usize) < k && y.fract() == 0.0))
            }) {
                return Err(TrainError::data(
                    format!("validation row {i}"),
                    format!("target {} does not fit the training target", v.y[i]),
                ));
            }
            Some(v)
        }
        _ => None,
    };
    let nf = train.n_features();
    let categorical: Vec<bool> = (0..nf).map(|j| train.n_categories(j).is_some()).collect();
    let data = Binned::new(&train.columns, &categorical, p.max_bin);
    let k = obj.n_outputs();
    let base_score = obj.init_scores(&train.y);
    let mut scores: Vec<f64> = base_score
        .iter()
        .flat_map(|&b| std::iter::repeat_n(b, n))
        .collect();
    let nv = valid.map_or(0, |v| v.n_rows());
    let mut vscores: Vec<f64> = base_score
        .iter()
        .flat_map(|&b| std::iter::repeat_n(b, nv))
        .collect();
    let mut grads = vec![vec![[0.0f32; 2]; n]; k];
    let mut rng = ChaCha8Rng::seed_from_u64(p.seed);
    let mut learner = TreeLearner::new(
        &data,
        GrowConfig {
            split: SplitConfig {
                lambda_l1: p.lambda_l1,
                lambda_l2: p.lambda_l2,
                min_data_in_leaf: p.min_data_in_leaf as u64,
                min_sum_hessian_in_leaf: p.min_sum_hessian_in_leaf,
                min_gain_to_split: p.min_gain_to_split,
                max_cat_to_onehot: p.max_cat_to_onehot,
                max_cat_threshold: p.max_cat_threshold,
                cat_smooth: p.cat_smooth,
            },
            num_leaves: p.num_leaves,
            max_depth: p.max_depth,
            learning_rate: p.learning_rate,
        },
    );
    let bag_size = ((p.bagging_fraction * n as f64).round() as usize).clamp(1, n);
    let n_active = ((p.feature_fraction * nf as f64).round() as usize).clamp(1.min(nf), nf);
    let all: Vec<u32> = (0..n as u32).collect();
    let mut in_bag = vec![true; n];
    let mut trees = Vec::new();
    let early = valid.is_some() && p.early_stopping_rounds > 0;
    let (mut best_metric, mut best_iter) = (f64::INFINITY, 0usize);
    let mut done = 0usize;
    let mut train_metric = f64::NAN;
    for it in 0..p.num_iterations {
        obj.gradients(&train.y, &scores, &mut grads);
        let bag = if bag_size < n {
            let b = sample_sorted(&mut rng, n, bag_size);
            in_bag.fill(false);
            for &r in &b {
                in_bag[r as usize] = true;
            }
            Some(b)
        } else {
            None
        };
        let rows = bag.as_deref().unwrap_or(&all);
        let mut iteration = Vec::with_capacity(k);
        for (c, g) in grads.iter().enumerate() {
            let mut active = vec![n_active == nf; nf];
            if n_active < nf {
                for j in sample_sorted(&mut rng, nf, n_active) {
                    active[j as usize] = true;
                }
            }
            let mut grown = learner.grow(g, rows, bag.is_none(), &active);
            grown.tree.output = c;
            if grown.tree.value.iter().any(|v| !v.is_finite()) {
                return Err(TrainError::Unfit(format!(
                    "training diverged at iteration {} (a leaf value is not finite); targets or \
                     learning_rate may be too large",
                    it + 1
                )));
            }
            let s = &mut scores[c * n..(c + 1) * n];
            let idx = learner.indices();
            for &(start, len, v) in &grown.leaves {
                for &r in &idx[start..start + len] {
                    s[r as usize] += v;
                }
            }
            if bag.is_some() {
                for (r, sr) in s.iter_mut().enumerate() {
                    if !in_bag[r] {
                        *sr += grown.predict_binned(&data, r);
                    }
                }
            }
            if let Some(v) = valid {
                vscores[c * nv..(c + 1) * nv]
                    .par_iter_mut()
                    .enumerate()
                    .with_min_len(1024)
                    .for_each(|(i, s)| *s += predict_raw(&grown.tree, |j| v.columns[j][i]));
            }
            iteration.push(grown);
        }
        if iteration.iter().all(|t| t.n_splits() == 0) {
            // Nothing left to learn (LightGBM stops here too).
            break;
        }
        trees.extend(iteration.into_iter().map(|t| t.tree));
        done = it + 1;
        let metric = match valid {
            Some(v) => obj.metric(&v.y, &vscores),
            // The training metric is only for display: every 10 iterations and at the end.
            None if done.is_multiple_of(10) || done == 1 || done == p.num_iterations => {
                train_metric = obj.metric(&train.y, &scores);
                train_metric
            }
            None => train_metric,
        };
        let what = if valid.is_some() { "valid" } else { "train" };
        progress.update(
            done as u64,
            p.num_iterations as u64,
            &format!("{what} {} {metric:.4}", obj.metric_name()),
        );
        if valid.is_some() {
            if metric < best_metric {
                best_metric = metric;
                best_iter = done;
            } else if early && done - best_iter >= p.early_stopping_rounds {
                break;
            }
        }
    }
    if early && best_iter > 0 && best_iter < done {
        trees.truncate(best_iter * k);
    }
    Ok(ModelBody::Trees(TreesBody {
        n_outputs: k,
        base_score,
        divisor: 1.0,
        output: obj.output(),
        trees,
    }))
}

//! Naive Bayes classification mixing Gaussian (numeric) and categorical features.
//!
//! # Hyperparameters
//!
//! | name | default | meaning |
//! |---|---|---|
//! | `var_smoothing` | `1e-9` | added to every Gaussian variance, times the largest feature variance (as scikit-learn's `GaussianNB`) |
//! | `alpha` | `1.0` | Laplace (additive) smoothing of categorical counts; must be positive |
//! | `seed` | run's seed | recorded only: training is deterministic |
//!
//! Class priors are the class frequencies. Numeric features get a per-class mean and population variance;
//! categorical features `p(code | class) = (count + alpha) / (class rows with a value + alpha * categories)`.
//! Missing values (NaN) are skipped when counting, so each statistic uses the rows that have the feature; a class
//! with no value of a numeric feature gets that feature's overall mean and variance. Categorical codes outside
//! the known categories are skipped like missing values. At scoring, missing features are left out of the
//! product (see [`dipper_models::native::naive_bayes`]).

use dipper_models::native::linear::category_code;
use dipper_models::native::naive_bayes::{NaiveBayesBody, NaiveBayesFeature};
use dipper_models::native::ModelBody;
use serde_json::json;

use crate::params;
use crate::{Algorithm, Dataset, Progress, TrainError};

/// Most categories a categorical feature may have.
pub const MAX_CATEGORIES: usize = 1 << 20;

/// A configured Naive Bayes classifier.
#[derive(Debug, Clone)]
pub struct NaiveBayes {
    var_smoothing: f64,
    alpha: f64,
    seed: u64,
}

impl NaiveBayes {
    pub fn from_params(p: &serde_json::Value) -> Result<Self, TrainError> {
        let obj = params::object(p, &["var_smoothing", "alpha", "seed"])?;
        let var_smoothing = params::number(obj, "var_smoothing", 1e-9, 0.0, f64::MAX)?;
        if var_smoothing <= 0.0 {
            return Err(TrainError::param("var_smoothing", "must be positive"));
        }
        let alpha = params::number(obj, "alpha", 1.0, 0.0, f64::MAX)?;
        if alpha <= 0.0 {
            return Err(TrainError::param("alpha", "must be positive"));
        }
        Ok(NaiveBayes {
            var_smoothing,
            alpha,
            seed: params::integer(obj, "seed", 0, 0)?,
        })
    }
}

/// Mean and population variance of the finite values, `None` when there are none.
fn mean_var(values: impl Iterator<Item = f64> + Clone) -> Option<(f64, f64)> {
    let (mut n, mut sum) = (0usize, 0.0);
    for v in values.clone() {
        n += 1;
        sum += v;
    }
    if n == 0 {
        return None;
    }
    let mean = sum / n as f64;
    let var = values.map(|v| (v - mean) * (v - mean)).sum::<f64>() / n as f64;
    Some((mean, var))
}

impl Algorithm for NaiveBayes {
    fn name(&self) -> &'static str {
        "nb"
    }

    fn params(&self) -> serde_json::Value {
        json!({"var_smoothing": self.var_smoothing, "alpha": self.alpha, "seed": self.seed})
    }

    fn fit(
        &self,
        train: &Dataset,
        _valid: Option<&Dataset>,
        progress: &dyn Progress,
    ) -> Result<ModelBody, TrainError> {
        if train.n_classes() == 0 {
            return Err(TrainError::Unfit(
                "naive Bayes is a classifier: the target must be classes".into(),
            ));
        }
        if train.n_rows() == 0 {
            return Err(TrainError::Unfit("no training rows".into()));
        }
        let counts = params::class_counts(train)?;
        let k = counts.len();
        let n = train.n_rows() as f64;
        let class_log_prior = counts.iter().map(|c| (*c as f64 / n).ln()).collect();
        let classes: Vec<usize> = (0..train.n_rows()).map(|i| train.class(i)).collect();
        let nf = train.n_features();

        // The Gaussian smoothing: var_smoothing times the largest variance of a numeric feature.
        let mut overall = vec![None; nf];
        let mut max_var: f64 = 0.0;
        for (j, stats) in overall.iter_mut().enumerate() {
            if train.n_categories(j).is_none() {
                let col = &train.columns[j];
                if let Some(pos) = col.iter().position(|v| v.is_infinite()) {
                    return Err(TrainError::Unfit(format!(
                        "feature '{}' is infinite in row {}",
                        train.schema.get(j).name,
                        pos + 1
                    )));
                }
                *stats = mean_var(col.iter().copied().filter(|v| !v.is_nan()));
                if let Some((_, v)) = *stats {
                    max_var = max_var.max(v);
                }
            }
        }
        let epsilon = if max_var > 0.0 && max_var.is_finite() {
            self.var_smoothing * max_var
        } else {
            self.var_smoothing
        };
        let epsilon = epsilon.max(f64::MIN_POSITIVE * 1e10);

        let mut features = Vec::with_capacity(nf);
        for (j, (col, stats)) in train.columns.iter().zip(&overall).enumerate() {
            let name = &train.schema.get(j).name;
            progress.update(j as u64, nf as u64, name);
            match train.n_categories(j) {
                None => {
                    let (all_mean, all_var) = stats.unwrap_or((0.0, 1.0));
                    let mut mean = Vec::with_capacity(k);
                    let mut variance = Vec::with_capacity(k);
                    for c in 0..k {
                        let values = col
                            .iter()
                            .zip(&classes)
                            .filter(move |(v, y)| **y == c && !v.is_nan())
                            .map(|(v, _)| *v);
                        let (m, v) = mean_var(values).unwrap_or((all_mean, all_var));
                        mean.push(m);
                        variance.push(v + epsilon);
                    }
                    if mean.iter().chain(&variance).any(|v| !v.is_finite()) {
                        return Err(TrainError::Unfit(format!(
                            "feature '{name}' has values too large for a Gaussian"
                        )));
                    }
                    features.push(NaiveBayesFeature::Gaussian { mean, variance });
                }
                Some(n_cat) => {
                    if n_cat > MAX_CATEGORIES {
                        return Err(TrainError::Unfit(format!(
                            "feature '{name}' has {n_cat} categories (at most {MAX_CATEGORIES})"
                        )));
                    }
                    let mut count = vec![vec![0.0f64; n_cat]; k];
                    for (v, y) in col.iter().zip(&classes) {
                        if let Some(code) = category_code(*v, n_cat) {
                            count[*y][code] += 1.0;
                        }
                    }
                    let log_prob = count
                        .into_iter()
                        .map(|row| {
                            let total: f64 = row.iter().sum::<f64>() + self.alpha * n_cat as f64;
                            row.into_iter()
                                .map(|c| ((c + self.alpha) / total).ln())
                                .collect()
                        })
                        .collect();
                    features.push(NaiveBayesFeature::Categorical { log_prob });
                }
            }
        }
        progress.update(nf as u64, nf as u64, "done");
        Ok(ModelBody::NaiveBayes(NaiveBayesBody {
            class_log_prior,
            features,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mean_var_is_population() {
        let (m, v) = mean_var([1.0, 2.0, 3.0, 4.0].into_iter()).unwrap();
        assert_eq!((m, v), (2.5, 1.25));
        assert!(mean_var(std::iter::empty()).is_none());
    }

    #[test]
    fn params_are_checked() {
        assert!(NaiveBayes::from_params(&json!({"alpha": 0.5})).is_ok());
        for (p, name) in [
            (json!({"alpha": 0.0}), "alpha"),
            (json!({"var_smoothing": -1.0}), "var_smoothing"),
            (json!({"smoothing": 1.0}), "smoothing"),
        ] {
            match NaiveBayes::from_params(&p) {
                Err(TrainError::Param { name: n, .. }) => assert_eq!(n, name),
                other => panic!("{other:?}"),
            }
        }
    }
}

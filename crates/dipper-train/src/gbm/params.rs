//! Hyperparameters of gradient boosting: LightGBM's names and defaults, parsed from a JSON object (unknown keys
//! and out-of-range values are errors naming the parameter).

use serde_json::{json, Value};

use crate::TrainError;

/// The loss being minimised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectiveKind {
    /// Chosen from the target: binary or multiclass for classification, regression otherwise.
    Auto,
    /// L2 regression.
    Regression,
    /// Poisson regression with a log link.
    Poisson,
    /// Logistic loss on two classes.
    Binary,
    /// Softmax over all classes.
    Multiclass,
}

impl ObjectiveKind {
    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "auto" => Self::Auto,
            "regression" | "l2" | "mse" => Self::Regression,
            "poisson" => Self::Poisson,
            "binary" => Self::Binary,
            "multiclass" | "softmax" => Self::Multiclass,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Auto => "auto",
            Self::Regression => "regression",
            Self::Poisson => "poisson",
            Self::Binary => "binary",
            Self::Multiclass => "multiclass",
        }
    }
}

/// All hyperparameters, defaults filled in.
#[derive(Debug, Clone, PartialEq)]
pub struct GbmParams {
    pub objective: ObjectiveKind,
    pub num_iterations: usize,
    pub learning_rate: f64,
    pub num_leaves: usize,
    /// 0 = no limit.
    pub max_depth: usize,
    pub min_data_in_leaf: usize,
    pub min_sum_hessian_in_leaf: f64,
    pub lambda_l1: f64,
    pub lambda_l2: f64,
    pub min_gain_to_split: f64,
    /// Fraction of rows drawn (without replacement) anew for each iteration's trees (LightGBM's
    /// `bagging_freq` = 1).
    pub bagging_fraction: f64,
    /// Fraction of features each tree may split on.
    pub feature_fraction: f64,
    /// Stop when the validation metric has not improved for this many iterations (0 = never; only with a
    /// validation set).
    pub early_stopping_rounds: usize,
    /// Most bins per feature, the missing-value bin included (2..=255).
    pub max_bin: usize,
    /// Categorical features with at most this many categories are split one category against the rest.
    pub max_cat_to_onehot: usize,
    /// Most categories on the left side of a many-vs-many categorical split.
    pub max_cat_threshold: usize,
    /// Added to the hessian sum when ordering categories by gradient ratio.
    pub cat_smooth: f64,
    pub seed: u64,
}

impl Default for GbmParams {
    fn default() -> Self {
        GbmParams {
            objective: ObjectiveKind::Auto,
            num_iterations: 100,
            learning_rate: 0.1,
            num_leaves: 31,
            max_depth: 0,
            min_data_in_leaf: 20,
            min_sum_hessian_in_leaf: 1e-3,
            lambda_l1: 0.0,
            lambda_l2: 0.0,
            min_gain_to_split: 0.0,
            bagging_fraction: 1.0,
            feature_fraction: 1.0,
            early_stopping_rounds: 20,
            max_bin: 255,
            max_cat_to_onehot: 4,
            max_cat_threshold: 32,
            cat_smooth: 10.0,
            seed: 0,
        }
    }
}

fn uint(name: &str, v: &Value, min: u64, max: u64) -> Result<u64, TrainError> {
    match v.as_u64() {
        Some(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(TrainError::param(
            name,
            format!("expected an integer in {min}..={max}, got {v}"),
        )),
    }
}

/// A finite number in `[min, max]`; `open_min` excludes `min`.
fn num(name: &str, v: &Value, min: f64, max: f64, open_min: bool) -> Result<f64, TrainError> {
    match v.as_f64() {
        Some(x) if x.is_finite() && x <= max && (x > min || (!open_min && x == min)) => Ok(x),
        _ => {
            let lo = if open_min { "(" } else { "[" };
            Err(TrainError::param(
                name,
                format!("expected a number in {lo}{min}, {max}], got {v}"),
            ))
        }
    }
}

impl GbmParams {
    pub fn from_json(params: &Value) -> Result<Self, TrainError> {
        let obj = crate::params::map(params)?;
        let mut p = GbmParams::default();
        for (k, v) in obj {
            let key = k.as_str();
            match key {
                "objective" => {
                    p.objective = v.as_str().and_then(ObjectiveKind::parse).ok_or_else(|| {
                        TrainError::param(
                            key,
                            format!(
                                "expected auto, regression, poisson, binary or multiclass, got {v}"
                            ),
                        )
                    })?
                }
                "num_iterations" => p.num_iterations = uint(key, v, 1, 1_000_000)? as usize,
                "learning_rate" => p.learning_rate = num(key, v, 0.0, 1e6, true)?,
                "num_leaves" => p.num_leaves = uint(key, v, 2, 131_072)? as usize,
                "max_depth" => {
                    // LightGBM spells "no limit" as -1.
                    p.max_depth = match v.as_i64() {
                        Some(d) if d <= 0 => 0,
                        _ => uint(key, v, 1, 1000)? as usize,
                    }
                }
                "min_data_in_leaf" => {
                    p.min_data_in_leaf = uint(key, v, 1, u32::MAX as u64)? as usize
                }
                "min_sum_hessian_in_leaf" => {
                    p.min_sum_hessian_in_leaf = num(key, v, 0.0, f64::MAX, false)?
                }
                "lambda_l1" => p.lambda_l1 = num(key, v, 0.0, f64::MAX, false)?,
                "lambda_l2" => p.lambda_l2 = num(key, v, 0.0, f64::MAX, false)?,
                "min_gain_to_split" => p.min_gain_to_split = num(key, v, 0.0, f64::MAX, false)?,
                "bagging_fraction" => p.bagging_fraction = num(key, v, 0.0, 1.0, true)?,
                "feature_fraction" => p.feature_fraction = num(key, v, 0.0, 1.0, true)?,
                "early_stopping_rounds" => {
                    p.early_stopping_rounds = uint(key, v, 0, 1_000_000)? as usize
                }
                "max_bin" => p.max_bin = uint(key, v, 3, 255)? as usize,
                "max_cat_to_onehot" => p.max_cat_to_onehot = uint(key, v, 1, 255)? as usize,
                "max_cat_threshold" => p.max_cat_threshold = uint(key, v, 1, 255)? as usize,
                "cat_smooth" => p.cat_smooth = num(key, v, 0.0, f64::MAX, false)?,
                "seed" => p.seed = uint(key, v, 0, u64::MAX)?,
                _ => return Err(TrainError::param(key, "unknown parameter")),
            }
        }
        Ok(p)
    }

    pub fn to_json(&self) -> Value {
        json!({
            "objective": self.objective.name(),
            "num_iterations": self.num_iterations,
            "learning_rate": self.learning_rate,
            "num_leaves": self.num_leaves,
            "max_depth": self.max_depth,
            "min_data_in_leaf": self.min_data_in_leaf,
            "min_sum_hessian_in_leaf": self.min_sum_hessian_in_leaf,
            "lambda_l1": self.lambda_l1,
            "lambda_l2": self.lambda_l2,
            "min_gain_to_split": self.min_gain_to_split,
            "bagging_fraction": self.bagging_fraction,
            "feature_fraction": self.feature_fraction,
            "early_stopping_rounds": self.early_stopping_rounds,
            "max_bin": self.max_bin,
            "max_cat_to_onehot": self.max_cat_to_onehot,
            "max_cat_threshold": self.max_cat_threshold,
            "cat_smooth": self.cat_smooth,
            "seed": self.seed,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err_name(v: Value) -> String {
        match GbmParams::from_json(&v) {
            Err(TrainError::Param { name, .. }) => name,
            other => panic!("expected a parameter error, got {other:?}"),
        }
    }

    #[test]
    fn defaults_round_trip_and_errors_name_the_parameter() {
        let p = GbmParams::from_json(&json!({"seed": 3})).unwrap();
        assert_eq!(p.seed, 3);
        assert_eq!(GbmParams::from_json(&p.to_json()).unwrap(), p);
        assert_eq!(err_name(json!({"num_leafs": 3})), "num_leafs");
        assert_eq!(err_name(json!({"num_leaves": 1})), "num_leaves");
        assert_eq!(err_name(json!({"learning_rate": 0})), "learning_rate");
        assert_eq!(
            err_name(json!({"bagging_fraction": 1.5})),
            "bagging_fraction"
        );
        assert_eq!(err_name(json!({"objective": "huber"})), "objective");
        assert_eq!(err_name(json!({"max_bin": 256})), "max_bin");
        assert_eq!(err_name(json!([1])), "params");
        let d = GbmParams::from_json(&json!({"max_depth": -1})).unwrap();
        assert_eq!(d.max_depth, 0);
    }
}

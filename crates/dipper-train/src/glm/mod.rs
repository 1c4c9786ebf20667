//! Generalised linear models: linear (gaussian), logistic (binomial), softmax (multinomial) and Poisson
//! regression with elastic-net regularisation.
//!
//! # Hyperparameters
//!
//! | name | default | meaning |
//! |---|---|---|
//! | `family` | `auto` | `gaussian`, `binomial`, `multinomial`, `poisson`; `auto` = gaussian for regression, binomial for two classes, multinomial for more |
//! | `alpha` | `0.0001` | penalty strength (see below) |
//! | `l1_ratio` | `0` | elastic-net mixing: 0 = ridge (L2), 1 = lasso (L1) |
//! | `fit_intercept` | `true` | fit an unpenalised intercept |
//! | `max_iter` | `100` | outer (Newton) iterations; running out is a warning, not an error |
//! | `tol` | `1e-7` | stop when no standardised coefficient moves more than this in an iteration |
//! | `seed` | run's seed | recorded only: the solver is deterministic |
//!
//! # The penalty
//!
//! The solver minimises, over standardised features (mean 0, population standard deviation 1; without an
//! intercept, root mean square 1 and no centring):
//!
//! ```text
//! (1/n) sum_i loss_i + alpha * ( l1_ratio * ||b||_1 + (1 - l1_ratio) / 2 * ||b||_2^2 )
//! ```
//!
//! with `loss` half the squared error (gaussian), the negative log-likelihood (binomial, multinomial) or the
//! Poisson negative log-likelihood (= half the deviance up to a constant). The intercept is never penalised.
//! This is scikit-learn's `ElasticNet` / `PoissonRegressor` convention, so `alpha` means the same there; for
//! scikit-learn's `LogisticRegression(C)` on standardised features (which penalises `1/(2C) ||b||^2` against
//! the *sum* of losses) use `alpha = 1 / (C * n_rows)` with `l1_ratio = 0`. The multinomial family penalises
//! all classes' coefficients (no reference class), like scikit-learn.
//!
//! Categorical features are one-hot encoded with one term per category (no dropped level; the penalty keeps
//! the problem well-posed, and a tiny ridge is added to a singular Newton system when `alpha` is 0). Terms that
//! are constant in the training data get coefficient 0. The stored coefficients are in the raw input scale
//! (standardisation folded in), see [`dipper_models::native::linear`].
//!
//! Training rows must be complete: a missing (NaN) or infinite feature is an error naming the feature.

use crate::params;
mod solver;

use dipper_models::native::linear::{
    category_code, LinearBody, LinearInput, LinearLink, LinearOutput,
};
use dipper_models::native::ModelBody;
use serde_json::json;

use crate::{Algorithm, Dataset, Progress, Target, TrainError};
use solver::{Family, Problem};

/// Most design terms (numeric features plus one-hot categories) a GLM fits.
pub const MAX_TERMS: usize = 4096;

const KNOWN: &[&str] = &[
    "family",
    "alpha",
    "l1_ratio",
    "fit_intercept",
    "max_iter",
    "tol",
    "seed",
];

/// A configured GLM.
#[derive(Debug, Clone)]
pub struct Glm {
    /// `None` = chosen from the target.
    family: Option<Family>,
    alpha: f64,
    l1_ratio: f64,
    fit_intercept: bool,
    max_iter: usize,
    tol: f64,
    seed: u64,
}

fn family_name(f: Family) -> &'static str {
    match f {
        Family::Gaussian => "gaussian",
        Family::Binomial => "binomial",
        Family::Multinomial => "multinomial",
        Family::Poisson => "poisson",
    }
}

impl Glm {
    pub fn from_params(p: &serde_json::Value) -> Result<Self, TrainError> {
        let obj = params::object(p, KNOWN)?;
        let family = match params::string(obj, "family")? {
            None | Some("auto") => None,
            Some("gaussian") => Some(Family::Gaussian),
            Some("binomial") => Some(Family::Binomial),
            Some("multinomial") => Some(Family::Multinomial),
            Some("poisson") => Some(Family::Poisson),
            Some(other) => {
                return Err(TrainError::param(
                    "family",
                    format!(
                        "unknown family '{other}' (auto, gaussian, binomial, multinomial, poisson)"
                    ),
                ))
            }
        };
        Ok(Glm {
            family,
            alpha: params::number(obj, "alpha", 1e-4, 0.0, f64::MAX)?,
            l1_ratio: params::number(obj, "l1_ratio", 0.0, 0.0, 1.0)?,
            fit_intercept: params::boolean(obj, "fit_intercept", true)?,
            max_iter: params::integer(obj, "max_iter", 100, 1)?.min(1_000_000) as usize,
            tol: {
                let t = params::number(obj, "tol", 1e-7, 0.0, f64::MAX)?;
                if t <= 0.0 {
                    return Err(TrainError::param("tol", "must be positive"));
                }
                t
            },
            seed: params::integer(obj, "seed", 0, 0)?,
        })
    }

    /// The family for this data, checking that it fits the target.
    fn family_for(&self, train: &Dataset) -> Result<Family, TrainError> {
        let k = train.n_classes();
        let family = match (self.family, &train.target) {
            (None, Target::Regression) => Family::Gaussian,
            (None, Target::Classification { .. }) if k <= 2 => Family::Binomial,
            (None, Target::Classification { .. }) => Family::Multinomial,
            (Some(f @ (Family::Gaussian | Family::Poisson)), Target::Regression) => f,
            (Some(Family::Binomial), Target::Classification { .. }) if k <= 2 => Family::Binomial,
            (Some(Family::Multinomial), Target::Classification { .. }) => Family::Multinomial,
            (Some(f), _) => {
                let what = if k > 0 {
                    format!("a classification target with {k} classes")
                } else {
                    "a regression target".to_string()
                };
                return Err(TrainError::param(
                    "family",
                    format!("family '{}' does not fit {what}", family_name(f)),
                ));
            }
        };
        Ok(family)
    }
}

/// The design matrix: one standardised column per non-constant term.
struct Design {
    inputs: Vec<LinearInput>,
    n_terms: usize,
    /// Per active column: its term index, centre and scale.
    active: Vec<(usize, f64, f64)>,
    columns: Vec<Vec<f64>>,
}

fn design(train: &Dataset, center: bool) -> Result<Design, TrainError> {
    let n = train.n_rows();
    let mut inputs = Vec::with_capacity(train.n_features());
    let mut n_terms = 0usize;
    let mut active = Vec::new();
    let mut columns = Vec::new();
    let mut add = |term: usize, mut col: Vec<f64>, active: &mut Vec<(usize, f64, f64)>| {
        let mean = if center {
            col.iter().sum::<f64>() / n as f64
        } else {
            0.0
        };
        let var = col.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n as f64;
        let scale = var.sqrt();
        if !scale.is_finite() || scale <= 1e-12 * (1.0 + mean.abs()) {
            return; // constant: coefficient 0
        }
        for v in col.iter_mut() {
            *v = (*v - mean) / scale;
        }
        active.push((term, mean, scale));
        columns.push(col);
    };
    for (j, col) in train.columns.iter().enumerate() {
        let name = &train.schema.get(j).name;
        if let Some(bad) = col.iter().position(|v| !v.is_finite()) {
            return Err(TrainError::Unfit(format!(
                "feature '{name}' is missing or infinite in row {} (and maybe others); glm needs complete \
                 numeric rows: impute or drop them",
                bad + 1
            )));
        }
        match train.n_categories(j) {
            None => {
                add(n_terms, col.clone(), &mut active);
                inputs.push(LinearInput::Numeric {});
                n_terms += 1;
            }
            Some(k) => {
                if n_terms.saturating_add(k) > MAX_TERMS {
                    return Err(TrainError::Unfit(format!(
                        "feature '{name}' has {k} categories: one-hot encoding would exceed {MAX_TERMS} terms"
                    )));
                }
                let codes: Vec<Option<usize>> = col.iter().map(|&x| category_code(x, k)).collect();
                let mut seen = vec![false; k];
                for c in codes.iter().flatten() {
                    seen[*c] = true;
                }
                for (c, _) in seen.iter().enumerate().filter(|(_, s)| **s) {
                    let ind = codes
                        .iter()
                        .map(|v| if *v == Some(c) { 1.0 } else { 0.0 })
                        .collect();
                    add(n_terms + c, ind, &mut active);
                }
                inputs.push(LinearInput::OneHot { categories: k });
                n_terms += k;
            }
        }
        if n_terms > MAX_TERMS {
            return Err(TrainError::Unfit(format!(
                "the features make more than {MAX_TERMS} terms"
            )));
        }
    }
    Ok(Design {
        inputs,
        n_terms,
        active,
        columns,
    })
}

impl Algorithm for Glm {
    fn name(&self) -> &'static str {
        "glm"
    }

    fn params(&self) -> serde_json::Value {
        json!({
            "family": self.family.map_or("auto", family_name),
            "alpha": self.alpha,
            "l1_ratio": self.l1_ratio,
            "fit_intercept": self.fit_intercept,
            "max_iter": self.max_iter,
            "tol": self.tol,
            "seed": self.seed,
        })
    }

    fn fit(
        &self,
        train: &Dataset,
        _valid: Option<&Dataset>,
        progress: &dyn Progress,
    ) -> Result<ModelBody, TrainError> {
        if train.n_rows() == 0 {
            return Err(TrainError::Unfit("no training rows".into()));
        }
        let family = self.family_for(train)?;
        match family {
            Family::Binomial | Family::Multinomial => {
                params::class_counts(train)?;
            }
            Family::Gaussian | Family::Poisson => {
                if let Some(i) = train.y.iter().position(|y| !y.is_finite()) {
                    return Err(TrainError::Unfit(format!(
                        "the target is missing or infinite in row {}",
                        i + 1
                    )));
                }
            }
        }
        if family == Family::Poisson {
            if let Some(i) = train.y.iter().position(|y| *y < 0.0) {
                return Err(TrainError::Unfit(format!(
                    "the poisson family needs non-negative targets; row {} has {}",
                    i + 1,
                    train.y[i]
                )));
            }
            if train.y.iter().all(|y| *y == 0.0) {
                return Err(TrainError::Unfit(
                    "the poisson family needs some positive targets; all are 0".into(),
                ));
            }
        }
        let d = design(train, self.fit_intercept)?;
        let mut x = Vec::with_capacity(d.columns.len() + 1);
        let mut penalised = Vec::with_capacity(d.columns.len() + 1);
        if self.fit_intercept {
            x.push(vec![1.0; train.n_rows()]);
            penalised.push(false);
        }
        x.extend(d.columns.iter().cloned());
        penalised.resize(x.len(), true);
        let n_outputs = if family == Family::Multinomial {
            train.n_classes()
        } else {
            1
        };
        let problem = Problem {
            x: &x,
            penalised: &penalised,
            y: &train.y,
            family,
            n_outputs,
            alpha: self.alpha,
            l1_ratio: self.l1_ratio,
            max_iter: self.max_iter,
            tol: self.tol,
        };
        let max_iter = self.max_iter as u64;
        let solution = problem.solve(|it, obj| {
            progress.update(it as u64, max_iter, &format!("objective {obj:.8}"));
        });
        if !solution.converged {
            progress.update(
                max_iter,
                max_iter,
                &format!(
                    "warning: glm did not converge in {} iterations (last coefficient change {:.3e} > tol {:.1e}); \
                     raise max_iter or alpha",
                    solution.iterations, solution.last_change, self.tol
                ),
            );
        } else {
            progress.update(
                max_iter,
                max_iter,
                &format!(
                    "converged in {} iterations, objective {:.8}",
                    solution.iterations, solution.objective
                ),
            );
        }
        let offset = usize::from(self.fit_intercept);
        let outputs = solution
            .coef
            .iter()
            .map(|b| {
                let mut coefficients = vec![0.0; d.n_terms];
                let mut intercept = if self.fit_intercept { b[0] } else { 0.0 };
                for (a, (term, mean, scale)) in d.active.iter().enumerate() {
                    let c = b[offset + a] / scale;
                    coefficients[*term] = c;
                    intercept -= c * mean;
                }
                LinearOutput {
                    intercept,
                    coefficients,
                }
            })
            .collect::<Vec<_>>();
        if outputs
            .iter()
            .any(|o| !o.intercept.is_finite() || o.coefficients.iter().any(|c| !c.is_finite()))
        {
            return Err(TrainError::Unfit(
                "the fit diverged (non-finite coefficients); raise alpha".into(),
            ));
        }
        let link = match family {
            Family::Gaussian => LinearLink::Identity,
            Family::Poisson => LinearLink::Log,
            Family::Binomial => LinearLink::Logit,
            Family::Multinomial => LinearLink::Softmax,
        };
        Ok(ModelBody::Linear(LinearBody {
            link,
            inputs: d.inputs,
            outputs,
        }))
    }
}

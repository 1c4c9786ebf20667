//! CART decision trees (`--algorithm tree`) and random forests (`--algorithm rf`), trained as scikit-learn's
//! `DecisionTree*` and `RandomForest*` do (exact best splits, Gini/entropy or squared error, learned missing-value
//! directions), written as native tree bodies: classifiers store leaf class probabilities (p(class 1) for two
//! classes), forests average their trees.
//!
//! - [`params`]: hyperparameters and their defaults.
//! - [`cart`]: growing one tree; [`categorical`]: its category-set splits.
//! - [`forest`]: bootstrap, parallel growth and the out-of-bag score.

mod cart;
mod categorical;
mod forest;
pub mod params;

use dipper_models::native::trees::{Tree, TreeOutput, TreesBody};
use dipper_models::native::ModelBody;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde_json::{json, Map, Value};

use crate::{Algorithm, Dataset, Progress, Target, TrainError};
use cart::{Growth, Labels, Problem};
pub use forest::RandomForest;
use params::{Criterion, MaxFeatures, Params, TreeParams, TREE_KEYS};

/// A single CART tree. Defaults as scikit-learn's `DecisionTreeClassifier`/`Regressor`: unlimited depth,
/// `min_samples_split` 2, `min_samples_leaf` 1, every feature considered at each split.
#[derive(Debug, Clone)]
pub struct DecisionTree {
    pub tree: TreeParams,
    pub seed: u64,
}

impl DecisionTree {
    /// Reads `criterion`, `max_depth`, `min_samples_split`, `min_samples_leaf`, `max_features`,
    /// `min_impurity_decrease` and `seed`.
    pub fn from_params(params: &Value) -> Result<Self, TrainError> {
        let p = Params::new(params, &[TREE_KEYS, &["seed"]])?;
        Ok(DecisionTree {
            tree: TreeParams::read(&p)?,
            seed: p.seed()?,
        })
    }
}

impl Algorithm for DecisionTree {
    fn name(&self) -> &'static str {
        "tree"
    }

    fn params(&self) -> Value {
        let mut m = Map::new();
        self.tree.to_json(&mut m);
        m.insert("seed".into(), json!(self.seed));
        Value::Object(m)
    }

    fn fit(
        &self,
        train: &Dataset,
        _valid: Option<&Dataset>,
        progress: &dyn Progress,
    ) -> Result<ModelBody, TrainError> {
        let data = Prepared::new(train)?;
        let growth = data.growth(&self.tree, MaxFeatures::All)?;
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed);
        let weights = vec![1.0; train.n_rows()];
        let tree = cart::grow(&data.problem(train), &growth, &weights, &mut rng)?;
        progress.update(1, 1, "");
        Ok(data.body(vec![tree]))
    }
}

/// Validated training targets.
struct Prepared {
    /// Class index per row (classification), empty for regression.
    classes: Vec<u32>,
    /// Number of classes, 0 for regression.
    k: usize,
    /// Per feature, the category count when split into category sets.
    categories: Vec<Option<usize>>,
    n_features: usize,
    n_rows: usize,
}

impl Prepared {
    /// Checks the dataset: rows present, column lengths, finite targets, class indices in range and at least
    /// two classes present.
    fn new(train: &Dataset) -> Result<Self, TrainError> {
        let n = train.n_rows();
        if n == 0 {
            return Err(TrainError::Unfit("the training data has no rows".into()));
        }
        if n >= (i32::MAX / 2) as usize {
            return Err(TrainError::Unfit(format!("too many training rows ({n})")));
        }
        if let Some((j, c)) = train.columns.iter().enumerate().find(|(_, c)| c.len() != n) {
            return Err(TrainError::Unfit(format!(
                "feature {j} has {} values for {n} rows",
                c.len()
            )));
        }
        let place = |i: usize| format!("training row {}, field '{}'", i + 1, train.label);
        match &train.target {
            Target::Regression => {
                if let Some(i) = train.y.iter().position(|v| !v.is_finite()) {
                    return Err(TrainError::data(
                        place(i),
                        format!("target {} is not a finite number", train.y[i]),
                    ));
                }
                Ok(Prepared {
                    categories: set_categories(train),
                    classes: Vec::new(),
                    k: 0,
                    n_features: train.n_features(),
                    n_rows: n,
                })
            }
            Target::Classification { classes } => {
                let k = classes.len();
                let mut seen = vec![0usize; k];
                let mut y = Vec::with_capacity(n);
                for (i, &v) in train.y.iter().enumerate() {
                    if !(v >= 0.0 && v < k as f64 && v.fract() == 0.0) {
                        return Err(TrainError::data(
                            place(i),
                            format!("class index {v} is not one of the {k} classes"),
                        ));
                    }
                    seen[v as usize] += 1;
                    y.push(v as u32);
                }
                let present = seen.iter().filter(|&&c| c > 0).count();
                if present < 2 {
                    let only = seen
                        .iter()
                        .position(|&c| c > 0)
                        .map(|c| format!(" ({:?})", classes[c]))
                        .unwrap_or_default();
                    return Err(TrainError::Unfit(format!(
                        "the training data has a single class{only}; a classifier needs at least two"
                    )));
                }
                Ok(Prepared {
                    categories: set_categories(train),
                    classes: y,
                    k,
                    n_features: train.n_features(),
                    n_rows: n,
                })
            }
        }
    }

    fn problem<'a>(&'a self, train: &'a Dataset) -> Problem<'a> {
        Problem {
            columns: &train.columns,
            categories: &self.categories,
            labels: if self.k == 0 {
                Labels::Values(&train.y)
            } else {
                Labels::Classes {
                    y: &self.classes,
                    k: self.k,
                }
            },
        }
    }

    /// Resolves the parameters for this data; `default_features` applies when `max_features` is `auto`.
    fn growth(&self, p: &TreeParams, default_features: MaxFeatures) -> Result<Growth, TrainError> {
        let criterion = match (p.criterion, self.k) {
            (None, 0) => Criterion::SquaredError,
            (None, _) => Criterion::Gini,
            (Some(Criterion::SquaredError), 0) => Criterion::SquaredError,
            (Some(c @ (Criterion::Gini | Criterion::Entropy)), k) if k > 0 => c,
            (Some(_), 0) => {
                return Err(TrainError::param(
                    "criterion",
                    "regression takes squared_error",
                ))
            }
            (Some(_), _) => {
                return Err(TrainError::param(
                    "criterion",
                    "classification takes gini or entropy",
                ))
            }
        };
        Ok(Growth {
            criterion,
            max_depth: p.max_depth.unwrap_or(usize::MAX),
            min_samples_split: p.min_samples_split.resolve(self.n_rows).max(2),
            min_samples_leaf: p.min_samples_leaf.resolve(self.n_rows).max(1),
            max_features: p
                .max_features
                .unwrap_or(default_features)
                .resolve(self.n_features),
            min_impurity_decrease: p.min_impurity_decrease,
        })
    }

    /// The model body of `trees`, averaged.
    fn body(&self, trees: Vec<Tree>) -> ModelBody {
        let (output, n_outputs) = match self.k {
            0 => (TreeOutput::Identity, 1),
            2 => (TreeOutput::BinaryProbability, 1),
            k => (TreeOutput::Probabilities, k),
        };
        ModelBody::Trees(TreesBody {
            n_outputs,
            base_score: vec![0.0; n_outputs],
            divisor: trees.len().max(1) as f64,
            output,
            trees,
        })
    }
}

/// Per feature, its category count if it is categorical with 2 to [`cart::MAX_SET_CATEGORIES`] categories.
fn set_categories(train: &Dataset) -> Vec<Option<usize>> {
    (0..train.n_features())
        .map(|j| {
            train
                .n_categories(j)
                .filter(|k| (2..=cart::MAX_SET_CATEGORIES).contains(k))
        })
        .collect()
}

#[cfg(test)]
mod tests;

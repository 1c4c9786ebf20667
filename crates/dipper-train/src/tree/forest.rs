//! Random forests: each tree grows on a bootstrap sample of the rows (drawn as per-row counts, used as row
//! weights, as scikit-learn does) considering `max_features` random features per split. Trees grow in parallel
//! on the rayon pool; tree `t` draws everything from its own `ChaCha8Rng` seeded with the forest seed on stream
//! `t`, so the forest is the same for a seed whatever the thread count. The optional out-of-bag score (accuracy
//! or R² over the rows each tree did not see) is reported in the final progress message.

use std::sync::atomic::{AtomicU64, Ordering};

use dipper_models::native::trees::Tree;
use dipper_models::native::ModelBody;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde_json::{json, Map, Value};

use super::cart::{self, Labels};
use super::params::{self, Count, MaxFeatures, Params, TreeParams, TREE_KEYS};
use super::Prepared;
use crate::{Algorithm, Dataset, Progress, TrainError};

const FOREST_KEYS: &[&str] = &[
    "n_estimators",
    "bootstrap",
    "max_samples",
    "oob_score",
    "seed",
];

/// A random forest. Defaults as scikit-learn's `RandomForestClassifier`/`Regressor`: 100 trees, bootstrap
/// samples of the training size, unlimited depth, `max_features` `sqrt` for classification and all features
/// for regression.
#[derive(Debug, Clone)]
pub struct RandomForest {
    pub tree: TreeParams,
    pub n_estimators: usize,
    pub bootstrap: bool,
    /// Bootstrap sample size; `None` = the number of training rows.
    pub max_samples: Option<Count>,
    pub oob_score: bool,
    pub seed: u64,
}

impl RandomForest {
    /// Reads the tree parameters plus `n_estimators`, `bootstrap`, `max_samples`, `oob_score` and `seed`.
    pub fn from_params(params: &Value) -> Result<Self, TrainError> {
        let p = Params::new(params, &[TREE_KEYS, FOREST_KEYS])?;
        let n_estimators = match p.get("n_estimators") {
            None => 100,
            Some(v) => params::positive_int("n_estimators", v, 1)?,
        };
        let bootstrap = p.bool("bootstrap", true)?;
        let max_samples = match p.get("max_samples") {
            None | Some(Value::Null) => None,
            Some(v) => Some(params::count("max_samples", v, 1)?),
        };
        if max_samples.is_some() && !bootstrap {
            return Err(TrainError::param(
                "max_samples",
                "only applies with bootstrap = true",
            ));
        }
        let oob_score = p.bool("oob_score", false)?;
        if oob_score && !bootstrap {
            return Err(TrainError::param("oob_score", "needs bootstrap = true"));
        }
        Ok(RandomForest {
            tree: TreeParams::read(&p)?,
            n_estimators,
            bootstrap,
            max_samples,
            oob_score,
            seed: p.seed()?,
        })
    }

    /// The row weights of tree `t`'s sample, drawn first from its generator.
    fn sample(&self, rng: &mut ChaCha8Rng, n: usize) -> Vec<f64> {
        if !self.bootstrap {
            return vec![1.0; n];
        }
        let draws = self.max_samples.map_or(n, |c| c.resolve(n).max(1));
        let mut w = vec![0.0; n];
        for _ in 0..draws {
            w[rng.random_range(0..n)] += 1.0;
        }
        w
    }

    fn rng(&self, t: usize) -> ChaCha8Rng {
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed);
        rng.set_stream(t as u64);
        rng
    }
}

impl Algorithm for RandomForest {
    fn name(&self) -> &'static str {
        "rf"
    }

    fn params(&self) -> Value {
        let mut m = Map::new();
        self.tree.to_json(&mut m);
        m.insert("n_estimators".into(), json!(self.n_estimators));
        m.insert("bootstrap".into(), json!(self.bootstrap));
        m.insert(
            "max_samples".into(),
            match self.max_samples {
                None => Value::Null,
                Some(Count::Rows(r)) => json!(r),
                Some(Count::Fraction(f)) => json!(f),
            },
        );
        m.insert("oob_score".into(), json!(self.oob_score));
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
        if let Some(Count::Rows(r)) = self.max_samples {
            if r > train.n_rows() {
                return Err(TrainError::param(
                    "max_samples",
                    format!("{r} is more than the {} training rows", train.n_rows()),
                ));
            }
        }
        let default_features = if data.k > 0 {
            MaxFeatures::Sqrt
        } else {
            MaxFeatures::All
        };
        let growth = data.growth(&self.tree, default_features)?;
        let problem = data.problem(train);
        let n = train.n_rows();
        let total = self.n_estimators as u64;
        let done = AtomicU64::new(0);
        let trees = (0..self.n_estimators)
            .into_par_iter()
            .map(|t| {
                let mut rng = self.rng(t);
                let weights = self.sample(&mut rng, n);
                let tree = cart::grow(&problem, &growth, &weights, &mut rng)?;
                let d = done.fetch_add(1, Ordering::Relaxed) + 1;
                if d < total {
                    progress.update(d, total, "");
                }
                Ok(tree)
            })
            .collect::<Result<Vec<Tree>, TrainError>>()?;
        let message = if self.oob_score {
            self.oob(&trees, &problem, n)
        } else {
            String::new()
        };
        progress.update(total, total, &message);
        Ok(data.body(trees))
    }
}

impl RandomForest {
    /// The out-of-bag accuracy or R², as a progress message.
    fn oob(&self, trees: &[Tree], problem: &cart::Problem, n: usize) -> String {
        let width = match problem.labels {
            Labels::Classes { k, .. } => k,
            Labels::Values(_) => 1,
        };
        let mut sums = vec![0.0; n * width];
        let mut votes = vec![0u32; n];
        for (t, tree) in trees.iter().enumerate() {
            let weights = self.sample(&mut self.rng(t), n);
            for row in (0..n).filter(|&r| weights[r] == 0.0) {
                let leaf = leaf_of(tree, problem.columns, row);
                let out = &mut sums[row * width..(row + 1) * width];
                match (problem.labels, tree.leaf_vectors.get(leaf)) {
                    (Labels::Classes { k: 2, .. }, _) => {
                        out[1] += tree.value[leaf];
                        out[0] += 1.0 - tree.value[leaf];
                    }
                    (Labels::Classes { .. }, Some(v)) => {
                        out.iter_mut().zip(v).for_each(|(o, v)| *o += v)
                    }
                    _ => out[0] += tree.value[leaf],
                }
                votes[row] += 1;
            }
        }
        let scored: Vec<usize> = (0..n).filter(|&r| votes[r] > 0).collect();
        if scored.is_empty() {
            return "oob: every row is in every bootstrap sample".into();
        }
        match problem.labels {
            Labels::Classes { y, .. } => {
                let correct = scored
                    .iter()
                    .filter(|&&r| {
                        let s = &sums[r * width..(r + 1) * width];
                        let best = (0..width).fold(0, |b, c| if s[c] > s[b] { c } else { b });
                        best == y[r] as usize
                    })
                    .count();
                format!("oob accuracy {:.4}", correct as f64 / scored.len() as f64)
            }
            Labels::Values(y) => {
                let mean = scored.iter().map(|&r| y[r]).sum::<f64>() / scored.len() as f64;
                let (mut sse, mut sst) = (0.0, 0.0);
                for &r in &scored {
                    let p = sums[r] / f64::from(votes[r]);
                    sse += (y[r] - p) * (y[r] - p);
                    sst += (y[r] - mean) * (y[r] - mean);
                }
                let r2 = if sst > 0.0 { 1.0 - sse / sst } else { 0.0 };
                format!("oob r2 {r2:.4}")
            }
        }
    }
}

/// The leaf row `row` reaches, by the scorer's rules.
pub(crate) fn leaf_of(tree: &Tree, columns: &[Vec<f64>], row: usize) -> usize {
    let mut i = 0;
    while tree.left[i] >= 0 {
        let x = columns[tree.feature[i] as usize][row];
        let left = if x.is_nan() {
            tree.missing_left[i]
        } else {
            match tree.categories.get(i) {
                Some(set) if !set.is_empty() => {
                    x >= 0.0 && u32::try_from(x as u64).is_ok_and(|c| set.binary_search(&c).is_ok())
                }
                _ => x <= tree.threshold[i],
            }
        };
        i = if left { tree.left[i] } else { tree.right[i] } as usize;
    }
    i
}

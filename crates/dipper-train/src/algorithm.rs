//! The interface every training algorithm implements, progress reporting, and the registry that maps
//! `--algorithm NAME` and its hyperparameters to an implementation.

use dipper_models::native::ModelBody;

use crate::{Dataset, TrainError};

/// Receives training progress (the CLI draws a progress bar from it). Must be cheap: called per iteration.
pub trait Progress: Sync {
    /// `done` of `total` units (trees, epochs, iterations) finished; `message` is a short status such as
    /// `valid logloss 0.2314`.
    fn update(&self, done: u64, total: u64, message: &str);
}

/// Discards progress.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoProgress;

impl Progress for NoProgress {
    fn update(&self, _: u64, _: u64, _: &str) {}
}

/// A configured training algorithm.
pub trait Algorithm: Send + Sync + std::fmt::Debug {
    /// The `--algorithm` name: `gbm`, `rf`, `tree`, `glm`, `nb` or `mlp`.
    fn name(&self) -> &'static str;

    /// The hyperparameters as used (defaults filled in), recorded in the model file.
    fn params(&self) -> serde_json::Value;

    /// Fits a model on `train`. `valid`, when given, is held-out data for early stopping only (algorithms
    /// without early stopping ignore it). Deterministic for the configured seed.
    fn fit(
        &self,
        train: &Dataset,
        valid: Option<&Dataset>,
        progress: &dyn Progress,
    ) -> Result<ModelBody, TrainError>;
}

/// Builds an algorithm by name from hyperparameters given as a JSON object (unknown keys are errors naming the
/// key; missing keys take defaults). `seed` is the run's seed, used unless the parameters set their own.
pub fn algorithm(
    name: &str,
    params: &serde_json::Value,
    seed: u64,
) -> Result<Box<dyn Algorithm>, TrainError> {
    let mut params = params.clone();
    if let Some(obj) = params.as_object_mut() {
        obj.entry("seed").or_insert(seed.into());
    }
    Ok(match name {
        "gbm" => Box::new(crate::gbm::Gbm::from_params(&params)?),
        "rf" => Box::new(crate::tree::RandomForest::from_params(&params)?),
        "tree" => Box::new(crate::tree::DecisionTree::from_params(&params)?),
        "glm" => Box::new(crate::glm::Glm::from_params(&params)?),
        "nb" => Box::new(crate::naive_bayes::NaiveBayes::from_params(&params)?),
        "mlp" => Box::new(crate::mlp::Mlp::from_params(&params)?),
        other => {
            return Err(TrainError::param(
                "algorithm",
                format!("unknown algorithm '{other}' (gbm, rf, tree, glm, nb, mlp)"),
            ))
        }
    })
}

//! Placeholder, replaced by the implementation.

use dipper_models::native::ModelBody;

use crate::{Algorithm, Dataset, Progress, TrainError};

#[derive(Debug)]
pub struct NaiveBayes;

impl NaiveBayes {
    pub fn from_params(_params: &serde_json::Value) -> Result<Self, TrainError> {
        Err(TrainError::Unfit("not implemented yet".into()))
    }
}

impl Algorithm for NaiveBayes {
    fn name(&self) -> &'static str {
        "naive_bayes"
    }
    fn params(&self) -> serde_json::Value {
        serde_json::Value::Null
    }
    fn fit(
        &self,
        _: &Dataset,
        _: Option<&Dataset>,
        _: &dyn Progress,
    ) -> Result<ModelBody, TrainError> {
        Err(TrainError::Unfit("not implemented yet".into()))
    }
}

//! Placeholder, replaced by the implementation.

use dipper_models::native::ModelBody;

use crate::{Algorithm, Dataset, Progress, TrainError};

#[derive(Debug)]
pub struct Gbm;

impl Gbm {
    pub fn from_params(_params: &serde_json::Value) -> Result<Self, TrainError> {
        Err(TrainError::Unfit("not implemented yet".into()))
    }
}

impl Algorithm for Gbm {
    fn name(&self) -> &'static str {
        "gbm"
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

//! Placeholder, replaced by the implementation.

use dipper_models::native::ModelBody;

use crate::{Algorithm, Dataset, Progress, TrainError};

#[derive(Debug)]
pub struct DecisionTree;

impl DecisionTree {
    pub fn from_params(_params: &serde_json::Value) -> Result<Self, TrainError> {
        Err(TrainError::Unfit("not implemented yet".into()))
    }
}

impl Algorithm for DecisionTree {
    fn name(&self) -> &'static str {
        "tree"
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

#[derive(Debug)]
pub struct RandomForest;

impl RandomForest {
    pub fn from_params(_params: &serde_json::Value) -> Result<Self, TrainError> {
        Err(TrainError::Unfit("not implemented yet".into()))
    }
}

impl Algorithm for RandomForest {
    fn name(&self) -> &'static str {
        "tree"
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

//! dipper's own model file: a versioned, self-describing JSON document written by `dipper train` and loaded by
//! `dipper predict` / `dipper run` with no other flags.
//!
//! A file holds a header (what the model is: task, classes, the feature schema with the training data's ranges
//! and distributions that monitoring uses, algorithm and hyperparameters, validation metrics, where the data came
//! from) and a body (the fitted parameters). Trees and ensembles compile into the shared
//! [`TreeEnsemble`](crate::ensemble::TreeEnsemble); linear models, Naive Bayes and neural nets have their own
//! small scorers. Unknown fields are refused so that a file is never half-understood.

pub mod linear;
pub mod mlp;
pub mod naive_bayes;
pub mod trees;

use std::sync::Arc;

use dipper_core::{FeatureKind, FeatureSchema, FeatureSpec};
use serde::{Deserialize, Serialize};

use crate::model::{ClassLabel, Model, ModelInfo, Task};
use crate::{LoadContext, ModelError};

/// The `format` field every native file starts with.
pub const FORMAT_NAME: &str = "dipper-model";
/// The newest file version this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;

/// A whole native model file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NativeModel {
    /// Always [`FORMAT_NAME`].
    pub format: String,
    pub format_version: u32,
    pub header: Header,
    pub body: ModelBody,
}

/// What the model is and where it came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Header {
    /// `regression` or `classification`.
    pub task: Task,
    /// Class labels in probability order (classification only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub classes: Vec<ClassLabel>,
    /// The input field the model was trained to predict.
    pub label: String,
    /// The features in the order the body reads them, with training statistics.
    pub features: Vec<FeatureInfo>,
    /// Algorithm name (`gbm`, `rf`, `tree`, `glm`, `nb`, `mlp`) and its hyperparameters as used.
    pub algorithm: String,
    pub params: serde_json::Value,
    /// Validation results (cross-validation and/or holdout), as `dipper train` printed them.
    #[serde(default)]
    pub metrics: serde_json::Value,
    /// Where the training data came from (file path and rows, or topic/partition/offset ranges).
    #[serde(default)]
    pub source: serde_json::Value,
    /// dipper version and time of training.
    #[serde(default)]
    pub trained_by: String,
    #[serde(default)]
    pub trained_at: String,
}

/// One input feature of a native model. (No `deny_unknown_fields`: serde does not support it together with the
/// flattened `kind`, every feature would be refused.)
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureInfo {
    pub name: String,
    #[serde(flatten)]
    pub kind: FeatureKind,
    /// Training-data statistics (see `dipper_train::stats`); free-form so monitoring can grow it.
    #[serde(default)]
    pub stats: serde_json::Value,
}

/// The fitted parameters, by model family.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ModelBody {
    Trees(trees::TreesBody),
    Linear(linear::LinearBody),
    NaiveBayes(naive_bayes::NaiveBayesBody),
    Mlp(mlp::MlpBody),
}

impl NativeModel {
    pub fn new(header: Header, body: ModelBody) -> Self {
        NativeModel {
            format: FORMAT_NAME.into(),
            format_version: FORMAT_VERSION,
            header,
            body,
        }
    }

    /// The feature schema the body reads.
    pub fn schema(&self) -> Result<FeatureSchema, ModelError> {
        Ok(FeatureSchema::new(
            self.header
                .features
                .iter()
                .map(|f| FeatureSpec {
                    name: f.name.clone(),
                    kind: f.kind.clone(),
                })
                .collect(),
        )?)
    }

    /// Builds the scorer for this model.
    pub fn build(&self, ctx: &LoadContext) -> Result<Arc<dyn Model>, ModelError> {
        let err = |m: String| ModelError::parse("native", &ctx.source, m);
        if self.format != FORMAT_NAME {
            return Err(err(format!(
                "format is {:?}, expected {FORMAT_NAME:?}",
                self.format
            )));
        }
        if self.format_version == 0 || self.format_version > FORMAT_VERSION {
            return Err(ModelError::unsupported(
                "native",
                &ctx.source,
                format!(
                    "file version {} (this dipper reads up to {FORMAT_VERSION}; upgrade dipper)",
                    self.format_version
                ),
            ));
        }
        let h = &self.header;
        match (h.task, h.classes.len()) {
            (Task::Classification, n) if n < 2 => {
                return Err(err(format!(
                    "a classifier needs at least 2 classes, the header has {n}"
                )))
            }
            (Task::Regression, n) if n > 0 => {
                return Err(err("a regression model has classes".into()))
            }
            _ => {}
        }
        let info = ModelInfo {
            id: ctx.id.clone(),
            task: h.task,
            features: self.schema()?,
            named_features: true,
            classes: h.classes.clone(),
            accepts_missing: false,
        };
        match &self.body {
            ModelBody::Trees(b) => trees::build(b, info, ctx),
            ModelBody::Linear(b) => linear::build(b, info, ctx),
            ModelBody::NaiveBayes(b) => naive_bayes::build(b, info, ctx),
            ModelBody::Mlp(b) => mlp::build(b, info, ctx),
        }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("native models serialise")
    }
}

/// Loads a native model file.
pub fn load(bytes: &[u8], ctx: &LoadContext) -> Result<Arc<dyn Model>, ModelError> {
    let model: NativeModel = serde_json::from_slice(bytes).map_err(|e| {
        ModelError::parse(
            "native",
            format!("{} line {} column {}", ctx.source, e.line(), e.column()),
            e.to_string(),
        )
    })?;
    model.build(ctx)
}

/// True when the first bytes look like a native model (`{"format":"dipper-model"...`).
pub fn sniff(head: &str) -> bool {
    let t = head.trim_start();
    t.starts_with('{') && t.contains("\"dipper-model\"")
}

#[cfg(test)]
mod feature_info_tests {
    use super::*;

    #[test]
    fn feature_info_round_trips_through_json() {
        let f = FeatureInfo {
            name: "x".into(),
            kind: FeatureKind::Numeric,
            stats: serde_json::Value::Null,
        };
        let json = serde_json::to_string(&f).unwrap();
        assert_eq!(serde_json::from_str::<FeatureInfo>(&json).unwrap(), f);
    }
}

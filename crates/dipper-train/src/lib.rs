//! Batch model building for dipper: datasets read from files or Kafka topics, the algorithms (GLM, Naive Bayes,
//! CART, random forest, histogram gradient boosting, MLP), cross-validation and metrics. Every algorithm
//! produces a native model body ([`dipper_models::native::ModelBody`]) that `dipper predict` and `dipper run`
//! score through the same code used here for validation.
//!
//! All algorithms are deterministic for a given seed.

pub mod algorithm;
pub mod data;
pub mod dataset;
mod error;
pub mod gbm;
pub mod glm;
pub mod metrics;
pub mod mlp;
pub mod naive_bayes;
mod params;
pub mod run;
pub mod stats;
pub mod tree;
pub mod validate;

pub use algorithm::{algorithm, Algorithm, NoProgress, Progress};
pub use dataset::{Dataset, Target};
pub use error::TrainError;

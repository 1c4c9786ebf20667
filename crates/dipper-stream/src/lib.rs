//! dipper-stream: the runtime that applies a model to every event of a topic and writes predictions
//! to a topic, on Kafka or on the embedded log.
//!
//! Data flows one way: [`transport`] (consume) -> [`decode`] (bytes to a feature row) -> model ->
//! [`encode`] (prediction or dead-letter record) -> [`transport`] (produce and commit). [`engine`]
//! drives it with bounded, per-partition micro-batches on [`workers`]; [`pipeline`] builds it all
//! from a [`config::PipelineConfig`].

pub mod config;
pub mod decode;
pub mod encode;
pub mod engine;
pub mod error;
pub mod pipeline;
pub mod score;
pub mod swap;
pub mod transport;
pub mod workers;

pub use config::{Guarantee, PipelineConfig};
pub use engine::{Engine, EngineOptions, RunSummary};
pub use error::{RecordError, Recovery, StreamError};
pub use pipeline::Pipeline;
pub use score::{Scorer, ScoringPlan};

//! dipper-registry: the model registry that lives on the log itself.
//!
//! Models move from the trainer into running pipelines through one topic (`_dipper_models` by default):
//! a compacted Kafka topic, or the same topic in an embedded-log directory of its own. Each model name has
//! monotonic versions; each version holds its artifact (chunked to fit the topic's message limit, checked by
//! SHA-256 when read back) and where it came from; stages say which version is the champion pipelines
//! follow, which are challengers scored in shadow, and which are archived. See [`wire`] for the records.
//!
//! ```
//! # fn main() -> Result<(), dipper_registry::RegistryError> {
//! use dipper_registry::{EmbeddedStore, PublishRequest, Registry, StageChange};
//! let dir = tempfile::tempdir().unwrap();
//! let mut registry = Registry::open(EmbeddedStore::new(dir.path(), "_dipper_models")?)?;
//! let v = registry.publish(&PublishRequest {
//!     name: "fraud".into(),
//!     artifact: b"tree\n...".to_vec(),
//!     format: "lightgbm".into(),
//!     features: vec![],
//!     source: serde_json::json!({"file": "model.txt"}),
//!     chunk_bytes: dipper_registry::DEFAULT_CHUNK_BYTES,
//! })?;
//! registry.change("fraud", StageChange::Promote(v.version))?;
//! assert_eq!(registry.state().champion("fraud").unwrap().meta.version, 1);
//! assert_eq!(registry.fetch("fraud", 1)?.bytes, b"tree\n...");
//! # Ok(()) }
//! ```

mod error;
mod registry;
pub mod state;
pub mod store;
pub mod wire;

pub use error::RegistryError;
pub use registry::{Artifact, PublishRequest, Registry};
pub use state::{ModelState, RegistryState, StageChange, VersionEntry};
pub use store::{EmbeddedStore, KafkaStore, KafkaStoreConfig, Store};
pub use wire::{Stage, Stages, VersionMeta, DEFAULT_CHUNK_BYTES, DEFAULT_TOPIC};

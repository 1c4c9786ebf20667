//! The registry's error type. Every error names the model (and version) or the store it is about.

/// Everything that can go wrong in the registry.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// A model name, version or argument that the registry refuses.
    #[error("{0}")]
    Invalid(String),
    /// No such model or version.
    #[error("{0}")]
    NotFound(String),
    /// The operation does not fit the model's current stages (e.g. deleting the champion).
    #[error("{0}")]
    Conflict(String),
    /// An artifact whose chunks are missing or whose checksum does not match.
    #[error("{0}")]
    Corrupt(String),
    /// A record on the registry topic that is not a registry record (it is skipped when folding state; this
    /// error is returned only where one record is asked for).
    #[error("registry record at offset {offset}: {reason}")]
    BadRecord { offset: u64, reason: String },
    /// The store (embedded log or Kafka) failed; `retriable` says whether trying again may help.
    #[error("registry store {store}: {message}")]
    Store {
        store: String,
        message: String,
        retriable: bool,
    },
}

impl RegistryError {
    pub(crate) fn store(store: &str, message: impl ToString, retriable: bool) -> Self {
        RegistryError::Store {
            store: store.to_string(),
            message: message.to_string(),
            retriable,
        }
    }
}

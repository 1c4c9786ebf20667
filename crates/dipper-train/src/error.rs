//! Errors of training: bad data (naming file, line and field), bad parameters (naming the parameter), and
//! failures to fit.

/// Why training could not proceed.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// Input data problem; `place` names the file and line, or topic/partition/offset, and field.
    #[error("{place}: {message}")]
    Data { place: String, message: String },
    /// A hyperparameter is unknown or out of range; names it.
    #[error("parameter '{name}': {message}")]
    Param { name: String, message: String },
    /// The data cannot be used by this algorithm (e.g. one class only).
    #[error("{0}")]
    Unfit(String),
    #[error(transparent)]
    Model(#[from] dipper_models::ModelError),
    #[error("{0}")]
    Io(String),
}

impl TrainError {
    pub fn param(name: impl Into<String>, message: impl Into<String>) -> Self {
        TrainError::Param {
            name: name.into(),
            message: message.into(),
        }
    }

    pub fn data(place: impl Into<String>, message: impl Into<String>) -> Self {
        TrainError::Data {
            place: place.into(),
            message: message.into(),
        }
    }
}

//! Errors raised while loading or running a model. Load errors name the file and the place inside it.

/// Why a model could not be loaded or run.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("{path}: cannot read model file: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// The file is not a valid model of its format: `location` says where (e.g. `model.txt line 42`,
    /// `model.json at learner.gradient_booster.model.trees[3]`, `model.onnx node 'TreeEnsemble'`).
    #[error("{location}: invalid {format} model: {message}")]
    Parse {
        format: &'static str,
        location: String,
        message: String,
    },
    /// The file is valid but uses something dipper does not implement; never guessed around.
    #[error("{location}: unsupported {format} feature: {message}")]
    Unsupported {
        format: &'static str,
        location: String,
        message: String,
    },
    #[error("cannot tell the model format of {path}: {reason}; use --format")]
    UnknownFormat { path: String, reason: String },
    #[error("the model reads {expected} features but {got} were given")]
    FeatureCount { expected: usize, got: usize },
    #[error("{0}")]
    Schema(#[from] dipper_core::SchemaError),
    /// The model failed while scoring (e.g. the ONNX runtime rejected the input).
    #[error("model evaluation failed: {0}")]
    Eval(String),
}

impl ModelError {
    pub fn parse(
        format: &'static str,
        location: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        ModelError::Parse {
            format,
            location: location.into(),
            message: message.into(),
        }
    }

    pub fn unsupported(
        format: &'static str,
        location: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        ModelError::Unsupported {
            format,
            location: location.into(),
            message: message.into(),
        }
    }
}

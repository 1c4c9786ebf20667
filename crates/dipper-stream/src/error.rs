//! Errors of the stream runtime, tagged so the runtime can choose what to do: a bad record goes to
//! the dead-letter topic ([`RecordError`]), a transient transport failure aborts the open unit of work
//! and retries from the last commit, and anything else stops the pipeline cleanly.

use std::fmt;

/// What the runtime should do about a transport failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recovery {
    /// Abort the open transaction, rewind to the last commit and go on.
    Retry,
    /// Another instance took over (producer fenced) or the state is unknowable: stop.
    Fatal,
}

/// A failure that stops or rewinds the pipeline (never a bad record: see [`RecordError`]).
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    /// The pipeline file is wrong; `place` is `file:line:column` or `file: key`.
    #[error("{place}: {message}")]
    Config { place: String, message: String },
    /// The model cannot be loaded or does not fit the pipeline.
    #[error("model {path}: {message}")]
    Model { path: String, message: String },
    /// The log (Kafka or embedded) failed.
    #[error("{transport}: {message}")]
    Transport {
        transport: &'static str,
        message: String,
        recovery: Recovery,
    },
    /// Local I/O outside the log (ledger file, metrics endpoint).
    #[error("{place}: {source}")]
    Io {
        place: String,
        #[source]
        source: std::io::Error,
    },
}

impl StreamError {
    pub(crate) fn kafka(message: impl fmt::Display, recovery: Recovery) -> Self {
        StreamError::Transport {
            transport: "kafka",
            message: message.to_string(),
            recovery,
        }
    }

    pub(crate) fn embedded(message: impl fmt::Display) -> Self {
        // The embedded log poisons itself after an I/O error: retrying in-process cannot help.
        StreamError::Transport {
            transport: "embedded log",
            message: message.to_string(),
            recovery: Recovery::Fatal,
        }
    }

    /// True when aborting and replaying from the last commit may succeed.
    pub fn is_retriable(&self) -> bool {
        matches!(
            self,
            StreamError::Transport {
                recovery: Recovery::Retry,
                ..
            }
        )
    }
}

/// Why one record could not be scored; it goes to the dead-letter topic with this in its headers.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordError {
    pub reason: dipper_monitor::DeadLetterReason,
    /// The offending field, when one is at fault.
    pub field: Option<String>,
    pub message: String,
}

impl fmt::Display for RecordError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.field {
            Some(field) => write!(
                f,
                "{}: field '{field}': {}",
                self.reason.as_str(),
                self.message
            ),
            None => write!(f, "{}: {}", self.reason.as_str(), self.message),
        }
    }
}

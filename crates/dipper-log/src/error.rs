//! Error type of the log. Corruption errors name the file and the byte offset.

use std::path::{Path, PathBuf};

/// Everything that can go wrong in the log.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// An operating-system I/O error on a file of the log.
    #[error("I/O error on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Committed data failed a length, CRC or structure check.
    #[error("corrupt data in {path} at byte {offset}: {reason}")]
    Corrupt {
        path: PathBuf,
        offset: u64,
        reason: String,
    },
    /// Another `Log` (in this or another process) holds the directory lock.
    #[error("log directory {0} is already open (lock file {0}/LOCK is held by another Log)")]
    Locked(PathBuf),
    #[error("invalid topic name {name:?}: {reason}")]
    InvalidTopic { name: String, reason: &'static str },
    #[error("topic {topic} already exists with {existing} partitions, not {requested}")]
    PartitionCountMismatch {
        topic: String,
        existing: u32,
        requested: u32,
    },
    #[error("unknown topic {0}")]
    UnknownTopic(String),
    #[error("topic {topic} has no partition {partition}")]
    UnknownPartition { topic: String, partition: u32 },
    /// Another commit appended to a partition this transaction also appends to.
    #[error("conflict on {topic}/{partition}: transaction expected end offset {expected}, log is at {actual}")]
    Conflict {
        topic: String,
        partition: u32,
        expected: u64,
        actual: u64,
    },
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// An I/O error happened in the middle of a commit; the on-disk state is
    /// still consistent but this handle refuses further writes. Reopen to recover.
    #[error("log refuses writes after an I/O failure during commit; reopen it to recover")]
    Poisoned,
}

pub(crate) fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> LogError + '_ {
    move |source| LogError::Io {
        path: path.to_path_buf(),
        source,
    }
}

pub(crate) fn corrupt(path: &Path, offset: u64, reason: impl Into<String>) -> LogError {
    LogError::Corrupt {
        path: path.to_path_buf(),
        offset,
        reason: reason.into(),
    }
}

//! dipper-log: the embedded, file-backed durable log dipper's stream
//! pipelines run on when there is no Kafka — topics, partitions, dense
//! offsets and committed consumer-group positions in one directory.
//!
//! The key property is the atomic [`Txn`]: appends to any partitions plus
//! consumer-group position updates become visible together or not at all,
//! even across a crash at any byte. Records are written past each
//! partition's committed end and fsynced; then one CRC-framed entry naming
//! the new ends and positions is appended to `commits.journal` and fsynced.
//! On open, the journal's valid prefix defines the state and every segment is
//! truncated back to its committed length. Only a damaged *last* journal
//! entry is treated as a torn write and cut off; damage followed by valid
//! entries, or damage inside committed segment data, makes `open` fail with
//! [`LogError::Corrupt`] naming the file and byte offset, never a panic.
//!
//! Records are encoded into their segment frames as they are appended to a
//! [`Txn`] or a [`WriteBatch`] (the owned, reusable form, for callers that
//! keep the log in an `Arc`), and written as they are at commit; readers get
//! records borrowed from one buffer per read with [`Log::read_with`], or owned
//! with [`Log::read`].
//!
//! Layout: `DIR/LOCK`, `DIR/commits.journal`,
//! `DIR/topics/<topic>/<partition>/<base offset, 20 digits>.seg`.
//!
//! ```
//! # fn main() -> Result<(), dipper_log::LogError> {
//! use dipper_log::{Log, Options, Record};
//! let dir = tempfile::tempdir().unwrap();
//! let log = Log::open(dir.path(), Options::default())?;
//! log.create_topic("events", 2)?;
//! // Exactly-once step: outputs and the consumer position commit together.
//! let mut txn = log.begin();
//! let offset = txn.append("events", 0, Record::value("hello", 1_700_000_000_000))?;
//! txn.set_position("scorer", "events", 1, 0)?;
//! log.commit(txn)?;
//! assert_eq!(log.read("events", 0, offset, 10)?[0].value.as_deref(), Some(&b"hello"[..]));
//! assert_eq!(log.committed("scorer", "events", 1)?, Some(0));
//! # Ok(()) }
//! ```

mod batch;
mod codec;
mod error;
mod journal;
mod log;
mod partition;
mod record;

pub use batch::{Txn, WriteBatch};
pub use error::LogError;
pub use journal::JournalRecovery;
pub use log::{validate_topic_name, Log, Options, MAX_RECORD_BYTES};
pub use record::{Record, RecordRef, RecordView, StoredRecord};

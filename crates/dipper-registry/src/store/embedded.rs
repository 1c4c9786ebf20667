//! The registry on the embedded log: a `dipper-log` directory of its own holding the registry topic.
//!
//! The embedded log is one process's at a time (a directory lock), and a pipeline holds its data log for as
//! long as it runs. So the registry has its own directory, which every user (the `dipper model` commands,
//! each running pipeline) opens only for the moment of one read or one append, waiting briefly when another
//! holds it. An append checks the end it expects under the lock, so registry changes are linearizable.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use dipper_log::{Log, LogError, Options, Record};

use super::Store;
use crate::wire::RawRecord;
use crate::RegistryError;

/// How long to wait for another process to release the registry directory.
const LOCK_WAIT: Duration = Duration::from_secs(10);
const READ_BATCH: usize = 256;

/// The registry in a `dipper-log` directory.
pub struct EmbeddedStore {
    dir: PathBuf,
    topic: String,
    describe: String,
}

impl EmbeddedStore {
    /// The registry topic `topic` in the log directory `dir` (created on the first append).
    pub fn new(dir: impl Into<PathBuf>, topic: &str) -> Result<Self, RegistryError> {
        let dir = dir.into();
        dipper_log::validate_topic_name(topic)
            .map_err(|e| RegistryError::Invalid(format!("registry topic: {e}")))?;
        Ok(EmbeddedStore {
            describe: format!("embedded log {} topic {topic}", dir.display()),
            dir,
            topic: topic.to_string(),
        })
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn err(&self, e: LogError) -> RegistryError {
        let retriable = matches!(e, LogError::Locked(_) | LogError::Conflict { .. });
        RegistryError::store(&self.describe, e, retriable)
    }

    fn open(&self) -> Result<Log, RegistryError> {
        let deadline = Instant::now() + LOCK_WAIT;
        loop {
            match Log::open(&self.dir, Options::default()) {
                Ok(log) => return Ok(log),
                Err(LogError::Locked(_)) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(e) => return Err(self.err(e)),
            }
        }
    }
}

impl Store for EmbeddedStore {
    fn describe(&self) -> String {
        self.describe.clone()
    }

    fn read(
        &mut self,
        from: u64,
        until: Option<u64>,
    ) -> Result<(Vec<RawRecord>, u64), RegistryError> {
        if !self.dir.join("commits.journal").exists() {
            return Ok((Vec::new(), 0));
        }
        let log = self.open()?;
        if !log.topics().contains_key(&self.topic) {
            return Ok((Vec::new(), 0));
        }
        let end = log
            .high_watermark(&self.topic, 0)
            .map_err(|e| self.err(e))?;
        let stop = until.map_or(end, |u| u.min(end));
        let mut out = Vec::new();
        let mut at = from;
        while at < stop {
            let batch = log
                .read(&self.topic, 0, at, READ_BATCH.min((stop - at) as usize))
                .map_err(|e| self.err(e))?;
            let Some(last) = batch.last() else { break };
            at = last.offset + 1;
            out.extend(batch.into_iter().map(|r| RawRecord {
                offset: r.offset,
                key: r.key,
                value: r.value,
                headers: r.headers,
            }));
        }
        Ok((out, at.max(from)))
    }

    fn append(&mut self, expected_end: u64, records: Vec<RawRecord>) -> Result<u64, RegistryError> {
        let log = self.open()?;
        if !log.topics().contains_key(&self.topic) {
            log.create_topic(&self.topic, 1).map_err(|e| self.err(e))?;
        }
        let end = log
            .high_watermark(&self.topic, 0)
            .map_err(|e| self.err(e))?;
        if end != expected_end {
            return Err(RegistryError::store(
                &self.describe,
                format!("another writer appended (end {end}, expected {expected_end})"),
                true,
            ));
        }
        let now = now_ms();
        let mut txn = log.begin();
        let n = records.len() as u64;
        for r in records {
            txn.append(
                &self.topic,
                0,
                Record {
                    key: r.key,
                    value: r.value,
                    headers: r.headers,
                    timestamp: now,
                },
            )
            .map_err(|e| self.err(e))?;
        }
        log.commit(txn).map_err(|e| self.err(e))?;
        Ok(end + n)
    }
}

pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

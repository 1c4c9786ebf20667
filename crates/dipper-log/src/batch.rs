//! What a commit carries: [`WriteBatch`] (owned, reusable) and [`Txn`] (a
//! batch tied to its [`Log`], which promises offsets at append time).
//!
//! Records are encoded into their segment frames as they are appended, one
//! growing buffer per partition, so a commit writes those bytes as they are:
//! no per-record allocation, no copy besides this one and the write itself.
//! Offsets and CRCs are filled in at commit, once the partition's end is
//! known under the writer lock.

use std::collections::BTreeMap;

use crate::error::LogError;
use crate::journal::PosKey;
use crate::log::{Log, MAX_RECORD_BYTES};
use crate::record::{self, Record, RecordRef};

/// One partition's appends.
pub(crate) struct PartBatch {
    pub topic: String,
    pub partition: u32,
    /// Encoded frames; offsets and CRCs are set by [`record::seal`] at commit.
    pub frames: Vec<u8>,
    pub count: u64,
    /// For a [`Txn`]: the partition's end at its first append, which the
    /// offsets it returned assume; the commit is a conflict if the end moved.
    pub expected_base: Option<u64>,
}

/// Appends to any partitions plus consumer-group positions, committed
/// atomically by [`Log::commit_batch`]. Unlike a [`Txn`] it owns no borrow of
/// the log, so it can live beside an `Arc<Log>`, and it keeps its buffers
/// across commits. Its records go at the partitions' ends as they are at
/// commit time, so it never conflicts; it does not tell offsets in advance.
#[derive(Default)]
pub struct WriteBatch {
    /// Every partition appended to since the batch was made, including ones
    /// emptied by [`WriteBatch::clear`] (their buffers are reused).
    pub(crate) parts: Vec<PartBatch>,
    pub(crate) positions: BTreeMap<PosKey, u64>,
    /// Index into `parts` of the last partition appended to.
    last: usize,
}

fn too_big(size: usize) -> LogError {
    LogError::InvalidArgument(format!(
        "record of {size} bytes exceeds the {MAX_RECORD_BYTES}-byte limit"
    ))
}

impl WriteBatch {
    pub fn new() -> Self {
        WriteBatch::default()
    }

    fn part(&mut self, topic: &str, partition: u32) -> Option<usize> {
        let hit = |p: &PartBatch| p.partition == partition && p.topic == topic;
        if self.parts.get(self.last).is_some_and(hit) {
            return Some(self.last);
        }
        let i = self.parts.iter().position(hit)?;
        self.last = i;
        Some(i)
    }

    fn part_or_insert(&mut self, topic: &str, partition: u32) -> usize {
        match self.part(topic, partition) {
            Some(i) => i,
            None => {
                self.parts.push(PartBatch {
                    topic: topic.to_string(),
                    partition,
                    frames: Vec::new(),
                    count: 0,
                    expected_base: None,
                });
                self.last = self.parts.len() - 1;
                self.last
            }
        }
    }

    /// Adds a record (and its headers) to a partition. Only its size is
    /// checked here; an unknown topic or partition fails the commit.
    pub fn append<'h>(
        &mut self,
        topic: &str,
        partition: u32,
        record: RecordRef<'_>,
        headers: impl IntoIterator<Item = (&'h str, &'h [u8])>,
    ) -> Result<(), LogError> {
        let i = self.part_or_insert(topic, partition);
        let part = &mut self.parts[i];
        record::encode(&mut part.frames, record, headers, MAX_RECORD_BYTES).map_err(too_big)?;
        part.count += 1;
        Ok(())
    }

    /// Sets `group`'s committed position (next offset to consume) on a
    /// partition; checked against the partition's end at commit.
    pub fn set_position(&mut self, group: &str, topic: &str, partition: u32, offset: u64) {
        self.positions
            .insert((group.to_string(), topic.to_string(), partition), offset);
    }

    /// Number of records queued.
    pub fn len(&self) -> usize {
        self.parts.iter().map(|p| p.count as usize).sum()
    }

    /// True if nothing is queued (no records, no positions).
    pub fn is_empty(&self) -> bool {
        self.positions.is_empty() && self.parts.iter().all(|p| p.count == 0)
    }

    /// Drops everything queued, keeping the buffers for the next records.
    pub fn clear(&mut self) {
        for p in &mut self.parts {
            p.frames.clear();
            p.count = 0;
            p.expected_base = None;
        }
        self.positions.clear();
    }
}

/// A set of appends and consumer-group positions committed together by
/// [`Log::commit`]. Dropping it discards it.
pub struct Txn<'a> {
    pub(crate) log: &'a Log,
    pub(crate) batch: WriteBatch,
}

impl<'a> Txn<'a> {
    pub(crate) fn new(log: &'a Log) -> Self {
        Txn {
            log,
            batch: WriteBatch::new(),
        }
    }

    /// Adds `record` to a partition; returns the offset it will have once
    /// committed. The commit fails with [`LogError::Conflict`] if another
    /// commit appends to the same partition first.
    pub fn append(&mut self, topic: &str, partition: u32, record: Record) -> Result<u64, LogError> {
        self.append_ref(topic, partition, record.as_ref(), record.header_refs())
    }

    /// [`Txn::append`] for a borrowed record: its bytes are copied once, into
    /// the segment encoding.
    pub fn append_ref<'h>(
        &mut self,
        topic: &str,
        partition: u32,
        record: RecordRef<'_>,
        headers: impl IntoIterator<Item = (&'h str, &'h [u8])>,
    ) -> Result<u64, LogError> {
        let i = match self.batch.part(topic, partition) {
            Some(i) => i,
            None => {
                let hw = self.log.high_watermark(topic, partition)?;
                let i = self.batch.part_or_insert(topic, partition);
                self.batch.parts[i].expected_base = Some(hw);
                i
            }
        };
        let part = &mut self.batch.parts[i];
        record::encode(&mut part.frames, record, headers, MAX_RECORD_BYTES).map_err(too_big)?;
        part.count += 1;
        Ok(part.expected_base.unwrap_or(0) + part.count - 1)
    }

    /// The offset the first record appended to a partition will have.
    pub(crate) fn base(&self, topic: &str, partition: u32) -> Option<u64> {
        let hit = |p: &&PartBatch| p.partition == partition && p.topic == topic && p.count > 0;
        self.batch
            .parts
            .iter()
            .find(hit)
            .and_then(|p| p.expected_base)
    }

    /// Sets `group`'s committed position (next offset to consume) on a partition.
    pub fn set_position(
        &mut self,
        group: &str,
        topic: &str,
        partition: u32,
        offset: u64,
    ) -> Result<(), LogError> {
        self.log.check_partition(topic, partition)?;
        self.batch.set_position(group, topic, partition, offset);
        Ok(())
    }

    /// Number of records queued.
    pub fn len(&self) -> usize {
        self.batch.len()
    }

    /// True if nothing is queued (no records, no positions).
    pub fn is_empty(&self) -> bool {
        self.batch.is_empty()
    }
}

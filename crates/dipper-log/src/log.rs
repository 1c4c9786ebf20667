//! The [`Log`] handle: directory lock, recovery on open, topics, reads, and
//! atomic multi-partition [`Txn`] commits through the journal.

use std::collections::{BTreeMap, HashMap};
use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};

use crate::batch::{Txn, WriteBatch};
use crate::error::{io_err, LogError};
use crate::journal::{sync_dir, End, Entry, Journal, JournalRecovery, PartKey, State};
use crate::partition::{Layout, Partition};
use crate::record::{Record, RecordView, StoredRecord};

/// Largest record (key + value + headers) accepted; frames must stay well
/// below the 4 GiB a u32 length can describe.
pub const MAX_RECORD_BYTES: usize = 256 << 20;

/// Tuning knobs.
#[derive(Clone, Debug)]
pub struct Options {
    /// A segment is rolled once it reaches this many bytes (default 64 MiB).
    pub segment_bytes: u64,
    /// One sparse index entry per this many bytes of segment (default 4 KiB).
    pub index_interval_bytes: u64,
    /// The journal is compacted to a snapshot once it exceeds this (default
    /// 4 MiB) and has grown by at least the size of its last snapshot.
    pub journal_compact_bytes: u64,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            segment_bytes: 64 << 20,
            index_interval_bytes: 4096,
            journal_compact_bytes: 4 << 20,
        }
    }
}

/// What readers see: replaced only after a journal entry is durable.
struct Inner {
    state: State,
    partitions: HashMap<PartKey, Partition>,
}

/// The write side. Its mutex serialises commits and topic creation, so
/// segment writes and the journal fsync happen while readers keep reading
/// under a shared lock of `Inner`; only installing the new ends takes the
/// exclusive lock, briefly. Lock order: `writer`, then `inner`.
struct Writer {
    journal: Journal,
    poisoned: bool,
}

/// An open log directory. `Send + Sync`; share it with `Arc`.
pub struct Log {
    dir: PathBuf,
    layout: Layout,
    compact_bytes: u64,
    recovery: JournalRecovery,
    writer: Mutex<Writer>,
    inner: RwLock<Inner>,
    /// Counts commits so readers can sleep until new data instead of polling.
    commits: Mutex<u64>,
    committed_cv: Condvar,
    _lock: File,
}

/// Kafka's topic-name rules: 1..=249 chars of `[a-zA-Z0-9._-]`, not `.` or `..`.
pub fn validate_topic_name(name: &str) -> Result<(), LogError> {
    let bad = |reason| {
        Err(LogError::InvalidTopic {
            name: name.to_string(),
            reason,
        })
    };
    if name.is_empty() {
        return bad("empty");
    }
    if name.len() > 249 {
        return bad("longer than 249 characters");
    }
    if name == "." || name == ".." {
        return bad("'.' and '..' are not allowed");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    {
        return bad("only [a-zA-Z0-9._-] are allowed");
    }
    Ok(())
}

fn part_dir(dir: &Path, topic: &str, p: u32) -> PathBuf {
    dir.join("topics").join(topic).join(p.to_string())
}

impl Log {
    /// Opens or creates the log in `dir`, taking its exclusive lock and
    /// recovering to the last committed transaction.
    pub fn open(dir: impl AsRef<Path>, options: Options) -> Result<Log, LogError> {
        let dir = dir.as_ref().to_path_buf();
        if options.segment_bytes == 0 || options.index_interval_bytes == 0 {
            return Err(LogError::InvalidArgument(
                "segment_bytes and index_interval_bytes must be positive".into(),
            ));
        }
        let topics = dir.join("topics");
        if !topics.is_dir() {
            std::fs::create_dir_all(&topics).map_err(io_err(&topics))?;
            sync_dir(&dir)?;
        }
        let lock_path = dir.join("LOCK");
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(io_err(&lock_path))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => return Err(LogError::Locked(dir)),
            Err(std::fs::TryLockError::Error(e)) => return Err(io_err(&lock_path)(e)),
        }
        let layout = Layout {
            segment_bytes: options.segment_bytes,
            index_interval: options.index_interval_bytes,
        };
        let (journal, state, recovery) = Journal::open(&dir)?;
        let mut partitions = HashMap::new();
        for (topic, &n) in &state.topics {
            for p in 0..n {
                let key = (topic.clone(), p);
                let end = state.ends.get(&key).copied().unwrap_or_default();
                let part = Partition::recover(&part_dir(&dir, topic, p), end, layout)?;
                partitions.insert(key, part);
            }
        }
        Ok(Log {
            dir,
            layout,
            compact_bytes: options.journal_compact_bytes,
            recovery,
            writer: Mutex::new(Writer {
                journal,
                poisoned: false,
            }),
            inner: RwLock::new(Inner { state, partitions }),
            commits: Mutex::new(0),
            committed_cv: Condvar::new(),
            _lock: lock,
        })
    }

    /// The directory this log lives in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// What recovery did to the journal when this log was opened.
    pub fn recovery(&self) -> &JournalRecovery {
        &self.recovery
    }

    /// How many commits this handle has made visible; pass it to [`Log::wait_for_commit`].
    pub fn commit_count(&self) -> u64 {
        *self.commits.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sleeps until a commit after `seen` (a [`Log::commit_count`] value) becomes visible, or
    /// `timeout` passes. Returns the current count.
    pub fn wait_for_commit(&self, seen: u64, timeout: Duration) -> u64 {
        let deadline = Instant::now() + timeout;
        let mut count = self.commits.lock().unwrap_or_else(|e| e.into_inner());
        while *count == seen {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            count = match self.committed_cv.wait_timeout(count, deadline - now) {
                Ok((c, _)) => c,
                Err(e) => e.into_inner().0,
            };
        }
        *count
    }

    fn read_inner(&self) -> RwLockReadGuard<'_, Inner> {
        self.inner.read().unwrap_or_else(|e| e.into_inner())
    }
    fn write_inner(&self) -> RwLockWriteGuard<'_, Inner> {
        self.inner.write().unwrap_or_else(|e| e.into_inner())
    }
    fn writer(&self) -> Result<MutexGuard<'_, Writer>, LogError> {
        let w = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        if w.poisoned {
            return Err(LogError::Poisoned);
        }
        Ok(w)
    }

    /// Creates `name` with `partitions` partitions. Idempotent for the same
    /// count; an error if the topic exists with a different count.
    pub fn create_topic(&self, name: &str, partitions: u32) -> Result<(), LogError> {
        validate_topic_name(name)?;
        if partitions == 0 {
            return Err(LogError::InvalidArgument(
                "a topic needs at least one partition".into(),
            ));
        }
        let mut writer = self.writer()?;
        if let Some(&existing) = self.read_inner().state.topics.get(name) {
            if existing == partitions {
                return Ok(());
            }
            return Err(LogError::PartitionCountMismatch {
                topic: name.to_string(),
                existing,
                requested: partitions,
            });
        }
        // Directories and empty segments first; the journal entry makes the topic exist.
        let mut parts = Vec::new();
        for p in 0..partitions {
            let d = part_dir(&self.dir, name, p);
            parts.push(Partition::recover(&d, End::default(), self.layout)?);
        }
        let tdir = self.dir.join("topics").join(name);
        sync_dir(&tdir)?;
        sync_dir(&self.dir.join("topics"))?;
        let entry = Entry {
            topics: vec![(name.to_string(), partitions)],
            ..Entry::default()
        };
        if let Err(e) = writer.journal.append(&entry) {
            writer.poisoned = true;
            return Err(e);
        }
        let mut inner = self.write_inner();
        inner.state.apply(&entry);
        for (p, part) in parts.into_iter().enumerate() {
            inner.partitions.insert((name.to_string(), p as u32), part);
        }
        Ok(())
    }

    /// All topics and their partition counts.
    pub fn topics(&self) -> BTreeMap<String, u32> {
        self.read_inner().state.topics.clone()
    }

    /// Number of partitions of `topic`.
    pub fn partitions(&self, topic: &str) -> Result<u32, LogError> {
        self.read_inner()
            .state
            .topics
            .get(topic)
            .copied()
            .ok_or_else(|| LogError::UnknownTopic(topic.to_string()))
    }

    fn check<'a>(inner: &'a Inner, topic: &str, p: u32) -> Result<&'a Partition, LogError> {
        inner
            .partitions
            .get(&(topic.to_string(), p))
            .ok_or_else(|| match inner.state.topics.contains_key(topic) {
                true => LogError::UnknownPartition {
                    topic: topic.to_string(),
                    partition: p,
                },
                false => LogError::UnknownTopic(topic.to_string()),
            })
    }

    /// Fails unless the partition exists.
    pub(crate) fn check_partition(&self, topic: &str, p: u32) -> Result<(), LogError> {
        Self::check(&self.read_inner(), topic, p).map(|_| ())
    }

    /// The committed end of a partition: the offset the next record gets;
    /// readers see offsets below it.
    pub fn high_watermark(&self, topic: &str, partition: u32) -> Result<u64, LogError> {
        Ok(Self::check(&self.read_inner(), topic, partition)?.next_offset())
    }

    /// Up to `max_records` committed records from `from_offset` on.
    pub fn read(
        &self,
        topic: &str,
        partition: u32,
        from_offset: u64,
        max_records: usize,
    ) -> Result<Vec<StoredRecord>, LogError> {
        let mut out = Vec::new();
        self.read_with(topic, partition, from_offset, max_records, |r| {
            out.push(r.to_stored())
        })?;
        Ok(out)
    }

    /// Passes up to `max_records` committed records from `from_offset` on to
    /// `f`, borrowed (nothing is allocated per record), in offset order, and
    /// returns how many. `f` runs under the log's read lock, so commits wait
    /// for it: keep it short. On an error, `f` may have seen some records.
    pub fn read_with(
        &self,
        topic: &str,
        partition: u32,
        from_offset: u64,
        max_records: usize,
        f: impl FnMut(RecordView<'_>),
    ) -> Result<usize, LogError> {
        let inner = self.read_inner();
        Self::check(&inner, topic, partition)?.read_with(from_offset, max_records, f)
    }

    /// The committed position of `group` on a partition (the next offset it
    /// will consume), if it ever committed one.
    pub fn committed(
        &self,
        group: &str,
        topic: &str,
        partition: u32,
    ) -> Result<Option<u64>, LogError> {
        let inner = self.read_inner();
        Self::check(&inner, topic, partition)?;
        let key = (group.to_string(), topic.to_string(), partition);
        Ok(inner.state.positions.get(&key).copied())
    }

    /// Starts a transaction.
    pub fn begin(&self) -> Txn<'_> {
        Txn::new(self)
    }

    /// Appends `records` to one partition and commits at once. Returns the
    /// offset of the first record.
    pub fn append(
        &self,
        topic: &str,
        partition: u32,
        records: impl IntoIterator<Item = Record>,
    ) -> Result<u64, LogError> {
        let mut txn = self.begin();
        let first = self.high_watermark(topic, partition)?;
        for r in records {
            txn.append(topic, partition, r)?;
        }
        let base = txn.base(topic, partition);
        self.commit(txn)?;
        Ok(base.unwrap_or(first))
    }

    /// Commits `txn` atomically: all its appends and positions or none.
    ///
    /// `Ok` means durable. Validation errors (`Conflict`, unknown
    /// partitions, positions past the end) change nothing. After an I/O
    /// error the transaction may or may not have become durable (as with any
    /// store whose fsync fails); the handle then refuses writes with
    /// [`LogError::Poisoned`] and reopening the directory tells which.
    pub fn commit(&self, mut txn: Txn<'_>) -> Result<(), LogError> {
        if !std::ptr::eq(txn.log, self) {
            return Err(LogError::InvalidArgument(
                "transaction belongs to another Log".into(),
            ));
        }
        self.commit_inner(&mut txn.batch)
    }

    /// Commits `batch` atomically, as [`Log::commit`] does a transaction: its
    /// records go at the partitions' current ends. On success the batch is
    /// emptied (keeping its buffers); on an error it is left as it was.
    pub fn commit_batch(&self, batch: &mut WriteBatch) -> Result<(), LogError> {
        self.commit_inner(batch)?;
        batch.clear();
        Ok(())
    }

    fn commit_inner(&self, batch: &mut WriteBatch) -> Result<(), LogError> {
        if batch.is_empty() {
            return Ok(());
        }
        let mut writer = self.writer()?;
        let inner = self.read_inner();
        // Partitions with records, in (topic, partition) order, and their bases.
        let mut order: Vec<(usize, u64)> = Vec::with_capacity(batch.parts.len());
        for (i, part) in batch.parts.iter().enumerate() {
            if part.count == 0 {
                continue;
            }
            let actual = Self::check(&inner, &part.topic, part.partition)?.next_offset();
            if let Some(expected) = part.expected_base.filter(|&e| e != actual) {
                return Err(LogError::Conflict {
                    topic: part.topic.clone(),
                    partition: part.partition,
                    expected,
                    actual,
                });
            }
            order.push((i, actual));
        }
        order.sort_unstable_by(|a, b| {
            let (pa, pb) = (&batch.parts[a.0], &batch.parts[b.0]);
            (&pa.topic, pa.partition).cmp(&(&pb.topic, pb.partition))
        });
        for ((_, topic, p), off) in &batch.positions {
            let appended = order.iter().find(|(i, _)| {
                let part = &batch.parts[*i];
                part.partition == *p && part.topic == *topic
            });
            let end = match appended {
                Some(&(i, base)) => base + batch.parts[i].count,
                None => Self::check(&inner, topic, *p)?.next_offset(),
            };
            if *off > end {
                return Err(LogError::InvalidArgument(format!(
                    "position {off} on {topic}/{p} is past its end {end}"
                )));
            }
        }
        // Phase 1: records past the committed ends, fsynced, still invisible.
        let mut written = Vec::with_capacity(order.len());
        for &(i, base) in &order {
            let part = &mut batch.parts[i];
            crate::record::seal(&mut part.frames, base);
            let key = (part.topic.clone(), part.partition);
            match inner.partitions[&key].write(&part.frames, self.layout) {
                Ok(w) => written.push((key, w)),
                Err(e) => {
                    writer.poisoned = true;
                    return Err(e);
                }
            }
        }
        drop(inner);
        // Phase 2: the journal entry; durable entry == committed.
        let entry = Entry {
            topics: Vec::new(),
            ends: written
                .iter()
                .map(|(k, (end, _))| (k.clone(), *end))
                .collect(),
            positions: batch
                .positions
                .iter()
                .map(|(k, v)| (k.clone(), *v))
                .collect(),
        };
        if let Err(e) = writer.journal.append(&entry) {
            writer.poisoned = true;
            return Err(e);
        }
        {
            let mut inner = self.write_inner();
            inner.state.apply(&entry);
            for (key, (end, tail)) in written {
                if let Some(part) = inner.partitions.get_mut(&key) {
                    part.install(end, tail);
                }
            }
        }
        {
            let mut count = self.commits.lock().unwrap_or_else(|e| e.into_inner());
            *count += 1;
            self.committed_cv.notify_all();
        }
        // Housekeeping: the transaction is already committed, so a failure
        // here is not reported as a failed commit; the handle refuses
        // further writes (its journal file handle may be stale) and the next
        // write reports `Poisoned`.
        if writer.journal.wants_compaction(self.compact_bytes) {
            let inner = self.read_inner();
            if writer.journal.compact(&inner.state).is_err() {
                drop(inner);
                writer.poisoned = true;
            }
        }
        Ok(())
    }
}

//! The embedded-log transport: the pipeline's input positions and outputs commit in one
//! [`dipper_log::Txn`], so both guarantees are exactly-once here (at-least-once is a subset).
//!
//! One process owns the log directory (its `LOCK`), so every partition of the input topics is
//! assigned to this pipeline; there are no rebalances. Outputs of the open unit are encoded straight
//! into a [`WriteBatch`] as they are sent (one copy, no allocation per record; memory bounded by the
//! commit cadence) and written at commit time. Keyed outputs are partitioned by Kafka's default
//! partitioner (murmur2 of the key), so a topic keeps the same key-to-partition mapping when it
//! moves to Kafka; unkeyed outputs follow their input partition.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use dipper_log::{Log, LogError, RecordRef, WriteBatch};

use super::{AssignmentEvent, Committed, InRecord, OutRecord, Polled, TopicPartition, Transport};
use crate::error::StreamError;

struct PartState {
    tp: TopicPartition,
    /// Next offset to read.
    fetch: u64,
    /// Last committed position.
    committed: u64,
    paused: bool,
}

/// A [`Transport`] over an open [`Log`].
pub struct EmbeddedTransport {
    log: Arc<Log>,
    group: String,
    txn_id: String,
    seq: u64,
    parts: Vec<PartState>,
    index: HashMap<TopicPartition, usize>,
    next_part: usize,
    announced: bool,
    /// The open unit's outputs, encoded.
    pending: WriteBatch,
    /// `seq` in decimal: the `dipper.txn.seq` header of the open unit's outputs.
    seq_text: String,
    positions: BTreeMap<TopicPartition, u64>,
    out_partitions: HashMap<Arc<str>, u32>,
    /// The output topic last sent to and its partition count (outputs share their topic's `Arc`).
    last_out: Option<(Arc<str>, u32)>,
    pool: BufPool,
    seen_commits: u64,
}

#[derive(Clone, Copy)]
enum Kind {
    Key,
    Value,
}

/// Key and value buffers of sent outputs, reused for the records read next. Outputs carry their
/// input's buffers (predictions write their JSON into the input's value buffer), so in a steady
/// state reading allocates nothing per record and sending frees nothing. Bounded in bytes.
#[derive(Default)]
struct BufPool {
    keys: Vec<Vec<u8>>,
    values: Vec<Vec<u8>>,
    /// Capacity of all pooled buffers.
    bytes: usize,
}

impl BufPool {
    /// At most this many bytes of buffers are kept.
    const MAX_BYTES: usize = 8 << 20;
    /// Larger buffers are freed rather than kept.
    const MAX_BUFFER: usize = 64 << 10;

    fn list(&mut self, kind: Kind) -> &mut Vec<Vec<u8>> {
        match kind {
            Kind::Key => &mut self.keys,
            Kind::Value => &mut self.values,
        }
    }

    /// A buffer holding a copy of `bytes`.
    fn take(&mut self, kind: Kind, bytes: &[u8]) -> Vec<u8> {
        match self.list(kind).pop() {
            Some(mut buf) => {
                self.bytes -= buf.capacity();
                buf.clear();
                buf.extend_from_slice(bytes);
                buf
            }
            None => bytes.to_vec(),
        }
    }

    fn give(&mut self, kind: Kind, buf: Vec<u8>) {
        let cap = buf.capacity();
        if cap > 0 && cap <= Self::MAX_BUFFER && self.bytes + cap <= Self::MAX_BYTES {
            self.bytes += cap;
            self.list(kind).push(buf);
        }
    }
}

impl EmbeddedTransport {
    /// Assigns every partition of `topics` to `group`, starting at its committed positions (or the
    /// beginning). `outputs` are the topics this pipeline writes; they must exist.
    pub fn new(
        log: Arc<Log>,
        group: &str,
        topics: &[String],
        outputs: &[&str],
    ) -> Result<Self, StreamError> {
        let mut parts = Vec::new();
        for topic in topics {
            let n = log.partitions(topic).map_err(|e| missing_topic(&log, e))?;
            for p in 0..n {
                let committed = log
                    .committed(group, topic, p)
                    .map_err(StreamError::embedded)?
                    .unwrap_or(0);
                parts.push(PartState {
                    tp: TopicPartition::new(topic, p),
                    fetch: committed,
                    committed,
                    paused: false,
                });
            }
        }
        let mut out_partitions = HashMap::new();
        for t in outputs {
            let n = log.partitions(t).map_err(|e| missing_topic(&log, e))?;
            out_partitions.insert(Arc::from(*t), n);
        }
        let index = parts
            .iter()
            .enumerate()
            .map(|(i, p)| (p.tp.clone(), i))
            .collect();
        let session = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0)
            ^ u64::from(std::process::id()) << 32;
        Ok(EmbeddedTransport {
            seen_commits: log.commit_count(),
            log,
            group: group.to_string(),
            txn_id: format!("embedded:{group}:{session:016x}"),
            seq: 0,
            parts,
            index,
            next_part: 0,
            announced: false,
            pending: WriteBatch::new(),
            seq_text: "0".into(),
            positions: BTreeMap::new(),
            out_partitions,
            last_out: None,
            pool: BufPool::default(),
        })
    }

    fn read_some(&mut self, max: usize, out: &mut Vec<InRecord>) -> Result<(), StreamError> {
        let n = self.parts.len();
        for i in 0..n {
            if out.len() >= max {
                break;
            }
            let idx = (self.next_part + i) % n;
            let part = &mut self.parts[idx];
            if part.paused {
                continue;
            }
            // An even share per partition keeps one busy partition from starving the others.
            let share = (max / n).max(1).min(max - out.len());
            let (tp, pool) = (&part.tp, &mut self.pool);
            let mut next = None;
            self.log
                .read_with(&tp.topic, tp.partition, part.fetch, share, |r| {
                    next = Some(r.offset + 1);
                    out.push(InRecord {
                        tp: tp.clone(),
                        offset: r.offset,
                        key: r.key.map(|k| pool.take(Kind::Key, k)),
                        value: r.value.map(|v| pool.take(Kind::Value, v)),
                        timestamp: r.timestamp,
                    });
                })
                .map_err(StreamError::embedded)?;
            if let Some(next) = next {
                part.fetch = next;
            }
        }
        self.next_part = (self.next_part + 1) % n.max(1);
        Ok(())
    }

    fn out_partition(&mut self, rec: &OutRecord) -> Result<u32, StreamError> {
        let n = match &self.last_out {
            Some((topic, n)) if Arc::ptr_eq(topic, &rec.topic) => *n,
            _ => {
                let n = *self.out_partitions.get(&rec.topic).ok_or_else(|| {
                    StreamError::embedded(format!("output topic '{}' is not open", rec.topic))
                })?;
                self.last_out = Some((rec.topic.clone(), n));
                n
            }
        };
        Ok(match &rec.key {
            Some(key) => kafka_partition(key, n),
            None => rec.source_partition % n,
        })
    }
}

impl EmbeddedTransport {
    fn next_seq(&mut self) {
        self.seq += 1;
        self.seq_text = self.seq.to_string();
    }
}

fn missing_topic(log: &Log, e: LogError) -> StreamError {
    match e {
        LogError::UnknownTopic(t) => StreamError::embedded(format!(
            "topic '{t}' does not exist in the embedded log at {} (create it, or set \
             transport.embedded.create_topics)",
            log.dir().display()
        )),
        e => StreamError::embedded(e),
    }
}

/// Kafka's default partitioner for keyed records: `toPositive(murmur2(key)) % partitions`.
pub fn kafka_partition(key: &[u8], partitions: u32) -> u32 {
    (murmur2(key) & 0x7fff_ffff) % partitions.max(1)
}

/// Kafka's murmur2 (seed 0x9747b28c), as in `org.apache.kafka.common.utils.Utils.murmur2`.
fn murmur2(data: &[u8]) -> u32 {
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    let len = data.len();
    let mut h: u32 = 0x9747_b28c ^ len as u32;
    let mut chunks = data.chunks_exact(4);
    for c in &mut chunks {
        let mut k = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let rest = chunks.remainder();
    if rest.len() >= 3 {
        h ^= u32::from(rest[2]) << 16;
    }
    if rest.len() >= 2 {
        h ^= u32::from(rest[1]) << 8;
    }
    if !rest.is_empty() {
        h ^= u32::from(rest[0]);
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h
}

impl Transport for EmbeddedTransport {
    fn name(&self) -> &'static str {
        "embedded log"
    }

    fn poll(&mut self, max: usize, timeout: Duration) -> Result<Polled, StreamError> {
        let mut polled = Polled::default();
        if !self.announced {
            self.announced = true;
            polled.events.push(AssignmentEvent::Assigned(
                self.parts.iter().map(|p| p.tp.clone()).collect(),
            ));
        }
        let deadline = Instant::now() + timeout;
        loop {
            // Read the commit count first so a commit landing during the read wakes the wait.
            let seen = self.log.commit_count();
            self.read_some(max, &mut polled.records)?;
            if !polled.records.is_empty() || !polled.events.is_empty() {
                self.seen_commits = seen;
                return Ok(polled);
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(polled);
            }
            self.seen_commits = self.log.wait_for_commit(seen, deadline - now);
        }
    }

    fn pause(&mut self, tp: &TopicPartition) -> Result<(), StreamError> {
        if let Some(&i) = self.index.get(tp) {
            self.parts[i].paused = true;
        }
        Ok(())
    }

    fn resume(&mut self, tp: &TopicPartition) -> Result<(), StreamError> {
        if let Some(&i) = self.index.get(tp) {
            self.parts[i].paused = false;
        }
        Ok(())
    }

    fn send(&mut self, record: OutRecord) -> Result<(), StreamError> {
        let partition = self.out_partition(&record)?;
        let txn = [
            ("dipper.txn", self.txn_id.as_bytes()),
            ("dipper.txn.seq", self.seq_text.as_bytes()),
        ];
        let headers = record
            .headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_slice()));
        let rec = RecordRef {
            key: record.key.as_deref(),
            value: Some(&record.value),
            timestamp: record.timestamp,
        };
        self.pending
            .append(&record.topic, partition, rec, headers.chain(txn))
            .map_err(StreamError::embedded)?;
        if let Some(key) = record.key {
            self.pool.give(Kind::Key, key);
        }
        self.pool.give(Kind::Value, record.value);
        Ok(())
    }

    fn consumed(&mut self, tp: &TopicPartition, next_offset: u64) {
        match self.positions.get_mut(tp) {
            Some(off) => *off = next_offset,
            None => {
                self.positions.insert(tp.clone(), next_offset);
            }
        }
    }

    fn commit(&mut self) -> Result<Option<Committed>, StreamError> {
        if self.pending.is_empty() && self.positions.is_empty() {
            return Ok(None);
        }
        let records_out = self.pending.len() as u64;
        for (tp, off) in &self.positions {
            self.pending
                .set_position(&self.group, &tp.topic, tp.partition, *off);
        }
        // Appends go at the partitions' ends as they are at commit time, so another writer on an
        // output partition cannot make this conflict. On failure the unit stays as it was until the
        // engine aborts it.
        self.log
            .commit_batch(&mut self.pending)
            .map_err(StreamError::embedded)?;
        for (tp, off) in std::mem::take(&mut self.positions) {
            if let Some(&i) = self.index.get(&tp) {
                self.parts[i].committed = off;
            }
        }
        let done = Committed {
            txn: self.txn_id.clone(),
            seq: self.seq,
            records_out,
        };
        self.next_seq();
        Ok(Some(done))
    }

    fn abort(&mut self) -> Result<(), StreamError> {
        self.pending.clear();
        self.positions.clear();
        for p in &mut self.parts {
            p.fetch = p.committed;
        }
        self.next_seq();
        Ok(())
    }

    fn lag(&self) -> Vec<(TopicPartition, i64)> {
        self.parts
            .iter()
            .filter_map(|p| {
                let hw = self.log.high_watermark(&p.tp.topic, p.tp.partition).ok()?;
                Some((p.tp.clone(), hw as i64 - p.committed as i64))
            })
            .collect()
    }

    fn close(&mut self) -> Result<(), StreamError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dipper_log::Record;

    #[test]
    fn murmur2_matches_kafka() {
        // Values from Kafka's UtilsTest.testMurmur2 / DefaultPartitionerTest.
        assert_eq!(murmur2(b"21") as i32, -973932308);
        assert_eq!(murmur2(b"foobar") as i32, -790332482);
        assert_eq!(murmur2(b"a-little-bit-long-string") as i32, -985981536);
        assert_eq!(murmur2(b"a-little-bit-longer-string") as i32, -1486304829);
        assert_eq!(
            murmur2(b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8") as i32,
            -58897971
        );
        assert_eq!(murmur2(b"abc") as i32, 479470107);
    }

    fn log_with(topics: &[(&str, u32)]) -> (tempfile::TempDir, Arc<Log>) {
        let dir = tempfile::tempdir().unwrap();
        let log = Arc::new(Log::open(dir.path(), dipper_log::Options::default()).unwrap());
        for (t, n) in topics {
            log.create_topic(t, *n).unwrap();
        }
        (dir, log)
    }

    fn out(topic: &str, key: Option<&str>, v: &str, src: u32) -> OutRecord {
        OutRecord {
            topic: Arc::from(topic),
            key: key.map(|k| k.as_bytes().to_vec()),
            value: v.as_bytes().to_vec(),
            headers: vec![],
            timestamp: 1,
            source_partition: src,
        }
    }

    #[test]
    fn commit_makes_outputs_and_positions_durable_together_and_abort_rewinds() {
        let (_d, log) = log_with(&[("in", 2), ("out", 2)]);
        for p in 0..2 {
            log.append(
                "in",
                p,
                (0..5).map(|i| Record::value(format!("{p}-{i}"), 0)),
            )
            .unwrap();
        }
        let mut t = EmbeddedTransport::new(log.clone(), "g", &["in".into()], &["out"]).unwrap();
        let polled = t.poll(100, Duration::from_millis(10)).unwrap();
        assert_eq!(polled.events.len(), 1);
        assert_eq!(polled.records.len(), 10);
        let tp0 = TopicPartition::new("in", 0);
        t.send(out("out", None, "a", 0)).unwrap();
        t.consumed(&tp0, 3);
        // Aborted: nothing visible, positions rewound; the same records come back.
        t.abort().unwrap();
        assert_eq!(log.high_watermark("out", 0).unwrap(), 0);
        let again = t.poll(100, Duration::from_millis(10)).unwrap();
        assert_eq!(again.records.len(), 10);
        t.send(out("out", None, "a", 0)).unwrap();
        t.consumed(&tp0, 3);
        let c = t.commit().unwrap().unwrap();
        assert_eq!(c.records_out, 1);
        assert_eq!(log.committed("g", "in", 0).unwrap(), Some(3));
        let rec = &log.read("out", 0, 0, 10).unwrap()[0];
        assert!(rec
            .headers
            .iter()
            .any(|(k, v)| k == "dipper.txn.seq" && v == b"1"));
        // A new transport resumes from the committed position.
        drop(t);
        let mut t = EmbeddedTransport::new(log.clone(), "g", &["in".into()], &["out"]).unwrap();
        let polled = t.poll(100, Duration::from_millis(10)).unwrap();
        assert_eq!(polled.records.len(), 7);
        assert_eq!(t.commit().unwrap(), None);
    }

    #[test]
    fn paused_partitions_are_not_read_and_poll_wakes_on_commit() {
        let (_d, log) = log_with(&[("in", 2), ("out", 1)]);
        let mut t = EmbeddedTransport::new(log.clone(), "g", &["in".into()], &["out"]).unwrap();
        t.poll(10, Duration::ZERO).unwrap();
        t.pause(&TopicPartition::new("in", 1)).unwrap();
        let writer = {
            let log = log.clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(50));
                log.append("in", 1, [Record::value("x", 0)]).unwrap();
                log.append("in", 0, [Record::value("y", 0)]).unwrap();
            })
        };
        let start = Instant::now();
        let mut got = Vec::new();
        while got.is_empty() && start.elapsed() < Duration::from_secs(5) {
            got = t.poll(10, Duration::from_secs(5)).unwrap().records;
        }
        writer.join().unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].tp.partition, 0);
        t.resume(&TopicPartition::new("in", 1)).unwrap();
        let got = t.poll(10, Duration::from_millis(10)).unwrap().records;
        assert_eq!(got[0].tp.partition, 1);
    }

    #[test]
    fn recycled_buffers_never_leak_bytes_between_records() {
        let (_d, log) = log_with(&[("in", 1), ("out", 1)]);
        let value = |i: usize| vec![b'a' + (i % 26) as u8; 1 + (i * 37) % 300];
        log.append(
            "in",
            0,
            (0..600).map(|i| Record::keyed(format!("k{i}"), value(i), i as i64)),
        )
        .unwrap();
        let mut t = EmbeddedTransport::new(log.clone(), "g", &["in".into()], &["out"]).unwrap();
        let mut read = 0;
        while read < 600 {
            let polled = t.poll(50, Duration::from_millis(10)).unwrap();
            for r in polled.records {
                let i = r.offset as usize;
                assert_eq!(r.key.as_deref(), Some(format!("k{i}").as_bytes()));
                assert_eq!(r.value.as_deref(), Some(&value(i)[..]));
                // Outputs take their input's buffers, which the next reads reuse.
                let mut o = out("out", None, "", 0);
                o.key = r.key;
                o.value = r.value.unwrap();
                o.value.truncate(3);
                t.send(o).unwrap();
                t.consumed(&r.tp, r.offset + 1);
                read += 1;
            }
            t.commit().unwrap();
        }
        let outs = log.read("out", 0, 0, usize::MAX).unwrap();
        assert_eq!(outs.len(), 600);
        for (i, o) in outs.iter().enumerate() {
            assert_eq!(o.key.as_deref(), Some(format!("k{i}").as_bytes()));
            let v = value(i);
            assert_eq!(o.value.as_deref(), Some(&v[..v.len().min(3)]));
        }
        assert_eq!(log.committed("g", "in", 0).unwrap(), Some(600));
    }

    #[test]
    fn keyed_outputs_use_the_kafka_partitioner() {
        let (_d, log) = log_with(&[("in", 1), ("out", 3)]);
        let mut t = EmbeddedTransport::new(log.clone(), "g", &["in".into()], &["out"]).unwrap();
        t.send(out("out", Some("foobar"), "v", 0)).unwrap();
        t.commit().unwrap();
        let p = kafka_partition(b"foobar", 3);
        assert_eq!(log.high_watermark("out", p).unwrap(), 1);
    }

    #[test]
    fn missing_topic_is_named_with_the_directory() {
        let (_d, log) = log_with(&[("out", 1)]);
        let e = EmbeddedTransport::new(log, "g", &["nope".into()], &["out"])
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("'nope'") && e.contains("create_topics"), "{e}");
    }
}

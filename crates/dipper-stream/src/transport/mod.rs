//! The seam between the runtime and a log: everything above it (decode, score, dead-letter, flow
//! control, commit cadence) is shared by Kafka ([`kafka`]) and the embedded log ([`embedded`]).
//!
//! The runtime works in units of work. It polls records, sends outputs for some of them and reports
//! how far each partition is done ([`Transport::consumed`]); [`Transport::commit`] then makes the
//! outputs and those positions durable — atomically under exactly-once — and
//! [`Transport::abort`] throws the open unit away and rewinds every partition to its last commit.
//! Rebalances are handled inside the transport (Kafka commits the open unit before giving partitions
//! up) and reported through [`Polled::events`] so the runtime can drop work for partitions it lost.

pub mod embedded;
pub mod kafka;

use std::sync::Arc;
use std::time::Duration;

use crate::error::StreamError;

/// A topic-partition.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicPartition {
    pub topic: Arc<str>,
    pub partition: u32,
}

impl TopicPartition {
    pub fn new(topic: &str, partition: u32) -> Self {
        TopicPartition {
            topic: Arc::from(topic),
            partition,
        }
    }
}

impl std::fmt::Display for TopicPartition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.topic, self.partition)
    }
}

/// A consumed record.
#[derive(Debug, Clone)]
pub struct InRecord {
    pub tp: TopicPartition,
    pub offset: u64,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    /// Milliseconds since the epoch (the log's timestamp).
    pub timestamp: i64,
}

/// A record to produce.
#[derive(Debug, Clone, PartialEq)]
pub struct OutRecord {
    pub topic: Arc<str>,
    pub key: Option<Vec<u8>>,
    pub value: Vec<u8>,
    pub headers: Vec<(String, Vec<u8>)>,
    pub timestamp: i64,
    /// The input partition it came from: unkeyed outputs stay in input order on the embedded log.
    pub source_partition: u32,
}

/// Assignment changes seen during a poll.
#[derive(Debug, Clone, PartialEq)]
pub enum AssignmentEvent {
    /// These partitions are now ours, starting at their committed positions.
    Assigned(Vec<TopicPartition>),
    /// These were taken away; the open unit was committed (or aborted) first, so results still in
    /// flight for them must be dropped: the new owner resumes at the committed position.
    Revoked(Vec<TopicPartition>),
    /// The open unit was aborted inside the transport (a commit during a rebalance failed): every
    /// partition was rewound to its last commit and all in-flight work must be dropped.
    Rewound,
    /// The open unit was committed inside the transport (before a revocation).
    CommittedInRebalance(Committed),
}

/// What one poll returned.
#[derive(Debug, Default)]
pub struct Polled {
    pub records: Vec<InRecord>,
    pub events: Vec<AssignmentEvent>,
}

/// The result of a successful commit, for metrics and the commit ledger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Committed {
    /// The id outputs of this unit carry in their `dipper.txn` header.
    pub txn: String,
    /// Its sequence number within this process (`dipper.txn.seq`).
    pub seq: u64,
    pub records_out: u64,
}

/// One log as the runtime sees it. Implementations are driven from one thread.
pub trait Transport: Send {
    /// Short name for logs and errors.
    fn name(&self) -> &'static str;

    /// Up to `max` records from unpaused partitions, waiting at most `timeout` for the first.
    fn poll(&mut self, max: usize, timeout: Duration) -> Result<Polled, StreamError>;

    /// Stops fetching from a partition (records already returned are still processed).
    fn pause(&mut self, tp: &TopicPartition) -> Result<(), StreamError>;

    /// Resumes fetching.
    fn resume(&mut self, tp: &TopicPartition) -> Result<(), StreamError>;

    /// Adds an output to the open unit of work, tagging it with the unit's `dipper.txn` and
    /// `dipper.txn.seq` headers.
    fn send(&mut self, record: OutRecord) -> Result<(), StreamError>;

    /// Records that every input of `tp` below `next_offset` is done (its outputs sent).
    fn consumed(&mut self, tp: &TopicPartition, next_offset: u64);

    /// Outputs and positions of the open unit become durable (atomically under exactly-once).
    /// `None` when there was nothing to commit.
    fn commit(&mut self) -> Result<Option<Committed>, StreamError>;

    /// Discards the open unit: its outputs never become visible to read_committed readers (exactly-once)
    /// and every partition is rewound to its last committed position.
    fn abort(&mut self) -> Result<(), StreamError>;

    /// Consumer lag per assigned partition, when known cheaply.
    fn lag(&self) -> Vec<(TopicPartition, i64)> {
        Vec::new()
    }

    /// Leaves the group / releases resources after the last commit.
    fn close(&mut self) -> Result<(), StreamError>;
}

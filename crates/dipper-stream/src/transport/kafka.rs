//! The Kafka transport, through librdkafka (`rdkafka`): a consumer-group member with cooperative
//! rebalancing and a producer, transactional under exactly-once.
//!
//! Exactly-once is Kafka's consume-transform-produce loop: outputs of a unit are produced inside a
//! transaction, the unit's input positions are added with `send_offsets_to_transaction` (with the
//! consumer's group metadata, so a zombie from an older generation is fenced), and the transaction
//! commits both. The transactional id is stable per instance, so a restarted instance fences its
//! predecessor and aborts whatever transaction it left open. On failure the transaction is aborted
//! and every partition is sought back to its last committed position.
//!
//! At-least-once produces with an idempotent producer and commits input offsets only after `flush`
//! returned and no delivery failed since the last commit; a failure rewinds instead.
//!
//! Rebalances: before partitions are revoked the open unit is committed (or aborted and rewound if
//! the commit fails or the assignment was lost), inside librdkafka's rebalance callback, so no other
//! member can start from a position that does not match the outputs. Every output carries headers
//! `dipper.txn` (`<transactional id>/<session>`, the session being random per process start — the
//! epoch librdkafka does not expose) and `dipper.txn.seq` (the transaction's sequence in the session).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{
    BaseConsumer, Consumer, ConsumerContext, ConsumerGroupMetadata, Rebalance,
};
use rdkafka::error::{KafkaError, KafkaResult, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::statistics::Statistics;
use rdkafka::{ClientContext, Message, Offset, TopicPartitionList};
use tracing::{info, warn};

use super::{AssignmentEvent, Committed, InRecord, OutRecord, Polled, TopicPartition, Transport};
use crate::config::{Guarantee, KafkaConfig, PipelineConfig};
use crate::error::{Recovery, StreamError};

const TXN_TIMEOUT: Duration = Duration::from_secs(30);
const OP_TIMEOUT: Duration = Duration::from_secs(30);
/// Attempts of a transactional call that keeps failing with a retriable error (e.g. a timeout).
const TXN_ATTEMPTS: u32 = 3;

/// Counts failed deliveries since the last commit.
struct DeliveryContext {
    failures: AtomicU64,
    last_error: Mutex<Option<String>>,
}

impl ClientContext for DeliveryContext {}

impl ProducerContext for DeliveryContext {
    type DeliveryOpaque = ();
    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        if let Err((e, _)) = result {
            self.failures.fetch_add(1, Ordering::Relaxed);
            *self.last_error.lock().unwrap_or_else(|e| e.into_inner()) = Some(e.to_string());
        }
    }
}

type Producer_ = BaseProducer<DeliveryContext>;

/// The open unit of work, shared between the transport and the rebalance callback (both run on the
/// engine thread; the mutex is never contended).
struct Unit {
    producer: Producer_,
    exactly_once: bool,
    txn_open: bool,
    /// Positions (next offsets) reached in the open unit.
    positions: HashMap<(String, i32), i64>,
    /// Last committed position per assigned partition: where an abort rewinds to.
    committed: HashMap<(String, i32), Offset>,
    sent: u64,
    txn_tag: String,
    seq: u64,
    events: Vec<AssignmentEvent>,
    /// Set when a commit inside a rebalance failed: the transport rewinds after the poll.
    rewind: bool,
    /// Set when the producer is left in a transaction nothing can end (a fatal error, or an abort that
    /// failed): every later call fails with this instead of retrying forever.
    broken: Option<String>,
    lag: HashMap<(String, i32), i64>,
}

struct GroupContext {
    unit: Arc<Mutex<Unit>>,
}

fn lock(unit: &Mutex<Unit>) -> MutexGuard<'_, Unit> {
    unit.lock().unwrap_or_else(|e| e.into_inner())
}

impl ClientContext for GroupContext {
    fn stats(&self, stats: Statistics) {
        let mut unit = lock(&self.unit);
        for (topic, t) in stats.topics {
            for (p, part) in t.partitions {
                if p >= 0 && part.consumer_lag >= 0 {
                    unit.lag.insert((topic.clone(), p), part.consumer_lag);
                }
            }
        }
    }
}

impl ConsumerContext for GroupContext {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let Rebalance::Revoke(tpl) = rebalance else {
            return;
        };
        let tps = tp_list(tpl);
        let mut unit = lock(&self.unit);
        if unit.broken.is_some() {
            // Nothing can be committed any more; the pipeline is stopping with that error.
            unit.abort_open();
        } else if consumer.assignment_lost() {
            warn!("assignment lost (session timed out): aborting the open unit");
            unit.abort_open();
            unit.rewind = true;
        } else {
            match unit.commit(consumer) {
                Ok(Some(c)) => unit.events.push(AssignmentEvent::CommittedInRebalance(c)),
                Ok(None) => {}
                Err(e) => {
                    warn!(error = %e, "commit before revocation failed: aborting the open unit");
                    if !e.is_retriable() && unit.broken.is_none() {
                        // The callback cannot fail the poll: the next call does.
                        unit.broken = Some(message_of(&e));
                    }
                    unit.abort_open();
                    unit.rewind = true;
                }
            }
        }
        for tp in &tps {
            let key = (tp.topic.to_string(), tp.partition as i32);
            unit.positions.remove(&key);
            unit.committed.remove(&key);
            unit.lag.remove(&key);
        }
        unit.events.push(AssignmentEvent::Revoked(tps));
    }

    fn post_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Assign(tpl) => {
                let tps = tp_list(tpl);
                // Where an abort rewinds to until we commit ourselves: the group's committed offset.
                let committed = consumer.committed_offsets((*tpl).clone(), OP_TIMEOUT);
                let mut unit = lock(&self.unit);
                match committed {
                    Ok(list) => {
                        for e in list.elements() {
                            let off = match e.offset() {
                                Offset::Offset(n) => Offset::Offset(n),
                                _ => Offset::Stored,
                            };
                            unit.committed
                                .insert((e.topic().to_string(), e.partition()), off);
                        }
                    }
                    Err(e) => {
                        warn!(error = %e, "cannot read committed offsets of new partitions");
                        for tp in &tps {
                            unit.committed.insert(
                                (tp.topic.to_string(), tp.partition as i32),
                                Offset::Stored,
                            );
                        }
                    }
                }
                unit.events.push(AssignmentEvent::Assigned(tps));
            }
            Rebalance::Error(e) => warn!(error = %e, "rebalance error"),
            Rebalance::Revoke(_) => {}
        }
    }
}

fn tp_list(tpl: &TopicPartitionList) -> Vec<TopicPartition> {
    tpl.elements()
        .iter()
        .map(|e| TopicPartition::new(e.topic(), e.partition().max(0) as u32))
        .collect()
}

fn kafka_err(e: KafkaError) -> StreamError {
    let recovery = match &e {
        KafkaError::Transaction(t) if t.is_fatal() => Recovery::Fatal,
        e if e.rdkafka_error_code() == Some(RDKafkaErrorCode::Fenced)
            || e.rdkafka_error_code() == Some(RDKafkaErrorCode::ProducerFenced) =>
        {
            Recovery::Fatal
        }
        _ => Recovery::Retry,
    };
    StreamError::kafka(e, recovery)
}

/// Classifies a failed transactional call by librdkafka's rules. Only an abortable error may be retried
/// (abort the transaction, rewind, redo the unit). A fatal one (e.g. fenced) leaves the producer unusable,
/// and so does anything else: it leaves the producer inside a transaction no call can end — e.g. the broker
/// lacks a transactional request (tansu 0.6 has no EndTxn: `commit_transaction` fails with "EndTxnRequest
/// (KIP-98) not supported by broker" and every later begin or abort with "Conflicting commit_transaction API
/// call is already in progress"), so aborting and retrying would loop forever. Retriable errors are retried
/// in place by [`txn_call`] first.
fn txn_err(op: &str, e: KafkaError) -> StreamError {
    let (recovery, hint) = match &e {
        KafkaError::Transaction(t) if t.txn_requires_abort() && !t.is_fatal() => (Recovery::Retry, ""),
        KafkaError::Transaction(t) if t.code() == RDKafkaErrorCode::UnsupportedFeature => (
            Recovery::Fatal,
            " (the broker does not implement this transactional request, so exactly-once cannot work on \
             it; use delivery.guarantee: at-least-once with this broker)",
        ),
        _ => (Recovery::Fatal, ""),
    };
    StreamError::kafka(format!("cannot {op}: {e}{hint}"), recovery)
}

/// Runs a transactional call, repeating it while it fails with a retriable error (librdkafka: the same call
/// may be made again, e.g. after a timeout), at most [`TXN_ATTEMPTS`] times; other failures are classified
/// by [`txn_err`]. librdkafka flags a missing broker feature and a call conflicting with one still in
/// progress as retriable too, but repeating them cannot help.
fn txn_call(op: &str, mut call: impl FnMut() -> KafkaResult<()>) -> Result<(), StreamError> {
    let mut attempt = 1;
    loop {
        match call() {
            Ok(()) => return Ok(()),
            Err(KafkaError::Transaction(t))
                if t.is_retriable()
                    && !matches!(
                        t.code(),
                        RDKafkaErrorCode::UnsupportedFeature | RDKafkaErrorCode::Conflict
                    )
                    && attempt < TXN_ATTEMPTS =>
            {
                warn!(error = %t, attempt, "cannot {op}; trying again");
                attempt += 1;
            }
            Err(e) => return Err(txn_err(op, e)),
        }
    }
}

impl Unit {
    /// Fails when an earlier error left the producer unusable.
    fn check(&self) -> Result<(), StreamError> {
        match &self.broken {
            Some(why) => Err(StreamError::kafka(why, Recovery::Fatal)),
            None => Ok(()),
        }
    }

    fn offsets_list(&self) -> Result<TopicPartitionList, StreamError> {
        let mut tpl = TopicPartitionList::new();
        for ((t, p), off) in &self.positions {
            tpl.add_partition_offset(t, *p, Offset::Offset(*off))
                .map_err(kafka_err)?;
        }
        Ok(tpl)
    }

    fn commit(
        &mut self,
        consumer: &BaseConsumer<GroupContext>,
    ) -> Result<Option<Committed>, StreamError> {
        self.check()?;
        if !self.txn_open && self.positions.is_empty() {
            return Ok(None);
        }
        let offsets = self.offsets_list()?;
        if self.exactly_once {
            if !self.txn_open {
                txn_call("begin a transaction", || self.producer.begin_transaction())?;
                self.txn_open = true;
            }
            if offsets.count() > 0 {
                let meta: ConsumerGroupMetadata = consumer.group_metadata().ok_or_else(|| {
                    StreamError::kafka("consumer has no group metadata", Recovery::Retry)
                })?;
                txn_call("add the input offsets to the transaction", || {
                    self.producer
                        .send_offsets_to_transaction(&offsets, &meta, TXN_TIMEOUT)
                })?;
            }
            txn_call("commit the transaction", || {
                self.producer.commit_transaction(TXN_TIMEOUT)
            })?;
            self.txn_open = false;
        } else {
            self.producer.flush(OP_TIMEOUT).map_err(kafka_err)?;
            let failures = self.producer.context().failures.swap(0, Ordering::Relaxed);
            if failures > 0 {
                let why = lock_err(&self.producer.context().last_error);
                return Err(StreamError::kafka(
                    format!("{failures} outputs were not delivered ({why}); not committing their inputs"),
                    Recovery::Retry,
                ));
            }
            if offsets.count() > 0 {
                consumer
                    .commit(&offsets, rdkafka::consumer::CommitMode::Sync)
                    .map_err(kafka_err)?;
            }
        }
        for (k, off) in self.positions.drain() {
            self.committed.insert(k, Offset::Offset(off));
        }
        let done = Committed {
            txn: self.txn_tag.clone(),
            seq: self.seq,
            records_out: self.sent,
        };
        self.sent = 0;
        self.seq += 1;
        Ok(Some(done))
    }

    /// Aborts the open transaction (exactly-once) and forgets the unit's positions. A transaction that
    /// cannot be aborted leaves the producer unusable ([`Unit::broken`]).
    fn abort_open(&mut self) {
        if self.exactly_once && self.txn_open {
            if let Err(e) = txn_call("abort the transaction", || {
                self.producer.abort_transaction(TXN_TIMEOUT)
            }) {
                warn!(error = %e, "the open transaction cannot be aborted");
                if self.broken.is_none() {
                    self.broken = Some(message_of(&e));
                }
            }
            self.txn_open = false;
        }
        if !self.exactly_once {
            // Outputs already produced stay (at-least-once); their inputs will be redone.
            let _ = self.producer.flush(OP_TIMEOUT);
            self.producer.context().failures.store(0, Ordering::Relaxed);
        }
        self.positions.clear();
        self.sent = 0;
        self.seq += 1;
    }
}

/// A transport error's message without the transport's name (it is added again when re-raised).
fn message_of(e: &StreamError) -> String {
    match e {
        StreamError::Transport { message, .. } => message.clone(),
        e => e.to_string(),
    }
}

fn lock_err(m: &Mutex<Option<String>>) -> String {
    m.lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone()
        .unwrap_or_default()
}

/// A [`Transport`] over a Kafka cluster.
pub struct KafkaTransport {
    consumer: BaseConsumer<GroupContext>,
    unit: Arc<Mutex<Unit>>,
}

fn instance_id() -> String {
    std::env::var("DIPPER_INSTANCE_ID")
        .ok()
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok().filter(|s| !s.is_empty()))
        .or_else(|| {
            std::fs::read_to_string("/etc/hostname")
                .ok()
                .map(|s| s.trim().to_string())
        })
        .unwrap_or_else(|| "0".into())
}

impl KafkaTransport {
    /// Creates the consumer and producer, initialises transactions and subscribes.
    pub fn new(config: &PipelineConfig, kafka: &KafkaConfig) -> Result<Self, StreamError> {
        let exactly_once = config.delivery.guarantee == Guarantee::ExactlyOnce;
        let group = config.group_id();
        let fatal = |e: KafkaError| StreamError::kafka(e, Recovery::Fatal);

        let mut common = ClientConfig::new();
        common.set("bootstrap.servers", &kafka.brokers);
        for (k, v) in &kafka.properties {
            common.set(k, v);
        }

        let mut pc = common.clone();
        pc.set("enable.idempotence", "true")
            .set("acks", "all")
            .set("partitioner", "murmur2_random")
            .set("linger.ms", "5");
        let txn_id = kafka
            .transactional_id
            .clone()
            .unwrap_or_else(|| format!("dipper-{}-{}", config.name, instance_id()));
        if exactly_once {
            pc.set("transactional.id", &txn_id);
        }
        for (k, v) in &kafka.producer_properties {
            pc.set(k, v);
        }
        let producer: Producer_ = pc
            .create_with_context(DeliveryContext {
                failures: AtomicU64::new(0),
                last_error: Mutex::new(None),
            })
            .map_err(fatal)?;
        if exactly_once {
            // Fences any earlier instance with this id and aborts the transaction it left open.
            producer.init_transactions(OP_TIMEOUT).map_err(fatal)?;
        }

        let session: u64 = {
            use std::hash::{BuildHasher, Hasher};
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_u128(
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_nanos())
                    .unwrap_or(0),
            );
            h.write_u32(std::process::id());
            h.finish()
        };
        let unit = Arc::new(Mutex::new(Unit {
            producer,
            exactly_once,
            txn_open: false,
            positions: HashMap::new(),
            committed: HashMap::new(),
            sent: 0,
            txn_tag: format!(
                "{}/{session:016x}",
                if exactly_once { &txn_id } else { &group }
            ),
            seq: 0,
            events: Vec::new(),
            rewind: false,
            broken: None,
            lag: HashMap::new(),
        }));

        let mut cc = common;
        cc.set("group.id", &group)
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", &kafka.auto_offset_reset)
            .set("partition.assignment.strategy", "cooperative-sticky")
            .set("isolation.level", "read_committed")
            .set("statistics.interval.ms", "5000");
        for (k, v) in &kafka.consumer_properties {
            cc.set(k, v);
        }
        let consumer: BaseConsumer<GroupContext> = cc
            .create_with_context(GroupContext { unit: unit.clone() })
            .map_err(fatal)?;
        let topics: Vec<&str> = config.input.topics.iter().map(String::as_str).collect();
        consumer.subscribe(&topics).map_err(fatal)?;
        info!(transactional_id = %txn_id, exactly_once, "kafka transport created");
        Ok(KafkaTransport { consumer, unit })
    }

    /// Seeks every assigned partition back to its last committed position.
    fn rewind(&self) -> Result<(), StreamError> {
        let committed: Vec<((String, i32), Offset)> = lock(&self.unit)
            .committed
            .iter()
            .map(|(k, v)| (k.clone(), *v))
            .collect();
        for ((topic, p), off) in committed {
            let target = match off {
                Offset::Offset(n) => Offset::Offset(n),
                // Never committed by anyone: back to where the reset policy starts.
                _ => Offset::Beginning,
            };
            if let Err(e) = self.consumer.seek(&topic, p, target, OP_TIMEOUT) {
                return Err(StreamError::kafka(
                    format!("cannot rewind {topic}/{p} to {target:?}: {e}"),
                    Recovery::Fatal,
                ));
            }
        }
        Ok(())
    }
}

fn owned_headers(headers: &[(String, Vec<u8>)], tag: &str, seq: u64) -> OwnedHeaders {
    let seq = seq.to_string();
    let mut h = OwnedHeaders::new_with_capacity(headers.len() + 2);
    for (k, v) in headers {
        h = h.insert(Header {
            key: k,
            value: Some(v),
        });
    }
    h.insert(Header {
        key: "dipper.txn",
        value: Some(tag),
    })
    .insert(Header {
        key: "dipper.txn.seq",
        value: Some(&seq),
    })
}

impl Transport for KafkaTransport {
    fn name(&self) -> &'static str {
        "kafka"
    }

    fn poll(&mut self, max: usize, timeout: Duration) -> Result<Polled, StreamError> {
        let mut polled = Polled::default();
        {
            let unit = lock(&self.unit);
            unit.check()?;
            unit.producer.poll(Duration::ZERO);
        }
        let mut wait = timeout;
        while polled.records.len() < max {
            // The unit lock is not held here: rebalance callbacks run inside this call.
            let Some(msg) = self.consumer.poll(wait) else {
                break;
            };
            wait = Duration::ZERO;
            match msg {
                Ok(m) => polled.records.push(InRecord {
                    tp: TopicPartition::new(m.topic(), m.partition().max(0) as u32),
                    offset: m.offset().max(0) as u64,
                    key: m.key().map(<[u8]>::to_vec),
                    value: m.payload().map(<[u8]>::to_vec),
                    timestamp: m.timestamp().to_millis().unwrap_or(0),
                }),
                Err(KafkaError::PartitionEOF(_)) => {}
                Err(e) => {
                    warn!(error = %e, "consumer error");
                    if matches!(e.rdkafka_error_code(), Some(c) if is_fatal_consumer_error(c)) {
                        return Err(StreamError::kafka(e, Recovery::Fatal));
                    }
                    break;
                }
            }
        }
        let (events, rewind) = {
            let mut unit = lock(&self.unit);
            (
                std::mem::take(&mut unit.events),
                std::mem::take(&mut unit.rewind),
            )
        };
        polled.events = events;
        if rewind {
            // Records of this poll may predate the rewind: drop them; they come again.
            polled.records.clear();
            self.rewind()?;
            polled.events.push(AssignmentEvent::Rewound);
        }
        Ok(polled)
    }

    fn pause(&mut self, tp: &TopicPartition) -> Result<(), StreamError> {
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition(&tp.topic, tp.partition as i32);
        self.consumer
            .pause(&tpl)
            .map_err(|e| StreamError::kafka(e, Recovery::Retry))
    }

    fn resume(&mut self, tp: &TopicPartition) -> Result<(), StreamError> {
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition(&tp.topic, tp.partition as i32);
        self.consumer
            .resume(&tpl)
            .map_err(|e| StreamError::kafka(e, Recovery::Retry))
    }

    fn send(&mut self, record: OutRecord) -> Result<(), StreamError> {
        let mut unit = lock(&self.unit);
        unit.check()?;
        if unit.exactly_once && !unit.txn_open {
            txn_call("begin a transaction", || unit.producer.begin_transaction())?;
            unit.txn_open = true;
        }
        let headers = owned_headers(&record.headers, &unit.txn_tag, unit.seq);
        let mut base = BaseRecord::to(&record.topic)
            .payload(&record.value)
            .headers(headers)
            .timestamp(record.timestamp);
        if let Some(k) = &record.key {
            base = base.key(k);
        }
        loop {
            match unit.producer.send(base) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    base = back;
                    unit.producer.poll(Duration::from_millis(10));
                }
                Err((e, _)) => return Err(kafka_err(e)),
            }
        }
        unit.sent += 1;
        Ok(())
    }

    fn consumed(&mut self, tp: &TopicPartition, next_offset: u64) {
        lock(&self.unit).positions.insert(
            (tp.topic.to_string(), tp.partition as i32),
            next_offset as i64,
        );
    }

    fn commit(&mut self) -> Result<Option<Committed>, StreamError> {
        let mut unit = lock(&self.unit);
        unit.commit(&self.consumer)
    }

    fn abort(&mut self) -> Result<(), StreamError> {
        {
            let mut unit = lock(&self.unit);
            unit.abort_open();
            unit.check()?;
        }
        self.rewind()
    }

    fn lag(&self) -> Vec<(TopicPartition, i64)> {
        lock(&self.unit)
            .lag
            .iter()
            .map(|((t, p), lag)| (TopicPartition::new(t, (*p).max(0) as u32), *lag))
            .collect()
    }

    fn close(&mut self) -> Result<(), StreamError> {
        // Leave the group now rather than when the session times out; the revoke callback finds
        // nothing open because the engine committed before closing.
        self.consumer.unsubscribe();
        for _ in 0..20 {
            if self.consumer.poll(Duration::from_millis(50)).is_none()
                && self
                    .consumer
                    .assignment()
                    .map(|a| a.count() == 0)
                    .unwrap_or(true)
            {
                break;
            }
        }
        lock(&self.unit)
            .producer
            .flush(OP_TIMEOUT)
            .map_err(kafka_err)
    }
}

fn is_fatal_consumer_error(code: RDKafkaErrorCode) -> bool {
    matches!(
        code,
        RDKafkaErrorCode::Fatal
            | RDKafkaErrorCode::GroupAuthorizationFailed
            | RDKafkaErrorCode::TopicAuthorizationFailed
            | RDKafkaErrorCode::SaslAuthenticationFailed
            | RDKafkaErrorCode::Authentication
    )
}

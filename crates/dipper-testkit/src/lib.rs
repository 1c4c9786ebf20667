//! **For tests only.** A real Kafka-compatible broker for dipper's integration tests, plus the few client-side
//! helpers those tests keep needing (create a topic, produce, read a topic back, look at committed offsets).
//!
//! Nothing here belongs in production code: errors are `String`s meant for assertion messages, clients are
//! created per call, and reading "everything" from a topic is a heuristic (read until nothing new arrives).
//!
//! # Which broker
//!
//! [`TestBroker::start`] uses, in order:
//! 1. `DIPPER_TEST_BROKERS=host:port[,...]`: an already running broker (e.g. a real Kafka); nothing is started.
//! 2. a `tansu` binary: `DIPPER_TANSU_BIN`, else `$HOME/.cache/tansu/bin/tansu` (where
//!    `tools/ci/install-tansu.sh` puts it), else `tansu` on `PATH`. It is started on a free `127.0.0.1` port with
//!    in-memory storage, and killed (and reaped) when the [`TestBroker`] is dropped. Its stdout/stderr go to a
//!    temporary file; [`TestBroker::log_tail`] shows the end of it.
//!
//! Tests should call [`TestBroker::start_or_skip`]: without any broker it prints a loud `SKIPPED` line and the
//! test returns early, unless `DIPPER_REQUIRE_BROKER=1` (set in CI), where it panics instead.
//!
//! # tansu quirks (0.6.0, memory storage)
//!
//! * ListOffsets / the high watermark counts record *batches*, not records. Never use watermarks against tansu:
//!   [`TestBroker::consume_all`] reads until the topic is quiet instead.
//! * No EndTxn: tansu 0.6.0 neither advertises nor handles it, so librdkafka's `commit_transaction` /
//!   `abort_transaction` of a transaction holding records fail with "EndTxnRequest (KIP-98) not supported by
//!   broker" (init, begin, produce and AddPartitionsToTxn work). The open transaction's records are hidden from
//!   `read_committed` readers until a producer with the same `transactional.id` initialises again; then they all
//!   become visible, as if committed (on Kafka that re-initialisation aborts them). See `tests/transactions.rs`.
//!   Set `DIPPER_BROKER_IS_KAFKA=1` ([`broker_is_kafka`]) when `DIPPER_TEST_BROKERS` points at a real Kafka so
//!   tests can assert the Kafka behaviour there.
//! * Fetch skips the rest of a record batch: a fetch at an offset inside a batch returns only the batches whose
//!   *base* offset is at or after it, so the records of the batch holding that offset from it onwards are never
//!   delivered, and an offset inside the partition's last batch returns nothing until a new batch is appended.
//!   (Measured: 4000 records produced in batches starting at 0, 1348 and 2997; fetch at 1 starts at 1348, at
//!   2048 at 2997, at 3500 returns nothing.) A consumer group resuming from a committed offset, a rewind
//!   (`seek`) or librdkafka's pause/resume (which refetches from the application's position) therefore loses
//!   records. Produce input that consumers resume in with [`TestBroker::produce_unbatched`]; reading a topic
//!   from the beginning ([`TestBroker::consume_all`]) is not affected.
//! * Consumer groups: a member that joins a group with a leader has its JoinGroup held for 3 s (tansu's
//!   `join_follower_pause`) and its last contact stamped with the time before that pause, so with a
//!   `session.timeout.ms` below about 3 s (1 s tried) it is expired as soon as it is in and a second member
//!   never gets an assignment (the group rebalances for ever); 4 s works. A member that joins right after a SIGKILL, while
//!   the killed leader still looks alive, becomes its follower with an empty assignment; when the leader is
//!   then expired the group re-forms without a new generation and heartbeats keep answering "no error", so the
//!   survivor holds no partition for ever. Restart a killed member only after its session timeout.
//! * Create topics with [`TestBroker::create_topic`] (the admin API) before producing; do not rely on
//!   auto-creation.

use std::collections::hash_map::RandomState;
use std::collections::BTreeMap;
use std::hash::{BuildHasher, Hasher};
use std::io::{Read, Seek, SeekFrom, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::{ClientContext, DefaultClientContext};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{DeliveryResult, Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer, ProducerContext};
use rdkafka::{Offset, TopicPartitionList};

/// How long [`TestBroker::start`] waits for the broker to answer a metadata request.
pub const START_TIMEOUT: Duration = Duration::from_secs(30);

/// Timeout for single admin, metadata and offset requests made by the helpers.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);

/// How to install the broker the tests want, for skip and panic messages.
pub const INSTALL_HINT: &str = "bash tools/ci/install-tansu.sh (= cargo install tansu --version 0.6.0 --locked \
     --features dynostore --root $HOME/.cache/tansu, ~20 min), or point DIPPER_TANSU_BIN at a tansu binary";

/// A record to produce: key (`None`: no key), value, headers.
pub type Record = (Option<Vec<u8>>, Vec<u8>, Vec<(String, Vec<u8>)>);

/// Which partition [`TestBroker::produce`] sends each record to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Partitioning {
    /// librdkafka's default partitioner (`consistent_random`): keyed records go to a partition chosen by a hash
    /// of the key, so all records with one key land in one partition in order; keyless records go anywhere.
    ByKey,
    /// Every record to this partition.
    Fixed(u32),
    /// Record `i` to partition `i % partition_count`.
    RoundRobin,
}

/// One record read back by [`TestBroker::consume_all`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumedRecord {
    pub partition: u32,
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    /// `None` for a null value (tombstone).
    pub value: Option<Vec<u8>>,
    /// In order; a null header value reads as an empty vector.
    pub headers: Vec<(String, Vec<u8>)>,
    /// Milliseconds since the epoch (create or log-append time), if the broker gave one.
    pub timestamp: Option<i64>,
}

/// True when `DIPPER_BROKER_IS_KAFKA=1`: the broker in `DIPPER_TEST_BROKERS` is a real Apache Kafka, so tests may
/// assert behaviour tansu does not have (e.g. aborted transactions invisible to `read_committed`).
pub fn broker_is_kafka() -> bool {
    env_nonempty("DIPPER_BROKER_IS_KAFKA").as_deref() == Some("1")
}

/// A topic (or group) name that no other test in this or another run uses: `prefix` plus process id, a counter
/// and random bits, so tests can share one broker.
pub fn unique_topic(prefix: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut h = RandomState::new().build_hasher();
    h.write_u128(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    h.write_u64(n);
    format!(
        "{prefix}-{}-{n}-{:08x}",
        std::process::id(),
        h.finish() as u32
    )
}

/// Writes a line straight to the process's stderr, past libtest's output capture, so it shows up in CI logs even
/// for passing tests (`eprintln!` inside a test is captured and only shown on failure).
pub fn eprintln_uncaptured(line: &str) {
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "{line}");
    let _ = err.flush();
}

/// A Kafka-compatible broker for one test (or several: topics from [`unique_topic`] do not collide).
pub struct TestBroker {
    bootstrap: String,
    tansu: Option<TansuProcess>,
}

struct TansuProcess {
    child: Child,
    bin: PathBuf,
    log: tempfile::NamedTempFile,
}

impl Drop for TansuProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Why no broker could be had.
enum StartError {
    /// Neither `DIPPER_TEST_BROKERS` nor a tansu binary: the test may be skipped.
    NoBroker,
    /// A broker was configured but does not work: always an error.
    Failed(String),
}

impl TestBroker {
    /// The broker from `DIPPER_TEST_BROKERS`, or a freshly started tansu (see the crate docs), once it answers a
    /// metadata request (at most [`START_TIMEOUT`]).
    pub fn start() -> Result<TestBroker, String> {
        Self::try_start().map_err(|e| match e {
            StartError::NoBroker => format!(
                "no Kafka-compatible broker: DIPPER_TEST_BROKERS is not set and no tansu binary was found \
                 (DIPPER_TANSU_BIN, $HOME/.cache/tansu/bin/tansu, PATH). Install tansu: {INSTALL_HINT}"
            ),
            StartError::Failed(msg) => msg,
        })
    }

    /// [`TestBroker::start`] for a test named `test_name`. Without any broker: panics if
    /// `DIPPER_REQUIRE_BROKER=1`, else prints `SKIPPED <test_name>: ...` to stderr (past output capture) and
    /// returns `None`, and the test should return. A broker that is configured but fails to start always panics.
    pub fn start_or_skip(test_name: &str) -> Option<TestBroker> {
        match Self::try_start() {
            Ok(b) => Some(b),
            Err(StartError::Failed(msg)) => panic!("{test_name}: {msg}"),
            Err(StartError::NoBroker) => {
                if env_nonempty("DIPPER_REQUIRE_BROKER").as_deref() == Some("1") {
                    panic!(
                        "{test_name}: DIPPER_REQUIRE_BROKER=1 but there is no Kafka-compatible broker: set \
                         DIPPER_TEST_BROKERS=host:port or install tansu: {INSTALL_HINT}"
                    );
                }
                eprintln_uncaptured(&format!(
                    "!!! SKIPPED {test_name}: no Kafka-compatible broker (set DIPPER_TEST_BROKERS or install \
                     tansu: {INSTALL_HINT}) !!!"
                ));
                None
            }
        }
    }

    fn try_start() -> Result<TestBroker, StartError> {
        if let Some(brokers) = env_nonempty("DIPPER_TEST_BROKERS") {
            wait_for_metadata(&brokers, Instant::now() + START_TIMEOUT, &mut || None)
                .map_err(|e| StartError::Failed(format!("DIPPER_TEST_BROKERS={brokers}: {e}")))?;
            return Ok(TestBroker {
                bootstrap: brokers,
                tansu: None,
            });
        }
        let bin = find_tansu()
            .map_err(StartError::Failed)?
            .ok_or(StartError::NoBroker)?;
        start_tansu(&bin).map_err(StartError::Failed)
    }

    /// A broker something else runs at `bootstrap` (nothing is started, checked or stopped), so the client
    /// helpers work against it too: e.g. librdkafka's in-process `rdkafka::mocking::MockCluster`. The mock's
    /// admin API never answers CreateTopics: create its topics with `MockCluster::create_topic`, not
    /// [`TestBroker::create_topic`].
    pub fn external(bootstrap: impl Into<String>) -> TestBroker {
        TestBroker {
            bootstrap: bootstrap.into(),
            tansu: None,
        }
    }

    /// `bootstrap.servers` for clients of this broker.
    pub fn bootstrap(&self) -> &str {
        &self.bootstrap
    }

    /// A client configuration with only `bootstrap.servers` set.
    pub fn client_config(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", &self.bootstrap);
        config
    }

    /// The tansu binary this broker runs, or `None` for a `DIPPER_TEST_BROKERS` broker.
    pub fn tansu_bin(&self) -> Option<&Path> {
        self.tansu.as_ref().map(|t| t.bin.as_path())
    }

    /// The last `lines` lines of the started broker's stdout/stderr (empty for a `DIPPER_TEST_BROKERS` broker).
    pub fn log_tail(&self, lines: usize) -> String {
        self.tansu
            .as_ref()
            .map(|t| tail_of(t.log.path(), lines))
            .unwrap_or_default()
    }

    /// Creates `name` with `partitions` partitions and replication factor 1 (already existing is fine), and waits
    /// until metadata shows it.
    pub fn create_topic(&self, name: &str, partitions: u32) -> Result<(), String> {
        let admin: AdminClient<DefaultClientContext> = self
            .client_config()
            .create()
            .map_err(|e| format!("admin client: {e}"))?;
        let topic = NewTopic::new(name, partitions as i32, TopicReplication::Fixed(1));
        let options = AdminOptions::new()
            .operation_timeout(Some(REQUEST_TIMEOUT))
            .request_timeout(Some(REQUEST_TIMEOUT));
        let results = futures_executor::block_on(admin.create_topics([&topic], &options))
            .map_err(|e| self.with_log(format!("create topic {name}: {e}")))?;
        for result in results {
            match result {
                Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((t, code)) => return Err(self.with_log(format!("create topic {t}: {code}"))),
            }
        }
        let deadline = Instant::now() + REQUEST_TIMEOUT;
        loop {
            match self.partition_count(admin.inner(), name) {
                Ok(n) if n == partitions => return Ok(()),
                Ok(n) if Instant::now() >= deadline => {
                    return Err(format!(
                        "topic {name} has {n} partitions after creation, wanted {partitions}"
                    ));
                }
                Err(e) if Instant::now() >= deadline => return Err(e),
                _ => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    }

    /// Produces `records` in order with a plain (non-transactional, non-idempotent) producer and waits until
    /// every one is acknowledged. Returns each record's `(partition, offset)` from its delivery report (these
    /// match the offsets consumers read, on tansu 0.6 too).
    ///
    /// Records are batched as librdkafka likes; on tansu 0.6 a consumer that later starts or seeks inside such a
    /// batch loses the rest of it (see the crate docs): use [`TestBroker::produce_unbatched`] for input that
    /// consumers resume from committed offsets.
    pub fn produce(
        &self,
        topic: &str,
        records: &[Record],
        partitioning: Partitioning,
    ) -> Result<Vec<(u32, i64)>, String> {
        self.produce_with(topic, records, partitioning, &[])
    }

    /// [`TestBroker::produce`] with every record in a record batch of its own (`batch.num.messages=1`), so any
    /// offset is a batch boundary: a consumer may start, resume or seek anywhere without tansu 0.6 skipping
    /// records. Slower than [`TestBroker::produce`] (one batch per record and partition in each request).
    pub fn produce_unbatched(
        &self,
        topic: &str,
        records: &[Record],
        partitioning: Partitioning,
    ) -> Result<Vec<(u32, i64)>, String> {
        self.produce_with(topic, records, partitioning, &[("batch.num.messages", "1")])
    }

    /// [`TestBroker::produce`] with extra producer properties.
    pub fn produce_with(
        &self,
        topic: &str,
        records: &[Record],
        partitioning: Partitioning,
        properties: &[(&str, &str)],
    ) -> Result<Vec<(u32, i64)>, String> {
        let context = Deliveries {
            results: Mutex::new(vec![None; records.len()]),
        };
        let mut config = self.client_config();
        config.set("message.timeout.ms", "30000");
        for (k, v) in properties {
            config.set(*k, *v);
        }
        let producer: BaseProducer<Deliveries> = config
            .create_with_context(context)
            .map_err(|e| format!("producer: {e}"))?;
        let partitions = match partitioning {
            Partitioning::RoundRobin => self.partition_count(producer.client(), topic)?,
            _ => 0,
        };
        for (i, (key, value, headers)) in records.iter().enumerate() {
            let mut record: BaseRecord<'_, [u8], [u8], usize> =
                BaseRecord::with_opaque_to(topic, i).payload(value.as_slice());
            if let Some(key) = key {
                record = record.key(key.as_slice());
            }
            if !headers.is_empty() {
                record = record.headers(owned_headers(headers));
            }
            match partitioning {
                Partitioning::ByKey => {}
                Partitioning::Fixed(p) => record = record.partition(p as i32),
                Partitioning::RoundRobin => {
                    record = record.partition((i as u32 % partitions) as i32)
                }
            }
            let mut record = record;
            loop {
                match producer.send(record) {
                    Ok(()) => break,
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                        record = back;
                        producer.poll(Duration::from_millis(50));
                    }
                    Err((e, _)) => return Err(format!("produce record {i} to {topic}: {e}")),
                }
            }
            producer.poll(Duration::ZERO);
        }
        producer
            .flush(Duration::from_secs(60))
            .map_err(|e| self.with_log(format!("flush to {topic}: {e}")))?;
        let results = producer.context().results.lock().unwrap().clone();
        results
            .into_iter()
            .enumerate()
            .map(|(i, r)| match r {
                Some(Ok(at)) => Ok(at),
                Some(Err(e)) => Err(self.with_log(format!("record {i} to {topic}: {e}"))),
                None => Err(format!(
                    "record {i} to {topic}: no delivery report after flush"
                )),
            })
            .collect()
    }

    /// Every record in every partition of `topic`, read from the beginning by a consumer that assigns every partition
    /// (no group membership, nothing committed) until no new record arrived for `quiet`. Sorted by partition, in arrival
    /// (= offset) order within a partition. `read_committed` selects `isolation.level`. Errors if records are
    /// still arriving after `max_wait`. Pick `quiet` of a second or more: the first fetch takes a moment.
    pub fn consume_all(
        &self,
        topic: &str,
        quiet: Duration,
        max_wait: Duration,
        read_committed: bool,
    ) -> Result<Vec<ConsumedRecord>, String> {
        let consumer: BaseConsumer = self
            .client_config()
            // librdkafka refuses `assign` without a group id; this group never joins or commits anything.
            .set("group.id", unique_topic("dipper-testkit-reader"))
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("enable.partition.eof", "false")
            .set("auto.offset.reset", "earliest")
            .set("fetch.wait.max.ms", "100")
            .set(
                "isolation.level",
                if read_committed {
                    "read_committed"
                } else {
                    "read_uncommitted"
                },
            )
            .create()
            .map_err(|e| format!("consumer: {e}"))?;
        let partitions = self.partition_count(consumer.client(), topic)?;
        let mut assignment = TopicPartitionList::new();
        for p in 0..partitions {
            assignment
                .add_partition_offset(topic, p as i32, Offset::Beginning)
                .map_err(|e| format!("assignment: {e}"))?;
        }
        consumer
            .assign(&assignment)
            .map_err(|e| format!("assign {topic}: {e}"))?;

        let started = Instant::now();
        let mut last_new = started;
        let mut out = Vec::new();
        while last_new.elapsed() < quiet {
            if started.elapsed() >= max_wait {
                return Err(format!(
                    "{topic}: records still arriving after {max_wait:?} ({} read)",
                    out.len()
                ));
            }
            match consumer.poll(Duration::from_millis(100)) {
                None => {}
                Some(Ok(m)) => {
                    last_new = Instant::now();
                    out.push(ConsumedRecord {
                        partition: m.partition() as u32,
                        offset: m.offset(),
                        key: m.key().map(<[u8]>::to_vec),
                        value: m.payload().map(<[u8]>::to_vec),
                        headers: m
                            .headers()
                            .map(|hs| {
                                hs.iter()
                                    .map(|h| {
                                        (h.key.to_string(), h.value.unwrap_or_default().to_vec())
                                    })
                                    .collect()
                            })
                            .unwrap_or_default(),
                        timestamp: m.timestamp().to_millis(),
                    });
                }
                Some(Err(e)) => {
                    return Err(
                        self.with_log(format!("consume {topic} ({} read so far): {e}", out.len()))
                    );
                }
            }
        }
        out.sort_by_key(|r| r.partition);
        Ok(out)
    }

    /// The offsets consumer group `group` has committed for `topic`, by partition (the next offset to read, as
    /// Kafka stores it). Partitions without a committed offset are left out.
    pub fn committed_offsets(
        &self,
        group: &str,
        topic: &str,
    ) -> Result<BTreeMap<u32, i64>, String> {
        let consumer: BaseConsumer = self
            .client_config()
            .set("group.id", group)
            .set("enable.auto.commit", "false")
            .create()
            .map_err(|e| format!("consumer: {e}"))?;
        let partitions = self.partition_count(consumer.client(), topic)?;
        let mut tpl = TopicPartitionList::new();
        for p in 0..partitions {
            tpl.add_partition(topic, p as i32);
        }
        let committed = consumer
            .committed_offsets(tpl, REQUEST_TIMEOUT)
            .map_err(|e| self.with_log(format!("committed offsets of {group} on {topic}: {e}")))?;
        let mut out = BTreeMap::new();
        for elem in committed.elements() {
            if let Err(e) = elem.error() {
                return Err(format!(
                    "committed offset of {group} on {topic}/{}: {e}",
                    elem.partition()
                ));
            }
            if let Offset::Offset(o) = elem.offset() {
                out.insert(elem.partition() as u32, o);
            }
        }
        Ok(out)
    }

    /// The first offset still stored in each partition of `topic` (its low watermark). Anything but 0 means
    /// the broker deleted records, by retention or by a size limit such as librdkafka's mock cluster's: it
    /// keeps 5 MiB per partition and silently drops the oldest record batches beyond that.
    pub fn log_start_offsets(&self, topic: &str) -> Result<BTreeMap<u32, i64>, String> {
        let consumer: BaseConsumer = self
            .client_config()
            .set("group.id", unique_topic("dipper-testkit-watermarks"))
            .create()
            .map_err(|e| format!("consumer: {e}"))?;
        let partitions = self.partition_count(consumer.client(), topic)?;
        let mut out = BTreeMap::new();
        for p in 0..partitions {
            let (low, _) = consumer
                .fetch_watermarks(topic, p as i32, REQUEST_TIMEOUT)
                .map_err(|e| self.with_log(format!("watermarks of {topic}/{p}: {e}")))?;
            out.insert(p, low);
        }
        Ok(out)
    }

    fn partition_count<C: ClientContext>(
        &self,
        client: &rdkafka::client::Client<C>,
        topic: &str,
    ) -> Result<u32, String> {
        let metadata = client
            .fetch_metadata(Some(topic), REQUEST_TIMEOUT)
            .map_err(|e| self.with_log(format!("metadata for {topic}: {e}")))?;
        let t = metadata
            .topics()
            .iter()
            .find(|t| t.name() == topic)
            .ok_or_else(|| format!("metadata for {topic}: topic missing"))?;
        if let Some(e) = t.error() {
            return Err(format!(
                "metadata for {topic}: {}",
                RDKafkaErrorCode::from(e)
            ));
        }
        Ok(t.partitions().len() as u32)
    }

    /// `msg`, plus the tail of the broker's log if this kit started the broker.
    fn with_log(&self, msg: String) -> String {
        match &self.tansu {
            Some(t) => format!(
                "{msg}\n--- tail of tansu log ---\n{}",
                tail_of(t.log.path(), 30)
            ),
            None => msg,
        }
    }
}

impl std::fmt::Debug for TestBroker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestBroker")
            .field("bootstrap", &self.bootstrap)
            .field("tansu", &self.tansu.as_ref().map(|t| &t.bin))
            .finish()
    }
}

/// One record's delivery report: `(partition, offset)` or the error; `None` until it arrives.
type Delivery = Option<Result<(u32, i64), String>>;

/// Delivery reports of [`TestBroker::produce`], by record index.
struct Deliveries {
    results: Mutex<Vec<Delivery>>,
}

impl ClientContext for Deliveries {}

impl ProducerContext for Deliveries {
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, index: usize) {
        let r = match result {
            Ok(m) => Ok((m.partition() as u32, m.offset())),
            Err((e, _)) => Err(e.to_string()),
        };
        if let Some(slot) = self.results.lock().unwrap().get_mut(index) {
            *slot = Some(r);
        }
    }
}

fn owned_headers(headers: &[(String, Vec<u8>)]) -> OwnedHeaders {
    headers.iter().fold(
        OwnedHeaders::new_with_capacity(headers.len()),
        |hs, (k, v)| {
            hs.insert(Header {
                key: k,
                value: Some(v),
            })
        },
    )
}

fn env_nonempty(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// `DIPPER_TANSU_BIN` (which must exist if set), else `$HOME/.cache/tansu/bin/tansu`, else `tansu` on `PATH`.
fn find_tansu() -> Result<Option<PathBuf>, String> {
    if let Some(bin) = env_nonempty("DIPPER_TANSU_BIN") {
        let bin = PathBuf::from(bin);
        return if bin.is_file() {
            Ok(Some(bin))
        } else {
            Err(format!(
                "DIPPER_TANSU_BIN={} is not a file. Install tansu: {INSTALL_HINT}",
                bin.display()
            ))
        };
    }
    if let Some(home) = env_nonempty("HOME") {
        let bin = Path::new(&home).join(".cache/tansu/bin/tansu");
        if bin.is_file() {
            return Ok(Some(bin));
        }
    }
    Ok(std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|dir| dir.join("tansu"))
            .find(|bin| bin.is_file())
    }))
}

fn start_tansu(bin: &Path) -> Result<TestBroker, String> {
    // The free port is found by binding and releasing it, so another process may take it before tansu does:
    // then tansu cannot bind (it exits, or, with 0.6, only logs it) and we try another port.
    let mut last_error = String::new();
    for _attempt in 0..3 {
        let port = free_port()?;
        let url = format!("tcp://127.0.0.1:{port}");
        let log = tempfile::Builder::new()
            .prefix("dipper-tansu-")
            .suffix(".log")
            .tempfile()
            .map_err(|e| format!("tansu log file: {e}"))?;
        // Duplicated handles share one file offset, so stdout and stderr lines do not overwrite each other.
        let stdout = log
            .as_file()
            .try_clone()
            .map_err(|e| format!("tansu log file: {e}"))?;
        let stderr = log
            .as_file()
            .try_clone()
            .map_err(|e| format!("tansu log file: {e}"))?;
        let child = Command::new(bin)
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &url,
            ])
            .args(["--storage-engine", "memory://tansu/"])
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .spawn()
            .map_err(|e| {
                format!(
                    "starting {}: {e}. Install tansu: {INSTALL_HINT}",
                    bin.display()
                )
            })?;
        let mut tansu = TansuProcess {
            child,
            bin: bin.to_path_buf(),
            log,
        };
        let bootstrap = format!("127.0.0.1:{port}");
        let deadline = Instant::now() + START_TIMEOUT;
        let mut exited = || tansu.child.try_wait().ok().flatten();
        match wait_for_metadata(&bootstrap, deadline, &mut exited) {
            // tansu 0.6 does not exit when its listener cannot bind (the panic is on a runtime worker), and
            // what answered may be whoever took the port (e.g. a mock cluster in this test process).
            Ok(()) if lost_the_port(tansu.log.path()) => {
                last_error = format!(
                    "{} could not bind {bootstrap}\n--- tail of tansu log ---\n{}",
                    bin.display(),
                    tail_of(tansu.log.path(), 30)
                );
            }
            Ok(()) => {
                return Ok(TestBroker {
                    bootstrap,
                    tansu: Some(tansu),
                });
            }
            Err(e) => {
                let early_exit = tansu.child.try_wait().ok().flatten().is_some();
                last_error = format!(
                    "{} broker on {bootstrap}: {e}\n--- tail of tansu log ---\n{}",
                    bin.display(),
                    tail_of(tansu.log.path(), 30)
                );
                if !early_exit {
                    break;
                }
            }
        }
    }
    Err(last_error)
}

/// Whether tansu's log says its listener could not bind.
fn lost_the_port(log: &Path) -> bool {
    std::fs::read_to_string(log)
        .map(|text| text.contains("AddrInUse") || text.contains("Address already in use"))
        .unwrap_or(false)
}

fn free_port() -> Result<u16, String> {
    let listener =
        TcpListener::bind("127.0.0.1:0").map_err(|e| format!("finding a free port: {e}"))?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|e| format!("finding a free port: {e}"))
}

/// Waits until a TCP connection to the first bootstrap address succeeds (when it is an IP address) and then until
/// the broker answers a metadata request listing at least one broker. `exited` reports a broker process that
/// died meanwhile.
fn wait_for_metadata(
    bootstrap: &str,
    deadline: Instant,
    exited: &mut dyn FnMut() -> Option<std::process::ExitStatus>,
) -> Result<(), String> {
    if let Some(addr) = bootstrap
        .split(',')
        .next()
        .and_then(|a| a.trim().parse::<SocketAddr>().ok())
    {
        loop {
            if let Some(status) = exited() {
                return Err(format!("exited early ({status})"));
            }
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                break;
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "nothing listening on {addr} after {START_TIMEOUT:?}"
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .map_err(|e| format!("client: {e}"))?;
    loop {
        if let Some(status) = exited() {
            return Err(format!("exited early ({status})"));
        }
        let error = match consumer.fetch_metadata(None, Duration::from_secs(2)) {
            Ok(m) if !m.brokers().is_empty() => return Ok(()),
            Ok(_) => "metadata lists no brokers".to_string(),
            Err(e) => e.to_string(),
        };
        if Instant::now() >= deadline {
            return Err(format!("no metadata after {START_TIMEOUT:?}: {error}"));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The last `lines` lines of the file at `path` (reads at most its last 64 KiB).
fn tail_of(path: &Path, lines: usize) -> String {
    let Ok(mut f) = std::fs::File::open(path) else {
        return String::new();
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let _ = f.seek(SeekFrom::Start(len.saturating_sub(64 * 1024)));
    let mut buf = Vec::new();
    let _ = f.read_to_end(&mut buf);
    let text = String::from_utf8_lossy(&buf);
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unique_topics_differ_and_are_legal_names() {
        let a = unique_topic("t");
        let b = unique_topic("t");
        assert_ne!(a, b);
        for name in [&a, &b] {
            assert!(name.starts_with("t-"));
            assert!(
                name.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.' || c == '_'),
                "{name}"
            );
        }
    }

    #[test]
    fn tail_keeps_last_lines() {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        for i in 0..100 {
            writeln!(f, "line {i}").unwrap();
        }
        f.flush().unwrap();
        assert_eq!(tail_of(f.path(), 2), "line 98\nline 99");
    }
}

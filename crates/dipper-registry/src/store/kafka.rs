//! The registry on Kafka: one compacted topic with one partition (so every reader sees one order).
//!
//! Writes use an idempotent producer and are flushed record by record: registry changes are rare, and one
//! record per batch keeps reads exact on brokers that mishandle fetches from inside a batch. Kafka has no
//! conditional append, so the end check before an append narrows but does not close the window in which two
//! writers race; a publisher detects a lost race when it reads its version back (see `Registry::publish`).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::ClientContext;
use rdkafka::{Offset, TopicPartitionList};
use std::sync::Mutex;

use super::Store;
use crate::wire::RawRecord;
use crate::RegistryError;

const TIMEOUT: Duration = Duration::from_secs(30);

/// Remembers the first failed delivery since it was last taken.
#[derive(Default)]
struct Deliveries {
    failed: Mutex<Option<String>>,
}

impl ClientContext for Deliveries {}

impl ProducerContext for Deliveries {
    type DeliveryOpaque = ();
    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        if let Err((e, _)) = result {
            let mut failed = self.failed.lock().unwrap_or_else(|p| p.into_inner());
            failed.get_or_insert_with(|| e.to_string());
        }
    }
}

type Producer_ = BaseProducer<Deliveries>;

/// Where the registry lives on Kafka.
#[derive(Clone, Debug)]
pub struct KafkaStoreConfig {
    pub brokers: String,
    pub topic: String,
    /// librdkafka properties for every client (security.protocol, sasl.*, ssl.*).
    pub properties: BTreeMap<String, String>,
    /// Replication factor when dipper creates the topic; `None` takes the broker's default.
    pub replication_factor: Option<i32>,
}

/// The registry on a Kafka topic.
pub struct KafkaStore {
    config: KafkaStoreConfig,
    producer: Option<Producer_>,
    consumer: BaseConsumer,
    describe: String,
    topic_checked: bool,
}

impl KafkaStore {
    /// Connects (lazily: nothing is contacted until the first read or append).
    pub fn new(config: KafkaStoreConfig) -> Result<Self, RegistryError> {
        dipper_log::validate_topic_name(&config.topic)
            .map_err(|e| RegistryError::Invalid(format!("registry topic: {e}")))?;
        let describe = format!("kafka {} topic {}", config.brokers, config.topic);
        let consumer: BaseConsumer = client_config(&config)
            // `assign` needs a group id; this group never joins or commits.
            .set("group.id", "dipper-registry-reader")
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("enable.partition.eof", "false")
            .set("fetch.wait.max.ms", "50")
            .create()
            .map_err(|e| RegistryError::store(&describe, e, false))?;
        Ok(KafkaStore {
            config,
            producer: None,
            consumer,
            describe,
            topic_checked: false,
        })
    }

    fn err(&self, what: &str, e: impl std::fmt::Display, retriable: bool) -> RegistryError {
        RegistryError::store(&self.describe, format!("{what}: {e}"), retriable)
    }

    /// Whether the topic exists, and its partition count.
    fn partitions(&self) -> Result<Option<usize>, RegistryError> {
        let md = self
            .consumer
            .fetch_metadata(Some(&self.config.topic), TIMEOUT)
            .map_err(|e| self.err("metadata", e, true))?;
        let Some(t) = md.topics().iter().find(|t| t.name() == self.config.topic) else {
            return Ok(None);
        };
        match t.error().map(RDKafkaErrorCode::from) {
            None => Ok(Some(t.partitions().len())),
            Some(RDKafkaErrorCode::UnknownTopicOrPartition) => Ok(None),
            Some(code) => Err(self.err("metadata", code, true)),
        }
    }

    fn ensure_topic(&mut self) -> Result<(), RegistryError> {
        if self.topic_checked {
            return Ok(());
        }
        if self.partitions()?.is_none() {
            let admin: AdminClient<DefaultClientContext> = client_config(&self.config)
                .create()
                .map_err(|e| self.err("admin client", e, false))?;
            let replication = TopicReplication::Fixed(self.config.replication_factor.unwrap_or(-1));
            let topic =
                NewTopic::new(&self.config.topic, 1, replication).set("cleanup.policy", "compact");
            let opts = AdminOptions::new().operation_timeout(Some(TIMEOUT));
            let results = futures_executor::block_on(admin.create_topics([&topic], &opts))
                .map_err(|e| self.err("create the topic", e, true))?;
            for r in results {
                match r {
                    Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                    Err((_, code)) => return Err(self.err("create the topic", code, false)),
                }
            }
            let deadline = Instant::now() + TIMEOUT;
            while self.partitions()?.is_none() {
                if Instant::now() >= deadline {
                    return Err(self.err("create the topic", "not visible after creation", true));
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        match self.partitions()? {
            Some(1) => {}
            Some(n) => {
                return Err(RegistryError::Invalid(format!(
                    "{}: the registry topic has {n} partitions; it needs exactly 1 so every reader sees one order",
                    self.describe
                )))
            }
            None => return Err(self.err("metadata", "topic missing", true)),
        }
        self.topic_checked = true;
        Ok(())
    }

    fn producer(&mut self) -> Result<&Producer_, RegistryError> {
        if self.producer.is_none() {
            let p: Producer_ = client_config(&self.config)
                .set("enable.idempotence", "true")
                .set("acks", "all")
                .set("linger.ms", "0")
                .create_with_context(Deliveries::default())
                .map_err(|e| self.err("producer", e, false))?;
            self.producer = Some(p);
        }
        Ok(self.producer.as_ref().expect("set above"))
    }

    fn watermarks(&self) -> Result<(u64, u64), RegistryError> {
        let (lo, hi) = self
            .consumer
            .fetch_watermarks(&self.config.topic, 0, TIMEOUT)
            .map_err(|e| self.err("watermarks", e, true))?;
        Ok((lo.max(0) as u64, hi.max(0) as u64))
    }
}

fn client_config(c: &KafkaStoreConfig) -> ClientConfig {
    let mut cc = ClientConfig::new();
    cc.set("bootstrap.servers", &c.brokers);
    for (k, v) in &c.properties {
        cc.set(k, v);
    }
    cc
}

impl Store for KafkaStore {
    fn describe(&self) -> String {
        self.describe.clone()
    }

    fn read(
        &mut self,
        from: u64,
        until: Option<u64>,
    ) -> Result<(Vec<RawRecord>, u64), RegistryError> {
        if !self.topic_checked && self.partitions()?.is_none() {
            return Ok((Vec::new(), 0));
        }
        let (low, high) = self.watermarks()?;
        let stop = until.map_or(high, |u| u.min(high));
        // Compaction may have removed records below `from`'s neighbours; start at what exists.
        let start = from.max(low);
        if start >= stop {
            return Ok((Vec::new(), from.max(stop)));
        }
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(&self.config.topic, 0, Offset::Offset(start as i64))
            .map_err(|e| self.err("assign", e, false))?;
        self.consumer
            .assign(&tpl)
            .map_err(|e| self.err("assign", e, true))?;
        let mut out = Vec::new();
        let mut next = start;
        let deadline = Instant::now() + TIMEOUT;
        // Compaction leaves gaps, so the last record may sit below `stop - 1`: stop once the consumer's
        // position (which skips gaps) reaches `stop`.
        while next < stop {
            if Instant::now() >= deadline {
                return Err(self.err(
                    "read",
                    format!("stuck at offset {next} of {stop} after {TIMEOUT:?}"),
                    true,
                ));
            }
            match self.consumer.poll(Duration::from_millis(100)) {
                Some(Ok(m)) => {
                    let offset = m.offset().max(0) as u64;
                    next = offset + 1;
                    if offset >= stop {
                        break;
                    }
                    out.push(RawRecord {
                        offset,
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
                    });
                }
                Some(Err(e)) => return Err(self.err("read", e, true)),
                None => {
                    if let Ok(tpl) = self.consumer.position() {
                        if let Some(Offset::Offset(p)) = tpl.elements().first().map(|e| e.offset())
                        {
                            next = next.max(p.max(0) as u64);
                        }
                    }
                }
            }
        }
        let _ = self.consumer.unassign();
        Ok((out, stop))
    }

    fn append(&mut self, expected_end: u64, records: Vec<RawRecord>) -> Result<u64, RegistryError> {
        self.ensure_topic()?;
        let (_, end) = self.watermarks()?;
        if end != expected_end {
            return Err(self.err(
                "append",
                format!("another writer appended (end {end}, expected {expected_end})"),
                true,
            ));
        }
        let topic = self.config.topic.clone();
        let describe = self.describe.clone();
        let producer = self.producer()?;
        let n = records.len() as u64;
        for r in &records {
            let mut headers = OwnedHeaders::new_with_capacity(r.headers.len());
            for (k, v) in &r.headers {
                headers = headers.insert(Header {
                    key: k,
                    value: Some(v),
                });
            }
            let mut rec: BaseRecord<'_, [u8], [u8]> =
                BaseRecord::to(&topic).partition(0).headers(headers);
            if let Some(k) = &r.key {
                rec = rec.key(k.as_slice());
            }
            if let Some(v) = &r.value {
                rec = rec.payload(v.as_slice());
            }
            producer
                .send(rec)
                .map_err(|(e, _)| RegistryError::store(&describe, format!("produce: {e}"), true))?;
            flush(producer, &describe)?;
        }
        Ok(end + n)
    }
}

/// Waits until everything sent is acknowledged, and fails if any delivery failed.
fn flush(producer: &Producer_, describe: &str) -> Result<(), RegistryError> {
    producer
        .flush(TIMEOUT)
        .map_err(|e: KafkaError| RegistryError::store(describe, format!("produce: {e}"), true))?;
    let failed = producer
        .context()
        .failed
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .take();
    if let Some(why) = failed {
        return Err(RegistryError::store(
            describe,
            format!("produce: {why}"),
            true,
        ));
    }
    if let Some((code, why)) = producer.client().fatal_error() {
        return Err(RegistryError::store(
            describe,
            format!("produce: {code:?}: {why}"),
            false,
        ));
    }
    Ok(())
}

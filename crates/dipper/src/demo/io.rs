//! Where the demo's events go and its predictions come from: the embedded log (default) or Kafka.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, Context, Result};
use dipper_log::{Log, Record};
use dipper_stream::transport::embedded::kafka_partition;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};

/// One side of the demo's traffic.
pub trait DemoLog: Send {
    /// Appends keyed JSON values to `topic`.
    fn produce(&mut self, topic: &str, events: &[(String, Vec<u8>)]) -> Result<()>;
    /// Records of `topic` not returned before, up to `max`.
    fn read_new(&mut self, topic: &str, max: usize) -> Result<Vec<Vec<u8>>>;
}

/// The embedded log, shared with the pipeline in this process.
pub struct EmbeddedDemoLog {
    log: Arc<Log>,
    read_from: HashMap<(String, u32), u64>,
}

impl EmbeddedDemoLog {
    pub fn new(log: Arc<Log>) -> Self {
        EmbeddedDemoLog {
            log,
            read_from: HashMap::new(),
        }
    }
}

impl DemoLog for EmbeddedDemoLog {
    fn produce(&mut self, topic: &str, events: &[(String, Vec<u8>)]) -> Result<()> {
        let n = self.log.partitions(topic)?;
        let now = dipper_stream::score::now_millis();
        let mut txn = self.log.begin();
        for (key, value) in events {
            let p = kafka_partition(key.as_bytes(), n);
            txn.append(topic, p, Record::keyed(key.as_bytes(), value.clone(), now))?;
        }
        self.log.commit(txn)?;
        Ok(())
    }

    fn read_new(&mut self, topic: &str, max: usize) -> Result<Vec<Vec<u8>>> {
        let n = self.log.partitions(topic)?;
        let mut out = Vec::new();
        for p in 0..n {
            let from = self.read_from.entry((topic.to_string(), p)).or_insert(0);
            let recs = self
                .log
                .read(topic, p, *from, max.saturating_sub(out.len()))?;
            for r in recs {
                *from = r.offset + 1;
                out.push(r.value.unwrap_or_default());
            }
        }
        Ok(out)
    }
}

/// A Kafka cluster.
pub struct KafkaDemoLog {
    producer: BaseProducer,
    consumer: Option<BaseConsumer>,
    brokers: String,
}

impl KafkaDemoLog {
    pub fn new(brokers: &str) -> Result<Self> {
        let producer: BaseProducer = ClientConfig::new()
            .set("bootstrap.servers", brokers)
            .set("linger.ms", "5")
            .set("partitioner", "murmur2_random")
            .create()
            .context("creating the demo's Kafka producer")?;
        Ok(KafkaDemoLog {
            producer,
            consumer: None,
            brokers: brokers.to_string(),
        })
    }

    /// Creates the topics (already existing ones are fine).
    pub fn create_topics(&self, topics: &[(&str, i32)]) -> Result<()> {
        let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
            .set("bootstrap.servers", &self.brokers)
            .create()
            .context("creating a Kafka admin client")?;
        let new: Vec<NewTopic> = topics
            .iter()
            .map(|(t, p)| NewTopic::new(t, *p, TopicReplication::Fixed(1)))
            .collect();
        let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(20)));
        let results = futures_executor::block_on(admin.create_topics(&new, &opts))
            .context("creating the demo topics")?;
        for r in results {
            if let Err((topic, code)) = r {
                if code != rdkafka::types::RDKafkaErrorCode::TopicAlreadyExists {
                    return Err(anyhow!("creating topic {topic}: {code}"));
                }
            }
        }
        Ok(())
    }
}

impl DemoLog for KafkaDemoLog {
    fn produce(&mut self, topic: &str, events: &[(String, Vec<u8>)]) -> Result<()> {
        for (key, value) in events {
            let mut rec = BaseRecord::to(topic).key(key.as_bytes()).payload(value);
            loop {
                match self.producer.send(rec) {
                    Ok(()) => break,
                    Err((e, back)) => {
                        if e.rdkafka_error_code()
                            != Some(rdkafka::types::RDKafkaErrorCode::QueueFull)
                        {
                            return Err(anyhow!("producing to {topic}: {e}"));
                        }
                        rec = back;
                        self.producer.poll(Duration::from_millis(10));
                    }
                }
            }
        }
        self.producer.poll(Duration::ZERO);
        Ok(())
    }

    fn read_new(&mut self, topic: &str, max: usize) -> Result<Vec<Vec<u8>>> {
        if self.consumer.is_none() {
            let c: BaseConsumer = ClientConfig::new()
                .set("bootstrap.servers", &self.brokers)
                .set(
                    "group.id",
                    format!("dipper-demo-view-{}", std::process::id()),
                )
                .set("enable.auto.commit", "false")
                .set("isolation.level", "read_committed")
                .create()
                .context("creating the demo's Kafka consumer")?;
            let md = c
                .fetch_metadata(Some(topic), Duration::from_secs(10))
                .with_context(|| format!("reading metadata of {topic}"))?;
            let mut tpl = TopicPartitionList::new();
            for t in md.topics() {
                for p in t.partitions() {
                    tpl.add_partition_offset(topic, p.id(), Offset::Beginning)?;
                }
            }
            c.assign(&tpl)?;
            self.consumer = Some(c);
        }
        let c = self.consumer.as_ref().expect("set above");
        let mut out = Vec::new();
        let mut wait = Duration::from_millis(50);
        while out.len() < max {
            match c.poll(wait) {
                Some(Ok(m)) => out.push(m.payload().unwrap_or_default().to_vec()),
                Some(Err(_)) | None => break,
            }
            wait = Duration::ZERO;
        }
        Ok(out)
    }
}

impl Drop for KafkaDemoLog {
    fn drop(&mut self) {
        let _ = self.producer.flush(Duration::from_secs(5));
    }
}

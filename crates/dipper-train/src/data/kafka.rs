//! A Kafka topic read as a bounded snapshot for training: every partition from the beginning (or from the first
//! offset at or after a timestamp) up to the high watermark seen when the read starts, so the data set is fixed
//! even while producers keep writing. Record values are JSON objects; the provenance (partition and offset
//! ranges) goes into the model file. Uses librdkafka through `rdkafka`, with partitions assigned directly (no
//! consumer group, nothing committed).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use serde_json::{json, Value};

use super::builder::DatasetBuilder;
use super::jsonl::push_json;
use crate::TrainError;

/// Where and what to read.
#[derive(Debug, Clone)]
pub struct KafkaSnapshot {
    pub brokers: String,
    pub topic: String,
    /// Extra librdkafka properties (security.protocol, sasl.*, ssl.*, ...).
    pub properties: Vec<(String, String)>,
    /// Read from the first offset at or after this time (ms since the epoch) instead of the beginning.
    pub from_timestamp_ms: Option<i64>,
    /// Give up when no record arrives for this long before the snapshot is complete.
    pub idle_timeout: Duration,
}

/// Reads the snapshot into `builder`; returns the record count and the provenance.
pub fn read(
    src: &KafkaSnapshot,
    builder: &mut DatasetBuilder,
) -> Result<(usize, Value), TrainError> {
    let kafka = |what: &str, e: rdkafka::error::KafkaError| {
        TrainError::Io(format!(
            "kafka {} topic '{}': {what}: {e}",
            src.brokers, src.topic
        ))
    };
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", &src.brokers)
        .set("group.id", format!("dipper-train-{}", std::process::id()))
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("isolation.level", "read_committed");
    for (k, v) in &src.properties {
        config.set(k, v);
    }
    let consumer: BaseConsumer = config
        .create()
        .map_err(|e| kafka("cannot create a consumer", e))?;
    let timeout = Duration::from_secs(10);
    let metadata = consumer
        .fetch_metadata(Some(&src.topic), timeout)
        .map_err(|e| kafka("cannot read metadata", e))?;
    let topic = metadata
        .topics()
        .iter()
        .find(|t| t.name() == src.topic)
        .ok_or_else(|| {
            TrainError::Io(format!(
                "kafka {}: topic '{}' not found",
                src.brokers, src.topic
            ))
        })?;
    if let Some(e) = topic.error() {
        return Err(TrainError::Io(format!(
            "kafka {}: topic '{}': {:?}",
            src.brokers, src.topic, e
        )));
    }
    let partitions: Vec<i32> = topic.partitions().iter().map(|p| p.id()).collect();
    if partitions.is_empty() {
        return Err(TrainError::Io(format!(
            "kafka {}: topic '{}' has no partitions",
            src.brokers, src.topic
        )));
    }

    // Where each partition starts and ends (end = high watermark now, exclusive).
    let mut ranges: HashMap<i32, (i64, i64)> = HashMap::new();
    for &p in &partitions {
        let (low, high) = consumer
            .fetch_watermarks(&src.topic, p, timeout)
            .map_err(|e| kafka(&format!("cannot read watermarks of partition {p}"), e))?;
        ranges.insert(p, (low, high));
    }
    if let Some(ts) = src.from_timestamp_ms {
        let mut tpl = TopicPartitionList::new();
        for &p in &partitions {
            tpl.add_partition_offset(&src.topic, p, Offset::Offset(ts))
                .map_err(|e| kafka("offsets", e))?;
        }
        let found = consumer
            .offsets_for_times(tpl, timeout)
            .map_err(|e| kafka("cannot look up timestamp", e))?;
        for e in found.elements() {
            let (_, high) = ranges[&e.partition()];
            let start = match e.offset() {
                Offset::Offset(o) => o,
                _ => high, // no record at or after the timestamp
            };
            ranges.insert(e.partition(), (start, high));
        }
    }
    let mut assignment = TopicPartitionList::new();
    let mut pending: HashMap<i32, i64> = HashMap::new();
    for (&p, &(start, end)) in &ranges {
        if start < end {
            assignment
                .add_partition_offset(&src.topic, p, Offset::Offset(start))
                .map_err(|e| kafka("assign", e))?;
            pending.insert(p, end);
        }
    }
    let mut rows = 0usize;
    let mut tombstones = 0usize;
    if !pending.is_empty() {
        consumer
            .assign(&assignment)
            .map_err(|e| kafka("cannot assign partitions", e))?;
    }
    let mut last_progress = Instant::now();
    while !pending.is_empty() {
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(msg)) => {
                let (p, off) = (msg.partition(), msg.offset());
                let Some(&end) = pending.get(&p) else {
                    continue;
                };
                if off >= end {
                    pending.remove(&p);
                    continue;
                }
                last_progress = Instant::now();
                match msg.payload() {
                    None => tombstones += 1,
                    Some(value) => {
                        let place =
                            || format!("kafka topic '{}' partition {p} offset {off}", src.topic);
                        push_json(value, &place, builder)?;
                        rows += 1;
                    }
                }
                if off + 1 >= end {
                    pending.remove(&p);
                }
            }
            Some(Err(e)) => return Err(kafka("read failed", e)),
            None => {
                // Control records (transaction markers) at the end of a partition are never delivered: a
                // partition whose position reached its end is complete.
                if let Ok(pos) = consumer.position() {
                    for e in pos.elements() {
                        if let (Offset::Offset(o), Some(&end)) =
                            (e.offset(), pending.get(&e.partition()))
                        {
                            if o >= end {
                                pending.remove(&e.partition());
                            }
                        }
                    }
                }
                if !pending.is_empty() && last_progress.elapsed() > src.idle_timeout {
                    let mut left: Vec<_> = pending.keys().collect();
                    left.sort();
                    return Err(TrainError::Io(format!(
                        "kafka {}: topic '{}' partitions {left:?}: no records for {:?} before reaching the high \
                         watermark seen at start",
                        src.brokers, src.topic, src.idle_timeout
                    )));
                }
            }
        }
    }
    let mut parts: Vec<Value> = ranges
        .iter()
        .map(|(p, (from, to))| json!({ "partition": p, "from_offset": from, "to_offset": to }))
        .collect();
    parts.sort_by_key(|v| v["partition"].as_i64());
    let source = json!({
        "kind": "kafka", "brokers": src.brokers, "topic": src.topic, "partitions": parts, "rows": rows,
        "tombstones_skipped": tombstones, "from_timestamp_ms": src.from_timestamp_ms,
    });
    Ok((rows, source))
}

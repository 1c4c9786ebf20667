//! Training data read from a Kafka topic as a bounded snapshot: every partition is read from the beginning (or a
//! timestamp) up to the high watermark, with provenance, and a bad record is an error naming its partition and
//! offset.
//!
//! By default the tests run against librdkafka's in-process mock cluster. With `DIPPER_TEST_BROKERS=host:port`
//! they run unchanged against that broker (topics get unique names), e.g. tansu:
//! `DIPPER_TEST_BROKERS=127.0.0.1:19092 cargo test -p dipper-train --test kafka_snapshot -- --include-ignored`.
//! Measured against tansu 0.6 (memory storage): its ListOffsets reports the high watermark as the number of
//! record *batches* (20 records produced in one batch: high watermark 1, offsets 0..19 delivered), so a bounded
//! snapshot stops early there and these tests fail against it; they pass on the mock cluster, whose offsets
//! follow the Kafka protocol.

use std::time::Duration;

use dipper_train::data::kafka::{self, KafkaSnapshot};
use dipper_train::data::{DatasetBuilder, ReadOptions};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::mocking::MockCluster;
use rdkafka::producer::DefaultProducerContext;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

/// The broker under test: `DIPPER_TEST_BROKERS`, or a fresh mock cluster (kept alive by the returned handle).
struct Broker {
    _mock: Option<MockCluster<'static, DefaultProducerContext>>,
    brokers: String,
}

impl Broker {
    fn start() -> Broker {
        match std::env::var("DIPPER_TEST_BROKERS") {
            Ok(b) if !b.is_empty() => Broker {
                _mock: None,
                brokers: b,
            },
            _ => {
                let mock = MockCluster::new(1).unwrap();
                let brokers = mock.bootstrap_servers();
                Broker {
                    _mock: Some(mock),
                    brokers,
                }
            }
        }
    }

    /// Creates a topic with a name unique to this run; returns the name.
    fn topic(&self, base: &str, partitions: i32) -> String {
        let name = format!(
            "{base}-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        );
        match &self._mock {
            Some(mock) => mock.create_topic(&name, partitions, 1).unwrap(),
            None => {
                let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
                    .set("bootstrap.servers", &self.brokers)
                    .create()
                    .unwrap();
                let topic = NewTopic::new(&name, partitions, TopicReplication::Fixed(1));
                let result =
                    futures_executor::block_on(admin.create_topics([&topic], &AdminOptions::new()))
                        .unwrap();
                for r in result {
                    r.unwrap();
                }
            }
        }
        name
    }
}

fn produce(brokers: &str, topic: &str, records: &[(String, String, i64)]) {
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .unwrap();
    for (key, value, ts) in records {
        let mut r = BaseRecord::to(topic).key(key).payload(value).timestamp(*ts);
        loop {
            match producer.send(r) {
                Ok(()) => break,
                Err((_, back)) => {
                    producer.poll(Duration::from_millis(10));
                    r = back;
                }
            }
        }
    }
    producer.flush(Duration::from_secs(10)).unwrap();
}

fn snapshot(brokers: &str, topic: &str, from: Option<i64>) -> KafkaSnapshot {
    KafkaSnapshot {
        brokers: brokers.into(),
        topic: topic.into(),
        properties: vec![],
        from_timestamp_ms: from,
        idle_timeout: Duration::from_secs(10),
    }
}

fn options() -> ReadOptions {
    ReadOptions {
        label: "y".into(),
        ..Default::default()
    }
}

#[test]
fn reads_every_partition_up_to_the_high_watermark() {
    let broker = Broker::start();
    let topic = broker.topic("events", 3);
    let brokers = broker.brokers.clone();
    let records: Vec<_> = (0..300)
        .map(|i| {
            (
                format!("k{i}"),
                format!(r#"{{"x": {i}, "color": "c{}", "y": {}}}"#, i % 4, i % 2),
                1_000 + i,
            )
        })
        .collect();
    produce(&brokers, &topic, &records);
    let mut b = DatasetBuilder::new(options());
    let (rows, source) = kafka::read(&snapshot(&brokers, &topic, None), &mut b).unwrap();
    assert_eq!(rows, 300);
    let d = b.finish().unwrap();
    assert_eq!(d.n_rows(), 300);
    assert_eq!(d.n_classes(), 2);
    let mut xs = d.columns[d.schema.index_of("x").unwrap()].clone();
    xs.sort_by(f64::total_cmp);
    assert_eq!(
        xs,
        (0..300).map(|i| i as f64).collect::<Vec<_>>(),
        "every record exactly once"
    );
    let parts = source["partitions"].as_array().unwrap();
    assert_eq!(parts.len(), 3);
    let total: i64 = parts
        .iter()
        .map(|p| p["to_offset"].as_i64().unwrap() - p["from_offset"].as_i64().unwrap())
        .sum();
    assert_eq!(total, 300);
    assert_eq!(source["topic"], topic.as_str());
}

#[test]
#[ignore = "librdkafka's mock cluster answers every timestamp lookup with the end offset (measured): run with DIPPER_TEST_BROKERS"]
fn from_timestamp_skips_older_records() {
    let broker = Broker::start();
    let topic = broker.topic("ts", 2);
    let brokers = broker.brokers.clone();
    let records: Vec<_> = (0..100)
        .map(|i| {
            (
                format!("k{i}"),
                format!(r#"{{"x": {i}, "y": {}}}"#, i % 2),
                if i < 60 { 1_000 } else { 5_000 },
            )
        })
        .collect();
    produce(&brokers, &topic, &records);
    let mut b = DatasetBuilder::new(options());
    let (rows, _) = kafka::read(&snapshot(&brokers, &topic, Some(5_000)), &mut b).unwrap();
    assert_eq!(rows, 40);
    let d = b.finish().unwrap();
    assert!(d.columns[d.schema.index_of("x").unwrap()]
        .iter()
        .all(|x| *x >= 60.0));
}

#[test]
fn bad_records_and_missing_topics_are_clear_errors() {
    let broker = Broker::start();
    let topic = broker.topic("bad", 1);
    let brokers = broker.brokers.clone();
    produce(
        &brokers,
        &topic,
        &[
            ("a".into(), r#"{"x": 1, "y": 0}"#.into(), 1),
            ("b".into(), "not json".into(), 2),
        ],
    );
    let mut b = DatasetBuilder::new(options());
    let e = kafka::read(&snapshot(&brokers, &topic, None), &mut b)
        .unwrap_err()
        .to_string();
    let place = format!("kafka topic '{topic}' partition 0 offset 1");
    assert!(e.contains(&place), "{e}");
    let mut b = DatasetBuilder::new(options());
    let e = kafka::read(&snapshot(&brokers, "no-such-topic-here", None), &mut b)
        .unwrap_err()
        .to_string();
    assert!(e.contains("no-such-topic-here"), "{e}");
}

//! Training data read from a Kafka topic as a bounded snapshot, against librdkafka's in-process mock cluster:
//! every partition is read from the beginning (or a timestamp) up to the high watermark, with provenance, and a
//! bad record is an error naming its partition and offset.

use std::time::Duration;

use dipper_train::data::kafka::{self, KafkaSnapshot};
use dipper_train::data::{DatasetBuilder, ReadOptions};
use rdkafka::config::ClientConfig;
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

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
    let mock = MockCluster::new(1).unwrap();
    mock.create_topic("events", 3, 1).unwrap();
    let brokers = mock.bootstrap_servers();
    let records: Vec<_> = (0..300)
        .map(|i| {
            (
                format!("k{i}"),
                format!(r#"{{"x": {i}, "color": "c{}", "y": {}}}"#, i % 4, i % 2),
                1_000 + i,
            )
        })
        .collect();
    produce(&brokers, "events", &records);
    let mut b = DatasetBuilder::new(options());
    let (rows, source) = kafka::read(&snapshot(&brokers, "events", None), &mut b).unwrap();
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
    assert_eq!(source["topic"], "events");
}

#[test]
#[ignore = "librdkafka's mock cluster answers every timestamp lookup with the end offset (measured); needs a real broker"]
fn from_timestamp_skips_older_records() {
    let mock = MockCluster::new(1).unwrap();
    mock.create_topic("ts", 2, 1).unwrap();
    let brokers = mock.bootstrap_servers();
    let records: Vec<_> = (0..100)
        .map(|i| {
            (
                format!("k{i}"),
                format!(r#"{{"x": {i}, "y": {}}}"#, i % 2),
                if i < 60 { 1_000 } else { 5_000 },
            )
        })
        .collect();
    produce(&brokers, "ts", &records);
    let mut b = DatasetBuilder::new(options());
    let (rows, _) = kafka::read(&snapshot(&brokers, "ts", Some(5_000)), &mut b).unwrap();
    assert_eq!(rows, 40);
    let d = b.finish().unwrap();
    assert!(d.columns[d.schema.index_of("x").unwrap()]
        .iter()
        .all(|x| *x >= 60.0));
}

#[test]
fn bad_records_and_missing_topics_are_clear_errors() {
    let mock = MockCluster::new(1).unwrap();
    mock.create_topic("bad", 1, 1).unwrap();
    let brokers = mock.bootstrap_servers();
    produce(
        &brokers,
        "bad",
        &[
            ("a".into(), r#"{"x": 1, "y": 0}"#.into(), 1),
            ("b".into(), "not json".into(), 2),
        ],
    );
    let mut b = DatasetBuilder::new(options());
    let e = kafka::read(&snapshot(&brokers, "bad", None), &mut b)
        .unwrap_err()
        .to_string();
    assert!(e.contains("kafka topic 'bad' partition 0 offset 1"), "{e}");
    let mut b = DatasetBuilder::new(options());
    let e = kafka::read(&snapshot(&brokers, "nope", None), &mut b)
        .unwrap_err()
        .to_string();
    assert!(e.contains("nope"), "{e}");
}

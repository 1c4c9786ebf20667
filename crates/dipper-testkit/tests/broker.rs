//! The test kit against a real broker: what is produced is read back exactly (keys, values, headers, order
//! within a partition), and consumer-group commits are visible through `committed_offsets`.
//!
//! Needs tansu or `DIPPER_TEST_BROKERS`; without either these tests print `SKIPPED` and pass, unless
//! `DIPPER_REQUIRE_BROKER=1`.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use dipper_testkit::{unique_topic, Partitioning, Record, TestBroker};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::{Offset, TopicPartitionList};

const QUIET: Duration = Duration::from_secs(2);
const MAX_WAIT: Duration = Duration::from_secs(120);

fn records(n: usize) -> Vec<Record> {
    (0..n)
        .map(|i| {
            (
                Some(format!("key-{}", i % 37).into_bytes()),
                format!("value-{i}").into_bytes(),
                vec![
                    ("seq".to_string(), i.to_string().into_bytes()),
                    ("bin".to_string(), vec![0, 255, (i % 256) as u8]),
                    ("empty".to_string(), Vec::new()),
                ],
            )
        })
        .collect()
}

#[test]
fn thousand_keyed_records_come_back_exactly_in_partition_order() {
    let Some(broker) = TestBroker::start_or_skip("thousand_keyed_records_come_back_exactly") else {
        return;
    };
    let topic = unique_topic("kit-roundtrip");
    broker.create_topic(&topic, 3).unwrap();
    let sent = records(1000);
    let delivered = broker.produce(&topic, &sent, Partitioning::ByKey).unwrap();
    assert_eq!(delivered.len(), sent.len());

    let got = broker.consume_all(&topic, QUIET, MAX_WAIT, false).unwrap();
    assert_eq!(
        got.len(),
        sent.len(),
        "read back {} of {} records",
        got.len(),
        sent.len()
    );

    // Expected per partition: the records in the order they were produced, in the partition the producer
    // reported for them.
    let mut expected: BTreeMap<u32, Vec<(&Record, i64)>> = BTreeMap::new();
    for (record, (partition, offset)) in sent.iter().zip(&delivered) {
        expected
            .entry(*partition)
            .or_default()
            .push((record, *offset));
    }
    let mut actual: BTreeMap<u32, Vec<&dipper_testkit::ConsumedRecord>> = BTreeMap::new();
    for r in &got {
        actual.entry(r.partition).or_default().push(r);
    }
    assert_eq!(
        expected.keys().collect::<Vec<_>>(),
        vec![&0, &1, &2],
        "37 keys should spread over all 3 partitions"
    );
    assert_eq!(
        actual.keys().collect::<Vec<_>>(),
        expected.keys().collect::<Vec<_>>()
    );
    for (partition, want) in &expected {
        let have = &actual[partition];
        assert_eq!(have.len(), want.len(), "partition {partition}");
        for (i, (h, (w, offset))) in have.iter().zip(want).enumerate() {
            assert_eq!(
                h.offset, *offset,
                "partition {partition} #{i}: offset read vs delivery report"
            );
            assert_eq!(h.key.as_ref(), w.0.as_ref(), "partition {partition} #{i}");
            assert_eq!(
                h.value.as_deref(),
                Some(w.1.as_slice()),
                "partition {partition} #{i}"
            );
            assert_eq!(h.headers, w.2, "partition {partition} #{i}");
        }
        assert!(
            have.windows(2).all(|p| p[0].offset < p[1].offset),
            "offsets increase within partition {partition}"
        );
    }

    // The default partitioner keeps one key in one partition.
    let mut partition_of_key: HashMap<&[u8], u32> = HashMap::new();
    for r in &got {
        let key = r.key.as_deref().unwrap();
        assert_eq!(
            *partition_of_key.entry(key).or_insert(r.partition),
            r.partition
        );
    }
    assert!(got.iter().all(|r| r.timestamp.is_some()));
}

#[test]
fn consumer_group_commits_are_visible() {
    let Some(broker) = TestBroker::start_or_skip("consumer_group_commits_are_visible") else {
        return;
    };
    let topic = unique_topic("kit-commits");
    broker.create_topic(&topic, 3).unwrap();
    broker
        .produce(&topic, &records(30), Partitioning::RoundRobin)
        .unwrap();

    // A subscribed group member reads everything and commits its position.
    let group = unique_topic("kit-group");
    assert_eq!(
        broker.committed_offsets(&group, &topic).unwrap(),
        BTreeMap::new(),
        "nothing committed yet"
    );
    {
        let consumer: BaseConsumer = broker
            .client_config()
            .set("group.id", &group)
            .set("enable.auto.commit", "false")
            .set("auto.offset.reset", "earliest")
            .create()
            .unwrap();
        consumer.subscribe(&[&topic]).unwrap();
        let deadline = Instant::now() + MAX_WAIT;
        let mut read = 0;
        while read < 30 {
            assert!(
                Instant::now() < deadline,
                "read {read} of 30 as a group member"
            );
            match consumer.poll(Duration::from_millis(200)) {
                Some(Ok(_)) => read += 1,
                Some(Err(e)) => panic!("group consumer: {e}"),
                None => {}
            }
        }
        consumer.commit_consumer_state(CommitMode::Sync).unwrap();
    }
    assert_eq!(
        broker.committed_offsets(&group, &topic).unwrap(),
        BTreeMap::from([(0, 10), (1, 10), (2, 10)])
    );

    // An explicit commit for one partition by a consumer that only assigns: the other partitions stay
    // uncommitted and are left out.
    let other = unique_topic("kit-group");
    {
        let consumer: BaseConsumer = broker
            .client_config()
            .set("group.id", &other)
            .set("enable.auto.commit", "false")
            .create()
            .unwrap();
        let mut offsets = TopicPartitionList::new();
        offsets
            .add_partition_offset(&topic, 1, Offset::Offset(4))
            .unwrap();
        consumer.commit(&offsets, CommitMode::Sync).unwrap();
    }
    assert_eq!(
        broker.committed_offsets(&other, &topic).unwrap(),
        BTreeMap::from([(1, 4)])
    );
}

#[test]
fn create_topic_is_idempotent_and_empty_topics_read_empty() {
    let Some(broker) = TestBroker::start_or_skip("create_topic_is_idempotent") else {
        return;
    };
    let topic = unique_topic("kit-empty");
    broker.create_topic(&topic, 2).unwrap();
    broker.create_topic(&topic, 2).unwrap();
    let got = broker
        .consume_all(&topic, Duration::from_secs(1), MAX_WAIT, true)
        .unwrap();
    assert_eq!(got, Vec::new());
    if broker.tansu_bin().is_some() {
        let log = broker.log_tail(20);
        assert!(log.contains("listening on"), "tansu log tail: {log}");
    }
}

//! A pipeline following a registry model on Kafka (tansu, or `DIPPER_TEST_BROKERS`; skipped without a broker
//! unless `DIPPER_REQUIRE_BROKER=1`): the registry is a topic on the same cluster. While events flow, v2 is
//! promoted, then a corrupt v3 (rejected: v2 serves on), then two rollbacks return to v1: each partition's
//! output runs v1, v2, v1, every input is scored once, and a restarted pipeline starts on the champion.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use dipper_registry::{KafkaStore, KafkaStoreConfig, PublishRequest, Registry, StageChange};
use dipper_stream::{Pipeline, PipelineConfig};
use dipper_testkit::{unique_topic, Partitioning, Record, TestBroker};
use serde_json::Value;

fn repo_path(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").join(p)
}

fn events(from: usize, n: usize) -> Vec<Record> {
    let rows: Vec<serde_json::Map<String, Value>> =
        std::fs::read_to_string(repo_path("fixtures/interop/fraud_lgbm/input.jsonl"))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
    (from..from + n)
        .map(|i| {
            let mut row = rows[i % rows.len()].clone();
            row.insert("event_id".into(), format!("e{i}").into());
            let key = format!("card-{}", i % 29).into_bytes();
            (
                Some(key),
                Value::Object(row).to_string().into_bytes(),
                vec![],
            )
        })
        .collect()
}

#[test]
fn champion_swaps_live_on_kafka() {
    let Some(broker) = TestBroker::start_or_skip("champion_swaps_live_on_kafka") else {
        return;
    };
    let (input, output, dlq, registry_topic) = (
        unique_topic("swap-in"),
        unique_topic("swap-out"),
        unique_topic("swap-dlq"),
        unique_topic("swap-models"),
    );
    for t in [&input, &output, &dlq] {
        broker.create_topic(t, 2).unwrap();
    }
    let store = || {
        KafkaStore::new(KafkaStoreConfig {
            brokers: broker.bootstrap().to_string(),
            topic: registry_topic.clone(),
            properties: Default::default(),
            replication_factor: Some(1),
        })
        .unwrap()
    };
    let mut reg = Registry::open(store()).unwrap();
    let publish = |reg: &mut Registry<KafkaStore>, file: &str, format: &str| {
        reg.publish(&PublishRequest {
            name: "fraud".into(),
            artifact: if file.is_empty() {
                b"definitely not a model".to_vec()
            } else {
                std::fs::read(repo_path(file)).unwrap()
            },
            format: format.into(),
            features: vec![],
            source: serde_json::json!({ "file": file }),
            chunk_bytes: 16 * 1024,
        })
        .unwrap()
        .version
    };
    assert_eq!(
        publish(
            &mut reg,
            "fixtures/interop/fraud_lgbm/model.txt",
            "lightgbm"
        ),
        1
    );
    reg.change("fraud", StageChange::Promote(1)).unwrap();

    let yaml = format!(
        "name: swap-kafka
transport:
  kafka:
    brokers: \"{}\"
    group_id: {}
    consumer_properties: {{ session.timeout.ms: \"6000\" }}
input:
  topics: [{input}]
  event_id_field: event_id
model:
  registry: fraud
  registry_topic: {registry_topic}
  registry_poll_ms: 100
output:
  topic: {output}
dead_letter:
  topic: {dlq}
delivery:
  guarantee: at-least-once
  commit_interval_ms: 100
processing:
  # Large enough that no partition is paused: tansu 0.6 loses records when a consumer resumes mid-batch.
  max_in_flight_batches: 100000
",
        broker.bootstrap(),
        unique_topic("swap-group"),
    );
    let config = PipelineConfig::parse(&yaml, "swap-kafka.yaml").unwrap();
    let pipeline = Pipeline::new(config).unwrap();
    assert_eq!(pipeline.plan().label.version, "1");
    let stop = Arc::new(AtomicBool::new(false));
    let run = {
        let stop = stop.clone();
        std::thread::spawn(move || pipeline.run(stop))
    };

    // Events in rounds, one record per batch (tansu), the promotion between rounds 3 and 4.
    let rounds = 9;
    let per_round = 150;
    for round in 0..rounds {
        broker
            .produce_unbatched(
                &input,
                &events(round * per_round, per_round),
                Partitioning::ByKey,
            )
            .unwrap();
        if round == 2 {
            let v = publish(&mut reg, "fixtures/interop/fraud_xgb/model.json", "xgboost");
            assert_eq!(v, 2);
            reg.change("fraud", StageChange::Promote(2)).unwrap();
        }
        if round == 4 {
            // Not a model: promoted without the CLI's load check, rejected by the pipeline; v2 serves on.
            assert_eq!(publish(&mut reg, "", ""), 3);
            reg.change("fraud", StageChange::Promote(3)).unwrap();
        }
        if round == 6 {
            reg.change("fraud", StageChange::Rollback).unwrap();
            reg.change("fraud", StageChange::Rollback).unwrap();
            assert_eq!(reg.state().champion("fraud").unwrap().meta.version, 1);
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    let total = rounds * per_round;
    let deadline = Instant::now() + Duration::from_secs(120);
    let outputs = loop {
        let out = broker
            .consume_all(
                &output,
                Duration::from_secs(3),
                Duration::from_secs(60),
                false,
            )
            .unwrap();
        if out.len() >= total || Instant::now() > deadline {
            break out;
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    stop.store(true, Ordering::Relaxed);
    run.join().unwrap().unwrap();

    let mut per_id: HashMap<String, usize> = HashMap::new();
    let mut runs: HashMap<u32, Vec<String>> = HashMap::new();
    for r in &outputs {
        let v: Value = serde_json::from_slice(r.value.as_deref().unwrap()).unwrap();
        *per_id
            .entry(v["event_id"].as_str().unwrap().to_string())
            .or_default() += 1;
        let version = v["model_version"].as_str().unwrap().to_string();
        let seq = runs.entry(r.partition).or_default();
        if seq.last() != Some(&version) {
            seq.push(version);
        }
    }
    assert_eq!(per_id.len(), total, "inputs without an output");
    assert!(per_id.values().all(|&n| n == 1), "an input scored twice");
    for p in 0..2 {
        assert_eq!(runs[&p], ["1", "2", "1"], "partition {p}");
    }
    // A restarted pipeline starts on the champion.
    let restarted =
        Pipeline::new(PipelineConfig::parse(&yaml, "swap-kafka.yaml").unwrap()).unwrap();
    assert_eq!(restarted.plan().label.version, "1");
}

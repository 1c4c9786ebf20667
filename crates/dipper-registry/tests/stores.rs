//! The registry over both stores: the embedded log (always) and Kafka (tansu, or `DIPPER_TEST_BROKERS`;
//! skipped without a broker unless `DIPPER_REQUIRE_BROKER=1`).

use dipper_registry::wire::{record, Key};
use dipper_registry::{
    EmbeddedStore, KafkaStore, KafkaStoreConfig, PublishRequest, Registry, RegistryError, Stage,
    StageChange, Store,
};
use dipper_testkit::{unique_topic, TestBroker};

fn artifact(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

fn request(name: &str, bytes: Vec<u8>, chunk_bytes: usize) -> PublishRequest {
    PublishRequest {
        name: name.into(),
        artifact: bytes,
        format: "lightgbm".into(),
        features: vec!["amount".into(), "hour".into()],
        source: serde_json::json!({"file": "model.txt", "metrics": {"auc": 0.95}}),
        chunk_bytes,
    }
}

/// Publish, fetch, promote, roll back, delete, corrupt and reopen: the same checks on any store.
fn lifecycle<S: Store>(mut open: impl FnMut() -> S) {
    let mut reg = Registry::open(open()).unwrap();
    let big = artifact(1_300_000, 7);
    let v1 = reg
        .publish(&request("fraud", big.clone(), 512 * 1024))
        .unwrap();
    assert_eq!((v1.version, v1.chunks), (1, 3));
    let v2 = reg
        .publish(&request("fraud", artifact(10_000, 9), 4096))
        .unwrap();
    assert_eq!(v2.version, 2);
    assert_eq!(reg.fetch("fraud", 1).unwrap().bytes, big);

    reg.change("fraud", StageChange::Promote(1)).unwrap();
    reg.change("fraud", StageChange::Promote(2)).unwrap();
    // Another handle (another process, in real use) sees the same state.
    let mut other = Registry::open(open()).unwrap();
    assert_eq!(other.state(), reg.state());
    assert_eq!(other.state().champion("fraud").unwrap().meta.version, 2);
    other.change("fraud", StageChange::Rollback).unwrap();
    assert!(reg.refresh().unwrap());
    assert_eq!(reg.state().champion("fraud").unwrap().meta.version, 1);
    let model = reg.state().model("fraud").unwrap();
    assert_eq!(model.stages.stage_of(2), Stage::Archived);

    // A chunk overwritten with other bytes: fetch refuses the artifact, naming model and version.
    let mut raw = open();
    let (_, end) = raw.read(0, None).unwrap();
    let bad = record(
        &Key::Chunk {
            name: "fraud".into(),
            version: 2,
            index: 0,
        },
        Some(vec![0u8; 4096]),
    );
    raw.append(end, vec![bad]).unwrap();
    reg.refresh().unwrap();
    match reg.fetch("fraud", 2) {
        Err(RegistryError::Corrupt(msg)) => {
            assert!(msg.contains("model fraud version 2"), "{msg}");
            assert!(msg.contains("SHA-256"), "{msg}");
        }
        other => panic!("expected a corrupt artifact, got {other:?}"),
    }
    // Version 1 still reads.
    assert_eq!(reg.fetch("fraud", 1).unwrap().bytes, big);

    let e = reg.delete("fraud", 1).unwrap_err();
    assert!(matches!(e, RegistryError::Conflict(_)), "{e}");
    reg.delete("fraud", 2).unwrap();
    assert!(reg.fetch("fraud", 2).is_err());
    assert_eq!(
        reg.publish(&request("fraud", vec![1], 16)).unwrap().version,
        3
    );

    let reopened = Registry::open(open()).unwrap();
    assert_eq!(reopened.state(), reg.state());
}

#[test]
fn embedded_registry_lifecycle() {
    let dir = tempfile::tempdir().unwrap();
    lifecycle(|| EmbeddedStore::new(dir.path(), "_dipper_models").unwrap());
}

#[test]
fn embedded_registry_reads_as_empty_before_the_first_publish() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("not-yet");
    let reg = Registry::open(EmbeddedStore::new(&missing, "_dipper_models").unwrap()).unwrap();
    assert!(reg.state().models.is_empty());
    assert!(!missing.exists(), "reading must not create the registry");
    let e = reg.state().model("fraud").unwrap_err().to_string();
    assert!(e.contains("no model named fraud"), "{e}");
}

/// Writers in several threads (each with its own handle, as separate processes would be) never lose a
/// publish and never share a version number.
#[test]
fn concurrent_embedded_publishers_get_distinct_versions() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    let threads: Vec<_> = (0..3u8)
        .map(|t| {
            let path = path.clone();
            std::thread::spawn(move || {
                let store = EmbeddedStore::new(&path, "_dipper_models").unwrap();
                let mut reg = Registry::open(store).unwrap();
                (0..8u8)
                    .map(|i| reg.publish(&request("m", vec![t, i], 1)).unwrap().version)
                    .collect::<Vec<u32>>()
            })
        })
        .collect();
    let mut versions: Vec<u32> = threads
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    versions.sort_unstable();
    assert_eq!(versions, (1..=24).collect::<Vec<u32>>());
    let mut reg = Registry::open(EmbeddedStore::new(&path, "_dipper_models").unwrap()).unwrap();
    for v in 1..=24 {
        assert_eq!(reg.fetch("m", v).unwrap().bytes.len(), 2);
    }
}

#[test]
fn kafka_registry_lifecycle() {
    let Some(broker) = TestBroker::start_or_skip("kafka_registry_lifecycle") else {
        return;
    };
    let config = KafkaStoreConfig {
        brokers: broker.bootstrap().to_string(),
        topic: unique_topic("registry"),
        properties: Default::default(),
        replication_factor: Some(1),
    };
    lifecycle(|| KafkaStore::new(config.clone()).unwrap());
}

//! A pipeline following a registry model on the embedded log, under a steady stream of events: promote
//! v2 (another format), promote a corrupt v3 and a v4 reading other fields (both rejected, with alerts, while
//! v2 keeps serving), roll back to v1. Every input gets exactly one output, each partition's outputs switch
//! versions only at promotions and never go back and forth, and a restarted pipeline starts on the champion.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use dipper_log::{Log, Options, Record};
use dipper_registry::{EmbeddedStore, PublishRequest, Registry, StageChange};
use dipper_stream::transport::embedded::kafka_partition;
use dipper_stream::{Pipeline, PipelineConfig, RunSummary, StreamError};
use serde_json::Value;

fn repo_path(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").join(p)
}

fn publish(reg: &mut Registry<EmbeddedStore>, file: &str, format: &str) -> u32 {
    reg.publish(&PublishRequest {
        name: "fraud".into(),
        artifact: std::fs::read(repo_path(file)).unwrap_or_else(|_| file.as_bytes().to_vec()),
        format: format.into(),
        features: vec![],
        source: serde_json::json!({"file": file}),
        chunk_bytes: 8192,
    })
    .unwrap()
    .version
}

const YAML: &str = "name: swap
transport:
  embedded:
    dir: LOG
    create_topics: 3
input:
  topics: [tx]
  event_id_field: event_id
model:
  registry: fraud
  registry_poll_ms: 20
output:
  topic: scores
dead_letter:
  topic: dlq
alerts:
  topic: alerts
delivery:
  commit_interval_ms: 20
processing:
  batch_size: 16
  workers: 2
";

fn config(dir: &Path) -> PipelineConfig {
    PipelineConfig::parse(
        &YAML.replace("LOG", &dir.display().to_string()),
        "swap.yaml",
    )
    .unwrap()
}

fn read_all(log: &Log, topic: &str) -> Vec<(u32, Value)> {
    let mut out = Vec::new();
    for p in 0..log.partitions(topic).unwrap_or(0) {
        let mut at = 0;
        loop {
            let batch = log.read(topic, p, at, 1000).unwrap();
            let Some(last) = batch.last() else { break };
            at = last.offset + 1;
            for r in batch {
                out.push((
                    p,
                    serde_json::from_slice(r.value.as_deref().unwrap()).unwrap(),
                ));
            }
        }
    }
    out
}

/// Appends events (the fraud fixture rows, keyed by card, with unique ids) until `stop`.
fn feed(log: Arc<Log>, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<usize> {
    let rows: Vec<serde_json::Map<String, Value>> =
        std::fs::read_to_string(repo_path("fixtures/interop/fraud_lgbm/input.jsonl"))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
    std::thread::spawn(move || {
        let mut n = 0;
        while !stop.load(Ordering::Relaxed) {
            let mut txn = log.begin();
            for _ in 0..20 {
                let mut row = rows[n % rows.len()].clone();
                row.insert("event_id".into(), format!("e{n}").into());
                let key = format!("card-{}", n % 37);
                let p = kafka_partition(key.as_bytes(), 3);
                let rec = Record::keyed(key, Value::Object(row).to_string(), 0);
                txn.append("tx", p, rec).unwrap();
                n += 1;
            }
            log.commit(txn).unwrap();
            std::thread::sleep(Duration::from_millis(5));
        }
        n
    })
}

/// A pipeline running on the embedded log in `dir` while a feeder appends events to its input.
struct Running {
    log: Arc<Log>,
    stop: Arc<AtomicBool>,
    run: std::thread::JoinHandle<Result<RunSummary, StreamError>>,
    stop_feeding: Arc<AtomicBool>,
    feeder: std::thread::JoinHandle<usize>,
}

impl Running {
    fn start(dir: &Path, pipeline: Pipeline) -> Running {
        let log = Arc::new(Log::open(dir, Options::default()).unwrap());
        log.create_topic("tx", 3).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let run = {
            let (log, stop) = (log.clone(), stop.clone());
            std::thread::spawn(move || pipeline.run_on_log(log, stop))
        };
        let stop_feeding = Arc::new(AtomicBool::new(false));
        let feeder = feed(log.clone(), stop_feeding.clone());
        Running {
            log,
            stop,
            run,
            stop_feeding,
            feeder,
        }
    }

    /// Stops feeding, waits until every event produced is scored, stops the pipeline: (events, summary).
    fn drain(self) -> (usize, RunSummary) {
        self.stop_feeding.store(true, Ordering::Relaxed);
        let produced = self.feeder.join().unwrap();
        wait_until("every input scored", || {
            read_all(&self.log, "scores").len() >= produced
        });
        self.stop.store(true, Ordering::Relaxed);
        (produced, self.run.join().unwrap().unwrap())
    }
}

fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn champion_swaps_live_at_record_boundaries_and_bad_versions_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let log_dir = dir.path().join("log");
    let store = || EmbeddedStore::new(log_dir.join("registry"), "_dipper_models").unwrap();
    let mut reg = Registry::open(store()).unwrap();
    assert_eq!(
        publish(
            &mut reg,
            "fixtures/interop/fraud_lgbm/model.txt",
            "lightgbm"
        ),
        1
    );
    reg.change("fraud", StageChange::Promote(1)).unwrap();

    // Without a champion-fitting registry entry the pipeline would refuse to start; with one it starts on it.
    let pipeline = Pipeline::new(config(&log_dir)).unwrap();
    assert_eq!(pipeline.plan().label.version, "1");
    let running = Running::start(&log_dir, pipeline);
    let log = running.log.clone();

    let versions_seen = |log: &Log| -> BTreeMap<String, usize> {
        let mut m = BTreeMap::new();
        for (_, v) in read_all(log, "scores") {
            *m.entry(v["model_version"].as_str().unwrap().to_string())
                .or_default() += 1;
        }
        m
    };
    wait_until("v1 outputs", || {
        versions_seen(&log).get("1").is_some_and(|&n| n > 200)
    });

    assert_eq!(
        publish(&mut reg, "fixtures/interop/fraud_xgb/model.json", "xgboost"),
        2
    );
    reg.change("fraud", StageChange::Promote(2)).unwrap();
    wait_until("v2 outputs", || {
        versions_seen(&log).get("2").is_some_and(|&n| n > 200)
    });

    // A corrupt artifact (not a model at all) and a model reading other fields: both promoted without the
    // CLI's checks, both rejected by the pipeline, v2 keeps serving.
    assert_eq!(publish(&mut reg, "definitely not a model", ""), 3);
    reg.change("fraud", StageChange::Promote(3)).unwrap();
    wait_until("the v3 alert", || read_all(&log, "alerts").len() >= 2);
    assert_eq!(
        publish(&mut reg, "fixtures/bench/lgbm_100x31x30.txt", "lightgbm"),
        4
    );
    reg.change("fraud", StageChange::Promote(4)).unwrap();
    wait_until("the v4 alert", || read_all(&log, "alerts").len() >= 3);
    let before = versions_seen(&log).get("2").copied().unwrap_or(0);
    wait_until("more v2 outputs", || {
        versions_seen(&log)["2"] > before + 100
    });

    // Roll back twice: 4 -> 3 (still rejected: no swap) and 3 -> 2 (serving already)... then to 1.
    reg.change("fraud", StageChange::Rollback).unwrap();
    reg.change("fraud", StageChange::Rollback).unwrap();
    reg.change("fraud", StageChange::Rollback).unwrap();
    assert_eq!(reg.state().champion("fraud").unwrap().meta.version, 1);
    let before = versions_seen(&log).get("1").copied().unwrap_or(0);
    wait_until("v1 outputs again", || {
        versions_seen(&log)["1"] > before + 200
    });

    let (produced, summary) = running.drain();
    assert_eq!(summary.records_in as usize, produced);
    assert_eq!(summary.dead_lettered, 0);

    // Exactly one output per input, and per partition the versions run 1.., 2.., 1.. with no other change.
    let outputs = read_all(&log, "scores");
    assert_eq!(outputs.len(), produced);
    let mut ids: HashMap<&str, usize> = HashMap::new();
    for (_, v) in &outputs {
        *ids.entry(v["event_id"].as_str().unwrap()).or_default() += 1;
    }
    assert_eq!(ids.len(), produced, "an input was scored twice or never");
    for p in 0..3 {
        let mut runs: Vec<&str> = Vec::new();
        for (_, v) in outputs.iter().filter(|(q, _)| *q == p) {
            let version = v["model_version"].as_str().unwrap();
            if runs.last() != Some(&version) {
                runs.push(version);
            }
        }
        assert_eq!(runs, ["1", "2", "1"], "partition {p}");
    }
    let formats: BTreeMap<&str, &str> = outputs
        .iter()
        .map(|(_, v)| {
            (
                v["model_version"].as_str().unwrap(),
                v["model_format"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(formats["1"], "lightgbm");
    assert_eq!(formats["2"], "xgboost");

    let alerts: Vec<Value> = read_all(&log, "alerts")
        .into_iter()
        .map(|(_, v)| v)
        .collect();
    let kinds: Vec<(&str, u64)> = alerts
        .iter()
        .map(|a| {
            let v = a.get("to_version").or(a.get("version")).unwrap();
            (a["alert"].as_str().unwrap(), v.as_u64().unwrap())
        })
        .collect();
    assert_eq!(
        kinds,
        [
            ("model_swapped", 2),
            ("model_rejected", 3),
            ("model_rejected", 4),
            ("model_swapped", 1)
        ]
    );
    assert!(
        alerts[1]["reason"].as_str().unwrap().contains("version 3"),
        "{}",
        alerts[1]
    );
    assert!(
        alerts[2]["reason"].as_str().unwrap().contains("x0"),
        "v4 reads x0..x29: {}",
        alerts[2]
    );
    drop(log);

    // A restart starts on the champion (v1 now).
    let restarted = Pipeline::new(config(&log_dir)).unwrap();
    assert_eq!(restarted.plan().label.version, "1");
}

#[test]
fn a_registry_model_without_a_champion_does_not_start() {
    let dir = tempfile::tempdir().unwrap();
    let log_dir = dir.path().join("log");
    let e = Pipeline::new(config(&log_dir)).err().unwrap().to_string();
    assert!(e.contains("no model named fraud"), "{e}");
    let mut reg =
        Registry::open(EmbeddedStore::new(log_dir.join("registry"), "_dipper_models").unwrap())
            .unwrap();
    publish(
        &mut reg,
        "fixtures/interop/fraud_lgbm/model.txt",
        "lightgbm",
    );
    let e = Pipeline::new(config(&log_dir)).err().unwrap().to_string();
    assert!(e.contains("has no champion yet"), "{e}");
}

/// A challenger scores every event in shadow, to the shadow topic only, from one record boundary per
/// partition until it is removed; the champion's output is untouched.
#[test]
fn challengers_score_in_shadow_to_their_own_topic() {
    let dir = tempfile::tempdir().unwrap();
    let log_dir = dir.path().join("log");
    let mut reg =
        Registry::open(EmbeddedStore::new(log_dir.join("registry"), "_dipper_models").unwrap())
            .unwrap();
    publish(
        &mut reg,
        "fixtures/interop/fraud_lgbm/model.txt",
        "lightgbm",
    );
    publish(&mut reg, "fixtures/interop/fraud_xgb/model.json", "xgboost");
    reg.change("fraud", StageChange::Promote(1)).unwrap();
    reg.change("fraud", StageChange::Challenge(2, true))
        .unwrap();

    let yaml = YAML
        .replace("LOG", &log_dir.display().to_string())
        .replace("alerts:\n  topic: alerts\n", "shadow:\n  topic: shadow\n");
    let pipeline = Pipeline::new(PipelineConfig::parse(&yaml, "shadow.yaml").unwrap()).unwrap();
    let running = Running::start(&log_dir, pipeline);
    let log = running.log.clone();
    wait_until("shadow outputs", || read_all(&log, "shadow").len() > 300);
    reg.change("fraud", StageChange::Challenge(2, false))
        .unwrap();
    let shadowed = read_all(&log, "shadow").len();
    wait_until("outputs after the challenger left", || {
        read_all(&log, "scores").len() > shadowed + 600
    });
    let (produced, _) = running.drain();

    let scores = read_all(&log, "scores");
    let shadow = read_all(&log, "shadow");
    assert_eq!(scores.len(), produced);
    assert!(scores.iter().all(|(_, v)| v["model_version"] == "1"));
    assert!(shadow
        .iter()
        .all(|(_, v)| v["model_version"] == "2" && v["model_format"] == "xgboost"));
    let shadow_ids: HashMap<&str, u32> = shadow
        .iter()
        .map(|(p, v)| (v["event_id"].as_str().unwrap(), *p))
        .collect();
    assert_eq!(
        shadow_ids.len(),
        shadow.len(),
        "an event scored twice in shadow"
    );
    // Per partition, the shadowed events are one contiguous run of the champion's outputs.
    for p in 0..3 {
        let marks: Vec<bool> = scores
            .iter()
            .filter(|(q, _)| *q == p)
            .map(|(_, v)| {
                let id = v["event_id"].as_str().unwrap();
                shadow_ids.get(id).is_some_and(|&sp| {
                    assert_eq!(sp, p, "{id}: shadow output in another partition");
                    true
                })
            })
            .collect();
        let changes = marks.windows(2).filter(|w| w[0] != w[1]).count();
        assert!(
            marks.iter().any(|&m| m),
            "partition {p} has no shadow outputs"
        );
        assert!(
            changes <= 2,
            "partition {p}: shadow scoring switched {changes} times"
        );
        assert!(
            !marks.last().unwrap(),
            "partition {p}: shadow scoring did not stop"
        );
    }
}

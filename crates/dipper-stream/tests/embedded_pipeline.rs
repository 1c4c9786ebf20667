//! The scoring pipeline on the embedded log, in-process and deterministic: real model outputs, event ids,
//! pass-through and model fields, keys and per-key order; every kind of bad record dead-lettered with the right
//! headers; restarts resuming at the committed positions; identical results whatever the worker count and batch
//! size; back-pressure under a slow model; and an aborted unit of work replayed without a loss or a duplicate.
//!
//! Pipelines are built from YAML with `PipelineConfig::parse` and run with `exit_when_idle`, so each run ends by
//! itself once its input is consumed. Transport and model wrappers defined here observe or disturb the engine
//! (count pauses, fail a commit once, hold a batch until a pause is seen) around the real `EmbeddedTransport` and
//! the real models.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::Duration;

use dipper_log::{Log, Options, Record, StoredRecord};
use dipper_models::{Model, ModelError, ModelInfo, PredictionRef, Predictions};
use dipper_monitor::{DeadLetterReason, PipelineMetrics};
use dipper_stream::transport::embedded::{kafka_partition, EmbeddedTransport};
use dipper_stream::transport::{OutRecord, Polled, TopicPartition, Transport};
use dipper_stream::{Pipeline, PipelineConfig, Recovery, RunSummary, ScoringPlan, StreamError};
use serde_json::{json, Map, Value};
use tempfile::TempDir;

/// How long a run waits for more input before it stops by itself.
const IDLE: Duration = Duration::from_millis(100);
/// Record timestamps: input `i` (in production order) is stamped `TS0 + i`.
const TS0: i64 = 1_700_000_000_000;
const INPUT: &str = "tx";

fn repo_path(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").join(p)
}

fn lgbm_model() -> PathBuf {
    repo_path("fixtures/interop/fraud_lgbm/model.txt")
}

/// A native logistic GLM without missing-value handling:
/// `logit(p1) = -0.5 + 0.8 amount - 0.3 hour + 1.2 merchant_risk`.
fn glm_model() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/fraud_glm.json")
}

fn glm_p1(amount: f64, hour: f64, merchant_risk: f64) -> f64 {
    let eta = -0.5 + 0.8 * amount - 0.3 * hour + 1.2 * merchant_risk;
    1.0 / (1.0 + (-eta).exp())
}

/// The LightGBM fraud model's p1 for an event with only these three features (NaN = missing).
fn lgbm_p1(amount: f64, hour: f64, merchant_risk: f64) -> f64 {
    static MODEL: OnceLock<Arc<dyn Model>> = OnceLock::new();
    let model = MODEL.get_or_init(|| dipper_models::load(&lgbm_model(), None).unwrap());
    let names: Vec<&str> = model.info().features.names().collect();
    let mut row = vec![f64::NAN; names.len()];
    for (name, v) in [
        ("amount", amount),
        ("hour", hour),
        ("merchant_risk", merchant_risk),
    ] {
        row[names.iter().position(|n| *n == name).unwrap()] = v;
    }
    let mut out = Predictions::default();
    model.predict_one(&row, &mut out).unwrap();
    match out.get(0) {
        PredictionRef::Class { probabilities, .. } => probabilities[1],
        other => panic!("not a classification: {other:?}"),
    }
}

/// The 180 fraud events of the interop fixture, as JSON objects.
fn fraud_events() -> Vec<Map<String, Value>> {
    std::fs::read_to_string(repo_path("fixtures/interop/fraud_lgbm/input.jsonl"))
        .unwrap()
        .lines()
        .map(|l| match serde_json::from_str(l).unwrap() {
            Value::Object(m) => m,
            other => panic!("not an object: {other}"),
        })
        .collect()
}

/// What `dipper predict` writes for them (and LightGBM itself): `(class, p0, p1)`.
fn fraud_expected() -> Vec<(i64, f64, f64)> {
    std::fs::read_to_string(repo_path("fixtures/interop/fraud_lgbm/expected.jsonl"))
        .unwrap()
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            (
                v["prediction"].as_i64().unwrap(),
                v["probabilities"]["0"].as_f64().unwrap(),
                v["probabilities"]["1"].as_f64().unwrap(),
            )
        })
        .collect()
}

fn open_log(dir: &Path) -> Arc<Log> {
    Arc::new(Log::open(dir, Options::default()).unwrap())
}

/// A fresh log with the input topic.
fn new_log(partitions: u32) -> (TempDir, Arc<Log>) {
    let dir = tempfile::tempdir().unwrap();
    let log = open_log(dir.path());
    log.create_topic(INPUT, partitions).unwrap();
    (dir, log)
}

/// One input record. Keyed records go where Kafka's partitioner (and `dipper produce --key-field`) puts them,
/// unkeyed ones to `partition`.
#[derive(Debug, Clone)]
struct In {
    key: Option<String>,
    value: Option<Vec<u8>>,
    partition: u32,
}

impl In {
    fn keyed(key: &str, value: &Value) -> Self {
        In {
            key: Some(key.to_string()),
            value: Some(value.to_string().into_bytes()),
            partition: 0,
        }
    }
    fn raw(partition: u32, key: Option<&str>, value: Option<&[u8]>) -> Self {
        In {
            key: key.map(str::to_string),
            value: value.map(<[u8]>::to_vec),
            partition,
        }
    }
}

/// Where an input landed and how it was stamped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Placed {
    partition: u32,
    offset: u64,
    timestamp: i64,
}

/// Appends `inputs` in one commit; input `i` is stamped `TS0 + first_index + i`.
fn produce(log: &Log, inputs: &[In], first_index: usize) -> Vec<Placed> {
    let n = log.partitions(INPUT).unwrap();
    let mut txn = log.begin();
    let mut placed = Vec::new();
    for (i, input) in inputs.iter().enumerate() {
        let partition = match &input.key {
            Some(k) => kafka_partition(k.as_bytes(), n),
            None => input.partition,
        };
        let timestamp = TS0 + (first_index + i) as i64;
        let offset = txn
            .append(
                INPUT,
                partition,
                Record {
                    key: input.key.clone().map(String::into_bytes),
                    value: input.value.clone(),
                    headers: Vec::new(),
                    timestamp,
                },
            )
            .unwrap();
        placed.push(Placed {
            partition,
            offset,
            timestamp,
        });
    }
    log.commit(txn).unwrap();
    placed
}

/// The fraud events with a unique `event_id` (`{prefix}{i}`) and a `card_id` among `cards`, keyed by card.
fn keyed_fraud_inputs(prefix: &str, count: usize, cards: usize) -> Vec<In> {
    let events = fraud_events();
    (0..count)
        .map(|i| {
            let mut e = events[i % events.len()].clone();
            let card = format!("c{}", i % cards);
            e.insert("event_id".into(), json!(format!("{prefix}{i}")));
            e.insert("card_id".into(), json!(card));
            In::keyed(&card, &Value::Object(e))
        })
        .collect()
}

/// A pipeline file, with YAML fragments (already indented) for the optional parts.
#[derive(Debug, Clone)]
struct Conf {
    name: &'static str,
    model: PathBuf,
    input: String,
    model_extra: String,
    output: String,
    output_topic: &'static str,
    dlq_topic: &'static str,
    rest: String,
}

impl Conf {
    fn new(model: PathBuf) -> Self {
        Conf {
            name: "emb",
            model,
            input: String::new(),
            model_extra: String::new(),
            output: String::new(),
            output_topic: "scores",
            dlq_topic: "dlq",
            rest: String::new(),
        }
    }

    fn parse(&self) -> PipelineConfig {
        let text = format!(
            "name: {}\ntransport:\n  embedded:\n    dir: not-used-by-run_on_log\ninput:\n  topics: [{INPUT}]\n{}\
             model:\n  path: '{}'\n{}output:\n  topic: {}\n{}dead_letter:\n  topic: {}\n{}",
            self.name,
            self.input,
            self.model.display(),
            self.model_extra,
            self.output_topic,
            self.output,
            self.dlq_topic,
            self.rest
        );
        PipelineConfig::parse(&text, "test.yaml").unwrap_or_else(|e| panic!("{e}\n{text}"))
    }
}

fn never_stop() -> Arc<AtomicBool> {
    Arc::new(AtomicBool::new(false))
}

/// Runs `conf` on `log` until its input is quiet.
fn run(log: &Arc<Log>, conf: &Conf) -> (RunSummary, Arc<PipelineMetrics>) {
    let pipeline = Pipeline::new(conf.parse())
        .unwrap()
        .exit_when_idle(Some(IDLE));
    let metrics = pipeline.metrics();
    let summary = pipeline.run_on_log(log.clone(), never_stop()).unwrap();
    (summary, metrics)
}

/// Every record of `topic`, partition by partition, in offset order.
fn read_topic(log: &Log, topic: &str) -> Vec<(u32, StoredRecord)> {
    let mut all = Vec::new();
    for p in 0..log.partitions(topic).unwrap() {
        let recs = log.read(topic, p, 0, usize::MAX).unwrap();
        assert_eq!(recs.len() as u64, log.high_watermark(topic, p).unwrap());
        all.extend(recs.into_iter().map(|r| (p, r)));
    }
    all
}

fn header<'a>(r: &'a StoredRecord, name: &str) -> Option<&'a str> {
    r.headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| std::str::from_utf8(v).unwrap())
}

fn value_json(r: &StoredRecord) -> Map<String, Value> {
    match serde_json::from_slice(r.value.as_deref().unwrap()).unwrap() {
        Value::Object(m) => m,
        other => panic!("prediction is not an object: {other}"),
    }
}

fn key_str(r: &StoredRecord) -> Option<String> {
    r.key
        .as_deref()
        .map(|k| String::from_utf8(k.to_vec()).unwrap())
}

/// The group's committed position equals the high watermark on every input partition.
fn assert_all_committed(log: &Log, conf: &Conf) {
    let group = conf.parse().group_id();
    for p in 0..log.partitions(INPUT).unwrap() {
        let hw = log.high_watermark(INPUT, p).unwrap();
        assert_eq!(
            log.committed(&group, INPUT, p).unwrap(),
            Some(hw),
            "{group} position on {INPUT}/{p}"
        );
    }
}

/// For every key, the event ids of its outputs (in output offset order) equal those of its inputs (in input
/// order). Keys of dead-lettered inputs are left out of `inputs` by the caller.
fn assert_per_key_order(outputs: &[(u32, StoredRecord)], inputs: &BTreeMap<String, Vec<String>>) {
    let mut seen: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut partition_of: HashMap<String, u32> = HashMap::new();
    for (p, r) in outputs {
        let key = key_str(r).expect("keyed input, keyed output");
        // One key, one output partition: order across partitions would mean nothing.
        assert_eq!(*partition_of.entry(key.clone()).or_insert(*p), *p, "{key}");
        let id = value_json(r)["event_id"].as_str().unwrap().to_string();
        seen.entry(key).or_default().push(id);
    }
    assert_eq!(&seen, inputs);
}

fn ids_by_key(inputs: &[In]) -> BTreeMap<String, Vec<String>> {
    let mut by_key: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for i in inputs {
        let v: Value = serde_json::from_slice(i.value.as_deref().unwrap()).unwrap();
        by_key
            .entry(i.key.clone().unwrap())
            .or_default()
            .push(v["event_id"].as_str().unwrap().to_string());
    }
    by_key
}

/// Each event id of the output topic, with how often it appears.
fn id_counts(outputs: &[(u32, StoredRecord)]) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for (_, r) in outputs {
        let id = value_json(r)["event_id"].as_str().unwrap().to_string();
        *counts.entry(id).or_insert(0) += 1;
    }
    counts
}

#[test]
fn predictions_equal_the_model_with_ids_pass_through_model_fields_keys_and_per_key_order() {
    let (_dir, log) = new_log(3);
    let events = fraud_events();
    let expected = fraud_expected();
    assert_eq!(events.len(), expected.len());
    let mut inputs = Vec::new();
    for (i, e) in events.iter().enumerate() {
        let mut e = e.clone();
        let card = format!("c{}", i % 7);
        e.insert("event_id".into(), json!(format!("ev-{i:03}")));
        e.insert("card_id".into(), json!(card));
        e.insert(
            "merchant".into(),
            json!({"name": "m \"q\"", "tags": [i, null]}),
        );
        if i.is_multiple_of(2) {
            e.insert("ts".into(), json!(1_690_000_000_000i64 + i as i64));
        }
        inputs.push(In::keyed(&card, &Value::Object(e)));
    }
    let placed = produce(&log, &inputs, 0);
    // The cards spread over all three partitions, so order is checked across partitions too.
    let used: BTreeSet<u32> = placed.iter().map(|p| p.partition).collect();
    assert_eq!(used.len(), 3);

    let conf = Conf {
        input: "  event_id_field: event_id\n  event_time_field: ts\n".into(),
        output: "  pass_through: [card_id, merchant, not_in_any_event]\n".into(),
        ..Conf::new(lgbm_model())
    };
    let (summary, metrics) = run(&log, &conf);
    assert_eq!(
        (
            summary.records_in,
            summary.predictions,
            summary.dead_lettered
        ),
        (180, 180, 0)
    );
    assert_eq!(metrics.records_in.get(), 180);
    assert_eq!(metrics.records_out.get(), 180);
    assert!(summary.commits >= 1);
    assert_eq!(summary.aborts, 0);
    assert_eq!(
        log.partitions("scores").unwrap(),
        3,
        "outputs default to the input's partition count"
    );
    assert!(read_topic(&log, "dlq").is_empty());
    assert_all_committed(&log, &conf);

    // Model identity: the file stem and the first 12 hex digits of the file's SHA-256.
    let digest = dipper_models::load(&lgbm_model(), None)
        .unwrap()
        .info()
        .id
        .digest
        .clone();
    let version = &digest[..12];
    assert!(version.bytes().all(|b| b.is_ascii_hexdigit()));

    let outputs = read_topic(&log, "scores");
    assert_eq!(outputs.len(), 180);
    let mut seen = BTreeSet::new();
    let mut txns = BTreeSet::new();
    for (p, r) in &outputs {
        let v = value_json(r);
        let id = v["event_id"].as_str().unwrap();
        let i: usize = id.strip_prefix("ev-").unwrap().parse().unwrap();
        assert!(seen.insert(i), "{id} twice");
        let input: Value = serde_json::from_slice(inputs[i].value.as_deref().unwrap()).unwrap();
        let (class, p0, p1) = expected[i];
        assert_eq!(v["prediction"], json!(class), "{id}");
        let probs = v["probabilities"].as_object().unwrap();
        assert_eq!(probs.len(), 2);
        assert!(
            (probs["0"].as_f64().unwrap() - p0).abs() <= 1e-9,
            "{id}: p0 {} vs {p0}",
            probs["0"]
        );
        assert!(
            (probs["1"].as_f64().unwrap() - p1).abs() <= 1e-9,
            "{id}: p1 {} vs {p1}",
            probs["1"]
        );
        assert_eq!(v["card_id"], input["card_id"]);
        assert_eq!(v["merchant"], input["merchant"]);
        assert_eq!(v["model"], "model");
        assert_eq!(v["model_version"], version);
        assert_eq!(v["model_format"], "lightgbm");
        let fields: BTreeSet<&str> = v.keys().map(String::as_str).collect();
        let want: BTreeSet<&str> = [
            "event_id",
            "card_id",
            "merchant",
            "prediction",
            "probabilities",
            "model",
            "model_version",
            "model_format",
            "latency_us",
            "event_time",
            "processing_time",
        ]
        .into();
        assert_eq!(
            fields, want,
            "{id}: a missing pass-through field is omitted"
        );
        // Event time: the configured field when present, else the record's timestamp.
        let event_time = if i.is_multiple_of(2) {
            1_690_000_000_000 + i as i64
        } else {
            placed[i].timestamp
        };
        assert_eq!(v["event_time"], json!(event_time), "{id}");
        assert_eq!(
            r.timestamp, event_time,
            "{id}: the output is stamped with the event time"
        );
        assert!(v["processing_time"].as_i64().unwrap() >= TS0);
        assert!(v["latency_us"].as_f64().unwrap() >= 0.0);
        // The key is kept, and places the output the way Kafka would.
        let key = key_str(r).unwrap();
        assert_eq!(key, input["card_id"].as_str().unwrap());
        assert_eq!(*p, kafka_partition(key.as_bytes(), 3));
        let txn = header(r, "dipper.txn").unwrap();
        assert!(txn.starts_with("embedded:dipper-emb:"), "{txn}");
        header(r, "dipper.txn.seq").unwrap().parse::<u64>().unwrap();
        txns.insert(txn.to_string());
    }
    assert_eq!(txns.len(), 1, "one run, one transaction id");
    assert_per_key_order(&outputs, &ids_by_key(&inputs));
}

#[test]
fn event_ids_default_to_topic_partition_offset_and_unkeyed_outputs_follow_their_partition() {
    let (_dir, log) = new_log(3);
    let events = fraud_events();
    let mut inputs = Vec::new();
    for (i, e) in events.iter().take(24).enumerate() {
        let mut e = e.clone();
        match i % 4 {
            0 => {
                e.insert("id".into(), json!(format!("s-{i}")));
            }
            1 => {
                e.insert("id".into(), json!(i));
            }
            2 => {}
            _ => {
                e.insert("id".into(), Value::Null);
            }
        }
        let bytes = Value::Object(e).to_string().into_bytes();
        inputs.push(In::raw((i % 3) as u32, None, Some(&bytes)));
    }
    let placed = produce(&log, &inputs, 0);
    let positional = |i: usize| {
        json!(format!(
            "{INPUT}/{}/{}",
            placed[i].partition, placed[i].offset
        ))
    };

    // With an id field: its JSON value (string or number); topic/partition/offset where it is missing or null.
    let named = Conf {
        input: "  event_id_field: id\n".into(),
        model_extra: "  name: fraud\n  version: v7\n".into(),
        ..Conf::new(lgbm_model())
    };
    let named_id = |i: usize| match i % 4 {
        0 => json!(format!("s-{i}")),
        1 => json!(i),
        _ => positional(i),
    };
    // Without: always topic/partition/offset. Another group and other output topics on the same log.
    let unnamed = Conf {
        name: "emb-positional",
        output_topic: "scores-positional",
        dlq_topic: "dlq-positional",
        ..Conf::new(lgbm_model())
    };
    type IdOf<'a> = &'a dyn Fn(usize) -> Value;
    let cases: [(&Conf, IdOf, &str, &str); 2] = [
        (&named, &named_id, "fraud", "v7"),
        (&unnamed, &positional, "model", ""),
    ];
    for (conf, id_of, model, version) in cases {
        let (summary, _) = run(&log, conf);
        assert_eq!(summary.records_in, 24, "{}", conf.name);
        assert_all_committed(&log, conf);
        // Unkeyed outputs stay on their input's partition, in input order.
        let mut want: BTreeMap<u32, Vec<Value>> = BTreeMap::new();
        for (i, pl) in placed.iter().enumerate() {
            want.entry(pl.partition).or_default().push(id_of(i));
        }
        let mut got: BTreeMap<u32, Vec<Value>> = BTreeMap::new();
        for (p, r) in read_topic(&log, conf.output_topic) {
            assert_eq!(r.key, None);
            let v = value_json(&r);
            assert_eq!(v["model"], model);
            if !version.is_empty() {
                assert_eq!(v["model_version"], version);
            }
            got.entry(p).or_default().push(v["event_id"].clone());
        }
        assert_eq!(got, want, "{}", conf.name);
    }
}

/// What should become of one input.
#[derive(Debug, Clone)]
enum Fate {
    /// Scored, with this p1.
    Scored(f64),
    Dead {
        reason: &'static str,
        field: Option<&'static str>,
        message: &'static str,
    },
}

fn dead(reason: &'static str, field: Option<&'static str>, message: &'static str) -> Fate {
    Fate::Dead {
        reason,
        field,
        message,
    }
}

/// Bad records of every kind between good ones, with their fate under the GLM (no missing-value handling) and
/// under LightGBM (which reads missing and null features as missing).
fn bad_input_cases() -> Vec<(In, Fate, Fate)> {
    let good = |p: u32, key: Option<&str>, a: f64, h: f64, m: f64| {
        let v =
            json!({"event_id": format!("good-{a}"), "amount": a, "hour": h, "merchant_risk": m});
        (
            In::raw(p, key, Some(v.to_string().as_bytes())),
            Fate::Scored(glm_p1(a, h, m)),
            Fate::Scored(lgbm_p1(a, h, m)),
        )
    };
    let both = |input: In, fate: Fate| (input, fate.clone(), fate);
    vec![
        good(0, Some("k1"), 1.0, 2.0, 0.5),
        both(
            In::raw(0, Some("k2"), Some(br#"{"amount": 1, "hour":"#)),
            dead("decode", None, ""),
        ),
        both(
            In::raw(1, None, Some(b"[1, 2, 3]")),
            dead("decode", None, ""),
        ),
        both(
            In::raw(1, None, Some(b"\"a string\"")),
            dead("decode", None, ""),
        ),
        both(In::raw(0, None, Some(b"42")), dead("decode", None, "")),
        both(In::raw(0, None, Some(b"")), dead("decode", None, "")),
        both(
            In::raw(
                1,
                None,
                Some(b"{\"amount\": 1, \"hour\": 2, \"merchant_risk\": \xff}"),
            ),
            dead("decode", None, ""),
        ),
        both(
            In::raw(0, Some("k3"), None),
            dead("decode", None, "tombstone"),
        ),
        both(
            In::raw(
                1,
                Some("k4"),
                Some(br#"{"amount": "lots", "hour": 1, "merchant_risk": 0}"#),
            ),
            dead("features", Some("amount"), ""),
        ),
        (
            In::raw(0, None, Some(br#"{"amount": 1, "hour": 2}"#)),
            dead("features", Some("merchant_risk"), "missing"),
            Fate::Scored(lgbm_p1(1.0, 2.0, f64::NAN)),
        ),
        (
            In::raw(
                1,
                Some("k5"),
                Some(br#"{"amount": 1, "hour": null, "merchant_risk": 0}"#),
            ),
            dead("features", Some("hour"), "null"),
            Fate::Scored(lgbm_p1(1.0, f64::NAN, 0.0)),
        ),
        good(1, None, -1.0, 0.0, 2.0),
        both(
            In::raw(
                0,
                None,
                Some(br#"{"amount": 1, "hour": 2, "merchant_risk": 0.5} trailing"#),
            ),
            dead("decode", None, "trailing"),
        ),
        both(
            In::raw(
                1,
                None,
                Some(br#"{"amount": 1, "hour": 2, "merchant_risk": 0.5}{"amount": 2}"#),
            ),
            dead("decode", None, "trailing"),
        ),
        both(
            In::raw(
                1,
                None,
                Some(br#"{"amount": 1e999, "hour": 2, "merchant_risk": 0.5}"#),
            ),
            dead("decode", None, "out of range"),
        ),
        good(0, Some("k6"), 0.25, 23.0, -1.0),
    ]
}

fn check_fates(log: &Arc<Log>, conf: &Conf, inputs: &[In], placed: &[Placed], fates: &[Fate]) {
    let (summary, metrics) = run(log, conf);
    let n = inputs.len() as u64;
    let n_dead = fates
        .iter()
        .filter(|f| matches!(f, Fate::Dead { .. }))
        .count() as u64;
    assert_eq!(summary.records_in, n, "{}", conf.name);
    assert_eq!(
        summary.predictions + summary.dead_lettered,
        n,
        "in == out + dead-lettered"
    );
    assert_eq!(summary.dead_lettered, n_dead);
    let outputs = read_topic(log, conf.output_topic);
    let dlq = read_topic(log, conf.dlq_topic);
    assert_eq!(
        outputs.len() as u64 + dlq.len() as u64,
        n,
        "one output per input"
    );
    assert_eq!(dlq.len() as u64, n_dead);
    assert_all_committed(log, conf);
    let reasons = |r: &str| {
        fates
            .iter()
            .filter(|f| matches!(f, Fate::Dead { reason, .. } if *reason == r))
            .count() as u64
    };
    assert_eq!(
        metrics.dead_lettered_count(DeadLetterReason::Decode),
        reasons("decode")
    );
    assert_eq!(
        metrics.dead_lettered_count(DeadLetterReason::Features),
        reasons("features")
    );

    let at = |p: u32, offset: u64| {
        placed
            .iter()
            .position(|pl| pl.partition == p && pl.offset == offset)
            .unwrap_or_else(|| panic!("no input at {p}/{offset}"))
    };
    let mut done = vec![false; inputs.len()];
    for (_, r) in &dlq {
        let p: u32 = header(r, "dipper.source.partition")
            .unwrap()
            .parse()
            .unwrap();
        let offset: u64 = header(r, "dipper.source.offset").unwrap().parse().unwrap();
        let i = at(p, offset);
        assert!(!std::mem::replace(&mut done[i], true), "input {i} twice");
        let Fate::Dead {
            reason,
            field,
            message,
        } = &fates[i]
        else {
            panic!(
                "input {i} was dead-lettered but should have been scored: {:?}",
                r.headers
            )
        };
        let what = format!(
            "{}: input {i} {:?}",
            conf.name,
            inputs[i].value.as_deref().map(String::from_utf8_lossy)
        );
        assert_eq!(header(r, "dipper.error.reason"), Some(*reason), "{what}");
        assert_eq!(header(r, "dipper.error.field"), *field, "{what}");
        let msg = header(r, "dipper.error.message").unwrap();
        assert!(!msg.is_empty() && msg.contains(message), "{what}: {msg}");
        assert_eq!(header(r, "dipper.source.topic"), Some(INPUT));
        assert_eq!(
            header(r, "dipper.source.timestamp").unwrap(),
            placed[i].timestamp.to_string()
        );
        assert_eq!(header(r, "dipper.pipeline"), Some(conf.name));
        assert_eq!(header(r, "dipper.model").unwrap(), model_label(&conf.model));
        assert!(header(r, "dipper.txn").is_some() && header(r, "dipper.txn.seq").is_some());
        // The original record, untouched (a tombstone's missing value becomes an empty one).
        assert_eq!(
            r.value.clone().unwrap_or_default(),
            inputs[i].value.clone().unwrap_or_default(),
            "{what}"
        );
        assert_eq!(key_str(r), inputs[i].key, "{what}");
        assert_eq!(r.timestamp, placed[i].timestamp);
    }
    for (_, r) in &outputs {
        let v = value_json(r);
        let i = match v["event_id"].as_str().unwrap() {
            id if id.starts_with("tx/") => {
                let mut parts = id.split('/').skip(1);
                let p = parts.next().unwrap().parse().unwrap();
                at(p, parts.next().unwrap().parse().unwrap())
            }
            id => inputs
                .iter()
                .position(|input| {
                    input.value.as_deref().is_some_and(|b| {
                        serde_json::from_slice::<Value>(b).is_ok_and(|j| j["event_id"] == id)
                    })
                })
                .unwrap(),
        };
        assert!(!std::mem::replace(&mut done[i], true), "input {i} twice");
        match &fates[i] {
            Fate::Scored(p1) => {
                let got = v["probabilities"]["1"].as_f64().unwrap();
                assert!((got - p1).abs() <= 1e-12, "input {i}: {got} vs {p1}");
                assert_eq!(v["prediction"], json!(i64::from(*p1 > 0.5)));
            }
            Fate::Dead { .. } => {
                panic!("input {i} was scored but should have been dead-lettered: {v:?}")
            }
        }
        assert_eq!(key_str(r), inputs[i].key);
    }
    assert!(done.iter().all(|d| *d));
}

/// `name:version` of a model file as the pipeline labels it by default.
fn model_label(path: &Path) -> String {
    let model = dipper_models::load(path, None).unwrap();
    let id = &model.info().id;
    format!("{}:{}", id.name, &id.digest[..12])
}

#[test]
fn bad_records_are_dead_lettered_with_reason_field_and_source() {
    let (_dir, log) = new_log(2);
    let cases = bad_input_cases();
    let inputs: Vec<In> = cases.iter().map(|c| c.0.clone()).collect();
    let placed = produce(&log, &inputs, 0);
    // A model without missing-value handling: missing and null features are the event's fault.
    let glm = Conf {
        name: "emb-glm",
        input: "  event_id_field: event_id\n".into(),
        ..Conf::new(glm_model())
    };
    let fates: Vec<Fate> = cases.iter().map(|c| c.1.clone()).collect();
    check_fates(&log, &glm, &inputs, &placed, &fates);
    // LightGBM reads them as missing values and scores them; everything else fares the same.
    let lgbm = Conf {
        name: "emb-lgbm",
        input: "  event_id_field: event_id\n".into(),
        output_topic: "scores-lgbm",
        dlq_topic: "dlq-lgbm",
        ..Conf::new(lgbm_model())
    };
    let fates: Vec<Fate> = cases.iter().map(|c| c.2.clone()).collect();
    check_fates(&log, &lgbm, &inputs, &placed, &fates);
}

#[test]
fn a_restart_resumes_at_the_committed_positions_and_repeats_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let conf = Conf {
        input: "  event_id_field: event_id\n".into(),
        // At most 4 x 4 records per partition are applied between two commit checks, so the first run's 100
        // records take several commits.
        rest: "delivery:\n  commit_max_records: 16\nprocessing:\n  batch_size: 4\n  max_in_flight_batches: 4\n"
            .into(),
        ..Conf::new(lgbm_model())
    };
    let first = keyed_fraud_inputs("a-", 100, 5);
    let second = keyed_fraud_inputs("b-", 50, 5);
    let txn_ids = |log: &Log| -> BTreeSet<String> {
        read_topic(log, "scores")
            .iter()
            .map(|(_, r)| header(r, "dipper.txn").unwrap().to_string())
            .collect()
    };
    let first_txns = {
        let log = open_log(dir.path());
        log.create_topic(INPUT, 3).unwrap();
        produce(&log, &first, 0);
        let (summary, _) = run(&log, &conf);
        assert_eq!(summary.records_in, 100);
        assert!(summary.commits > 1, "commits every 16 records");
        assert_eq!(read_topic(&log, "scores").len(), 100);
        txn_ids(&log)
    };
    // Reopened from disk (the run's handle is gone, so is its lock): more input, and a second run.
    let log = open_log(dir.path());
    let hw_before: Vec<u64> = (0..3)
        .map(|p| log.high_watermark("scores", p).unwrap())
        .collect();
    produce(&log, &second, 100);
    let (summary, _) = run(&log, &conf);
    assert_eq!(summary.records_in, 50, "only the new events are consumed");
    assert_eq!(summary.predictions, 50);
    let outputs = read_topic(&log, "scores");
    assert_eq!(outputs.len(), 150);
    let counts = id_counts(&outputs);
    assert_eq!(counts.len(), 150);
    assert!(counts.values().all(|c| *c == 1), "nothing repeated");
    // What the second run wrote follows what the first wrote, and is exactly the new events.
    let mut new_ids = BTreeSet::new();
    for (p, r) in &outputs {
        let id = value_json(r)["event_id"].as_str().unwrap().to_string();
        let is_new = r.offset >= hw_before[*p as usize];
        assert_eq!(is_new, id.starts_with("b-"), "{id} at {p}/{}", r.offset);
        assert_eq!(
            is_new,
            !first_txns.contains(header(r, "dipper.txn").unwrap())
        );
        if is_new {
            new_ids.insert(id);
        }
    }
    assert_eq!(new_ids.len(), 50);
    assert_eq!(
        txn_ids(&log).len(),
        2,
        "each run has its own transaction id"
    );
    let mut all = first.clone();
    all.extend(second);
    assert_per_key_order(&outputs, &ids_by_key(&all));
    assert_all_committed(&log, &conf);
    // A third run finds nothing to do.
    let (summary, _) = run(&log, &conf);
    assert_eq!(summary, RunSummary::default());
    assert_eq!(read_topic(&log, "scores").len(), 150);
}

type Normalised = BTreeMap<(String, u32), Vec<String>>;

/// Everything a run wrote, per topic and partition in offset order, without what legitimately differs between
/// runs: latency, processing time and transaction ids.
fn normalised(log: &Log) -> Normalised {
    let mut all = BTreeMap::new();
    for topic in ["scores", "dlq"] {
        for (p, r) in read_topic(log, topic) {
            let value = if topic == "scores" {
                let mut v = value_json(&r);
                assert!(v.remove("latency_us").is_some());
                assert!(v.remove("processing_time").is_some());
                Value::Object(v).to_string()
            } else {
                String::from_utf8_lossy(r.value.as_deref().unwrap()).into_owned()
            };
            let headers: Vec<String> = r
                .headers
                .iter()
                .filter(|(k, _)| !k.starts_with("dipper.txn"))
                .map(|(k, v)| format!("{k}={}", String::from_utf8_lossy(v)))
                .collect();
            let line = format!(
                "{:?} {} {} {value} {headers:?}",
                key_str(&r),
                r.offset,
                r.timestamp
            );
            all.entry((topic.to_string(), p))
                .or_insert_with(Vec::new)
                .push(line);
        }
    }
    all
}

#[test]
fn worker_counts_batch_sizes_and_commit_cadences_give_identical_outputs() {
    let mut inputs = keyed_fraud_inputs("e-", 180, 7);
    // Bad records among them, keyed and not.
    for (k, (bad, _, _)) in bad_input_cases().into_iter().enumerate() {
        inputs.insert(k * 11 + 5, bad);
    }
    let mut baseline: Option<(String, Normalised)> = None;
    let mut case = 0;
    for workers in [0, 1, 3] {
        for batch in [1, 7, 256] {
            let in_flight = [1, 2, 4][case % 3];
            let commit_every = [1, 13, 10_000][(case / 3 + case) % 3];
            case += 1;
            let label = format!(
                "workers {workers}, batch {batch}, in flight {in_flight}, commit every {commit_every}"
            );
            let (_dir, log) = new_log(3);
            produce(&log, &inputs, 0);
            let conf = Conf {
                input: "  event_id_field: event_id\n".into(),
                output: "  pass_through: [card_id]\n".into(),
                rest: format!(
                    "delivery:\n  commit_max_records: {commit_every}\nprocessing:\n  workers: {workers}\n  \
                     batch_size: {batch}\n  max_in_flight_batches: {in_flight}\n"
                ),
                ..Conf::new(lgbm_model())
            };
            let (summary, _) = run(&log, &conf);
            assert_eq!(summary.records_in, inputs.len() as u64, "{label}");
            assert_all_committed(&log, &conf);
            let got = normalised(&log);
            let total: usize = got.values().map(Vec::len).sum();
            assert_eq!(total, inputs.len(), "{label}");
            match &baseline {
                None => baseline = Some((label, got)),
                Some((base_label, want)) => {
                    for (tp, lines) in want {
                        assert_eq!(
                            got.get(tp),
                            Some(lines),
                            "{tp:?}: {label} differs from {base_label}"
                        );
                    }
                    assert_eq!(got.len(), want.len(), "{label}");
                }
            }
        }
    }
}

/// What a [`Probe`] transport saw, shared with the test and with a [`SlowModel`].
#[derive(Debug, Default)]
struct Seen {
    pauses: AtomicUsize,
    resumes: AtomicUsize,
    polls: AtomicUsize,
    sends: AtomicUsize,
    commits: AtomicUsize,
    aborts: AtomicUsize,
    /// The largest `paused_partitions` gauge value seen at the start of a poll.
    max_paused_gauge: Mutex<f64>,
    metrics: OnceLock<Arc<PipelineMetrics>>,
    /// Set (and signalled) at the first pause.
    paused_once: Mutex<bool>,
    paused_cv: Condvar,
}

impl Seen {
    fn count(c: &AtomicUsize) -> usize {
        c.fetch_add(1, Ordering::SeqCst) + 1
    }

    /// Waits until a partition has been paused; false after `timeout`.
    fn wait_for_pause(&self, timeout: Duration) -> bool {
        let guard = self.paused_once.lock().unwrap();
        let (guard, _) = self
            .paused_cv
            .wait_timeout_while(guard, timeout, |paused| !*paused)
            .unwrap();
        *guard
    }
}

/// Which call fails once, with a retriable transport error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fail {
    Never,
    /// The n-th `commit` (1-based), before it reaches the log.
    Commit(usize),
    /// The n-th `send`.
    Send(usize),
    /// The n-th `poll`.
    Poll(usize),
}

fn injected(what: &str) -> StreamError {
    StreamError::Transport {
        transport: "probe",
        message: format!("injected {what} failure"),
        recovery: Recovery::Retry,
    }
}

/// The real embedded transport, observed (and, if asked, failing one call).
struct Probe {
    inner: EmbeddedTransport,
    seen: Arc<Seen>,
    fail: Fail,
}

impl Transport for Probe {
    fn name(&self) -> &'static str {
        "probe"
    }

    fn poll(&mut self, max: usize, timeout: Duration) -> Result<Polled, StreamError> {
        let n = Seen::count(&self.seen.polls);
        if let Some(m) = self.seen.metrics.get() {
            let mut max_seen = self.seen.max_paused_gauge.lock().unwrap();
            *max_seen = max_seen.max(m.paused_partitions.get());
        }
        if self.fail == Fail::Poll(n) {
            return Err(injected("poll"));
        }
        self.inner.poll(max, timeout)
    }

    fn pause(&mut self, tp: &TopicPartition) -> Result<(), StreamError> {
        Seen::count(&self.seen.pauses);
        *self.seen.paused_once.lock().unwrap() = true;
        self.seen.paused_cv.notify_all();
        self.inner.pause(tp)
    }

    fn resume(&mut self, tp: &TopicPartition) -> Result<(), StreamError> {
        Seen::count(&self.seen.resumes);
        self.inner.resume(tp)
    }

    fn send(&mut self, record: OutRecord) -> Result<(), StreamError> {
        let n = Seen::count(&self.seen.sends);
        if self.fail == Fail::Send(n) {
            return Err(injected("send"));
        }
        self.inner.send(record)
    }

    fn consumed(&mut self, tp: &TopicPartition, next_offset: u64) {
        self.inner.consumed(tp, next_offset)
    }

    fn commit(&mut self) -> Result<Option<dipper_stream::transport::Committed>, StreamError> {
        let n = Seen::count(&self.seen.commits);
        if self.fail == Fail::Commit(n) {
            return Err(injected("commit"));
        }
        self.inner.commit()
    }

    fn abort(&mut self) -> Result<(), StreamError> {
        Seen::count(&self.seen.aborts);
        self.inner.abort()
    }

    fn lag(&self) -> Vec<(TopicPartition, i64)> {
        self.inner.lag()
    }

    fn close(&mut self) -> Result<(), StreamError> {
        self.inner.close()
    }
}

/// The real model, slowed down: its first batch waits until the engine has paused a partition (so back-pressure
/// is certain, not a matter of timing) and then `hold`s a while longer; every batch takes at least `per_batch`.
#[derive(Debug)]
struct SlowModel {
    inner: Arc<dyn Model>,
    seen: Arc<Seen>,
    hold: Duration,
    per_batch: Duration,
    batches: AtomicUsize,
}

impl Model for SlowModel {
    fn info(&self) -> &ModelInfo {
        self.inner.info()
    }

    fn predict_batch(&self, rows: &[f64], out: &mut Predictions) -> Result<(), ModelError> {
        if self.batches.fetch_add(1, Ordering::SeqCst) == 0 {
            // A timeout only means no pause came; the test then fails on the pause count.
            self.seen.wait_for_pause(Duration::from_secs(10));
            std::thread::sleep(self.hold);
        }
        std::thread::sleep(self.per_batch);
        self.inner.predict_batch(rows, out)
    }
}

/// Runs `conf` over a [`Probe`] around the embedded transport, optionally with a [`SlowModel`].
fn run_probed(
    log: &Arc<Log>,
    conf: &Conf,
    fail: Fail,
    slow: Option<(Duration, Duration)>,
) -> (RunSummary, Arc<PipelineMetrics>, Arc<Seen>) {
    let config = conf.parse();
    let seen = Arc::new(Seen::default());
    let pipeline = match slow {
        None => Pipeline::new(config.clone()).unwrap(),
        Some((hold, per_batch)) => {
            let model = Arc::new(SlowModel {
                inner: dipper_models::load(&conf.model, None).unwrap(),
                seen: seen.clone(),
                hold,
                per_batch,
                batches: AtomicUsize::new(0),
            });
            Pipeline::with_plan(config.clone(), ScoringPlan::new(&config, model).unwrap())
        }
    }
    .exit_when_idle(Some(IDLE));
    let metrics = pipeline.metrics();
    seen.metrics.set(metrics.clone()).unwrap();
    let n = log.partitions(INPUT).unwrap();
    for t in [conf.output_topic, conf.dlq_topic] {
        log.create_topic(t, n).unwrap();
    }
    let inner = EmbeddedTransport::new(
        log.clone(),
        &config.group_id(),
        &config.input.topics,
        &[conf.output_topic, conf.dlq_topic],
    )
    .unwrap();
    let probe = Probe {
        inner,
        seen: seen.clone(),
        fail,
    };
    let summary = pipeline.run_with(Box::new(probe), never_stop()).unwrap();
    (summary, metrics, seen)
}

/// Every input event id appears exactly once in the output topic, in per-key order.
fn assert_exactly_once(log: &Log, conf: &Conf, inputs: &[In]) {
    let outputs = read_topic(log, conf.output_topic);
    let counts = id_counts(&outputs);
    let dups: usize = counts.values().map(|c| c - 1).sum();
    let want = ids_by_key(inputs);
    let missing = want
        .values()
        .flatten()
        .filter(|id| !counts.contains_key(*id))
        .count();
    assert_eq!((dups, missing), (0, 0), "duplicates, missing");
    assert_eq!(outputs.len(), inputs.len());
    assert_per_key_order(&outputs, &want);
    assert_all_committed(log, conf);
}

#[test]
fn a_slow_model_pauses_partitions_and_every_output_still_appears_once() {
    let (_dir, log) = new_log(3);
    let inputs = keyed_fraud_inputs("s-", 600, 9);
    produce(&log, &inputs, 0);
    let conf = Conf {
        input: "  event_id_field: event_id\n".into(),
        rest: "processing:\n  workers: 1\n  batch_size: 4\n  max_in_flight_batches: 2\n".into(),
        ..Conf::new(lgbm_model())
    };
    let (summary, metrics, seen) = run_probed(
        &log,
        &conf,
        Fail::Never,
        Some((Duration::ZERO, Duration::from_millis(1))),
    );
    let pauses = seen.pauses.load(Ordering::SeqCst);
    let resumes = seen.resumes.load(Ordering::SeqCst);
    assert!(pauses > 0, "the engine never paused a partition");
    assert!(
        resumes > 0,
        "paused partitions with unread input must be resumed"
    );
    assert!(resumes <= pauses);
    let gauge = *seen.max_paused_gauge.lock().unwrap();
    assert!(gauge >= 1.0, "paused_partitions gauge peaked at {gauge}");
    assert_eq!(metrics.paused_partitions.get(), 0.0, "nothing stays paused");
    assert_eq!(summary.records_in, 600);
    assert_eq!(summary.aborts, 0);
    assert_exactly_once(&log, &conf, &inputs);
}

#[test]
fn exit_when_idle_waits_for_paused_partitions_and_rewound_records() {
    // One partition, one batch in flight: while the model holds its first batch for longer than the idle time,
    // the partition is paused and polls return nothing. Its unread records are not "no new input", and neither
    // are the records a failed commit right after that batch rewinds.
    for fail in [Fail::Never, Fail::Commit(1)] {
        let (_dir, log) = new_log(1);
        let inputs = keyed_fraud_inputs("q-", 120, 3);
        produce(&log, &inputs, 0);
        let conf = Conf {
            input: "  event_id_field: event_id\n".into(),
            rest: "delivery:\n  commit_max_records: 4\n\
                   processing:\n  workers: 1\n  batch_size: 4\n  max_in_flight_batches: 1\n"
                .into(),
            ..Conf::new(lgbm_model())
        };
        let (summary, _, seen) = run_probed(&log, &conf, fail, Some((IDLE * 3, Duration::ZERO)));
        assert!(seen.pauses.load(Ordering::SeqCst) > 0, "{fail:?}");
        assert_eq!(summary.aborts, u64::from(fail != Fail::Never), "{fail:?}");
        assert_eq!(
            summary.predictions,
            120 + 4 * summary.aborts,
            "{fail:?}: stopped with input left unread"
        );
        assert_exactly_once(&log, &conf, &inputs);
    }
}

#[test]
fn a_failed_commit_send_or_poll_aborts_rewinds_and_loses_or_repeats_nothing() {
    for fail in [Fail::Commit(2), Fail::Send(150), Fail::Poll(3)] {
        let (_dir, log) = new_log(3);
        let inputs = keyed_fraud_inputs("r-", 600, 9);
        produce(&log, &inputs, 0);
        // Commits every 50 records and never by time, so the second commit falls mid-stream.
        let conf = Conf {
            input: "  event_id_field: event_id\n".into(),
            rest: "delivery:\n  commit_max_records: 50\n  commit_interval_ms: 600000\n\
                   processing:\n  workers: 1\n  batch_size: 10\n"
                .into(),
            ..Conf::new(lgbm_model())
        };
        let (summary, metrics, seen) = run_probed(&log, &conf, fail, None);
        assert_eq!(summary.aborts, 1, "{fail:?}");
        assert_eq!(metrics.transactions_aborted.get(), 1, "{fail:?}");
        assert_eq!(seen.aborts.load(Ordering::SeqCst), 1, "{fail:?}");
        assert_eq!(
            metrics.commit_failures.get(),
            u64::from(matches!(fail, Fail::Commit(_))),
            "{fail:?}"
        );
        assert_eq!(
            summary.records_in,
            summary.predictions + summary.dead_lettered
        );
        if let Fail::Commit(_) = fail {
            // The aborted unit (at least 50 records) was consumed twice.
            assert!(summary.records_in >= 650, "{fail:?}: {summary:?}");
        }
        assert_exactly_once(&log, &conf, &inputs);
        // The aborted unit's transaction sequence number never became visible; every other one did.
        let seqs: BTreeSet<u64> = read_topic(&log, "scores")
            .iter()
            .map(|(_, r)| header(r, "dipper.txn.seq").unwrap().parse().unwrap())
            .collect();
        let max = *seqs.last().unwrap();
        assert_eq!(
            seqs.len() as u64,
            max,
            "{fail:?}: exactly one of 0..={max} missing: {seqs:?}"
        );
        assert_eq!(summary.commits, max, "{fail:?}");
    }
}

#[test]
fn a_failed_final_commit_is_an_error_not_a_success_and_the_next_run_redoes_it() {
    let (_dir, log) = new_log(3);
    let inputs = keyed_fraud_inputs("f-", 200, 9);
    produce(&log, &inputs, 0);
    // No commit is due before the run stops, so the first commit is the final one.
    let conf = Conf {
        input: "  event_id_field: event_id\n".into(),
        rest: "delivery:\n  commit_max_records: 100000\n  commit_interval_ms: 600000\n".into(),
        ..Conf::new(lgbm_model())
    };
    let config = conf.parse();
    let pipeline = Pipeline::new(config.clone())
        .unwrap()
        .exit_when_idle(Some(IDLE));
    for t in [conf.output_topic, conf.dlq_topic] {
        log.create_topic(t, 3).unwrap();
    }
    let seen = Arc::new(Seen::default());
    let probe = Probe {
        inner: EmbeddedTransport::new(
            log.clone(),
            &config.group_id(),
            &config.input.topics,
            &[conf.output_topic, conf.dlq_topic],
        )
        .unwrap(),
        seen: seen.clone(),
        fail: Fail::Commit(1),
    };
    let result = pipeline.run_with(Box::new(probe), never_stop());
    assert_eq!(seen.commits.load(Ordering::SeqCst), 1);
    let err = result.expect_err("the final commit failed: the run must not report success");
    assert!(err.to_string().contains("injected commit failure"), "{err}");
    assert!(
        read_topic(&log, "scores").is_empty(),
        "nothing was committed"
    );
    assert_eq!(log.committed(&config.group_id(), INPUT, 0).unwrap(), None);
    // Nothing was lost either: the next run does it all.
    let (summary, _) = run(&log, &conf);
    assert_eq!(summary.records_in, 200);
    assert_exactly_once(&log, &conf, &inputs);
}

/// A model with a bug: it panics on its second batch.
#[derive(Debug)]
struct PanickingModel {
    inner: Arc<dyn Model>,
    batches: AtomicUsize,
}

impl Model for PanickingModel {
    fn info(&self) -> &ModelInfo {
        self.inner.info()
    }

    fn predict_batch(&self, rows: &[f64], out: &mut Predictions) -> Result<(), ModelError> {
        if self.batches.fetch_add(1, Ordering::SeqCst) == 1 {
            panic!("model bug");
        }
        self.inner.predict_batch(rows, out)
    }
}

#[test]
fn a_panicking_scoring_thread_stops_the_pipeline_with_an_error_and_commits_nothing_after_it() {
    let (_dir, log) = new_log(1);
    let inputs = keyed_fraud_inputs("p", 600, 1);
    produce(&log, &inputs, 0);
    let mut conf = Conf::new(lgbm_model());
    conf.input = "  event_id_field: event_id\n".into();
    conf.rest = "processing:\n  batch_size: 100\n  workers: 1\n".into();
    let config = conf.parse();
    let model = Arc::new(PanickingModel {
        inner: dipper_models::load(&conf.model, None).unwrap(),
        batches: AtomicUsize::new(0),
    });
    let pipeline = Pipeline::with_plan(config.clone(), ScoringPlan::new(&config, model).unwrap())
        .exit_when_idle(Some(IDLE));
    let err = pipeline
        .run_on_log(log.clone(), never_stop())
        .expect_err("a worker panic must fail the run, not stall it");
    assert!(err.to_string().contains("model bug"), "{err}");
    // Whatever was committed before the panic is a prefix; a rerun with a sound model completes it
    // exactly once.
    let (summary, _) = run(&log, &conf);
    assert!(
        summary.records_in > 0 && summary.records_in < 600,
        "{summary:?}"
    );
    assert_exactly_once(&log, &conf, &inputs);
}

//! Guards the live model swap (`model.registry`): how long from `promote` until the first record is scored
//! by the new version, and whether scoring latency during a swap stays within 2x of steady state (the
//! registry issue's target). Not a criterion bench: one run of a real pipeline on the embedded log (under
//! `/dev/shm` when it exists) fed at a steady rate, with four promotions alternating between the LightGBM
//! and XGBoost fraud models of `fixtures/interop`.
//!
//! Prints, per swap, promote -> first output of the new version, and the p50/p99 of the outputs'
//! `latency_us` (poll -> encoded) in steady state (outputs more than 1 s away from any swap) and during swaps
//! (outputs from 200 ms before to 1 s after each promotion).
//!
//! Run: `cargo bench -p dipper-stream --bench swap` (`-- --rate N` events/s, default 20000;
//! `-- --poll-ms N`, default 100). Quick check: `cargo bench -p dipper-stream --bench swap -- --test`.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use dipper_log::{Log, Options, Record};
use dipper_registry::{EmbeddedStore, PublishRequest, Registry, StageChange};
use dipper_stream::transport::embedded::kafka_partition;
use dipper_stream::{Pipeline, PipelineConfig};
use serde_json::Value;

fn repo_path(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").join(p)
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn arg(name: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn percentile(v: &mut [f64], q: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    v[((v.len() as f64 - 1.0) * q).round() as usize]
}

fn main() {
    let quick = std::env::args().any(|a| a == "--test");
    let rate = arg("--rate", if quick { 2000 } else { 20_000 });
    let poll_ms = arg("--poll-ms", 100);
    let swaps = if quick { 1 } else { 4 };
    let shm = Path::new("/dev/shm");
    let dir = if shm.is_dir() {
        tempfile::tempdir_in(shm).unwrap()
    } else {
        tempfile::tempdir().unwrap()
    };
    let log_dir = dir.path().join("log");
    let mut reg =
        Registry::open(EmbeddedStore::new(log_dir.join("registry"), "_dipper_models").unwrap())
            .unwrap();
    let models = [
        ("fixtures/interop/fraud_lgbm/model.txt", "lightgbm"),
        ("fixtures/interop/fraud_xgb/model.json", "xgboost"),
    ];
    for (file, format) in models {
        reg.publish(&PublishRequest {
            name: "fraud".into(),
            artifact: std::fs::read(repo_path(file)).unwrap(),
            format: format.into(),
            features: vec![],
            source: serde_json::json!({}),
            chunk_bytes: 512 * 1024,
        })
        .unwrap();
    }
    reg.change("fraud", StageChange::Promote(1)).unwrap();

    let yaml = format!(
        "name: swap-bench
transport: {{ embedded: {{ dir: {} }} }}
input: {{ topics: [tx], event_id_field: event_id }}
model: {{ registry: fraud, registry_poll_ms: {poll_ms} }}
output: {{ topic: scores }}
dead_letter: {{ topic: dlq }}
delivery: {{ commit_interval_ms: 50 }}
processing: {{ workers: 1 }}
",
        log_dir.display()
    );
    let pipeline = Pipeline::new(PipelineConfig::parse(&yaml, "swap-bench.yaml").unwrap()).unwrap();
    let log = Arc::new(Log::open(&log_dir, Options::default()).unwrap());
    log.create_topic("tx", 4).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let run = {
        let (log, stop) = (log.clone(), stop.clone());
        std::thread::spawn(move || pipeline.run_on_log(log, stop))
    };

    // The feeder: `rate` events/s in 10 ms slices.
    let rows: Vec<serde_json::Map<String, Value>> =
        std::fs::read_to_string(repo_path("fixtures/interop/fraud_lgbm/input.jsonl"))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
    let feeding = Arc::new(AtomicBool::new(true));
    let feeder = {
        let (log, feeding) = (log.clone(), feeding.clone());
        std::thread::spawn(move || {
            let per_slice = (rate / 100).max(1) as usize;
            let mut n = 0usize;
            let mut next = Instant::now();
            while feeding.load(Ordering::Relaxed) {
                let mut txn = log.begin();
                for _ in 0..per_slice {
                    let mut row = rows[n % rows.len()].clone();
                    row.insert("event_id".into(), format!("e{n}").into());
                    let key = format!("card-{}", n % 1009);
                    let p = kafka_partition(key.as_bytes(), 4);
                    txn.append(
                        "tx",
                        p,
                        Record::keyed(key, Value::Object(row).to_string(), now_ms()),
                    )
                    .unwrap();
                    n += 1;
                }
                log.commit(txn).unwrap();
                next += Duration::from_millis(10);
                if let Some(d) = next.checked_duration_since(Instant::now()) {
                    std::thread::sleep(d);
                }
            }
            n
        })
    };

    let settle = Duration::from_secs(if quick { 1 } else { 3 });
    std::thread::sleep(settle);
    let mut promotions = Vec::new();
    for i in 0..swaps {
        let to = if i % 2 == 0 { 2 } else { 1 };
        let at = now_ms();
        reg.change("fraud", StageChange::Promote(to)).unwrap();
        promotions.push((at, to.to_string()));
        // Spread the promotions over the poll cycle, so the figures are not all one phase of it.
        let jitter = (i as u64 * 2 + 1) * poll_ms / (2 * swaps as u64);
        std::thread::sleep(settle + Duration::from_millis(jitter));
    }
    feeding.store(false, Ordering::Relaxed);
    let produced = feeder.join().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let outputs = loop {
        let mut out = Vec::new();
        for p in 0..4 {
            let mut at = 0;
            loop {
                let batch = log.read("scores", p, at, 10_000).unwrap();
                let Some(last) = batch.last() else { break };
                at = last.offset + 1;
                out.extend(batch.into_iter().map(|r| {
                    serde_json::from_slice::<Value>(r.value.as_deref().unwrap()).unwrap()
                }));
            }
        }
        if out.len() >= produced || Instant::now() > deadline {
            break out;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    stop.store(true, Ordering::Relaxed);
    run.join().unwrap().unwrap();
    assert_eq!(outputs.len(), produced, "every event scored once");

    println!(
        "swap bench: {produced} events at {rate}/s, registry poll {poll_ms} ms, {swaps} promotions"
    );
    for (at, version) in &promotions {
        let first = outputs
            .iter()
            .filter(|v| v["model_version"] == version.as_str())
            .filter_map(|v| v["processing_time"].as_i64())
            .filter(|&t| t >= *at)
            .min();
        match first {
            Some(t) => println!(
                "  promote v{version}: first output of v{version} after {} ms",
                t - at
            ),
            None => println!("  promote v{version}: no output of v{version}"),
        }
    }
    let near = |t: i64, before: i64, after: i64| {
        promotions
            .iter()
            .any(|(at, _)| t >= at - before && t <= at + after)
    };
    let (mut steady, mut during) = (Vec::new(), Vec::new());
    for v in &outputs {
        let (Some(t), Some(l)) = (v["processing_time"].as_i64(), v["latency_us"].as_f64()) else {
            continue;
        };
        if near(t, 200, 1000) {
            during.push(l);
        } else if !near(t, 1000, 1000) {
            steady.push(l);
        }
    }
    let (s50, s99) = (percentile(&mut steady, 0.5), percentile(&mut steady, 0.99));
    let (d50, d99) = (percentile(&mut during, 0.5), percentile(&mut during, 0.99));
    println!(
        "  scoring latency (poll -> encoded): steady p50 {s50:.0} us p99 {s99:.0} us ({} outputs); \
         during swaps p50 {d50:.0} us p99 {d99:.0} us ({} outputs); p99 ratio {:.2} (target <= 2)",
        steady.len(),
        during.len(),
        d99 / s99
    );
}

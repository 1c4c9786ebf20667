//! `dipper demo`: a self-contained fraud-detection walkthrough on synthetic card transactions.
//!
//! 1. [`generator`] simulates a population of payment cards: a labelled history is written to a
//!    JSON-lines file and a model is trained on it with `dipper train` (the same command a user runs).
//! 2. A scoring pipeline (the same `dipper run` engine, config written to `pipeline.yaml`) consumes the
//!    live `transactions` topic and writes `fraud-scores`, with bad events in `transactions-dlq`.
//! 3. The generator keeps producing live events at `--rate` per second; [`dashboard`] shows throughput,
//!    latency percentiles, the flagged share, precision/recall against the generator's truth, and sample
//!    alerts, until `--duration` ends or Ctrl-C. It ends by checking that every event is accounted for.
//!
//! With no `--brokers` everything runs on the embedded log in one process; with `--brokers` the same
//! runs against Kafka.

mod dashboard;
// Part of the generator's API (field lists, config) is only used by its tests.
#[allow(dead_code)]
pub mod generator;
mod io;

use std::collections::HashSet;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Args;
use dipper_log::Log;
use dipper_stream::{Pipeline, PipelineConfig};

use generator::{FraudGenerator, GeneratorConfig};
use io::{DemoLog, EmbeddedDemoLog, KafkaDemoLog};

pub const INPUT_TOPIC: &str = "transactions";
pub const OUTPUT_TOPIC: &str = "fraud-scores";
pub const DLQ_TOPIC: &str = "transactions-dlq";
const PARTITIONS: u32 = 4;

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Seconds of live scoring (0 = until Ctrl-C).
    #[arg(long, default_value_t = 30)]
    pub duration: u64,
    /// Live events per second.
    #[arg(long, default_value_t = 5000)]
    pub rate: u64,
    /// Labelled history events to train on.
    #[arg(long, default_value_t = 100_000)]
    pub history: usize,
    /// Working directory for the history, model, pipeline file and embedded log (must be new or empty;
    /// default: a fresh directory under the system temp dir).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Run against Kafka (host:port) instead of the embedded log.
    #[arg(long)]
    pub brokers: Option<String>,
    /// Delivery guarantee of the scoring pipeline.
    #[arg(long, default_value = "exactly-once", value_parser = ["exactly-once", "at-least-once"])]
    pub guarantee: String,
    /// Probability of fraud at or above which an event is flagged.
    #[arg(long, default_value_t = 0.5)]
    pub threshold: f64,
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
}

/// Shared between the generator thread and the dashboard.
pub struct Truth {
    /// Event ids of frauds produced and not yet seen scored.
    pub frauds: Mutex<HashSet<String>>,
    pub produced: AtomicU64,
    pub malformed: AtomicU64,
}

pub fn run(args: DemoArgs) -> Result<ExitCode> {
    let dir = prepare_dir(args.dir.as_deref())?;
    println!("dipper demo: working in {}", dir.display());
    let gen_config = GeneratorConfig {
        cards: 3000,
        fraud_rate: 0.02,
        events_per_card_per_day: 4.0,
    };
    let mut generator = FraudGenerator::new(args.seed, gen_config);

    // 1. History and training.
    let started = dipper_stream::score::now_millis() - 40 * 86_400_000;
    let (history, clock) = write_history(&mut generator, &dir, args.history, started)?;
    let model = dir.join("model.json");
    train(&history, &model, args.seed)?;

    // 2. The pipeline.
    let pipeline_file = dir.join("pipeline.yaml");
    std::fs::write(&pipeline_file, pipeline_yaml(&args, &dir, &model))
        .with_context(|| format!("writing {}", pipeline_file.display()))?;
    let config = PipelineConfig::load(&pipeline_file)?;
    let pipeline = Pipeline::new(config)?;
    let metrics = pipeline.metrics();
    let stop_pipeline = Arc::new(AtomicBool::new(false));
    let (producer, viewer, runner): (Box<dyn DemoLog>, Box<dyn DemoLog>, _) = match &args.brokers {
        None => {
            let log = Arc::new(Log::open(dir.join("log"), dipper_log::Options::default())?);
            for t in [INPUT_TOPIC, OUTPUT_TOPIC, DLQ_TOPIC] {
                log.create_topic(t, PARTITIONS)?;
            }
            let (l, stop) = (log.clone(), stop_pipeline.clone());
            let runner = std::thread::Builder::new()
                .name("pipeline".into())
                .spawn(move || pipeline.run_on_log(l, stop))?;
            (
                Box::new(EmbeddedDemoLog::new(log.clone())),
                Box::new(EmbeddedDemoLog::new(log)),
                runner,
            )
        }
        Some(brokers) => {
            let k = KafkaDemoLog::new(brokers)?;
            let p = PARTITIONS as i32;
            k.create_topics(&[(INPUT_TOPIC, p), (OUTPUT_TOPIC, p), (DLQ_TOPIC, p)])?;
            let stop = stop_pipeline.clone();
            let runner = std::thread::Builder::new()
                .name("pipeline".into())
                .spawn(move || pipeline.run(stop))?;
            (Box::new(k), Box::new(KafkaDemoLog::new(brokers)?), runner)
        }
    };
    println!(
        "scoring pipeline running ({}): {INPUT_TOPIC} -> model -> {OUTPUT_TOPIC}, bad events -> {DLQ_TOPIC}",
        args.guarantee
    );

    // 3. Live traffic and the dashboard.
    let interrupted = crate::run::stop_on_signals()?;
    let stop_traffic = Arc::new(AtomicBool::new(false));
    let truth = Arc::new(Truth {
        frauds: Mutex::new(HashSet::new()),
        produced: AtomicU64::new(0),
        malformed: AtomicU64::new(0),
    });
    let traffic = {
        let (stop, truth, rate) = (stop_traffic.clone(), truth.clone(), args.rate);
        std::thread::Builder::new()
            .name("traffic".into())
            .spawn(move || live_traffic(generator, clock, producer, rate, &stop, &truth))?
    };
    let deadline = (args.duration > 0).then(|| Instant::now() + Duration::from_secs(args.duration));
    let mut board =
        dashboard::Dashboard::new(viewer, metrics.clone(), truth.clone(), args.threshold);
    println!(
        "live for {} (Ctrl-C stops)\n",
        match deadline {
            Some(_) => format!("{} s", args.duration),
            None => "ever".into(),
        }
    );
    while !interrupted.load(Ordering::Relaxed) && deadline.is_none_or(|d| Instant::now() < d) {
        if runner.is_finished() {
            break;
        }
        std::thread::sleep(Duration::from_secs(1));
        board.tick()?;
    }

    // 4. Drain and account for every event.
    stop_traffic.store(true, Ordering::Relaxed);
    traffic
        .join()
        .map_err(|_| anyhow::anyhow!("traffic thread panicked"))??;
    let produced = truth.produced.load(Ordering::Relaxed);
    let wait_until = Instant::now() + Duration::from_secs(20);
    while metrics.records_in.get() < produced
        && Instant::now() < wait_until
        && !runner.is_finished()
    {
        std::thread::sleep(Duration::from_millis(50));
    }
    stop_pipeline.store(true, Ordering::Relaxed);
    let summary = runner
        .join()
        .map_err(|_| anyhow::anyhow!("pipeline thread panicked"))??;
    board.tick()?;
    board.finish(produced, &summary, &dir);
    if summary.records_in != summary.predictions + summary.dead_lettered
        || summary.records_in < produced
    {
        bail!(
            "not every event was accounted for: {produced} produced, {} scored, {} dead-lettered",
            summary.predictions,
            summary.dead_lettered
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn prepare_dir(dir: Option<&Path>) -> Result<PathBuf> {
    let dir = match dir {
        Some(d) => d.to_path_buf(),
        None => std::env::temp_dir().join(format!(
            "dipper-demo-{}-{}",
            std::process::id(),
            dipper_stream::score::now_millis()
        )),
    };
    if dir.exists() && std::fs::read_dir(&dir)?.next().is_some() {
        bail!(
            "{} is not empty: pass a new or empty --dir (the demo creates topics from scratch)",
            dir.display()
        );
    }
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(dir)
}

/// Writes `n` labelled events on the simulated clock; returns the file and the clock.
fn write_history(
    generator: &mut FraudGenerator,
    dir: &Path,
    n: usize,
    mut clock: i64,
) -> Result<(PathBuf, i64)> {
    let path = dir.join("history.jsonl");
    let mut w = BufWriter::new(std::fs::File::create(&path)?);
    let mut frauds = 0;
    for _ in 0..n {
        clock = generator.next_arrival(clock);
        let e = generator.next_event(clock);
        frauds += usize::from(e.is_fraud);
        w.write_all(&e.labelled_json())?;
        w.write_all(b"\n")?;
    }
    w.flush()?;
    println!(
        "history: {n} labelled card transactions ({frauds} frauds, {:.2}%) -> {}",
        100.0 * frauds as f64 / n.max(1) as f64,
        path.display()
    );
    Ok((path, clock))
}

fn train(history: &Path, model: &Path, seed: u64) -> Result<()> {
    let exe = std::env::current_exe().context("finding the dipper executable")?;
    let args: Vec<String> = [
        "train",
        "--input",
        &history.display().to_string(),
        "--label",
        generator::LABEL,
        "--algorithm",
        "gbm",
        "--exclude",
        "event_id,card_id,merchant_id,ts",
        "--holdout",
        "0.2",
        "--seed",
        &seed.to_string(),
        "--quiet",
        "--output",
        &model.display().to_string(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    println!("\ntraining: dipper {}", args.join(" "));
    let status = Command::new(exe)
        .args(&args)
        .status()
        .context("running dipper train")?;
    if !status.success() {
        bail!("dipper train failed ({status})");
    }
    println!();
    Ok(())
}

fn pipeline_yaml(args: &DemoArgs, dir: &Path, model: &Path) -> String {
    let transport = match &args.brokers {
        None => format!(
            "transport:\n  embedded:\n    dir: {}\n",
            json(&dir.join("log").display().to_string())
        ),
        Some(b) => format!(
            "transport:\n  kafka:\n    brokers: {}\n    transactional_id: dipper-demo-{}\n",
            json(b),
            std::process::id()
        ),
    };
    format!(
        "# Written by `dipper demo`; run it yourself with `dipper run {}`.\n\
         name: fraud-demo\n{transport}\
         input:\n  topics: [{INPUT_TOPIC}]\n  event_id_field: event_id\n\
         model:\n  path: {}\n  name: fraud-gbm\n\
         output:\n  topic: {OUTPUT_TOPIC}\n  pass_through: [card_id, amount, merchant_category]\n\
         dead_letter:\n  topic: {DLQ_TOPIC}\n\
         delivery:\n  guarantee: {}\n  commit_interval_ms: 100\n",
        dir.join("pipeline.yaml").display(),
        json(&model.display().to_string()),
        args.guarantee
    )
}

fn json(s: &str) -> String {
    serde_json::to_string(s).expect("strings serialise")
}

/// Produces live events at `rate`/s on the simulated clock until `stop`; one in 5000 is malformed to
/// show the dead-letter path.
fn live_traffic(
    mut generator: FraudGenerator,
    mut clock: i64,
    mut log: Box<dyn DemoLog>,
    rate: u64,
    stop: &AtomicBool,
    truth: &Truth,
) -> Result<()> {
    let started = Instant::now();
    let mut sent: u64 = 0;
    let mut chunk = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        let due = (started.elapsed().as_secs_f64() * rate as f64) as u64;
        let n = due.saturating_sub(sent).min(rate.max(100));
        chunk.clear();
        for _ in 0..n {
            clock = generator.next_arrival(clock);
            let e = generator.next_event(clock);
            sent += 1;
            if sent.is_multiple_of(5000) {
                truth.malformed.fetch_add(1, Ordering::Relaxed);
                let bad = match (sent / 5000) % 2 {
                    0 => format!("{{\"event_id\":\"bad-{sent}\",\"amount\":\"n/a\"}}"),
                    _ => format!("{{\"event_id\":\"bad-{sent}\",\"amount\":12.5,"),
                };
                chunk.push((e.key.clone(), bad.into_bytes()));
                continue;
            }
            if e.is_fraud {
                if let Some(id) = event_id(&e.json) {
                    truth
                        .frauds
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .insert(id);
                }
            }
            chunk.push((e.key, e.json));
        }
        if !chunk.is_empty() {
            log.produce(INPUT_TOPIC, &chunk)?;
            truth
                .produced
                .fetch_add(chunk.len() as u64, Ordering::Relaxed);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    Ok(())
}

/// The `event_id` string of a generated event (always the first field).
fn event_id(json: &[u8]) -> Option<String> {
    let rest = json.strip_prefix(b"{\"event_id\":\"")?;
    let end = rest.iter().position(|&b| b == b'"')?;
    String::from_utf8(rest[..end].to_vec()).ok()
}

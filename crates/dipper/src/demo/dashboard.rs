//! The demo's live view: one line per second with throughput, latency percentiles (over the last
//! second, from the pipeline's own histograms), the flagged share and precision/recall against the
//! generator's truth, plus a few sample alerts; and the closing summary.

use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Result;
use dipper_monitor::{HistogramSnapshot, PipelineMetrics};
use dipper_stream::RunSummary;
use serde::Deserialize;

use super::io::DemoLog;
use super::{Truth, OUTPUT_TOPIC};

#[derive(Deserialize)]
struct Score {
    event_id: String,
    #[serde(default)]
    card_id: Option<String>,
    #[serde(default)]
    amount: Option<f64>,
    #[serde(default)]
    merchant_category: Option<String>,
    #[serde(default)]
    probabilities: Option<std::collections::HashMap<String, f64>>,
}

pub struct Dashboard {
    log: Box<dyn DemoLog>,
    metrics: Arc<PipelineMetrics>,
    truth: Arc<Truth>,
    threshold: f64,
    started: Instant,
    last_in: u64,
    last_tick: Instant,
    last_latency: HistogramSnapshot,
    last_e2e: HistogramSnapshot,
    scored: u64,
    flagged: u64,
    true_pos: u64,
    frauds_seen: u64,
}

fn ms(seconds: Option<f64>) -> String {
    match seconds {
        Some(s) if s < 0.001 => format!("{:.0} µs", s * 1e6),
        Some(s) => format!("{:.1} ms", s * 1e3),
        None => "-".into(),
    }
}

fn ratio(a: u64, b: u64) -> String {
    if b == 0 {
        "-".into()
    } else {
        format!("{:.2}", a as f64 / b as f64)
    }
}

impl Dashboard {
    pub fn new(
        log: Box<dyn DemoLog>,
        metrics: Arc<PipelineMetrics>,
        truth: Arc<Truth>,
        threshold: f64,
    ) -> Self {
        Dashboard {
            last_latency: metrics.scoring_latency.snapshot(),
            last_e2e: metrics.end_to_end_latency.snapshot(),
            log,
            metrics,
            truth,
            threshold,
            started: Instant::now(),
            last_in: 0,
            last_tick: Instant::now(),
            scored: 0,
            flagged: 0,
            true_pos: 0,
            frauds_seen: 0,
        }
    }

    /// Reads new predictions and prints one status line (and up to two alerts).
    pub fn tick(&mut self) -> Result<()> {
        let mut alerts = Vec::new();
        loop {
            let batch = self.log.read_new(OUTPUT_TOPIC, 50_000)?;
            if batch.is_empty() {
                break;
            }
            let mut frauds = self.truth.frauds.lock().unwrap_or_else(|e| e.into_inner());
            for value in batch {
                let Ok(s) = serde_json::from_slice::<Score>(&value) else {
                    continue;
                };
                let p = s
                    .probabilities
                    .as_ref()
                    .and_then(|p| p.get("1"))
                    .copied()
                    .unwrap_or(0.0);
                let is_fraud = frauds.remove(&s.event_id);
                self.scored += 1;
                self.frauds_seen += u64::from(is_fraud);
                if p >= self.threshold {
                    self.flagged += 1;
                    self.true_pos += u64::from(is_fraud);
                    if alerts.len() < 2 {
                        alerts.push((s, p, is_fraud));
                    }
                }
            }
        }
        let m = &self.metrics;
        let now = Instant::now();
        let records_in = m.records_in.get();
        let rate =
            (records_in - self.last_in) as f64 / now.duration_since(self.last_tick).as_secs_f64();
        let lat = m.scoring_latency.delta_since(&self.last_latency);
        let e2e = m.end_to_end_latency.delta_since(&self.last_e2e);
        self.last_latency = m.scoring_latency.snapshot();
        self.last_e2e = m.end_to_end_latency.snapshot();
        self.last_in = records_in;
        self.last_tick = now;
        let dead: u64 = m.dead_lettered.iter().map(|c| c.get()).sum();
        println!(
            "{:>4}s  {:>7.0} events/s  scoring p50 {:>7} p99 {:>7}  end-to-end p99 {:>7}  \
             flagged {:>5.2}%  precision {} recall {}  dead-lettered {}",
            self.started.elapsed().as_secs(),
            rate,
            ms(lat.quantile(0.5)),
            ms(lat.quantile(0.99)),
            ms(e2e.quantile(0.99)),
            100.0 * self.flagged as f64 / self.scored.max(1) as f64,
            ratio(self.true_pos, self.flagged),
            ratio(self.true_pos, self.frauds_seen),
            dead,
        );
        for (s, p, is_fraud) in alerts {
            println!(
                "       ALERT card {} {:>9.2} {:<14} p(fraud)={:.3}  {}",
                s.card_id.as_deref().unwrap_or("?"),
                s.amount.unwrap_or(f64::NAN),
                s.merchant_category.as_deref().unwrap_or("?"),
                p,
                if is_fraud {
                    "(truly fraud)"
                } else {
                    "(actually legitimate)"
                }
            );
        }
        Ok(())
    }

    /// The closing summary.
    pub fn finish(&self, produced: u64, summary: &RunSummary, dir: &Path) {
        let m = &self.metrics;
        let malformed = self.truth.malformed.load(Ordering::Relaxed);
        println!(
            "\n{produced} events produced ({malformed} deliberately malformed); the pipeline read {}: \
             {} predictions + {} dead-lettered{}",
            summary.records_in,
            summary.predictions,
            summary.dead_lettered,
            if summary.records_in == summary.predictions + summary.dead_lettered
                && summary.records_in >= produced
            {
                " — every event accounted for"
            } else {
                " — NOT all accounted for"
            }
        );
        println!(
            "flagged {} of {} scored at p >= {}: precision {}, recall {}; {} commits",
            self.flagged,
            self.scored,
            self.threshold,
            ratio(self.true_pos, self.flagged),
            ratio(self.true_pos, self.frauds_seen),
            summary.commits
        );
        println!(
            "scoring latency p50 {} p99 {} (whole run)",
            ms(m.scoring_latency.quantile(0.5)),
            ms(m.scoring_latency.quantile(0.99))
        );
        println!("\nfiles: {}", dir.display());
        println!(
            "  pipeline.yaml  the scoring pipeline (dipper run {}/pipeline.yaml)",
            dir.display()
        );
        println!("  model.json     the trained model; history.jsonl its training data");
        if dir.join("log").exists() {
            println!(
                "  log/           the embedded log; e.g. dipper consume --log {}/log --topic {OUTPUT_TOPIC} --limit 3",
                dir.display()
            );
        }
    }
}

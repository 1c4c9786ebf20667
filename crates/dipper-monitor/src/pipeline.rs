//! Typed telemetry of one running stream pipeline ([`PipelineMetrics`]) and
//! its Prometheus exposition, alone ([`PipelineMetrics::render`]) or together
//! with the other pipelines of the process ([`Registry`], [`render_all`]).
//!
//! Every series carries `pipeline="<name>"`. Counters, gauges and histograms
//! are lock-free and updated per record; the consumer-lag map and the model
//! info sit behind a mutex because they change per poll or per model load.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use crate::exposition::{label_pair, write_header, write_histogram, write_sample, MetricType};
use crate::metric::{Counter, Gauge, Histogram};

/// Why a record went to the dead-letter topic instead of being scored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DeadLetterReason {
    /// The input payload could not be decoded.
    Decode,
    /// The decoded record did not yield a valid feature row.
    Features,
    /// The model failed on the row.
    Model,
    /// The prediction could not be encoded.
    Encode,
    /// The record or its output exceeded the size limit.
    Oversize,
}

impl DeadLetterReason {
    /// Every reason, in exposition order.
    pub const ALL: [DeadLetterReason; 5] = [
        DeadLetterReason::Decode,
        DeadLetterReason::Features,
        DeadLetterReason::Model,
        DeadLetterReason::Encode,
        DeadLetterReason::Oversize,
    ];

    /// The `reason` label value.
    pub fn as_str(self) -> &'static str {
        match self {
            DeadLetterReason::Decode => "decode",
            DeadLetterReason::Features => "features",
            DeadLetterReason::Model => "model",
            DeadLetterReason::Encode => "encode",
            DeadLetterReason::Oversize => "oversize",
        }
    }

    /// Position in [`ALL`](Self::ALL) (and in [`PipelineMetrics::dead_lettered`]).
    pub fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for DeadLetterReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The loaded model, exposed as `dipper_model_info{model,version,format} 1`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelInfo {
    /// Model name.
    pub name: String,
    /// Model version.
    pub version: String,
    /// Model format, e.g. `lightgbm`, `xgboost`, `onnx`.
    pub format: String,
}

/// When this process started, as seen by this crate: the first time any
/// pipeline was created or rendered (there is no portable std way to read
/// the real start time).
fn process_start() -> SystemTime {
    static START: OnceLock<SystemTime> = OnceLock::new();
    *START.get_or_init(SystemTime::now)
}

fn unix_seconds(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The metrics of one running pipeline. Share it as `Arc<PipelineMetrics>`;
/// everything is updated through `&self`.
#[derive(Debug)]
pub struct PipelineMetrics {
    name: String,
    /// `pipeline="<escaped name>"`, rendered once.
    labels: String,
    started: Instant,
    started_at: SystemTime,
    /// Records consumed.
    pub records_in: Counter,
    /// Predictions written.
    pub records_out: Counter,
    /// Dead-lettered records, indexed by [`DeadLetterReason::index`]; use
    /// [`dead_letter`](Self::dead_letter) to count one.
    pub dead_lettered: [Counter; 5],
    /// Micro-batches processed.
    pub batches: Counter,
    /// Output transactions committed.
    pub transactions_committed: Counter,
    /// Output transactions aborted.
    pub transactions_aborted: Counter,
    /// Commits (offsets or transactions) that failed.
    pub commit_failures: Counter,
    /// Consumer-group rebalances seen.
    pub rebalances: Counter,
    /// Live swaps to a new champion from the model registry.
    pub model_swaps: Counter,
    /// New champions that could not serve (fetch, load or schema failed); the old model kept serving.
    pub model_swaps_rejected: Counter,
    /// Challengers' predictions written to the shadow topic.
    pub shadow_records_out: Counter,
    /// Records a challenger could not score (only counted; dead letters are the champion's).
    pub shadow_records_skipped: Counter,
    /// Payload bytes consumed.
    pub bytes_in: Counter,
    /// Payload bytes produced.
    pub bytes_out: Counter,
    /// Per record: consumed -> output produced, in seconds.
    pub scoring_latency: Histogram,
    /// Per record: event timestamp -> output produced, in seconds.
    pub end_to_end_latency: Histogram,
    /// One micro-batch through decode + model + encode, in seconds.
    pub batch_latency: Histogram,
    /// One commit, in seconds.
    pub commit_latency: Histogram,
    /// Partitions currently assigned to this consumer.
    pub assigned_partitions: Gauge,
    /// Assigned partitions currently paused (back-pressure).
    pub paused_partitions: Gauge,
    /// Records consumed but not yet committed.
    pub in_flight_records: Gauge,
    lag: Mutex<BTreeMap<(String, u32), i64>>,
    model: Mutex<Option<ModelInfo>>,
}

impl PipelineMetrics {
    /// Metrics for the pipeline called `name`, all at zero.
    pub fn new(name: impl Into<String>) -> Self {
        let name = name.into();
        process_start();
        Self {
            labels: label_pair("pipeline", &name),
            name,
            started: Instant::now(),
            started_at: SystemTime::now(),
            records_in: Counter::new(),
            records_out: Counter::new(),
            dead_lettered: [const { Counter::new() }; 5],
            batches: Counter::new(),
            transactions_committed: Counter::new(),
            transactions_aborted: Counter::new(),
            commit_failures: Counter::new(),
            rebalances: Counter::new(),
            model_swaps: Counter::new(),
            model_swaps_rejected: Counter::new(),
            shadow_records_out: Counter::new(),
            shadow_records_skipped: Counter::new(),
            bytes_in: Counter::new(),
            bytes_out: Counter::new(),
            scoring_latency: Histogram::new(),
            end_to_end_latency: Histogram::new(),
            batch_latency: Histogram::new(),
            commit_latency: Histogram::new(),
            assigned_partitions: Gauge::new(),
            paused_partitions: Gauge::new(),
            in_flight_records: Gauge::new(),
            lag: Mutex::new(BTreeMap::new()),
            model: Mutex::new(None),
        }
    }

    /// The pipeline name (the `pipeline` label value).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Counts one dead-lettered record.
    #[inline]
    pub fn dead_letter(&self, reason: DeadLetterReason) {
        self.dead_lettered[reason.index()].inc();
    }

    /// Dead-lettered records so far for `reason`.
    pub fn dead_lettered_count(&self, reason: DeadLetterReason) -> u64 {
        self.dead_lettered[reason.index()].get()
    }

    /// Sets the consumer lag of one partition (records behind the high
    /// watermark). A negative lag means "unknown": it is exposed as given
    /// but left out of the total.
    pub fn set_lag(&self, topic: &str, partition: u32, lag: i64) {
        lock(&self.lag).insert((topic.to_owned(), partition), lag);
    }

    /// Forgets a partition's lag (e.g. after it was revoked).
    pub fn remove_partition(&self, topic: &str, partition: u32) {
        lock(&self.lag).remove(&(topic.to_owned(), partition));
    }

    /// The last lag set for a partition.
    pub fn lag(&self, topic: &str, partition: u32) -> Option<i64> {
        lock(&self.lag).get(&(topic.to_owned(), partition)).copied()
    }

    /// Sum of the known (non-negative) partition lags.
    pub fn total_lag(&self) -> i64 {
        lock(&self.lag)
            .values()
            .filter(|&&l| l >= 0)
            .fold(0i64, |acc, &l| acc.saturating_add(l))
    }

    /// Records the loaded model (replacing the previous one, so a hot reload
    /// leaves exactly one `dipper_model_info` series).
    pub fn model_info(&self, name: &str, version: &str, format: &str) {
        *lock(&self.model) = Some(ModelInfo {
            name: name.to_owned(),
            version: version.to_owned(),
            format: format.to_owned(),
        });
    }

    /// The model last set with [`model_info`](Self::model_info).
    pub fn current_model(&self) -> Option<ModelInfo> {
        lock(&self.model).clone()
    }

    /// Seconds since these metrics were created.
    pub fn uptime_seconds(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }

    /// Appends this pipeline's full exposition (with `# HELP`/`# TYPE` lines
    /// and `process_start_time_seconds`) to `out`.
    pub fn render(&self, out: &mut String) {
        render_into(out, &[self]);
    }
}

type Writer = fn(&PipelineMetrics, &mut String, &'static str);

/// One metric family: name, help, type and how to write one pipeline's
/// samples of it.
struct Family {
    name: &'static str,
    help: &'static str,
    kind: MetricType,
    write: Writer,
}

macro_rules! counter_family {
    ($name:literal, $help:literal, $field:ident) => {
        Family {
            name: $name,
            help: $help,
            kind: MetricType::Counter,
            write: |m, out, name| write_sample(out, name, &m.labels, &[], m.$field.get() as f64),
        }
    };
}

macro_rules! gauge_family {
    ($name:literal, $help:literal, $field:ident) => {
        Family {
            name: $name,
            help: $help,
            kind: MetricType::Gauge,
            write: |m, out, name| write_sample(out, name, &m.labels, &[], m.$field.get()),
        }
    };
}

macro_rules! histogram_family {
    ($name:literal, $help:literal, $field:ident) => {
        Family {
            name: $name,
            help: $help,
            kind: MetricType::Histogram,
            write: |m, out, name| write_histogram(out, name, &m.labels, &m.$field.snapshot()),
        }
    };
}

static FAMILIES: &[Family] = &[
    counter_family!("dipper_records_in_total", "Records consumed.", records_in),
    counter_family!(
        "dipper_records_out_total",
        "Predictions written.",
        records_out
    ),
    Family {
        name: "dipper_records_dead_lettered_total",
        help: "Records sent to the dead-letter topic, by reason.",
        kind: MetricType::Counter,
        write: |m, out, name| {
            for r in DeadLetterReason::ALL {
                let v = m.dead_lettered_count(r) as f64;
                write_sample(out, name, &m.labels, &[("reason", r.as_str())], v);
            }
        },
    },
    counter_family!("dipper_batches_total", "Micro-batches processed.", batches),
    counter_family!(
        "dipper_transactions_committed_total",
        "Output transactions committed.",
        transactions_committed
    ),
    counter_family!(
        "dipper_transactions_aborted_total",
        "Output transactions aborted.",
        transactions_aborted
    ),
    counter_family!(
        "dipper_commit_failures_total",
        "Commits that failed.",
        commit_failures
    ),
    counter_family!(
        "dipper_rebalances_total",
        "Consumer-group rebalances.",
        rebalances
    ),
    counter_family!(
        "dipper_model_swaps_total",
        "Live swaps to a new champion from the model registry.",
        model_swaps
    ),
    counter_family!(
        "dipper_model_swaps_rejected_total",
        "New champions that could not serve here; the previous model kept serving.",
        model_swaps_rejected
    ),
    counter_family!(
        "dipper_shadow_records_out_total",
        "Challengers' predictions written to the shadow topic.",
        shadow_records_out
    ),
    counter_family!(
        "dipper_shadow_records_skipped_total",
        "Records a challenger could not score (dead letters are the champion's).",
        shadow_records_skipped
    ),
    counter_family!("dipper_bytes_in_total", "Payload bytes consumed.", bytes_in),
    counter_family!(
        "dipper_bytes_out_total",
        "Payload bytes produced.",
        bytes_out
    ),
    histogram_family!(
        "dipper_scoring_latency_seconds",
        "Per record time from consume to output produced.",
        scoring_latency
    ),
    histogram_family!(
        "dipper_end_to_end_latency_seconds",
        "Per record time from event timestamp to output produced.",
        end_to_end_latency
    ),
    histogram_family!(
        "dipper_batch_latency_seconds",
        "Time for one micro-batch through decode, model and encode.",
        batch_latency
    ),
    histogram_family!(
        "dipper_commit_latency_seconds",
        "Time for one commit.",
        commit_latency
    ),
    gauge_family!(
        "dipper_assigned_partitions",
        "Partitions assigned to this consumer.",
        assigned_partitions
    ),
    gauge_family!(
        "dipper_paused_partitions",
        "Assigned partitions paused for back-pressure.",
        paused_partitions
    ),
    gauge_family!(
        "dipper_in_flight_records",
        "Records consumed but not yet committed.",
        in_flight_records
    ),
    Family {
        name: "dipper_consumer_lag",
        help: "Records behind the high watermark, per partition (negative: unknown).",
        kind: MetricType::Gauge,
        write: |m, out, name| {
            let mut partition = String::new();
            for ((topic, p), lag) in lock(&m.lag).iter() {
                partition.clear();
                partition.push_str(&p.to_string());
                let extra = [("topic", topic.as_str()), ("partition", partition.as_str())];
                write_sample(out, name, &m.labels, &extra, *lag as f64);
            }
        },
    },
    Family {
        name: "dipper_consumer_total_lag",
        help: "Sum of the known partition lags.",
        kind: MetricType::Gauge,
        write: |m, out, name| write_sample(out, name, &m.labels, &[], m.total_lag() as f64),
    },
    Family {
        name: "dipper_model_info",
        help: "The loaded model; always 1.",
        kind: MetricType::Gauge,
        write: |m, out, name| {
            if let Some(info) = lock(&m.model).as_ref() {
                let extra = [
                    ("model", info.name.as_str()),
                    ("version", info.version.as_str()),
                    ("format", info.format.as_str()),
                ];
                write_sample(out, name, &m.labels, &extra, 1.0);
            }
        },
    },
    Family {
        name: "dipper_pipeline_uptime_seconds",
        help: "Seconds since the pipeline's metrics were created.",
        kind: MetricType::Gauge,
        write: |m, out, name| write_sample(out, name, &m.labels, &[], m.uptime_seconds()),
    },
    Family {
        name: "dipper_pipeline_start_time_seconds",
        help: "Unix time the pipeline's metrics were created.",
        kind: MetricType::Gauge,
        write: |m, out, name| {
            write_sample(out, name, &m.labels, &[], unix_seconds(m.started_at));
        },
    },
];

fn render_into(out: &mut String, pipelines: &[&PipelineMetrics]) {
    write_header(
        out,
        "process_start_time_seconds",
        "Start time of the process since unix epoch in seconds.",
        MetricType::Gauge,
    );
    write_sample(
        out,
        "process_start_time_seconds",
        "",
        &[],
        unix_seconds(process_start()),
    );
    for family in FAMILIES {
        write_header(out, family.name, family.help, family.kind);
        for m in pipelines {
            (family.write)(m, out, family.name);
        }
    }
}

/// The exposition of several pipelines together: each family's `# HELP` and
/// `# TYPE` appear once, followed by every pipeline's samples. Pipeline
/// names should be unique ([`Registry`] enforces it).
pub fn render_all(pipelines: &[Arc<PipelineMetrics>]) -> String {
    let refs: Vec<&PipelineMetrics> = pipelines.iter().map(|p| &**p).collect();
    let mut out = String::with_capacity(4096 + 8192 * refs.len());
    render_into(&mut out, &refs);
    out
}

/// Registering a pipeline failed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RegistryError {
    /// A pipeline with this name is already registered; its series would
    /// collide.
    #[error("a pipeline named {0:?} is already registered")]
    DuplicatePipeline(String),
}

/// The pipelines one process exposes together.
#[derive(Debug, Default)]
pub struct Registry {
    pipelines: Mutex<Vec<Arc<PipelineMetrics>>>,
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a pipeline; fails if one with the same name is registered.
    pub fn register(&self, metrics: Arc<PipelineMetrics>) -> Result<(), RegistryError> {
        let mut all = lock(&self.pipelines);
        if all.iter().any(|p| p.name == metrics.name) {
            return Err(RegistryError::DuplicatePipeline(metrics.name.clone()));
        }
        all.push(metrics);
        Ok(())
    }

    /// Creates, registers and returns metrics for `name`.
    pub fn create(&self, name: &str) -> Result<Arc<PipelineMetrics>, RegistryError> {
        let metrics = Arc::new(PipelineMetrics::new(name));
        self.register(metrics.clone())?;
        Ok(metrics)
    }

    /// Removes and returns the pipeline called `name`.
    pub fn unregister(&self, name: &str) -> Option<Arc<PipelineMetrics>> {
        let mut all = lock(&self.pipelines);
        let i = all.iter().position(|p| p.name == name)?;
        Some(all.remove(i))
    }

    /// The pipeline called `name`.
    pub fn get(&self, name: &str) -> Option<Arc<PipelineMetrics>> {
        lock(&self.pipelines)
            .iter()
            .find(|p| p.name == name)
            .cloned()
    }

    /// The registered pipelines, in registration order.
    pub fn pipelines(&self) -> Vec<Arc<PipelineMetrics>> {
        lock(&self.pipelines).clone()
    }

    /// The exposition of every registered pipeline (see [`render_all`]).
    pub fn render(&self) -> String {
        render_all(&self.pipelines())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{check_exposition, Sample};

    fn find<'a>(samples: &'a [Sample], name: &str, labels: &[(&str, &str)]) -> Option<&'a Sample> {
        samples
            .iter()
            .find(|s| s.name == name && labels.iter().all(|(k, v)| s.label(k) == Some(v)))
    }

    fn busy_pipeline(name: &str) -> Arc<PipelineMetrics> {
        let m = Arc::new(PipelineMetrics::new(name));
        m.records_in.add(10);
        m.records_out.add(7);
        m.dead_letter(DeadLetterReason::Decode);
        m.dead_letter(DeadLetterReason::Oversize);
        m.dead_letter(DeadLetterReason::Oversize);
        m.batches.inc();
        m.transactions_committed.inc();
        m.bytes_in.add(1234);
        for i in 1..=10 {
            m.scoring_latency.observe(i as f64 * 1e-4);
        }
        m.commit_latency.observe(0.003);
        m.assigned_partitions.set(3.0);
        m.in_flight_records.add(5.0);
        m.set_lag("events", 0, 12);
        m.set_lag("events", 1, 30);
        m.set_lag("events", 2, -1);
        m.model_info("fraud", "v3", "lightgbm");
        m
    }

    #[test]
    fn render_parses_and_has_the_values() {
        let m = busy_pipeline("scorer");
        let mut text = String::new();
        m.render(&mut text);
        let samples = check_exposition(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        let p = ("pipeline", "scorer");
        let val = |name: &str, labels: &[(&str, &str)]| {
            let mut all = vec![p];
            all.extend_from_slice(labels);
            find(&samples, name, &all)
                .unwrap_or_else(|| panic!("{name} missing"))
                .value
        };
        assert_eq!(val("dipper_records_in_total", &[]), 10.0);
        assert_eq!(val("dipper_records_out_total", &[]), 7.0);
        assert_eq!(
            val(
                "dipper_records_dead_lettered_total",
                &[("reason", "decode")]
            ),
            1.0
        );
        assert_eq!(
            val(
                "dipper_records_dead_lettered_total",
                &[("reason", "oversize")]
            ),
            2.0
        );
        assert_eq!(
            val("dipper_records_dead_lettered_total", &[("reason", "model")]),
            0.0
        );
        assert_eq!(val("dipper_transactions_committed_total", &[]), 1.0);
        assert_eq!(val("dipper_bytes_in_total", &[]), 1234.0);
        assert_eq!(val("dipper_scoring_latency_seconds_count", &[]), 10.0);
        assert_eq!(
            val("dipper_scoring_latency_seconds_bucket", &[("le", "0.0005")]),
            5.0
        );
        assert_eq!(
            val("dipper_scoring_latency_seconds_bucket", &[("le", "0.001")]),
            10.0
        );
        assert_eq!(
            val("dipper_scoring_latency_seconds_bucket", &[("le", "+Inf")]),
            10.0
        );
        assert!((val("dipper_scoring_latency_seconds_sum", &[]) - 0.0055).abs() < 1e-12);
        assert_eq!(
            val("dipper_commit_latency_seconds_bucket", &[("le", "0.0025")]),
            0.0
        );
        assert_eq!(
            val("dipper_commit_latency_seconds_bucket", &[("le", "0.005")]),
            1.0
        );
        assert_eq!(val("dipper_assigned_partitions", &[]), 3.0);
        assert_eq!(val("dipper_in_flight_records", &[]), 5.0);
        let lag = [("topic", "events"), ("partition", "1")];
        assert_eq!(val("dipper_consumer_lag", &lag), 30.0);
        assert_eq!(val("dipper_consumer_total_lag", &[]), 42.0);
        let model = [
            ("model", "fraud"),
            ("version", "v3"),
            ("format", "lightgbm"),
        ];
        assert_eq!(val("dipper_model_info", &model), 1.0);
        assert!(val("dipper_pipeline_uptime_seconds", &[]) >= 0.0);
        assert!(val("dipper_pipeline_start_time_seconds", &[]) > 1.6e9);
        assert!(
            find(&samples, "process_start_time_seconds", &[])
                .unwrap()
                .value
                > 1.6e9
        );
        for s in &samples {
            assert!(
                s.name == "process_start_time_seconds" || s.label("pipeline") == Some("scorer")
            );
        }
        assert!(text.contains("# TYPE dipper_scoring_latency_seconds histogram\n"));
        assert!(text.contains("# TYPE dipper_records_in_total counter\n"));
    }

    #[test]
    fn lag_and_model_updates() {
        let m = PipelineMetrics::new("p");
        m.set_lag("t", 0, 5);
        m.set_lag("t", 0, 7);
        m.set_lag("u", 3, 1);
        assert_eq!(m.lag("t", 0), Some(7));
        assert_eq!(m.total_lag(), 8);
        m.remove_partition("t", 0);
        assert_eq!(m.lag("t", 0), None);
        assert_eq!(m.total_lag(), 1);
        m.model_info("a", "1", "onnx");
        m.model_info("b", "2", "xgboost");
        assert_eq!(m.current_model().unwrap().name, "b");
        let mut text = String::new();
        m.render(&mut text);
        let samples = check_exposition(&text).unwrap();
        let infos: Vec<_> = samples
            .iter()
            .filter(|s| s.name == "dipper_model_info")
            .collect();
        assert_eq!(infos.len(), 1);
        assert_eq!(infos[0].label("model"), Some("b"));
        let lags: Vec<_> = samples
            .iter()
            .filter(|s| s.name == "dipper_consumer_lag")
            .collect();
        assert_eq!(lags.len(), 1);
        assert_eq!(lags[0].label("topic"), Some("u"));
    }

    #[test]
    fn label_values_are_escaped() {
        let tricky = "we\"ird\\name\nline2";
        let m = PipelineMetrics::new(tricky);
        m.set_lag("to\"pic", 1, 2);
        m.model_info("m\\1", "v\n2", "f\"");
        let mut text = String::new();
        m.render(&mut text);
        assert!(
            text.contains(r#"pipeline="we\"ird\\name\nline2""#),
            "{text}"
        );
        let samples = check_exposition(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        let lag = find(&samples, "dipper_consumer_lag", &[("pipeline", tricky)]).unwrap();
        assert_eq!(lag.label("topic"), Some("to\"pic"));
        let info = find(&samples, "dipper_model_info", &[("pipeline", tricky)]).unwrap();
        assert_eq!(info.label("model"), Some("m\\1"));
        assert_eq!(info.label("version"), Some("v\n2"));
        assert_eq!(info.label("format"), Some("f\""));
    }

    #[test]
    fn checker_rejects_broken_text() {
        let h = "# HELP a_total x\n# TYPE a_total counter\n";
        assert!(check_exposition(&format!("{h}a_total 1\n")).is_ok());
        assert!(check_exposition("a_total 1\n").is_err());
        assert!(check_exposition(&format!("{h}a_total{{x=\"1}} 1\n")).is_err());
        assert!(check_exposition(&format!("{h}a_total one\n")).is_err());
        assert!(check_exposition(&format!("{h}{h}a_total 1\n")).is_err());
        let hist = "# HELP h x\n# TYPE h histogram\n";
        let good = format!(
            "{hist}h_bucket{{le=\"1\"}} 1\nh_bucket{{le=\"+Inf\"}} 2\nh_sum 3\nh_count 2\n"
        );
        assert!(check_exposition(&good).is_ok());
        let bad = format!(
            "{hist}h_bucket{{le=\"1\"}} 3\nh_bucket{{le=\"+Inf\"}} 2\nh_sum 3\nh_count 2\n"
        );
        assert!(check_exposition(&bad).is_err());
    }

    #[test]
    fn registry_renders_pipelines_together() {
        let registry = Registry::new();
        let a = registry.create("a").unwrap();
        registry.register(busy_pipeline("b")).unwrap();
        assert_eq!(
            registry.create("a").unwrap_err(),
            RegistryError::DuplicatePipeline("a".into())
        );
        a.records_in.add(3);
        let text = registry.render();
        let samples = check_exposition(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        let ins: Vec<_> = samples
            .iter()
            .filter(|s| s.name == "dipper_records_in_total")
            .collect();
        assert_eq!(ins.len(), 2);
        assert_eq!(
            find(&samples, "dipper_records_in_total", &[("pipeline", "a")])
                .unwrap()
                .value,
            3.0
        );
        assert_eq!(
            find(&samples, "dipper_records_in_total", &[("pipeline", "b")])
                .unwrap()
                .value,
            10.0
        );
        assert_eq!(text.matches("# TYPE dipper_records_in_total ").count(), 1);
        assert_eq!(
            text.matches("# HELP process_start_time_seconds ").count(),
            1
        );
        assert!(registry.get("b").is_some());
        assert!(registry.unregister("b").is_some());
        assert!(registry.unregister("b").is_none());
        assert_eq!(registry.pipelines().len(), 1);
        let none = render_all(&[]);
        check_exposition(&none).unwrap();
    }

    #[test]
    fn concurrent_recording_is_exact() {
        let m = Arc::new(PipelineMetrics::new("c"));
        let threads: Vec<_> = (0..8)
            .map(|t| {
                let m = m.clone();
                std::thread::spawn(move || {
                    for i in 0..5_000 {
                        m.records_in.inc();
                        m.bytes_in.add(10);
                        m.dead_letter(DeadLetterReason::ALL[(t + i) % 5]);
                        m.scoring_latency.observe(1e-4);
                        m.in_flight_records.add(1.0);
                        if i % 100 == 0 {
                            m.set_lag("t", t as u32, i as i64);
                        }
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(m.records_in.get(), 40_000);
        assert_eq!(m.bytes_in.get(), 400_000);
        let dead: u64 = DeadLetterReason::ALL
            .iter()
            .map(|&r| m.dead_lettered_count(r))
            .sum();
        assert_eq!(dead, 40_000);
        assert_eq!(m.dead_lettered_count(DeadLetterReason::Model), 8_000);
        assert_eq!(m.scoring_latency.count(), 40_000);
        assert_eq!(m.in_flight_records.get(), 40_000.0);
        assert_eq!(m.total_lag(), 8 * 4_900);
    }

    #[test]
    fn reasons() {
        for (i, r) in DeadLetterReason::ALL.iter().enumerate() {
            assert_eq!(r.index(), i);
        }
        assert_eq!(DeadLetterReason::Features.as_str(), "features");
        assert_eq!(DeadLetterReason::Encode.to_string(), "encode");
    }
}

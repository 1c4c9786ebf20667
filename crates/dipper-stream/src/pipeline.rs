//! Building a runnable pipeline from its config: load and check the model, open the transport the
//! config names (creating embedded-log output topics when missing), and start the engine.

use std::fs::OpenOptions;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use dipper_log::{Log, LogError};
use dipper_monitor::PipelineMetrics;
use tracing::info;

use crate::config::{PipelineConfig, TransportConfig};
use crate::engine::{Engine, EngineOptions, RunSummary, SwapReports};
use crate::error::StreamError;
use crate::score::ScoringPlan;
use crate::swap::{self, Follower, PlanCell, RegistryHandle};
use crate::transport::embedded::EmbeddedTransport;
use crate::transport::kafka::KafkaTransport;
use crate::transport::Transport;

/// A checked pipeline, ready to run.
pub struct Pipeline {
    config: PipelineConfig,
    exit_when_idle: Option<Duration>,
    plan: Arc<ScoringPlan>,
    cell: Arc<PlanCell>,
    metrics: Arc<PipelineMetrics>,
    /// Set when the model comes from the registry: the registry and the version serving.
    follow: Option<(RegistryHandle, String, u32)>,
}

impl Pipeline {
    /// Loads the model (from its file, or the registry's champion) and checks it against the config.
    /// Touches no data log: this is `--check`.
    pub fn new(config: PipelineConfig) -> Result<Self, StreamError> {
        match config.model.registry.clone() {
            None => {
                let plan = ScoringPlan::from_config(&config)?;
                Ok(Self::with_plan(config, plan))
            }
            Some(name) => {
                let mut registry = swap::open_registry(&config)?;
                let (version, plan) = swap::initial_plan(&config, &mut registry, &name)?;
                let mut p = Self::with_plan(config, plan);
                p.follow = Some((registry, name, version));
                Ok(p)
            }
        }
    }

    /// A pipeline around an already-built plan.
    pub fn with_plan(config: PipelineConfig, plan: ScoringPlan) -> Self {
        let metrics = Arc::new(PipelineMetrics::new(&config.name));
        metrics.model_info(&plan.label.name, &plan.label.version, &plan.label.format);
        let plan = Arc::new(plan);
        Pipeline {
            config,
            exit_when_idle: None,
            cell: PlanCell::new(plan.clone()),
            plan,
            metrics,
            follow: None,
        }
    }

    /// Stop gracefully once no record has arrived for `idle` (see [`EngineOptions::exit_when_idle`]).
    pub fn exit_when_idle(mut self, idle: Option<Duration>) -> Self {
        self.exit_when_idle = idle;
        self
    }

    pub fn config(&self) -> &PipelineConfig {
        &self.config
    }

    pub fn plan(&self) -> &ScoringPlan {
        &self.plan
    }

    pub fn metrics(&self) -> Arc<PipelineMetrics> {
        self.metrics.clone()
    }

    /// Opens the transport the config names and runs until `stop` is set.
    pub fn run(self, stop: Arc<AtomicBool>) -> Result<RunSummary, StreamError> {
        match &self.config.transport {
            TransportConfig::Embedded(e) => {
                let log =
                    Log::open(&e.dir, dipper_log::Options::default()).map_err(|err| match err {
                        LogError::Locked(dir) => StreamError::embedded(format!(
                            "{} is in use by another process (one process owns an embedded log; \
                             use Kafka to share topics between processes)",
                            dir.display()
                        )),
                        err => StreamError::embedded(err),
                    })?;
                info!(dir = %e.dir.display(), "embedded log open");
                self.run_on_log(Arc::new(log), stop)
            }
            TransportConfig::Kafka(k) => {
                let transport = KafkaTransport::new(&self.config, k)?;
                info!(brokers = %k.brokers, group = %self.config.group_id(), "kafka transport ready");
                self.run_with(Box::new(transport), stop)
            }
        }
    }

    /// Runs on an embedded log this process already has open (the demo shares one with its generator).
    pub fn run_on_log(
        self,
        log: Arc<Log>,
        stop: Arc<AtomicBool>,
    ) -> Result<RunSummary, StreamError> {
        let cfg = &self.config;
        let create = match &cfg.transport {
            TransportConfig::Embedded(e) => e.create_topics,
            TransportConfig::Kafka(_) => None,
        };
        if let Some(n) = create {
            for t in &cfg.input.topics {
                if log.partitions(t).is_err() {
                    log.create_topic(t, n).map_err(StreamError::embedded)?;
                }
            }
        }
        // Outputs default to the input's partition count so keyed order and parallelism carry over.
        let first = &cfg.input.topics[0];
        let n = match log.partitions(first) {
            Ok(n) => n,
            Err(_) => create.unwrap_or(1),
        };
        let mut outputs: Vec<&str> = vec![&cfg.output.topic, &cfg.dead_letter.topic];
        if let Some(a) = &cfg.alerts {
            outputs.push(&a.topic);
        }
        if let Some(sh) = &cfg.shadow {
            outputs.push(&sh.topic);
        }
        for t in &outputs {
            if log.partitions(t).is_err() {
                log.create_topic(t, n).map_err(StreamError::embedded)?;
            }
        }
        let transport = EmbeddedTransport::new(log, &cfg.group_id(), &cfg.input.topics, &outputs)?;
        self.run_with(Box::new(transport), stop)
    }

    /// Runs over any transport.
    pub fn run_with(
        mut self,
        transport: Box<dyn Transport>,
        stop: Arc<AtomicBool>,
    ) -> Result<RunSummary, StreamError> {
        let follow = self.follow.take();
        let cfg = &self.config;
        let opts = EngineOptions {
            batch_size: cfg.processing.batch_size,
            max_in_flight_batches: cfg.processing.max_in_flight_batches,
            workers: cfg.processing.workers,
            commit_interval: Duration::from_millis(cfg.delivery.commit_interval_ms),
            commit_max_records: cfg.delivery.commit_max_records,
            drain_timeout: Duration::from_secs(30),
            exit_when_idle: self.exit_when_idle,
        };
        let mut engine = Engine::new(
            transport,
            self.cell.clone(),
            opts,
            self.metrics.clone(),
            stop.clone(),
        )?;
        // The follower stops with the engine (its own flag: `stop` may never be set on a fatal error).
        let follower_stop = Arc::new(AtomicBool::new(false));
        let mut follower = None;
        if let Some((registry, name, serving)) = follow {
            let (tx, rx) = crossbeam_channel::bounded(64);
            let f = Follower {
                config: cfg.clone(),
                registry,
                name,
                serving,
                cell: self.cell.clone(),
                metrics: self.metrics.clone(),
                events: tx,
                poll: Duration::from_millis(cfg.model.registry_poll_ms),
                challenger_versions: Vec::new(),
            };
            follower = Some(
                f.spawn(follower_stop.clone())
                    .map_err(|e| StreamError::Io {
                        place: "model follower thread".into(),
                        source: e,
                    })?,
            );
            engine = engine.with_swap_reports(SwapReports {
                events: rx,
                alerts_topic: cfg.alerts.as_ref().map(|a| Arc::from(a.topic.as_str())),
                pipeline: cfg.name.clone(),
            });
        }
        if let Some(path) = &cfg.delivery.commit_ledger {
            let file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|e| StreamError::Io {
                    place: path.display().to_string(),
                    source: e,
                })?;
            engine = engine.with_ledger(file);
        }
        info!(
            pipeline = %cfg.name,
            model = %self.plan.label.name,
            version = %self.plan.label.version,
            guarantee = ?cfg.delivery.guarantee,
            "pipeline starting"
        );
        let result = engine.run();
        follower_stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(f) = follower {
            let _ = f.join();
        }
        result
    }
}

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
use crate::engine::{Engine, EngineOptions, RunSummary};
use crate::error::StreamError;
use crate::score::ScoringPlan;
use crate::transport::embedded::EmbeddedTransport;
use crate::transport::kafka::KafkaTransport;
use crate::transport::Transport;

/// A checked pipeline, ready to run.
pub struct Pipeline {
    config: PipelineConfig,
    exit_when_idle: Option<Duration>,
    plan: Arc<ScoringPlan>,
    metrics: Arc<PipelineMetrics>,
}

impl Pipeline {
    /// Loads the model and checks it against the config. Touches no log: this is `--check`.
    pub fn new(config: PipelineConfig) -> Result<Self, StreamError> {
        let plan = ScoringPlan::from_config(&config)?;
        Ok(Self::with_plan(config, plan))
    }

    /// A pipeline around an already-built plan.
    pub fn with_plan(config: PipelineConfig, plan: ScoringPlan) -> Self {
        let metrics = Arc::new(PipelineMetrics::new(&config.name));
        metrics.model_info(&plan.label.name, &plan.label.version, &plan.label.format);
        Pipeline {
            config,
            exit_when_idle: None,
            plan: Arc::new(plan),
            metrics,
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
        for t in [&cfg.output.topic, &cfg.dead_letter.topic] {
            if log.partitions(t).is_err() {
                log.create_topic(t, n).map_err(StreamError::embedded)?;
            }
        }
        let transport = EmbeddedTransport::new(
            log,
            &cfg.group_id(),
            &cfg.input.topics,
            &[&cfg.output.topic, &cfg.dead_letter.topic],
        )?;
        self.run_with(Box::new(transport), stop)
    }

    /// Runs over any transport.
    pub fn run_with(
        self,
        transport: Box<dyn Transport>,
        stop: Arc<AtomicBool>,
    ) -> Result<RunSummary, StreamError> {
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
            self.plan.clone(),
            opts,
            self.metrics.clone(),
            stop,
        )?;
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
        engine.run()
    }
}

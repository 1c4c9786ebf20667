//! Live model swaps: a pipeline whose `model.registry` names a model follows that model's champion.
//!
//! The scoring plan lives in a [`PlanCell`]. A follower thread polls the registry, and when the champion
//! changes it fetches the new version (checked against its SHA-256), loads it and builds a plan against the
//! pipeline's config, all off the hot path. Only then does it publish the plan to the cell. Every scorer
//! looks at the cell's epoch (one atomic load) before each micro-batch, so a batch is scored by one version
//! from start to end, and since a partition's batches go through one scorer in order, each partition's
//! output switches at one record boundary: no record fails, drops or is scored twice because of a swap.
//! A version that does not fetch, load or fit the pipeline is rejected: logged, counted, reported as a
//! [`SwapEvent::Rejected`] (the engine writes it to the alerts topic when one is configured) and the old
//! version keeps serving.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, TrySendError};
use dipper_models::Format;
use dipper_monitor::PipelineMetrics;
use dipper_registry::{
    EmbeddedStore, KafkaStore, KafkaStoreConfig, Registry, RegistryError, Store,
};
use tracing::{error, info, warn};

use crate::config::{PipelineConfig, TransportConfig};
use crate::error::StreamError;
use crate::score::ScoringPlan;

/// The plan scorers use and the challengers they score in shadow, replaceable while they run.
pub struct PlanCell {
    plan: Mutex<Arc<ScoringPlan>>,
    challengers: Mutex<Arc<Vec<Arc<ScoringPlan>>>>,
    epoch: AtomicU64,
}

impl PlanCell {
    pub fn new(plan: Arc<ScoringPlan>) -> Arc<Self> {
        Arc::new(PlanCell {
            plan: Mutex::new(plan),
            challengers: Mutex::new(Arc::new(Vec::new())),
            epoch: AtomicU64::new(0),
        })
    }

    /// The challenger plans (their encoders write to the shadow topic).
    pub fn challengers(&self) -> Arc<Vec<Arc<ScoringPlan>>> {
        self.challengers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Replaces the challengers; scorers pick them up before their next batch.
    pub fn set_challengers(&self, plans: Vec<Arc<ScoringPlan>>) {
        *self.challengers.lock().unwrap_or_else(|p| p.into_inner()) = Arc::new(plans);
        self.epoch.fetch_add(1, Ordering::AcqRel);
    }

    /// Changes whenever the plan does.
    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    /// The current plan.
    pub fn get(&self) -> Arc<ScoringPlan> {
        self.plan.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Replaces the plan; scorers pick it up before their next batch.
    pub fn set(&self, plan: Arc<ScoringPlan>) {
        *self.plan.lock().unwrap_or_else(|p| p.into_inner()) = plan;
        self.epoch.fetch_add(1, Ordering::AcqRel);
    }
}

/// The registry as a pipeline holds it (on Kafka or on the embedded log).
pub type RegistryHandle = Registry<Box<dyn Store>>;

/// What the follower reports to the engine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SwapEvent {
    /// Scorers now use `to`.
    Swapped { model: String, from: u32, to: u32 },
    /// `version` became champion but cannot serve here; the old version keeps serving.
    Rejected {
        model: String,
        version: u32,
        serving: u32,
        reason: String,
    },
}

/// The registry a pipeline's `model.registry` refers to.
pub fn open_registry(config: &PipelineConfig) -> Result<RegistryHandle, StreamError> {
    let m = &config.model;
    let topic = m
        .registry_topic
        .as_deref()
        .unwrap_or(dipper_registry::DEFAULT_TOPIC);
    let store: Box<dyn Store> = match &config.transport {
        TransportConfig::Kafka(k) => Box::new(
            KafkaStore::new(KafkaStoreConfig {
                brokers: k.brokers.clone(),
                topic: topic.to_string(),
                properties: k.properties.clone().into_iter().collect(),
                replication_factor: None,
            })
            .map_err(registry_err)?,
        ),
        TransportConfig::Embedded(e) => {
            let dir = m
                .registry_dir
                .clone()
                .unwrap_or_else(|| e.dir.join("registry"));
            Box::new(EmbeddedStore::new(dir, topic).map_err(registry_err)?)
        }
    };
    Registry::open(store).map_err(registry_err)
}

fn registry_err(e: RegistryError) -> StreamError {
    StreamError::Model {
        path: "model.registry".into(),
        message: e.to_string(),
    }
}

/// Fetches, loads and plans `version` of the pipeline's registry model.
pub fn plan_for(
    config: &PipelineConfig,
    registry: &mut RegistryHandle,
    name: &str,
    version: u32,
) -> Result<ScoringPlan, StreamError> {
    let source = format!("registry model {name} version {version}");
    let artifact = registry.fetch(name, version).map_err(registry_err)?;
    let format = Format::parse(&artifact.meta.format);
    let model = dipper_models::load_bytes(&artifact.bytes, &source, name, format).map_err(|e| {
        StreamError::Model {
            path: source.clone(),
            message: e.to_string(),
        }
    })?;
    let mut c = config.clone();
    c.model.name.get_or_insert_with(|| name.to_string());
    c.model.version = Some(version.to_string());
    ScoringPlan::with_source(&c, model, &source)
}

/// The champion to start with: an error if the model has none.
pub fn initial_plan(
    config: &PipelineConfig,
    registry: &mut RegistryHandle,
    name: &str,
) -> Result<(u32, ScoringPlan), StreamError> {
    let version = registry
        .state()
        .champion(name)
        .map(|e| e.meta.version)
        .ok_or_else(|| {
            let known = registry.state().model(name).is_ok();
            StreamError::Model {
                path: "model.registry".into(),
                message: if known {
                    format!("model {name} has no champion yet: promote a version (dipper model promote {name} N)")
                } else {
                    format!("no model named {name} in {}", registry.describe())
                },
            }
        })?;
    Ok((version, plan_for(config, registry, name, version)?))
}

/// Polls the registry and swaps the plan when the champion changes.
pub struct Follower {
    pub config: PipelineConfig,
    pub registry: RegistryHandle,
    pub name: String,
    pub serving: u32,
    pub cell: Arc<PlanCell>,
    pub metrics: Arc<PipelineMetrics>,
    pub events: Sender<SwapEvent>,
    pub poll: Duration,
    /// The versions of the challengers in the cell, in its order.
    pub challenger_versions: Vec<u32>,
}

impl Follower {
    /// Runs on its own thread until `stop` is set or the engine goes away.
    pub fn spawn(mut self, stop: Arc<AtomicBool>) -> std::io::Result<JoinHandle<()>> {
        std::thread::Builder::new()
            .name("dipper-follow".into())
            .spawn(move || {
                // Versions that failed for a reason retrying does not fix.
                let mut rejected = BTreeSet::new();
                let mut next = Instant::now() + self.poll;
                while !stop.load(Ordering::Relaxed) {
                    let now = Instant::now();
                    if now < next {
                        std::thread::sleep((next - now).min(Duration::from_millis(50)));
                        continue;
                    }
                    next = now + self.poll;
                    if !self.step(&mut rejected) {
                        return;
                    }
                }
            })
    }

    /// Scores the registry's challengers in shadow when the pipeline has a shadow topic: plans new ones
    /// (a challenger that cannot serve is reported once and left out) and drops removed ones.
    fn follow_challengers(&mut self, rejected: &mut BTreeSet<u32>) -> bool {
        let Some(shadow) = self.config.shadow.clone() else {
            return true;
        };
        let wanted: Vec<u32> = self
            .registry
            .state()
            .models
            .get(&self.name)
            .map(|m| m.stages.challengers.iter().copied().collect())
            .unwrap_or_default();
        let current = self.cell.challengers();
        let have: Vec<u32> = self.challenger_versions.clone();
        let wanted_ok: Vec<u32> = wanted
            .iter()
            .copied()
            .filter(|v| !rejected.contains(v))
            .collect();
        if wanted_ok == have {
            return true;
        }
        let mut plans = Vec::new();
        let mut versions = Vec::new();
        for v in wanted_ok {
            if let Some(i) = have.iter().position(|&h| h == v) {
                plans.push(current[i].clone());
                versions.push(v);
                continue;
            }
            let mut c = self.config.clone();
            c.output.topic = shadow.topic.clone();
            match plan_for(&c, &mut self.registry, &self.name, v) {
                Ok(plan) => {
                    plans.push(Arc::new(plan));
                    versions.push(v);
                }
                Err(e) => {
                    rejected.insert(v);
                    self.metrics.model_swaps_rejected.inc();
                    error!(model = %self.name, version = v, error = %e, "challenger cannot be scored here");
                    if !self.report(SwapEvent::Rejected {
                        model: self.name.clone(),
                        version: v,
                        serving: self.serving,
                        reason: e.to_string(),
                    }) {
                        return false;
                    }
                }
            }
        }
        info!(model = %self.name, challengers = ?versions, "shadow challengers changed");
        self.challenger_versions = versions;
        self.cell.set_challengers(plans);
        true
    }

    /// One poll. False when the engine is gone.
    fn step(&mut self, rejected: &mut BTreeSet<u32>) -> bool {
        if let Err(e) = self.registry.refresh() {
            warn!(error = %e, "cannot read the model registry; still serving version {}", self.serving);
            return true;
        }
        if !self.follow_challengers(rejected) {
            return false;
        }
        let Some(champion) = self
            .registry
            .state()
            .champion(&self.name)
            .map(|e| e.meta.version)
        else {
            return true;
        };
        if champion == self.serving || rejected.contains(&champion) {
            return true;
        }
        let started = Instant::now();
        let planned = plan_for(&self.config, &mut self.registry, &self.name, champion)
            .and_then(|plan| self.fits(plan, champion));
        match planned {
            Ok(plan) => {
                let plan = Arc::new(plan);
                self.metrics
                    .model_info(&plan.label.name, &plan.label.version, &plan.label.format);
                self.cell.set(plan);
                self.metrics.model_swaps.inc();
                info!(
                    model = %self.name,
                    from = self.serving,
                    to = champion,
                    load_ms = started.elapsed().as_millis() as u64,
                    "new champion loaded; scorers switch at their next batch"
                );
                let event = SwapEvent::Swapped {
                    model: self.name.clone(),
                    from: self.serving,
                    to: champion,
                };
                self.serving = champion;
                self.report(event)
            }
            Err(e) => {
                let transient = matches!(
                    &e,
                    StreamError::Model { message, .. } if message.starts_with("registry store")
                );
                if transient {
                    warn!(error = %e, "cannot fetch the new champion yet; will retry");
                    return true;
                }
                rejected.insert(champion);
                self.metrics.model_swaps_rejected.inc();
                error!(
                    model = %self.name,
                    version = champion,
                    serving = self.serving,
                    error = %e,
                    "the new champion cannot serve in this pipeline; keeping the current version"
                );
                self.report(SwapEvent::Rejected {
                    model: self.name.clone(),
                    version: champion,
                    serving: self.serving,
                    reason: e.to_string(),
                })
            }
        }
    }

    /// A new version may read only the fields the serving one reads (events may lack others), unless
    /// `model.registry_allow_new_features` says the events carry them.
    fn fits(&self, plan: ScoringPlan, version: u32) -> Result<ScoringPlan, StreamError> {
        if self.config.model.registry_allow_new_features {
            return Ok(plan);
        }
        let serving = self.cell.get();
        let known: BTreeSet<&str> = serving.schema.names().collect();
        let new: Vec<&str> = plan.schema.names().filter(|n| !known.contains(n)).collect();
        if new.is_empty() {
            return Ok(plan);
        }
        Err(StreamError::Model {
            path: format!("registry model {} version {version}", self.name),
            message: format!(
                "it reads fields the serving version {} does not ({}); set model.registry_allow_new_features \
                 if the events carry them",
                self.serving,
                new.join(", ")
            ),
        })
    }

    fn report(&self, event: SwapEvent) -> bool {
        match self.events.try_send(event) {
            Ok(()) => true,
            // The engine reads these every loop; a full queue only loses a report, never a swap.
            Err(TrySendError::Full(e)) => {
                warn!(event = ?e, "swap report dropped: the engine is behind");
                true
            }
            Err(TrySendError::Disconnected(_)) => false,
        }
    }
}

/// Reports waiting for the engine.
pub type SwapEvents = Receiver<SwapEvent>;

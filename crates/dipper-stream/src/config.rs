//! The pipeline file: what `dipper run PIPELINE.yaml` reads.
//!
//! Parsing is strict: every struct denies unknown keys, and errors carry the file, line and column
//! (`fraud.yaml:7:3: unknown field `topcs`, expected one of ...`). [`PipelineConfig::validate`] then
//! checks what the types cannot (empty topic lists, zero intervals, an output topic equal to an input
//! topic). Nothing here touches the network or the model file: `dipper run --check` loads the model
//! separately to check that its features fit.
//!
//! ```yaml
//! name: fraud-scorer
//! transport:
//!   kafka:
//!     brokers: localhost:9092
//!     properties: { security.protocol: SASL_SSL }
//! input:
//!   topics: [transactions]
//!   event_id_field: event_id
//! model:
//!   path: models/fraud.json
//! output:
//!   topic: fraud-scores
//!   pass_through: [card_id, amount]
//! dead_letter:
//!   topic: transactions-dlq
//! delivery:
//!   guarantee: exactly-once
//! ```

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::StreamError;

/// A whole pipeline: where events come from, the model, where predictions go.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineConfig {
    /// Names the pipeline in metrics, logs and (by default) the consumer group.
    pub name: String,
    /// Kafka or the embedded log; the embedded log in `./dipper-data` when omitted.
    #[serde(default)]
    pub transport: TransportConfig,
    pub input: InputConfig,
    pub model: ModelConfig,
    pub output: OutputConfig,
    /// Where records that cannot be scored go. Required: nothing is dropped silently.
    pub dead_letter: DeadLetterConfig,
    #[serde(default)]
    pub delivery: DeliveryConfig,
    #[serde(default)]
    pub processing: ProcessingConfig,
    #[serde(default)]
    pub metrics: MetricsConfig,
    /// Where operational alerts go; without it they are only logged and counted.
    #[serde(default)]
    pub alerts: Option<AlertsConfig>,
    /// Where the registry model's challengers' predictions go (with the same event ids); never to the
    /// output topic. Needs `model.registry`.
    #[serde(default)]
    pub shadow: Option<ShadowConfig>,
}

/// Which log the pipeline runs on: a `transport:` section with exactly one of `kafka:` or `embedded:`.
#[derive(Debug, Clone, Deserialize)]
#[serde(try_from = "TransportSection")]
pub enum TransportConfig {
    /// Apache Kafka (or anything speaking its protocol) through librdkafka.
    Kafka(KafkaConfig),
    /// dipper's in-process durable log in a local directory.
    Embedded(EmbeddedConfig),
}

/// The YAML shape of [`TransportConfig`].
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct TransportSection {
    #[serde(default)]
    kafka: Option<KafkaConfig>,
    #[serde(default)]
    embedded: Option<EmbeddedConfig>,
}

impl TryFrom<TransportSection> for TransportConfig {
    type Error = String;
    fn try_from(s: TransportSection) -> Result<Self, String> {
        match (s.kafka, s.embedded) {
            (Some(k), None) => Ok(TransportConfig::Kafka(k)),
            (None, Some(e)) => Ok(TransportConfig::Embedded(e)),
            (None, None) => Err("transport: name `kafka:` or `embedded:`".into()),
            (Some(_), Some(_)) => {
                Err("transport: name only one of `kafka:` and `embedded:`".into())
            }
        }
    }
}

impl Default for TransportConfig {
    fn default() -> Self {
        TransportConfig::Embedded(EmbeddedConfig::default())
    }
}

/// Kafka connection settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaConfig {
    /// `bootstrap.servers`.
    pub brokers: String,
    /// Consumer group; defaults to `dipper-<name>`.
    #[serde(default)]
    pub group_id: Option<String>,
    /// librdkafka properties passed to both consumer and producer (security.protocol, sasl.*, ssl.*, ...).
    #[serde(default)]
    pub properties: BTreeMap<String, String>,
    /// Properties for the consumer only.
    #[serde(default)]
    pub consumer_properties: BTreeMap<String, String>,
    /// Properties for the producer only.
    #[serde(default)]
    pub producer_properties: BTreeMap<String, String>,
    /// Stable per instance so a restarted instance fences its predecessor and aborts its open
    /// transaction. Defaults to `dipper-<name>-<instance>`, where the instance is `$DIPPER_INSTANCE_ID`,
    /// else the host name.
    #[serde(default)]
    pub transactional_id: Option<String>,
    /// Where a new consumer group starts: `earliest` (default) or `latest`.
    #[serde(default = "default_offset_reset")]
    pub auto_offset_reset: String,
}

fn default_offset_reset() -> String {
    "earliest".into()
}

/// Embedded log settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmbeddedConfig {
    /// The log directory (created if missing).
    #[serde(default = "default_embedded_dir")]
    pub dir: PathBuf,
    /// Consumer group name for stored positions; defaults to `dipper-<name>`.
    #[serde(default)]
    pub group_id: Option<String>,
    /// Create missing topics with this many partitions instead of failing.
    #[serde(default)]
    pub create_topics: Option<u32>,
}

fn default_embedded_dir() -> PathBuf {
    PathBuf::from("dipper-data")
}

impl Default for EmbeddedConfig {
    fn default() -> Self {
        EmbeddedConfig {
            dir: default_embedded_dir(),
            group_id: None,
            create_topics: None,
        }
    }
}

/// What to consume and how to read it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputConfig {
    pub topics: Vec<String>,
    /// The event encoding. Only `json` today.
    #[serde(default)]
    pub format: InputFormat,
    /// A field holding the event's id; when absent (or missing in an event) the id is
    /// `topic/partition/offset`.
    #[serde(default)]
    pub event_id_field: Option<String>,
    /// A field holding the event time in epoch milliseconds; else the record timestamp.
    #[serde(default)]
    pub event_time_field: Option<String>,
    /// Map model feature names to event field names when they differ: `{feature: field}`.
    #[serde(default)]
    pub feature_fields: BTreeMap<String, String>,
}

/// Input encodings.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InputFormat {
    #[default]
    Json,
}

/// The model to score with.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    /// A model file in any format dipper loads (LightGBM, XGBoost, ONNX, native). Exactly one of `path`
    /// and `registry`.
    #[serde(default)]
    pub path: Option<PathBuf>,
    /// Follow this model's champion in the model registry (`dipper model`), swapping live when a new
    /// version is promoted. Outputs carry the registry version.
    #[serde(default)]
    pub registry: Option<String>,
    /// The registry topic (default `_dipper_models`).
    #[serde(default)]
    pub registry_topic: Option<String>,
    /// The embedded registry's directory (default: `registry` inside the embedded log's directory).
    #[serde(default)]
    pub registry_dir: Option<PathBuf>,
    /// How often to look for a new champion, in milliseconds.
    #[serde(default = "default_registry_poll_ms")]
    pub registry_poll_ms: u64,
    /// Accept a new champion that reads fields the serving version does not (the events carry them).
    #[serde(default)]
    pub registry_allow_new_features: bool,
    /// Force a format instead of detecting it: lightgbm, xgboost, onnx, native.
    #[serde(default)]
    pub format: Option<String>,
    /// Name in outputs and metrics; defaults to the model's own (the file stem).
    #[serde(default)]
    pub name: Option<String>,
    /// Version in outputs; defaults to the first 12 hex digits of the file's SHA-256.
    #[serde(default)]
    pub version: Option<String>,
    /// Feature names for formats that carry none (ONNX), in input order.
    #[serde(default)]
    pub features: Option<Vec<String>>,
}

fn default_registry_poll_ms() -> u64 {
    1000
}

impl ModelConfig {
    /// Names the model's source in messages: its file, or its registry name.
    pub fn describe(&self) -> String {
        match (&self.path, &self.registry) {
            (Some(p), _) => p.display().to_string(),
            (None, Some(name)) => format!("registry model {name}"),
            (None, None) => "model".into(),
        }
    }
}

/// Shadow scoring: the registry model's challengers score every event too, to this topic only.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShadowConfig {
    pub topic: String,
}

/// Operational alerts (e.g. a promoted model that cannot serve) as JSON records on a topic.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertsConfig {
    pub topic: String,
}

/// Where predictions go and what they carry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputConfig {
    pub topic: String,
    /// Input fields copied into every prediction record (missing ones are omitted).
    #[serde(default)]
    pub pass_through: Vec<String>,
    /// Include class probabilities (default true).
    #[serde(default = "yes")]
    pub probabilities: bool,
}

fn yes() -> bool {
    true
}

/// The dead-letter topic.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeadLetterConfig {
    pub topic: String,
}

/// Delivery guarantee and commit cadence.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeliveryConfig {
    #[serde(default)]
    pub guarantee: Guarantee,
    /// Commit at least this often (milliseconds) while records flow.
    #[serde(default = "default_commit_ms")]
    pub commit_interval_ms: u64,
    /// ... or once this many input records are uncommitted.
    #[serde(default = "default_commit_records")]
    pub commit_max_records: usize,
    /// Append one line per committed transaction (`{"txn":..,"seq":..}`) to this file, fsynced.
    /// Lets a checker tell committed transactions from aborted ones on brokers that show both.
    #[serde(default)]
    pub commit_ledger: Option<PathBuf>,
}

fn default_commit_ms() -> u64 {
    100
}
fn default_commit_records() -> usize {
    10_000
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        DeliveryConfig {
            guarantee: Guarantee::default(),
            commit_interval_ms: default_commit_ms(),
            commit_max_records: default_commit_records(),
            commit_ledger: None,
        }
    }
}

/// Delivery guarantees.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Guarantee {
    /// Input positions are stored only after the outputs are acknowledged; a crash may repeat outputs.
    AtLeastOnce,
    /// Outputs and input positions commit atomically (Kafka transactions; the embedded log's commit).
    #[default]
    ExactlyOnce,
}

/// Flow control and parallelism.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProcessingConfig {
    /// Records per micro-batch handed to the model (per partition).
    #[serde(default = "default_batch")]
    pub batch_size: usize,
    /// Micro-batches in flight per partition before it is paused.
    #[serde(default = "default_in_flight")]
    pub max_in_flight_batches: usize,
    /// Scoring threads (0 = score on the consumer thread).
    #[serde(default = "default_workers")]
    pub workers: usize,
}

fn default_batch() -> usize {
    256
}
fn default_in_flight() -> usize {
    4
}
fn default_workers() -> usize {
    1
}

impl Default for ProcessingConfig {
    fn default() -> Self {
        ProcessingConfig {
            batch_size: default_batch(),
            max_in_flight_batches: default_in_flight(),
            workers: default_workers(),
        }
    }
}

/// The HTTP endpoint for `/metrics` and `/health`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsConfig {
    /// e.g. `0.0.0.0:9100`; no endpoint when omitted.
    #[serde(default)]
    pub listen: Option<SocketAddr>,
}

impl PipelineConfig {
    /// Reads and validates a pipeline file.
    pub fn load(path: &Path) -> Result<PipelineConfig, StreamError> {
        let text = std::fs::read_to_string(path).map_err(|e| StreamError::Config {
            place: path.display().to_string(),
            message: format!("cannot read: {e}"),
        })?;
        let mut config = Self::parse(&text, &path.display().to_string())?;
        // Relative paths in the file are relative to the file.
        if let Some(base) = path.parent() {
            config.resolve_paths(base);
        }
        Ok(config)
    }

    /// Parses and validates YAML text; `source` names it in errors.
    pub fn parse(text: &str, source: &str) -> Result<PipelineConfig, StreamError> {
        let config: PipelineConfig = serde_norway::from_str(text).map_err(|e| {
            let place = match e.location() {
                Some(l) => format!("{source}:{}:{}", l.line(), l.column()),
                None => source.to_string(),
            };
            // serde_norway appends " at line L column C"; the place already says it.
            let msg = e.to_string();
            let msg = msg
                .rsplit_once(" at line ")
                .map(|(m, _)| m.to_string())
                .unwrap_or(msg);
            StreamError::Config {
                place,
                message: msg,
            }
        })?;
        config.validate(source)?;
        Ok(config)
    }

    fn resolve_paths(&mut self, base: &Path) {
        let fix = |p: &mut PathBuf| {
            if p.is_relative() && !base.as_os_str().is_empty() {
                *p = base.join(&*p);
            }
        };
        if let Some(p) = &mut self.model.path {
            fix(p);
        }
        if let Some(p) = &mut self.model.registry_dir {
            fix(p);
        }
        if let TransportConfig::Embedded(e) = &mut self.transport {
            fix(&mut e.dir);
        }
        if let Some(l) = &mut self.delivery.commit_ledger {
            fix(l);
        }
    }

    /// Checks what the types cannot.
    pub fn validate(&self, source: &str) -> Result<(), StreamError> {
        let bad = |key: &str, message: String| {
            Err(StreamError::Config {
                place: format!("{source}: {key}"),
                message,
            })
        };
        if self.name.trim().is_empty() {
            return bad("name", "must not be empty".into());
        }
        if self.input.topics.is_empty() {
            return bad("input.topics", "name at least one topic".into());
        }
        match (&self.model.path, &self.model.registry) {
            (Some(_), Some(_)) => {
                return bad(
                    "model",
                    "give either path (a model file) or registry (a model to follow), not both"
                        .into(),
                )
            }
            (None, None) => {
                return bad(
                    "model",
                    "give path (a model file) or registry (a model name in the registry)".into(),
                )
            }
            (None, Some(name)) => {
                if let Err(e) = dipper_registry::wire::validate_name(name) {
                    return bad("model.registry", e.to_string());
                }
                if self.model.version.is_some() {
                    return bad(
                        "model.version",
                        "a registry model's version is the registry's; remove model.version".into(),
                    );
                }
                if self.model.registry_poll_ms == 0 {
                    return bad("model.registry_poll_ms", "must be positive".into());
                }
            }
            (Some(_), None) => {
                if self.model.registry_topic.is_some() || self.model.registry_dir.is_some() {
                    return bad(
                        "model",
                        "registry_topic and registry_dir apply only with model.registry".into(),
                    );
                }
            }
        }
        let mut topics: Vec<&str> = self.input.topics.iter().map(String::as_str).collect();
        topics.push(&self.output.topic);
        topics.push(&self.dead_letter.topic);
        if let Some(sh) = &self.shadow {
            if self.model.registry.is_none() {
                return bad(
                    "shadow",
                    "shadow scoring scores the registry model's challengers: set model.registry"
                        .into(),
                );
            }
            topics.push(&sh.topic);
            if self.input.topics.contains(&sh.topic)
                || sh.topic == self.output.topic
                || sh.topic == self.dead_letter.topic
            {
                return bad(
                    "shadow.topic",
                    format!(
                        "topic '{}' is already the pipeline's input, output or dead-letter topic",
                        sh.topic
                    ),
                );
            }
        }
        if let Some(a) = &self.alerts {
            topics.push(&a.topic);
            if self.input.topics.contains(&a.topic) {
                return bad(
                    "alerts.topic",
                    format!("topic '{}' is also an input", a.topic),
                );
            }
        }
        for t in &topics {
            if let Err(e) = dipper_log::validate_topic_name(t) {
                return bad("topic", e.to_string());
            }
        }
        for t in &self.input.topics {
            if *t == self.output.topic || *t == self.dead_letter.topic {
                return bad(
                    "input.topics",
                    format!(
                        "topic '{t}' is also an output; a pipeline must not consume its own output"
                    ),
                );
            }
        }
        if self.output.topic == self.dead_letter.topic {
            return bad(
                "dead_letter.topic",
                "must differ from output.topic so bad records never look like predictions".into(),
            );
        }
        if self.delivery.commit_interval_ms == 0 {
            return bad("delivery.commit_interval_ms", "must be positive".into());
        }
        if self.delivery.commit_max_records == 0 {
            return bad("delivery.commit_max_records", "must be positive".into());
        }
        if self.processing.batch_size == 0 {
            return bad("processing.batch_size", "must be positive".into());
        }
        if self.processing.max_in_flight_batches == 0 {
            return bad(
                "processing.max_in_flight_batches",
                "must be positive".into(),
            );
        }
        if let TransportConfig::Kafka(k) = &self.transport {
            if k.brokers.trim().is_empty() {
                return bad("transport.kafka.brokers", "must not be empty".into());
            }
            if !matches!(k.auto_offset_reset.as_str(), "earliest" | "latest") {
                return bad(
                    "transport.kafka.auto_offset_reset",
                    format!("'{}' is not earliest or latest", k.auto_offset_reset),
                );
            }
        }
        if let TransportConfig::Embedded(e) = &self.transport {
            if e.create_topics == Some(0) {
                return bad(
                    "transport.embedded.create_topics",
                    "must be positive".into(),
                );
            }
        }
        Ok(())
    }

    /// The consumer group / position owner.
    pub fn group_id(&self) -> String {
        let explicit = match &self.transport {
            TransportConfig::Kafka(k) => k.group_id.clone(),
            TransportConfig::Embedded(e) => e.group_id.clone(),
        };
        explicit.unwrap_or_else(|| format!("dipper-{}", self.name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = "name: p\ninput:\n  topics: [in]\nmodel:\n  path: m.json\noutput:\n  topic: out\ndead_letter:\n  topic: dlq\n";

    #[test]
    fn minimal_config_defaults_to_embedded_exactly_once() {
        let c = PipelineConfig::parse(MINIMAL, "p.yaml").unwrap();
        assert!(matches!(c.transport, TransportConfig::Embedded(_)));
        assert_eq!(c.delivery.guarantee, Guarantee::ExactlyOnce);
        assert_eq!(c.group_id(), "dipper-p");
        assert!(c.output.probabilities);
    }

    #[test]
    fn unknown_key_names_key_and_line() {
        let text = MINIMAL.replace("output:\n  topic: out", "output:\n  topic: out\n  topcs: x");
        let e = PipelineConfig::parse(&text, "p.yaml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("p.yaml:8:"), "{e}");
        assert!(e.contains("topcs"), "{e}");
    }

    #[test]
    fn kafka_transport_and_properties() {
        let text = format!(
            "{MINIMAL}transport:\n  kafka:\n    brokers: b:9092\n    properties:\n      security.protocol: SASL_SSL\ndelivery:\n  guarantee: at-least-once\n"
        );
        let c = PipelineConfig::parse(&text, "p.yaml").unwrap();
        let TransportConfig::Kafka(k) = &c.transport else {
            panic!("kafka expected")
        };
        assert_eq!(k.properties["security.protocol"], "SASL_SSL");
        assert_eq!(c.delivery.guarantee, Guarantee::AtLeastOnce);
    }

    #[test]
    fn embedded_section_and_both_transports_refused() {
        let text = format!("{MINIMAL}transport:\n  embedded:\n    dir: d\n    create_topics: 2\n");
        let c = PipelineConfig::parse(&text, "p.yaml").unwrap();
        let TransportConfig::Embedded(e) = &c.transport else {
            panic!("embedded expected")
        };
        assert_eq!(e.create_topics, Some(2));
        let text = format!("{MINIMAL}transport:\n  embedded: {{}}\n  kafka:\n    brokers: b\n");
        let e = PipelineConfig::parse(&text, "p.yaml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("only one"), "{e}");
        let text = format!("{MINIMAL}transport:\n  embedded:\n    dri: d\n");
        let e = PipelineConfig::parse(&text, "p.yaml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("dri") && e.contains("p.yaml:12:"), "{e}");
    }

    #[test]
    fn bad_values_are_named() {
        let cases = [
            (
                MINIMAL.replace("topics: [in]", "topics: []"),
                "input.topics",
            ),
            (
                MINIMAL.replace("topics: [in]", "topics: [out]"),
                "input.topics",
            ),
            (
                MINIMAL.replace("topic: dlq", "topic: out"),
                "dead_letter.topic",
            ),
            (MINIMAL.replace("topic: dlq", "topic: 'a b'"), "topic"),
            (
                format!("{MINIMAL}processing:\n  batch_size: 0\n"),
                "batch_size",
            ),
            (format!("{MINIMAL}delivery:\n  guarantee: twice\n"), "twice"),
        ];
        for (text, needle) in cases {
            let e = PipelineConfig::parse(&text, "p.yaml")
                .unwrap_err()
                .to_string();
            assert!(e.contains(needle), "{needle}: {e}");
        }
    }

    #[test]
    fn missing_required_section_is_named() {
        let text = MINIMAL.replace("dead_letter:\n  topic: dlq\n", "");
        let e = PipelineConfig::parse(&text, "p.yaml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("dead_letter"), "{e}");
    }
}

//! Scoring one micro-batch of one partition: decode every record, run the model once over the rows
//! that decoded, and turn each input into exactly one output — a prediction, or a dead-letter record
//! saying why. Order within the partition is kept. This is the hot path; it is transport-free so the
//! same code runs on Kafka, on the embedded log and in the engine benchmark.
//!
//! [`ScoringPlan`] is built once (model loaded and checked against the pipeline) and shared
//! immutable; each worker owns a [`Scorer`] with its scratch buffers.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use dipper_core::{FeatureSchema, MissingPolicy};
use dipper_models::{Format, Model, Predictions};
use dipper_monitor::DeadLetterReason;

use crate::config::PipelineConfig;
use crate::decode::{EventDecoder, EventMeta, JsonDecoder, MetaFields};
use crate::encode::{Encoder, ModelLabel, RESERVED_FIELDS};
use crate::error::{RecordError, StreamError};
use crate::swap::PlanCell;
use crate::transport::{InRecord, OutRecord, TopicPartition};

/// Everything needed to score, built once per pipeline and shared by all workers.
pub struct ScoringPlan {
    pub model: Arc<dyn Model>,
    pub label: ModelLabel,
    /// The model's features as named in events.
    pub schema: FeatureSchema,
    pub missing: MissingPolicy,
    pub meta: MetaFields,
    pub encoder: Encoder,
}

fn parse_format(s: &str) -> Option<Format> {
    Some(match s {
        "lightgbm" => Format::Lightgbm,
        "xgboost" => Format::Xgboost,
        "onnx" => Format::Onnx,
        "native" => Format::Native,
        "pmml" => Format::Pmml,
        _ => return None,
    })
}

impl ScoringPlan {
    /// Loads the model named by `config` and checks that the pipeline can feed it.
    pub fn from_config(config: &PipelineConfig) -> Result<Self, StreamError> {
        let shown = config.model.describe();
        let Some(path) = &config.model.path else {
            return Err(StreamError::Model {
                path: shown,
                message:
                    "a registry model is loaded from the registry (crate::swap), not from a file"
                        .into(),
            });
        };
        let bad = |message: String| StreamError::Model {
            path: shown.clone(),
            message,
        };
        let format = match &config.model.format {
            None => None,
            Some(f) => Some(parse_format(f).ok_or_else(|| {
                bad(format!(
                    "model.format '{f}' is not one of lightgbm, xgboost, onnx, native"
                ))
            })?),
        };
        let model = dipper_models::load(Path::new(path), format).map_err(|e| bad(e.to_string()))?;
        Self::new(config, model)
    }

    /// Builds the plan around an already loaded model.
    pub fn new(config: &PipelineConfig, model: Arc<dyn Model>) -> Result<Self, StreamError> {
        Self::with_source(config, model, &config.model.describe())
    }

    /// [`ScoringPlan::new`] for a model that came from `source` (named in errors).
    pub fn with_source(
        config: &PipelineConfig,
        model: Arc<dyn Model>,
        source: &str,
    ) -> Result<Self, StreamError> {
        let shown = source.to_string();
        let bad = |message: String| StreamError::Model {
            path: shown.clone(),
            message,
        };
        let info = model.info();
        let mut schema = info.features.clone();
        if let Some(names) = &config.model.features {
            schema = schema
                .renamed(names)
                .map_err(|e| bad(format!("model.features does not fit the model: {e}")))?;
        } else if !info.named_features {
            return Err(bad(format!(
                "this {} model carries no feature names: list its {} inputs in order under model.features",
                info.id.format,
                info.features.len()
            )));
        }
        if !config.input.feature_fields.is_empty() {
            let names: Vec<String> = schema.names().map(str::to_string).collect();
            for feature in config.input.feature_fields.keys() {
                if !names.iter().any(|n| n == feature) {
                    return Err(bad(format!(
                        "input.feature_fields names '{feature}', which is not a model feature"
                    )));
                }
            }
            let fields: Vec<String> = names
                .iter()
                .map(|n| config.input.feature_fields.get(n).unwrap_or(n).clone())
                .collect();
            schema = schema
                .renamed(&fields)
                .map_err(|e| bad(format!("input.feature_fields: {e}")))?;
        }
        for p in &config.output.pass_through {
            if RESERVED_FIELDS.contains(&p.as_str()) {
                return Err(StreamError::Config {
                    place: "output.pass_through".into(),
                    message: format!("'{p}' is a field the prediction record already has"),
                });
            }
        }
        let label = ModelLabel {
            name: config
                .model
                .name
                .clone()
                .unwrap_or_else(|| info.id.name.clone()),
            version: config
                .model
                .version
                .clone()
                .unwrap_or_else(|| info.id.digest.chars().take(12).collect()),
            format: info.id.format.name().to_string(),
        };
        let encoder = Encoder::new(
            &config.name,
            &config.output.topic,
            &config.dead_letter.topic,
            info,
            &label,
            config.output.probabilities,
            &config.output.pass_through,
        );
        Ok(ScoringPlan {
            missing: if info.accepts_missing {
                MissingPolicy::Allow
            } else {
                MissingPolicy::Reject
            },
            meta: MetaFields {
                event_id: config.input.event_id_field.clone(),
                event_time: config.input.event_time_field.clone(),
                pass_through: config.output.pass_through.clone(),
            },
            model,
            label,
            schema,
            encoder,
        })
    }
}

/// A micro-batch: consecutive records of one partition.
#[derive(Debug)]
pub struct Batch {
    pub tp: TopicPartition,
    /// The partition's assignment generation when the records were polled; results of an older
    /// generation are dropped (the partition was revoked or rewound meanwhile).
    pub generation: u64,
    pub records: Vec<InRecord>,
    /// When the records were polled: scoring latency runs from here.
    pub polled_at: Instant,
}

/// The outputs of one batch, in input order.
#[derive(Debug)]
pub struct Scored {
    pub tp: TopicPartition,
    pub generation: u64,
    pub outputs: Vec<OutRecord>,
    /// The offset after the batch's last record.
    pub next_offset: u64,
    pub records_in: usize,
    pub bytes_in: usize,
    pub dead_letters: Vec<DeadLetterReason>,
    /// Per prediction: event time (ms) for end-to-end latency.
    pub event_times: Vec<i64>,
    pub polled_at: Instant,
    pub batch_seconds: f64,
    /// Challengers' predictions, for the shadow topic.
    pub shadow: Vec<OutRecord>,
    /// Records a challenger could not score (counted only).
    pub shadow_skipped: usize,
}

/// A challenger and its scratch space.
struct Shadow {
    plan: Arc<ScoringPlan>,
    decoder: Box<dyn EventDecoder>,
    rows: Vec<f64>,
    preds: Predictions,
    one: Predictions,
    metas: Vec<EventMeta>,
    /// Indexes of the records that decoded, in row order.
    ok: Vec<usize>,
}

/// Per-worker scoring state.
pub struct Scorer {
    plan: Arc<ScoringPlan>,
    /// Where a new plan comes from in a pipeline that follows the registry, and the epoch last seen.
    cell: Option<(Arc<PlanCell>, u64)>,
    shadows: Vec<Shadow>,
    decoder: Box<dyn EventDecoder>,
    rows: Vec<f64>,
    preds: Predictions,
    one: Predictions,
    metas: Vec<EventMeta>,
    /// Per input: Ok(row index) or the reason it is dead-lettered.
    fate: Vec<Result<usize, RecordError>>,
    buf: Vec<u8>,
}

impl Scorer {
    pub fn new(plan: Arc<ScoringPlan>) -> Self {
        Scorer {
            decoder: Self::decoder(&plan),
            plan,
            cell: None,
            shadows: Vec::new(),
            rows: Vec::new(),
            preds: Predictions::default(),
            one: Predictions::default(),
            metas: Vec::new(),
            fate: Vec::new(),
            buf: Vec::with_capacity(512),
        }
    }

    /// A scorer that switches to the cell's plan whenever it changes, between batches.
    pub fn following(cell: Arc<PlanCell>) -> Self {
        let epoch = cell.epoch();
        let mut s = Scorer::new(cell.get());
        s.cell = Some((cell, epoch));
        s
    }

    fn decoder(plan: &ScoringPlan) -> Box<dyn EventDecoder> {
        Box::new(JsonDecoder::new(
            plan.schema.clone(),
            plan.missing,
            plan.meta.clone(),
        ))
    }

    /// The plan the next batch is scored with.
    pub fn plan(&self) -> &Arc<ScoringPlan> {
        &self.plan
    }

    /// Takes a new plan (and challengers) from the cell, if there is one: a batch is always scored by
    /// one plan.
    fn follow(&mut self) {
        if let Some((cell, seen)) = &mut self.cell {
            let epoch = cell.epoch();
            if epoch != *seen {
                *seen = epoch;
                self.plan = cell.get();
                self.decoder = Self::decoder(&self.plan);
                self.shadows = cell
                    .challengers()
                    .iter()
                    .map(|plan| Shadow {
                        decoder: Self::decoder(plan),
                        plan: plan.clone(),
                        rows: Vec::new(),
                        preds: Predictions::default(),
                        one: Predictions::default(),
                        metas: Vec::new(),
                        ok: Vec::new(),
                    })
                    .collect();
            }
        }
    }

    /// The challengers' predictions for `records` (to the shadow topic, same keys and event ids), and how
    /// many records a challenger could not score (they are only counted: dead letters are the champion's).
    fn score_shadows(
        &mut self,
        records: &[InRecord],
        latency_us: f64,
        now_ms: i64,
    ) -> (Vec<OutRecord>, usize) {
        let mut out = Vec::new();
        let mut skipped = 0;
        for sh in &mut self.shadows {
            let nf = sh.plan.schema.len();
            sh.rows.clear();
            sh.ok.clear();
            if sh.metas.len() < records.len() {
                sh.metas.resize_with(records.len(), EventMeta::default);
            }
            for (i, rec) in records.iter().enumerate() {
                let Some(value) = &rec.value else {
                    skipped += 1;
                    continue;
                };
                let start = sh.rows.len();
                sh.rows.resize(start + nf, f64::NAN);
                match sh
                    .decoder
                    .decode(value, &mut sh.rows[start..], &mut sh.metas[i])
                {
                    Ok(()) => sh.ok.push(i),
                    Err(_) => {
                        sh.rows.truncate(start);
                        skipped += 1;
                    }
                }
            }
            if sh.ok.is_empty() {
                continue;
            }
            let batch_ok = sh.plan.model.predict_batch(&sh.rows, &mut sh.preds).is_ok();
            for (row, &i) in sh.ok.iter().enumerate() {
                let pred = if batch_ok {
                    sh.preds.get(row)
                } else {
                    match sh
                        .plan
                        .model
                        .predict_one(&sh.rows[row * nf..(row + 1) * nf], &mut sh.one)
                    {
                        Ok(()) => sh.one.get(0),
                        Err(_) => {
                            skipped += 1;
                            continue;
                        }
                    }
                };
                let rec = &records[i];
                let meta = &sh.metas[i];
                let input = InRecord {
                    tp: rec.tp.clone(),
                    offset: rec.offset,
                    key: rec.key.clone(),
                    value: Some(Vec::new()),
                    timestamp: rec.timestamp,
                };
                let event_time = meta.event_time.unwrap_or(rec.timestamp);
                out.push(sh.plan.encoder.prediction(
                    input,
                    meta,
                    pred,
                    latency_us,
                    event_time,
                    now_ms,
                    &mut self.buf,
                ));
            }
        }
        (out, skipped)
    }

    /// Scores a batch; never fails: every input yields one output.
    pub fn score(&mut self, batch: Batch) -> Scored {
        self.follow();
        let started = Instant::now();
        let n_features = self.plan.schema.len();
        let n = batch.records.len();
        self.rows.clear();
        self.rows.resize(n * n_features, f64::NAN);
        if self.metas.len() < n {
            self.metas.resize_with(n, EventMeta::default);
        }
        self.fate.clear();
        let mut bytes_in = 0;
        let mut ok = 0;
        for (i, rec) in batch.records.iter().enumerate() {
            let fate = match &rec.value {
                None => Err(RecordError {
                    reason: DeadLetterReason::Decode,
                    field: None,
                    message: "record has no value (a tombstone)".into(),
                }),
                Some(value) => {
                    bytes_in += value.len();
                    let row = &mut self.rows[ok * n_features..(ok + 1) * n_features];
                    self.decoder
                        .decode(value, row, &mut self.metas[i])
                        .map(|()| {
                            ok += 1;
                            ok - 1
                        })
                }
            };
            self.fate.push(fate);
        }
        self.rows.truncate(ok * n_features);
        let plan = self.plan.clone();
        let model = &plan.model;
        let batch_failed = ok > 0 && model.predict_batch(&self.rows, &mut self.preds).is_err();
        let mut outputs = Vec::with_capacity(n);
        let mut dead_letters = Vec::new();
        let mut event_times = Vec::with_capacity(ok);
        let now_ms = now_millis();
        // One clock reading per batch: its records were polled together and scored together.
        let latency_us = batch.polled_at.elapsed().as_secs_f64() * 1e6;
        let next_offset = batch.records.last().map_or(0, |r| r.offset + 1);
        let (shadow, shadow_skipped) = if self.shadows.is_empty() {
            (Vec::new(), 0)
        } else {
            self.score_shadows(&batch.records, latency_us, now_ms)
        };
        // Each input moves into its output (key, and value for dead letters): nothing is copied.
        for (i, rec) in batch.records.into_iter().enumerate() {
            let row = match &self.fate[i] {
                Ok(r) => *r,
                Err(e) => {
                    dead_letters.push(e.reason);
                    outputs.push(self.plan.encoder.dead_letter(rec, e));
                    continue;
                }
            };
            // A failed batch is retried row by row so one bad row cannot take its neighbours down.
            let preds = if batch_failed {
                let x = &self.rows[row * n_features..(row + 1) * n_features];
                if let Err(e) = model.predict_one(x, &mut self.one) {
                    let err = RecordError {
                        reason: DeadLetterReason::Model,
                        field: None,
                        message: e.to_string(),
                    };
                    dead_letters.push(err.reason);
                    outputs.push(self.plan.encoder.dead_letter(rec, &err));
                    continue;
                }
                self.one.get(0)
            } else {
                self.preds.get(row)
            };
            let meta = &self.metas[i];
            let event_time = meta.event_time.unwrap_or(rec.timestamp);
            event_times.push(event_time);
            outputs.push(self.plan.encoder.prediction(
                rec,
                meta,
                preds,
                latency_us,
                event_time,
                now_ms,
                &mut self.buf,
            ));
        }
        Scored {
            tp: batch.tp,
            generation: batch.generation,
            outputs,
            next_offset,
            records_in: n,
            bytes_in,
            dead_letters,
            event_times,
            polled_at: batch.polled_at,
            batch_seconds: started.elapsed().as_secs_f64(),
            shadow,
            shadow_skipped,
        }
    }
}

/// Wall-clock milliseconds since the Unix epoch.
pub fn now_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

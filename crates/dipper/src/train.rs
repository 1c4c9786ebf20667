//! `dipper train`: builds a model from a CSV/JSON-lines file or a Kafka topic snapshot, validates it (k-fold or
//! holdout), prints a metrics table (and optionally JSON), and writes a native model file that `dipper predict`
//! and `dipper run` load with no other flags.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use dipper_train::data::kafka::{self, KafkaSnapshot};
use dipper_train::data::{DatasetBuilder, ReadOptions, TaskHint};
use dipper_train::run::{self, Reporter, Validation};
use dipper_train::Progress;
use indicatif::{ProgressBar, ProgressStyle};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TaskArg {
    Auto,
    Classification,
    Regression,
}

#[derive(Debug, Args)]
pub struct TrainArgs {
    /// Training data: a CSV (.csv, .tsv) or JSON-lines file. Use --topic to read Kafka instead.
    #[arg(long, required_unless_present = "topic", conflicts_with = "topic")]
    input: Option<PathBuf>,
    /// Kafka topic to read as a snapshot (every partition up to its high watermark at start).
    #[arg(long, requires = "brokers")]
    topic: Option<String>,
    /// Kafka bootstrap servers, e.g. localhost:9092.
    #[arg(long)]
    brokers: Option<String>,
    /// Extra librdkafka properties for the topic read, e.g. security.protocol=SASL_SSL (repeatable).
    #[arg(long = "kafka-property", value_name = "KEY=VALUE")]
    kafka_properties: Vec<String>,
    /// Read the topic from the first record at or after this time (milliseconds since the epoch).
    #[arg(long)]
    from_timestamp: Option<i64>,
    /// The field to predict.
    #[arg(long)]
    label: String,
    /// gbm, rf, glm, nb, mlp or tree.
    #[arg(long)]
    algorithm: String,
    /// Where to write the model file.
    #[arg(long)]
    output: PathBuf,
    /// k-fold cross-validation (stratified for classification); the written model is then fitted on all rows.
    #[arg(long, conflicts_with = "holdout")]
    cv: Option<usize>,
    /// Hold out this fraction for validation; the written model is the one fitted on the rest.
    #[arg(long)]
    holdout: Option<f64>,
    /// Carve this fraction out of each training part as a validation set for early stopping (gbm).
    #[arg(long)]
    valid_fraction: Option<f64>,
    /// Use only these fields as features, in this order (comma-separated).
    #[arg(long, value_delimiter = ',')]
    features: Vec<String>,
    /// Fields that are not features (comma-separated), e.g. ids.
    #[arg(long, value_delimiter = ',')]
    exclude: Vec<String>,
    /// Fields to treat as categorical even when they hold numbers (comma-separated).
    #[arg(long, value_delimiter = ',')]
    categorical: Vec<String>,
    /// Classification or regression; `auto` decides from the label's values.
    #[arg(long, value_enum, default_value = "auto")]
    task: TaskArg,
    /// A hyperparameter, e.g. --param num_leaves=63 (repeatable; values are JSON, else strings).
    #[arg(long = "param", value_name = "KEY=VALUE")]
    params: Vec<String>,
    /// Hyperparameters as one JSON object (merged under --param).
    #[arg(long)]
    params_json: Option<String>,
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Worker threads (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
    /// Also write the validation metrics as JSON to this file.
    #[arg(long)]
    metrics_json: Option<PathBuf>,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
    /// Also publish the model to the registry as the next version of this name, with its data source,
    /// parameters and validation metrics as provenance.
    #[arg(long, value_name = "NAME")]
    publish: Option<String>,
    /// With --publish: make the new version the champion.
    #[arg(long, requires = "publish")]
    promote: bool,
    /// With --publish: the registry on Kafka (bootstrap servers); else the embedded registry (--registry-dir).
    #[arg(long, requires = "publish")]
    registry_brokers: Option<String>,
    /// With --publish: the embedded registry's directory.
    #[arg(long, default_value = "dipper-data/registry")]
    registry_dir: PathBuf,
    /// With --publish: the registry topic.
    #[arg(long, default_value = dipper_registry::DEFAULT_TOPIC)]
    registry_topic: String,
}

pub fn run(args: TrainArgs) -> Result<ExitCode> {
    let started = Instant::now();
    if let Some(n) = args.threads {
        rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build_global()
            .context("cannot start worker threads")?;
    }
    let options = ReadOptions {
        label: args.label.clone(),
        include: args.features.clone(),
        exclude: args.exclude.clone(),
        categorical: args.categorical.clone(),
        task: match args.task {
            TaskArg::Auto => TaskHint::Auto,
            TaskArg::Classification => TaskHint::Classification,
            TaskArg::Regression => TaskHint::Regression,
        },
    };
    let (data, source) = match (&args.input, &args.topic) {
        (Some(path), _) => dipper_train::data::read_file(path, &options)?,
        (None, Some(topic)) => {
            let snapshot = KafkaSnapshot {
                brokers: args.brokers.clone().unwrap_or_default(),
                topic: topic.clone(),
                properties: key_values(&args.kafka_properties, "--kafka-property")?,
                from_timestamp_ms: args.from_timestamp,
                idle_timeout: Duration::from_secs(30),
            };
            let mut builder = DatasetBuilder::new(options);
            let (_, source) = kafka::read(&snapshot, &mut builder)?;
            (builder.finish()?, source)
        }
        (None, None) => bail!("give --input FILE or --topic TOPIC --brokers HOST:PORT"),
    };
    let params = hyperparameters(args.params_json.as_deref(), &args.params)?;
    let algorithm = dipper_train::algorithm(&args.algorithm, &params, args.seed)?;
    let validation = match (args.cv, args.holdout) {
        (Some(k), _) => Validation::KFold(k),
        (None, Some(f)) => Validation::Holdout(f),
        (None, None) => Validation::None,
    };
    eprintln!(
        "dipper train: {} rows, {} features, {} with {}",
        data.n_rows(),
        data.n_features(),
        match data.n_classes() {
            0 => "regression".to_string(),
            k => format!("{k} classes"),
        },
        args.algorithm
    );
    let bar = Bar::new(args.quiet);
    let provenance = serde_json::json!({
        "algorithm": args.algorithm,
        "params": params,
        "seed": args.seed,
        "label": args.label,
        "data": source.clone(),
        "rows": data.n_rows(),
    });
    let outcome = run::train(
        &data,
        algorithm.as_ref(),
        validation,
        args.valid_fraction,
        args.seed,
        source,
        &bar,
    )?;
    bar.finish();
    print!("{}", run::table(&outcome, data.classes()));
    let json = outcome.model.to_json();
    let tmp = args.output.with_extension("tmp");
    std::fs::write(&tmp, json.as_bytes())
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, &args.output)
        .with_context(|| format!("cannot write {}", args.output.display()))?;
    if let Some(path) = &args.metrics_json {
        let text = serde_json::to_string_pretty(&outcome.metrics)?;
        std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))?;
    }
    eprintln!(
        "dipper train: wrote {} ({} bytes) in {:.1}s",
        args.output.display(),
        json.len(),
        started.elapsed().as_secs_f64()
    );
    if let Some(name) = &args.publish {
        publish(&args, name, provenance, &outcome.metrics)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// `--publish`: the written model as the next version of `name`.
fn publish(
    args: &TrainArgs,
    name: &str,
    provenance: serde_json::Value,
    metrics: &serde_json::Value,
) -> Result<()> {
    let registry = crate::model::RegistryArgs {
        brokers: args.registry_brokers.clone(),
        registry_dir: args.registry_dir.clone(),
        registry_topic: args.registry_topic.clone(),
        kafka_properties: Vec::new(),
        replication_factor: None,
    };
    let mut reg = dipper_registry::Registry::open(crate::model::open_store(&registry)?)?;
    let mut extra = match provenance {
        serde_json::Value::Object(m) => m,
        _ => serde_json::Map::new(),
    };
    extra.insert("metrics".into(), metrics.clone());
    let p = crate::model::PublishArgs {
        name: name.to_string(),
        file: args.output.clone(),
        format: Some("native".into()),
        features: Vec::new(),
        meta: Vec::new(),
        promote: args.promote,
        unchecked: false,
        chunk_bytes: dipper_registry::DEFAULT_CHUNK_BYTES,
    };
    let meta = crate::model::publish(&mut reg, &p, extra)?;
    eprintln!(
        "dipper train: published {name} version {} to {}",
        meta.version,
        reg.describe()
    );
    if args.promote {
        reg.change(name, dipper_registry::StageChange::Promote(meta.version))?;
        eprintln!(
            "dipper train: {name} version {} is the champion",
            meta.version
        );
    }
    Ok(())
}

/// `--params-json` overlaid with `--param key=value` pairs.
fn hyperparameters(json: Option<&str>, pairs: &[String]) -> Result<serde_json::Value> {
    let mut map = match json {
        Some(text) => {
            match serde_json::from_str(text).context("--params-json is not valid JSON")? {
                serde_json::Value::Object(m) => m,
                _ => bail!("--params-json must be a JSON object"),
            }
        }
        None => serde_json::Map::new(),
    };
    for (k, v) in key_values(pairs, "--param")? {
        let value = serde_json::from_str(&v).unwrap_or(serde_json::Value::String(v));
        map.insert(k, value);
    }
    Ok(serde_json::Value::Object(map))
}

fn key_values(pairs: &[String], flag: &str) -> Result<Vec<(String, String)>> {
    pairs
        .iter()
        .map(|p| match p.split_once('=') {
            Some((k, v)) if !k.trim().is_empty() => {
                Ok((k.trim().to_string(), v.trim().to_string()))
            }
            _ => bail!("{flag} {p:?}: expected KEY=VALUE"),
        })
        .collect()
}

/// A progress bar on standard error (hidden when it is not a terminal or with --quiet).
struct Bar {
    bar: ProgressBar,
}

impl Bar {
    fn new(quiet: bool) -> Self {
        let bar = if quiet {
            ProgressBar::hidden()
        } else {
            ProgressBar::new(0)
        };
        bar.set_style(
            ProgressStyle::with_template("{prefix:>14} [{bar:30}] {pos}/{len} {msg} ({elapsed})")
                .expect("valid template")
                .progress_chars("=> "),
        );
        Bar { bar }
    }

    fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

impl Progress for Bar {
    fn update(&self, done: u64, total: u64, message: &str) {
        if self.bar.length() != Some(total) {
            self.bar.set_length(total);
        }
        self.bar.set_position(done);
        self.bar.set_message(message.to_string());
    }
}

impl Reporter for Bar {
    fn phase(&self, name: &str) {
        self.bar.set_prefix(name.to_string());
        self.bar.set_position(0);
    }
}

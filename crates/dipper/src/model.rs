//! `dipper model`: publish model versions to the registry on the log, list and show them, and move them
//! between stages (promote, roll back, challenge, archive, delete). Pipelines with `model: {registry: NAME}`
//! follow the champion.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use dipper_models::Format;
use dipper_registry::{
    EmbeddedStore, KafkaStore, KafkaStoreConfig, PublishRequest, Registry, StageChange, Store,
    VersionMeta, DEFAULT_CHUNK_BYTES, DEFAULT_TOPIC,
};

/// `println!` that ends quietly when stdout is closed (e.g. piped into `head`) instead of panicking.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

/// Where the registry is: Kafka when `--brokers` is given, else an embedded-log directory.
#[derive(Debug, Clone, Args)]
pub struct RegistryArgs {
    /// Kafka bootstrap servers; without it the registry is on the embedded log (--registry-dir).
    #[arg(long, global = true)]
    pub brokers: Option<String>,
    /// The embedded registry's directory (its own log, shared by `dipper model` and running pipelines).
    #[arg(long, global = true, default_value = "dipper-data/registry")]
    pub registry_dir: PathBuf,
    /// The registry topic.
    #[arg(long, global = true, default_value = DEFAULT_TOPIC)]
    pub registry_topic: String,
    /// librdkafka property for the registry's clients, e.g. security.protocol=SASL_SSL (repeatable).
    #[arg(long = "kafka-property", value_name = "KEY=VALUE", global = true)]
    pub kafka_properties: Vec<String>,
    /// Replication factor when dipper creates the registry topic on Kafka (default: the broker's).
    #[arg(long, global = true)]
    pub replication_factor: Option<i32>,
}

#[derive(Debug, Args)]
pub struct ModelArgs {
    #[command(flatten)]
    registry: RegistryArgs,
    #[command(subcommand)]
    command: ModelCommand,
}

#[derive(Debug, Subcommand)]
enum ModelCommand {
    /// Publish a model file as the next version of NAME (a candidate). The file must load.
    Publish(PublishArgs),
    /// Every model: champion, challengers, number of versions, last change.
    List,
    /// One model's versions with stage, format, size, checksum and where each came from.
    Show {
        name: String,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Make VERSION the champion that pipelines follow (it is fetched, checked and loaded first).
    Promote {
        name: String,
        version: u32,
        /// Promote even if the artifact does not load here.
        #[arg(long)]
        force: bool,
    },
    /// Return to the previous champion.
    Rollback { name: String },
    /// Score VERSION in shadow beside the champion (or stop, with --remove).
    Challenge {
        name: String,
        version: u32,
        #[arg(long)]
        remove: bool,
    },
    /// Retire a version that is not the champion.
    Archive { name: String, version: u32 },
    /// Delete a version that is not the champion (its number is never reused).
    Delete { name: String, version: u32 },
    /// Write a version's artifact (default: the champion's) to a file, checked against its SHA-256.
    Fetch {
        name: String,
        #[arg(long)]
        version: Option<u32>,
        #[arg(long)]
        output: PathBuf,
    },
}

#[derive(Debug, Args)]
pub struct PublishArgs {
    pub name: String,
    pub file: PathBuf,
    /// Force the format instead of detecting it: lightgbm, xgboost, onnx, native.
    #[arg(long)]
    pub format: Option<String>,
    /// Feature names in input order, for formats that carry none (ONNX).
    #[arg(long, value_delimiter = ',')]
    pub features: Vec<String>,
    /// Provenance to record, e.g. --meta data=s3://bucket/x --meta auc=0.95 (repeatable; values are JSON, else
    /// strings).
    #[arg(long = "meta", value_name = "KEY=VALUE")]
    pub meta: Vec<String>,
    /// Promote the new version to champion right away.
    #[arg(long)]
    pub promote: bool,
    /// Publish without loading the file first (it is still checksummed).
    #[arg(long)]
    pub unchecked: bool,
    /// Artifact chunk size in bytes (must fit the topic's message limit).
    #[arg(long, default_value_t = DEFAULT_CHUNK_BYTES)]
    pub chunk_bytes: usize,
}

/// The registry's store as the arguments name it.
pub fn open_store(args: &RegistryArgs) -> Result<Box<dyn Store>> {
    Ok(match &args.brokers {
        Some(brokers) => Box::new(KafkaStore::new(KafkaStoreConfig {
            brokers: brokers.clone(),
            topic: args.registry_topic.clone(),
            properties: key_values(&args.kafka_properties, "--kafka-property")?,
            replication_factor: args.replication_factor,
        })?),
        None => Box::new(EmbeddedStore::new(
            &args.registry_dir,
            &args.registry_topic,
        )?),
    })
}

fn key_values(items: &[String], flag: &str) -> Result<BTreeMap<String, String>> {
    items
        .iter()
        .map(|kv| match kv.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
            _ => bail!("{flag} {kv:?}: expected KEY=VALUE"),
        })
        .collect()
}

pub fn run(args: ModelArgs) -> Result<ExitCode> {
    let mut reg = Registry::open(open_store(&args.registry)?)?;
    match args.command {
        ModelCommand::Publish(p) => {
            let meta = publish(&mut reg, &p, serde_json::Map::new())?;
            say!(
                "published {} version {} ({}, {} bytes, sha256 {})",
                meta.name,
                meta.version,
                if meta.format.is_empty() {
                    "format unknown"
                } else {
                    &meta.format
                },
                meta.bytes,
                &meta.sha256[..12]
            );
            if p.promote {
                reg.change(&meta.name, StageChange::Promote(meta.version))?;
                say!("{} version {} is the champion", meta.name, meta.version);
            }
        }
        ModelCommand::List => list(&reg),
        ModelCommand::Show { name, json } => show(&reg, &name, json)?,
        ModelCommand::Promote {
            name,
            version,
            force,
        } => {
            if !force {
                check_loads(&mut reg, &name, version)?;
            }
            let s = reg.change(&name, StageChange::Promote(version))?;
            say!(
                "{name} version {version} is the champion (history: {:?})",
                s.history
            );
        }
        ModelCommand::Rollback { name } => {
            let s = reg.change(&name, StageChange::Rollback)?;
            say!("{name}: {}", s.change);
        }
        ModelCommand::Challenge {
            name,
            version,
            remove,
        } => {
            let s = reg.change(&name, StageChange::Challenge(version, !remove))?;
            say!("{name}: challengers {:?}", s.challengers);
        }
        ModelCommand::Archive { name, version } => {
            reg.change(&name, StageChange::Archive(version))?;
            say!("{name} version {version} is archived");
        }
        ModelCommand::Delete { name, version } => {
            reg.delete(&name, version)?;
            say!("{name} version {version} is deleted");
        }
        ModelCommand::Fetch {
            name,
            version,
            output,
        } => {
            let version = match version {
                Some(v) => v,
                None => match reg.state().champion(&name) {
                    Some(c) => c.meta.version,
                    None => {
                        reg.state().model(&name)?;
                        bail!("{name} has no champion; name a version with --version")
                    }
                },
            };
            let a = reg.fetch(&name, version)?;
            std::fs::write(&output, &a.bytes)
                .with_context(|| format!("writing {}", output.display()))?;
            say!("wrote {name} version {version} to {}", output.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Publishes `p.file` (loaded first unless `--unchecked`) with provenance `extra` plus the file and
/// `--meta` entries.
pub fn publish(
    reg: &mut Registry<Box<dyn Store>>,
    p: &PublishArgs,
    mut extra: serde_json::Map<String, serde_json::Value>,
) -> Result<VersionMeta> {
    let bytes = std::fs::read(&p.file).with_context(|| format!("reading {}", p.file.display()))?;
    let forced = match &p.format {
        Some(f) => Some(Format::parse(f).with_context(|| {
            format!("--format {f}: expected lightgbm, xgboost, onnx or native")
        })?),
        None => None,
    };
    let (format, mut features) = if p.unchecked {
        (
            forced.map(Format::name).unwrap_or_default().to_string(),
            Vec::new(),
        )
    } else {
        let shown = p.file.display().to_string();
        let model =
            dipper_models::load_bytes(&bytes, &shown, &p.name, forced).with_context(|| {
                format!("{shown} does not load as a model (use --unchecked to publish it anyway)")
            })?;
        let info = model.info();
        let names = if info.named_features {
            info.features.names().map(str::to_string).collect()
        } else {
            Vec::new()
        };
        (info.id.format.name().to_string(), names)
    };
    if !p.features.is_empty() {
        features = p.features.clone();
    }
    extra.insert("file".into(), file_name(&p.file).into());
    for (k, v) in key_values(&p.meta, "--meta")? {
        let value = serde_json::from_str(&v).unwrap_or(serde_json::Value::String(v));
        extra.insert(k, value);
    }
    if let Ok(host) = std::env::var("HOSTNAME") {
        extra.entry("host").or_insert(host.into());
    }
    Ok(reg.publish(&PublishRequest {
        name: p.name.clone(),
        artifact: bytes,
        format,
        features,
        source: serde_json::Value::Object(extra),
        chunk_bytes: p.chunk_bytes,
    })?)
}

fn file_name(path: &Path) -> String {
    std::fs::canonicalize(path)
        .unwrap_or_else(|_| path.to_path_buf())
        .display()
        .to_string()
}

/// Fetches a version and loads it, so a promote never points pipelines at an artifact that cannot serve.
fn check_loads(reg: &mut Registry<Box<dyn Store>>, name: &str, version: u32) -> Result<()> {
    let a = reg.fetch(name, version)?;
    let format = Format::parse(&a.meta.format);
    dipper_models::load_bytes(&a.bytes, &format!("{name} version {version}"), name, format)
        .with_context(|| {
            format!("{name} version {version} does not load (use --force to promote it anyway)")
        })?;
    Ok(())
}

fn list(reg: &Registry<Box<dyn Store>>) {
    let state = reg.state();
    if state.models.is_empty() {
        say!("no models in {}", reg.describe());
        return;
    }
    say!(
        "{:<24} {:>9} {:>9} {:<12} last change",
        "model",
        "champion",
        "versions",
        "challengers"
    );
    for (name, m) in &state.models {
        let champion = m
            .stages
            .champion
            .map_or_else(|| "-".to_string(), |v| v.to_string());
        let challengers: Vec<String> = m.stages.challengers.iter().map(u32::to_string).collect();
        say!(
            "{name:<24} {champion:>9} {:>9} {:<12} {}",
            m.versions.len(),
            if challengers.is_empty() {
                "-".into()
            } else {
                challengers.join(",")
            },
            m.stages.change
        );
    }
    if !state.skipped.is_empty() {
        say!(
            "({} records on the topic are not registry records; the newest: offset {}: {})",
            state.skipped.len(),
            state.skipped[state.skipped.len() - 1].offset,
            state.skipped[state.skipped.len() - 1].reason
        );
    }
}

fn show(reg: &Registry<Box<dyn Store>>, name: &str, json: bool) -> Result<()> {
    let m = reg.state().model(name)?;
    if json {
        let versions: Vec<serde_json::Value> = m
            .versions
            .values()
            .rev()
            .map(|e| {
                let mut v = serde_json::to_value(&e.meta).unwrap_or_default();
                v["stage"] = m.stages.stage_of(e.meta.version).to_string().into();
                v["complete"] = e.complete().into();
                v
            })
            .collect();
        let out = serde_json::json!({"stages": m.stages, "versions": versions});
        say!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    say!("{name}: {}", m.stages.change);
    say!(
        "{:>7} {:<10} {:<8} {:>10} {:<12} {:<20} source",
        "version",
        "stage",
        "format",
        "bytes",
        "sha256",
        "published"
    );
    for e in m.versions.values().rev() {
        let meta = &e.meta;
        say!(
            "{:>7} {:<10} {:<8} {:>10} {:<12} {:<20} {}{}",
            meta.version,
            m.stages.stage_of(meta.version).to_string(),
            if meta.format.is_empty() {
                "?"
            } else {
                &meta.format
            },
            meta.bytes,
            &meta.sha256[..12.min(meta.sha256.len())],
            time_text(meta.created_ms),
            meta.source,
            if e.complete() {
                ""
            } else {
                " (artifact incomplete)"
            }
        );
    }
    Ok(())
}

/// UTC time as `YYYY-MM-DD HH:MM:SS`.
fn time_text(ms: i64) -> String {
    dipper_core::time::UtcTime::from_unix_millis(ms).text()
}

//! `dipper run PIPELINE.yaml`: runs a scoring pipeline until SIGINT/SIGTERM, with structured logs
//! and an optional Prometheus endpoint; `--check` validates the file and the model without running.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use dipper_monitor::{metrics_handler, HttpServer, Registry};
use dipper_stream::config::TransportConfig;
use dipper_stream::{Pipeline, PipelineConfig};

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The pipeline file (YAML).
    pub pipeline: PathBuf,
    /// Validate the file and the model, print what would run, and exit.
    #[arg(long)]
    pub check: bool,
    /// Log format on stderr.
    #[arg(long, value_enum, default_value = "text")]
    pub log_format: LogFormat,
    /// Serve /metrics and /health here, overriding `metrics.listen` (e.g. 127.0.0.1:9100).
    #[arg(long)]
    pub metrics_listen: Option<std::net::SocketAddr>,
    /// Stop gracefully (drain, commit, leave) once no record has arrived for this many milliseconds.
    #[arg(long, value_name = "MS")]
    pub exit_when_idle: Option<u64>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// Installs the log subscriber: `RUST_LOG` filters (default `info`), text or JSON lines on stderr.
pub fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

/// Sets the returned flag on SIGINT or SIGTERM; a second signal exits at once.
pub fn stop_on_signals() -> Result<Arc<AtomicBool>> {
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        // Order matters: the conditional shutdown is registered first, so it sees the flag
        // before this signal sets it.
        signal_hook::flag::register_conditional_shutdown(sig, 130, stop.clone())
            .context("installing signal handlers")?;
        signal_hook::flag::register(sig, stop.clone()).context("installing signal handlers")?;
    }
    Ok(stop)
}

pub fn run(args: RunArgs) -> Result<ExitCode> {
    let config = PipelineConfig::load(&args.pipeline)?;
    let pipeline = Pipeline::new(config)?
        .exit_when_idle(args.exit_when_idle.map(std::time::Duration::from_millis));
    if args.check {
        print_check(&pipeline);
        return Ok(ExitCode::SUCCESS);
    }
    init_logging(args.log_format);
    let stop = stop_on_signals()?;
    let listen = args.metrics_listen.or(pipeline.config().metrics.listen);
    let _server = match listen {
        Some(addr) => {
            let registry = Arc::new(Registry::new());
            registry
                .register(pipeline.metrics())
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            let server = HttpServer::start(addr, metrics_handler(registry))
                .with_context(|| format!("serving metrics on {addr}"))?;
            tracing::info!(addr = %server.local_addr(), "serving /metrics and /health");
            Some(server)
        }
        None => None,
    };
    let summary = pipeline.run(stop.clone())?;
    eprintln!(
        "dipper run: {} in, {} predictions, {} dead-lettered, {} commits, {} aborts",
        summary.records_in,
        summary.predictions,
        summary.dead_lettered,
        summary.commits,
        summary.aborts
    );
    let _ = stop.load(Ordering::Relaxed);
    Ok(ExitCode::SUCCESS)
}

fn print_check(p: &Pipeline) {
    let c = p.config();
    let plan = p.plan();
    let transport = match &c.transport {
        TransportConfig::Kafka(k) => format!("kafka {} (group {})", k.brokers, c.group_id()),
        TransportConfig::Embedded(e) => {
            format!("embedded log {} (group {})", e.dir.display(), c.group_id())
        }
    };
    println!("pipeline {}: ok", c.name);
    println!("  transport: {transport}");
    println!(
        "  input:     {} ({:?}, event id: {})",
        c.input.topics.join(", "),
        c.input.format,
        c.input
            .event_id_field
            .as_deref()
            .unwrap_or("topic/partition/offset")
    );
    println!(
        "  model:     {} version {} ({}), {} features, {} classes",
        plan.label.name,
        plan.label.version,
        plan.label.format,
        plan.schema.len(),
        plan.model.info().n_classes()
    );
    println!("  output:    {}", c.output.topic);
    println!("  dead letters: {}", c.dead_letter.topic);
    println!(
        "  delivery:  {:?}, commit every {} ms or {} records",
        c.delivery.guarantee, c.delivery.commit_interval_ms, c.delivery.commit_max_records
    );
}

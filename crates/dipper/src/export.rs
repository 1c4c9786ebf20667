//! `dipper export`: writes a native model (from `dipper train`) in an interchange format so other tools can
//! score it. PMML 4.4 for now (`dipper_models::pmml_export`); third-party models are refused, since their own
//! library exports them better.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use dipper_models::pmml_export::{self, PmmlOptions};

/// The formats `dipper export` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExportFormat {
    /// PMML 4.4 (XML).
    Pmml,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The native model file to export (written by `dipper train`).
    #[arg(long)]
    model: PathBuf,
    /// The format to write.
    #[arg(long, value_enum)]
    format: ExportFormat,
    /// Where to write it; `-` for stdout.
    #[arg(long)]
    output: PathBuf,
}

pub fn run(args: ExportArgs) -> Result<ExitCode> {
    let shown = args.model.display().to_string();
    let len = std::fs::metadata(&args.model)
        .with_context(|| format!("{shown}: cannot read model file"))?
        .len();
    if len > dipper_models::MAX_MODEL_BYTES {
        anyhow::bail!(
            "{shown}: file is {len} bytes, larger than the {} limit",
            dipper_models::MAX_MODEL_BYTES
        );
    }
    let bytes =
        std::fs::read(&args.model).with_context(|| format!("{shown}: cannot read model file"))?;
    let name = args
        .model
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let document = match args.format {
        ExportFormat::Pmml => pmml_export::export_bytes(
            &bytes,
            &shown,
            &PmmlOptions {
                application_version: env!("CARGO_PKG_VERSION").to_string(),
                model_name: name,
            },
        )?,
    };
    if args.output.as_os_str() == "-" {
        let mut out = std::io::stdout().lock();
        out.write_all(document.as_bytes())
            .and_then(|()| out.flush())
            .context("writing to stdout")?;
    } else {
        std::fs::write(&args.output, document.as_bytes())
            .with_context(|| format!("writing {}", args.output.display()))?;
        eprintln!(
            "dipper export: wrote {} as PMML {} to {}",
            shown,
            pmml_export::PMML_VERSION,
            args.output.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

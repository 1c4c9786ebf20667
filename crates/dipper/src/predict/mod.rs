//! `dipper predict`: scores JSON-lines events with any model dipper loads, in constant memory.
//!
//! Events are read line by line, decoded by field name into the model's feature order, scored in batches and
//! written in input order, one JSON object per event. A line that cannot be scored (malformed JSON, a non-numeric
//! value, a missing feature the model cannot treat as missing, a line over the length limit) stops the run with
//! an error naming the input, line and field (`--on-error stop`, the default), or with `--on-error skip` is
//! reported on stderr, written with its reason to `--rejects FILE` if given, counted, and left out of the output.

mod lines;
mod output;

use std::fs::File;
use std::io::{self, BufReader, BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use dipper_core::{DecodeError, FeatureSchema, MissingPolicy, RowDecoder};
use dipper_models::{Format, Model, ModelInfo, Predictions};
use serde_json::value::RawValue;

use lines::{LineRead, LineReader};
use output::OutputWriter;

/// Lines longer than this are rejected without being held in memory.
const MAX_LINE_BYTES: usize = 16 << 20;
/// Rejected lines reported individually on stderr before only counting.
const MAX_REPORTED: u64 = 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FormatArg {
    Auto,
    Lightgbm,
    Xgboost,
    Onnx,
    /// dipper's own model file (`dipper train`).
    Native,
    /// PMML 4.x.
    Pmml,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OnError {
    /// Stop at the first bad line with a non-zero exit code (lines before it are written).
    Stop,
    /// Report and count bad lines, leave them out of the output, and go on.
    Skip,
}

#[derive(Debug, Args)]
pub struct PredictArgs {
    /// Model file (dipper's own, LightGBM text, XGBoost JSON, ONNX or PMML).
    #[arg(long)]
    model: PathBuf,
    /// Model format; `auto` tells it from the file's content.
    #[arg(long, value_enum, default_value = "auto")]
    format: FormatArg,
    /// Input field names in the model's feature order, comma-separated. Needed for formats without feature names
    /// (ONNX, XGBoost trained on arrays); for models with names it must name every one of them, and names the
    /// model does not read are ignored (a PMML tree that uses only some of the fields, for example).
    #[arg(long, value_delimiter = ',')]
    features: Option<Vec<String>>,
    /// JSON-lines input, one event object per line; `-` reads standard input.
    #[arg(long)]
    input: PathBuf,
    /// JSON-lines output, one object per scored event in input order; `-` writes standard output.
    #[arg(long)]
    output: PathBuf,
    /// What a line that cannot be scored does.
    #[arg(long, value_enum, default_value = "stop")]
    on_error: OnError,
    /// With `--on-error skip`: write each rejected line as {"line", "error", "field", "input"} to this file.
    #[arg(long)]
    rejects: Option<PathBuf>,
    /// Input fields copied into each output object (e.g. an event id), comma-separated.
    #[arg(long, value_delimiter = ',')]
    keep: Vec<String>,
    /// Events scored per model call.
    #[arg(long, default_value_t = 512, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    batch_size: u32,
    /// No summary on standard error.
    #[arg(long)]
    quiet: bool,
}

pub fn run(args: PredictArgs) -> Result<ExitCode> {
    let started = Instant::now();
    let format = match args.format {
        FormatArg::Auto => None,
        FormatArg::Lightgbm => Some(Format::Lightgbm),
        FormatArg::Xgboost => Some(Format::Xgboost),
        FormatArg::Onnx => Some(Format::Onnx),
        FormatArg::Native => Some(Format::Native),
        FormatArg::Pmml => Some(Format::Pmml),
    };
    let model = dipper_models::load(&args.model, format)?;
    let info = model.info();
    let schema = input_schema(info, args.features.as_deref())?;
    for k in &args.keep {
        if k == "prediction" || k == "probabilities" {
            bail!("--keep {k}: the output already has a field named '{k}'");
        }
    }
    if args.rejects.is_some() && args.on_error == OnError::Stop {
        bail!("--rejects needs --on-error skip (with stop, the first bad line ends the run)");
    }
    let policy = if info.accepts_missing {
        MissingPolicy::Allow
    } else {
        MissingPolicy::Reject
    };
    let input_name = if args.input.as_os_str() == "-" {
        "<stdin>".to_string()
    } else {
        args.input.display().to_string()
    };
    let input: Box<dyn io::BufRead> = if args.input.as_os_str() == "-" {
        Box::new(io::stdin().lock())
    } else {
        Box::new(BufReader::with_capacity(
            1 << 16,
            File::open(&args.input).with_context(|| format!("cannot open input {input_name}"))?,
        ))
    };
    let output: Box<dyn Write> = if args.output.as_os_str() == "-" {
        Box::new(io::stdout().lock())
    } else {
        Box::new(
            File::create(&args.output)
                .with_context(|| format!("cannot create output {}", args.output.display()))?,
        )
    };
    let rejects = match &args.rejects {
        Some(p) => Some(BufWriter::new(File::create(p).with_context(|| {
            format!("cannot create rejects file {}", p.display())
        })?)),
        None => None,
    };
    let mut job = Job {
        model: model.as_ref(),
        decoder: RowDecoder::new(schema, policy),
        writer: OutputWriter::new(info, model.output_fields()),
        out: BufWriter::with_capacity(1 << 16, output),
        rejects,
        input_name,
        on_error: args.on_error,
        keep: args.keep,
        batch_size: args.batch_size as usize,
        stats: Stats::default(),
    };
    let result = job.score(LineReader::new(input, MAX_LINE_BYTES));
    let flushed = job.finish();
    result?;
    flushed?;
    if !args.quiet {
        let s = &job.stats;
        eprintln!(
            "dipper predict: {} events scored, {} rejected, {} blank lines skipped, with {} in {:.2}s",
            s.scored,
            s.rejected,
            s.blank,
            info.id,
            started.elapsed().as_secs_f64()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// The schema input fields are decoded with: the model's own names, or `--features` for a model without names.
fn input_schema(info: &ModelInfo, features: Option<&[String]>) -> Result<FeatureSchema> {
    let Some(names) = features else {
        if !info.named_features {
            bail!(
                "the model does not name its {} features: give their input field names in order with --features a,b,c",
                info.features.len()
            );
        }
        return Ok(info.features.clone());
    };
    let names: Vec<&str> = names
        .iter()
        .map(|n| n.trim())
        .filter(|n| !n.is_empty())
        .collect();
    let model_names: Vec<&str> = info.features.names().collect();
    let generated = model_names
        .iter()
        .enumerate()
        .all(|(i, n)| *n == format!("Column_{i}") || *n == format!("f{i}"));
    if info.named_features && !generated {
        // The model's names rule; --features may restate them in any order, and name fields it does not read.
        let absent: Vec<_> = model_names.iter().filter(|n| !names.contains(n)).collect();
        if !absent.is_empty() {
            let unknown: Vec<_> = names
                .iter()
                .filter(|n| info.features.index_of(n).is_none())
                .collect();
            bail!(
                "--features does not name all of the model's own features (not in --features: {absent:?}; not in the model: {unknown:?})"
            );
        }
        return Ok(info.features.clone());
    }
    Ok(info.features.renamed(&names)?)
}

#[derive(Debug, Default)]
struct Stats {
    scored: u64,
    rejected: u64,
    blank: u64,
}

struct Job<'a> {
    model: &'a dyn Model,
    decoder: RowDecoder,
    writer: OutputWriter,
    out: BufWriter<Box<dyn Write>>,
    rejects: Option<BufWriter<File>>,
    input_name: String,
    on_error: OnError,
    keep: Vec<String>,
    batch_size: usize,
    stats: Stats,
}

/// Rows decoded and waiting to be scored, with the fields to pass through.
struct Batch {
    rows: Vec<f64>,
    kept: Vec<Vec<(String, Box<RawValue>)>>,
    /// The batch's input lines, back to back, and each one's line number and span: a row the model refuses
    /// is rejected with its own line.
    text: Vec<u8>,
    spans: Vec<(u64, std::ops::Range<usize>)>,
    len: usize,
}

impl Job<'_> {
    fn score(&mut self, mut reader: LineReader<Box<dyn io::BufRead + '_>>) -> Result<()> {
        let nf = self.decoder.schema().len();
        let mut batch = Batch {
            rows: Vec::with_capacity(self.batch_size * nf),
            kept: Vec::new(),
            text: Vec::new(),
            spans: Vec::new(),
            len: 0,
        };
        let mut predictions = Predictions::default();
        let mut line = Vec::new();
        let mut row = vec![0.0; nf];
        loop {
            let read = reader.next_line(&mut line).with_context(|| {
                format!(
                    "{}: read failed after line {}",
                    self.input_name,
                    reader.line_no()
                )
            })?;
            let line_no = reader.line_no();
            let decoded = match read {
                LineRead::Eof => break,
                LineRead::TooLong(len) => Err(DecodeError {
                    field: None,
                    message: format!("line is {len} bytes, over the {MAX_LINE_BYTES} limit"),
                }),
                LineRead::Line if line.iter().all(u8::is_ascii_whitespace) => {
                    self.stats.blank += 1;
                    continue;
                }
                LineRead::Line => self.decoder.decode_json(&line, &mut row),
            };
            match decoded {
                Ok(()) => {
                    batch.rows.extend_from_slice(&row);
                    if !self.keep.is_empty() {
                        batch.kept.push(kept_fields(&line, &self.keep));
                    }
                    let start = batch.text.len();
                    batch.text.extend_from_slice(&line);
                    batch.spans.push((line_no, start..batch.text.len()));
                    batch.len += 1;
                }
                Err(e) => {
                    // Lines before a bad one are always written, in order.
                    self.flush_batch(&mut batch, &mut predictions)?;
                    self.reject(line_no, &line, &e)?;
                }
            }
            if batch.len == self.batch_size {
                self.flush_batch(&mut batch, &mut predictions)?;
            }
        }
        self.flush_batch(&mut batch, &mut predictions)
    }

    fn flush_batch(&mut self, batch: &mut Batch, predictions: &mut Predictions) -> Result<()> {
        if batch.len == 0 {
            return Ok(());
        }
        let none = Vec::new();
        if self.model.predict_batch(&batch.rows, predictions).is_ok() {
            for i in 0..batch.len {
                let kept = batch.kept.get(i).unwrap_or(&none);
                self.writer
                    .write(
                        &mut self.out,
                        kept,
                        predictions.get(i),
                        predictions.outputs(i),
                    )
                    .context("cannot write output")?;
            }
            self.stats.scored += batch.len as u64;
        } else {
            // Some row cannot be scored (e.g. a PMML invalid value): score one by one, rejecting only those.
            let nf = self.decoder.schema().len();
            let mut one = Predictions::default();
            for i in 0..batch.len {
                match self
                    .model
                    .predict_one(&batch.rows[i * nf..(i + 1) * nf], &mut one)
                {
                    Ok(()) => {
                        let kept = batch.kept.get(i).unwrap_or(&none);
                        self.writer
                            .write(&mut self.out, kept, one.get(0), one.outputs(0))
                            .context("cannot write output")?;
                        self.stats.scored += 1;
                    }
                    Err(e) => {
                        let (line_no, span) = batch.spans[i].clone();
                        let error = DecodeError {
                            field: None,
                            message: e.to_string(),
                        };
                        self.reject(line_no, &batch.text[span], &error)?;
                    }
                }
            }
        }
        batch.rows.clear();
        batch.kept.clear();
        batch.text.clear();
        batch.spans.clear();
        batch.len = 0;
        Ok(())
    }

    fn reject(&mut self, line_no: u64, line: &[u8], e: &DecodeError) -> Result<()> {
        let place = format!("{} line {line_no}", self.input_name);
        if self.on_error == OnError::Stop {
            bail!("{place}: {e} (use --on-error skip to report bad lines and go on)");
        }
        self.stats.rejected += 1;
        if self.stats.rejected <= MAX_REPORTED {
            eprintln!("dipper predict: skipped {place}: {e}");
        } else if self.stats.rejected == MAX_REPORTED + 1 {
            eprintln!(
                "dipper predict: more lines skipped; only the count is reported from here on"
            );
        }
        if let Some(w) = &mut self.rejects {
            let record = serde_json::json!({
                "line": line_no,
                "error": e.to_string(),
                "field": e.field,
                "input": String::from_utf8_lossy(line),
            });
            serde_json::to_writer(&mut *w, &record).context("cannot write rejects file")?;
            w.write_all(b"\n").context("cannot write rejects file")?;
        }
        Ok(())
    }

    fn finish(&mut self) -> Result<()> {
        self.out.flush().context("cannot write output")?;
        if let Some(w) = &mut self.rejects {
            w.flush().context("cannot write rejects file")?;
        }
        Ok(())
    }
}

/// The `--keep` fields of a line that decoded as an object (absent fields are left out).
fn kept_fields(line: &[u8], keep: &[String]) -> Vec<(String, Box<RawValue>)> {
    let Ok(map) = serde_json::from_slice::<std::collections::HashMap<String, Box<RawValue>>>(line)
    else {
        return Vec::new();
    };
    let mut map = map;
    keep.iter()
        .filter_map(|k| map.remove(k).map(|v| (k.clone(), v)))
        .collect()
}

//! Reading training data: CSV and JSON-lines files, and Kafka topics read as a bounded snapshot. Every source
//! yields records of named values that [`builder::DatasetBuilder`] turns into a [`Dataset`]: feature kinds are
//! inferred (a column with any non-numeric string is categorical), categories are coded in sorted order, the
//! label decides the task (strings, booleans or exactly the values {0, 1} make a classification; `--task`
//! overrides), and bad input is an error naming the file and line (or topic, partition and offset) and field.

pub mod builder;
pub mod csv_file;
pub mod jsonl;
pub mod kafka;

use std::path::Path;

pub use builder::{DatasetBuilder, Raw, ReadOptions, TaskHint};

use crate::{Dataset, TrainError};

/// Reads a CSV (`.csv`, `.tsv`) or JSON-lines (anything else) file into a dataset.
pub fn read_file(
    path: &Path,
    options: &ReadOptions,
) -> Result<(Dataset, serde_json::Value), TrainError> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    let mut builder = DatasetBuilder::new(options.clone());
    let rows = match ext.as_str() {
        "csv" => csv_file::read(path, b',', &mut builder)?,
        "tsv" => csv_file::read(path, b'\t', &mut builder)?,
        _ => jsonl::read(path, &mut builder)?,
    };
    let source =
        serde_json::json!({ "kind": "file", "path": path.display().to_string(), "rows": rows });
    Ok((builder.finish()?, source))
}

//! CSV (and TSV) training files: a header row names the fields; cells are parsed with
//! [`builder::parse_cell`](super::builder::parse_cell). Errors name the file and line.

use std::path::Path;

use super::builder::{parse_cell, DatasetBuilder};
use crate::TrainError;

/// Reads every record into `builder`; returns the number of records.
pub fn read(path: &Path, delimiter: u8, builder: &mut DatasetBuilder) -> Result<usize, TrainError> {
    let shown = path.display().to_string();
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .flexible(false)
        .from_path(path)
        .map_err(|e| TrainError::Io(format!("{shown}: {e}")))?;
    let header: Vec<String> = reader
        .headers()
        .map_err(|e| csv_error(&shown, &e))?
        .iter()
        .map(|h| h.trim().to_string())
        .collect();
    let mut record = csv::StringRecord::new();
    let mut n = 0;
    loop {
        match reader.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => return Err(csv_error(&shown, &e)),
        }
        let line = record.position().map(|p| p.line()).unwrap_or(0);
        builder.push(
            &|| format!("{shown} line {line}"),
            header
                .iter()
                .map(|h| h.as_str())
                .zip(record.iter().map(parse_cell)),
        )?;
        n += 1;
    }
    Ok(n)
}

fn csv_error(shown: &str, e: &csv::Error) -> TrainError {
    let line = e
        .position()
        .map(|p| format!(" line {}", p.line()))
        .unwrap_or_default();
    TrainError::data(format!("{shown}{line}"), e.to_string())
}

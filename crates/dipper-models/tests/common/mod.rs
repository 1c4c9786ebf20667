//! Shared by the fixture tests: scores a fixture case (`case.json`, `input.jsonl`, `expected.jsonl`, written by
//! the exporting library) through the public API exactly as `dipper predict` does (named JSON fields ->
//! RowDecoder -> Model) and compares with the library's own output.

#![allow(dead_code)] // each test binary uses its own part of this module

use std::path::{Path, PathBuf};

use dipper_core::{MissingPolicy, RowDecoder};
use dipper_models::{Model, PredictionRef, Predictions};
use serde_json::Value;

/// The workspace's `fixtures/` folder.
pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures")
}

pub fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

pub fn read_case(dir: &Path) -> Value {
    serde_json::from_str(&read(&dir.join("case.json"))).unwrap()
}

/// The case folders (those with a `case.json`) under `fixtures/<folder>`, sorted.
pub fn case_dirs(folder: &str) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(fixtures().join(folder))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("case.json").exists())
        .collect();
    dirs.sort();
    dirs
}

/// Loads the case's model file.
pub fn load_case_model(dir: &Path) -> Result<std::sync::Arc<dyn Model>, String> {
    let case = read_case(dir);
    dipper_models::load(&dir.join(case["model"].as_str().unwrap()), None)
        .map_err(|e| format!("load: {e}"))
}

/// Scores every input row of the case with `model`, in one batch and row by row (which must agree exactly),
/// and returns the first difference from the expected output, or the number of rows checked.
///
/// Values must match within the case's tolerance (relative above 1: references may compute in f32); class labels exactly, except
/// where the reference's two top probabilities are themselves within the tolerance (a tie either way).
pub fn check_case(model: &dyn Model, dir: &Path) -> Result<usize, String> {
    let case = read_case(dir);
    let info = model.info();
    let names: Vec<&str> = case["features"]
        .as_array()
        .map(|a| a.iter().map(|v| v.as_str().unwrap()).collect())
        .unwrap_or_default();
    let schema = if info.named_features {
        // The case may list fields the model does not read (a PMML tree using some of them), in any order.
        let own: Vec<&str> = info.features.names().collect();
        if !names.is_empty() && own.iter().any(|n| !names.contains(n)) {
            return Err(format!(
                "model features {own:?} are not all in case features {names:?}"
            ));
        }
        info.features.clone()
    } else {
        info.features.renamed(&names).map_err(|e| e.to_string())?
    };
    let task_is_class = case["task"] == "classification";
    if task_is_class != (info.n_classes() > 0) {
        return Err(format!(
            "case task {} but {} classes",
            case["task"],
            info.n_classes()
        ));
    }
    let policy = if info.accepts_missing {
        MissingPolicy::Allow
    } else {
        MissingPolicy::Reject
    };
    let mut dec = RowDecoder::new(schema, policy);
    let nf = info.features.len();
    let mut rows = Vec::new();
    for (i, line) in read(&dir.join("input.jsonl")).lines().enumerate() {
        let mut row = vec![0.0; nf];
        dec.decode_json(line.as_bytes(), &mut row)
            .map_err(|e| format!("input line {}: {e}", i + 1))?;
        rows.extend(row);
    }
    let expected: Vec<Value> = read(&dir.join("expected.jsonl"))
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let mut out = Predictions::default();
    model
        .predict_batch(&rows, &mut out)
        .map_err(|e| e.to_string())?;
    if out.len() != expected.len() {
        return Err(format!(
            "{} predictions for {} expected",
            out.len(),
            expected.len()
        ));
    }
    let tol = case["tolerance"].as_f64().unwrap();
    let mut one = Predictions::default();
    for (i, exp) in expected.iter().enumerate() {
        model
            .predict_one(&rows[i * nf..(i + 1) * nf], &mut one)
            .map_err(|e| e.to_string())?;
        if one.get(0) != out.get(i) {
            return Err(format!(
                "row {i}: single-row {:?} != batch {:?}",
                one.get(0),
                out.get(i)
            ));
        }
        match out.get(i) {
            PredictionRef::Value(v) => {
                let e = exp["prediction"].as_f64().unwrap();
                if (v - e).abs() > tol * e.abs().max(1.0) {
                    return Err(format!("row {i}: prediction {v} != {e}"));
                }
            }
            PredictionRef::Class {
                index,
                probabilities,
            } => {
                let mut want_p = Vec::new();
                for (k, p) in exp["probabilities"].as_object().unwrap() {
                    let j = info
                        .classes
                        .iter()
                        .position(|c| c.to_string() == *k)
                        .ok_or(format!("no class {k}"))?;
                    let p = p.as_f64().unwrap();
                    if (probabilities[j] - p).abs() > tol {
                        return Err(format!("row {i}: p[{k}] {} != {p}", probabilities[j]));
                    }
                    want_p.push(p);
                }
                let label = info.classes[index].to_string();
                let want = match &exp["prediction"] {
                    Value::String(s) => s.clone(),
                    v => v.to_string(),
                };
                want_p.sort_by(|a, b| b.total_cmp(a));
                let tie = want_p.len() > 1 && want_p[0] - want_p[1] <= tol;
                if label != want && !tie {
                    return Err(format!(
                        "row {i}: label {label} != {want} ({probabilities:?})"
                    ));
                }
            }
        }
    }
    Ok(expected.len())
}

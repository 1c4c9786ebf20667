//! Every third-party fixture in `fixtures/interop` whose format dipper loads must score as the exporting library
//! did: same labels, probabilities and values within the case's tolerance. Cases are run through the public API
//! exactly as `dipper predict` does (named JSON fields -> RowDecoder -> Model::predict_batch).

use std::path::{Path, PathBuf};

use dipper_core::{MissingPolicy, RowDecoder};
use dipper_models::{load, PredictionRef};
use serde_json::Value;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/interop")
}

/// Runs one case; returns a description of the first mismatch.
fn run_case(name: &str) -> Result<(), String> {
    let dir = fixtures().join(name);
    let case: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("case.json")).unwrap()).unwrap();
    let model =
        load(&dir.join(case["model"].as_str().unwrap()), None).map_err(|e| format!("load: {e}"))?;
    let info = model.info();
    let names: Vec<&str> = case["features"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    let schema = if info.named_features {
        info.features.clone()
    } else {
        info.features.renamed(&names).unwrap()
    };
    let policy = if info.accepts_missing {
        MissingPolicy::Allow
    } else {
        MissingPolicy::Reject
    };
    let mut dec = RowDecoder::new(schema, policy);
    let input = std::fs::read_to_string(dir.join("input.jsonl")).unwrap();
    let expected: Vec<Value> = std::fs::read_to_string(dir.join("expected.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let nf = info.features.len();
    let mut rows = Vec::new();
    for (i, line) in input.lines().enumerate() {
        let mut row = vec![0.0; nf];
        dec.decode_json(line.as_bytes(), &mut row)
            .map_err(|e| format!("line {}: {e}", i + 1))?;
        rows.extend(row);
    }
    let mut out = dipper_models::Predictions::default();
    model
        .predict_batch(&rows, &mut out)
        .map_err(|e| e.to_string())?;
    assert_eq!(out.len(), expected.len(), "{name}: row count");
    // The exporters' outputs are float32 in places; the checker allows 10x the case tolerance, we allow the case's.
    let tol = case["tolerance"].as_f64().unwrap();
    for (i, exp) in expected.iter().enumerate() {
        // Single-row scoring must agree exactly with batch scoring.
        let mut one = dipper_models::Predictions::default();
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
                if (v - e).abs() > tol.max(1e-6 * e.abs()) {
                    return Err(format!("row {i}: prediction {v} != {e}"));
                }
            }
            PredictionRef::Class {
                index,
                probabilities,
            } => {
                let label = info.classes[index].to_string();
                let want = match &exp["prediction"] {
                    Value::String(s) => s.clone(),
                    v => v.to_string(),
                };
                if label != want {
                    return Err(format!(
                        "row {i}: label {label} != {want} (probabilities {probabilities:?})"
                    ));
                }
                for (k, p) in exp["probabilities"].as_object().unwrap() {
                    let j = info
                        .classes
                        .iter()
                        .position(|c| c.to_string() == *k)
                        .ok_or(format!("no class {k}"))?;
                    let p = p.as_f64().unwrap();
                    if (probabilities[j] - p).abs() > tol.max(1e-6) {
                        return Err(format!("row {i}: p[{k}] {} != {p}", probabilities[j]));
                    }
                }
            }
        }
    }
    Ok(())
}

fn run_format(format: &str) {
    let index: Vec<String> =
        serde_json::from_str(&std::fs::read_to_string(fixtures().join("index.json")).unwrap())
            .unwrap();
    let mut failures = Vec::new();
    let mut ran = 0;
    for name in index {
        let case: Value = serde_json::from_str(
            &std::fs::read_to_string(fixtures().join(&name).join("case.json")).unwrap(),
        )
        .unwrap();
        if case["format"] != format {
            continue;
        }
        ran += 1;
        if let Err(e) = run_case(&name) {
            failures.push(format!("{name}: {e}"));
        }
    }
    assert!(ran > 0, "no {format} cases found");
    assert!(
        failures.is_empty(),
        "{} of {ran} {format} cases differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn lightgbm_cases_match_lightgbm() {
    run_format("lightgbm");
}

#[test]
fn xgboost_cases_match_xgboost() {
    run_format("xgboost");
}

#[test]
fn onnx_cases_match_onnxruntime() {
    run_format("onnx");
}

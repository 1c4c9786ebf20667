//! Hand-written PMML for the elements scikit-learn does not export (Scorecard with reason codes, SVM kernels,
//! GeneralRegression links, every RegressionModel normalization, transformations and built-in functions, tree
//! missing-value strategies), scored by dipper and compared row by row with PMML4S (pypmml), an independent
//! evaluator. The cases and their reference outputs are made by `tools/fixtures/make_pmml_fixtures.py`.
//!
//! A row the reference refuses (an invalid value under `returnInvalid`) or gives no prediction for must be an
//! error here too; every other row must match its label, probabilities, value and extra outputs (reason codes).

mod common;

use std::path::Path;

use common::{read, read_case};
use dipper_core::{MissingPolicy, RowDecoder};
use dipper_models::{OutputValue, PredictionRef, Predictions};
use serde_json::Value;

fn cases() -> Vec<std::path::PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/pmml");
    let mut dirs: Vec<_> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("case.json").exists())
        .collect();
    dirs.sort();
    dirs
}

fn close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol * b.abs().max(1.0)
}

fn label_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Checks one case; returns the row-level differences.
fn check(dir: &Path) -> Result<usize, String> {
    let case = read_case(dir);
    let model =
        dipper_models::load(&dir.join("model.pmml"), None).map_err(|e| format!("load: {e}"))?;
    let info = model.info();
    let tol = case["tolerance"].as_f64().unwrap().max(1e-12);
    let mut dec = RowDecoder::new(info.features.clone(), MissingPolicy::Allow);
    let inputs = read(&dir.join("input.jsonl"));
    let expected: Vec<Value> = read(&dir.join("expected.jsonl"))
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let out_names: Vec<String> = model.output_fields().to_vec();
    let mut out = Predictions::default();
    let mut rows = 0;
    for (i, (line, exp)) in inputs.lines().zip(&expected).enumerate() {
        let mut row = vec![0.0; info.features.len()];
        dec.decode_json(line.as_bytes(), &mut row)
            .map_err(|e| format!("input line {}: {e}", i + 1))?;
        let result = model.predict_one(&row, &mut out);
        let no_prediction = exp.get("error").is_some() || exp["prediction"].is_null();
        match (result, no_prediction) {
            (Err(_), true) => continue,
            (Ok(()), true) => {
                return Err(format!(
                    "row {i}: the reference gives no prediction ({}), dipper gives {:?}",
                    exp.get("error").map_or("null".into(), |e| e.to_string()),
                    out.get(0)
                ))
            }
            (Err(e), false) => return Err(format!("row {i}: {e}")),
            (Ok(()), false) => {}
        }
        match out.get(0) {
            PredictionRef::Value(v) => {
                let e = exp["prediction"].as_f64().unwrap();
                if !close(v, e, tol) {
                    return Err(format!("row {i}: prediction {v} != {e}"));
                }
            }
            PredictionRef::Class {
                index,
                probabilities,
            } => {
                let got = info.classes[index].to_string();
                if got != label_text(&exp["prediction"]) {
                    return Err(format!("row {i}: label {got} != {}", exp["prediction"]));
                }
                if let Some(ps) = exp["probabilities"].as_object() {
                    for (k, v) in ps {
                        let j = info
                            .classes
                            .iter()
                            .position(|c| c.to_string() == *k)
                            .ok_or_else(|| format!("row {i}: no class {k}"))?;
                        let e = v.as_f64().unwrap();
                        if !close(probabilities[j], e, tol) {
                            return Err(format!("row {i}: p[{k}] {} != {e}", probabilities[j]));
                        }
                    }
                }
            }
        }
        // Extra outputs (reason codes, transformed values) the model reports must match the reference's.
        let reported = out.outputs(0);
        for (name, got) in out_names.iter().zip(reported) {
            let Some(e) = exp["outputs"].get(name) else {
                continue;
            };
            let ok = match (got, e) {
                (OutputValue::Missing, Value::Null) => true,
                (OutputValue::Num(x), Value::Number(n)) => close(*x, n.as_f64().unwrap(), tol),
                (OutputValue::Text(s), Value::String(t)) => **s == **t,
                (OutputValue::Text(s), Value::Number(n)) => s.parse::<f64>().ok() == n.as_f64(),
                _ => false,
            };
            if !ok {
                return Err(format!("row {i}: output {name} {got:?} != {e}"));
            }
        }
        rows += 1;
    }
    if expected.len() != inputs.lines().count() {
        return Err("expected.jsonl and input.jsonl differ in length".into());
    }
    Ok(rows)
}

#[test]
fn hand_written_pmml_matches_pmml4s() {
    let mut failures = Vec::new();
    let mut scored = 0;
    let all = cases();
    assert!(all.len() >= 20, "only {} cases", all.len());
    for dir in &all {
        match check(dir) {
            Ok(n) => scored += n,
            Err(e) => failures.push(format!(
                "{}: {e}",
                dir.file_name().unwrap().to_string_lossy()
            )),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases differ:\n{}",
        failures.len(),
        all.len(),
        failures.join("\n")
    );
    assert!(scored > 500, "only {scored} rows scored");
}

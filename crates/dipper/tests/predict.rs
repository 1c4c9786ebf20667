//! `dipper predict` end to end: the command-line contract, ordering, and every kind of bad input (a clear error
//! naming the place, a non-zero exit code, never a panic; or with `--on-error skip`, reported, counted and kept).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

fn fixture(case: &str, file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/interop")
        .join(case)
        .join(file)
}

const FRAUD_FEATURES: &str =
    "amount,hour,merchant_risk,card_age_days,txn_count_1h,txn_count_24h,avg_amount_7d,\
distance_home_km,foreign,online,chargebacks_90d,velocity";

fn dipper(args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_dipper"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    // dipper may exit (e.g. on a bad model) before reading its input: a broken pipe is not the test's concern.
    match input.write_all(stdin.unwrap_or_default()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => panic!("writing stdin: {e}"),
        _ => {}
    }
    drop(input);
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "dipper panicked: {stderr}");
    out
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn lines(o: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn fraud_lines(n: usize) -> Vec<String> {
    std::fs::read_to_string(fixture("fraud_lgbm", "input.jsonl"))
        .unwrap()
        .lines()
        .take(n)
        .map(String::from)
        .collect()
}

fn predict_stdin(model: &Path, extra: &[&str], input: &str) -> Output {
    let m = model.to_str().unwrap();
    let mut args = vec!["predict", "--model", m, "--input", "-", "--output", "-"];
    args.extend_from_slice(extra);
    dipper(&args, Some(input.as_bytes()))
}

#[test]
fn scores_a_file_in_order_with_probabilities() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.jsonl");
    let o = dipper(
        &[
            "predict",
            "--model",
            fixture("fraud_lgbm", "model.txt").to_str().unwrap(),
            "--features",
            FRAUD_FEATURES,
            "--input",
            fixture("fraud_lgbm", "input.jsonl").to_str().unwrap(),
            "--output",
            out.to_str().unwrap(),
        ],
        None,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("180 events scored, 0 rejected"),
        "{}",
        stderr(&o)
    );
    let got: Vec<Value> = std::fs::read_to_string(&out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let want: Vec<Value> = std::fs::read_to_string(fixture("fraud_lgbm", "expected.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(got.len(), want.len());
    for (g, w) in got.iter().zip(&want) {
        assert_eq!(g["prediction"], w["prediction"]);
        let (gp, wp) = (
            g["probabilities"]["1"].as_f64().unwrap(),
            w["probabilities"]["1"].as_f64().unwrap(),
        );
        assert!((gp - wp).abs() < 1e-9, "{gp} vs {wp}");
    }
}

#[test]
fn regression_output_and_kept_fields() {
    let input = r#"{"id": "a-1", "vibration": 0.4, "temperature": 0.2, "pressure": 0.1, "rpm": 0.8, "load": 0.9, "humidity": 0.3, "voltage": 0.9, "current": 0.2, "noise_db": 0.5, "age_hours": 0.5}"#;
    let o = predict_stdin(
        &fixture("maint_lgbm", "model.txt"),
        &["--keep", "id,absent"],
        input,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let got = lines(&o);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0]["id"], "a-1");
    assert!(got[0]["prediction"].as_f64().unwrap().is_finite());
    assert!(got[0].get("probabilities").is_none());
    assert!(got[0].get("absent").is_none());
}

#[test]
fn malformed_line_stops_with_its_line_number_after_writing_earlier_lines() {
    let mut l = fraud_lines(4);
    l[2] = r#"{"amount": 1.0, "hour": "#.to_string();
    let o = predict_stdin(&fixture("fraud_lgbm", "model.txt"), &[], &l.join("\n"));
    assert_eq!(o.status.code(), Some(1));
    let e = stderr(&o);
    assert!(e.contains("<stdin> line 3: malformed JSON"), "{e}");
    assert_eq!(lines(&o).len(), 2, "lines before the bad one are written");
}

#[test]
fn non_numeric_value_names_line_and_field() {
    let mut l = fraud_lines(2);
    l[1] = l[1].replacen("\"hour\": ", "\"hour\": \"noon\", \"x\": ", 1);
    let o = predict_stdin(&fixture("fraud_lgbm", "model.txt"), &[], &l.join("\n"));
    assert_eq!(o.status.code(), Some(1));
    let e = stderr(&o);
    assert!(
        e.contains("line 2: field 'hour': expected a number, got the string \"noon\""),
        "{e}"
    );
}

#[test]
fn skip_mode_reports_counts_and_keeps_rejects() {
    let dir = tempfile::tempdir().unwrap();
    let rejects = dir.path().join("rejects.jsonl");
    let mut l = fraud_lines(6);
    l[1] = "not json".into();
    l[3] = r#"{"amount": [1, 2]}"#.into();
    l.insert(4, "   ".into());
    let o = predict_stdin(
        &fixture("fraud_lgbm", "model.txt"),
        &["--on-error", "skip", "--rejects", rejects.to_str().unwrap()],
        &l.join("\n"),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(lines(&o).len(), 4);
    let e = stderr(&o);
    assert!(e.contains("4 events scored, 2 rejected, 1 blank"), "{e}");
    assert!(e.contains("skipped <stdin> line 2: malformed JSON"), "{e}");
    let r: Vec<Value> = std::fs::read_to_string(&rejects)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(r.len(), 2);
    assert_eq!(r[0]["line"], 2);
    assert_eq!(r[0]["input"], "not json");
    assert_eq!(r[1]["line"], 4);
    assert_eq!(r[1]["field"], "amount");
}

#[test]
fn missing_feature_is_missing_for_trees_and_an_error_without_missing_handling() {
    // LightGBM defines missing values: an absent feature is scored.
    let line = fraud_lines(1)[0].replacen("\"amount\": ", "\"not_amount\": ", 1);
    let o = predict_stdin(&fixture("fraud_lgbm", "model.txt"), &[], &line);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(lines(&o).len(), 1);
    // An MLP has no missing-value handling: the field is named.
    let o = predict_stdin(
        &fixture("fraud_mlp_onnx", "model.onnx"),
        &["--features", FRAUD_FEATURES],
        &line,
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("line 1: field 'amount': is missing"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn positional_models_need_features_and_count_must_match() {
    let line = &fraud_lines(1)[0];
    let o = predict_stdin(&fixture("fraud_rf_onnx", "model.onnx"), &[], line);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("--features"), "{}", stderr(&o));
    let o = predict_stdin(
        &fixture("fraud_rf_onnx", "model.onnx"),
        &["--features", "amount,hour"],
        line,
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("names 2 features but the model reads 12"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn features_must_agree_with_a_named_model() {
    let o = predict_stdin(
        &fixture("fraud_lgbm", "model.txt"),
        &["--features", "amount,hour"],
        "{}",
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("does not name all of the model's own features"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn corrupt_and_truncated_models_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    for (case, file) in [
        ("fraud_lgbm", "model.txt"),
        ("fraud_xgb", "model.json"),
        ("fraud_gbm_onnx", "model.onnx"),
    ] {
        let bytes = std::fs::read(fixture(case, file)).unwrap();
        let path = dir.path().join(file);
        std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
        let o = predict_stdin(&path, &["--features", FRAUD_FEATURES], &fraud_lines(1)[0]);
        assert_eq!(o.status.code(), Some(1), "{case}: {}", stderr(&o));
        assert!(
            stderr(&o).contains(path.to_str().unwrap()),
            "{case}: error names the file: {}",
            stderr(&o)
        );
    }
    let path = dir.path().join("empty.bin");
    std::fs::write(&path, b"").unwrap();
    let o = predict_stdin(&path, &[], "{}");
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("the file is empty"), "{}", stderr(&o));
    let o = predict_stdin(&dir.path().join("nope.txt"), &[], "{}");
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("cannot read model file"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn usage_errors_exit_2() {
    let o = dipper(&["predict", "--model", "m.txt"], None);
    assert_eq!(o.status.code(), Some(2));
}

//! Every third-party fixture in `fixtures/interop` whose format dipper loads must score as the exporting library
//! did: same labels, probabilities and values within the case's tolerance. Cases are run through the public API
//! exactly as `dipper predict` does (named JSON fields -> RowDecoder -> Model::predict_batch).

mod common;

use common::{check_case, fixtures, load_case_model, read, read_case};

fn run_format(format: &str) {
    let root = fixtures().join("interop");
    let index: Vec<String> = serde_json::from_str(&read(&root.join("index.json"))).unwrap();
    let mut failures = Vec::new();
    let mut ran = 0;
    for name in index {
        let dir = root.join(&name);
        if read_case(&dir)["format"] != format {
            continue;
        }
        ran += 1;
        if let Err(e) = load_case_model(&dir).and_then(|m| check_case(m.as_ref(), &dir)) {
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

#[test]
fn pmml_cases_match_the_exporting_library() {
    run_format("pmml");
}

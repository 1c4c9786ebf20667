//! ONNX loader tests on the fixtures in `fixtures/onnx` (made by `tools/fixtures/make_onnx_fixtures.py` with
//! onnxruntime's outputs as the reference): regressors, string-labelled multiclass models, NaN inputs into a
//! tree model, models dipper must refuse with a clear error, and damaged files.

mod common;

use std::path::PathBuf;

use dipper_models::{load, load_bytes, Format, ModelError, PredictionRef, Predictions, Task};

fn root() -> PathBuf {
    common::fixtures().join("..")
}

fn case_dirs() -> Vec<PathBuf> {
    common::case_dirs("onnx")
}

use common::read_case;

/// Scores a case in one batch and row by row; returns the first mismatch with onnxruntime.
fn run_case(dir: &std::path::Path) -> Result<usize, String> {
    let model = common::load_case_model(dir)?;
    assert!(!model.info().named_features);
    common::check_case(model.as_ref(), dir)
}

#[test]
fn fixtures_match_onnxruntime() {
    let mut ran = 0;
    let mut failures = vec![];
    for dir in case_dirs() {
        if read_case(&dir).get("expect_error").is_some() {
            continue;
        }
        ran += 1;
        if let Err(e) = run_case(&dir) {
            failures.push(format!("{}: {e}", dir.display()));
        }
    }
    assert!(ran >= 5, "only {ran} cases");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn model_info_describes_the_models() {
    let get = |case: &str| {
        load(
            &root().join("fixtures/onnx").join(case).join("model.onnx"),
            None,
        )
        .unwrap()
    };
    let reg = get("gbr_regressor");
    assert_eq!(reg.info().task, Task::Regression);
    assert_eq!(reg.info().features.len(), 6);
    assert!(reg.info().accepts_missing, "tree models define NaN");
    assert_eq!(reg.info().id.format, Format::Onnx);
    let iris = get("iris_gbc_names");
    assert_eq!(iris.info().task, Task::Classification);
    let names: Vec<String> = iris.info().classes.iter().map(|c| c.to_string()).collect();
    assert_eq!(names, ["setosa", "versicolor", "virginica"]);
    assert!(get("nan_hgb_classifier").info().accepts_missing);
    // Linear models and networks do not define missing values: callers must reject them.
    for case in ["fraud_logreg_onnx", "fraud_mlp_onnx", "fraud_nb_onnx"] {
        let m = load(
            &root()
                .join("fixtures/interop")
                .join(case)
                .join("model.onnx"),
            None,
        )
        .unwrap();
        assert!(!m.info().accepts_missing, "{case}");
        assert_eq!(m.info().n_classes(), 2, "{case}");
    }
}

#[test]
fn unsupported_models_are_refused_clearly() {
    let mut ran = 0;
    for dir in case_dirs() {
        let case = read_case(&dir);
        let Some(expect) = case.get("expect_error").and_then(|v| v.as_str()) else {
            continue;
        };
        ran += 1;
        let e = load(&dir.join("model.onnx"), None).unwrap_err();
        assert!(
            matches!(e, ModelError::Unsupported { .. }),
            "{}: {e:?}",
            dir.display()
        );
        let msg = e.to_string();
        assert!(msg.contains(expect), "{}: {msg}", dir.display());
        assert!(msg.contains("model.onnx"), "{msg}");
    }
    assert!(ran >= 3);
}

#[test]
fn wrong_row_width_is_an_error() {
    let m = load(&root().join("fixtures/onnx/iris_rf_names/model.onnx"), None).unwrap();
    let mut out = Predictions::default();
    let e = m.predict_batch(&[1.0; 7], &mut out).unwrap_err();
    assert!(
        matches!(e, ModelError::FeatureCount { expected: 4, .. }),
        "{e:?}"
    );
    // An empty batch is fine.
    m.predict_batch(&[], &mut out).unwrap();
    assert_eq!(out.len(), 0);
}

#[test]
fn nan_reaches_the_trees() {
    // The same row with and without a missing value scores differently, and as onnxruntime did (see
    // fixtures_match_onnxruntime); here: NaN is accepted and never panics in any column.
    let m = load(
        &root().join("fixtures/onnx/nan_hgb_classifier/model.onnx"),
        None,
    )
    .unwrap();
    let mut out = Predictions::default();
    for col in 0..5 {
        let mut row = vec![0.5; 5];
        row[col] = f64::NAN;
        m.predict_one(&row, &mut out).unwrap();
        let PredictionRef::Class { probabilities, .. } = out.get(0) else {
            panic!()
        };
        assert!((probabilities.iter().sum::<f64>() - 1.0).abs() < 1e-6);
    }
}

/// Truncated or corrupted files give an error (or, cut at a harmless place, a model), never a panic.
#[test]
fn damaged_files_never_panic() {
    let mut models = vec![];
    for dir in case_dirs() {
        models.push(dir.join("model.onnx"));
    }
    for case in [
        "fraud_gbm_onnx",
        "fraud_logreg_onnx",
        "fraud_mlp_onnx",
        "fraud_nb_onnx",
        "fraud_rf_onnx",
    ] {
        models.push(
            root()
                .join("fixtures/interop")
                .join(case)
                .join("model.onnx"),
        );
    }
    let mut errors = 0;
    for path in models {
        let bytes = std::fs::read(&path).unwrap();
        let len = bytes.len();
        let mut cuts: Vec<usize> = (0..64)
            .chain((1..=60).map(|i| len * i / 61))
            .chain(len - 16..len)
            .collect();
        cuts.dedup();
        for cut in cuts {
            match load_bytes(&bytes[..cut], "cut.onnx", "cut", Some(Format::Onnx)) {
                Err(e) => {
                    errors += 1;
                    assert!(e.to_string().starts_with("cut.onnx"), "{e}");
                }
                Ok(m) => {
                    let mut out = Predictions::default();
                    let _ = m.predict_batch(&vec![0.25; m.info().features.len() * 3], &mut out);
                }
            }
        }
        // Flipped bytes.
        for i in (0..len).step_by(len / 40 + 1) {
            let mut b = bytes.clone();
            b[i] ^= 0x5a;
            if let Ok(m) = load_bytes(&b, "flip.onnx", "flip", Some(Format::Onnx)) {
                let mut out = Predictions::default();
                let _ = m.predict_batch(&vec![0.25; m.info().features.len() * 2], &mut out);
            }
        }
    }
    assert!(errors > 500, "{errors}");
}

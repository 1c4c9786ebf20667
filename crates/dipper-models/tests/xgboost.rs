//! XGBoost loader tests: every case in `fixtures/xgboost` (made by `tools/fixtures/make_xgboost_fixtures.py`
//! with XGBoost itself) must score as XGBoost did, and damaged or unsupported files must give a clear error,
//! never a panic.

mod common;

use std::path::{Path, PathBuf};

use dipper_models::{load, load_bytes, Format, Model, ModelError, Task};
use serde_json::Value;

fn fixtures() -> PathBuf {
    common::fixtures().join("xgboost")
}

use common::read;

/// Loads a case and checks every row against XGBoost's output.
fn check_case(name: &str) {
    if let Err(e) = compare_case(name, None) {
        panic!("{name}: {e}");
    }
}

/// Scores a case's inputs with its model (or with `model_json` instead) and returns the first difference from
/// XGBoost's output.
fn compare_case(name: &str, model_json: Option<&Value>) -> Result<(), String> {
    let dir = fixtures().join(name);
    let model = match model_json {
        None => common::load_case_model(&dir)?,
        Some(v) => load_xgb(v.to_string().as_bytes()).map_err(|e| format!("load: {e}"))?,
    };
    let case = common::read_case(&dir);
    assert_eq!(case["format"], "xgboost");
    let want_task = match case["task"].as_str().unwrap() {
        "classification" => Task::Classification,
        _ => Task::Regression,
    };
    assert_eq!(model.info().task, want_task, "{name}: task");
    common::check_case(model.as_ref(), &dir).map(|_| ())
}

macro_rules! cases {
    ($($test:ident => $case:literal),* $(,)?) => {
        $(#[test] fn $test() { check_case($case); })*
    };
}

cases! {
    missing_values_match_xgboost => "missing_values",
    categorical_splits_match_xgboost => "categorical",
    count_poisson_matches_xgboost => "count_poisson",
    reg_logistic_matches_xgboost => "reg_logistic",
    reg_tweedie_matches_xgboost => "reg_tweedie",
    reg_gamma_matches_xgboost => "reg_gamma",
    reg_absoluteerror_matches_xgboost => "reg_absoluteerror",
    reg_pseudohuber_matches_xgboost => "reg_pseudohuber",
    multi_softmax_matches_xgboost => "multi_softmax",
    binary_logitraw_is_the_margin => "binary_logitraw",
    binary_hinge_matches_xgboost => "binary_hinge",
    dart_matches_xgboost => "dart",
    parallel_trees_match_xgboost => "parallel_trees",
    multi_output_tree_matches_xgboost => "multi_output_tree",
    early_stopping_uses_best_iteration => "early_stopping",
    no_feature_names_match_xgboost => "no_feature_names",
}

#[test]
fn every_fixture_directory_is_tested() {
    let src = read(&Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/xgboost.rs"));
    for entry in std::fs::read_dir(fixtures()).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        assert!(
            src.contains(&format!("=> \"{name}\"")),
            "fixture {name} has no test"
        );
    }
}

#[test]
fn positional_model_reports_unnamed_features() {
    let m = load(&fixtures().join("no_feature_names/model.json"), None).unwrap();
    assert!(!m.info().named_features);
    let m = load(&fixtures().join("missing_values/model.json"), None).unwrap();
    assert!(m.info().named_features);
}

#[test]
fn categorical_features_are_categorical() {
    let m = load(&fixtures().join("categorical/model.json"), None).unwrap();
    let kinds: Vec<_> = m
        .info()
        .features
        .features()
        .iter()
        .map(|f| f.kind.clone())
        .collect();
    assert!(matches!(
        kinds[0],
        dipper_core::FeatureKind::Categorical { .. }
    ));
    assert!(matches!(kinds[2], dipper_core::FeatureKind::Numeric));
}

// ---- damaged and unsupported files ----

fn model_bytes(case: &str) -> Vec<u8> {
    std::fs::read(fixtures().join(case).join("model.json")).unwrap()
}

fn load_xgb(bytes: &[u8]) -> Result<std::sync::Arc<dyn Model>, ModelError> {
    load_bytes(bytes, "model.json", "m", Some(Format::Xgboost))
}

fn error_of(json: &Value) -> String {
    match load_xgb(json.to_string().as_bytes()) {
        Ok(_) => panic!("loaded a damaged model"),
        Err(e) => e.to_string(),
    }
}

fn edit(case: &str, f: impl FnOnce(&mut Value)) -> Value {
    let mut v: Value = serde_json::from_slice(&model_bytes(case)).unwrap();
    f(&mut v);
    v
}

fn tree0(v: &mut Value) -> &mut Value {
    &mut v["learner"]["gradient_booster"]["model"]["trees"][0]
}

#[test]
fn truncated_files_are_errors() {
    for case in ["categorical", "dart", "multi_output_tree"] {
        let bytes = model_bytes(case);
        let step = (bytes.len() / 397).max(1);
        for end in (0..bytes.len()).step_by(step) {
            let e = load_xgb(&bytes[..end])
                .err()
                .unwrap_or_else(|| panic!("{case}: {end} bytes loaded"));
            assert!(e.to_string().starts_with("model.json"), "{e}");
        }
    }
    let e = load_xgb(&model_bytes("categorical")[..1000])
        .unwrap_err()
        .to_string();
    assert!(e.contains("line 1 column 1000") && e.contains("EOF"), "{e}");
}

#[test]
fn garbled_bytes_are_errors_not_panics() {
    let bytes = model_bytes("categorical");
    // Overwrite bytes with characters that keep the JSON plausible but wrong in many places.
    let mut seed = 12345u64;
    for _ in 0..300 {
        let mut b = bytes.clone();
        for _ in 0..3 {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let at = (seed >> 33) as usize % b.len();
            b[at] = b"0123456789-.,[]{}\"e9"[(seed >> 20) as usize % 20];
        }
        let _ = load_xgb(&b); // any result, as long as it does not panic
    }
}

#[test]
fn mismatched_array_lengths_name_the_array() {
    let v = edit("missing_values", |v| {
        tree0(v)["split_conditions"].as_array_mut().unwrap().pop();
    });
    let e = error_of(&v);
    assert!(
        e.starts_with("model.json at learner.gradient_booster.model.trees[0].split_conditions:"),
        "{e}"
    );
    let v = edit("missing_values", |v| {
        v["learner"]["gradient_booster"]["model"]["tree_info"]
            .as_array_mut()
            .unwrap()
            .pop();
    });
    assert!(error_of(&v).contains("model.tree_info"));
    let v = edit("categorical", |v| {
        tree0(v)["categories_sizes"].as_array_mut().unwrap().pop();
    });
    assert!(error_of(&v).contains("trees[0].categories_sizes"));
    let v = edit("dart", |v| {
        v["learner"]["gradient_booster"]["weight_drop"]
            .as_array_mut()
            .unwrap()
            .pop();
    });
    assert!(error_of(&v).contains("weight_drop"));
}

#[test]
fn out_of_range_indices_are_errors() {
    let v = edit("missing_values", |v| {
        tree0(v)["left_children"][0] = 9999.into()
    });
    let e = error_of(&v);
    assert!(
        e.contains("trees[0].left_children[0]") && e.contains("out of range"),
        "{e}"
    );
    let v = edit("missing_values", |v| {
        tree0(v)["right_children"][0] = (-3).into()
    });
    assert!(error_of(&v).contains("trees[0].right_children[0]"));
    let v = edit("missing_values", |v| {
        tree0(v)["split_indices"][0] = 77.into()
    });
    let e = error_of(&v);
    assert!(e.contains("trees[0]") && e.contains("feature 77"), "{e}");
    // A cycle: node 1 points back at the root.
    let v = edit("missing_values", |v| {
        tree0(v)["left_children"][1] = 0.into()
    });
    assert!(error_of(&v).contains("trees[0]"));
    let v = edit("categorical", |v| {
        tree0(v)["categories_segments"][0] = 100000.into()
    });
    assert!(error_of(&v).contains("categories_segments[0]"));
    let v = edit("categorical", |v| tree0(v)["categories"][0] = (-1).into());
    assert!(error_of(&v).contains("categories[0]"));
    let v = edit("multi_softmax", |v| {
        v["learner"]["gradient_booster"]["model"]["tree_info"][0] = 3.into()
    });
    assert!(error_of(&v).contains("tree_info[0]"));
    let v = edit("multi_output_tree", |v| {
        tree0(v)["leaf_weights"].as_array_mut().unwrap().pop();
    });
    assert!(error_of(&v).contains("trees[0].leaf_weights"));
}

#[test]
fn wrong_types_and_values_are_errors() {
    let v = edit("missing_values", |v| {
        tree0(v)["split_conditions"][0] = "x".into()
    });
    let e = error_of(&v);
    assert!(e.starts_with("model.json line 1 column"), "{e}");
    let v = edit("missing_values", |v| {
        v["learner"]["learner_model_param"]["base_score"] = "[1,2]".into()
    });
    assert!(error_of(&v).contains("base_score"));
    let v = edit("missing_values", |v| {
        v["learner"]["learner_model_param"]["num_feature"] = "-1".into()
    });
    assert!(error_of(&v).contains("num_feature"));
    let v = edit("missing_values", |v| {
        v["learner"]["feature_names"][1] = "x0".into()
    });
    assert!(error_of(&v).contains("feature_names"));
    let v = edit("missing_values", |v| {
        tree0(v)["tree_param"]["num_nodes"] = "0".into()
    });
    assert!(error_of(&v).contains("num_nodes"));
    let v = edit("count_poisson", |v| {
        v["learner"]["learner_model_param"]["base_score"] = "-1".into()
    });
    assert!(error_of(&v).contains("base_score"));
    for bad in [&b""[..], b"   ", b"[]", b"{}", b"null", b"{\"learner\": 3}"] {
        assert!(load_xgb(bad).is_err());
    }
}

#[test]
fn unsupported_models_say_what_is_unsupported() {
    let v = edit("missing_values", |v| {
        v["learner"]["objective"]["name"] = "reg:mystery".into()
    });
    let e = error_of(&v);
    assert!(
        e.contains("unsupported") && e.contains("reg:mystery"),
        "{e}"
    );
    let v = edit("missing_values", |v| {
        v["learner"]["gradient_booster"] =
            serde_json::json!({"name": "gblinear", "model": {"weights": [0.1, 0.2]}});
    });
    let e = error_of(&v);
    assert!(e.contains("gblinear") && e.contains("unsupported"), "{e}");
    let v = edit("missing_values", |v| {
        v["learner"]["learner_model_param"]["num_target"] = "2".into()
    });
    assert!(error_of(&v).contains("multi-target"));
    let v = edit("missing_values", |v| {
        v["learner"]["feature_types"][0] = "weird".into()
    });
    assert!(error_of(&v).contains("feature_types[0]"));
}

#[test]
fn binary_formats_suggest_json() {
    let ubj = b"{L\x00\x00\x00\x00\x00\x00\x00\x07learner{";
    let e = load_xgb(ubj).unwrap_err().to_string();
    assert!(
        e.contains("UBJSON") && e.contains("save_model(\"model.json\")"),
        "{e}"
    );
    let e = load_xgb(b"binf\x00\x00\x00?\x05\x00\x00\x00")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("legacy binary") && e.contains("save_model"),
        "{e}"
    );
    let e = load_xgb(b"\x00\x00\x00?\x0a\x00\x00\x00\x00")
        .unwrap_err()
        .to_string();
    assert!(e.contains("legacy binary"), "{e}");
}

#[test]
fn multiclass_base_score_scalar_is_spread() {
    // XGBoost < 3.1 wrote one base score for every class.
    let v = edit("multi_softmax", |v| {
        v["learner"]["learner_model_param"]["base_score"] = "5E-1".into()
    });
    assert!(load_xgb(v.to_string().as_bytes()).is_ok());
}

// ---- the fixtures exercise what they are named for ----

#[test]
fn early_stopping_case_differs_with_every_round() {
    let v = edit("early_stopping", |v| {
        v["learner"]["attributes"]
            .as_object_mut()
            .unwrap()
            .remove("best_iteration");
    });
    assert!(compare_case("early_stopping", Some(&v)).is_err());
}

#[test]
fn dart_case_differs_without_tree_weights() {
    let v = edit("dart", |v| {
        for w in v["learner"]["gradient_booster"]["weight_drop"]
            .as_array_mut()
            .unwrap()
        {
            *w = 1.0.into();
        }
    });
    assert!(compare_case("dart", Some(&v)).is_err());
}

#[test]
fn missing_values_case_depends_on_default_directions() {
    let v = edit("missing_values", |v| {
        for t in v["learner"]["gradient_booster"]["model"]["trees"]
            .as_array_mut()
            .unwrap()
        {
            for d in t["default_left"].as_array_mut().unwrap() {
                *d = (1 - d.as_i64().unwrap()).into();
            }
        }
    });
    assert!(compare_case("missing_values", Some(&v)).is_err());
}

#[test]
fn categorical_case_has_set_splits_that_matter() {
    let v = edit("categorical", |v| {
        for t in v["learner"]["gradient_booster"]["model"]["trees"]
            .as_array_mut()
            .unwrap()
        {
            for c in t["categories"].as_array_mut().unwrap() {
                *c = (c.as_i64().unwrap() + 1).into();
            }
        }
    });
    assert!(compare_case("categorical", Some(&v)).is_err());
    let m: Value = serde_json::from_slice(&model_bytes("categorical")).unwrap();
    let multi = m["learner"]["gradient_booster"]["model"]["trees"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|t| t["categories_sizes"].as_array().unwrap().clone())
        .any(|n| n.as_i64().unwrap() > 1);
    assert!(multi, "no partition split with several categories");
}

//! LightGBM loader tests against LightGBM itself: every case in `fixtures/lightgbm` (made by
//! `tools/fixtures/make_lightgbm_fixtures.py`) must score as LightGBM's `predict` did, and damaged model files
//! (truncated, garbled numbers, bad indices) must be clear errors, never panics.

mod common;

use std::path::{Path, PathBuf};

use dipper_core::FeatureKind;
use dipper_models::{load_bytes, Format, ModelError};

fn fixtures() -> PathBuf {
    common::fixtures().join("lightgbm")
}

use common::read;

/// Scores one case through the public API as `dipper predict` does; returns the first mismatch.
fn run_case(name: &str) -> Result<usize, String> {
    let dir = fixtures().join(name);
    let model = common::load_case_model(&dir)?;
    common::check_case(model.as_ref(), &dir)
}

fn case_names() -> Vec<String> {
    common::case_dirs("lightgbm")
        .iter()
        .map(|d| d.file_name().unwrap().to_string_lossy().into_owned())
        .collect()
}

#[test]
fn every_fixture_scores_as_lightgbm() {
    let names = case_names();
    assert!(names.len() >= 12, "fixtures missing: {names:?}");
    let failures: Vec<String> = names
        .iter()
        .filter_map(|n| run_case(n).err().map(|e| format!("{n}: {e}")))
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} cases differ:\n{}",
        failures.len(),
        names.len(),
        failures.join("\n")
    );
}

macro_rules! case_tests {
    ($($test:ident => $case:literal),* $(,)?) => {$(
        #[test]
        fn $test() {
            let rows = run_case($case).unwrap_or_else(|e| panic!("{}: {e}", $case));
            assert!(rows >= 10);
        }
    )*};
}

case_tests! {
    categorical_integer_codes => "cat_int",
    categorical_pandas_strings => "cat_pandas",
    missing_type_nan => "missing_nan",
    missing_type_zero => "missing_zero",
    objective_multiclassova => "multiclassova",
    objective_poisson => "poisson",
    objective_cross_entropy => "cross_entropy",
    objective_cross_entropy_lambda => "cross_entropy_lambda",
    objective_huber => "huber",
    objective_tweedie => "tweedie",
    objective_gamma => "gamma",
    rf_average_output => "rf_binary",
    single_leaf_trees => "single_leaf",
}

fn model_text(case: &str) -> String {
    read(&fixtures().join(case).join("model.txt"))
}

fn load_text(text: &str) -> Result<std::sync::Arc<dyn dipper_models::Model>, ModelError> {
    load_bytes(
        text.as_bytes(),
        "model.txt",
        "model",
        Some(Format::Lightgbm),
    )
}

/// The error's location, which must name the file and a line.
fn location(e: &ModelError) -> &str {
    match e {
        ModelError::Parse { location, .. } | ModelError::Unsupported { location, .. } => location,
        other => panic!("not a parse error: {other}"),
    }
}

#[test]
fn pandas_categories_are_in_the_schema() {
    let model = load_text(&model_text("cat_pandas")).unwrap();
    let f = &model.info().features;
    assert_eq!(f.get(0).kind, FeatureKind::Numeric);
    let FeatureKind::Categorical { categories } = &f.get(1).kind else {
        panic!("{:?}", f.get(1))
    };
    assert_eq!(
        categories,
        &["red", "green", "blue", "teal", "plum", "gold"]
    );
    let FeatureKind::Categorical { categories } = &f.get(2).kind else {
        panic!("{:?}", f.get(2))
    };
    assert_eq!(categories, &["S", "M", "L", "XL"]);
    // Integer-coded categoricals are categorical without strings.
    let model = load_text(&model_text("cat_int")).unwrap();
    assert_eq!(
        model.info().features.get(2).kind,
        FeatureKind::Categorical { categories: vec![] }
    );
}

#[test]
fn every_truncation_is_an_error() {
    for case in ["cat_pandas", "missing_zero", "rf_binary", "single_leaf"] {
        let text = model_text(case);
        // A cut before the end of `end of trees` or inside the parameters section is always detectable. Between
        // them (feature importances) and after `end of parameters` the model is complete, and both sections are
        // optional in LightGBM's format.
        let trees_end = text.find("end of trees").unwrap() + "end of trees".len() - 1;
        let params = text.find("\nparameters:\n").unwrap() + "\nparameters:\n".len();
        let params_end = text.find("end of parameters").unwrap() + "end of parameters".len() - 1;
        let cuts = (0..trees_end)
            .step_by((trees_end / 300).max(1))
            .chain([trees_end]);
        let cuts = cuts
            .chain((params..params_end).step_by(((params_end - params) / 50).max(1)))
            .chain([params_end]);
        for cut in cuts {
            let cut_at = (0..4)
                .map(|d| cut + d)
                .find(|&c| text.is_char_boundary(c))
                .unwrap();
            match load_text(&text[..cut_at]) {
                Err(ModelError::Parse { .. } | ModelError::Unsupported { .. }) => {}
                Err(other) => panic!("{case} cut at {cut_at}: unexpected error kind {other}"),
                Ok(_) => panic!("{case} cut at {cut_at} loaded"),
            }
        }
        // Every tree line cut in the middle of a number is an error too.
        for (pos, _) in text.match_indices("\nleaf_value=").take(5) {
            let cut_at = pos + 20;
            assert!(
                load_text(&text[..cut_at]).is_err(),
                "{case} cut at {cut_at} loaded"
            );
        }
    }
}

#[test]
fn truncated_pandas_line_is_an_error() {
    let text = model_text("cat_pandas");
    let cut = text.trim_end().len() - 3;
    let e = load_text(&text[..cut]).unwrap_err();
    assert!(e.to_string().contains("pandas_categorical"), "{e}");
}

/// Replaces the first value of `key=` in the first tree with `to` (`to` may hold several tokens).
fn in_first_tree(text: &str, key: &str, to: &str) -> String {
    let start = text.find("Tree=0").unwrap();
    let at = start
        + text[start..]
            .find(key)
            .unwrap_or_else(|| panic!("{key} not found"))
        + key.len();
    let end = at + text[at..].find([' ', '\n']).unwrap();
    format!("{}{to}{}", &text[..at], &text[end..])
}

fn line_of(text: &str, needle: &str) -> usize {
    let start = text.find("Tree=0").unwrap();
    let at = start + text[start..].find(needle).unwrap();
    text[..at].matches('\n').count() + 1
}

#[test]
fn damaged_trees_are_errors_naming_the_line() {
    let text = model_text("cat_int");
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "leaf_value=",
            in_first_tree(&text, "leaf_value=", "x1.5"),
            "cannot read",
        ),
        (
            "threshold=",
            in_first_tree(&text, "threshold=", "1e999999x"),
            "cannot read",
        ),
        (
            "left_child=",
            in_first_tree(&text, "left_child=", "99"),
            "out of range",
        ),
        (
            "right_child=",
            in_first_tree(&text, "right_child=", "-99"),
            "out of range",
        ),
        (
            "split_feature=",
            in_first_tree(&text, "split_feature=", "7"),
            "out of range",
        ),
        (
            "split_feature=",
            in_first_tree(&text, "split_feature=", "-1"),
            "out of range",
        ),
        (
            "decision_type=",
            in_first_tree(&text, "decision_type=", "12"),
            "missing type",
        ),
        (
            "decision_type=",
            in_first_tree(&text, "decision_type=", "300"),
            "decision type",
        ),
        (
            "leaf_value=",
            in_first_tree(&text, "leaf_value=", "1\nleaf_weight=1"),
            "values, expected",
        ),
        (
            "num_leaves=",
            in_first_tree(&text, "num_leaves=", "0"),
            "at least 1",
        ),
        (
            "num_leaves=",
            in_first_tree(&text, "num_leaves=", "-3"),
            "cannot read",
        ),
        (
            "cat_boundaries=",
            in_first_tree(&text, "cat_boundaries=", "1"),
            "cat_boundaries",
        ),
        (
            "cat_boundaries=",
            in_first_tree(&text, "cat_threshold=", "1 2 3 4 5 6 7 8"),
            "cat_boundaries",
        ),
    ];
    for (key, damaged, message) in cases {
        let e = load_text(&damaged).unwrap_err();
        let want = format!("model.txt line {}", line_of(&damaged, key));
        assert_eq!(location(&e), want, "{e}");
        assert!(e.to_string().contains(message), "{e}");
    }
}

#[test]
fn cycles_and_shared_children_are_errors() {
    let text = model_text("missing_zero");
    // Point the root's left child at the root itself.
    let start = text.find("Tree=0").unwrap();
    let at = start + text[start..].find("left_child=").unwrap() + "left_child=".len();
    let end = at + text[at..].find(' ').unwrap();
    let damaged = format!("{}0{}", &text[..at], &text[end..]);
    let e = load_text(&damaged).unwrap_err();
    assert!(e.to_string().contains("reached twice"), "{e}");
    assert_eq!(
        location(&e),
        format!("model.txt line {}", text[..start].matches('\n').count() + 1)
    );
}

#[test]
fn damaged_headers_are_errors() {
    let text = model_text("multiclassova");
    let cases = [
        (
            "objective=multiclassova",
            "objective=spline_magic",
            "unsupported",
        ),
        ("num_class=4", "num_class=3", "num_class"),
        (
            "num_tree_per_iteration=4",
            "num_tree_per_iteration=2",
            "trees per iteration",
        ),
        ("max_feature_idx=2", "max_feature_idx=5", "feature_names"),
        ("max_feature_idx=2", "max_feature_idx=many", "cannot read"),
        ("version=v4", "version=v9", "version"),
        ("sigmoid:1.5", "sigmoid:-1", "sigmoid"),
        (
            "feature_names=p q r",
            "feature_names=p q p",
            "more than once",
        ),
    ];
    for (from, to, message) in cases {
        let damaged = text.replacen(from, to, 1);
        assert_ne!(damaged, text, "{from}");
        let e = load_text(&damaged).unwrap_err();
        assert!(e.to_string().contains(message), "{from} -> {to}: {e}");
        assert!(location(&e).starts_with("model.txt line "), "{e}");
    }
    let e = load_text(&text.replacen("tree_sizes=", "tree_sizes=1 ", 1)).unwrap_err();
    assert!(e.to_string().contains("tree_sizes lists"), "{e}");
    let e = load_text(&text.replacen("Tree=3\n", "Tree=7\n", 1)).unwrap_err();
    assert!(e.to_string().contains("expected Tree=3"), "{e}");
    assert!(load_text("version=v4\n").is_err());
    assert!(load_text("").is_err());
}

#[test]
fn non_utf8_and_garbage_never_panic() {
    let text = model_text("cat_pandas");
    let bytes = text.as_bytes();
    let mut state = 0x2545_f491_4f6c_dd1du64;
    for i in 0..300 {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let mut damaged = bytes.to_vec();
        let at = (state as usize) % damaged.len();
        damaged[at] = match i % 4 {
            0 => b'-',
            1 => b'9',
            2 => b' ',
            _ => 0xff,
        };
        let _ = load_bytes(&damaged, "model.txt", "model", Some(Format::Lightgbm));
    }
}

#[test]
fn ten_thousand_trees_load() {
    // The fraud model's 40 trees, repeated to 10,000 and renumbered.
    let text = read(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/interop/fraud_lgbm/model.txt"),
    );
    let first = text.find("Tree=0").unwrap();
    let end = text.find("end of trees").unwrap();
    let header: String = text[..first]
        .lines()
        .filter(|l| !l.starts_with("tree_sizes="))
        .map(|l| format!("{l}\n"))
        .collect();
    let blocks: Vec<&str> = text[first..end]
        .split("Tree=")
        .filter(|b| !b.is_empty())
        .collect();
    let mut big = header;
    for i in 0..10_000 {
        let block = blocks[i % blocks.len()];
        big.push_str(&format!("Tree={i}{}", &block[block.find('\n').unwrap()..]));
    }
    big.push_str(&text[end..]);
    let start = std::time::Instant::now();
    let model = load_text(&big).unwrap();
    eprintln!(
        "10,000 trees ({} bytes) loaded in {:?}",
        big.len(),
        start.elapsed()
    );
    assert_eq!(model.info().features.len(), 12);
}

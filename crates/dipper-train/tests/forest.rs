//! Decision trees and random forests on the training fixtures against scikit-learn's test metrics
//! (`fixtures/train/reference.json`), plus determinism, missing values, parameter errors and unusable data.
//!
//! The debug-mode forest tests train fewer trees than the reference's 100 and use a looser bar (stated in each
//! test); `strict_forest_matches_scikit_learn` trains 100 trees with the strict bars and is `#[ignore]`d, run
//! it with `cargo test --release -p dipper-train --test forest -- --ignored --nocapture`.

mod common;

use common::ProgressLog;

use common::{eval_classifier, eval_regressor, load, reference, scorer};
use dipper_models::native::ModelBody;
use dipper_train::{algorithm, Dataset, NoProgress, TrainError};
use serde_json::{json, Value};

fn fit(name: &str, params: Value, train: &Dataset) -> Result<ModelBody, TrainError> {
    algorithm(name, &params, 7)?.fit(train, None, &NoProgress)
}

fn binary_auc(name: &str, params: Value) -> f64 {
    let (train, test) = (load("binary", "train", true), load("binary", "test", true));
    let body = fit(name, params, &train).unwrap();
    eval_classifier(&*scorer(&train, name, body), &test).auc
}

fn multiclass_accuracy(name: &str, params: Value) -> f64 {
    let (train, test) = (
        load("multiclass", "train", true),
        load("multiclass", "test", true),
    );
    let body = fit(name, params, &train).unwrap();
    eval_classifier(&*scorer(&train, name, body), &test).accuracy
}

fn regression_rmse(name: &str, params: Value) -> f64 {
    let (train, test) = (
        load("regression", "train", false),
        load("regression", "test", false),
    );
    let body = fit(name, params, &train).unwrap();
    eval_regressor(&*scorer(&train, name, body), &test).rmse
}

fn tree_params() -> Value {
    json!({"max_depth": 8, "min_samples_leaf": 5})
}

#[test]
fn tree_binary_auc_matches_scikit_learn() {
    let (auc, want) = (
        binary_auc("tree", tree_params()),
        reference("binary", "tree", "auc"),
    );
    eprintln!("tree binary auc {auc:.4} (scikit-learn {want:.4})");
    assert!((auc - want).abs() <= 0.01, "auc {auc} vs {want}");
}

#[test]
fn tree_multiclass_accuracy_matches_scikit_learn() {
    let (acc, want) = (
        multiclass_accuracy("tree", tree_params()),
        reference("multiclass", "tree", "accuracy"),
    );
    eprintln!("tree multiclass accuracy {acc:.4} (scikit-learn {want:.4})");
    assert!((acc - want).abs() <= 0.02, "accuracy {acc} vs {want}");
}

#[test]
fn tree_regression_rmse_matches_scikit_learn() {
    let (rmse, want) = (
        regression_rmse("tree", tree_params()),
        reference("regression", "tree", "rmse"),
    );
    eprintln!("tree regression rmse {rmse:.4} (scikit-learn {want:.4})");
    assert!(rmse <= want * 1.05, "rmse {rmse} vs {want}");
}

/// Debug builds: 30 trees instead of 100; AUC within 0.015 of the 100-tree reference.
#[test]
fn forest_binary_auc_near_scikit_learn() {
    let (auc, want) = (
        binary_auc("rf", json!({"n_estimators": 30})),
        reference("binary", "rf", "auc"),
    );
    eprintln!("rf(30) binary auc {auc:.4} (scikit-learn, 100 trees {want:.4})");
    assert!((auc - want).abs() <= 0.015, "auc {auc} vs {want}");
}

/// Debug builds: 30 trees; accuracy within 0.03 of the 100-tree reference.
#[test]
fn forest_multiclass_accuracy_near_scikit_learn() {
    let (acc, want) = (
        multiclass_accuracy("rf", json!({"n_estimators": 30})),
        reference("multiclass", "rf", "accuracy"),
    );
    eprintln!("rf(30) multiclass accuracy {acc:.4} (scikit-learn, 100 trees {want:.4})");
    assert!((acc - want).abs() <= 0.03, "accuracy {acc} vs {want}");
}

/// Debug builds: 20 trees; RMSE within 10% of the 100-tree reference.
#[test]
fn forest_regression_rmse_near_scikit_learn() {
    let (rmse, want) = (
        regression_rmse("rf", json!({"n_estimators": 20})),
        reference("regression", "rf", "rmse"),
    );
    eprintln!("rf(20) regression rmse {rmse:.4} (scikit-learn, 100 trees {want:.4})");
    assert!(rmse <= want * 1.10, "rmse {rmse} vs {want}");
}

/// The strict comparison: 100 trees, AUC within 0.01, accuracy within 0.01, RMSE within 5%. Slow in debug.
#[test]
#[ignore]
fn strict_forest_matches_scikit_learn() {
    let t = std::time::Instant::now();
    let auc = binary_auc("rf", json!({}));
    eprintln!(
        "rf binary auc {auc:.4} (scikit-learn {:.4}), {:.2?}",
        reference("binary", "rf", "auc"),
        t.elapsed()
    );
    let t = std::time::Instant::now();
    let acc = multiclass_accuracy("rf", json!({}));
    eprintln!(
        "rf multiclass accuracy {acc:.4} (scikit-learn {:.4}), {:.2?}",
        reference("multiclass", "rf", "accuracy"),
        t.elapsed()
    );
    let t = std::time::Instant::now();
    let rmse = regression_rmse("rf", json!({}));
    eprintln!(
        "rf regression rmse {rmse:.4} (scikit-learn {:.4}), {:.2?}",
        reference("regression", "rf", "rmse"),
        t.elapsed()
    );
    assert!((auc - reference("binary", "rf", "auc")).abs() <= 0.01);
    assert!((acc - reference("multiclass", "rf", "accuracy")).abs() <= 0.01);
    assert!(rmse <= reference("regression", "rf", "rmse") * 1.05);
}

/// The same seed gives the same forest on 1 and 2 threads; another seed gives another forest.
#[test]
fn forest_is_deterministic_for_a_seed_whatever_the_threads() {
    let train = load("multiclass", "train", true).subset(&(0..1000).collect::<Vec<_>>());
    let params = json!({"n_estimators": 6, "max_depth": 6});
    let on = |threads: usize, seed: u64| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| {
            algorithm("rf", &params, seed)
                .unwrap()
                .fit(&train, None, &NoProgress)
                .unwrap()
        })
    };
    let one = on(1, 5);
    assert_eq!(one, on(2, 5));
    assert_ne!(one, on(2, 6));
}

/// Blanks a quarter of the values of the first five features (rows chosen by a fixed pattern).
fn with_missing(mut d: Dataset) -> Dataset {
    for (j, c) in d.columns.iter_mut().enumerate().take(5) {
        for (i, v) in c.iter_mut().enumerate() {
            if (i * 7 + j * 3) % 4 == 0 {
                *v = f64::NAN;
            }
        }
    }
    d
}

/// Missing values in training and test data: trees learn a direction per split and stay close to the complete
/// data's quality.
#[test]
fn missing_values_train_and_score() {
    let (train, test) = (
        with_missing(load("binary", "train", true)),
        with_missing(load("binary", "test", true)),
    );
    let body = fit("rf", json!({"n_estimators": 20}), &train).unwrap();
    let ModelBody::Trees(ref trees) = body else {
        panic!("not trees")
    };
    let learned_left = trees
        .trees
        .iter()
        .flat_map(|t| t.missing_left.iter())
        .filter(|m| **m)
        .count();
    assert!(learned_left > 0, "no split sends missing values left");
    let auc = eval_classifier(&*scorer(&train, "rf", body), &test).auc;
    eprintln!("rf(20) binary auc with 25% missing in 5 features {auc:.4}");
    assert!(auc > reference("binary", "rf", "auc") - 0.05, "auc {auc}");
}

fn param_error(name: &str, params: Value) -> String {
    match algorithm(name, &params, 0) {
        Err(TrainError::Param { name, .. }) => name,
        other => panic!("expected a parameter error, got {other:?}"),
    }
}

#[test]
fn bad_params_name_the_parameter() {
    assert_eq!(param_error("rf", json!({"n_trees": 10})), "n_trees");
    assert_eq!(
        param_error("rf", json!({"n_estimators": 0})),
        "n_estimators"
    );
    assert_eq!(
        param_error("rf", json!({"max_features": "most"})),
        "max_features"
    );
    assert_eq!(
        param_error("rf", json!({"max_samples": 1.5})),
        "max_samples"
    );
    assert_eq!(
        param_error("rf", json!({"bootstrap": false, "max_samples": 0.5})),
        "max_samples"
    );
    assert_eq!(param_error("rf", json!({"bootstrap": "yes"})), "bootstrap");
    assert_eq!(param_error("rf", json!({"seed": -1})), "seed");
    assert_eq!(
        param_error("tree", json!({"n_estimators": 10})),
        "n_estimators"
    );
    assert_eq!(param_error("tree", json!({"max_depth": 0})), "max_depth");
    assert_eq!(
        param_error("tree", json!({"min_samples_leaf": 0})),
        "min_samples_leaf"
    );
    let train = load("regression", "train", false);
    for (params, name) in [
        (
            json!({"criterion": "entropy", "n_estimators": 1}),
            "criterion",
        ),
        (
            json!({"max_samples": 4001, "n_estimators": 1}),
            "max_samples",
        ),
    ] {
        match fit("rf", params, &train) {
            Err(TrainError::Param { name: got, .. }) => assert_eq!(got, name),
            other => panic!("expected a {name} error, got {other:?}"),
        }
    }
    // Huge but valid values train (a single leaf) rather than overflow.
    let body = fit(
        "tree",
        json!({"min_samples_leaf": u64::MAX, "max_depth": u64::MAX}),
        &train,
    )
    .unwrap();
    let ModelBody::Trees(trees) = body else {
        panic!("not trees")
    };
    assert_eq!(trees.trees[0].left, vec![-1]);
}

#[test]
fn single_class_training_data_is_refused() {
    let train = load("binary", "train", true);
    let ones: Vec<usize> = (0..train.n_rows())
        .filter(|&i| train.class(i) == 1)
        .collect();
    let train = train.subset(&ones);
    for name in ["rf", "tree"] {
        let err = fit(name, json!({}), &train).unwrap_err();
        assert!(matches!(err, TrainError::Unfit(_)), "{err}");
        assert!(err.to_string().contains("single class"), "{err}");
    }
}

#[test]
fn progress_counts_trees_and_reports_the_oob_score() {
    let train = load("binary", "train", true);
    let record = ProgressLog::default();
    algorithm(
        "rf",
        &json!({"n_estimators": 8, "max_depth": 10, "oob_score": true}),
        1,
    )
    .unwrap()
    .fit(&train, None, &record)
    .unwrap();
    let updates = record.0.into_inner().unwrap();
    assert_eq!(updates.len(), 8);
    assert!(updates.iter().all(|u| u.1 == 8));
    let (done, _, message) = updates.last().unwrap();
    assert_eq!(*done, 8);
    let oob: f64 = message
        .strip_prefix("oob accuracy ")
        .unwrap()
        .parse()
        .unwrap();
    eprintln!("{message}");
    assert!(oob > 0.75 && oob <= 1.0, "{message}");
}

/// A categorical feature whose class depends on the category, not on the order of the codes: one set split
/// separates it, and the real scorer sends the rows as training did.
#[test]
fn categorical_set_splits_score_through_the_model() {
    let mut train = load("binary", "train", true).subset(&(0..600).collect::<Vec<_>>());
    let codes: Vec<f64> = (0..train.n_rows()).map(|i| (i * 7 % 10) as f64).collect();
    train.y = codes
        .iter()
        .map(|c| f64::from([1, 4, 5, 8, 9].contains(&(*c as i32))))
        .collect();
    train.columns[0] = codes;
    let mut specs = train.schema.features().to_vec();
    specs[0].kind = dipper_core::FeatureKind::Categorical { categories: vec![] };
    train.schema = dipper_core::FeatureSchema::new(specs).unwrap();
    let body = fit("tree", json!({"max_depth": 1}), &train).unwrap();
    let ModelBody::Trees(ref trees) = body else {
        panic!("not trees")
    };
    assert_eq!(trees.trees[0].categories[0].len(), 5);
    let m = eval_classifier(&*scorer(&train, "tree", body), &train);
    assert_eq!(m.accuracy, 1.0);
}

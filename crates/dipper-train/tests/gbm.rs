//! Gradient boosting against LightGBM's reference metrics on the fixtures, determinism, early stopping,
//! missing values, categorical features, edge cases and parameter errors.
//!
//! The fixture comparisons train LightGBM's reference configuration in full (200 iterations, 31 leaves); the
//! fixtures are small (4000 rows), so this stays quick in debug builds.

mod common;

use common::ProgressLog;

use dipper_core::{FeatureKind, FeatureSchema, FeatureSpec};
use dipper_models::native::ModelBody;
use dipper_models::{ClassLabel, PredictionRef, Predictions};
use dipper_train::gbm::Gbm;
use dipper_train::{Algorithm, Dataset, NoProgress, Target, TrainError};
use serde_json::json;

/// LightGBM's settings of `fixtures/train/reference.json`.
fn reference_params() -> serde_json::Value {
    json!({"num_iterations": 200, "num_leaves": 31, "learning_rate": 0.1, "min_data_in_leaf": 20,
           "lambda_l2": 0.0, "seed": 0})
}

fn fit(params: serde_json::Value, train: &Dataset, valid: Option<&Dataset>) -> ModelBody {
    Gbm::from_params(&params)
        .unwrap()
        .fit(train, valid, &NoProgress)
        .unwrap()
}

fn n_trees(body: &ModelBody) -> usize {
    match body {
        ModelBody::Trees(t) => t.trees.len(),
        other => panic!("not trees: {other:?}"),
    }
}

#[test]
fn binary_auc_matches_lightgbm() {
    let train = common::load("binary", "train", true);
    let test = common::load("binary", "test", true);
    let body = fit(reference_params(), &train, None);
    let m = common::eval_classifier(&*common::scorer(&train, "gbm", body), &test);
    let want = common::reference("binary", "gbm", "auc");
    eprintln!(
        "binary auc {} (LightGBM {want}), logloss {}",
        m.auc, m.logloss
    );
    assert!(m.auc >= want - 0.005, "auc {} vs LightGBM {want}", m.auc);
}

#[test]
fn multiclass_close_to_lightgbm() {
    let train = common::load("multiclass", "train", true);
    let test = common::load("multiclass", "test", true);
    let body = fit(reference_params(), &train, None);
    assert_eq!(n_trees(&body) % train.n_classes(), 0);
    let m = common::eval_classifier(&*common::scorer(&train, "gbm", body), &test);
    let (ll, acc) = (
        common::reference("multiclass", "gbm", "logloss"),
        common::reference("multiclass", "gbm", "accuracy"),
    );
    eprintln!(
        "multiclass logloss {} (LightGBM {ll}), accuracy {} (LightGBM {acc})",
        m.logloss, m.accuracy
    );
    assert!(
        m.logloss <= ll * 1.1,
        "logloss {} vs LightGBM {ll}",
        m.logloss
    );
    assert!(
        m.accuracy >= acc - 0.015,
        "accuracy {} vs LightGBM {acc}",
        m.accuracy
    );
}

#[test]
fn regression_rmse_within_5_percent_of_lightgbm() {
    let train = common::load("regression", "train", false);
    let test = common::load("regression", "test", false);
    let body = fit(reference_params(), &train, None);
    let m = common::eval_regressor(&*common::scorer(&train, "gbm", body), &test);
    let want = common::reference("regression", "gbm", "rmse");
    eprintln!("regression rmse {} (LightGBM {want})", m.rmse);
    assert!(m.rmse <= want * 1.05, "rmse {} vs LightGBM {want}", m.rmse);
}

#[test]
fn poisson_fits_counts() {
    let train = common::load("counts", "train", false);
    let test = common::load("counts", "test", false);
    let mut p = reference_params();
    p["objective"] = json!("poisson");
    p["num_iterations"] = json!(100);
    p["learning_rate"] = json!(0.05);
    let body = fit(p, &train, None);
    match &body {
        ModelBody::Trees(t) => assert_eq!(t.output, dipper_models::native::trees::TreeOutput::Exp),
        _ => unreachable!(),
    }
    let m = common::eval_regressor(&*common::scorer(&train, "gbm", body), &test);
    // The data is a log-linear Poisson model: the GLM is the right model; trees should come close.
    let glm = common::reference("counts", "glm_poisson", "rmse");
    eprintln!("poisson rmse {} (Poisson GLM {glm})", m.rmse);
    assert!(m.rmse <= glm * 1.05, "rmse {} vs GLM {glm}", m.rmse);
}

#[test]
fn same_seed_same_model_whatever_the_thread_count() {
    let train = common::load("binary", "train", true);
    let params =
        json!({"num_iterations": 20, "bagging_fraction": 0.7, "feature_fraction": 0.6, "seed": 7});
    let on = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| fit(params.clone(), &train, None))
    };
    let a = on(1);
    assert_eq!(a, on(2));
    assert_eq!(a, on(3));
    let mut other = params.clone();
    other["seed"] = json!(8);
    assert_ne!(a, fit(other, &train, None));
}

#[test]
fn early_stopping_keeps_the_best_iteration() {
    let train = common::load("binary", "train", true);
    let valid = common::load("binary", "test", true);
    let params = json!({"num_iterations": 1000, "learning_rate": 0.3, "early_stopping_rounds": 10, "seed": 1});
    let rec = ProgressLog::default();
    let body = Gbm::from_params(&params)
        .unwrap()
        .fit(&train, Some(&valid), &rec)
        .unwrap();
    let log = rec.0.into_inner().unwrap();
    assert!(log.len() < 1000, "did not stop");
    assert!(log
        .iter()
        .enumerate()
        .all(|(i, (d, t, m))| *d == i as u64 + 1 && *t == 1000 && m.starts_with("valid logloss ")));
    let metrics: Vec<f64> = log
        .iter()
        .map(|(_, _, m)| m["valid logloss ".len()..].parse().unwrap())
        .collect();
    let best = metrics.iter().copied().fold(f64::INFINITY, f64::min);
    // The kept iteration logged the best metric (to the 4 decimals logged), and training went on for
    // `early_stopping_rounds` more.
    let kept = n_trees(&body);
    assert!(kept > 0);
    assert_eq!(metrics[kept - 1], best);
    assert_eq!(log.len(), kept + 10);
    // The kept model scores the best logged metric.
    let m = common::eval_classifier(&*common::scorer(&train, "gbm", body), &valid);
    assert!((m.logloss - best).abs() < 1e-3, "{} vs {best}", m.logloss);
}

#[test]
fn bagged_training_scores_match_the_scorer() {
    // The last progress message reports the training loss from the scores kept during training (rows out of
    // the bag are scored through bins); the saved model must give the same loss.
    let train = common::load("binary", "train", true);
    let params =
        json!({"num_iterations": 30, "bagging_fraction": 0.5, "feature_fraction": 0.5, "seed": 5});
    let rec = ProgressLog::default();
    let body = Gbm::from_params(&params)
        .unwrap()
        .fit(&train, None, &rec)
        .unwrap();
    let log = rec.0.into_inner().unwrap();
    let (done, _, last) = log.last().unwrap();
    assert_eq!(*done, 30);
    let logged: f64 = last["train logloss ".len()..].parse().unwrap();
    let m = common::eval_classifier(&*common::scorer(&train, "gbm", body), &train);
    assert!(
        (m.logloss - logged).abs() < 6e-5,
        "{} vs {logged}",
        m.logloss
    );
}

/// A copy with every `step`-th value of the first `features` features set to NaN (offset per feature).
fn with_nans(d: &Dataset, features: usize, step: usize) -> Dataset {
    let mut d = d.clone();
    for (j, c) in d.columns.iter_mut().take(features).enumerate() {
        for v in c.iter_mut().skip(j).step_by(step) {
            *v = f64::NAN;
        }
    }
    d
}

#[test]
fn missing_values_train_and_score() {
    let train = with_nans(&common::load("binary", "train", true), 20, 5);
    let test = with_nans(&common::load("binary", "test", true), 20, 5);
    let body = fit(json!({"num_iterations": 50}), &train, None);
    let m = common::eval_classifier(&*common::scorer(&train, "gbm", body), &test);
    eprintln!("auc with 20% missing {}", m.auc);
    assert!(m.auc > 0.85, "{}", m.auc);
}

fn schema(n: usize, categorical: &[usize]) -> FeatureSchema {
    FeatureSchema::new(
        (0..n)
            .map(|j| FeatureSpec {
                name: format!("f{j}"),
                kind: if categorical.contains(&j) {
                    FeatureKind::Categorical { categories: vec![] }
                } else {
                    FeatureKind::Numeric
                },
            })
            .collect(),
    )
    .unwrap()
}

fn binary_set(columns: Vec<Vec<f64>>, y: Vec<f64>, categorical: &[usize]) -> Dataset {
    Dataset {
        schema: schema(columns.len(), categorical),
        columns,
        y,
        target: Target::Classification {
            classes: vec![ClassLabel::Int(0), ClassLabel::Int(1)],
        },
        label: "y".into(),
    }
}

fn probabilities(train: &Dataset, body: ModelBody, rows: &[f64]) -> Vec<f64> {
    let model = common::scorer(train, "gbm", body);
    let mut out = Predictions::default();
    model.predict_batch(rows, &mut out).unwrap();
    (0..out.len())
        .map(|i| match out.get(i) {
            PredictionRef::Class { .. } => out.values()[i * 2 + 1],
            PredictionRef::Value(_) => unreachable!(),
        })
        .collect()
}

#[test]
fn missing_values_go_where_they_belong() {
    // y = x > 0.5, but positives' x is missing half of the time: missing should mean "likely positive".
    let n = 2000;
    let x: Vec<f64> = (0..n).map(|i| ((i * 7919) % n) as f64 / n as f64).collect();
    let y: Vec<f64> = x.iter().map(|&v| (v > 0.5) as u8 as f64).collect();
    let xm: Vec<f64> = x
        .iter()
        .enumerate()
        .map(|(i, &v)| if v > 0.5 && i % 2 == 0 { f64::NAN } else { v })
        .collect();
    let train = binary_set(vec![xm], y, &[]);
    let body = fit(json!({"num_iterations": 20}), &train, None);
    let p = probabilities(&train, body, &[f64::NAN, 0.2, 0.8]);
    assert!(p[0] > 0.9 && p[1] < 0.1 && p[2] > 0.9, "{p:?}");
}

#[test]
fn categorical_features_split_on_category_sets() {
    // The class is 1 for codes {1, 4, 6, 9} of a 12-category feature; a noise feature besides.
    let n = 3000;
    let cat: Vec<f64> = (0..n).map(|i| ((i * 31) % 12) as f64).collect();
    let noise: Vec<f64> = (0..n).map(|i| ((i * 7919) % 1000) as f64).collect();
    let y: Vec<f64> = cat
        .iter()
        .map(|&c| [1.0, 4.0, 6.0, 9.0].contains(&c) as u8 as f64)
        .collect();
    let train = binary_set(vec![noise, cat], y, &[1]);
    let body = fit(json!({"num_iterations": 10}), &train, None);
    let ModelBody::Trees(t) = &body else {
        unreachable!()
    };
    let first = &t.trees[0];
    assert_eq!(first.feature[0], 1);
    let mut root_set = first.categories[0].clone();
    root_set.sort_unstable();
    assert!(
        root_set == vec![1, 4, 6, 9] || root_set == vec![0, 2, 3, 5, 7, 8, 10, 11],
        "{root_set:?}"
    );
    let rows: Vec<f64> = (0..12)
        .flat_map(|c| [0.0, c as f64])
        .chain([0.0, 40.0, 0.0, f64::NAN])
        .collect();
    let p = probabilities(&train, body, &rows);
    for (c, pc) in p.iter().take(12).enumerate() {
        assert_eq!(*pc > 0.5, [1, 4, 6, 9].contains(&c), "code {c}: {pc}");
    }
    // An unseen code and a missing one score without error.
    assert!(p[12].is_finite() && p[13].is_finite());
}

#[test]
fn many_and_invalid_category_codes() {
    // 600 codes (more than bins: rare ones share the "other" bin), plus negative, fractional and huge values.
    let n = 6000;
    let cat: Vec<f64> = (0..n)
        .map(|i| match i % 50 {
            0 => -3.0,
            1 => 1e12,
            2 => 7.5,
            _ => ((i * 7919) % 600) as f64,
        })
        .collect();
    let y: Vec<f64> = cat
        .iter()
        .map(|&c| ((c as i64).rem_euclid(3) == 0) as u8 as f64)
        .collect();
    let train = binary_set(vec![cat], y, &[0]);
    let body = fit(json!({"num_iterations": 20}), &train, None);
    let m = common::eval_classifier(&*common::scorer(&train, "gbm", body), &train);
    eprintln!("accuracy with 600 codes {}", m.accuracy);
    assert!(m.accuracy > 0.75, "{}", m.accuracy);
}

#[test]
fn degenerate_data_trains_or_fails_clearly() {
    // Constant and all-missing features: no split, the prior only.
    let train = binary_set(
        vec![vec![1.0; 50], vec![f64::NAN; 50]],
        (0..50).map(|i| (i % 2) as f64).collect(),
        &[],
    );
    let body = fit(json!({}), &train, None);
    let p = probabilities(&train, body, &[1.0, f64::NAN]);
    assert!((p[0] - 0.5).abs() < 1e-9, "{p:?}");
    // One row of regression.
    let one = Dataset {
        schema: schema(1, &[]),
        columns: vec![vec![3.0]],
        y: vec![2.5],
        target: Target::Regression,
        label: "y".into(),
    };
    let body = fit(json!({}), &one, None);
    let m = common::eval_regressor(&*common::scorer(&one, "gbm", body), &one);
    assert!(m.rmse < 1e-9);
    // A class without rows.
    let one_class = binary_set(vec![vec![1.0, 2.0, 3.0]], vec![0.0; 3], &[]);
    let err = Gbm::from_params(&json!({}))
        .unwrap()
        .fit(&one_class, None, &NoProgress)
        .unwrap_err();
    assert!(matches!(err, TrainError::Unfit(_)), "{err}");
    // Empty training set; validation set of another shape.
    let empty = binary_set(vec![vec![]], vec![], &[]);
    assert!(Gbm::from_params(&json!({}))
        .unwrap()
        .fit(&empty, None, &NoProgress)
        .is_err());
    let train = binary_set(
        vec![vec![1.0, 2.0, 3.0, 4.0]],
        vec![0.0, 1.0, 0.0, 1.0],
        &[],
    );
    let other = binary_set(vec![vec![1.0], vec![2.0]], vec![0.0], &[]);
    assert!(Gbm::from_params(&json!({}))
        .unwrap()
        .fit(&train, Some(&other), &NoProgress)
        .is_err());
    // Poisson on negative targets; binary objective on regression data.
    let reg = Dataset {
        y: vec![-1.0, 2.0, 3.0, 4.0],
        target: Target::Regression,
        ..train.clone()
    };
    let e = Gbm::from_params(&json!({"objective": "poisson"}))
        .unwrap()
        .fit(&reg, None, &NoProgress)
        .unwrap_err();
    assert!(matches!(e, TrainError::Data { .. }), "{e}");
    let e = Gbm::from_params(&json!({"objective": "binary"}))
        .unwrap()
        .fit(&reg, None, &NoProgress)
        .unwrap_err();
    assert!(
        matches!(&e, TrainError::Param { name, .. } if name == "objective"),
        "{e}"
    );
    // Targets too large for the gradients: an error, not a panic or a broken model.
    let huge = Dataset {
        y: vec![1e300, -1e300, 1e300, -1e300],
        ..reg.clone()
    };
    let _ = Gbm::from_params(&json!({"min_data_in_leaf": 1}))
        .unwrap()
        .fit(&huge, None, &NoProgress);
    // NaN everywhere, multiclass.
    let nan = Dataset {
        schema: schema(2, &[]),
        columns: vec![vec![f64::NAN; 30]; 2],
        y: (0..30).map(|i| (i % 3) as f64).collect(),
        target: Target::Classification {
            classes: (0..3).map(ClassLabel::Int).collect(),
        },
        label: "y".into(),
    };
    let body = fit(json!({}), &nan, None);
    let m = common::eval_classifier(&*common::scorer(&nan, "gbm", body), &nan);
    assert!((m.logloss - 3f64.ln()).abs() < 1e-6);
}

#[test]
fn bad_parameters_name_the_parameter() {
    for (params, name) in [
        (json!({"num_leaves": 1}), "num_leaves"),
        (json!({"learning_rate": -0.1}), "learning_rate"),
        (json!({"feature_fraction": 0}), "feature_fraction"),
        (json!({"num_iterations": "many"}), "num_iterations"),
        (json!({"lambda_l2": -1}), "lambda_l2"),
        (json!({"boosting": "dart"}), "boosting"),
    ] {
        match dipper_train::algorithm("gbm", &params, 0) {
            Err(TrainError::Param { name: got, .. }) => assert_eq!(got, name),
            other => panic!("{params}: {other:?}"),
        }
    }
    let a = dipper_train::algorithm("gbm", &json!({"num_leaves": 15}), 42).unwrap();
    assert_eq!(a.name(), "gbm");
    assert_eq!(a.params()["seed"], 42);
    assert_eq!(a.params()["num_leaves"], 15);
}

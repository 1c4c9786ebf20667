//! Naive Bayes training quality against scikit-learn's GaussianNB on the fixtures, plus mixed categorical
//! features, missing values, determinism and errors.

mod common;

use dipper_core::{FeatureKind, FeatureSchema, FeatureSpec};
use dipper_models::native::naive_bayes::NaiveBayesFeature;
use dipper_models::native::ModelBody;
use dipper_models::{ClassLabel, PredictionRef, Predictions};
use dipper_train::naive_bayes::NaiveBayes;
use dipper_train::{algorithm, Algorithm, Dataset, NoProgress, Target, TrainError};
use serde_json::json;

fn nb() -> NaiveBayes {
    NaiveBayes::from_params(&json!({})).unwrap()
}

#[test]
fn binary_matches_gaussian_nb() {
    let train = common::load("binary", "train", true);
    let test = common::load("binary", "test", true);
    let body = nb().fit(&train, None, &NoProgress).unwrap();
    let m = common::eval_classifier(&*common::scorer(&train, "nb", body), &test);
    let (auc, acc, ll) = (
        common::reference("binary", "nb", "auc"),
        common::reference("binary", "nb", "accuracy"),
        common::reference("binary", "nb", "logloss"),
    );
    eprintln!(
        "binary nb: auc {} (sklearn {auc}), accuracy {} (sklearn {acc}), logloss {} (sklearn {ll})",
        m.auc, m.accuracy, m.logloss
    );
    assert!((m.auc - auc).abs() <= 0.01, "auc {} vs {auc}", m.auc);
    assert!(
        (m.accuracy - acc).abs() <= 0.01,
        "accuracy {} vs {acc}",
        m.accuracy
    );
    assert!(
        (m.logloss - ll).abs() <= 1e-6 * ll,
        "logloss {} vs {ll}",
        m.logloss
    );
}

#[test]
fn multiclass_matches_gaussian_nb() {
    let train = common::load("multiclass", "train", true);
    let test = common::load("multiclass", "test", true);
    let body = nb().fit(&train, None, &NoProgress).unwrap();
    let m = common::eval_classifier(&*common::scorer(&train, "nb", body), &test);
    let (acc, ll) = (
        common::reference("multiclass", "nb", "accuracy"),
        common::reference("multiclass", "nb", "logloss"),
    );
    eprintln!(
        "multiclass nb: accuracy {} (sklearn {acc}), logloss {} (sklearn {ll})",
        m.accuracy, m.logloss
    );
    assert!(
        (m.accuracy - acc).abs() <= 0.01,
        "accuracy {} vs {acc}",
        m.accuracy
    );
    assert!(
        (m.logloss - ll).abs() <= 1e-6 * ll,
        "logloss {} vs {ll}",
        m.logloss
    );
}

fn mixed() -> Dataset {
    // Class 1 when the category is 2 (mostly) and x is large.
    let mut x = Vec::new();
    let mut c = Vec::new();
    let mut y = Vec::new();
    for i in 0..200 {
        let class = i % 2;
        x.push(class as f64 * 3.0 + ((i * 7) % 11) as f64 / 11.0);
        c.push(if class == 1 && i % 10 != 1 {
            2.0
        } else {
            (i % 2) as f64
        });
        y.push(class as f64);
    }
    x[0] = f64::NAN;
    c[2] = f64::NAN;
    Dataset {
        schema: FeatureSchema::new(vec![
            FeatureSpec::numeric("x"),
            FeatureSpec {
                name: "c".into(),
                kind: FeatureKind::Categorical {
                    categories: vec!["a".into(), "b".into(), "c".into()],
                },
            },
        ])
        .unwrap(),
        columns: vec![x, c],
        y,
        target: Target::Classification {
            classes: vec![ClassLabel::Str("no".into()), ClassLabel::Str("yes".into())],
        },
        label: "y".into(),
    }
}

#[test]
fn mixes_gaussian_and_categorical_features_and_skips_missing() {
    let train = mixed();
    let body = nb().fit(&train, None, &NoProgress).unwrap();
    let ModelBody::NaiveBayes(b) = &body else {
        panic!("not naive Bayes")
    };
    assert!(matches!(b.features[0], NaiveBayesFeature::Gaussian { .. }));
    let NaiveBayesFeature::Categorical { log_prob } = &b.features[1] else {
        panic!("not categorical")
    };
    // Class 0 (100 rows, one missing): category 0 seen 99 times, Laplace alpha 1 over 3 categories.
    assert!((log_prob[0][0] - (100.0f64 / 102.0).ln()).abs() < 1e-12);
    assert!((log_prob[0][2] - (1.0f64 / 102.0).ln()).abs() < 1e-12);
    let model = common::scorer(&train, "nb", body);
    assert!(model.info().accepts_missing);
    let mut out = Predictions::default();
    let nan = f64::NAN;
    model
        .predict_batch(
            &[3.5, 2.0, 0.2, 0.0, nan, 2.0, 0.1, nan, nan, nan],
            &mut out,
        )
        .unwrap();
    let label = |i| match out.get(i) {
        PredictionRef::Class { index, .. } => index,
        PredictionRef::Value(_) => unreachable!(),
    };
    assert_eq!((label(0), label(1), label(2), label(3)), (1, 0, 1, 0));
    for r in out.values().chunks(2) {
        assert!((r[0] + r[1] - 1.0).abs() < 1e-12);
    }
    // All missing: the priors (balanced classes).
    assert!((out.values()[8] - 0.5).abs() < 1e-12);
}

#[test]
fn training_is_deterministic() {
    let train = common::load("multiclass", "train", true);
    let a = algorithm("nb", &json!({}), 1).unwrap();
    let b = algorithm("nb", &json!({}), 2).unwrap();
    assert_eq!(
        a.fit(&train, None, &NoProgress).unwrap(),
        b.fit(&train, None, &NoProgress).unwrap()
    );
    assert_eq!(a.name(), "nb");
    assert_eq!(a.params()["seed"], 1);
}

#[test]
fn errors_are_clear() {
    let mut train = common::load("binary", "train", true);
    train.y.iter_mut().for_each(|y| *y = 0.0);
    let err = nb().fit(&train, None, &NoProgress).unwrap_err();
    assert!(err.to_string().contains("only one class"), "{err}");

    let train = common::load("regression", "train", false);
    let err = nb().fit(&train, None, &NoProgress).unwrap_err();
    assert!(err.to_string().contains("classifier"), "{err}");

    match NaiveBayes::from_params(&json!({"var_smooting": 1.0})) {
        Err(TrainError::Param { name, .. }) => assert_eq!(name, "var_smooting"),
        other => panic!("{other:?}"),
    }

    // A constant feature still gives a valid (positive-variance) model.
    let mut train = common::load("binary", "train", true);
    train
        .columns
        .iter_mut()
        .for_each(|c| c.iter_mut().for_each(|v| *v = 1.0));
    let body = nb().fit(&train, None, &NoProgress).unwrap();
    let model = common::scorer(&train, "nb", body);
    let mut out = Predictions::default();
    model.predict_batch(&train.rows()[..20], &mut out).unwrap();
    assert!(out.values().iter().all(|p| p.is_finite()));
}

//! GLM training quality against scikit-learn on the fixtures, plus behaviour (L1 sparsity, determinism,
//! categorical one-hot encoding, parameter and data errors).

mod common;

use std::sync::Mutex;

use dipper_core::{FeatureKind, FeatureSchema, FeatureSpec};
use dipper_models::native::linear::{LinearInput, LinearLink};
use dipper_models::native::ModelBody;
use dipper_models::{ClassLabel, Predictions};
use dipper_train::glm::Glm;
use dipper_train::{algorithm, Algorithm, Dataset, NoProgress, Progress, Target, TrainError};
use serde_json::json;

fn glm(params: serde_json::Value) -> Glm {
    Glm::from_params(&params).unwrap()
}

fn linear(body: &ModelBody) -> &dipper_models::native::linear::LinearBody {
    match body {
        ModelBody::Linear(b) => b,
        other => panic!("not a linear body: {other:?}"),
    }
}

#[derive(Default)]
struct Recorder(Mutex<Vec<String>>);

impl Progress for Recorder {
    fn update(&self, _: u64, _: u64, message: &str) {
        self.0.lock().unwrap().push(message.to_string());
    }
}

#[test]
fn binary_logistic_matches_scikit_learn() {
    let train = common::load("binary", "train", true);
    let test = common::load("binary", "test", true);
    // LogisticRegression(C=1) on standardised features <=> alpha = 1 / (C n).
    let alpha = 1.0 / train.n_rows() as f64;
    let body = glm(json!({"alpha": alpha}))
        .fit(&train, None, &NoProgress)
        .unwrap();
    assert_eq!(linear(&body).link, LinearLink::Logit);
    let m = common::eval_classifier(&*common::scorer(&train, "glm", body), &test);
    let (auc, acc) = (
        common::reference("binary", "glm", "auc"),
        common::reference("binary", "glm", "accuracy"),
    );
    eprintln!(
        "binary glm: auc {} (sklearn {auc}), accuracy {} (sklearn {acc}), logloss {} (sklearn {})",
        m.auc,
        m.accuracy,
        m.logloss,
        common::reference("binary", "glm", "logloss")
    );
    assert!((m.auc - auc).abs() <= 0.01, "auc {} vs {auc}", m.auc);
    assert!(
        (m.accuracy - acc).abs() <= 0.01,
        "accuracy {} vs {acc}",
        m.accuracy
    );
}

#[test]
fn multinomial_matches_scikit_learn() {
    let train = common::load("multiclass", "train", true);
    let test = common::load("multiclass", "test", true);
    let alpha = 1.0 / train.n_rows() as f64;
    let progress = Recorder::default();
    let body = glm(json!({"alpha": alpha}))
        .fit(&train, None, &progress)
        .unwrap();
    let b = linear(&body);
    assert_eq!(b.link, LinearLink::Softmax);
    assert_eq!(b.outputs.len(), train.n_classes());
    let messages = progress.0.lock().unwrap();
    assert!(
        messages.last().unwrap().starts_with("converged"),
        "{messages:?}"
    );
    let m = common::eval_classifier(&*common::scorer(&train, "glm", body), &test);
    let acc = common::reference("multiclass", "glm", "accuracy");
    eprintln!(
        "multiclass glm: accuracy {} (sklearn {acc}), logloss {} (sklearn {}), {} iterations",
        m.accuracy,
        m.logloss,
        common::reference("multiclass", "glm", "logloss"),
        messages.len() - 1
    );
    assert!(
        (m.accuracy - acc).abs() <= 0.01,
        "accuracy {} vs {acc}",
        m.accuracy
    );
    let ll = common::reference("multiclass", "glm", "logloss");
    assert!(
        (m.logloss - ll).abs() <= 0.01 * ll,
        "logloss {} vs {ll}",
        m.logloss
    );
}

#[test]
fn linear_regression_matches_scikit_learn() {
    let train = common::load("regression", "train", false);
    let test = common::load("regression", "test", false);
    let body = glm(json!({"alpha": 0.0}))
        .fit(&train, None, &NoProgress)
        .unwrap();
    assert_eq!(linear(&body).link, LinearLink::Identity);
    let m = common::eval_regressor(&*common::scorer(&train, "glm", body), &test);
    let rmse = common::reference("regression", "glm", "rmse");
    eprintln!("regression glm: rmse {} (sklearn {rmse})", m.rmse);
    assert!(
        (m.rmse - rmse).abs() <= 1e-6 * rmse,
        "rmse {} vs {rmse}",
        m.rmse
    );
}

#[test]
fn poisson_matches_scikit_learn() {
    let train = common::load("counts", "train", false);
    let test = common::load("counts", "test", false);
    let body = glm(json!({"family": "poisson", "alpha": 0.0}))
        .fit(&train, None, &NoProgress)
        .unwrap();
    assert_eq!(linear(&body).link, LinearLink::Log);
    let m = common::eval_regressor(&*common::scorer(&train, "glm", body), &test);
    let rmse = common::reference("counts", "glm_poisson", "rmse");
    eprintln!("counts poisson glm: rmse {} (sklearn {rmse})", m.rmse);
    assert!(
        (m.rmse - rmse).abs() <= 0.05 * rmse,
        "rmse {} vs {rmse}",
        m.rmse
    );
}

#[test]
fn lasso_gives_exact_zeros_and_fewer_terms_as_alpha_grows() {
    let train = common::load("regression", "train", false);
    let nonzero = |alpha: f64| {
        let body = glm(json!({"alpha": alpha, "l1_ratio": 1.0}))
            .fit(&train, None, &NoProgress)
            .unwrap();
        linear(&body).outputs[0]
            .coefficients
            .iter()
            .filter(|c| **c != 0.0)
            .count()
    };
    let (small, large) = (nonzero(1e-4), nonzero(0.5));
    assert_eq!(small, train.n_features());
    assert!(large < small, "{large} nonzero terms at alpha 0.5");
    assert_eq!(nonzero(1e6), 0);

    // Also for the logistic loss.
    let train = common::load("binary", "train", true);
    let body = glm(json!({"alpha": 0.05, "l1_ratio": 1.0}))
        .fit(&train, None, &NoProgress)
        .unwrap();
    let zeros = linear(&body).outputs[0]
        .coefficients
        .iter()
        .filter(|c| **c == 0.0)
        .count();
    assert!(zeros > 0, "no exact zeros with L1");
}

#[test]
fn ridge_shrinks_towards_zero() {
    let train = common::load("regression", "train", false);
    let norm = |alpha: f64| {
        let body = glm(json!({"alpha": alpha}))
            .fit(&train, None, &NoProgress)
            .unwrap();
        linear(&body).outputs[0]
            .coefficients
            .iter()
            .map(|c| c * c)
            .sum::<f64>()
    };
    assert!(norm(10.0) < norm(0.1));
}

#[test]
fn training_is_deterministic() {
    let train = common::load("multiclass", "train", true);
    let a = glm(json!({"alpha": 0.001, "l1_ratio": 0.5, "seed": 1}))
        .fit(&train, None, &NoProgress)
        .unwrap();
    let b = glm(json!({"alpha": 0.001, "l1_ratio": 0.5, "seed": 2}))
        .fit(&train, None, &NoProgress)
        .unwrap();
    assert_eq!(a, b);
}

fn categorical_data() -> Dataset {
    // y = 2 x + effect[c] + noise-free, c in 0..3
    let effect = [1.0, -2.0, 5.0];
    let mut x = Vec::new();
    let mut c = Vec::new();
    let mut y = Vec::new();
    for i in 0..60 {
        let xi = (i as f64 * 0.37).sin();
        let ci = i % 3;
        x.push(xi);
        c.push(ci as f64);
        y.push(2.0 * xi + effect[ci]);
    }
    Dataset {
        schema: FeatureSchema::new(vec![
            FeatureSpec::numeric("x"),
            FeatureSpec {
                name: "c".into(),
                kind: FeatureKind::Categorical {
                    categories: vec!["a".into(), "b".into(), "c".into(), "unseen".into()],
                },
            },
        ])
        .unwrap(),
        columns: vec![x, c],
        y,
        target: Target::Regression,
        label: "y".into(),
    }
}

#[test]
fn categorical_features_are_one_hot_encoded() {
    let train = categorical_data();
    let body = glm(json!({"alpha": 0.0}))
        .fit(&train, None, &NoProgress)
        .unwrap();
    let b = linear(&body);
    assert_eq!(
        b.inputs,
        vec![
            LinearInput::Numeric {},
            LinearInput::OneHot { categories: 4 }
        ]
    );
    assert_eq!(b.outputs[0].coefficients.len(), 5);
    // The category never seen in training has coefficient 0.
    assert_eq!(b.outputs[0].coefficients[4], 0.0);
    assert!((b.outputs[0].coefficients[0] - 2.0).abs() < 1e-6);
    let model = common::scorer(&train, "glm", body);
    let mut out = Predictions::default();
    model
        .predict_batch(&[0.5, 0.0, 0.5, 1.0, 0.5, 2.0], &mut out)
        .unwrap();
    for (got, want) in out.values().iter().zip([2.0, -1.0, 6.0]) {
        assert!((got - want).abs() < 1e-6, "{got} vs {want}");
    }
}

#[test]
fn bad_parameters_name_the_parameter() {
    let name_of = |p: serde_json::Value| match Glm::from_params(&p) {
        Err(TrainError::Param { name, .. }) => name,
        other => panic!("expected a parameter error for {p}, got {other:?}"),
    };
    assert_eq!(name_of(json!({"alhpa": 1.0})), "alhpa");
    assert_eq!(name_of(json!({"alpha": -1.0})), "alpha");
    assert_eq!(name_of(json!({"alpha": "big"})), "alpha");
    assert_eq!(name_of(json!({"l1_ratio": 1.5})), "l1_ratio");
    assert_eq!(name_of(json!({"family": "gamma"})), "family");
    assert_eq!(name_of(json!({"max_iter": 0})), "max_iter");
    assert_eq!(name_of(json!({"tol": 0.0})), "tol");
    assert_eq!(name_of(json!({"fit_intercept": 1})), "fit_intercept");
    assert!(algorithm("glm", &json!({}), 7).is_ok());
    let p = algorithm("glm", &json!({"l1_ratio": 0.5}), 7)
        .unwrap()
        .params();
    assert_eq!(p["seed"], 7);
    assert_eq!(p["family"], "auto");
    assert_eq!(p["l1_ratio"], 0.5);

    // A family that does not fit the target is a parameter error too.
    let train = common::load("multiclass", "train", true);
    let err = glm(json!({"family": "binomial"}))
        .fit(&train, None, &NoProgress)
        .unwrap_err();
    assert!(
        matches!(err, TrainError::Param { ref name, .. } if name == "family"),
        "{err}"
    );
    let err = glm(json!({"family": "poisson"}))
        .fit(&train, None, &NoProgress)
        .unwrap_err();
    assert!(
        matches!(err, TrainError::Param { ref name, .. } if name == "family"),
        "{err}"
    );
}

#[test]
fn unusable_data_gives_clear_errors() {
    let mut train = common::load("binary", "train", true);
    train.y.iter_mut().for_each(|y| *y = 1.0);
    let err = glm(json!({})).fit(&train, None, &NoProgress).unwrap_err();
    assert!(err.to_string().contains("only one class"), "{err}");

    let mut train = common::load("binary", "train", true);
    train.columns[3][10] = f64::NAN;
    let err = glm(json!({})).fit(&train, None, &NoProgress).unwrap_err();
    assert!(err.to_string().contains("x3"), "{err}");

    let mut train = common::load("counts", "train", false);
    train.y[0] = -1.0;
    let err = glm(json!({"family": "poisson"}))
        .fit(&train, None, &NoProgress)
        .unwrap_err();
    assert!(err.to_string().contains("non-negative"), "{err}");

    let empty = common::load("binary", "train", true).subset(&[]);
    assert!(glm(json!({})).fit(&empty, None, &NoProgress).is_err());
}

#[test]
fn separable_data_warns_instead_of_failing() {
    let x: Vec<f64> = (0..20).map(|i| i as f64).collect();
    let y: Vec<f64> = x
        .iter()
        .map(|v| if *v < 10.0 { 0.0 } else { 1.0 })
        .collect();
    let train = Dataset {
        schema: FeatureSchema::numeric(&["x"]).unwrap(),
        columns: vec![x],
        y,
        target: Target::Classification {
            classes: vec![ClassLabel::Int(0), ClassLabel::Int(1)],
        },
        label: "y".into(),
    };
    let progress = Recorder::default();
    let body = glm(json!({"alpha": 0.0, "max_iter": 5}))
        .fit(&train, None, &progress)
        .unwrap();
    assert!(
        progress
            .0
            .lock()
            .unwrap()
            .last()
            .unwrap()
            .starts_with("warning"),
        "{:?}",
        progress.0.lock().unwrap()
    );
    let m = common::eval_classifier(&*common::scorer(&train, "glm", body), &train);
    assert_eq!(m.accuracy, 1.0);
}

#[test]
fn no_intercept_and_constant_columns() {
    let mut train = common::load("regression", "train", false);
    train.columns[2].iter_mut().for_each(|v| *v = 0.0);
    let body = glm(json!({"alpha": 0.0, "fit_intercept": false}))
        .fit(&train, None, &NoProgress)
        .unwrap();
    let b = linear(&body);
    assert_eq!(b.outputs[0].intercept, 0.0);
    assert_eq!(b.outputs[0].coefficients[2], 0.0);
    // Without an intercept a constant non-zero column plays its part, so it is kept.
    train.columns[2].iter_mut().for_each(|v| *v = 3.0);
    let body = glm(json!({"alpha": 0.0, "fit_intercept": false}))
        .fit(&train, None, &NoProgress)
        .unwrap();
    assert_ne!(linear(&body).outputs[0].coefficients[2], 0.0);
    let body = glm(json!({"alpha": 0.0}))
        .fit(&train, None, &NoProgress)
        .unwrap();
    assert_eq!(linear(&body).outputs[0].coefficients[2], 0.0);
}

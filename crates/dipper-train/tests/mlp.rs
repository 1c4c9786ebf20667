//! MLP training quality against scikit-learn (StandardScaler + MLPClassifier / MLPRegressor, hidden (64, 32),
//! relu, adam, early stopping) on the fixtures, scored through the native model file, plus determinism, early
//! stopping, categorical inputs and errors.

mod common;

use common::ProgressLog;

use std::time::Instant;

use dipper_core::{FeatureKind, FeatureSchema, FeatureSpec};
use dipper_models::native::mlp::MlpInput;
use dipper_models::native::ModelBody;
use dipper_models::{ClassLabel, Predictions};
use dipper_train::{algorithm, Dataset, NoProgress, Target, TrainError};
use serde_json::json;

/// Trains with `params`, printing how many epochs ran and the last monitored loss.
fn train(data: &Dataset, params: serde_json::Value) -> ModelBody {
    let epochs = ProgressLog::default();
    let body = algorithm("mlp", &params, 0)
        .unwrap()
        .fit(data, None, &epochs)
        .unwrap();
    if let Some((done, total, msg)) = epochs.0.lock().unwrap().last() {
        eprintln!("{done}/{total} epochs, {msg}");
    }
    body
}

#[test]
fn binary_auc_close_to_scikit_learn() {
    let (tr, te) = (
        common::load("binary", "train", true),
        common::load("binary", "test", true),
    );
    let t = Instant::now();
    let body = train(&tr, json!({}));
    let m = common::eval_classifier(&*common::scorer(&tr, "mlp", body), &te);
    let want = common::reference("binary", "mlp", "auc");
    eprintln!(
        "binary: auc {:.4} (sklearn {want:.4}), accuracy {:.4}, logloss {:.4} in {:?}",
        m.auc,
        m.accuracy,
        m.logloss,
        t.elapsed()
    );
    assert!(m.auc > want - 0.01, "auc {} vs {want}", m.auc);
}

#[test]
fn multiclass_accuracy_close_to_scikit_learn() {
    let (tr, te) = (
        common::load("multiclass", "train", true),
        common::load("multiclass", "test", true),
    );
    let t = Instant::now();
    let body = train(&tr, json!({}));
    let m = common::eval_classifier(&*common::scorer(&tr, "mlp", body), &te);
    let want = common::reference("multiclass", "mlp", "accuracy");
    eprintln!(
        "multiclass: accuracy {:.4} (sklearn {want:.4}), logloss {:.4} (sklearn {:.4}) in {:?}",
        m.accuracy,
        m.logloss,
        common::reference("multiclass", "mlp", "logloss"),
        t.elapsed()
    );
    assert!(
        m.accuracy > want - 0.02,
        "accuracy {} vs {want}",
        m.accuracy
    );
}

#[test]
fn regression_rmse_close_to_scikit_learn() {
    let (tr, te) = (
        common::load("regression", "train", false),
        common::load("regression", "test", false),
    );
    let t = Instant::now();
    let body = train(&tr, json!({}));
    let m = common::eval_regressor(&*common::scorer(&tr, "mlp", body), &te);
    let want = common::reference("regression", "mlp", "rmse");
    eprintln!(
        "regression: rmse {:.4} (sklearn {want:.4}), r2 {:.4} in {:?}",
        m.rmse,
        m.r2,
        t.elapsed()
    );
    assert!(m.rmse < want * 1.05, "rmse {} vs {want}", m.rmse);
}

/// The first `n` rows of the binary fixture (small, for fast tests).
fn small_binary(n: usize) -> Dataset {
    let d = common::load("binary", "train", true);
    d.subset(&(0..n).collect::<Vec<_>>())
}

fn quick() -> serde_json::Value {
    json!({"hidden": [8], "max_epochs": 5, "batch_size": 50})
}

#[test]
fn deterministic_for_a_seed() {
    let d = small_binary(400);
    let fit = |seed: u64| {
        algorithm("mlp", &quick(), seed)
            .unwrap()
            .fit(&d, None, &NoProgress)
            .unwrap()
    };
    assert_eq!(fit(5), fit(5));
    assert_ne!(fit(5), fit(6));
    // The seed in the parameters wins over the run's seed.
    let mut p = quick();
    p["seed"] = json!(5);
    let a = algorithm("mlp", &p, 99).unwrap();
    assert_eq!(a.params()["seed"], json!(5));
    assert_eq!(a.fit(&d, None, &NoProgress).unwrap(), fit(5));
}

#[test]
fn early_stopping_keeps_the_best_epoch() {
    let d = small_binary(600);
    let (train_part, valid) = (
        d.subset(&(0..400).collect::<Vec<_>>()),
        d.subset(&(400..600).collect::<Vec<_>>()),
    );
    // A large learning rate and no L2 overfit quickly: the validation loss stops improving long before
    // max_epochs.
    let params = json!({"hidden": [32], "learning_rate": 0.02, "alpha": 0.0, "max_epochs": 300, "batch_size": 50});
    let epochs = ProgressLog::default();
    let body = algorithm("mlp", &params, 1)
        .unwrap()
        .fit(&train_part, Some(&valid), &epochs)
        .unwrap();
    let calls = epochs.0.lock().unwrap().clone();
    assert!(calls.len() < 300, "ran {} epochs", calls.len());
    assert!(calls
        .iter()
        .enumerate()
        .all(|(i, (done, total, msg))| *done == i as u64 + 1
            && *total == 300
            && msg.starts_with("valid loss ")));
    let losses: Vec<f64> = calls
        .iter()
        .map(|(_, _, m)| m["valid loss ".len()..].parse().unwrap())
        .collect();
    let best = losses.iter().copied().fold(f64::INFINITY, f64::min);
    let best_epoch = losses.iter().position(|l| *l == best).unwrap();
    // Stopped n_iter_no_change (10) epochs after the last improvement, at the latest.
    assert!(calls.len() <= best_epoch + 1 + 10, "{losses:?}");
    // The model returned is the best epoch's, not the last one's.
    let m = common::eval_classifier(&*common::scorer(&d, "mlp", body), &valid);
    assert!(
        (m.logloss - best).abs() < 1e-4,
        "logloss {} best {best}",
        m.logloss
    );
    assert!(*losses.last().unwrap() > best);

    // Without early stopping, every epoch runs on the training loss.
    let epochs = ProgressLog::default();
    let mut p = quick();
    p["early_stopping"] = json!(false);
    algorithm("mlp", &p, 1)
        .unwrap()
        .fit(&train_part, Some(&valid), &epochs)
        .unwrap();
    let calls = epochs.0.lock().unwrap().clone();
    assert_eq!(calls.len(), 5);
    assert!(calls[4].2.starts_with("train loss "), "{calls:?}");
}

/// y = (category is 1 or 3) XOR (x > 0): needs the one-hot encoding and a hidden layer.
fn categorical_data(n: usize) -> Dataset {
    let schema = FeatureSchema::new(vec![
        FeatureSpec::numeric("x"),
        FeatureSpec {
            name: "colour".into(),
            kind: FeatureKind::Categorical {
                categories: vec!["red".into(), "green".into(), "blue".into(), "grey".into()],
            },
        },
    ])
    .unwrap();
    let x: Vec<f64> = (0..n)
        .map(|i| ((i * 37 % 101) as f64 - 50.0) / 10.0)
        .collect();
    let c: Vec<f64> = (0..n).map(|i| (i * 7 % 4) as f64).collect();
    let y = x
        .iter()
        .zip(&c)
        .map(|(x, c)| f64::from(u8::from((*c == 1.0 || *c == 3.0) != (*x > 0.0))))
        .collect();
    Dataset {
        schema,
        columns: vec![x, c],
        y,
        target: Target::Classification {
            classes: vec![ClassLabel::Str("no".into()), ClassLabel::Str("yes".into())],
        },
        label: "y".into(),
    }
}

#[test]
fn categorical_features_are_one_hot_encoded() {
    let d = categorical_data(800);
    let body = train(
        &d,
        json!({"hidden": [16], "learning_rate": 0.01, "max_epochs": 100}),
    );
    let ModelBody::Mlp(mlp) = &body else {
        panic!("not an mlp body")
    };
    assert!(matches!(
        mlp.inputs[1],
        MlpInput::OneHot { n_categories: 4 }
    ));
    assert!(matches!(mlp.inputs[0], MlpInput::Standardize { .. }));
    assert_eq!(mlp.layers[0].weights.len(), 5);
    let model = common::scorer(&d, "mlp", body);
    let m = common::eval_classifier(&*model, &d);
    assert!(m.accuracy > 0.95, "accuracy {}", m.accuracy);
    // Codes that are not whole non-negative numbers are data errors naming the feature.
    let mut bad = d.clone();
    bad.columns[1][5] = -1.0;
    let e = algorithm("mlp", &quick(), 0)
        .unwrap()
        .fit(&bad, None, &NoProgress)
        .unwrap_err()
        .to_string();
    assert!(e.contains("'colour'") && e.contains("row 6"), "{e}");
    bad.columns[1][5] = f64::INFINITY;
    assert!(algorithm("mlp", &quick(), 0)
        .unwrap()
        .fit(&bad, None, &NoProgress)
        .is_err());
    // A network too large to allocate is refused up front.
    let e = algorithm("mlp", &json!({"hidden": [65536, 65536]}), 0)
        .unwrap()
        .fit(&d, None, &NoProgress)
        .unwrap_err();
    assert!(
        matches!(e, TrainError::Param { ref name, .. } if name == "hidden"),
        "{e:?}"
    );
    // An unseen category code scores (as all-zero one-hot) instead of failing.
    let mut out = Predictions::default();
    model.predict_batch(&[1.0, 9.0], &mut out).unwrap();
    assert!((out.values()[0] + out.values()[1] - 1.0).abs() < 1e-12);
}

#[test]
fn bad_parameters_name_the_parameter() {
    for (params, name) in [
        (json!({"hidden_layers": [3]}), "hidden_layers"),
        (json!({"hidden": [64, -1]}), "hidden"),
        (json!({"activation": "gelu"}), "activation"),
        (json!({"learning_rate": -0.1}), "learning_rate"),
        (json!({"batch_size": 0}), "batch_size"),
        (json!({"max_epochs": 0}), "max_epochs"),
        (json!({"n_iter_no_change": 0}), "n_iter_no_change"),
        (json!({"tol": "small"}), "tol"),
        (json!({"validation_fraction": 0}), "validation_fraction"),
    ] {
        match algorithm("mlp", &params, 0) {
            Err(TrainError::Param { name: got, message }) => {
                assert_eq!(got, name, "{params}: {message}")
            }
            other => panic!("{params}: {other:?}"),
        }
    }
}

#[test]
fn missing_values_and_unusable_data_are_clear_errors() {
    let mut d = small_binary(100);
    d.columns[3][17] = f64::NAN;
    let e = algorithm("mlp", &quick(), 0)
        .unwrap()
        .fit(&d, None, &NoProgress)
        .unwrap_err();
    assert!(matches!(e, TrainError::Data { .. }), "{e:?}");
    let msg = e.to_string();
    assert!(
        msg.contains("'x3'") && msg.contains("row 18") && msg.contains("missing"),
        "{msg}"
    );

    // In the validation data too.
    let good = small_binary(100);
    let e = algorithm("mlp", &quick(), 0)
        .unwrap()
        .fit(&good, Some(&d), &NoProgress)
        .unwrap_err()
        .to_string();
    assert!(e.contains("validation data") && e.contains("'x3'"), "{e}");

    // One class only; no rows; a non-finite regression target.
    let mut one = small_binary(10);
    one.target = Target::Classification {
        classes: vec![ClassLabel::Int(0)],
    };
    one.y = vec![0.0; 10];
    assert!(matches!(
        algorithm("mlp", &quick(), 0)
            .unwrap()
            .fit(&one, None, &NoProgress),
        Err(TrainError::Unfit(_))
    ));
    let empty = good.subset(&[]);
    assert!(algorithm("mlp", &quick(), 0)
        .unwrap()
        .fit(&empty, None, &NoProgress)
        .is_err());
    let mut reg = common::load("regression", "train", false).subset(&(0..50).collect::<Vec<_>>());
    reg.y[3] = f64::INFINITY;
    let e = algorithm("mlp", &quick(), 0)
        .unwrap()
        .fit(&reg, None, &NoProgress)
        .unwrap_err()
        .to_string();
    assert!(e.contains("row 4"), "{e}");
}

#[test]
fn tiny_data_and_tanh_train() {
    // Three rows: no room for a holdout, so the training loss is watched; tanh and no hidden layer work.
    let d = small_binary(3);
    for params in [
        json!({"activation": "tanh", "hidden": [4, 4], "max_epochs": 20}),
        json!({"hidden": [], "max_epochs": 20}),
    ] {
        let body = algorithm("mlp", &params, 0)
            .unwrap()
            .fit(&d, None, &NoProgress)
            .unwrap();
        let m = common::eval_classifier(&*common::scorer(&d, "mlp", body), &d);
        assert_eq!(m.rows, 3);
    }
}

//! Shared by the training-quality tests: loads the numeric CSV fixtures of `fixtures/train` (made by
//! `tools/fixtures/make_train_datasets.py`), the reference tools' test metrics on them, and scores a trained
//! model body on a test set through the same scorer `dipper predict` uses.

#![allow(dead_code)] // each test binary uses its own part of this module

use std::path::{Path, PathBuf};

use dipper_core::FeatureSchema;
use dipper_models::native::{ModelBody, NativeModel};
use dipper_models::{ClassLabel, Format, LoadContext, ModelId, PredictionRef, Predictions};
use dipper_train::metrics::{self, ClassificationMetrics, RegressionMetrics};
use dipper_train::{Dataset, Progress, Target};

pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/train")
}

/// Loads `fixtures/train/{name}_{part}.csv` (`part` = train or test). `classification` makes `y` a class index
/// over the sorted distinct labels.
pub fn load(name: &str, part: &str, classification: bool) -> Dataset {
    let path = fixtures().join(format!("{name}_{part}.csv"));
    let text = std::fs::read_to_string(&path).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let nf = header.len() - 1;
    let mut columns = vec![Vec::new(); nf];
    let mut y = Vec::new();
    for line in lines {
        let vals: Vec<f64> = line.split(',').map(|v| v.parse().unwrap()).collect();
        for j in 0..nf {
            columns[j].push(vals[j]);
        }
        y.push(vals[nf]);
    }
    let target = if classification {
        let mut classes: Vec<i64> = y.iter().map(|v| *v as i64).collect();
        classes.sort_unstable();
        classes.dedup();
        for v in y.iter_mut() {
            *v = classes.iter().position(|c| *c == *v as i64).unwrap() as f64;
        }
        Target::Classification {
            classes: classes.into_iter().map(ClassLabel::Int).collect(),
        }
    } else {
        Target::Regression
    };
    Dataset {
        schema: FeatureSchema::numeric(&header[..nf]).unwrap(),
        columns,
        y,
        target,
        label: "y".into(),
    }
}

/// The reference tool's test metric, e.g. `reference("binary", "gbm", "auc")`.
pub fn reference(dataset: &str, algorithm: &str, metric: &str) -> f64 {
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixtures().join("reference.json")).unwrap())
            .unwrap();
    r[dataset][algorithm][metric]
        .as_f64()
        .unwrap_or_else(|| panic!("no reference {dataset}/{algorithm}/{metric}"))
}

/// Wraps a body as a native model of `train`'s schema and builds its scorer (as `dipper predict` would).
pub fn scorer(
    train: &Dataset,
    algorithm: &str,
    body: ModelBody,
) -> std::sync::Arc<dyn dipper_models::Model> {
    let header = dipper_train::validate::header(train, algorithm);
    let model = NativeModel::new(header, body);
    // Round-trip through JSON, as a saved file would.
    let json = model.to_json();
    let ctx = LoadContext {
        source: "test".into(),
        id: ModelId {
            name: algorithm.into(),
            format: Format::Native,
            digest: "0".repeat(64),
        },
    };
    dipper_models::native::load(json.as_bytes(), &ctx).unwrap()
}

pub fn eval_classifier(model: &dyn dipper_models::Model, test: &Dataset) -> ClassificationMetrics {
    let mut out = Predictions::default();
    model.predict_batch(&test.rows(), &mut out).unwrap();
    let k = test.n_classes();
    let labels: Vec<usize> = (0..out.len())
        .map(|i| match out.get(i) {
            PredictionRef::Class { index, .. } => index,
            PredictionRef::Value(_) => panic!("not a classifier"),
        })
        .collect();
    let actual: Vec<usize> = (0..test.n_rows()).map(|i| test.class(i)).collect();
    metrics::classification(&actual, out.values(), &labels, k)
}

pub fn eval_regressor(model: &dyn dipper_models::Model, test: &Dataset) -> RegressionMetrics {
    let mut out = Predictions::default();
    model.predict_batch(&test.rows(), &mut out).unwrap();
    metrics::regression(&test.y, out.values())
}

/// Records every progress call as (done, total, message).
#[derive(Default)]
pub struct ProgressLog(pub std::sync::Mutex<Vec<(u64, u64, String)>>);

impl Progress for ProgressLog {
    fn update(&self, done: u64, total: u64, message: &str) {
        self.0
            .lock()
            .unwrap()
            .push((done, total, message.to_string()));
    }
}

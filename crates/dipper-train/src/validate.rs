//! Validation: seeded (stratified for classification) k-fold splits and holdout splits, scoring a fitted body
//! through the same scorer `dipper predict` uses, and summaries (mean and standard deviation per metric).

use std::sync::Arc;

use dipper_models::native::{FeatureInfo, Header, ModelBody, NativeModel};
use dipper_models::{Format, LoadContext, Model, ModelId, PredictionRef, Predictions, Task};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use crate::metrics::{self, ClassificationMetrics, RegressionMetrics};
use crate::{Dataset, TrainError};

/// Metrics of one evaluation.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Metrics {
    Classification(ClassificationMetrics),
    Regression(RegressionMetrics),
}

impl Metrics {
    /// The scalar metrics by name, in display order.
    pub fn scalars(&self) -> Vec<(&'static str, f64)> {
        match self {
            Metrics::Classification(m) => vec![
                ("auc", m.auc),
                ("logloss", m.logloss),
                ("accuracy", m.accuracy),
                ("precision", m.precision),
                ("recall", m.recall),
                ("f1", m.f1),
            ],
            Metrics::Regression(m) => vec![("rmse", m.rmse), ("mae", m.mae), ("r2", m.r2)],
        }
    }
}

/// Row indices of `k` folds: shuffled with `seed`, and for classification each class spread evenly over folds.
pub fn folds(data: &Dataset, k: usize, seed: u64) -> Result<Vec<Vec<usize>>, TrainError> {
    if k < 2 || k > data.n_rows() {
        return Err(TrainError::param(
            "cv",
            format!("needs 2 <= k <= rows ({}), got {k}", data.n_rows()),
        ));
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut folds = vec![Vec::new(); k];
    let groups = strata(data);
    let mut next = 0;
    for mut g in groups {
        g.shuffle(&mut rng);
        for i in g {
            folds[next % k].push(i);
            next += 1;
        }
    }
    for f in &mut folds {
        f.sort_unstable();
    }
    Ok(folds)
}

/// Splits rows into (train, test) with about `fraction` in test, stratified for classification.
pub fn holdout(
    data: &Dataset,
    fraction: f64,
    seed: u64,
) -> Result<(Vec<usize>, Vec<usize>), TrainError> {
    if !(fraction > 0.0 && fraction < 1.0) {
        return Err(TrainError::param(
            "holdout",
            format!("must be between 0 and 1, got {fraction}"),
        ));
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let (mut train, mut test) = (Vec::new(), Vec::new());
    for mut g in strata(data) {
        g.shuffle(&mut rng);
        let n_test = ((g.len() as f64) * fraction).round() as usize;
        test.extend_from_slice(&g[..n_test]);
        train.extend_from_slice(&g[n_test..]);
    }
    if train.is_empty() || test.is_empty() {
        return Err(TrainError::Unfit(format!(
            "{} rows are too few for a {fraction} holdout",
            data.n_rows()
        )));
    }
    train.sort_unstable();
    test.sort_unstable();
    Ok((train, test))
}

/// Rows grouped by class (one group for regression).
fn strata(data: &Dataset) -> Vec<Vec<usize>> {
    if data.n_classes() == 0 {
        return vec![(0..data.n_rows()).collect()];
    }
    let mut g = vec![Vec::new(); data.n_classes()];
    for i in 0..data.n_rows() {
        g[data.class(i)].push(i);
    }
    g
}

/// The header of a model of `data`'s schema and classes, without statistics, parameters or metrics.
pub fn header(data: &Dataset, algorithm: &str) -> Header {
    Header {
        task: if data.n_classes() > 0 {
            Task::Classification
        } else {
            Task::Regression
        },
        classes: data.classes().to_vec(),
        label: data.label.clone(),
        features: data
            .schema
            .features()
            .iter()
            .map(|f| FeatureInfo {
                name: f.name.clone(),
                kind: f.kind.clone(),
                stats: serde_json::Value::Null,
            })
            .collect(),
        algorithm: algorithm.into(),
        params: serde_json::Value::Null,
        metrics: serde_json::Value::Null,
        source: serde_json::Value::Null,
        trained_by: String::new(),
        trained_at: String::new(),
    }
}

/// Wraps a body in a minimal native model of `data`'s schema and builds its scorer.
pub fn scorer(
    data: &Dataset,
    algorithm: &str,
    body: ModelBody,
) -> Result<Arc<dyn Model>, TrainError> {
    let ctx = LoadContext {
        source: "the trained model".into(),
        id: ModelId {
            name: algorithm.into(),
            format: Format::Native,
            digest: "0".repeat(64),
        },
    };
    Ok(NativeModel::new(header(data, algorithm), body).build(&ctx)?)
}

/// Scores `test` with `model` and computes its metrics.
pub fn evaluate(model: &dyn Model, test: &Dataset) -> Result<Metrics, TrainError> {
    let mut out = Predictions::default();
    model.predict_batch(&test.rows(), &mut out)?;
    if test.n_classes() == 0 {
        return Ok(Metrics::Regression(metrics::regression(
            &test.y,
            out.values(),
        )));
    }
    let labels: Vec<usize> = (0..out.len())
        .map(|i| match out.get(i) {
            PredictionRef::Class { index, .. } => index,
            PredictionRef::Value(_) => 0,
        })
        .collect();
    let actual: Vec<usize> = (0..test.n_rows()).map(|i| test.class(i)).collect();
    Ok(Metrics::Classification(metrics::classification(
        &actual,
        out.values(),
        &labels,
        test.n_classes(),
    )))
}

/// Mean and standard deviation of each scalar metric over folds.
pub fn summarize(folds: &[Metrics]) -> serde_json::Value {
    let Some(first) = folds.first() else {
        return serde_json::Value::Null;
    };
    let mut out = serde_json::Map::new();
    for (i, (name, _)) in first.scalars().iter().enumerate() {
        let v: Vec<f64> = folds.iter().map(|m| m.scalars()[i].1).collect();
        let mean = v.iter().sum::<f64>() / v.len() as f64;
        let std = (v.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / v.len() as f64).sqrt();
        out.insert(
            name.to_string(),
            serde_json::json!({ "mean": mean, "std": std }),
        );
    }
    serde_json::Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Target;
    use dipper_core::FeatureSchema;
    use dipper_models::ClassLabel;

    fn data(y: Vec<f64>) -> Dataset {
        Dataset {
            schema: FeatureSchema::numeric(&["x"]).unwrap(),
            columns: vec![(0..y.len()).map(|i| i as f64).collect()],
            y,
            target: Target::Classification {
                classes: vec![ClassLabel::Int(0), ClassLabel::Int(1)],
            },
            label: "y".into(),
        }
    }

    #[test]
    fn folds_are_a_stratified_partition_and_seeded() {
        let y: Vec<f64> = (0..100)
            .map(|i| if i % 10 == 0 { 1.0 } else { 0.0 })
            .collect();
        let d = data(y);
        let f = folds(&d, 5, 7).unwrap();
        let mut all: Vec<usize> = f.concat();
        all.sort_unstable();
        assert_eq!(all, (0..100).collect::<Vec<_>>());
        for fold in &f {
            assert_eq!(fold.len(), 20);
            assert_eq!(fold.iter().filter(|&&i| d.class(i) == 1).count(), 2);
        }
        assert_eq!(f, folds(&d, 5, 7).unwrap());
        assert_ne!(f, folds(&d, 5, 8).unwrap());
        assert!(folds(&d, 1, 7).is_err());
    }

    #[test]
    fn holdout_keeps_class_balance() {
        let y: Vec<f64> = (0..100).map(|i| if i < 20 { 1.0 } else { 0.0 }).collect();
        let (train, test) = holdout(&data(y.clone()), 0.25, 1).unwrap();
        assert_eq!((train.len(), test.len()), (75, 25));
        assert_eq!(test.iter().filter(|&&i| y[i] == 1.0).count(), 5);
        assert!(holdout(&data(y), 1.5, 1).is_err());
    }
}

//! One training run: validate the algorithm (k-fold or holdout), fit the model that is shipped, and assemble the
//! self-describing native model file (schema with training statistics, algorithm and parameters, metrics, data
//! source).

use dipper_models::native::NativeModel;
use serde_json::{json, Value};

use crate::validate::{self, Metrics};
use crate::{stats, Algorithm, Dataset, Progress, TrainError};

/// How the model is validated.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Validation {
    /// No validation: only the final fit.
    None,
    /// k-fold cross-validation; the shipped model is then fitted on all rows.
    KFold(usize),
    /// A held-out fraction; the shipped model is the one fitted on the rest, so the metrics are its own.
    Holdout(f64),
}

/// Receives the phases of a run (for a progress display) and the progress within each.
pub trait Reporter: Progress {
    /// A new phase begins, e.g. `fold 2/5` or `final model`.
    fn phase(&self, name: &str);
}

/// What a run produced.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub model: NativeModel,
    /// Per-fold (or holdout) metrics.
    pub evaluations: Vec<Metrics>,
    /// The `metrics` object stored in the model file.
    pub metrics: Value,
}

/// Runs validation and the final fit. `valid_fraction`, if set, carves a stratified validation set out of every
/// training part for algorithms that stop early.
pub fn train(
    data: &Dataset,
    algorithm: &dyn Algorithm,
    validation: Validation,
    valid_fraction: Option<f64>,
    seed: u64,
    source: Value,
    reporter: &dyn Reporter,
) -> Result<Outcome, TrainError> {
    let fit = |part: &Dataset| -> Result<_, TrainError> {
        match valid_fraction {
            None => algorithm.fit(part, None, reporter),
            Some(f) => {
                let (tr, va) = validate::holdout(part, f, seed ^ 0x5eed)?;
                algorithm.fit(&part.subset(&tr), Some(&part.subset(&va)), reporter)
            }
        }
    };
    let mut evaluations = Vec::new();
    let (body, metrics) = match validation {
        Validation::None => {
            reporter.phase("fitting");
            (fit(data)?, json!({}))
        }
        Validation::KFold(k) => {
            let folds = validate::folds(data, k, seed)?;
            for (i, test_rows) in folds.iter().enumerate() {
                reporter.phase(&format!("fold {}/{k}", i + 1));
                let train_rows: Vec<usize> = folds
                    .iter()
                    .enumerate()
                    .filter(|(j, _)| *j != i)
                    .flat_map(|(_, f)| f.iter().copied())
                    .collect();
                let part = data.subset(&train_rows);
                let model = validate::scorer(data, algorithm.name(), fit(&part)?)?;
                evaluations.push(validate::evaluate(model.as_ref(), &data.subset(test_rows))?);
            }
            reporter.phase("final model on all rows");
            let summary = validate::summarize(&evaluations);
            (
                fit(data)?,
                json!({ "cv": { "k": k, "summary": summary, "folds": evaluations } }),
            )
        }
        Validation::Holdout(fraction) => {
            let (train_rows, test_rows) = validate::holdout(data, fraction, seed)?;
            reporter.phase("fitting");
            let body = fit(&data.subset(&train_rows))?;
            let model = validate::scorer(data, algorithm.name(), body.clone())?;
            let m = validate::evaluate(model.as_ref(), &data.subset(&test_rows))?;
            evaluations.push(m.clone());
            (
                body,
                json!({ "holdout": { "fraction": fraction, "train_rows": train_rows.len(), "metrics": m } }),
            )
        }
    };
    let mut source = source;
    if let Some(obj) = source.as_object_mut() {
        obj.insert("label_stats".into(), stats::label_stats(data));
    }
    let mut header = validate::header(data, algorithm.name());
    for (j, f) in header.features.iter_mut().enumerate() {
        f.stats = stats::feature_stats(data, j);
    }
    header.params = algorithm.params();
    header.metrics = metrics.clone();
    header.source = source;
    header.trained_by = format!("dipper {}", env!("CARGO_PKG_VERSION"));
    header.trained_at = now_rfc3339();
    let model = NativeModel::new(header, body);
    // The shipped file must load exactly as predict will load it.
    validate::scorer(data, algorithm.name(), model.body.clone())?;
    Ok(Outcome {
        model,
        evaluations,
        metrics,
    })
}

/// A readable table of the validation metrics: one row per metric, mean and std over folds (or the holdout
/// value), then the confusion matrix for classifiers.
pub fn table(outcome: &Outcome, classes: &[dipper_models::ClassLabel]) -> String {
    let ev = &outcome.evaluations;
    let Some(first) = ev.first() else {
        return "no validation (use --cv K or --holdout F)\n".into();
    };
    let mut s = String::new();
    if ev.len() > 1 {
        s.push_str(&format!("{:<10} {:>9} {:>9}\n", "metric", "mean", "std"));
    } else {
        s.push_str(&format!("{:<10} {:>9}\n", "metric", "holdout"));
    }
    for (i, (name, _)) in first.scalars().iter().enumerate() {
        let v: Vec<f64> = ev.iter().map(|m| m.scalars()[i].1).collect();
        let mean = v.iter().sum::<f64>() / v.len() as f64;
        if ev.len() > 1 {
            let std =
                (v.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / v.len() as f64).sqrt();
            s.push_str(&format!("{name:<10} {mean:>9.4} {std:>9.4}\n"));
        } else {
            s.push_str(&format!("{name:<10} {mean:>9.4}\n"));
        }
    }
    if let Metrics::Classification(_) = first {
        let k = classes.len();
        let mut total = vec![vec![0u64; k]; k];
        for m in ev {
            if let Metrics::Classification(c) = m {
                for (a, row) in c.confusion.iter().enumerate() {
                    for (p, n) in row.iter().enumerate() {
                        total[a][p] += n;
                    }
                }
            }
        }
        s.push_str("\nconfusion (rows: actual, columns: predicted)\n");
        let w = classes
            .iter()
            .map(|c| c.to_string().len())
            .max()
            .unwrap_or(1)
            .max(8);
        s.push_str(&format!("{:>w$}", ""));
        for c in classes {
            s.push_str(&format!(" {:>w$}", c.to_string()));
        }
        s.push('\n');
        for (c, row) in classes.iter().zip(&total) {
            s.push_str(&format!("{:>w$}", c.to_string()));
            for n in row {
                s.push_str(&format!(" {n:>w$}"));
            }
            s.push('\n');
        }
    }
    s
}

/// The current UTC time as RFC 3339.
fn now_rfc3339() -> String {
    dipper_core::time::UtcTime::now().rfc3339()
}

#[cfg(test)]
mod tests {
    #[test]
    fn rfc3339_shape() {
        let t = super::now_rfc3339();
        assert_eq!(t.len(), 20, "{t}");
        assert!(t.starts_with("20") && t.ends_with('Z'));
    }
}

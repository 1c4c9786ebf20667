//! Validation metrics: for classifiers AUC (binary; macro one-vs-rest for multiclass), log loss, accuracy,
//! precision, recall and F1 (binary: of the second class; multiclass: macro averages) and the confusion matrix;
//! for regressors RMSE, MAE and R². Computed from predictions as `dipper predict` makes them.

use serde::Serialize;

/// Probabilities are clipped to [EPS, 1 - EPS] in log loss, as scikit-learn does.
const EPS: f64 = 1e-15;

/// Classification metrics over a set of rows.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClassificationMetrics {
    pub rows: usize,
    pub auc: f64,
    pub logloss: f64,
    pub accuracy: f64,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    /// `confusion[actual][predicted]` counts.
    pub confusion: Vec<Vec<u64>>,
}

/// Regression metrics over a set of rows.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RegressionMetrics {
    pub rows: usize,
    pub rmse: f64,
    pub mae: f64,
    pub r2: f64,
}

/// `probs` is row-major (`k` per row); `labels` the predicted class per row; `actual` the true class per row.
pub fn classification(
    actual: &[usize],
    probs: &[f64],
    labels: &[usize],
    k: usize,
) -> ClassificationMetrics {
    let n = actual.len();
    assert_eq!(probs.len(), n * k);
    assert_eq!(labels.len(), n);
    let mut confusion = vec![vec![0u64; k]; k];
    let mut logloss = 0.0;
    for i in 0..n {
        confusion[actual[i]][labels[i]] += 1;
        logloss -= probs[i * k + actual[i]].clamp(EPS, 1.0 - EPS).ln();
    }
    let correct: u64 = (0..k).map(|c| confusion[c][c]).sum();
    let prf = |c: usize| {
        let tp = confusion[c][c] as f64;
        let predicted: u64 = (0..k).map(|a| confusion[a][c]).sum();
        let actual_c: u64 = confusion[c].iter().sum();
        let p = if predicted == 0 {
            0.0
        } else {
            tp / predicted as f64
        };
        let r = if actual_c == 0 {
            0.0
        } else {
            tp / actual_c as f64
        };
        let f = if p + r == 0.0 {
            0.0
        } else {
            2.0 * p * r / (p + r)
        };
        (p, r, f)
    };
    let (precision, recall, f1, auc) = if k == 2 {
        let (p, r, f) = prf(1);
        let scores: Vec<f64> = (0..n).map(|i| probs[i * 2 + 1]).collect();
        let positive: Vec<bool> = actual.iter().map(|&a| a == 1).collect();
        (p, r, f, auc(&scores, &positive))
    } else {
        let per: Vec<(f64, f64, f64)> = (0..k).map(prf).collect();
        let mean = |f: fn(&(f64, f64, f64)) -> f64| per.iter().map(f).sum::<f64>() / k as f64;
        let aucs: Vec<f64> = (0..k)
            .map(|c| {
                let scores: Vec<f64> = (0..n).map(|i| probs[i * k + c]).collect();
                let positive: Vec<bool> = actual.iter().map(|&a| a == c).collect();
                auc(&scores, &positive)
            })
            .filter(|a| !a.is_nan())
            .collect();
        let macro_auc = if aucs.is_empty() {
            f64::NAN
        } else {
            aucs.iter().sum::<f64>() / aucs.len() as f64
        };
        (mean(|t| t.0), mean(|t| t.1), mean(|t| t.2), macro_auc)
    };
    ClassificationMetrics {
        rows: n,
        auc,
        logloss: if n == 0 { f64::NAN } else { logloss / n as f64 },
        accuracy: if n == 0 {
            f64::NAN
        } else {
            correct as f64 / n as f64
        },
        precision,
        recall,
        f1,
        confusion,
    }
}

/// Area under the ROC curve, ties counted half (Mann-Whitney); NaN when one class is absent.
pub fn auc(scores: &[f64], positive: &[bool]) -> f64 {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    let n_pos = positive.iter().filter(|p| **p).count() as f64;
    let n_neg = scores.len() as f64 - n_pos;
    if n_pos == 0.0 || n_neg == 0.0 {
        return f64::NAN;
    }
    // Sum of the ranks of positives, with average ranks over ties.
    let mut rank_sum = 0.0;
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && scores[order[j + 1]] == scores[order[i]] {
            j += 1;
        }
        let avg_rank = (i + j) as f64 / 2.0 + 1.0;
        rank_sum += avg_rank * order[i..=j].iter().filter(|&&r| positive[r]).count() as f64;
        i = j + 1;
    }
    (rank_sum - n_pos * (n_pos + 1.0) / 2.0) / (n_pos * n_neg)
}

pub fn regression(actual: &[f64], predicted: &[f64]) -> RegressionMetrics {
    let n = actual.len();
    assert_eq!(predicted.len(), n);
    let mean = actual.iter().sum::<f64>() / n as f64;
    let (mut se, mut ae, mut tot) = (0.0, 0.0, 0.0);
    for (a, p) in actual.iter().zip(predicted) {
        se += (a - p) * (a - p);
        ae += (a - p).abs();
        tot += (a - mean) * (a - mean);
    }
    RegressionMetrics {
        rows: n,
        rmse: (se / n as f64).sqrt(),
        mae: ae / n as f64,
        r2: if tot == 0.0 { f64::NAN } else { 1.0 - se / tot },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auc_matches_hand_computed_values() {
        // scikit-learn: roc_auc_score([0,0,1,1],[0.1,0.4,0.35,0.8]) == 0.75
        assert_eq!(
            auc(&[0.1, 0.4, 0.35, 0.8], &[false, false, true, true]),
            0.75
        );
        // Ties count half.
        assert_eq!(auc(&[0.5, 0.5], &[false, true]), 0.5);
        assert!(auc(&[0.5, 0.6], &[true, true]).is_nan());
    }

    #[test]
    fn binary_classification_metrics() {
        let actual = [0, 0, 1, 1];
        let probs = [0.9, 0.1, 0.6, 0.4, 0.65, 0.35, 0.2, 0.8];
        let labels = [0, 0, 0, 1];
        let m = classification(&actual, &probs, &labels, 2);
        assert_eq!(m.confusion, vec![vec![2, 0], vec![1, 1]]);
        assert_eq!((m.accuracy, m.precision, m.recall), (0.75, 1.0, 0.5));
        assert!((m.f1 - 2.0 / 3.0).abs() < 1e-12);
        // scikit-learn log_loss of the same: 0.4722...
        let want = -(0.9f64.ln() + 0.6f64.ln() + 0.35f64.ln() + 0.8f64.ln()) / 4.0;
        assert!((m.logloss - want).abs() < 1e-12);
        assert_eq!(m.auc, 0.75);
    }

    #[test]
    fn regression_metrics() {
        let m = regression(&[1.0, 2.0, 3.0], &[1.0, 2.0, 4.0]);
        assert!((m.rmse - (1.0f64 / 3.0).sqrt()).abs() < 1e-12);
        assert!((m.mae - 1.0 / 3.0).abs() < 1e-12);
        assert!((m.r2 - 0.5).abs() < 1e-12);
    }
}

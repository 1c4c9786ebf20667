//! Training-data statistics stored with each feature in the model file, for monitoring to compare live traffic
//! against (drift): counts and missing rate, and for numeric features range, mean, standard deviation,
//! quantiles and a 10-bin histogram; for categorical features the frequency of each category.

use dipper_core::FeatureKind;
use serde_json::{json, Value};

use crate::Dataset;

const QUANTILES: [f64; 9] = [0.0, 0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99, 1.0];
const HISTOGRAM_BINS: usize = 10;

/// Statistics of feature `j`.
pub fn feature_stats(data: &Dataset, j: usize) -> Value {
    let col = &data.columns[j];
    let mut present: Vec<f64> = col.iter().copied().filter(|v| !v.is_nan()).collect();
    let missing = col.len() - present.len();
    match &data.schema.get(j).kind {
        FeatureKind::Categorical { categories } => {
            let n = categories.len().max(data.n_categories(j).unwrap_or(0));
            let mut counts = vec![0u64; n];
            for v in &present {
                if let Some(c) = counts.get_mut(*v as usize) {
                    *c += 1;
                }
            }
            let freq: serde_json::Map<String, Value> = counts
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    (
                        categories.get(i).cloned().unwrap_or_else(|| i.to_string()),
                        json!(c),
                    )
                })
                .collect();
            json!({ "count": present.len(), "missing": missing, "frequencies": freq })
        }
        FeatureKind::Numeric => {
            if present.is_empty() {
                return json!({ "count": 0, "missing": missing });
            }
            present.sort_by(f64::total_cmp);
            let n = present.len() as f64;
            let mean = present.iter().sum::<f64>() / n;
            let std = (present.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n).sqrt();
            let (min, max) = (present[0], present[present.len() - 1]);
            let quantiles: Vec<Value> = QUANTILES
                .iter()
                .map(|q| json!({ "q": q, "value": present[((q * (n - 1.0)).round()) as usize] }))
                .collect();
            let width = (max - min) / HISTOGRAM_BINS as f64;
            let mut counts = [0u64; HISTOGRAM_BINS];
            for v in &present {
                let b = if width > 0.0 {
                    ((v - min) / width) as usize
                } else {
                    0
                };
                counts[b.min(HISTOGRAM_BINS - 1)] += 1;
            }
            let edges: Vec<f64> = (0..=HISTOGRAM_BINS)
                .map(|i| min + width * i as f64)
                .collect();
            json!({
                "count": present.len(), "missing": missing, "min": min, "max": max, "mean": mean, "std": std,
                "quantiles": quantiles, "histogram": { "edges": edges, "counts": counts },
            })
        }
    }
}

/// The distribution of the label: class counts, or value statistics.
pub fn label_stats(data: &Dataset) -> Value {
    if data.n_classes() > 0 {
        let mut counts = vec![0u64; data.n_classes()];
        for i in 0..data.n_rows() {
            counts[data.class(i)] += 1;
        }
        let m: serde_json::Map<String, Value> = data
            .classes()
            .iter()
            .zip(&counts)
            .map(|(c, n)| (c.to_string(), json!(n)))
            .collect();
        json!({ "class_counts": m })
    } else {
        let n = data.n_rows() as f64;
        let mean = data.y.iter().sum::<f64>() / n;
        let std = (data.y.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n).sqrt();
        json!({ "mean": mean, "std": std })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Target;
    use dipper_core::{FeatureSchema, FeatureSpec};

    #[test]
    fn numeric_and_categorical_stats() {
        let schema = FeatureSchema::new(vec![
            FeatureSpec::numeric("x"),
            FeatureSpec {
                name: "c".into(),
                kind: FeatureKind::Categorical {
                    categories: vec!["a".into(), "b".into()],
                },
            },
        ])
        .unwrap();
        let d = Dataset {
            schema,
            columns: vec![
                vec![0.0, 10.0, f64::NAN, 5.0],
                vec![0.0, 1.0, 1.0, f64::NAN],
            ],
            y: vec![1.0; 4],
            target: Target::Regression,
            label: "y".into(),
        };
        let s = feature_stats(&d, 0);
        assert_eq!(
            (s["count"].as_u64(), s["missing"].as_u64()),
            (Some(3), Some(1))
        );
        assert_eq!(
            (s["min"].as_f64(), s["max"].as_f64(), s["mean"].as_f64()),
            (Some(0.0), Some(10.0), Some(5.0))
        );
        assert_eq!(
            s["histogram"]["counts"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c.as_u64().unwrap())
                .sum::<u64>(),
            3
        );
        assert_eq!(s["quantiles"][4]["value"].as_f64(), Some(5.0));
        let c = feature_stats(&d, 1);
        assert_eq!(c["frequencies"]["b"].as_u64(), Some(2));
        assert_eq!(c["missing"].as_u64(), Some(1));
    }
}

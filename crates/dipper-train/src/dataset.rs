//! The in-memory training set: column-major features (NaN = missing; categorical features hold category codes
//! 0..k-1 as defined by the schema) and a target (a value, or a class index).

use dipper_core::{FeatureKind, FeatureSchema};
use dipper_models::ClassLabel;

/// What is being predicted.
#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    Regression,
    /// `y` holds the index of the class in `classes`.
    Classification {
        classes: Vec<ClassLabel>,
    },
}

#[derive(Debug, Clone)]
pub struct Dataset {
    pub schema: FeatureSchema,
    /// `columns[j][i]`: feature `j` of row `i`.
    pub columns: Vec<Vec<f64>>,
    /// The target per row: the value (regression) or the class index as f64 (classification).
    pub y: Vec<f64>,
    pub target: Target,
    /// The name of the label field.
    pub label: String,
}

impl Dataset {
    pub fn n_rows(&self) -> usize {
        self.y.len()
    }

    pub fn n_features(&self) -> usize {
        self.columns.len()
    }

    /// Number of classes, 0 for regression.
    pub fn n_classes(&self) -> usize {
        match &self.target {
            Target::Regression => 0,
            Target::Classification { classes } => classes.len(),
        }
    }

    pub fn classes(&self) -> &[ClassLabel] {
        match &self.target {
            Target::Regression => &[],
            Target::Classification { classes } => classes,
        }
    }

    /// The class index of row `i` (classification).
    pub fn class(&self, i: usize) -> usize {
        self.y[i] as usize
    }

    /// Number of categories of feature `j` if it is categorical (known categories, else max code + 1).
    pub fn n_categories(&self, j: usize) -> Option<usize> {
        match &self.schema.get(j).kind {
            FeatureKind::Numeric => None,
            FeatureKind::Categorical { categories } if !categories.is_empty() => {
                Some(categories.len())
            }
            FeatureKind::Categorical { .. } => Some(
                self.columns[j]
                    .iter()
                    .filter(|v| !v.is_nan())
                    .fold(0.0f64, |m, v| m.max(*v)) as usize
                    + 1,
            ),
        }
    }

    /// Copies row `i` into `out` (one value per feature).
    pub fn row(&self, i: usize, out: &mut [f64]) {
        for (o, c) in out.iter_mut().zip(&self.columns) {
            *o = c[i];
        }
    }

    /// All rows, row-major, as models score them.
    pub fn rows(&self) -> Vec<f64> {
        let (n, f) = (self.n_rows(), self.n_features());
        let mut out = vec![0.0; n * f];
        for (j, c) in self.columns.iter().enumerate() {
            for (i, v) in c.iter().enumerate() {
                out[i * f + j] = *v;
            }
        }
        out
    }

    /// A new dataset of the given rows (in that order).
    pub fn subset(&self, rows: &[usize]) -> Dataset {
        Dataset {
            schema: self.schema.clone(),
            columns: self
                .columns
                .iter()
                .map(|c| rows.iter().map(|&i| c[i]).collect())
                .collect(),
            y: rows.iter().map(|&i| self.y[i]).collect(),
            target: self.target.clone(),
            label: self.label.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_subset_and_categories() {
        let schema = FeatureSchema::new(vec![
            dipper_core::FeatureSpec::numeric("a"),
            dipper_core::FeatureSpec {
                name: "c".into(),
                kind: FeatureKind::Categorical { categories: vec![] },
            },
        ])
        .unwrap();
        let d = Dataset {
            schema,
            columns: vec![vec![1.0, 2.0, 3.0], vec![0.0, 4.0, f64::NAN]],
            y: vec![0.0, 1.0, 0.0],
            target: Target::Classification {
                classes: vec![ClassLabel::Int(0), ClassLabel::Int(1)],
            },
            label: "y".into(),
        };
        let r = d.rows();
        assert_eq!(&r[..5], &[1.0, 0.0, 2.0, 4.0, 3.0]);
        assert!(r[5].is_nan());
        assert_eq!(d.n_categories(1), Some(5));
        let s = d.subset(&[2, 0]);
        assert_eq!(s.columns[0], vec![3.0, 1.0]);
        assert_eq!(s.y, vec![0.0, 0.0]);
    }
}

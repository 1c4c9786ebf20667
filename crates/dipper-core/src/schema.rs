//! Feature schemas: the ordered, named columns a model reads, and what kind of value each one holds.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

/// What kind of value a feature column holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FeatureKind {
    /// A real number. Missing values are NaN.
    Numeric,
    /// A category encoded as a non-negative integer code. When `categories` is not empty, input strings are
    /// mapped to their position in it (an unknown string becomes missing, as pandas does for unseen categories);
    /// integer codes are always accepted as they are.
    Categorical {
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        categories: Vec<String>,
    },
}

/// The value a categorical feature decodes to when the input names a category the schema does not list: a NaN
/// (so every model that treats NaN as missing keeps doing so) with a payload of its own, so that a model that
/// tells an unseen category from a missing value (PMML's invalid values) can, with [`is_unknown_category`].
pub const UNKNOWN_CATEGORY: f64 = f64::from_bits(0x7ff8_0000_dead_beef);

/// Whether `x` is [`UNKNOWN_CATEGORY`] (and not an ordinary NaN).
pub fn is_unknown_category(x: f64) -> bool {
    x.to_bits() == UNKNOWN_CATEGORY.to_bits()
}

/// One named column of a feature schema.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureSpec {
    pub name: String,
    #[serde(flatten)]
    pub kind: FeatureKind,
}

impl FeatureSpec {
    pub fn numeric(name: impl Into<String>) -> Self {
        FeatureSpec {
            name: name.into(),
            kind: FeatureKind::Numeric,
        }
    }
}

/// Why a schema could not be built.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum SchemaError {
    #[error("feature name '{0}' appears more than once")]
    Duplicate(String),
    #[error("feature {0} has an empty name")]
    EmptyName(usize),
    #[error("--features names {given} features but the model reads {expected}")]
    CountMismatch { given: usize, expected: usize },
}

/// The ordered list of features a model reads, with a name index for decoding events by field name.
#[derive(Debug, Clone, PartialEq)]
pub struct FeatureSchema {
    features: Vec<FeatureSpec>,
    index: HashMap<String, usize>,
}

impl FeatureSchema {
    /// Builds a schema; names must be unique and non-empty.
    pub fn new(features: Vec<FeatureSpec>) -> Result<Self, SchemaError> {
        let mut index = HashMap::with_capacity(features.len());
        for (i, f) in features.iter().enumerate() {
            if f.name.is_empty() {
                return Err(SchemaError::EmptyName(i));
            }
            if index.insert(f.name.clone(), i).is_some() {
                return Err(SchemaError::Duplicate(f.name.clone()));
            }
        }
        Ok(FeatureSchema { features, index })
    }

    /// A schema of numeric features with the given names.
    pub fn numeric<S: AsRef<str>>(names: &[S]) -> Result<Self, SchemaError> {
        Self::new(
            names
                .iter()
                .map(|n| FeatureSpec::numeric(n.as_ref()))
                .collect(),
        )
    }

    /// A schema of `n` numeric features named `f0`, `f1`, ... for formats that carry no names.
    pub fn positional(n: usize) -> Self {
        Self::new(
            (0..n)
                .map(|i| FeatureSpec::numeric(format!("f{i}")))
                .collect(),
        )
        .expect("positional names are unique")
    }

    /// The same columns (kinds kept) under new names, e.g. from `--features` for a positional model.
    pub fn renamed<S: AsRef<str>>(&self, names: &[S]) -> Result<Self, SchemaError> {
        if names.len() != self.features.len() {
            return Err(SchemaError::CountMismatch {
                given: names.len(),
                expected: self.features.len(),
            });
        }
        let features = self
            .features
            .iter()
            .zip(names)
            .map(|(f, n)| FeatureSpec {
                name: n.as_ref().trim().to_string(),
                kind: f.kind.clone(),
            })
            .collect();
        Self::new(features)
    }

    pub fn len(&self) -> usize {
        self.features.len()
    }

    pub fn is_empty(&self) -> bool {
        self.features.is_empty()
    }

    pub fn features(&self) -> &[FeatureSpec] {
        &self.features
    }

    pub fn get(&self, i: usize) -> &FeatureSpec {
        &self.features[i]
    }

    /// The column of a feature by name.
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.index.get(name).copied()
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.features.iter().map(|f| f.name.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicate_and_empty_names_are_rejected() {
        assert_eq!(
            FeatureSchema::numeric(&["a", "b", "a"]).unwrap_err(),
            SchemaError::Duplicate("a".into())
        );
        assert_eq!(
            FeatureSchema::numeric(&["a", ""]).unwrap_err(),
            SchemaError::EmptyName(1)
        );
    }

    #[test]
    fn renamed_keeps_kinds_and_checks_count() {
        let s = FeatureSchema::new(vec![
            FeatureSpec::numeric("f0"),
            FeatureSpec {
                name: "f1".into(),
                kind: FeatureKind::Categorical { categories: vec![] },
            },
        ])
        .unwrap();
        let r = s.renamed(&["x", " y "]).unwrap();
        assert_eq!(r.index_of("y"), Some(1));
        assert!(matches!(r.get(1).kind, FeatureKind::Categorical { .. }));
        assert_eq!(
            s.renamed(&["x"]).unwrap_err(),
            SchemaError::CountMismatch {
                given: 1,
                expected: 2
            }
        );
    }
}

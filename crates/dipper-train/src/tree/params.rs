//! Hyperparameters shared by the decision tree and the random forest: parsing from a JSON object (unknown keys
//! and out-of-range values are errors naming the parameter), defaults as scikit-learn's, and the recorded form.
//!
//! `criterion` and `max_features` accept `"auto"`, meaning the task's default (Gini / squared error; all
//! features for a tree, `"sqrt"` for a classification forest and `1.0` for a regression forest).

use serde_json::{json, Map, Value};

use crate::TrainError;

/// The split quality measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Criterion {
    Gini,
    Entropy,
    SquaredError,
}

impl Criterion {
    fn name(self) -> &'static str {
        match self {
            Criterion::Gini => "gini",
            Criterion::Entropy => "entropy",
            Criterion::SquaredError => "squared_error",
        }
    }
}

/// How many features each split considers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum MaxFeatures {
    All,
    Sqrt,
    Log2,
    /// A fraction in (0, 1] of the features (at least one).
    Fraction(f64),
    /// A number of features (capped at the feature count).
    Count(usize),
}

impl MaxFeatures {
    /// The number of features per split for `n_features` features (at least 1 when there are features).
    pub fn resolve(self, n_features: usize) -> usize {
        let n = match self {
            MaxFeatures::All => n_features,
            MaxFeatures::Sqrt => (n_features as f64).sqrt() as usize,
            MaxFeatures::Log2 if n_features > 0 => (n_features as f64).log2() as usize,
            MaxFeatures::Log2 => 0,
            MaxFeatures::Fraction(f) => (f * n_features as f64) as usize,
            MaxFeatures::Count(c) => c,
        };
        n.clamp(1, n_features.max(1))
    }

    fn to_json(self) -> Value {
        match self {
            MaxFeatures::All => json!("all"),
            MaxFeatures::Sqrt => json!("sqrt"),
            MaxFeatures::Log2 => json!("log2"),
            MaxFeatures::Fraction(f) => json!(f),
            MaxFeatures::Count(c) => json!(c),
        }
    }
}

/// A row count given absolutely (integer) or as a fraction of the training rows (number in (0, 1]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Count {
    Rows(usize),
    Fraction(f64),
}

impl Count {
    /// The count for `n` training rows (fractions round up, as scikit-learn's `ceil`).
    pub fn resolve(self, n: usize) -> usize {
        match self {
            Count::Rows(r) => r,
            Count::Fraction(f) => (f * n as f64).ceil() as usize,
        }
    }

    fn to_json(self) -> Value {
        match self {
            Count::Rows(r) => json!(r),
            Count::Fraction(f) => json!(f),
        }
    }
}

/// The growth parameters of one tree.
#[derive(Debug, Clone, PartialEq)]
pub struct TreeParams {
    /// `None` = by task (Gini for classification, squared error for regression).
    pub criterion: Option<Criterion>,
    /// `None` = unlimited.
    pub max_depth: Option<usize>,
    pub min_samples_split: Count,
    pub min_samples_leaf: Count,
    /// `None` = by algorithm and task.
    pub max_features: Option<MaxFeatures>,
    pub min_impurity_decrease: f64,
}

impl Default for TreeParams {
    fn default() -> Self {
        TreeParams {
            criterion: None,
            max_depth: None,
            min_samples_split: Count::Rows(2),
            min_samples_leaf: Count::Rows(1),
            max_features: None,
            min_impurity_decrease: 0.0,
        }
    }
}

/// The keys [`TreeParams`] reads.
pub const TREE_KEYS: &[&str] = &[
    "criterion",
    "max_depth",
    "min_samples_split",
    "min_samples_leaf",
    "max_features",
    "min_impurity_decrease",
];

impl TreeParams {
    /// Reads the tree keys of `p` (other keys are the caller's).
    pub fn read(p: &Params) -> Result<Self, TrainError> {
        let mut t = TreeParams::default();
        if let Some(v) = p.get("criterion") {
            t.criterion = match v.as_str() {
                Some("auto") => None,
                Some("gini") => Some(Criterion::Gini),
                Some("entropy") | Some("log_loss") => Some(Criterion::Entropy),
                Some("squared_error") | Some("mse") => Some(Criterion::SquaredError),
                _ => {
                    return Err(TrainError::param(
                        "criterion",
                        format!("{v} is not one of auto, gini, entropy, squared_error"),
                    ))
                }
            };
        }
        if let Some(v) = p.get("max_depth") {
            t.max_depth = if v.is_null() {
                None
            } else {
                Some(positive_int("max_depth", v, 1)?)
            };
        }
        if let Some(v) = p.get("min_samples_split") {
            t.min_samples_split = count("min_samples_split", v, 2)?;
        }
        if let Some(v) = p.get("min_samples_leaf") {
            t.min_samples_leaf = count("min_samples_leaf", v, 1)?;
        }
        if let Some(v) = p.get("max_features") {
            t.max_features = match v {
                Value::Null => Some(MaxFeatures::All),
                Value::String(s) => match s.as_str() {
                    "auto" => None,
                    "all" => Some(MaxFeatures::All),
                    "sqrt" => Some(MaxFeatures::Sqrt),
                    "log2" => Some(MaxFeatures::Log2),
                    _ => {
                        return Err(TrainError::param(
                            "max_features",
                            format!(
                                "'{s}' is not one of auto, all, sqrt, log2, a fraction or a count"
                            ),
                        ))
                    }
                },
                _ => match count("max_features", v, 1)? {
                    Count::Rows(c) => Some(MaxFeatures::Count(c)),
                    Count::Fraction(f) => Some(MaxFeatures::Fraction(f)),
                },
            };
        }
        if let Some(v) = p.get("min_impurity_decrease") {
            t.min_impurity_decrease = match v.as_f64() {
                Some(f) if f >= 0.0 && f.is_finite() => f,
                _ => {
                    return Err(TrainError::param(
                        "min_impurity_decrease",
                        format!("{v} is not a non-negative number"),
                    ))
                }
            };
        }
        Ok(t)
    }

    /// The recorded form; `auto` where the value depends on the task.
    pub fn to_json(&self, out: &mut Map<String, Value>) {
        out.insert(
            "criterion".into(),
            json!(self.criterion.map_or("auto", Criterion::name)),
        );
        out.insert("max_depth".into(), json!(self.max_depth));
        out.insert("min_samples_split".into(), self.min_samples_split.to_json());
        out.insert("min_samples_leaf".into(), self.min_samples_leaf.to_json());
        out.insert(
            "max_features".into(),
            self.max_features
                .map_or(json!("auto"), MaxFeatures::to_json),
        );
        out.insert(
            "min_impurity_decrease".into(),
            json!(self.min_impurity_decrease),
        );
    }
}

/// A parameter object whose keys have been checked against the allowed ones.
pub struct Params<'a> {
    obj: Option<&'a Map<String, Value>>,
}

impl<'a> Params<'a> {
    /// Checks that `v` is an object (or null, meaning no parameters) with only `allowed` keys.
    pub fn new(v: &'a Value, allowed: &[&[&str]]) -> Result<Self, TrainError> {
        let obj = match v {
            Value::Null => None,
            Value::Object(o) => Some(o),
            _ => {
                return Err(TrainError::param(
                    "params",
                    format!("expected a JSON object, got {v}"),
                ))
            }
        };
        if let Some(o) = obj {
            if let Some(k) = o
                .keys()
                .find(|k| !allowed.iter().any(|a| a.contains(&k.as_str())))
            {
                return Err(TrainError::param(k.as_str(), "unknown parameter"));
            }
        }
        Ok(Params { obj })
    }

    pub fn get(&self, key: &str) -> Option<&'a Value> {
        self.obj.and_then(|o| o.get(key))
    }

    /// The seed (default 0).
    pub fn seed(&self) -> Result<u64, TrainError> {
        match self.get("seed") {
            None => Ok(0),
            Some(v) => v.as_u64().ok_or_else(|| {
                TrainError::param("seed", format!("{v} is not a non-negative integer"))
            }),
        }
    }

    pub fn bool(&self, key: &str, default: bool) -> Result<bool, TrainError> {
        match self.get(key) {
            None => Ok(default),
            Some(v) => v
                .as_bool()
                .ok_or_else(|| TrainError::param(key, format!("{v} is not true or false"))),
        }
    }
}

/// An integer at least `min`.
pub fn positive_int(name: &str, v: &Value, min: u64) -> Result<usize, TrainError> {
    match v.as_u64() {
        Some(n) if n >= min => {
            usize::try_from(n).map_err(|_| TrainError::param(name, format!("{n} is too large")))
        }
        _ => Err(TrainError::param(
            name,
            format!("{v} is not an integer of at least {min}"),
        )),
    }
}

/// An integer at least `min`, or a fraction in (0, 1] (a JSON number with a fractional part or a decimal
/// point, e.g. `0.5` or `1.0`).
pub fn count(name: &str, v: &Value, min: u64) -> Result<Count, TrainError> {
    if v.is_u64() || v.is_i64() {
        return positive_int(name, v, min).map(Count::Rows);
    }
    match v.as_f64() {
        Some(f) if f > 0.0 && f <= 1.0 => Ok(Count::Fraction(f)),
        _ => Err(TrainError::param(
            name,
            format!("{v} is neither an integer of at least {min} nor a fraction in (0, 1]"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(v: Value) -> Result<TreeParams, TrainError> {
        TreeParams::read(&Params::new(&v, &[TREE_KEYS])?)
    }

    fn err_name(r: Result<TreeParams, TrainError>) -> String {
        match r {
            Err(TrainError::Param { name, .. }) => name,
            other => panic!("expected a parameter error, got {other:?}"),
        }
    }

    #[test]
    fn parses_and_rejects() {
        let t = read(json!({"max_depth": 3, "max_features": 0.5, "min_samples_leaf": 5})).unwrap();
        assert_eq!(t.max_depth, Some(3));
        assert_eq!(t.max_features, Some(MaxFeatures::Fraction(0.5)));
        assert_eq!(t.min_samples_leaf, Count::Rows(5));
        assert_eq!(
            read(json!({"max_features": 1})).unwrap().max_features,
            Some(MaxFeatures::Count(1))
        );
        assert_eq!(
            read(json!({"max_features": 1.0})).unwrap().max_features,
            Some(MaxFeatures::Fraction(1.0))
        );
        assert_eq!(read(Value::Null).unwrap(), TreeParams::default());
        assert_eq!(err_name(read(json!({"depth": 3}))), "depth");
        assert_eq!(err_name(read(json!({"max_depth": 0}))), "max_depth");
        assert_eq!(err_name(read(json!({"max_depth": -1}))), "max_depth");
        assert_eq!(
            err_name(read(json!({"min_samples_split": 1}))),
            "min_samples_split"
        );
        assert_eq!(
            err_name(read(json!({"min_samples_leaf": 1.5}))),
            "min_samples_leaf"
        );
        assert_eq!(
            err_name(read(json!({"max_features": "half"}))),
            "max_features"
        );
        assert_eq!(err_name(read(json!({"max_features": 0}))), "max_features");
        assert_eq!(err_name(read(json!({"criterion": "mae"}))), "criterion");
        assert_eq!(
            err_name(read(json!({"min_impurity_decrease": -0.1}))),
            "min_impurity_decrease"
        );
        assert_eq!(err_name(read(json!([1]))), "params");
    }

    #[test]
    fn resolves_feature_counts() {
        assert_eq!(MaxFeatures::Sqrt.resolve(20), 4);
        assert_eq!(MaxFeatures::Log2.resolve(20), 4);
        assert_eq!(MaxFeatures::Log2.resolve(1), 1);
        assert_eq!(MaxFeatures::Fraction(0.01).resolve(20), 1);
        assert_eq!(MaxFeatures::Count(50).resolve(20), 20);
        assert_eq!(MaxFeatures::All.resolve(0), 1);
        assert_eq!(Count::Fraction(0.01).resolve(150), 2);
    }
}

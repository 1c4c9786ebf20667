//! The parts of XGBoost's JSON model (`Booster.save_model("model.json")`, XGBoost 1.0 to 3.x) that scoring needs,
//! as typed serde structs. Fields XGBoost omits in some versions default; fields scoring does not need
//! (`loss_changes`, `sum_hessian`, `parents`, ...) are skipped without being stored.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;

#[derive(Debug, Deserialize)]
pub(super) struct ModelFile {
    pub learner: Learner,
}

#[derive(Debug, Deserialize)]
pub(super) struct Learner {
    /// String attributes set by the user or the training wrappers (e.g. `best_iteration`).
    #[serde(default)]
    pub attributes: BTreeMap<String, serde_json::Value>,
    #[serde(default)]
    pub feature_names: Vec<String>,
    #[serde(default)]
    pub feature_types: Vec<String>,
    pub gradient_booster: GradientBooster,
    pub learner_model_param: LearnerModelParam,
    pub objective: Objective,
}

/// XGBoost writes these numbers as strings.
#[derive(Debug, Deserialize)]
pub(super) struct LearnerModelParam {
    pub base_score: String,
    #[serde(default)]
    pub num_class: Option<String>,
    pub num_feature: String,
    #[serde(default)]
    pub num_target: Option<String>,
}

#[derive(Debug, Deserialize)]
pub(super) struct Objective {
    pub name: String,
}

/// `gbtree` has `model`; `dart` wraps a gbtree in `gbtree` and adds `weight_drop`; `gblinear` has a `model` of
/// weights, which parses here as a tree model without trees (it is refused by name before use).
#[derive(Debug, Deserialize)]
pub(super) struct GradientBooster {
    pub name: String,
    #[serde(default)]
    pub model: Option<GbTreeModel>,
    #[serde(default)]
    pub gbtree: Option<Box<GradientBooster>>,
    #[serde(default)]
    pub weight_drop: Option<Vec<f32>>,
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct GbTreeModel {
    #[serde(default)]
    pub gbtree_model_param: GbTreeModelParam,
    #[serde(default)]
    pub trees: Vec<Tree>,
    #[serde(default)]
    pub tree_info: Vec<i64>,
    /// Tree index where each boosting round starts (XGBoost >= 2.0).
    #[serde(default)]
    pub iteration_indptr: Vec<i64>,
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct GbTreeModelParam {
    #[serde(default)]
    pub num_parallel_tree: Option<String>,
}

#[derive(Debug, Deserialize)]
pub(super) struct Tree {
    pub tree_param: TreeParam,
    pub left_children: Vec<i64>,
    pub right_children: Vec<i64>,
    pub split_indices: Vec<i64>,
    /// Split thresholds; for leaves, the leaf value. XGBoost keeps them as `f32`.
    pub split_conditions: Vec<f32>,
    pub default_left: Vec<Flag>,
    /// 0 = numerical, 1 = categorical; absent before categorical support (XGBoost < 1.4).
    #[serde(default)]
    pub split_type: Vec<u8>,
    #[serde(default)]
    pub categories: Vec<i64>,
    #[serde(default)]
    pub categories_nodes: Vec<i64>,
    #[serde(default)]
    pub categories_segments: Vec<i64>,
    #[serde(default)]
    pub categories_sizes: Vec<i64>,
    /// Vector-leaf trees (`multi_strategy="multi_output_tree"`): `size_leaf_vector` values per leaf, leaves in
    /// node order.
    #[serde(default)]
    pub leaf_weights: Vec<f32>,
}

#[derive(Debug, Deserialize)]
pub(super) struct TreeParam {
    pub num_nodes: String,
    #[serde(default)]
    pub size_leaf_vector: Option<String>,
}

/// A boolean XGBoost writes as 0/1 (and some writers as `true`/`false`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Flag(pub bool);

impl<'de> Deserialize<'de> for Flag {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Flag;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("0, 1, true or false")
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Flag, E> {
                Ok(Flag(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Flag, E> {
                match v {
                    0 => Ok(Flag(false)),
                    1 => Ok(Flag(true)),
                    _ => Err(E::invalid_value(de::Unexpected::Unsigned(v), &self)),
                }
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Flag, E> {
                match v {
                    0 => Ok(Flag(false)),
                    1 => Ok(Flag(true)),
                    _ => Err(E::invalid_value(de::Unexpected::Signed(v), &self)),
                }
            }
        }
        d.deserialize_any(V)
    }
}

/// Parses a `base_score` string: `"5E-1"` (XGBoost < 3.1, or one output) or `"[a,b,c]"` (one per output).
pub(super) fn parse_base_score(s: &str) -> Option<Vec<f32>> {
    let s = s.trim();
    if let Some(inner) = s.strip_prefix('[') {
        let inner = inner.strip_suffix(']')?;
        if inner.trim().is_empty() {
            return Some(Vec::new());
        }
        inner
            .split(',')
            .map(|v| v.trim().parse::<f32>().ok())
            .collect()
    } else {
        s.parse::<f32>().ok().map(|v| vec![v])
    }
}

//! Translating one XGBoost tree (parallel arrays indexed by node id) into [`BuildNode`]s.
//!
//! Semantics (XGBoost 3.2 `src/predictor/predict_fn.h`, `src/common/categorical.h`, `src/tree/tree_model.cc`):
//! a node is a leaf when `left_children[i] == -1`, its value is `split_conditions[i]`. A numerical split goes
//! left when `fvalue < split_condition` (both `f32`); a missing value goes to the left child when
//! `default_left[i]`, else to the right one. A categorical split (`split_type[i] == 1`) goes *right* when the
//! category (the value truncated to an integer) is in the node's set and left otherwise, including for negative
//! categories and categories >= 2^24, which XGBoost treats as invalid (never in a set).

use crate::ensemble::{Branch, BuildNode, Missing, SplitTest};

use super::schema::Tree;

/// Categories from this value on are invalid in XGBoost (`OutOfRangeCat()`): never in a split's set.
const INVALID_CATEGORY: i64 = 16_777_216;

/// Why a tree is malformed: the field at fault (relative to the tree) and what is wrong.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct TreeError {
    pub field: String,
    pub message: String,
}

fn err(field: impl Into<String>, message: impl Into<String>) -> TreeError {
    TreeError {
        field: field.into(),
        message: message.into(),
    }
}

/// How leaves are read.
#[derive(Debug, Clone, Copy)]
pub(super) enum Leaves {
    /// One value per leaf, scaled by the DART weight (1 for gbtree), multiplied in `f32` as XGBoost does.
    Scalar { weight: f32 },
    /// `width` values per leaf from `leaf_weights` (vector-leaf trees).
    Vector { width: usize },
}

/// Translates `tree` into nodes whose indices are XGBoost's node ids; the root is node 0.
pub(super) fn translate(tree: &Tree, leaves: Leaves) -> Result<Vec<BuildNode>, TreeError> {
    let n: usize = tree.tree_param.num_nodes.trim().parse().map_err(|_| {
        err(
            "tree_param.num_nodes",
            format!("'{}' is not a node count", tree.tree_param.num_nodes),
        )
    })?;
    if n == 0 {
        return Err(err(
            "tree_param.num_nodes",
            "a tree needs at least one node",
        ));
    }
    let lens = [
        ("left_children", tree.left_children.len()),
        ("right_children", tree.right_children.len()),
        ("split_indices", tree.split_indices.len()),
        ("split_conditions", tree.split_conditions.len()),
        ("default_left", tree.default_left.len()),
    ];
    for (field, len) in lens {
        if len != n {
            return Err(err(
                field,
                format!("has {len} entries, tree_param.num_nodes is {n}"),
            ));
        }
    }
    if !tree.split_type.is_empty() && tree.split_type.len() != n {
        return Err(err(
            "split_type",
            format!(
                "has {} entries, tree_param.num_nodes is {n}",
                tree.split_type.len()
            ),
        ));
    }
    let sets = categorical_sets(tree, n)?;

    let mut leaf_ordinal = 0usize;
    let mut nodes = Vec::with_capacity(n);
    for (i, set) in sets.into_iter().enumerate() {
        let left = tree.left_children[i];
        if left == -1 {
            nodes.push(match leaves {
                Leaves::Scalar { weight } => {
                    let v = tree.split_conditions[i];
                    if !v.is_finite() {
                        return Err(err(
                            format!("split_conditions[{i}]"),
                            format!("leaf value {v} is not finite"),
                        ));
                    }
                    BuildNode::Leaf((v * weight) as f64)
                }
                Leaves::Vector { width } => {
                    let start = leaf_ordinal * width;
                    let values = tree.leaf_weights.get(start..start + width).ok_or_else(|| {
                        err(
                            "leaf_weights",
                            format!(
                                "has {} values, too few for leaf {} of {width} values",
                                tree.leaf_weights.len(),
                                leaf_ordinal
                            ),
                        )
                    })?;
                    leaf_ordinal += 1;
                    BuildNode::LeafVector(values.iter().map(|&v| v as f64).collect())
                }
            });
            continue;
        }
        let right = tree.right_children[i];
        let child = |c: i64, field: &str| {
            usize::try_from(c).ok().filter(|&c| c < n).ok_or_else(|| {
                err(
                    format!("{field}[{i}]"),
                    format!("child {c} is out of range ({n} nodes)"),
                )
            })
        };
        let (left, right) = (
            child(left, "left_children")?,
            child(right, "right_children")?,
        );
        let feature = usize::try_from(tree.split_indices[i]).map_err(|_| {
            err(
                format!("split_indices[{i}]"),
                format!("feature {} is negative", tree.split_indices[i]),
            )
        })?;
        let default_left = tree.default_left[i].0;
        let split_type = tree.split_type.get(i).copied().unwrap_or(0);
        nodes.push(match split_type {
            0 => {
                let cond = tree.split_conditions[i];
                if cond.is_nan() {
                    return Err(err(
                        format!("split_conditions[{i}]"),
                        "split condition is NaN",
                    ));
                }
                BuildNode::Split {
                    feature,
                    test: SplitTest::Lt(cond as f64),
                    missing: Missing::NanTo(if default_left {
                        Branch::Yes
                    } else {
                        Branch::No
                    }),
                    yes: left,
                    no: right,
                }
            }
            // In the set goes right: "yes" is the right child.
            1 => BuildNode::Split {
                feature,
                test: SplitTest::InSet(set.unwrap_or_default()),
                missing: Missing::NanTo(if default_left {
                    Branch::No
                } else {
                    Branch::Yes
                }),
                yes: right,
                no: left,
            },
            t => {
                return Err(err(
                    format!("split_type[{i}]"),
                    format!("unknown split type {t} (0 = numerical, 1 = categorical)"),
                ))
            }
        });
    }
    if let Leaves::Vector { width } = leaves {
        if tree.leaf_weights.len() != leaf_ordinal * width {
            return Err(err(
                "leaf_weights",
                format!(
                    "has {} values, {leaf_ordinal} leaves of {width} need {}",
                    tree.leaf_weights.len(),
                    leaf_ordinal * width
                ),
            ));
        }
    }
    Ok(nodes)
}

/// The category set of each categorical node, from `categories_nodes` / `categories_segments` /
/// `categories_sizes` / `categories`.
fn categorical_sets(tree: &Tree, n: usize) -> Result<Vec<Option<Vec<u32>>>, TreeError> {
    let k = tree.categories_nodes.len();
    for (field, len) in [
        ("categories_segments", tree.categories_segments.len()),
        ("categories_sizes", tree.categories_sizes.len()),
    ] {
        if len != k {
            return Err(err(
                field,
                format!("has {len} entries, categories_nodes has {k}"),
            ));
        }
    }
    let mut sets = vec![None; n];
    for j in 0..k {
        let node = usize::try_from(tree.categories_nodes[j])
            .ok()
            .filter(|&v| v < n)
            .ok_or_else(|| {
                err(
                    format!("categories_nodes[{j}]"),
                    format!(
                        "node {} is out of range ({n} nodes)",
                        tree.categories_nodes[j]
                    ),
                )
            })?;
        let (beg, size) = (tree.categories_segments[j], tree.categories_sizes[j]);
        let range = usize::try_from(beg)
            .ok()
            .zip(usize::try_from(size).ok())
            .and_then(|(b, s)| Some(b..b.checked_add(s)?))
            .filter(|r| r.end <= tree.categories.len())
            .ok_or_else(|| {
                err(
                    format!("categories_segments[{j}]"),
                    format!(
                        "segment {beg}+{size} is outside categories ({} entries)",
                        tree.categories.len()
                    ),
                )
            })?;
        let mut set = Vec::with_capacity(range.len());
        for c in range {
            let cat = tree.categories[c];
            if cat < 0 {
                return Err(err(
                    format!("categories[{c}]"),
                    format!("category {cat} is negative"),
                ));
            }
            // XGBoost never matches invalid categories, so they can be left out of the set.
            if cat < INVALID_CATEGORY {
                set.push(cat as u32);
            }
        }
        if sets[node].replace(set).is_some() {
            return Err(err(
                format!("categories_nodes[{j}]"),
                format!("node {node} is listed twice"),
            ));
        }
    }
    Ok(sets)
}

//! Reading the `nodes_*` and leaf-weight attributes shared by TreeEnsembleClassifier and TreeEnsembleRegressor
//! into per-tree node lists, with onnxruntime's reading of them (facts from its `tree_ensemble_common.h`):
//! a tree's root is its first listed node; nodes are found by (tree id, node id); weights attached to
//! non-leaf nodes are ignored; every leaf needs at least one weight; a comparison with NaN is false (so NaN
//! takes the false branch, and the true branch of BRANCH_NEQ) unless `nodes_missing_value_tracks_true` is set
//! for the node, which sends NaN to the true branch.

use std::collections::HashMap;

use tract_onnx::pb::NodeProto;
use tract_onnx::tract_hir::internal::*;

use super::attrs::{same_len, Attrs};
use super::{invalid, unsupported};
use crate::ensemble::{Branch, BuildNode, EnsembleBuilder, Missing, SplitTest};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    Leq,
    Lt,
    Gte,
    Gt,
    Eq,
    Neq,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Draft {
    Split {
        feature: usize,
        mode: Mode,
        threshold: f64,
        track_true: bool,
        yes: usize,
        no: usize,
    },
    /// (output slot, weight) pairs, in file order.
    Leaf(Vec<(usize, f64)>),
}

/// One tree: its nodes, root first.
#[derive(Debug, Clone)]
pub(crate) struct DraftTree {
    pub nodes: Vec<Draft>,
}

impl DraftTree {
    pub fn leaves(&self) -> impl Iterator<Item = &[(usize, f64)]> {
        self.nodes.iter().filter_map(|n| match n {
            Draft::Leaf(w) => Some(&w[..]),
            _ => None,
        })
    }
}

/// All trees of an ensemble node.
#[derive(Debug, Clone)]
pub(crate) struct DraftEnsemble {
    pub trees: Vec<DraftTree>,
    /// Largest feature index a split reads, plus one.
    pub n_features: usize,
}

/// Reads the trees; leaf weights come from the `{prefix}_treeids/_nodeids/_ids/_weights` attributes and their
/// ids must be below `n_slots`.
pub(crate) fn parse_trees(
    node: &NodeProto,
    prefix: &str,
    n_slots: usize,
) -> TractResult<DraftEnsemble> {
    let a = Attrs::new(node);
    let tree_ids = a.ints("nodes_treeids");
    let node_ids = a.ints("nodes_nodeids");
    let features = a.ints("nodes_featureids");
    let modes = a.strings("nodes_modes")?;
    let values = a.reals("nodes_values")?;
    let trues = a.ints("nodes_truenodeids");
    let falses = a.ints("nodes_falsenodeids");
    let tracks = a.ints("nodes_missing_value_tracks_true");
    let n = tree_ids.len();
    same_len(&[
        ("nodes_treeids", n),
        ("nodes_nodeids", node_ids.len()),
        ("nodes_featureids", features.len()),
        ("nodes_modes", modes.len()),
        ("nodes_values", values.len()),
        ("nodes_truenodeids", trues.len()),
        ("nodes_falsenodeids", falses.len()),
    ])?;
    if tracks.len() > n {
        return Err(invalid(
            "nodes_missing_value_tracks_true is longer than the node list",
        ));
    }
    if n == 0 {
        return Err(unsupported("a tree ensemble without trees"));
    }

    // Trees are runs of equal tree ids; (tree, node) -> (tree index, local index).
    let mut trees: Vec<DraftTree> = Vec::new();
    let mut place: HashMap<(i64, i64), (usize, usize)> = HashMap::with_capacity(n);
    let mut seen_trees: HashMap<i64, usize> = HashMap::new();
    let mut slot = Vec::with_capacity(n);
    for i in 0..n {
        let t = tree_ids[i];
        if i == 0 || tree_ids[i - 1] != t {
            if seen_trees.insert(t, trees.len()).is_some() {
                return Err(unsupported(format!(
                    "the nodes of tree {t} are not listed together"
                )));
            }
            trees.push(DraftTree { nodes: Vec::new() });
        }
        let ti = trees.len() - 1;
        let local = trees[ti].nodes.len();
        if place.insert((t, node_ids[i]), (ti, local)).is_some() {
            return Err(invalid(format!(
                "node {} of tree {t} is listed twice",
                node_ids[i]
            )));
        }
        slot.push((ti, local));
        // Placeholder, filled below once every node id is known.
        trees[ti].nodes.push(Draft::Leaf(Vec::new()));
    }

    let mut n_features = 0;
    for i in 0..n {
        let (ti, local) = slot[i];
        let mode = match modes[i].as_str() {
            "LEAF" => continue,
            "BRANCH_LEQ" => Mode::Leq,
            "BRANCH_LT" => Mode::Lt,
            "BRANCH_GTE" => Mode::Gte,
            "BRANCH_GT" => Mode::Gt,
            "BRANCH_EQ" => Mode::Eq,
            "BRANCH_NEQ" => Mode::Neq,
            other => return Err(invalid(format!("unknown node mode {other:?}"))),
        };
        let child = |id: i64, which: &str| -> TractResult<usize> {
            match place.get(&(tree_ids[i], id)) {
                Some(&(t, c)) if t == ti => Ok(c),
                _ => Err(invalid(format!(
                    "node {} of tree {}: {which} node {id} does not exist",
                    node_ids[i], tree_ids[i]
                ))),
            }
        };
        let feature = usize::try_from(features[i])
            .ok()
            .filter(|&f| f < (1 << 24))
            .ok_or_else(|| invalid(format!("feature id {} is out of range", features[i])))?;
        n_features = n_features.max(feature + 1);
        trees[ti].nodes[local] = Draft::Split {
            feature,
            mode,
            threshold: values[i],
            track_true: tracks.get(i) == Some(&1),
            yes: child(trues[i], "true")?,
            no: child(falses[i], "false")?,
        };
    }

    let t_tree = a.ints(&format!("{prefix}_treeids"));
    let t_node = a.ints(&format!("{prefix}_nodeids"));
    let t_id = a.ints(&format!("{prefix}_ids"));
    let t_weight = a.reals(&format!("{prefix}_weights"))?;
    same_len(&[
        (&format!("{prefix}_treeids"), t_tree.len()),
        (&format!("{prefix}_nodeids"), t_node.len()),
        (&format!("{prefix}_ids"), t_id.len()),
        (&format!("{prefix}_weights"), t_weight.len()),
    ])?;
    for j in 0..t_tree.len() {
        let &(ti, local) = place.get(&(t_tree[j], t_node[j])).ok_or_else(|| {
            invalid(format!(
                "a weight refers to node {} of tree {}, which does not exist",
                t_node[j], t_tree[j]
            ))
        })?;
        let id = usize::try_from(t_id[j])
            .ok()
            .filter(|&k| k < n_slots)
            .ok_or_else(|| {
                invalid(format!(
                    "{prefix}_ids has {}, expected 0..{n_slots}",
                    t_id[j]
                ))
            })?;
        // Weights on split nodes are ignored, as onnxruntime does (old converters wrote them).
        if let Draft::Leaf(w) = &mut trees[ti].nodes[local] {
            w.push((id, t_weight[j]));
        }
    }
    for (ti, tree) in trees.iter().enumerate() {
        if tree.leaves().any(|w| w.is_empty()) {
            return Err(invalid(format!("tree {ti} has a leaf without a weight")));
        }
    }
    Ok(DraftEnsemble { trees, n_features })
}

/// Turns a split into the compiled form: GTE/GT are LT/LE with the branches swapped, NEQ is EQ swapped; the
/// missing branch is where onnxruntime sends NaN.
fn split(feature: usize, mode: Mode, t: f64, track_true: bool, yes: usize, no: usize) -> BuildNode {
    // NaN goes to the ONNX true node when tracked (or for NEQ, where `NaN != t` holds), else to the false node.
    let nan_to_true = track_true || mode == Mode::Neq;
    let (test, swapped) = match mode {
        Mode::Leq => (SplitTest::Le(t), false),
        Mode::Lt => (SplitTest::Lt(t), false),
        Mode::Eq => (SplitTest::Eq(t), false),
        Mode::Gte => (SplitTest::Lt(t), true),
        Mode::Gt => (SplitTest::Le(t), true),
        Mode::Neq => (SplitTest::Eq(t), true),
    };
    let (yes_node, no_node) = if swapped { (no, yes) } else { (yes, no) };
    // Our "yes" is the ONNX true node unless swapped.
    let nan_yes = nan_to_true != swapped;
    BuildNode::Split {
        feature,
        test,
        missing: Missing::NanTo(if nan_yes { Branch::Yes } else { Branch::No }),
        yes: yes_node,
        no: no_node,
    }
}

/// Adds every tree to `builder`; `leaf` turns a leaf's weights into a node, `output` picks the output of a tree
/// whose leaves are scalar.
pub(crate) fn add_trees(
    builder: &mut EnsembleBuilder,
    drafts: &DraftEnsemble,
    leaf: impl Fn(&[(usize, f64)]) -> BuildNode,
    output: impl Fn(&DraftTree) -> usize,
) -> TractResult<()> {
    for (ti, tree) in drafts.trees.iter().enumerate() {
        let nodes: Vec<BuildNode> = tree
            .nodes
            .iter()
            .map(|d| match d {
                Draft::Split {
                    feature,
                    mode,
                    threshold,
                    track_true,
                    yes,
                    no,
                } => split(*feature, *mode, *threshold, *track_true, *yes, *no),
                Draft::Leaf(w) => leaf(w),
            })
            .collect();
        builder
            .add_tree(&nodes, 0, output(tree))
            .map_err(|e| invalid(format!("tree {ti}: {e}")))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn is_yes(node: &BuildNode, x: f64) -> bool {
        let BuildNode::Split { test, missing, .. } = node else {
            unreachable!()
        };
        if x.is_nan() {
            return *missing == Missing::NanTo(Branch::Yes);
        }
        match test {
            SplitTest::Le(t) => x <= *t,
            SplitTest::Lt(t) => x < *t,
            SplitTest::Eq(t) => x == *t,
            SplitTest::InSet(_) | SplitTest::InSetTruncating(_) => unreachable!(),
        }
    }

    /// Every mode, tracked or not, sends each value (NaN included) to the node onnxruntime sends it to.
    #[test]
    fn splits_follow_onnxruntime() {
        let t = 0.5;
        for mode in [
            Mode::Leq,
            Mode::Lt,
            Mode::Gte,
            Mode::Gt,
            Mode::Eq,
            Mode::Neq,
        ] {
            for track in [false, true] {
                let node = split(0, mode, t, track, 10, 20);
                let BuildNode::Split { yes, no, .. } = node else {
                    unreachable!()
                };
                for x in [f64::NAN, -1.0, 0.5, 2.0, f64::INFINITY] {
                    let ort_true = match mode {
                        Mode::Leq => x <= t,
                        Mode::Lt => x < t,
                        Mode::Gte => x >= t,
                        Mode::Gt => x > t,
                        Mode::Eq => x == t,
                        Mode::Neq => x != t,
                    } || (track && x.is_nan());
                    let ours = if is_yes(&node, x) { yes } else { no };
                    assert_eq!(
                        ours,
                        if ort_true { 10 } else { 20 },
                        "{mode:?} track={track} x={x}"
                    );
                }
            }
        }
    }
}

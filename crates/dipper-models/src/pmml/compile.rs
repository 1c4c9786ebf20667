//! Compiling a MiningModel that sums or averages TreeModels (every GBM and random-forest exporter's shape) into
//! the shared [`TreeEnsemble`], which walks trees branch-free.
//!
//! The compiled form is exact for rows in which every field the trees test is present: then no predicate is
//! UNKNOWN, so the missing-value strategy never applies, and an n-ary node whose children are tried in order
//! becomes a chain of binary splits (child 1's test, else child 2's, ..., else the node's no-true-child result).
//! Thresholds are the same typed constants the interpreter compares with, so both paths agree to the bit; a
//! property test checks it. Rows with a missing field fall back to the interpreter.

use super::fields::{Env, Slot};
use super::mining::{Method, Segment};
use super::model::{Function, Kind};
use super::output::Outcome;
use super::predicate::{CmpOp, Predicate};
use super::tree::TreeModel;
use super::value::Value;
use super::EvalError;
use crate::ensemble::{BuildNode, EnsembleBuilder, Missing, SplitTest, TreeEnsemble};

#[derive(Debug)]
pub(crate) struct FastEnsemble {
    /// The slots the trees test, in ensemble column order.
    columns: Vec<Slot>,
    ensemble: TreeEnsemble,
    function: Function,
    categories: Vec<Value>,
}

impl FastEnsemble {
    /// Compiles `segments` if they are all unconditional TreeModels combined by a sum or an average and every
    /// split is a numeric comparison; `None` otherwise (the interpreter then scores every row).
    pub fn try_compile(
        method: Method,
        segments: &[Segment],
        function: Function,
        categories: &[Value],
    ) -> Option<FastEnsemble> {
        let weighted = matches!(method, Method::WeightedSum | Method::WeightedAverage);
        let divisor = match (method, function) {
            (Method::Sum | Method::WeightedSum, Function::Regression) => 1.0,
            (Method::Average, _) => segments.len() as f64,
            (Method::WeightedAverage, _) => segments.iter().map(|s| s.weight).sum(),
            _ => return None,
        };
        if divisor.partial_cmp(&0.0) != Some(std::cmp::Ordering::Greater) {
            return None;
        }
        let n_outputs = match function {
            Function::Regression => 1,
            Function::Classification => categories.len(),
        };
        if n_outputs == 0 {
            return None;
        }
        let mut columns: Vec<Slot> = Vec::new();
        let mut trees = Vec::with_capacity(segments.len());
        for s in segments {
            if !matches!(s.predicate, Predicate::True) || s.model.targets.is_some() {
                return None;
            }
            let Kind::Tree(tree) = &s.model.kind else {
                return None;
            };
            if tree.function != function || !matches!(tree.nodes[0].predicate, Predicate::True) {
                return None;
            }
            let w = if weighted { s.weight } else { 1.0 };
            let mut nodes = Vec::new();
            let root = lower(tree, 0, w, categories, &mut columns, &mut nodes)?;
            trees.push((nodes, root));
        }
        let mut b = EnsembleBuilder::new(columns.len(), n_outputs);
        b.average_over(divisor);
        for (nodes, root) in &trees {
            b.add_tree(nodes, *root, 0).ok()?;
        }
        Some(FastEnsemble {
            columns,
            ensemble: b.build().ok()?,
            function,
            categories: categories.to_vec(),
        })
    }

    /// Scores the row if every column is present; `None` sends it to the interpreter.
    pub fn score(&self, env: &mut Env) -> Result<Option<Outcome>, EvalError> {
        let mut stack = [0.0f64; 64];
        let mut heap = Vec::new();
        let row: &mut [f64] = if self.columns.len() <= stack.len() {
            &mut stack[..self.columns.len()]
        } else {
            heap.resize(self.columns.len(), 0.0);
            &mut heap
        };
        for (x, &slot) in row.iter_mut().zip(&self.columns) {
            match env.get(slot)? {
                Value::Num(v) if !v.is_nan() => *x = v,
                _ => return Ok(None),
            }
        }
        let mut out = [0.0f64; 16];
        let mut out_heap = Vec::new();
        let n = self.ensemble.n_outputs();
        let raw: &mut [f64] = if n <= out.len() {
            &mut out[..n]
        } else {
            out_heap.resize(n, 0.0);
            &mut out_heap
        };
        self.ensemble.predict_raw(row, raw);
        Ok(Some(match self.function {
            Function::Regression => Outcome::value(raw[0]),
            Function::Classification => {
                if raw.iter().any(|p| p.is_nan()) {
                    Outcome::missing()
                } else {
                    Outcome::class(
                        self.categories
                            .iter()
                            .cloned()
                            .zip(raw.iter().copied())
                            .collect(),
                    )
                }
            }
        }))
    }
}

fn column(columns: &mut Vec<Slot>, slot: Slot) -> usize {
    match columns.iter().position(|&s| s == slot) {
        Some(i) => i,
        None => {
            columns.push(slot);
            columns.len() - 1
        }
    }
}

/// Lowers node `i` of `tree` (and its subtree) into `out`, returning the index of its first build node.
fn lower(
    tree: &TreeModel,
    i: usize,
    weight: f64,
    categories: &[Value],
    columns: &mut Vec<Slot>,
    out: &mut Vec<BuildNode>,
) -> Option<usize> {
    let node = &tree.nodes[i];
    if node.children.is_empty() {
        return Some(push_leaf(tree, i, weight, categories, out));
    }
    // A chain of splits: each child's test, "no" leading to the next child.
    let mut pending: Option<(usize, bool)> = None; // (split index, whether "no" is the continuation)
    let mut first = None;
    let mut ended = false;
    for &ch in &node.children {
        let child = &tree.nodes[ch as usize];
        let (feature, test, negate) = match &child.predicate {
            Predicate::False => continue,
            Predicate::True => {
                let at = lower(tree, ch as usize, weight, categories, columns, out)?;
                link(out, &mut pending, &mut first, at);
                ended = true;
                break;
            }
            Predicate::IsNotMissing(slot) => {
                // Present in every row this form scores.
                column(columns, *slot);
                let at = lower(tree, ch as usize, weight, categories, columns, out)?;
                link(out, &mut pending, &mut first, at);
                ended = true;
                break;
            }
            Predicate::IsMissing(slot) => {
                column(columns, *slot);
                continue;
            }
            p => {
                let (slot, op, t) = p.numeric_threshold()?;
                let f = column(columns, slot);
                let (test, negate) = match op {
                    CmpOp::LessOrEqual => (SplitTest::Le(t), false),
                    CmpOp::LessThan => (SplitTest::Lt(t), false),
                    CmpOp::Equal => (SplitTest::Eq(t), false),
                    CmpOp::GreaterThan => (SplitTest::Le(t), true),
                    CmpOp::GreaterOrEqual => (SplitTest::Lt(t), true),
                    CmpOp::NotEqual => (SplitTest::Eq(t), true),
                };
                (f, test, negate)
            }
        };
        let split = out.len();
        out.push(BuildNode::Split {
            feature,
            test,
            missing: Missing::NanTo(crate::ensemble::Branch::No),
            yes: usize::MAX,
            no: usize::MAX,
        });
        link(out, &mut pending, &mut first, split);
        let at = lower(tree, ch as usize, weight, categories, columns, out)?;
        // The child is taken when the predicate holds: "yes" unless the test is the predicate's negation.
        set_branch(out, split, !negate, at);
        pending = Some((split, !negate));
    }
    if !ended {
        // No child matched: the node's own prediction, or none.
        let at = if tree.return_last {
            push_leaf(tree, i, weight, categories, out)
        } else {
            push_null(tree.function, categories, out)
        };
        link(out, &mut pending, &mut first, at);
    }
    first
}

/// Points the continuation of the pending split (or the chain's start) at `at`.
fn link(
    out: &mut [BuildNode],
    pending: &mut Option<(usize, bool)>,
    first: &mut Option<usize>,
    at: usize,
) {
    match pending.take() {
        Some((split, child_on_yes)) => set_branch(out, split, !child_on_yes, at),
        None => *first = first.or(Some(at)),
    }
}

fn set_branch(out: &mut [BuildNode], split: usize, yes: bool, at: usize) {
    if let BuildNode::Split { yes: y, no: n, .. } = &mut out[split] {
        if yes {
            *y = at;
        } else {
            *n = at;
        }
    }
}

fn push_leaf(
    tree: &TreeModel,
    i: usize,
    weight: f64,
    categories: &[Value],
    out: &mut Vec<BuildNode>,
) -> usize {
    let o = tree.node_outcome(i);
    let at = out.len();
    out.push(match tree.function {
        Function::Regression => match o.kind {
            super::output::OutcomeKind::Value(x) => BuildNode::Leaf(x * weight),
            _ => BuildNode::Leaf(f64::NAN),
        },
        Function::Classification => {
            if o.is_missing() {
                BuildNode::LeafVector(vec![f64::NAN; categories.len()])
            } else {
                BuildNode::LeafVector(
                    categories
                        .iter()
                        .map(|c| weight * o.probability(c).unwrap_or(0.0))
                        .collect(),
                )
            }
        }
    });
    at
}

fn push_null(function: Function, categories: &[Value], out: &mut Vec<BuildNode>) -> usize {
    out.push(match function {
        Function::Regression => BuildNode::Leaf(f64::NAN),
        Function::Classification => BuildNode::LeafVector(vec![f64::NAN; categories.len()]),
    });
    out.len() - 1
}

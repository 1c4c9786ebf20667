//! Building a [`TreeEnsemble`] from trees given as node lists in any order, as format loaders read them.
//!
//! Loaders describe each tree with [`BuildNode`]s that refer to each other by index; the builder checks every
//! reference (range, cycles, shared children, depth), lays the tree out depth-first and packs categorical sets
//! into bitsets. Errors say which tree and node are at fault so loaders can name the place in the file.

use super::{flag, op, Group, Node, Tree, TreeEnsemble, LANES};

/// Deepest tree accepted; deeper trees are certainly corrupt and would make walks pathological.
const MAX_DEPTH: usize = 4096;
/// Largest category code accepted in a categorical split.
const MAX_CATEGORY: u32 = 1 << 24;

/// A branch of a split.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Branch {
    Yes,
    No,
}

/// What a split does with a missing (NaN) value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Missing {
    /// NaN takes this branch.
    NanTo(Branch),
    /// NaN is read as 0.0 and tested like any value (LightGBM missing type None).
    NanAsZero,
    /// NaN and zero (|x| <= 1e-35) take this branch (LightGBM missing type Zero).
    NanOrZeroTo(Branch),
}

/// The test of a split node; the "yes" child is taken when it holds.
#[derive(Debug, Clone, PartialEq)]
pub enum SplitTest {
    /// `x <= threshold`
    Le(f64),
    /// `x < threshold`
    Lt(f64),
    /// `x == threshold`
    Eq(f64),
    /// The value is not negative and, truncated to an integer, is one of these category codes (XGBoost, ONNX).
    InSet(Vec<u32>),
    /// The value truncated toward zero is one of these codes, so values in (-1, 0) are category 0 (LightGBM).
    InSetTruncating(Vec<u32>),
}

/// One node of a tree as a loader reads it.
#[derive(Debug, Clone, PartialEq)]
pub enum BuildNode {
    Split {
        feature: usize,
        test: SplitTest,
        missing: Missing,
        yes: usize,
        no: usize,
    },
    /// Adds `value` to the tree's output.
    Leaf(f64),
    /// Adds one value to each output (e.g. per-class votes of a random forest leaf).
    LeafVector(Vec<f64>),
}

/// Why a tree or ensemble is invalid; `tree`/`node` are the loader's own indices.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum BuildError {
    #[error("tree {tree} node {node}: child index {child} is out of range ({len} nodes)")]
    ChildOutOfRange {
        tree: usize,
        node: usize,
        child: usize,
        len: usize,
    },
    #[error("tree {tree} node {node}: node is reached twice (a cycle or a shared child)")]
    NotATree { tree: usize, node: usize },
    #[error("tree {tree} node {node}: feature {feature} is out of range ({n_features} features)")]
    FeatureOutOfRange {
        tree: usize,
        node: usize,
        feature: usize,
        n_features: usize,
    },
    #[error("tree {tree} node {node}: threshold is NaN")]
    NanThreshold { tree: usize, node: usize },
    #[error("tree {tree} node {node}: category {category} is too large (max {MAX_CATEGORY})")]
    CategoryTooLarge {
        tree: usize,
        node: usize,
        category: u32,
    },
    #[error("tree {tree} node {node}: leaf has {got} values, the ensemble has {expected} outputs")]
    LeafWidth {
        tree: usize,
        node: usize,
        got: usize,
        expected: usize,
    },
    #[error("tree {tree}: output {output} is out of range ({n_outputs} outputs)")]
    OutputOutOfRange {
        tree: usize,
        output: usize,
        n_outputs: usize,
    },
    #[error("tree {tree}: root {root} is out of range ({len} nodes)")]
    RootOutOfRange {
        tree: usize,
        root: usize,
        len: usize,
    },
    #[error("tree {tree}: deeper than {MAX_DEPTH} levels")]
    TooDeep { tree: usize },
    #[error("tree {tree}: more than 2^31 nodes in the ensemble")]
    TooManyNodes { tree: usize },
    #[error("base score has {got} values, the ensemble has {expected} outputs")]
    BaseWidth { got: usize, expected: usize },
    #[error("the ensemble needs at least one output")]
    NoOutputs,
}

/// Accumulates trees and compiles them into a [`TreeEnsemble`].
#[derive(Debug, Clone)]
pub struct EnsembleBuilder {
    e: TreeEnsemble,
}

impl EnsembleBuilder {
    pub fn new(n_features: usize, n_outputs: usize) -> Self {
        EnsembleBuilder {
            e: TreeEnsemble {
                n_features,
                n_outputs,
                nodes: Vec::new(),
                payload: Vec::new(),
                trees: Vec::new(),
                groups: Vec::new(),
                leaf_values: Vec::new(),
                cat_bits: Vec::new(),
                base: vec![0.0; n_outputs],
                divisor: 1.0,
                round_inputs_to_f32: false,
            },
        }
    }

    /// Scores start from these values (one per output) instead of 0.
    pub fn base_score(&mut self, base: Vec<f64>) -> &mut Self {
        self.e.base = base;
        self
    }

    /// Sums of leaf values are divided by `divisor` before the base score is added (averaging forests).
    pub fn average_over(&mut self, divisor: f64) -> &mut Self {
        self.e.divisor = divisor;
        self
    }

    /// Inputs are rounded to `f32` before comparisons, for formats whose runtime compares in single precision.
    pub fn round_inputs_to_f32(&mut self, yes: bool) -> &mut Self {
        self.e.round_inputs_to_f32 = yes;
        self
    }

    /// Adds a tree whose scalar leaves add to `output`; `root` indexes `nodes`.
    pub fn add_tree(
        &mut self,
        nodes: &[BuildNode],
        root: usize,
        output: usize,
    ) -> Result<(), BuildError> {
        let tree = self.e.trees.len();
        if output >= self.e.n_outputs {
            return Err(BuildError::OutputOutOfRange {
                tree,
                output,
                n_outputs: self.e.n_outputs,
            });
        }
        if root >= nodes.len() {
            return Err(BuildError::RootOutOfRange {
                tree,
                root,
                len: nodes.len(),
            });
        }
        let start = self.e.nodes.len();
        let mark = (self.e.leaf_values.len(), self.e.cat_bits.len());
        match self.lay_out(tree, nodes, root) {
            Ok((depth, simple)) => {
                self.e.trees.push(Tree {
                    root: start as u32,
                    output: output as u32,
                    depth,
                    simple,
                });
                Ok(())
            }
            Err(e) => {
                self.e.nodes.truncate(start);
                self.e.payload.truncate(start);
                self.e.leaf_values.truncate(mark.0);
                self.e.cat_bits.truncate(mark.1);
                Err(e)
            }
        }
    }

    /// Lays a tree out depth-first; returns its depth and whether it has only `LE` splits.
    fn lay_out(
        &mut self,
        tree: usize,
        nodes: &[BuildNode],
        root: usize,
    ) -> Result<(u32, bool), BuildError> {
        let mut visited = vec![false; nodes.len()];
        let (mut max_depth, mut simple) = (0, true);
        // Stack of (source node, depth, parent slot whose `no` must point at it).
        let mut stack: Vec<(usize, usize, Option<usize>)> = vec![(root, 0, None)];
        while let Some((src, depth, parent)) = stack.pop() {
            if depth > MAX_DEPTH {
                return Err(BuildError::TooDeep { tree });
            }
            if visited[src] {
                return Err(BuildError::NotATree { tree, node: src });
            }
            visited[src] = true;
            let slot = self.e.nodes.len();
            if slot >= i32::MAX as usize {
                return Err(BuildError::TooManyNodes { tree });
            }
            if let Some(p) = parent {
                self.e.nodes[p].no = slot as u32;
            }
            // Leaves never pass their test (NaN threshold) and point to themselves, so walks stay on them.
            let leaf = |op| Node {
                value: f64::NAN,
                feature: 0,
                no: slot as u32,
                op,
                flags: 0,
            };
            let (node, payload) = match &nodes[src] {
                BuildNode::Leaf(v) => {
                    max_depth = max_depth.max(depth);
                    (leaf(op::LEAF), *v)
                }
                BuildNode::LeafVector(values) => {
                    if values.len() != self.e.n_outputs {
                        return Err(BuildError::LeafWidth {
                            tree,
                            node: src,
                            got: values.len(),
                            expected: self.e.n_outputs,
                        });
                    }
                    max_depth = max_depth.max(depth);
                    let offset = self.e.leaf_values.len();
                    self.e.leaf_values.extend_from_slice(values);
                    (leaf(op::LEAF_VECTOR), offset as f64)
                }
                BuildNode::Split {
                    feature,
                    test,
                    missing,
                    yes,
                    no,
                } => {
                    for child in [*yes, *no] {
                        if child >= nodes.len() {
                            return Err(BuildError::ChildOutOfRange {
                                tree,
                                node: src,
                                child,
                                len: nodes.len(),
                            });
                        }
                    }
                    if *feature >= self.e.n_features {
                        return Err(BuildError::FeatureOutOfRange {
                            tree,
                            node: src,
                            feature: *feature,
                            n_features: self.e.n_features,
                        });
                    }
                    let (op, value) = self.compile_test(tree, src, test)?;
                    let flags = missing_flags(*missing, test);
                    simple &= op == op::LE && flags & flag::ZERO_MISSING == 0;
                    // "no" is pushed first so "yes" is laid out right after this node.
                    stack.push((*no, depth + 1, Some(slot)));
                    stack.push((*yes, depth + 1, None));
                    (
                        Node {
                            value,
                            feature: *feature as u32,
                            no: 0,
                            op,
                            flags,
                        },
                        0.0,
                    )
                }
            };
            self.e.nodes.push(node);
            self.e.payload.push(payload);
        }
        Ok((max_depth as u32, simple))
    }

    fn compile_test(
        &mut self,
        tree: usize,
        node: usize,
        test: &SplitTest,
    ) -> Result<(u8, f64), BuildError> {
        let threshold = |t: f64| {
            if t.is_nan() {
                Err(BuildError::NanThreshold { tree, node })
            } else {
                Ok(t)
            }
        };
        Ok(match test {
            SplitTest::Le(t) => (op::LE, threshold(*t)?),
            SplitTest::Lt(t) => (op::LE, below(threshold(*t)?)),
            SplitTest::Eq(t) => (op::EQ, threshold(*t)?),
            SplitTest::InSet(cats) | SplitTest::InSetTruncating(cats) => {
                let max = cats.iter().copied().max().unwrap_or(0);
                if max > MAX_CATEGORY {
                    return Err(BuildError::CategoryTooLarge {
                        tree,
                        node,
                        category: max,
                    });
                }
                let words = if cats.is_empty() {
                    0
                } else {
                    max as usize / 32 + 1
                };
                let offset = self.e.cat_bits.len();
                self.e.cat_bits.resize(offset + words, 0);
                for &c in cats {
                    self.e.cat_bits[offset + c as usize / 32] |= 1 << (c % 32);
                }
                let packed = offset as u64 | (words as u64) << 32;
                let op = if matches!(test, SplitTest::InSet(_)) {
                    op::IN_SET
                } else {
                    op::IN_SET_TRUNC
                };
                (op, f64::from_bits(packed))
            }
        })
    }

    pub fn build(mut self) -> Result<TreeEnsemble, BuildError> {
        self.e.groups = groups(&self.e.trees);
        if self.e.n_outputs == 0 {
            return Err(BuildError::NoOutputs);
        }
        if self.e.base.len() != self.e.n_outputs {
            return Err(BuildError::BaseWidth {
                got: self.e.base.len(),
                expected: self.e.n_outputs,
            });
        }
        Ok(self.e)
    }
}

/// Flags for a split's missing rule. "NaN reads as zero" is decided now: the test's answer for 0 is fixed.
fn missing_flags(m: Missing, test: &SplitTest) -> u8 {
    let yes = |b: bool| if b { flag::DEFAULT_YES } else { 0 };
    match m {
        Missing::NanTo(b) => yes(b == Branch::Yes),
        Missing::NanAsZero => yes(match test {
            SplitTest::Le(t) => 0.0 <= *t,
            SplitTest::Lt(t) => 0.0 < *t,
            SplitTest::Eq(t) => 0.0 == *t,
            SplitTest::InSet(c) | SplitTest::InSetTruncating(c) => c.contains(&0),
        }),
        Missing::NanOrZeroTo(b) => flag::ZERO_MISSING | yes(b == Branch::Yes),
    }
}

/// The largest double below `t`, so that `x < t` is exactly `x <= below(t)` for every non-NaN `x`.
fn below(t: f64) -> f64 {
    if t == f64::NEG_INFINITY {
        f64::NAN // nothing is below -inf: a NaN threshold makes `x <= t` false for all x
    } else if t == 0.0 {
        -f64::from_bits(1)
    } else if t > 0.0 {
        f64::from_bits(t.to_bits() - 1)
    } else {
        f64::from_bits(t.to_bits() + 1)
    }
}

/// Groups consecutive simple trees in lockstep lanes; other trees go in groups walked one by one.
fn groups(trees: &[Tree]) -> Vec<Group> {
    let mut groups: Vec<Group> = Vec::new();
    for (i, t) in trees.iter().enumerate() {
        match groups.last_mut() {
            Some(g) if g.simple == t.simple && (!g.simple || g.len < LANES) => {
                g.len += 1;
                g.depth = g.depth.max(t.depth);
            }
            _ => groups.push(Group {
                start: i,
                len: 1,
                depth: t.depth,
                simple: t.simple,
            }),
        }
    }
    groups
}

#[cfg(test)]
mod tests {
    use super::below;

    #[test]
    fn below_is_the_previous_double() {
        for t in [0.5, -0.5, 1e300, -1e-300, f64::MAX, f64::MIN_POSITIVE, 3.0] {
            let b = below(t);
            assert!(b < t && b.next_up() == t, "{t}");
        }
        assert_eq!(below(0.0), -f64::from_bits(1));
        assert_eq!(below(-0.0), -f64::from_bits(1));
        assert_eq!(below(f64::INFINITY), f64::MAX);
        assert!(below(f64::NEG_INFINITY).is_nan());
    }
}

//! The compiled tree-ensemble form every tree format compiles into (LightGBM, XGBoost, ONNX tree ensembles, and
//! later PMML, H2O and dipper's own trainer).
//!
//! Layout: trees are laid out depth-first in one flat array of 24-byte nodes, so the "yes" child of a split is
//! the next node and only the "no" child's index is stored. Thresholds are `f64` so that formats comparing in
//! double precision (LightGBM) score exactly as their own runtime; formats comparing in single precision
//! (XGBoost) set [`EnsembleBuilder::round_inputs_to_f32`].
//!
//! Speed: almost every split compiles to one form, `x <= t` with NaN sent to a fixed side (`x < t` becomes
//! `x <= pred(t)`; "NaN reads as zero" is resolved when building, as the threshold is known). Leaves point to
//! themselves. A tree made only of such splits is therefore walked branch-free for a fixed number of steps (its
//! depth), and several walks run in lockstep so the CPU overlaps them: eight rows through one tree in batch
//! scoring, eight trees for one row in single-row scoring. Other splits (equality, categories, "zero is missing")
//! take a general walk. Both orders add leaf values tree by tree, so batch and single-row results are identical.
//!
//! Every index is validated when the ensemble is built, so scoring never fails and never panics on any input.
//! The ensemble produces raw scores (one per output, e.g. one per class); turning them into probabilities or
//! values is the job of [`crate::transform::OutputTransform`].

mod builder;

pub use builder::{Branch, BuildError, BuildNode, EnsembleBuilder, Missing, SplitTest};

/// How a node decides. Leaves are nodes too.
pub(crate) mod op {
    /// `x <= value`; NaN goes to the default side. The only split in "simple" trees.
    pub const LE: u8 = 0;
    pub const EQ: u8 = 2;
    /// Category membership; negative values are never members.
    pub const IN_SET: u8 = 3;
    /// Category membership after truncating toward zero (values in (-1, 0) are category 0).
    pub const IN_SET_TRUNC: u8 = 4;
    pub const LEAF: u8 = 5;
    pub const LEAF_VECTOR: u8 = 6;
}

/// How a split treats missing values (flags).
pub(crate) mod flag {
    /// NaN (and zero, with ZERO_MISSING) takes the yes branch.
    pub const DEFAULT_YES: u8 = 1;
    /// Zero (|x| <= ZERO_THRESHOLD) is missing, as is NaN.
    pub const ZERO_MISSING: u8 = 2;
}

/// LightGBM's `kZeroThreshold` (`1e-35f`, a float): values this close to zero count as zero.
pub(crate) const ZERO_THRESHOLD: f64 = 1e-35_f32 as f64;

/// Walks run in lockstep groups of this many.
const LANES: usize = 8;

#[derive(Debug, Clone, Copy, PartialEq)]
#[repr(C)]
pub(crate) struct Node {
    /// Split threshold (NaN for leaves, so their test never passes); for sets, the bitset's word offset (low 32
    /// bits) and length (high 32 bits).
    value: f64,
    /// Feature column (0 for leaves).
    feature: u32,
    /// Index of the "no" child; a leaf's own index.
    no: u32,
    op: u8,
    flags: u8,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Tree {
    root: u32,
    /// Output that scalar leaves add to.
    output: u32,
    /// Longest root-to-leaf path, in splits.
    depth: u32,
    /// Only `LE` splits: can be walked branch-free.
    simple: bool,
}

/// Consecutive simple trees walked together for one row.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Group {
    start: usize,
    len: usize,
    depth: u32,
    simple: bool,
}

/// A compiled, immutable tree ensemble.
#[derive(Debug, Clone)]
pub struct TreeEnsemble {
    n_features: usize,
    n_outputs: usize,
    nodes: Vec<Node>,
    /// Per node: a scalar leaf's value, or a vector leaf's offset into `leaf_values`.
    payload: Vec<f64>,
    trees: Vec<Tree>,
    groups: Vec<Group>,
    leaf_values: Vec<f64>,
    cat_bits: Vec<u32>,
    base: Vec<f64>,
    /// Sums of leaf values are divided by this before the base is added (1 for boosting).
    divisor: f64,
    round_inputs_to_f32: bool,
}

impl TreeEnsemble {
    pub fn n_features(&self) -> usize {
        self.n_features
    }

    /// Raw scores per row (e.g. one per class).
    pub fn n_outputs(&self) -> usize {
        self.n_outputs
    }

    pub fn n_trees(&self) -> usize {
        self.trees.len()
    }

    pub fn n_nodes(&self) -> usize {
        self.nodes.len()
    }

    /// Scores one row (`n_features` values, NaN = missing) into `out` (`n_outputs` raw scores).
    pub fn predict_raw(&self, row: &[f64], out: &mut [f64]) {
        assert_eq!(row.len(), self.n_features, "row length");
        assert_eq!(out.len(), self.n_outputs, "output length");
        if self.round_inputs_to_f32 {
            let mut stack = [0.0; 256];
            let mut heap = Vec::new();
            let rounded = if row.len() <= stack.len() {
                &mut stack[..row.len()]
            } else {
                heap.resize(row.len(), 0.0);
                &mut heap[..]
            };
            round_to_f32(row, rounded);
            self.score_row(rounded, out);
        } else {
            self.score_row(row, out);
        }
    }

    /// Scores row-major `rows` into `out` (`n_outputs` raw scores per row).
    pub fn predict_raw_batch(&self, rows: &[f64], out: &mut [f64]) {
        let n_rows = out.len() / self.n_outputs;
        assert_eq!(out.len(), n_rows * self.n_outputs, "output length");
        assert_eq!(rows.len(), n_rows * self.n_features, "rows must be whole");
        if self.round_inputs_to_f32 {
            let mut rounded = vec![0.0; rows.len()];
            round_to_f32(rows, &mut rounded);
            self.score_rows(&rounded, out);
        } else {
            self.score_rows(rows, out);
        }
    }

    fn score_rows(&self, rows: &[f64], out: &mut [f64]) {
        let (nf, no) = (self.n_features, self.n_outputs);
        let n_rows = out.len() / no;
        let full = n_rows / LANES * LANES;
        out[..full * no].fill(0.0);
        for b in (0..full).step_by(LANES) {
            let lanes: [&[f64]; LANES] =
                std::array::from_fn(|l| &rows[(b + l) * nf..(b + l + 1) * nf]);
            let outs = &mut out[b * no..(b + LANES) * no];
            for tree in &self.trees {
                if tree.simple {
                    let mut idx = [tree.root as usize; LANES];
                    for _ in 0..tree.depth {
                        for l in 0..LANES {
                            idx[l] = self.step(idx[l], lanes[l]);
                        }
                    }
                    for l in 0..LANES {
                        self.add_leaf(idx[l], tree.output, &mut outs[l * no..(l + 1) * no]);
                    }
                } else {
                    for l in 0..LANES {
                        let leaf = self.find_leaf(tree.root as usize, lanes[l]);
                        self.add_leaf(leaf, tree.output, &mut outs[l * no..(l + 1) * no]);
                    }
                }
            }
            for o in outs.chunks_exact_mut(no) {
                self.finish(o);
            }
        }
        for r in full..n_rows {
            self.score_row(&rows[r * nf..(r + 1) * nf], &mut out[r * no..(r + 1) * no]);
        }
    }

    fn score_row(&self, row: &[f64], out: &mut [f64]) {
        out.fill(0.0);
        for g in &self.groups {
            let trees = &self.trees[g.start..g.start + g.len];
            if g.simple {
                // Unused lanes repeat the first tree and are not added.
                let mut idx: [usize; LANES] =
                    std::array::from_fn(|l| trees[l.min(g.len - 1)].root as usize);
                for _ in 0..g.depth {
                    for i in idx.iter_mut() {
                        *i = self.step(*i, row);
                    }
                }
                for (tree, &leaf) in trees.iter().zip(&idx) {
                    self.add_leaf(leaf, tree.output, out);
                }
            } else {
                for tree in trees {
                    let leaf = self.find_leaf(tree.root as usize, row);
                    self.add_leaf(leaf, tree.output, out);
                }
            }
        }
        self.finish(out);
    }

    #[inline(always)]
    fn finish(&self, out: &mut [f64]) {
        for (o, b) in out.iter_mut().zip(&self.base) {
            *o = *o / self.divisor + b;
        }
    }

    /// One branch-free step of a simple tree (`LE` splits; leaves stay where they are).
    #[inline(always)]
    fn step(&self, i: usize, row: &[f64]) -> usize {
        let n = &self.nodes[i];
        let x = row[n.feature as usize];
        let yes = (x <= n.value) | (x.is_nan() & (n.flags & flag::DEFAULT_YES != 0));
        // Arithmetic select: a data-dependent branch here would be mispredicted half the time.
        let mask = (yes as usize).wrapping_sub(1); // 0 when yes, all ones when no
        (i + 1) ^ (((i + 1) ^ n.no as usize) & mask)
    }

    #[inline(always)]
    fn add_leaf(&self, leaf: usize, output: u32, out: &mut [f64]) {
        let v = self.payload[leaf];
        if self.nodes[leaf].op == op::LEAF {
            out[output as usize] += v;
        } else {
            let start = v as usize;
            for (o, v) in out
                .iter_mut()
                .zip(&self.leaf_values[start..start + self.n_outputs])
            {
                *o += v;
            }
        }
    }

    /// Walks any tree to its leaf.
    fn find_leaf(&self, root: usize, row: &[f64]) -> usize {
        let mut i = root;
        loop {
            let n = &self.nodes[i];
            if n.op >= op::LEAF {
                return i;
            }
            let x = row[n.feature as usize];
            let yes =
                if x.is_nan() || (n.flags & flag::ZERO_MISSING != 0 && x.abs() <= ZERO_THRESHOLD) {
                    n.flags & flag::DEFAULT_YES != 0
                } else {
                    self.test(n, x)
                };
            i = if yes { i + 1 } else { n.no as usize };
        }
    }

    /// A split's test on a non-missing value.
    #[inline]
    fn test(&self, n: &Node, x: f64) -> bool {
        match n.op {
            op::LE => x <= n.value,
            op::EQ => x == n.value,
            op::IN_SET => x >= 0.0 && self.in_set(n, x),
            _ => x > -1.0 && self.in_set(n, x),
        }
    }

    /// Whether `x` (known not below -1), truncated toward zero, is in the node's category set.
    #[inline]
    fn in_set(&self, n: &Node, x: f64) -> bool {
        let code = x as u64; // truncates toward zero, saturates on huge values and infinity
        let packed = n.value.to_bits();
        let (offset, words) = ((packed & 0xffff_ffff) as usize, (packed >> 32) as usize);
        let word = (code / 32) as usize;
        word < words && self.cat_bits[offset + word] & (1 << (code % 32)) != 0
    }
}

fn round_to_f32(from: &[f64], to: &mut [f64]) {
    for (t, f) in to.iter_mut().zip(from) {
        *t = *f as f32 as f64;
    }
}

#[cfg(test)]
mod tests;

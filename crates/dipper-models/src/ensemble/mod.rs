//! The compiled tree-ensemble form every tree format compiles into (LightGBM, XGBoost, ONNX tree ensembles, and
//! later PMML, H2O and dipper's own trainer).
//!
//! Trees are laid out depth-first in one flat array of 24-byte nodes, so the "yes" child of a split is always the
//! next node and only the "no" child's index is stored: a walk touches consecutive memory on its most common path.
//! Thresholds are kept as `f64` so that formats that compare in double precision (LightGBM) score exactly as their
//! own runtime; formats that compare in single precision (XGBoost) set [`EnsembleBuilder::round_inputs_to_f32`].
//! Every index is validated when the ensemble is built, so scoring never fails and never panics.
//!
//! The ensemble produces raw scores (one per output, e.g. one per class); turning them into probabilities or
//! values is the job of [`crate::transform::OutputTransform`].

mod builder;

pub use builder::{Branch, BuildError, BuildNode, EnsembleBuilder, Missing, SplitTest};

/// How a node decides. Leaves are nodes too.
pub(crate) mod op {
    pub const LE: u8 = 0;
    pub const LT: u8 = 1;
    pub const EQ: u8 = 2;
    pub const IN_SET: u8 = 3;
    pub const LEAF: u8 = 4;
    pub const LEAF_VECTOR: u8 = 5;
}

/// How a split treats missing values (flags).
pub(crate) mod flag {
    /// NaN (and zero, with ZERO_MISSING) takes the yes branch.
    pub const DEFAULT_YES: u8 = 1;
    /// NaN is read as 0.0 and tested like any value.
    pub const NAN_AS_ZERO: u8 = 2;
    /// Zero (|x| <= 1e-35) is missing, as is NaN.
    pub const ZERO_MISSING: u8 = 4;
}

/// LightGBM's `kZeroThreshold`: values this close to zero count as zero.
pub(crate) const ZERO_THRESHOLD: f64 = 1e-35;

#[derive(Debug, Clone, Copy, PartialEq)]
#[repr(C)]
pub(crate) struct Node {
    /// Split threshold; scalar leaf value; for `IN_SET`, the bitset's word offset (low 32 bits) and length.
    value: f64,
    /// Feature column; for `LEAF_VECTOR`, the offset of the leaf's values; for scalar leaves, the tree's output.
    feature: u32,
    /// Index of the "no" child (the "yes" child is the next node).
    no: u32,
    op: u8,
    flags: u8,
}

/// A compiled, immutable tree ensemble.
#[derive(Debug, Clone)]
pub struct TreeEnsemble {
    n_features: usize,
    n_outputs: usize,
    nodes: Vec<Node>,
    roots: Vec<u32>,
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
        self.roots.len()
    }

    pub fn n_nodes(&self) -> usize {
        self.nodes.len()
    }

    /// Scores one row (`n_features` values, NaN = missing) into `out` (`n_outputs` raw scores).
    pub fn predict_raw(&self, row: &[f64], out: &mut [f64]) {
        assert_eq!(row.len(), self.n_features, "row length");
        assert_eq!(out.len(), self.n_outputs, "output length");
        if self.round_inputs_to_f32 {
            let rounded: Vec<f64> = row.iter().map(|&x| x as f32 as f64).collect();
            self.score_row(&rounded, out);
        } else {
            self.score_row(row, out);
        }
    }

    /// Scores row-major `rows` into `out` (`n_outputs` raw scores per row).
    pub fn predict_raw_batch(&self, rows: &[f64], out: &mut [f64]) {
        let n_rows = if self.n_features == 0 {
            out.len() / self.n_outputs.max(1)
        } else {
            rows.len() / self.n_features
        };
        assert_eq!(rows.len(), n_rows * self.n_features, "rows must be whole");
        assert_eq!(out.len(), n_rows * self.n_outputs, "output length");
        if self.round_inputs_to_f32 {
            let rounded: Vec<f64> = rows.iter().map(|&x| x as f32 as f64).collect();
            self.score_rows(&rounded, out);
        } else {
            self.score_rows(rows, out);
        }
    }

    fn score_rows(&self, rows: &[f64], out: &mut [f64]) {
        if self.n_features == 0 {
            for o in out.chunks_exact_mut(self.n_outputs) {
                self.score_row(&[], o);
            }
            return;
        }
        for (row, o) in rows
            .chunks_exact(self.n_features)
            .zip(out.chunks_exact_mut(self.n_outputs))
        {
            self.score_row(row, o);
        }
    }

    #[inline]
    fn score_row(&self, row: &[f64], out: &mut [f64]) {
        out.fill(0.0);
        for &root in &self.roots {
            let leaf = self.find_leaf(root as usize, row);
            if leaf.op == op::LEAF {
                out[leaf.feature as usize] += leaf.value;
            } else {
                let start = leaf.feature as usize;
                for (o, v) in out
                    .iter_mut()
                    .zip(&self.leaf_values[start..start + self.n_outputs])
                {
                    *o += v;
                }
            }
        }
        for (o, b) in out.iter_mut().zip(&self.base) {
            *o = *o / self.divisor + b;
        }
    }

    /// Walks one tree to its leaf.
    #[inline(always)]
    fn find_leaf(&self, root: usize, row: &[f64]) -> &Node {
        let nodes = &self.nodes[..];
        let mut i = root;
        loop {
            let n = &nodes[i];
            let yes = match n.op {
                op::LE => {
                    let x = row[n.feature as usize];
                    if n.flags == 0 {
                        x <= n.value
                    } else {
                        self.decide_missing(n, x, |x| x <= n.value)
                    }
                }
                op::LT => {
                    let x = row[n.feature as usize];
                    if n.flags == 0 {
                        x < n.value
                    } else {
                        self.decide_missing(n, x, |x| x < n.value)
                    }
                }
                op::EQ => self.decide_missing(n, row[n.feature as usize], |x| x == n.value),
                op::IN_SET => {
                    self.decide_missing(n, row[n.feature as usize], |x| self.in_set(n, x))
                }
                _ => return n,
            };
            i = if yes { i + 1 } else { n.no as usize };
        }
    }

    #[inline(always)]
    fn decide_missing(&self, n: &Node, mut x: f64, test: impl Fn(f64) -> bool) -> bool {
        if x.is_nan() {
            if n.flags & flag::NAN_AS_ZERO != 0 {
                x = 0.0;
            } else {
                return n.flags & flag::DEFAULT_YES != 0;
            }
        }
        if n.flags & flag::ZERO_MISSING != 0 && x.abs() <= ZERO_THRESHOLD {
            return n.flags & flag::DEFAULT_YES != 0;
        }
        test(x)
    }

    /// Category membership: the value truncated to an integer; negative or out-of-range codes are not members.
    #[inline]
    fn in_set(&self, n: &Node, x: f64) -> bool {
        if !(x >= 0.0) {
            return false;
        }
        let code = x as u64; // truncates toward zero, saturates
        let packed = n.value.to_bits();
        let (offset, words) = ((packed & 0xffff_ffff) as usize, (packed >> 32) as usize);
        let word = (code / 32) as usize;
        word < words && self.cat_bits[offset + word] & (1 << (code % 32)) != 0
    }
}

#[cfg(test)]
mod tests;

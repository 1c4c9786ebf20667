//! Growing one regression tree on gradients, leaf-wise as LightGBM does: the leaf whose best split gains most
//! is split next, until `num_leaves` leaves, `max_depth`, or no split gains enough. Rows of each leaf are a
//! contiguous range of one index array (stably partitioned at each split); only the smaller child's histogram
//! is built, the larger one's is the parent's minus it.

use dipper_models::native::trees::Tree;
use rayon::prelude::*;

use super::binning::{BinMap, Binned};
use super::histogram::{self, HistBin};
use super::split::{best_split, Split, SplitConfig, Stats};

/// Histograms kept for subtraction are limited to about this many bytes (more leaves rebuild both children).
const HIST_BUDGET_BYTES: usize = 256 << 20;

/// Limits of tree growth.
#[derive(Debug, Clone, Copy)]
pub struct GrowConfig {
    pub split: SplitConfig,
    pub num_leaves: usize,
    /// 0 = no limit.
    pub max_depth: usize,
    pub learning_rate: f64,
}

/// A split node as bins see it (for scoring rows of the training set not in the bag).
#[derive(Debug, Clone)]
struct BinNode {
    feature: usize,
    goes_left: [bool; 256],
}

/// A grown tree: the model's tree (leaf values shrunk) and, per leaf, its range of [`TreeLearner::indices`].
#[derive(Debug, Clone)]
pub struct GrownTree {
    pub tree: Tree,
    /// `(start, len, value)` per leaf.
    pub leaves: Vec<(usize, usize, f64)>,
    bin_nodes: Vec<Option<BinNode>>,
}

impl GrownTree {
    pub fn n_splits(&self) -> usize {
        self.leaves.len() - 1
    }

    /// The tree's value for row `row` of the binned training set.
    pub fn predict_binned(&self, data: &Binned, row: usize) -> f64 {
        let mut n = 0usize;
        while let Some(b) = &self.bin_nodes[n] {
            let bin = data.columns[b.feature][row] as usize;
            n = if b.goes_left[bin] {
                self.tree.left[n]
            } else {
                self.tree.right[n]
            } as usize;
        }
        self.tree.value[n]
    }
}

/// The tree's value for a row of raw values, `get(j)` giving feature `j`; the scorer's rules exactly.
pub fn predict_raw(tree: &Tree, get: impl Fn(usize) -> f64) -> f64 {
    let mut n = 0usize;
    while tree.left[n] >= 0 {
        let x = get(tree.feature[n] as usize);
        let left = if x.is_nan() {
            tree.missing_left[n]
        } else {
            match tree.categories.get(n) {
                Some(c) if !c.is_empty() => x >= 0.0 && c.contains(&(x as u32)),
                _ => x <= tree.threshold[n],
            }
        };
        n = if left { tree.left[n] } else { tree.right[n] } as usize;
    }
    tree.value[n]
}

/// Rows per parallel task of a partition.
const PARTITION_CHUNK: usize = 32 * 1024;

/// Stably moves the rows of `seg` whose bin in `col` goes left (`table`) to the front; returns their count.
/// Large segments are partitioned in parallel chunks, then put together in order.
fn partition(seg: &mut [u32], tmp: &mut Vec<u32>, col: &[u8], table: &[bool; 256]) -> usize {
    // Branch-free: every row is written to both sides, and only the right side's cursor advances.
    fn chunk(seg: &mut [u32], right: &mut [u32], col: &[u8], table: &[bool; 256]) -> usize {
        let (mut nl, mut nr) = (0, 0);
        for k in 0..seg.len() {
            let r = seg[k];
            let left = table[col[r as usize] as usize];
            seg[nl] = r;
            right[nr] = r;
            nl += left as usize;
            nr += !left as usize;
        }
        nl
    }
    let len = seg.len();
    tmp.clear();
    tmp.resize(len, 0);
    if len <= PARTITION_CHUNK {
        let nl = chunk(seg, tmp, col, table);
        seg[nl..].copy_from_slice(&tmp[..len - nl]);
        return nl;
    }
    let counts: Vec<usize> = seg
        .par_chunks_mut(PARTITION_CHUNK)
        .zip(tmp.par_chunks_mut(PARTITION_CHUNK))
        .map(|(s, t)| chunk(s, t, col, table))
        .collect();
    // Gather the left parts to the front, in order (each moves down, so in place), then the right parts.
    let mut nl = 0;
    for (c, &n) in counts.iter().enumerate() {
        let from = c * PARTITION_CHUNK;
        seg.copy_within(from..from + n, nl);
        nl += n;
    }
    let mut at = nl;
    for (c, &n) in counts.iter().enumerate() {
        let from = c * PARTITION_CHUNK;
        let size = PARTITION_CHUNK.min(len - from);
        seg[at..at + size - n].copy_from_slice(&tmp[from..from + size - n]);
        at += size - n;
    }
    nl
}

struct Leaf {
    start: usize,
    len: usize,
    stats: Stats,
    depth: usize,
    node: usize,
    best: Option<Split>,
    hist: Option<Vec<HistBin>>,
}

/// Reusable state of tree growth over one binned training set.
pub struct TreeLearner<'a> {
    data: &'a Binned,
    cfg: GrowConfig,
    indices: Vec<u32>,
    tmp: Vec<u32>,
    ordered: Vec<[f32; 2]>,
    pool: Vec<Vec<HistBin>>,
    max_hists: usize,
}

impl<'a> TreeLearner<'a> {
    pub fn new(data: &'a Binned, cfg: GrowConfig) -> Self {
        let hist_bytes = data.total_bins.max(1) * std::mem::size_of::<HistBin>();
        TreeLearner {
            data,
            cfg,
            indices: Vec::new(),
            tmp: Vec::new(),
            ordered: Vec::new(),
            pool: Vec::new(),
            max_hists: (HIST_BUDGET_BYTES / hist_bytes).max(2),
        }
    }

    /// Row indices, grouped by leaf of the last grown tree.
    pub fn indices(&self) -> &[u32] {
        &self.indices
    }

    fn buffer(&mut self) -> Vec<HistBin> {
        self.pool
            .pop()
            .unwrap_or_else(|| vec![HistBin::default(); self.data.total_bins])
    }

    /// Builds the histogram of rows `indices[start..start + len]`.
    fn histogram(
        &mut self,
        start: usize,
        len: usize,
        grads: &[[f32; 2]],
        all_rows: bool,
        active: &[bool],
    ) -> Vec<HistBin> {
        let mut h = self.buffer();
        let rows = &self.indices[start..start + len];
        if all_rows {
            histogram::build(&mut h, self.data, active, rows, grads, true);
        } else {
            self.ordered.clear();
            self.ordered.extend(rows.iter().map(|&r| grads[r as usize]));
            histogram::build(&mut h, self.data, active, rows, &self.ordered, false);
        }
        h
    }

    fn find_best(&self, leaf: &Leaf, active: &[bool]) -> Option<Split> {
        let cfg = &self.cfg;
        if (cfg.max_depth > 0 && leaf.depth >= cfg.max_depth)
            || leaf.stats.n < 2 * cfg.split.min_data_in_leaf
        {
            return None;
        }
        let hist = leaf.hist.as_ref()?;
        let candidates: Vec<Split> = (0..self.data.features.len())
            .into_par_iter()
            .filter(|&j| active[j])
            .filter_map(|j| {
                let fb = &self.data.features[j];
                let off = self.data.offsets[j];
                best_split(j, fb, &hist[off..off + fb.n_bins], leaf.stats, &cfg.split)
            })
            .collect();
        // In feature order: ties go to the first feature, whatever the thread count.
        let mut best: Option<Split> = None;
        for c in candidates {
            if best.as_ref().is_none_or(|b| c.gain > b.gain) {
                best = Some(c);
            }
        }
        best
    }

    /// Grows a tree on `grads` (per row) over the rows `rows` (ascending; `all_rows` when they are all rows),
    /// splitting only on features with `active[j]`.
    pub fn grow(
        &mut self,
        grads: &[[f32; 2]],
        rows: &[u32],
        all_rows: bool,
        active: &[bool],
    ) -> GrownTree {
        let data = self.data;
        self.indices.clear();
        self.indices.extend_from_slice(rows);
        let mut stats = Stats::default();
        for &r in rows {
            let gh = grads[r as usize];
            stats.g += gh[0] as f64;
            stats.h += gh[1] as f64;
        }
        stats.n = rows.len() as u64;
        let mut tree = Tree {
            output: 0,
            left: vec![-1],
            right: vec![-1],
            feature: vec![0],
            threshold: vec![0.0],
            missing_left: vec![false],
            value: vec![0.0],
            categories: vec![Vec::new()],
            leaf_vectors: Vec::new(),
        };
        let mut bin_nodes: Vec<Option<BinNode>> = vec![None];
        let mut root = Leaf {
            start: 0,
            len: rows.len(),
            stats,
            depth: 0,
            node: 0,
            best: None,
            hist: None,
        };
        if self.cfg.num_leaves > 1 && stats.n >= 2 * self.cfg.split.min_data_in_leaf {
            root.hist = Some(self.histogram(0, rows.len(), grads, all_rows, active));
            root.best = self.find_best(&root, active);
        }
        let mut leaves = vec![root];
        self.release_unsplittable(&mut leaves);
        while leaves.len() < self.cfg.num_leaves {
            let mut pick: Option<usize> = None;
            for (i, l) in leaves.iter().enumerate() {
                if let Some(b) = &l.best {
                    if pick.is_none_or(|p| b.gain > leaves[p].best.as_ref().unwrap().gain) {
                        pick = Some(i);
                    }
                }
            }
            let Some(li) = pick else { break };
            let split = leaves[li].best.take().unwrap();
            let fb = &data.features[split.feature];
            let table = split.left_table(fb);
            // Stable partition of the leaf's rows.
            let (start, len) = (leaves[li].start, leaves[li].len);
            let n_left = partition(
                &mut self.indices[start..start + len],
                &mut self.tmp,
                &data.columns[split.feature],
                &table,
            );
            debug_assert_eq!(n_left as u64, split.left.n);
            // The node becomes a split with two leaf children.
            let node = leaves[li].node;
            let l_node = tree.left.len();
            for _ in 0..2 {
                tree.left.push(-1);
                tree.right.push(-1);
                tree.feature.push(0);
                tree.threshold.push(0.0);
                tree.missing_left.push(false);
                tree.value.push(0.0);
                tree.categories.push(Vec::new());
                bin_nodes.push(None);
            }
            tree.left[node] = l_node as i32;
            tree.right[node] = l_node as i32 + 1;
            tree.feature[node] = split.feature as u32;
            tree.missing_left[node] = split.missing_left;
            match &fb.map {
                BinMap::Numeric { upper } => tree.threshold[node] = upper[split.threshold_bin],
                BinMap::Categorical { codes, .. } => {
                    let mut set: Vec<u32> =
                        split.cat_bins.iter().map(|&b| codes[b as usize]).collect();
                    set.sort_unstable();
                    tree.categories[node] = set;
                }
            }
            bin_nodes[node] = Some(BinNode {
                feature: split.feature,
                goes_left: table,
            });
            let depth = leaves[li].depth + 1;
            let parent_hist = leaves[li].hist.take();
            let mut left = Leaf {
                start,
                len: n_left,
                stats: split.left,
                depth,
                node: l_node,
                best: None,
                hist: None,
            };
            let mut right = Leaf {
                start: start + n_left,
                len: len - n_left,
                stats: split.right,
                depth,
                node: l_node + 1,
                best: None,
                hist: None,
            };
            let left_smaller = left.len <= right.len;
            let (small, large) = if left_smaller {
                (&mut left, &mut right)
            } else {
                (&mut right, &mut left)
            };
            let may_split = |l: &Leaf| {
                (self.cfg.max_depth == 0 || l.depth < self.cfg.max_depth)
                    && l.stats.n >= 2 * self.cfg.split.min_data_in_leaf
            };
            let (small_ok, large_ok) = (may_split(small), may_split(large));
            if small_ok || large_ok {
                let small_hist = self.histogram(small.start, small.len, grads, false, active);
                if large_ok {
                    large.hist = Some(match parent_hist {
                        Some(mut p) => {
                            histogram::subtract(&mut p, &small_hist, self.data, active);
                            p
                        }
                        None => self.histogram(large.start, large.len, grads, false, active),
                    });
                } else if let Some(p) = parent_hist {
                    self.pool.push(p);
                }
                small.hist = Some(small_hist);
            } else if let Some(p) = parent_hist {
                self.pool.push(p);
            }
            left.best = self.find_best(&left, active);
            right.best = self.find_best(&right, active);
            leaves[li] = left;
            leaves.push(right);
            self.release_unsplittable(&mut leaves);
        }
        let lr = self.cfg.learning_rate;
        let mut out = Vec::with_capacity(leaves.len());
        for l in &mut leaves {
            if let Some(h) = l.hist.take() {
                self.pool.push(h);
            }
            let v = lr * self.cfg.split.leaf_output(l.stats);
            tree.value[l.node] = v;
            out.push((l.start, l.len, v));
        }
        if tree.categories.iter().all(|c| c.is_empty()) {
            tree.categories.clear();
        }
        GrownTree {
            tree,
            leaves: out,
            bin_nodes,
        }
    }

    /// Returns the histograms of leaves that will not be split to the pool, and keeps at most `max_hists`
    /// (dropping those of the leaves with the smallest gains).
    fn release_unsplittable(&mut self, leaves: &mut [Leaf]) {
        for l in leaves.iter_mut() {
            if l.best.is_none() {
                if let Some(h) = l.hist.take() {
                    self.pool.push(h);
                }
            }
        }
        loop {
            let held = leaves.iter().filter(|l| l.hist.is_some()).count();
            if held <= self.max_hists {
                break;
            }
            let worst = leaves
                .iter()
                .enumerate()
                .filter(|(_, l)| l.hist.is_some())
                .min_by(|a, b| {
                    let g = |l: &Leaf| l.best.as_ref().map_or(0.0, |s| s.gain);
                    g(a.1).total_cmp(&g(b.1)).then(a.0.cmp(&b.0))
                })
                .map(|(i, _)| i)
                .unwrap();
            leaves[worst].hist = None;
        }
        // Free buffers beyond what a tree can hold are not kept.
        self.pool.truncate(self.max_hists + 2);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    /// Rows routed by bins during training land in the leaf the scorer's raw-value rules pick.
    #[test]
    fn binned_and_raw_routing_agree() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        let n = 3000;
        let cols: Vec<Vec<f64>> = (0..4)
            .map(|j| {
                (0..n)
                    .map(|_| match rng.random_range(0..10) {
                        0 => f64::NAN,
                        _ if j == 3 => rng.random_range(0..9) as f64,
                        // Few distinct values in feature 0, many (more than bins) in the others.
                        _ if j == 0 => (rng.random_range(0..20) as f64) * 0.1,
                        _ => rng.random::<f64>() * 1e3 - 500.0,
                    })
                    .collect()
            })
            .collect();
        let data = Binned::new(&cols, &[false, false, false, true], 64);
        let grads: Vec<[f32; 2]> = (0..n)
            .map(|i| {
                let s = cols[0][i].sin() + (cols[3][i] as i64 % 3) as f64 + cols[1][i] / 300.0;
                [
                    (if s.is_nan() { 1.0 } else { s }) as f32 + rng.random::<f32>(),
                    1.0,
                ]
            })
            .collect();
        let cfg = GrowConfig {
            split: SplitConfig {
                lambda_l1: 0.0,
                lambda_l2: 1.0,
                min_data_in_leaf: 5,
                min_sum_hessian_in_leaf: 1e-3,
                min_gain_to_split: 0.0,
                max_cat_to_onehot: 4,
                max_cat_threshold: 32,
                cat_smooth: 10.0,
            },
            num_leaves: 63,
            max_depth: 0,
            learning_rate: 1.0,
        };
        let mut learner = TreeLearner::new(&data, cfg);
        let rows: Vec<u32> = (0..n as u32).collect();
        let grown = learner.grow(&grads, &rows, true, &[true; 4]);
        assert!(grown.n_splits() > 20);
        assert!(!grown.tree.categories.is_empty());
        let mut by_leaf = vec![0.0; n];
        for &(start, len, v) in &grown.leaves {
            for &r in &learner.indices()[start..start + len] {
                by_leaf[r as usize] = v;
            }
        }
        for (i, &want) in by_leaf.iter().enumerate() {
            assert_eq!(grown.predict_binned(&data, i), want);
            assert_eq!(predict_raw(&grown.tree, |j| cols[j][i]), want, "row {i}");
        }
    }

    #[test]
    fn partition_is_stable_in_any_size() {
        for len in [0, 1, 5, PARTITION_CHUNK, 3 * PARTITION_CHUNK + 17] {
            let col: Vec<u8> = (0..len).map(|i| ((i * 37) % 11) as u8).collect();
            let mut table = [false; 256];
            for b in [1, 4, 5, 9] {
                table[b] = true;
            }
            let mut seg: Vec<u32> = (0..len as u32).collect();
            let mut tmp = Vec::new();
            let nl = partition(&mut seg, &mut tmp, &col, &table);
            let want: Vec<u32> = (0..len as u32)
                .filter(|&r| table[col[r as usize] as usize])
                .chain((0..len as u32).filter(|&r| !table[col[r as usize] as usize]))
                .collect();
            assert_eq!(seg, want);
            assert_eq!(
                nl,
                want.iter()
                    .filter(|&&r| table[col[r as usize] as usize])
                    .count()
            );
        }
    }
}

//! Growing one CART tree, as scikit-learn's depth-first builder with its "best" splitter does: at each node the
//! candidate features are drawn at random without replacement (constant features do not count towards
//! `max_features`), the node's rows are sorted by each candidate's value and every threshold halfway between
//! two consecutive distinct values is scored exactly. Rows whose value is missing (NaN) are tried on both sides
//! of each threshold, and also alone on the right of an "all present values" split; the better direction is
//! recorded as the node's `missing_left`. A node without missing values at training sends them to its larger
//! child.
//!
//! Categorical features (with at most [`MAX_SET_CATEGORIES`] categories) are split into two sets of categories
//! (see [`super::categorical`]); the others are split as ordered numbers (their codes).
//!
//! Rows carry weights (bootstrap counts in a forest); `min_samples_leaf` and `min_samples_split` count rows,
//! the impurities and leaf values are weighted. All scratch memory is allocated once per tree: each node sorts
//! into a reused buffer and partitions its slice of one index array in place.

use dipper_models::native::trees::Tree;
use rand::Rng;

use super::categorical;
use super::params::Criterion;
use crate::TrainError;

/// Values closer than this are not split apart (scikit-learn's `FEATURE_THRESHOLD`).
const FEATURE_THRESHOLD: f64 = 1e-7;
/// Categorical features with more categories are split as ordered codes.
pub(crate) const MAX_SET_CATEGORIES: usize = 1024;
/// Deepest tree grown whatever `max_depth` says (the scorer refuses trees deeper than 4096 levels).
pub(crate) const DEPTH_CAP: usize = 4000;

/// The training targets.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Labels<'a> {
    /// Class index per row, `k` classes.
    Classes {
        y: &'a [u32],
        k: usize,
    },
    Values(&'a [f64]),
}

/// Features and targets, shared by every tree of a forest.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Problem<'a> {
    /// `columns[j][i]`: feature `j` of row `i`.
    pub columns: &'a [Vec<f64>],
    pub labels: Labels<'a>,
    /// Per feature, the number of categories when it is split into category sets (`None`: ordered values).
    pub categories: &'a [Option<usize>],
}

/// Resolved growth settings.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Growth {
    pub criterion: Criterion,
    pub max_depth: usize,
    pub min_samples_split: usize,
    pub min_samples_leaf: usize,
    pub max_features: usize,
    pub min_impurity_decrease: f64,
}

/// The best split found so far at a node.
#[derive(Debug, Clone, Copy)]
pub(super) struct Best {
    pub feature: usize,
    /// A category-set split: the left categories are in `Scratch::best_cats`.
    pub categorical: bool,
    pub threshold: f64,
    pub missing_left: bool,
    pub node_has_missing: bool,
    pub proxy: f64,
}

pub(super) struct Scratch {
    pub pairs: Vec<(f64, u32)>,
    pub features: Vec<usize>,
    pub total: Vec<f64>,
    pub left: Vec<f64>,
    pub right: Vec<f64>,
    pub missing: Vec<f64>,
    pub tmp: Vec<f64>,
    /// Per category, its statistics (`m` values each) and row count at the node being split.
    pub cat_stats: Vec<f64>,
    pub cat_rows: Vec<usize>,
    /// The categories present at the node with their sort key.
    pub present: Vec<(f64, u32)>,
    /// The left categories of the best categorical split so far.
    pub best_cats: Vec<u32>,
    /// Membership of `best_cats`, while partitioning.
    pub in_left: Vec<bool>,
}

/// A node waiting to be grown: its rows are `samples[start..end]`.
struct Job {
    start: usize,
    end: usize,
    depth: usize,
    parent: Option<(usize, bool)>,
}

/// Grows a tree on the rows with positive weight (`weights` has one entry per row of the problem). The leaves
/// hold p(class 1) for two classes, the class-probability vector (`leaf_vectors`) for more, and the weighted
/// mean for regression.
pub(crate) fn grow(
    problem: &Problem,
    growth: &Growth,
    weights: &[f64],
    rng: &mut impl Rng,
) -> Result<Tree, TrainError> {
    let mut samples: Vec<u32> = (0..weights.len() as u32)
        .filter(|&i| weights[i as usize] > 0.0)
        .collect();
    if samples.is_empty() {
        return Err(TrainError::Unfit("no training rows".into()));
    }
    let m = match problem.labels {
        Labels::Classes { k, .. } => 1 + k,
        Labels::Values(_) => 3,
    };
    let n_features = problem.columns.len();
    let max_cats = problem
        .categories
        .iter()
        .flatten()
        .copied()
        .max()
        .unwrap_or(0);
    let mut s = Scratch {
        pairs: Vec::with_capacity(samples.len()),
        features: (0..n_features).collect(),
        total: vec![0.0; m],
        left: vec![0.0; m],
        right: vec![0.0; m],
        missing: vec![0.0; m],
        tmp: vec![0.0; m],
        cat_stats: vec![0.0; max_cats * m],
        cat_rows: vec![0; max_cats],
        present: Vec::new(),
        best_cats: Vec::new(),
        in_left: vec![false; max_cats],
    };
    let uses_sets = max_cats > 0;
    let vectors = matches!(problem.labels, Labels::Classes { k, .. } if k > 2);
    let mut tree = Tree::default();
    let max_depth = growth.max_depth.min(DEPTH_CAP);
    let mut root_weight = 0.0;
    let mut stack = vec![Job {
        start: 0,
        end: samples.len(),
        depth: 0,
        parent: None,
    }];
    while let Some(job) = stack.pop() {
        let rows = &mut samples[job.start..job.end];
        let n = rows.len();
        s.total.fill(0.0);
        for &r in rows.iter() {
            add(&mut s.total, problem.labels, r, weights[r as usize]);
        }
        let node_weight = s.total[0];
        if job.parent.is_none() {
            root_weight = node_weight;
        }
        let id = push_leaf(&mut tree, problem.labels, &s.total, vectors)?;
        if uses_sets {
            tree.categories.push(Vec::new());
        }
        if let Some((parent, is_left)) = job.parent {
            if is_left {
                tree.left[parent] = id as i32;
            } else {
                tree.right[parent] = id as i32;
            }
        }
        let impurity = impurity(growth.criterion, &s.total);
        if job.depth >= max_depth
            || n < growth.min_samples_split
            || n < growth.min_samples_leaf.saturating_mul(2)
            || impurity <= f64::EPSILON
        {
            continue;
        }
        let Some(best) = best_split(problem, growth, weights, rows, &mut s, rng) else {
            continue;
        };
        // Partition in place with the rule the scorer applies.
        let column = &problem.columns[best.feature];
        if best.categorical {
            for &c in &s.best_cats {
                s.in_left[c as usize] = true;
            }
        }
        let in_left = &s.in_left;
        let goes_left = |x: f64| {
            if x.is_nan() {
                best.missing_left
            } else if best.categorical {
                categorical::code(x, in_left.len()).is_some_and(|c| in_left[c])
            } else {
                x <= best.threshold
            }
        };
        let mut n_left = 0;
        for i in 0..n {
            if goes_left(column[rows[i] as usize]) {
                rows.swap(i, n_left);
                n_left += 1;
            }
        }
        for &c in &s.best_cats {
            s.in_left[c as usize] = false;
        }
        if n_left == 0 || n_left == n {
            continue;
        }
        s.left.fill(0.0);
        s.right.fill(0.0);
        for (i, &r) in rows.iter().enumerate() {
            let side = if i < n_left {
                &mut s.left
            } else {
                &mut s.right
            };
            add(side, problem.labels, r, weights[r as usize]);
        }
        let (wl, wr) = (s.left[0], s.right[0]);
        let improvement = node_weight / root_weight
            * (impurity
                - wl / node_weight * self::impurity(growth.criterion, &s.left)
                - wr / node_weight * self::impurity(growth.criterion, &s.right));
        if improvement + f64::EPSILON < growth.min_impurity_decrease {
            continue;
        }
        tree.feature[id] = best.feature as u32;
        tree.threshold[id] = best.threshold;
        if best.categorical {
            let mut cats = s.best_cats.clone();
            cats.sort_unstable();
            tree.categories[id] = cats;
        }
        tree.missing_left[id] = if best.node_has_missing {
            best.missing_left
        } else {
            2 * n_left >= n
        };
        tree.value[id] = 0.0;
        if vectors {
            tree.leaf_vectors[id] = Vec::new();
        }
        // Left popped first: children are numbered depth-first.
        let mid = job.start + n_left;
        stack.push(Job {
            start: mid,
            end: job.end,
            depth: job.depth + 1,
            parent: Some((id, false)),
        });
        stack.push(Job {
            start: job.start,
            end: mid,
            depth: job.depth + 1,
            parent: Some((id, true)),
        });
    }
    if tree.categories.iter().all(Vec::is_empty) {
        tree.categories = Vec::new();
    }
    Ok(tree)
}

/// Appends a leaf with the value of `stats`; returns its index.
fn push_leaf(
    tree: &mut Tree,
    labels: Labels,
    stats: &[f64],
    vectors: bool,
) -> Result<usize, TrainError> {
    let id = tree.left.len();
    if id >= i32::MAX as usize {
        return Err(TrainError::Unfit("tree has too many nodes".into()));
    }
    let w = stats[0];
    let value = match labels {
        Labels::Classes { k: 2, .. } => stats[2] / w,
        Labels::Classes { .. } => 0.0,
        Labels::Values(_) => stats[1] / w,
    };
    tree.left.push(-1);
    tree.right.push(-1);
    tree.feature.push(0);
    tree.threshold.push(0.0);
    tree.missing_left.push(false);
    tree.value.push(value);
    if vectors {
        tree.leaf_vectors
            .push(stats[1..].iter().map(|c| c / w).collect());
    }
    Ok(id)
}

/// Adds row `r` with weight `w` to `stats`: `[weight, class weights...]` or `[weight, Σwy, Σwy²]`.
#[inline]
pub(super) fn add(stats: &mut [f64], labels: Labels, r: u32, w: f64) {
    stats[0] += w;
    match labels {
        Labels::Classes { y, .. } => stats[1 + y[r as usize] as usize] += w,
        Labels::Values(v) => {
            let y = v[r as usize];
            stats[1] += w * y;
            stats[2] += w * y * y;
        }
    }
}

/// The node impurity of `stats` (Gini, entropy in bits, or variance).
pub(crate) fn impurity(criterion: Criterion, stats: &[f64]) -> f64 {
    let w = stats[0];
    if w <= 0.0 {
        return 0.0;
    }
    match criterion {
        Criterion::Gini => 1.0 - stats[1..].iter().map(|c| (c / w) * (c / w)).sum::<f64>(),
        Criterion::Entropy => -stats[1..]
            .iter()
            .filter(|&&c| c > 0.0)
            .map(|c| (c / w) * (c / w).log2())
            .sum::<f64>(),
        Criterion::SquaredError => {
            let mean = stats[1] / w;
            (stats[2] / w - mean * mean).max(0.0)
        }
    }
}

/// A child's contribution to the split score: minus its weighted impurity, up to a constant shared by all
/// splits of the node (larger is better).
#[inline]
fn proxy(criterion: Criterion, stats: &[f64]) -> f64 {
    let w = stats[0];
    if w <= 0.0 {
        return 0.0;
    }
    match criterion {
        Criterion::Gini => stats[1..].iter().map(|c| c * c).sum::<f64>() / w,
        Criterion::Entropy => {
            stats[1..]
                .iter()
                .filter(|&&c| c > 0.0)
                .map(|c| c * c.ln())
                .sum::<f64>()
                - w * w.ln()
        }
        Criterion::SquaredError => stats[1] * stats[1] / w,
    }
}

/// Score of the split whose left child is `left` (the right child is `total - left`); uses `right` as scratch.
#[inline]
pub(super) fn score(criterion: Criterion, total: &[f64], left: &[f64], right: &mut [f64]) -> f64 {
    for ((r, t), l) in right.iter_mut().zip(total).zip(left) {
        *r = t - l;
    }
    proxy(criterion, left) + proxy(criterion, right)
}

/// A threshold between consecutive distinct values `a < b` that keeps `a` left and `b` right, finite.
fn midpoint(a: f64, b: f64) -> f64 {
    let mut t = a / 2.0 + b / 2.0;
    if !(t >= a && t < b) {
        t = a;
    }
    if t.is_finite() {
        t
    } else if t < 0.0 {
        f64::MIN
    } else {
        f64::MAX
    }
}

/// The best split of `rows` (whose statistics are in `s.total`), or `None` when no feature can split them.
fn best_split(
    problem: &Problem,
    growth: &Growth,
    weights: &[f64],
    rows: &[u32],
    s: &mut Scratch,
    rng: &mut impl Rng,
) -> Option<Best> {
    let crit = growth.criterion;
    let msl = growth.min_samples_leaf;
    let n_features = s.features.len();
    let mut best: Option<Best> = None;
    let (mut drawn, mut visited) = (0, 0);
    while drawn < n_features && visited < growth.max_features {
        let pick = rng.random_range(drawn..n_features);
        s.features.swap(drawn, pick);
        let f = s.features[drawn];
        drawn += 1;
        if let Some(k) = problem.categories[f] {
            if categorical::scan(problem, growth, weights, rows, s, (f, k), &mut best) {
                visited += 1;
            }
            continue;
        }
        let column = &problem.columns[f];
        s.pairs.clear();
        s.missing.fill(0.0);
        let mut n_miss = 0;
        for &r in rows {
            let x = column[r as usize];
            if x.is_nan() {
                add(&mut s.missing, problem.labels, r, weights[r as usize]);
                n_miss += 1;
            } else {
                s.pairs.push((x, r));
            }
        }
        let nn = s.pairs.len();
        if nn == 0 {
            continue;
        }
        s.pairs.sort_unstable_by(|a, b| a.0.total_cmp(&b.0));
        if s.pairs[nn - 1].0 <= s.pairs[0].0 + FEATURE_THRESHOLD && n_miss == 0 {
            continue;
        }
        visited += 1;
        let mut consider = |proxy: f64, threshold: f64, missing_left: bool| {
            if best.is_none_or(|b| proxy > b.proxy) {
                best = Some(Best {
                    feature: f,
                    categorical: false,
                    threshold,
                    missing_left,
                    node_has_missing: n_miss > 0,
                    proxy,
                });
            }
        };
        s.left.fill(0.0);
        for p in 1..nn {
            let (a, r) = s.pairs[p - 1];
            add(&mut s.left, problem.labels, r, weights[r as usize]);
            let b = s.pairs[p].0;
            if b <= a + FEATURE_THRESHOLD {
                continue;
            }
            // Missing values right.
            if p >= msl && nn - p + n_miss >= msl {
                consider(
                    score(crit, &s.total, &s.left, &mut s.right),
                    midpoint(a, b),
                    false,
                );
            }
            // Missing values left.
            if n_miss > 0 && p + n_miss >= msl && nn - p >= msl {
                for ((t, l), m) in s.tmp.iter_mut().zip(&s.left).zip(&s.missing) {
                    *t = l + m;
                }
                consider(
                    score(crit, &s.total, &s.tmp, &mut s.right),
                    midpoint(a, b),
                    true,
                );
            }
        }
        // Every present value left, the missing ones right.
        if n_miss > 0 && nn >= msl && n_miss >= msl {
            for ((t, tot), m) in s.tmp.iter_mut().zip(&s.total).zip(&s.missing) {
                *t = tot - m;
            }
            consider(score(crit, &s.total, &s.tmp, &mut s.right), f64::MAX, false);
        }
    }
    best.filter(|b| b.proxy.is_finite())
}

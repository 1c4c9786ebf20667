//! Category-set splits of categorical features. The node's rows are grouped by category; the categories are
//! ordered by their mean target (regression), their share of class 1 (two classes), or their share of the
//! node's most frequent class (more classes, a heuristic; the first two orders find the best set split exactly
//! when every value is a category code), and every prefix of that order is scored as the left set (also every suffix when some values are outside the
//! categories, since those always go right), with the missing rows tried on both sides.
//!
//! Values that are not a category code below the category count (negative, too large) always go right, as the
//! scorer sends every value outside the set; codes are truncated toward zero as the scorer does.

use super::cart::{add, score, Best, Growth, Labels, Problem, Scratch};

/// The category of `x` among `k`, as the scorer reads it (truncated toward zero), or `None`.
#[inline]
pub(super) fn code(x: f64, k: usize) -> Option<usize> {
    (x >= 0.0 && x < k as f64).then_some(x as usize)
}

/// Scores the set splits of feature `f` (with `k` categories) over `rows`, updating `best` (and
/// `s.best_cats`) when one is better. Returns whether the feature takes more than one value at the node.
pub(super) fn scan(
    problem: &Problem,
    growth: &Growth,
    weights: &[f64],
    rows: &[u32],
    s: &mut Scratch,
    (f, k): (usize, usize),
    best: &mut Option<Best>,
) -> bool {
    let m = s.total.len();
    let labels = problem.labels;
    let column = &problem.columns[f];
    s.present.clear();
    s.missing.fill(0.0);
    let (mut n_miss, mut n_other) = (0usize, 0usize);
    for &r in rows {
        let x = column[r as usize];
        let w = weights[r as usize];
        if x.is_nan() {
            add(&mut s.missing, labels, r, w);
            n_miss += 1;
        } else if let Some(c) = code(x, k) {
            if s.cat_rows[c] == 0 {
                s.present.push((0.0, c as u32));
            }
            s.cat_rows[c] += 1;
            add(&mut s.cat_stats[c * m..(c + 1) * m], labels, r, w);
        } else {
            n_other += 1;
        }
    }
    let groups = s.present.len() + usize::from(n_other > 0) + usize::from(n_miss > 0);
    let varies = groups >= 2;
    if varies && !s.present.is_empty() {
        // The sort key of each present category.
        let key_index = match labels {
            Labels::Values(_) => 1,
            Labels::Classes { k: 2, .. } => 2,
            Labels::Classes { .. } => {
                (1..m).fold(1, |b, i| if s.total[i] > s.total[b] { i } else { b })
            }
        };
        for p in s.present.iter_mut() {
            let c = p.1 as usize;
            let st = &s.cat_stats[c * m..(c + 1) * m];
            p.0 = st[key_index] / st[0];
        }
        s.present
            .sort_unstable_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        let (n, msl, crit) = (rows.len(), growth.min_samples_leaf, growth.criterion);
        // Values outside the categories always go right, so both ends of the order are tried as the left set.
        for pass in 0..1 + usize::from(n_other > 0) {
            if pass == 1 {
                s.present.reverse();
            }
            s.left.fill(0.0);
            let mut n_left = 0;
            for idx in 0..s.present.len() {
                let c = s.present[idx].1 as usize;
                for (l, v) in s.left.iter_mut().zip(&s.cat_stats[c * m..(c + 1) * m]) {
                    *l += v;
                }
                n_left += s.cat_rows[c];
                let mut candidates = [None, None];
                if n_left >= msl && n - n_left >= msl {
                    candidates[0] = Some((score(crit, &s.total, &s.left, &mut s.right), false));
                }
                if n_miss > 0 && n_left + n_miss >= msl && n - n_left - n_miss >= msl {
                    for ((t, l), mv) in s.tmp.iter_mut().zip(&s.left).zip(&s.missing) {
                        *t = l + mv;
                    }
                    candidates[1] = Some((score(crit, &s.total, &s.tmp, &mut s.right), true));
                }
                for (proxy, missing_left) in candidates.into_iter().flatten() {
                    if best.is_none_or(|b| proxy > b.proxy) {
                        *best = Some(Best {
                            feature: f,
                            categorical: true,
                            threshold: 0.0,
                            missing_left,
                            node_has_missing: n_miss > 0,
                            proxy,
                        });
                        s.best_cats.clear();
                        s.best_cats.extend(s.present[..=idx].iter().map(|p| p.1));
                    }
                }
            }
        }
    }
    for &(_, c) in &s.present {
        let c = c as usize;
        s.cat_rows[c] = 0;
        s.cat_stats[c * m..(c + 1) * m].fill(0.0);
    }
    varies
}

//! Finding a leaf's best split of one feature from its histogram, with LightGBM's gain: for a side with
//! gradient sum G and hessian sum H, `T(G)^2 / (H + lambda_l2)` where `T` soft-thresholds by `lambda_l1`;
//! the split's gain is the children's minus the parent's, and must exceed `min_gain_to_split`.
//!
//! Numeric features scan the bins in order twice, with the missing bin on the right and then on the left, so
//! the split learns where missing values go. Categorical features with few categories try each category
//! against the rest; others sort categories by `G / (H + cat_smooth)` and try prefixes of that order from both
//! ends (at most `max_cat_threshold` categories on the left).

use super::binning::FeatureBins;
use super::histogram::HistBin;

/// Sums over a set of rows.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Stats {
    pub g: f64,
    pub h: f64,
    pub n: u64,
}

impl Stats {
    fn add(mut self, b: &HistBin) -> Stats {
        self.g += b.g;
        self.h += b.h;
        self.n += b.n;
        self
    }

    fn minus(self, o: Stats) -> Stats {
        Stats {
            g: self.g - o.g,
            h: self.h - o.h,
            n: self.n - o.n,
        }
    }
}

/// The regularisation and limits of split finding.
#[derive(Debug, Clone, Copy)]
pub struct SplitConfig {
    pub lambda_l1: f64,
    pub lambda_l2: f64,
    pub min_data_in_leaf: u64,
    pub min_sum_hessian_in_leaf: f64,
    pub min_gain_to_split: f64,
    pub max_cat_to_onehot: usize,
    pub max_cat_threshold: usize,
    pub cat_smooth: f64,
}

impl SplitConfig {
    fn soft(&self, g: f64) -> f64 {
        g.signum() * (g.abs() - self.lambda_l1).max(0.0)
    }

    /// The optimal leaf value (before shrinkage); 0 when the hessian sum is not positive.
    pub fn leaf_output(&self, s: Stats) -> f64 {
        let d = s.h + self.lambda_l2;
        if d > 0.0 && d.is_finite() {
            -self.soft(s.g) / d
        } else {
            0.0
        }
    }

    fn leaf_gain(&self, s: Stats) -> f64 {
        let d = s.h + self.lambda_l2;
        if d > 0.0 && d.is_finite() {
            let t = if self.lambda_l1 > 0.0 {
                self.soft(s.g)
            } else {
                s.g
            };
            t * t / d
        } else {
            0.0
        }
    }

    fn allowed(&self, s: &Stats) -> bool {
        s.n >= self.min_data_in_leaf && s.h >= self.min_sum_hessian_in_leaf
    }
}

/// The best split of one feature in one leaf.
#[derive(Debug, Clone, PartialEq)]
pub struct Split {
    pub feature: usize,
    /// Gain over the parent, less `min_gain_to_split` (positive).
    pub gain: f64,
    pub left: Stats,
    pub right: Stats,
    pub missing_left: bool,
    /// Numeric: value bins `<= threshold_bin` go left.
    pub threshold_bin: usize,
    /// Categorical: the category bins that go left, ascending (empty for numeric splits).
    pub cat_bins: Vec<u8>,
}

impl Split {
    /// Per bin of the feature, whether rows in it go left.
    pub fn left_table(&self, fb: &FeatureBins) -> [bool; 256] {
        let mut t = [false; 256];
        if fb.is_categorical() {
            for &b in &self.cat_bins {
                t[b as usize] = true;
            }
        } else {
            t[..=self.threshold_bin].fill(true);
        }
        t[fb.missing_bin()] = self.missing_left;
        t
    }
}

/// The best candidate so far: gain, left sums, missing side and a description of the left set.
struct Best {
    gain: f64,
    left: Stats,
    missing_left: bool,
    /// Numeric: threshold bin. Categorical: number of categories in the left prefix of `order`.
    at: usize,
    /// Categorical: whether `order` is reversed.
    reversed: bool,
}

/// The best split of feature `feature` (bins `fb`, histogram slice `hist`) of a leaf with sums `parent`, if
/// any split satisfies the limits and gains more than `min_gain_to_split`.
pub fn best_split(
    feature: usize,
    fb: &FeatureBins,
    hist: &[HistBin],
    parent: Stats,
    cfg: &SplitConfig,
) -> Option<Split> {
    let shift = cfg.leaf_gain(parent) + cfg.min_gain_to_split;
    let miss = hist[fb.missing_bin()];
    let mut best: Option<Best> = None;
    let mut consider = |left: Stats, missing_left: bool, at: usize, reversed: bool| {
        let right = parent.minus(left);
        if !cfg.allowed(&left) || !cfg.allowed(&right) {
            return;
        }
        let gain = cfg.leaf_gain(left) + cfg.leaf_gain(right);
        if gain > shift && best.as_ref().is_none_or(|b| gain > b.gain) {
            // Without missing rows here, missing values follow the larger side.
            let missing_left = if miss.n == 0 {
                left.n >= right.n
            } else {
                missing_left
            };
            best = Some(Best {
                gain,
                left,
                missing_left,
                at,
                reversed,
            });
        }
    };
    let nv = fb.n_value_bins();
    let mut order: Vec<usize> = Vec::new();
    if !fb.is_categorical() {
        let mut left = Stats::default();
        for (t, b) in hist[..nv].iter().enumerate() {
            if b.n > 0 {
                left = left.add(b);
                consider(left, false, t, false);
            }
        }
        if miss.n > 0 {
            let mut left = Stats::default().add(&miss);
            for (t, b) in hist[..nv - 1].iter().enumerate() {
                if b.n > 0 {
                    left = left.add(b);
                    consider(left, true, t, false);
                }
            }
        }
    } else {
        order = (0..nv).filter(|&c| hist[c].n > 0).collect();
        let missing_sides: &[bool] = if miss.n > 0 { &[false, true] } else { &[false] };
        if order.len() <= cfg.max_cat_to_onehot {
            for (i, &c) in order.iter().enumerate() {
                for &ml in missing_sides {
                    let base = if ml {
                        Stats::default().add(&miss)
                    } else {
                        Stats::default()
                    };
                    // One category: encoded as `at = i + 1` over a one-element window below.
                    consider(base.add(&hist[c]), ml, i + 1, false);
                }
            }
        } else {
            let ratio = |c: usize| hist[c].g / (hist[c].h + cfg.cat_smooth);
            order.sort_by(|&a, &b| ratio(a).total_cmp(&ratio(b)).then(a.cmp(&b)));
            let max_left = cfg.max_cat_threshold.min(order.len() - 1);
            for reversed in [false, true] {
                for &ml in missing_sides {
                    let mut left = if ml {
                        Stats::default().add(&miss)
                    } else {
                        Stats::default()
                    };
                    for i in 0..max_left {
                        let c = if reversed {
                            order[order.len() - 1 - i]
                        } else {
                            order[i]
                        };
                        left = left.add(&hist[c]);
                        consider(left, ml, i + 1, reversed);
                    }
                }
            }
        }
    }
    let b = best?;
    let cat_bins = if !fb.is_categorical() {
        Vec::new()
    } else if order.len() <= cfg.max_cat_to_onehot {
        vec![order[b.at - 1] as u8]
    } else {
        let mut set: Vec<u8> = if b.reversed {
            order.iter().rev().take(b.at).map(|&c| c as u8).collect()
        } else {
            order.iter().take(b.at).map(|&c| c as u8).collect()
        };
        set.sort_unstable();
        set
    };
    Some(Split {
        feature,
        gain: b.gain - shift,
        left: b.left,
        right: parent.minus(b.left),
        missing_left: b.missing_left,
        threshold_bin: if fb.is_categorical() { 0 } else { b.at },
        cat_bins,
    })
}

#[cfg(test)]
mod tests {
    use super::super::binning::Binned;
    use super::*;

    fn cfg() -> SplitConfig {
        SplitConfig {
            lambda_l1: 0.0,
            lambda_l2: 0.0,
            min_data_in_leaf: 1,
            min_sum_hessian_in_leaf: 0.0,
            min_gain_to_split: 0.0,
            max_cat_to_onehot: 4,
            max_cat_threshold: 32,
            cat_smooth: 10.0,
        }
    }

    fn hist_of(data: &Binned, j: usize, g: &[f64]) -> (Vec<HistBin>, Stats) {
        let mut h = vec![HistBin::default(); data.features[j].n_bins];
        let mut s = Stats::default();
        for (i, &b) in data.columns[j].iter().enumerate() {
            let e = &mut h[b as usize];
            e.g += g[i];
            e.h += 1.0;
            e.n += 1;
            s = s.add(&HistBin {
                g: g[i],
                h: 1.0,
                n: 1,
            });
        }
        (h, s)
    }

    #[test]
    fn numeric_split_learns_missing_side() {
        // Low values and missing ones have negative gradients.
        let cols = vec![vec![1.0, 2.0, 3.0, 4.0, f64::NAN, f64::NAN]];
        let data = Binned::new(&cols, &[false], 255);
        let g = [-1.0, -1.0, 1.0, 1.0, -1.0, -1.0];
        let (h, s) = hist_of(&data, 0, &g);
        let sp = best_split(0, &data.features[0], &h, s, &cfg()).unwrap();
        assert_eq!(sp.threshold_bin, 1);
        assert!(sp.missing_left);
        assert_eq!(sp.left.n, 4);
        assert!((sp.gain - (16.0 / 4.0 + 4.0 / 2.0 - 4.0 / 6.0)).abs() < 1e-12);
        let mut c = cfg();
        c.min_data_in_leaf = 4;
        assert!(best_split(0, &data.features[0], &h, s, &c).is_none());
    }

    #[test]
    fn categorical_split_groups_categories() {
        // Codes 0..6; codes 1, 3 and 5 have negative gradients.
        let codes: Vec<f64> = (0..60).map(|i| (i % 6) as f64).collect();
        let g: Vec<f64> = codes
            .iter()
            .map(|c| if *c as u32 % 2 == 1 { -1.0 } else { 1.0 })
            .collect();
        let data = Binned::new(&[codes], &[true], 255);
        let (h, s) = hist_of(&data, 0, &g);
        let sp = best_split(0, &data.features[0], &h, s, &cfg()).unwrap();
        let BinMap::Categorical { codes, .. } = &data.features[0].map else {
            panic!()
        };
        let mut left: Vec<u32> = sp.cat_bins.iter().map(|&b| codes[b as usize]).collect();
        left.sort_unstable();
        assert!(left == vec![1, 3, 5] || left == vec![0, 2, 4], "{left:?}");
        assert_eq!(sp.left.n, 30);
    }

    use super::super::binning::BinMap;
}

//! Discretises each feature into at most `max_bin` bins (u8 indices, column-major), as LightGBM does before
//! training: numeric features get quantile bins whose boundaries are real values half-way between neighbouring
//! distinct training values, so a split "bin <= b" is exactly "x <= upper[b]" on raw values; categorical
//! features get one bin per frequent category code. Every feature has a last bin for missing values (NaN), so
//! splits can learn which side missing values go to.
//!
//! Categorical layout: bins `0..k` are the `k` most frequent codes, bin `k` ("other") holds rarer codes and
//! values that are not valid codes (negative, fractional parts are truncated as the scorer does, too large);
//! the "other" bin always goes right, as unseen categories do at scoring.

use std::collections::HashMap;

use rayon::prelude::*;

/// Histogram slots per feature (every possible u8 bin).
pub const HIST_SLOTS: usize = 256;

/// Largest category code the scorer accepts.
const MAX_CODE: f64 = (1u32 << 24) as f64;

/// How one feature's values map to bins.
#[derive(Debug, Clone, PartialEq)]
pub enum BinMap {
    /// `upper[b]` is the largest value in bin `b`; the last is `f64::MAX` (so `+inf` is binned with the
    /// largest values but would go right of a split at `f64::MAX`, the only place binning and raw values can
    /// disagree).
    Numeric { upper: Vec<f64> },
    /// `codes[b]` is the category of bin `b`; bin `codes.len()` is "other".
    Categorical {
        codes: Vec<u32>,
        index: HashMap<u32, u8>,
    },
}

/// The bins of one feature.
#[derive(Debug, Clone, PartialEq)]
pub struct FeatureBins {
    pub map: BinMap,
    /// Bins in use, the missing bin included; the missing bin is `n_bins - 1`.
    pub n_bins: usize,
}

impl FeatureBins {
    pub fn missing_bin(&self) -> usize {
        self.n_bins - 1
    }

    pub fn is_categorical(&self) -> bool {
        matches!(self.map, BinMap::Categorical { .. })
    }

    /// Bins of values (numeric: value bins; categorical: category bins, "other" excluded).
    pub fn n_value_bins(&self) -> usize {
        match &self.map {
            BinMap::Numeric { upper } => upper.len(),
            BinMap::Categorical { codes, .. } => codes.len(),
        }
    }

    /// The bin of a raw value.
    pub fn bin(&self, x: f64) -> u8 {
        if x.is_nan() {
            return self.missing_bin() as u8;
        }
        match &self.map {
            BinMap::Numeric { upper } => {
                let b = upper.partition_point(|u| x > *u);
                b.min(upper.len() - 1) as u8
            }
            BinMap::Categorical { codes, index } => {
                let other = codes.len() as u8;
                if (0.0..MAX_CODE).contains(&x) {
                    index.get(&(x as u32)).copied().unwrap_or(other)
                } else {
                    other
                }
            }
        }
    }

    fn numeric(values: &[f64], max_bin: usize) -> Self {
        let mut v: Vec<f64> = values.iter().copied().filter(|x| !x.is_nan()).collect();
        v.sort_unstable_by(|a, b| a.total_cmp(b));
        // Distinct values and their counts.
        let mut distinct: Vec<(f64, usize)> = Vec::new();
        for x in v {
            match distinct.last_mut() {
                Some((d, c)) if *d == x => *c += 1,
                _ => distinct.push((x, 1)),
            }
        }
        let max_value_bins = max_bin - 1;
        let mut upper = Vec::new();
        if distinct.len() <= max_value_bins {
            for w in distinct.windows(2) {
                upper.push(midpoint(w[0].0, w[1].0));
            }
        } else {
            // Greedy quantiles: close a bin once it holds its share of the remaining values.
            let mut remaining: usize = distinct.iter().map(|d| d.1).sum();
            let mut in_bin = 0usize;
            for (i, &(x, c)) in distinct.iter().enumerate() {
                in_bin += c;
                remaining -= c;
                let bins_left = max_value_bins - upper.len();
                if i + 1 == distinct.len() || bins_left <= 1 {
                    continue;
                }
                let share = (in_bin + remaining) as f64 / bins_left as f64;
                let distinct_left = distinct.len() - i - 1;
                if in_bin as f64 >= share || distinct_left < bins_left {
                    upper.push(midpoint(x, distinct[i + 1].0));
                    in_bin = 0;
                }
            }
        }
        upper.push(f64::MAX);
        let n_bins = upper.len() + 1;
        FeatureBins {
            map: BinMap::Numeric { upper },
            n_bins,
        }
    }

    fn categorical(values: &[f64], max_bin: usize) -> Self {
        let mut counts: HashMap<u32, usize> = HashMap::new();
        for &x in values {
            if (0.0..MAX_CODE).contains(&x) {
                *counts.entry(x as u32).or_default() += 1;
            }
        }
        let mut by_count: Vec<(u32, usize)> = counts.into_iter().collect();
        by_count.sort_unstable_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        by_count.truncate(max_bin - 2);
        let codes: Vec<u32> = by_count.iter().map(|c| c.0).collect();
        let index = codes
            .iter()
            .enumerate()
            .map(|(b, &c)| (c, b as u8))
            .collect();
        let n_bins = codes.len() + 2;
        FeatureBins {
            map: BinMap::Categorical { codes, index },
            n_bins,
        }
    }
}

/// A value in `[a, b)` half-way between `a < b` (or `a` when they are adjacent doubles).
fn midpoint(a: f64, b: f64) -> f64 {
    let m = a * 0.5 + b * 0.5;
    if m >= a && m < b {
        m
    } else {
        a
    }
}

/// The training set as bins.
#[derive(Debug, Clone)]
pub struct Binned {
    pub features: Vec<FeatureBins>,
    /// `columns[j][i]`: bin of feature `j` in row `i`.
    pub columns: Vec<Vec<u8>>,
    /// Where each feature's bins start in a leaf histogram (`j * HIST_SLOTS`).
    pub offsets: Vec<usize>,
    /// Histogram length: `HIST_SLOTS` per feature.
    pub total_bins: usize,
}

impl Binned {
    /// Bins `columns` (`categorical[j]` says how feature `j` is treated). Parallel over features.
    pub fn new(columns: &[Vec<f64>], categorical: &[bool], max_bin: usize) -> Self {
        let (features, columns): (Vec<FeatureBins>, Vec<Vec<u8>>) = columns
            .par_iter()
            .zip(categorical)
            .map(|(col, &cat)| {
                let fb = if cat {
                    FeatureBins::categorical(col, max_bin)
                } else {
                    FeatureBins::numeric(col, max_bin)
                };
                let bins = col.iter().map(|&x| fb.bin(x)).collect();
                (fb, bins)
            })
            .unzip();
        // Every feature gets 256 histogram slots, so a u8 bin indexes its slice without bounds checks.
        let offsets: Vec<usize> = (0..features.len()).map(|j| j * HIST_SLOTS).collect();
        let total_bins = features.len() * HIST_SLOTS;
        Binned {
            features,
            columns,
            offsets,
            total_bins,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numeric_bins_agree_with_raw_thresholds() {
        let col: Vec<f64> = (0..1000)
            .map(|i| ((i * 7919) % 1000) as f64 / 10.0)
            .chain([f64::NAN, -5.0, 1e300, -1e300])
            .collect();
        let b = Binned::new(std::slice::from_ref(&col), &[false], 16);
        let f = &b.features[0];
        assert_eq!(f.n_bins, 16);
        let BinMap::Numeric { upper } = &f.map else {
            panic!()
        };
        for (i, &x) in col.iter().enumerate() {
            let bin = b.columns[0][i] as usize;
            if x.is_nan() {
                assert_eq!(bin, f.missing_bin());
                continue;
            }
            for (t, &u) in upper.iter().enumerate() {
                assert_eq!(bin <= t, x <= u, "x {x} bin {bin} threshold {u}");
            }
        }
        // Roughly equal counts.
        let mut counts = vec![0; 16];
        for &bin in &b.columns[0] {
            counts[bin as usize] += 1;
        }
        assert!(
            counts[..15].iter().all(|&c| c > 30 && c < 110),
            "{counts:?}"
        );
    }

    #[test]
    fn few_values_constant_and_all_missing() {
        let cols = vec![
            vec![1.0, 2.0, 2.0, 3.0],
            vec![5.0; 4],
            vec![f64::NAN; 4],
            vec![0.0, 1.0, 7.0, -1.0],
        ];
        let b = Binned::new(&cols, &[false, false, false, true], 255);
        assert_eq!(b.columns[0], vec![0, 1, 1, 2]);
        assert_eq!(b.columns[1], vec![0; 4]);
        assert_eq!(b.columns[2], vec![1; 4]);
        assert_eq!(b.features[3].n_bins, 5);
        // -1 is not a code: the "other" bin.
        assert_eq!(b.columns[3], vec![0, 1, 2, 3]);
        assert_eq!(b.offsets, vec![0, 256, 512, 768]);
    }
}

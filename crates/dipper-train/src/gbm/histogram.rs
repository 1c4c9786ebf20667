//! Gradient/hessian histograms of a leaf: per feature and bin, the sums of the gradients, hessians and the row
//! count. Built in parallel over features (each feature's sums run over rows in order, so results do not
//! depend on the thread count); a sibling's histogram is the parent's minus the other child's.

use rayon::prelude::*;

use super::binning::{Binned, HIST_SLOTS};

/// One bin's sums.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct HistBin {
    pub g: f64,
    pub h: f64,
    pub n: u64,
}

/// Below this many row-features a histogram is built on the calling thread.
const PARALLEL_MIN_WORK: usize = 16 * 1024;

/// Splits a leaf histogram into its per-feature slices.
fn feature_slices(hist: &mut [HistBin]) -> Vec<&mut [HistBin; HIST_SLOTS]> {
    hist.chunks_exact_mut(HIST_SLOTS)
        .map(|c| c.try_into().expect("chunks are HIST_SLOTS long"))
        .collect()
}

/// Fills the slices of the `active` features of `hist` with the sums over `rows`. `ordered[k]` is the
/// (gradient, hessian) of row `rows[k]`; `all_rows` says `rows` is `0..n` (then bins are read in sequence).
pub fn build(
    hist: &mut [HistBin],
    data: &Binned,
    active: &[bool],
    rows: &[u32],
    ordered: &[[f32; 2]],
    all_rows: bool,
) {
    debug_assert_eq!(rows.len(), ordered.len());
    let slices = feature_slices(hist);
    let fill = |(j, h): (usize, &mut [HistBin; HIST_SLOTS])| {
        if !active[j] {
            return;
        }
        h[..data.features[j].n_bins].fill(HistBin::default());
        let col = &data.columns[j];
        if all_rows {
            for (&b, gh) in col.iter().zip(ordered) {
                let e = &mut h[b as usize];
                e.g += gh[0] as f64;
                e.h += gh[1] as f64;
                e.n += 1;
            }
        } else {
            for (&r, gh) in rows.iter().zip(ordered) {
                let e = &mut h[col[r as usize] as usize];
                e.g += gh[0] as f64;
                e.h += gh[1] as f64;
                e.n += 1;
            }
        }
    };
    let n_active = active.iter().filter(|a| **a).count();
    if rows.len() * n_active < PARALLEL_MIN_WORK {
        slices.into_iter().enumerate().for_each(fill);
    } else {
        slices.into_par_iter().enumerate().for_each(fill);
    }
}

/// `parent -= child`, leaving the sibling's histogram in `parent` (active features only).
pub fn subtract(parent: &mut [HistBin], child: &[HistBin], data: &Binned, active: &[bool]) {
    for (j, f) in data.features.iter().enumerate() {
        if !active[j] {
            continue;
        }
        let range = data.offsets[j]..data.offsets[j] + f.n_bins;
        // (Slots past `n_bins` are never filled or read.)
        for (p, c) in parent[range.clone()].iter_mut().zip(&child[range]) {
            p.g -= c.g;
            p.h -= c.h;
            p.n -= c.n;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn build_and_subtract() {
        let cols = vec![vec![0.0, 1.0, 1.0, f64::NAN], vec![3.0, 3.0, 4.0, 4.0]];
        let data = Binned::new(&cols, &[false, false], 255);
        let grads = [[1.0f32, 1.0], [2.0, 1.0], [3.0, 1.0], [4.0, 2.0]];
        let active = [true, true];
        let mut all = vec![HistBin::default(); data.total_bins];
        build(&mut all, &data, &active, &[0, 1, 2, 3], &grads, true);
        assert_eq!(
            all[..3],
            [
                HistBin {
                    g: 1.0,
                    h: 1.0,
                    n: 1
                },
                HistBin {
                    g: 5.0,
                    h: 2.0,
                    n: 2
                },
                HistBin {
                    g: 4.0,
                    h: 2.0,
                    n: 1
                }
            ]
        );
        let mut part = vec![HistBin::default(); data.total_bins];
        build(
            &mut part,
            &data,
            &active,
            &[1, 3],
            &[grads[1], grads[3]],
            false,
        );
        subtract(&mut all, &part, &data, &active);
        let mut rest = vec![HistBin::default(); data.total_bins];
        build(
            &mut rest,
            &data,
            &active,
            &[0, 2],
            &[grads[0], grads[2]],
            false,
        );
        assert_eq!(all, rest);
    }
}

//! Lock-free metric primitives: [`Counter`], [`Gauge`] and [`Histogram`].
//!
//! Every update is a handful of relaxed atomic operations on `&self`, with no
//! lock and no allocation, so the stream runtime can record per record from
//! many threads through a shared `Arc`.
//!
//! The histogram keeps fine log-linear buckets (20 per decade from 1 µs to
//! 100 s, plus an underflow and an overflow bucket) for accurate quantiles,
//! and derives the coarse Prometheus bucket set ([`PROMETHEUS_BOUNDS`]) from
//! them. Every coarse bound is exactly one of the fine edges, so the
//! exposition's cumulative counts are exact, not interpolated.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

/// A monotonically increasing `u64` count.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    /// A counter at zero.
    pub const fn new() -> Self {
        Self(AtomicU64::new(0))
    }

    /// Adds one.
    #[inline]
    pub fn inc(&self) {
        self.0.fetch_add(1, Relaxed);
    }

    /// Adds `n`.
    #[inline]
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Relaxed);
    }

    /// The current value.
    #[inline]
    pub fn get(&self) -> u64 {
        self.0.load(Relaxed)
    }
}

/// An `f64` value that can go up and down, stored as the bits of an
/// `AtomicU64`.
#[derive(Debug, Default)]
pub struct Gauge(AtomicU64);

impl Gauge {
    /// A gauge at `0.0`.
    pub const fn new() -> Self {
        Self(AtomicU64::new(0))
    }

    /// Replaces the value.
    #[inline]
    pub fn set(&self, value: f64) {
        self.0.store(value.to_bits(), Relaxed);
    }

    /// Adds `delta` (negative to subtract) with a compare-and-swap loop, so
    /// concurrent adds are never lost.
    #[inline]
    pub fn add(&self, delta: f64) {
        let _ = self.0.fetch_update(Relaxed, Relaxed, |bits| {
            Some((f64::from_bits(bits) + delta).to_bits())
        });
    }

    /// The current value.
    #[inline]
    pub fn get(&self) -> f64 {
        f64::from_bits(self.0.load(Relaxed))
    }
}

/// Fine bucket edges per decade, as mantissas × 100. Close to geometric
/// (ratio ≤ 1.143 between neighbours) and containing 1, 2.5 and 5 so the
/// Prometheus bounds are exact edges.
const MANTISSAS: [u32; PER_DECADE] = [
    100, 110, 125, 140, 160, 180, 200, 225, 250, 280, 320, 350, 400, 450, 500, 560, 630, 710, 800,
    900,
];
const PER_DECADE: usize = 20;
/// Decades covered: 1 µs .. 100 s.
const DECADES: usize = 8;
/// Number of fine edges: `FINE_EDGES[0]` = 1 µs, `FINE_EDGES[160]` = 100 s.
const EDGE_COUNT: usize = DECADES * PER_DECADE + 1;
/// Number of fine buckets: bucket `i < EDGE_COUNT` holds values in
/// `(FINE_EDGES[i-1], FINE_EDGES[i]]` (bucket 0 holds `[0, 1 µs]`); the last
/// bucket holds everything above 100 s.
pub const BUCKET_COUNT: usize = EDGE_COUNT + 1;
const OVERFLOW: usize = BUCKET_COUNT - 1;

/// The fine bucket upper edges in seconds, ascending. Each is the correctly
/// rounded `f64` of its decimal value (an exact integer divided by an exact
/// power of ten), so `0.0025` here is bit-identical to the literal `0.0025`.
pub static FINE_EDGES: [f64; EDGE_COUNT] = build_edges();

const fn pow10(n: usize) -> f64 {
    let mut p = 1.0;
    let mut i = 0;
    while i < n {
        p *= 10.0;
        i += 1;
    }
    p
}

const fn build_edges() -> [f64; EDGE_COUNT] {
    let mut edges = [0.0; EDGE_COUNT];
    let mut d = 0;
    while d < DECADES {
        let mut j = 0;
        while j < PER_DECADE {
            // mantissa/100 × 10^(d-6) = mantissa / 10^(8-d).
            edges[d * PER_DECADE + j] = MANTISSAS[j] as f64 / pow10(DECADES - d);
            j += 1;
        }
        d += 1;
    }
    edges[EDGE_COUNT - 1] = 100.0;
    edges
}

/// The coarse upper bounds (seconds) used in the Prometheus exposition,
/// before the implicit `+Inf`.
pub const PROMETHEUS_BOUNDS: [f64; 19] = [
    0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
    0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Index into [`FINE_EDGES`] of each [`PROMETHEUS_BOUNDS`] entry; fails to
/// compile if a bound is not exactly a fine edge.
const PROMETHEUS_EDGE_INDEX: [usize; PROMETHEUS_BOUNDS.len()] = {
    let edges = build_edges();
    let mut out = [0; PROMETHEUS_BOUNDS.len()];
    let mut b = 0;
    while b < PROMETHEUS_BOUNDS.len() {
        let mut i = 0;
        while edges[i] != PROMETHEUS_BOUNDS[b] {
            i += 1;
            assert!(i < EDGE_COUNT, "Prometheus bound is not a fine edge");
        }
        out[b] = i;
        b += 1;
    }
    out
};

/// The fine bucket a finite, non-negative value falls in: the smallest `i`
/// with `v <= FINE_EDGES[i]`, or [`OVERFLOW`].
#[inline]
fn bucket_index(v: f64) -> usize {
    if v <= FINE_EDGES[0] {
        return 0;
    }
    if v > FINE_EDGES[EDGE_COUNT - 1] {
        return OVERFLOW;
    }
    // The edges are close to 10^(i/20), so this guess is off by at most one;
    // the two loops make it exact against the edge table.
    let guess = ((v.log10() + 6.0) * PER_DECADE as f64) as usize;
    let mut i = guess.clamp(1, EDGE_COUNT - 1);
    while v > FINE_EDGES[i] {
        i += 1;
    }
    while v <= FINE_EDGES[i - 1] {
        i -= 1;
    }
    i
}

/// The `(lower, upper)` bounds in seconds of fine bucket `i`; the overflow
/// bucket's upper bound is `+inf`.
pub fn bucket_bounds(i: usize) -> (f64, f64) {
    match i {
        0 => (0.0, FINE_EDGES[0]),
        OVERFLOW => (FINE_EDGES[EDGE_COUNT - 1], f64::INFINITY),
        _ => (FINE_EDGES[i - 1], FINE_EDGES[i]),
    }
}

/// A latency distribution in seconds.
///
/// NaN, negative and infinite observations are ignored: they are counted
/// nowhere and do not touch the sum.
#[derive(Debug)]
pub struct Histogram {
    buckets: [AtomicU64; BUCKET_COUNT],
    sum_bits: AtomicU64,
}

impl Default for Histogram {
    fn default() -> Self {
        Self::new()
    }
}

impl Histogram {
    /// An empty histogram.
    pub const fn new() -> Self {
        Self {
            buckets: [const { AtomicU64::new(0) }; BUCKET_COUNT],
            sum_bits: AtomicU64::new(0),
        }
    }

    /// Records one value in seconds. Lock- and allocation-free: one
    /// `fetch_add` on the bucket and a compare-and-swap loop on the sum.
    #[inline]
    pub fn observe(&self, seconds: f64) {
        if !seconds.is_finite() || seconds < 0.0 {
            return;
        }
        self.buckets[bucket_index(seconds)].fetch_add(1, Relaxed);
        let _ = self.sum_bits.fetch_update(Relaxed, Relaxed, |bits| {
            Some((f64::from_bits(bits) + seconds).to_bits())
        });
    }

    /// Records a [`Duration`].
    #[inline]
    pub fn observe_duration(&self, elapsed: Duration) {
        self.observe(elapsed.as_secs_f64());
    }

    /// Records the time elapsed since `start`.
    #[inline]
    pub fn observe_since(&self, start: Instant) {
        self.observe_duration(start.elapsed());
    }

    /// Number of observations so far.
    pub fn count(&self) -> u64 {
        self.buckets.iter().map(|b| b.load(Relaxed)).sum()
    }

    /// Sum of all observations in seconds.
    pub fn sum(&self) -> f64 {
        f64::from_bits(self.sum_bits.load(Relaxed))
    }

    /// The `q`-quantile (`q` clamped to `[0, 1]`) over everything observed,
    /// interpolated linearly within its fine bucket; `None` when empty or
    /// `q` is NaN. See [`HistogramSnapshot::quantile`].
    pub fn quantile(&self, q: f64) -> Option<f64> {
        self.snapshot().quantile(q)
    }

    /// Copies the current counts and sum. Buckets are read one by one, so a
    /// snapshot taken during concurrent updates may miss some in-progress
    /// observations, but its count always equals the sum of its buckets.
    pub fn snapshot(&self) -> HistogramSnapshot {
        HistogramSnapshot {
            counts: std::array::from_fn(|i| self.buckets[i].load(Relaxed)),
            sum: self.sum(),
        }
    }

    /// What was observed since `previous` (an earlier snapshot of this
    /// histogram), e.g. for percentiles over the last dashboard interval.
    pub fn delta_since(&self, previous: &HistogramSnapshot) -> HistogramSnapshot {
        self.snapshot().delta_since(previous)
    }
}

/// A plain copy of a [`Histogram`]'s state.
///
/// `counts[i]` is the number of observations in fine bucket `i` (see
/// [`bucket_bounds`]); the last entry counts values above 100 s.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HistogramSnapshot {
    /// Per fine bucket counts (not cumulative).
    pub counts: [u64; BUCKET_COUNT],
    /// Sum of the observations in seconds.
    pub sum: f64,
}

impl Default for HistogramSnapshot {
    fn default() -> Self {
        Self {
            counts: [0; BUCKET_COUNT],
            sum: 0.0,
        }
    }
}

impl HistogramSnapshot {
    /// Number of observations.
    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// Mean in seconds, `None` when empty.
    pub fn mean(&self) -> Option<f64> {
        let n = self.count();
        (n > 0).then(|| self.sum / n as f64)
    }

    /// The observations made after `previous` was taken (bucket-wise
    /// difference, saturating at zero).
    pub fn delta_since(&self, previous: &HistogramSnapshot) -> HistogramSnapshot {
        HistogramSnapshot {
            counts: std::array::from_fn(|i| self.counts[i].saturating_sub(previous.counts[i])),
            sum: (self.sum - previous.sum).max(0.0),
        }
    }

    /// The `q`-quantile in seconds (`q` clamped to `[0, 1]`): finds the fine
    /// bucket holding rank `q × count` and interpolates linearly inside it,
    /// so the error is at most one fine bucket's width (≤ 14.3 % relative).
    /// Values in the overflow bucket are reported as 100 s. `None` when the
    /// snapshot is empty or `q` is NaN.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        if q.is_nan() {
            return None;
        }
        let total = self.count();
        if total == 0 {
            return None;
        }
        let rank = q.clamp(0.0, 1.0) * total as f64;
        let mut below = 0u64;
        let mut last = 0;
        for (i, &c) in self.counts.iter().enumerate() {
            if c == 0 {
                continue;
            }
            last = i;
            if (below + c) as f64 >= rank {
                let (lo, hi) = bucket_bounds(i);
                if i == OVERFLOW {
                    return Some(lo);
                }
                let frac = ((rank - below as f64) / c as f64).clamp(0.0, 1.0);
                return Some(lo + (hi - lo) * frac);
            }
            below += c;
        }
        // Only reachable through float rounding of `rank`: the top value.
        Some(bucket_bounds(last).1.min(FINE_EDGES[EDGE_COUNT - 1]))
    }

    /// Number of observations `<= le`, exact when `le` is a fine edge (every
    /// [`PROMETHEUS_BOUNDS`] entry is); otherwise counts whole fine buckets
    /// whose upper edge is `<= le`.
    pub fn cumulative_count(&self, le: f64) -> u64 {
        if le.is_nan() {
            return 0;
        }
        if le == f64::INFINITY {
            return self.count();
        }
        let upto = FINE_EDGES.partition_point(|&e| e <= le);
        self.counts[..upto].iter().sum()
    }

    /// Cumulative counts at each [`PROMETHEUS_BOUNDS`] entry followed by the
    /// `+Inf` bucket (== [`count`](Self::count)), as Prometheus exposes them.
    pub fn prometheus_buckets(&self) -> [(f64, u64); PROMETHEUS_BOUNDS.len() + 1] {
        let mut out = [(f64::INFINITY, 0); PROMETHEUS_BOUNDS.len() + 1];
        let mut cum = 0u64;
        let mut next = 0;
        for (b, &edge_idx) in PROMETHEUS_EDGE_INDEX.iter().enumerate() {
            cum += self.counts[next..=edge_idx].iter().sum::<u64>();
            next = edge_idx + 1;
            out[b] = (PROMETHEUS_BOUNDS[b], cum);
        }
        cum += self.counts[next..].iter().sum::<u64>();
        out[PROMETHEUS_BOUNDS.len()] = (f64::INFINITY, cum);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn reference_index(v: f64) -> usize {
        FINE_EDGES.partition_point(|&e| e < v)
    }

    #[test]
    fn edges_are_ascending_decimal_values() {
        assert!(FINE_EDGES.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(FINE_EDGES[0], 0.000001);
        assert_eq!(FINE_EDGES[EDGE_COUNT - 1], 100.0);
        for w in FINE_EDGES.windows(2) {
            assert!(w[1] / w[0] <= 1.143 + 1e-9, "{} -> {}", w[0], w[1]);
        }
        // Every edge is the correctly rounded value of its shortest decimal.
        for e in FINE_EDGES {
            assert_eq!(e.to_string().parse::<f64>().unwrap(), e);
        }
        for (b, &i) in PROMETHEUS_BOUNDS.iter().zip(PROMETHEUS_EDGE_INDEX.iter()) {
            assert_eq!(FINE_EDGES[i], *b);
        }
    }

    #[test]
    fn bucket_index_matches_binary_search() {
        let mut v = 1e-8;
        while v < 1e3 {
            assert_eq!(bucket_index(v), reference_index(v).min(OVERFLOW), "{v}");
            v *= 1.0007;
        }
        for &e in &FINE_EDGES {
            for x in [
                e,
                f64::from_bits(e.to_bits() - 1),
                f64::from_bits(e.to_bits() + 1),
            ] {
                assert_eq!(bucket_index(x), reference_index(x), "{x}");
            }
        }
        assert_eq!(bucket_index(0.0), 0);
        assert_eq!(bucket_index(f64::MIN_POSITIVE), 0);
        assert_eq!(bucket_index(1e300), OVERFLOW);
    }

    #[test]
    fn counter_and_gauge() {
        let c = Counter::new();
        c.inc();
        c.add(41);
        assert_eq!(c.get(), 42);
        let g = Gauge::new();
        assert_eq!(g.get(), 0.0);
        g.set(2.5);
        g.add(-1.0);
        assert_eq!(g.get(), 1.5);
    }

    #[test]
    fn concurrent_updates_are_exact() {
        let c = Arc::new(Counter::new());
        let g = Arc::new(Gauge::new());
        let h = Arc::new(Histogram::new());
        let threads: Vec<_> = (0..8)
            .map(|t| {
                let (c, g, h) = (c.clone(), g.clone(), h.clone());
                std::thread::spawn(move || {
                    for i in 0..10_000u64 {
                        c.inc();
                        g.add(1.0);
                        h.observe(((t * 10_000 + i) % 997 + 1) as f64 * 1e-6);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(c.get(), 80_000);
        assert_eq!(g.get(), 80_000.0);
        assert_eq!(h.count(), 80_000);
        let expected: f64 = (0..8u64)
            .flat_map(|t| (0..10_000u64).map(move |i| ((t * 10_000 + i) % 997 + 1) as f64 * 1e-6))
            .sum();
        assert!((h.sum() - expected).abs() < 1e-9 * expected.max(1.0));
    }

    /// Relative width of the fine bucket holding `v`.
    fn rel_width(v: f64) -> f64 {
        let (lo, hi) = bucket_bounds(bucket_index(v));
        (hi - lo) / hi
    }

    #[test]
    fn quantiles_of_uniform_microseconds() {
        let h = Histogram::new();
        for i in 1..=1000 {
            h.observe(i as f64 / 1e6);
        }
        for (q, want) in [(0.5, 500e-6), (0.9, 900e-6), (0.99, 990e-6), (0.1, 100e-6)] {
            let got = h.quantile(q).unwrap();
            assert!(
                (got - want).abs() / want <= rel_width(want),
                "q{q}: got {got}, want {want}"
            );
        }
        let p50 = h.quantile(0.5).unwrap();
        assert!((p50 - 500e-6).abs() < 1e-9, "{p50}");
        assert!(h.quantile(0.0).unwrap() <= 1e-6);
        assert!((h.quantile(1.0).unwrap() - 1e-3).abs() < 1e-12);
        assert!((h.sum() - 0.5005).abs() < 1e-9);
    }

    #[test]
    fn quantiles_of_log_uniform_distribution() {
        // Log-uniform from 10 µs to 10 s: quantile q is 10^(-5 + 6q).
        let h = Histogram::new();
        let n = 60_000;
        for i in 0..n {
            h.observe(10f64.powf(-5.0 + 6.0 * (i as f64 + 0.5) / n as f64));
        }
        for q in [0.01, 0.25, 0.5, 0.75, 0.95, 0.999] {
            let want = 10f64.powf(-5.0 + 6.0 * q);
            let got = h.quantile(q).unwrap();
            assert!(
                (got - want).abs() / want <= rel_width(want),
                "q{q}: got {got}, want {want}"
            );
        }
    }

    #[test]
    fn empty_and_invalid() {
        let h = Histogram::new();
        assert_eq!(h.quantile(0.5), None);
        for v in [f64::NAN, -1.0, -1e-9, f64::INFINITY, f64::NEG_INFINITY] {
            h.observe(v);
        }
        assert_eq!(h.count(), 0);
        assert_eq!(h.sum(), 0.0);
        assert_eq!(h.snapshot().mean(), None);
        h.observe(0.0);
        h.observe(250.0);
        assert_eq!(h.count(), 2);
        assert_eq!(h.quantile(f64::NAN), None);
        assert_eq!(h.quantile(1.0), Some(100.0));
        assert_eq!(h.quantile(-3.0), Some(0.0));
        assert_eq!(
            h.snapshot().prometheus_buckets()[PROMETHEUS_BOUNDS.len()].1,
            2
        );
    }

    #[test]
    fn prometheus_buckets_are_exact() {
        let h = Histogram::new();
        // Exactly on bounds, just above, and in between.
        let mut values = Vec::new();
        for &b in &PROMETHEUS_BOUNDS {
            values.push(b);
            values.push(f64::from_bits(b.to_bits() + 1));
            values.push(b * 0.7);
        }
        values.extend([0.0, 5e-7, 42.0, 1000.0]);
        for &v in &values {
            h.observe(v);
        }
        let s = h.snapshot();
        let buckets = s.prometheus_buckets();
        for &(le, cum) in &buckets {
            let want = values.iter().filter(|&&v| v <= le).count() as u64;
            assert_eq!(cum, want, "le={le}");
            assert_eq!(s.cumulative_count(le), want, "le={le}");
        }
        assert!(buckets.windows(2).all(|w| w[0].1 <= w[1].1));
        assert_eq!(buckets.last().unwrap().1, s.count());
    }

    #[test]
    fn delta_since_covers_only_the_interval() {
        let h = Histogram::new();
        for _ in 0..1000 {
            h.observe(0.001);
        }
        let before = h.snapshot();
        for _ in 0..100 {
            h.observe(0.2);
        }
        let delta = h.delta_since(&before);
        assert_eq!(delta.count(), 100);
        assert!((delta.sum - 20.0).abs() < 1e-6);
        let p50 = delta.quantile(0.5).unwrap();
        assert!((p50 - 0.2).abs() / 0.2 <= rel_width(0.2), "{p50}");
        // Since start, the median is still 1 ms.
        assert!((h.quantile(0.5).unwrap() - 0.001).abs() / 0.001 <= rel_width(0.001));
        assert_eq!(before.delta_since(&h.snapshot()).count(), 0);
    }
}

//! The penalised GLM solver: (block) proximal Newton with a backtracking line search.
//!
//! Objective, over coefficient vectors `b_k` (one per output) on the design columns `x`:
//!
//! ```text
//! mean_i loss(y_i, eta_i) + alpha * sum_k sum_{j penalised} ( l1_ratio * |b_kj| + (1 - l1_ratio) / 2 * b_kj^2 )
//! ```
//!
//! Each iteration replaces the loss by its second-order expansion (the IRLS quadratic; for the multinomial
//! family the full softmax Hessian over all classes' coefficients). Without an L1 part the penalised
//! quadratic is minimised exactly by a Cholesky solve (a Newton step); with one, by cyclic coordinate descent
//! with soft-thresholding on the Gram matrix, which gives exact zeros. The step towards that minimiser is then
//! halved until the true objective does not increase. The problem is convex, so this converges to the unique
//! penalised optimum (the predictions are unique even when the coefficients are not).

use rayon::prelude::*;

/// The exponential-family distribution of the target, with its canonical link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Family {
    /// Squared error (linear regression), identity link.
    Gaussian,
    /// Bernoulli log-likelihood (logistic regression), logit link.
    Binomial,
    /// Categorical log-likelihood with one linear predictor per class, softmax.
    Multinomial,
    /// Poisson log-likelihood, log link.
    Poisson,
}

/// A problem to solve: standardised design columns (column 0 may be the intercept's column of ones).
pub(crate) struct Problem<'a> {
    pub x: &'a [Vec<f64>],
    /// Per column: whether the penalty applies (false for the intercept).
    pub penalised: &'a [bool],
    /// Value (gaussian, poisson), 0/1 (binomial) or class index (multinomial).
    pub y: &'a [f64],
    pub family: Family,
    /// Linear predictors: 1, or the class count for the multinomial family.
    pub n_outputs: usize,
    pub alpha: f64,
    pub l1_ratio: f64,
    pub max_iter: usize,
    pub tol: f64,
}

/// The solution.
#[derive(Debug, Clone)]
pub(crate) struct Solution {
    /// `coef[k][j]`, in the standardised scale of the design columns.
    pub coef: Vec<Vec<f64>>,
    pub iterations: usize,
    pub converged: bool,
    /// The largest coefficient change of the last iteration.
    pub last_change: f64,
    pub objective: f64,
}

/// Smallest Hessian weight, so that near-certain rows keep the Gram matrix well-defined.
const MIN_WEIGHT: f64 = 1e-12;

fn softplus(e: f64) -> f64 {
    if e > 0.0 {
        e + (-e).exp().ln_1p()
    } else {
        e.exp().ln_1p()
    }
}

fn sigmoid(e: f64) -> f64 {
    1.0 / (1.0 + (-e).exp())
}

impl Problem<'_> {
    fn n(&self) -> usize {
        self.y.len()
    }

    fn penalty(&self, b: &[f64], penalised: &[bool]) -> f64 {
        let (l1, l2) = (
            self.alpha * self.l1_ratio,
            self.alpha * (1.0 - self.l1_ratio),
        );
        b.iter()
            .zip(penalised)
            .filter(|(_, p)| **p)
            .map(|(b, _)| l1 * b.abs() + 0.5 * l2 * b * b)
            .sum()
    }

    /// Mean loss at the predictors `eta[k][i]`, moved by `t * step[k][i]` when `step` is not empty.
    fn mean_loss(&self, eta: &[Vec<f64>], step: &[Vec<f64>], t: f64) -> f64 {
        let n = self.n();
        let mut sum = 0.0;
        let mut row = vec![0.0; eta.len()];
        for i in 0..n {
            for (o, r) in row.iter_mut().enumerate() {
                *r = eta[o][i];
                if let Some(s) = step.get(o) {
                    *r += t * s[i];
                }
            }
            let y = self.y[i];
            sum += match self.family {
                Family::Gaussian => 0.5 * (y - row[0]) * (y - row[0]),
                Family::Binomial => softplus(row[0]) - y * row[0],
                Family::Poisson => row[0].exp() - y * row[0],
                Family::Multinomial => {
                    let max = row.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                    let lse = max + row.iter().map(|e| (e - max).exp()).sum::<f64>().ln();
                    lse - row[y as usize]
                }
            };
        }
        sum / n as f64
    }

    /// Gradient and Hessian of the mean loss in the flattened coefficients (`k * p + j` for output `k`,
    /// column `j`).
    fn derivatives(&self, eta: &[Vec<f64>]) -> (Vec<f64>, Vec<Vec<f64>>) {
        let n = self.n();
        let p = self.x.len();
        let k = self.n_outputs;
        // r[o][i]: loss gradient in eta[o][i]; for one output also the Hessian weight w[i].
        let mut r = vec![vec![0.0; n]; k];
        let mut probs = vec![
            vec![0.0; n];
            if self.family == Family::Multinomial {
                k
            } else {
                0
            }
        ];
        let mut w = vec![0.0; n];
        for i in 0..n {
            let y = self.y[i];
            match self.family {
                Family::Gaussian => {
                    r[0][i] = eta[0][i] - y;
                    w[i] = 1.0;
                }
                Family::Binomial => {
                    let p = sigmoid(eta[0][i]);
                    r[0][i] = p - y;
                    w[i] = (p * (1.0 - p)).max(MIN_WEIGHT);
                }
                Family::Poisson => {
                    let mu = eta[0][i].exp();
                    r[0][i] = mu - y;
                    w[i] = mu.max(MIN_WEIGHT);
                }
                Family::Multinomial => {
                    let max = eta.iter().map(|e| e[i]).fold(f64::NEG_INFINITY, f64::max);
                    let sum: f64 = eta.iter().map(|e| (e[i] - max).exp()).sum();
                    for o in 0..k {
                        let pr = (eta[o][i] - max).exp() / sum;
                        probs[o][i] = pr;
                        r[o][i] = pr - if y as usize == o { 1.0 } else { 0.0 };
                    }
                }
            }
        }
        let grad: Vec<f64> = (0..k * p)
            .into_par_iter()
            .map(|a| {
                let (o, j) = (a / p, a % p);
                self.x[j].iter().zip(&r[o]).map(|(x, g)| x * g).sum::<f64>() / n as f64
            })
            .collect();
        if self.family != Family::Multinomial {
            return (grad, gram(self.x, &w));
        }
        // Softmax Hessian: block (o, q) = X' diag(p_o (delta_oq - p_q)) X / n.
        let mut h = vec![vec![0.0; k * p]; k * p];
        for o in 0..k {
            for q in o..k {
                let wq: Vec<f64> = (0..n)
                    .map(|i| {
                        let d = if o == q { 1.0 } else { 0.0 };
                        let v = probs[o][i] * (d - probs[q][i]);
                        if o == q {
                            v.max(MIN_WEIGHT)
                        } else {
                            v
                        }
                    })
                    .collect();
                let block = gram(self.x, &wq);
                for a in 0..p {
                    for b in 0..p {
                        h[o * p + a][q * p + b] = block[a][b];
                        h[q * p + b][o * p + a] = block[a][b];
                    }
                }
            }
        }
        (grad, h)
    }

    /// The starting coefficients: zero, with the intercept (column 0 when unpenalised) at the null model.
    fn start(&self) -> Vec<f64> {
        let p = self.x.len();
        let mut coef = vec![0.0; p * self.n_outputs];
        let has_intercept = p > 0 && !self.penalised[0];
        if !has_intercept {
            return coef;
        }
        let n = self.n() as f64;
        let mean = self.y.iter().sum::<f64>() / n;
        match self.family {
            Family::Gaussian => coef[0] = mean,
            Family::Binomial => {
                let m = mean.clamp(1e-6, 1.0 - 1e-6);
                coef[0] = (m / (1.0 - m)).ln();
            }
            Family::Poisson => coef[0] = mean.max(1e-6).ln(),
            Family::Multinomial => {
                let mut counts = vec![0.0; self.n_outputs];
                for &y in self.y {
                    counts[y as usize] += 1.0;
                }
                for (o, count) in counts.into_iter().enumerate() {
                    coef[o * p] = (count / n).max(1e-6).ln();
                }
            }
        }
        coef
    }

    /// Solves the problem; `on_iteration(iteration, objective)` is called after each iteration.
    pub(crate) fn solve(&self, mut on_iteration: impl FnMut(usize, f64)) -> Solution {
        let p = self.x.len();
        let k = self.n_outputs;
        let penalised: Vec<bool> = (0..k)
            .flat_map(|_| self.penalised.iter().copied())
            .collect();
        let mut coef = self.start();
        let mut eta: Vec<Vec<f64>> = coef.chunks(p.max(1)).map(|b| self.predict(b)).collect();
        eta.resize(k, vec![0.0; self.n()]);
        let mut objective = self.objective(&eta, &coef, &penalised);
        let mut iterations = 0;
        let mut last_change = f64::INFINITY;
        let mut converged = false;
        while iterations < self.max_iter && p > 0 {
            iterations += 1;
            let (grad, hess) = self.derivatives(&eta);
            let target = self.quadratic_minimiser(&hess, &grad, &coef, &penalised);
            let d: Vec<f64> = target.iter().zip(&coef).map(|(t, b)| t - b).collect();
            let xd: Vec<Vec<f64>> = d.chunks(p).map(|dk| self.predict(dk)).collect();
            // Backtracking: halve the step until the objective does not increase.
            let mut t = 1.0;
            let mut accepted = None;
            for _ in 0..40 {
                let trial: Vec<f64> = coef.iter().zip(&d).map(|(b, d)| b + t * d).collect();
                let obj = self.mean_loss(&eta, &xd, t) + self.penalty(&trial, &penalised);
                if obj.is_finite() && obj <= objective + 1e-13 * objective.abs() {
                    accepted = Some((trial, obj));
                    break;
                }
                t *= 0.5;
            }
            let mut change = 0.0;
            if let Some((trial, obj)) = accepted {
                for (e, s) in eta.iter_mut().zip(&xd) {
                    for (e, s) in e.iter_mut().zip(s) {
                        *e += t * s;
                    }
                }
                let mut trial = trial;
                if self.family == Family::Multinomial && !self.penalised[0] {
                    // Softmax is unchanged by a common shift of the (unpenalised) intercepts: keep them
                    // centred so that the flat direction does not drift.
                    let mean = (0..k).map(|o| trial[o * p]).sum::<f64>() / k as f64;
                    for o in 0..k {
                        trial[o * p] -= mean;
                        for e in eta[o].iter_mut() {
                            *e -= mean;
                        }
                    }
                }
                change = trial
                    .iter()
                    .zip(&coef)
                    .map(|(a, b)| (a - b).abs())
                    .fold(0.0, f64::max);
                coef = trial;
                objective = obj;
            }
            on_iteration(iterations, objective);
            last_change = change;
            if change <= self.tol {
                converged = true;
                break;
            }
        }
        if p == 0 {
            converged = true;
        }
        Solution {
            coef: coef.chunks(p.max(1)).map(<[f64]>::to_vec).collect(),
            iterations,
            converged,
            last_change,
            objective,
        }
    }

    fn predict(&self, b: &[f64]) -> Vec<f64> {
        let mut eta = vec![0.0; self.n()];
        for (x, bj) in self.x.iter().zip(b) {
            if *bj != 0.0 {
                for (e, xi) in eta.iter_mut().zip(x) {
                    *e += bj * xi;
                }
            }
        }
        eta
    }

    fn objective(&self, eta: &[Vec<f64>], coef: &[f64], penalised: &[bool]) -> f64 {
        self.mean_loss(eta, &[], 0.0) + self.penalty(coef, penalised)
    }

    /// Minimises `grad'(b - b0) + (b - b0)' H (b - b0) / 2 + penalty(b)` over `b`.
    fn quadratic_minimiser(
        &self,
        h: &[Vec<f64>],
        grad: &[f64],
        b0: &[f64],
        penalised: &[bool],
    ) -> Vec<f64> {
        let p = b0.len();
        let l1 = self.alpha * self.l1_ratio;
        let l2 = self.alpha * (1.0 - self.l1_ratio);
        if l1 == 0.0 {
            // (H + l2 P) d = -(grad + l2 P b0)
            let mut a = h.to_vec();
            let mut rhs = vec![0.0; p];
            for j in 0..p {
                let r = if penalised[j] { l2 } else { 0.0 };
                a[j][j] += r;
                rhs[j] = -(grad[j] + r * b0[j]);
            }
            if let Some(d) = solve_spd(a, rhs) {
                return b0.iter().zip(d).map(|(b, d)| b + d).collect();
            }
        }
        // Cyclic coordinate descent with soft-thresholding; u = H d.
        let mut b = b0.to_vec();
        let mut u = vec![0.0; p];
        let inner_tol = self.tol * 0.1;
        for _ in 0..1000 {
            let mut max_delta: f64 = 0.0;
            for j in 0..p {
                let hjj = h[j][j];
                if hjj <= 0.0 {
                    continue;
                }
                let dj = b[j] - b0[j];
                let c = grad[j] + u[j] - hjj * dj;
                let new = if penalised[j] {
                    soft_threshold(hjj * b0[j] - c, l1) / (hjj + l2)
                } else {
                    b0[j] - c / hjj
                };
                let delta = new - b[j];
                if delta != 0.0 {
                    for (ui, hij) in u.iter_mut().zip(&h[j]) {
                        *ui += hij * delta;
                    }
                    b[j] = new;
                    max_delta = max_delta.max(delta.abs() * hjj.sqrt());
                }
            }
            if max_delta <= inner_tol {
                break;
            }
        }
        b
    }
}

fn soft_threshold(z: f64, g: f64) -> f64 {
    if z > g {
        z - g
    } else if z < -g {
        z + g
    } else {
        0.0
    }
}

/// `X' diag(w) X / n` as rows (symmetric).
fn gram(x: &[Vec<f64>], w: &[f64]) -> Vec<Vec<f64>> {
    let n = w.len() as f64;
    let p = x.len();
    let upper: Vec<Vec<f64>> = (0..p)
        .into_par_iter()
        .map(|a| {
            let wa: Vec<f64> = x[a].iter().zip(w).map(|(x, w)| x * w).collect();
            (a..p)
                .map(|b| wa.iter().zip(&x[b]).map(|(u, v)| u * v).sum::<f64>() / n)
                .collect()
        })
        .collect();
    let mut h = vec![vec![0.0; p]; p];
    for (a, row) in upper.iter().enumerate() {
        for (off, v) in row.iter().enumerate() {
            h[a][a + off] = *v;
            h[a + off][a] = *v;
        }
    }
    h
}

/// Solves `A x = b` for symmetric positive semi-definite `A` by Cholesky, adding a growing ridge when `A` is
/// (numerically) singular. `None` when even that fails.
pub(crate) fn solve_spd(a: Vec<Vec<f64>>, b: Vec<f64>) -> Option<Vec<f64>> {
    let p = b.len();
    let scale = (0..p)
        .map(|j| a[j][j].abs())
        .fold(0.0, f64::max)
        .max(1e-300);
    for jitter in [0.0, 1e-12, 1e-10, 1e-8, 1e-6, 1e-4] {
        if let Some(l) = cholesky(&a, jitter * scale) {
            // Forward then back substitution.
            let mut z = b.clone();
            for i in 0..p {
                let s: f64 = (0..i).map(|k| l[i][k] * z[k]).sum();
                z[i] = (z[i] - s) / l[i][i];
            }
            for i in (0..p).rev() {
                let s: f64 = (i + 1..p).map(|k| l[k][i] * z[k]).sum();
                z[i] = (z[i] - s) / l[i][i];
            }
            if z.iter().all(|v| v.is_finite()) {
                return Some(z);
            }
        }
    }
    None
}

fn cholesky(a: &[Vec<f64>], jitter: f64) -> Option<Vec<Vec<f64>>> {
    let p = a.len();
    let mut l = vec![vec![0.0; p]; p];
    for i in 0..p {
        for j in 0..=i {
            let s: f64 = (0..j).map(|k| l[i][k] * l[j][k]).sum();
            if i == j {
                let d = a[i][i] + jitter - s;
                if d.is_nan() || d <= 1e-14 * (a[i][i].abs() + jitter).max(1e-300) {
                    return None;
                }
                l[i][i] = d.sqrt();
            } else {
                l[i][j] = (a[i][j] - s) / l[j][j];
            }
        }
    }
    Some(l)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cholesky_solves_and_regularises_singular_systems() {
        let a = vec![vec![4.0, 2.0], vec![2.0, 3.0]];
        let x = solve_spd(a, vec![2.0, 1.0]).unwrap();
        assert!((x[0] - 0.5).abs() < 1e-12 && x[1].abs() < 1e-12);
        let singular = vec![vec![1.0, 1.0], vec![1.0, 1.0]];
        let x = solve_spd(singular, vec![2.0, 2.0]).unwrap();
        assert!((x[0] + x[1] - 2.0).abs() < 1e-6);
    }

    #[test]
    fn soft_threshold_zeroes_small_values() {
        assert_eq!(soft_threshold(0.5, 1.0), 0.0);
        assert_eq!(soft_threshold(-0.5, 1.0), 0.0);
        assert_eq!(soft_threshold(3.0, 1.0), 2.0);
        assert_eq!(soft_threshold(-3.0, 1.0), -2.0);
    }

    #[test]
    fn least_squares_is_exact() {
        // y = 1 + 2 x
        let x = vec![vec![1.0; 4], vec![-1.5, -0.5, 0.5, 1.5]];
        let y: Vec<f64> = x[1].iter().map(|v| 1.0 + 2.0 * v).collect();
        let p = Problem {
            x: &x,
            penalised: &[false, true],
            y: &y,
            family: Family::Gaussian,
            n_outputs: 1,
            alpha: 0.0,
            l1_ratio: 0.0,
            max_iter: 10,
            tol: 1e-10,
        };
        let s = p.solve(|_, _| {});
        assert!(s.converged);
        assert!((s.coef[0][0] - 1.0).abs() < 1e-10 && (s.coef[0][1] - 2.0).abs() < 1e-10);
        // Lasso on standardised data: the slope shrinks by alpha / var(x) = 0.4.
        let p = Problem {
            alpha: 0.5,
            l1_ratio: 1.0,
            ..p
        };
        let s = p.solve(|_, _| {});
        assert!(
            (s.coef[0][1] - (2.0 - 0.5 / 1.25)).abs() < 1e-8,
            "{:?}",
            s.coef
        );
    }
}

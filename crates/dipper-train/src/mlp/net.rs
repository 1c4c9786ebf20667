//! The network being trained: all parameters in one flat vector, forward and backward passes over a
//! mini-batch (row-major), the losses, and the Adam optimiser.

use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// Hidden-layer activation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    Relu,
    Tanh,
}

impl Activation {
    fn apply(self, v: &mut [f64]) {
        match self {
            Activation::Relu => v.iter_mut().for_each(|x| *x = x.max(0.0)),
            Activation::Tanh => v.iter_mut().for_each(|x| *x = x.tanh()),
        }
    }

    /// Multiplies `delta` by the derivative, given the activation's output `a`.
    fn backprop(self, delta: &mut [f64], a: &[f64]) {
        match self {
            Activation::Relu => {
                for (d, a) in delta.iter_mut().zip(a) {
                    if *a <= 0.0 {
                        *d = 0.0;
                    }
                }
            }
            Activation::Tanh => {
                for (d, a) in delta.iter_mut().zip(a) {
                    *d *= 1.0 - a * a;
                }
            }
        }
    }
}

/// Output layer and loss.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Head {
    /// Squared error `(p - y)² / 2` on one output.
    Identity,
    /// Log loss of a sigmoid on one output; `y` is 0 or 1.
    Sigmoid,
    /// Log loss of a softmax over the outputs; `y` is the class index.
    Softmax,
}

/// A dense network: `dims[0]` inputs, hidden layers, `dims.last()` outputs.
#[derive(Debug, Clone)]
pub struct Net {
    pub dims: Vec<usize>,
    pub activation: Activation,
    pub head: Head,
    /// Per layer, its weights (`[input][output]` row-major) then its biases.
    pub params: Vec<f64>,
    offsets: Vec<usize>,
}

/// Scratch buffers of one pass, reused across batches.
#[derive(Debug, Default)]
pub struct Work {
    /// `acts[l]`: the outputs of layer `l` (activated for hidden layers, raw for the last).
    acts: Vec<Vec<f64>>,
    delta: Vec<f64>,
    delta_prev: Vec<f64>,
}

impl Net {
    /// A network with Glorot uniform initial weights and biases.
    pub fn new(dims: Vec<usize>, activation: Activation, head: Head, rng: &mut ChaCha8Rng) -> Self {
        let mut offsets = Vec::with_capacity(dims.len());
        let mut total = 0;
        for w in dims.windows(2) {
            offsets.push(total);
            total += w[0] * w[1] + w[1];
        }
        let mut params = vec![0.0; total];
        for (l, w) in dims.windows(2).enumerate() {
            // Glorot uniform for weights and biases, as scikit-learn initialises its MLPs (for ReLU too: on
            // the fixtures it trained better than He initialisation).
            let bound = (6.0 / (w[0] + w[1]).max(1) as f64).sqrt();
            for p in &mut params[offsets[l]..offsets[l] + w[0] * w[1] + w[1]] {
                *p = rng.random_range(-bound..bound);
            }
        }
        Net {
            dims,
            activation,
            head,
            params,
            offsets,
        }
    }

    pub fn n_layers(&self) -> usize {
        self.dims.len() - 1
    }

    /// Weights (`[input][output]`) and biases of layer `l`.
    pub fn layer(&self, l: usize) -> (&[f64], &[f64]) {
        let (n_in, n_out) = (self.dims[l], self.dims[l + 1]);
        let w = &self.params[self.offsets[l]..self.offsets[l] + n_in * n_out];
        let b =
            &self.params[self.offsets[l] + n_in * n_out..self.offsets[l] + n_in * n_out + n_out];
        (w, b)
    }

    /// Raw outputs of `n` rows of `x` into `work`; returns them.
    pub fn forward<'w>(&self, x: &[f64], n: usize, work: &'w mut Work) -> &'w [f64] {
        let layers = self.n_layers();
        work.acts.resize_with(layers, Vec::new);
        for l in 0..layers {
            let (w, b) = self.layer(l);
            let (n_in, n_out) = (self.dims[l], self.dims[l + 1]);
            let (done, rest) = work.acts.split_at_mut(l);
            let input: &[f64] = if l == 0 { x } else { &done[l - 1] };
            let out = &mut rest[0];
            out.clear();
            out.resize(n * n_out, 0.0);
            for (r, o_row) in out.chunks_exact_mut(n_out).enumerate() {
                o_row.copy_from_slice(b);
                let x_row = &input[r * n_in..(r + 1) * n_in];
                for (xi, w_row) in x_row.iter().zip(w.chunks_exact(n_out)) {
                    if *xi == 0.0 {
                        continue;
                    }
                    for (o, w) in o_row.iter_mut().zip(w_row) {
                        *o += xi * w;
                    }
                }
            }
            if l + 1 < layers {
                self.activation.apply(out);
            }
        }
        &work.acts[layers - 1]
    }

    /// Mean loss of `n` rows (without the L2 term).
    pub fn loss(&self, x: &[f64], y: &[f64], n: usize, work: &mut Work) -> f64 {
        if n == 0 {
            return f64::NAN;
        }
        let k = *self.dims.last().unwrap_or(&1);
        let head = self.head;
        let raw = self.forward(x, n, work);
        let mut total = 0.0;
        for (z, y) in raw.chunks_exact(k).zip(y) {
            total += row_loss(head, z, *y, None);
        }
        total / n as f64
    }

    /// Mean loss of the batch plus `alpha / (2n) * |W|²`, and its gradient (same layout as `params`) into
    /// `grad`.
    pub fn gradient(
        &self,
        x: &[f64],
        y: &[f64],
        n: usize,
        alpha: f64,
        work: &mut Work,
        grad: &mut [f64],
    ) -> f64 {
        let layers = self.n_layers();
        let k = self.dims[layers];
        self.forward(x, n, work);
        let inv_n = 1.0 / n as f64;
        // Output delta: d(loss)/d(raw output) per row.
        let mut loss = 0.0;
        work.delta.clear();
        work.delta.resize(n * k, 0.0);
        for ((z, d), y) in work.acts[layers - 1]
            .chunks_exact(k)
            .zip(work.delta.chunks_exact_mut(k))
            .zip(y)
        {
            loss += row_loss(self.head, z, *y, Some(d));
        }
        loss *= inv_n;
        grad.iter_mut().for_each(|g| *g = 0.0);
        for l in (0..layers).rev() {
            let (n_in, n_out) = (self.dims[l], self.dims[l + 1]);
            let (w, _) = self.layer(l);
            let input: &[f64] = if l == 0 { x } else { &work.acts[l - 1] };
            let off = self.offsets[l];
            let (gw, rest) = grad[off..].split_at_mut(n_in * n_out);
            let gb = &mut rest[..n_out];
            // gw = inputᵀ · delta, gb = Σ delta.
            for (r, d_row) in work.delta.chunks_exact(n_out).enumerate() {
                let x_row = &input[r * n_in..(r + 1) * n_in];
                for (g, d) in gb.iter_mut().zip(d_row) {
                    *g += d;
                }
                for (xi, g_row) in x_row.iter().zip(gw.chunks_exact_mut(n_out)) {
                    if *xi == 0.0 {
                        continue;
                    }
                    for (g, d) in g_row.iter_mut().zip(d_row) {
                        *g += xi * d;
                    }
                }
            }
            let mut sq = 0.0;
            for (g, w) in gw.iter_mut().zip(w) {
                *g = (*g + alpha * w) * inv_n;
                sq += w * w;
            }
            loss += 0.5 * alpha * sq * inv_n;
            gb.iter_mut().for_each(|g| *g *= inv_n);
            if l > 0 {
                // delta_prev = delta · Wᵀ ⊙ activation'(input).
                work.delta_prev.clear();
                work.delta_prev.resize(n * n_in, 0.0);
                for (p_row, d_row) in work
                    .delta_prev
                    .chunks_exact_mut(n_in)
                    .zip(work.delta.chunks_exact(n_out))
                {
                    for (p, w_row) in p_row.iter_mut().zip(w.chunks_exact(n_out)) {
                        *p = w_row.iter().zip(d_row).map(|(w, d)| w * d).sum();
                    }
                }
                self.activation.backprop(&mut work.delta_prev, input);
                std::mem::swap(&mut work.delta, &mut work.delta_prev);
            }
        }
        loss
    }
}

/// The loss of one row with raw outputs `z`; writes d(loss)/dz into `d` when given.
fn row_loss(head: Head, z: &[f64], y: f64, d: Option<&mut [f64]>) -> f64 {
    match head {
        Head::Identity => {
            let e = z[0] - y;
            if let Some(d) = d {
                d[0] = e;
            }
            0.5 * e * e
        }
        Head::Sigmoid => {
            // log(1 + exp(z)) - y z, stable for large |z|.
            let softplus = z[0].max(0.0) + (-z[0].abs()).exp().ln_1p();
            if let Some(d) = d {
                d[0] = 1.0 / (1.0 + (-z[0]).exp()) - y;
            }
            softplus - y * z[0]
        }
        Head::Softmax => {
            let max = z.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let sum: f64 = z.iter().map(|v| (v - max).exp()).sum();
            let lse = max + sum.ln();
            let c = y as usize;
            if let Some(d) = d {
                for (j, (d, v)) in d.iter_mut().zip(z).enumerate() {
                    *d = (v - lse).exp() - if j == c { 1.0 } else { 0.0 };
                }
            }
            lse - z.get(c).copied().unwrap_or(0.0)
        }
    }
}

/// Adam (Kingma & Ba) with bias correction, as scikit-learn's `adam` solver.
#[derive(Debug)]
pub struct Adam {
    pub learning_rate: f64,
    pub beta_1: f64,
    pub beta_2: f64,
    pub epsilon: f64,
    m: Vec<f64>,
    v: Vec<f64>,
    t: i32,
}

impl Adam {
    pub fn new(n: usize, learning_rate: f64, beta_1: f64, beta_2: f64, epsilon: f64) -> Self {
        Adam {
            learning_rate,
            beta_1,
            beta_2,
            epsilon,
            m: vec![0.0; n],
            v: vec![0.0; n],
            t: 0,
        }
    }

    pub fn step(&mut self, params: &mut [f64], grad: &[f64]) {
        self.t = self.t.saturating_add(1);
        let (b1, b2) = (self.beta_1, self.beta_2);
        let lr = self.learning_rate * (1.0 - b2.powi(self.t)).sqrt() / (1.0 - b1.powi(self.t));
        for (((p, g), m), v) in params
            .iter_mut()
            .zip(grad)
            .zip(&mut self.m)
            .zip(&mut self.v)
        {
            *m = b1 * *m + (1.0 - b1) * g;
            *v = b2 * *v + (1.0 - b2) * g * g;
            *p -= lr * *m / (v.sqrt() + self.epsilon);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    /// Analytic gradients agree with central finite differences of the loss (L2 term included), for every
    /// head and activation.
    #[test]
    fn gradient_matches_finite_differences() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        for (head, k) in [(Head::Identity, 1), (Head::Sigmoid, 1), (Head::Softmax, 3)] {
            for activation in [Activation::Tanh, Activation::Relu] {
                let mut net = Net::new(vec![4, 5, 3, k], activation, head, &mut rng);
                // Non-zero biases too, so that no ReLU input sits exactly on the kink at 0.
                for p in &mut net.params {
                    *p += rng.random_range(-0.5..0.5);
                }
                let n = 6;
                let x: Vec<f64> = (0..n * 4).map(|_| rng.random_range(-2.0..2.0)).collect();
                let y: Vec<f64> = (0..n)
                    .map(|i| match head {
                        Head::Identity => rng.random_range(-1.0..1.0),
                        Head::Sigmoid => (i % 2) as f64,
                        Head::Softmax => (i % 3) as f64,
                    })
                    .collect();
                let alpha = 0.3;
                let mut work = Work::default();
                let mut grad = vec![0.0; net.params.len()];
                net.gradient(&x, &y, n, alpha, &mut work, &mut grad);
                let mut probe = net.clone();
                let mut scratch = vec![0.0; net.params.len()];
                let h = 1e-6;
                for (i, (p, g)) in net.params.iter().zip(&grad).enumerate() {
                    probe.params[i] = p + h;
                    let up = probe.gradient(&x, &y, n, alpha, &mut work, &mut scratch);
                    probe.params[i] = p - h;
                    let down = probe.gradient(&x, &y, n, alpha, &mut work, &mut scratch);
                    probe.params[i] = *p;
                    let numeric = (up - down) / (2.0 * h);
                    assert!(
                        (numeric - g).abs() < 1e-6 * (1.0 + numeric.abs()),
                        "{head:?} {activation:?} param {i}: analytic {g} numeric {numeric}"
                    );
                }
                // The loss without L2 agrees with the gradient pass at alpha = 0.
                let l0 = net.gradient(&x, &y, n, 0.0, &mut work, &mut scratch);
                assert!((net.loss(&x, &y, n, &mut work) - l0).abs() < 1e-12);
            }
        }
    }

    #[test]
    fn adam_minimises_a_quadratic() {
        let mut p = vec![3.0, -2.0];
        let mut adam = Adam::new(2, 0.1, 0.9, 0.999, 1e-8);
        for _ in 0..500 {
            let g = vec![2.0 * p[0], 2.0 * p[1]];
            adam.step(&mut p, &g);
        }
        assert!(p[0].abs() < 1e-2 && p[1].abs() < 1e-2, "{p:?}");
    }
}

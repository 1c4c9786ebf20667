//! ONNX-ML post transforms (`post_transform` attribute), computed in `f32` the way onnxruntime computes them
//! (facts from its `ml_common.h`: logistic through `|x|`, probit through an approximate inverse error function,
//! softmax from the maximum, SOFTMAX_ZERO leaving zero scores out of the sum).

use tract_onnx::tract_hir::internal::*;

use super::{invalid, unsupported};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PostTransform {
    None,
    Logistic,
    Softmax,
    SoftmaxZero,
    Probit,
}

impl PostTransform {
    pub fn parse(s: &str) -> TractResult<Self> {
        Ok(match s {
            "NONE" => PostTransform::None,
            "LOGISTIC" => PostTransform::Logistic,
            "SOFTMAX" => PostTransform::Softmax,
            "SOFTMAX_ZERO" => PostTransform::SoftmaxZero,
            "PROBIT" => PostTransform::Probit,
            other => return Err(invalid(format!("unknown post_transform {other:?}"))),
        })
    }

    /// Applies the transform to one row of scores (two or more; element-wise or across the row).
    pub fn apply_row(self, row: &mut [f32]) {
        match self {
            PostTransform::None => {}
            PostTransform::Logistic => row.iter_mut().for_each(|v| *v = logistic(*v)),
            PostTransform::Probit => row.iter_mut().for_each(|v| *v = probit(*v)),
            PostTransform::Softmax => softmax(row),
            PostTransform::SoftmaxZero => softmax_zero(row),
        }
    }

    /// Refuses transforms a kernel does not implement.
    pub fn require(self, allowed: &[PostTransform], what: &str) -> TractResult<Self> {
        if allowed.contains(&self) {
            Ok(self)
        } else {
            Err(unsupported(format!("post_transform {self:?} on {what}")))
        }
    }
}

/// onnxruntime's logistic: computed on `|x|` and mirrored, so `logistic(-x) == 1 - logistic(x)` exactly.
pub(crate) fn logistic(x: f32) -> f32 {
    let v = 1.0 / (1.0 + (-x.abs()).exp());
    if x < 0.0 {
        1.0 - v
    } else {
        v
    }
}

/// onnxruntime's approximate inverse error function (Winitzki's formula, a = 0.147), with its own rounded
/// constants (not `PI`) so results match.
#[allow(clippy::approx_constant)]
fn erf_inv(x: f32) -> f32 {
    let sgn = if x < 0.0 { -1.0f32 } else { 1.0 };
    let x = (1.0 - x) * (1.0 + x);
    let log = x.ln();
    let v = 2.0 / (3.14159f32 * 0.147) + 0.5 * log;
    let v2 = 1.0 / 0.147f32 * log;
    let v3 = -v + (v * v - v2).sqrt();
    sgn * v3.sqrt()
}

/// onnxruntime's probit: `sqrt(2) * erfinv(2x - 1)`, with its rounded constant for `sqrt(2)`.
#[allow(clippy::approx_constant, clippy::excessive_precision)]
pub(crate) fn probit(x: f32) -> f32 {
    1.41421356f32 * erf_inv(2.0 * x - 1.0)
}

fn softmax(row: &mut [f32]) {
    let max = row
        .iter()
        .copied()
        .fold(-f32::MAX, |m, v| if v > m { v } else { m });
    let mut sum = 0.0f32;
    for v in row.iter_mut() {
        *v = (*v - max).exp();
        sum += *v;
    }
    for v in row.iter_mut() {
        *v /= sum;
    }
}

fn softmax_zero(row: &mut [f32]) {
    let max = row
        .iter()
        .copied()
        .fold(-f32::MAX, |m, v| if v > m { v } else { m });
    let exp_neg_max = (-max).exp();
    let mut sum = 0.0f32;
    for v in row.iter_mut() {
        if *v > 0.0000001 || *v < -0.0000001 {
            *v = (*v - max).exp();
            sum += *v;
        } else {
            *v *= exp_neg_max;
        }
    }
    for v in row.iter_mut() {
        *v /= sum;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logistic_is_symmetric() {
        for x in [0.0f32, 0.3, 2.5, 17.0, 100.0] {
            assert_eq!(logistic(-x), 1.0 - logistic(x));
        }
        assert_eq!(logistic(0.0), 0.5);
        assert!((logistic(0.3) - 0.5744425).abs() < 1e-7);
    }

    #[test]
    fn softmax_rows_sum_to_one_and_zero_skips_zeros() {
        let mut r = [1.0f32, 2.0, 3.0];
        PostTransform::Softmax.apply_row(&mut r);
        assert!((r.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        let mut z = [0.0f32, 1.0];
        PostTransform::SoftmaxZero.apply_row(&mut z);
        assert_eq!(z, [0.0, 1.0]);
    }

    #[test]
    fn probit_is_near_the_normal_quantile() {
        assert!(probit(0.5).abs() < 1e-6);
        assert!((probit(0.975) - 1.959964).abs() < 5e-3);
    }

    #[test]
    fn parse_rejects_unknown() {
        assert!(PostTransform::parse("SIGMOID").is_err());
        assert_eq!(
            PostTransform::parse("PROBIT").unwrap(),
            PostTransform::Probit
        );
    }
}

//! XGBoost objectives: how raw margins become predictions (`PredTransform`) and how the stored `base_score`,
//! which XGBoost keeps in output space, becomes a margin (`ProbToMargin`). Facts from XGBoost 3.2
//! `src/objective/regression_loss.h`, `regression_obj.cu`, `multiclass_obj.cu`, `hinge.cu`, `aft_obj.cu`.

use crate::transform::OutputTransform;

/// What an objective means for scoring.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct ObjectiveKind {
    pub transform: OutputTransform,
    /// Number of classes (0 = regression).
    pub classes: Classes,
    pub link: Link,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Classes {
    Regression,
    Binary,
    /// `num_class` from the file.
    Multi,
}

/// XGBoost's `ProbToMargin` for the stored base score, computed in `f32` as XGBoost does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Link {
    Identity,
    /// `ln(x)` (Poisson, gamma, Tweedie, Cox, AFT).
    Log,
    /// `logit(clamp(x, 1e-6, 1 - 1e-6))` (`reg:logistic`, `binary:logistic`).
    Logit,
}

impl Link {
    pub fn to_margin(self, x: f32) -> f32 {
        match self {
            Link::Identity => x,
            Link::Log => x.ln(),
            Link::Logit => {
                // kRtEps in XGBoost's base.h.
                const EPS: f32 = 1e-6;
                let x = x.clamp(EPS, 1.0 - EPS);
                (x / (1.0 - x)).ln()
            }
        }
    }
}

/// The objective named `name`, or `None` when dipper does not know it.
pub(super) fn objective(name: &str) -> Option<ObjectiveKind> {
    use OutputTransform as T;
    let reg = |transform, link| ObjectiveKind {
        transform,
        classes: Classes::Regression,
        link,
    };
    Some(match name {
        "reg:squarederror"
        | "reg:linear"
        | "reg:squaredlogerror"
        | "reg:pseudohubererror"
        | "reg:absoluteerror"
        | "reg:quantileerror" => reg(T::Identity, Link::Identity),
        // The raw margin is the output: dipper reads it as a regression of the margin (no classes), which is
        // what `Booster.predict` returns.
        "binary:logitraw" => reg(T::Identity, Link::Identity),
        "rank:pairwise" | "rank:ndcg" | "rank:map" => reg(T::Identity, Link::Identity),
        "reg:logistic" => reg(T::Logistic, Link::Logit),
        "count:poisson" | "reg:gamma" | "reg:tweedie" | "survival:cox" | "survival:aft" => {
            reg(T::Exp, Link::Log)
        }
        "binary:logistic" => ObjectiveKind {
            transform: T::BinaryLogistic { scale: 1.0 },
            classes: Classes::Binary,
            link: Link::Logit,
        },
        // XGBoost outputs 1.0 when the margin is > 0 and 0.0 otherwise. A logistic with the largest finite
        // scale is that step: any non-zero margin (a sum of f32 values, so at least 2^-149 in magnitude) gives
        // probability exactly 0 or 1; a zero margin gives 0.5/0.5, whose argmax is class 0, as XGBoost's.
        "binary:hinge" => ObjectiveKind {
            transform: T::BinaryLogistic { scale: f64::MAX },
            classes: Classes::Binary,
            link: Link::Identity,
        },
        // softmax outputs the argmax label, softprob the probabilities: both are the same softmax here. The
        // multiclass base score is already a margin (ln p - mean ln p), ProbToMargin is the identity.
        "multi:softprob" | "multi:softmax" => ObjectiveKind {
            transform: T::Softmax,
            classes: Classes::Multi,
            link: Link::Identity,
        },
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_match_xgboost() {
        assert_eq!(Link::Logit.to_margin(0.5), 0.0);
        assert!((Link::Logit.to_margin(0.75) - 3f32.ln()).abs() < 1e-6);
        // Clamped like XGBoost: never infinite.
        assert!(Link::Logit.to_margin(1.0).is_finite());
        assert!(Link::Logit.to_margin(0.0).is_finite());
        assert_eq!(Link::Log.to_margin(1.0), 0.0);
        assert_eq!(Link::Identity.to_margin(0.5), 0.5);
    }

    #[test]
    fn hinge_is_a_step() {
        let mut out = crate::Predictions::default();
        let t = objective("binary:hinge").unwrap().transform;
        t.apply(&[1e-40, -1e-40, 0.0, 3.0], 2, &mut out);
        assert_eq!(out.values(), &[0.0, 1.0, 1.0, 0.0, 0.5, 0.5, 0.0, 1.0]);
        let labels: Vec<_> = (0..4)
            .map(|i| match out.get(i) {
                crate::PredictionRef::Class { index, .. } => index,
                _ => unreachable!(),
            })
            .collect();
        assert_eq!(labels, [1, 0, 0, 1]);
    }

    #[test]
    fn unknown_objectives_are_none() {
        assert!(objective("multi:unknown").is_none());
        // Its transform (cumulative softplus over expectiles) is not implemented.
        assert!(objective("reg:expectileerror").is_none());
        assert!(objective("").is_none());
    }
}

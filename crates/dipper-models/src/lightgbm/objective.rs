//! The `objective=` header line: which [`OutputTransform`] turns raw scores into what LightGBM's `predict`
//! returns, and the class labels.
//!
//! From LightGBM 4.x `src/objective/*` (`ConvertOutput`, `ToString`) and `ParseObjectiveAlias` in
//! `include/LightGBM/config.h`:
//! - `binary sigmoid:s`: p(1) = 1 / (1 + exp(-s * score)); classes 0 and 1.
//! - `multiclass num_class:k`: softmax; `multiclassova num_class:k sigmoid:s`: each class sigmoid(s * score),
//!   not normalised; classes 0..k.
//! - `regression`, `regression_l1`, `quantile`, `mape`, `fair`: the score, or sign(score) * score^2 with the
//!   `sqrt` flag (not supported here); `huber` ignores `sqrt`.
//! - `poisson`, `gamma`, `tweedie`: exp(score). `cross_entropy`: sigmoid(score). `cross_entropy_lambda`:
//!   ln(1 + exp(score)). `lambdarank`, `rank_xendcg`: the score.
//! - no objective, or `custom`: LightGBM returns the raw score.

use crate::model::ClassLabel;
use crate::transform::OutputTransform;
use crate::ModelError;

use super::text::{Errors, Field};

#[derive(Debug, Clone)]
pub(super) struct Objective {
    pub transform: OutputTransform,
    /// Class labels; empty for regression.
    pub classes: Vec<ClassLabel>,
}

impl Objective {
    /// Reads the objective; `num_class` is the header's.
    pub fn read(
        field: Option<Field<'_>>,
        num_class: usize,
        err: Errors<'_>,
    ) -> Result<Self, ModelError> {
        let Some(field) = field else {
            return Self::raw(num_class, None, err);
        };
        let line = field.line;
        let mut tokens = field.value.split(' ').filter(|t| !t.is_empty());
        let name = tokens.next().unwrap_or("");
        let mut sigmoid = None;
        let mut k = None;
        let mut sqrt = false;
        for token in tokens {
            match token.split_once(':') {
                Some(("sigmoid", v)) => {
                    sigmoid = Some(
                        v.parse::<f64>()
                            .map_err(|_| err.parse(line, format!("bad sigmoid {v:?}")))?,
                    )
                }
                Some(("num_class", v)) => {
                    k = Some(
                        v.parse::<usize>()
                            .map_err(|_| err.parse(line, format!("bad num_class {v:?}")))?,
                    )
                }
                None if token == "sqrt" => sqrt = true,
                _ => {}
            }
        }
        let regression = |transform| Objective {
            transform,
            classes: Vec::new(),
        };
        let scale = || match sigmoid {
            Some(s) if s > 0.0 && s.is_finite() => Ok(s),
            Some(s) => Err(err.parse(line, format!("sigmoid must be positive, found {s}"))),
            None => Err(err.parse(line, format!("objective {name} has no sigmoid parameter"))),
        };
        let classes = |transform| -> Result<Objective, ModelError> {
            let k = k.ok_or_else(|| {
                err.parse(line, format!("objective {name} has no num_class parameter"))
            })?;
            if k < 2 || k != num_class {
                return Err(err.parse(
                    line,
                    format!(
                        "objective {name} has num_class:{k}, the header has num_class={num_class}"
                    ),
                ));
            }
            Ok(Objective {
                transform,
                classes: (0..k as i64).map(ClassLabel::Int).collect(),
            })
        };
        let single = |o: Objective| {
            if num_class != 1 {
                Err(err.parse(
                    line,
                    format!("objective {name} needs num_class=1, the header has {num_class}"),
                ))
            } else {
                Ok(o)
            }
        };
        let squared = || {
            Err(err.unsupported(
                line,
                format!("objective {name} with sqrt (predictions are sign(x)*x^2 of the score)"),
            ))
        };
        match name {
            "binary" => single(Objective {
                transform: OutputTransform::BinaryLogistic { scale: scale()? },
                classes: vec![ClassLabel::Int(0), ClassLabel::Int(1)],
            }),
            "multiclass" | "softmax" => classes(OutputTransform::Softmax),
            "multiclassova" | "multiclass_ova" | "ova" | "ovr" => {
                classes(OutputTransform::OneVsAll { scale: scale()? })
            }
            "regression"
            | "regression_l2"
            | "mean_squared_error"
            | "mse"
            | "l2"
            | "l2_root"
            | "root_mean_squared_error"
            | "rmse"
            | "regression_l1"
            | "mean_absolute_error"
            | "l1"
            | "mae"
            | "quantile"
            | "mape"
            | "mean_absolute_percentage_error"
            | "fair" => {
                if sqrt {
                    return squared();
                }
                single(regression(OutputTransform::Identity))
            }
            "huber" | "lambdarank" | "rank_xendcg" | "xendcg" | "xe_ndcg" | "xe_ndcg_mart"
            | "xendcg_mart" => single(regression(OutputTransform::Identity)),
            "poisson" | "gamma" | "tweedie" => single(regression(OutputTransform::Exp)),
            "cross_entropy" | "xentropy" => single(regression(OutputTransform::Logistic)),
            "cross_entropy_lambda" | "xentlambda" => single(regression(OutputTransform::Softplus)),
            "custom" | "none" | "null" | "na" => Self::raw(num_class, Some(line), err),
            _ => Err(err.unsupported(line, format!("objective {:?}", super::clip(name)))),
        }
    }

    /// No objective: LightGBM's predict returns the raw score, which only fits a single-output model.
    fn raw(num_class: usize, line: Option<usize>, err: Errors<'_>) -> Result<Self, ModelError> {
        if num_class != 1 {
            let message =
                format!("a model without objective and {num_class} outputs (raw scores per class)");
            return Err(match line {
                Some(l) => err.unsupported(l, message),
                None => ModelError::unsupported(super::text::FORMAT, &err.ctx.source, message),
            });
        }
        Ok(Objective {
            transform: OutputTransform::Identity,
            classes: Vec::new(),
        })
    }
}

//! Native linear models as a PMML `RegressionModel`.
//!
//! Each native output (linear predictor) becomes a `RegressionTable` with the intercept, a `NumericPredictor`
//! per numeric input and a `CategoricalPredictor` per category of a one-hot input, in dipper's term order, so a
//! PMML evaluator adds the same terms in the same order. The link becomes the normalisation:
//!
//! - `identity`: regression, `normalizationMethod="none"`;
//! - `log` (Poisson): regression, `normalizationMethod="exp"`;
//! - `logit`: classification, `normalizationMethod="logit"`, the second class's table first and the first class's
//!   as the trivial last table (`intercept="0"`, no predictors), so p(second) = 1 / (1 + exp(-eta)) and
//!   p(first) = 1 - p(second);
//! - `softmax`: classification, one table per class, `normalizationMethod="softmax"`.
//!
//! dipper computes p(first) of a logit model as `1 / (1 + exp(eta))` and shifts softmax inputs by their maximum;
//! PMML's formulas differ from those by rounding only. Missing inputs and unknown categories give no prediction
//! (`missingValueTreatment` / `invalidValueTreatment` `returnInvalid`), as `dipper predict` rejects such rows.

use crate::native::linear::{LinearBody, LinearInput, LinearLink};

use super::xml::XmlWriter;
use super::{number, ExportError, Fields, Input, MissingInputs, Top};

pub(super) fn write(
    w: &mut XmlWriter,
    fields: &Fields,
    top: &Top,
    body: &LinearBody,
) -> Result<(), ExportError> {
    for (input, field) in body.inputs.iter().zip(&fields.inputs) {
        match (input, field) {
            (LinearInput::Numeric {}, Input::Continuous { .. })
            | (LinearInput::OneHot { .. }, Input::Categorical { .. }) => {}
            (input, field) => {
                return Err(ExportError::Unsupported(format!(
                "the linear model encodes feature '{}' as {input:?}, which does not fit its kind",
                field.name()
            )))
            }
        }
    }
    let (function, normalization, model_type) = match body.link {
        LinearLink::Identity => ("regression", "none", Some("linearRegression")),
        LinearLink::Log => ("regression", "exp", None),
        LinearLink::Logit => ("classification", "logit", Some("logisticRegression")),
        LinearLink::Softmax => ("classification", "softmax", Some("logisticRegression")),
    };
    let mut extra = vec![("normalizationMethod", normalization)];
    if let Some(t) = model_type {
        extra.push(("modelType", t));
    }
    w.start("RegressionModel", &top.attrs(function, &extra));
    fields.top_mining_schema(w, MissingInputs::Refused);
    fields.top_output(w);
    match body.link {
        LinearLink::Identity | LinearLink::Log => table(w, fields, body, 0, None)?,
        LinearLink::Logit => {
            let (first, second) = match fields.classes.as_slice() {
                [a, b] => (a, b),
                _ => {
                    return Err(ExportError::Unsupported(
                        "a logit model needs 2 classes".into(),
                    ))
                }
            };
            table(w, fields, body, 0, Some(second))?;
            w.empty(
                "RegressionTable",
                &[("intercept", "0"), ("targetCategory", first)],
            );
        }
        LinearLink::Softmax => {
            for (o, class) in fields.classes.iter().enumerate() {
                table(w, fields, body, o, Some(class))?;
            }
        }
    }
    w.end();
    Ok(())
}

/// The `RegressionTable` of output `o`.
fn table(
    w: &mut XmlWriter,
    fields: &Fields,
    body: &LinearBody,
    o: usize,
    class: Option<&String>,
) -> Result<(), ExportError> {
    let out = body
        .outputs
        .get(o)
        .ok_or_else(|| ExportError::Unsupported(format!("the linear model has no output {o}")))?;
    let intercept = number(out.intercept, || format!("the intercept of output {o}"))?;
    let mut attrs = vec![("intercept", intercept.as_str())];
    if let Some(c) = class {
        attrs.push(("targetCategory", c));
    }
    w.start("RegressionTable", &attrs);
    let mut coefs = out.coefficients.iter().enumerate();
    let mut next = |name: &str| {
        coefs
            .next()
            .ok_or_else(|| ExportError::Unsupported(format!("output {o} has too few coefficients")))
            .and_then(|(t, c)| number(*c, || format!("coefficient {t} of output {o} ('{name}')")))
    };
    for (input, field) in body.inputs.iter().zip(&fields.inputs) {
        match (input, field) {
            (LinearInput::Numeric {}, Input::Continuous { name }) => {
                let c = next(name)?;
                w.empty("NumericPredictor", &[("name", name), ("coefficient", &c)]);
            }
            (LinearInput::OneHot { categories }, Input::Categorical { name, values }) => {
                for code in 0..*categories {
                    let c = next(name)?;
                    // A code without a category name cannot come from a string input; it never scores.
                    if let Some(v) = values.get(code) {
                        w.empty(
                            "CategoricalPredictor",
                            &[("name", name), ("value", v), ("coefficient", &c)],
                        );
                    }
                }
            }
            (_, field) => {
                return Err(ExportError::Unsupported(format!(
                    "feature '{}' does not fit its linear encoding",
                    field.name()
                )))
            }
        }
    }
    w.end();
    Ok(())
}

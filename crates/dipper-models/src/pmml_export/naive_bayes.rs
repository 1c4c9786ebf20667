//! Native Naive Bayes as a PMML `NaiveBayesModel`.
//!
//! - Gaussian features: a `TargetValueStats` with one `GaussianDistribution` (mean, variance, the smoothing
//!   already in the variance) per class.
//! - Categorical features: PMML states p(category | class) as `PairCounts`, a count per (category, class)
//!   divided by the class's total over the field's categories. dipper stores smoothed log probabilities, not the
//!   counts, so the counts written are `exp(log prior + log p(category | class))` (scaled by the largest prior):
//!   the categories of a class sum to its prior "count", and any evaluator's division gives back
//!   `exp(log p(category | class))`, the smoothed probability dipper uses.
//! - Class priors: `BayesOutput` counts `exp(log prior)`, with the same scale.
//!
//! A missing input is left out of the product in both dipper and PMML. A category without probabilities in the
//! model is left out by dipper; it is not listed among the field's values here, so the unknown value becomes
//! missing (`invalidValueTreatment="asMissing"`) and is left out too.
//!
//! **Not exact**: dipper adds log densities, PMML evaluators multiply densities and take logs, and the model's
//! `threshold` (the smallest positive double) replaces a density that underflows. Densities above ~1e-308 (within
//! ~37 standard deviations) agree to rounding; beyond that dipper keeps the exact log density and PMML clamps.
//! And where an infinite input makes every class impossible, dipper falls back to the priors alone while PMML
//! (every density clamped alike) keeps the other features' evidence.

use crate::native::naive_bayes::{NaiveBayesBody, NaiveBayesFeature};

use super::xml::XmlWriter;
use super::{number, ExportError, Fields, Input, MissingInputs, Top};

/// The `threshold` attribute: the probability used in place of a zero one.
const THRESHOLD: &str = "5e-324";

/// Drops from each categorical field the category names the model has no probabilities for (see the module
/// doc).
pub(super) fn limit_categories(fields: &mut Fields, body: &NaiveBayesBody) {
    for (input, f) in fields.inputs.iter_mut().zip(&body.features) {
        if let (Input::Categorical { values, .. }, NaiveBayesFeature::Categorical { log_prob }) =
            (input, f)
        {
            let n = log_prob.first().map_or(0, Vec::len);
            if values.len() > n {
                *values = &values[..n];
            }
        }
    }
}

pub(super) fn write(
    w: &mut XmlWriter,
    fields: &Fields,
    top: &Top,
    body: &NaiveBayesBody,
) -> Result<(), ExportError> {
    let classes = &fields.classes;
    if body.class_log_prior.len() != classes.len() {
        return Err(ExportError::Unsupported(
            "the priors do not match the classes".into(),
        ));
    }
    let scale = body
        .class_log_prior
        .iter()
        .copied()
        .fold(f64::NEG_INFINITY, f64::max);
    w.start(
        "NaiveBayesModel",
        &top.attrs("classification", &[("threshold", THRESHOLD)]),
    );
    fields.top_mining_schema(w, MissingInputs::Accepted);
    fields.top_output(w);
    w.start("BayesInputs", &[]);
    for (f, input) in body.features.iter().zip(&fields.inputs) {
        match (f, input) {
            (NaiveBayesFeature::Gaussian { mean, variance }, Input::Continuous { name }) => {
                w.start("BayesInput", &[("fieldName", name)]);
                w.start("TargetValueStats", &[]);
                for (c, class) in classes.iter().enumerate() {
                    let (m, v) = match (mean.get(c), variance.get(c)) {
                        (Some(m), Some(v)) => (*m, *v),
                        _ => {
                            return Err(ExportError::Unsupported(format!(
                                "feature '{name}' lacks the distribution of class {class}"
                            )))
                        }
                    };
                    let what = |p: &str| format!("the {p} of feature '{name}' for class {class}");
                    let m = number(m, || what("mean"))?;
                    let v = number(v, || what("variance"))?;
                    w.start("TargetValueStat", &[("value", class)]);
                    w.empty("GaussianDistribution", &[("mean", &m), ("variance", &v)]);
                    w.end();
                }
                w.end();
                w.end();
            }
            (NaiveBayesFeature::Categorical { log_prob }, Input::Categorical { name, values }) => {
                let n_codes = log_prob.first().map_or(0, Vec::len);
                if values.len() < n_codes {
                    return Err(ExportError::Unsupported(format!(
                        "feature '{name}' has probabilities for {n_codes} categories but only {} category \
                         names",
                        values.len()
                    )));
                }
                w.start("BayesInput", &[("fieldName", name)]);
                for (code, value) in values.iter().enumerate() {
                    w.start("PairCounts", &[("value", value)]);
                    w.start("TargetValueCounts", &[]);
                    for (c, class) in classes.iter().enumerate() {
                        let lp =
                            log_prob
                                .get(c)
                                .and_then(|row| row.get(code))
                                .ok_or_else(|| {
                                    ExportError::Unsupported(format!(
                                        "feature '{name}' lacks p({value} | {class})"
                                    ))
                                })?;
                        let count = (body.class_log_prior[c] - scale + lp).exp();
                        let count = number(count, || {
                            format!("the count of '{value}' of feature '{name}' for class {class}")
                        })?;
                        w.empty("TargetValueCount", &[("value", class), ("count", &count)]);
                    }
                    w.end();
                    w.end();
                }
                w.end();
            }
            (_, input) => {
                return Err(ExportError::Unsupported(format!(
                    "the Naive Bayes distribution of feature '{}' does not fit its kind",
                    input.name()
                )))
            }
        }
    }
    w.end();
    w.start("BayesOutput", &[("fieldName", fields.label)]);
    w.start("TargetValueCounts", &[]);
    for (class, lp) in classes.iter().zip(&body.class_log_prior) {
        let count = number((lp - scale).exp(), || format!("the prior of class {class}"))?;
        w.empty("TargetValueCount", &[("value", class), ("count", &count)]);
    }
    w.end();
    w.end();
    w.end();
    Ok(())
}

//! NaiveBayesModel: class counts from BayesOutput, categorical inputs by PairCounts (optionally through a
//! discretizing DerivedField), continuous inputs by Gaussian, Poisson or uniform distributions; zero
//! likelihoods are replaced by `threshold`, and inputs that are missing or unseen are left out.

use std::sync::Arc;

use super::expr::{child_expression, Expr};
use super::fields::{Env, FieldDef, Scope, Slot, Source};
use super::model::Header;
use super::output::Outcome;
use super::value::{DataType, OpType, Value};
use super::xml::El;
use super::{Compiler, EvalError};
use crate::ModelError;

#[derive(Debug, Clone, Copy)]
enum Dist {
    Gaussian { mean: f64, variance: f64 },
    Poisson { mean: f64 },
    Uniform { lower: f64, upper: f64 },
}

impl Dist {
    fn parse(el: &El) -> Result<Dist, ModelError> {
        Ok(match el.tag() {
            "GaussianDistribution" => {
                let variance = el.req_num("variance")?;
                if variance.partial_cmp(&0.0) != Some(std::cmp::Ordering::Greater) {
                    return Err(el.err("variance must be positive"));
                }
                Dist::Gaussian {
                    mean: el.req_num("mean")?,
                    variance,
                }
            }
            "PoissonDistribution" => Dist::Poisson {
                mean: el.req_num("mean")?,
            },
            "UniformDistribution" => Dist::Uniform {
                lower: el.req_num("lower")?,
                upper: el.req_num("upper")?,
            },
            other => return Err(el.unsupported(format!("<{other}> in a TargetValueStat"))),
        })
    }

    fn density(self, x: f64) -> f64 {
        match self {
            Dist::Gaussian { mean, variance } => {
                let d = x - mean;
                (-(d * d) / (2.0 * variance)).exp() / (2.0 * std::f64::consts::PI * variance).sqrt()
            }
            Dist::Poisson { mean } => {
                if x < 0.0 || x.fract() != 0.0 {
                    0.0
                } else {
                    (x * mean.ln() - mean - libm::lgamma(x + 1.0)).exp()
                }
            }
            Dist::Uniform { lower, upper } => {
                if x >= lower && x <= upper {
                    1.0 / (upper - lower)
                } else {
                    0.0
                }
            }
        }
    }
}

#[derive(Debug)]
enum Input {
    /// Per input value: count per category (in model category order).
    Counts {
        slot: Slot,
        pairs: Vec<(Value, Vec<f64>)>,
    },
    /// Per category: a distribution.
    Stats {
        slot: Slot,
        dists: Vec<Option<Dist>>,
    },
}

#[derive(Debug)]
pub(crate) struct NaiveBayesModel {
    categories: Vec<Value>,
    priors: Vec<f64>,
    threshold: f64,
    inputs: Vec<Input>,
}

impl NaiveBayesModel {
    pub fn parse(
        el: &El,
        c: &mut Compiler<'_, '_>,
        scope: &Scope,
        header: &Header,
    ) -> Result<Self, ModelError> {
        let threshold = el.req_num("threshold")?;
        let out = el.req_child("BayesOutput")?;
        let counts = out.req_child("TargetValueCounts")?;
        let mut categories = Vec::new();
        let mut priors = Vec::new();
        for tv in counts.children_named("TargetValueCount") {
            categories.push(header.label(&tv, "value", tv.req("value")?)?);
            priors.push(tv.req_num("count")?);
        }
        if categories.is_empty() {
            return Err(counts.err("no TargetValueCount"));
        }
        let index = |v: &Value| categories.iter().position(|c| c.equals(v));
        let mut inputs = Vec::new();
        let inputs_el = el.req_child("BayesInputs")?;
        for bi in inputs_el.children_named("BayesInput") {
            let slot = match bi.child("DerivedField") {
                Some(d) => {
                    let expr = Expr::parse(&child_expression(&d)?, c, scope, 0)?;
                    let ty = DataType::of(&d, Some(DataType::String))?;
                    c.prog.add(
                        FieldDef {
                            name: Arc::from(d.attr("name").unwrap_or(bi.req("fieldName")?)),
                            data_type: ty,
                            optype: OpType::of(&d, ty)?,
                        },
                        Source::Derived(expr),
                    )
                }
                None => scope.resolve(&bi, "fieldName")?,
            };
            if let Some(stats) = bi.child("TargetValueStats") {
                let mut dists = vec![None; categories.len()];
                for s in stats.children_named("TargetValueStat") {
                    let label = header.label(&s, "value", s.req("value")?)?;
                    let i = index(&label).ok_or_else(|| {
                        s.err(format!(
                            "category '{}' is not in the BayesOutput",
                            label.to_text()
                        ))
                    })?;
                    let d = s
                        .children()
                        .next()
                        .ok_or_else(|| s.err("a distribution is required"))?;
                    dists[i] = Some(Dist::parse(&d)?);
                }
                inputs.push(Input::Stats { slot, dists });
            } else {
                let ty = c.prog.defs[slot].data_type;
                let mut pairs = Vec::new();
                for pc in bi.children_named("PairCounts") {
                    let value = ty.parse_at(&pc, "value", pc.req("value")?)?;
                    let mut row = vec![0.0; categories.len()];
                    let tvc = pc.req_child("TargetValueCounts")?;
                    for tv in tvc.children_named("TargetValueCount") {
                        let label = header.label(&tv, "value", tv.req("value")?)?;
                        let i = index(&label).ok_or_else(|| {
                            tv.err(format!(
                                "category '{}' is not in the BayesOutput",
                                label.to_text()
                            ))
                        })?;
                        row[i] = tv.req_num("count")?;
                    }
                    pairs.push((value, row));
                }
                inputs.push(Input::Counts { slot, pairs });
            }
        }
        Ok(NaiveBayesModel {
            categories,
            priors,
            threshold,
            inputs,
        })
    }

    pub fn categories(&self) -> Vec<Value> {
        self.categories.clone()
    }

    pub fn score(&self, env: &mut Env) -> Result<Outcome, EvalError> {
        let k = self.categories.len();
        let mut logl: Vec<f64> = self.priors.iter().map(|p| p.ln()).collect();
        for input in &self.inputs {
            match input {
                Input::Counts { slot, pairs } => {
                    let v = env.get(*slot)?;
                    if v.is_missing() {
                        continue;
                    }
                    let Some((_, counts)) = pairs.iter().find(|(p, _)| p.equals(&v)) else {
                        continue;
                    };
                    for j in 0..k {
                        let p = if self.priors[j] > 0.0 {
                            counts[j] / self.priors[j]
                        } else {
                            0.0
                        };
                        logl[j] += if p > 0.0 { p } else { self.threshold }.ln();
                    }
                }
                Input::Stats { slot, dists } => {
                    let Some(x) = env.num(*slot)? else {
                        continue;
                    };
                    for j in 0..k {
                        let p = dists[j].map_or(0.0, |d| d.density(x));
                        logl[j] += if p > 0.0 { p } else { self.threshold }.ln();
                    }
                }
            }
        }
        let max = logl.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        if max == f64::NEG_INFINITY || max.is_nan() {
            return Ok(Outcome::missing());
        }
        let mut sum = 0.0;
        for l in logl.iter_mut() {
            *l = (*l - max).exp();
            sum += *l;
        }
        Ok(Outcome::class(
            self.categories
                .iter()
                .cloned()
                .zip(logl.into_iter().map(|l| l / sum))
                .collect(),
        ))
    }
}

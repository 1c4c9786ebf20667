//! GeneralRegressionModel: a design matrix from factors and covariates (PPMatrix, with interactions and powers),
//! coefficients per parameter and category (ParamMatrix), then the model type's mean: identity (regression,
//! generalLinear), a GLM inverse link with offset and trials (generalizedLinear), or a softmax over categories
//! (multinomialLogistic).

use super::fields::{Env, Scope, Slot};
use super::functions::std_normal_cdf;
use super::model::{Function, Header};
use super::output::Outcome;
use super::value::Value;
use super::xml::El;
use super::{Compiler, EvalError};
use crate::ModelError;

#[derive(Debug, Clone, Copy, PartialEq)]
enum ModelType {
    Linear,
    Generalized,
    Multinomial,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Link {
    Identity,
    Log,
    Logc,
    Logit,
    Probit,
    Cloglog,
    Loglog,
    Cauchit,
    Power(f64),
    OddsPower(f64),
    NegBin(f64),
}

impl Link {
    fn inverse(self, eta: f64) -> f64 {
        match self {
            Link::Identity => eta,
            Link::Log => eta.exp(),
            Link::Logc => 1.0 - eta.exp(),
            Link::Logit => 1.0 / (1.0 + (-eta).exp()),
            Link::Probit => std_normal_cdf(eta),
            Link::Cloglog => 1.0 - (-(eta.exp())).exp(),
            Link::Loglog => (-((-eta).exp())).exp(),
            Link::Cauchit => 0.5 + eta.atan() / std::f64::consts::PI,
            Link::Power(0.0) => eta.exp(),
            Link::Power(d) => eta.powf(1.0 / d),
            Link::OddsPower(0.0) => 1.0 / (1.0 + (-eta).exp()),
            Link::OddsPower(d) => {
                let t = (1.0 + d * eta).powf(1.0 / d);
                t / (1.0 + t)
            }
            Link::NegBin(a) => 1.0 / (a * ((-eta).exp() - 1.0)),
        }
    }
}

/// How one parameter's design value is computed: a product of factor indicators and covariate powers.
#[derive(Debug, Clone)]
enum Cell {
    Factor { slot: Slot, level: Value },
    Covariate { slot: Slot, power: f64 },
}

#[derive(Debug)]
pub(crate) struct GeneralRegressionModel {
    function: Function,
    model_type: ModelType,
    link: Link,
    /// Per parameter: its cells (none = the intercept's constant 1).
    params: Vec<Vec<Cell>>,
    /// Per category row of the ParamMatrix (one row, `None`, for regression and binary models): betas.
    betas: Vec<(Option<Value>, Vec<f64>)>,
    categories: Vec<Value>,
    reference: Option<Value>,
    offset_slot: Option<Slot>,
    offset: f64,
    trials_slot: Option<Slot>,
    trials: f64,
}

impl GeneralRegressionModel {
    pub fn parse(
        el: &El,
        c: &mut Compiler<'_, '_>,
        scope: &Scope,
        header: &Header,
    ) -> Result<Self, ModelError> {
        let model_type = match el.req("modelType")? {
            "regression" | "generalLinear" => ModelType::Linear,
            "generalizedLinear" => ModelType::Generalized,
            "multinomialLogistic" => ModelType::Multinomial,
            other => return Err(el.unsupported(format!("modelType=\"{other}\""))),
        };
        let lp = el.num_or("linkParameter", 1.0)?;
        let link = match model_type {
            ModelType::Generalized => match el.req("linkFunction")? {
                "identity" => Link::Identity,
                "log" => Link::Log,
                "logc" => Link::Logc,
                "logit" => Link::Logit,
                "probit" => Link::Probit,
                "cloglog" => Link::Cloglog,
                "loglog" => Link::Loglog,
                "cauchit" => Link::Cauchit,
                "power" => Link::Power(lp),
                "oddspower" => Link::OddsPower(lp),
                "negbin" => Link::NegBin(el.req_num("distParameter")?),
                other => return Err(el.err(format!("unknown linkFunction=\"{other}\""))),
            },
            _ => Link::Identity,
        };
        let names: Vec<String> = el
            .req_child("ParameterList")?
            .children_named("Parameter")
            .map(|p| p.req("name").map(str::to_string))
            .collect::<Result<_, _>>()?;
        let pos = |e: &El, n: &str| {
            names
                .iter()
                .position(|x| x == n)
                .ok_or_else(|| e.err(format!("parameterName=\"{n}\" is not in the ParameterList")))
        };
        let list = |tag: &str| -> Vec<String> {
            el.child(tag)
                .map(|l| {
                    l.children_named("Predictor")
                        .filter_map(|p| p.attr("name").map(str::to_string))
                        .collect()
                })
                .unwrap_or_default()
        };
        let (factors, covariates) = (list("FactorList"), list("CovariateList"));
        let mut params = vec![Vec::new(); names.len()];
        if let Some(pp) = el.child("PPMatrix") {
            for cell in pp.children_named("PPCell") {
                if cell.attr("targetCategory").is_some() {
                    return Err(cell.unsupported("PPCells per target category"));
                }
                let pred = cell.req("predictorName")?;
                let slot = scope.resolve(&cell, "predictorName")?;
                let value = cell.req("value")?;
                let p = pos(&cell, cell.req("parameterName")?)?;
                if factors.iter().any(|f| f == pred) {
                    let ty = c.prog.defs[slot].data_type;
                    params[p].push(Cell::Factor {
                        slot,
                        level: ty.parse_at(&cell, "value", value)?,
                    });
                } else if covariates.iter().any(|f| f == pred) {
                    let power = super::xml::parse_f64(value)
                        .ok_or_else(|| cell.err(format!("value=\"{value}\" is not a number")))?;
                    params[p].push(Cell::Covariate { slot, power });
                } else {
                    return Err(cell.err(format!(
                        "predictorName=\"{pred}\" is in neither the FactorList nor the CovariateList"
                    )));
                }
            }
        }
        let mut betas: Vec<(Option<Value>, Vec<f64>)> = Vec::new();
        for pc in el.req_child("ParamMatrix")?.children_named("PCell") {
            let cat = match pc.attr("targetCategory") {
                Some(t) => Some(header.label(&pc, "targetCategory", t)?),
                None => None,
            };
            let p = pos(&pc, pc.req("parameterName")?)?;
            let row = match betas.iter().position(|(c, _)| match (c, &cat) {
                (Some(a), Some(b)) => a.equals(b),
                (None, None) => true,
                _ => false,
            }) {
                Some(i) => i,
                None => {
                    betas.push((cat.clone(), vec![0.0; names.len()]));
                    betas.len() - 1
                }
            };
            betas[row].1[p] = pc.req_num("beta")?;
        }
        if betas.is_empty() {
            betas.push((None, vec![0.0; names.len()]));
        }
        let reference = match el.attr("targetReferenceCategory") {
            Some(t) => Some(header.label(el, "targetReferenceCategory", t)?),
            None => None,
        };
        let categories = header.categories_or(
            betas
                .iter()
                .filter_map(|b| b.0.clone())
                .chain(reference.clone()),
        );
        if header.function == Function::Classification {
            match model_type {
                ModelType::Linear => {
                    return Err(el.unsupported(
                        "a classification model of modelType regression/generalLinear",
                    ))
                }
                ModelType::Generalized if categories.len() != 2 => return Err(el.err(
                    "a generalizedLinear classification model needs exactly two target categories",
                )),
                _ => {}
            }
        }
        let slot_of = |attr: &str| -> Result<Option<Slot>, ModelError> {
            match el.attr(attr) {
                Some(_) => Ok(Some(scope.resolve(el, attr)?)),
                None => Ok(None),
            }
        };
        Ok(GeneralRegressionModel {
            function: header.function,
            model_type,
            link,
            params,
            betas,
            categories,
            reference,
            offset_slot: slot_of("offsetVariable")?,
            offset: el.num_or("offsetValue", 0.0)?,
            trials_slot: slot_of("trialsVariable")?,
            trials: el.num_or("trialsValue", 1.0)?,
        })
    }

    pub fn categories(&self) -> Vec<Value> {
        self.categories.clone()
    }

    /// The design value of every parameter; `None` when an input it needs is missing.
    fn design(&self, env: &mut Env) -> Result<Option<Vec<f64>>, EvalError> {
        let mut x = Vec::with_capacity(self.params.len());
        for cells in &self.params {
            let mut v = 1.0;
            for cell in cells {
                match cell {
                    Cell::Factor { slot, level } => {
                        let f = env.get(*slot)?;
                        if f.is_missing() {
                            return Ok(None);
                        }
                        if !f.equals(level) {
                            v = 0.0;
                        }
                    }
                    Cell::Covariate { slot, power } => {
                        let Some(c) = env.num(*slot)? else {
                            return Ok(None);
                        };
                        v *= if *power == 1.0 { c } else { c.powf(*power) };
                    }
                }
            }
            x.push(v);
        }
        Ok(Some(x))
    }

    pub fn score(&self, env: &mut Env) -> Result<Outcome, EvalError> {
        let Some(x) = self.design(env)? else {
            return Ok(Outcome::missing());
        };
        let dot = |b: &[f64]| b.iter().zip(&x).map(|(b, x)| b * x).sum::<f64>();
        let offset = match self.offset_slot {
            Some(s) => match env.num(s)? {
                Some(o) => o,
                None => return Ok(Outcome::missing()),
            },
            None => self.offset,
        };
        let trials = match self.trials_slot {
            Some(s) => match env.num(s)? {
                Some(t) => t,
                None => return Ok(Outcome::missing()),
            },
            None => self.trials,
        };
        match (self.model_type, self.function) {
            (ModelType::Multinomial, Function::Classification) => {
                let mut probs: Vec<(Value, f64)> = self
                    .categories
                    .iter()
                    .map(|c| {
                        let eta = match self
                            .betas
                            .iter()
                            .find(|(b, _)| b.as_ref().is_some_and(|b| b.equals(c)))
                        {
                            Some((_, b)) => dot(b) + offset,
                            None => 0.0,
                        };
                        (c.clone(), eta)
                    })
                    .collect();
                let mut etas: Vec<f64> = probs.iter().map(|p| p.1).collect();
                crate::transform::softmax_in_place(&mut etas);
                for (p, e) in probs.iter_mut().zip(etas) {
                    p.1 = e;
                }
                Ok(Outcome::class(probs))
            }
            (_, Function::Classification) => {
                let mu = self.link.inverse(dot(&self.betas[0].1) + offset);
                let reference = self
                    .reference
                    .clone()
                    .unwrap_or_else(|| self.categories[self.categories.len() - 1].clone());
                Ok(Outcome::class(
                    self.categories
                        .iter()
                        .map(|c| (c.clone(), if c.equals(&reference) { 1.0 - mu } else { mu }))
                        .collect(),
                ))
            }
            (_, Function::Regression) => {
                let eta = dot(&self.betas[0].1) + offset;
                Ok(Outcome::value(self.link.inverse(eta) * trials))
            }
        }
    }
}

//! RegressionModel: one RegressionTable (regression) or one per category (classification) of numeric,
//! categorical and interaction terms, then a normalization (softmax, logit, probit, cloglog, loglog, cauchit,
//! exp, simplemax or none).

use super::fields::{Env, Scope, Slot};
use super::functions::std_normal_cdf;
use super::model::{Function, Header};
use super::output::Outcome;
use super::value::Value;
use super::xml::El;
use super::{Compiler, EvalError};
use crate::ModelError;

/// How raw table values become a prediction or probabilities (shared with GeneralRegression's links).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Norm {
    None,
    Softmax,
    Simplemax,
    Logit,
    Probit,
    Cloglog,
    Loglog,
    Cauchit,
    Exp,
}

impl Norm {
    pub fn parse(el: &El) -> Result<Norm, ModelError> {
        Ok(
            match el.choice(
                "normalizationMethod",
                &[
                    "none",
                    "simplemax",
                    "softmax",
                    "logit",
                    "probit",
                    "cloglog",
                    "exp",
                    "loglog",
                    "cauchit",
                ],
                "none",
            )? {
                "none" => Norm::None,
                "simplemax" => Norm::Simplemax,
                "softmax" => Norm::Softmax,
                "logit" => Norm::Logit,
                "probit" => Norm::Probit,
                "cloglog" => Norm::Cloglog,
                "exp" => Norm::Exp,
                "loglog" => Norm::Loglog,
                _ => Norm::Cauchit,
            },
        )
    }

    /// The inverse link applied to one value.
    pub fn link(self, y: f64) -> f64 {
        match self {
            Norm::None | Norm::Simplemax => y,
            Norm::Softmax | Norm::Logit => 1.0 / (1.0 + (-y).exp()),
            Norm::Probit => std_normal_cdf(y),
            Norm::Cloglog => 1.0 - (-(y.exp())).exp(),
            Norm::Loglog => (-((-y).exp())).exp(),
            Norm::Cauchit => 0.5 + y.atan() / std::f64::consts::PI,
            Norm::Exp => y.exp(),
        }
    }

    /// Class probabilities from one value per category, in place.
    pub fn classify(self, ys: &mut [f64]) {
        let n = ys.len();
        match self {
            Norm::Softmax => {
                if n == 1 {
                    ys[0] = self.link(ys[0]);
                } else {
                    crate::transform::softmax_in_place(ys);
                }
            }
            Norm::Simplemax => {
                let sum: f64 = ys.iter().sum();
                ys.iter_mut().for_each(|y| *y /= sum);
            }
            _ => {
                // Every category but the last goes through the link; the last takes what is left.
                let mut sum = 0.0;
                for y in ys[..n.saturating_sub(1)].iter_mut() {
                    *y = self.link(*y);
                    sum += *y;
                }
                if n > 0 {
                    ys[n - 1] = 1.0 - sum;
                }
            }
        }
    }
}

#[derive(Debug, Clone)]
enum Term {
    Numeric {
        slot: Slot,
        exponent: f64,
        coef: f64,
    },
    Categorical {
        slot: Slot,
        value: Value,
        coef: f64,
    },
    Product {
        slots: Vec<Slot>,
        coef: f64,
    },
}

#[derive(Debug, Clone)]
struct Table {
    intercept: f64,
    category: Option<Value>,
    terms: Vec<Term>,
}

impl Table {
    fn parse(el: &El, c: &Compiler, scope: &Scope, header: &Header) -> Result<Table, ModelError> {
        let mut terms = Vec::new();
        for t in el.children() {
            match t.tag() {
                "NumericPredictor" => terms.push(Term::Numeric {
                    slot: scope.resolve(&t, "name")?,
                    exponent: t.num_or("exponent", 1.0)?,
                    coef: t.req_num("coefficient")?,
                }),
                "CategoricalPredictor" => {
                    let slot = scope.resolve(&t, "name")?;
                    let ty = c.prog.defs[slot].data_type;
                    terms.push(Term::Categorical {
                        slot,
                        value: ty.parse_at(&t, "value", t.req("value")?)?,
                        coef: t.req_num("coefficient")?,
                    })
                }
                "PredictorTerm" => {
                    let slots = t
                        .children_named("FieldRef")
                        .map(|f| scope.resolve(&f, "field"))
                        .collect::<Result<Vec<_>, _>>()?;
                    if slots.is_empty() {
                        return Err(t.err("a PredictorTerm needs at least one FieldRef"));
                    }
                    terms.push(Term::Product {
                        slots,
                        coef: t.req_num("coefficient")?,
                    })
                }
                other => return Err(t.unsupported(format!("<{other}> in a RegressionTable"))),
            }
        }
        let category = match el.attr("targetCategory") {
            Some(v) => Some(header.label(el, "targetCategory", v)?),
            None => None,
        };
        Ok(Table {
            intercept: el.req_num("intercept")?,
            category,
            terms,
        })
    }

    /// The table's value; `None` when an input it reads is missing.
    fn eval(&self, env: &mut Env) -> Result<Option<f64>, EvalError> {
        let mut y = self.intercept;
        for t in &self.terms {
            match t {
                Term::Numeric {
                    slot,
                    exponent,
                    coef,
                } => {
                    let Some(x) = env.num(*slot)? else {
                        return Ok(None);
                    };
                    y += coef
                        * if *exponent == 1.0 {
                            x
                        } else {
                            x.powf(*exponent)
                        };
                }
                // A missing category matches no CategoricalPredictor, so it adds nothing (as PMML4S does).
                Term::Categorical { slot, value, coef } => {
                    if env.get(*slot)?.equals(value) {
                        y += coef;
                    }
                }
                Term::Product { slots, coef } => {
                    let mut p = *coef;
                    for s in slots {
                        let Some(x) = env.num(*s)? else {
                            return Ok(None);
                        };
                        p *= x;
                    }
                    y += p;
                }
            }
        }
        Ok(Some(y))
    }
}

#[derive(Debug)]
pub(crate) struct RegressionModel {
    function: Function,
    norm: Norm,
    tables: Vec<Table>,
}

impl RegressionModel {
    pub fn parse(
        el: &El,
        c: &mut Compiler<'_, '_>,
        scope: &Scope,
        header: &Header,
    ) -> Result<Self, ModelError> {
        let norm = Norm::parse(el)?;
        let tables = el
            .children_named("RegressionTable")
            .map(|t| Table::parse(&t, c, scope, header))
            .collect::<Result<Vec<_>, _>>()?;
        match header.function {
            Function::Regression if tables.len() != 1 => {
                return Err(el.err(format!(
                    "a regression RegressionModel has one RegressionTable, not {}",
                    tables.len()
                )))
            }
            Function::Classification => {
                if tables.len() < 2 {
                    return Err(el.err(
                        "a classification RegressionModel needs a RegressionTable per category",
                    ));
                }
                if tables.iter().any(|t| t.category.is_none()) {
                    return Err(el.err(
                        "every RegressionTable of a classification model needs a targetCategory",
                    ));
                }
                if norm == Norm::Exp {
                    return Err(el.unsupported("normalizationMethod=\"exp\" for classification"));
                }
            }
            _ => {}
        }
        Ok(RegressionModel {
            function: header.function,
            norm,
            tables,
        })
    }

    pub fn categories(&self) -> Vec<Value> {
        self.tables
            .iter()
            .filter_map(|t| t.category.clone())
            .collect()
    }

    pub fn score(&self, env: &mut Env) -> Result<Outcome, EvalError> {
        if self.function == Function::Regression {
            return Ok(match self.tables[0].eval(env)? {
                Some(y) => Outcome::value(self.norm.link(y)),
                None => Outcome::missing(),
            });
        }
        let mut ys = Vec::with_capacity(self.tables.len());
        for t in &self.tables {
            match t.eval(env)? {
                Some(y) => ys.push(y),
                None => return Ok(Outcome::missing()),
            }
        }
        self.norm.classify(&mut ys);
        Ok(Outcome::class(
            self.tables
                .iter()
                .zip(ys)
                .map(|(t, p)| (t.category.clone().unwrap_or(Value::Missing), p))
                .collect(),
        ))
    }
}

//! SupportVectorMachineModel: linear, polynomial, radial-basis and sigmoid kernels over a VectorDictionary, as
//! support vectors or (linear) coefficients; regression, binary, one-against-one (voting) and one-against-all
//! classification. A classification's probabilities are the share of votes each category got (one machine: the
//! winner gets 1), since PMML SVMs carry no calibrated probabilities.

use std::collections::HashMap;

use super::fields::{Env, Scope, Slot};
use super::model::{Function, Header};
use super::output::{Outcome, OutcomeKind};
use super::value::Value;
use super::xml::{array, num_array, El};
use super::{Compiler, EvalError};
use crate::ModelError;

#[derive(Debug, Clone, Copy)]
enum Kernel {
    Linear,
    Polynomial { gamma: f64, coef0: f64, degree: f64 },
    Rbf { gamma: f64 },
    Sigmoid { gamma: f64, coef0: f64 },
}

impl Kernel {
    fn eval(self, x: &[f64], y: &[f64]) -> f64 {
        let dot = || x.iter().zip(y).map(|(a, b)| a * b).sum::<f64>();
        match self {
            Kernel::Linear => dot(),
            Kernel::Polynomial {
                gamma,
                coef0,
                degree,
            } => (gamma * dot() + coef0).powf(degree),
            Kernel::Rbf { gamma } => {
                let d2: f64 = x.iter().zip(y).map(|(a, b)| (a - b) * (a - b)).sum();
                (-gamma * d2).exp()
            }
            Kernel::Sigmoid { gamma, coef0 } => (gamma * dot() + coef0).tanh(),
        }
    }
}

#[derive(Debug)]
struct Machine {
    target: Option<Value>,
    alternate: Option<Value>,
    threshold: f64,
    bias: f64,
    /// (support vector index, coefficient), or with coefficients representation, one coefficient per field.
    terms: Vec<(usize, f64)>,
}

/// One coordinate of the vector space: a numeric field, or a category's indicator.
#[derive(Debug)]
enum Coord {
    Field(Slot),
    Indicator(Slot, Value),
}

#[derive(Debug)]
pub(crate) struct SvmModel {
    function: Function,
    kernel: Kernel,
    fields: Vec<Coord>,
    vectors: Vec<Vec<f64>>,
    coefficients_repr: bool,
    one_against_one: bool,
    max_wins: bool,
    machines: Vec<Machine>,
    categories: Vec<Value>,
}

impl SvmModel {
    pub fn parse(
        el: &El,
        c: &mut Compiler<'_, '_>,
        scope: &Scope,
        header: &Header,
    ) -> Result<Self, ModelError> {
        let kernel_el = el
            .children()
            .find(|k| k.tag().ends_with("KernelType"))
            .ok_or_else(|| el.err("a kernel (LinearKernelType, ...) is required"))?;
        let kernel = match kernel_el.tag() {
            "LinearKernelType" => Kernel::Linear,
            "PolynomialKernelType" => Kernel::Polynomial {
                gamma: kernel_el.num_or("gamma", 1.0)?,
                coef0: kernel_el.num_or("coef0", 1.0)?,
                degree: kernel_el.num_or("degree", 1.0)?,
            },
            "RadialBasisKernelType" => Kernel::Rbf {
                gamma: kernel_el.num_or("gamma", 1.0)?,
            },
            "SigmoidKernelType" => Kernel::Sigmoid {
                gamma: kernel_el.num_or("gamma", 1.0)?,
                coef0: kernel_el.num_or("coef0", 1.0)?,
            },
            other => return Err(kernel_el.unsupported(format!("<{other}>"))),
        };
        let dict = el.req_child("VectorDictionary")?;
        let vf = dict.req_child("VectorFields")?;
        let mut fields = Vec::new();
        for f in vf.children() {
            match f.tag() {
                "FieldRef" => fields.push(Coord::Field(scope.resolve(&f, "field")?)),
                "CategoricalPredictor" => {
                    let slot = scope.resolve(&f, "name")?;
                    let ty = c.prog.defs[slot].data_type;
                    let value = ty.parse_at(&f, "value", f.req("value")?)?;
                    if f.num_or("coefficient", 1.0)? != 1.0 {
                        return Err(f.unsupported(
                            "a VectorFields CategoricalPredictor with a coefficient other than 1",
                        ));
                    }
                    fields.push(Coord::Indicator(slot, value));
                }
                other => return Err(f.unsupported(format!("<{other}> in VectorFields"))),
            }
        }
        let mut ids = HashMap::new();
        let mut vectors = Vec::new();
        for vi in dict.children_named("VectorInstance") {
            let v = if let Some(a) = vi.child("Array") {
                num_array(&a)?
            } else if let Some(s) = vi
                .child("REAL-SparseArray")
                .or_else(|| vi.child("INT-SparseArray"))
            {
                let n = s.uint("n")?.unwrap_or(fields.len());
                let mut v = vec![0.0; n];
                let idx = match s.child("Indices") {
                    Some(i) => array(&i)?,
                    None => Vec::new(),
                };
                let vals = match s.child("REAL-Entries").or_else(|| s.child("INT-Entries")) {
                    Some(e) => num_array(&e)?,
                    None => Vec::new(),
                };
                if idx.len() != vals.len() {
                    return Err(s.err("Indices and Entries differ in length"));
                }
                for (i, x) in idx.iter().zip(vals) {
                    let i: usize = i
                        .parse()
                        .ok()
                        .filter(|i| (1..=n).contains(i))
                        .ok_or_else(|| s.err(format!("index {i} is not in 1..={n}")))?;
                    v[i - 1] = x;
                }
                v
            } else {
                return Err(vi.err("an Array or REAL-SparseArray is required"));
            };
            if v.len() != fields.len() {
                return Err(vi.err(format!(
                    "the vector has {} values for {} VectorFields",
                    v.len(),
                    fields.len()
                )));
            }
            ids.insert(vi.req("id")?.to_string(), vectors.len());
            vectors.push(v);
        }
        let coefficients_repr = el.choice(
            "svmRepresentation",
            &["SupportVectors", "Coefficients"],
            "SupportVectors",
        )? == "Coefficients";
        let one_against_one = el.choice(
            "classificationMethod",
            &["OneAgainstAll", "OneAgainstOne"],
            "OneAgainstAll",
        )? == "OneAgainstOne";
        let threshold = el.num_or("threshold", 0.0)?;
        let mut machines = Vec::new();
        for m in el.children_named("SupportVectorMachine") {
            let coefs = m.req_child("Coefficients")?;
            let values: Vec<f64> = coefs
                .children_named("Coefficient")
                .map(|c| c.num_or("value", 0.0))
                .collect::<Result<_, _>>()?;
            let terms = if coefficients_repr {
                if values.len() != fields.len() {
                    return Err(coefs.err("one Coefficient per VectorField is required"));
                }
                values.into_iter().enumerate().collect()
            } else {
                let svs: Vec<usize> = match m.child("SupportVectors") {
                    Some(s) => s
                        .children_named("SupportVector")
                        .map(|sv| {
                            let id = sv.req("vectorId")?;
                            ids.get(id).copied().ok_or_else(|| {
                                sv.err(format!("vectorId=\"{id}\" is not in the VectorDictionary"))
                            })
                        })
                        .collect::<Result<_, _>>()?,
                    None => Vec::new(),
                };
                if svs.len() != values.len() {
                    return Err(coefs.err("one Coefficient per SupportVector is required"));
                }
                svs.into_iter().zip(values).collect()
            };
            let label = |attr: &str| -> Result<Option<Value>, ModelError> {
                match m.attr(attr) {
                    Some(t) => Ok(Some(header.label(&m, attr, t)?)),
                    None => Ok(None),
                }
            };
            machines.push(Machine {
                target: label("targetCategory")?,
                alternate: label("alternateTargetCategory")?,
                threshold: m.num_or("threshold", threshold)?,
                bias: coefs.num_or("absoluteValue", 0.0)?,
                terms,
            });
        }
        if machines.is_empty() {
            return Err(el.err("no SupportVectorMachine"));
        }
        let categories = header.categories_or(
            machines
                .iter()
                .flat_map(|m| m.target.iter().chain(m.alternate.iter()).cloned()),
        );
        if header.function == Function::Classification {
            let binary = machines.len() == 1 && machines[0].alternate.is_some();
            if machines.iter().any(|m| m.target.is_none())
                || (one_against_one || binary) && machines.iter().any(|m| m.alternate.is_none())
            {
                return Err(el.err("classification machines need targetCategory (and alternateTargetCategory for binary and one-against-one)"));
            }
        }
        Ok(SvmModel {
            function: header.function,
            kernel,
            fields,
            vectors,
            coefficients_repr,
            one_against_one,
            max_wins: el.boolean("maxWins", false)?,
            machines,
            categories,
        })
    }

    pub fn categories(&self) -> Vec<Value> {
        self.categories.clone()
    }

    fn decision(&self, m: &Machine, x: &[f64]) -> f64 {
        let mut f = m.bias;
        if self.coefficients_repr {
            for &(i, c) in &m.terms {
                f += c * x[i];
            }
        } else {
            for &(v, c) in &m.terms {
                f += c * self.kernel.eval(x, &self.vectors[v]);
            }
        }
        f
    }

    pub fn score(&self, env: &mut Env) -> Result<Outcome, EvalError> {
        let mut x = Vec::with_capacity(self.fields.len());
        for coord in &self.fields {
            match coord {
                Coord::Field(s) => match env.num(*s)? {
                    Some(v) => x.push(v),
                    None => return Ok(Outcome::missing()),
                },
                Coord::Indicator(s, value) => {
                    let v = env.get(*s)?;
                    if v.is_missing() {
                        return Ok(Outcome::missing());
                    }
                    x.push(if v.equals(value) { 1.0 } else { 0.0 });
                }
            }
        }
        if self.function == Function::Regression {
            return Ok(Outcome::value(self.decision(&self.machines[0], &x)));
        }
        let mut votes = vec![0.0; self.categories.len()];
        let index = |v: &Option<Value>| {
            v.as_ref()
                .and_then(|v| self.categories.iter().position(|c| c.equals(v)))
        };
        let binary = self.machines.len() == 1 && self.machines[0].alternate.is_some();
        if self.one_against_one || binary {
            for m in &self.machines {
                let f = self.decision(m, &x);
                // maxWins turns the rule around: a value above the threshold votes for targetCategory.
                let for_target = if self.max_wins {
                    f > m.threshold
                } else {
                    f < m.threshold
                };
                let winner = if for_target { &m.target } else { &m.alternate };
                if let Some(i) = index(winner) {
                    votes[i] += 1.0;
                }
            }
        } else {
            let mut best: Option<(f64, usize)> = None;
            for m in &self.machines {
                let f = self.decision(m, &x);
                let better = match best {
                    None => true,
                    Some((b, _)) => {
                        if self.max_wins {
                            f > b
                        } else {
                            f < b
                        }
                    }
                };
                if better {
                    if let Some(i) = index(&m.target) {
                        best = Some((f, i));
                    }
                }
            }
            if let Some((_, i)) = best {
                votes[i] = 1.0;
            }
        }
        let total: f64 = votes.iter().sum();
        if total == 0.0 {
            return Ok(Outcome::missing());
        }
        let o = Outcome::class(
            self.categories
                .iter()
                .cloned()
                .zip(votes.into_iter().map(|v| v / total))
                .collect(),
        );
        debug_assert!(matches!(o.kind, OutcomeKind::Class { .. }));
        Ok(o)
    }
}

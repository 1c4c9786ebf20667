//! NeuralNetwork: inputs from DerivedFields, feed-forward layers of neurons with any PMML activation (including
//! radialBasis) and per-layer softmax/simplemax normalization, and outputs mapped back to the target by
//! NormDiscrete (a category's probability) or FieldRef/NormContinuous (a value).

use std::collections::HashMap;

use super::expr::{child_expression, Expr};
use super::fields::{Env, Scope};
use super::model::{Function, Header};
use super::output::Outcome;
use super::value::Value;
use super::xml::El;
use super::{Compiler, EvalError};
use crate::ModelError;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Activation {
    Threshold(f64),
    Logistic,
    Tanh,
    Identity,
    Exponential,
    Reciprocal,
    Square,
    Gauss,
    Sine,
    Cosine,
    Elliott,
    Arctan,
    Rectifier,
    RadialBasis,
}

impl Activation {
    fn parse(el: &El, name: &str, threshold: f64) -> Result<Activation, ModelError> {
        Ok(match name {
            "threshold" => Activation::Threshold(threshold),
            "logistic" => Activation::Logistic,
            "tanh" => Activation::Tanh,
            "identity" => Activation::Identity,
            "exponential" => Activation::Exponential,
            "reciprocal" => Activation::Reciprocal,
            "square" => Activation::Square,
            "Gauss" => Activation::Gauss,
            "sine" => Activation::Sine,
            "cosine" => Activation::Cosine,
            "Elliott" => Activation::Elliott,
            "arctan" => Activation::Arctan,
            "rectifier" => Activation::Rectifier,
            "radialBasis" => Activation::RadialBasis,
            other => return Err(el.err(format!("unknown activationFunction=\"{other}\""))),
        })
    }

    fn apply(self, z: f64) -> f64 {
        match self {
            Activation::Threshold(t) => {
                if z > t {
                    1.0
                } else {
                    0.0
                }
            }
            Activation::Logistic => 1.0 / (1.0 + (-z).exp()),
            Activation::Tanh => z.tanh(),
            Activation::Identity => z,
            Activation::Exponential => z.exp(),
            Activation::Reciprocal => 1.0 / z,
            Activation::Square => z * z,
            Activation::Gauss => (-(z * z)).exp(),
            Activation::Sine => z.sin(),
            Activation::Cosine => z.cos(),
            Activation::Elliott => z / (1.0 + z.abs()),
            Activation::Arctan => 2.0 * z.atan() / std::f64::consts::PI,
            Activation::Rectifier => z.max(0.0),
            // The radial basis value is computed from the distance in `Layer::eval`.
            Activation::RadialBasis => (-z).exp(),
        }
    }
}

#[derive(Debug, Clone)]
struct Neuron {
    bias: f64,
    width: f64,
    altitude: f64,
    /// (source index, weight)
    cons: Vec<(usize, f64)>,
}

#[derive(Debug, Clone)]
struct Layer {
    activation: Activation,
    softmax: bool,
    simplemax: bool,
    neurons: Vec<Neuron>,
}

#[derive(Debug)]
enum OutputMap {
    /// The neuron's value is the probability of this category.
    Category(Value),
    /// The neuron's value is the target (through NormContinuous points, inverted, if given).
    Value(Option<Vec<(f64, f64)>>),
}

#[derive(Debug)]
pub(crate) struct NeuralNetwork {
    function: Function,
    inputs: Vec<Expr>,
    layers: Vec<Layer>,
    outputs: Vec<(usize, OutputMap)>,
}

impl NeuralNetwork {
    pub fn parse(
        el: &El,
        c: &mut Compiler<'_, '_>,
        scope: &Scope,
        header: &Header,
    ) -> Result<Self, ModelError> {
        let mut index: HashMap<String, usize> = HashMap::new();
        let mut inputs = Vec::new();
        for ni in el.req_child("NeuralInputs")?.children_named("NeuralInput") {
            let id = ni.req("id")?.to_string();
            let d = ni.req_child("DerivedField")?;
            inputs.push(Expr::parse(&child_expression(&d)?, c, scope, 0)?);
            if index.insert(id.clone(), index.len()).is_some() {
                return Err(ni.err(format!("id \"{id}\" is used twice")));
            }
        }
        let net_act = el.req("activationFunction")?;
        let net_threshold = el.num_or("threshold", 0.0)?;
        let net_width = el.num("width")?;
        let net_altitude = el.num_or("altitude", 1.0)?;
        let net_norm = el.choice(
            "normalizationMethod",
            &["none", "simplemax", "softmax"],
            "none",
        )?;
        let mut layers = Vec::new();
        for l in el.children_named("NeuralLayer") {
            let threshold = l.num_or("threshold", net_threshold)?;
            let activation = Activation::parse(
                &l,
                l.attr("activationFunction").unwrap_or(net_act),
                threshold,
            )?;
            let width = l.num("width")?.or(net_width);
            let altitude = l.num_or("altitude", net_altitude)?;
            let norm = l.choice(
                "normalizationMethod",
                &["none", "simplemax", "softmax"],
                net_norm,
            )?;
            let mut neurons = Vec::new();
            let mut ids = Vec::new();
            for n in l.children_named("Neuron") {
                let mut cons = Vec::new();
                for con in n.children_named("Con") {
                    let from = con.req("from")?;
                    let src = *index.get(from).ok_or_else(|| {
                        con.err(format!(
                            "from=\"{from}\" names no input or neuron of an earlier layer"
                        ))
                    })?;
                    cons.push((src, con.req_num("weight")?));
                }
                let w = n.num("width")?.or(width);
                if activation == Activation::RadialBasis && !w.is_some_and(|w| w > 0.0) {
                    return Err(n.err("a radialBasis neuron needs a positive width"));
                }
                neurons.push(Neuron {
                    bias: n.num_or("bias", 0.0)?,
                    width: w.unwrap_or(1.0),
                    altitude: n.num_or("altitude", altitude)?,
                    cons,
                });
                ids.push((n.req("id")?.to_string(), n));
            }
            // A layer's neurons are numbered after it is read: they may not feed each other.
            for (id, n) in ids {
                if index.insert(id.clone(), index.len()).is_some() {
                    return Err(n.err(format!("id \"{id}\" is used twice")));
                }
            }
            layers.push(Layer {
                activation,
                softmax: norm == "softmax",
                simplemax: norm == "simplemax",
                neurons,
            });
        }
        if layers.is_empty() {
            return Err(el.err("no NeuralLayer"));
        }
        let mut outputs = Vec::new();
        for no in el
            .req_child("NeuralOutputs")?
            .children_named("NeuralOutput")
        {
            let id = no.req("outputNeuron")?;
            let at = *index
                .get(id)
                .ok_or_else(|| no.err(format!("outputNeuron=\"{id}\" names no neuron")))?;
            let d = no.req_child("DerivedField")?;
            let e = child_expression(&d)?;
            let map = match (e.tag(), header.function) {
                ("NormDiscrete", Function::Classification) => {
                    OutputMap::Category(header.label(&e, "value", e.req("value")?)?)
                }
                ("FieldRef", Function::Regression) => OutputMap::Value(None),
                ("NormContinuous", Function::Regression) => {
                    let mut pts = Vec::new();
                    for p in e.children_named("LinearNorm") {
                        pts.push((p.req_num("orig")?, p.req_num("norm")?));
                    }
                    if pts.len() < 2 || pts.windows(2).any(|w| w[0].1 >= w[1].1) {
                        return Err(
                            e.err("LinearNorm points must be at least two, ascending in norm")
                        );
                    }
                    OutputMap::Value(Some(pts))
                }
                (other, _) => {
                    return Err(
                        e.unsupported(format!("<{other}> mapping a NeuralOutput to the target"))
                    )
                }
            };
            outputs.push((at, map));
        }
        if outputs.is_empty() {
            return Err(el.err("no NeuralOutput"));
        }
        Ok(NeuralNetwork {
            function: header.function,
            inputs,
            layers,
            outputs,
        })
    }

    pub fn categories(&self) -> Vec<Value> {
        self.outputs
            .iter()
            .filter_map(|(_, m)| match m {
                OutputMap::Category(v) => Some(v.clone()),
                OutputMap::Value(_) => None,
            })
            .collect()
    }

    pub fn score(&self, env: &mut Env) -> Result<Outcome, EvalError> {
        let mut values = Vec::with_capacity(self.inputs.len() + 64);
        for e in &self.inputs {
            match e.eval(env)?.as_num() {
                Some(x) => values.push(x),
                None => return Ok(Outcome::missing()),
            }
        }
        for layer in &self.layers {
            let start = values.len();
            for n in &layer.neurons {
                let v = if layer.activation == Activation::RadialBasis {
                    let mut d2 = 0.0;
                    for &(src, w) in &n.cons {
                        d2 += (values[src] - w) * (values[src] - w);
                    }
                    let z = d2 / (2.0 * n.width * n.width);
                    (n.cons.len() as f64 * n.altitude.ln() - z).exp()
                } else {
                    let mut z = n.bias;
                    for &(src, w) in &n.cons {
                        z += values[src] * w;
                    }
                    layer.activation.apply(z)
                };
                values.push(v);
            }
            let out = &mut values[start..];
            if layer.softmax {
                crate::transform::softmax_in_place(out);
            } else if layer.simplemax {
                let sum: f64 = out.iter().sum();
                out.iter_mut().for_each(|v| *v /= sum);
            }
        }
        Ok(match self.function {
            Function::Classification => Outcome::class(
                self.outputs
                    .iter()
                    .filter_map(|(i, m)| match m {
                        OutputMap::Category(c) => Some((c.clone(), values[*i])),
                        OutputMap::Value(_) => None,
                    })
                    .collect(),
            ),
            Function::Regression => {
                let (i, map) = &self.outputs[0];
                let y = values[*i];
                Outcome::value(match map {
                    OutputMap::Value(Some(pts)) => denormalize(pts, y),
                    _ => y,
                })
            }
        })
    }
}

/// The original value whose NormContinuous normalization is `y` (linear beyond the end points).
fn denormalize(pts: &[(f64, f64)], y: f64) -> f64 {
    let i = match pts.iter().position(|p| y <= p.1) {
        Some(0) => 1,
        Some(i) => i,
        None => pts.len() - 1,
    };
    let (a, b) = (pts[i - 1], pts[i]);
    a.0 + (y - a.1) / (b.1 - a.1) * (b.0 - a.0)
}

//! What a PMML model produces ([`Outcome`]), the Targets that rescale or default it, and the Output fields that
//! expose it (predictedValue, probability, entityId, reasonCode, transformedValue, ...) to later models of a chain
//! and to the caller.

use std::sync::Arc;

use super::expr::{child_expression, Expr};
use super::fields::{Env, FieldDef, Scope, Slot, Source};
use super::value::{DataType, OpType, Value};
use super::xml::El;
use super::{Compiler, EvalError};
use crate::ModelError;

/// A model's result for one row.
#[derive(Debug, Clone)]
pub(crate) struct Outcome {
    pub kind: OutcomeKind,
    /// The id of the tree node (or segment) that decided, for `entityId` outputs.
    pub entity: Option<Arc<str>>,
    /// Reason codes, best first (Scorecard).
    pub reasons: Vec<Arc<str>>,
}

#[derive(Debug, Clone)]
pub(crate) enum OutcomeKind {
    /// No prediction (e.g. a tree stopped at a missing value with `nullPrediction`).
    Missing,
    Value(f64),
    Class {
        label: Value,
        /// Probability per category; categories absent have probability 0.
        probs: Vec<(Value, f64)>,
    },
}

impl Outcome {
    pub fn missing() -> Outcome {
        Outcome {
            kind: OutcomeKind::Missing,
            entity: None,
            reasons: Vec::new(),
        }
    }

    pub fn value(x: f64) -> Outcome {
        Outcome {
            kind: if x.is_nan() {
                OutcomeKind::Missing
            } else {
                OutcomeKind::Value(x)
            },
            entity: None,
            reasons: Vec::new(),
        }
    }

    /// A classification outcome from probabilities: the label is the most probable category (the first on ties).
    pub fn class(probs: Vec<(Value, f64)>) -> Outcome {
        let mut best: Option<usize> = None;
        for (i, p) in probs.iter().enumerate() {
            if best.is_none_or(|b| p.1 > probs[b].1) {
                best = Some(i);
            }
        }
        let kind = match best {
            Some(b) if !probs[b].1.is_nan() => OutcomeKind::Class {
                label: probs[b].0.clone(),
                probs,
            },
            _ => OutcomeKind::Missing,
        };
        Outcome {
            kind,
            entity: None,
            reasons: Vec::new(),
        }
    }

    pub fn is_missing(&self) -> bool {
        matches!(self.kind, OutcomeKind::Missing)
    }

    /// The predicted value as a field value (a number, or the label).
    pub fn predicted(&self) -> Value {
        match &self.kind {
            OutcomeKind::Missing => Value::Missing,
            OutcomeKind::Value(x) => Value::Num(*x),
            OutcomeKind::Class { label, .. } => label.clone(),
        }
    }

    /// The probability of `category` (0 when the model gives it none); `None` for regression.
    pub fn probability(&self, category: &Value) -> Option<f64> {
        match &self.kind {
            OutcomeKind::Class { probs, .. } => Some(
                probs
                    .iter()
                    .find(|(c, _)| c.equals(category))
                    .map_or(0.0, |p| p.1),
            ),
            _ => None,
        }
    }
}

/// The `Targets` of a model.
#[derive(Debug, Clone, Default)]
pub(crate) struct Targets {
    min: Option<f64>,
    max: Option<f64>,
    factor: f64,
    constant: f64,
    cast: Option<fn(f64) -> f64>,
    default: Option<f64>,
    priors: Vec<(Value, f64)>,
}

impl Targets {
    /// Reads the Targets child of a model, if any; `target_type` types the TargetValue categories.
    pub fn parse(model: &El, target_type: Option<DataType>) -> Result<Option<Targets>, ModelError> {
        let Some(ts) = model.child("Targets") else {
            return Ok(None);
        };
        let targets: Vec<El> = ts.children_named("Target").collect();
        let t = match targets.as_slice() {
            [] => return Ok(None),
            [t] => *t,
            _ => return Err(ts.unsupported("more than one Target (multi-target models)")),
        };
        let cast: Option<fn(f64) -> f64> = match t.attr("castInteger") {
            None => None,
            Some("round") => Some(|x: f64| (x + 0.5).floor()),
            Some("ceiling") => Some(f64::ceil),
            Some("floor") => Some(f64::floor),
            Some(other) => return Err(t.err(format!("unknown castInteger=\"{other}\""))),
        };
        let mut out = Targets {
            min: t.num("min")?,
            max: t.num("max")?,
            factor: t.num_or("rescaleFactor", 1.0)?,
            constant: t.num_or("rescaleConstant", 0.0)?,
            cast,
            default: None,
            priors: Vec::new(),
        };
        let ty = target_type.unwrap_or(DataType::String);
        for tv in t.children_named("TargetValue") {
            if let Some(d) = tv.num("defaultValue")? {
                out.default = Some(d);
            }
            if let Some(p) = tv.num("priorProbability")? {
                let v = tv.req("value")?;
                out.priors.push((ty.parse_at(&tv, "value", v)?, p));
            }
        }
        Ok(Some(out))
    }

    /// Rescales a regression value, or fills in a missing prediction from the defaults.
    pub fn apply(&self, o: &mut Outcome) {
        match &mut o.kind {
            OutcomeKind::Value(x) => {
                let mut v = *x;
                if let Some(m) = self.min {
                    v = v.max(m);
                }
                if let Some(m) = self.max {
                    v = v.min(m);
                }
                v = v * self.factor + self.constant;
                if let Some(c) = self.cast {
                    v = c(v);
                }
                *x = v;
            }
            OutcomeKind::Missing => {
                if let Some(d) = self.default {
                    o.kind = OutcomeKind::Value(d);
                } else if !self.priors.is_empty() {
                    *o = Outcome::class(self.priors.clone());
                }
            }
            OutcomeKind::Class { .. } => {}
        }
    }
}

/// What an OutputField reports.
#[derive(Debug)]
pub(crate) enum Feature {
    Predicted,
    PredictedDisplay,
    /// Probability of a category, or of the predicted one.
    Probability(Option<Value>),
    EntityId,
    ReasonCode(usize),
    Transformed(Expr),
}

/// A compiled OutputField and the slot it is written to.
#[derive(Debug)]
pub(crate) struct OutputField {
    pub name: Arc<str>,
    pub feature: Feature,
    pub data_type: Option<DataType>,
    pub slot: Slot,
    /// `isFinalResult="false"`: an intermediate value for a chain, not reported.
    pub is_final: bool,
}

/// Compiles a model's Output; each field gets a slot, bound in `scope` so later fields (and later models of a
/// chain, when the caller passes their scope) can read it.
pub(crate) fn parse_outputs(
    model: &El,
    c: &mut Compiler<'_, '_>,
    scope: &mut Scope,
    target_type: Option<DataType>,
) -> Result<Vec<OutputField>, ModelError> {
    let Some(output) = model.child("Output") else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for f in output.children_named("OutputField") {
        let name: Arc<str> = Arc::from(f.req("name")?);
        if f.attr("segmentId").is_some() {
            return Err(f.unsupported("segmentId outputs are not supported"));
        }
        let category = |f: &El| -> Result<Option<Value>, ModelError> {
            Ok(match f.attr("value") {
                Some(v) => Some(
                    target_type
                        .unwrap_or(DataType::String)
                        .parse_at(f, "value", v)?,
                ),
                None => None,
            })
        };
        let feature = match f.attr("feature").unwrap_or("predictedValue") {
            "predictedValue" => Feature::Predicted,
            "predictedDisplayValue" => Feature::PredictedDisplay,
            "probability" => Feature::Probability(category(&f)?),
            "entityId" => Feature::EntityId,
            "reasonCode" => Feature::ReasonCode(f.uint("rank")?.unwrap_or(1).max(1)),
            "transformedValue" => {
                Feature::Transformed(Expr::parse(&child_expression(&f)?, c, scope, 0)?)
            }
            other => {
                return Err(
                    f.unsupported(format!("OutputField feature=\"{other}\" is not supported"))
                )
            }
        };
        let data_type = match f.attr("dataType") {
            Some(_) => Some(DataType::of(&f, None)?),
            None => None,
        };
        let def = FieldDef {
            name: name.clone(),
            data_type: data_type.unwrap_or(match &feature {
                Feature::Predicted => target_type.unwrap_or(DataType::Double),
                Feature::PredictedDisplay | Feature::EntityId | Feature::ReasonCode(_) => {
                    DataType::String
                }
                _ => DataType::Double,
            }),
            optype: OpType::Continuous,
        };
        let slot = c.prog.add(def, Source::Written);
        scope.bind(name.clone(), slot);
        out.push(OutputField {
            name,
            feature,
            data_type,
            slot,
            is_final: f.boolean("isFinalResult", true)?,
        });
    }
    Ok(out)
}

/// Writes every output field of `outcome` into its slot, in order.
pub(crate) fn write_outputs(
    fields: &[OutputField],
    outcome: &Outcome,
    env: &mut Env,
) -> Result<(), EvalError> {
    for f in fields {
        let v = match &f.feature {
            Feature::Predicted => outcome.predicted(),
            Feature::PredictedDisplay => match outcome.predicted() {
                Value::Missing => Value::Missing,
                v => Value::Str(v.to_text()),
            },
            Feature::Probability(cat) => {
                let cat = match cat {
                    Some(c) => c.clone(),
                    None => outcome.predicted(),
                };
                outcome.probability(&cat).map_or(Value::Missing, Value::Num)
            }
            Feature::EntityId => outcome.entity.clone().map_or(Value::Missing, Value::Str),
            Feature::ReasonCode(rank) => outcome
                .reasons
                .get(rank - 1)
                .cloned()
                .map_or(Value::Missing, Value::Str),
            Feature::Transformed(e) => e.eval(env)?,
        };
        let v = match f.data_type {
            Some(ty) => ty.convert(v.clone()).unwrap_or(v),
            None => v,
        };
        env.set(f.slot, v);
    }
    Ok(())
}

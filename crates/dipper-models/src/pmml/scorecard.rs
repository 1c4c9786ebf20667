//! Scorecard: an initial score plus, per Characteristic, the partial score of its first Attribute whose predicate
//! holds; reason codes ranked by how many points each cost against the baseline (pointsBelow) or gained over it
//! (pointsAbove).

use std::sync::Arc;

use super::expr::{child_expression, Expr};
use super::fields::{Env, Scope};
use super::model::{Function, Header};
use super::output::Outcome;
use super::predicate::{child_predicate, Predicate, Truth};
use super::xml::El;
use super::{Compiler, EvalError};
use crate::ModelError;

#[derive(Debug)]
enum Partial {
    Fixed(f64),
    Complex(Expr),
}

#[derive(Debug)]
struct Attribute {
    predicate: Predicate,
    partial: Partial,
    reason: Option<Arc<str>>,
}

#[derive(Debug)]
struct Characteristic {
    name: Arc<str>,
    baseline: Option<f64>,
    reason: Option<Arc<str>>,
    attributes: Vec<Attribute>,
}

#[derive(Debug)]
pub(crate) struct Scorecard {
    initial: f64,
    use_reasons: bool,
    points_above: bool,
    characteristics: Vec<Characteristic>,
}

impl Scorecard {
    pub fn parse(
        el: &El,
        c: &mut Compiler<'_, '_>,
        scope: &Scope,
        header: &Header,
    ) -> Result<Self, ModelError> {
        if header.function != Function::Regression {
            return Err(el.unsupported("a Scorecard with functionName other than regression"));
        }
        let use_reasons = el.boolean("useReasonCodes", true)?;
        let points_above = el.choice(
            "reasonCodeAlgorithm",
            &["pointsAbove", "pointsBelow"],
            "pointsBelow",
        )? == "pointsAbove";
        let model_baseline = el.num("baselineScore")?;
        let mut characteristics = Vec::new();
        for ch in el
            .req_child("Characteristics")?
            .children_named("Characteristic")
        {
            let baseline = ch.num("baselineScore")?.or(model_baseline);
            let reason = ch.attr("reasonCode").map(Arc::from);
            let mut attributes = Vec::new();
            for a in ch.children_named("Attribute") {
                let partial = match a.child("ComplexPartialScore") {
                    Some(cps) => {
                        Partial::Complex(Expr::parse(&child_expression(&cps)?, c, scope, 0)?)
                    }
                    None => Partial::Fixed(a.num("partialScore")?.ok_or_else(|| {
                        a.err("partialScore or a ComplexPartialScore is required")
                    })?),
                };
                let reason_a = a.attr("reasonCode").map(Arc::from);
                if use_reasons {
                    if reason_a.is_none() && reason.is_none() {
                        return Err(a.err("useReasonCodes is on but neither this Attribute nor its Characteristic has a reasonCode"));
                    }
                    if baseline.is_none() {
                        return Err(ch.err("useReasonCodes is on but there is no baselineScore"));
                    }
                }
                attributes.push(Attribute {
                    predicate: child_predicate(&a, c, scope)?,
                    partial,
                    reason: reason_a,
                });
            }
            characteristics.push(Characteristic {
                name: Arc::from(ch.attr("name").unwrap_or("")),
                baseline,
                reason,
                attributes,
            });
        }
        Ok(Scorecard {
            initial: el.num_or("initialScore", 0.0)?,
            use_reasons,
            points_above,
            characteristics,
        })
    }

    pub fn score(&self, env: &mut Env) -> Result<Outcome, EvalError> {
        let mut total = self.initial;
        let mut points: Vec<(Arc<str>, f64)> = Vec::new();
        for ch in &self.characteristics {
            let mut matched = None;
            for a in &ch.attributes {
                if a.predicate.eval(env)? == Truth::True {
                    matched = Some(a);
                    break;
                }
            }
            let Some(a) = matched else {
                return Err(EvalError(format!(
                    "no Attribute of Characteristic '{}' matches this input",
                    ch.name
                )));
            };
            let partial = match &a.partial {
                Partial::Fixed(p) => *p,
                Partial::Complex(e) => match e.eval(env)?.as_num() {
                    Some(p) => p,
                    None => return Ok(Outcome::missing()),
                },
            };
            total += partial;
            if self.use_reasons {
                let baseline = ch.baseline.unwrap_or(0.0);
                let diff = if self.points_above {
                    partial - baseline
                } else {
                    baseline - partial
                };
                let code = a
                    .reason
                    .clone()
                    .or_else(|| ch.reason.clone())
                    .unwrap_or_else(|| Arc::from(""));
                match points.iter_mut().find(|(c, _)| *c == code) {
                    Some(p) => p.1 += diff,
                    None => points.push((code, diff)),
                }
            }
        }
        let mut o = Outcome::value(total);
        // Only codes that cost points are reasons; stable, so equal points keep the characteristics' order.
        points.retain(|p| p.1 > 0.0);
        points.sort_by(|a, b| b.1.total_cmp(&a.1));
        o.reasons = points.into_iter().map(|p| p.0).collect();
        Ok(o)
    }
}

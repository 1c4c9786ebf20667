//! Predicates (True, False, SimplePredicate, SimpleSetPredicate, CompoundPredicate) with PMML's three-valued
//! logic: a comparison with a missing value is UNKNOWN, and what UNKNOWN does is up to the model using it.

use super::fields::{Env, Scope, Slot};
use super::value::Value;
use super::xml::{array, El};
use super::{Compiler, EvalError};
use crate::ModelError;

/// TRUE, FALSE or UNKNOWN.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Truth {
    True,
    False,
    Unknown,
}

impl Truth {
    fn of(b: bool) -> Truth {
        if b {
            Truth::True
        } else {
            Truth::False
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CmpOp {
    Equal,
    NotEqual,
    LessThan,
    LessOrEqual,
    GreaterThan,
    GreaterOrEqual,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BoolOp {
    And,
    Or,
    Xor,
    Surrogate,
}

#[derive(Debug, Clone)]
pub(crate) enum Predicate {
    True,
    False,
    Compare {
        slot: Slot,
        op: CmpOp,
        value: Value,
    },
    IsMissing(Slot),
    IsNotMissing(Slot),
    In {
        slot: Slot,
        values: Vec<Value>,
        negate: bool,
    },
    Compound {
        op: BoolOp,
        parts: Vec<Predicate>,
    },
}

/// The element names that are predicates.
pub(crate) fn is_predicate(tag: &str) -> bool {
    matches!(
        tag,
        "True" | "False" | "SimplePredicate" | "SimpleSetPredicate" | "CompoundPredicate"
    )
}

/// The predicate child of `el` (a Node, a Segment, an Attribute).
pub(crate) fn child_predicate(
    el: &El,
    c: &Compiler<'_, '_>,
    scope: &Scope,
) -> Result<Predicate, ModelError> {
    let p = el
        .children()
        .find(|ch| is_predicate(ch.tag()))
        .ok_or_else(|| el.err("a predicate child (True, SimplePredicate, ...) is required"))?;
    Predicate::parse(&p, c, scope)
}

impl Predicate {
    pub fn parse(el: &El, c: &Compiler<'_, '_>, scope: &Scope) -> Result<Predicate, ModelError> {
        Ok(match el.tag() {
            "True" => Predicate::True,
            "False" => Predicate::False,
            "SimplePredicate" => {
                let slot = scope.resolve(el, "field")?;
                let ty = c.prog.defs[slot].data_type;
                let op = match el.req("operator")? {
                    "isMissing" => return Ok(Predicate::IsMissing(slot)),
                    "isNotMissing" => return Ok(Predicate::IsNotMissing(slot)),
                    "equal" => CmpOp::Equal,
                    "notEqual" => CmpOp::NotEqual,
                    "lessThan" => CmpOp::LessThan,
                    "lessOrEqual" => CmpOp::LessOrEqual,
                    "greaterThan" => CmpOp::GreaterThan,
                    "greaterOrEqual" => CmpOp::GreaterOrEqual,
                    other => return Err(el.err(format!("unknown operator=\"{other}\""))),
                };
                let value = ty.parse_at(el, "value", el.req("value")?)?;
                Predicate::Compare { slot, op, value }
            }
            "SimpleSetPredicate" => {
                let slot = scope.resolve(el, "field")?;
                let ty = c.prog.defs[slot].data_type;
                let negate = match el.req("booleanOperator")? {
                    "isIn" => false,
                    "isNotIn" => true,
                    other => return Err(el.err(format!("unknown booleanOperator=\"{other}\""))),
                };
                let arr = el.req_child("Array")?;
                let values = array(&arr)?
                    .iter()
                    .map(|t| ty.parse_at(&arr, "element", t))
                    .collect::<Result<Vec<_>, _>>()?;
                Predicate::In {
                    slot,
                    values,
                    negate,
                }
            }
            "CompoundPredicate" => {
                let op = match el.req("booleanOperator")? {
                    "and" => BoolOp::And,
                    "or" => BoolOp::Or,
                    "xor" => BoolOp::Xor,
                    "surrogate" => BoolOp::Surrogate,
                    other => return Err(el.err(format!("unknown booleanOperator=\"{other}\""))),
                };
                let parts = el
                    .children()
                    .filter(|ch| is_predicate(ch.tag()))
                    .map(|ch| Predicate::parse(&ch, c, scope))
                    .collect::<Result<Vec<_>, _>>()?;
                if parts.len() < 2 {
                    return Err(el.err("a CompoundPredicate needs at least two predicates"));
                }
                Predicate::Compound { op, parts }
            }
            other => return Err(el.unsupported(format!("the {other} predicate is not supported"))),
        })
    }

    pub fn eval(&self, env: &mut Env) -> Result<Truth, EvalError> {
        Ok(match self {
            Predicate::True => Truth::True,
            Predicate::False => Truth::False,
            Predicate::Compare { slot, op, value } => {
                let v = env.get(*slot)?;
                if v.is_missing() {
                    return Ok(Truth::Unknown);
                }
                match op {
                    CmpOp::Equal => Truth::of(v.equals(value)),
                    CmpOp::NotEqual => Truth::of(!v.equals(value)),
                    _ => match v.compare(value) {
                        None => Truth::False,
                        Some(o) => Truth::of(match op {
                            CmpOp::LessThan => o.is_lt(),
                            CmpOp::LessOrEqual => o.is_le(),
                            CmpOp::GreaterThan => o.is_gt(),
                            _ => o.is_ge(),
                        }),
                    },
                }
            }
            Predicate::IsMissing(slot) => Truth::of(env.get(*slot)?.is_missing()),
            Predicate::IsNotMissing(slot) => Truth::of(!env.get(*slot)?.is_missing()),
            Predicate::In {
                slot,
                values,
                negate,
            } => {
                let v = env.get(*slot)?;
                if v.is_missing() {
                    return Ok(Truth::Unknown);
                }
                Truth::of(values.iter().any(|x| x.equals(&v)) != *negate)
            }
            Predicate::Compound { op, parts } => match op {
                BoolOp::And => {
                    let mut out = Truth::True;
                    for p in parts {
                        match p.eval(env)? {
                            Truth::False => return Ok(Truth::False),
                            Truth::Unknown => out = Truth::Unknown,
                            Truth::True => {}
                        }
                    }
                    out
                }
                BoolOp::Or => {
                    let mut out = Truth::False;
                    for p in parts {
                        match p.eval(env)? {
                            Truth::True => return Ok(Truth::True),
                            Truth::Unknown => out = Truth::Unknown,
                            Truth::False => {}
                        }
                    }
                    out
                }
                BoolOp::Xor => {
                    let mut acc = false;
                    for p in parts {
                        match p.eval(env)? {
                            Truth::Unknown => return Ok(Truth::Unknown),
                            t => acc ^= t == Truth::True,
                        }
                    }
                    Truth::of(acc)
                }
                BoolOp::Surrogate => {
                    for p in parts {
                        match p.eval(env)? {
                            Truth::Unknown => continue,
                            t => return Ok(t),
                        }
                    }
                    Truth::Unknown
                }
            },
        })
    }

    /// The typed constant a numeric comparison tests against, for compiling into the tree-ensemble form.
    pub fn numeric_threshold(&self) -> Option<(Slot, CmpOp, f64)> {
        match self {
            Predicate::Compare {
                slot,
                op,
                value: Value::Num(t),
            } => Some((*slot, *op, *t)),
            _ => None,
        }
    }
}

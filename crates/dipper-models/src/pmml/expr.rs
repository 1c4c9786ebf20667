//! PMML expressions (Constant, FieldRef, NormContinuous, NormDiscrete, Discretize, MapValues, Apply) and
//! DerivedFields, compiled once into a tree over slots and evaluated per row.
//!
//! User functions (DefineFunction) are inlined at each call: every parameter becomes a slot holding the argument
//! expression, evaluated lazily in the caller's row, so they cost what the same expression written out would.

use std::collections::HashMap;
use std::sync::Arc;

use super::fields::{FieldDef, Interval, Invalid, Scope, Slot, Source};
use super::functions::Func;
use super::value::{loose_constant, DataType, OpType, Value};
use super::xml::El;
use super::{Compiler, EvalError};
use crate::ModelError;

/// Deepest nesting of user-function calls inlined into each other (a recursive function is refused).
const MAX_INLINE_DEPTH: usize = 32;

/// How an expression treats an invalid result (`invalidValueTreatment` of Apply).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum OnInvalid {
    ReturnInvalid,
    AsMissing,
}

/// A compiled expression.
#[derive(Debug)]
pub(crate) enum Expr {
    Constant(Value),
    Field {
        slot: Slot,
        map_missing: Option<Value>,
    },
    NormContinuous {
        slot: Slot,
        /// (original, normalized) points, ascending in the original value.
        points: Vec<(f64, f64)>,
        outliers: NormOutliers,
        map_missing: Option<f64>,
    },
    NormDiscrete {
        slot: Slot,
        value: Value,
        map_missing: Option<f64>,
    },
    Discretize {
        slot: Slot,
        bins: Vec<(Interval, Value)>,
        map_missing: Value,
        default: Value,
    },
    MapValues {
        inputs: Vec<Slot>,
        rows: HashMap<Vec<Key>, Value>,
        map_missing: Value,
        default: Value,
    },
    Apply {
        func: Func,
        args: Vec<Expr>,
        map_missing: Value,
        default: Value,
        on_invalid: OnInvalid,
        /// `<Apply function=...> at line N`, for errors.
        at: Arc<str>,
    },
}

/// What NormContinuous does outside its points.
#[derive(Debug, Clone, Copy, PartialEq)]
#[allow(clippy::enum_variant_names)] // the standard's own names
pub(crate) enum NormOutliers {
    AsIs,
    AsMissing,
    AsExtreme,
}

/// A lookup key of a MapValues table: numbers by value, strings by text.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum Key {
    Num(u64),
    Str(Arc<str>),
    Bool(bool),
}

impl Key {
    fn of(v: &Value) -> Option<Key> {
        Some(match v {
            Value::Num(x) => Key::Num(if *x == 0.0 { 0 } else { x.to_bits() }),
            Value::Str(s) => Key::Str(s.clone()),
            Value::Bool(b) => Key::Bool(*b),
            Value::Missing => return None,
        })
    }
}

/// The element names that are expressions.
pub(crate) fn is_expression(tag: &str) -> bool {
    matches!(
        tag,
        "Constant"
            | "FieldRef"
            | "NormContinuous"
            | "NormDiscrete"
            | "Discretize"
            | "MapValues"
            | "Apply"
            | "TextIndex"
            | "Aggregate"
            | "Lag"
    )
}

/// The one expression child of `el` (a DerivedField, an OutputField, ...).
pub(crate) fn child_expression<'a, 'i>(el: &El<'a, 'i>) -> Result<El<'a, 'i>, ModelError> {
    el.children()
        .find(|c| is_expression(c.tag()))
        .ok_or_else(|| {
            el.err("an expression child (Apply, FieldRef, NormContinuous, ...) is required")
        })
}

/// Compiles the DerivedFields of a TransformationDictionary or LocalTransformations into new slots bound in
/// `scope`, in document order (a field may use those before it).
pub(crate) fn derived_fields(
    el: &El,
    c: &mut Compiler<'_, '_>,
    scope: &mut Scope,
) -> Result<(), ModelError> {
    for d in el.children_named("DerivedField") {
        let name: Arc<str> = Arc::from(d.req("name")?);
        let data_type = DataType::of(&d, None)?;
        let optype = OpType::of(&d, data_type)?;
        let expr = Expr::parse(&child_expression(&d)?, c, scope, 0)?;
        let slot = c.prog.add(
            FieldDef {
                name: name.clone(),
                data_type,
                optype,
            },
            Source::Derived(expr),
        );
        scope.bind(name, slot);
    }
    Ok(())
}

impl Expr {
    /// Compiles the expression element `el` with names resolved in `scope`.
    pub fn parse(
        el: &El,
        c: &mut Compiler<'_, '_>,
        scope: &Scope,
        depth: usize,
    ) -> Result<Expr, ModelError> {
        let map_missing_num = |el: &El| el.num("mapMissingTo");
        Ok(match el.tag() {
            "Constant" => {
                let text = el.text();
                if el.boolean("missing", false)? {
                    Expr::Constant(Value::Missing)
                } else {
                    Expr::Constant(match el.attr("dataType") {
                        Some(_) => DataType::of(el, None)?.parse_at(el, "content", text)?,
                        None => loose_constant(text),
                    })
                }
            }
            "FieldRef" => {
                let slot = scope.resolve(el, "field")?;
                let map_missing = el.attr("mapMissingTo").map(|t| typed_like(c, slot, t));
                Expr::Field { slot, map_missing }
            }
            "NormContinuous" => {
                let slot = scope.resolve(el, "field")?;
                let mut points = Vec::new();
                for p in el.children_named("LinearNorm") {
                    points.push((p.req_num("orig")?, p.req_num("norm")?));
                }
                if points.len() < 2 {
                    return Err(el.err("at least two LinearNorm points are required"));
                }
                if points.windows(2).any(|w| w[0].0 >= w[1].0) {
                    return Err(el.err("LinearNorm orig values must be strictly ascending"));
                }
                let outliers = match el.choice(
                    "outliers",
                    &["asIs", "asMissingValues", "asExtremeValues"],
                    "asIs",
                )? {
                    "asIs" => NormOutliers::AsIs,
                    "asMissingValues" => NormOutliers::AsMissing,
                    _ => NormOutliers::AsExtreme,
                };
                Expr::NormContinuous {
                    slot,
                    points,
                    outliers,
                    map_missing: map_missing_num(el)?,
                }
            }
            "NormDiscrete" => {
                let slot = scope.resolve(el, "field")?;
                let value = typed_like(c, slot, el.req("value")?);
                if el.choice("method", &["indicator"], "indicator")? != "indicator" {
                    unreachable!("only indicator is allowed");
                }
                Expr::NormDiscrete {
                    slot,
                    value,
                    map_missing: map_missing_num(el)?,
                }
            }
            "Discretize" => {
                let slot = scope.resolve(el, "field")?;
                let ty = DataType::of(el, Some(DataType::String))?;
                let mut bins = Vec::new();
                for b in el.children_named("DiscretizeBin") {
                    let value = ty.parse_at(&b, "binValue", b.req("binValue")?)?;
                    bins.push((Interval::parse(&b.req_child("Interval")?)?, value));
                }
                let opt = |attr: &str| -> Result<Value, ModelError> {
                    Ok(match el.attr(attr) {
                        Some(t) => ty.parse_at(el, attr, t)?,
                        None => Value::Missing,
                    })
                };
                Expr::Discretize {
                    slot,
                    bins,
                    map_missing: opt("mapMissingTo")?,
                    default: opt("defaultValue")?,
                }
            }
            "MapValues" => Self::map_values(el, c, scope)?,
            "Apply" => Self::apply(el, c, scope, depth)?,
            other => {
                return Err(el.unsupported(format!("the {other} expression is not supported")));
            }
        })
    }

    fn map_values(el: &El, c: &mut Compiler<'_, '_>, scope: &Scope) -> Result<Expr, ModelError> {
        let out_col = el.req("outputColumn")?;
        let ty = DataType::of(el, Some(DataType::String))?;
        let mut cols = Vec::new();
        let mut inputs = Vec::new();
        for p in el.children_named("FieldColumnPair") {
            let slot = scope.resolve(&p, "field")?;
            inputs.push(slot);
            cols.push((p.req("column")?, c.prog.defs[slot].data_type));
        }
        if inputs.is_empty() {
            return Err(el.err("at least one FieldColumnPair is required"));
        }
        let table = match el.child("InlineTable") {
            Some(t) => t,
            None if el.child("TableLocator").is_some() => {
                return Err(el.unsupported("TableLocator (an external table) is not supported"))
            }
            None => return Err(el.err("an InlineTable is required")),
        };
        let mut rows = HashMap::new();
        for row in table.children_named("row") {
            let cell = |name: &str| row.children().find(|c| c.tag() == name).map(|c| c.text());
            let mut key = Vec::with_capacity(cols.len());
            let mut complete = true;
            for (col, ty) in &cols {
                match cell(col) {
                    Some(text) => match ty.parse(text).as_ref().and_then(Key::of) {
                        Some(k) => key.push(k),
                        None => complete = false,
                    },
                    None => complete = false,
                }
            }
            let Some(out) = cell(out_col) else { continue };
            if complete {
                let v = ty.parse_at(&row, out_col, out)?;
                rows.entry(key).or_insert(v);
            }
        }
        let opt = |attr: &str| -> Result<Value, ModelError> {
            Ok(match el.attr(attr) {
                Some(t) => ty.parse_at(el, attr, t)?,
                None => Value::Missing,
            })
        };
        Ok(Expr::MapValues {
            inputs,
            rows,
            map_missing: opt("mapMissingTo")?,
            default: opt("defaultValue")?,
        })
    }

    fn apply(
        el: &El,
        c: &mut Compiler<'_, '_>,
        scope: &Scope,
        depth: usize,
    ) -> Result<Expr, ModelError> {
        let name = el.req("function")?;
        let arg_els: Vec<El> = el.children().filter(|a| is_expression(a.tag())).collect();
        let map_missing = el
            .attr("mapMissingTo")
            .map_or(Value::Missing, loose_constant);
        let default = el
            .attr("defaultValue")
            .map_or(Value::Missing, loose_constant);
        let on_invalid = match el.choice(
            "invalidValueTreatment",
            &["returnInvalid", "asIs", "asMissing"],
            "returnInvalid",
        )? {
            "asMissing" => OnInvalid::AsMissing,
            _ => OnInvalid::ReturnInvalid,
        };
        if let Some(def) = c.functions.get(name).cloned() {
            // A DefineFunction: bind each parameter to a slot holding its argument, then compile the body.
            if depth >= MAX_INLINE_DEPTH {
                return Err(el.unsupported(format!(
                    "function '{name}' calls user functions more than {MAX_INLINE_DEPTH} deep (recursion?)"
                )));
            }
            if def.params.len() != arg_els.len() {
                return Err(el.err(format!(
                    "function '{name}' takes {} arguments, {} given",
                    def.params.len(),
                    arg_els.len()
                )));
            }
            let mut inner = Scope::default();
            for ((pname, pdef), a) in def.params.iter().zip(&arg_els) {
                let arg = Expr::parse(a, c, scope, depth)?;
                let slot = c.prog.add(
                    FieldDef {
                        name: pname.clone(),
                        data_type: pdef.0,
                        optype: pdef.1,
                    },
                    Source::Derived(arg),
                );
                inner.bind(pname.clone(), slot);
            }
            let body = Expr::parse(&def.body, c, &inner, depth + 1)?;
            return Ok(Expr::Apply {
                func: Func::Identity,
                args: vec![body],
                map_missing,
                default,
                on_invalid,
                at: Arc::from(el.location()),
            });
        }
        let func = Func::parse(name, arg_els.len()).map_err(|m| match m {
            super::functions::FuncError::Unknown => {
                el.unsupported(format!("function '{name}' is not supported"))
            }
            super::functions::FuncError::Arity(m) => el.err(format!("function '{name}': {m}")),
            super::functions::FuncError::Other(m) => {
                el.unsupported(format!("function '{name}': {m}"))
            }
        })?;
        let mut args = Vec::with_capacity(arg_els.len());
        for a in &arg_els {
            args.push(Expr::parse(a, c, scope, depth)?);
        }
        let func = func.with_constant_args(&args).map_err(|m| el.err(m))?;
        if func.reads_text() {
            if let Some(field) = args.iter().find_map(|a| raw_text_input(c, a)) {
                return Err(el.unsupported(format!(
                    "function '{name}' reads the text of input field '{field}', which does not list its valid \
                     values; dipper passes a string input as one of the strings the model names (any other as an \
                     unseen category), so a text function needs the field's Value elements"
                )));
            }
        }
        Ok(Expr::Apply {
            func,
            args,
            map_missing,
            default,
            on_invalid,
            at: Arc::from(el.location()),
        })
    }

    /// Evaluates the expression in `env`.
    pub fn eval(&self, env: &mut super::fields::Env) -> Result<Value, EvalError> {
        Ok(match self {
            Expr::Constant(v) => v.clone(),
            Expr::Field { slot, map_missing } => match env.get(*slot)? {
                Value::Missing => map_missing.clone().unwrap_or(Value::Missing),
                v => v,
            },
            Expr::NormContinuous {
                slot,
                points,
                outliers,
                map_missing,
            } => match env.num(*slot)? {
                None => map_missing.map_or(Value::Missing, Value::Num),
                Some(x) => norm_continuous(points, *outliers, x),
            },
            Expr::NormDiscrete {
                slot,
                value,
                map_missing,
            } => match env.get(*slot)? {
                Value::Missing => map_missing.map_or(Value::Missing, Value::Num),
                v => Value::Num(if v.equals(value) { 1.0 } else { 0.0 }),
            },
            Expr::Discretize {
                slot,
                bins,
                map_missing,
                default,
            } => match env.num(*slot)? {
                None => map_missing.clone(),
                Some(x) => bins
                    .iter()
                    .find(|(i, _)| i.contains(x))
                    .map_or_else(|| default.clone(), |(_, v)| v.clone()),
            },
            Expr::MapValues {
                inputs,
                rows,
                map_missing,
                default,
            } => {
                let mut key = Vec::with_capacity(inputs.len());
                for &slot in inputs {
                    match Key::of(&env.get(slot)?) {
                        Some(k) => key.push(k),
                        None => return Ok(map_missing.clone()),
                    }
                }
                rows.get(&key).cloned().unwrap_or_else(|| default.clone())
            }
            Expr::Apply {
                func,
                args,
                map_missing,
                default,
                on_invalid,
                at,
            } => {
                let result = if func.lazy() {
                    func.eval_lazy(args, env)?
                } else {
                    let mut vals = Vec::with_capacity(args.len());
                    for a in args {
                        vals.push(a.eval(env)?);
                    }
                    if func.propagates_missing() && vals.iter().any(Value::is_missing) {
                        return Ok(map_missing.clone());
                    }
                    func.eval(&vals)
                };
                match result {
                    Ok(Value::Missing) => default.clone(),
                    Ok(Value::Num(x)) if x.is_nan() => {
                        invalid(*on_invalid, at, "the result is not a number")?
                    }
                    Ok(v) => v,
                    Err(m) => invalid(*on_invalid, at, &m)?,
                }
            }
        })
    }
}

fn invalid(on: OnInvalid, at: &str, message: &str) -> Result<Value, EvalError> {
    match on {
        OnInvalid::AsMissing => Ok(Value::Missing),
        OnInvalid::ReturnInvalid => Err(EvalError(format!("{at}: invalid result: {message}"))),
    }
}

/// The name of the string input field whose raw text `e` passes on unchanged, if any.
fn raw_text_input(c: &Compiler<'_, '_>, e: &Expr) -> Option<Arc<str>> {
    match e {
        Expr::Field { slot, .. } => raw_text_slot(c, *slot, 0),
        Expr::Apply {
            func: Func::Identity | Func::If,
            args,
            ..
        } => args.iter().find_map(|a| raw_text_input(c, a)),
        _ => None,
    }
}

fn raw_text_slot(c: &Compiler<'_, '_>, slot: Slot, depth: usize) -> Option<Arc<str>> {
    if depth > 64 {
        return None;
    }
    match &c.prog.sources[slot] {
        // A field that lists its valid values reaches functions only as one of them (any other value is
        // invalid), unless invalid values pass as they are.
        Source::Input { treatment, .. } if c.prog.defs[slot].data_type == DataType::String => {
            let open = treatment.domain.valid.is_empty() || treatment.invalid == Invalid::AsIs;
            open.then(|| c.prog.defs[slot].name.clone())
        }
        Source::Treated { from, .. } => raw_text_slot(c, *from, depth + 1),
        Source::Derived(e) => raw_text_input(c, e),
        _ => None,
    }
}

/// A constant compared with the field in `slot`, typed as that field.
fn typed_like(c: &Compiler<'_, '_>, slot: Slot, text: &str) -> Value {
    let ty = c.prog.defs[slot].data_type;
    ty.parse(text)
        .unwrap_or_else(|| Value::Str(Arc::from(text)))
}

/// Piecewise-linear normalization through `points`.
fn norm_continuous(points: &[(f64, f64)], outliers: NormOutliers, x: f64) -> Value {
    let (first, last) = (points[0], points[points.len() - 1]);
    if x < first.0 || x > last.0 {
        match outliers {
            NormOutliers::AsMissing => return Value::Missing,
            NormOutliers::AsExtreme => {
                return Value::Num(if x < first.0 { first.1 } else { last.1 })
            }
            NormOutliers::AsIs => {}
        }
    }
    let i = match points.iter().position(|p| x <= p.0) {
        Some(0) => 1,
        Some(i) => i,
        None => points.len() - 1,
    };
    let (a, b) = (points[i - 1], points[i]);
    Value::Num(a.1 + (x - a.0) / (b.0 - a.0) * (b.1 - a.1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn norm_continuous_interpolates_and_extrapolates() {
        let pts = [(0.0, 0.0), (10.0, 1.0), (20.0, 3.0)];
        assert_eq!(
            norm_continuous(&pts, NormOutliers::AsIs, 5.0),
            Value::Num(0.5)
        );
        assert_eq!(
            norm_continuous(&pts, NormOutliers::AsIs, 15.0),
            Value::Num(2.0)
        );
        assert_eq!(
            norm_continuous(&pts, NormOutliers::AsIs, 30.0),
            Value::Num(5.0)
        );
        assert_eq!(
            norm_continuous(&pts, NormOutliers::AsIs, -10.0),
            Value::Num(-1.0)
        );
        assert_eq!(
            norm_continuous(&pts, NormOutliers::AsExtreme, 30.0),
            Value::Num(3.0)
        );
        assert_eq!(
            norm_continuous(&pts, NormOutliers::AsMissing, -1.0),
            Value::Missing
        );
        assert_eq!(
            norm_continuous(&pts, NormOutliers::AsIs, 10.0),
            Value::Num(1.0)
        );
    }
}

//! Fields: the DataDictionary, MiningSchema treatments (missing value replacement, invalid values, outliers), and
//! the evaluation frame every model reads fields from.
//!
//! Every field a model can see (input, derived, or written by an earlier model of a chain) gets a slot, resolved
//! from its name when the model is compiled, so evaluation never looks names up. Inputs and derived fields are
//! computed on first use within a row and kept, so a DerivedField that no branch reads costs nothing.

use std::collections::HashMap;
use std::sync::Arc;

use dipper_core::is_unknown_category;

use super::expr::Expr;
use super::value::{DataType, OpType, Value};
use super::xml::El;
use super::EvalError;
use crate::ModelError;

pub(crate) type Slot = usize;

/// A string no model constant can equal: what an input category the model never names reads as.
pub(crate) const UNSEEN: &str = "\u{fffe}unseen category";

/// A field's declaration.
#[derive(Debug, Clone)]
pub(crate) struct FieldDef {
    pub name: Arc<str>,
    pub data_type: DataType,
    pub optype: OpType,
}

/// An `Interval` of a continuous DataField.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Interval {
    pub left: f64,
    pub right: f64,
    pub left_closed: bool,
    pub right_closed: bool,
}

impl Interval {
    pub fn parse(el: &El) -> Result<Interval, ModelError> {
        let closure = el.req("closure")?;
        let (left_closed, right_closed) = match closure {
            "openClosed" => (false, true),
            "openOpen" => (false, false),
            "closedOpen" => (true, false),
            "closedClosed" => (true, true),
            other => return Err(el.err(format!("unknown closure=\"{other}\""))),
        };
        let left = el.num_or("leftMargin", f64::NEG_INFINITY)?;
        let right = el.num_or("rightMargin", f64::INFINITY)?;
        if left > right {
            return Err(el.err(format!("leftMargin {left} is above rightMargin {right}")));
        }
        Ok(Interval {
            left,
            right,
            left_closed,
            right_closed,
        })
    }

    pub fn contains(&self, x: f64) -> bool {
        let above = if self.left_closed {
            x >= self.left
        } else {
            x > self.left
        };
        let below = if self.right_closed {
            x <= self.right
        } else {
            x < self.right
        };
        above && below
    }
}

/// What a DataField declares about its values.
#[derive(Debug, Clone, Default)]
pub(crate) struct Domain {
    /// Valid values listed (categorical and ordinal fields); empty = any value is valid.
    pub valid: Vec<Value>,
    pub invalid: Vec<Value>,
    /// Values that mean "missing" (e.g. `-999`).
    pub missing: Vec<Value>,
    /// Valid ranges of a continuous field; empty = any number is valid.
    pub intervals: Vec<Interval>,
}

impl Domain {
    fn is_missing(&self, v: &Value) -> bool {
        v.is_missing() || self.missing.iter().any(|m| m.equals(v))
    }

    fn is_valid(&self, v: &Value, optype: OpType) -> bool {
        if self.invalid.iter().any(|m| m.equals(v)) {
            return false;
        }
        if matches!(v, Value::Str(s) if &**s == UNSEEN) {
            return self.valid.is_empty() || optype == OpType::Continuous;
        }
        match optype {
            OpType::Continuous => {
                self.intervals.is_empty()
                    || v.as_num()
                        .is_some_and(|x| self.intervals.iter().any(|i| i.contains(x)))
            }
            _ => self.valid.is_empty() || self.valid.iter().any(|m| m.equals(v)),
        }
    }
}

/// A DataField.
#[derive(Debug, Clone)]
pub(crate) struct DataField {
    pub def: FieldDef,
    pub domain: Arc<Domain>,
}

/// Reads the DataDictionary.
pub(crate) fn data_dictionary(el: &El) -> Result<Vec<DataField>, ModelError> {
    let mut out: Vec<DataField> = Vec::new();
    for f in el.children_named("DataField") {
        let name = f.req("name")?;
        if out.iter().any(|d| &*d.def.name == name) {
            return Err(f.err(format!("field '{name}' is declared twice")));
        }
        let data_type = DataType::of(&f, None)?;
        let optype = OpType::of(&f, data_type)?;
        let mut domain = Domain::default();
        for v in f.children_named("Value") {
            let text = v.req("value")?;
            let value = data_type.parse_at(&v, "value", text)?;
            match v.choice("property", &["valid", "invalid", "missing"], "valid")? {
                "valid" => domain.valid.push(value),
                "invalid" => domain.invalid.push(value),
                _ => domain.missing.push(value),
            }
        }
        if optype == OpType::Continuous {
            // Valid Values of a continuous field only document it; they do not restrict it.
            domain.valid.clear();
        }
        for i in f.children_named("Interval") {
            domain.intervals.push(Interval::parse(&i)?);
        }
        out.push(DataField {
            def: FieldDef {
                name: Arc::from(name),
                data_type,
                optype,
            },
            domain: Arc::new(domain),
        });
    }
    Ok(out)
}

/// `invalidValueTreatment`.
#[derive(Debug, Clone, PartialEq)]
#[allow(clippy::enum_variant_names)] // the standard's own names
pub(crate) enum Invalid {
    ReturnInvalid,
    AsIs,
    AsMissing,
    AsValue(Value),
}

/// `outliers` with its bounds.
#[derive(Debug, Clone, Copy, PartialEq)]
#[allow(clippy::enum_variant_names)] // the standard's own names
pub(crate) enum Outliers {
    AsIs,
    AsMissing { low: f64, high: f64 },
    AsExtreme { low: f64, high: f64 },
}

/// What a MiningField does to its field's values before a model reads them.
#[derive(Debug, Clone)]
pub(crate) struct Treatment {
    pub field: FieldDef,
    pub domain: Arc<Domain>,
    pub replacement: Option<Value>,
    pub invalid: Invalid,
    pub outliers: Outliers,
}

impl Treatment {
    /// The treatment of `mf`, a MiningField of `field`.
    pub fn parse(mf: &El, field: &FieldDef, domain: Arc<Domain>) -> Result<Treatment, ModelError> {
        let ty = field.data_type;
        let replacement = match mf.attr("missingValueReplacement") {
            Some(t) => Some(ty.parse_at(mf, "missingValueReplacement", t)?),
            None => None,
        };
        let invalid = match mf.choice(
            "invalidValueTreatment",
            &["returnInvalid", "asIs", "asMissing", "asValue"],
            "returnInvalid",
        )? {
            "returnInvalid" => Invalid::ReturnInvalid,
            "asIs" => Invalid::AsIs,
            "asMissing" => Invalid::AsMissing,
            _ => {
                let t = mf.req("invalidValueReplacement")?;
                Invalid::AsValue(ty.parse_at(mf, "invalidValueReplacement", t)?)
            }
        };
        let bounds = || -> Result<(f64, f64), ModelError> {
            Ok((
                mf.num_or("lowValue", f64::NEG_INFINITY)?,
                mf.num_or("highValue", f64::INFINITY)?,
            ))
        };
        let outliers = match mf.choice(
            "outliers",
            &["asIs", "asMissingValues", "asExtremeValues"],
            "asIs",
        )? {
            "asIs" => Outliers::AsIs,
            "asMissingValues" => {
                let (low, high) = bounds()?;
                Outliers::AsMissing { low, high }
            }
            _ => {
                let (low, high) = bounds()?;
                Outliers::AsExtreme { low, high }
            }
        };
        if mf.attr("invalidValueReplacement").is_some() && !matches!(invalid, Invalid::AsValue(_)) {
            return Err(mf.err("invalidValueReplacement needs invalidValueTreatment=\"asValue\""));
        }
        Ok(Treatment {
            field: field.clone(),
            domain,
            replacement,
            invalid,
            outliers,
        })
    }

    /// Whether the treatment changes anything (if not, a nested model reads its parent's slot directly).
    pub fn is_identity(&self) -> bool {
        self.replacement.is_none()
            && self.invalid == Invalid::ReturnInvalid
            && self.outliers == Outliers::AsIs
    }

    /// Applies the treatment to `v`, already converted to the field's type (`None` = not convertible).
    pub fn apply(&self, v: Option<Value>) -> Result<Value, EvalError> {
        let v = match v {
            Some(v) if self.domain.is_missing(&v) => Value::Missing,
            Some(v) if self.domain.is_valid(&v, self.field.optype) => v,
            invalid => match &self.invalid {
                Invalid::ReturnInvalid => {
                    return Err(EvalError(format!(
                        "field '{}': {} is not a valid value (invalidValueTreatment=returnInvalid)",
                        self.field.name,
                        match &invalid {
                            Some(Value::Str(s)) if &**s == UNSEEN =>
                                "a category the model does not list".to_string(),
                            Some(v) => format!("'{}'", v.to_text()),
                            None => format!("the input is not a {:?}", self.field.data_type),
                        }
                    )))
                }
                Invalid::AsIs => invalid.unwrap_or(Value::Missing),
                Invalid::AsMissing => Value::Missing,
                Invalid::AsValue(r) => r.clone(),
            },
        };
        let v = match (&v, self.outliers) {
            (Value::Num(x), Outliers::AsMissing { low, high }) if *x < low || *x > high => {
                Value::Missing
            }
            (Value::Num(x), Outliers::AsExtreme { low, high }) => Value::Num(x.clamp(low, high)),
            _ => v,
        };
        Ok(match v {
            Value::Missing => self.replacement.clone().unwrap_or(Value::Missing),
            v => v,
        })
    }
}

/// Where a slot's value comes from.
#[derive(Debug)]
pub(crate) enum Source {
    /// Input column `column` of the row, treated by the top-level MiningField.
    Input { column: usize, treatment: Treatment },
    /// A DerivedField.
    Derived(Expr),
    /// Another slot seen through a nested model's MiningField.
    Treated { from: Slot, treatment: Treatment },
    /// Written by a model as it runs (output fields of a chain's segments); missing until then.
    Written,
}

/// Every slot of a compiled PMML document.
#[derive(Debug, Default)]
pub(crate) struct Program {
    pub defs: Vec<FieldDef>,
    pub sources: Vec<Source>,
    /// Per input column of a string field: the strings its category codes stand for.
    pub strings: Vec<Option<Arc<[Arc<str>]>>>,
}

impl Program {
    pub fn add(&mut self, def: FieldDef, source: Source) -> Slot {
        self.defs.push(def);
        self.sources.push(source);
        self.defs.len() - 1
    }
}

/// Names visible to a model, resolved to slots; a nested model's scope extends its parent's.
#[derive(Debug, Clone, Default)]
pub(crate) struct Scope {
    names: HashMap<Arc<str>, Slot>,
}

impl Scope {
    pub fn bind(&mut self, name: Arc<str>, slot: Slot) {
        self.names.insert(name, slot);
    }

    pub fn get(&self, name: &str) -> Option<Slot> {
        self.names.get(name).copied()
    }

    /// The slot named by attribute `attr` of `el`, which must be visible.
    pub fn resolve(&self, el: &El, attr: &str) -> Result<Slot, ModelError> {
        let name = el.req(attr)?;
        self.get(name).ok_or_else(|| {
            el.err(format!(
                "{attr}=\"{name}\" names no field visible here (not in the DataDictionary, TransformationDictionary, \
                 LocalTransformations or an earlier segment's Output)"
            ))
        })
    }
}

/// Slot values of one evaluation, reused across rows.
#[derive(Debug, Default)]
pub(crate) struct Frame {
    /// Tests: score every row with the interpreter, never the compiled ensembles.
    pub interpret_only: bool,
    values: Vec<Value>,
    /// 0 = not yet computed, 1 = being computed, 2 = ready.
    state: Vec<u8>,
}

/// One row's evaluation: the program, the input row and the frame.
pub(crate) struct Env<'a> {
    pub prog: &'a Program,
    row: &'a [f64],
    frame: &'a mut Frame,
}

impl<'a> Env<'a> {
    pub fn new(prog: &'a Program, row: &'a [f64], frame: &'a mut Frame) -> Self {
        let n = prog.defs.len();
        frame.values.clear();
        frame.values.resize(n, Value::Missing);
        frame.state.clear();
        frame.state.resize(n, 0);
        Env { prog, row, frame }
    }

    /// The value of `slot`, computing it on first use.
    pub fn get(&mut self, slot: Slot) -> Result<Value, EvalError> {
        match self.frame.state[slot] {
            2 => return Ok(self.frame.values[slot].clone()),
            1 => {
                return Err(EvalError(format!(
                    "field '{}' is defined in terms of itself",
                    self.prog.defs[slot].name
                )))
            }
            _ => {}
        }
        self.frame.state[slot] = 1;
        let prog = self.prog;
        let v = match &prog.sources[slot] {
            Source::Input { column, treatment } => {
                let raw = self.input(*column, &prog.defs[slot]);
                treatment.apply(raw)?
            }
            Source::Derived(expr) => {
                let v = expr.eval(self)?;
                let def = &prog.defs[slot];
                def.data_type.convert(v.clone()).ok_or_else(|| {
                    EvalError(format!(
                        "derived field '{}': '{}' is not a {:?}",
                        def.name,
                        v.to_text(),
                        def.data_type
                    ))
                })?
            }
            Source::Treated { from, treatment } => {
                let v = self.get(*from)?;
                treatment.apply(Some(v))?
            }
            Source::Written => Value::Missing,
        };
        self.frame.values[slot] = v.clone();
        self.frame.state[slot] = 2;
        Ok(v)
    }

    pub fn interpret_only(&self) -> bool {
        self.frame.interpret_only
    }

    /// The value of `slot` as a number; `None` if missing or not numeric.
    pub fn num(&mut self, slot: Slot) -> Result<Option<f64>, EvalError> {
        Ok(match self.get(slot)? {
            Value::Num(x) => Some(x),
            Value::Missing => None,
            v => v.as_num(),
        })
    }

    /// Sets a written slot (a segment's output field).
    pub fn set(&mut self, slot: Slot, v: Value) {
        self.frame.values[slot] = v;
        self.frame.state[slot] = 2;
    }

    /// Reads input column `column` as the field's type; `None` when it cannot be converted (invalid).
    fn input(&self, column: usize, def: &FieldDef) -> Option<Value> {
        let x = self.row[column];
        if x.is_nan() {
            if is_unknown_category(x) {
                return Some(Value::Str(Arc::from(UNSEEN)));
            }
            return Some(Value::Missing);
        }
        match def.data_type {
            DataType::String => {
                let table = self.prog.strings[column].as_deref().unwrap_or(&[]);
                if x >= 0.0 && x.fract() == 0.0 && (x as usize) < table.len() {
                    Some(Value::Str(table[x as usize].clone()))
                } else {
                    Some(Value::Str(Value::Num(x).to_text()))
                }
            }
            ty => ty.convert(Value::Num(x)),
        }
    }
}

//! Values as PMML evaluation sees them: missing, a number, a string or a boolean, typed by the field's
//! `dataType`, and the comparisons and conversions between them.
//!
//! Numbers of `float` fields are kept rounded to single precision, as PMML evaluators (JPMML, PMML4S) parse them,
//! so that a tree threshold like `0.8300392` on a float field compares exactly as in the exporting tool.

use std::cmp::Ordering;
use std::sync::Arc;

use super::xml::{parse_f64, El};
use crate::ModelError;

/// One field value during evaluation.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    Missing,
    Num(f64),
    Str(Arc<str>),
    Bool(bool),
}

impl Value {
    pub fn is_missing(&self) -> bool {
        matches!(self, Value::Missing)
    }

    /// The value as a number: numbers, booleans (1/0), and strings that spell a number.
    pub fn as_num(&self) -> Option<f64> {
        match self {
            Value::Num(x) => Some(*x),
            Value::Bool(b) => Some(if *b { 1.0 } else { 0.0 }),
            Value::Str(s) => parse_f64(s),
            Value::Missing => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            Value::Num(x) if *x == 1.0 => Some(true),
            Value::Num(x) if *x == 0.0 => Some(false),
            Value::Str(s) => match s.trim() {
                "true" | "1" => Some(true),
                "false" | "0" => Some(false),
                _ => None,
            },
            _ => None,
        }
    }

    /// The value as PMML prints it (`2` for an integral number, `true`, or the string).
    pub fn to_text(&self) -> Arc<str> {
        match self {
            Value::Str(s) => s.clone(),
            Value::Num(x) => Arc::from(format_num(*x)),
            Value::Bool(b) => Arc::from(if *b { "true" } else { "false" }),
            Value::Missing => Arc::from(""),
        }
    }

    /// Equality as PMML predicates and tables test it: numbers numerically (a string operand is read as a number
    /// when the other is one), strings exactly, booleans as booleans.
    pub fn equals(&self, other: &Value) -> bool {
        match (self, other) {
            (Value::Missing, _) | (_, Value::Missing) => false,
            (Value::Str(a), Value::Str(b)) => a == b,
            (Value::Bool(a), b) | (b, Value::Bool(a)) => b.as_bool() == Some(*a),
            (a, b) => match (a.as_num(), b.as_num()) {
                (Some(x), Some(y)) => x == y,
                _ => false,
            },
        }
    }

    /// Ordering for `lessThan` and friends: numbers numerically, strings lexically; `None` when incomparable.
    pub fn compare(&self, other: &Value) -> Option<Ordering> {
        match (self, other) {
            (Value::Str(a), Value::Str(b)) => Some(a.cmp(b)),
            (a, b) => a.as_num()?.partial_cmp(&b.as_num()?),
        }
    }
}

/// The distinct values of `values`, in first-seen order (category lists are short: a linear scan).
pub(crate) fn distinct(values: impl IntoIterator<Item = Value>) -> Vec<Value> {
    let mut out: Vec<Value> = Vec::new();
    for v in values {
        if !out.iter().any(|o| o.equals(&v)) {
            out.push(v);
        }
    }
    out
}

/// A constant written without a type (an untyped `Constant`, Apply's `mapMissingTo`/`defaultValue`): a number
/// if it reads as one, else a string.
pub(crate) fn loose_constant(text: &str) -> Value {
    parse_f64(text).map_or_else(|| Value::Str(Arc::from(text)), Value::Num)
}

/// Formats a number as PMML and Java print it: integral values without a fraction.
pub(crate) fn format_num(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e15 {
        format!("{}", x as i64)
    } else {
        format!("{x}")
    }
}

/// A field's `dataType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DataType {
    String,
    Integer,
    Float,
    Double,
    Boolean,
}

impl DataType {
    /// Reads the `dataType` attribute of `el` (required unless `default` is given).
    pub fn of(el: &El, default: Option<DataType>) -> Result<DataType, ModelError> {
        let Some(name) = el.attr("dataType") else {
            return default.ok_or_else(|| el.err("attribute 'dataType' is required"));
        };
        Ok(match name {
            "string" => DataType::String,
            "integer" => DataType::Integer,
            "float" => DataType::Float,
            "double" => DataType::Double,
            "boolean" => DataType::Boolean,
            "date"
            | "time"
            | "dateTime"
            | "dateDaysSince[0]"
            | "dateDaysSince[1960]"
            | "dateDaysSince[1970]"
            | "dateDaysSince[1980]"
            | "timeSeconds"
            | "dateTimeSecondsSince[0]"
            | "dateTimeSecondsSince[1960]"
            | "dateTimeSecondsSince[1970]"
            | "dateTimeSecondsSince[1980]" => {
                return Err(el.unsupported(format!(
                    "dataType=\"{name}\": date and time fields are not supported"
                )))
            }
            other => return Err(el.err(format!("unknown dataType=\"{other}\""))),
        })
    }

    pub fn is_numeric(self) -> bool {
        matches!(self, DataType::Integer | DataType::Float | DataType::Double)
    }

    /// Parses a constant written in the model (a `value` attribute, a table cell) as this type.
    pub fn parse(self, text: &str) -> Option<Value> {
        match self {
            DataType::String => Some(Value::Str(Arc::from(text))),
            DataType::Boolean => Value::Str(Arc::from(text)).as_bool().map(Value::Bool),
            DataType::Integer => {
                let x = parse_f64(text)?;
                (x.fract() == 0.0).then_some(Value::Num(x))
            }
            DataType::Float => parse_f64(text).map(|x| Value::Num(x as f32 as f64)),
            DataType::Double => parse_f64(text).map(Value::Num),
        }
    }

    /// Parses a constant of `el`'s attribute `attr`, erroring at `el` when it is not of this type.
    pub fn parse_at(self, el: &El, attr: &str, text: &str) -> Result<Value, ModelError> {
        self.parse(text)
            .ok_or_else(|| el.err(format!("{attr}=\"{text}\" is not a valid {self:?} value")))
    }

    /// Converts an evaluated value to this type; `None` when it cannot be (an invalid value).
    pub fn convert(self, v: Value) -> Option<Value> {
        match (self, v) {
            (_, Value::Missing) => Some(Value::Missing),
            (DataType::String, Value::Str(s)) => Some(Value::Str(s)),
            (DataType::String, v) => Some(Value::Str(v.to_text())),
            (DataType::Boolean, v) => v.as_bool().map(Value::Bool),
            (DataType::Integer, v) => {
                let x = v.as_num()?;
                (x.fract() == 0.0).then_some(Value::Num(x))
            }
            (DataType::Float, v) => v.as_num().map(|x| Value::Num(x as f32 as f64)),
            (DataType::Double, v) => v.as_num().map(Value::Num),
        }
    }
}

/// A field's `optype`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OpType {
    Categorical,
    Ordinal,
    Continuous,
}

impl OpType {
    /// Reads `optype`; when absent, continuous for numbers and categorical otherwise, as the standard says.
    pub fn of(el: &El, data_type: DataType) -> Result<OpType, ModelError> {
        Ok(match el.attr("optype") {
            Some("categorical") => OpType::Categorical,
            Some("ordinal") => OpType::Ordinal,
            Some("continuous") => OpType::Continuous,
            None if data_type.is_numeric() => OpType::Continuous,
            None => OpType::Categorical,
            Some(other) => return Err(el.err(format!("unknown optype=\"{other}\""))),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_constants() {
        assert_eq!(
            DataType::Float.parse("0.8300392"),
            Some(Value::Num(0.8300392f32 as f64))
        );
        assert_eq!(DataType::Integer.parse("2.5"), None);
        assert_eq!(DataType::Integer.parse("3"), Some(Value::Num(3.0)));
        assert_eq!(DataType::Boolean.parse("true"), Some(Value::Bool(true)));
        assert_eq!(
            DataType::Double.parse("INF"),
            Some(Value::Num(f64::INFINITY))
        );
    }

    #[test]
    fn equality_and_order_across_types() {
        let s = |t: &str| Value::Str(Arc::from(t));
        assert!(Value::Num(1.0).equals(&s("1")));
        assert!(s("a").equals(&s("a")) && !s("a").equals(&s("b")));
        assert!(!Value::Missing.equals(&Value::Missing));
        assert!(Value::Bool(true).equals(&Value::Num(1.0)));
        assert_eq!(
            Value::Num(1.0).compare(&Value::Num(2.0)),
            Some(Ordering::Less)
        );
        assert_eq!(s("b").compare(&s("a")), Some(Ordering::Greater));
        assert_eq!(s("x").compare(&Value::Num(2.0)), None);
        assert_eq!(&*Value::Num(2.0).to_text(), "2");
        assert_eq!(&*Value::Num(2.5).to_text(), "2.5");
    }
}

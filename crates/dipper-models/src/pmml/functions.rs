//! PMML's built-in functions for `Apply`: arithmetic, aggregates, comparisons, boolean logic, missing-value
//! tests, strings and distributions. A name not listed here is refused when the model loads, naming the function
//! and its line, rather than evaluated wrongly.

use std::cmp::Ordering;
use std::sync::Arc;

use super::expr::Expr;
use super::fields::Env;
use super::value::Value;
use super::EvalError;

/// Longest regular expression pattern accepted by `matches` and `replace`.
const MAX_PATTERN: usize = 4096;

#[derive(Debug, Clone)]
pub(crate) enum Func {
    /// Internal: the single argument (wraps inlined user functions).
    Identity,
    Add,
    Sub,
    Mul,
    Div,
    Pow,
    Threshold,
    Modulo,
    Atan2,
    Hypot,
    Unary(fn(f64) -> f64),
    Round,
    Min,
    Max,
    Sum,
    Avg,
    Median,
    Product,
    Cmp(fn(Ordering) -> bool),
    Equal,
    NotEqual,
    And,
    Or,
    Not,
    IsIn,
    IsNotIn,
    If,
    IsMissing,
    IsNotMissing,
    Uppercase,
    Lowercase,
    Substring,
    TrimBlanks,
    Concat,
    StringLength,
    Matches(Option<Arc<regex::Regex>>),
    Replace(Option<Arc<regex::Regex>>),
    NormalCdf,
    NormalPdf,
    NormalIdf,
    StdNormalCdf,
    StdNormalPdf,
    StdNormalIdf,
}

/// Why a function cannot be compiled.
pub(crate) enum FuncError {
    Unknown,
    Arity(String),
    Other(String),
}

fn arity(n: usize, min: usize, max: usize) -> Result<(), FuncError> {
    if n < min || n > max {
        let want = if min == max {
            format!("{min}")
        } else if max == usize::MAX {
            format!("at least {min}")
        } else {
            format!("{min} to {max}")
        };
        return Err(FuncError::Arity(format!(
            "takes {want} arguments, {n} given"
        )));
    }
    Ok(())
}

impl Func {
    /// The built-in called `name`, checked for `n` arguments.
    pub fn parse(name: &str, n: usize) -> Result<Func, FuncError> {
        use Func::*;
        let (f, min, max) = match name {
            "+" => (Add, 2, 2),
            "-" => (Sub, 2, 2),
            "*" => (Mul, 2, 2),
            "/" => (Div, 2, 2),
            "pow" => (Pow, 2, 2),
            "threshold" => (Threshold, 2, 2),
            "modulo" => (Modulo, 2, 2),
            "atan2" => (Atan2, 2, 2),
            "hypot" => (Hypot, 2, 2),
            "log10" => (Unary(f64::log10), 1, 1),
            "ln" => (Unary(f64::ln), 1, 1),
            "sqrt" => (Unary(f64::sqrt), 1, 1),
            "abs" => (Unary(f64::abs), 1, 1),
            "exp" => (Unary(f64::exp), 1, 1),
            "floor" => (Unary(f64::floor), 1, 1),
            "ceil" => (Unary(f64::ceil), 1, 1),
            "rint" => (Unary(f64::round_ties_even), 1, 1),
            "expm1" => (Unary(f64::exp_m1), 1, 1),
            "ln1p" => (Unary(f64::ln_1p), 1, 1),
            "sin" => (Unary(f64::sin), 1, 1),
            "cos" => (Unary(f64::cos), 1, 1),
            "tan" => (Unary(f64::tan), 1, 1),
            "asin" => (Unary(f64::asin), 1, 1),
            "acos" => (Unary(f64::acos), 1, 1),
            "atan" => (Unary(f64::atan), 1, 1),
            "sinh" => (Unary(f64::sinh), 1, 1),
            "cosh" => (Unary(f64::cosh), 1, 1),
            "tanh" => (Unary(f64::tanh), 1, 1),
            "erf" => (Unary(libm::erf), 1, 1),
            "round" => (Round, 1, 1),
            "min" => (Min, 1, usize::MAX),
            "max" => (Max, 1, usize::MAX),
            "sum" => (Sum, 1, usize::MAX),
            "avg" => (Avg, 1, usize::MAX),
            "median" => (Median, 1, usize::MAX),
            "product" => (Product, 1, usize::MAX),
            "lessThan" => (Cmp(|o| o == Ordering::Less), 2, 2),
            "lessOrEqual" => (Cmp(|o| o != Ordering::Greater), 2, 2),
            "greaterThan" => (Cmp(|o| o == Ordering::Greater), 2, 2),
            "greaterOrEqual" => (Cmp(|o| o != Ordering::Less), 2, 2),
            "equal" => (Equal, 2, 2),
            "notEqual" => (NotEqual, 2, 2),
            "and" => (And, 2, usize::MAX),
            "or" => (Or, 2, usize::MAX),
            "not" => (Not, 1, 1),
            "isIn" => (IsIn, 2, usize::MAX),
            "isNotIn" => (IsNotIn, 2, usize::MAX),
            "if" => (If, 2, 3),
            "isMissing" => (IsMissing, 1, 1),
            "isNotMissing" => (IsNotMissing, 1, 1),
            // Invalid input values are refused or made missing before functions see them.
            "isValid" => (IsNotMissing, 1, 1),
            "isNotValid" => (IsMissing, 1, 1),
            "uppercase" => (Uppercase, 1, 1),
            "lowercase" => (Lowercase, 1, 1),
            "substring" => (Substring, 3, 3),
            "trimBlanks" => (TrimBlanks, 1, 1),
            "concat" => (Concat, 1, usize::MAX),
            "stringLength" => (StringLength, 1, 1),
            "matches" => (Matches(None), 2, 2),
            "replace" => (Replace(None), 3, 3),
            "normalCDF" => (NormalCdf, 3, 3),
            "normalPDF" => (NormalPdf, 3, 3),
            "normalIDF" => (NormalIdf, 3, 3),
            "stdNormalCDF" => (StdNormalCdf, 1, 1),
            "stdNormalPDF" => (StdNormalPdf, 1, 1),
            "stdNormalIDF" => (StdNormalIdf, 1, 1),
            "formatNumber"
            | "formatDatetime"
            | "dateDaysSinceYear"
            | "dateSecondsSinceYear"
            | "dateSecondsSinceMidnight" => {
                return Err(FuncError::Other(
                    "date and number formatting functions are not supported".into(),
                ))
            }
            _ => return Err(FuncError::Unknown),
        };
        arity(n, min, max)?;
        Ok(f)
    }

    /// Compiles regular expressions given as constants (the usual case) once.
    pub fn with_constant_args(self, args: &[Expr]) -> Result<Func, String> {
        let pattern = |i: usize| -> Result<Option<Arc<regex::Regex>>, String> {
            match args.get(i) {
                Some(Expr::Constant(v)) => compile_regex(&v.to_text()).map(Some),
                _ => Ok(None),
            }
        };
        Ok(match self {
            Func::Matches(None) => Func::Matches(pattern(1)?),
            Func::Replace(None) => Func::Replace(pattern(1)?),
            f => f,
        })
    }

    /// Functions whose result depends on the text of a string argument, not only on which string it is.
    pub fn reads_text(&self) -> bool {
        matches!(
            self,
            Func::Uppercase
                | Func::Lowercase
                | Func::Substring
                | Func::TrimBlanks
                | Func::Concat
                | Func::StringLength
                | Func::Matches(_)
                | Func::Replace(_)
        )
    }

    /// Functions that see their arguments unevaluated (only `if`, which evaluates one branch).
    pub fn lazy(&self) -> bool {
        matches!(self, Func::If)
    }

    /// Whether a missing argument makes the result missing (all but the missing-value tests).
    pub fn propagates_missing(&self) -> bool {
        !matches!(self, Func::IsMissing | Func::IsNotMissing | Func::Identity)
    }

    pub fn eval_lazy(
        &self,
        args: &[Expr],
        env: &mut Env,
    ) -> Result<Result<Value, String>, EvalError> {
        // Only `if`.
        let cond = args[0].eval(env)?;
        if cond.is_missing() {
            return Ok(Ok(Value::Missing));
        }
        Ok(match cond.as_bool() {
            Some(true) => Ok(args[1].eval(env)?),
            Some(false) => Ok(match args.get(2) {
                Some(e) => e.eval(env)?,
                None => Value::Missing,
            }),
            None => Err(format!(
                "if: condition '{}' is not a boolean",
                cond.to_text()
            )),
        })
    }

    /// Applies the function to evaluated arguments (none missing, unless the function tests for missing).
    pub fn eval(&self, a: &[Value]) -> Result<Value, String> {
        use Func::*;
        let num = |i: usize| -> Result<f64, String> {
            a[i].as_num()
                .ok_or_else(|| format!("argument {} ('{}') is not a number", i + 1, a[i].to_text()))
        };
        let nums = || -> Result<Vec<f64>, String> { (0..a.len()).map(num).collect() };
        let boolean = |i: usize| -> Result<bool, String> {
            a[i].as_bool().ok_or_else(|| {
                format!("argument {} ('{}') is not a boolean", i + 1, a[i].to_text())
            })
        };
        let text = |i: usize| a[i].to_text();
        Ok(match self {
            Identity => a[0].clone(),
            Add => Value::Num(num(0)? + num(1)?),
            Sub => Value::Num(num(0)? - num(1)?),
            Mul => Value::Num(num(0)? * num(1)?),
            Div => {
                let d = num(1)?;
                if d == 0.0 {
                    return Err("division by zero".into());
                }
                Value::Num(num(0)? / d)
            }
            Pow => Value::Num(num(0)?.powf(num(1)?)),
            Threshold => Value::Num(if num(0)? > num(1)? { 1.0 } else { 0.0 }),
            Modulo => {
                let (x, y) = (num(0)?, num(1)?);
                if y == 0.0 {
                    return Err("modulo by zero".into());
                }
                Value::Num(x - y * (x / y).floor())
            }
            Atan2 => Value::Num(num(0)?.atan2(num(1)?)),
            Hypot => Value::Num(num(0)?.hypot(num(1)?)),
            Unary(f) => Value::Num(f(num(0)?)),
            // Java's Math.round: halves round up.
            Round => Value::Num((num(0)? + 0.5).floor()),
            Min => Value::Num(nums()?.into_iter().fold(f64::INFINITY, f64::min)),
            Max => Value::Num(nums()?.into_iter().fold(f64::NEG_INFINITY, f64::max)),
            Sum => Value::Num(nums()?.iter().sum()),
            Avg => Value::Num(nums()?.iter().sum::<f64>() / a.len() as f64),
            Product => Value::Num(nums()?.iter().product()),
            Median => {
                let mut v = nums()?;
                v.sort_by(f64::total_cmp);
                let m = v.len() / 2;
                Value::Num(if v.len() % 2 == 1 {
                    v[m]
                } else {
                    (v[m - 1] + v[m]) / 2.0
                })
            }
            Cmp(test) => match a[0].compare(&a[1]) {
                Some(o) => Value::Bool(test(o)),
                None => return Err(format!("cannot compare '{}' with '{}'", text(0), text(1))),
            },
            Equal => Value::Bool(a[0].equals(&a[1])),
            NotEqual => Value::Bool(!a[0].equals(&a[1])),
            And => {
                let mut all = true;
                for i in 0..a.len() {
                    all &= boolean(i)?;
                }
                Value::Bool(all)
            }
            Or => {
                let mut any = false;
                for i in 0..a.len() {
                    any |= boolean(i)?;
                }
                Value::Bool(any)
            }
            Not => Value::Bool(!boolean(0)?),
            IsIn => Value::Bool(a[1..].iter().any(|v| v.equals(&a[0]))),
            IsNotIn => Value::Bool(!a[1..].iter().any(|v| v.equals(&a[0]))),
            If => unreachable!("if is evaluated lazily"),
            IsMissing => Value::Bool(a[0].is_missing()),
            IsNotMissing => Value::Bool(!a[0].is_missing()),
            Uppercase => Value::Str(Arc::from(text(0).to_uppercase())),
            Lowercase => Value::Str(Arc::from(text(0).to_lowercase())),
            Substring => {
                let s = text(0);
                let (start, len) = (num(1)?, num(2)?);
                if start < 1.0 || len < 0.0 || start.fract() != 0.0 || len.fract() != 0.0 {
                    return Err(format!("substring({start}, {len}): bad position or length"));
                }
                let out: String = s
                    .chars()
                    .skip(start as usize - 1)
                    .take(len as usize)
                    .collect();
                Value::Str(Arc::from(out))
            }
            TrimBlanks => Value::Str(Arc::from(text(0).trim())),
            Concat => {
                let mut out = String::new();
                for v in a {
                    out.push_str(&v.to_text());
                }
                Value::Str(Arc::from(out))
            }
            StringLength => Value::Num(text(0).chars().count() as f64),
            Matches(re) => {
                let re = match re {
                    Some(r) => r.clone(),
                    None => compile_regex(&text(1))?,
                };
                Value::Bool(re.is_match(&text(0)))
            }
            Replace(re) => {
                let re = match re {
                    Some(r) => r.clone(),
                    None => compile_regex(&text(1))?,
                };
                // Java's `$1` group references are the same syntax as the regex crate's.
                Value::Str(Arc::from(re.replace_all(&text(0), &*text(2)).into_owned()))
            }
            NormalCdf => {
                let (x, mu, sigma) = (num(0)?, num(1)?, num(2)?);
                Value::Num(std_normal_cdf((x - mu) / sigma))
            }
            NormalPdf => {
                let (x, mu, sigma) = (num(0)?, num(1)?, num(2)?);
                Value::Num(std_normal_pdf((x - mu) / sigma) / sigma)
            }
            NormalIdf => {
                let (p, mu, sigma) = (num(0)?, num(1)?, num(2)?);
                Value::Num(mu + sigma * std_normal_idf(p))
            }
            StdNormalCdf => Value::Num(std_normal_cdf(num(0)?)),
            StdNormalPdf => Value::Num(std_normal_pdf(num(0)?)),
            StdNormalIdf => Value::Num(std_normal_idf(num(0)?)),
        })
    }
}

fn compile_regex(pattern: &str) -> Result<Arc<regex::Regex>, String> {
    if pattern.len() > MAX_PATTERN {
        return Err(format!("pattern longer than {MAX_PATTERN} bytes"));
    }
    regex::RegexBuilder::new(pattern)
        .size_limit(1 << 20)
        .build()
        .map(Arc::new)
        .map_err(|e| format!("bad regular expression: {e}"))
}

pub(crate) fn std_normal_cdf(x: f64) -> f64 {
    0.5 * libm::erfc(-x / std::f64::consts::SQRT_2)
}

pub(crate) fn std_normal_pdf(x: f64) -> f64 {
    (-0.5 * x * x).exp() / (2.0 * std::f64::consts::PI).sqrt()
}

/// The standard normal quantile: Acklam's approximation refined by one Halley step to full precision.
pub(crate) fn std_normal_idf(p: f64) -> f64 {
    if p.is_nan() || !(0.0..=1.0).contains(&p) {
        return f64::NAN;
    }
    if p == 0.0 {
        return f64::NEG_INFINITY;
    }
    if p == 1.0 {
        return f64::INFINITY;
    }
    const A: [f64; 6] = [
        -3.969683028665376e1,
        2.209460984245205e2,
        -2.759285104469687e2,
        1.38357751867269e2,
        -3.066479806614716e1,
        2.506628277459239,
    ];
    const B: [f64; 5] = [
        -5.447609879822406e1,
        1.615858368580409e2,
        -1.556989798598866e2,
        6.680131188771972e1,
        -1.328068155288572e1,
    ];
    const C: [f64; 6] = [
        -7.784894002430293e-3,
        -3.223964580411365e-1,
        -2.400758277161838,
        -2.549732539343734,
        4.374664141464968,
        2.938163982698783,
    ];
    const D: [f64; 4] = [
        7.784695709041462e-3,
        3.224671290700398e-1,
        2.445134137142996,
        3.754408661907416,
    ];
    let low = 0.02425;
    let x = if p < low {
        let q = (-2.0 * p.ln()).sqrt();
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    } else if p <= 1.0 - low {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    } else {
        let q = (-2.0 * (1.0 - p).ln()).sqrt();
        -(((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    };
    // Halley refinement.
    let e = std_normal_cdf(x) - p;
    let u = e * (2.0 * std::f64::consts::PI).sqrt() * (x * x / 2.0).exp();
    x - u / (1.0 + x * u / 2.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(name: &str, args: &[Value]) -> Result<Value, String> {
        Func::parse(name, args.len())
            .map_err(|_| "parse".to_string())?
            .eval(args)
    }

    #[test]
    fn arithmetic_and_aggregates() {
        let n = Value::Num;
        assert_eq!(call("+", &[n(1.0), n(2.0)]), Ok(n(3.0)));
        assert_eq!(call("/", &[n(1.0), n(4.0)]), Ok(n(0.25)));
        assert!(call("/", &[n(1.0), n(0.0)]).is_err());
        assert_eq!(call("avg", &[n(1.0), n(2.0), n(6.0)]), Ok(n(3.0)));
        assert_eq!(
            call("median", &[n(5.0), n(1.0), n(2.0), n(9.0)]),
            Ok(n(3.5))
        );
        assert_eq!(call("round", &[n(2.5)]), Ok(n(3.0)));
        assert_eq!(call("round", &[n(-2.5)]), Ok(n(-2.0)));
        assert_eq!(call("threshold", &[n(3.0), n(2.0)]), Ok(n(1.0)));
        assert_eq!(call("modulo", &[n(-7.0), n(3.0)]), Ok(n(2.0)));
    }

    #[test]
    fn strings_and_logic() {
        let s = |t: &str| Value::Str(Arc::from(t));
        assert_eq!(
            call(
                "substring",
                &[s("abcdef"), Value::Num(2.0), Value::Num(3.0)]
            ),
            Ok(s("bcd"))
        );
        assert_eq!(call("concat", &[s("a"), Value::Num(2.0)]), Ok(s("a2")));
        assert_eq!(
            call("isIn", &[s("b"), s("a"), s("b")]),
            Ok(Value::Bool(true))
        );
        assert_eq!(
            call("matches", &[s("abc123"), s("[0-9]+$")]),
            Ok(Value::Bool(true))
        );
        assert_eq!(
            call("replace", &[s("a-b-c"), s("-"), s("+")]),
            Ok(s("a+b+c"))
        );
        assert!(matches!(Func::parse("nosuch", 1), Err(FuncError::Unknown)));
        assert!(matches!(Func::parse("+", 3), Err(FuncError::Arity(_))));
    }

    #[test]
    fn normal_distribution() {
        assert!((std_normal_cdf(1.959963984540054) - 0.975).abs() < 1e-15);
        for p in [1e-10, 0.001, 0.2, 0.5, 0.9, 0.999999] {
            assert!(
                (std_normal_cdf(std_normal_idf(p)) - p).abs() < 1e-15 * p.max(1e-3) * 10.0,
                "{p}"
            );
        }
    }
}

//! Turns records of named raw values into a column-major [`Dataset`], inferring feature kinds and the task.

use std::collections::{BTreeSet, HashMap};

use dipper_core::{FeatureKind, FeatureSchema, FeatureSpec};
use dipper_models::ClassLabel;

use crate::{Dataset, Target, TrainError};

/// Which fields are used and how.
#[derive(Debug, Clone, Default)]
pub struct ReadOptions {
    /// The field to predict.
    pub label: String,
    /// Only these fields are features (in this order); empty = every field but the label and `exclude`.
    pub include: Vec<String>,
    pub exclude: Vec<String>,
    /// Fields to treat as categorical even when their values are numbers.
    pub categorical: Vec<String>,
    pub task: TaskHint,
}

/// Whether the label is a class or a value.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum TaskHint {
    /// Classification when the label has strings, booleans or exactly the values {0, 1}; else regression.
    #[default]
    Auto,
    Classification,
    Regression,
}

/// One value as read.
#[derive(Debug, Clone, PartialEq)]
pub enum Raw<'a> {
    Missing,
    Num(f64),
    Str(std::borrow::Cow<'a, str>),
}

#[derive(Debug, Default)]
struct Column {
    /// Per row: a number, NaN for missing, or (for strings) the string's id in `strings` encoded below.
    values: Vec<f64>,
    /// Rows holding a string: row -> string id.
    string_rows: Vec<(usize, u32)>,
    strings: Vec<String>,
    ids: HashMap<String, u32>,
}

impl Column {
    fn push(&mut self, row: usize, v: &Raw) {
        match v {
            Raw::Missing => self.values.push(f64::NAN),
            Raw::Num(x) => self.values.push(*x),
            Raw::Str(s) => {
                let id = match self.ids.get(s.as_ref()) {
                    Some(id) => *id,
                    None => {
                        let id = self.strings.len() as u32;
                        self.strings.push(s.to_string());
                        self.ids.insert(s.to_string(), id);
                        id
                    }
                };
                self.values.push(f64::NAN);
                self.string_rows.push((row, id));
            }
        }
    }
}

/// Accumulates records; fields are discovered from the first record (or `include`).
#[derive(Debug)]
pub struct DatasetBuilder {
    options: ReadOptions,
    names: Vec<String>,
    index: HashMap<String, usize>,
    columns: Vec<Column>,
    label: Column,
    rows: usize,
}

impl DatasetBuilder {
    pub fn new(options: ReadOptions) -> Self {
        let mut b = DatasetBuilder {
            names: Vec::new(),
            index: HashMap::new(),
            columns: Vec::new(),
            label: Column::default(),
            rows: 0,
            options,
        };
        for name in b.options.include.clone() {
            b.add_column(&name);
        }
        b
    }

    fn add_column(&mut self, name: &str) {
        self.index.insert(name.to_string(), self.names.len());
        self.names.push(name.to_string());
        self.columns.push(Column {
            values: vec![f64::NAN; self.rows],
            ..Default::default()
        });
    }

    /// Whether `name` is a feature to read (true for new fields when no include list is given).
    fn wanted(&self, name: &str) -> bool {
        name != self.options.label
            && self.options.include.is_empty()
            && !self.options.exclude.iter().any(|e| e == name)
    }

    /// Adds one record. `place` names it for errors (e.g. `data.csv line 12`).
    pub fn push<'a>(
        &mut self,
        place: &dyn Fn() -> String,
        fields: impl IntoIterator<Item = (&'a str, Raw<'a>)>,
    ) -> Result<(), TrainError> {
        let row = self.rows;
        let mut label = None;
        let mut set = vec![false; self.columns.len()];
        for (name, value) in fields {
            if name == self.options.label {
                label = Some(value);
                continue;
            }
            let col = match self.index.get(name) {
                Some(c) => *c,
                None if self.wanted(name) => {
                    self.add_column(name);
                    set.push(false);
                    self.columns.len() - 1
                }
                None => continue,
            };
            if set[col] {
                return Err(TrainError::data(
                    format!("{} field '{name}'", place()),
                    "appears twice",
                ));
            }
            set[col] = true;
            self.columns[col].push(row, &value);
        }
        match label {
            None | Some(Raw::Missing) => {
                return Err(TrainError::data(
                    format!("{} field '{}'", place(), self.options.label),
                    "the label is missing",
                ))
            }
            Some(v) => self.label.push(row, &v),
        }
        for (col, was_set) in set.iter().enumerate() {
            if !was_set {
                self.columns[col].values.push(f64::NAN);
            }
        }
        self.rows += 1;
        Ok(())
    }

    /// Whether a field is read (the label or a feature).
    pub fn uses(&self, name: &str) -> bool {
        name == self.options.label || self.index.contains_key(name) || self.wanted(name)
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Builds the dataset: feature kinds, category codes (sorted), classes (sorted) or values.
    pub fn finish(self) -> Result<Dataset, TrainError> {
        if self.rows == 0 {
            return Err(TrainError::Unfit("the input has no records".into()));
        }
        if self.columns.is_empty() {
            return Err(TrainError::Unfit(
                "no feature fields besides the label".into(),
            ));
        }
        let mut specs = Vec::new();
        let mut columns = Vec::new();
        for (name, col) in self.names.iter().zip(self.columns) {
            let forced = self.options.categorical.iter().any(|c| c == name);
            if col.strings.is_empty() && !forced {
                specs.push(FeatureSpec::numeric(name));
                columns.push(col.values);
            } else {
                let (categories, values) = categorical(col);
                specs.push(FeatureSpec {
                    name: name.clone(),
                    kind: FeatureKind::Categorical { categories },
                });
                columns.push(values);
            }
        }
        let schema = FeatureSchema::new(specs).map_err(|e| TrainError::Unfit(e.to_string()))?;
        let (target, y) = target(self.label, self.options.task, &self.options.label)?;
        Ok(Dataset {
            schema,
            columns,
            y,
            target,
            label: self.options.label,
        })
    }
}

/// Codes a categorical column: categories are every distinct string (numbers in their shortest form), sorted.
fn categorical(col: Column) -> (Vec<String>, Vec<f64>) {
    let mut text: Vec<Option<String>> = col
        .values
        .iter()
        .map(|v| {
            if v.is_nan() {
                None
            } else {
                Some(format_number(*v))
            }
        })
        .collect();
    for (row, id) in &col.string_rows {
        text[*row] = Some(col.strings[*id as usize].clone());
    }
    let categories: Vec<String> = text
        .iter()
        .flatten()
        .cloned()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let code: HashMap<&str, f64> = categories
        .iter()
        .enumerate()
        .map(|(i, c)| (c.as_str(), i as f64))
        .collect();
    let values = text
        .iter()
        .map(|t| t.as_deref().map(|s| code[s]).unwrap_or(f64::NAN))
        .collect();
    (categories, values)
}

fn format_number(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

fn target(label: Column, hint: TaskHint, name: &str) -> Result<(Target, Vec<f64>), TrainError> {
    let has_strings = !label.strings.is_empty();
    let numbers: BTreeSet<u64> = label
        .values
        .iter()
        .filter(|v| !v.is_nan())
        .map(|v| v.to_bits())
        .collect();
    let zero_one = !has_strings
        && numbers
            .iter()
            .all(|b| [0f64.to_bits(), 1f64.to_bits()].contains(b));
    let classify = match hint {
        TaskHint::Classification => true,
        TaskHint::Regression => false,
        TaskHint::Auto => has_strings || zero_one,
    };
    if !classify {
        if has_strings {
            let (row, id) = label.string_rows[0];
            return Err(TrainError::data(
                format!("record {} field '{name}'", row + 1),
                format!(
                    "regression needs numeric labels, got the string {:?}",
                    label.strings[id as usize]
                ),
            ));
        }
        return Ok((Target::Regression, label.values));
    }
    // Classes: integers (when every label is an integral number) in numeric order, else strings sorted.
    let all_int = !has_strings
        && label
            .values
            .iter()
            .all(|v| v.fract() == 0.0 && v.abs() < 1e15);
    if all_int {
        let mut classes: Vec<i64> = label.values.iter().map(|v| *v as i64).collect();
        classes.sort_unstable();
        classes.dedup();
        let y = label
            .values
            .iter()
            .map(|v| classes.binary_search(&(*v as i64)).unwrap() as f64)
            .collect();
        return Ok((
            Target::Classification {
                classes: classes.into_iter().map(ClassLabel::Int).collect(),
            },
            y,
        ));
    }
    let (categories, y) = categorical(label);
    Ok((
        Target::Classification {
            classes: categories.into_iter().map(ClassLabel::Str).collect(),
        },
        y,
    ))
}

/// Parses a text cell: empty, `NA`, `NaN`, `null`, `None` are missing; numbers are numbers; else a string.
pub fn parse_cell(s: &str) -> Raw<'_> {
    let t = s.trim();
    match t {
        "" | "NA" | "N/A" | "NaN" | "nan" | "null" | "NULL" | "None" => Raw::Missing,
        _ => match t.parse::<f64>() {
            Ok(x) if x.is_finite() => Raw::Num(x),
            _ => Raw::Str(std::borrow::Cow::Borrowed(t)),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build(records: &[&[(&str, &str)]], options: ReadOptions) -> Result<Dataset, TrainError> {
        let mut b = DatasetBuilder::new(options);
        for (i, r) in records.iter().enumerate() {
            b.push(
                &|| format!("line {}", i + 1),
                r.iter().map(|(k, v)| (*k, parse_cell(v))),
            )?;
        }
        b.finish()
    }

    fn opts(label: &str) -> ReadOptions {
        ReadOptions {
            label: label.into(),
            ..Default::default()
        }
    }

    #[test]
    fn infers_kinds_codes_categories_and_classes() {
        let d = build(
            &[
                &[("a", "1.5"), ("c", "red"), ("y", "no")],
                &[("a", ""), ("c", "blue"), ("y", "yes")],
                &[("a", "3"), ("c", "7"), ("y", "no"), ("extra", "x")],
            ],
            opts("y"),
        )
        .unwrap();
        assert_eq!(d.schema.names().collect::<Vec<_>>(), ["a", "c", "extra"]);
        assert!(d.columns[0][1].is_nan());
        let FeatureKind::Categorical { categories } = &d.schema.get(1).kind else {
            panic!()
        };
        assert_eq!(categories, &["7", "blue", "red"]);
        assert_eq!(d.columns[1], vec![2.0, 1.0, 0.0]);
        assert!(d.columns[2][0].is_nan() && d.columns[2][2] == 0.0);
        assert_eq!(
            d.classes(),
            &[ClassLabel::Str("no".into()), ClassLabel::Str("yes".into())]
        );
        assert_eq!(d.y, vec![0.0, 1.0, 0.0]);
    }

    #[test]
    fn task_from_label_values_and_hint() {
        let recs: &[&[(&str, &str)]] = &[&[("a", "1"), ("y", "0")], &[("a", "2"), ("y", "1")]];
        assert_eq!(build(recs, opts("y")).unwrap().n_classes(), 2);
        let d = build(
            recs,
            ReadOptions {
                task: TaskHint::Regression,
                ..opts("y")
            },
        )
        .unwrap();
        assert_eq!(d.target, Target::Regression);
        let recs: &[&[(&str, &str)]] = &[&[("a", "1"), ("y", "3")], &[("a", "2"), ("y", "5")]];
        assert_eq!(build(recs, opts("y")).unwrap().target, Target::Regression);
        let d = build(
            recs,
            ReadOptions {
                task: TaskHint::Classification,
                ..opts("y")
            },
        )
        .unwrap();
        assert_eq!(d.classes(), &[ClassLabel::Int(3), ClassLabel::Int(5)]);
    }

    #[test]
    fn include_exclude_and_forced_categorical() {
        let recs: &[&[(&str, &str)]] = &[&[("a", "1"), ("b", "2"), ("z", "3"), ("y", "1")]];
        let d = build(
            recs,
            ReadOptions {
                exclude: vec!["z".into()],
                categorical: vec!["b".into()],
                ..opts("y")
            },
        )
        .unwrap();
        assert_eq!(d.schema.names().collect::<Vec<_>>(), ["a", "b"]);
        assert!(matches!(
            d.schema.get(1).kind,
            FeatureKind::Categorical { .. }
        ));
        let d = build(
            recs,
            ReadOptions {
                include: vec!["z".into(), "a".into()],
                ..opts("y")
            },
        )
        .unwrap();
        assert_eq!(d.schema.names().collect::<Vec<_>>(), ["z", "a"]);
    }

    #[test]
    fn errors_name_the_place() {
        let e = build(&[&[("a", "1"), ("y", "1")], &[("a", "2")]], opts("y")).unwrap_err();
        assert_eq!(e.to_string(), "line 2 field 'y': the label is missing");
        let e = build(
            &[&[("a", "1"), ("y", "x")]],
            ReadOptions {
                task: TaskHint::Regression,
                ..opts("y")
            },
        )
        .unwrap_err();
        assert!(
            e.to_string().contains("regression needs numeric labels"),
            "{e}"
        );
        assert!(build(&[], opts("y")).is_err());
        assert!(build(&[&[("y", "1")]], opts("y")).is_err());
    }
}

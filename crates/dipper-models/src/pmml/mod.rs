//! PMML 4.x: the models scikit-learn (sklearn2pmml), R, Spark, SAS and KNIME export, evaluated as the reference
//! evaluators (JPMML, PMML4S) evaluate them.
//!
//! Loading parses the XML safely ([`xml`]: size, depth and node limits, no DTD), then compiles the document once:
//! every field name is resolved to a slot ([`fields`]), expressions and predicates become small trees over slots
//! ([`expr`], [`predicate`]), and each model element becomes an evaluator ([`model`]). Tree ensembles (a
//! MiningModel summing or averaging TreeModels, as every GBM and random forest exporter writes them) also compile
//! into the shared [`TreeEnsemble`](crate::ensemble::TreeEnsemble), which scores every row whose inputs are all
//! present; rows with a missing input take the interpreted path, which follows the model's own missing-value
//! strategy. Anything the evaluator does not implement is refused at load with the element and its line, never
//! guessed.
//!
//! Inputs arrive as the [`Model`] trait's `f64` rows: numbers as they are (rounded to single precision for
//! `float` fields, as PMML evaluators parse them), strings as category codes into the strings the model names
//! (see [`dipper_core::FeatureKind::Categorical`]); a category the model never names reads as a value equal to
//! none of its constants, and is invalid where the DataField lists its valid values.

mod bayes;
mod compile;
mod expr;
mod fields;
mod functions;
mod general;
mod mining;
mod model;
mod neural;
mod output;
mod predicate;
mod regression;
mod scorecard;
mod svm;
#[cfg(test)]
mod tests;
mod tree;
mod value;
mod xml;

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;

use dipper_core::{FeatureKind, FeatureSchema, FeatureSpec};

use crate::model::{row_count, ClassLabel, Model, ModelInfo, OutputValue, Predictions, Task};
use crate::{LoadContext, ModelError};
use fields::{DataField, Frame, Program, Scope};
use model::{Function, ModelNode};
use output::OutcomeKind;
use value::{DataType, OpType, Value};
use xml::{El, Xml};

/// An evaluation failure for one row (an invalid value, no prediction); the row, not the model, is at fault.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct EvalError(pub String);

/// A DefineFunction, inlined at every call.
#[derive(Clone)]
pub(crate) struct FunctionDef<'a, 'i> {
    pub params: Vec<(Arc<str>, (DataType, OpType))>,
    pub body: El<'a, 'i>,
}

/// State while compiling one document.
pub(crate) struct Compiler<'a, 'i> {
    pub prog: Program,
    pub functions: HashMap<String, FunctionDef<'a, 'i>>,
    pub data_fields: HashMap<Arc<str>, DataField>,
    /// Input columns so far: (DataField name, slot).
    pub inputs: Vec<(Arc<str>, usize)>,
}

/// A loaded PMML model.
#[derive(Debug)]
pub struct PmmlModel {
    info: ModelInfo,
    prog: Program,
    top: ModelNode,
    /// The classes of `info`, as field values.
    classes: Vec<Value>,
    /// Names of the reported Output fields, and their slots.
    output_names: Vec<String>,
    output_slots: Vec<usize>,
}

thread_local! {
    static FRAME: RefCell<Frame> = RefCell::new(Frame::default());
}

/// Stack for loading: parsing and compiling recurse once per nesting level (up to [`xml::MAX_DEPTH`]), which
/// must not depend on the stack of whichever thread loads the model.
const LOAD_STACK: usize = 64 << 20;

/// Loads a PMML document (on a thread of its own, with a stack sized for the deepest document accepted).
pub fn load(bytes: &[u8], ctx: &LoadContext) -> Result<PmmlModel, ModelError> {
    std::thread::scope(|s| {
        std::thread::Builder::new()
            .name("pmml-load".into())
            .stack_size(LOAD_STACK)
            .spawn_scoped(s, || load_here(bytes, ctx))
            .map_err(|e| ModelError::Eval(format!("cannot start the PMML loader thread: {e}")))?
            .join()
            .map_err(|_| ModelError::Eval("the PMML loader panicked".into()))?
    })
}

fn load_here(bytes: &[u8], ctx: &LoadContext) -> Result<PmmlModel, ModelError> {
    let text = std::str::from_utf8(bytes).map_err(|e| {
        ModelError::parse(
            "PMML",
            &ctx.source,
            format!(
                "not UTF-8 text (byte {}); re-save the file as UTF-8",
                e.valid_up_to()
            ),
        )
    })?;
    let xml = Xml::parse(text.trim_start_matches('\u{feff}'), &ctx.source)?;
    let root = xml.root();
    if root.tag() != "PMML" {
        return Err(root.err(format!("the root element is <{}>, not <PMML>", root.tag())));
    }
    let version = root.attr("version").unwrap_or("");
    if !(version.starts_with("4.") || version.starts_with("3.")) {
        return Err(root.unsupported(format!(
            "PMML version \"{version}\" (dipper reads 3.x and 4.x)"
        )));
    }
    let dd = data_dictionary_of(&root)?;
    let mut c = Compiler {
        prog: Program::default(),
        functions: HashMap::new(),
        data_fields: dd.iter().map(|f| (f.def.name.clone(), f.clone())).collect(),
        inputs: Vec::new(),
    };
    let top_el = root
        .children()
        .find(|e| model::is_model(e.tag()) && e.attr("isScorable") != Some("false"))
        .ok_or_else(|| root.err("the document holds no scorable model"))?;
    // Inputs first (the top model's MiningSchema decides how each DataField is treated), then the global
    // transformations, which read them, then the model itself.
    let mut scope = Scope::default();
    model::bind_inputs(&top_el, &mut c, &mut scope)?;
    if let Some(td) = root.child("TransformationDictionary") {
        for f in td.children_named("DefineFunction") {
            let name = f.req("name")?.to_string();
            let params = f
                .children_named("ParameterField")
                .map(|p| {
                    let ty = DataType::of(&p, Some(DataType::Double))?;
                    Ok((Arc::from(p.req("name")?), (ty, OpType::of(&p, ty)?)))
                })
                .collect::<Result<Vec<_>, ModelError>>()?;
            let body = expr::child_expression(&f)?;
            c.functions.insert(name, FunctionDef { params, body });
        }
        expr::derived_fields(&td, &mut c, &mut scope)?;
    }
    let top = ModelNode::compile(&top_el, &mut c, &scope, None, true)?;
    let (task, classes) = match top.function {
        Function::Regression => (Task::Regression, Vec::new()),
        Function::Classification => {
            let cats = top.categories();
            if cats.is_empty() {
                return Err(top_el.err(
                    "a classification model must name its categories (Value elements of the target DataField)",
                ));
            }
            (Task::Classification, cats)
        }
    };
    let labels = classes
        .iter()
        .map(|v| match v {
            Value::Num(x) if x.fract() == 0.0 && x.abs() < 9e15 => ClassLabel::Int(*x as i64),
            v => ClassLabel::Str(v.to_text().to_string()),
        })
        .collect();
    let strings = string_tables(&root, &c);
    let features = c
        .inputs
        .iter()
        .enumerate()
        .map(|(col, (name, _))| FeatureSpec {
            name: name.to_string(),
            kind: match &strings[col] {
                Some(table) => FeatureKind::Categorical {
                    categories: table.iter().map(|s| s.to_string()).collect(),
                },
                None => FeatureKind::Numeric,
            },
        })
        .collect();
    c.prog.strings = strings;
    let info = ModelInfo {
        id: ctx.id.clone(),
        task,
        features: FeatureSchema::new(features)?,
        named_features: true,
        classes: labels,
        accepts_missing: true,
    };
    // Final Output fields other than the prediction and probabilities (which every model reports) are reported
    // by name: reason codes, entity ids, transformed values.
    let reported: Vec<&output::OutputField> = top
        .outputs
        .iter()
        .filter(|f| {
            f.is_final
                && !matches!(
                    f.feature,
                    output::Feature::Predicted | output::Feature::Probability(_)
                )
        })
        .collect();
    let output_names = reported.iter().map(|f| f.name.to_string()).collect();
    let output_slots = reported.iter().map(|f| f.slot).collect();
    Ok(PmmlModel {
        info,
        prog: c.prog,
        top,
        classes,
        output_names,
        output_slots,
    })
}

fn data_dictionary_of(root: &El) -> Result<Vec<DataField>, ModelError> {
    let dd = root.req_child("DataDictionary")?;
    fields::data_dictionary(&dd)
}

/// For every input column of a string field: the strings the document compares it with, which become the
/// categories its input strings are coded by (any other string reads as an unseen category).
fn string_tables(root: &El, c: &Compiler) -> Vec<Option<Arc<[Arc<str>]>>> {
    let is_string = |name: &str| {
        c.data_fields
            .get(name)
            .is_some_and(|f| f.def.data_type == DataType::String)
    };
    let mut by_field: HashMap<String, Vec<Arc<str>>> = HashMap::new();
    let mut constants: Vec<Arc<str>> = Vec::new();
    let mut add = |field: &str, s: &str| {
        if is_string(field) {
            by_field
                .entry(field.to_string())
                .or_default()
                .push(Arc::from(s));
        }
    };
    for (name, _) in &c.inputs {
        let f = &c.data_fields[name];
        for v in f
            .domain
            .valid
            .iter()
            .chain(&f.domain.invalid)
            .chain(&f.domain.missing)
        {
            add(name, &v.to_text());
        }
    }
    for el in root.descendants() {
        match el.tag() {
            "SimplePredicate" | "NormDiscrete" => {
                if let (Some(f), Some(v)) = (el.attr("field"), el.attr("value")) {
                    add(f, v);
                }
            }
            "SimpleSetPredicate" => {
                if let (Some(f), Some(arr)) = (el.attr("field"), el.child("Array")) {
                    for t in xml::array(&arr).unwrap_or_default() {
                        add(f, &t);
                    }
                }
            }
            "BayesInput" => {
                if let Some(f) = el.attr("fieldName") {
                    for pc in el.children_named("PairCounts") {
                        if let Some(v) = pc.attr("value") {
                            add(f, v);
                        }
                    }
                }
            }
            "MapValues" => {
                for pair in el.children_named("FieldColumnPair") {
                    if let (Some(f), Some(col), Some(table)) = (
                        pair.attr("field"),
                        pair.attr("column"),
                        el.child("InlineTable"),
                    ) {
                        for row in table.children_named("row") {
                            if let Some(cell) = row.children().find(|c| c.tag() == col) {
                                add(f, cell.text());
                            }
                        }
                    }
                }
            }
            "Constant" => constants.push(Arc::from(el.text())),
            _ => {}
        }
    }
    c.inputs
        .iter()
        .map(|(name, _)| {
            if !is_string(name) {
                return None;
            }
            let mut list = by_field.remove(&**name).unwrap_or_default();
            list.extend(constants.iter().cloned());
            let mut seen = std::collections::HashSet::new();
            list.retain(|s| seen.insert(s.clone()));
            Some(Arc::from(list))
        })
        .collect()
}

impl PmmlModel {
    fn score_row(
        &self,
        row: &[f64],
        frame: &mut Frame,
        out: &mut Predictions,
        r: usize,
    ) -> Result<(), ModelError> {
        let mut env = fields::Env::new(&self.prog, row, frame);
        let outcome = self
            .top
            .score(&mut env)
            .map_err(|EvalError(m)| ModelError::Eval(m))?;
        match (&outcome.kind, self.info.task) {
            (OutcomeKind::Value(x), Task::Regression) => out.values_mut()[r] = *x,
            (OutcomeKind::Class { label, probs }, Task::Classification) => {
                let k = self.classes.len();
                let dst = &mut out.values_mut()[r * k..(r + 1) * k];
                for (d, c) in dst.iter_mut().zip(&self.classes) {
                    *d = probs.iter().find(|(v, _)| v.equals(c)).map_or(0.0, |p| p.1);
                }
                let index = self
                    .classes
                    .iter()
                    .position(|c| c.equals(label))
                    .ok_or_else(|| {
                        ModelError::Eval(format!(
                            "the model predicted '{}', which is not one of the target's categories",
                            label.to_text()
                        ))
                    })?;
                out.labels_mut()[r] = index as u32;
            }
            (OutcomeKind::Missing, _) => return Err(ModelError::Eval(
                "the model gives no prediction for this input (a missing value it cannot handle)"
                    .into(),
            )),
            _ => {
                return Err(ModelError::Eval(
                    "internal: the model's result does not match its function".into(),
                ))
            }
        }
        for (dst, &slot) in out.outputs_mut(r).iter_mut().zip(&self.output_slots) {
            *dst = match env.get(slot).map_err(|EvalError(m)| ModelError::Eval(m))? {
                Value::Missing => OutputValue::Missing,
                Value::Num(x) => OutputValue::Num(x),
                v => OutputValue::Text(v.to_text()),
            };
        }
        Ok(())
    }
}

impl Model for PmmlModel {
    fn info(&self) -> &ModelInfo {
        &self.info
    }

    fn output_fields(&self) -> &[String] {
        &self.output_names
    }

    fn predict_batch(&self, rows: &[f64], out: &mut Predictions) -> Result<(), ModelError> {
        let nf = self.info.features.len();
        let n_rows = if nf == 0 { 1 } else { row_count(rows, nf)? };
        out.reset(n_rows, self.classes.len());
        out.reset_outputs(self.output_names.len());
        FRAME.with(|frame| {
            let mut frame = frame.borrow_mut();
            for r in 0..n_rows {
                let row = &rows[r * nf..(r + 1) * nf];
                self.score_row(row, &mut frame, out, r)
                    .map_err(|e| match e {
                        ModelError::Eval(m) if n_rows > 1 => {
                            ModelError::Eval(format!("row {r}: {m}"))
                        }
                        e => e,
                    })?;
            }
            Ok(())
        })
    }
}

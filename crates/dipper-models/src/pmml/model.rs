//! The parts every PMML model element shares: functionName, MiningSchema (the target, and treatments of nested
//! models' fields), LocalTransformations, Targets and Output; and the dispatch to each model kind.

use std::sync::Arc;

use super::bayes::NaiveBayesModel;
use super::expr::derived_fields;
use super::fields::{FieldDef, Scope, Source, Treatment};
use super::general::GeneralRegressionModel;
use super::mining::MiningModel;
use super::neural::NeuralNetwork;
use super::output::{parse_outputs, write_outputs, Outcome, OutputField, Targets};
use super::regression::RegressionModel;
use super::scorecard::Scorecard;
use super::svm::SvmModel;
use super::tree::TreeModel;
use super::value::{DataType, Value};
use super::xml::El;
use super::{Compiler, EvalError};
use crate::ModelError;

/// Every model element PMML 4.4 defines (so that the unsupported ones are named as models, not unknown tags).
pub(crate) fn is_model(tag: &str) -> bool {
    matches!(
        tag,
        "RegressionModel"
            | "GeneralRegressionModel"
            | "TreeModel"
            | "MiningModel"
            | "NaiveBayesModel"
            | "NeuralNetwork"
            | "Scorecard"
            | "SupportVectorMachineModel"
            | "ClusteringModel"
            | "AssociationModel"
            | "RuleSetModel"
            | "SequenceModel"
            | "TextModel"
            | "TimeSeriesModel"
            | "NearestNeighborModel"
            | "BaselineModel"
            | "BayesianNetworkModel"
            | "GaussianProcessModel"
            | "AnomalyDetectionModel"
    )
}

/// `functionName`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Function {
    Regression,
    Classification,
}

/// The field a model predicts, with its categories (classification).
#[derive(Debug, Clone)]
pub(crate) struct TargetField {
    pub data_type: DataType,
    pub categories: Vec<Value>,
}

/// What a model body needs to know about its element.
#[derive(Debug, Clone)]
pub(crate) struct Header {
    pub function: Function,
    pub target: Option<TargetField>,
}

impl Header {
    /// The type labels and category values are parsed as.
    pub fn label_type(&self) -> DataType {
        self.target
            .as_ref()
            .map_or(DataType::String, |t| t.data_type)
    }

    /// The target's categories, or when it lists none, the distinct `found` in the model (in first-seen order).
    pub fn categories_or(&self, found: impl IntoIterator<Item = Value>) -> Vec<Value> {
        match &self.target {
            Some(t) if !t.categories.is_empty() => t.categories.clone(),
            _ => super::value::distinct(found),
        }
    }

    /// Parses a category label written in the model (a targetCategory, a score).
    pub fn label(&self, el: &El, attr: &str, text: &str) -> Result<Value, ModelError> {
        self.label_type().parse_at(el, attr, text)
    }
}

#[derive(Debug)]
pub(crate) enum Kind {
    Regression(RegressionModel),
    General(GeneralRegressionModel),
    Tree(TreeModel),
    Mining(Box<MiningModel>),
    Bayes(NaiveBayesModel),
    Neural(NeuralNetwork),
    Scorecard(Scorecard),
    Svm(SvmModel),
}

/// A compiled model element.
#[derive(Debug)]
pub(crate) struct ModelNode {
    pub function: Function,
    pub header: Header,
    pub kind: Kind,
    pub targets: Option<Targets>,
    pub outputs: Vec<OutputField>,
}

/// Creates an input slot for every active MiningField of the top-level model, treated as it says.
pub(crate) fn bind_inputs(
    top: &El,
    c: &mut Compiler<'_, '_>,
    scope: &mut Scope,
) -> Result<(), ModelError> {
    let ms = top.req_child("MiningSchema")?;
    for mf in ms.children_named("MiningField") {
        if usage(&mf)? != "active" {
            continue;
        }
        let name = mf.req("name")?;
        let Some(df) = c.data_fields.get(name) else {
            return Err(mf.err(format!(
                "active field '{name}' is not in the DataDictionary"
            )));
        };
        if scope.get(name).is_some() {
            return Err(mf.err(format!("field '{name}' is listed twice")));
        }
        let treatment = Treatment::parse(&mf, &df.def, df.domain.clone())?;
        let def = df.def.clone();
        let column = c.inputs.len();
        let slot = c.prog.add(def.clone(), Source::Input { column, treatment });
        c.inputs.push((def.name.clone(), slot));
        scope.bind(def.name, slot);
    }
    Ok(())
}

fn usage<'a>(mf: &El<'a, '_>) -> Result<&'a str, ModelError> {
    mf.choice(
        "usageType",
        &[
            "active",
            "predicted",
            "target",
            "supplementary",
            "group",
            "order",
            "frequencyWeight",
            "analysisWeight",
        ],
        "active",
    )
}

impl ModelNode {
    /// Compiles model element `el` seeing the fields of `parent`; `inherited` is the enclosing model's target,
    /// used when this one names none (segments); `top` says its inputs were bound by [`bind_inputs`].
    pub fn compile(
        el: &El,
        c: &mut Compiler<'_, '_>,
        parent: &Scope,
        inherited: Option<&TargetField>,
        top: bool,
    ) -> Result<ModelNode, ModelError> {
        let function = match el.req("functionName")? {
            "regression" => Function::Regression,
            "classification" => Function::Classification,
            other => {
                return Err(el.unsupported(format!(
                "functionName=\"{other}\" (dipper evaluates regression and classification models)"
            )))
            }
        };
        let mut scope = parent.clone();
        let mut target = None;
        let ms = el.req_child("MiningSchema")?;
        for mf in ms.children_named("MiningField") {
            let name = mf.req("name")?;
            match usage(&mf)? {
                "target" | "predicted" => {
                    target = Some(match c.data_fields.get(name) {
                        Some(df) => TargetField {
                            data_type: df.def.data_type,
                            categories: df.domain.valid.clone(),
                        },
                        None => match inherited {
                            Some(t) => t.clone(),
                            None => TargetField {
                                data_type: DataType::String,
                                categories: Vec::new(),
                            },
                        },
                    })
                }
                "active" if !top => {
                    let slot = scope.resolve(&mf, "name")?;
                    let def = c.prog.defs[slot].clone();
                    let domain = c
                        .data_fields
                        .get(name)
                        .map(|d| d.domain.clone())
                        .unwrap_or_default();
                    let treatment = Treatment::parse(&mf, &def, domain)?;
                    if !treatment.is_identity() {
                        let treated = c.prog.add(
                            FieldDef {
                                name: def.name.clone(),
                                ..def
                            },
                            Source::Treated {
                                from: slot,
                                treatment,
                            },
                        );
                        scope.bind(Arc::from(name), treated);
                    }
                }
                _ => {}
            }
        }
        let target = target.or_else(|| inherited.cloned());
        let target = match (function, target) {
            // A legacy targetFieldName, or none: the categories come from the model body.
            (_, Some(t)) => Some(t),
            (_, None) => el.attr("targetFieldName").map(|n| TargetField {
                data_type: c
                    .data_fields
                    .get(n)
                    .map_or(DataType::String, |d| d.def.data_type),
                categories: c
                    .data_fields
                    .get(n)
                    .map(|d| d.domain.valid.clone())
                    .unwrap_or_default(),
            }),
        };
        if let Some(lt) = el.child("LocalTransformations") {
            derived_fields(&lt, c, &mut scope)?;
        }
        let header = Header { function, target };
        let targets = Targets::parse(el, header.target.as_ref().map(|t| t.data_type))?;
        let kind = match el.tag() {
            "RegressionModel" => Kind::Regression(RegressionModel::parse(el, c, &scope, &header)?),
            "GeneralRegressionModel" => {
                Kind::General(GeneralRegressionModel::parse(el, c, &scope, &header)?)
            }
            "TreeModel" => Kind::Tree(TreeModel::parse(el, c, &scope, &header)?),
            "MiningModel" => Kind::Mining(Box::new(MiningModel::parse(el, c, &scope, &header)?)),
            "NaiveBayesModel" => Kind::Bayes(NaiveBayesModel::parse(el, c, &scope, &header)?),
            "NeuralNetwork" => Kind::Neural(NeuralNetwork::parse(el, c, &scope, &header)?),
            "Scorecard" => Kind::Scorecard(Scorecard::parse(el, c, &scope, &header)?),
            "SupportVectorMachineModel" => Kind::Svm(SvmModel::parse(el, c, &scope, &header)?),
            other => {
                return Err(el.unsupported(format!("{other} is not supported")));
            }
        };
        let label_type = header.target.as_ref().map(|t| t.data_type);
        let mut out_scope = scope;
        let outputs = parse_outputs(el, c, &mut out_scope, label_type)?;
        Ok(ModelNode {
            function,
            header,
            kind,
            targets,
            outputs,
        })
    }

    /// The categories a classification model predicts, in order: the target's, else the model's own.
    pub fn categories(&self) -> Vec<Value> {
        if let Some(t) = &self.header.target {
            if !t.categories.is_empty() {
                return t.categories.clone();
            }
        }
        match &self.kind {
            Kind::Regression(m) => m.categories(),
            Kind::General(m) => m.categories(),
            Kind::Tree(m) => m.categories(),
            Kind::Mining(m) => m.categories(),
            Kind::Bayes(m) => m.categories(),
            Kind::Neural(m) => m.categories(),
            Kind::Svm(m) => m.categories(),
            Kind::Scorecard(_) => Vec::new(),
        }
    }

    /// Scores one row: the model, then its Targets, then its Output fields.
    pub fn score(&self, env: &mut super::fields::Env) -> Result<Outcome, EvalError> {
        let mut o = match &self.kind {
            Kind::Regression(m) => m.score(env)?,
            Kind::General(m) => m.score(env)?,
            Kind::Tree(m) => m.score(env)?,
            Kind::Mining(m) => m.score(env)?,
            Kind::Bayes(m) => m.score(env)?,
            Kind::Neural(m) => m.score(env)?,
            Kind::Scorecard(m) => m.score(env)?,
            Kind::Svm(m) => m.score(env)?,
        };
        if let Some(t) = &self.targets {
            t.apply(&mut o);
        }
        if !self.outputs.is_empty() {
            write_outputs(&self.outputs, &o, env)?;
        }
        Ok(o)
    }
}

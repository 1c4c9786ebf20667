//! Writes dipper's native models as PMML 4.4, so that other PMML tools score them as dipper does.
//!
//! The document has the usual parts: a `Header` naming dipper and its version, a `DataDictionary` (numeric
//! features as continuous doubles, categorical features as strings with their categories in dipper's code order,
//! the label as the target with its classes in dipper's class order), and one model element per family:
//!
//! - linear (`glm`): `RegressionModel` with numeric and categorical predictors and `exp` (Poisson), `logit` or
//!   `softmax` normalisation (`linear.rs`);
//! - Naive Bayes (`nb`): `NaiveBayesModel`, a `GaussianDistribution` per class, categorical probabilities as
//!   `PairCounts` (`naive_bayes.rs`);
//! - trees (`tree`, `rf`, `gbm`): a `TreeModel`, or a `MiningModel` summing or averaging them; boosting feeds the
//!   sums to a `RegressionModel` with `logit`, `softmax` or `exp` normalisation in a `modelChain`, as JPMML does
//!   (`trees.rs`);
//! - neural networks (`mlp`): `NeuralNetwork` (`mlp.rs`).
//!
//! Every model's `MiningSchema` says what dipper does with missing and unknown inputs: models that accept
//! missing values (trees, Naive Bayes) treat an unknown category as missing, like `dipper predict`; the others
//! return no prediction for a missing or unknown input (`dipper predict` rejects the row). The `Output` has the
//! predicted value (`predicted_<label>`) and one `probability(<class>)` per class.
//!
//! Numbers are written in shortest round-trip form, so every coefficient, threshold and leaf value reads back
//! bit for bit (`xml::num`). Where PMML cannot state dipper's arithmetic exactly the difference is rounding
//! only, and each module says where.

mod linear;
mod mlp;
mod naive_bayes;
mod trees;
mod xml;

use std::collections::HashSet;

use dipper_core::FeatureKind;

use crate::model::{ClassLabel, Format, ModelId, Task};
use crate::native::{ModelBody, NativeModel};
use crate::{LoadContext, ModelError};
use xml::{check_text, num, XmlWriter};

/// The PMML namespace and version written.
pub const PMML_NAMESPACE: &str = "http://www.dmg.org/PMML-4_4";
pub const PMML_VERSION: &str = "4.4";

/// Why a model could not be exported.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// Only native models are exported: a third-party model should be exported by its own library.
    #[error(
        "{path} is a {format} model; only dipper's native models (written by `dipper train`) can be exported"
    )]
    NotNative { path: String, format: Format },
    /// The file is not a valid model.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// The model uses something this exporter cannot state in PMML.
    #[error("cannot export to PMML: {0}")]
    Unsupported(String),
    #[error("cannot export to PMML: {what} is {value}, which PMML cannot hold")]
    NotFinite { what: String, value: f64 },
}

/// What the exporter writes besides the model.
#[derive(Debug, Clone)]
pub struct PmmlOptions {
    /// The `Application` version in the header (dipper's version).
    pub application_version: String,
    /// The model element's `modelName` (e.g. the file stem); none when empty.
    pub model_name: String,
}

/// Exports a model file's bytes to a PMML document. `source` names the file in errors. Files of other formats
/// are refused with [`ExportError::NotNative`].
pub fn export_bytes(bytes: &[u8], source: &str, opts: &PmmlOptions) -> Result<String, ExportError> {
    let format = crate::detect_format(bytes, source)?;
    if format != Format::Native {
        return Err(ExportError::NotNative {
            path: source.to_string(),
            format,
        });
    }
    let model: NativeModel = serde_json::from_slice(bytes).map_err(|e| {
        ModelError::parse(
            "native",
            format!("{source} line {} column {}", e.line(), e.column()),
            e.to_string(),
        )
    })?;
    to_pmml(&model, source, opts)
}

/// Exports a native model to a PMML document. The model is checked first as `dipper predict` checks it when
/// loading (`source` names it in those errors).
pub fn to_pmml(
    model: &NativeModel,
    source: &str,
    opts: &PmmlOptions,
) -> Result<String, ExportError> {
    let ctx = LoadContext {
        source: source.to_string(),
        id: ModelId {
            name: opts.model_name.clone(),
            format: Format::Native,
            digest: String::new(),
        },
    };
    model.build(&ctx)?;
    let mut fields = Fields::new(model)?;
    if let ModelBody::NaiveBayes(b) = &model.body {
        naive_bayes::limit_categories(&mut fields, b);
    }
    let mut w = XmlWriter::new();
    w.start(
        "PMML",
        &[("xmlns", PMML_NAMESPACE), ("version", PMML_VERSION)],
    );
    header(&mut w, model, opts)?;
    fields.data_dictionary(&mut w);
    let top = Top {
        model_name: opts.model_name.as_str(),
        algorithm: model.header.algorithm.as_str(),
    };
    match &model.body {
        ModelBody::Linear(b) => linear::write(&mut w, &fields, &top, b)?,
        ModelBody::NaiveBayes(b) => naive_bayes::write(&mut w, &fields, &top, b)?,
        ModelBody::Trees(b) => trees::write(&mut w, &mut fields, &top, b)?,
        ModelBody::Mlp(b) => mlp::write(&mut w, &fields, &top, b)?,
    }
    Ok(w.finish())
}

fn header(w: &mut XmlWriter, model: &NativeModel, opts: &PmmlOptions) -> Result<(), ExportError> {
    let h = &model.header;
    let description = format!(
        "dipper {} model predicting '{}'{}",
        h.algorithm,
        h.label,
        if h.trained_by.is_empty() {
            String::new()
        } else {
            format!(", trained by {}", h.trained_by)
        }
    );
    check_text(&description, "the model description")?;
    check_text(&opts.application_version, "the version")?;
    check_text(&h.trained_at, "the training time")?;
    w.start("Header", &[("description", &description)]);
    w.empty(
        "Application",
        &[("name", "dipper"), ("version", &opts.application_version)],
    );
    if !h.trained_at.is_empty() {
        w.text("Timestamp", &[], &h.trained_at);
    }
    w.end();
    Ok(())
}

/// The model element's common attributes.
pub(crate) struct Top<'a> {
    model_name: &'a str,
    algorithm: &'a str,
}

impl Top<'_> {
    /// `functionName`, `modelName` and `algorithmName` followed by `extra`.
    fn attrs<'b>(
        &'b self,
        function: &'b str,
        extra: &[(&'b str, &'b str)],
    ) -> Vec<(&'b str, &'b str)> {
        let mut a = vec![("functionName", function)];
        if !self.model_name.is_empty() {
            a.push(("modelName", self.model_name));
        }
        a.push(("algorithmName", self.algorithm));
        a.extend_from_slice(extra);
        a
    }
}

/// One input field as PMML sees it.
#[derive(Debug, Clone)]
pub(crate) enum Input<'a> {
    Continuous {
        name: &'a str,
    },
    /// Categorical with its category names in code order (code `c` is `values[c]`).
    Categorical {
        name: &'a str,
        values: &'a [String],
    },
}

impl<'a> Input<'a> {
    pub fn name(&self) -> &'a str {
        match self {
            Input::Continuous { name } | Input::Categorical { name, .. } => name,
        }
    }
}

/// The data dictionary: inputs in the model's feature order, and the target.
#[derive(Debug)]
pub(crate) struct Fields<'a> {
    pub inputs: Vec<Input<'a>>,
    pub label: &'a str,
    /// Class labels as text, in dipper's class order (empty for regression).
    pub classes: Vec<String>,
    /// `integer` when every class label is an integer, else `string`.
    class_type: &'static str,
    /// Every field name used so far (inputs, target, outputs, derived fields), to refuse clashes.
    names: HashSet<String>,
}

impl<'a> Fields<'a> {
    fn new(model: &'a NativeModel) -> Result<Self, ExportError> {
        let h = &model.header;
        let mut names = HashSet::new();
        let mut inputs = Vec::with_capacity(h.features.len());
        for f in &h.features {
            check_text(&f.name, "feature name")?;
            if !names.insert(f.name.clone()) {
                return Err(ExportError::Unsupported(format!(
                    "feature name '{}' appears twice",
                    f.name
                )));
            }
            inputs.push(match &f.kind {
                FeatureKind::Numeric => Input::Continuous { name: &f.name },
                FeatureKind::Categorical { categories } if categories.is_empty() => {
                    return Err(ExportError::Unsupported(format!(
                        "categorical feature '{}' has no category names (only integer codes); PMML needs the \
                         category values",
                        f.name
                    )))
                }
                FeatureKind::Categorical { categories } => {
                    let mut seen = HashSet::new();
                    for c in categories {
                        check_text(c, "category")?;
                        if !seen.insert(c) {
                            return Err(ExportError::Unsupported(format!(
                                "feature '{}' lists category '{c}' twice",
                                f.name
                            )));
                        }
                    }
                    Input::Categorical {
                        name: &f.name,
                        values: categories,
                    }
                }
            });
        }
        check_text(&h.label, "label")?;
        if !names.insert(h.label.clone()) {
            return Err(ExportError::Unsupported(format!(
                "the label '{}' is also a feature",
                h.label
            )));
        }
        let classes: Vec<String> = h.classes.iter().map(ClassLabel::to_string).collect();
        for c in &classes {
            check_text(c, "class label")?;
        }
        if classes.iter().collect::<HashSet<_>>().len() != classes.len() {
            return Err(ExportError::Unsupported(
                "two classes have the same label".into(),
            ));
        }
        let class_type = if h.classes.iter().all(|c| matches!(c, ClassLabel::Int(_))) {
            "integer"
        } else {
            "string"
        };
        let mut fields = Fields {
            inputs,
            label: &h.label,
            classes: if h.task == Task::Regression {
                Vec::new()
            } else {
                classes
            },
            class_type,
            names,
        };
        fields.reserve(&predicted_name(fields.label))?;
        for c in fields.classes.clone() {
            fields.reserve(&probability_name(&c))?;
        }
        Ok(fields)
    }

    pub fn is_classification(&self) -> bool {
        !self.classes.is_empty()
    }

    /// Claims a name for an output or derived field; refuses a name a feature or the label already has.
    pub fn reserve(&mut self, name: &str) -> Result<(), ExportError> {
        if self.names.insert(name.to_string()) {
            Ok(())
        } else {
            Err(ExportError::Unsupported(format!(
                "the field name '{name}' is needed for an output but a feature or the label has it"
            )))
        }
    }

    fn data_dictionary(&self, w: &mut XmlWriter) {
        let n = (self.inputs.len() + 1).to_string();
        w.start("DataDictionary", &[("numberOfFields", &n)]);
        for input in &self.inputs {
            match input {
                Input::Continuous { name } => w.empty(
                    "DataField",
                    &[
                        ("name", name),
                        ("optype", "continuous"),
                        ("dataType", "double"),
                    ],
                ),
                Input::Categorical { name, values } => {
                    w.start(
                        "DataField",
                        &[
                            ("name", name),
                            ("optype", "categorical"),
                            ("dataType", "string"),
                        ],
                    );
                    for v in *values {
                        w.empty("Value", &[("value", v)]);
                    }
                    w.end();
                }
            }
        }
        if self.is_classification() {
            w.start(
                "DataField",
                &[
                    ("name", self.label),
                    ("optype", "categorical"),
                    ("dataType", self.class_type),
                ],
            );
            for c in &self.classes {
                w.empty("Value", &[("value", c)]);
            }
            w.end();
        } else {
            w.empty(
                "DataField",
                &[
                    ("name", self.label),
                    ("optype", "continuous"),
                    ("dataType", "double"),
                ],
            );
        }
        w.end();
    }

    /// The `MiningSchema` of the outermost model: the target and every input with dipper's treatment of missing
    /// and unknown values.
    pub fn top_mining_schema(&self, w: &mut XmlWriter, missing: MissingInputs) {
        w.start("MiningSchema", &[]);
        w.empty(
            "MiningField",
            &[("name", self.label), ("usageType", "target")],
        );
        for input in &self.inputs {
            let name = input.name();
            match (missing, input) {
                (MissingInputs::Accepted, Input::Continuous { .. }) => {
                    w.empty("MiningField", &[("name", name)])
                }
                (MissingInputs::Accepted, Input::Categorical { .. }) => w.empty(
                    "MiningField",
                    &[("name", name), ("invalidValueTreatment", "asMissing")],
                ),
                (MissingInputs::Refused, _) => w.empty(
                    "MiningField",
                    &[
                        ("name", name),
                        ("invalidValueTreatment", "returnInvalid"),
                        ("missingValueTreatment", "returnInvalid"),
                    ],
                ),
            }
        }
        w.end();
    }

    /// The `MiningSchema` of a nested model: the target if `with_target`, then `inputs` (field names), plain.
    pub fn nested_mining_schema<S: AsRef<str>>(
        &self,
        w: &mut XmlWriter,
        with_target: bool,
        inputs: &[S],
    ) {
        w.start("MiningSchema", &[]);
        if with_target {
            w.empty(
                "MiningField",
                &[("name", self.label), ("usageType", "target")],
            );
        }
        for name in inputs {
            w.empty("MiningField", &[("name", name.as_ref())]);
        }
        w.end();
    }

    /// The outermost model's `Output`: the predicted value and, for classifiers, each class's probability.
    pub fn top_output(&self, w: &mut XmlWriter) {
        w.start("Output", &[]);
        let predicted = predicted_name(self.label);
        if self.is_classification() {
            w.empty(
                "OutputField",
                &[
                    ("name", &predicted),
                    ("optype", "categorical"),
                    ("dataType", self.class_type),
                    ("feature", "predictedValue"),
                ],
            );
            for c in &self.classes {
                w.empty(
                    "OutputField",
                    &[
                        ("name", &probability_name(c)),
                        ("optype", "continuous"),
                        ("dataType", "double"),
                        ("feature", "probability"),
                        ("value", c),
                    ],
                );
            }
        } else {
            w.empty(
                "OutputField",
                &[
                    ("name", &predicted),
                    ("optype", "continuous"),
                    ("dataType", "double"),
                    ("feature", "predictedValue"),
                ],
            );
        }
        w.end();
    }
}

/// Whether the model defines missing inputs (see the module doc).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MissingInputs {
    Accepted,
    Refused,
}

/// The name of the predicted-value output field.
pub fn predicted_name(label: &str) -> String {
    format!("predicted_{label}")
}

/// The name of a class's probability output field.
pub fn probability_name(class: &str) -> String {
    format!("probability({class})")
}

/// `num` for a value named by a closure (only called on failure).
pub(crate) fn number(v: f64, what: impl FnOnce() -> String) -> Result<String, ExportError> {
    if v.is_finite() {
        num(v, "")
    } else {
        num(v, &what())
    }
}

#[cfg(test)]
mod tests;

//! ONNX models, run by tract with dipper's own ai.onnx.ml operators (tree ensembles compile into dipper's
//! [`crate::ensemble::TreeEnsemble`]). Targets scikit-learn exports from skl2onnx: one float input `[N, F]`,
//! a label output (int64 or string) and a float probability output `[N, K]` for classifiers (no ZipMap), or
//! one float output `[N, 1]` / `[N]` for regressors.
//!
//! The graph is checked (see [`graph`]), parsed, typed with a symbolic batch dimension and optimised once; each
//! call only builds the `[n, F]` input and runs the plan. The predicted class is the model's own label output,
//! mapped to its index among the classes; probabilities are the model's probability output.

mod graph;
pub(crate) mod ops;

use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use dipper_core::FeatureSchema;
use tract_onnx::pb::ModelProto;
use tract_onnx::prelude::*;
use tract_onnx::tract_hir::internal::DimLike;

use crate::model::{row_count, ClassLabel, Model, ModelInfo, Predictions, Task};
use crate::{LoadContext, ModelError};
use ops::ClassLabels;

/// Where the results are in the plan's outputs.
#[derive(Debug)]
enum Outputs {
    Classification {
        label: usize,
        probabilities: usize,
        /// Label value -> class index.
        index: LabelIndex,
    },
    Regression {
        value: usize,
    },
}

#[derive(Debug)]
enum LabelIndex {
    Ints(HashMap<i64, u32>),
    Strings(HashMap<String, u32>),
}

/// A loaded ONNX model: an optimised tract plan, immutable and shared.
#[derive(Debug, Clone)]
pub struct OnnxModel {
    info: ModelInfo,
    plan: Arc<TypedRunnableModel>,
    outputs: Arc<Outputs>,
}

/// Loads an ONNX model from its bytes.
pub fn load(bytes: &[u8], ctx: &LoadContext) -> Result<OnnxModel, ModelError> {
    match catch_unwind(AssertUnwindSafe(|| load_inner(bytes, ctx))) {
        Ok(r) => r,
        Err(_) => Err(ModelError::parse(
            "onnx",
            &ctx.source,
            "the model could not be read (the ONNX runtime panicked on it)",
        )),
    }
}

fn load_inner(bytes: &[u8], ctx: &LoadContext) -> Result<OnnxModel, ModelError> {
    let source = ctx.source.as_str();
    let mut onnx = tract_onnx::onnx();
    ops::register(&mut onnx.op_register);
    let proto: ModelProto = onnx.proto_model_for_read(&mut &bytes[..]).map_err(|e| {
        ModelError::parse("onnx", source, format!("not a valid ONNX protobuf: {e:#}"))
    })?;
    let facts = graph::check(&proto, &onnx.op_register, source)?;
    let graph_proto = proto.graph.as_ref().expect("checked");

    let tract_err = |what: &str, e: TractError| {
        ModelError::unsupported(
            "onnx",
            source,
            format!("tract cannot {what} this graph: {e:#}"),
        )
    };
    let mut model = onnx
        .model_for_proto_model(&proto)
        .map_err(|e| tract_err("read", e))?;
    let n = model.symbols.sym("N");
    let input_fact = InferenceFact::dt_shape(
        f32::datum_type(),
        tvec!(n.to_dim(), facts.n_features.to_dim()),
    );
    model
        .set_input_fact(0, input_fact)
        .map_err(|e| tract_err("set the input of", e))?;
    let typed = model.into_typed().map_err(|e| tract_err("type", e))?;
    let optimized = typed
        .into_optimized()
        .map_err(|e| tract_err("optimise", e))?;

    // Output roles, from the typed facts and the ONNX output names.
    let mut label = None;
    let mut probabilities = None;
    let mut values = Vec::new();
    for (i, outlet) in optimized
        .output_outlets()
        .map_err(|e| tract_err("list the outputs of", e))?
        .iter()
        .enumerate()
    {
        let fact = optimized
            .outlet_fact(*outlet)
            .map_err(|e| tract_err("type the outputs of", e))?;
        let dt = fact.datum_type;
        let rank = fact.rank();
        // tract carries int64 values as TDim where they might be shapes.
        let labelish =
            dt == i64::datum_type() || dt == TDim::datum_type() || dt == String::datum_type();
        if labelish && rank == 1 && label.is_none() {
            label = Some(i);
        } else if dt.is_float() && (rank == 1 || rank == 2) {
            if probabilities.is_none() && rank == 2 {
                probabilities = Some(i);
            }
            values.push(i);
        }
    }
    let output_names: Vec<&str> = graph_proto.output.iter().map(|o| o.name.as_str()).collect();
    let (task, classes, outputs) = match (label, probabilities) {
        (Some(label), Some(probabilities)) => {
            let name = output_names.get(label).copied().unwrap_or("");
            let labels = graph::class_labels(graph_proto, name).ok_or_else(|| {
                ModelError::unsupported(
                    "onnx",
                    format!("{source} output '{name}'"),
                    "cannot tell which classes this label output takes its values from",
                )
            })?;
            let (classes, index) = class_table(&labels, source)?;
            let k = optimized
                .outlet_fact(optimized.output_outlets().map_err(|e| tract_err("list", e))?[probabilities])
                .ok()
                .and_then(|f| f.shape[1].to_usize().ok());
            if let Some(k) = k.filter(|&k| k != classes.len()) {
                return Err(ModelError::unsupported(
                    "onnx",
                    source,
                    format!("{} classes but {k} probabilities per row", classes.len()),
                ));
            }
            (Task::Classification, classes, Outputs::Classification { label, probabilities, index })
        }
        (None, _) if values.len() == 1 => (Task::Regression, vec![], Outputs::Regression { value: values[0] }),
        _ => {
            return Err(ModelError::unsupported(
                "onnx",
                source,
                format!(
                    "outputs {output_names:?}: expected a label and a [N, K] probability output, or one value output"
                ),
            ))
        }
    };
    if let Outputs::Regression { value } = outputs {
        let outlet = optimized
            .output_outlets()
            .map_err(|e| tract_err("list", e))?[value];
        let fact = optimized
            .outlet_fact(outlet)
            .map_err(|e| tract_err("type", e))?;
        if fact.rank() == 2 && fact.shape[1].to_usize().ok() != Some(1) {
            return Err(ModelError::unsupported(
                "onnx",
                source,
                "a regression output with several targets",
            ));
        }
    }
    let plan = optimized
        .into_runnable()
        .map_err(|e| tract_err("plan", e))?;
    Ok(OnnxModel {
        info: ModelInfo {
            id: ctx.id.clone(),
            task,
            features: FeatureSchema::positional(facts.n_features),
            named_features: false,
            classes,
            accepts_missing: facts.nan_defined,
        },
        plan,
        outputs: Arc::new(outputs),
    })
}

fn class_table(
    labels: &ClassLabels,
    source: &str,
) -> Result<(Vec<ClassLabel>, LabelIndex), ModelError> {
    let dup = || ModelError::parse("onnx", source, "the class labels repeat a value");
    Ok(match labels {
        ClassLabels::Ints(v) => {
            let mut m = HashMap::new();
            for (i, l) in v.iter().enumerate() {
                if m.insert(*l, i as u32).is_some() {
                    return Err(dup());
                }
            }
            (
                v.iter().map(|&l| ClassLabel::Int(l)).collect(),
                LabelIndex::Ints(m),
            )
        }
        ClassLabels::Strings(v) => {
            let mut m = HashMap::new();
            for (i, l) in v.iter().enumerate() {
                if m.insert(l.clone(), i as u32).is_some() {
                    return Err(dup());
                }
            }
            (
                v.iter().map(|l| ClassLabel::Str(l.clone())).collect(),
                LabelIndex::Strings(m),
            )
        }
    })
}

impl OnnxModel {
    fn run(&self, rows: &[f64], out: &mut Predictions) -> Result<(), ModelError> {
        let nf = self.info.features.len();
        let n = row_count(rows, nf)?;
        let data: Vec<f32> = rows.iter().map(|&v| v as f32).collect();
        let input =
            Tensor::from_shape(&[n, nf], &data).map_err(|e| ModelError::Eval(format!("{e:#}")))?;
        let result = catch_unwind(AssertUnwindSafe(|| {
            self.plan.run(tvec!(input.into_tvalue()))
        }))
        .map_err(|_| ModelError::Eval("the ONNX runtime panicked".into()))?
        .map_err(|e| ModelError::Eval(format!("{e:#}")))?;
        let eval = |m: String| ModelError::Eval(m);
        match &*self.outputs {
            Outputs::Regression { value } => {
                let t = result[*value]
                    .cast_to::<f64>()
                    .map_err(|e| eval(format!("{e:#}")))?;
                let view = t.try_as_plain_ram().map_err(|e| eval(format!("{e:#}")))?;
                let v = view.as_slice::<f64>().map_err(|e| eval(format!("{e:#}")))?;
                if v.len() != n {
                    return Err(eval(format!(
                        "the model returned {} values for {n} rows",
                        v.len()
                    )));
                }
                out.reset(n, 0);
                out.values_mut().copy_from_slice(v);
            }
            Outputs::Classification {
                label,
                probabilities,
                index,
            } => {
                let k = self.info.classes.len();
                let p = result[*probabilities]
                    .cast_to::<f64>()
                    .map_err(|e| eval(format!("{e:#}")))?;
                let view = p.try_as_plain_ram().map_err(|e| eval(format!("{e:#}")))?;
                let p = view.as_slice::<f64>().map_err(|e| eval(format!("{e:#}")))?;
                if p.len() != n * k {
                    return Err(eval(format!(
                        "the model returned {} probabilities for {n} rows of {k} classes",
                        p.len()
                    )));
                }
                out.reset(n, k);
                out.values_mut().copy_from_slice(p);
                let l = &result[*label];
                if l.len() != n {
                    return Err(eval(format!(
                        "the model returned {} labels for {n} rows",
                        l.len()
                    )));
                }
                let unknown = |v: &dyn std::fmt::Display| {
                    eval(format!(
                        "the model predicted label {v}, which is not one of its classes"
                    ))
                };
                let labels = out.labels_mut();
                match index {
                    LabelIndex::Ints(m) => {
                        let l = l.cast_to::<i64>().map_err(|e| eval(format!("{e:#}")))?;
                        let view = l.try_as_plain_ram().map_err(|e| eval(format!("{e:#}")))?;
                        for (o, v) in labels
                            .iter_mut()
                            .zip(view.as_slice::<i64>().map_err(|e| eval(format!("{e:#}")))?)
                        {
                            *o = *m.get(v).ok_or_else(|| unknown(v))?;
                        }
                    }
                    LabelIndex::Strings(m) => {
                        let view = l.try_as_plain_ram().map_err(|e| eval(format!("{e:#}")))?;
                        for (o, v) in labels.iter_mut().zip(
                            view.as_slice::<String>()
                                .map_err(|e| eval(format!("{e:#}")))?,
                        ) {
                            *o = *m.get(v).ok_or_else(|| unknown(v))?;
                        }
                    }
                }
            }
        }
        Ok(())
    }
}

impl Model for OnnxModel {
    fn info(&self) -> &ModelInfo {
        &self.info
    }

    fn predict_batch(&self, rows: &[f64], out: &mut Predictions) -> Result<(), ModelError> {
        self.run(rows, out)
    }
}

//! Checks on the decoded ONNX graph before tract sees it: one `[N, F]` float input, only operators dipper can
//! run (each of dipper's own ai.onnx.ml operators is built here once so its errors name the node), no external
//! data or subgraphs; and facts tract does not keep: where the class labels come from and whether NaN inputs
//! are defined.

use std::collections::HashMap;

use tract_onnx::data_resolver::MmapDataResolver;
use tract_onnx::model::OnnxOpRegister;
use tract_onnx::pb::tensor_shape_proto::dimension::Value as Dim;
use tract_onnx::pb::type_proto::Value as TypeValue;
use tract_onnx::pb::{GraphProto, ModelProto, NodeProto, TensorProto};
use tract_onnx::tract_hir::internal::*;

use super::ops::attrs::Attrs;
use super::ops::linear::Imputer;
use super::ops::{self, ClassLabels, OpError, OWN_ML_OPS};
use crate::ModelError;

/// ai.onnx.ml operators tract runs correctly for dipper's purposes (index and normalisation arithmetic).
const TRACT_ML_OPS: &[&str] = &["ArrayFeatureExtractor", "Normalizer", "LinearRegressor"];

/// ONNX `TensorProto.DataType.FLOAT`.
const ONNX_FLOAT: i32 = 1;

/// What the loader learns from the graph itself.
#[derive(Debug)]
pub(crate) struct GraphFacts {
    pub n_features: usize,
    /// Every consumer of the input defines NaN (tree ensembles, NaN imputers).
    pub nan_defined: bool,
}

pub(crate) fn node_place(source: &str, node: &NodeProto) -> String {
    format!("{source} node '{}' ({})", node.name, node.op_type)
}

fn op_error(source: &str, node: &NodeProto, e: TractError) -> ModelError {
    let place = node_place(source, node);
    match e.chain().find_map(|c| c.downcast_ref::<OpError>()) {
        Some(OpError {
            unsupported: true,
            message,
        }) => ModelError::unsupported("onnx", place, message.clone()),
        Some(OpError { message, .. }) => ModelError::parse("onnx", place, message.clone()),
        None => ModelError::parse("onnx", place, format!("{e:#}")),
    }
}

fn external(t: &TensorProto) -> bool {
    t.data_location == Some(1) || !t.external_data.is_empty()
}

/// Checks the model and returns its input facts; `register` is the op register tract will parse with.
pub(crate) fn check(
    proto: &ModelProto,
    register: &OnnxOpRegister,
    source: &str,
) -> Result<GraphFacts, ModelError> {
    let graph = proto
        .graph
        .as_ref()
        .ok_or_else(|| ModelError::parse("onnx", source, "the model has no graph"))?;
    if !proto.functions.is_empty() {
        return Err(ModelError::unsupported(
            "onnx",
            source,
            "model-local functions",
        ));
    }
    if let Some(t) = graph.initializer.iter().find(|t| external(t)) {
        return Err(ModelError::unsupported(
            "onnx",
            format!("{source} initializer '{}'", t.name),
            "tensor data stored outside the model file",
        ));
    }
    if !graph.sparse_initializer.is_empty() {
        return Err(ModelError::unsupported(
            "onnx",
            source,
            "sparse initializers",
        ));
    }
    let (input_name, n_features) = check_input(graph, source)?;
    for node in &graph.node {
        check_node(node, register, source)?;
    }
    let consumers: Vec<&NodeProto> = graph
        .node
        .iter()
        .filter(|n| n.input.contains(&input_name))
        .collect();
    let nan_defined = !consumers.is_empty()
        && !graph.output.iter().any(|o| o.name == input_name)
        && consumers.iter().all(|n| match n.op_type.as_str() {
            "TreeEnsembleClassifier" | "TreeEnsembleRegressor" => true,
            "Imputer" => Imputer::replaces_nan(n),
            _ => false,
        });
    Ok(GraphFacts {
        n_features,
        nan_defined,
    })
}

fn check_input(graph: &GraphProto, source: &str) -> Result<(String, usize), ModelError> {
    let inits: Vec<&str> = graph.initializer.iter().map(|t| t.name.as_str()).collect();
    let inputs: Vec<_> = graph
        .input
        .iter()
        .filter(|i| !inits.contains(&i.name.as_str()))
        .collect();
    let [input] = inputs[..] else {
        return Err(ModelError::unsupported(
            "onnx",
            source,
            format!(
                "the graph has {} inputs; dipper feeds one [N, F] float tensor",
                inputs.len()
            ),
        ));
    };
    let place = format!("{source} input '{}'", input.name);
    let Some(TypeValue::TensorType(t)) = input.r#type.as_ref().and_then(|t| t.value.as_ref())
    else {
        return Err(ModelError::unsupported(
            "onnx",
            place,
            "the input is not a tensor",
        ));
    };
    if t.elem_type != ONNX_FLOAT {
        return Err(ModelError::unsupported(
            "onnx",
            place,
            format!(
                "input element type {} (dipper feeds float, type 1)",
                t.elem_type
            ),
        ));
    }
    let dims = t.shape.as_ref().map(|s| &s.dim[..]).unwrap_or(&[]);
    if dims.len() != 2 {
        return Err(ModelError::unsupported(
            "onnx",
            place,
            format!("the input has rank {}, dipper feeds [N, F]", dims.len()),
        ));
    }
    match dims[1].value {
        Some(Dim::DimValue(f)) if (1..=1 << 20).contains(&f) => {
            Ok((input.name.clone(), f as usize))
        }
        _ => Err(ModelError::unsupported(
            "onnx",
            place,
            "the input's feature dimension is not a fixed number",
        )),
    }
}

fn check_node(node: &NodeProto, register: &OnnxOpRegister, source: &str) -> Result<(), ModelError> {
    let place = || node_place(source, node);
    if node
        .attribute
        .iter()
        .any(|a| a.g.is_some() || !a.graphs.is_empty())
    {
        return Err(ModelError::unsupported(
            "onnx",
            place(),
            "subgraphs (control flow)",
        ));
    }
    if let Some(a) = node
        .attribute
        .iter()
        .find(|a| a.t.as_ref().is_some_and(external) || a.tensors.iter().any(external))
    {
        return Err(ModelError::unsupported(
            "onnx",
            place(),
            format!(
                "attribute {} stores its data outside the model file",
                a.name
            ),
        ));
    }
    let op = node.op_type.as_str();
    match node.domain.as_str() {
        "" | "ai.onnx" if !OWN_ML_OPS.contains(&op) && !TRACT_ML_OPS.contains(&op) => {
            if register.0.contains_key(op) {
                Ok(())
            } else {
                Err(ModelError::unsupported("onnx", place(), "operator not implemented"))
            }
        }
        "ai.onnx.ml" if op == "ZipMap" => Err(ModelError::unsupported(
            "onnx",
            place(),
            "ZipMap outputs a sequence of maps; export without it (skl2onnx: options={'zipmap': False})",
        )),
        "ai.onnx.ml" if TRACT_ML_OPS.contains(&op) => Ok(()),
        "ai.onnx.ml" if OWN_ML_OPS.contains(&op) => {
            ops::kernel(node)
                .map(|_| ())
                .map_err(|e| op_error(source, node, e))
        }
        "" | "ai.onnx" | "ai.onnx.ml" => Err(ModelError::unsupported(
            "onnx",
            place(),
            "operator not implemented",
        )),
        other => Err(ModelError::unsupported(
            "onnx",
            place(),
            format!("operator domain {other:?}"),
        )),
    }
}

/// The class labels behind a label output: the labels attribute of the classifier that produced it, or the
/// constant table an ArrayFeatureExtractor looked them up in, through casts and reshapes.
pub(crate) fn class_labels(graph: &GraphProto, output: &str) -> Option<ClassLabels> {
    let producers: HashMap<&str, &NodeProto> = graph
        .node
        .iter()
        .flat_map(|n| n.output.iter().map(move |o| (o.as_str(), n)))
        .collect();
    let mut name = output;
    for _ in 0..64 {
        let node = producers.get(name)?;
        let a = Attrs::new(node);
        match node.op_type.as_str() {
            "TreeEnsembleClassifier" | "LinearClassifier" if node.output.first()? == name => {
                let ints = if node.op_type == "LinearClassifier" {
                    a.ints("classlabels_ints")
                } else {
                    a.ints("classlabels_int64s")
                };
                let strings = a.strings("classlabels_strings").ok()?;
                return Some(if strings.is_empty() {
                    ClassLabels::Ints(ints.to_vec())
                } else {
                    ClassLabels::Strings(strings)
                });
            }
            "Cast" | "Reshape" | "Identity" | "Squeeze" | "Unsqueeze" | "Flatten" => {
                name = node.input.first()?;
            }
            "ArrayFeatureExtractor" => return constant_labels(graph, node.input.first()?),
            _ => return None,
        }
    }
    None
}

fn constant_labels(graph: &GraphProto, name: &str) -> Option<ClassLabels> {
    let proto = graph.initializer.iter().find(|t| t.name == name)?;
    let t = tract_onnx::tensor::load_tensor(&MmapDataResolver, proto, None).ok()?;
    if t.rank() != 1 {
        return None;
    }
    match t.datum_type() {
        DatumType::String => Some(ClassLabels::Strings(
            t.try_as_plain_ram()
                .ok()?
                .as_slice::<String>()
                .ok()?
                .to_vec(),
        )),
        DatumType::I64 | DatumType::I32 | DatumType::I16 | DatumType::I8 | DatumType::U8 => {
            let t = t.cast_to::<i64>().ok()?;
            Some(ClassLabels::Ints(
                t.try_as_plain_ram().ok()?.as_slice::<i64>().ok()?.to_vec(),
            ))
        }
        _ => None,
    }
}

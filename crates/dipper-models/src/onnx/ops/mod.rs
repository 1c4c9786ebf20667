//! The ai.onnx.ml operators dipper implements itself and plugs into tract's ONNX parser.
//!
//! Each operator is a [`Kernel`]: it reads one `[N, F]` numeric input (cast to `f32`, as onnxruntime does for
//! these operators) and writes one or more `[N]` / `[N, K]` outputs. A single generic tract operator
//! ([`KernelOp`]) runs any kernel, so the shape rules and tract plumbing are written once. Parsing errors are
//! tagged with [`OpError`] so the loader can tell "unsupported" from "invalid" after tract wraps them.

pub(crate) mod attrs;
pub(crate) mod linear;
pub(crate) mod post;
pub(crate) mod tree;
mod tree_parse;

use std::fmt;
use std::sync::Arc;

use tract_onnx::model::{OnnxOpRegister, ParsingContext};
use tract_onnx::pb::NodeProto;
use tract_onnx::tract_hir::internal::*;

/// Why an operator could not be built; found again in tract's error chain by the loader.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OpError {
    pub unsupported: bool,
    pub message: String,
}

impl fmt::Display for OpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for OpError {}

/// The node uses something dipper does not implement.
pub(crate) fn unsupported(message: impl Into<String>) -> TractError {
    TractError::new(OpError {
        unsupported: true,
        message: message.into(),
    })
}

/// The node is not a valid instance of its operator.
pub(crate) fn invalid(message: impl Into<String>) -> TractError {
    TractError::new(OpError {
        unsupported: false,
        message: message.into(),
    })
}

/// The ai.onnx.ml operators dipper runs itself; tract's versions (where it has one) are replaced.
pub(crate) const OWN_ML_OPS: &[&str] = &[
    "TreeEnsembleClassifier",
    "TreeEnsembleRegressor",
    "Scaler",
    "Imputer",
    "LinearClassifier",
];

/// Registers dipper's operators, replacing tract's where both exist.
pub(crate) fn register(reg: &mut OnnxOpRegister) {
    for op in OWN_ML_OPS {
        reg.insert(op, build);
    }
}

fn build(
    _ctx: &ParsingContext,
    node: &NodeProto,
) -> TractResult<(Box<dyn InferenceOp>, Vec<String>)> {
    Ok((expand(KernelExpansion(kernel(node)?)), vec![]))
}

/// Builds the kernel of one of dipper's operators, checking the node's inputs and outputs.
pub(crate) fn kernel(node: &NodeProto) -> TractResult<Arc<dyn Kernel>> {
    let kernel = match node.op_type.as_str() {
        "TreeEnsembleClassifier" => tree::classifier(node)?,
        "TreeEnsembleRegressor" => tree::regressor(node)?,
        "Scaler" => linear::scaler(node)?,
        "Imputer" => linear::imputer(node)?,
        "LinearClassifier" => linear::linear_classifier(node)?,
        other => return Err(unsupported(format!("operator {other}"))),
    };
    let declared = node.output.len();
    let present = node.output.iter().filter(|o| !o.is_empty()).count();
    let wanted = kernel.outputs().len();
    if present != wanted || declared != wanted {
        return Err(unsupported(format!(
            "{} with {present} of its {wanted} outputs connected",
            node.op_type
        )));
    }
    if node.input.iter().filter(|i| !i.is_empty()).count() != 1 {
        return Err(invalid(format!("{} takes exactly one input", node.op_type)));
    }
    Ok(kernel)
}

/// The width of an output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Width {
    /// `[N]`
    Vector,
    /// `[N, k]`
    Fixed(usize),
    /// `[N, F]`, as wide as the input.
    SameAsInput,
}

/// One output of a kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct OutSpec {
    pub datum_type: DatumType,
    pub width: Width,
}

/// An operator on a `[N, F]` input, evaluated eagerly on `f32` data.
pub(crate) trait Kernel: fmt::Debug + Send + Sync + 'static {
    fn name(&self) -> &'static str;
    /// Columns the input must have, when the operator fixes it.
    fn n_features(&self) -> Option<usize>;
    fn outputs(&self) -> Vec<OutSpec>;
    /// Computes the outputs for `n_rows` rows of `n_features` values.
    fn run(&self, x: &[f32], n_rows: usize, n_features: usize) -> TractResult<TVec<Tensor>>;
}

#[derive(Debug, Clone)]
struct KernelExpansion(Arc<dyn Kernel>);

impl Expansion for KernelExpansion {
    fn name(&self) -> StaticName {
        self.0.name().into()
    }

    fn nboutputs(&self) -> TractResult<usize> {
        Ok(self.0.outputs().len())
    }

    fn rules<'r, 'p: 'r, 's: 'r>(
        &'s self,
        s: &mut Solver<'r>,
        inputs: &'p [TensorProxy],
        outputs: &'p [TensorProxy],
    ) -> InferenceResult {
        let specs = self.0.outputs();
        check_input_arity(inputs, 1)?;
        check_output_arity(outputs, specs.len())?;
        s.equals(&inputs[0].rank, 2)?;
        if let Some(f) = self.0.n_features() {
            s.equals(&inputs[0].shape[1], f.to_dim())?;
        }
        for (o, spec) in outputs.iter().zip(specs) {
            s.equals(&o.datum_type, spec.datum_type)?;
            s.equals(&o.shape[0], &inputs[0].shape[0])?;
            match spec.width {
                Width::Vector => s.equals(&o.rank, 1)?,
                Width::Fixed(k) => {
                    s.equals(&o.rank, 2)?;
                    s.equals(&o.shape[1], k.to_dim())?;
                }
                Width::SameAsInput => {
                    s.equals(&o.rank, 2)?;
                    s.equals(&o.shape[1], &inputs[0].shape[1])?;
                }
            }
        }
        Ok(())
    }

    fn wire(
        &self,
        prefix: &str,
        model: &mut TypedModel,
        inputs: &[OutletId],
    ) -> TractResult<TVec<OutletId>> {
        model.wire_node(prefix, KernelOp(self.0.clone()), inputs)
    }
}

/// The typed tract operator that runs a [`Kernel`].
#[derive(Debug, Clone)]
pub(crate) struct KernelOp(pub Arc<dyn Kernel>);

impl PartialEq for KernelOp {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for KernelOp {}

impl Op for KernelOp {
    fn name(&self) -> StaticName {
        self.0.name().into()
    }

    op_as_typed_op!();
}

impl EvalOp for KernelOp {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let input = args_1!(inputs);
        let shape = input.shape();
        if shape.len() != 2 {
            bail!(
                "{} expects a [N, F] input, got shape {shape:?}",
                self.0.name()
            );
        }
        let (n_rows, n_features) = (shape[0], shape[1]);
        if let Some(f) = self.0.n_features().filter(|&f| f != n_features) {
            bail!("{} expects {f} columns, got {n_features}", self.0.name());
        }
        let x = input.cast_to::<f32>()?;
        let view = x.try_as_plain_ram()?;
        let data = view.as_slice::<f32>()?;
        let out = self.0.run(data, n_rows, n_features)?;
        Ok(out.into_iter().map(|t| t.into_tvalue()).collect())
    }
}

impl TypedOp for KernelOp {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        let input = inputs[0];
        if input.rank() != 2 {
            bail!("{} expects a [N, F] input, got {input:?}", self.0.name());
        }
        let n = input.shape[0].clone();
        Ok(self
            .0
            .outputs()
            .into_iter()
            .map(|spec| {
                let shape: TVec<TDim> = match spec.width {
                    Width::Vector => tvec!(n.clone()),
                    Width::Fixed(k) => tvec!(n.clone(), k.to_dim()),
                    Width::SameAsInput => tvec!(n.clone(), input.shape[1].clone()),
                };
                spec.datum_type.fact(shape)
            })
            .collect())
    }

    as_op!();
}

/// Builds a `[n]` or `[n, k]` f32 tensor.
pub(crate) fn f32_tensor(shape: &[usize], data: &[f32]) -> TractResult<Tensor> {
    Tensor::from_shape(shape, data)
}

/// The class labels of a classifier, as its output tensor carries them.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum ClassLabels {
    Ints(Vec<i64>),
    Strings(Vec<String>),
}

impl ClassLabels {
    /// A classifier's outputs: one label per row, then one probability per class.
    pub fn classifier_outputs(&self) -> Vec<OutSpec> {
        vec![
            OutSpec {
                datum_type: self.datum_type(),
                width: Width::Vector,
            },
            OutSpec {
                datum_type: f32::datum_type(),
                width: Width::Fixed(self.len()),
            },
        ]
    }

    pub fn len(&self) -> usize {
        match self {
            ClassLabels::Ints(v) => v.len(),
            ClassLabels::Strings(v) => v.len(),
        }
    }

    pub fn datum_type(&self) -> DatumType {
        match self {
            ClassLabels::Ints(_) => i64::datum_type(),
            ClassLabels::Strings(_) => String::datum_type(),
        }
    }

    /// The label tensor for the chosen class of each row (indices are in range by construction).
    pub fn tensor(&self, picks: &[usize]) -> TractResult<Tensor> {
        Ok(match self {
            ClassLabels::Ints(v) => {
                let vals: Vec<i64> = picks.iter().map(|&k| v[k]).collect();
                Tensor::from_shape(&[picks.len()], &vals)?
            }
            ClassLabels::Strings(v) => {
                let vals: Vec<String> = picks.iter().map(|&k| v[k].clone()).collect();
                tensor1(&vals)
            }
        })
    }
}

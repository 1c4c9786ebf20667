//! Native tree models (decision trees, random forests, gradient boosting): a compact columnar description of
//! each tree, compiled at load into the shared [`TreeEnsemble`](crate::ensemble::TreeEnsemble).

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::ensemble::{Branch, BuildNode, EnsembleBuilder, Missing, SplitTest};
use crate::model::{Model, ModelInfo};
use crate::transform::OutputTransform;
use crate::{LoadContext, ModelError, TreeModel};

/// How raw tree scores become predictions.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TreeOutput {
    /// Regression value = score.
    Identity,
    /// Regression value = exp(score) (Poisson).
    Exp,
    /// Binary classification: p(class 1) = sigmoid(score).
    BinaryLogistic,
    /// Binary classification: the score is p(class 1) (averaged tree votes).
    BinaryProbability,
    /// Multiclass: softmax of one score per class.
    Softmax,
    /// Multiclass: the scores are the class probabilities (averaged tree votes).
    Probabilities,
}

/// An ensemble of trees.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TreesBody {
    /// Raw scores per row (1, or one per class).
    pub n_outputs: usize,
    /// Added to the scores after the trees (one per output).
    pub base_score: Vec<f64>,
    /// Leaf sums are divided by this before the base score is added (the tree count for forests, 1 for boosting).
    #[serde(default = "one")]
    pub divisor: f64,
    pub output: TreeOutput,
    pub trees: Vec<Tree>,
}

fn one() -> f64 {
    1.0
}

/// One tree, columnar: node `i` is a leaf when `left[i] < 0`. Splits send a row left when
/// `x <= threshold[i]` (numeric) or when its category is in `categories[i]` (categorical, when present and
/// non-empty); missing values go left when `missing_left[i]`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tree {
    /// The output scalar leaves add to.
    #[serde(default)]
    pub output: usize,
    pub left: Vec<i32>,
    pub right: Vec<i32>,
    pub feature: Vec<u32>,
    pub threshold: Vec<f64>,
    pub missing_left: Vec<bool>,
    /// Leaf values (ignored on splits). With `leaf_vectors`, unused.
    pub value: Vec<f64>,
    /// Per node, the categories that go left (empty for numeric splits); absent when no split is categorical.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub categories: Vec<Vec<u32>>,
    /// Per node, one value per output (forests of multiclass vote vectors); absent for scalar leaves.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub leaf_vectors: Vec<Vec<f64>>,
}

impl Tree {
    /// Converts to builder nodes, checking array lengths.
    pub fn build_nodes(&self) -> Result<Vec<BuildNode>, String> {
        let n = self.left.len();
        let lens = [
            self.right.len(),
            self.feature.len(),
            self.threshold.len(),
            self.missing_left.len(),
            self.value.len(),
        ];
        if lens.iter().any(|&l| l != n) || n == 0 {
            return Err(format!(
                "node arrays have different lengths or are empty ({n}, {lens:?})"
            ));
        }
        for (name, len) in [
            ("categories", self.categories.len()),
            ("leaf_vectors", self.leaf_vectors.len()),
        ] {
            if len != 0 && len != n {
                return Err(format!("{name} has {len} entries for {n} nodes"));
            }
        }
        let mut nodes = Vec::with_capacity(n);
        for i in 0..n {
            if self.left[i] < 0 {
                nodes.push(match self.leaf_vectors.get(i) {
                    Some(v) if !v.is_empty() => BuildNode::LeafVector(v.clone()),
                    _ => BuildNode::Leaf(self.value[i]),
                });
                continue;
            }
            if self.right[i] < 0 {
                return Err(format!("node {i} has a left child but no right child"));
            }
            let missing = Missing::NanTo(if self.missing_left[i] {
                Branch::Yes
            } else {
                Branch::No
            });
            let test = match self.categories.get(i) {
                Some(c) if !c.is_empty() => SplitTest::InSet(c.clone()),
                _ => SplitTest::Le(self.threshold[i]),
            };
            nodes.push(BuildNode::Split {
                feature: self.feature[i] as usize,
                test,
                missing,
                yes: self.left[i] as usize,
                no: self.right[i] as usize,
            });
        }
        Ok(nodes)
    }
}

pub(crate) fn build(
    body: &TreesBody,
    mut info: ModelInfo,
    ctx: &LoadContext,
) -> Result<Arc<dyn Model>, ModelError> {
    let err = |m: String| ModelError::parse("native", format!("{} at body", ctx.source), m);
    let n_classes = info.n_classes();
    let transform = match body.output {
        TreeOutput::Identity => OutputTransform::Identity,
        TreeOutput::Exp => OutputTransform::Exp,
        TreeOutput::BinaryLogistic => OutputTransform::BinaryLogistic { scale: 1.0 },
        TreeOutput::BinaryProbability => OutputTransform::BinaryProbability,
        TreeOutput::Softmax => OutputTransform::Softmax,
        TreeOutput::Probabilities => OutputTransform::Probabilities,
    };
    if transform.n_outputs(n_classes) != body.n_outputs
        || transform.is_classification() != (n_classes > 0)
    {
        return Err(err(format!(
            "output {:?} with {n_classes} classes does not fit {} outputs",
            body.output, body.n_outputs
        )));
    }
    let mut b = EnsembleBuilder::new(info.features.len(), body.n_outputs);
    b.base_score(body.base_score.clone());
    if body.divisor.is_nan() || body.divisor <= 0.0 {
        return Err(err(format!("divisor {} is not positive", body.divisor)));
    }
    b.average_over(body.divisor);
    for (t, tree) in body.trees.iter().enumerate() {
        let nodes = tree
            .build_nodes()
            .map_err(|m| err(format!("trees[{t}]: {m}")))?;
        b.add_tree(&nodes, 0, tree.output)
            .map_err(|e| err(e.to_string()))?;
    }
    let ensemble = b.build().map_err(|e| err(e.to_string()))?;
    info.accepts_missing = true;
    Ok(Arc::new(TreeModel::new(info, ensemble, transform)?))
}

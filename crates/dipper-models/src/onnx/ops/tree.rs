//! TreeEnsembleClassifier and TreeEnsembleRegressor, compiled into dipper's [`TreeEnsemble`] and finished the
//! way onnxruntime finishes them (facts from its `tree_ensemble_aggregator.h`, `tree_ensemble_common.h` and
//! `ml_common.h`, checked against onnxruntime 1.32):
//!
//! * Classifier, three or more classes: per-class sums plus `base_values`; the label is the first class of
//!   highest raw score; probabilities are the post transform of the scores.
//! * Classifier, two classes, weights all on class 0 (sklearn's binary export): one score `s` (+ `base_values[0]`);
//!   with all weights >= 0 the label is class 1 when `s > 0.5`, otherwise when `s > 0`; probabilities are
//!   `[logistic(-s), logistic(s)]` under LOGISTIC, else `[1 - s, s]` (weights >= 0) or `[-s, s]`.
//! * Classifier, two classes, weights on both: label is class 1 when the class-1 score is > 0; probabilities
//!   are the post transform of both scores.
//! * Regressor: SUM or AVERAGE over trees plus base; with one target only PROBIT is applied (onnxruntime
//!   ignores the other transforms there).
//!
//! Cases onnxruntime treats in ways that depend on which classes a row's leaves happen to score (a class not
//! scored by every path, `base_values` of other lengths, classes other than 0 in the binary layout) are
//! refused as unsupported rather than approximated. Scores are summed in `f64` (onnxruntime sums in `f32`).

use std::sync::Arc;

use tract_onnx::pb::NodeProto;
use tract_onnx::tract_hir::internal::*;

use super::attrs::Attrs;
use super::post::{logistic, probit, PostTransform};
use super::tree_parse::{add_trees, parse_trees, DraftEnsemble, DraftTree};
use super::{f32_tensor, invalid, unsupported, ClassLabels, Kernel, OutSpec, Width};
use crate::ensemble::{BuildNode, EnsembleBuilder, TreeEnsemble};

/// Rows scored per ensemble call, so scratch memory stays bounded on large batches.
const CHUNK_ROWS: usize = 256;

#[derive(Debug, Clone, Copy, PartialEq)]
enum ClassMode {
    /// K >= 3 classes, one score per class.
    Multi,
    /// Two classes, one score for class 1's side.
    Binary { all_positive: bool },
    /// Two classes, one score each; class 1 wins when its score is > 0.
    Pair,
}

#[derive(Debug)]
pub(crate) struct TreeClassifier {
    ensemble: TreeEnsemble,
    labels: ClassLabels,
    mode: ClassMode,
    post: PostTransform,
}

#[derive(Debug)]
pub(crate) struct TreeRegressor {
    ensemble: TreeEnsemble,
    n_targets: usize,
    post: PostTransform,
}

/// Does every path of some tree score `class` (so every row gets a score for it)?
fn always_scored(trees: &[DraftTree], class: usize) -> bool {
    trees
        .iter()
        .any(|t| t.leaves().all(|w| w.iter().any(|(c, _)| *c == class)))
}

/// The single output a tree's leaves all write to, if there is one.
fn single_output(tree: &DraftTree) -> Option<usize> {
    let mut out = None;
    for w in tree.leaves() {
        for (c, _) in w {
            match out {
                None => out = Some(*c),
                Some(o) if o != *c => return None,
                _ => {}
            }
        }
    }
    out
}

/// Builds the ensemble with per-output sums at each leaf (scalar leaves when a tree writes to one output).
fn build_ensemble(
    drafts: &DraftEnsemble,
    n_outputs: usize,
    base: Vec<f64>,
    average: bool,
) -> TractResult<TreeEnsemble> {
    let mut b = EnsembleBuilder::new(drafts.n_features, n_outputs);
    b.base_score(base);
    if average {
        b.average_over(drafts.trees.len() as f64);
    }
    for tree in &drafts.trees {
        let one = DraftEnsemble {
            trees: vec![tree.clone()],
            n_features: drafts.n_features,
        };
        match single_output(tree) {
            Some(o) => add_trees(
                &mut b,
                &one,
                |w| BuildNode::Leaf(w.iter().map(|(_, v)| v).sum()),
                |_| o,
            )?,
            None => add_trees(
                &mut b,
                &one,
                |w| {
                    let mut v = vec![0.0; n_outputs];
                    for (c, x) in w {
                        v[*c] += x;
                    }
                    BuildNode::LeafVector(v)
                },
                |_| 0,
            )?,
        }
    }
    b.build().map_err(|e| invalid(e.to_string()))
}

pub(crate) fn classifier(node: &NodeProto) -> TractResult<Arc<dyn Kernel>> {
    let a = Attrs::new(node);
    let ints = a.ints("classlabels_int64s");
    let strings = a.strings("classlabels_strings")?;
    let labels = match (ints.is_empty(), strings.is_empty()) {
        (false, true) => ClassLabels::Ints(ints.to_vec()),
        (true, false) => ClassLabels::Strings(strings),
        (true, true) => return Err(invalid("no classlabels_int64s or classlabels_strings")),
        (false, false) => {
            return Err(invalid(
                "both classlabels_int64s and classlabels_strings are set",
            ))
        }
    };
    let k = labels.len();
    if k < 2 {
        return Err(unsupported("a classifier with fewer than two classes"));
    }
    if a.has("aggregate_function") {
        return Err(invalid(
            "TreeEnsembleClassifier has no aggregate_function attribute",
        ));
    }
    let post = PostTransform::parse(&a.string("post_transform", "NONE")?)?;
    let base = a.reals("base_values")?;
    let drafts = parse_trees(node, "class", k)?;
    let weights = a.reals("class_weights")?;
    let all_positive = weights.iter().all(|w| w.is_nan() || *w >= 0.0);
    let ids = a.ints("class_ids");
    let has = |c: i64| ids.contains(&c);
    let distinct = {
        let mut d = ids.to_vec();
        d.sort_unstable();
        d.dedup();
        d
    };

    let (mode, ensemble) = if k > 2 {
        if !(base.is_empty() || base.len() == k) {
            return Err(unsupported(format!(
                "{} base_values for {k} classes",
                base.len()
            )));
        }
        if base.is_empty() {
            if let Some(c) = (0..k).find(|&c| !always_scored(&drafts.trees, c)) {
                return Err(unsupported(format!(
                    "class {c} is scored on some tree paths only (onnxruntime then leaves it out of the label)"
                )));
            }
        }
        let base = if base.is_empty() { vec![0.0; k] } else { base };
        (ClassMode::Multi, build_ensemble(&drafts, k, base, false)?)
    } else if distinct == [0] {
        if base.len() > 1 {
            return Err(unsupported("two base_values with weights on class 0 only"));
        }
        post.require(
            &[
                PostTransform::None,
                PostTransform::Logistic,
                PostTransform::Softmax,
                PostTransform::SoftmaxZero,
            ],
            "a binary tree classifier",
        )?;
        let base = vec![base.first().copied().unwrap_or(0.0)];
        let mut drafts = drafts;
        for t in &mut drafts.trees {
            for n in &mut t.nodes {
                if let super::tree_parse::Draft::Leaf(w) = n {
                    w.retain(|(c, _)| *c == 0);
                }
            }
        }
        (
            ClassMode::Binary { all_positive },
            build_ensemble(&drafts, 1, base, false)?,
        )
    } else if has(0) && has(1) && distinct.len() == 2 {
        if !base.is_empty() {
            return Err(unsupported(
                "base_values with weights on both classes of a binary classifier",
            ));
        }
        if matches!(&labels, ClassLabels::Ints(v) if v[..] != [0, 1]) {
            return Err(unsupported(
                "integer labels other than [0, 1] with weights on both classes (onnxruntime outputs 0/1)",
            ));
        }
        if !always_scored(&drafts.trees, 1) {
            return Err(unsupported("class 1 is scored on some tree paths only"));
        }
        (
            ClassMode::Pair,
            build_ensemble(&drafts, 2, vec![0.0; 2], false)?,
        )
    } else {
        return Err(unsupported(format!(
            "a two-class tree ensemble with weights on classes {distinct:?}"
        )));
    };
    Ok(Arc::new(TreeClassifier {
        ensemble,
        labels,
        mode,
        post,
    }))
}

pub(crate) fn regressor(node: &NodeProto) -> TractResult<Arc<dyn Kernel>> {
    let a = Attrs::new(node);
    let n_targets = a.int("n_targets", 0);
    if !(1..=4096).contains(&n_targets) {
        return Err(invalid(format!("n_targets is {n_targets}")));
    }
    let n_targets = n_targets as usize;
    let average = match a.string("aggregate_function", "SUM")?.as_str() {
        "SUM" => false,
        "AVERAGE" => true,
        "MIN" | "MAX" => return Err(unsupported("aggregate_function MIN or MAX")),
        other => return Err(invalid(format!("unknown aggregate_function {other:?}"))),
    };
    let post = PostTransform::parse(&a.string("post_transform", "NONE")?)?;
    let base = a.reals("base_values")?;
    let drafts = parse_trees(node, "target", n_targets)?;
    let base = if n_targets == 1 {
        // onnxruntime adds base_values[0] only when there is exactly one.
        vec![if base.len() == 1 { base[0] } else { 0.0 }]
    } else if base.len() == n_targets {
        base
    } else {
        vec![0.0; n_targets]
    };
    if n_targets == 1 && drafts.trees.iter().any(|t| t.leaves().any(|w| w.len() > 1)) {
        // onnxruntime would use only the first weight of such a leaf.
        return Err(unsupported("a single-target leaf with several weights"));
    }
    let post = if n_targets == 1 && post != PostTransform::Probit {
        // onnxruntime applies only PROBIT to a single target.
        PostTransform::None
    } else {
        post
    };
    let ensemble = build_ensemble(&drafts, n_targets, base, average)?;
    Ok(Arc::new(TreeRegressor {
        ensemble,
        n_targets,
        post,
    }))
}

/// Converts `x` (rows of `n_features` f32) to f64 rows of the ensemble's width and scores them in chunks.
fn score(
    ensemble: &TreeEnsemble,
    x: &[f32],
    n_rows: usize,
    n_features: usize,
) -> TractResult<Vec<f64>> {
    let m = ensemble.n_features();
    if m > n_features {
        bail!(
            "the trees read feature {} but the input has {n_features} columns",
            m - 1
        );
    }
    let k = ensemble.n_outputs();
    let mut raw = vec![0.0f64; n_rows * k];
    let mut rows = Vec::with_capacity(CHUNK_ROWS.min(n_rows) * m);
    for (chunk_i, out) in raw.chunks_mut(CHUNK_ROWS * k).enumerate() {
        let first = chunk_i * CHUNK_ROWS;
        let count = out.len() / k.max(1);
        rows.clear();
        for r in first..first + count {
            rows.extend(
                x[r * n_features..r * n_features + m]
                    .iter()
                    .map(|&v| v as f64),
            );
        }
        ensemble.predict_raw_batch(&rows, out);
    }
    Ok(raw)
}

impl Kernel for TreeClassifier {
    fn name(&self) -> &'static str {
        "TreeEnsembleClassifier"
    }

    fn n_features(&self) -> Option<usize> {
        None
    }

    fn outputs(&self) -> Vec<OutSpec> {
        self.labels.classifier_outputs()
    }

    fn run(&self, x: &[f32], n_rows: usize, n_features: usize) -> TractResult<TVec<Tensor>> {
        let raw = score(&self.ensemble, x, n_rows, n_features)?;
        let k = self.labels.len();
        let width = self.ensemble.n_outputs();
        let mut probs = vec![0.0f32; n_rows * k];
        let mut picks = Vec::with_capacity(n_rows);
        for (r, p) in raw.chunks_exact(width).zip(probs.chunks_exact_mut(k)) {
            let pick = match self.mode {
                ClassMode::Multi | ClassMode::Pair => {
                    for (o, s) in p.iter_mut().zip(r) {
                        *o = *s as f32;
                    }
                    let pick = if self.mode == ClassMode::Pair {
                        usize::from(p[1] > 0.0)
                    } else {
                        let mut best = 0;
                        for j in 1..k {
                            if p[j] > p[best] {
                                best = j;
                            }
                        }
                        best
                    };
                    self.post.apply_row(p);
                    pick
                }
                ClassMode::Binary { all_positive } => {
                    let s = r[0] as f32;
                    let positive = if all_positive { s > 0.5 } else { s > 0.0 };
                    if self.post == PostTransform::Logistic {
                        p[0] = logistic(-s);
                        p[1] = logistic(s);
                    } else if all_positive {
                        p[0] = 1.0 - s;
                        p[1] = s;
                    } else {
                        p[0] = -s;
                        p[1] = s;
                    }
                    usize::from(positive)
                }
            };
            picks.push(pick);
        }
        Ok(tvec!(
            self.labels.tensor(&picks)?,
            f32_tensor(&[n_rows, k], &probs)?
        ))
    }
}

impl Kernel for TreeRegressor {
    fn name(&self) -> &'static str {
        "TreeEnsembleRegressor"
    }

    fn n_features(&self) -> Option<usize> {
        None
    }

    fn outputs(&self) -> Vec<OutSpec> {
        vec![OutSpec {
            datum_type: f32::datum_type(),
            width: Width::Fixed(self.n_targets),
        }]
    }

    fn run(&self, x: &[f32], n_rows: usize, n_features: usize) -> TractResult<TVec<Tensor>> {
        let raw = score(&self.ensemble, x, n_rows, n_features)?;
        let mut out: Vec<f32> = raw.iter().map(|&v| v as f32).collect();
        if self.n_targets == 1 {
            if self.post == PostTransform::Probit {
                out.iter_mut().for_each(|v| *v = probit(*v));
            }
        } else {
            for row in out.chunks_exact_mut(self.n_targets) {
                self.post.apply_row(row);
            }
        }
        Ok(tvec!(f32_tensor(&[n_rows, self.n_targets], &out)?))
    }
}

#[cfg(test)]
mod tests {
    //! Reference values measured with onnxruntime 1.32 on hand-made two-tree ensembles: tree 0 splits feature 0
    //! at 0.5 (BRANCH_LEQ), tree 1 splits feature 1 at 0.5 (BRANCH_NEQ, so NaN goes to its true node).
    use super::*;
    use tract_onnx::pb::AttributeProto;

    fn ints(name: &str, v: &[i64]) -> AttributeProto {
        AttributeProto {
            name: name.into(),
            ints: v.to_vec(),
            ..Default::default()
        }
    }
    fn floats(name: &str, v: &[f32]) -> AttributeProto {
        AttributeProto {
            name: name.into(),
            floats: v.to_vec(),
            ..Default::default()
        }
    }
    fn strings(name: &str, v: &[&str]) -> AttributeProto {
        AttributeProto {
            name: name.into(),
            strings: v.iter().map(|s| s.as_bytes().to_vec()).collect(),
            ..Default::default()
        }
    }
    fn string(name: &str, v: &str) -> AttributeProto {
        AttributeProto {
            name: name.into(),
            s: v.as_bytes().to_vec(),
            ..Default::default()
        }
    }

    fn node(op: &str, extra: Vec<AttributeProto>) -> NodeProto {
        let mut attribute = vec![
            ints("nodes_treeids", &[0, 0, 0, 1, 1, 1]),
            ints("nodes_nodeids", &[0, 1, 2, 0, 1, 2]),
            ints("nodes_featureids", &[0, 0, 0, 1, 0, 0]),
            floats("nodes_values", &[0.5, 0.0, 0.0, 0.5, 0.0, 0.0]),
            strings(
                "nodes_modes",
                &["BRANCH_LEQ", "LEAF", "LEAF", "BRANCH_NEQ", "LEAF", "LEAF"],
            ),
            ints("nodes_truenodeids", &[1, 0, 0, 1, 0, 0]),
            ints("nodes_falsenodeids", &[2, 0, 0, 2, 0, 0]),
        ];
        attribute.extend(extra);
        NodeProto {
            op_type: op.into(),
            attribute,
            ..Default::default()
        }
    }

    const X: [f32; 8] = [0.0, 0.0, 1.0, 1.0, f32::NAN, f32::NAN, 0.0, 0.5];

    fn run(kernel: &Arc<dyn Kernel>) -> (Vec<i64>, Vec<f32>) {
        let out = kernel.run(&X, 4, 2).unwrap();
        let labels = out[0]
            .cast_to::<i64>()
            .unwrap()
            .try_as_plain_ram()
            .unwrap()
            .as_slice::<i64>()
            .unwrap()
            .to_vec();
        let last = out.last().unwrap();
        let values = last
            .try_as_plain_ram()
            .unwrap()
            .as_slice::<f32>()
            .unwrap()
            .to_vec();
        (labels, values)
    }

    fn close(a: &[f32], b: &[f32]) {
        assert_eq!(a.len(), b.len());
        for (x, y) in a.iter().zip(b) {
            assert!((x - y).abs() < 1e-6, "{a:?} != {b:?}");
        }
    }

    fn binary(weights: &[f32], extra: Vec<AttributeProto>) -> Arc<dyn Kernel> {
        let mut attrs = vec![
            ints("class_treeids", &[0, 0, 1, 1]),
            ints("class_nodeids", &[1, 2, 1, 2]),
            ints("class_ids", &[0, 0, 0, 0]),
            floats("class_weights", weights),
            ints("classlabels_int64s", &[0, 1]),
        ];
        attrs.extend(extra);
        classifier(&node("TreeEnsembleClassifier", attrs)).unwrap()
    }

    #[test]
    fn binary_positive_weights() {
        let (l, p) = run(&binary(&[0.1, 0.4, 0.2, 0.3], vec![]));
        assert_eq!(l, [0, 1, 1, 0]);
        close(&p, &[0.7, 0.3, 0.4, 0.6, 0.4, 0.6, 0.6, 0.4]);
        let (l, p) = run(&binary(
            &[0.1, 0.4, 0.2, 0.3],
            vec![string("post_transform", "LOGISTIC")],
        ));
        assert_eq!(l, [0, 1, 1, 0]);
        close(
            &p,
            &[
                0.4255575, 0.5744425, 0.3543437, 0.6456563, 0.3543437, 0.6456563, 0.40131235,
                0.59868765,
            ],
        );
    }

    #[test]
    fn binary_mixed_weights() {
        let w = [-0.1, 0.4, 0.2, -0.3];
        let (l, p) = run(&binary(&w, vec![string("post_transform", "SOFTMAX")]));
        assert_eq!(l, [1, 1, 1, 0]);
        close(&p, &[-0.1, 0.1, -0.6, 0.6, -0.6, 0.6, 0.4, -0.4]);
        let (l, p) = run(&binary(
            &w,
            vec![
                string("post_transform", "LOGISTIC"),
                floats("base_values", &[0.05]),
            ],
        ));
        assert_eq!(l, [1, 1, 1, 0]);
        close(
            &p,
            &[
                0.4625702, 0.5374298, 0.3429895, 0.6570105, 0.3429895, 0.6570105, 0.5866176,
                0.4133824,
            ],
        );
    }

    #[test]
    fn multiclass_sums_and_refuses_partly_scored_classes() {
        let attrs = vec![
            ints("class_treeids", &[0, 0, 0, 1, 1, 1]),
            ints("class_nodeids", &[1, 2, 2, 1, 2, 2]),
            ints("class_ids", &[0, 1, 2, 0, 1, 2]),
            floats("class_weights", &[1., 2., 3., 4., 5., 6.]),
            ints("classlabels_int64s", &[10, 20, 30]),
        ];
        // Classes 1 and 2 are scored on some paths only: onnxruntime's label then depends on the path.
        let e = classifier(&node("TreeEnsembleClassifier", attrs.clone())).unwrap_err();
        assert!(e.to_string().contains("scored on some tree paths"), "{e}");
        // With base values every class is scored: [5,0,0], [4,2,3], [4,2,3] (NaN), [1,5,6] plus the base.
        let mut with_base = attrs;
        with_base.push(floats("base_values", &[0.0, 0.0, 0.5]));
        let (l, p) = run(&classifier(&node("TreeEnsembleClassifier", with_base)).unwrap());
        assert_eq!(l, [10, 10, 10, 30]);
        close(&p, &[5., 0., 0.5, 4., 2., 3.5, 4., 2., 3.5, 1., 5., 6.5]);
    }

    #[test]
    fn regressor_sum_and_average() {
        let attrs = vec![
            ints("target_treeids", &[0, 0, 1, 1]),
            ints("target_nodeids", &[1, 2, 1, 2]),
            ints("target_ids", &[0, 0, 0, 0]),
            floats("target_weights", &[0.1, 0.4, 0.2, 0.3]),
            ints("n_targets", &[]),
        ];
        let mut sum = attrs.clone();
        sum.pop();
        sum.push(AttributeProto {
            name: "n_targets".into(),
            i: 1,
            ..Default::default()
        });
        let (_, v) = run_reg(&regressor(&node("TreeEnsembleRegressor", sum.clone())).unwrap());
        close(&v, &[0.3, 0.6, 0.6, 0.4]);
        // LOGISTIC is ignored on a single target, as onnxruntime does.
        let mut avg = sum.clone();
        avg.extend([
            string("aggregate_function", "AVERAGE"),
            string("post_transform", "LOGISTIC"),
            floats("base_values", &[1.0]),
        ]);
        let (_, v) = run_reg(&regressor(&node("TreeEnsembleRegressor", avg)).unwrap());
        close(&v, &[1.15, 1.3, 1.3, 1.2]);
        let mut min = sum;
        min.push(string("aggregate_function", "MIN"));
        assert!(regressor(&node("TreeEnsembleRegressor", min))
            .unwrap_err()
            .to_string()
            .contains("MIN"));
    }

    fn run_reg(kernel: &Arc<dyn Kernel>) -> ((), Vec<f32>) {
        let out = kernel.run(&X, 4, 2).unwrap();
        (
            (),
            out[0]
                .try_as_plain_ram()
                .unwrap()
                .as_slice::<f32>()
                .unwrap()
                .to_vec(),
        )
    }
}

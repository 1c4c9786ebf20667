//! Native tree models (decision trees, random forests, gradient boosting) as PMML `TreeModel`s, combined the way
//! JPMML exports scikit-learn, LightGBM and XGBoost ensembles.
//!
//! **One tree.** A split `x <= t` becomes two children with `SimplePredicate`s `lessOrEqual t` and
//! `greaterThan t`; a categorical split (categories in a set go left) becomes `SimpleSetPredicate`s `isIn` and
//! `isNotIn` over the category names (a threshold on a categorical feature's codes becomes the set of categories
//! at or below it). A missing value makes both predicates unknown, and the tree's
//! `missingValueStrategy="defaultChild"` then follows the node's `defaultChild`: the side dipper sends missing
//! values to. Unknown categories are missing (`invalidValueTreatment="asMissing"`), as in `dipper predict`.
//!
//! **Ensembles.** dipper's raw score of output `o` is `(sum of its trees' leaves) / divisor + base_score[o]`:
//! a `MiningModel` with `Segmentation` `sum` (divisor 1) or `average` (divisor = tree count) and a `Targets`
//! `rescaleConstant` (the base score). That is the model for regression (`identity`). Otherwise the raw scores
//! feed a `RegressionModel` in a `modelChain`, one raw-score `MiningModel` per output first:
//!
//! - `exp` (Poisson): regression, `normalizationMethod="exp"`;
//! - `binary_logistic`: classification, `logit`, p(second class) = 1 / (1 + exp(-raw)), p(first) = 1 - that;
//! - `softmax`: classification, `softmax` over one raw score per class.
//!
//! Forests and trees whose leaves hold class probabilities (`binary_probability`, `probabilities`) are
//! classification `TreeModel`s with a `ScoreDistribution` per class in their leaves (a binary leaf value `v` is
//! `1 - v`, `v`), averaged by a `MiningModel` (`average`) when there is more than one tree. The leaves carry no
//! record counts, so each `ScoreDistribution`'s `recordCount` is its probability.
//!
//! Sums add the same leaf values in the same order as dipper, so raw scores agree exactly; the logistic, softmax
//! and the first class's `1 - v` average differ from dipper by rounding only.

use std::collections::BTreeSet;

use crate::native::trees::{Tree, TreeOutput, TreesBody};

use super::xml::XmlWriter;
use super::{number, ExportError, Fields, Input, MissingInputs, Top};

/// What a tree's leaves hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Leaves {
    /// A scalar added to the raw score (regression trees).
    Value,
    /// p(second class) of a binary classifier.
    Binary,
    /// One probability per class.
    Vector,
}

/// How a model element sits in the document.
enum Role<'a> {
    /// The outermost model.
    Top(&'a Top<'a>),
    /// Inside a segmentation; `raw` names the output field a model chain reads its prediction from.
    Nested { raw: Option<&'a str> },
}

pub(super) fn write(
    w: &mut XmlWriter,
    fields: &mut Fields,
    top: &Top,
    body: &TreesBody,
) -> Result<(), ExportError> {
    let n_out = body.n_outputs;
    if body.base_score.len() != n_out {
        return Err(ExportError::Unsupported(format!(
            "{} base scores for {n_out} outputs",
            body.base_score.len()
        )));
    }
    let mut groups: Vec<Vec<&Tree>> = vec![Vec::new(); n_out];
    for (t, tree) in body.trees.iter().enumerate() {
        groups
            .get_mut(tree.output)
            .ok_or_else(|| {
                ExportError::Unsupported(format!("tree {t} adds to output {}", tree.output))
            })?
            .push(tree);
    }
    match body.output {
        TreeOutput::BinaryProbability | TreeOutput::Probabilities => {
            let leaves = if body.output == TreeOutput::BinaryProbability {
                Leaves::Binary
            } else {
                Leaves::Vector
            };
            return probability_trees(w, fields, top, body, leaves);
        }
        TreeOutput::Identity => {
            return match (groups[0].as_slice(), body.divisor, body.base_score[0]) {
                // One tree, nothing to add (a decision tree): the tree on its own.
                ([tree], 1.0, 0.0) => tree_model(w, fields, Role::Top(top), tree, Leaves::Value),
                (trees, ..) => sum_model(w, fields, Role::Top(top), trees, body, 0),
            };
        }
        _ => {}
    }
    let raw: Vec<String> = (0..n_out).map(|o| format!("dipper_raw({o})")).collect();
    for r in &raw {
        fields.reserve(r)?;
    }
    let fields = &*fields;
    let function = if fields.is_classification() {
        "classification"
    } else {
        "regression"
    };
    w.start("MiningModel", &top.attrs(function, &[]));
    fields.top_mining_schema(w, MissingInputs::Accepted);
    fields.top_output(w);
    w.start("Segmentation", &[("multipleModelMethod", "modelChain")]);
    for (o, group) in groups.iter().enumerate() {
        w.start("Segment", &[("id", &(o + 1).to_string())]);
        w.empty("True", &[]);
        sum_model(
            w,
            fields,
            Role::Nested { raw: Some(&raw[o]) },
            group,
            body,
            o,
        )?;
        w.end();
    }
    w.start("Segment", &[("id", &(n_out + 1).to_string())]);
    w.empty("True", &[]);
    let (function, normalization) = match body.output {
        TreeOutput::Exp => ("regression", "exp"),
        TreeOutput::BinaryLogistic => ("classification", "logit"),
        _ => ("classification", "softmax"),
    };
    w.start(
        "RegressionModel",
        &[
            ("functionName", function),
            ("normalizationMethod", normalization),
        ],
    );
    fields.nested_mining_schema(w, true, &raw);
    let table = |w: &mut XmlWriter, raw: &str, class: Option<&str>| {
        let mut attrs = vec![("intercept", "0")];
        if let Some(c) = class {
            attrs.push(("targetCategory", c));
        }
        w.start("RegressionTable", &attrs);
        w.empty("NumericPredictor", &[("name", raw), ("coefficient", "1")]);
        w.end();
    };
    match (body.output, fields.classes.as_slice()) {
        (TreeOutput::Exp, []) => table(w, &raw[0], None),
        (TreeOutput::BinaryLogistic, [first, second]) => {
            table(w, &raw[0], Some(second));
            w.empty(
                "RegressionTable",
                &[("intercept", "0"), ("targetCategory", first)],
            );
        }
        (TreeOutput::Softmax, classes) if classes.len() == n_out => {
            for (r, c) in raw.iter().zip(classes) {
                table(w, r, Some(c));
            }
        }
        (output, classes) => {
            return Err(ExportError::Unsupported(format!(
                "tree output {output:?} with {} classes",
                classes.len()
            )))
        }
    }
    w.end();
    w.end();
    w.end();
    w.end();
    Ok(())
}

/// How `n` trees with this divisor combine: PMML's method and, when neither sums nor averages fit, a factor.
fn combination(divisor: f64, n: usize) -> (&'static str, Option<f64>) {
    if divisor == 1.0 {
        ("sum", None)
    } else if divisor == n as f64 {
        ("average", None)
    } else {
        // Multiplying by 1 / divisor instead of dividing: off by rounding. dipper's trainers never write this.
        ("sum", Some(1.0 / divisor))
    }
}

/// The raw score of output `o`: a `MiningModel` over `trees` (regression trees) with the base score as
/// `Targets`.
fn sum_model(
    w: &mut XmlWriter,
    fields: &Fields,
    role: Role,
    trees: &[&Tree],
    body: &TreesBody,
    o: usize,
) -> Result<(), ExportError> {
    let (method, factor) = combination(body.divisor, trees.len());
    let base = body.base_score[o];
    let base_text = number(base, || format!("base score {o}"))?;
    match &role {
        Role::Top(top) => {
            w.start("MiningModel", &top.attrs("regression", &[]));
            fields.top_mining_schema(w, MissingInputs::Accepted);
            fields.top_output(w);
        }
        Role::Nested { raw } => {
            w.start("MiningModel", &[("functionName", "regression")]);
            fields.nested_mining_schema(w, false, &used_inputs(fields, trees));
            if let Some(raw) = raw {
                w.start("Output", &[]);
                w.empty(
                    "OutputField",
                    &[
                        ("name", raw),
                        ("optype", "continuous"),
                        ("dataType", "double"),
                        ("feature", "predictedValue"),
                        ("isFinalResult", "false"),
                    ],
                );
                w.end();
            }
        }
    }
    if base != 0.0 || factor.is_some() {
        let factor_text = match factor {
            Some(f) => Some(number(f, || format!("1 / divisor {}", body.divisor))?),
            None => None,
        };
        let mut attrs = Vec::new();
        if matches!(role, Role::Top(_)) {
            attrs.push(("field", fields.label));
        }
        if let Some(f) = &factor_text {
            attrs.push(("rescaleFactor", f.as_str()));
        }
        attrs.push(("rescaleConstant", &base_text));
        w.start("Targets", &[]);
        w.empty("Target", &attrs);
        w.end();
    }
    w.start("Segmentation", &[("multipleModelMethod", method)]);
    if trees.is_empty() {
        // No trees for this output (boosting stopped): a one-leaf tree adding 0.
        let empty = Tree {
            left: vec![-1],
            right: vec![-1],
            feature: vec![0],
            threshold: vec![0.0],
            missing_left: vec![false],
            value: vec![0.0],
            ..Tree::default()
        };
        segment(w, fields, 1, &empty, Leaves::Value)?;
    }
    for (t, tree) in trees.iter().enumerate() {
        segment(w, fields, t + 1, tree, Leaves::Value)?;
    }
    w.end();
    w.end();
    Ok(())
}

fn segment(
    w: &mut XmlWriter,
    fields: &Fields,
    id: usize,
    tree: &Tree,
    leaves: Leaves,
) -> Result<(), ExportError> {
    w.start("Segment", &[("id", &id.to_string())]);
    w.empty("True", &[]);
    tree_model(w, fields, Role::Nested { raw: None }, tree, leaves)?;
    w.end();
    Ok(())
}

/// Trees whose leaves are class probabilities: one classification `TreeModel`, or their average.
fn probability_trees(
    w: &mut XmlWriter,
    fields: &Fields,
    top: &Top,
    body: &TreesBody,
    leaves: Leaves,
) -> Result<(), ExportError> {
    if body.base_score.iter().any(|b| *b != 0.0) {
        return Err(ExportError::Unsupported(
            "a probability forest with a non-zero base score".into(),
        ));
    }
    match (
        body.trees.as_slice(),
        combination(body.divisor, body.trees.len()),
    ) {
        ([tree], ("sum", None)) => tree_model(w, fields, Role::Top(top), tree, leaves),
        (trees, ("average", None)) if !trees.is_empty() => {
            w.start("MiningModel", &top.attrs("classification", &[]));
            fields.top_mining_schema(w, MissingInputs::Accepted);
            fields.top_output(w);
            w.start("Segmentation", &[("multipleModelMethod", "average")]);
            for (t, tree) in trees.iter().enumerate() {
                segment(w, fields, t + 1, tree, leaves)?;
            }
            w.end();
            w.end();
            Ok(())
        }
        _ => Err(ExportError::Unsupported(format!(
            "a probability forest of {} trees with divisor {}",
            body.trees.len(),
            body.divisor
        ))),
    }
}

/// The names of the inputs `trees` split on, in feature order.
fn used_inputs<'a>(fields: &Fields<'a>, trees: &[&Tree]) -> Vec<&'a str> {
    let mut used = BTreeSet::new();
    for tree in trees {
        for (i, &f) in tree.feature.iter().enumerate() {
            if tree.left.get(i).is_some_and(|l| *l >= 0) {
                used.insert(f as usize);
            }
        }
    }
    used.into_iter()
        .filter_map(|f| fields.inputs.get(f).map(Input::name))
        .collect()
}

/// A child's predicate.
enum Predicate<'a> {
    True,
    Le(&'a str, f64),
    Gt(&'a str, f64),
    In(&'a str, Vec<&'a str>),
    NotIn(&'a str, Vec<&'a str>),
}

/// The predicates of node `i`'s left and right children.
fn split<'a>(
    fields: &Fields<'a>,
    tree: &Tree,
    i: usize,
) -> Result<(Predicate<'a>, Predicate<'a>), ExportError> {
    let feature = tree.feature[i] as usize;
    let input = fields.inputs.get(feature).ok_or_else(|| {
        ExportError::Unsupported(format!(
            "node {i} splits on feature {feature}, which is not there"
        ))
    })?;
    let set = tree.categories.get(i).filter(|c| !c.is_empty());
    let threshold = tree.threshold[i];
    match (input, set) {
        (Input::Continuous { name }, None) => {
            number(threshold, || format!("the threshold of node {i}"))?;
            Ok((
                Predicate::Le(name, threshold),
                Predicate::Gt(name, threshold),
            ))
        }
        (Input::Categorical { name, values }, set) => {
            let left: Vec<&str> = match set {
                Some(codes) => {
                    let codes: BTreeSet<usize> = codes.iter().map(|&c| c as usize).collect();
                    codes
                        .into_iter()
                        .filter_map(|c| values.get(c).map(String::as_str))
                        .collect()
                }
                // A threshold on the category codes.
                None => values
                    .iter()
                    .enumerate()
                    .filter(|(c, _)| *c as f64 <= threshold)
                    .map(|(_, v)| v.as_str())
                    .collect(),
            };
            Ok((
                Predicate::In(name, left.clone()),
                Predicate::NotIn(name, left),
            ))
        }
        (Input::Continuous { name }, Some(_)) => Err(ExportError::Unsupported(format!(
            "node {i} splits numeric feature '{name}' by category sets"
        ))),
    }
}

fn write_predicate(w: &mut XmlWriter, p: &Predicate) -> Result<(), ExportError> {
    let simple = |w: &mut XmlWriter, field: &str, op: &str, value: &str| {
        w.empty(
            "SimplePredicate",
            &[("field", field), ("operator", op), ("value", value)],
        )
    };
    match p {
        Predicate::True => w.empty("True", &[]),
        Predicate::Le(f, t) => simple(w, f, "lessOrEqual", &number(*t, String::new)?),
        Predicate::Gt(f, t) => simple(w, f, "greaterThan", &number(*t, String::new)?),
        Predicate::In(f, set) | Predicate::NotIn(f, set) => {
            let is_in = matches!(p, Predicate::In(..));
            // PMML arrays quote strings; an evaluator may not unescape `\"`, so names holding `"` or `\` are
            // compared one by one instead.
            if set.iter().all(|v| !v.contains(['"', '\\'])) {
                let op = if is_in { "isIn" } else { "isNotIn" };
                w.start(
                    "SimpleSetPredicate",
                    &[("field", f), ("booleanOperator", op)],
                );
                let text: Vec<String> = set.iter().map(|v| format!("\"{v}\"")).collect();
                w.text(
                    "Array",
                    &[("type", "string"), ("n", &set.len().to_string())],
                    &text.join(" "),
                );
                w.end();
            } else {
                let (op, cmp) = if is_in {
                    ("or", "equal")
                } else {
                    ("and", "notEqual")
                };
                if set.len() > 1 {
                    w.start("CompoundPredicate", &[("booleanOperator", op)]);
                }
                for v in set {
                    simple(w, f, cmp, v);
                }
                if set.len() > 1 {
                    w.end();
                }
            }
        }
    }
    Ok(())
}

/// A leaf's class probabilities.
fn leaf_probabilities(
    tree: &Tree,
    i: usize,
    leaves: Leaves,
    k: usize,
) -> Result<Vec<f64>, ExportError> {
    let vector = tree.leaf_vectors.get(i).filter(|v| !v.is_empty());
    let probs = match (leaves, vector) {
        (Leaves::Binary, None) => vec![1.0 - tree.value[i], tree.value[i]],
        (Leaves::Binary, Some(v)) if v.len() == 1 => vec![1.0 - v[0], v[0]],
        (Leaves::Vector, Some(v)) => v.clone(),
        _ => Vec::new(),
    };
    if probs.len() != k {
        return Err(ExportError::Unsupported(format!(
            "leaf {i} does not hold {k} class probabilities"
        )));
    }
    Ok(probs)
}

/// One tree as a `TreeModel`, written without recursion (trees may be thousands of levels deep).
fn tree_model(
    w: &mut XmlWriter,
    fields: &Fields,
    role: Role,
    tree: &Tree,
    leaves: Leaves,
) -> Result<(), ExportError> {
    tree.build_nodes().map_err(ExportError::Unsupported)?;
    let function = if leaves == Leaves::Value {
        "regression"
    } else {
        "classification"
    };
    let extra = [
        ("missingValueStrategy", "defaultChild"),
        ("splitCharacteristic", "binarySplit"),
    ];
    match role {
        Role::Top(top) => {
            w.start("TreeModel", &top.attrs(function, &extra));
            fields.top_mining_schema(w, MissingInputs::Accepted);
            fields.top_output(w);
        }
        Role::Nested { .. } => {
            let mut attrs = vec![("functionName", function)];
            attrs.extend_from_slice(&extra);
            w.start("TreeModel", &attrs);
            fields.nested_mining_schema(w, leaves != Leaves::Value, &used_inputs(fields, &[tree]));
        }
    }
    enum Step<'a> {
        Enter(usize, Predicate<'a>),
        Exit,
    }
    let n = tree.left.len();
    let mut seen = vec![false; n];
    let mut stack = vec![Step::Enter(0, Predicate::True)];
    let k = fields.classes.len();
    while let Some(step) = stack.pop() {
        let (i, predicate) = match step {
            Step::Exit => {
                w.end();
                continue;
            }
            Step::Enter(i, p) => (i, p),
        };
        if i >= n || std::mem::replace(&mut seen[i], true) {
            return Err(ExportError::Unsupported(format!(
                "node {i} is out of range or reached twice"
            )));
        }
        let id = i.to_string();
        if tree.left[i] < 0 {
            if leaves == Leaves::Value {
                let value = match tree.leaf_vectors.get(i).filter(|v| !v.is_empty()) {
                    None => tree.value[i],
                    Some(v) if v.len() == 1 => v[0],
                    Some(v) => {
                        return Err(ExportError::Unsupported(format!(
                            "leaf {i} holds {} values; a summed tree needs one",
                            v.len()
                        )))
                    }
                };
                let score = number(value, || format!("the value of leaf {i}"))?;
                w.start("Node", &[("id", &id), ("score", &score)]);
                write_predicate(w, &predicate)?;
            } else {
                let probs = leaf_probabilities(tree, i, leaves, k)?;
                // The first class of highest probability, as dipper labels.
                let mut best = 0;
                for (c, p) in probs.iter().enumerate() {
                    if *p > probs[best] {
                        best = c;
                    }
                }
                w.start("Node", &[("id", &id), ("score", &fields.classes[best])]);
                write_predicate(w, &predicate)?;
                for (class, p) in fields.classes.iter().zip(&probs) {
                    let p = number(*p, || format!("a probability of leaf {i}"))?;
                    w.empty(
                        "ScoreDistribution",
                        &[("value", class), ("recordCount", &p), ("probability", &p)],
                    );
                }
            }
            w.end();
            continue;
        }
        let (left, right) = (tree.left[i] as usize, tree.right[i] as usize);
        let default = if tree.missing_left[i] { left } else { right };
        let (lp, rp) = split(fields, tree, i)?;
        w.start(
            "Node",
            &[("id", &id), ("defaultChild", &default.to_string())],
        );
        write_predicate(w, &predicate)?;
        stack.push(Step::Exit);
        stack.push(Step::Enter(right, rp));
        stack.push(Step::Enter(left, lp));
    }
    w.end();
    Ok(())
}

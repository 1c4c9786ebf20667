//! Tests of the PMML exporter on hand-made native models: the documents parse as XML, have the structure each
//! module documents, carry every number exactly, and refuse what PMML cannot state. (Agreement with a PMML
//! evaluator on trained models is tested end to end in `crates/dipper/tests/export_pmml.rs`.)

use dipper_core::FeatureKind;
use roxmltree::{Document, Node};
use serde_json::Value;

use super::*;
use crate::native::linear::{LinearBody, LinearInput, LinearLink, LinearOutput};
use crate::native::mlp::{MlpActivation, MlpBody, MlpInput, MlpLayer, MlpOutput};
use crate::native::naive_bayes::{NaiveBayesBody, NaiveBayesFeature};
use crate::native::trees::{Tree, TreeOutput, TreesBody};
use crate::native::{FeatureInfo, Header};

fn feature(name: &str, categories: Option<&[&str]>) -> FeatureInfo {
    FeatureInfo {
        name: name.into(),
        kind: match categories {
            None => FeatureKind::Numeric,
            Some(c) => FeatureKind::Categorical {
                categories: c.iter().map(|s| s.to_string()).collect(),
            },
        },
        stats: Value::Null,
    }
}

/// A model with features `a` (numeric) and `c` (categories `x`, `y z`, `w"v`) and `classes` (none: regression).
fn model(classes: &[i64], algorithm: &str, body: ModelBody) -> NativeModel {
    NativeModel::new(
        Header {
            task: if classes.is_empty() {
                Task::Regression
            } else {
                Task::Classification
            },
            classes: classes.iter().map(|c| ClassLabel::Int(*c)).collect(),
            label: "target".into(),
            features: vec![
                feature("a", None),
                feature("c", Some(&["x", "y z", "w\"v"])),
            ],
            algorithm: algorithm.into(),
            params: Value::Null,
            metrics: Value::Null,
            source: Value::Null,
            trained_by: "dipper test".into(),
            trained_at: "2026-01-02T03:04:05Z".into(),
        },
        body,
    )
}

fn opts() -> PmmlOptions {
    PmmlOptions {
        application_version: "9.9.9".into(),
        model_name: "m".into(),
    }
}

fn export(m: &NativeModel) -> String {
    to_pmml(m, "m.json", &opts()).unwrap()
}

fn elements<'a, 'i>(doc: &'a Document<'i>, name: &str) -> Vec<Node<'a, 'i>> {
    doc.descendants().filter(|n| n.has_tag_name(name)).collect()
}

fn first<'a, 'i>(n: Node<'a, 'i>) -> Node<'a, 'i> {
    n.children().find(|c| c.is_element()).unwrap()
}

fn attr<'a>(n: Node<'a, '_>, name: &str) -> &'a str {
    n.attribute(name)
        .unwrap_or_else(|| panic!("{:?} has no {name}", n.tag_name()))
}

fn logit() -> NativeModel {
    model(
        &[0, 1],
        "glm",
        ModelBody::Linear(LinearBody {
            link: LinearLink::Logit,
            inputs: vec![
                LinearInput::Numeric {},
                LinearInput::OneHot { categories: 3 },
            ],
            outputs: vec![LinearOutput {
                intercept: 0.1 + 0.2,
                coefficients: vec![-1.0 / 3.0, 1e-300, 2.5, 7e22],
            }],
        }),
    )
}

#[test]
fn header_data_dictionary_and_outputs() {
    let xml = export(&logit());
    let doc = Document::parse(&xml).unwrap();
    let root = doc.root_element();
    assert_eq!(root.tag_name().namespace(), Some(PMML_NAMESPACE));
    assert_eq!(attr(root, "version"), "4.4");
    let app = elements(&doc, "Application")[0];
    assert_eq!(
        (attr(app, "name"), attr(app, "version")),
        ("dipper", "9.9.9")
    );
    assert_eq!(
        elements(&doc, "Timestamp")[0].text(),
        Some("2026-01-02T03:04:05Z")
    );
    let fields: Vec<(&str, &str, &str)> = elements(&doc, "DataField")
        .into_iter()
        .map(|f| (attr(f, "name"), attr(f, "optype"), attr(f, "dataType")))
        .collect();
    assert_eq!(
        fields,
        [
            ("a", "continuous", "double"),
            ("c", "categorical", "string"),
            ("target", "categorical", "integer")
        ]
    );
    let values: Vec<&str> = elements(&doc, "Value")
        .into_iter()
        .map(|v| attr(v, "value"))
        .collect();
    assert_eq!(values, ["x", "y z", "w\"v", "0", "1"]);
    let outputs: Vec<&str> = elements(&doc, "OutputField")
        .into_iter()
        .map(|o| attr(o, "name"))
        .collect();
    assert_eq!(
        outputs,
        ["predicted_target", "probability(0)", "probability(1)"]
    );
    // A model refusing missing inputs says so for every input.
    let mining: Vec<_> = elements(&doc, "MiningField");
    assert_eq!(attr(mining[0], "usageType"), "target");
    for m in &mining[1..] {
        assert_eq!(attr(*m, "missingValueTreatment"), "returnInvalid");
    }
}

#[test]
fn linear_tables_hold_every_coefficient_exactly() {
    let xml = export(&logit());
    let doc = Document::parse(&xml).unwrap();
    let model = elements(&doc, "RegressionModel")[0];
    assert_eq!(attr(model, "normalizationMethod"), "logit");
    assert_eq!(attr(model, "functionName"), "classification");
    let tables = elements(&doc, "RegressionTable");
    // The second class's table first, the trivial first-class table last.
    assert_eq!(attr(tables[0], "targetCategory"), "1");
    assert_eq!(attr(tables[1], "targetCategory"), "0");
    assert_eq!(attr(tables[1], "intercept"), "0");
    assert_eq!(tables[1].children().filter(|c| c.is_element()).count(), 0);
    assert_eq!(
        attr(tables[0], "intercept").parse::<f64>().unwrap(),
        0.1 + 0.2
    );
    let coefs: Vec<(&str, Option<&str>, f64)> = tables[0]
        .children()
        .filter(|c| c.is_element())
        .map(|p| {
            (
                attr(p, "name"),
                p.attribute("value"),
                attr(p, "coefficient").parse().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        coefs,
        [
            ("a", None, -1.0 / 3.0),
            ("c", Some("x"), 1e-300),
            ("c", Some("y z"), 2.5),
            ("c", Some("w\"v"), 7e22)
        ]
    );

    let mut m = logit();
    if let ModelBody::Linear(b) = &mut m.body {
        b.link = LinearLink::Softmax;
        b.outputs.push(b.outputs[0].clone());
    }
    let doc_text = export(&m);
    let doc = Document::parse(&doc_text).unwrap();
    assert_eq!(
        attr(elements(&doc, "RegressionModel")[0], "normalizationMethod"),
        "softmax"
    );
    assert_eq!(elements(&doc, "RegressionTable").len(), 2);
}

fn nb() -> NativeModel {
    let (p0, p1) = (0.3f64, 0.7f64);
    model(
        &[0, 1],
        "nb",
        ModelBody::NaiveBayes(NaiveBayesBody {
            class_log_prior: vec![p0.ln(), p1.ln()],
            features: vec![
                NaiveBayesFeature::Gaussian {
                    mean: vec![0.5, -1.25],
                    variance: vec![2.0, 0.1],
                },
                // Two of the three categories have probabilities.
                NaiveBayesFeature::Categorical {
                    log_prob: vec![
                        vec![0.25f64.ln(), 0.75f64.ln()],
                        vec![0.5f64.ln(), 0.5f64.ln()],
                    ],
                },
            ],
        }),
    )
}

#[test]
fn naive_bayes_counts_give_back_the_probabilities() {
    let xml = export(&nb());
    let doc = Document::parse(&xml).unwrap();
    let model = elements(&doc, "NaiveBayesModel")[0];
    assert_eq!(attr(model, "threshold").parse::<f64>().unwrap(), 5e-324);
    let g = elements(&doc, "GaussianDistribution");
    assert_eq!(
        (attr(g[1], "mean"), attr(g[1], "variance")),
        ("-1.25", "0.1")
    );
    // The category without probabilities is not a value of the field: it becomes missing, as dipper skips it.
    let c = elements(&doc, "DataField")[1];
    assert_eq!(c.children().filter(|v| v.is_element()).count(), 2);
    assert_eq!(
        attr(
            elements(&doc, "MiningField")
                .into_iter()
                .find(|m| attr(*m, "name") == "c")
                .unwrap(),
            "invalidValueTreatment"
        ),
        "asMissing"
    );
    let pair_counts = elements(&doc, "PairCounts");
    assert_eq!(pair_counts.len(), 2);
    let count = |pc: Node, class: &str| -> f64 {
        pc.descendants()
            .find(|n| n.has_tag_name("TargetValueCount") && attr(*n, "value") == class)
            .map(|n| attr(n, "count").parse().unwrap())
            .unwrap()
    };
    let prior = |class: &str| -> f64 {
        elements(&doc, "BayesOutput")[0]
            .descendants()
            .find(|n| n.has_tag_name("TargetValueCount") && attr(*n, "value") == class)
            .map(|n| attr(n, "count").parse().unwrap())
            .unwrap()
    };
    // Priors keep their ratio; per class the counts sum to the prior and divide back to p(category | class).
    assert!((prior("1") - 1.0).abs() < 1e-15);
    assert!((prior("0") - 0.3 / 0.7).abs() < 1e-15);
    for (class, probs) in [("0", [0.25, 0.75]), ("1", [0.5, 0.5])] {
        let counts = [count(pair_counts[0], class), count(pair_counts[1], class)];
        let total: f64 = counts.iter().sum();
        assert!((total - prior(class)).abs() < 1e-15);
        for (c, p) in counts.iter().zip(probs) {
            assert!((c / total - p).abs() < 1e-15);
        }
    }
}

/// A tree: node 0 splits `a <= 1.5` (missing right), node 1 splits `c` in {x, w"v} (missing left).
fn tree(value: [f64; 3]) -> Tree {
    Tree {
        output: 0,
        left: vec![1, 3, -1, -1, -1],
        right: vec![2, 4, -1, -1, -1],
        feature: vec![0, 1, 0, 0, 0],
        threshold: vec![1.5, 0.0, 0.0, 0.0, 0.0],
        missing_left: vec![false, true, false, false, false],
        value: vec![0.0, 0.0, value[0], value[1], value[2]],
        categories: vec![vec![], vec![0, 2], vec![], vec![], vec![]],
        leaf_vectors: vec![],
    }
}

fn trees(
    classes: &[i64],
    output: TreeOutput,
    trees: Vec<Tree>,
    base: Vec<f64>,
    divisor: f64,
) -> NativeModel {
    model(
        classes,
        "gbm",
        ModelBody::Trees(TreesBody {
            n_outputs: base.len(),
            base_score: base,
            divisor,
            output,
            trees,
        }),
    )
}

#[test]
fn tree_splits_and_missing_values() {
    let xml = export(&trees(
        &[],
        TreeOutput::Identity,
        vec![tree([0.1, -2.0, 3.0])],
        vec![0.0],
        1.0,
    ));
    let doc = Document::parse(&xml).unwrap();
    // One tree, nothing to add: a TreeModel on its own.
    let model = elements(&doc, "TreeModel")[0];
    assert_eq!(model.parent_element().unwrap().tag_name().name(), "PMML");
    assert_eq!(attr(model, "missingValueStrategy"), "defaultChild");
    let nodes = elements(&doc, "Node");
    let ids: Vec<&str> = nodes.iter().map(|n| attr(*n, "id")).collect();
    assert_eq!(ids, ["0", "1", "3", "4", "2"]);
    assert_eq!(attr(nodes[0], "defaultChild"), "2");
    assert_eq!(attr(nodes[1], "defaultChild"), "3");
    assert!(first(nodes[0]).has_tag_name("True"));
    let le = first(nodes[1]);
    assert_eq!(
        (attr(le, "field"), attr(le, "operator"), attr(le, "value")),
        ("a", "lessOrEqual", "1.5")
    );
    assert_eq!(attr(first(nodes[4]), "operator"), "greaterThan");
    // `w"v` cannot go in a PMML string array: the set is spelled out as equalities.
    let left = first(nodes[2]);
    assert_eq!(attr(left, "booleanOperator"), "or");
    let eq: Vec<(&str, &str)> = left
        .children()
        .filter(|c| c.is_element())
        .map(|c| (attr(c, "operator"), attr(c, "value")))
        .collect();
    assert_eq!(eq, [("equal", "x"), ("equal", "w\"v")]);
    assert_eq!(attr(first(nodes[3]), "booleanOperator"), "and");
    assert_eq!(attr(nodes[2], "score"), "-2");

    // Plain names go in an array; a threshold on a categorical feature's codes is the set of codes below it.
    let mut t = tree([0.1, -2.0, 3.0]);
    t.categories[1] = vec![];
    t.threshold[1] = 1.0;
    let xml = export(&trees(&[], TreeOutput::Identity, vec![t], vec![0.0], 1.0));
    let doc = Document::parse(&xml).unwrap();
    let sets = elements(&doc, "SimpleSetPredicate");
    assert_eq!(attr(sets[0], "booleanOperator"), "isIn");
    assert_eq!(attr(sets[1], "booleanOperator"), "isNotIn");
    let array = sets[0].children().find(|c| c.is_element()).unwrap();
    assert_eq!((attr(array, "type"), attr(array, "n")), ("string", "2"));
    assert_eq!(array.text(), Some("\"x\" \"y z\""));
}

#[test]
fn boosting_chains_raw_scores_into_a_regression_model() {
    let m = trees(
        &[0, 1],
        TreeOutput::BinaryLogistic,
        vec![tree([0.1, 0.2, 0.3]), tree([-0.1, 0.0, 0.5])],
        vec![-0.25],
        1.0,
    );
    let xml = export(&m);
    let doc = Document::parse(&xml).unwrap();
    let top = elements(&doc, "MiningModel")[0];
    assert_eq!(attr(top, "functionName"), "classification");
    let seg = elements(&doc, "Segmentation");
    assert_eq!(attr(seg[0], "multipleModelMethod"), "modelChain");
    assert_eq!(attr(seg[1], "multipleModelMethod"), "sum");
    assert_eq!(
        attr(elements(&doc, "Target")[0], "rescaleConstant"),
        "-0.25"
    );
    let raw = elements(&doc, "OutputField")
        .into_iter()
        .find(|o| attr(*o, "name") == "dipper_raw(0)")
        .unwrap();
    assert_eq!(attr(raw, "isFinalResult"), "false");
    let reg = elements(&doc, "RegressionModel")[0];
    assert_eq!(attr(reg, "normalizationMethod"), "logit");
    assert_eq!(elements(&doc, "TreeModel").len(), 2);

    // Multiclass: one raw-score model per class, softmax over them; an output without trees still has one.
    let mut t2 = tree([1.0, 2.0, 3.0]);
    t2.output = 2;
    let m = trees(
        &[0, 1, 2],
        TreeOutput::Softmax,
        vec![tree([0.1, 0.2, 0.3]), t2],
        vec![0.0, 0.5, -0.5],
        1.0,
    );
    let doc_text = export(&m);
    let doc = Document::parse(&doc_text).unwrap();
    assert_eq!(elements(&doc, "MiningModel").len(), 4);
    assert_eq!(elements(&doc, "TreeModel").len(), 3);
    assert_eq!(
        attr(elements(&doc, "RegressionModel")[0], "normalizationMethod"),
        "softmax"
    );
}

#[test]
fn forests_average_class_distributions() {
    let m = trees(
        &[0, 1],
        TreeOutput::BinaryProbability,
        vec![tree([0.25, 1.0, 0.5]), tree([0.75, 0.0, 0.5])],
        vec![0.0],
        2.0,
    );
    let xml = export(&m);
    let doc = Document::parse(&xml).unwrap();
    assert_eq!(
        attr(elements(&doc, "Segmentation")[0], "multipleModelMethod"),
        "average"
    );
    let leaf = elements(&doc, "Node")
        .into_iter()
        .find(|n| attr(*n, "id") == "2")
        .unwrap();
    assert_eq!(attr(leaf, "score"), "0");
    let dist: Vec<(&str, &str)> = leaf
        .children()
        .filter(|c| c.has_tag_name("ScoreDistribution"))
        .map(|d| (attr(d, "value"), attr(d, "probability")))
        .collect();
    assert_eq!(dist, [("0", "0.75"), ("1", "0.25")]);
    // A tie goes to the first class, as dipper labels.
    let tie = elements(&doc, "Node")
        .into_iter()
        .rfind(|n| attr(*n, "id") == "4")
        .unwrap();
    assert_eq!(attr(tie, "score"), "0");
}

#[test]
fn deep_trees_are_written_without_recursion() {
    let depth = 4000;
    let mut t = Tree::default();
    for i in 0..depth {
        // Node 2i splits; its left child 2i+1 is a leaf, its right child 2i+2 goes on.
        t.left.extend([(2 * i + 1) as i32, -1]);
        t.right.extend([(2 * i + 2) as i32, -1]);
        t.feature.extend([0, 0]);
        t.threshold.extend([i as f64, 0.0]);
        t.missing_left.extend([false, false]);
        t.value.extend([0.0, i as f64]);
    }
    t.left.push(-1);
    t.right.push(-1);
    t.feature.push(0);
    t.threshold.push(0.0);
    t.missing_left.push(false);
    t.value.push(-1.0);
    let xml = export(&trees(&[], TreeOutput::Identity, vec![t], vec![0.0], 1.0));
    assert_eq!(xml.matches("<Node ").count(), 2 * depth + 1);
    assert!(xml.ends_with("</PMML>\n"));
}

#[test]
fn networks_get_their_output_layers() {
    let body = |output: MlpOutput, n_out: usize| MlpBody {
        inputs: vec![
            MlpInput::Standardize {
                mean: 1.0,
                std: 2.0,
            },
            MlpInput::OneHot { n_categories: 3 },
        ],
        layers: vec![
            MlpLayer {
                weights: vec![vec![0.5, -0.5]; 4],
                biases: vec![0.1, 0.2],
                activation: MlpActivation::Relu,
            },
            MlpLayer {
                weights: vec![vec![1.0; n_out]; 2],
                biases: vec![0.0; n_out],
                activation: MlpActivation::Identity,
            },
        ],
        output,
        output_scale: if output == MlpOutput::Identity {
            3.0
        } else {
            1.0
        },
        output_offset: if output == MlpOutput::Identity {
            -1.0
        } else {
            0.0
        },
    };
    let xml = export(&model(
        &[0, 1],
        "mlp",
        ModelBody::Mlp(body(MlpOutput::Sigmoid, 1)),
    ));
    let doc = Document::parse(&xml).unwrap();
    assert_eq!(elements(&doc, "NeuralInput").len(), 4);
    let layers = elements(&doc, "NeuralLayer");
    let acts: Vec<&str> = layers
        .iter()
        .map(|l| attr(*l, "activationFunction"))
        .collect();
    assert_eq!(acts, ["rectifier", "logistic", "identity"]);
    assert_eq!(elements(&doc, "NeuralOutput").len(), 2);
    assert_eq!(elements(&doc, "NormDiscrete").len(), 3 + 2);

    let xml = export(&model(
        &[0, 1, 2],
        "mlp",
        ModelBody::Mlp(body(MlpOutput::Softmax, 3)),
    ));
    let doc = Document::parse(&xml).unwrap();
    let layers = elements(&doc, "NeuralLayer");
    assert_eq!(layers.len(), 2);
    assert_eq!(attr(layers[1], "normalizationMethod"), "softmax");

    let xml = export(&model(
        &[],
        "mlp",
        ModelBody::Mlp(body(MlpOutput::Identity, 1)),
    ));
    let doc = Document::parse(&xml).unwrap();
    let norms: Vec<(&str, &str)> = elements(&doc, "LinearNorm")
        .into_iter()
        .map(|n| (attr(n, "orig"), attr(n, "norm")))
        .collect();
    assert_eq!(norms, [("-1", "0"), ("2", "1")]);
}

#[test]
fn what_pmml_cannot_state_is_refused() {
    let lgbm = b"tree\nversion=v4\n";
    let e = export_bytes(lgbm, "m.txt", &opts()).unwrap_err();
    assert!(matches!(e, ExportError::NotNative { .. }));
    assert!(
        e.to_string().starts_with("m.txt is a lightgbm model"),
        "{e}"
    );

    let e = export_bytes(b"{\"format\": \"dipper-model\", ", "m.json", &opts()).unwrap_err();
    assert!(e.to_string().contains("m.json line 1"), "{e}");

    let mut m = logit();
    m.header.features[1].kind = FeatureKind::Categorical { categories: vec![] };
    let e = to_pmml(&m, "m.json", &opts()).unwrap_err().to_string();
    assert!(e.contains("'c' has no category names"), "{e}");

    let mut m = logit();
    m.header.features[0].name = "predicted_target".into();
    let e = to_pmml(&m, "m.json", &opts()).unwrap_err().to_string();
    assert!(e.contains("'predicted_target'"), "{e}");

    let mut m = logit();
    m.header.features[0].name = "a\u{1}".into();
    assert!(matches!(
        to_pmml(&m, "m.json", &opts()),
        Err(ExportError::Unsupported(_))
    ));

    let mut t = tree([0.0, 1.0, 2.0]);
    t.threshold[0] = f64::INFINITY;
    let e = to_pmml(
        &trees(&[], TreeOutput::Identity, vec![t], vec![0.0], 1.0),
        "m.json",
        &opts(),
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("threshold of node 0") && e.contains("inf"),
        "{e}"
    );

    // Category sets on a numeric feature.
    let mut t = tree([0.0, 1.0, 2.0]);
    t.categories[0] = vec![1];
    let e = to_pmml(
        &trees(&[], TreeOutput::Identity, vec![t], vec![0.0], 1.0),
        "m.json",
        &opts(),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("numeric feature 'a' by category sets"), "{e}");

    // A body that does not load is refused as dipper predict refuses it.
    let mut m = logit();
    if let ModelBody::Linear(b) = &mut m.body {
        b.outputs[0].coefficients.pop();
    }
    assert!(matches!(
        to_pmml(&m, "m.json", &opts()),
        Err(ExportError::Model(_))
    ));
}

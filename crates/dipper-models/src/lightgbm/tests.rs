//! Unit tests of the LightGBM loader on small hand-written models, one behaviour at a time.

use dipper_core::FeatureKind;

use super::load;
use crate::model::{Format, Model, ModelId, PredictionRef, Predictions};
use crate::transform::OutputTransform;
use crate::{LoadContext, ModelError, TreeModel};

fn ctx() -> LoadContext {
    LoadContext {
        source: "m.txt".into(),
        id: ModelId {
            name: "m".into(),
            format: Format::Lightgbm,
            digest: "0".repeat(64),
        },
    }
}

/// A model file with two features `a b`, the given header lines and tree blocks (without `Tree=N`).
fn model(header: &str, trees: &[&str], trailer: &str) -> String {
    let mut s = format!(
        "tree\nversion=v4\nmax_feature_idx=1\nfeature_names=a b\nfeature_infos=[0:1] [0:1]\n{header}\n"
    );
    for (i, t) in trees.iter().enumerate() {
        s.push_str(&format!("Tree={i}\n{t}\n\n\n"));
    }
    s.push_str("end of trees\n\n");
    s.push_str(trailer);
    s
}

fn regression(trees: &[&str]) -> String {
    model(
        "num_class=1\nnum_tree_per_iteration=1\nobjective=regression",
        trees,
        "",
    )
}

fn loaded(text: &str) -> TreeModel {
    load(text.as_bytes(), &ctx()).unwrap_or_else(|e| panic!("{e}"))
}

fn error(text: &str) -> ModelError {
    load(text.as_bytes(), &ctx()).expect_err("should not load")
}

fn value(m: &TreeModel, row: [f64; 2]) -> f64 {
    let mut out = Predictions::default();
    m.predict_one(&row, &mut out).unwrap();
    match out.get(0) {
        PredictionRef::Value(v) => v,
        other => panic!("{other:?}"),
    }
}

/// One split on feature `a` at 0.5 with this decision type: left leaf 1, right leaf 2.
fn stump(decision_type: u8) -> String {
    format!(
        "num_leaves=2\nnum_cat=0\nsplit_feature=0\nthreshold=0.5\ndecision_type={decision_type}\n\
         left_child=-1\nright_child=-2\nleaf_value=1 2\nshrinkage=1"
    )
}

#[test]
fn numerical_missing_types() {
    let nan = f64::NAN;
    // None (0): NaN reads as 0 -> 0 <= 0.5 -> left.
    let m = loaded(&regression(&[&stump(0)]));
    assert_eq!(value(&m, [nan, 0.0]), 1.0);
    assert_eq!(value(&m, [0.5, 0.0]), 1.0);
    assert_eq!(value(&m, [0.6, 0.0]), 2.0);
    // Zero (1 << 2), default right: NaN and zero go right, other values compare.
    let m = loaded(&regression(&[&stump(4)]));
    assert_eq!(value(&m, [nan, 0.0]), 2.0);
    assert_eq!(value(&m, [0.0, 0.0]), 2.0);
    assert_eq!(value(&m, [1e-36, 0.0]), 2.0);
    assert_eq!(value(&m, [0.1, 0.0]), 1.0);
    // Zero, default left: a large value still compares.
    let m = loaded(&regression(&[&stump(6)]));
    assert_eq!(value(&m, [0.0, 0.0]), 1.0);
    assert_eq!(value(&m, [0.7, 0.0]), 2.0);
    // NaN (2 << 2): only NaN takes the default; zero compares.
    let m = loaded(&regression(&[&stump(8)]));
    assert_eq!(value(&m, [nan, 0.0]), 2.0);
    assert_eq!(value(&m, [0.0, 0.0]), 1.0);
    let m = loaded(&regression(&[&stump(10)]));
    assert_eq!(value(&m, [nan, 0.0]), 1.0);
    assert_eq!(value(&m, [0.9, 0.0]), 2.0);
}

#[test]
fn categorical_splits() {
    // Categories {1, 3, 33} go left: bitset words 0b1010 and 0b10 (bit 1 of word 1 = category 33).
    let tree = "num_leaves=2\nnum_cat=1\nsplit_feature=1\nthreshold=0\ndecision_type=9\nleft_child=-1\n\
                right_child=-2\nleaf_value=10 20\ncat_boundaries=0 2\ncat_threshold=10 2\nshrinkage=1";
    let m = loaded(&regression(&[tree]));
    for (x, want) in [
        (1.0, 10.0),
        (3.0, 10.0),
        (33.0, 10.0),
        (3.9, 10.0), // truncated to 3
        (0.0, 20.0),
        (2.0, 20.0),
        (32.0, 20.0),
        (64.0, 20.0),
        (1e12, 20.0),
        (-1.0, 20.0), // negative: right
        (f64::NAN, 20.0),
    ] {
        assert_eq!(value(&m, [0.0, x]), want, "x = {x}");
    }
    assert_eq!(
        m.info().features.get(1).kind,
        FeatureKind::Categorical { categories: vec![] }
    );
    assert_eq!(m.info().features.get(0).kind, FeatureKind::Numeric);
}

#[test]
fn single_leaf_tree_and_output_groups() {
    let text = model(
        "num_class=3\nnum_tree_per_iteration=3\nobjective=multiclass num_class:3",
        &[
            "num_leaves=1\nnum_cat=0\nsplit_feature=\nthreshold=\nleaf_value=1\nshrinkage=1",
            "num_leaves=1\nnum_cat=0\nleaf_value=2",
            &stump(2),
            "num_leaves=1\nnum_cat=0\nleaf_value=0.5",
            "num_leaves=1\nnum_cat=0\nleaf_value=0",
            "num_leaves=1\nnum_cat=0\nleaf_value=0",
        ],
        "",
    );
    let m = loaded(&text);
    assert_eq!(m.transform(), OutputTransform::Softmax);
    assert_eq!(m.ensemble().n_trees(), 6);
    let mut raw = [0.0; 3];
    m.ensemble().predict_raw(&[0.0, 0.0], &mut raw);
    assert_eq!(raw, [1.5, 2.0, 1.0]);
    m.ensemble().predict_raw(&[0.9, 0.0], &mut raw);
    assert_eq!(raw, [1.5, 2.0, 2.0]);
}

#[test]
fn average_output_divides_by_iterations() {
    let text = model(
        "num_class=1\nnum_tree_per_iteration=1\nobjective=regression\naverage_output",
        &[&stump(0), &stump(0), &stump(0), &stump(0)],
        "",
    );
    let m = loaded(&text);
    assert_eq!(value(&m, [0.0, 0.0]), 1.0);
    assert_eq!(value(&m, [1.0, 0.0]), 2.0);
}

#[test]
fn objectives_map_to_transforms() {
    let cases = [
        (
            "binary sigmoid:2",
            1,
            OutputTransform::BinaryLogistic { scale: 2.0 },
        ),
        (
            "multiclassova num_class:3 sigmoid:1.5",
            3,
            OutputTransform::OneVsAll { scale: 1.5 },
        ),
        ("regression", 1, OutputTransform::Identity),
        ("regression_l1", 1, OutputTransform::Identity),
        ("huber", 1, OutputTransform::Identity),
        ("huber sqrt", 1, OutputTransform::Identity), // LightGBM disables sqrt for huber
        ("fair", 1, OutputTransform::Identity),
        ("quantile", 1, OutputTransform::Identity),
        ("mape", 1, OutputTransform::Identity),
        ("lambdarank", 1, OutputTransform::Identity),
        ("rank_xendcg", 1, OutputTransform::Identity),
        ("custom", 1, OutputTransform::Identity),
        ("poisson", 1, OutputTransform::Exp),
        ("gamma", 1, OutputTransform::Exp),
        ("tweedie", 1, OutputTransform::Exp),
        ("cross_entropy", 1, OutputTransform::Logistic),
        ("xentropy", 1, OutputTransform::Logistic),
        ("cross_entropy_lambda", 1, OutputTransform::Softplus),
    ];
    for (objective, k, transform) in cases {
        let header = format!("num_class={k}\nnum_tree_per_iteration={k}\nobjective={objective}");
        let trees = vec![stump(0); k];
        let trees: Vec<&str> = trees.iter().map(String::as_str).collect();
        let m = loaded(&model(&header, &trees, ""));
        assert_eq!(m.transform(), transform, "{objective}");
        let n_classes = m.info().n_classes();
        assert_eq!(
            n_classes,
            if transform.is_classification() {
                k.max(2)
            } else {
                0
            }
        );
    }
    // No objective line: raw scores.
    let m = loaded(&model("num_class=1", &[&stump(0)], ""));
    assert_eq!(m.transform(), OutputTransform::Identity);
}

#[test]
fn unsupported_objectives_name_their_line() {
    for objective in ["regression sqrt", "mystery_loss", "regression_l1 sqrt"] {
        let e = error(&model(
            &format!("num_class=1\nobjective={objective}"),
            &[&stump(0)],
            "",
        ));
        assert!(
            matches!(&e, ModelError::Unsupported { location, .. } if location == "m.txt line 7"),
            "{e}"
        );
    }
    let e = error(&model("num_class=1\nobjective=binary", &[&stump(0)], ""));
    assert!(e.to_string().contains("sigmoid"), "{e}");
}

#[test]
fn linear_trees_are_unsupported() {
    let tree = format!("{}\nis_linear=1\nleaf_const=0 0", stump(0));
    let e = error(&regression(&[&tree]));
    assert!(matches!(e, ModelError::Unsupported { .. }), "{e}");
    assert!(e.to_string().contains("linear"), "{e}");
}

#[test]
fn crlf_line_endings_are_read() {
    let text = regression(&[&stump(8)]).replace('\n', "\r\n");
    let m = loaded(&text);
    assert_eq!(value(&m, [f64::NAN, 0.0]), 2.0);
}

#[test]
fn pandas_categories_attach_only_when_they_match() {
    let cat_tree =
        "num_leaves=2\nnum_cat=1\nsplit_feature=1\nthreshold=0\ndecision_type=1\nleft_child=-1\n\
                    right_child=-2\nleaf_value=10 20\ncat_boundaries=0 1\ncat_threshold=2";
    let header = "num_class=1\nobjective=regression";
    let with = |trailer: &str| model(header, &[cat_tree], trailer);
    let m = loaded(&with("pandas_categorical:[[\"x\", \"y\"]]\n"));
    assert_eq!(
        m.info().features.get(1).kind,
        FeatureKind::Categorical {
            categories: vec!["x".into(), "y".into()]
        }
    );
    // Two lists for one categorical feature: which is which cannot be told, so none is attached.
    let m = loaded(&with("pandas_categorical:[[\"x\"], [\"y\"]]\n"));
    assert_eq!(
        m.info().features.get(1).kind,
        FeatureKind::Categorical { categories: vec![] }
    );
    let m = loaded(&with("pandas_categorical:null\n"));
    assert_eq!(m.info().features.get(0).kind, FeatureKind::Numeric);
    // Number categories would be read as codes by the decoder: refused.
    let e = error(&with("pandas_categorical:[[10, 20]]\n"));
    assert!(matches!(e, ModelError::Unsupported { .. }), "{e}");
    let text = with("pandas_categorical:[[\"x\"\n");
    let line = text.lines().position(|l| l.starts_with("pandas")).unwrap() + 1;
    let e = error(&text);
    assert!(
        e.to_string().starts_with(&format!("m.txt line {line}: ")),
        "{e}"
    );
    // The categorical_feature parameter marks a feature categorical even if no split uses it.
    let m = loaded(&model(
        header,
        &[&stump(0)],
        "parameters:\n[categorical_feature: 0]\nend of parameters\n",
    ));
    assert!(matches!(
        m.info().features.get(0).kind,
        FeatureKind::Categorical { .. }
    ));
    assert_eq!(m.info().features.get(1).kind, FeatureKind::Numeric);
}

#[test]
fn structural_errors() {
    // Trees not a whole number of iterations.
    let e = error(&model(
        "num_class=2\nnum_tree_per_iteration=2\nobjective=multiclass num_class:2",
        &[&stump(0)],
        "",
    ));
    assert!(e.to_string().contains("whole number"), "{e}");
    // Missing required keys.
    let e = error(&model(
        "num_class=1",
        &["num_leaves=2\nnum_cat=0\nleaf_value=1 2"],
        "",
    ));
    assert!(e.to_string().contains("no split_feature"), "{e}");
    let e = error("tree\nversion=v4\nnum_class=1\nfeature_names=a\n");
    assert!(e.to_string().contains("max_feature_idx"), "{e}");
    // A categorical split without category sets.
    let tree = stump(1);
    let e = error(&regression(&[&tree]));
    assert!(e.to_string().contains("num_cat is 0"), "{e}");
    // A categorical threshold that is not a split index.
    let tree =
        "num_leaves=2\nnum_cat=1\nsplit_feature=1\nthreshold=3\ndecision_type=1\nleft_child=-1\n\
                right_child=-2\nleaf_value=10 20\ncat_boundaries=0 1\ncat_threshold=2";
    let e = error(&regression(&[tree]));
    assert!(
        e.to_string().contains("not a categorical split index"),
        "{e}"
    );
    // Duplicate keys.
    let e = error(&regression(&[&format!("{}\nleaf_value=1 2", stump(0))]));
    assert!(e.to_string().contains("twice"), "{e}");
    // Not UTF-8.
    let mut bytes = regression(&[&stump(0)]).into_bytes();
    bytes[3] = 0xff;
    let e = load(&bytes, &ctx()).unwrap_err();
    assert!(e.to_string().contains("m.txt line 1"), "{e}");
}

#[test]
fn huge_counts_are_errors_not_allocations() {
    for tree in [
        "num_leaves=18446744073709551615\nnum_cat=0\nleaf_value=1 2".to_string(),
        "num_leaves=1000000000000\nnum_cat=0\nleaf_value=1 2".to_string(),
        stump(0).replace("num_cat=0", "num_cat=18446744073709551615")
            + "\ncat_boundaries=0\ncat_threshold=1",
        stump(0).replace("num_cat=0", "num_cat=4000000000") + "\ncat_boundaries=0\ncat_threshold=1",
    ] {
        let e = error(&regression(&[&tree]));
        assert!(matches!(e, ModelError::Parse { .. }), "{e}");
    }
    let e = error(&model(
        "num_class=1\nnum_tree_per_iteration=99999999999999999999",
        &[],
        "",
    ));
    assert!(e.to_string().contains("cannot read"), "{e}");
}

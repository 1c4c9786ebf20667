//! Unit tests of tree growth on small hand-made data: thresholds, missing-value directions, stopping rules,
//! leaf values, odd inputs, and a property test that growth never panics and fits distinct rows exactly.

use dipper_core::FeatureSchema;
use dipper_models::native::trees::{Tree, TreeOutput};
use dipper_models::native::ModelBody;
use dipper_models::ClassLabel;
use proptest::prelude::*;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde_json::json;

use super::cart::{self, Growth, Labels, Problem};
use super::forest::leaf_of;
use super::params::Criterion;
use super::*;
use crate::NoProgress;

fn dataset(columns: Vec<Vec<f64>>, y: Vec<f64>, classes: usize) -> Dataset {
    let names: Vec<String> = (0..columns.len()).map(|j| format!("x{j}")).collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    Dataset {
        schema: FeatureSchema::numeric(&names).unwrap(),
        columns,
        y,
        target: if classes == 0 {
            Target::Regression
        } else {
            Target::Classification {
                classes: (0..classes as i64).map(ClassLabel::Int).collect(),
            }
        },
        label: "y".into(),
    }
}

fn trees(body: ModelBody) -> (TreeOutput, Vec<Tree>) {
    match body {
        ModelBody::Trees(b) => (b.output, b.trees),
        other => panic!("not trees: {other:?}"),
    }
}

fn fit_tree(params: serde_json::Value, d: &Dataset) -> Tree {
    let body = DecisionTree::from_params(&params)
        .unwrap()
        .fit(d, None, &NoProgress)
        .unwrap();
    trees(body).1.remove(0)
}

fn predict(tree: &Tree, d: &Dataset, row: usize) -> f64 {
    tree.value[leaf_of(tree, &d.columns, row)]
}

/// `dataset` with feature 0 categorical (codes, no names).
fn categorical(columns: Vec<Vec<f64>>, y: Vec<f64>, classes: usize) -> Dataset {
    let mut d = dataset(columns, y, classes);
    let mut specs = d.schema.features().to_vec();
    specs[0].kind = dipper_core::FeatureKind::Categorical { categories: vec![] };
    d.schema = FeatureSchema::new(specs).unwrap();
    d
}

#[test]
fn categorical_features_split_into_category_sets() {
    // Codes 0 and 2 are class 1, 1 and 3 class 0: one set split separates them; missing rows are class 1.
    let x = vec![0.0, 1.0, 2.0, 3.0, 0.0, 1.0, 2.0, 3.0, f64::NAN, -1.0];
    let y = vec![1.0, 0.0, 1.0, 0.0, 1.0, 0.0, 1.0, 0.0, 1.0, 0.0];
    let d = categorical(vec![x], y, 2);
    let t = fit_tree(json!({"max_depth": 1}), &d);
    assert_eq!(t.left.len(), 3);
    assert_eq!(t.categories.len(), 3);
    let left = &t.categories[0];
    assert!(left == &vec![0, 2] || left == &vec![1, 3], "{left:?}");
    for r in 0..d.n_rows() {
        assert_eq!(predict(&t, &d, r), d.y[r], "row {r}");
    }
    // The same as a regression, scored through the real scorer.
    let mut d = d;
    d.target = Target::Regression;
    let t = fit_tree(json!({"max_depth": 1}), &d);
    assert_eq!(t.categories[0].len(), 2);
    // And with three classes: codes 0,1 -> class 0; 2 -> class 1; 3 -> class 2.
    let x = vec![0.0, 1.0, 2.0, 3.0, 0.0, 1.0, 2.0, 3.0];
    let d = categorical(vec![x], vec![0.0, 0.0, 1.0, 2.0, 0.0, 0.0, 1.0, 2.0], 3);
    let t = fit_tree(json!({}), &d);
    for r in 0..d.n_rows() {
        let leaf = leaf_of(&t, &d.columns, r);
        assert_eq!(t.leaf_vectors[leaf][d.class(r)], 1.0, "row {r}");
    }
}

#[test]
fn threshold_is_the_midpoint() {
    let d = dataset(vec![vec![1.0, 2.0, 3.0, 4.0]], vec![0.0, 0.0, 1.0, 1.0], 2);
    let t = fit_tree(json!({}), &d);
    assert_eq!(t.left.len(), 3);
    assert_eq!(t.threshold[0], 2.5);
    assert_eq!(t.value[t.left[0] as usize], 0.0);
    assert_eq!(t.value[t.right[0] as usize], 1.0);
}

#[test]
fn learns_where_missing_values_go() {
    // Missing rows are class 1 like the high values: they must go right.
    let x = vec![1.0, 2.0, 3.0, 4.0, f64::NAN, f64::NAN];
    let d = dataset(vec![x.clone()], vec![0.0, 0.0, 1.0, 1.0, 1.0, 1.0], 2);
    let t = fit_tree(json!({"max_depth": 1}), &d);
    assert!(!t.missing_left[0]);
    assert_eq!(predict(&t, &d, 4), 1.0);
    // And left when they are class 0.
    let d = dataset(vec![x], vec![0.0, 0.0, 1.0, 1.0, 0.0, 0.0], 2);
    let t = fit_tree(json!({"max_depth": 1}), &d);
    assert!(t.missing_left[0]);
    assert_eq!(predict(&t, &d, 5), 0.0);
    // Present vs missing alone: every present value left.
    let d = dataset(
        vec![vec![1.0, 1.0, f64::NAN, f64::NAN]],
        vec![0.0, 0.0, 1.0, 1.0],
        2,
    );
    let t = fit_tree(json!({}), &d);
    assert_eq!(t.left.len(), 3);
    assert!(!t.missing_left[0]);
    assert!(t.threshold[0].is_finite());
    assert_eq!(predict(&t, &d, 0), 0.0);
    assert_eq!(predict(&t, &d, 2), 1.0);
}

#[test]
fn missing_values_unseen_in_training_go_to_the_larger_child() {
    let d = dataset(
        vec![vec![1.0, 2.0, 3.0, 4.0, 5.0]],
        vec![0.0, 1.0, 1.0, 1.0, 1.0],
        2,
    );
    let t = fit_tree(json!({}), &d);
    assert!(!t.missing_left[0]);
}

#[test]
fn stopping_rules() {
    let x: Vec<f64> = (0..20).map(f64::from).collect();
    let y: Vec<f64> = (0..20).map(|i| f64::from(i % 2)).collect();
    let d = dataset(vec![x], y, 2);
    let depth = |t: &Tree| {
        fn go(t: &Tree, i: usize) -> usize {
            if t.left[i] < 0 {
                0
            } else {
                1 + go(t, t.left[i] as usize).max(go(t, t.right[i] as usize))
            }
        }
        go(t, 0)
    };
    assert!(depth(&fit_tree(json!({"max_depth": 3}), &d)) <= 3);
    let t = fit_tree(json!({"min_samples_leaf": 4}), &d);
    for i in (0..t.left.len()).filter(|&i| t.left[i] < 0) {
        let n = (0..20).filter(|&r| leaf_of(&t, &d.columns, r) == i).count();
        assert!(n >= 4, "leaf {i} has {n} rows");
    }
    assert_eq!(fit_tree(json!({"min_samples_split": 21}), &d).left.len(), 1);
    assert_eq!(
        fit_tree(json!({"min_impurity_decrease": 0.3}), &d)
            .left
            .len(),
        1
    );
    // Unlimited: alternating classes need a leaf per row.
    assert_eq!(fit_tree(json!({}), &d).left.len(), 39);
}

#[test]
fn regression_leaves_are_means_and_constant_features_give_a_leaf() {
    let d = dataset(
        vec![vec![0.0, 0.0, 1.0, 1.0]],
        vec![1.0, 3.0, 10.0, 14.0],
        0,
    );
    let t = fit_tree(json!({"max_depth": 1}), &d);
    assert_eq!(t.value[t.left[0] as usize], 2.0);
    assert_eq!(t.value[t.right[0] as usize], 12.0);
    let d = dataset(vec![vec![5.0; 4]], vec![1.0, 3.0, 10.0, 14.0], 0);
    let t = fit_tree(json!({}), &d);
    assert_eq!(t.left, vec![-1]);
    assert_eq!(t.value, vec![7.0]);
}

#[test]
fn multiclass_leaves_are_probability_vectors() {
    let d = dataset(vec![vec![1.0, 2.0, 3.0, 4.0]], vec![0.0, 1.0, 2.0, 2.0], 3);
    let body = DecisionTree::from_params(&json!({"max_depth": 1}))
        .unwrap()
        .fit(&d, None, &NoProgress)
        .unwrap();
    let (output, trees) = trees(body);
    assert_eq!(output, TreeOutput::Probabilities);
    let t = &trees[0];
    assert_eq!(t.leaf_vectors.len(), 3);
    for i in [t.left[0] as usize, t.right[0] as usize] {
        assert_eq!(t.leaf_vectors[i].len(), 3);
        assert!((t.leaf_vectors[i].iter().sum::<f64>() - 1.0).abs() < 1e-12);
    }
}

#[test]
fn entropy_and_gini_impurities() {
    assert!((cart::impurity(Criterion::Gini, &[4.0, 2.0, 2.0]) - 0.5).abs() < 1e-12);
    assert!((cart::impurity(Criterion::Entropy, &[4.0, 2.0, 2.0]) - 1.0).abs() < 1e-12);
    assert!((cart::impurity(Criterion::SquaredError, &[2.0, 2.0, 4.0]) - 1.0).abs() < 1e-12);
}

#[test]
fn infinite_feature_values_give_finite_thresholds() {
    let x = vec![f64::NEG_INFINITY, 0.0, 1.0, f64::INFINITY];
    let d = dataset(vec![x], vec![0.0, 1.0, 0.0, 1.0], 2);
    let t = fit_tree(json!({}), &d);
    assert!(t.threshold.iter().all(|v| v.is_finite()));
    for r in 0..4 {
        assert_eq!(predict(&t, &d, r), d.y[r]);
    }
}

#[test]
fn unusable_data_is_refused() {
    let tree = DecisionTree::from_params(&json!({})).unwrap();
    let err = tree
        .fit(
            &dataset(vec![vec![1.0, 2.0]], vec![1.0, 1.0], 2),
            None,
            &NoProgress,
        )
        .unwrap_err();
    assert!(err.to_string().contains("single class"), "{err}");
    let err = tree
        .fit(&dataset(vec![vec![]], vec![], 2), None, &NoProgress)
        .unwrap_err();
    assert!(err.to_string().contains("no rows"), "{err}");
    let err = tree
        .fit(
            &dataset(vec![vec![1.0]], vec![f64::NAN], 0),
            None,
            &NoProgress,
        )
        .unwrap_err();
    assert!(matches!(err, TrainError::Data { .. }), "{err}");
    let err = tree
        .fit(
            &dataset(vec![vec![1.0, 2.0]], vec![0.0, 5.0], 2),
            None,
            &NoProgress,
        )
        .unwrap_err();
    assert!(matches!(err, TrainError::Data { .. }), "{err}");
    let err = DecisionTree::from_params(&json!({"criterion": "gini"}))
        .unwrap()
        .fit(
            &dataset(vec![vec![1.0, 2.0]], vec![0.0, 5.0], 0),
            None,
            &NoProgress,
        )
        .unwrap_err();
    assert!(
        matches!(err, TrainError::Param { ref name, .. } if name == "criterion"),
        "{err}"
    );
}

#[test]
fn no_features_gives_a_single_leaf() {
    let d = dataset(vec![], vec![0.0, 1.0, 1.0], 2);
    let t = fit_tree(json!({}), &d);
    assert_eq!(t.left, vec![-1]);
    assert!((t.value[0] - 2.0 / 3.0).abs() < 1e-12);
}

#[test]
fn params_round_trip() {
    let rf = RandomForest::from_params(
        &json!({"n_estimators": 5, "max_features": "log2", "max_samples": 0.5, "seed": 3}),
    )
    .unwrap();
    let again = RandomForest::from_params(&rf.params()).unwrap();
    assert_eq!(again.params(), rf.params());
    let t = DecisionTree::from_params(&json!({"max_depth": 4})).unwrap();
    assert_eq!(
        DecisionTree::from_params(&t.params()).unwrap().params(),
        t.params()
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Any data: no panic, finite thresholds, and an unlimited tree reproduces the training labels of rows with
    /// distinct features.
    #[test]
    fn growth_never_panics_and_fits_training_rows(
        rows in proptest::collection::vec((proptest::option::of(-5i32..5), -3i32..6, 0u32..3), 1..40),
        max_features in 1usize..3,
        sets in any::<bool>(),
    ) {
        let x0: Vec<f64> = rows.iter().map(|r| r.0.map_or(f64::NAN, f64::from)).collect();
        // Feature 1 is categorical with 4 categories when `sets`; other values (negative, 4, 5) go right.
        let x1: Vec<f64> = rows.iter().map(|r| f64::from(r.1)).collect();
        let categories = [None, sets.then_some(4)];
        let y: Vec<u32> = rows.iter().map(|r| r.2).collect();
        let columns = vec![x0, x1];
        let problem = Problem { columns: &columns, labels: Labels::Classes { y: &y, k: 3 }, categories: &categories };
        let growth = Growth {
            criterion: Criterion::Entropy,
            max_depth: usize::MAX,
            min_samples_split: 2,
            min_samples_leaf: 1,
            max_features,
            min_impurity_decrease: 0.0,
        };
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let tree = cart::grow(&problem, &growth, &vec![1.0; rows.len()], &mut rng).unwrap();
        prop_assert!(tree.threshold.iter().all(|t| t.is_finite()));
        prop_assert!(tree.build_nodes().is_ok());
        // Values outside the categories are alike to a set split.
        let key = |r: &(Option<i32>, i32, u32)| (r.0, if sets && !(0..4).contains(&r.1) { -1 } else { r.1 });
        for i in 0..rows.len() {
            let duplicate = (0..rows.len()).any(|j| key(&rows[j]) == key(&rows[i]) && rows[j].2 != rows[i].2);
            if !duplicate {
                let leaf = leaf_of(&tree, &columns, i);
                prop_assert_eq!(tree.leaf_vectors[leaf][y[i] as usize], 1.0);
            }
        }
    }
}

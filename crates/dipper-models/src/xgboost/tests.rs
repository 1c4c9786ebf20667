//! Unit tests of the XGBoost loader on hand-written models, one semantic fact each.

use serde_json::{json, Value};

use super::load;
use crate::model::{Format, Model, ModelId, PredictionRef, Predictions};
use crate::LoadContext;

fn ctx() -> LoadContext {
    LoadContext {
        source: "t.json".into(),
        id: ModelId {
            name: "t".into(),
            format: Format::Xgboost,
            digest: "0".into(),
        },
    }
}

/// A stump on feature 0: `x < cond` goes left (leaf `l`), else right (leaf `r`).
fn stump(cond: f64, default_left: u8, l: f64, r: f64) -> Value {
    json!({
        "tree_param": {"num_nodes": "3", "size_leaf_vector": "1", "num_feature": "2"},
        "left_children": [1, -1, -1], "right_children": [2, -1, -1], "parents": [2147483647, 0, 0],
        "split_indices": [0, 0, 0], "split_conditions": [cond, l, r], "default_left": [default_left, 0, 0],
        "split_type": [0, 0, 0], "categories": [], "categories_nodes": [], "categories_segments": [],
        "categories_sizes": [], "base_weights": [0.0, l, r], "loss_changes": [1.0, 0.0, 0.0],
        "sum_hessian": [1.0, 1.0, 1.0], "id": 0
    })
}

fn model(objective: &str, base_score: &str, trees: Vec<Value>) -> Value {
    let n = trees.len();
    json!({
        "learner": {
            "attributes": {},
            "feature_names": ["a", "b"],
            "feature_types": ["float", "float"],
            "gradient_booster": {
                "name": "gbtree",
                "model": {
                    "gbtree_model_param": {"num_parallel_tree": "1", "num_trees": n.to_string()},
                    "iteration_indptr": (0..=n).collect::<Vec<_>>(),
                    "tree_info": vec![0; n],
                    "trees": trees
                }
            },
            "learner_model_param": {"base_score": base_score, "num_class": "0", "num_feature": "2",
                                    "num_target": "1", "boost_from_average": "1"},
            "objective": {"name": objective}
        },
        "version": [3, 2, 0]
    })
}

fn predict(m: &Value, row: [f64; 2]) -> f64 {
    let model = load(m.to_string().as_bytes(), &ctx()).unwrap();
    let mut out = Predictions::default();
    model.predict_one(&row, &mut out).unwrap();
    match out.get(0) {
        PredictionRef::Value(v) => v,
        PredictionRef::Class { probabilities, .. } => probabilities[1],
    }
}

#[test]
fn numerical_split_is_strict_less_than() {
    let m = model("reg:squarederror", "0", vec![stump(0.5, 0, 1.0, 2.0)]);
    assert_eq!(predict(&m, [0.25, 0.0]), 1.0);
    assert_eq!(predict(&m, [0.5, 0.0]), 2.0);
}

#[test]
fn inputs_are_compared_as_f32() {
    // 0.1 rounds to the same f32 as the threshold, so it is not less than it: right leaf, as in XGBoost.
    let m = model(
        "reg:squarederror",
        "0",
        vec![stump(0.1f32 as f64, 0, 1.0, 2.0)],
    );
    assert!(0.1 < 0.1f32 as f64);
    assert_eq!(predict(&m, [0.1, 0.0]), 2.0);
}

#[test]
fn missing_goes_to_the_default_child() {
    let left = model("reg:squarederror", "0", vec![stump(0.5, 1, 1.0, 2.0)]);
    let right = model("reg:squarederror", "0", vec![stump(0.5, 0, 1.0, 2.0)]);
    assert_eq!(predict(&left, [f64::NAN, 0.0]), 1.0);
    assert_eq!(predict(&right, [f64::NAN, 0.0]), 2.0);
}

#[test]
fn base_score_is_output_space() {
    // reg:squarederror: added as it is.
    let m = model(
        "reg:squarederror",
        "[2.5E-1]",
        vec![stump(0.5, 0, 1.0, 2.0)],
    );
    assert_eq!(predict(&m, [0.0, 0.0]), 1.25);
    // binary:logistic: base 0.8 is logit(0.8) in margin space; a zero leaf gives back p = 0.8.
    let m = model("binary:logistic", "8E-1", vec![stump(0.5, 0, 0.0, 0.0)]);
    assert!((predict(&m, [0.0, 0.0]) - 0.8).abs() < 1e-6);
    // count:poisson: base 3 is ln(3); exp(ln 3 + 0) = 3.
    let m = model("count:poisson", "3", vec![stump(0.5, 0, 0.0, 1.0)]);
    assert!((predict(&m, [0.0, 0.0]) - 3.0).abs() < 1e-5);
    assert!((predict(&m, [1.0, 0.0]) - 3.0 * std::f64::consts::E).abs() < 1e-5);
}

fn cat_tree(cats: &[i64], default_left: u8) -> Value {
    let mut t = stump(0.0, default_left, 1.0, 2.0);
    t["split_type"] = json!([1, 0, 0]);
    t["categories"] = json!(cats);
    t["categories_nodes"] = json!([0]);
    t["categories_segments"] = json!([0]);
    t["categories_sizes"] = json!([cats.len()]);
    t
}

#[test]
fn categories_in_the_set_go_right() {
    let mut m = model("reg:squarederror", "0", vec![cat_tree(&[1, 3, 40], 1)]);
    m["learner"]["feature_types"] = json!(["c", "float"]);
    for (x, want) in [
        (1.0, 2.0),
        (3.0, 2.0),
        (3.7, 2.0), // truncated to 3
        (40.0, 2.0),
        (0.0, 1.0),
        (2.0, 1.0),
        (41.0, 1.0),
        (1e9, 1.0),  // invalid category: left
        (-1.0, 1.0), // invalid category: left
        (f64::NAN, 1.0),
    ] {
        assert_eq!(predict(&m, [x, 0.0]), want, "category {x}");
    }
    let m = model("reg:squarederror", "0", vec![cat_tree(&[1], 0)]);
    assert_eq!(predict(&m, [f64::NAN, 0.0]), 2.0);
}

#[test]
fn categories_at_or_past_2_pow_24_never_match() {
    let m = model("reg:squarederror", "0", vec![cat_tree(&[5, 16_777_216], 1)]);
    assert_eq!(predict(&m, [16_777_216.0, 0.0]), 1.0);
    assert_eq!(predict(&m, [5.0, 0.0]), 2.0);
}

#[test]
fn dart_scales_each_tree_by_its_weight() {
    let mut m = model(
        "reg:squarederror",
        "0",
        vec![stump(0.5, 0, 1.0, 2.0), stump(0.5, 0, 10.0, 20.0)],
    );
    let gbtree = m["learner"]["gradient_booster"].take();
    m["learner"]["gradient_booster"] =
        json!({"name": "dart", "gbtree": gbtree, "weight_drop": [0.5, 0.25]});
    assert_eq!(predict(&m, [0.0, 0.0]), 0.5 + 2.5);
}

#[test]
fn best_iteration_limits_the_rounds() {
    let trees = vec![
        stump(0.5, 0, 1.0, 1.0),
        stump(0.5, 0, 10.0, 10.0),
        stump(0.5, 0, 100.0, 100.0),
    ];
    let mut m = model("reg:squarederror", "0", trees);
    assert_eq!(predict(&m, [0.0, 0.0]), 111.0);
    m["learner"]["attributes"]["best_iteration"] = json!("1");
    assert_eq!(predict(&m, [0.0, 0.0]), 11.0);
    // Without iteration_indptr (XGBoost < 2.0) rounds are num_parallel_tree * groups trees.
    m["learner"]["gradient_booster"]["model"]
        .as_object_mut()
        .unwrap()
        .remove("iteration_indptr");
    assert_eq!(predict(&m, [0.0, 0.0]), 11.0);
    m["learner"]["attributes"]["best_iteration"] = json!("7");
    assert_eq!(predict(&m, [0.0, 0.0]), 111.0);
}

#[test]
fn features_are_named_and_typed_from_the_file() {
    let mut m = model("reg:squarederror", "0", vec![stump(0.5, 0, 1.0, 2.0)]);
    m["learner"]["feature_types"] = json!(["int", "c"]);
    let model = load(m.to_string().as_bytes(), &ctx()).unwrap();
    let info = model.info();
    assert!(info.named_features);
    assert_eq!(info.features.names().collect::<Vec<_>>(), ["a", "b"]);
    assert!(matches!(
        info.features.get(1).kind,
        dipper_core::FeatureKind::Categorical { .. }
    ));
    let learner = m["learner"].as_object_mut().unwrap();
    learner.remove("feature_names");
    learner.remove("feature_types");
    let model = load(m.to_string().as_bytes(), &ctx()).unwrap();
    assert!(!model.info().named_features);
    assert_eq!(
        model.info().features.names().collect::<Vec<_>>(),
        ["f0", "f1"]
    );
}

#[test]
fn leaf_nodes_ignore_their_other_arrays() {
    // Leaves carry arbitrary split_indices / right_children: only left_children == -1 matters.
    let mut t = stump(0.5, 0, 1.0, 2.0);
    t["split_indices"] = json!([0, 99, 99]);
    t["right_children"] = json!([2, 12345, -1]);
    let m = model("reg:squarederror", "0", vec![t]);
    assert_eq!(predict(&m, [0.0, 0.0]), 1.0);
}

#[test]
fn errors_name_the_tree_and_field() {
    let mut t = stump(0.5, 0, 1.0, 2.0);
    t["split_type"] = json!([2, 0, 0]);
    let m = model("reg:squarederror", "0", vec![stump(0.5, 0, 1.0, 2.0), t]);
    let e = load(m.to_string().as_bytes(), &ctx())
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("t.json at learner.gradient_booster.model.trees[1].split_type[0]:"),
        "{e}"
    );
}

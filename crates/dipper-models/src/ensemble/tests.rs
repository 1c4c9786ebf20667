//! Unit tests of the compiled ensemble: every split kind, every missing rule, layout and validation.

use super::*;
use BuildNode::*;

/// One split on feature 0 with leaves yes=1.0, no=2.0.
fn stump(test: SplitTest, missing: Missing) -> TreeEnsemble {
    let mut b = EnsembleBuilder::new(1, 1);
    b.add_tree(
        &[
            Split {
                feature: 0,
                test,
                missing,
                yes: 1,
                no: 2,
            },
            Leaf(1.0),
            Leaf(2.0),
        ],
        0,
        0,
    )
    .unwrap();
    b.build().unwrap()
}

fn score(e: &TreeEnsemble, x: f64) -> f64 {
    let mut out = [0.0];
    e.predict_raw(&[x], &mut out);
    out[0]
}

#[test]
fn numeric_tests_and_boundaries() {
    let le = stump(SplitTest::Le(0.5), Missing::NanTo(Branch::No));
    assert_eq!(
        [score(&le, 0.5), score(&le, 0.51), score(&le, -1e300)],
        [1.0, 2.0, 1.0]
    );
    let lt = stump(SplitTest::Lt(0.5), Missing::NanTo(Branch::No));
    assert_eq!([score(&lt, 0.5), score(&lt, 0.49)], [2.0, 1.0]);
    let eq = stump(SplitTest::Eq(3.0), Missing::NanTo(Branch::No));
    assert_eq!([score(&eq, 3.0), score(&eq, 3.0001)], [1.0, 2.0]);
}

#[test]
fn missing_rules() {
    let nan = f64::NAN;
    assert_eq!(
        score(&stump(SplitTest::Le(0.5), Missing::NanTo(Branch::Yes)), nan),
        1.0
    );
    assert_eq!(
        score(&stump(SplitTest::Le(0.5), Missing::NanTo(Branch::No)), nan),
        2.0
    );
    // NaN read as zero: 0 <= 0.5 -> yes; 0 <= -1 -> no.
    assert_eq!(
        score(&stump(SplitTest::Le(0.5), Missing::NanAsZero), nan),
        1.0
    );
    assert_eq!(
        score(&stump(SplitTest::Le(-1.0), Missing::NanAsZero), nan),
        2.0
    );
    // Zero counts as missing: 0 would pass `<= 0.5` but goes to the default branch.
    let z = stump(SplitTest::Le(0.5), Missing::NanOrZeroTo(Branch::No));
    assert_eq!(
        [
            score(&z, 0.0),
            score(&z, -0.0),
            score(&z, nan),
            score(&z, 0.1)
        ],
        [2.0, 2.0, 2.0, 1.0]
    );
    let eq = stump(SplitTest::Eq(0.0), Missing::NanTo(Branch::Yes));
    assert_eq!(score(&eq, nan), 1.0);
}

#[test]
fn categorical_sets() {
    let c = stump(SplitTest::InSet(vec![1, 3, 40]), Missing::NanTo(Branch::No));
    let got: Vec<f64> = [
        1.0,
        3.0,
        40.0,
        3.9,
        0.0,
        2.0,
        41.0,
        1000.0,
        -1.0,
        -0.5,
        f64::NAN,
        f64::INFINITY,
    ]
    .iter()
    .map(|&x| score(&c, x))
    .collect();
    assert_eq!(
        got,
        [1.0, 1.0, 1.0, 1.0, 2.0, 2.0, 2.0, 2.0, 2.0, 2.0, 2.0, 2.0]
    );
    let empty = stump(SplitTest::InSet(vec![]), Missing::NanTo(Branch::No));
    assert_eq!(score(&empty, 0.0), 2.0);
    // LightGBM truncates first: -0.5 is category 0; -1 is negative.
    let t = stump(
        SplitTest::InSetTruncating(vec![0, 3]),
        Missing::NanTo(Branch::No),
    );
    let got: Vec<f64> = [0.0, -0.5, -0.999, -1.0, 3.5, f64::NAN]
        .iter()
        .map(|&x| score(&t, x))
        .collect();
    assert_eq!(got, [1.0, 1.0, 1.0, 2.0, 1.0, 2.0]);
    let s = stump(SplitTest::InSet(vec![0, 3]), Missing::NanTo(Branch::No));
    assert_eq!(score(&s, -0.5), 2.0);
}

#[test]
fn sums_groups_vectors_base_and_average() {
    // Two outputs: tree 0 adds to output 1, tree 1 adds a vector to both.
    let mut b = EnsembleBuilder::new(2, 2);
    b.add_tree(
        &[
            Leaf(10.0),
            Split {
                feature: 1,
                test: SplitTest::Le(0.0),
                missing: Missing::NanTo(Branch::No),
                yes: 0,
                no: 2,
            },
            Leaf(20.0),
        ],
        1,
        1,
    )
    .unwrap();
    b.add_tree(&[LeafVector(vec![1.0, 2.0])], 0, 0).unwrap();
    b.base_score(vec![0.5, -0.5]).average_over(2.0);
    let e = b.build().unwrap();
    let mut out = [0.0; 4];
    e.predict_raw_batch(&[0.0, -1.0, 0.0, 1.0], &mut out);
    assert_eq!(out, [1.0, 5.5, 1.0, 10.5]);
}

#[test]
fn layout_puts_yes_child_next() {
    // A depth-3 tree given in scrambled order still lays out depth-first.
    let nodes = [
        Leaf(4.0),
        Split {
            feature: 0,
            test: SplitTest::Le(2.0),
            missing: Missing::NanTo(Branch::No),
            yes: 3,
            no: 0,
        },
        Leaf(3.0),
        Leaf(1.0),
        Split {
            feature: 0,
            test: SplitTest::Le(1.0),
            missing: Missing::NanTo(Branch::No),
            yes: 5,
            no: 1,
        },
        Leaf(0.0),
    ];
    let mut b = EnsembleBuilder::new(1, 1);
    b.add_tree(&nodes, 4, 0).unwrap();
    let e = b.build().unwrap();
    assert_eq!(e.payload[1], 0.0);
    assert_eq!(e.nodes[0].no, 2);
    assert_eq!(e.trees[0].depth, 2);
    assert!(e.trees[0].simple);
    assert_eq!(
        [score(&e, 0.5), score(&e, 1.5), score(&e, 2.5)],
        [0.0, 1.0, 4.0]
    );
    let _ = nodes[2].clone();
}

#[test]
fn rounding_inputs_to_f32() {
    // 0.1f32 as f64 is 0.10000000149..; the f64 input 0.1 is below it but rounds to it.
    let t = 0.1f32 as f64;
    let mut b = EnsembleBuilder::new(1, 1);
    b.add_tree(
        &[
            Split {
                feature: 0,
                test: SplitTest::Lt(t),
                missing: Missing::NanTo(Branch::No),
                yes: 1,
                no: 2,
            },
            Leaf(1.0),
            Leaf(2.0),
        ],
        0,
        0,
    )
    .unwrap();
    let exact = b.clone().build().unwrap();
    b.round_inputs_to_f32(true);
    let rounded = b.build().unwrap();
    assert_eq!(score(&exact, 0.1), 1.0);
    assert_eq!(score(&rounded, 0.1), 2.0);
}

#[test]
fn invalid_trees_are_rejected_with_their_place() {
    let split = |yes, no| Split {
        feature: 0,
        test: SplitTest::Le(0.0),
        missing: Missing::NanAsZero,
        yes,
        no,
    };
    let mut b = EnsembleBuilder::new(1, 1);
    assert_eq!(
        b.add_tree(&[split(1, 5), Leaf(0.0)], 0, 0),
        Err(BuildError::ChildOutOfRange {
            tree: 0,
            node: 0,
            child: 5,
            len: 2
        })
    );
    assert_eq!(
        b.add_tree(&[split(0, 1), Leaf(0.0)], 0, 0),
        Err(BuildError::NotATree { tree: 0, node: 0 })
    );
    assert_eq!(
        b.add_tree(&[split(1, 1), Leaf(0.0)], 0, 0),
        Err(BuildError::NotATree { tree: 0, node: 1 })
    );
    let bad_feature = Split {
        feature: 3,
        test: SplitTest::Le(0.0),
        missing: Missing::NanAsZero,
        yes: 1,
        no: 2,
    };
    assert!(matches!(
        b.add_tree(&[bad_feature, Leaf(0.0), Leaf(0.0)], 0, 0),
        Err(BuildError::FeatureOutOfRange { .. })
    ));
    let nan = Split {
        feature: 0,
        test: SplitTest::Le(f64::NAN),
        missing: Missing::NanAsZero,
        yes: 1,
        no: 2,
    };
    assert!(matches!(
        b.add_tree(&[nan, Leaf(0.0), Leaf(0.0)], 0, 0),
        Err(BuildError::NanThreshold { .. })
    ));
    assert!(matches!(
        b.add_tree(&[LeafVector(vec![1.0, 2.0])], 0, 0),
        Err(BuildError::LeafWidth { .. })
    ));
    assert!(matches!(
        b.add_tree(&[Leaf(0.0)], 0, 1),
        Err(BuildError::OutputOutOfRange { .. })
    ));
    assert!(matches!(
        b.add_tree(&[Leaf(0.0)], 1, 0),
        Err(BuildError::RootOutOfRange { .. })
    ));
    // Failed trees leave nothing behind.
    b.add_tree(&[Leaf(7.0)], 0, 0).unwrap();
    let e = b.build().unwrap();
    assert_eq!((e.n_trees(), e.n_nodes()), (1, 1));
    assert_eq!(score(&e, 0.0), 7.0);
}

#[test]
fn deep_chains_are_bounded() {
    // Split i sends "yes" to split i+1 and "no" to its own leaf: a valid tree, but 5000 levels deep.
    let n = 5000;
    let mut nodes: Vec<BuildNode> = (0..n)
        .map(|i| Split {
            feature: 0,
            test: SplitTest::Le(0.0),
            missing: Missing::NanAsZero,
            yes: i + 1,
            no: n + 1 + i,
        })
        .collect();
    nodes.push(Leaf(0.0));
    nodes.extend((0..n).map(|i| Leaf(i as f64)));
    let mut b = EnsembleBuilder::new(1, 1);
    assert_eq!(
        b.add_tree(&nodes, 0, 0),
        Err(BuildError::TooDeep { tree: 0 })
    );
}

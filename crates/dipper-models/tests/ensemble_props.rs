//! Property tests of the compiled tree ensemble: on random trees (every split kind and missing rule) and random
//! rows (with NaN, zeros and negative zero), it must agree with a naive interpreter of the same trees, and batch
//! scoring must equal row-by-row scoring bit for bit.

use dipper_models::ensemble::{Branch, BuildNode, EnsembleBuilder, Missing, SplitTest};
use proptest::prelude::*;

const N_FEATURES: usize = 4;
const N_OUTPUTS: usize = 2;

/// A tree as nested splits, flattened into `BuildNode`s in a shuffled order by `flatten`.
#[derive(Debug, Clone)]
enum T {
    Leaf(f64),
    Vector(Vec<f64>),
    Split(usize, SplitTest, Missing, Box<T>, Box<T>),
}

fn test_strategy() -> impl Strategy<Value = SplitTest> {
    let t = prop_oneof![Just(0.0), Just(-1.5), Just(0.5), Just(2.0), -3.0..3.0f64];
    prop_oneof![
        t.clone().prop_map(SplitTest::Le),
        t.clone().prop_map(SplitTest::Lt),
        prop_oneof![Just(0.0), Just(1.0), Just(2.0)].prop_map(SplitTest::Eq),
        prop::collection::vec(0u32..70, 0..5).prop_map(SplitTest::InSet),
        prop::collection::vec(0u32..70, 0..5).prop_map(SplitTest::InSetTruncating),
    ]
}

fn missing_strategy() -> impl Strategy<Value = Missing> {
    let b = prop_oneof![Just(Branch::Yes), Just(Branch::No)];
    prop_oneof![
        b.clone().prop_map(Missing::NanTo),
        Just(Missing::NanAsZero),
        b.prop_map(Missing::NanOrZeroTo)
    ]
}

fn tree_strategy() -> impl Strategy<Value = T> {
    let leaf = prop_oneof![
        (-10.0..10.0f64).prop_map(T::Leaf),
        prop::collection::vec(-5.0..5.0f64, N_OUTPUTS).prop_map(T::Vector),
    ];
    leaf.prop_recursive(7, 64, 2, |inner| {
        (
            0..N_FEATURES,
            test_strategy(),
            missing_strategy(),
            inner.clone(),
            inner,
        )
            .prop_map(|(f, t, m, y, n)| T::Split(f, t, m, Box::new(y), Box::new(n)))
    })
}

/// Flattens with the root last and children in reverse order, so the builder must really re-lay the tree.
fn flatten(t: &T, out: &mut Vec<BuildNode>) -> usize {
    let node = match t {
        T::Leaf(v) => BuildNode::Leaf(*v),
        T::Vector(v) => BuildNode::LeafVector(v.clone()),
        T::Split(f, test, missing, y, n) => {
            let no = flatten(n, out);
            let yes = flatten(y, out);
            BuildNode::Split {
                feature: *f,
                test: test.clone(),
                missing: *missing,
                yes,
                no,
            }
        }
    };
    out.push(node);
    out.len() - 1
}

/// The semantics, written as plainly as possible.
fn reference(t: &T, row: &[f64], output: usize, acc: &mut [f64]) {
    match t {
        T::Leaf(v) => acc[output] += v,
        T::Vector(v) => acc.iter_mut().zip(v).for_each(|(a, v)| *a += v),
        T::Split(f, test, missing, y, n) => {
            let mut x = row[*f];
            let default = match missing {
                Missing::NanTo(b) if x.is_nan() => Some(*b),
                Missing::NanAsZero if x.is_nan() => {
                    x = 0.0;
                    None
                }
                Missing::NanOrZeroTo(b) if x.is_nan() || x.abs() <= 1e-35_f32 as f64 => Some(*b),
                _ => None,
            };
            let yes = match default {
                Some(b) => b == Branch::Yes,
                None => match test {
                    SplitTest::Le(t) => x <= *t,
                    SplitTest::Lt(t) => x < *t,
                    SplitTest::Eq(t) => x == *t,
                    SplitTest::InSet(cats) => {
                        x >= 0.0 && cats.contains(&(x.trunc() as u32)) && x < 1e9
                    }
                    SplitTest::InSetTruncating(cats) => {
                        x > -1.0 && cats.contains(&(x.trunc() as u32)) && x < 1e9
                    }
                },
            };
            reference(if yes { y } else { n }, row, output, acc)
        }
    }
}

fn value_strategy() -> impl Strategy<Value = f64> {
    prop_oneof![
        Just(f64::NAN),
        Just(0.0),
        Just(-0.0),
        Just(1e-40),
        Just(1.0),
        Just(2.0),
        -4.0..70.0f64
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn compiled_ensemble_matches_reference(
        trees in prop::collection::vec((tree_strategy(), 0..N_OUTPUTS), 1..6),
        rows in prop::collection::vec(prop::collection::vec(value_strategy(), N_FEATURES), 1..20),
        base in prop::collection::vec(-1.0..1.0f64, N_OUTPUTS),
    ) {
        let mut b = EnsembleBuilder::new(N_FEATURES, N_OUTPUTS);
        for (t, output) in &trees {
            let mut nodes = Vec::new();
            let root = flatten(t, &mut nodes);
            b.add_tree(&nodes, root, *output).unwrap();
        }
        b.base_score(base.clone());
        let e = b.build().unwrap();
        let flat: Vec<f64> = rows.concat();
        let mut batch = vec![0.0; rows.len() * N_OUTPUTS];
        e.predict_raw_batch(&flat, &mut batch);
        for (i, row) in rows.iter().enumerate() {
            let mut want = vec![0.0; N_OUTPUTS];
            for (t, output) in &trees {
                reference(t, row, *output, &mut want);
            }
            for (w, b) in want.iter_mut().zip(&base) {
                *w += b;
            }
            let mut one = vec![0.0; N_OUTPUTS];
            e.predict_raw(row, &mut one);
            prop_assert_eq!(&one[..], &batch[i * N_OUTPUTS..(i + 1) * N_OUTPUTS], "batch vs single, row {}", i);
            for (g, w) in one.iter().zip(&want) {
                prop_assert!((g - w).abs() <= 1e-12 * w.abs().max(1.0), "row {:?}: {} vs {}", row, g, w);
            }
        }
    }
}

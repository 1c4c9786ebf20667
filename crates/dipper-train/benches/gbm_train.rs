//! Training speed of gradient boosting against the bar: 200k rows x 30 features, binary, 100
//! iterations of 31 leaves on 2 threads within 1.5x LightGBM's time. The data is generated here by a
//! splitmix64 formula that `tools/bench/lightgbm_train_reference.py` reproduces bit for bit, and that script
//! times LightGBM (num_threads=2, the same parameters) on it, binning included as here.
//!
//! Run: `cargo bench -p dipper-train --bench gbm_train` and
//! `/root/.cache/venv-ref/bin/python tools/bench/lightgbm_train_reference.py`.

use criterion::{criterion_group, criterion_main, Criterion};
use dipper_core::FeatureSchema;
use dipper_models::ClassLabel;
use dipper_train::gbm::Gbm;
use dipper_train::{Algorithm, Dataset, NoProgress, Target};

const ROWS: usize = 200_000;
const FEATURES: usize = 30;

fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Uniform in [0, 1) from the counter `x`.
fn uniform(x: u64) -> f64 {
    (splitmix64(x) >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

/// Features uniform in [-2, 2); the label is drawn from a logistic model with interactions.
pub fn make_data() -> Dataset {
    let mut columns = vec![vec![0.0; ROWS]; FEATURES];
    for (j, c) in columns.iter_mut().enumerate() {
        for (i, v) in c.iter_mut().enumerate() {
            *v = (uniform((i * FEATURES + j) as u64) - 0.5) * 4.0;
        }
    }
    let y = (0..ROWS)
        .map(|i| {
            let x = |j: usize| columns[j][i];
            let logit = x(0) - 0.8 * x(1) + 0.6 * x(2) * x(3) + 0.5 * x(4) * x(4) - 1.0
                + 0.4 * x(5)
                - 0.3 * x(6) * x(7)
                + (x(8) > 0.5) as u8 as f64
                + 0.2 * x(9);
            let p = 1.0 / (1.0 + (-logit).exp());
            (uniform((1u64 << 40) + i as u64) < p) as u8 as f64
        })
        .collect();
    let names: Vec<String> = (0..FEATURES).map(|j| format!("x{j}")).collect();
    Dataset {
        schema: FeatureSchema::numeric(&names).unwrap(),
        columns,
        y,
        target: Target::Classification {
            classes: vec![ClassLabel::Int(0), ClassLabel::Int(1)],
        },
        label: "y".into(),
    }
}

fn bench(c: &mut Criterion) {
    let data = make_data();
    let gbm = Gbm::from_params(&serde_json::json!({
        "num_iterations": 100, "num_leaves": 31, "learning_rate": 0.1, "min_data_in_leaf": 20,
        "lambda_l2": 0.0, "max_bin": 255, "seed": 0
    }))
    .unwrap();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .unwrap();
    let mut g = c.benchmark_group("gbm_train");
    g.sample_size(10);
    g.bench_function("binary_200k_x30_100_iterations_2_threads", |b| {
        b.iter(|| pool.install(|| gbm.fit(&data, None, &NoProgress).unwrap()))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);

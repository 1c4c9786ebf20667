//! Guards scoring speed of the compiled tree ensemble on the reference model: LightGBM binary, 100 trees,
//! 31 leaves, 30 features (`fixtures/bench`, made by `tools/bench/make_bench_model.py`, which also prints
//! LightGBM's own speed on the same rows). Target: at least 3x faster per row than LightGBM's batch predict,
//! one thread. Also guards the ONNX path (tract plus dipper's tree operator) on the scikit-learn gradient
//! boosting export in `fixtures/interop/fraud_gbm_onnx`. Run: `cargo bench -p dipper-models --bench predict`.

use std::path::Path;
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use dipper_core::{MissingPolicy, RowDecoder};
use dipper_models::{Model, Predictions};

fn setup() -> (Arc<dyn Model>, Vec<f64>, Vec<String>) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/bench");
    let model =
        dipper_models::load(&dir.join("lgbm_100x31x30.txt"), None).expect("bench model loads");
    let lines: Vec<String> = std::fs::read_to_string(dir.join("rows.jsonl"))
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    let mut dec = RowDecoder::new(model.info().features.clone(), MissingPolicy::Allow);
    let nf = model.info().features.len();
    let mut rows = vec![0.0; lines.len() * nf];
    for (line, row) in lines.iter().zip(rows.chunks_exact_mut(nf)) {
        dec.decode_json(line.as_bytes(), row).unwrap();
    }
    (model, rows, lines)
}

fn bench(c: &mut Criterion) {
    let (model, rows, lines) = setup();
    let nf = model.info().features.len();
    let n = rows.len() / nf;
    let mut out = Predictions::default();

    let mut g = c.benchmark_group("lgbm_100x31x30");
    g.throughput(Throughput::Elements(n as u64));
    g.bench_function("batch_1000_rows", |b| {
        b.iter(|| model.predict_batch(&rows, &mut out).unwrap())
    });
    g.bench_function("single_row_x1000", |b| {
        b.iter(|| {
            for row in rows.chunks_exact(nf) {
                model.predict_one(row, &mut out).unwrap();
            }
        })
    });
    g.bench_function("json_decode_and_score_x1000", |b| {
        let mut dec = RowDecoder::new(model.info().features.clone(), MissingPolicy::Allow);
        let mut row = vec![0.0; nf];
        b.iter_batched_ref(
            || (),
            |_| {
                for line in &lines {
                    dec.decode_json(line.as_bytes(), &mut row).unwrap();
                    model.predict_one(&row, &mut out).unwrap();
                }
            },
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

/// The scikit-learn GradientBoostingClassifier export (ONNX), 180 rows of 12 features.
fn bench_onnx(c: &mut Criterion) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/interop/fraud_gbm_onnx");
    let model = dipper_models::load(&dir.join("model.onnx"), None).expect("ONNX model loads");
    let nf = model.info().features.len();
    let case: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("case.json")).unwrap()).unwrap();
    let names: Vec<&str> = case["features"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    let schema = model.info().features.renamed(&names).unwrap();
    let mut dec = RowDecoder::new(schema, MissingPolicy::Reject);
    let mut rows = Vec::new();
    for line in std::fs::read_to_string(dir.join("input.jsonl"))
        .unwrap()
        .lines()
    {
        let mut row = vec![0.0; nf];
        dec.decode_json(line.as_bytes(), &mut row).unwrap();
        rows.extend(row);
    }
    assert_eq!(rows.len() % nf, 0);
    let mut out = Predictions::default();
    let mut g = c.benchmark_group("onnx_sklearn_gbm");
    g.throughput(Throughput::Elements((rows.len() / nf) as u64));
    g.bench_function("batch_180_rows", |b| {
        b.iter(|| model.predict_batch(&rows, &mut out).unwrap())
    });
    g.bench_function("single_row_x180", |b| {
        b.iter(|| {
            for row in rows.chunks_exact(nf) {
                model.predict_one(row, &mut out).unwrap();
            }
        })
    });
    g.finish();
}

criterion_group!(benches, bench, bench_onnx);
criterion_main!(benches);

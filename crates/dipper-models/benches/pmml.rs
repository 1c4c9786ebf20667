//! Guards PMML scoring speed on scikit-learn's gradient boosting export (`fixtures/interop/fraud_gbm_pmml`: a
//! modelChain of a 50-tree sum, compiled into the tree-ensemble form, and a logit RegressionModel), per row as a
//! streaming scorer calls it, and decode + score from a JSON line as `dipper predict` does. Target: at least 50x
//! faster per row than PMML4S (pypmml) on the same file and rows; its figures come from
//! `tools/bench/pypmml_reference.py fixtures/interop/fraud_gbm_pmml/model.pmml fixtures/interop/fraud_gbm_pmml/input.jsonl`.
//! Also the interpreted path alone (the same rows with one input missing, which the compiled form hands to the
//! interpreter). Run: `cargo bench -p dipper-models --bench pmml`.

use std::path::Path;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use dipper_core::{MissingPolicy, RowDecoder};
use dipper_models::Predictions;

fn bench(c: &mut Criterion) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/interop/fraud_gbm_pmml");
    let model = dipper_models::load(&dir.join("model.pmml"), None).expect("fixture loads");
    let lines: Vec<String> = std::fs::read_to_string(dir.join("input.jsonl"))
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    let nf = model.info().features.len();
    let mut dec = RowDecoder::new(model.info().features.clone(), MissingPolicy::Allow);
    let mut rows = vec![0.0; lines.len() * nf];
    for (line, row) in lines.iter().zip(rows.chunks_exact_mut(nf)) {
        dec.decode_json(line.as_bytes(), row).unwrap();
    }
    let n = lines.len();
    let mut out = Predictions::default();

    let mut g = c.benchmark_group("pmml_fraud_gbm");
    g.throughput(Throughput::Elements(n as u64));
    g.bench_function("per_row", |b| {
        b.iter(|| {
            for row in rows.chunks_exact(nf) {
                model.predict_one(row, &mut out).unwrap();
            }
        })
    });
    g.bench_function("batch", |b| {
        b.iter(|| model.predict_batch(&rows, &mut out).unwrap())
    });
    g.bench_function("decode_and_score_per_row", |b| {
        let mut row = vec![0.0; nf];
        b.iter(|| {
            for line in &lines {
                dec.decode_json(line.as_bytes(), &mut row).unwrap();
                model.predict_one(&row, &mut out).unwrap();
            }
        })
    });
    // One input missing in every row: the interpreter scores it (and under nullPrediction, a tree that tests the
    // missing field ends the row with no prediction).
    let mut gappy = rows.clone();
    for row in gappy.chunks_exact_mut(nf) {
        row[nf - 1] = f64::NAN;
    }
    g.bench_function("per_row_interpreted", |b| {
        b.iter(|| {
            for row in gappy.chunks_exact(nf) {
                // Rows the trees cannot score without the missing field have no prediction.
                let _ = model.predict_one(row, &mut out);
            }
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);

//! Produce and consume throughput of the embedded log: 100-byte records,
//! produced in transactions of 500 (one journal fsync per transaction).

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use dipper_log::{Log, Options, Record};

const TXN: usize = 500;

fn records() -> Vec<Record> {
    (0..TXN)
        .map(|i| Record::keyed((i as u64).to_le_bytes(), vec![b'x'; 100], i as i64))
        .collect()
}

fn produce(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), Options::default()).unwrap();
    log.create_topic("bench", 1).unwrap();
    let batch = records();
    let mut g = c.benchmark_group("produce");
    g.throughput(Throughput::Elements(TXN as u64));
    g.sample_size(20);
    g.bench_function("txn_of_500_x_100B", |b| {
        b.iter(|| {
            let mut txn = log.begin();
            for r in &batch {
                txn.append("bench", 0, r.clone()).unwrap();
            }
            log.commit(txn).unwrap();
        })
    });
    g.finish();
}

fn consume(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), Options::default()).unwrap();
    log.create_topic("bench", 1).unwrap();
    let batch = records();
    for _ in 0..200 {
        log.append("bench", 0, batch.clone()).unwrap();
    }
    let total = log.high_watermark("bench", 0).unwrap();
    let mut g = c.benchmark_group("consume");
    g.throughput(Throughput::Elements(total));
    g.sample_size(10);
    g.bench_function("read_100k_x_100B_in_500s", |b| {
        b.iter(|| {
            let mut off = 0;
            while off < total {
                let got = log.read("bench", 0, off, TXN).unwrap();
                off = got.last().unwrap().offset + 1;
            }
        })
    });
    g.finish();
}

/// Recovery cost: open scans and CRC-checks every committed segment.
fn reopen(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let total = {
        let log = Log::open(dir.path(), Options::default()).unwrap();
        log.create_topic("bench", 1).unwrap();
        let batch = records();
        for _ in 0..200 {
            log.append("bench", 0, batch.clone()).unwrap();
        }
        log.high_watermark("bench", 0).unwrap()
    };
    let mut g = c.benchmark_group("open");
    g.throughput(Throughput::Elements(total));
    g.sample_size(10);
    g.bench_function("recover_100k_x_100B", |b| {
        b.iter(|| Log::open(dir.path(), Options::default()).unwrap())
    });
    g.finish();
}

criterion_group!(benches, produce, consume, reopen);
criterion_main!(benches);

//! Produce and consume throughput of the embedded log: 100-byte records,
//! produced in transactions of 500 (a segment fsync and a journal fsync per
//! transaction).
//!
//! `produce/*` and `consume/*` run in the system temp directory, so `produce`
//! measures mostly the syscalls of a commit (two fdatasyncs, segment and
//! journal writes): on the 2-core development VM, 0.25-1 ms per commit on its
//! ext4 and still 0.1-0.25 ms on tmpfs, whose fdatasync there costs 50-175 us,
//! i.e. 0.2-2 us per record at 500 records per commit, whatever the records
//! cost. `*_ram/*` run the same on `/dev/shm` when there is one. The log's own
//! work per record (encoding, CRC, copying into the page cache) is about
//! 0.1 us of user and 0.1 us of system CPU for these records. `borrowed` variants append with
//! `WriteBatch`/`Txn::append_ref` and read with `Log::read_with`, as the
//! embedded transport does; the others clone owned `Record`s in and get owned
//! `StoredRecord`s out.

use std::path::Path;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use dipper_log::{Log, Options, Record, WriteBatch};

const TXN: usize = 500;

fn records() -> Vec<Record> {
    (0..TXN)
        .map(|i| Record::keyed((i as u64).to_le_bytes(), vec![b'x'; 100], i as i64))
        .collect()
}

fn disk_dir() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

/// RAM-backed when `/dev/shm` exists.
fn ram_dir() -> tempfile::TempDir {
    let shm = Path::new("/dev/shm");
    if shm.is_dir() {
        if let Ok(d) = tempfile::tempdir_in(shm) {
            return d;
        }
    }
    tempfile::tempdir().unwrap()
}

fn produce_in(c: &mut Criterion, group: &str, dir: fn() -> tempfile::TempDir) {
    let dir = dir();
    let log = Log::open(dir.path(), Options::default()).unwrap();
    log.create_topic("bench", 1).unwrap();
    let batch = records();
    let mut g = c.benchmark_group(group);
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
    let mut wb = WriteBatch::new();
    g.bench_function("txn_of_500_x_100B_borrowed", |b| {
        b.iter(|| {
            for r in &batch {
                wb.append("bench", 0, r.as_ref(), []).unwrap();
            }
            log.commit_batch(&mut wb).unwrap();
        })
    });
    g.finish();
}

fn produce(c: &mut Criterion) {
    produce_in(c, "produce", disk_dir);
    produce_in(c, "produce_ram", ram_dir);
}

fn consume_in(c: &mut Criterion, group: &str, dir: fn() -> tempfile::TempDir) {
    let dir = dir();
    let log = Log::open(dir.path(), Options::default()).unwrap();
    log.create_topic("bench", 1).unwrap();
    let batch = records();
    for _ in 0..200 {
        log.append("bench", 0, batch.clone()).unwrap();
    }
    let total = log.high_watermark("bench", 0).unwrap();
    let mut g = c.benchmark_group(group);
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
    g.bench_function("read_100k_x_100B_in_500s_borrowed", |b| {
        b.iter(|| {
            let (mut off, mut bytes) = (0, 0);
            while off < total {
                log.read_with("bench", 0, off, TXN, |r| {
                    bytes += r.value.map_or(0, <[u8]>::len);
                    off = r.offset + 1;
                })
                .unwrap();
            }
            bytes
        })
    });
    g.finish();
}

fn consume(c: &mut Criterion) {
    consume_in(c, "consume", disk_dir);
    consume_in(c, "consume_ram", ram_dir);
}

/// Recovery cost: open scans and CRC-checks every committed segment.
fn reopen(c: &mut Criterion) {
    let dir = disk_dir();
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

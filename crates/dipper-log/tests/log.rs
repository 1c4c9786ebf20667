//! Functional tests: round trips, segment rolls, reopen, transactions,
//! topics, locking.

use dipper_log::{Log, LogError, Options, Record};

fn small() -> Options {
    Options {
        segment_bytes: 1024,
        index_interval_bytes: 128,
        journal_compact_bytes: 2048,
    }
}

fn rec(i: u64) -> Record {
    Record {
        key: (!i.is_multiple_of(3)).then(|| format!("k{i}").into_bytes()),
        value: (!i.is_multiple_of(5)).then(|| vec![i as u8; (i % 97) as usize]),
        headers: (0..i % 3)
            .map(|h| (format!("h{h}"), vec![h as u8; 3]))
            .collect(),
        timestamp: 1_700_000_000_000 + i as i64,
    }
}

fn segment_count(dir: &std::path::Path, topic: &str, p: u32) -> usize {
    std::fs::read_dir(dir.join("topics").join(topic).join(p.to_string()))
        .unwrap()
        .count()
}

#[test]
fn round_trip_across_segment_rolls_with_dense_offsets() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), small()).unwrap();
    log.create_topic("t", 2).unwrap();
    for chunk in 0..20u64 {
        let first = log
            .append("t", 0, (chunk * 10..chunk * 10 + 10).map(rec))
            .unwrap();
        assert_eq!(first, chunk * 10);
    }
    assert!(
        segment_count(dir.path(), "t", 0) > 5,
        "segments should roll"
    );
    // Segment files are named by the 20-digit offset of their first record.
    let pdir = dir.path().join("topics/t/0");
    let mut names: Vec<String> = std::fs::read_dir(&pdir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    for name in &names {
        let base: u64 = name.strip_suffix(".seg").unwrap().parse().unwrap();
        assert_eq!(name.len(), 24, "{name}");
        assert_eq!(log.read("t", 0, base, 1).unwrap()[0].offset, base);
        assert!(std::fs::metadata(pdir.join(name)).unwrap().len() < 1024 + 200);
    }
    assert_eq!(log.high_watermark("t", 0).unwrap(), 200);
    assert_eq!(log.high_watermark("t", 1).unwrap(), 0);
    let all = log.read("t", 0, 0, usize::MAX).unwrap();
    assert_eq!(all.len(), 200);
    for (i, r) in all.iter().enumerate() {
        assert_eq!(r.offset, i as u64);
        assert_eq!(r.to_record(), rec(i as u64));
    }
    // Reads from every offset, with limits, land on the right record.
    for from in 0..205u64 {
        let got = log.read("t", 0, from, 7).unwrap();
        let want: Vec<u64> = (from..(from + 7).min(200)).collect();
        assert_eq!(got.iter().map(|r| r.offset).collect::<Vec<_>>(), want);
    }
}

#[test]
fn reopen_preserves_records_topics_and_positions() {
    let dir = tempfile::tempdir().unwrap();
    {
        let log = Log::open(dir.path(), small()).unwrap();
        log.create_topic("a", 3).unwrap();
        log.create_topic("b.c_d-e", 1).unwrap();
        for i in 0..60 {
            let mut txn = log.begin();
            txn.append("a", (i % 3) as u32, rec(i)).unwrap();
            txn.append("b.c_d-e", 0, rec(i + 1000)).unwrap();
            txn.set_position("g", "a", (i % 3) as u32, i / 3).unwrap();
            log.commit(txn).unwrap();
        }
    }
    let log = Log::open(dir.path(), small()).unwrap();
    assert_eq!(log.partitions("a").unwrap(), 3);
    assert_eq!(log.partitions("b.c_d-e").unwrap(), 1);
    assert_eq!(log.high_watermark("b.c_d-e", 0).unwrap(), 60);
    for p in 0..3 {
        assert_eq!(log.high_watermark("a", p).unwrap(), 20);
        assert_eq!(log.committed("g", "a", p).unwrap(), Some(19));
        let got = log.read("a", p, 0, 100).unwrap();
        for (j, r) in got.iter().enumerate() {
            assert_eq!(r.to_record(), rec(j as u64 * 3 + p as u64));
        }
    }
    assert_eq!(log.committed("other", "a", 0).unwrap(), None);
    // The journal was compacted along the way and still replays.
    assert!(
        std::fs::metadata(dir.path().join("commits.journal"))
            .unwrap()
            .len()
            <= 4096
    );
    // And appends continue at the right offsets after reopen.
    assert_eq!(log.append("a", 1, [rec(7)]).unwrap(), 20);
}

#[test]
fn positions_commit_atomically_with_appends() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), small()).unwrap();
    log.create_topic("in", 1).unwrap();
    log.create_topic("out", 1).unwrap();
    log.append("in", 0, (0..10).map(rec)).unwrap();
    let mut txn = log.begin();
    let o = txn.append("out", 0, rec(1)).unwrap();
    txn.set_position("scorer", "in", 0, 10).unwrap();
    assert_eq!(o, 0);
    // Before commit: nothing visible.
    assert_eq!(log.high_watermark("out", 0).unwrap(), 0);
    assert_eq!(log.committed("scorer", "in", 0).unwrap(), None);
    log.commit(txn).unwrap();
    assert_eq!(log.high_watermark("out", 0).unwrap(), 1);
    assert_eq!(log.committed("scorer", "in", 0).unwrap(), Some(10));
    // A position past the end is refused, and the refused txn changes nothing.
    let mut txn = log.begin();
    txn.append("out", 0, rec(2)).unwrap();
    txn.set_position("scorer", "in", 0, 11).unwrap();
    assert!(matches!(log.commit(txn), Err(LogError::InvalidArgument(_))));
    assert_eq!(log.high_watermark("out", 0).unwrap(), 1);
}

#[test]
fn dropped_and_uncommitted_txns_are_invisible_after_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let log = Log::open(dir.path(), small()).unwrap();
        log.create_topic("t", 1).unwrap();
        log.append("t", 0, (0..5).map(rec)).unwrap();
        let mut txn = log.begin();
        txn.append("t", 0, rec(99)).unwrap();
        txn.set_position("g", "t", 0, 5).unwrap();
        drop(txn);
    }
    // Simulate records written past the committed end by a commit that never
    // reached the journal.
    let seg = dir.path().join("topics/t/0/00000000000000000000.seg");
    let mut bytes = std::fs::read(&seg).unwrap();
    let committed_len = bytes.len();
    let head = bytes[..40].to_vec();
    bytes.extend_from_slice(&head);
    std::fs::write(&seg, &bytes).unwrap();
    let log = Log::open(dir.path(), small()).unwrap();
    assert_eq!(log.high_watermark("t", 0).unwrap(), 5);
    assert_eq!(log.committed("g", "t", 0).unwrap(), None);
    assert_eq!(
        std::fs::metadata(&seg).unwrap().len() as usize,
        committed_len
    );
}

#[test]
fn conflicting_txns_on_one_partition() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), small()).unwrap();
    log.create_topic("t", 1).unwrap();
    let mut a = log.begin();
    let mut b = log.begin();
    assert_eq!(a.append("t", 0, rec(1)).unwrap(), 0);
    assert_eq!(b.append("t", 0, rec(2)).unwrap(), 0);
    log.commit(a).unwrap();
    assert!(matches!(log.commit(b), Err(LogError::Conflict { .. })));
    assert_eq!(log.read("t", 0, 0, 10).unwrap().len(), 1);
}

#[test]
fn topics_are_validated_and_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), small()).unwrap();
    log.create_topic("ok", 2).unwrap();
    log.create_topic("ok", 2).unwrap();
    assert!(matches!(
        log.create_topic("ok", 3),
        Err(LogError::PartitionCountMismatch { existing: 2, .. })
    ));
    for bad in ["", ".", "..", "a/b", "sp ace", "ü", &"x".repeat(250)] {
        assert!(
            matches!(log.create_topic(bad, 1), Err(LogError::InvalidTopic { .. })),
            "{bad:?}"
        );
    }
    log.create_topic(&"x".repeat(249), 1).unwrap();
    assert!(matches!(
        log.create_topic("z", 0),
        Err(LogError::InvalidArgument(_))
    ));
    assert!(matches!(
        log.high_watermark("nope", 0),
        Err(LogError::UnknownTopic(_))
    ));
    assert!(matches!(
        log.read("ok", 2, 0, 1),
        Err(LogError::UnknownPartition { partition: 2, .. })
    ));
}

#[test]
fn second_open_of_same_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), small()).unwrap();
    let err = Log::open(dir.path(), small())
        .err()
        .expect("second open must fail");
    assert!(matches!(err, LogError::Locked(_)), "{err}");
    assert!(err.to_string().contains("already open"));
    drop(log);
    Log::open(dir.path(), small()).unwrap();
}

#[test]
fn log_is_send_and_sync_and_concurrent_appends_stay_dense() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Log>();
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), small()).unwrap();
    log.create_topic("t", 1).unwrap();
    std::thread::scope(|s| {
        for t in 0..4u64 {
            let log = &log;
            s.spawn(move || {
                let mut done = 0;
                while done < 25 {
                    match log.append("t", 0, [rec(t * 100 + done)]) {
                        Ok(_) => done += 1,
                        Err(LogError::Conflict { .. }) => {}
                        Err(e) => panic!("{e}"),
                    }
                }
            });
        }
    });
    let all = log.read("t", 0, 0, 1000).unwrap();
    assert_eq!(all.len(), 100);
    assert!(all.iter().enumerate().all(|(i, r)| r.offset == i as u64));
}

#[test]
fn corrupt_committed_data_is_an_error_naming_file_and_offset() {
    let dir = tempfile::tempdir().unwrap();
    {
        let log = Log::open(dir.path(), small()).unwrap();
        log.create_topic("t", 1).unwrap();
        log.append("t", 0, (0..5).map(rec)).unwrap();
    }
    let seg = dir.path().join("topics/t/0/00000000000000000000.seg");
    let mut bytes = std::fs::read(&seg).unwrap();
    let n = bytes.len();
    bytes[n - 3] ^= 0xff;
    std::fs::write(&seg, &bytes).unwrap();
    let err = Log::open(dir.path(), small())
        .err()
        .expect("corruption detected");
    let msg = err.to_string();
    assert!(matches!(err, LogError::Corrupt { .. }), "{msg}");
    assert!(
        msg.contains("00000000000000000000.seg") && msg.contains("at byte"),
        "{msg}"
    );
}

#[test]
fn oversized_records_are_refused_before_commit() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), small()).unwrap();
    log.create_topic("t", 1).unwrap();
    let mut txn = log.begin();
    let big = Record::value(vec![0u8; dipper_log::MAX_RECORD_BYTES + 1], 0);
    assert!(matches!(
        txn.append("t", 0, big),
        Err(LogError::InvalidArgument(_))
    ));
    assert!(txn.is_empty());
}

#[test]
fn concurrent_readers_never_see_part_of_a_txn() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), small()).unwrap();
    log.create_topic("t", 2).unwrap();
    let done = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        s.spawn(|| {
            for i in 0..200u64 {
                let mut txn = log.begin();
                txn.append("t", 0, rec(i)).unwrap();
                txn.append("t", 1, rec(i)).unwrap();
                txn.set_position("g", "t", 0, i + 1).unwrap();
                log.commit(txn).unwrap();
            }
            done.store(true, std::sync::atomic::Ordering::SeqCst);
        });
        s.spawn(|| {
            while !done.load(std::sync::atomic::Ordering::SeqCst) {
                // Positions are installed with the records: never ahead of them.
                let pos = log.committed("g", "t", 0).unwrap().unwrap_or(0);
                let h0 = log.high_watermark("t", 0).unwrap();
                let h1 = log.high_watermark("t", 1).unwrap();
                assert!(pos <= h0 && h0 <= h1, "pos {pos} h0 {h0} h1 {h1}");
                let got = log.read("t", 1, 0, usize::MAX).unwrap();
                assert!(got.len() as u64 >= h1);
                assert!(got
                    .iter()
                    .enumerate()
                    .all(|(i, r)| r.to_record() == rec(i as u64)));
            }
        });
    });
    assert_eq!(log.high_watermark("t", 1).unwrap(), 200);
}

#[test]
fn tiny_compaction_threshold_neither_loses_state_nor_rewrites_every_commit() {
    let dir = tempfile::tempdir().unwrap();
    let o = Options {
        journal_compact_bytes: 1,
        ..small()
    };
    let journal = dir.path().join("commits.journal");
    let mut sizes = Vec::new();
    {
        let log = Log::open(dir.path(), o.clone()).unwrap();
        log.create_topic("t", 4).unwrap();
        for i in 0..100u64 {
            let mut txn = log.begin();
            txn.append("t", (i % 4) as u32, rec(i)).unwrap();
            txn.set_position(&format!("g{}", i % 7), "t", (i % 4) as u32, i / 4)
                .unwrap();
            log.commit(txn).unwrap();
            sizes.push(std::fs::metadata(&journal).unwrap().len());
        }
    }
    // Some commits appended without compacting, and compaction kept it bounded.
    assert!(sizes.windows(2).any(|w| w[1] > w[0]));
    assert!(sizes.windows(2).any(|w| w[1] < w[0]));
    let log = Log::open(dir.path(), o).unwrap();
    for p in 0..4 {
        assert_eq!(log.high_watermark("t", p).unwrap(), 25);
    }
    let last = (0..100u64)
        .filter(|i| i % 7 == 1 && i % 4 == 1)
        .max()
        .unwrap();
    assert_eq!(log.committed("g1", "t", 1).unwrap(), Some(last / 4));
}

//! The borrowed-record APIs: `WriteBatch` / `Log::commit_batch`, `Txn::append_ref` and
//! `Log::read_with`.

use dipper_log::{Log, LogError, Options, Record, RecordRef, WriteBatch};

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

#[test]
fn write_batch_commits_at_the_current_ends_and_is_reused() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), small()).unwrap();
    log.create_topic("t", 2).unwrap();
    log.create_topic("in", 1).unwrap();
    log.append("in", 0, (0..10).map(rec)).unwrap();
    let mut batch = WriteBatch::new();
    let mut next = 0u64;
    for round in 0..6u64 {
        // Someone else appends in between: a batch goes after it, no conflict.
        log.append("t", 1, [rec(1000 + round)]).unwrap();
        for _ in 0..30 {
            let r = rec(next);
            batch
                .append("t", (next % 2) as u32, r.as_ref(), r.header_refs())
                .unwrap();
            next += 1;
        }
        batch.set_position("g", "in", 0, round + 1);
        assert_eq!(batch.len(), 30);
        log.commit_batch(&mut batch).unwrap();
        assert!(batch.is_empty());
        assert_eq!(log.committed("g", "in", 0).unwrap(), Some(round + 1));
    }
    // Partition 0 holds the even records in order; partition 1 one foreign record per round
    // followed by that round's odd records.
    let p0: Vec<Record> = log
        .read("t", 0, 0, usize::MAX)
        .unwrap()
        .iter()
        .map(|r| r.to_record())
        .collect();
    assert_eq!(p0, (0..next).step_by(2).map(rec).collect::<Vec<_>>());
    let p1 = log.read("t", 1, 0, usize::MAX).unwrap();
    assert_eq!(p1.len(), 6 * 16);
    for (round, chunk) in p1.chunks(16).enumerate() {
        assert_eq!(chunk[0].to_record(), rec(1000 + round as u64));
        let odd: Vec<Record> = chunk[1..].iter().map(|r| r.to_record()).collect();
        let want: Vec<Record> = (round as u64 * 30..round as u64 * 30 + 30)
            .filter(|i| i % 2 == 1)
            .map(rec)
            .collect();
        assert_eq!(odd, want);
    }
    // And it all survives a reopen (recovery scans the segments the batch wrote).
    drop(log);
    let log = Log::open(dir.path(), small()).unwrap();
    assert_eq!(log.read("t", 1, 0, usize::MAX).unwrap(), p1);
}

#[test]
fn a_failed_batch_changes_nothing_and_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), small()).unwrap();
    log.create_topic("t", 1).unwrap();
    let mut batch = WriteBatch::new();
    let r = rec(1);
    batch.append("t", 0, r.as_ref(), r.header_refs()).unwrap();
    batch.append("nope", 0, r.as_ref(), []).unwrap();
    assert!(matches!(
        log.commit_batch(&mut batch),
        Err(LogError::UnknownTopic(t)) if t == "nope"
    ));
    assert_eq!(batch.len(), 2);
    assert_eq!(log.high_watermark("t", 0).unwrap(), 0);
    batch.clear();
    batch.append("t", 0, r.as_ref(), r.header_refs()).unwrap();
    batch.set_position("g", "t", 0, 2);
    assert!(matches!(
        log.commit_batch(&mut batch),
        Err(LogError::InvalidArgument(m)) if m.contains("past its end")
    ));
    assert_eq!(log.high_watermark("t", 0).unwrap(), 0);
    batch.set_position("g", "t", 0, 1);
    log.commit_batch(&mut batch).unwrap();
    assert_eq!(log.read("t", 0, 0, 10).unwrap()[0].to_record(), r);
    assert_eq!(log.committed("g", "t", 0).unwrap(), Some(1));
    // Oversized records are refused at append and leave nothing behind.
    let big = vec![0u8; dipper_log::MAX_RECORD_BYTES];
    let huge = RecordRef {
        key: Some(b"k"),
        value: Some(&big),
        timestamp: 0,
    };
    assert!(batch.append("t", 0, huge, []).is_err());
    let header_too_many = RecordRef {
        value: Some(&big[..dipper_log::MAX_RECORD_BYTES - 4]),
        ..RecordRef::default()
    };
    assert!(batch
        .append("t", 0, header_too_many, [("h", &b"v"[..])])
        .is_err());
    assert!(batch.is_empty());
    log.commit_batch(&mut batch).unwrap();
    assert_eq!(log.high_watermark("t", 0).unwrap(), 1);
}

#[test]
fn txn_append_ref_promises_offsets_and_conflicts_like_append() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), small()).unwrap();
    log.create_topic("t", 1).unwrap();
    log.append("t", 0, [rec(0)]).unwrap();
    let mut txn = log.begin();
    let r = rec(1);
    assert_eq!(
        txn.append_ref("t", 0, r.as_ref(), r.header_refs()).unwrap(),
        1
    );
    assert_eq!(txn.append("t", 0, rec(2)).unwrap(), 2);
    log.append("t", 0, [rec(9)]).unwrap();
    assert!(matches!(
        log.commit(txn),
        Err(LogError::Conflict {
            expected: 1,
            actual: 2,
            ..
        })
    ));
    let mut txn = log.begin();
    assert_eq!(
        txn.append_ref("t", 0, r.as_ref(), r.header_refs()).unwrap(),
        2
    );
    log.commit(txn).unwrap();
    assert_eq!(log.read("t", 0, 2, 1).unwrap()[0].to_record(), r);
}

#[test]
fn read_with_sees_what_read_returns_without_copies() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), small()).unwrap();
    log.create_topic("t", 1).unwrap();
    for chunk in 0..10u64 {
        log.append("t", 0, (chunk * 20..chunk * 20 + 20).map(rec))
            .unwrap();
    }
    for from in [0, 1, 37, 150, 199, 200, 500] {
        for max in [1, 7, 64, usize::MAX] {
            let mut seen = Vec::new();
            let n = log
                .read_with("t", 0, from, max, |r| seen.push(r.to_stored()))
                .unwrap();
            assert_eq!(n, seen.len());
            assert_eq!(seen, log.read("t", 0, from, max).unwrap(), "{from} {max}");
            let want = (200u64.saturating_sub(from) as usize).min(max);
            assert_eq!(n, want, "{from} {max}");
        }
    }
    let mut headers = Vec::new();
    log.read_with("t", 0, 2, 1, |r| {
        headers = r
            .headers()
            .map(|(k, v)| (k.to_string(), v.to_vec()))
            .collect()
    })
    .unwrap();
    assert_eq!(headers, rec(2).headers);
    assert!(matches!(
        log.read_with("t", 3, 0, 1, |_| {}),
        Err(LogError::UnknownPartition { .. })
    ));
}

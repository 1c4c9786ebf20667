//! Crash tests: a commit is cut at byte boundaries (segment writes, then the
//! journal entry), optionally with garbage where the missing bytes would be,
//! in a copy of the directory. Reopening must yield exactly the state before
//! the transaction or exactly the state after it, never a mix, and the log
//! must keep working afterwards.

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::path::{Path, PathBuf};

use dipper_log::{Log, Options, Record, StoredRecord};
use proptest::prelude::*;

const PARTS: [(&str, u32); 3] = [("a", 0), ("a", 1), ("b", 0)];
const GROUPS: [&str; 2] = ["g0", "g1"];
const JOURNAL: &str = "commits.journal";

fn opts() -> Options {
    Options {
        segment_bytes: 300,
        index_interval_bytes: 64,
        // No compaction inside the cut commit: the journal only grows there.
        journal_compact_bytes: u64::MAX,
    }
}

#[derive(Clone, Debug)]
struct TxnSpec {
    /// (partition index, value length)
    records: Vec<(usize, usize)>,
    /// (group index, partition index, position as a fraction of the end /255)
    positions: Vec<(usize, usize, u8)>,
}

#[derive(Clone, Copy, Debug)]
enum Cut {
    /// Crash while writing segments: `at` bytes of the txn's segment data
    /// landed (in write order); the journal entry was not written.
    Segments { at: u64, garbage: bool },
    /// Segments complete; `at` bytes of the journal entry landed.
    Journal { at: u64, garbage: bool },
}

type State = (
    BTreeMap<(String, u32), Vec<StoredRecord>>,
    BTreeMap<(String, String, u32), Option<u64>>,
);

/// Crash copies are many and every recovery fsyncs, so use a RAM-backed
/// directory when there is one; the file semantics under test are the same.
fn scratch_dir() -> tempfile::TempDir {
    let shm = Path::new("/dev/shm");
    if shm.is_dir() {
        if let Ok(d) = tempfile::tempdir_in(shm) {
            return d;
        }
    }
    tempfile::tempdir().unwrap()
}

fn state(log: &Log) -> State {
    let mut recs = BTreeMap::new();
    let mut pos = BTreeMap::new();
    for (t, p) in PARTS {
        recs.insert((t.to_string(), p), log.read(t, p, 0, usize::MAX).unwrap());
        for g in GROUPS {
            pos.insert(
                (g.to_string(), t.to_string(), p),
                log.committed(g, t, p).unwrap(),
            );
        }
    }
    (recs, pos)
}

fn setup(log: &Log) {
    log.create_topic("a", 2).unwrap();
    log.create_topic("b", 1).unwrap();
}

fn run(log: &Log, spec: &TxnSpec, seed: u64) {
    let mut txn = log.begin();
    let mut ends: BTreeMap<usize, u64> = BTreeMap::new();
    for (i, &(part, len)) in spec.records.iter().enumerate() {
        let (t, p) = PARTS[part];
        let r = Record {
            key: Some(format!("{seed}-{i}").into_bytes()),
            value: Some(vec![(seed as usize + i) as u8; len]),
            headers: vec![("h".into(), vec![i as u8])],
            timestamp: seed as i64 * 1000 + i as i64,
        };
        ends.insert(part, txn.append(t, p, r).unwrap() + 1);
    }
    for &(g, part, frac) in &spec.positions {
        let (t, p) = PARTS[part];
        let end = match ends.get(&part) {
            Some(&e) => e,
            None => log.high_watermark(t, p).unwrap(),
        };
        txn.set_position(GROUPS[g], t, p, end * frac as u64 / 255)
            .unwrap();
    }
    log.commit(txn).unwrap();
}

fn lens(dir: &Path) -> BTreeMap<PathBuf, u64> {
    fn walk(root: &Path, d: &Path, out: &mut BTreeMap<PathBuf, u64>) {
        for e in std::fs::read_dir(d).unwrap() {
            let e = e.unwrap();
            let path = e.path();
            if e.file_type().unwrap().is_dir() {
                walk(root, &path, out);
            } else {
                let rel = path.strip_prefix(root).unwrap().to_path_buf();
                out.insert(rel, e.metadata().unwrap().len());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

fn copy_dir(src: &Path, dst: &Path) {
    for (rel, _) in lens(src) {
        let to = dst.join(&rel);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(src.join(&rel), to).unwrap();
    }
}

/// Order in which a commit writes segment files: by (topic, partition, base).
fn seg_order(rel: &Path) -> (String, u32, u64) {
    let parts: Vec<String> = rel
        .iter()
        .map(|c| c.to_string_lossy().into_owned())
        .collect();
    let base = parts[3].trim_end_matches(".seg").parse().unwrap();
    (parts[1].clone(), parts[2].parse().unwrap(), base)
}

fn set_len(path: &Path, len: u64, garbage_to: Option<u64>) {
    let f = OpenOptions::new().write(true).open(path).unwrap();
    f.set_len(len).unwrap();
    if let Some(to) = garbage_to {
        use std::io::{Seek, SeekFrom, Write};
        let mut f = f;
        f.seek(SeekFrom::Start(len)).unwrap();
        let junk: Vec<u8> = (len..to.max(len + 1)).map(|i| (i * 31 + 7) as u8).collect();
        f.write_all(&junk).unwrap();
    }
}

/// Builds the crashed directory `dst` from the post-commit directory `after`.
fn crash_copy(
    after: &Path,
    dst: &Path,
    before: &BTreeMap<PathBuf, u64>,
    after_lens: &BTreeMap<PathBuf, u64>,
    cut: Cut,
) {
    copy_dir(after, dst);
    let jb = before[Path::new(JOURNAL)];
    let ja = after_lens[Path::new(JOURNAL)];
    match cut {
        Cut::Journal { at, garbage } => {
            let len = jb + at.min(ja - jb);
            set_len(&dst.join(JOURNAL), len, garbage.then_some(len + 13));
        }
        Cut::Segments { at, garbage } => {
            set_len(&dst.join(JOURNAL), jb, None);
            let mut segs: Vec<(&PathBuf, u64, u64)> = after_lens
                .iter()
                .filter(|(rel, _)| rel.starts_with("topics"))
                .map(|(rel, &a)| (rel, before.get(rel).copied().unwrap_or(0), a))
                .filter(|&(rel, b, a)| a != b || !before.contains_key(rel))
                .collect();
            segs.sort_by_key(|(rel, _, _)| seg_order(rel));
            let mut start = 0;
            for (rel, b, a) in segs {
                let d = a - b;
                let path = dst.join(rel);
                if at >= start + d {
                    // fully written
                } else if at > start {
                    set_len(&path, b + (at - start), garbage.then_some(a));
                } else if before.contains_key(rel) {
                    set_len(&path, b, None); // not reached yet
                } else if at == start {
                    set_len(&path, 0, None); // created, nothing written yet
                } else {
                    std::fs::remove_file(&path).unwrap(); // not created yet
                }
                start += d;
            }
        }
    }
}

/// Runs `history`, then `crash` with the given cut, and checks the outcome.
/// Returns the total segment and journal bytes the crash txn wrote.
fn check(history: &[TxnSpec], crash: &TxnSpec, cuts: &dyn Fn(u64, u64) -> Vec<Cut>) {
    let base = scratch_dir();
    let (before_state, after_state, before, after_lens) = {
        let log = Log::open(base.path(), opts()).unwrap();
        setup(&log);
        for (i, t) in history.iter().enumerate() {
            run(&log, t, i as u64);
        }
        let before_state = state(&log);
        let before = lens(base.path());
        run(&log, crash, 999);
        (before_state, state(&log), before, lens(base.path()))
    };
    let seg_bytes: u64 = after_lens
        .iter()
        .filter(|(rel, _)| rel.starts_with("topics"))
        .map(|(rel, a)| a - before.get(rel).copied().unwrap_or(0))
        .sum();
    let jrn_bytes = after_lens[Path::new(JOURNAL)] - before[Path::new(JOURNAL)];
    for cut in cuts(seg_bytes, jrn_bytes) {
        let dst = scratch_dir();
        crash_copy(base.path(), dst.path(), &before, &after_lens, cut);
        let complete = matches!(cut, Cut::Journal { at, .. } if at >= jrn_bytes);
        let want = if complete {
            &after_state
        } else {
            &before_state
        };
        let continued = {
            let log = Log::open(dst.path(), opts())
                .unwrap_or_else(|e| panic!("reopen after {cut:?} failed: {e}"));
            assert!(
                state(&log) == *want,
                "{cut:?}: state is neither before nor after (complete={complete})"
            );
            // The log keeps working after recovery...
            run(&log, crash, 7);
            state(&log)
        };
        // ...and what it committed then survives another reopen.
        let log = Log::open(dst.path(), opts()).unwrap();
        assert!(
            state(&log) == continued,
            "{cut:?}: commit after recovery lost"
        );
    }
}

fn all_cuts(seg: u64, jrn: u64) -> Vec<Cut> {
    let mut v = Vec::new();
    for garbage in [false, true] {
        // Every byte clean; every 4th byte with a garbage tail (time budget).
        let step = if garbage { 4 } else { 1 };
        v.extend(
            (0..=seg)
                .step_by(step)
                .map(|at| Cut::Segments { at, garbage }),
        );
        v.extend((0..=jrn).map(|at| Cut::Journal { at, garbage }));
    }
    v
}

#[test]
fn crash_at_every_byte_of_a_multi_partition_commit_is_all_or_nothing() {
    let history = vec![
        TxnSpec {
            records: vec![(0, 40), (0, 10), (1, 120), (2, 5)],
            positions: vec![(0, 0, 255)],
        },
        TxnSpec {
            records: vec![(0, 200), (2, 90)],
            positions: vec![(1, 2, 100)],
        },
    ];
    // Touches all partitions, rolls segments, and moves positions.
    let crash = TxnSpec {
        records: vec![(0, 150), (0, 150), (1, 30), (2, 0), (2, 250), (2, 3)],
        positions: vec![(0, 0, 255), (1, 1, 128), (1, 2, 0)],
    };
    check(&history, &crash, &all_cuts);
}

#[test]
fn crash_on_first_commit_into_empty_topics() {
    let crash = TxnSpec {
        records: vec![(1, 10), (1, 400), (2, 1)],
        positions: vec![(0, 1, 255)],
    };
    check(&[], &crash, &all_cuts);
}

#[test]
fn positions_only_commit_is_atomic() {
    let history = vec![TxnSpec {
        records: vec![(0, 10), (1, 10), (2, 10)],
        positions: vec![],
    }];
    let crash = TxnSpec {
        records: vec![],
        positions: vec![(0, 0, 255), (0, 1, 255), (1, 2, 255)],
    };
    check(&history, &crash, &all_cuts);
}

#[test]
fn bit_flip_in_last_journal_entry_rolls_back_that_commit() {
    let dir = tempfile::tempdir().unwrap();
    let before_state;
    let jlen_before;
    {
        let log = Log::open(dir.path(), opts()).unwrap();
        setup(&log);
        run(
            &log,
            &TxnSpec {
                records: vec![(0, 5)],
                positions: vec![],
            },
            1,
        );
        before_state = state(&log);
        jlen_before = std::fs::metadata(dir.path().join(JOURNAL)).unwrap().len();
        run(
            &log,
            &TxnSpec {
                records: vec![(0, 5), (2, 9)],
                positions: vec![(0, 0, 255)],
            },
            2,
        );
    }
    let jp = dir.path().join(JOURNAL);
    let mut j = std::fs::read(&jp).unwrap();
    let last = j.len() - 2;
    j[last] ^= 0x10;
    std::fs::write(&jp, &j).unwrap();
    let log = Log::open(dir.path(), opts()).unwrap();
    assert!(state(&log) == before_state);
    let rec = log.recovery();
    assert_eq!(rec.truncated_bytes, j.len() as u64 - jlen_before);
    assert!(rec.truncation_reason.as_deref().unwrap().contains("CRC"));
    assert_eq!(std::fs::metadata(&jp).unwrap().len(), jlen_before);
}

#[test]
fn damage_before_the_last_journal_entry_is_refused_not_truncated() {
    let dir = scratch_dir();
    {
        let log = Log::open(dir.path(), opts()).unwrap();
        setup(&log);
        for i in 0..3 {
            run(
                &log,
                &TxnSpec {
                    records: vec![(0, 5)],
                    positions: vec![],
                },
                i,
            );
        }
    }
    let jp = dir.path().join(JOURNAL);
    let mut j = std::fs::read(&jp).unwrap();
    j[12] ^= 0x01; // inside the first entry
    std::fs::write(&jp, &j).unwrap();
    let err = Log::open(dir.path(), opts())
        .err()
        .expect("mid-journal damage is an error");
    let msg = err.to_string();
    assert!(
        msg.contains("commits.journal") && msg.contains("at byte 0"),
        "{msg}"
    );
    // Nothing was truncated.
    assert_eq!(std::fs::read(&jp).unwrap(), j);
}

#[test]
fn compaction_leftovers_are_harmless() {
    let dir = tempfile::tempdir().unwrap();
    let o = Options {
        journal_compact_bytes: 200,
        ..opts()
    };
    let want = {
        let log = Log::open(dir.path(), o.clone()).unwrap();
        setup(&log);
        for i in 0..30 {
            run(
                &log,
                &TxnSpec {
                    records: vec![(i % 3, i)],
                    positions: vec![(i % 2, i % 3, 200)],
                },
                i as u64,
            );
        }
        state(&log)
    };
    assert!(std::fs::metadata(dir.path().join(JOURNAL)).unwrap().len() < 1000);
    // A crash mid-compaction leaves a partial temp file next to the journal.
    std::fs::write(dir.path().join("commits.journal.tmp"), b"partial snapshot").unwrap();
    let log = Log::open(dir.path(), o).unwrap();
    assert!(state(&log) == want);
}

fn txn_strategy() -> impl Strategy<Value = TxnSpec> {
    (
        prop::collection::vec((0..3usize, 0..180usize), 0..8),
        prop::collection::vec((0..2usize, 0..3usize, any::<u8>()), 0..3),
    )
        .prop_map(|(records, positions)| TxnSpec { records, positions })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn random_histories_and_cut_points_are_all_or_nothing(
        history in prop::collection::vec(txn_strategy(), 0..5),
        crash in txn_strategy(),
        picks in prop::collection::vec((any::<bool>(), 0.0..=1.0f64, any::<bool>()), 1..6),
    ) {
        let cuts = move |seg: u64, jrn: u64| -> Vec<Cut> {
            picks
                .iter()
                .map(|&(in_journal, frac, garbage)| {
                    if in_journal {
                        Cut::Journal { at: (jrn as f64 * frac) as u64, garbage }
                    } else {
                        Cut::Segments { at: (seg as f64 * frac) as u64, garbage }
                    }
                })
                .collect()
        };
        check(&history, &crash, &cuts);
    }
}

#[test]
fn crash_during_create_topic_leaves_no_topic_or_the_whole_topic() {
    let base = scratch_dir();
    let before = {
        let log = Log::open(base.path(), opts()).unwrap();
        setup(&log);
        let jb = std::fs::metadata(base.path().join(JOURNAL)).unwrap().len();
        log.create_topic("new", 4).unwrap();
        jb
    };
    let after = std::fs::metadata(base.path().join(JOURNAL)).unwrap().len();
    for at in before..=after {
        let dst = scratch_dir();
        copy_dir(base.path(), dst.path());
        set_len(&dst.path().join(JOURNAL), at, None);
        let log = Log::open(dst.path(), opts()).unwrap();
        if at == after {
            assert_eq!(log.partitions("new").unwrap(), 4);
        } else {
            assert!(log.partitions("new").is_err());
            // The half-created directories do not stand in the way.
            log.create_topic("new", 2).unwrap();
            log.append("new", 1, [Record::value("v", 1)]).unwrap();
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Damage anywhere (not only at tails) never panics: open either fails
    /// with an error or yields a readable log.
    #[test]
    fn random_byte_damage_never_panics(
        history in prop::collection::vec(txn_strategy(), 1..5),
        file_pick in any::<prop::sample::Index>(),
        byte_pick in any::<prop::sample::Index>(),
        xor in 1..=255u8,
    ) {
        let dir = scratch_dir();
        {
            let log = Log::open(dir.path(), opts()).unwrap();
            setup(&log);
            for (i, t) in history.iter().enumerate() {
                run(&log, t, i as u64);
            }
        }
        let files: Vec<(PathBuf, u64)> =
            lens(dir.path()).into_iter().filter(|(_, l)| *l > 0).collect();
        let (rel, len) = &files[file_pick.index(files.len())];
        let path = dir.path().join(rel);
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[byte_pick.index(*len as usize)] ^= xor;
        std::fs::write(&path, &bytes).unwrap();
        if let Ok(log) = Log::open(dir.path(), opts()) {
            for (t, n) in log.topics() {
                for p in 0..n {
                    let _ = log.read(&t, p, 0, usize::MAX);
                    let _ = log.high_watermark(&t, p);
                }
            }
        }
    }
}
